"""Sphinx configuration of the sklmixed documentation.

Build (warnings are errors):  sphinx-build -W -b html docs docs/_build/html

The API reference (api.rst) is written at build time from ``__all__``: every public
name of ``sklmixed`` and of its public modules (those in ``PUBLIC_MODULES`` and any
module listed in ``sklmixed.__all__``), so a new public name appears without editing
this file. The gallery runs every ``examples/plot_*.py``.
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


def _notes_page():
    present = [name for name in DESIGN_NOTES if (HERE / f"{name}.md").exists()]
    text = "\n".join([
        ".. This file is written by docs/conf.py from the notes present; do not edit it.",
        "",
        "How it is built",
        "===============",
        "",
        "Design notes of the implementation: the road from data to result, and how it is",
        "kept safe and reliable.",
        "",
        ".. toctree::",
        "   :maxdepth: 2",
        "",
        *[f"   {name}" for name in present],
        "",
    ])
    path = HERE / "notes.rst"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


_notes_page()

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
