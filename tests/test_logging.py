"""Structured logs: call_id and flow on every record about a call, text or JSON lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from kaphila_flow import (
    Call,
    CallContextFilter,
    JsonFormatter,
    configure_logging,
    events,
)
from kaphila_flow.simulator import Account, Callee, Faults, KeyStep
from kaphila_flow.testing import FakeKaphila, InProcessKaphila

from .examples_loader import load_example
from .test_cli import run

pytestmark = pytest.mark.anyio

bot = logging.getLogger("my_bot")


@pytest.fixture
def root_logging() -> Iterator[None]:
    """``configure_logging`` changes the root logger: put it back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def greeter(call: Call) -> str:
    bot.info("greeting %s", call.data.get("name"))
    await call.say("Hello.")
    digits = await call.gather("Press a key.", num_digits=1)
    bot.info("pressed")
    return digits


async def test_json_records_carry_the_call_id_and_flow_of_their_call(root_logging: None) -> None:
    out = io.StringIO()
    handler = configure_logging("json", level="info", stream=out)
    assert isinstance(handler.formatter, JsonFormatter)
    bot.info("before any call")
    async with FakeKaphila() as kaphila:
        # Two calls at once: each record is about its own call.
        ann = await kaphila.call(greeter, number="16085550101", data={"name": "Ann"})
        bob = await kaphila.call(greeter, number="16085550102", data={"name": "Bob"})
        for phone in (ann, bob):
            assert await phone.hears() == "Hello."
            assert await phone.hears() == "Press a key."
        await bob.press("2")
        await ann.press("1")
        await ann.result()
        await bob.result()
        kaphila.runtime.dispatch(events.CallEnded(call_id=ann.call_id, timestamp="late"))
    lines = records(out)
    first = lines[0]
    assert first["message"] == "before any call" and first["logger"] == "my_bot"
    assert first["call_id"] is None and first["flow"] is None
    assert first["level"] == "INFO" and first["time"].endswith("+00:00")
    flow = "tests.test_logging.greeter"
    mine = [(r["message"], r["call_id"], r["flow"]) for r in lines if r["logger"] == "my_bot"]
    assert ("greeting Ann", ann.call_id, flow) in mine
    assert ("greeting Bob", bob.call_id, flow) in mine
    pressed = [call_id for message, call_id, _ in mine if message == "pressed"]
    assert pressed == [bob.call_id, ann.call_id]
    # A record about a call logged outside its task (a late webhook) names the call too.
    late = [r for r in lines if "dead letter" in r["message"]]
    assert late and late[0]["call_id"] == ann.call_id


async def test_text_format_and_a_handler_of_your_own(root_logging: None) -> None:
    out = io.StringIO()
    configure_logging("text", level=logging.INFO, stream=out)
    # Your own handler: the filter adds the fields for any format string.
    mine = io.StringIO()
    own = logging.StreamHandler(mine)
    own.addFilter(CallContextFilter())
    own.setFormatter(logging.Formatter("%(call_id)s|%(flow)s|%(message)s"))
    bot.addHandler(own)
    try:
        async with FakeKaphila() as kaphila:
            phone = await kaphila.call(greeter, data={"name": "Cy"})
            await phone.hears()
            await phone.hears()
            await phone.press("5")
            await phone.result()
    finally:
        bot.removeHandler(own)
    line = next(x for x in out.getvalue().splitlines() if "greeting Cy" in x)
    assert f"my_bot [call {phone.call_id} flow tests.test_logging.greeter] greeting Cy" in line
    assert f"{phone.call_id}|tests.test_logging.greeter|greeting Cy" in mine.getvalue()
    # Configured again: one handler, not two.
    configure_logging("json", stream=out)
    installed = [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)]
    assert len(installed) == 1


def test_bad_settings_are_clear_errors(root_logging: None) -> None:
    with pytest.raises(ValueError, match="log_format must be 'text' or 'json'"):
        configure_logging("xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        configure_logging("json", level="loud")


API_KEY = "ak_live_JSONLOGKEY_41d7"
SIGNING = "whsec_anNvbiBsb2dzIG5ldmVyIGxlYWs="
WRONG_PIN, RIGHT_PIN = "975318", "123456"


@pytest.mark.integration
async def test_json_logs_hold_no_pin_and_no_api_key(root_logging: None) -> None:
    out = io.StringIO()
    configure_logging("json", level=logging.DEBUG, stream=out)  # every library, everything
    pin_entry = load_example("pin_entry")
    callees = {
        "16085550111": Callee(keys=(KeyStep(WRONG_PIN + "#"),)),
        "16085550112": Callee(keys=(KeyStep("97"), KeyStep(RIGHT_PIN))),
    }
    async with InProcessKaphila(
        api_key=API_KEY,
        account=Account(credits=100, rate_limit=10_000),
        callees=callees,
        webhook_secret=SIGNING,
        faults=Faults(seed=5, duplicate=0.3, api_error=0.1, api_error_status=429),
    ) as kaphila:
        handles = [await kaphila.runtime.start(number, pin_entry.flow) for number in callees]
        results = [await handle.result() for handle in handles]
    assert [r.value for r in results] == ["denied", "verified"]
    text = out.getvalue()
    lines = records(out)
    assert len(lines) > 20, "the calls were logged"
    for secret in (API_KEY, SIGNING, SIGNING.removeprefix("whsec_"), WRONG_PIN, RIGHT_PIN):
        assert secret not in text
    # Records from the call tasks (the runtime, the client, httpx) name call and flow.
    by_call = {r["call_id"] for r in lines if r["flow"] == "examples.pin_entry.flow"}
    assert {r.call_id for r in results} <= by_call


@pytest.mark.integration
def test_log_format_flag_of_the_command_line() -> None:
    done = run(
        "dial",
        "examples/ivr_menu.py:flow",
        "16089270862",
        "--simulate",
        "--keys",
        "1",
        "--speed",
        "50",
        "--log-format",
        "json",
        "--log-level",
        "debug",
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert lines, "records on stderr"
    about_the_call = [r for r in lines if r["flow"] == "ivr_menu.flow"]
    assert about_the_call and all(r["call_id"] for r in about_the_call[-3:])
    assert "result: 'sales'" in done.stdout
