import pymc_adadelta


def test_all_lists_exactly_the_public_names():
    public = {n for n in dir(pymc_adadelta) if not n.startswith("_")} - {
        "arviz", "callbacks", "counter", "diagnostics", "draws", "hyperparams", "optimizer",
        "plots", "rule", "state", "updates", "views",
    }  # fmt: skip
    assert set(pymc_adadelta.__all__) - {"__version__"} == public


def test_every_public_name_has_a_docstring_with_an_example():
    for name in pymc_adadelta.__all__:
        if name == "__version__":
            continue
        doc = getattr(pymc_adadelta, name).__doc__ or ""
        assert doc.strip(), name
