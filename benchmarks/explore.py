"""Exploring every path of a flow: paths per second through FakeKaphila, per backend.

Each path is one call replayed from scratch in virtual time; "calls" counts those and
the calls that tried a key which behaved like another. The goal: every path of
examples/ivr_menu.py in under a second.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import ModuleType

from kaphila_flow.testing import explore

from ._report import Row, median

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _once(module: ModuleType, backend: str) -> tuple[float, float, int]:
    """Paths per second, milliseconds for all, and how many paths."""
    started = time.perf_counter()
    exploration = explore(module.flow, backend=backend, **getattr(module, "DIAL_OPTIONS", {}))
    seconds = time.perf_counter() - started
    assert exploration.exhaustive and not exploration.problems
    return len(exploration.paths) / seconds, seconds * 1000, len(exploration.paths)


def run(quick: bool = False) -> list[Row]:
    rounds = 3 if quick else 7
    ivr_menu, support_line = _example("ivr_menu"), _example("support_line")
    _once(ivr_menu, "asyncio")  # warm-up
    rows = []
    for backend in ("asyncio", "trio"):
        runs = [_once(ivr_menu, backend) for _ in range(rounds)]
        rows.append(
            Row(
                f"explore ({backend})",
                "ivr_menu: paths per second",
                median([r[0] for r in runs]),
                None,
                "/s",
                "",
            )
        )
        rows.append(
            Row(
                f"explore ({backend})",
                f"ivr_menu: all {runs[0][2]} paths",
                median([r[1] for r in runs]),
                None,
                "ms",
                "< 1,000 ms",
            )
        )
        big = [_once(support_line, backend) for _ in range(1 if quick else 3)]
        rows.append(
            Row(
                f"explore ({backend})",
                f"support_line: paths per second ({big[0][2]} paths)",
                median([r[0] for r in big]),
                None,
                "/s",
                "",
            )
        )
    return rows


if __name__ == "__main__":
    from ._report import table

    print(table(run(quick=True)))
