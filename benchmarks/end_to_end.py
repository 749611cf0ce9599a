"""End to end: the menu flow through kaphila_flow against a hand-written webhook state
machine, both against the simulator running as its own process with delays at zero."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from kaphila_flow.simulator import simulator_process

from ._report import Row, median, percentile

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """
speed = "instant"
[accounts.ak_bench]
credits = 100000000
rate_limit = 100000000
[callees.default]
answer = "human"
answer_after = 0.0
keys = [{ press = "1", after = 0.0 }]
"""


def _side(kind: str, simulator: str, calls: int) -> dict[str, float | list[float]]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._e2e_side", kind, simulator, str(calls)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result: dict[str, float | list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool = False) -> list[Row]:
    calls = 100 if quick else 300
    rounds = 2 if quick else 3
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "bench.toml"
        config.write_text(CONFIG)
        with simulator_process(config) as url:
            _side("runtime", url, 20)  # warm-up, both sides
            _side("handwritten", url, 20)
            results: dict[str, list[dict[str, float | list[float]]]] = {
                "runtime": [],
                "handwritten": [],
            }
            for _ in range(rounds):
                for kind in results:
                    results[kind].append(_side(kind, url, calls))
    rows = []
    rate = {k: median([float(r["rate"]) for r in v]) for k, v in results.items()}  # type: ignore[arg-type]
    steps = {k: [s for r in v for s in r["steps"]] for k, v in results.items()}  # type: ignore[misc]
    rows.append(
        Row(
            "end to end",
            f"completed calls/s ({calls} concurrent)",
            rate["runtime"],
            rate["handwritten"],
            "/s",
            "ratio >= 1.0",
        )
    )
    for q in (50, 99):
        rows.append(
            Row(
                "end to end",
                f"step latency p{q}",
                percentile(steps["runtime"], q),
                percentile(steps["handwritten"], q),
                "ms",
                "p99 no worse",
            )
        )
    return rows
