#!/usr/bin/env python3
"""Run the test suite, lint and the docs build with tox, without touching your environment.

Usage (from anywhere; README command 2 and ``.ci/run`` both call this)::

    python3 scripts/run_tests.py                         # every tox env: both stacks, lint, docs
    python3 scripts/run_tests.py -e py311-pymc5          # any tox arguments
    python3 scripts/run_tests.py -e py312-pymc6 -- -k checkpoint   # after --: pytest arguments

tox itself lives in a private virtual environment, ``.tox-venv/`` at the repository root,
created on the first run and reused afterwards; the test environments are tox's, in
``.tox/``. Nothing is installed into the Python that runs this script, so PyMC in your
own environment keeps its dependencies (tox needs ``cachetools>=7``, PyMC 5 ``<7``).

The two stacks need Python 3.11 (PyMC 5) and Python 3.12 (PyMC 6). Each is looked up in
this order, and the first one that really is that version is used:

1. ``PYTHON311`` / ``PYTHON312``: the path of an interpreter (if set, it must be right);
2. for 3.11, the Python running this script (or the base of its virtual environment);
3. ``python3.11`` / ``python3.12`` on ``PATH``;
4. pyenv: ``$PYENV_ROOT/versions/3.1x.*`` (``pyenv root``, default ``~/.pyenv``);
5. ``uv python find 3.1x``.

If a selected stack has no interpreter, the script stops before any test runs and says
how to provide one; a stack is never skipped.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".tox-venv"
TOX_REQUIREMENT = "tox>=4.11,<5"
STAMP = VENV / "run_tests-requirement.txt"
ALL_ENVS = "all tox envs of tox.ini (py311-pymc5, py312-pymc6, lint, docs)"

PROBE = "import sys; print(sys.version_info[0], sys.version_info[1]); print(sys.executable)"


def log(message: str) -> None:
    """Print a line of this script's own output, flushed so it shows before tox's."""
    print(f"run_tests: {message}", flush=True)


def fail(message: str, code: int = 2) -> None:
    """Print an error and exit without running anything."""
    print(f"run_tests: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def clean_env() -> dict[str, str]:
    """Environment for the tools: outside any activated virtual environment."""
    env = dict(os.environ)
    active = env.pop("VIRTUAL_ENV", None)
    for name in ("PYTHONHOME", "PYTHONPATH", "PYENV_VERSION", "__PYVENV_LAUNCHER__"):
        env.pop(name, None)
    if active:
        bindir = os.path.join(active, "Scripts" if os.name == "nt" else "bin")
        parts = env.get("PATH", "").split(os.pathsep)
        env["PATH"] = os.pathsep.join(p for p in parts if os.path.normpath(p) != bindir)
    return env


def probe(candidate: str) -> tuple[tuple[int, int], str] | None:
    """Run ``candidate`` and return its (major, minor) version and executable path."""
    try:
        out = subprocess.run(
            [candidate, "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            env=clean_env(),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    lines = out.stdout.split("\n")
    try:
        major, minor = (int(x) for x in lines[0].split())
    except ValueError:
        return None
    return (major, minor), lines[1].strip() or candidate


def pyenv_roots() -> list[str]:
    """Where pyenv keeps its Pythons: $PYENV_ROOT, ``pyenv root``, ~/.pyenv."""
    roots = []
    if os.environ.get("PYENV_ROOT"):
        roots.append(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            out = subprocess.run(
                [pyenv, "root"], capture_output=True, text=True, timeout=30, env=clean_env()
            )
            if out.returncode == 0 and out.stdout.strip():
                roots.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    roots.append(os.path.expanduser("~/.pyenv"))
    return list(dict.fromkeys(roots))


def version_key(path: str) -> tuple[int, ...]:
    """Sort key: the numbers in a pyenv version folder name (3.12.10 after 3.12.9)."""
    name = Path(path).parent.parent.name
    return tuple(int(x) for x in re.findall(r"\d+", name))


def candidates(minor: int) -> list[str]:
    """Interpreters that may be Python 3.<minor>, in the order they are tried."""
    found: list[str] = []
    if minor == 11 and sys.version_info[:2] == (3, 11):
        # The Python running this script; from a virtual environment, its base.
        found.append(getattr(sys, "_base_executable", "") or sys.executable)
        found.append(sys.executable)
    on_path = shutil.which(f"python3.{minor}", path=clean_env().get("PATH"))
    if on_path:
        found.append(on_path)
    for root in pyenv_roots():
        pattern = os.path.join(root, "versions", f"3.{minor}*", "bin", f"python3.{minor}")
        found.extend(sorted(glob.glob(pattern), key=version_key, reverse=True))
    uv = shutil.which("uv")
    if uv:
        try:
            out = subprocess.run(
                [uv, "python", "find", f"3.{minor}"],
                capture_output=True,
                text=True,
                timeout=60,
                env=clean_env(),
            )
            if out.returncode == 0 and out.stdout.strip():
                found.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    return [c for c in dict.fromkeys(found) if c]


def find_python(minor: int, stack: str) -> str:
    """Return the path of a real Python 3.<minor>, or stop with how to provide one."""
    var = f"PYTHON3{minor}"
    given = os.environ.get(var)
    if given:
        result = probe(given)
        if result is None:
            fail(f"{var}={given} does not run as a Python interpreter.")
        version, executable = result
        if version != (3, minor):
            fail(f"{var}={given} is Python {version[0]}.{version[1]}, not 3.{minor}.")
        return executable
    tried = candidates(minor)
    for candidate in tried:
        result = probe(candidate)
        if result is not None and result[0] == (3, minor):
            return result[1]
    fail(
        f"no Python 3.{minor} found; the {stack} stack needs one, and it is never skipped.\n"
        f"  Tried: {', '.join(tried) or f'python3.{minor} on PATH, pyenv'}.\n"
        f"  Provide one, then run this again, e.g.:\n"
        f"    {var}=/path/to/python3.{minor} python3 scripts/run_tests.py\n"
        f"    pyenv install 3.{minor}        (found in $PYENV_ROOT/versions afterwards)\n"
        f"    uv python install 3.{minor}    or your system's python3.{minor} package\n"
        f"  Or run the other envs only: python3 scripts/run_tests.py -e <envs> "
        f"(see tox.ini)."
    )
    raise AssertionError("unreachable")


def venv_python() -> Path:
    """The private venv's interpreter."""
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_tox() -> Path:
    """Create or reuse ``.tox-venv/`` holding tox, and return its Python."""
    python = venv_python()
    ready = (
        python.exists()
        and STAMP.exists()
        and STAMP.read_text().strip() == TOX_REQUIREMENT
        and subprocess.run(
            [str(python), "-c", "import tox"], env=clean_env(), capture_output=True
        ).returncode
        == 0
    )
    if ready:
        return python
    log(f"installing {TOX_REQUIREMENT} into {VENV.relative_to(ROOT)}/ (private, once)")
    if VENV.exists():
        shutil.rmtree(VENV)
    base = getattr(sys, "_base_executable", "") or sys.executable
    made = subprocess.run([base, "-m", "venv", str(VENV)], env=clean_env())
    if made.returncode != 0:
        fail(
            f"could not create a virtual environment with {base} -m venv "
            "(on Debian/Ubuntu: apt install python3-venv)."
        )
    pip = [str(python), "-m", "pip", "install", "--quiet", "--no-input"]
    if subprocess.run([*pip, TOX_REQUIREMENT], env=clean_env()).returncode != 0:
        shutil.rmtree(VENV, ignore_errors=True)
        fail(f"could not install {TOX_REQUIREMENT} into {VENV}.")
    STAMP.write_text(TOX_REQUIREMENT + "\n")
    return python


def selected_envs(args: list[str]) -> list[str] | None:
    """The envs named with -e/--env before ``--`` (None: tox.ini's env_list)."""
    envs: list[str] = []
    given = False
    head = args[: args.index("--")] if "--" in args else args
    for i, arg in enumerate(head):
        value = None
        if arg in ("-e", "--env") and i + 1 < len(head):
            value = head[i + 1]
        elif arg.startswith("--env="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-e") and len(arg) > 2:
            value = arg[2:]
        if value is not None:
            given = True
            envs.extend(e.strip() for e in value.split(",") if e.strip())
    if not given and os.environ.get("TOXENV"):
        return [e.strip() for e in os.environ["TOXENV"].split(",") if e.strip()]
    return envs if given else None


def main(args: list[str]) -> int:
    """Find the interpreters, make sure tox is there, run tox; return tox's exit code."""
    head = args[: args.index("--")] if "--" in args else args
    if "-h" in head or "--help" in head:
        print(__doc__)
        return 0
    envs = selected_envs(args)
    everything = envs is None or "ALL" in envs
    pythons = []
    # lint and docs run on Python 3.11 too.
    if everything or any(not e.startswith("py312") for e in envs or []):
        pythons.append(find_python(11, "Python 3.11 / PyMC 5 (and lint, docs)"))
    if everything or any(e.startswith("py312") for e in envs or []):
        pythons.append(find_python(12, "Python 3.12 / PyMC 6"))
    for python in pythons:
        log(f"using {python}")
    tox_python = ensure_tox()
    command = [str(tox_python), "-m", "tox", "-c", str(ROOT / "tox.ini"), "--discover"]
    command += [*pythons, *args]
    log(f"running {', '.join(envs) if envs else ALL_ENVS}")
    log(
        "each test stack takes about 15 min on a first run (packages to install, "
        "pytensor's compile cache cold) and about 5 min afterwards; "
        "lint and docs 2-3 min"
    )
    log("$ " + " ".join(command[1:]))
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # Started with Ctrl-C ignored (a background job of a script, some CI runners):
        # children would inherit that, and the tests that send SIGINT to a fit would fail.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    start = time.monotonic()
    code = subprocess.run(command, cwd=ROOT, env=clean_env()).returncode
    minutes, seconds = divmod(int(time.monotonic() - start), 60)
    verdict = "passed" if code == 0 else f"FAILED (tox exit code {code})"
    log(f"{verdict} after {minutes} min {seconds} s")
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
