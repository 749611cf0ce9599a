"""The client under faults: what is retried (and what never is), and the rate limiter."""

from __future__ import annotations

import random
from collections.abc import Callable

import httpx
import pytest

from kaphila_flow import NetworkError, RateLimited, ServerError, Timeout
from kaphila_flow._client import KaphilaClient
from kaphila_flow._ratelimit import HourlyLimiter, limiter_for_key
from kaphila_flow._retry import RetryPolicy

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(attempts=4, backoff=0.0, rng=random.Random(1))
OK = {"success": True, "callId": "1.1", "message": "ok", "calls": []}


def scripted(*steps: object) -> tuple[KaphilaClient, list[str]]:
    """Each request gets the next step: an exception to raise or a status to answer."""
    seen: list[str] = []
    queue = list(steps)

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        step = queue.pop(0) if queue else 200
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, int)
        body = OK if step == 200 else {"success": False, "error": f"status {step}"}
        headers = {"Retry-After": "0"} if step == 429 else {}
        return httpx.Response(step, json=body, headers=headers)

    client = KaphilaClient(
        "ak_test", transport=httpx.MockTransport(answer), retry=FAST, rate_limit=None
    )
    return client, seen


async def test_connect_failure_is_retried_even_for_makecall() -> None:
    client, seen = scripted(httpx.ConnectError("refused"), 200)
    async with client:
        assert (await client.make_call("16089270862")).call_id == "1.1"
    assert seen == ["/makecall", "/makecall"]


async def test_429_is_retried_for_every_endpoint() -> None:
    client, seen = scripted(429, 429, 200)
    async with client:
        await client.voice("1.1", "Hello")
    assert seen == ["/voice"] * 3


@pytest.mark.parametrize(
    "failure", [500, 502, httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut")]
)
@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.make_call("16089270862"),
        lambda c: c.batch_call("16089270862"),
        lambda c: c.voice("1.1", "Hi"),
        lambda c: c.play("1.1", "custom/x"),
        lambda c: c.gather("1.1", "Press 1."),
        lambda c: c.forward_call("1.1", "16085550101"),
    ],
)
async def test_never_repeated_where_a_repeat_could_do_harm(
    failure: object, send: Callable[..., object]
) -> None:
    client, seen = scripted(failure, 200)
    async with client:
        with pytest.raises((ServerError, Timeout, NetworkError)):
            await send(client)  # type: ignore[misc]
    assert len(seen) == 1


@pytest.mark.parametrize(
    "failure", [500, 503, httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut")]
)
@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.hangup("1.1"),
        lambda c: c.list_calls(),
        lambda c: c.get_call("1.1"),
        lambda c: c.health(),
    ],
)
async def test_harmless_requests_are_retried(failure: object, send: Callable[..., object]) -> None:
    client, seen = scripted(failure, failure, 200)
    async with client:
        await send(client)  # type: ignore[misc]
    assert len(seen) == 3


async def test_retries_give_up_after_the_attempts() -> None:
    client, seen = scripted(429, 429, 429, 429, 429)
    async with client:
        with pytest.raises(RateLimited):
            await client.gather("1.1")
    assert len(seen) == 4


def test_backoff_is_full_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(attempts=6, backoff=1.0, max_backoff=8.0, rng=random.Random(7))
    error = ServerError("x", status_code=500)
    for attempt in range(1, 6):
        delay = policy.delay(attempt, error)
        assert delay is not None and 0 <= delay <= min(8.0, 2 ** (attempt - 1))
    assert policy.delay(6, error) is None
    assert policy.delay(1, RateLimited("slow down", retry_after=42.0)) == 42.0
    assert policy.delay(1, RateLimited("slow down", retry_after=9999.0)) is None


async def test_hourly_limiter_waits_for_the_window() -> None:
    now = [0.0]
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)
        now[0] += seconds

    limiter = HourlyLimiter(3, clock=lambda: now[0], sleep=fake_sleep)
    for _ in range(3):
        await limiter.acquire()
        now[0] += 10
    assert limiter.remaining == 0
    await limiter.acquire()  # the fourth waits until the first leaves the hour
    assert waited == [3600 - 30]
    assert limiter.remaining == 0


async def test_client_counts_only_the_counted_endpoints_and_reads_the_limit() -> None:
    now = [0.0]
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)
        now[0] += seconds

    limiter = HourlyLimiter(2, clock=lambda: now[0], sleep=fake_sleep)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/me":
            return httpx.Response(200, json={"success": True, "rateLimit": 3, "credits": 5})
        return httpx.Response(200, json=OK)

    async with KaphilaClient(
        "ak_t", transport=httpx.MockTransport(answer), rate_limit=limiter
    ) as client:
        await client.voice("1.1", "a")
        await client.list_calls()  # reads are not counted
        await client.health()
        await client.voice("1.1", "b")
        assert waited == []
        assert await client.sync_rate_limit() == 3
        await client.voice("1.1", "c")  # the limit is 3 now
        assert waited == []
        await client.voice("1.1", "d")
        assert waited == [3600.0]


def test_clients_with_one_key_share_a_limiter() -> None:
    assert limiter_for_key("ak_same") is limiter_for_key("ak_same")
    assert limiter_for_key("ak_same") is not limiter_for_key("ak_other")
    assert "ak_same" not in repr(limiter_for_key("ak_same"))
