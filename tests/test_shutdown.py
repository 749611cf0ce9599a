"""Clean shutdown and restarts: no call is left live with no flow in charge."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kaphila_flow import Call, CallEnded, Runtime
from kaphila_flow._commands import Command, Hangup, HangupReply, PlaybackReply, Voice
from kaphila_flow._exceptions import CallNotFound
from kaphila_flow._store import SqliteCallStore, StoredCall
from kaphila_flow.simulator import Callee, Simulator, SimulatorThread
from kaphila_flow.testing import FakeKaphila

ROOT = Path(__file__).resolve().parent.parent


async def waits_for_keys(call: Call) -> str:
    try:
        return await call.gather("Enter your code.", num_digits=6, timeout=600)
    except CallEnded as ended:
        return f"cut: {ended.reason}"


async def quick(call: Call) -> str:
    await call.say("Hi.")
    return "done"


@pytest.mark.anyio
async def test_shutdown_lets_flows_finish_then_hangs_up_the_rest() -> None:
    async with FakeKaphila() as kaphila:
        slow = await kaphila.call(waits_for_keys, number="16089270862")
        await slow.hears()
        fast = await kaphila.call(quick, number="16089270863")
        await fast.hears()

        # The fast flow's half-second of speech ends inside the grace period (virtual
        # time); the slow one would wait ten minutes for keys.
        await kaphila.runtime.shutdown(grace=2.0)
        slow_result = await slow.result()
        fast_result = await fast.result()
        with pytest.raises(RuntimeError, match="shutting down"):
            await kaphila.runtime.start("16089270864", quick)
    assert fast_result.status == "completed"
    assert slow_result.status == "failed"
    assert slow_result.value == "cut: runtime shut down"  # the flow saw CallEnded
    assert (
        isinstance(slow_result.error, CallEnded) and slow_result.error.reason == "runtime shut down"
    )
    assert isinstance(kaphila.commands_for(slow_result.call_id or "")[-1], Hangup)
    assert not kaphila.models[slow_result.call_id or ""].live


class Recorder:
    def __init__(self, gone: set[str]) -> None:
        self.sent: list[Command[Any]] = []
        self.gone = gone

    async def send(self, command: Command[Any]) -> Any:
        self.sent.append(command)
        if getattr(command, "call_id", None) in self.gone:
            raise CallNotFound("Call not found or already ended")
        return (
            PlaybackReply("ok", "p", "bridge") if isinstance(command, Voice) else HangupReply("ok")
        )

    async def aclose(self) -> None:
        return None


@pytest.mark.anyio
async def test_a_restart_hangs_up_what_the_last_run_left(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite3"
    leftover = SqliteCallStore(path)
    leftover.add(StoredCall("1.1", "16089270862", 1000.0))
    leftover.add(StoredCall("2.2", "16089270863", 1001.0))
    leftover.close()
    transport = Recorder(gone={"2.2"})
    async with Runtime(
        transport, store=path, apology="Sorry, we have to end this call."
    ) as runtime:
        recovered = {r.call_id: r for r in runtime.recovered}
    assert [type(c).__name__ for c in transport.sent if c.call_id == "1.1"] == ["Voice", "Hangup"]  # type: ignore[attr-defined]
    assert recovered["1.1"].status == "failed" and "hung up on restart" in str(
        recovered["1.1"].error
    )
    assert "already over" in str(recovered["2.2"].error)
    assert SqliteCallStore(path).leftovers() == []


@pytest.mark.anyio
async def test_the_store_holds_exactly_the_live_calls(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite3"
    async with FakeKaphila(store=path) as kaphila:
        phone = await kaphila.call(waits_for_keys)
        await phone.hears()
        assert [c.call_id for c in SqliteCallStore(path).leftovers()] == [phone.call_id]
        await phone.press("123456")
        await phone.result()
        assert SqliteCallStore(path).leftovers() == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(sim: SimulatorThread, port: int, store: Path, *extra: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "KAPHILA_API_KEY": "ak_simulator",
        "KAPHILA_BASE_URL": sim.base_url,
        "KAPHILA_WEBHOOK_URL": f"http://127.0.0.1:{port}/webhooks",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kaphila_flow",
            "serve",
            "examples/pin_entry.py:flow",
            "--bind",
            f"127.0.0.1:{port}",
            "--store",
            str(store),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for(predicate: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


NUMBERS = ["16085550301", "16085550302", "16085550303"]


@pytest.mark.integration
def test_killed_in_the_middle_of_calls_then_restarted(tmp_path: Path) -> None:
    store = tmp_path / "calls.sqlite3"
    simulator = Simulator(speed=1.0, default_callee=Callee(answer_after=0.2))  # callers stay silent
    with SimulatorThread(simulator) as sim:
        port = _free_port()
        dials = [arg for number in NUMBERS for arg in ("--dial", number)]
        first = _serve(sim, port, store, *dials)
        try:
            _wait_for(
                lambda: sum(1 for c in simulator.calls.values() if c.model.gathering) == 3,
                "3 live gathers",
            )
        finally:
            first.kill()  # no shutdown, no cleanup: a crash
            first.wait(timeout=10)
        assert all(c.model.live for c in simulator.calls.values())
        second = _serve(sim, _free_port(), store)
        try:
            _wait_for(
                lambda: not any(c.model.live for c in simulator.calls.values()),
                "the calls to be hung up",
            )
            reported = []
            assert second.stdout is not None
            for line in second.stdout:
                reported.append(line)
                if "receiving webhooks" in line:
                    break
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=20)
    out = "".join(reported)
    for call_id in simulator.calls:
        assert f"call {call_id} to" in out
    assert out.count(": failed") == 3
    assert out.count("hung up on restart") == 3
    assert SqliteCallStore(store).leftovers() == []


@pytest.mark.integration
def test_sigterm_hangs_up_live_calls_and_reports_them(tmp_path: Path) -> None:
    simulator = Simulator(speed=1.0, default_callee=Callee(answer_after=0.2))
    with SimulatorThread(simulator) as sim:
        port = _free_port()
        dials = [arg for number in NUMBERS for arg in ("--dial", number)]
        process = _serve(sim, port, tmp_path / "calls.sqlite3", *dials, "--grace", "0.5")
        _wait_for(
            lambda: sum(1 for c in simulator.calls.values() if c.model.gathering) == 3,
            "3 live gathers",
        )
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert not any(c.model.live for c in simulator.calls.values())
    assert out.count(": failed") == 3
    assert "runtime shut down" in out
