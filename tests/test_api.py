import inspect
import re

import pytest

import pymc_adadelta


def test_all_lists_exactly_the_public_names():
    public = {n for n in dir(pymc_adadelta) if not n.startswith("_")} - {
        "arviz", "callbacks", "chains", "counter", "diagnostics", "draws", "hyperparams",
        "optimizer", "parallel", "plots", "rule", "state", "streaming", "updates", "views",
        "warmstart",
    }  # fmt: skip
    assert set(pymc_adadelta.__all__) - {"__version__"} == public


PUBLIC_OBJECTS = [name for name in pymc_adadelta.__all__ if name != "__version__"]


@pytest.mark.parametrize("name", PUBLIC_OBJECTS)
def test_every_public_name_has_a_docstring_with_an_example(name):
    doc = inspect.getdoc(getattr(pymc_adadelta, name)) or ""
    assert doc.strip(), f"{name} has no docstring"
    # A numpydoc "Examples" section with at least one doctest line in it.
    section = re.search(r"^Examples\n-{8,}\n(.*?)(?=^\S[^\n]*\n-{3,}\n|\Z)", doc, re.M | re.S)
    assert section, f"{name}'s docstring has no numpydoc Examples section"
    assert re.search(r"^>>> \S", section.group(1), re.M), f"{name}'s Examples has no >>> line"
