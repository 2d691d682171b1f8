"""Every snippet of README.md and docs/, and every example, runs: a broken one fails CI.

CI does not build the Sphinx site (its dependencies and a second run of the gallery
would cost minutes); instead this suite runs what the site shows. The ```python
blocks of each Markdown page run in order in one namespace, as a reader would paste
them; ```text, ```bash and other blocks are not run. Each example runs as a script
under matplotlib's non-interactive backend. The site's build itself is
``sphinx-build -W -b html docs docs/_build/html`` (README.md).
"""

import pathlib
import re
import runpy

import pytest

matplotlib = pytest.importorskip("matplotlib")  # in the [test] extra
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")])
PAGES = [p for p in PAGES if "_build" not in p.parts]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# Pages whose python blocks are not snippets to paste, with the reason.
NOT_RUN = {"docs/architecture.md": "excerpts of sklmixed's own source (they use self)"}
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks(path):
    """The ```python blocks of a Markdown page, with the line each starts on."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in FENCE.finditer(text)]


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a snippet or an example writes stays here
    yield
    plt.close("all")


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_snippets_run(page):
    name = str(page.relative_to(ROOT))
    if name in NOT_RUN:
        pytest.skip(NOT_RUN[name])
    namespace = {"__name__": "__snippet__"}
    for line, code in python_blocks(page):
        compiled = compile(code, f"{name}:{line}", "exec")
        try:
            exec(compiled, namespace)  # noqa: S102 - the documentation's own code
        except ModuleNotFoundError as error:
            if error.name is None or error.name.split(".")[0] == "sklmixed":
                raise
            pytest.skip(f"{name} needs {error.name}, an optional package not installed")


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_run(example):
    runpy.run_path(str(example), run_name="__main__")
    if example.name.startswith("plot_"):  # a plot_ example draws (the gallery's rule)
        assert plt.get_fignums(), f"{example.name} draws no figure"


def test_readme_starts_with_the_two_commands():
    first = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first.strip().splitlines()]
    assert commands == [
        'pip install ".[plot]" && python examples/plot_exam_tutorial.py',
        'pip install -e ".[test]" && pytest',
    ]
    assert (ROOT / "examples" / "plot_exam_tutorial.py").exists()


def test_summary_page_shows_the_summary_it_prints(capsys):
    """docs/summary.md explains a printed summary line by line: it must be today's."""
    page = ROOT / "docs" / "summary.md"
    namespace = {}
    exec(python_blocks(page)[0][1], namespace)  # noqa: S102
    printed = capsys.readouterr().out
    shown = re.search(r"```text\n(.*?)```", page.read_text(), re.S).group(1)
    assert printed == shown
    # And it is R's: lmerTest's print of the same fit (make_ddf.R, "Data: data"), but
    # for the last digits of lmerTest's numerically differentiated df.
    lmertest = ROOT / "tests" / "reference" / "inference"
    theirs = (lmertest / "ddf_exam_rs_schavg_summary_Satterthwaite.txt").read_text("utf-8")
    theirs = theirs.replace("   Data: data", "   Data: exam").splitlines()
    ours = shown.splitlines()
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        if a != b:  # a fixed-effects row: same words, df within 1e-4 (relative)
            assert re.sub(r"\d", "9", a) == re.sub(r"\d", "9", b)
            df_ours, df_theirs = float(a.split()[3]), float(b.split()[3])
            assert a.split()[:3] + a.split()[4:] == b.split()[:3] + b.split()[4:]
            assert abs(df_ours - df_theirs) <= 1e-4 * df_theirs
