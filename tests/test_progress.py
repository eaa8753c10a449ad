import io

import numpy as np
import pytest
from rich.console import Console

from pymc_adadelta import Convergence, fit
from pymc_adadelta.inference.progress import ProgressDisplay

from .conftest import regression_model


def test_fit_in_a_captured_non_tty_run_prints_one_final_line(capfd):
    result = fit(300, model=regression_model(), convergence=None, random_seed=1)
    out, err = capfd.readouterr()
    assert result.stop_reason == "max_steps"
    lines = out.strip().splitlines()
    assert len(lines) == 1, out  # the bar is drawn once, at the end, not once per redraw
    assert lines[0].startswith("Fitting") and "300/300" in lines[0]
    assert "steps/s" in lines[0] and "max_steps" in lines[0]
    assert "\x1b[" not in out and "\r" not in out  # no terminal control codes in a log
    assert err == ""


def test_progressbar_false_prints_nothing(capfd):
    fit(300, model=regression_model(), convergence=None, random_seed=1, progressbar=False)
    assert capfd.readouterr() == ("", "")


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr("pymc_adadelta.inference.progress.perf_counter", fake)
    return fake


def run(display, clock, steps, seconds_per_step):
    losses = np.arange(1.0, steps + 1.0)
    for i in range(1, steps + 1):
        clock.now += seconds_per_step
        display(None, losses[:i], i)


def test_redraws_at_most_every_interval(clock, monkeypatch):
    console = Console(file=io.StringIO(), force_terminal=True, width=150)
    display = ProgressDisplay(1000, interval=0.1, console=console)
    draws = []
    monkeypatch.setattr(display, "_draw", lambda now, status=None: draws.append(now))
    run(display, clock, 1000, 0.001)  # one second of steps
    assert 9 <= len(draws) <= 11


def test_terminal_display_shows_step_loss_speed_and_status(clock):
    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    rule = Convergence(check_every=100, min_steps=300)
    display = ProgressDisplay(1000, rule=rule, console=console)
    run(display, clock, 500, 0.002)
    assert "first check at step 300" in console.file.getvalue()
    display.close("interrupted")
    last = console.file.getvalue().split("\r")[-1]
    assert "500/1000" in last and "interrupted" in last
    assert "loss 250.5 " in last  # mean of the losses of steps 1..500
    assert " 500 steps/s" in last
    assert last.rstrip().endswith("\x1b[?25h")  # cursor shown again


def test_non_interactive_output_logs_a_plain_line_every_log_interval(clock):
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    display = ProgressDisplay(1000, console=console, log_interval=0.25)
    run(display, clock, 1000, 0.001)
    display.close("max_steps")
    lines = console.file.getvalue().strip().splitlines()
    assert lines[0].startswith("step 30") and "1,000 steps/s" in lines[0]
    assert len(lines) == 4 and lines[-1].startswith("Fitting")  # 3 log lines and the bar
    assert "1000/1000" in lines[-1] and "max_steps" in lines[-1]


def test_status_names_the_last_check_of_the_rule():
    rule = Convergence(check_every=100, min_steps=100)
    display = ProgressDisplay(10, rule=rule)
    rule.checks.append({"step": 100, "best_window_rhat": 1.234})
    assert display._status() == "R̂ 1.23"
    rule.stationary_at = 100
    rule.checks.append({"step": 200, "max_relative_mcse": 0.25})
    assert display._status() == "stationary, MCSE/sd 0.25"
    rule.converged = True
    assert display._status() == "converged"
