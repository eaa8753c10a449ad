"""Every ```python block of README.md runs as shown.

Each block is written to a file and run with this interpreter in a fresh process, in an
empty temporary folder (so ``__name__ == "__main__"`` holds, as in a user's script, and
files the block writes do not land in the repository). A block preceded by an HTML
comment that starts with ``<!-- norun`` is only compiled, not run; use it sparingly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
PYTHON_INFO = {"python", "py", "python3"}
TIMEOUT = 600


@dataclass(frozen=True)
class Block:
    line: int  # line of the opening fence, 1-based
    heading: str
    code: str
    norun: bool


def readme_blocks(text: str) -> list[Block]:
    """The fenced ```python blocks of ``text``, with the line, heading and norun flag."""
    blocks: list[Block] = []
    lines = text.splitlines()
    heading = "(top)"
    previous = ""  # the last non-blank line outside a code block
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        fence = stripped[:3] if stripped[:3] in ("```", "~~~") else None
        if fence is None:
            if stripped.startswith("#"):
                heading = stripped.lstrip("#").strip()
            if stripped:
                previous = stripped
            i += 1
            continue
        marker_len = len(stripped) - len(stripped.lstrip(fence[0]))
        info = stripped[marker_len:].strip().split()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines):
            closing = lines[i].strip()
            if closing.startswith(fence[0] * marker_len) and not closing.lstrip(fence[0]):
                break
            body.append(lines[i])
            i += 1
        i += 1
        if info and info[0].lower() in PYTHON_INFO:
            norun = previous.startswith("<!--") and previous[4:].strip().startswith("norun")
            blocks.append(Block(start + 1, heading, "\n".join(body) + "\n", norun))
        previous = ""
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def test_readme_has_python_blocks():
    assert BLOCKS, "README.md has no ```python block: the parser or the README is broken"
    assert any(not b.norun for b in BLOCKS), "every README block is marked norun"


def test_every_readme_block_runs():
    """No block of README.md is a fragment: each one runs as a user would paste it."""
    fragments = [f"line {b.line} ({b.heading})" for b in BLOCKS if b.norun]
    assert not fragments, f"README blocks marked norun: {fragments}"


def test_parser_reads_markers_and_fences():
    text = "# A\n```python\nx = 1\n```\n<!-- norun: needs a GPU -->\n\n```py\ny\n```\n"
    text += "```bash\n```python\n```\n## B\n````python\n```\nz = 2\n````\n"
    blocks = readme_blocks(text)
    assert [(b.line, b.heading, b.norun) for b in blocks] == [
        (2, "A", False),
        (7, "A", True),
        (14, "B", False),
    ]
    assert blocks[2].code == "```\nz = 2\n"


@pytest.mark.parametrize(
    "block", BLOCKS, ids=[f"line{b.line}-{'norun' if b.norun else 'run'}" for b in BLOCKS]
)
def test_readme_block(block: Block, tmp_path: Path):
    where = f"README.md line {block.line} (section {block.heading!r})"
    # Even a block that is not run must at least be valid Python.
    compile(block.code, where, "exec")
    if block.norun:
        pytest.skip(f"{where} is marked <!-- norun -->")
    script = tmp_path / "readme_block.py"
    script.write_text(block.code, encoding="utf-8")
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore::FutureWarning")
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{where} ran longer than {TIMEOUT} s")
    if done.returncode != 0:
        pytest.fail(
            f"{where} failed with exit code {done.returncode}.\n"
            f"--- code ---\n{block.code}--- stdout (end) ---\n{done.stdout[-3000:]}\n"
            f"--- stderr (end) ---\n{done.stderr[-6000:]}",
            pytrace=False,
        )
