"""The simulator as its own process (its own core), configured by a generated TOML file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from kaphila_flow.simulator import Callee

ROOT = Path(__file__).resolve().parent.parent


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
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kaphila_flow",
            "simulator",
            "--port",
            str(port),
            "--config",
            str(config),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base_url}/health", timeout=1)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    why = process.stderr.read() if process.stderr else ""
                    raise RuntimeError(f"the simulator did not start: {why}") from None
                time.sleep(0.05)
        yield SimulatorProcess(base_url, key)
    finally:
        process.terminate()
        process.wait(timeout=10)
