"""OpenTelemetry tracing (the ``tracing`` extra): spans read with the SDK's in-memory exporter."""

from __future__ import annotations

import sys

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from kaphila_flow import Call, ConfigurationError, KaphilaClient, Runtime, ServerError, Voice
from kaphila_flow.testing import FakeKaphila

pytestmark = pytest.mark.anyio

PIN = "4821"


def exporter_and_provider() -> tuple[InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider


async def pin_check(call: Call) -> str:
    await call.say("Welcome.")
    pin = await call.ask("Your PIN, then pound.", max_digits=4, sensitive=True)
    return "ok" if pin == PIN else "wrong"


async def test_a_span_per_call_and_per_command_with_webhooks_as_events() -> None:
    exporter, provider = exporter_and_provider()
    async with FakeKaphila(tracing=provider) as kaphila:
        phone = await kaphila.call(pin_check)
        assert await phone.hears() == "Welcome."
        assert await phone.hears() == "Your PIN, then pound."
        await phone.press(PIN + "#")
        assert (await phone.result()).value == "ok"
    spans = exporter.get_finished_spans()
    calls = [s for s in spans if s.name == "call tests.test_tracing.pin_check"]
    assert len(calls) == 1
    call = calls[0]
    assert call.attributes is not None
    assert call.attributes["kaphila.call_id"] == phone.call_id
    assert call.attributes["kaphila.flow"] == "tests.test_tracing.pin_check"
    assert call.attributes["kaphila.call.status"] == "completed"
    assert call.status.status_code is StatusCode.UNSET
    commands = [s for s in spans if s is not call]
    assert [s.name for s in commands] == [
        "POST /makecall",
        "POST /voice",
        "POST /gather",
        "POST /hangup",
    ]
    assert call.context is not None
    for span in commands:  # children of the call's span, in the same trace
        assert span.parent is not None and span.parent.span_id == call.context.span_id
        assert span.context is not None and span.context.trace_id == call.context.trace_id
        assert span.start_time is not None and call.start_time is not None
        assert span.start_time >= call.start_time
    gather = commands[2]
    assert (gather.attributes or {})["kaphila.call_id"] == phone.call_id
    webhooks = {event.name: dict(event.attributes or {}) for event in call.events}
    assert webhooks["gather.complete"] == {"kaphila.delivery": "delivered"}
    # The fake delivers as HTTP does, with the call's webhook token: even an event that
    # comes before the /makecall answer goes straight to its call.
    assert webhooks["call.answered"] == {"kaphila.delivery": "delivered"}
    assert PIN not in repr([_readable(s) for s in spans])  # no digit pressed in any span


def _readable(span: ReadableSpan) -> object:
    return (span.name, span.attributes, [(e.name, e.attributes) for e in span.events])


async def test_failed_calls_and_failed_commands_are_errors() -> None:
    async def crashes(call: Call) -> None:
        await call.say("One moment.")
        raise RuntimeError("bug")

    exporter, provider = exporter_and_provider()
    async with FakeKaphila(tracing=provider) as kaphila:
        phone = await kaphila.call(crashes)
        await phone.hears()
        assert (await phone.result()).status == "failed"
        missing = await kaphila.call(crashes, answer="no-answer")
        assert (await missing.result()).status == "no-answer"
    failed = [s for s in exporter.get_finished_spans() if s.name.endswith("<locals>.crashes")]
    assert len(failed) == 2
    statuses = sorted(str((s.attributes or {})["kaphila.call.status"]) for s in failed)
    assert statuses == ["failed", "no-answer"]
    broken = next(s for s in failed if (s.attributes or {})["kaphila.call.status"] == "failed")
    assert broken.status.status_code is StatusCode.ERROR
    assert (broken.attributes or {})["kaphila.call.error"] == "RuntimeError"
    unanswered = next(s for s in failed if s is not broken)
    assert unanswered.status.status_code is StatusCode.UNSET  # no answer is not an error

    # A command Kaphila refuses: its span is an error, named by the exception's type.
    exporter.clear()
    refusing = httpx.MockTransport(lambda request: httpx.Response(500, json={"error": "down"}))
    client = KaphilaClient("ak_test", base_url="http://127.0.0.1:9", transport=refusing)
    async with client:
        with pytest.raises(ServerError):
            await Runtime(client, tracing=provider).send(Voice("c1", "Hello."))
    (span,) = exporter.get_finished_spans()
    assert span.name == "POST /voice" and span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ServerError"


async def test_tracing_is_off_by_default_and_needs_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exporter, _provider = exporter_and_provider()
    async with FakeKaphila() as kaphila:  # no tracing: nothing reaches any provider
        await (await kaphila.call(pin_check, answer="no-answer")).result()
    assert exporter.get_finished_spans() == ()
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if the extra were absent
    with pytest.raises(ConfigurationError, match=r"pip install 'kaphila-flow\[tracing\]'"):
        Runtime(kaphila, tracing=True)
    Runtime(kaphila)  # off: OpenTelemetry is never imported
