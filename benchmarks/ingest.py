"""Webhook ingest: kaphila_flow's receiver against a bare Quart handler, same hypercorn."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from ._report import Row, median, spread

ROOT = Path(__file__).resolve().parent.parent
CALLS = 200
CONNECTIONS = 16


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server(stack: ExitStack, kind: str) -> tuple[int, str]:
    port = _port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._servers", kind, str(port), str(CALLS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    stack.callback(process.kill)
    assert process.stdout is not None
    ready = process.stdout.readline()
    return port, ready


def _load(port: int, paths: str, seconds: float) -> float:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._load", str(port), str(seconds), str(CONNECTIONS)],
        cwd=ROOT,
        input=paths,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    return float(json.loads(done.stdout)["rate"])


def run(quick: bool = False) -> list[Row]:
    seconds = 1.5 if quick else 3.0
    rounds = 2 if quick else 3
    with ExitStack() as stack:
        ours = _server(stack, "runtime")
        bare = _server(stack, "bare")
        _load(ours[0], ours[1], 1.0)  # warm-up, both sides
        _load(bare[0], bare[1], 1.0)
        rates: dict[str, list[float]] = {"runtime": [], "bare": []}
        for _ in range(rounds):  # alternating, so both see the same machine
            rates["runtime"].append(_load(ours[0], ours[1], seconds))
            rates["bare"].append(_load(bare[0], bare[1], seconds))
    return [
        Row(
            "webhook ingest",
            f"events/s acknowledged ({CALLS} live calls, {CONNECTIONS} connections)",
            median(rates["runtime"]),
            median(rates["bare"]),
            "/s",
            "ratio >= 0.85",
            spread(rates["runtime"]),
            spread(rates["bare"]),
        )
    ]
