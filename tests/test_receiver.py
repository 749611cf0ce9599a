"""The webhook receiver over real HTTP on loopback, served by hypercorn on both backends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from kaphila_flow import Call, Runtime, events
from kaphila_flow.testing import FakeKaphila

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


class Served:
    def __init__(self, fake: FakeKaphila, url: str, client: httpx.AsyncClient) -> None:
        self.fake = fake
        self.runtime = fake.runtime
        self.url = url
        self.client = client


async def _serve(fake: FakeKaphila, tg: Any) -> str:
    # Real sockets: this fake keeps real time (virtual_time=False).
    fake.runtime.webhook_url = None
    return str(await tg.start(fake.runtime.serve, "127.0.0.1:0"))


@asynccontextmanager
async def _served() -> AsyncIterator[tuple[FakeKaphila, str, httpx.AsyncClient]]:
    """A fake in real time with its receiver on a loopback port, and a client for it."""
    async with (
        FakeKaphila(virtual_time=False) as fake,
        anyio.create_task_group() as tg,
        httpx.AsyncClient() as client,
    ):
        yield fake, await _serve(fake, tg), client
        tg.cancel_scope.cancel()


async def _waiting_call(fake: FakeKaphila) -> Any:
    async def flow(call: Call) -> str:
        return await call.gather("Press 1.", num_digits=1)

    phone = await fake.call(flow)
    assert await phone.hears() == "Press 1."
    return phone


async def test_webhook_resumes_the_flow_and_healthz_counts_calls() -> None:
    async def two_questions(call: Call) -> list[str]:
        return [await call.gather("First."), await call.gather("Second.")]

    async with _served() as (fake, url, client):
        phone = await fake.call(two_questions)
        assert await phone.hears() == "First."
        call_id = phone.call_id
        health = await client.get(url.replace("/webhooks", "/healthz"))
        assert health.json() == {"status": "ok", "live_calls": 1}
        payload = {"event": "gather.complete", "callId": call_id, "digits": "1", "timestamp": "x"}
        token = phone.webhook_token
        answer = await client.post(f"{url}/{token}", json=payload)
        assert answer.status_code == 200
        assert answer.json()["delivery"] == "delivered"
        assert await phone.hears() == "Second."
        # The same webhook again is acknowledged, and the second gather does not take it.
        again = await client.post(f"{url}/{token}", json=payload)
        assert again.status_code == 200
        await phone.press("2")
        assert (await phone.result()).value == ["1", "2"]


async def test_wrong_or_missing_token_dispatches_nothing() -> None:
    async with _served() as (fake, url, client):
        phone = await _waiting_call(fake)
        token = phone.webhook_token
        payload = {"event": "gather.complete", "callId": phone.call_id, "digits": "1"}
        forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
        for target in (f"{url}/{forged}", url, f"{url}/nope"):
            answer = await client.post(target, json=payload)
            assert answer.status_code == 403, target
            assert answer.json()["success"] is False
        with pytest.raises(AssertionError, match="waiting for the caller"):
            await phone.hears()  # the flow did not move
        await phone.press("2")
        assert (await phone.result()).value == "2"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "needle"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"\xff\xfe\x00", "application/json", 400, "webhook body"),
        (b"[1, 2]", "application/json", 400, "JSON object"),
        (b'{"event": "call.answered"}', "application/json", 400, "callId"),
        (b'{"callId": 5, "event": "call.answered"}', "application/json", 400, "callId"),
        (
            b'{"callId": "1", "event": "gather.complete", "digits": 12}',
            "application/json",
            400,
            "digits",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 413, "over"),
        (b"callId=1", "text/plain", 415, "JSON"),
    ],
)
async def test_bad_bodies_get_a_clear_4xx(
    body: bytes, content_type: str, status: int, needle: str
) -> None:
    async with _served() as (fake, url, client):
        phone = await _waiting_call(fake)
        answer = await client.post(
            f"{url}/{phone.webhook_token}",
            content=body,
            headers={"content-type": content_type},
        )
        assert answer.status_code == status
        assert needle in answer.json()["error"]


async def test_deep_nesting_under_the_limit_is_a_400() -> None:
    async with _served() as (fake, url, client):
        phone = await _waiting_call(fake)
        body = b"[" * 20_000 + b"]" * 20_000
        answer = await client.post(f"{url}/{phone.webhook_token}", content=body)
        assert answer.status_code == 400


async def test_late_and_unknown_call_events_are_acknowledged_and_recorded() -> None:
    async with _served() as (fake, url, client):
        phone = await _waiting_call(fake)
        token = phone.webhook_token
        # Same token, another call id: authentic sender, odd content: kept, not run.
        odd = {"event": "dtmf.received", "callId": "0000.9", "digit": "5"}
        answer = await client.post(f"{url}/{token}", json=odd)
        assert answer.status_code == 200
        assert fake.runtime.dead_letters[-1].event.call_id == "0000.9"
        await phone.press("1")
        await phone.result()
        late = {"event": "call.ended", "callId": phone.call_id, "status": "completed"}
        answer = await client.post(f"{url}/{token}", json=late)
        assert answer.status_code == 200
        assert answer.json()["delivery"] == "finished-call"
        assert fake.runtime.dead_letters[-1].reason == "the call has finished"


@pytest.mark.parametrize("header", ["webhook-id", "Webhook-Id", "WEBHOOK-ID"])
async def test_a_webhook_id_in_any_case_marks_a_redelivery(header: str) -> None:
    async with _served() as (fake, url, client):
        phone = await _waiting_call(fake)
        target = f"{url}/{phone.webhook_token}"
        first = {"event": "tts.played", "callId": phone.call_id, "playbackId": "a"}
        again = {**first, "timestamp": "2026-01-01T00:00:00.500Z"}  # a retry, restamped
        answers = [
            await client.post(target, json=body, headers={header: "msg_1"})
            for body in (first, again)
        ]
        assert [a.status_code for a in answers] == [200, 200]
        assert [a.json() for a in answers] == [
            {"success": True, "delivery": "delivered"},
            {"success": True, "delivery": "duplicate"},
        ]


async def test_acknowledgement_does_not_wait_for_a_slow_flow() -> None:
    release = anyio.Event()

    async def slow(call: Call) -> str:
        digits = await call.gather("Press 1.")
        await release.wait()  # the flow's work takes as long as it likes
        return digits

    async with _served() as (fake, url, client):
        phone = await fake.call(slow)
        await phone.hears()
        payload = {"event": "gather.complete", "callId": phone.call_id, "digits": "1"}
        with anyio.fail_after(5):
            answer = await client.post(f"{url}/{phone.webhook_token}", json=payload)
        assert answer.status_code == 200
        release.set()
        assert (await phone.result()).value == "1"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # Quart itself is asyncio
async def test_receiver_is_a_mountable_asgi_app() -> None:
    runtime = Runtime(FakeKaphila())
    app = runtime.asgi_app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        answer = await client.get("/healthz")
        assert answer.json() == {"status": "ok", "live_calls": 0}
        answer = await client.post(
            "/webhooks/abc.def", content=json.dumps({"callId": "1", "event": "x"})
        )
        assert answer.status_code == 403


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # Quart itself is asyncio
async def test_a_receiver_mounted_under_a_root_path_takes_webhooks_the_same() -> None:
    async with FakeKaphila() as fake:
        phone = await _waiting_call(fake)
        stamp = "2026-01-01T00:00:00.250Z"
        payload = {
            "event": "dtmf.received",
            "callId": phone.call_id,
            "digit": "7",
            "timestamp": stamp,
        }
        answers = {}
        for root in ("", "/bot"):
            transport = httpx.ASGITransport(app=fake.runtime.receiver(), root_path=root)
            async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
                answer = await client.post(f"{root}/webhooks/{phone.webhook_token}", json=payload)
                answers[root] = (answer.status_code, answer.json())
                forged = await client.post(f"{root}/webhooks/{phone.webhook_token}x", json=payload)
                assert forged.status_code == 403
        assert answers == {
            "": (200, {"success": True, "delivery": "delivered"}),
            "/bot": (200, {"success": True, "delivery": "duplicate"}),  # one key, not two
        }
        await phone.press("1")
        assert (await phone.result()).value == "1"


async def test_event_values_round_trip_through_the_wire() -> None:
    done = events.GatherComplete(call_id="1.2", digits="12", timestamp="t")
    assert events.parse_event(json.loads(json.dumps(done.to_payload()))) == done


async def _metric(client: httpx.AsyncClient, url: str, line_start: str) -> float:
    text = (await client.get(url.replace("/webhooks", "/metrics"))).text
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_body_held_open_is_cut_off_with_408_and_counted() -> None:
    """A client holding a finished call's token sends half a body and waits: the
    receiver answers 408 once the body timeout passes and closes the connection."""
    timed_out = 'kaphila_flow_webhooks_total{outcome="timed_out"}'
    async with (
        FakeKaphila(virtual_time=False, body_timeout=0.5) as fake,
        anyio.create_task_group() as tg,
        httpx.AsyncClient() as client,
    ):
        url = await _serve(fake, tg)
        before = await _metric(client, url, timed_out)
        head = (
            "POST /webhooks/abc.def HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        received = await _raw_exchange(url, head.encode() + b'{"callId": "1.1", "ev')
        assert received.startswith(b"HTTP/1.1 408")
        assert await _metric(client, url, timed_out) == before + 1
        tg.cancel_scope.cancel()


async def _raw_exchange(url: str, request: bytes) -> bytes:
    """Send ``request`` on a fresh connection; everything the server sends until it closes."""
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    stream = await anyio.connect_tcp(host, int(port))
    await stream.send(request)
    received = b""
    with anyio.fail_after(60):  # a safety net only: the server closes it much sooner
        try:
            while chunk := await stream.receive():
                received += chunk
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass  # closed by the server
    await stream.aclose()
    return received


async def test_a_chunked_body_over_the_limit_is_refused_413_as_it_streams() -> None:
    """No Content-Length to refuse up front: the limit holds while the body streams in."""
    async with (
        FakeKaphila(virtual_time=False, max_body_bytes=1024, body_timeout=0.5) as fake,
        anyio.create_task_group() as tg,
    ):
        url = await _serve(fake, tg)
        chunk = b"200\r\n" + b" " * 512 + b"\r\n"
        head = (
            "POST /webhooks/abc.def HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        received = await _raw_exchange(url, head.encode() + chunk * 4)
        assert received.startswith(b"HTTP/1.1 413")
        tg.cancel_scope.cancel()


async def test_malformed_framing_gets_501_from_the_http_layer() -> None:
    """``Transfer-Encoding: gzip, chunked``: hypercorn answers 501; nothing reaches a flow."""
    async with FakeKaphila(virtual_time=False) as fake, anyio.create_task_group() as tg:
        url = await _serve(fake, tg)
        head = (
            "POST /webhooks/abc.def HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        )
        received = await _raw_exchange(url, head.encode() + b"0\r\n\r\n")
        assert received.startswith(b"HTTP/1.1 501")
        tg.cancel_scope.cancel()
