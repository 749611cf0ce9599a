"""One measured run: a fresh simulator process, one side's process, an optional probe.

Every process is its own, so each one's CPU time is its own: the side reports its
CPU seconds for the run (``getrusage``), the simulator its own (``GET /_bench`` before
and after), and the step latencies it observed. The probe, from this process, times a
``GET`` of the side's health path and a harmless webhook ``POST`` every ~10 ms while
the calls run: how promptly the receiver answers while dials queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._menu import Plan
from ._sides import deadline_for

ROOT = Path(__file__).resolve().parent.parent
PROBE_EVERY = 0.010


class BenchmarkError(RuntimeError):
    """A run that went wrong: a process died, or calls failed their menu."""


@dataclass
class Run:
    kind: str
    plan: Plan
    completed: int
    failed: int
    failures: list[str]
    seconds: float
    cpu: float  # the side's CPU seconds for the run
    simulator_cpu: float
    steps: list[float]  # ms, observed in the simulator
    probes: list[float] = field(default_factory=list)  # ms, receiver answers under load

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_call(self) -> float:
        """The side's CPU per call, ms."""
        return self.cpu / self.plan.calls * 1e3

    @property
    def simulator_cpu_per_call(self) -> float:
        return self.simulator_cpu / self.plan.calls * 1e3

    @property
    def simulator_share(self) -> float:
        """The simulator's CPU over the run's wall time: 1.0 is a whole core."""
        return self.simulator_cpu / self.seconds if self.seconds else 0.0


async def _http(host: str, port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return status, await reader.readexactly(length)
    finally:
        writer.close()


def _split(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").partition(":")
    return host, int(port.split("/")[0])


async def _stats(url: str) -> dict[str, Any]:
    host, port = _split(url)
    request = f"GET /_bench HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    status, body = await _http(host, port, request)
    if status != 200:
        raise BenchmarkError(f"the simulator's /_bench answered {status}")
    result: dict[str, Any] = json.loads(body)
    return result


async def _probe(base: str, health: str, out: list[float]) -> None:
    """Every ~10 ms, alternately: GET the health path, POST a webhook for no call."""
    host, port = _split(base)
    webhook = json.dumps({"callId": "probe", "event": "dtmf.received", "digit": "1"}).encode()
    hook_path = "/webhooks/probe.0" if health == "/healthz" else "/calls/99999"
    requests = [
        f"GET {health} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
        (
            f"POST {hook_path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(webhook)}\r\n\r\n"
        ).encode()
        + webhook,
    ]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        n = 0
        while True:
            started = time.perf_counter()
            writer.write(requests[n % 2])
            await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            took = time.perf_counter() - started
            out.append(took * 1e3)
            n += 1
            await asyncio.sleep(max(0.0, PROBE_EVERY - took))
    finally:
        writer.close()


async def _spawn(*args: str, stdin: bool = False) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE if stdin else None,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=1 << 24,
    )


async def _line(process: asyncio.subprocess.Process, what: str) -> dict[str, Any]:
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line:
        assert process.stderr is not None
        why = (await process.stderr.read()).decode(errors="replace").strip()
        raise BenchmarkError(f"{what} died: {why[-2000:]}")
    result: dict[str, Any] = json.loads(line)
    return result


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def run_once(
    kind: str, plan: Plan, *, probe: bool = False, profile: str | None = None
) -> Run:
    """``plan``'s calls on ``kind``'s side against a fresh simulator."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "simulator.toml"
        config.write_text(plan.simulator_config())
        extra = ["--profile", profile] if profile else []
        simulator = await _spawn("-m", "benchmarks._provider", str(config), *extra)
        side: asyncio.subprocess.Process | None = None
        try:
            url = (await _line(simulator, "the simulator"))["url"]
            side = await _spawn(
                "-m",
                "benchmarks._sides",
                kind,
                url,
                str(plan.calls),
                str(plan.digits),
                str(plan.pace),
                stdin=True,
            )
            ready = await _line(side, f"the {kind} side")
            before = await _stats(url)
            probes: list[float] = []
            prober = asyncio.ensure_future(_probe(ready["ready"], ready["probe"], probes))
            if not probe:
                prober.cancel()
            assert side.stdin is not None
            side.stdin.write(b"go\n")
            await side.stdin.drain()
            try:
                result = await asyncio.wait_for(
                    _line(side, f"the {kind} side"), deadline_for(plan) + 120
                )
            except TimeoutError:
                raise BenchmarkError(f"the {kind} side, {plan.calls} calls, hung") from None
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await prober
            try:
                after = await _stats(url)
            except OSError:
                assert simulator.stderr is not None
                why = (await simulator.stderr.read()).decode(errors="replace").strip()
                raise BenchmarkError(f"the simulator died: {why[-2000:]}") from None
        finally:
            if side is not None:
                await _stop(side)
            await _stop(simulator)
    return Run(
        kind=kind,
        plan=plan,
        completed=result["completed"],
        failed=result["failed"],
        failures=result["failures"],
        seconds=result["seconds"],
        cpu=result["cpu"],
        simulator_cpu=after["cpu"] - before["cpu"],
        steps=after["steps"],
        probes=probes,
    )


def main() -> None:
    """``python -m benchmarks._run KIND CALLS [DIGITS] [--profile OUT]``: one run, shown."""
    kind, calls = sys.argv[1], int(sys.argv[2])
    digits = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3].isdigit() else 1
    profile = sys.argv[sys.argv.index("--profile") + 1] if "--profile" in sys.argv else None
    run = asyncio.run(run_once(kind, Plan(calls, digits), probe=True, profile=profile))
    print(
        f"{kind}: {run.completed}/{calls} ok, {run.failed} failed, {run.seconds:.2f} s, "
        f"{run.rate:.1f} calls/s, cpu {run.cpu_per_call:.2f} ms/call, simulator "
        f"{run.simulator_cpu_per_call:.2f} ms/call ({run.simulator_share:.0%} of a core), "
        f"steps {len(run.steps)}, probes {len(run.probes)}"
    )
    for failure in run.failures[:5]:
        print("  ", failure)


if __name__ == "__main__":
    main()
