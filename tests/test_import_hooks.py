import subprocess
import sys
import types

from pymc_adadelta.optim.import_hooks import when_imported


def test_callback_runs_now_for_an_imported_module():
    seen = []
    when_imported("json", seen.append)
    assert [m.__name__ for m in seen] == ["json"]


def test_callback_runs_after_a_later_import(tmp_path, monkeypatch):
    (tmp_path / "late_module_for_hook.py").write_text("VALUE = 41\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[types.ModuleType] = []
    when_imported("late_module_for_hook", seen.append)
    assert seen == []
    import late_module_for_hook

    assert seen == [late_module_for_hook] and seen[0].VALUE == 41


def test_importing_the_package_imports_neither_numba_nor_jax_beyond_pymc():
    code = (
        "import sys, pymc; before = set(sys.modules); import pymc_adadelta; "
        "new = set(sys.modules) - before; "
        "print(any(m.split('.')[0] in ('numba', 'jax') for m in new))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "False"
