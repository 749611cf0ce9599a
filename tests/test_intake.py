"""The runtime's intake without HTTP (``Runtime.receive_webhook``, the fake's path)."""

from __future__ import annotations

import json

import pytest

from kaphila_flow import Call
from kaphila_flow.testing import FakeKaphila

pytestmark = pytest.mark.anyio


async def _waiting(kaphila: FakeKaphila) -> tuple[str, str]:
    async def flow(call: Call) -> str:
        return await call.gather("Press 1.")

    phone = await kaphila.call(flow)
    assert await phone.hears() == "Press 1."
    return phone.webhook_token, phone.call_id


@pytest.mark.parametrize("header", ["webhook-id", "Webhook-Id", "WEBHOOK-ID"])
async def test_a_webhook_id_in_any_case_marks_a_redelivery(
    kaphila: FakeKaphila, header: str
) -> None:
    token, call_id = await _waiting(kaphila)
    first = {"event": "tts.played", "callId": call_id, "playbackId": "a"}
    again = {**first, "timestamp": "2026-01-01T00:00:00.500Z"}  # a retry, restamped
    replies = [
        kaphila.runtime.receive_webhook(token, json.dumps(body).encode(), headers={header: "m1"})
        for body in (first, again)
    ]
    assert [(r.status, dict(r.body)) for r in replies] == [
        (200, {"success": True, "delivery": "delivered"}),
        (200, {"success": True, "delivery": "duplicate"}),
    ]


async def test_without_a_webhook_id_distinct_bodies_are_distinct_deliveries(
    kaphila: FakeKaphila,
) -> None:
    token, call_id = await _waiting(kaphila)
    bodies = [
        {
            "event": "tts.played",
            "callId": call_id,
            "playbackId": p,
            "timestamp": "2026-01-01T00:00:00.5Z",
        }
        for p in ("a", "b", "a")
    ]
    replies = [
        kaphila.runtime.receive_webhook(token, json.dumps(b).encode(), headers={"Other": "x"})
        for b in bodies
    ]
    assert [r.body["delivery"] for r in replies] == ["delivered", "delivered", "duplicate"]


async def test_a_wrong_token_is_refused_and_dispatches_nothing(kaphila: FakeKaphila) -> None:
    token, call_id = await _waiting(kaphila)
    body = json.dumps({"event": "gather.complete", "callId": call_id, "digits": "1"}).encode()
    forged = token[:-1] + ("y" if token.endswith("x") else "x")
    reply = kaphila.runtime.receive_webhook(forged, body)
    assert (reply.status, dict(reply.body)) == (
        403,
        {"success": False, "error": "unknown or wrong webhook token"},
    )
    assert kaphila.runtime.receive_webhook(token, body).body["delivery"] == "delivered"
