"""The benchmark harness end to end in its smallest form, so `make bench` cannot rot.

Real processes (a fresh simulator per run, each side on its own), a handful of calls,
one round: the table, the report file and the verdict on every call. Never timings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks._menu import Plan, Tally, keys
from benchmarks._plots import ratios
from benchmarks._report import Row, goal_bound, goal_met

pytestmark = pytest.mark.integration


def test_the_smoke_run_reports_every_figure_and_no_failed_call(tmp_path: Path) -> None:
    status = main(["--smoke", "--out", str(tmp_path)])

    report = (tmp_path / "latest.md").read_text()
    assert status == 0, report
    assert "FAILED" not in report
    figures = re.findall(r"^\| ([^|]+) \| ([^|]+) \|", report, flags=re.MULTILINE)
    names = {f"{benchmark.strip()}: {figure.strip()}" for benchmark, figure in figures}
    for expected in (
        "end to end, 4 calls at once: completed calls/s (1 paired round)",
        "end to end, 4 calls at once: CPU per call",
        "end to end, 4 calls at once: failed calls",
        "load, 4 calls at once, own 4 keys each: calls with wrong, lost or no keys",
    ):
        assert expected in names, sorted(names)
    assert any(name.startswith("step latency, at saturation") for name in names)
    assert any("receiver latency p99" in name for name in names)
    assert any("simulator CPU per call" in name for name in names)
    failed_rows = [line for line in report.splitlines() if "| failed calls |" in line]
    assert failed_rows and all("| 0 | 0 |" in line for line in failed_rows)


def test_each_callee_has_its_own_keys_and_a_wrong_one_is_a_failure() -> None:
    plan = Plan(calls=3, digits=4)
    config = plan.simulator_config()
    assert [keys(n, 4) for n in range(3)] == ["0000", "0001", "0002"]
    assert config.count('press = "0001"') == 1

    tally = Tally(plan)
    tally.check(1, "0001")
    tally.check(2, "0001")  # another call's keys
    tally.failed(0, "not finished")
    assert tally.completed == 1
    assert tally.failures == [
        "call 2: wanted keys '0002', got '0001'",
        "call 0: not finished",
    ]


def test_a_ratio_is_judged_by_the_bound_its_goal_states() -> None:
    def row(ours: float, baseline: float | None, goal: str) -> Row:
        return Row("b", "f", ours, baseline, "ms", goal)

    assert goal_met(row(1.04, 1.0, "ratio <= 1.05")) is True
    assert goal_met(row(1.06, 1.0, "ratio <= 1.05")) is False
    assert goal_met(row(0.56, 1.0, ">= 5,000/s, ratio >= 0.7")) is False
    assert goal_met(row(0.7, 1.0, "ratio >= 0.7")) is True
    assert goal_met(row(0.25, 1.0, "ratio < 0.25")) is False
    assert goal_met(row(3.0, 1.0, "headroom: ratio >= 1")) is True
    assert goal_met(row(1.0, 1.0, "0 on both")) is None  # no bound on the ratio
    assert goal_met(row(1.0, None, "ratio <= 1.05")) is None  # no baseline, no ratio
    assert goal_bound(row(1.0, 1.0, "p99 < 100 ms")) is None
    assert goal_bound(row(1.0, 1.0, ">= 5,000/s, ratio >= 0.7")) == 0.7


def test_the_ratio_plot_draws_every_figure_with_a_baseline(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows = [
        Row("end to end", "CPU per call", 9.1, 10.5, "ms", "ratio <= 1.05"),
        Row("test speed", "tests per second", 2630.0, 4696.0, "/s", "ratio >= 0.7"),
        Row("explore", "paths per second", 532.0, None, "/s", ""),
    ]
    assert ratios(rows, tmp_path) == [tmp_path / "ratios.png"]
    assert (tmp_path / "ratios.png").read_bytes().startswith(b"\x89PNG")
    assert ratios(rows[2:], tmp_path / "none") == []  # no figure with a baseline


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_test_speeds_parts_run_the_menu_test_and_switch_tasks(backend: str) -> None:
    """The fake's speed goal is read against its parts: the provider model alone (which
    checks it took the menu test's seven webhooks each call) and a task switch, whose
    two tasks must hand over to each other without a lost wake-up."""
    from benchmarks import test_speed

    assert test_speed._model_calls(20) > 0
    assert test_speed._run(test_speed._task_switches, 200, backend) > 0
    assert test_speed._run(test_speed._timed_wakes, 200, backend) > 0
    assert test_speed._run(test_speed._fake_flows, 5, backend) > 0


def test_test_speed_budget_reads_the_rates_as_microseconds_per_test() -> None:
    from benchmarks.test_speed import budget

    spent = budget(
        {"fake": 2_000.0, "floor": 4_000.0, "model_us": 40.0, "wake_us": 10.0, "switch_us": 3.0}
    )
    assert spent["adds_us"] == pytest.approx(250.0)  # 500 us a test against 250
    assert spent["allowed_us"] == pytest.approx(250.0 / 0.7 - 250.0)
    assert spent["least_us"] == pytest.approx(40.0 + 2 * 10.0 + 5 * 3.0)
