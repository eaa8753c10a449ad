"""Sphinx configuration of the pymc-adadelta documentation.

Pages are Markdown (MyST). The examples are the scripts in ``examples/``, written in
jupytext's "percent" format (``# %%`` cells): they run as plain scripts, and myst-nb
reads them as notebooks through jupytext and executes them on every build, so the
published output is always what the current code prints. They are copied into
``docs/examples/`` (git-ignored) because Sphinx only reads sources under ``docs/``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import types
from pathlib import Path

from sphinx.util import logging

import pymc_adadelta

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# -- the executed examples ------------------------------------------------------------
#: Example scripts rendered as executed notebooks (examples/<name>.py).
EXAMPLES = ["hierarchical", "minibatch", "compare_nuts"]

for name in EXAMPLES:
    source, copy = ROOT / "examples" / f"{name}.py", DOCS / "examples" / f"{name}.py"
    if not copy.exists() or copy.read_bytes() != source.read_bytes():
        shutil.copyfile(source, copy)


def read_example(text: str):
    """Read an example script (jupytext percent format) as a Python notebook."""
    import jupytext

    notebook = jupytext.reads(text, fmt="py:percent")
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return notebook


# myst-nb imports custom notebook readers by dotted path: make this one importable.
_readers = types.ModuleType("_pymc_adadelta_docs")
_readers.read_example = read_example  # type: ignore[attr-defined]
sys.modules[_readers.__name__] = _readers

# Read by the quickstart page, whose cell runs examples/quickstart.py from a temp folder.
os.environ["PYMC_ADADELTA_ROOT"] = str(ROOT)
# Figures of the executed examples are drawn inline (kernels inherit this environment).
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

# -- project --------------------------------------------------------------------------
project = "pymc-adadelta"
author = "pymc-adadelta developers"
copyright = "2026, pymc-adadelta developers"
release = pymc_adadelta.__version__
version = release

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx_design",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "conf.py", "**.ipynb_checkpoints", "jupyter_execute"]
source_suffix = {".md": "myst-nb", ".py": "myst-nb"}
root_doc = "index"

# -- MyST and myst-nb -----------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath", "deflist"]
myst_heading_anchors = 3
nb_custom_formats = {".py": ["_pymc_adadelta_docs.read_example", {}]}
nb_execution_mode = "force"  # never publish stale output; `-D nb_execution_mode=off` to skip
nb_execution_in_temp = True  # files the examples write land in a temporary folder
nb_execution_timeout = 300  # seconds per cell
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_output_stderr = "remove"  # PyMC's log lines and library warnings; errors still fail
nb_merge_streams = True

# -- API reference --------------------------------------------------------------------
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
autodoc_member_order = "bysource"
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True

default_role = "py:obj"  # `Name` in a docstring links to it where Sphinx can resolve it

# -- HTML -----------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"pymc-adadelta {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False


# -- checks ---------------------------------------------------------------------------
def check_api_page(app) -> None:
    """Warn (an error under -W) when api.md misses a name of ``pymc_adadelta.__all__``."""
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. auto(?:function|class|data):: (\S+)", text, re.M))
    missing = sorted(set(pymc_adadelta.__all__) - documented)
    if missing:
        logging.getLogger(__name__).warning(
            "docs/api.md does not document these public names: %s", ", ".join(missing)
        )


def setup(app) -> None:
    """Register the checks."""
    app.connect("builder-inited", check_api_page)
