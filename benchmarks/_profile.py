"""Where a process's time goes, by package: ``python -m benchmarks._profile OUT [N]``.

Reads a cProfile dump (``--profile`` of ``benchmarks._run`` for the simulator,
``KAPHILA_BENCH_PROFILE`` for a side) and prints each package's share of the time spent
in its own functions (kaphila_flow by module), then the ``N`` costliest functions.
"""

from __future__ import annotations

import pstats
import sys
from collections import Counter


def package(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/")[0]
    if "kaphila_flow/" in filename:
        return "kaphila_flow/" + filename.split("kaphila_flow/")[1]
    if "benchmarks/" in filename:
        return "benchmarks (the harness)"
    if filename.startswith("~") or "/" not in filename:
        return "built-ins (sockets, json, ...)"
    return "stdlib: " + filename.rsplit("/", 1)[1]


def shares(path: str) -> list[tuple[str, float]]:
    stats = pstats.Stats(path)
    spent: Counter[str] = Counter()
    for (filename, _, _), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        spent[package(filename)] += own
    total = sum(spent.values()) or 1.0
    return [(name, seconds / total) for name, seconds in spent.most_common()]


def main() -> None:
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    for name, share in shares(path)[:top]:
        print(f"{share:6.1%}  {name}")
    print()
    pstats.Stats(path).sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    main()
