"""A plot per figure family, PNGs beside results/latest.md (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._report import Row, goal_bound, goal_met, median, percentile
from ._run import Run

SIDES = (("runtime", "kaphila_flow runtime"), ("handwritten", "hand-written Quart + httpx"))


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _errorbars(runs: dict[int, dict[str, list[Run]]], kind: str, value: str) -> tuple[Any, ...]:
    sizes = sorted(runs)
    values = [[float(getattr(r, value)) for r in runs[n][kind]] for n in sizes]
    mids = [median(v) for v in values]
    low = [m - min(v) for m, v in zip(mids, values, strict=True)]
    high = [max(v) - m for m, v in zip(mids, values, strict=True)]
    return sizes, mids, [low, high]


def _log_axes(axes: Any, xlabel: str) -> None:
    """Each ``(axis, title, unit)``: a log x axis of calls, a y axis from zero."""
    for axis, title, unit in axes:
        axis.set_xscale("log")
        axis.set_xlabel(xlabel)
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.set_ylim(bottom=0)
        axis.legend()


def _save(plt: Any, figure: Any, path: Path) -> list[Path]:
    figure.tight_layout()
    figure.savefig(path, dpi=90, bbox_inches="tight")  # long labels stay whole
    plt.close(figure)
    return [path]


def end_to_end(runs: dict[int, dict[str, list[Run]]], folder: Path) -> list[Path]:
    """Calls/s and CPU per call against calls at once, median and min-max per side."""
    plt = _pyplot()
    figure, (rate, cpu) = plt.subplots(1, 2, figsize=(11, 4))
    for kind, label in SIDES:
        sizes, mids, bars = _errorbars(runs, kind, "rate")
        rate.errorbar(sizes, mids, yerr=bars, marker="o", capsize=4, label=label)
        sizes, mids, bars = _errorbars(runs, kind, "cpu_per_call")
        cpu.errorbar(sizes, mids, yerr=bars, marker="o", capsize=4, label=label)
    sizes, mids, bars = _errorbars(runs, "runtime", "simulator_cpu_per_call")
    cpu.errorbar(sizes, mids, yerr=bars, marker="s", capsize=4, linestyle="--", label="simulator")
    _log_axes(
        (
            (rate, "completed calls per second", "calls/s"),
            (cpu, "CPU per call (each process its own)", "ms"),
        ),
        "calls placed at once",
    )
    return _save(plt, figure, folder / "end_to_end.png")


def steps(observed: list[tuple[str, dict[str, list[Run]]]], folder: Path) -> list[Path]:
    """Step latency p50 and p99 per side, below and at saturation (pooled steps)."""
    if not observed:
        return []
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(observed), figsize=(5.5 * len(observed), 4), squeeze=False)
    for axis, (label, runs) in zip(axes[0], observed, strict=True):
        width = 0.38
        for offset, (kind, name) in zip((-width / 2, width / 2), SIDES, strict=True):
            pooled = [s for run in runs[kind] for s in run.steps]
            values = [percentile(pooled, 50), percentile(pooled, 99)]
            axis.bar([i + offset for i in range(2)], values, width, label=name)
        axis.set_xticks([0, 1], ["p50", "p99"])
        axis.set_ylabel("ms, webhook out to next /voice in")
        axis.set_title(f"step latency, {label}")
        axis.legend()
    return _save(plt, figure, folder / "step_latency.png")


def load(results: dict[int, dict[str, list[Run]]], folder: Path) -> list[Path]:
    """Receiver latency under load (p50, p99) against calls at once."""
    if not results:
        return []
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    sizes = sorted(results)
    for kind, label in SIDES:
        for q, style in ((50, ":"), (99, "-")):
            values = [percentile(results[n][kind][0].probes, q) for n in sizes]
            axis.plot(sizes, values, marker="o", linestyle=style, label=f"{label}, p{q}")
    axis.axhline(100, color="grey", linestyle="--", label="goal: p99 < 100 ms")
    axis.set_xscale("log")
    axis.set_xlabel("calls placed at once (each its own keys)")
    axis.set_ylabel("ms")
    axis.set_title("receiver latency while calls run")
    axis.set_ylim(bottom=0)
    axis.legend(fontsize="small")
    return _save(plt, figure, folder / "load_receiver.png")


def scaling(curves: dict[str, dict[int, dict[str, float]]], folder: Path) -> list[Path]:
    """Memory and resume cost per parked call (the scale benchmark's curves)."""
    if not curves:
        return []
    plt = _pyplot()
    figure, (memory, resume) = plt.subplots(1, 2, figsize=(10, 4))
    for backend, curve in curves.items():
        sizes = sorted(curve)
        color = None
        if all("bytes" in curve[n] for n in sizes):
            (line,) = memory.plot(
                sizes, [curve[n]["bytes"] / 1024 for n in sizes], marker="o", label=backend
            )
            color = line.get_color()
        if all("floor_bytes" in curve[n] for n in sizes):
            memory.plot(
                sizes,
                [curve[n]["floor_bytes"] / 1024 for n in sizes],
                linestyle="--",
                color=color,
                label=f"{backend}: bare task on an Event (floor)",
            )
        if all("resume_us" in curve[n] for n in sizes):
            resume.plot(sizes, [curve[n]["resume_us"] for n in sizes], marker="o", label=backend)
    _log_axes(
        (
            (memory, "memory per parked call (tracemalloc)", "KB"),
            (resume, "resume cost per call", "µs"),
        ),
        "concurrent calls parked in a gather",
    )
    return _save(plt, figure, folder / "scaling.png")


def ratios(rows: list[Row], folder: Path) -> list[Path]:
    """Every figure measured against a baseline: its ratio (a dot, on a log scale) and
    the bound its goal sets (a tick); green where the goal holds, red where it does
    not, grey where the goal puts no bound on the ratio."""
    measured = [row for row in rows if row.ratio is not None]
    if not measured:
        return []
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(15, 0.3 * len(measured) + 1.4))
    places = list(range(len(measured)))[::-1]  # the table's order, top to bottom
    colours = {True: "tab:green", False: "tab:red", None: "tab:gray"}
    for place, row in zip(places, measured, strict=True):
        axis.plot([row.ratio], [place], "o", color=colours[goal_met(row)], markersize=7)
        bound = goal_bound(row)
        if bound is not None:
            axis.plot([bound], [place], "|", color="black", markersize=14, markeredgewidth=2)
    axis.set_yticks(places)
    axis.set_yticklabels([_label(row) for row in measured], fontsize=7)
    axis.set_xscale("log")
    axis.axvline(1.0, color="gray", linewidth=0.8, linestyle=":")
    axis.grid(axis="y", linewidth=0.3)
    axis.set_xlabel("kaphila_flow / baseline (black tick: the goal's bound)")
    axis.set_title("every figure against its baseline, measured in the same run")
    return _save(plt, figure, folder / "ratios.png")


def _label(row: Row, width: int = 96) -> str:
    """The row's name, its parenthetical dropped if too long, then cut to ``width``."""
    text = f"{row.benchmark}: {row.figure}"
    if len(text) > width:
        text = f"{row.benchmark}: {row.figure.split(' (')[0]}"
    return text if len(text) <= width else text[: width - 1] + "…"
