"""pytest plugin: one progress line per test file, also under pytest-xdist.

pytest prints a line per file when it runs alone, but under ``-n 2`` it prints only dots.
Loaded with ``-p pytest_file_progress`` (tox.ini puts this folder on ``PYTHONPATH``), it
replaces the dots with one line per file once all of the file's tests have finished::

    [ 12/149   8%] tests/test_api.py  12 passed  (3.4 s)

Failures are still reported in full at the end, as usual. ``-v`` turns it off and gives
pytest's own line per test.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


class FileProgress:
    """Count finished tests per file and print a line when a file is done."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.expected: Counter[str] | None = None
        self.finished: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = {}
        self.seconds: Counter[str] = Counter()
        self.first_seen: dict[str, float] = {}
        self.total = 0
        self.done = 0

    # --- what there is to run -------------------------------------------------------
    def _set_expected(self, nodeids: list[str]) -> None:
        if self.expected is None:
            self.expected = Counter(_file_of(n) for n in nodeids)
            self.total = len(nodeids)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Without xdist: the items are collected here."""
        if session.items:
            self._set_expected([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Under xdist: every worker collects the same ids; the first one counts."""
        self._set_expected(list(ids))

    # --- results --------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(self, report: Any, config: pytest.Config) -> Any:
        """Keep pytest's categories and words, drop the dots this plugin replaces."""
        result = yield
        if result and config.get_verbosity() <= 0:
            category, _letter, word = result
            return category, "", word
        return result

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Tally one phase of one test, and print its file's line when the file is done."""
        path = _file_of(report.nodeid)
        self.first_seen.setdefault(path, time.monotonic())
        self.seconds[path] += getattr(report, "duration", 0.0) or 0.0
        outcomes = self.outcomes.setdefault(path, Counter())
        xfail = hasattr(report, "wasxfail")
        if report.when == "call":
            if report.passed:
                outcomes["xpassed" if xfail else "passed"] += 1
            elif report.failed:
                outcomes["failed"] += 1
            else:
                outcomes["xfailed" if xfail else "skipped"] += 1
        elif report.failed:
            outcomes["error"] += 1
        elif report.skipped:
            outcomes["xfailed" if xfail else "skipped"] += 1
        if report.when != "teardown":
            return
        self.finished[path] += 1
        self.done += 1
        if self.expected is not None and self.finished[path] == self.expected.get(path, 0):
            self._print_file(path)

    def _print_file(self, path: str) -> None:
        order = ["passed", "failed", "error", "skipped", "xfailed", "xpassed"]
        counts = self.outcomes.get(path, Counter())
        words = ", ".join(f"{counts[k]} {k}" for k in order if counts[k])
        bad = counts["failed"] or counts["error"]
        width = len(str(self.total))
        pct = 100 * self.done // self.total if self.total else 100
        line = (
            f"[{self.done:>{width}}/{self.total} {pct:>3}%] {path}  {words or 'nothing'}"
            f"  ({self.seconds[path]:.1f} s)"
        )
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        reporter.ensure_newline()
        reporter.write_line(line, red=bool(bad), green=not bad)


def pytest_configure(config: pytest.Config) -> None:
    """Register on the controller only (not in xdist workers), unless ``-v`` is given."""
    if hasattr(config, "workerinput") or config.get_verbosity() > 0:
        return
    config.pluginmanager.register(FileProgress(config), "file-progress")
