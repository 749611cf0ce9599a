"""`make bench`: every benchmark, one table with ratios, results/latest.md and a plot."""

from __future__ import annotations

import gc
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from . import end_to_end, explore, ingest, scale, test_speed
from ._report import Row, table

RESULTS = Path(__file__).resolve().parent / "results"


def plot(curves: dict[str, dict[int, dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (memory, resume) = plt.subplots(1, 2, figsize=(10, 4))
    for backend, curve in curves.items():
        sizes = sorted(curve)
        memory.plot(sizes, [curve[n]["bytes"] / 1024 for n in sizes], marker="o", label=backend)
        resume.plot(sizes, [curve[n]["resume_us"] for n in sizes], marker="o", label=backend)
    memory.axhline(4, color="grey", linestyle="--", label="goal (4 KB)")
    for axis, title, unit in (
        (memory, "memory per parked call", "KB"),
        (resume, "resume cost per call", "µs"),
    ):
        axis.set_xscale("log")
        axis.set_xlabel("concurrent calls parked in a gather")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.set_ylim(bottom=0)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    quick = "--quick" in sys.argv
    started = time.monotonic()
    rows: list[Row] = []
    # In-process benchmarks first, each after a collection: the 100k-call scale run
    # leaves a large heap that would slow what runs after it in the same process.
    print("test speed ...", flush=True)
    rows += test_speed.run(quick)
    gc.collect()
    print("explore ...", flush=True)
    rows += explore.run(quick)
    gc.collect()
    print("scale ...", flush=True)
    scale_rows, curves = scale.run(quick)
    rows += scale_rows
    gc.collect()
    print("webhook ingest ...", flush=True)
    rows += ingest.run(quick)
    print("end to end ...", flush=True)
    rows += end_to_end.run(quick)
    report = table(rows)
    RESULTS.mkdir(exist_ok=True)
    plot(curves, RESULTS / "scaling.png")
    header = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"Python {platform.python_version()}, {time.monotonic() - started:.0f} s in all.\n\n"
    )
    (RESULTS / "latest.md").write_text(header + report + "\n\n![scaling](scaling.png)\n")
    print()
    print(report)
    print(f"\nwritten: {RESULTS / 'latest.md'} and {RESULTS / 'scaling.png'}")


if __name__ == "__main__":
    main()
