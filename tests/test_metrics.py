"""Prometheus metrics: scraped from ``/metrics`` after real calls, and counted one by one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kaphila_flow import (
    Call,
    CallingHours,
    Campaign,
    KaphilaClient,
    Metrics,
    RetryRules,
    Runtime,
    Timeout,
    events,
)
from kaphila_flow._ratelimit import HourlyLimiter
from kaphila_flow.simulator import Callee, KeyStep
from kaphila_flow.testing import FakeKaphila

from .integration import runtime_for, set_callee, simulator

pytestmark = pytest.mark.anyio

NUMBER = "16089270862"


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series was never touched."""
    return scrape(text).get((name, frozenset(labels.items())), 0.0)


def labelled(text: str, name: str) -> Iterator[tuple[dict[str, str], float]]:
    for (sample, labels), number in scrape(text).items():
        if sample == name:
            yield dict(labels), number


async def menu(call: Call) -> str:
    await call.say("Welcome.")
    return str(await call.menu("Press 1 for sales, 2 for support.", {"1": "sales", "2": "support"}))


@pytest.mark.integration
async def test_metrics_endpoint_after_a_real_call() -> None:
    with simulator() as sim:
        set_callee(sim, NUMBER, Callee(keys=(KeyStep("2"),)))
        async with runtime_for(sim) as runtime, httpx.AsyncClient() as http:
            result = await runtime.dial(NUMBER, menu)
            assert result.status == "completed" and result.value == "support"
            assert runtime.webhook_url is not None
            base = runtime.webhook_url.removesuffix("/webhooks")
            emitted = sim.simulator.events
            webhooks = "kaphila_flow_webhooks_total"
            # Webhooks after the hangup (call.ended, recording.*) may still be on the way.
            with anyio.fail_after(30):
                while True:
                    text = (await http.get(f"{base}/metrics")).text
                    received = sum(n for _, n in labelled(text, webhooks))
                    if received >= len(emitted):
                        break
                    await anyio.sleep(0.01)
            answer = await http.get(f"{base}/metrics")
            assert answer.headers["content-type"].startswith("text/plain; version=")
            text = answer.text
            assert value(text, "kaphila_flow_calls_started_total") == 1
            assert value(text, "kaphila_flow_calls_finished_total", status="completed") == 1
            assert value(text, "kaphila_flow_live_calls") == 0
            # Each webhook the simulator sent: delivered to the call, or late (after its end).
            outcomes = {labels["outcome"]: n for labels, n in labelled(text, webhooks) if n}
            assert outcomes.keys() <= {"delivered", "late"}
            assert outcomes["delivered"] + outcomes.get("late", 0) == len(emitted)
            assert outcomes["delivered"] >= 3  # answered, gather.complete, ...
            # Every request the simulator admitted, by endpoint, with its 200.
            sent = Counter(path for path, _body in sim.simulator.requests)
            assert sent["/makecall"] == sent["/voice"] == sent["/gather"] == sent["/hangup"] == 1
            for path, count in sent.items():
                assert (
                    value(text, "kaphila_flow_provider_requests_total", endpoint=path, status="200")
                    == count
                )
            # Steps: answered -> /voice, gather.complete -> /hangup, and maybe a playback
            # event before /gather; never more steps than commands after /makecall.
            steps = value(text, "kaphila_flow_step_latency_seconds_count")
            assert 2 <= steps <= sent.total() - 1
            assert value(text, "kaphila_flow_step_latency_seconds_bucket", le="+Inf") == steps
            assert value(text, "kaphila_flow_provider_retries_total", endpoint="/voice") == 0

            # Webhooks the receiver refuses or keeps as late are counted too.
            url = next(iter(sim.simulator.calls.values())).model.request.webhook_url
            assert url is not None
            late = {"event": "call.ended", "callId": result.call_id, "timestamp": "late"}
            assert (await http.post(url, json=late)).json()["delivery"] == "finished-call"
            assert (await http.post(f"{base}/webhooks/nope.nope", json=late)).status_code == 403
            assert (await http.post(url, content=b"{not json")).status_code == 400
            assert (await http.post(url, content=b" " * 70_000)).status_code == 413
            text = (await http.get(f"{base}/metrics")).text
            assert value(text, webhooks, outcome="late") == outcomes.get("late", 0) + 1
            assert value(text, "kaphila_flow_webhooks_total", outcome="rejected") == 1
            assert value(text, "kaphila_flow_webhooks_total", outcome="invalid") == 2

            # The simulator serves its own counters.
            own = (await http.get(f"{sim.base_url}/metrics")).text
        assert value(own, "kaphila_simulator_calls_placed_total") == 1
        assert value(own, "kaphila_simulator_webhooks_total", outcome="acknowledged") == len(
            emitted
        )
        assert value(own, "kaphila_simulator_webhooks_total", outcome="failed") == 0
        assert (
            value(own, "kaphila_simulator_requests_total", endpoint="/makecall", status="200") == 1
        )
        assert value(own, "kaphila_simulator_requests_total", endpoint="/gather", status="200") == 1


async def test_calls_by_final_status_live_calls_and_webhook_outcomes() -> None:
    async def crashes(call: Call) -> None:
        await call.say("One moment.")
        raise RuntimeError("bug in the flow")

    webhooks = "kaphila_flow_webhooks_total"
    async with FakeKaphila() as kaphila:
        metrics = kaphila.runtime.metrics
        phone = await kaphila.call(menu)
        assert await phone.hears() == "Welcome."
        live = scrape(metrics.exposition().decode())
        assert live[("kaphila_flow_live_calls", frozenset())] == 1
        # A repeat of a webhook already delivered, and one for a call nobody knows.
        answered = events.CallAnswered(call_id=phone.call_id, timestamp="t0")
        kaphila.runtime.dispatch(answered)
        kaphila.runtime.dispatch(answered)
        unknown_before = value(metrics.exposition().decode(), webhooks, outcome="unknown_call")
        stray = events.CallEnded(call_id="nobody", timestamp="t1")
        kaphila.runtime.dispatch(stray)
        unknown = value(metrics.exposition().decode(), webhooks, outcome="unknown_call")
        assert unknown == unknown_before + 1
        assert await phone.hears() == "Press 1 for sales, 2 for support."
        await phone.press("1")
        assert (await phone.result()).status == "completed"
        await (await kaphila.call(menu, answer="no-answer")).result()
        failing = await kaphila.call(crashes)
        assert await failing.hears() == "One moment."
        assert (await failing.result()).status == "failed"
    text = metrics.exposition().decode()
    assert value(text, "kaphila_flow_calls_started_total") == 3
    assert value(text, "kaphila_flow_calls_finished_total", status="completed") == 1
    assert value(text, "kaphila_flow_calls_finished_total", status="no-answer") == 1
    assert value(text, "kaphila_flow_calls_finished_total", status="failed") == 1
    assert value(text, "kaphila_flow_live_calls") == 0
    assert value(text, webhooks, outcome="duplicate") == 1
    # No series is labelled with a call id or a number: label values come from fixed sets.
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for label in sample.labels.values():
                assert phone.call_id not in label and "1608" not in label


def test_step_latency_runs_from_the_webhook_to_the_next_command() -> None:
    """On trio's mock clock, so the flow's pause is exact and takes no real time."""
    import trio
    from trio.testing import MockClock

    # Virtual time: the flow "thinks" 2.5 s after the keys before its next command.
    async def slow_thinker(call: Call) -> str:
        digits = await call.gather("Your code.", num_digits=2)
        await anyio.sleep(2.5)
        await call.say("Thanks.")
        return digits

    async def scenario() -> Metrics:
        async with FakeKaphila(patience=60) as kaphila:
            phone = await kaphila.call(slow_thinker)
            assert await phone.hears() == "Your code."
            await phone.press("42")
            assert await phone.hears() == "Thanks."
            assert (await phone.result()).value == "42"
            return kaphila.runtime.metrics

    metrics = trio.run(scenario, clock=MockClock(autojump_threshold=0))
    text = metrics.exposition().decode()
    # Steps: answered -> /gather (no virtual time), gather.complete -> /voice (2.5 s),
    # the playback's webhooks -> /hangup.
    assert value(text, "kaphila_flow_step_latency_seconds_bucket", le="2.5") == value(
        text, "kaphila_flow_step_latency_seconds_count"
    )
    assert (
        value(text, "kaphila_flow_step_latency_seconds_bucket", le="1.0")
        == value(text, "kaphila_flow_step_latency_seconds_count") - 1
    )
    assert value(text, "kaphila_flow_step_latency_seconds_sum") == pytest.approx(2.5)


def _client(handler: Any, **options: Any) -> KaphilaClient:
    return KaphilaClient(
        "ak_test_metrics_key",
        base_url="http://127.0.0.1:9",
        transport=httpx.MockTransport(handler),
        **options,
    )


async def test_requests_retries_and_rate_limit_waits_of_the_client() -> None:
    hangups = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal hangups
        if request.url.path == "/hangup":
            hangups += 1
            if hangups == 1:
                return httpx.Response(
                    429, json={"error": "slow down"}, headers={"Retry-After": "0"}
                )
            return httpx.Response(200, json={"success": True, "message": "ok", "callId": "c1"})
        if request.url.path.startswith("/calls/"):
            return httpx.Response(200, json={"success": True, "call": {"callId": "1712.5"}})
        if request.url.path == "/voice":
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json={"success": True, "message": "played"})

    now = 0.0

    def clock() -> float:
        return now

    async def sleep(seconds: float) -> None:
        nonlocal now
        now += seconds

    limiter = HourlyLimiter(2, window=60.0, clock=clock, sleep=sleep)
    async with _client(handler, rate_limit=limiter) as client:
        await client.hangup("c1")  # 429, then 200: one retry, one slot each
        await client.get_call("1712.5")
        await client.play("c1", "hello.wav")  # the third counted request waits a window
        with pytest.raises(Timeout):
            await client.voice("c1", "Hello.")
    text = client.metrics.exposition().decode()
    assert (
        value(text, "kaphila_flow_provider_requests_total", endpoint="/hangup", status="429") == 1
    )
    assert (
        value(text, "kaphila_flow_provider_requests_total", endpoint="/hangup", status="200") == 1
    )
    assert value(text, "kaphila_flow_provider_retries_total", endpoint="/hangup") == 1
    assert (
        value(text, "kaphila_flow_provider_requests_total", endpoint="/voice", status="timeout")
        == 1
    )
    # The call id in the path is not a label: one series for every call.
    assert (
        value(
            text, "kaphila_flow_provider_requests_total", endpoint="/calls/{call_id}", status="200"
        )
        == 1
    )
    assert "1712.5" not in text
    assert value(text, "kaphila_flow_rate_limit_wait_seconds_count") == 1
    assert value(text, "kaphila_flow_rate_limit_wait_seconds_sum") == 60.0


async def test_a_runtime_shares_its_clients_metrics_and_each_runtime_has_its_own() -> None:
    client = _client(lambda request: httpx.Response(200, json={"success": True}))
    async with client:
        first, second = Runtime(client), Runtime(client, metrics=Metrics())
        assert first.metrics is client.metrics
        assert second.metrics is not client.metrics
        async with FakeKaphila() as one, FakeKaphila() as two:
            assert one.runtime.metrics is not two.runtime.metrics
            await (await one.call(menu, answer="no-answer")).result()
            text = two.runtime.metrics.exposition().decode()
            assert value(text, "kaphila_flow_calls_started_total") == 0


@pytest.mark.integration
async def test_campaign_progress_as_metrics() -> None:
    async def hello(call: Call) -> str:
        await call.say("Hi.")
        return "said"

    numbers = ["16085550001", "16085550002", "16085550003"]
    with simulator() as sim:
        set_callee(sim, numbers[2], Callee(answer="no-answer"))
        async with runtime_for(sim, ring_grace=60.0) as runtime:
            campaign = Campaign(
                runtime,
                hello,
                numbers,
                calling_hours=CallingHours.always(),
                retries=RetryRules(no_answer=0),
            )
            summary = await campaign.run()
            text = runtime.metrics.exposition().decode()
    assert summary.by_status == Counter({"completed": 2, "no-answer": 1})
    assert value(text, "kaphila_flow_campaign_contacts") == 3
    assert value(text, "kaphila_flow_campaign_remaining_contacts") == 0
    assert value(text, "kaphila_flow_campaign_finished_contacts", result="completed") == 2
    assert value(text, "kaphila_flow_campaign_finished_contacts", result="failed") == 1
    assert value(text, "kaphila_flow_campaign_placed_calls") == 3
    assert sum(n for _, n in labelled(text, "kaphila_flow_campaign_answered_calls")) == 2
    assert value(text, "kaphila_flow_campaign_live_calls") == 0


def test_metrics_objects_never_share_a_registry() -> None:
    one, two = Metrics(), Metrics()
    one.call_started()
    assert value(one.exposition().decode(), "kaphila_flow_calls_started_total") == 1
    assert value(two.exposition().decode(), "kaphila_flow_calls_started_total") == 0
    # Outside an event loop, a webhook is still counted (no step can be timed).
    two.webhook("delivered", "c1")
    two.command("c1")
    text = two.exposition().decode()
    assert value(text, "kaphila_flow_webhooks_total", outcome="delivered") == 1
    assert value(text, "kaphila_flow_step_latency_seconds_count") == 0
