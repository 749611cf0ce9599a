"""`make load`: calls at once through the simulator, every key to its own call.

Each callee presses its own four keys (call 17 presses ``0017``); a call whose flow
gets anything else, or that does not finish, is a failure, counted and listed, and
any failure makes the exit status non-zero. Meanwhile a probe GETs the receiver's
health path and POSTs a webhook for no call every ~10 ms: its latency is how
promptly the receiver answers while dials queue behind the in-flight limits. The
hand-written webhook server runs the same load for comparison.

    python -m benchmarks.load [--quick] [--calls 300,1000,3000]
"""

from __future__ import annotations

import sys

from ._menu import Plan
from ._report import Row, percentile, table
from ._run import Run
from .end_to_end import paired

SIZES = (300, 1000, 3000)
QUICK = (300,)
SMOKE = (4,)
DIGITS = 4


def measure(sizes: tuple[int, ...]) -> dict[int, dict[str, list[Run]]]:
    return {size: paired(Plan(size, DIGITS), 1, probe=True) for size in sizes}


def failures(results: dict[int, dict[str, list[Run]]]) -> list[str]:
    found = []
    for size, runs in results.items():
        for kind, side in runs.items():
            for run in side:
                if run.failed:
                    found.append(
                        f"load, {kind}, {size} calls: {run.failed} calls lost or misattributed "
                        "keys or did not finish, e.g. " + "; ".join(run.failures[:3])
                    )
    return found


def rows(results: dict[int, dict[str, list[Run]]]) -> list[Row]:
    out = []
    for size, runs in results.items():
        ours, base = runs["runtime"][0], runs["handwritten"][0]
        name = f"load, {size:,} calls at once, own 4 keys each"
        out.append(
            Row(name, "calls with wrong, lost or no keys", ours.failed, base.failed, "", "0")
        )
        out.append(Row(name, "completed calls/s", ours.rate, base.rate, "/s", "ratio >= 1.0"))
        for q in (50, 99):
            out.append(
                Row(
                    name,
                    f"receiver latency p{q} (health GET, webhook POST every ~10 ms; "
                    f"{len(ours.probes)} and {len(base.probes)} probes)",
                    percentile(ours.probes, q),
                    percentile(base.probes, q),
                    "ms",
                    "p99 < 100 ms" if q == 99 else "",
                )
            )
    return out


def run(sizes: tuple[int, ...] = SIZES) -> tuple[list[Row], dict[int, dict[str, list[Run]]]]:
    results = measure(sizes)
    return rows(results), results


def main() -> None:
    sizes = QUICK if "--quick" in sys.argv else SIZES
    if "--calls" in sys.argv:
        sizes = tuple(int(n) for n in sys.argv[sys.argv.index("--calls") + 1].split(","))
    found, results = run(sizes)
    print()
    print(table(found))
    problems = failures(results)
    for problem in problems:
        print("FAILED:", problem, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
