"""End to end: the menu flow on kaphila_flow against a hand-written webhook server.

Both sides place every call at once, bounded by the same in-flight limits (20 dials,
100 requests), with the same HTTP client settings and the same five requests per
call, each against a fresh simulator process; paired rounds alternate which side
goes first. A call that misses its menu (a wrong key, not finished) is an error that
is counted and reported, never left out of the rate. Step latency is observed in the
simulator for both sides: once below saturation (per-step cost), once at saturation
(queueing).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ._menu import Plan
from ._report import Row, median, percentile, spread
from ._run import Run, run_once

SIDES = ("runtime", "handwritten")


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...] = (300, 1000, 3000)
    rounds: int = 3
    #: Sizes run in fewer rounds (a 3,000-call round takes long): size -> rounds.
    fewer: tuple[tuple[int, int], ...] = ((3000, 2),)
    below: int = 50  # calls one after another, well below saturation: per-step cost
    below_pace: float = 0.05  # seconds between two of them
    below_rounds: int = 3

    def rounds_for(self, size: int) -> int:
        return dict(self.fewer).get(size, self.rounds)


FULL = Settings()
QUICK = Settings(sizes=(100, 300), rounds=2, fewer=(), below=20, below_rounds=2)
SMOKE = Settings(sizes=(4,), rounds=1, fewer=(), below=0, below_rounds=0)


@dataclass
class Results:
    """Every run, by size and side; and every call that failed, for the report."""

    runs: dict[int, dict[str, list[Run]]] = field(default_factory=dict)
    below: dict[str, list[Run]] = field(default_factory=dict)
    #: The simulator alone, driven by a near-free client (``bare``), one run per size.
    alone: dict[int, Run] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, runs: dict[str, list[Run]]) -> None:
        for kind, found in runs.items():
            for run in found:
                if run.failed:
                    self.failures.append(
                        f"{kind}, {run.plan.calls} calls: {run.failed} failed, e.g. "
                        + "; ".join(run.failures[:3])
                    )


def paired(plan: Plan, rounds: int, *, probe: bool = False) -> dict[str, list[Run]]:
    """``rounds`` runs of each side on ``plan``, alternating which side goes first."""
    runs: dict[str, list[Run]] = {kind: [] for kind in SIDES}
    for round_ in range(rounds):
        order = SIDES if round_ % 2 == 0 else SIDES[::-1]
        for kind in order:
            print(f"  {kind}, {plan.calls} calls, round {round_ + 1} of {rounds}", flush=True)
            runs[kind].append(asyncio.run(run_once(kind, plan, probe=probe)))
    return runs


def measure(settings: Settings) -> Results:
    results = Results()
    for size in settings.sizes:
        results.runs[size] = paired(Plan(size), settings.rounds_for(size))
        results.add(results.runs[size])
        print(f"  the simulator alone, {size} calls", flush=True)
        results.alone[size] = asyncio.run(run_once("bare", Plan(size)))
        results.add({"simulator alone": [results.alone[size]]})
    if settings.below:
        results.below = paired(
            Plan(settings.below, pace=settings.below_pace), settings.below_rounds
        )
        results.add(results.below)
    return results


def _row(
    benchmark: str,
    figure: str,
    runs: dict[str, list[Run]],
    value: str,
    unit: str,
    goal: str,
) -> Row:
    ours = [float(getattr(run, value)) for run in runs["runtime"]]
    base = [float(getattr(run, value)) for run in runs["handwritten"]]
    return Row(
        benchmark, figure, median(ours), median(base), unit, goal, spread(ours), spread(base)
    )


def _steps(runs: list[Run], q: float) -> list[float]:
    return [percentile(run.steps, q) for run in runs if run.steps]


def observed(results: Results) -> list[tuple[str, dict[str, list[Run]]]]:
    """Where step latency is read: below saturation, and at the largest size."""
    found: list[tuple[str, dict[str, list[Run]]]] = []
    if results.below:
        plan = results.below["runtime"][0].plan
        label = f"below saturation, {plan.calls} calls one every {plan.pace * 1000:.0f} ms"
        found.append((label, results.below))
    if results.runs:
        top = max(results.runs)
        found.append((f"at saturation, {top:,} calls", results.runs[top]))
    return found


def rows(results: Results) -> list[Row]:
    out: list[Row] = []
    for size, runs in results.runs.items():
        rounds = len(runs["runtime"])
        name = f"end to end, {size:,} calls at once"
        note = f" ({rounds} paired round{'s' if rounds > 1 else ''})"
        out.append(_row(name, "completed calls/s" + note, runs, "rate", "/s", "ratio >= 1.0"))
        out.append(_row(name, "CPU per call", runs, "cpu_per_call", "ms", "ratio <= 1.05"))
        out.append(_row(name, "failed calls", runs, "failed", "", "0 on both"))
        simulator = [run.simulator_cpu_per_call for run in runs["runtime"]]
        runtime = [run.cpu_per_call for run in runs["runtime"]]
        busy = [run.simulator_share * 100 for run in runs["runtime"] + runs["handwritten"]]
        out.append(
            Row(
                name,
                f"simulator CPU per call vs runtime's (simulator busy "
                f"{min(busy):.0f}-{max(busy):.0f}% of a core)",
                median(simulator),
                median(runtime),
                "ms",
                "ratio < 0.25",
                spread(simulator),
                spread(runtime),
            )
        )
        alone = results.alone.get(size)
        if alone is not None:
            out.append(
                Row(
                    name,
                    f"the simulator alone (near-free client; busy "
                    f"{alone.simulator_share:.0%} of a core) vs the runtime: calls/s",
                    alone.rate,
                    median([run.rate for run in runs["runtime"]]),
                    "/s",
                    "headroom: ratio >= 1",
                )
            )
    for label, runs in observed(results):
        for q in (50, 99):
            ours, base = _steps(runs["runtime"], q), _steps(runs["handwritten"], q)
            if not ours or not base:
                continue
            out.append(
                Row(
                    f"step latency, {label}",
                    f"p{q}, webhook out to next /voice in (seen by the simulator)",
                    median(ours),
                    median(base),
                    "ms",
                    "ratio <= 1.0" if q == 50 else "p99 no worse",
                    spread(ours),
                    spread(base),
                )
            )
    return out


def run(quick: bool = False) -> tuple[list[Row], Results]:
    results = measure(QUICK if quick else FULL)
    return rows(results), results
