"""One table of figures and ratios, printed and written as Markdown."""

from __future__ import annotations

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

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.ours / self.baseline  # type: ignore[operator]


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def table(rows: list[Row]) -> str:
    lines = [
        "| benchmark | figure | kaphila_flow | baseline | ratio | goal |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        base = "" if row.baseline is None else f"{row.baseline:,.1f} {row.unit}"
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        ours = f"{row.ours:,.1f} {row.unit}"
        lines.append(f"| {row.benchmark} | {row.figure} | {ours} | {base} | {ratio} | {row.goal} |")
    return "\n".join(lines)
