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
    rule._rule.stationary_at = 100  # what the R̂ rule records when it finds it
    rule.checks.append({"step": 200, "max_relative_mcse": 0.25})
    assert display._status() == "stationary, MCSE/sd 0.25"
    rule.converged = True
    assert display._status() == "converged"


def converging_run(display, clock, rule, last_seen):
    """Steps 1..last_seen seen by the display; the rule then stops the fit at the next."""
    run(display, clock, last_seen, 0.001)
    rule.converged, rule.stop_reason, rule.converged_at = True, "converged", last_seen + 1
    display.close("converged")


@pytest.mark.parametrize("terminal", [False, True])
def test_nothing_is_cut_at_80_columns(clock, terminal):
    console = Console(file=io.StringIO(), force_terminal=terminal, width=80)
    rule = Convergence("mcse", check_every=100, min_steps=100_000)  # a long status text
    display = ProgressDisplay(50_000, rule=rule, console=console, log_interval=0.5)
    converging_run(display, clock, rule, 1999)
    out = console.file.getvalue()
    assert "…" not in out and "..." not in out
    assert "first check at step 100000" in out  # the longest status, whole
    final = out.split("\r")[-1]
    assert "2000/50000" in final and "converged" in final


def test_log_lines_are_never_wrapped_or_cut(clock):
    console = Console(file=io.StringIO(), force_terminal=False, width=40)
    display = ProgressDisplay(50_000, console=console, log_interval=0.5)
    run(display, clock, 1500, 0.001)
    display.close("interrupted")
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("step 501/50000  loss 251  ")
    assert lines[1].startswith("step 100") and lines[2].startswith("Fitting 1500/50000  ")
    assert all(len(line) > 40 for line in lines)


@pytest.mark.parametrize("terminal", [False, True])
def test_the_step_the_rule_stopped_at_is_shown(clock, terminal):
    console = Console(file=io.StringIO(), force_terminal=terminal, width=120)
    rule = Convergence("mcse", check_every=100, min_steps=100)
    display = ProgressDisplay(50_000, rule=rule, console=console)
    converging_run(display, clock, rule, 1999)  # the rule stops the fit at step 2000
    final = console.file.getvalue().split("\r")[-1]
    assert "2000/50000" in final and "1999" not in final


def test_an_explicit_stop_step_wins(clock):
    console = Console(file=io.StringIO(), force_terminal=False, width=120)
    display = ProgressDisplay(1000, console=console)
    run(display, clock, 499, 0.001)
    display.close("rising-loss", step=500)
    assert "Fitting 500/1000" in console.file.getvalue()


@pytest.mark.parametrize("terminal", [False, True])
def test_time_left_is_a_bound_while_running_and_gone_once_stopped(clock, terminal):
    console = Console(file=io.StringIO(), force_terminal=terminal, width=200)
    rule = Convergence("mcse", check_every=100, min_steps=100)
    display = ProgressDisplay(50_000, rule=rule, console=console, log_interval=0.5)
    run(display, clock, 1000, 0.001)  # 1 s for 1,000 steps: 49 s to step 50,000
    running = console.file.getvalue()
    assert "(≤0:49 left)" in running
    rule.converged, rule.stop_reason, rule.converged_at = True, "converged", 1000
    display.close("converged")
    final = console.file.getvalue()[len(running) :].split("\r")[-1]
    assert "converged" in final and "left" not in final and "0:01" in final


def test_time_left_without_a_rule_is_plain(clock):
    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    display = ProgressDisplay(2000, console=console)
    run(display, clock, 1000, 0.001)
    assert "(0:01 left)" in console.file.getvalue()


def test_a_fit_stopped_by_its_rule_shows_its_last_step(capfd):
    result = fit(model=regression_model(), random_seed=1)
    out, _ = capfd.readouterr()
    assert result.stop_reason == "converged" and result.n_steps < 50_000
    (line,) = out.strip().splitlines()
    assert line.startswith(f"Fitting {result.n_steps}/50000") and "converged" in line
    assert "left" not in line


def test_plain_pm_fit_says_the_rule_stopped_it(caplog):
    import logging

    import pymc as pm

    from pymc_adadelta import adadelta

    logger = logging.getLogger("pymc")  # PyMC's own handler; caplog's sits on the root
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="pymc"), pm.Model():
            pm.Normal("x", 0.0, 1.0, shape=3)
            rule = Convergence(check_every=500, min_steps=1000)
            pm.fit(50_000, obj_optimizer=adadelta(), callbacks=[rule], progressbar=False,
                   random_seed=1)  # fmt: skip
    finally:
        logger.removeHandler(caplog.handler)
    messages = [r.getMessage() for r in caplog.records]
    assert rule.converged
    stop = f'Converged at step {rule.converged_at:,d}: Convergence("rhat") stopped the fit as '
    first = next(i for i, m in enumerate(messages) if m.startswith(stop + "intended"))
    assert any(m.startswith("Interrupted at") for m in messages[first + 1 :])
