import inspect
import re

import pytest

import pymc_adadelta


def test_all_lists_exactly_the_public_names():
    layers = {"approx", "callbacks", "inference", "optim", "output", "persist", "streaming"}
    public = {n for n in dir(pymc_adadelta) if not n.startswith("_")} - layers
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


def test_layers_are_modules_and_fit_is_the_function():
    import types

    for layer in ("approx", "callbacks", "inference", "optim", "output", "persist", "streaming"):
        assert isinstance(getattr(pymc_adadelta, layer), types.ModuleType), layer
    assert callable(pymc_adadelta.fit) and not isinstance(pymc_adadelta.fit, types.ModuleType)
