"""One table of figures and ratios, printed and written as Markdown."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    benchmark: str
    figure: str
    ours: float
    baseline: float | None
    unit: str
    goal: str
    #: The spread over rounds (min, max), where there are rounds.
    ours_range: tuple[float, float] | None = None
    baseline_range: tuple[float, float] | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.ours / self.baseline  # type: ignore[operator]


_GOAL = re.compile(r"ratio\s*(<=|>=|<|>)\s*([0-9.]+)")


def goal_met(row: Row) -> bool | None:
    """Whether the row's ratio meets the bound its goal states (``ratio <= 1.05``,
    ``ratio >= 0.7``, ...): ``None`` where there is no ratio or no such bound."""
    found = _GOAL.search(row.goal)
    ratio = row.ratio
    if found is None or ratio is None:
        return None
    bound = float(found.group(2))
    return {
        "<=": ratio <= bound,
        ">=": ratio >= bound,
        "<": ratio < bound,
        ">": ratio > bound,
    }[found.group(1)]


def goal_bound(row: Row) -> float | None:
    """The bound the row's goal puts on its ratio, if it states one."""
    found = _GOAL.search(row.goal)
    return float(found.group(2)) if found else None


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> tuple[float, float]:
    return (min(values), max(values))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _figure(value: float, unit: str, bounds: tuple[float, float] | None) -> str:
    if not unit and float(value).is_integer():  # a count
        text = f"{int(value):,}"
        if bounds is not None and bounds[0] != bounds[1]:
            text += f" ({int(bounds[0]):,}-{int(bounds[1]):,})"
        return text
    text = f"{value:,.2f} {unit}" if abs(value) < 10 else f"{value:,.1f} {unit}"
    if bounds is not None and bounds[0] != bounds[1]:
        low, high = bounds
        form = "{:,.2f}" if abs(high) < 10 else "{:,.1f}"
        text += f" ({form.format(low)}-{form.format(high)})"
    return text


def table(rows: list[Row]) -> str:
    lines = [
        "| benchmark | figure | kaphila_flow | baseline | ratio | goal |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        ours = _figure(row.ours, row.unit, row.ours_range)
        base = "" if row.baseline is None else _figure(row.baseline, row.unit, row.baseline_range)
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        lines.append(f"| {row.benchmark} | {row.figure} | {ours} | {base} | {ratio} | {row.goal} |")
    return "\n".join(lines)
