"""Memory per call is bounded for every kind of event, and what is dropped is counted.

One live call is flooded with 2,001 events of each kind (recordings, gather outcomes,
key presses) through the runtime's intake while its flow is busy: at most 256 wait for
the flow, the rest are dropped (informational ones first) and counted on the handle,
on the result and in the metrics. Finished calls remembered are capped too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import anyio
import pytest

from kaphila_flow import Call, Runtime, events
from kaphila_flow.testing import FakeKaphila, MockTransport, default_reply

pytestmark = pytest.mark.anyio

FLOOD = 2_001
KINDS = {
    "recordings": {"event": "recording.completed", "recording": {"filename": "r.wav"}},
    "gather outcomes": {"event": "gather.complete", "digits": "1"},
    "keys": {"event": "dtmf.received", "digit": "5"},
}


def stamp(n: int) -> str:
    moment = datetime.fromtimestamp(1_767_225_600 + n / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def metric(runtime: Runtime, prefix: str) -> float:
    for line in runtime.metrics.exposition().decode().splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("kind", list(KINDS))
async def test_a_flood_of_one_kind_stays_within_the_call_bound(
    kaphila: FakeKaphila, kind: str
) -> None:
    async def busy(call: Call) -> str:
        await call.say("Please hold.")
        await anyio.sleep(600)  # busy elsewhere: nothing is taken from the queue
        return "done"

    phone = await kaphila.call(busy)
    assert await phone.hears() == "Please hold."
    handle = phone.handle
    for n in range(FLOOD):
        payload = {**KINDS[kind], "callId": phone.call_id, "timestamp": stamp(n)}
        reply = kaphila.runtime.receive_webhook(phone.webhook_token, json.dumps(payload).encode())
        assert reply.status == 200
    assert handle.queued <= 256
    assert handle.dropped >= FLOOD - 256
    assert metric(kaphila.runtime, 'kaphila_flow_events_dropped_total{bound="queue"}') >= (
        FLOOD - 256
    )
    if kind == "recordings":
        assert metric(kaphila.runtime, 'kaphila_flow_events_dropped_total{bound="recordings"}') > 0
    await phone.hang_up()
    result = await phone.result()
    assert result.dropped == handle.dropped
    assert len(result.recordings) <= 64
    assert len(result.transcript) <= 2_000


async def test_a_flood_drops_informational_events_before_the_flows_answers(
    kaphila: FakeKaphila,
) -> None:
    """Keys go before a gather outcome: the outcome queued first is still there."""

    async def late_gather(call: Call) -> str:
        await call.say("Please hold.")
        await anyio.sleep(600)
        return (await call.wait_for(events.GatherComplete)).digits

    phone = await kaphila.call(late_gather)
    assert await phone.hears() == "Please hold."
    token = phone.webhook_token
    outcome = {"event": "gather.complete", "digits": "42", "callId": phone.call_id}
    kaphila.runtime.receive_webhook(token, json.dumps({**outcome, "timestamp": stamp(0)}).encode())
    for n in range(1, FLOOD):
        key = {**KINDS["keys"], "callId": phone.call_id, "timestamp": stamp(n)}
        kaphila.runtime.receive_webhook(token, json.dumps(key).encode())
    assert phone.handle.queued <= 256
    result = await phone.result()
    assert result.value == "42"
    assert result.dropped >= FLOOD - 256


async def test_finished_calls_remembered_are_capped_and_evictions_counted() -> None:
    async def hello(call: Call) -> None:
        return None

    runtime = Runtime(
        MockTransport(lambda command: default_reply(command, call_id=f"{id(command)}")),
        webhook_url="https://receiver.kaphila-test.invalid/webhooks",
        finished_call_limit=3,
    )
    async with runtime:
        handles = [await runtime.start("16089270862", hello) for _ in range(5)]
        for handle in handles:
            await handle.placed()
            runtime.dispatch(events.CallAnswered(call_id=handle.call_id or ""))
        with anyio.fail_after(10):
            for handle in handles:
                await handle.result()
    assert runtime.forgotten_calls == 2
    assert metric(runtime, "kaphila_flow_finished_calls_forgotten_total") == 2
    tokens = [(h.webhook_url or "").rsplit("/", 1)[-1] for h in handles]
    body = b'{"callId": "x", "event": "call.ended"}'
    # The two that finished first are forgotten (403); three are still recognised (2xx).
    recognised = [runtime.receive_webhook(t, body).status < 300 for t in tokens]
    assert recognised.count(True) == 3
    assert recognised.count(False) == 2


def test_the_finished_call_limit_is_checked() -> None:
    with pytest.raises(ValueError, match="finished_call_limit"):
        Runtime(MockTransport(default_reply), finished_call_limit=0)
