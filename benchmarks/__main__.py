"""`make bench`: every benchmark, one table with ratios, results/latest.md and plots.

    python -m benchmarks [--quick | --smoke] [--out FOLDER] [--skip test_speed,scale,...]

``--quick`` runs fewer sizes and rounds; ``--smoke`` runs only the end-to-end and load
harness with a handful of calls (what the test suite runs so it cannot rot). Calls
that fail their menu, and benchmarks that fail or hang, are listed at the end and make
the exit status non-zero.
"""

from __future__ import annotations

import pickle
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import _plots, end_to_end, load
from ._report import Row, table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _rows_and_curves(found: Any) -> tuple[list[Row], dict[str, Any]]:
    """A benchmark's rows, with or without curves for a plot beside them."""
    if isinstance(found, tuple):
        return list(found[0]), dict(found[1])
    return list(found), {}


#: The in-process benchmarks, each run in a process of its own under a time limit.
IN_PROCESS = (
    ("test speed", "test_speed"),
    ("explore", "explore"),
    ("scale", "scale"),
    ("webhook ingest", "ingest"),
)
LIMIT = {False: 600.0, True: 240.0}  # seconds for one, full and --quick


def _in_process(
    quick: bool, skip: set[str], rows: list[Row], curves: dict[str, Any], problems: list[str]
) -> None:
    for title, name in IN_PROCESS:
        if name in skip:
            print(f"{title}: skipped", flush=True)
            continue
        print(f"{title} ...", flush=True)
        command = [sys.executable, "-m", "benchmarks._one", name] + (["--quick"] if quick else [])
        try:
            done = subprocess.run(
                command, cwd=ROOT, capture_output=True, timeout=LIMIT[quick], check=False
            )
        except subprocess.TimeoutExpired:
            problems.append(f"{title}: did not finish within {LIMIT[quick]:.0f} s")
            continue
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            problems.append(f"{title}: failed ({why[0]})")
            continue
        try:
            found, more = _rows_and_curves(pickle.loads(done.stdout))
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            problems.append(f"{title}: its result could not be read ({exc})")
            continue
        rows += found
        curves.update(more)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quick, smoke = "--quick" in argv, "--smoke" in argv
    folder = Path(argv[argv.index("--out") + 1]) if "--out" in argv else RESULTS
    started = time.monotonic()
    rows: list[Row] = []
    curves: dict[str, Any] = {}
    problems: list[str] = []
    if not smoke:
        skip = set(argv[argv.index("--skip") + 1].split(",")) if "--skip" in argv else set()
        _in_process(quick, skip, rows, curves, problems)
    print("end to end ...", flush=True)
    settings = end_to_end.SMOKE if smoke else end_to_end.QUICK if quick else end_to_end.FULL
    results = end_to_end.measure(settings)
    rows += end_to_end.rows(results)
    print("load ...", flush=True)
    sizes = load.SMOKE if smoke else load.QUICK if quick else load.SIZES
    load_rows, load_results = load.run(sizes)
    rows += load_rows
    problems += results.failures + load.failures(load_results)

    folder.mkdir(parents=True, exist_ok=True)
    plots: list[Path] = []
    if _plots.available():
        drawings: list[tuple[str, Callable[[], list[Path]]]] = [
            ("end to end", lambda: _plots.end_to_end(results.runs, folder)),
            ("step latency", lambda: _plots.steps(end_to_end.observed(results), folder)),
            ("load", lambda: _plots.load(load_results, folder)),
            ("scaling", lambda: _plots.scaling(curves, folder)),
            ("ratios", lambda: _plots.ratios(rows, folder)),
        ]
        for name, draw in drawings:
            try:
                plots += draw()
            except Exception as exc:  # a plot never costs the table of a long run
                problems.append(f"the {name} plot failed: {exc!r}")
    else:
        print("no plots: matplotlib is not installed (make bench installs it)", flush=True)
    report = table(rows)
    mode = " (--smoke)" if smoke else " (--quick)" if quick else ""
    header = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"Python {platform.python_version()}, {time.monotonic() - started:.0f} s in all{mode}. "
        "Figures: median over rounds, (min-max) where there were several.\n\n"
    )
    images = "".join(f"\n![{path.stem}]({path.name})\n" for path in plots)
    failed = "".join(f"\n- FAILED: {problem}" for problem in problems)
    (folder / "latest.md").write_text(header + report + "\n" + failed + "\n" + images)
    print()
    print(report)
    for problem in problems:
        print("FAILED:", problem, file=sys.stderr)
    print(f"\nwritten: {folder / 'latest.md'} and {len(plots)} plots")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
