"""Crash safety of the live-call store: kill -9 in each window around /makecall.

A real process (``tests/crash_runtime.py``) places one call against the simulator and
stops in a window, says so on stdout, and is killed with SIGKILL. A fresh runtime on
the same store then ends every call the dead one placed, and nothing else: a call to
the same number placed by another client of the same account stays up.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from kaphila_flow import (
    CallIntent,
    CallResult,
    ConfigurationError,
    Hangup,
    KaphilaClient,
    PlacementWindow,
    Runtime,
    ServerError,
    SqliteCallStore,
    StoredCall,
)
from kaphila_flow._api_types import CallInfo
from kaphila_flow.simulator import Callee, Simulator, SimulatorThread
from kaphila_flow.testing import MockTransport, default_reply, virtual_time

ROOT = Path(__file__).resolve().parent.parent
NUMBER = "16085550401"
#: The foreign call is made well before the crashed process sends anything; a small
#: clock allowance (loopback: one clock) keeps it outside the window deterministically.
WINDOW = PlacementWindow(clock_skew=0.2)


def _place_foreign_call(base_url: str) -> str:
    """Another client of the same account calls the same number (no webhook URL)."""
    answer = httpx.post(
        f"{base_url}/makecall",
        json={"number": NUMBER},
        headers={"Authorization": "Bearer ak_simulator"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    call_id: str = answer.json()["callId"]
    return call_id


def _created_at(simulator: Simulator, call_id: str) -> float:
    stamp = simulator.calls[call_id].model.snapshot()["createdAt"]
    assert isinstance(stamp, str)
    return datetime.fromisoformat(stamp).timestamp()


def _crash_in(window: str, base_url: str, store: Path) -> str | None:
    """Run the test-only runtime until it reports ``window``, then SIGKILL it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.crash_runtime", base_url, str(store), NUMBER, window],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
    finally:
        process.send_signal(signal.SIGKILL)  # no shutdown, no cleanup: a crash
        _, err = process.communicate(timeout=30)
    assert line.startswith(f"READY {window} "), f"the runtime did not reach {window}: {err}"
    reported = line.split()[2]
    return None if reported == "-" else reported


async def _recover(base_url: str, store: Path) -> list[CallResult]:
    client = KaphilaClient("ak_simulator", base_url=base_url)
    async with Runtime(client, store=store, owns_transport=True, placement_window=WINDOW) as fresh:
        return list(fresh.recovered)


@pytest.mark.integration
@pytest.mark.parametrize("window", ["intent", "sent", "live"])
def test_killed_in_each_window_then_recovered(tmp_path: Path, window: str) -> None:
    store = tmp_path / "calls.sqlite3"
    simulator = Simulator(speed=1.0, default_callee=Callee(answer_after=0.0))  # silent people
    with SimulatorThread(simulator) as sim:
        foreign = _place_foreign_call(sim.base_url)
        made = _created_at(simulator, foreign)
        while time.time() <= made + WINDOW.clock_skew + 0.05:  # a clock condition, not a pause
            time.sleep(0.01)
        placed = _crash_in(window, sim.base_url, store)
        ours = [cid for cid in simulator.calls if cid != foreign]
        if window == "intent":
            assert ours == [] and placed is None  # the request never left
        else:
            assert ours == [placed]
            assert simulator.calls[ours[0]].model.live, "the crash left the call live"
        stored = SqliteCallStore(store)
        assert len(stored.intents()) == (1 if window != "live" else 0)
        assert [c.call_id for c in stored.leftovers()] == ([placed] if window == "live" else [])
        stored.close()

        recovered = anyio.run(_recover, sim.base_url, store)

        assert simulator.calls[foreign].model.live, "another client's call was touched"
        assert not any(simulator.calls[cid].model.live for cid in ours), "a call left live"
        hangups = [body["callId"] for path, body in simulator.requests if path == "/hangup"]
        assert hangups == ours  # exactly the crashed run's call, once
    assert len(recovered) == 1
    result = recovered[0]
    assert result.number == NUMBER
    if window == "intent":
        assert result.call_id is None and result.status == "unknown"
        assert "never placed" in (result.end_reason or "")
    else:
        assert result.call_id == placed and result.status == "failed"
        assert "hung up on restart" in (result.end_reason or "")
    after = SqliteCallStore(store)
    assert after.intents() == [] and after.leftovers() == []


# -- the reading, the migration and the protocol, on both backends -------------------------

PLACED_AT = 1_780_000_000.0


def _listed(call_id: str, number: str = NUMBER, status: str = "answered", **extra: Any) -> CallInfo:
    return CallInfo.from_json({"callId": call_id, "number": number, "status": status, **extra})


def _store_with_intent(path: Path, *intents: CallIntent) -> None:
    store = SqliteCallStore(path)
    for intent in intents:
        store.add_intent(intent)
    store.close()


async def _recover_with(path: Path, transport: MockTransport) -> list[CallResult]:
    async with Runtime(transport, store=path) as runtime:
        return list(runtime.recovered)


def _hung_up(transport: MockTransport) -> list[str]:
    return [c.call_id for c in transport.sent if isinstance(c, Hangup)]


@pytest.mark.anyio
async def test_the_webhook_url_in_the_listing_settles_which_call_is_ours(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite3"
    _store_with_intent(path, CallIntent("ab12", NUMBER, PLACED_AT))
    # Same number, same second: only the token reference in the URL tells them apart.
    transport = MockTransport(
        calls=[
            _listed(f"{PLACED_AT:.0f}.1", webhookUrl="https://bot.example/webhooks/ff00.secret"),
            _listed(f"{PLACED_AT:.0f}.2", webhookUrl="https://bot.example/webhooks/ab12.secret"),
        ]
    )
    recovered = await _recover_with(path, transport)
    assert _hung_up(transport) == [f"{PLACED_AT:.0f}.2"]
    assert [r.call_id for r in recovered] == [f"{PLACED_AT:.0f}.2"]


@pytest.mark.anyio
async def test_without_a_url_the_creation_time_decides(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite3"
    _store_with_intent(path, CallIntent("ab12", NUMBER, PLACED_AT))
    transport = MockTransport(
        calls=[
            _listed(f"{PLACED_AT - 120:.0f}.7"),  # made two minutes before: not ours
            _listed(f"{PLACED_AT + 1:.0f}.8"),  # Kaphila's id: the second it was made
            _listed(f"{PLACED_AT + 1:.0f}.9", number="16085550499"),  # another number
        ]
    )
    recovered = await _recover_with(path, transport)
    assert _hung_up(transport) == [f"{PLACED_AT + 1:.0f}.8"]
    assert recovered[0].status == "failed" and "hung up on restart" in str(recovered[0].error)


@pytest.mark.anyio
async def test_calls_that_cannot_be_told_apart_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite3"
    _store_with_intent(path, CallIntent("ab12", NUMBER, PLACED_AT))
    transport = MockTransport(
        calls=[_listed(f"{PLACED_AT:.0f}.1"), _listed(f"{PLACED_AT + 2:.0f}.2")]
    )
    recovered = await _recover_with(path, transport)
    assert _hung_up(transport) == []
    assert recovered[0].status == "unknown"
    assert "cannot be told apart" in (recovered[0].end_reason or "")
    assert SqliteCallStore(path).intents() == []


@pytest.mark.anyio
async def test_a_listing_that_fails_keeps_the_intent_for_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite3"
    _store_with_intent(path, CallIntent("ab12", NUMBER, PLACED_AT))

    def down() -> list[CallInfo]:
        raise ServerError("Internal Server Error")

    recovered = await _recover_with(path, MockTransport(calls=down))
    assert recovered[0].status == "unknown" and "GET /calls failed" in str(recovered[0].error)
    assert [i.ref for i in SqliteCallStore(path).intents()] == ["ab12"]


@pytest.mark.anyio
async def test_a_placed_call_replaces_its_intent_and_leaves_with_its_result(
    tmp_path: Path,
) -> None:
    path = tmp_path / "calls.sqlite3"
    seen: list[tuple[list[CallIntent], list[StoredCall]]] = []

    def answer(command: Any) -> Any:
        store = SqliteCallStore(path)  # what a crash right now would leave on disk
        seen.append((store.intents(), store.leftovers()))
        store.close()
        return default_reply(command, call_id="5.5")

    with virtual_time():
        async with Runtime(MockTransport(answer), store=path) as runtime:
            handle = await runtime.start(NUMBER, _silent, ring_timeout=1)
            assert await handle.placed() == "5.5"
            on_disk = SqliteCallStore(path)
            assert [(c.call_id, c.number) for c in on_disk.leftovers()] == [("5.5", NUMBER)]
            assert on_disk.intents() == []
            await handle.result()
    intents, calls = seen[0]  # while /makecall was being answered: the intent, no call
    assert [(i.number, bool(i.ref)) for i in intents] == [(NUMBER, True)] and calls == []
    after = SqliteCallStore(path)
    assert after.intents() == [] and after.leftovers() == []


async def _silent(call: Any) -> None:
    await anyio.sleep_forever()


def test_a_store_file_of_the_first_layout_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "calls.sqlite3"
    old = sqlite3.connect(path)  # exactly what the first release wrote
    old.execute(
        "CREATE TABLE IF NOT EXISTS live_calls ("
        " call_id TEXT PRIMARY KEY, number TEXT NOT NULL, started_at REAL NOT NULL)"
    )
    old.execute("INSERT INTO live_calls VALUES ('1.1', '16089270862', 1000.0)")
    old.commit()
    old.close()
    store = SqliteCallStore(path)
    assert store.leftovers() == [StoredCall("1.1", "16089270862", 1000.0)]
    store.add_intent(CallIntent("ab12", NUMBER, PLACED_AT))
    store.close()
    again = SqliteCallStore(path)  # opening twice migrates once
    assert [c.call_id for c in again.leftovers()] == ["1.1"]
    assert again.intents() == [CallIntent("ab12", NUMBER, PLACED_AT)]


def test_a_store_file_from_a_newer_release_is_refused_clearly(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "calls.sqlite3"
    newer = sqlite3.connect(path)
    newer.execute("PRAGMA user_version = 99")
    newer.close()
    with pytest.raises(ConfigurationError, match="newer kaphila_flow"):
        SqliteCallStore(path)


class FirstVersionStore:
    """A user's own store written against the first ``CallStore`` protocol."""

    def __init__(self, leftover: list[StoredCall]) -> None:
        self.rows = {c.call_id: c for c in leftover}
        self.added: list[str] = []

    def add(self, call: StoredCall) -> None:
        self.rows[call.call_id] = call
        self.added.append(call.call_id)

    def remove(self, call_id: str) -> None:
        self.rows.pop(call_id, None)

    def leftovers(self) -> list[StoredCall]:
        return list(self.rows.values())

    def close(self) -> None:
        return None


@pytest.mark.anyio
async def test_a_store_of_the_first_protocol_still_works() -> None:
    store = FirstVersionStore([StoredCall("1.1", "16089270862", 1000.0)])
    transport = MockTransport()
    with virtual_time():
        async with Runtime(transport, store=store) as runtime:
            assert [r.call_id for r in runtime.recovered] == ["1.1"]
            handle = await runtime.start(NUMBER, _silent, ring_timeout=1)
            await handle.placed()
            assert handle.call_id in store.rows
            await handle.result()
    assert _hung_up(transport)[0] == "1.1"
    assert store.added == [handle.call_id] and store.rows == {}


@pytest.mark.anyio
async def test_a_campaign_resumed_after_a_crash_in_flight_ends_only_its_own_call(
    tmp_path: Path,
) -> None:
    from kaphila_flow import CallingHours, Campaign, RetryRules
    from kaphila_flow._contacts import load_contacts
    from kaphila_flow._journal import Journal

    journal = Journal(tmp_path / "journal.sqlite3")
    journal.load(load_contacts([NUMBER])[0])
    journal.begin_attempt(NUMBER, 1, PLACED_AT)  # died before the /makecall answer
    transport = MockTransport(
        calls=[
            _listed(f"{PLACED_AT - 300:.0f}.1"),  # another client's, five minutes older
            _listed(f"{PLACED_AT:.0f}.2"),  # the crashed run's
        ]
    )
    with virtual_time():
        async with Runtime(transport, start_time=PLACED_AT + 30) as runtime:
            campaign = Campaign(
                runtime,
                _silent,
                [NUMBER],
                journal=journal,
                calling_hours=CallingHours.always(),
                retries=RetryRules(max_attempts=1),
            )
            summary = await campaign.run()
    assert _hung_up(transport)[0] == f"{PLACED_AT:.0f}.2"
    assert f"{PLACED_AT - 300:.0f}.1" not in _hung_up(transport)
    assert summary.by_status == {"interrupted": 1}


@pytest.mark.parametrize("options", [{"clock_skew": -1}, {"answer_within": "10"}])
def test_a_placement_window_of_bad_seconds_is_refused_clearly(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"PlacementWindow \w+ must be seconds >= 0"):
        PlacementWindow(**options)


@pytest.mark.anyio
async def test_an_intent_whose_call_already_ended_is_reported_with_its_id(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite3"
    _store_with_intent(path, CallIntent("ab12", NUMBER, PLACED_AT))
    transport = MockTransport(calls=[_listed(f"{PLACED_AT:.0f}.3", status="ended")])
    recovered = await _recover_with(path, transport)
    assert _hung_up(transport) == []
    assert recovered[0].call_id == f"{PLACED_AT:.0f}.3" and recovered[0].status == "failed"
    assert "already over" in (recovered[0].end_reason or "")
