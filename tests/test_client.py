"""KaphilaClient against httpx.MockTransport: requests, typed replies, the error tree."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from kaphila_flow import (
    ApiError,
    AuthenticationError,
    BadRequest,
    CallNotFound,
    ConfigurationError,
    ConnectError,
    InsufficientCredits,
    InvalidNumber,
    KaphilaError,
    MalformedResponse,
    NetworkError,
    NoTrunks,
    OriginationFailed,
    RateLimited,
    ServerError,
    Timeout,
)
from kaphila_flow._client import KaphilaClient
from kaphila_flow._retry import NO_RETRIES

pytestmark = pytest.mark.anyio
KEY = "ak_live_0123456789abcdef"


class Recorder:
    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._answer(request)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def client_for(answer: Callable[[httpx.Request], httpx.Response]) -> tuple[KaphilaClient, Recorder]:
    recorder = Recorder(answer)
    client = KaphilaClient(
        KEY, transport=httpx.MockTransport(recorder), retry=NO_RETRIES, rate_limit=None
    )
    return client, recorder


def ok(payload: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, json={"success": True, **payload})


async def test_make_call_request_and_typed_reply() -> None:
    reply = {
        "callId": "1758549398.181",
        "status": "ringing",
        "amdEnabled": True,
        "voiceName": "en-US-Neural2-A",
        "credits": 10,
        "ringTimeoutSeconds": 30,
        "trunk": "t1",
        "trunkAttempts": 1,
        "totalTrunks": 2,
        "timestamp": "2025-09-22T13:56:38.365Z",
    }
    client, seen = client_for(ok(reply))
    async with client:
        answer = await client.make_call(
            "+1 (608) 927-0862",
            webhook_url="https://bot.example/w/t",
            caller_id="16085550101",
            use_amd=True,
        )
    request = seen.requests[0]
    assert (request.method, request.url.path) == ("POST", "/makecall")
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert seen.body() == {
        "number": "16089270862",
        "webhookUrl": "https://bot.example/w/t",
        "callerId": "16085550101",
        "useAmd": True,
        "ringTimeout": 30,
    }
    assert answer.call_id == "1758549398.181"
    assert answer.amd_enabled is True and answer.credits == 10 and answer.total_trunks == 2


@pytest.mark.parametrize(
    ("call", "path", "body", "reply"),
    [
        (
            lambda c: c.voice("1.1", "Hello"),
            "/voice",
            {"callId": "1.1", "text": "Hello", "playTo": "bridge"},
            {"message": "TTS played successfully", "playbackId": "tts-1", "method": "bridge"},
        ),
        (
            lambda c: c.play("1.1", "custom/welcome", play_to="channel"),
            "/play",
            {"callId": "1.1", "file": "custom/welcome", "playTo": "channel"},
            {"playbackId": "p"},
        ),
        (
            lambda c: c.gather("1.1", "PIN", num_digits=6, timeout=15, finish_on_key="#"),
            "/gather",
            {
                "callId": "1.1",
                "text": "PIN",
                "numDigits": 6,
                "timeout": 15000,
                "finishOnKey": "#",
                "playTo": "bridge",
            },
            {
                "message": "Gathering 6 digits with 15000ms timeout",
                "expectedDigits": 6,
                "timeoutMs": 15000,
            },
        ),
        (
            lambda c: c.gather("1.1", num_digits=1, valid_digits="12"),
            "/gather",
            {
                "callId": "1.1",
                "numDigits": 1,
                "timeout": 10000,
                "validDigits": "12",
                "playTo": "bridge",
            },
            {},
        ),
        (
            lambda c: c.forward_call("1.1", "+1 608 555 0101"),
            "/forwardcall",
            {"callId": "1.1", "forwardNumber": "16085550101"},
            {"forwardedCallId": "1.2"},
        ),
        (lambda c: c.hangup("1.1"), "/hangup", {"callId": "1.1"}, {"message": "ok"}),
        (
            lambda c: c.batch_call("16089270862"),
            "/batchcall",
            {"number": "16089270862", "useAmd": False, "ringTimeout": 30},
            {"callId": "9.9"},
        ),
        (lambda c: c.stop_recording("1.1"), "/recordings/1.1/stop", {}, {"message": "stopped"}),
        (
            lambda c: c.call_logs(page=2, page_size=5, status="completed"),
            "/api/call-logs",
            {"page": 2, "page_size": 5, "status": "completed"},
            {"logs": [{"callId": "1"}], "total": 1},
        ),
        (lambda c: c.analytics(days=30), "/api/analytics", {"days": 30}, {"days": 30}),
    ],
)
async def test_each_post_endpoint(
    call: Any, path: str, body: dict[str, Any], reply: dict[str, Any]
) -> None:
    client, seen = client_for(ok(reply))
    async with client:
        await call(client)
    assert seen.requests[0].method == "POST"
    assert seen.requests[0].url.path == path
    assert seen.body() == body


async def test_read_endpoints_are_typed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/calls":
            return httpx.Response(
                200,
                json={
                    "success": True,
                    "totalCalls": 1,
                    "activeCalls": 1,
                    "calls": [
                        {
                            "callId": "1.1",
                            "status": "answered",
                            "number": "16089270862",
                            "amd": {"status": "HUMAN"},
                            "gather": None,
                            "recording": None,
                            "voiceName": "v",
                            "hasBridge": False,
                        }
                    ],
                },
            )
        if path == "/calls/1.1":
            return httpx.Response(
                200, json={"success": True, "call": {"callId": "1.1", "status": "answered"}}
            )
        if path == "/health":
            return httpx.Response(
                200,
                json={
                    "status": "ok",
                    "service": "kaphila",
                    "version": "2.0.0",
                    "stats": {"activeCalls": 3},
                    "features": ["amd"],
                },
            )
        if path == "/api/me":
            return httpx.Response(200, json={"success": True, "credits": 42, "rateLimit": 100})
        if path == "/recordings/1.1/download":
            return httpx.Response(
                200, content=b"RIFF....WAVE", headers={"content-type": "audio/wav"}
            )
        if path.startswith("/recordings"):
            return httpx.Response(
                200, json={"success": True, "recordings": [{"filename": "a.wav", "callId": "1.1"}]}
            )
        return httpx.Response(404, json={"success": False, "error": "no"})

    client, seen = client_for(answer)
    async with client:
        calls = await client.list_calls()
        one = await client.get_call("1.1")
        health = await client.health()
        me = await client.me()
        recordings = await client.get_recordings("1.1")
        everything = await client.list_recordings()
        wav = await client.download_recording("1.1")
    assert (
        calls.active_calls == 1 and calls.calls[0].amd is not None and calls.calls[0].amd.is_human
    )
    assert one.status == "answered"
    assert health.active_calls == 3 and health.version == "2.0.0"
    assert (me.credits, me.rate_limit) == (42, 100)
    assert recordings.recordings[0].filename == "a.wav" and len(everything.recordings) == 1
    assert wav.startswith(b"RIFF")
    assert [r.method for r in seen.requests][:4] == ["GET"] * 4


@pytest.mark.parametrize(
    ("status", "payload", "cls"),
    [
        (400, {"error": "Missing or invalid number"}, BadRequest),
        (401, {"error": "Invalid API key"}, AuthenticationError),
        (402, {"error": "Insufficient credits"}, InsufficientCredits),
        (404, {"error": "Call not found"}, CallNotFound),
        (429, {"error": "Rate limit exceeded"}, RateLimited),
        (500, {"error": "boom"}, ServerError),
        (
            500,
            {
                "error": "All trunks failed",
                "code": "ORIGINATION_FAILED",
                "attemptedTrunks": ["a", "b"],
            },
            OriginationFailed,
        ),
        (503, {"error": "No trunks assigned"}, NoTrunks),
        (418, {"error": "teapot"}, BadRequest),
        (502, {"error": "bad gateway"}, ServerError),
    ],
)
async def test_error_envelope_maps_to_the_tree(
    status: int, payload: dict[str, Any], cls: type[ApiError]
) -> None:
    body = {"success": False, **payload}
    client, _ = client_for(
        lambda request: httpx.Response(status, json=body, headers={"Retry-After": "7"})
    )
    async with client:
        with pytest.raises(cls) as caught:
            await client.voice("1.1", "Hi")
    error = caught.value
    assert isinstance(error, KaphilaError)
    assert error.status_code == status
    assert error.message == payload["error"]
    assert error.endpoint == "/voice"
    assert error.retry_after == 7.0
    assert KEY not in str(error) and KEY not in repr(error)
    if cls is OriginationFailed:
        assert error.code == "ORIGINATION_FAILED"
        assert error.details["attemptedTrunks"] == ["a", "b"]


async def test_success_false_on_200_is_an_error() -> None:
    client, _ = client_for(lambda r: httpx.Response(200, json={"success": False, "error": "nope"}))
    async with client:
        with pytest.raises(BadRequest, match="nope"):
            await client.hangup("1.1")


@pytest.mark.parametrize(
    ("response", "needle"),
    [
        (httpx.Response(200, content=b"<html>"), "not JSON"),
        (httpx.Response(200, json=[1, 2]), "not an object"),
        (httpx.Response(200, json={"success": True}), "callId"),
    ],
)
async def test_malformed_answers(response: httpx.Response, needle: str) -> None:
    client, _ = client_for(lambda r: response)
    async with client:
        with pytest.raises(MalformedResponse, match=needle):
            await client.make_call("16089270862")


async def test_non_json_error_body_still_maps_by_status() -> None:
    client, _ = client_for(lambda r: httpx.Response(503, content=b"Service Unavailable"))
    async with client:
        with pytest.raises(NoTrunks, match="Service Unavailable"):
            await client.make_call("16089270862")


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ConnectError("refused"), ConnectError),
        (httpx.ConnectTimeout("slow connect"), ConnectError),
        (httpx.PoolTimeout("no connection free"), ConnectError),  # never left the process
        (httpx.ReadTimeout("slow read"), Timeout),
        (httpx.RemoteProtocolError("closed"), NetworkError),
    ],
)
async def test_network_failures(exc: Exception, cls: type[KaphilaError]) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    client, _ = client_for(fail)
    async with client:
        with pytest.raises(cls) as caught:
            await client.voice("1.1", "Hi")
    assert caught.value.endpoint == "/voice"  # type: ignore[attr-defined]
    assert not isinstance(caught.value, ConnectError) or cls is ConnectError


async def test_invalid_number_sends_nothing() -> None:
    client, seen = client_for(ok({"callId": "1"}))
    async with client:
        with pytest.raises(InvalidNumber):
            await client.make_call("12345")
        with pytest.raises(InvalidNumber):
            await client.forward_call("1.1", "not a number")
    assert seen.requests == []


async def test_key_never_in_repr_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client, _ = client_for(
        lambda r: httpx.Response(401, json={"success": False, "error": "Invalid API key"})
    )
    async with client:
        assert KEY not in repr(client)
        with pytest.raises(AuthenticationError):
            await client.voice("1.1", "Hi")
    assert caplog.records, "the client logs its requests"
    assert not any(KEY in record.getMessage() for record in caplog.records)


def test_plain_http_only_to_loopback() -> None:
    with pytest.raises(ConfigurationError, match="clear text"):
        KaphilaClient(KEY, base_url="http://kaphila.example")
    KaphilaClient(KEY, base_url="http://127.0.0.1:8000")
    KaphilaClient(KEY, base_url="http://localhost:8000")
    KaphilaClient(KEY, base_url="http://[::1]:8000")
    KaphilaClient(KEY, base_url="http://kaphila.example", allow_insecure=True)
    with pytest.raises(ConfigurationError, match="non-empty"):
        KaphilaClient("  ")
    with pytest.raises(ConfigurationError, match="http"):
        KaphilaClient(KEY, base_url="kaphila.com")


async def test_voice_waits_as_long_as_the_text_takes_to_speak() -> None:
    """``/voice`` answers after playback: its read timeout grows with the text."""
    client, seen = client_for(ok({"message": "TTS played successfully"}))
    long_text = " ".join(["word"] * 1000)  # 400 s at 150 words a minute
    async with client:
        await client.voice("1.1", "Hello.")
        await client.voice("1.1", long_text)
        await client.gather("1.1", "Press 1.")
        await client.play("1.1", "custom/welcome")
    short, long, gather, play = (r.extensions["timeout"]["read"] for r in seen.requests)
    assert long >= 400  # no fixed ceiling cuts a long message short
    assert long - short >= 400 - 1
    assert short < 60  # and a short one does not wait minutes for a dead line
    assert gather < short  # other requests keep the client's own timeout
    assert play > gather  # a sound file's length is unknown: room for one
    patient = KaphilaClient(
        KEY, transport=httpx.MockTransport(seen), retry=NO_RETRIES, rate_limit=None, timeout=5.0
    )
    async with patient:
        await patient.voice("1.1", long_text)
    assert seen.requests[-1].extensions["timeout"]["read"] >= 405
