"""Sphinx configuration of the sklmixed documentation.

Build (warnings are errors):  sphinx-build -W -b html docs docs/_build/html

Three pages are written at build time, so that new work slots in without editing
this file (they are not committed):

- ``api.rst`` from ``__all__``: every public name of ``sklmixed`` and of its public
  modules (``PUBLIC_MODULES`` and any module listed in ``sklmixed.__all__``);
- ``user_guide.rst``: the pages of ``GUIDE_PAGES`` in that order, then any other
  Markdown page of docs/ that is not a design note;
- ``notes.rst``: the design notes of ``DESIGN_NOTES`` that exist.

The gallery runs every ``examples/plot_*.py``.
"""

import importlib
import inspect
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("MPLBACKEND", "Agg")

import sklmixed  # noqa: E402

project = "sklmixed"
author = "the sklmixed developers"
copyright = "sklmixed developers, BSD-3-Clause"
version = release = sklmixed.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "generated/*.examples", "README.md", "**/README.md"]
templates_path = ["_templates"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- API reference ----------------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
autodoc_default_options = {"members": False, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Public modules beyond sklmixed's own namespace, with a one-line title each.
PUBLIC_MODULES = {
    "sklmixed.datasets": "Data sets",
    "sklmixed.plotting": "Plotting",
    "sklmixed.exceptions": "Warnings",
    "sklmixed.result": "Results",
    "sklmixed.result_glmm": "GLMM results",
    "sklmixed.inference": "Inference",
    "sklmixed.report": "Summaries",
}


def _public_modules():
    modules = dict(PUBLIC_MODULES)
    for name in sklmixed.__all__:
        obj = getattr(sklmixed, name)
        if inspect.ismodule(obj):
            modules.setdefault(obj.__name__, name.capitalize())
    return modules


def _api_page():
    top = [n for n in sklmixed.__all__ if not inspect.ismodule(getattr(sklmixed, n))]
    lines = [
        ".. This file is written by docs/conf.py from __all__; do not edit it.",
        "",
        "API reference",
        "=============",
        "",
        "Every public name, from each module's ``__all__``.",
        "",
        "``sklmixed``",
        "------------",
        "",
        ".. currentmodule:: sklmixed",
        "",
        ".. autosummary::",
        "   :toctree: generated",
        "   :template: entry.rst",
        "",
        *[f"   {name}" for name in top],
        "",
    ]
    for module_name, title in _public_modules().items():
        module = importlib.import_module(module_name)
        names = [n for n in getattr(module, "__all__", []) if not n.startswith("_")]
        # A name documented under sklmixed itself is not repeated.
        names = [n for n in names if not (n in top and getattr(sklmixed, n) is getattr(module, n))]
        heading = f"``{module_name}``: {title}"
        lines += [heading, "-" * len(heading), "", f".. automodule:: {module_name}",
                  "   :no-members:", "", f".. currentmodule:: {module_name}", ""]
        if names:
            lines += [".. autosummary::", "   :toctree: generated", "   :template: entry.rst",
                      "", *[f"   {n}" for n in names], ""]
    text = "\n".join(lines)
    path = HERE / "api.rst"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


_api_page()


# Design notes: each page that exists, in this order (others write some of them).
DESIGN_NOTES = ["architecture", "formula_security", "reliability"]
# The user guide's pages in reading order; a page of docs/ not listed here (nor a design
# note) is added at the end.
GUIDE_PAGES = [
    "model", "summary", "lme4", "sklearn", "data", "plotting", "glmm", "inference",
    "prediction", "performance",
]


def _toctree_page(name, title, intro, pages):
    text = "\n".join([
        ".. This file is written by docs/conf.py; do not edit it.",
        "",
        title,
        "=" * len(title),
        "",
        intro,
        "",
        ".. toctree::",
        "   :maxdepth: 2",
        "",
        *[f"   {page}" for page in pages],
        "",
    ])
    path = HERE / f"{name}.rst"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _present(names):
    return [name for name in names if (HERE / f"{name}.md").exists()]


_others = sorted(
    p.stem for p in HERE.glob("*.md")
    if p.stem not in {"index", *GUIDE_PAGES, *DESIGN_NOTES}
)
_toctree_page(
    "user_guide", "User guide",
    "From the model's notation to the pictures of a fit. R users may start with the\n"
    ":doc:`translation from lme4 <lme4>`, scikit-learn users with\n"
    ":doc:`sklmixed in scikit-learn <sklearn>`.",
    _present(GUIDE_PAGES) + _others,
)
_toctree_page(
    "notes", "How it is built",
    "Design notes of the implementation: the road from data to result, and how it is\n"
    "kept safe and reliable.",
    _present(DESIGN_NOTES),
)

# -- Gallery ----------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "show_memory": False,
    "min_reported_time": 10**9,
}

# -- HTML -------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "sklmixed"
html_static_path = ["_static"]
html_css_files = ["sklmixed.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"index": [], "api": [], "user_guide": [], "notes": []}
