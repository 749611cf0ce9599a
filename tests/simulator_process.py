"""The simulator as its own process (its own core), configured by a generated TOML file."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from kaphila_flow.simulator import Callee
from kaphila_flow.simulator import simulator_process as run_simulator_process


def _toml(callees: Mapping[str, Callee], key: str, speed: float) -> str:
    lines = [f"speed = {speed}", f"[accounts.{key}]", "credits = 1000000", "rate_limit = 100000000"]
    for number, callee in callees.items():
        lines.append(f'[callees."{number}"]')
        lines.append(f'answer = "{callee.answer}"')
        lines.append(f"answer_after = {callee.answer_after}")
        steps = ", ".join(f'{{ press = "{s.keys}", after = {s.after} }}' for s in callee.keys)
        lines.append(f"keys = [{steps}]")
        if callee.hang_up_after is not None:
            lines.append(f"hang_up_after = {callee.hang_up_after}")
    return "\n".join(lines) + "\n"


class SimulatorProcess:
    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.key = key

    def calls(self) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{self.base_url}/calls", headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )
        calls: list[dict[str, Any]] = answer.json()["calls"]
        return calls


@contextmanager
def simulator_process(
    callees: Mapping[str, Callee], tmp: Path, *, key: str = "ak_campaign", speed: float = 20.0
) -> Iterator[SimulatorProcess]:
    config = tmp / "callees.toml"
    config.write_text(_toml(callees, key, speed))
    with run_simulator_process(config) as base_url:
        yield SimulatorProcess(base_url, key)
