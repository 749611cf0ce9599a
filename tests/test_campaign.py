"""Campaigns against the simulator: statuses, pacing, calling hours, resuming.

The campaigns run against the simulator in process (the real client and receiver over
ASGI) in virtual time: a thousand contacts with retries half an hour apart take
seconds, and no result depends on how fast the machine is.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
import pytest

from kaphila_flow._campaign import Campaign, RetryRules
from kaphila_flow._contacts import load_contacts, load_do_not_call
from kaphila_flow._hours import CallingHours
from kaphila_flow._journal import Journal
from kaphila_flow.simulator import Account, Callee, KeyStep
from kaphila_flow.testing import FakeKaphila, InProcessKaphila

from .examples_loader import load_example

pytestmark = [pytest.mark.anyio]
FAST_RETRIES = RetryRules(no_answer_delay=60, provider_error_delay=60, interrupted_delay=60)
reminder = load_example("appointment_reminder")


def mixed_contacts(count: int) -> tuple[list[dict[str, str]], dict[str, Callee], dict[str, str]]:
    """Humans pressing 1 or 2, machines, no answer, and invalid numbers."""
    contacts, callees, expected = [], {}, {}
    for n in range(count):
        number = f"1608555{n:04d}"
        kind = n % 5
        if kind == 4 and n % 10 == 9:
            # A US number without its country code: refused, not dialled as +60 (Malaysia).
            contacts.append({"number": f"608555{n:04d}", "name": f"Bad {n}"})
            continue
        contacts.append({"number": number, "name": f"Person {n}", "appointment": "tomorrow"})
        if kind in (0, 1):
            callees[number] = Callee(answer_after=0.5, keys=(KeyStep("1"),))
            expected[number] = "completed"
        elif kind == 2:
            callees[number] = Callee(answer_after=0.5, keys=(KeyStep("2"),))
            expected[number] = "completed"
        elif kind == 3:
            callees[number] = Callee(answer="machine", answer_after=0.5)
            expected[number] = "voicemail"
        else:
            callees[number] = Callee(answer="no-answer")
            expected[number] = "no-answer"
    return contacts, callees, expected


async def run_campaign(
    kaphila: InProcessKaphila,
    contacts: Any,
    *,
    stop_after: int | None = None,
    flow: Any = reminder.flow,
    **options: Any,
) -> tuple[Campaign, Any]:
    options.setdefault("calling_hours", CallingHours.always())
    options.setdefault("retries", FAST_RETRIES)
    enough = anyio.Event()

    def watch(progress: Any) -> None:
        if stop_after is not None and progress.done >= stop_after:
            enough.set()

    campaign = Campaign(
        kaphila.runtime,
        flow,
        contacts,
        dial_options=dict(reminder.DIAL_OPTIONS),
        on_progress=watch,
        **options,
    )
    summary = None
    if stop_after is None:
        summary = await campaign.run()
    else:
        async with anyio.create_task_group() as inner:
            inner.start_soon(campaign.run)
            await enough.wait()
            inner.cancel_scope.cancel()  # stopped in the middle
    return campaign, summary


def in_process(callees: dict[str, Callee], **options: Any) -> InProcessKaphila:
    return InProcessKaphila(
        callees=callees, account=Account(credits=100_000, rate_limit=1_000_000), **options
    )


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the smaller campaigns run on both
async def test_a_thousand_contacts(tmp_path: Path) -> None:
    contacts, callees, expected = mixed_contacts(1000)
    async with in_process(callees) as kaphila:
        campaign, summary = await run_campaign(
            kaphila, contacts, concurrency=40, journal=tmp_path / "j.sqlite3"
        )
        calls = list(kaphila.simulator.provider.snapshots())
    assert summary is not None
    final = {s.contact.number: s.final_status for s in summary.states}
    assert Counter(final.values()) == Counter(expected.values())
    assert final == expected
    assert len(summary.problems) == 100  # the invalid numbers, one message each
    assert all("invalid phone number" in str(p) for p in summary.problems)
    assert campaign.max_live <= 40
    # Calls the flows handle at once; a forwarded call is handed over (to reception)
    # and leaves the count when it is bridged.
    handled = [c for c in calls if not c["hasBridge"]]
    spans = [(c["createdAt"], c["endedAt"] or "~") for c in handled]
    assert max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans) <= 40
    dialled = Counter(call["number"] for call in calls)
    for number, status in expected.items():
        assert dialled[number] == (3 if status == "no-answer" else 1), number
    assert all(call["status"] == "ended" for call in handled), "no call left live"
    assert len(calls) - len(handled) == sum(
        1 for c in contacts if c.get("name", "").endswith(("2", "7"))
    )


async def test_stopped_in_the_middle_and_resumed_calls_no_one_twice(tmp_path: Path) -> None:
    contacts, callees, expected = mixed_contacts(120)
    journal = tmp_path / "journal.sqlite3"
    async with in_process(callees) as kaphila:
        simulator = kaphila.simulator
        await run_campaign(kaphila, contacts, concurrency=10, journal=journal, stop_after=40)
        done_first = {
            s.contact.number
            for s in Journal(journal).load(load_contacts(contacts)[0])
            if s.state == "done"
        }
        assert 40 <= len(done_first) < len(expected)
        _, summary = await run_campaign(kaphila, contacts, concurrency=10, journal=journal)
    assert summary is not None
    completed_first = {n for n in done_first if expected.get(n) in ("completed", "voicemail")}
    dialled = Counter(body["number"] for path, body in simulator.requests if path == "/makecall")
    for number in completed_first:
        assert dialled[number] == 1, f"{number} completed in the first run and was called again"
    final = {s.contact.number: s.final_status for s in summary.states}
    for number, status in expected.items():
        assert final[number] in (status, "interrupted") or (
            status == "no-answer" and final[number] == "no-answer"
        )
    from kaphila_flow._model import Phase

    left = [
        c for c in simulator.calls.values() if c.model.live and c.model.phase is not Phase.FORWARDED
    ]
    assert left == [], "no call left live (forwarded calls were handed over)"


async def test_do_not_call_pacing_and_results(tmp_path: Path) -> None:
    contacts = [
        {"number": "+1 608 555 0001", "name": "Ada", "appointment": "at 10"},
        {"number": "+1 608 555 0002", "name": "Bob", "appointment": "at 11"},
        {"number": "+1 608 555 0003", "name": "Cy", "appointment": "at 12"},
    ]
    dnc = tmp_path / "dnc.txt"
    dnc.write_text("# never call\n+1 608 555 0002\n")
    callees = {
        c["number"].replace(" ", "").lstrip("+"): Callee(keys=(KeyStep("1"),)) for c in contacts
    }
    async with in_process(callees) as kaphila:
        simulator = kaphila.simulator
        campaign, summary = await run_campaign(
            kaphila, contacts, concurrency=3, calls_per_hour=2, do_not_call=dnc, sensitive_fields=()
        )
    assert summary is not None
    assert {s.contact.number: s.final_status for s in summary.states} == {
        "16085550001": "completed",
        "16085550002": "do-not-call",
        "16085550003": "completed",
    }
    dialled = [body["number"] for path, body in simulator.requests if path == "/makecall"]
    assert "16085550002" not in dialled
    said = [body["text"] for path, body in simulator.requests if path == "/voice"]
    assert any(
        text.startswith("Hello Ada, this is Acme Dental. You have an appointment at 10")
        for text in said
    )
    out = tmp_path / "results.csv"
    campaign.write_results(out, summary)
    lines = out.read_text().splitlines()
    assert lines[0] == "number,attempts,status,amd,duration,value,error"
    assert len(lines) == 4
    jsonl = tmp_path / "results.jsonl"
    campaign.write_results(jsonl, summary)
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert rows[0]["value"] == "confirmed" and rows[0]["amd"] == "HUMAN"


async def test_calls_per_hour_spaces_placements_evenly() -> None:
    """Four an hour is one every 900 s (virtual time here), never four at once."""

    async def hello(call: Any) -> str:
        await call.say("Hi.")
        return "said"

    contacts = [f"+1 608 555 000{n}" for n in range(1, 6)]
    async with FakeKaphila() as kaphila:
        campaign = Campaign(
            kaphila.runtime,
            hello,
            contacts,
            concurrency=5,
            calls_per_hour=4,
            calling_hours=CallingHours.always(),
        )
        summary = await campaign.run()
    assert summary.by_status["completed"] == 5
    placed = sorted(model.created_at for model in kaphila.models.values())
    gaps = [later - earlier for earlier, later in pairwise(placed)]
    assert len(placed) == 5
    # Each placement waits for its turn, to the millisecond in virtual time.
    assert all(abs(gap - 900) < 0.01 for gap in gaps), gaps


async def test_sensitive_values_are_masked_in_results(tmp_path: Path) -> None:
    async def asks_a_pin(call: Any) -> dict[str, object]:
        await call.say("Hello.")
        return {"pin": "1234", "ok": True}

    async with FakeKaphila() as kaphila:
        campaign = Campaign(
            kaphila.runtime,
            asks_a_pin,
            ["+1 608 555 0001"],
            sensitive_fields=["pin"],
            calling_hours=CallingHours.always(),
        )
        summary = await campaign.run()
    out = tmp_path / "results.jsonl"
    campaign.write_results(out, summary)
    row = json.loads(out.read_text())
    assert row["value"] == {"pin": "••••", "ok": True}
    assert "1234" not in out.read_text()


def test_bad_contact_files_get_a_message_per_row(tmp_path: Path) -> None:
    good = tmp_path / "contacts.csv"
    good.write_text(
        "number,name\n+1 608 555 0001,Ada\nnot a number,Bob\n\n16085550001,Ada again\n"
        "(608) 555-0003,Cy\n+1 608 555 0002,Dee\n"
    )
    contacts, problems = load_contacts(good)
    assert [c.number for c in contacts] == ["16085550001", "16085550002"]
    assert contacts[0].data == {"name": "Ada"}
    messages = [str(p) for p in problems]
    assert messages[0].startswith("row 3: invalid phone number 'not a number'")
    assert any(m.startswith("row 5: duplicate of row 2") for m in messages)
    assert any(
        m.startswith("row 6: invalid phone number") and "+1 608-555-0003 (US)" in m
        for m in messages
    )
    missing = tmp_path / "missing.csv"
    missing.write_text("phone,name\n16085550001,Ada\n")
    with pytest.raises(ValueError, match="no 'number' column"):
        load_contacts(missing)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_contacts(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("number,name\n")
    assert [str(p) for p in load_contacts(header_only)[1]] == [
        f"row 0: {header_only} has no contacts"
    ]


def test_do_not_call_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "dnc.txt"
    bad.write_text("16085550001\nnope\n")
    with pytest.raises(ValueError, match="line 2"):
        load_do_not_call(bad)


@pytest.mark.parametrize(
    ("number", "utc", "allowed"),
    [
        ("16089270862", "2026-06-01T13:00:00", True),  # 08:00 in Chicago (CDT)
        ("16089270862", "2026-06-01T12:59:00", False),  # 07:59
        ("16089270862", "2026-06-02T01:59:00", True),  # 20:59
        ("16089270862", "2026-06-02T02:00:00", False),  # 21:00
        ("442079460958", "2026-01-10T20:30:00", True),  # London
        ("79161234567", "2026-01-10T09:00:00", False),  # Russia spans Kaliningrad..Kamchatka
    ],
)
def test_calling_hours_in_the_callees_zones(number: str, utc: str, allowed: bool) -> None:
    at = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert CallingHours().allowed(number, at) is allowed


def test_next_opening_and_impossible_windows() -> None:
    hours = CallingHours()
    at = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)  # 22:00 in Chicago
    opening = hours.next_opening("16089270862", at)
    assert opening == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    # +1 800 rings from Guam to Pago Pago: a window exists, but it is narrow.
    wide = hours.next_opening("18005550100", at)
    assert wide is not None and hours.allowed("18005550100", wide)
    # Mobile numbers of Russia ring from Kaliningrad to Kamchatka: no morning is shared.
    mornings = CallingHours(
        start=datetime(2026, 1, 1, 9).time(), end=datetime(2026, 1, 1, 12).time()
    )
    assert mornings.next_opening("79161234567", at) is None
    with pytest.raises(ValueError):
        CallingHours(start=datetime(2026, 1, 1, 21).time(), end=datetime(2026, 1, 1, 8).time())


@pytest.mark.integration
def test_campaign_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "callees.toml"
    config.write_text(
        'speed = 50\n[callees.default]\nanswer = "human"\nkeys = [{ press = "1" }]\n'
        '[callees."16085550122"]\nanswer = "machine"\n'
    )
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(Path("examples/contacts.csv").read_text() + "12345,Nobody,never\n")
    results = tmp_path / "results.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kaphila_flow",
            "campaign",
            "examples/appointment_reminder.py:flow",
            str(contacts),
            "--simulate",
            "--config",
            str(config),
            "--any-time",
            "--concurrency",
            "2",
            "--results",
            str(results),
            "--journal",
            str(tmp_path / "j.sqlite3"),
            "--progress-every",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    assert "row 5: invalid phone number '12345'" in done.stderr
    assert "3 contacts: 2 completed, 1 voicemail (3 attempts, 1 problems)" in done.stdout
    assert done.stderr.count("row 5") == 1
    assert "placed 3 answered 3 (human:2 machine:1)" in done.stdout
    rows = results.read_text().splitlines()
    assert rows[1].startswith("16089270862,1,completed,HUMAN,") and rows[1].endswith(",confirmed,")
    assert ",voicemail," in rows[3] or "voicemail" in rows[3]


async def test_provider_failures_are_retried_later_then_given_up() -> None:
    from kaphila_flow.simulator import Faults

    refusing = Faults(api_error=1.0, api_error_status=500, paths=frozenset({"/makecall"}))
    async with in_process({}, faults=refusing) as kaphila:
        simulator = kaphila.simulator
        _, summary = await run_campaign(kaphila, ["+1 608 555 0001"], concurrency=1)
    assert summary is not None
    state = summary.states[0]
    # Each 500 is looked into (GET /calls finds no call), then retried later.
    assert state.final_status == "provider-error"
    assert state.attempts == 3
    dialled = [body["number"] for path, body in simulator.requests if path == "/makecall"]
    assert dialled == []  # refused before any work every time


async def test_a_closed_window_waits_for_the_opening() -> None:
    from datetime import time
    from zoneinfo import ZoneInfo

    async def hello(call: Any) -> str:
        await call.say("Hi.")
        return "said"

    chicago = ZoneInfo("America/Chicago")
    # 07:00 in Chicago on a June morning; the window opens at 08:00 and closes at 08:30.
    seven = datetime(2026, 6, 1, 7, 0, tzinfo=chicago).timestamp()
    hours = CallingHours(start=time(8, 0), end=time(8, 30))
    async with in_process({}, start_time=seven) as kaphila:
        _, summary = await run_campaign(
            kaphila, ["+1 608 927 0862"], flow=hello, calling_hours=hours
        )
        finished_at = kaphila.runtime.wall_time()
    assert summary is not None and summary.states[0].final_status == "completed"
    # Placed, answered and over within the window, not before it opened.
    finished = datetime.fromtimestamp(finished_at, chicago)
    assert finished.hour == 8 and finished.minute < 30
