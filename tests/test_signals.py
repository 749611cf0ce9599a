"""``kaphila-flow campaign`` and ``serve`` stopped by SIGTERM or SIGINT, in a real process.

The simulator runs in this process; the first two contacts' phones are held, so the
test answers them and presses their keys itself: the campaign is stopped with exactly
two calls live, and every step waits for something the process or the simulator
reports (a line, a call's state), never for time to pass.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from kaphila_flow.simulator import Callee, KeyStep, Simulator, SimulatorThread

ROOT = Path(__file__).resolve().parent.parent
NUMBERS = [f"1608555050{n}" for n in range(1, 7)]
HELD = NUMBERS[:2]  # placed first (concurrency 2); the test plays their callees


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _until(predicate: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _line_with(stream: IO[str], text: str) -> list[str]:
    """Read lines until one contains ``text``; all of them."""
    lines = []
    for line in stream:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"the process ended without saying {text!r}: {''.join(lines)}")


class Setup:
    def __init__(self, tmp: Path, sim: SimulatorThread, simulator: Simulator) -> None:
        self.sim = sim
        self.simulator = simulator
        self.journal = tmp / "journal.sqlite3"
        self.results = tmp / "results.csv"
        self.contacts = tmp / "contacts.csv"
        self.contacts.write_text("number\n" + "\n".join(NUMBERS) + "\n")
        port = _free_port()
        self.env = {
            **os.environ,
            "KAPHILA_API_KEY": "ak_simulator",
            "KAPHILA_BASE_URL": sim.base_url,
            "KAPHILA_WEBHOOK_URL": f"http://127.0.0.1:{port}/webhooks",
        }
        self.args = [
            "campaign",
            "tests/campaign_flow.py:flow",
            str(self.contacts),
            "--concurrency",
            "2",
            "--any-time",
            "--progress-every",
            "0",
            "--results",
            str(self.results),
            "--journal",
            str(self.journal),
            "--bind",
            f"127.0.0.1:{port}",
        ]

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "kaphila_flow", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def held_calls_gathering(self) -> list[str]:
        """Wait for the two held phones to ring, answer them, wait for their gathers."""
        simulator = self.simulator
        _until(lambda: len(simulator.calls) == 2, "the first two calls")
        calls = list(simulator.calls)
        assert sorted(simulator.calls[c].model.request.number for c in calls) == HELD
        for call_id in calls:
            self.sim.call(simulator.answer_call, call_id)
        _until(lambda: all(simulator.calls[c].model.gathering for c in calls), "the two gathers")
        return calls

    def live_calls(self) -> list[str]:
        return [cid for cid, call in self.simulator.calls.items() if call.model.live]

    def dialled(self) -> Counter[str]:
        return Counter(
            body["number"] for path, body in self.simulator.requests if path == "/makecall"
        )

    def result_rows(self) -> dict[str, str]:
        rows = self.results.read_text().splitlines()[1:]
        return {row.split(",")[0]: row.split(",")[2] for row in rows}


def _simulator() -> Simulator:
    quick = Callee(answer_after=0.0, keys=(KeyStep("1", after=0.0),))
    return Simulator(
        speed=4.0,
        callees={number: Callee(answer="held") for number in HELD},
        default_callee=quick,
    )


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_campaign_and_the_printed_command_resumes_it(
    tmp_path: Path, signum: signal.Signals
) -> None:
    simulator = _simulator()
    with SimulatorThread(simulator) as sim:
        setup = Setup(tmp_path, sim, simulator)
        process = setup.start(*setup.args)
        try:
            calls = setup.held_calls_gathering()
            process.send_signal(signum)
            assert process.stderr is not None
            _line_with(process.stderr, "stopping the campaign")
            for call_id in calls:  # the live calls finish within the grace period
                sim.call(simulator.press_keys, call_id, "1")
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 128 + signum, err
        assert setup.live_calls() == [], "a call was left live at the provider"
        assert len(simulator.calls) == 2, "a call was placed after the signal"
        rows = setup.result_rows()
        assert {n: rows[n] for n in HELD} == {n: "completed" for n in HELD}
        assert {rows[n] for n in NUMBERS[2:]} == {"remaining"}
        resume = [line for line in out.splitlines() if "to resume: " in line]
        assert len(resume) == 1, out
        assert f"stopped by {signum.name} (4 contacts not done)" in resume[0]
        command = shlex.split(resume[0].split("to resume: ", 1)[1])
        assert command[0] == "kaphila-flow" and str(setup.journal) in command

        again = setup.start(*command[1:])
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err
        assert "6 contacts: 6 completed" in out
        assert setup.dialled() == Counter(NUMBERS), "a number was called twice, or never"
        assert setup.live_calls() == []
    assert set(setup.result_rows().values()) == {"completed"}


@pytest.mark.integration
def test_a_second_signal_ends_live_calls_at_once_and_journals_them(tmp_path: Path) -> None:
    from kaphila_flow._contacts import load_contacts
    from kaphila_flow._journal import Journal

    simulator = _simulator()
    with SimulatorThread(simulator) as sim:
        setup = Setup(tmp_path, sim, simulator)
        process = setup.start(*setup.args)  # the default grace: 30 s
        try:
            setup.held_calls_gathering()
            process.send_signal(signal.SIGTERM)
            assert process.stderr is not None
            _line_with(process.stderr, "stopping the campaign")
            process.send_signal(signal.SIGTERM)  # nobody presses: end them now
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 128 + signal.SIGTERM, err
        assert "ending live calls now" in err
        assert setup.live_calls() == [], "a call was left live at the provider"
        hung_up = [body["callId"] for path, body in simulator.requests if path == "/hangup"]
        assert sorted(hung_up) == sorted(simulator.calls)
    assert "to resume: kaphila-flow campaign" in out
    rows = setup.result_rows()
    assert set(rows.values()) == {"remaining"}
    journal = Journal(setup.journal)
    for number in HELD:
        assert [outcome for _, _, outcome in journal.attempts_for(number)] == ["interrupted"]
    states = {s.contact.number: s for s in journal.load(load_contacts(NUMBERS)[0])}
    assert journal.open_attempts() == []
    assert {states[n].final_status for n in HELD} == {"interrupted"}
    assert all(states[n].state == "pending" and states[n].attempts == 0 for n in NUMBERS[2:])


@pytest.mark.integration
def test_serve_ends_live_calls_at_once_on_a_second_signal(tmp_path: Path) -> None:
    simulator = Simulator(speed=4.0, default_callee=Callee(answer_after=0.0))  # silent
    with SimulatorThread(simulator) as sim:
        setup = Setup(tmp_path, sim, simulator)
        bind = setup.args[setup.args.index("--bind") + 1]
        dials = [arg for number in HELD for arg in ("--dial", number)]
        process = setup.start("serve", "tests/campaign_flow.py:flow", "--bind", bind, *dials)
        try:
            _until(
                lambda: sum(1 for c in simulator.calls.values() if c.model.gathering) == 2,
                "two live gathers",
            )
            process.send_signal(signal.SIGTERM)  # the default grace: 30 s
            assert process.stderr is not None
            _line_with(process.stderr, "SIGTERM: shutting down")
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, err
        assert "SIGTERM again: ending live calls now" in err
        assert setup.live_calls() == []
    assert out.count(": failed") == 2 and "runtime shut down" in out


# -- Campaign.stop(), in process and virtual time, on both backends ------------------------


@pytest.mark.anyio
async def test_stop_cancels_waiting_placements_and_journals_cut_calls(tmp_path: Path) -> None:
    import anyio

    from kaphila_flow import Call, CallingHours, Campaign
    from kaphila_flow._contacts import load_contacts
    from kaphila_flow._journal import Journal
    from kaphila_flow.testing import InProcessKaphila

    journal = tmp_path / "journal.sqlite3"
    answered = anyio.Event()

    async def flow(call: Call) -> str:
        answered.set()
        return await call.gather("Press 1.", num_digits=1, timeout=600)

    silent = Callee(answer_after=0.0)  # answers, never presses: the gather waits
    async with InProcessKaphila(default_callee=silent) as kaphila:
        campaign = Campaign(
            kaphila.runtime,
            flow,
            NUMBERS,
            concurrency=3,
            calls_per_hour=1,  # the second placement waits an hour for its turn
            calling_hours=CallingHours.always(),
            journal=journal,
        )
        async with anyio.create_task_group() as tg:
            result: list[object] = []

            async def run() -> None:
                result.append(await campaign.run())

            tg.start_soon(run)
            await answered.wait()
            campaign.stop()
            await kaphila.runtime.shutdown(grace=0)
        requests = [b["number"] for p, b in kaphila.simulator.requests if p == "/makecall"]
        assert not any(c.model.live for c in kaphila.simulator.calls.values())
    summary = result[0]
    assert getattr(summary, "stopped", False) and getattr(summary, "remaining", 0) == 6
    assert len(requests) == 1, "a call was placed after the stop"
    first = requests[0]  # the pacer's first turn: whichever attempt took it
    store = Journal(journal)
    assert [o for _, _, o in store.attempts_for(first)] == ["interrupted"]
    assert all(store.attempts_for(n) == [] for n in NUMBERS if n != first)
    states = {s.contact.number: s for s in store.load(load_contacts(NUMBERS)[0])}
    assert states[first].state == "waiting" and states[first].final_status == "interrupted"
