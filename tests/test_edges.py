"""At the edges: keys never lost, and mistakes that explain themselves (asyncio and trio)."""

from __future__ import annotations

import logging
import socket
from typing import Any

import anyio
import httpx
import pytest

from kaphila_flow import Call, CallEnded, MakeCall, Runtime, events
from kaphila_flow.simulator import DEFAULT_KEY, INSTANT, Simulator
from kaphila_flow.testing import (
    FakeKaphila,
    MockTransport,
    default_reply,
    virtual_time,
    virtual_time_available,
)

pytestmark = pytest.mark.anyio


async def test_a_slow_sixteen_digit_entry_is_not_cut_short(kaphila: FakeKaphila) -> None:
    """One key every 2 s: the gather's timeout (3 s) restarts with each key, and so does
    the runtime's own fallback deadline, which a fixed prompt + timeout + grace was not."""

    async def card(call: Call) -> str:
        return await call.gather("Your card number.", num_digits=16, timeout=3)

    number = "4111111111111111"
    phone = await kaphila.call(card)
    await phone.hears()
    for key in number:
        await phone.waits(1.85)  # with the 0.15 s a press takes: one key every 2 s
        await phone.press(key)
    assert (await phone.result()).value == number


async def test_two_presses_of_one_key_within_a_second_both_count(kaphila: FakeKaphila) -> None:
    """The provider's examples stamp whole seconds: two identical dtmf.received payloads
    are two presses, not a redelivery."""

    async def two_keys(call: Call) -> list[str]:
        await call.say("Press two keys.")
        pressed: list[str] = []
        async for key in call.keys(timeout=5):
            pressed.append(key)
            if len(pressed) == 2:
                break
        return pressed

    phone = await kaphila.call(two_keys)
    await phone.hears()
    press = events.DtmfReceived(
        call_id=phone.call_id or "", digit="1", timestamp="2026-01-01T00:00:05Z"
    )
    assert kaphila.runtime.dispatch(press).value == "delivered"
    assert kaphila.runtime.dispatch(press).value == "delivered"
    assert (await phone.result()).value == ["1", "1"]


async def test_a_redelivery_stamped_to_the_millisecond_is_applied_once(
    kaphila: FakeKaphila,
) -> None:
    async def one_key(call: Call) -> str:
        await call.say("Press a key.")
        return (await call.wait_for(events.DtmfReceived, timeout=5)).digit

    phone = await kaphila.call(one_key)
    await phone.hears()
    press = events.DtmfReceived(
        call_id=phone.call_id or "", digit="7", timestamp="2026-01-01T00:00:05.250Z"
    )
    assert kaphila.runtime.dispatch(press).value == "delivered"
    assert kaphila.runtime.dispatch(press).value == "duplicate"
    assert (await phone.result()).value == "7"


async def test_a_plain_function_is_refused_at_once_and_other_calls_go_on(
    kaphila: FakeKaphila,
) -> None:
    async def fine(call: Call) -> str:
        await call.say("Hello.")
        return "fine"

    def not_async(call: Call) -> str:
        return "never"

    live = await kaphila.call(fine)
    with pytest.raises(TypeError, match=r"plain function: write it as `async def not_async"):
        await kaphila.runtime.start("16089270863", not_async)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not the class"):
        await kaphila.runtime.start("16089270863", Call)  # type: ignore[arg-type]
    assert (await live.result()).value == "fine"


async def test_the_number_and_the_flow_swapped_say_so(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> None:
        return None

    with pytest.raises(TypeError, match="the number comes first, then the flow"):
        await kaphila.runtime.dial(flow, "16089270862")  # type: ignore[arg-type]


async def test_a_flow_that_returns_no_coroutine_fails_its_call_only(kaphila: FakeKaphila) -> None:
    async def fine(call: Call) -> str:
        await call.say("Hello.")
        return "fine"

    class Sneaky:
        """A callable that cannot be told from a flow until it is called."""

        def __call__(self, call: Call) -> str:
            return "not a coroutine"

    live = await kaphila.call(fine)
    bad = await kaphila.call(Sneaky())  # type: ignore[arg-type]
    result = await bad.result()
    assert result.status == "failed" and isinstance(result.error, TypeError)
    assert "not a coroutine" in str(result.error)
    assert (await live.result()).value == "fine"


async def test_on_machine_turns_answering_machine_detection_on(kaphila: FakeKaphila) -> None:
    async def menu(call: Call) -> str:
        await call.say("Welcome.")
        return "menu"

    phone = await kaphila.call(menu, answer="machine", on_machine="Please call us back.")
    assert await phone.hears() == "Please call us back."
    result = await phone.result()
    assert result.value == "voicemail" and result.answered_by == "machine"
    placed = [c for c in kaphila.commands if isinstance(c, MakeCall)]
    assert placed[-1].use_amd is True
    with pytest.raises(ValueError, match="on_machine needs answering machine detection"):
        await kaphila.runtime.start("16089270863", menu, use_amd=False, on_machine="Hi.")


async def test_saying_something_after_hanging_up_is_an_error_in_the_result(
    kaphila: FakeKaphila, caplog: pytest.LogCaptureFixture
) -> None:
    async def confused(call: Call) -> str:
        await call.hangup()
        await call.say("Goodbye.")  # the call is over
        return "unreachable"

    result = await (await kaphila.call(confused)).result()
    assert result.status == "completed"
    assert isinstance(result.error, CallEnded)
    assert not any(c.path == "/voice" for c in kaphila.commands)
    assert any("used the call after it hung up" in r.getMessage() for r in caplog.records)


async def test_a_flow_that_loops_on_say_fails_its_test_with_the_transcript(
    kaphila: FakeKaphila,
) -> None:
    async def chatterbox(call: Call) -> None:
        while True:
            await call.say("Are you still there?")

    phone = await kaphila.call(chatterbox)
    with pytest.raises(AssertionError, match=r"(?s)does it loop with no exit\?.*still there"):
        await phone.result()
    await phone.hang_up()


async def test_a_phone_never_driven_is_a_warning() -> None:
    async def waits(call: Call) -> str:
        return await call.gather("Press 1.")

    with pytest.warns(UserWarning, match="never drove its phone"):
        async with FakeKaphila() as kaphila:
            await kaphila.call(waits)
            await anyio.lowlevel.checkpoint()


async def test_an_unknown_callee_behaviour_names_the_choices(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> None:
        return None

    with pytest.raises(ValueError, match="human, machine, unknown, busy, no-answer, held"):
        await kaphila.call(flow, answer="voicemail")
    with pytest.warns(DeprecationWarning, match="'never' is deprecated: use 'no-answer'"):
        phone = await kaphila.call(flow, answer="never", ring_timeout=5)
    assert (await phone.result()).status == "no-answer"


# -- webhook routing that cannot fail silently ------------------------------------------


async def test_a_call_no_webhook_reaches_ends_no_webhooks_naming_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Kaphila placed it, then silence: not "no-answer" but a URL that reaches nothing."""

    async def flow(call: Call) -> str:
        return "never runs"

    url = "https://bot.example.org/kaphila"
    with virtual_time():
        async with Runtime(MockTransport(), webhook_url=url) as runtime:
            result = await runtime.dial("16089270862", flow, ring_timeout=20)
    assert result.status == "no-webhooks"
    assert any(url in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    token = result.call_id or ""
    assert "no webhook arrived" in [entry.text for entry in result.transcript]
    assert token  # it was placed


async def test_the_receiver_serves_the_configured_path_and_checks_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="kaphila_flow")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hooks/kaphila"
    runtime = Runtime(MockTransport(), webhook_url=url)
    async with runtime, anyio.create_task_group() as tg, httpx.AsyncClient() as client:
        served = await tg.start(runtime.serve, f"127.0.0.1:{port}")
        assert served == url
        assert (await client.post(url, json={})).status_code == 403  # its path, no token
        assert (await client.post(f"http://127.0.0.1:{port}/webhooks/x.y")).status_code == 404
        with anyio.fail_after(10):
            while runtime.webhook_url_reaches_receiver is None:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        assert runtime.webhook_url_reaches_receiver is True
        tg.cancel_scope.cancel()
    assert any("reaches this receiver" in r.getMessage() for r in caplog.records)


async def test_a_webhook_url_that_reaches_elsewhere_is_an_error_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "http://127.0.0.1:9/webhooks"  # nothing listens on the discard port
    runtime = Runtime(MockTransport(), webhook_url=wrong)
    async with runtime, anyio.create_task_group() as tg:
        await tg.start(runtime.serve, "127.0.0.1:0")
        with anyio.fail_after(15):
            while runtime.webhook_url_reaches_receiver is None:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert runtime.webhook_url_reaches_receiver is False
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(wrong in e and "does not reach this receiver" in e for e in errors)


async def test_the_simulator_logs_each_failed_delivery_with_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    simulator = Simulator(speed=INSTANT, delivery_attempts=2)
    account = simulator.authenticate(DEFAULT_KEY)
    async with anyio.create_task_group() as tg:
        await tg.start(simulator.run)
        simulator.make_call(
            account, MakeCall("16089270862", webhook_url="http://127.0.0.1:9/hooks/ref.secret")
        )
        with anyio.fail_after(15):
            while not simulator.undelivered:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    failed = [r.getMessage() for r in caplog.records if r.name == "kaphila_flow.simulator"]
    assert any(
        "http://127.0.0.1:9/hooks/ref.<secret>" in m and "attempt 1 of 2" in m for m in failed
    )
    assert not any("secret" in m.replace("<secret>", "") for m in failed)


# -- bounded concurrency -------------------------------------------------------------


async def test_a_thousand_calls_started_at_once_queue_in_the_runtime() -> None:
    """Dials and requests in flight stay within the runtime's limits, however many calls
    start at once: they wait their turn in the runtime, not in the HTTP pool."""
    in_flight = {"dials": 0, "all": 0}
    most = {"dials": 0, "all": 0}

    async def slow_provider(command: Any) -> Any:
        kinds = ("dials", "all") if isinstance(command, MakeCall) else ("all",)
        for kind in kinds:
            in_flight[kind] += 1
            most[kind] = max(most[kind], in_flight[kind])
        try:
            await anyio.sleep(0.2)  # the provider takes its time
            return default_reply(command, call_id=f"{id(command)}.1")
        finally:
            for kind in kinds:
                in_flight[kind] -= 1

    async def greet(call: Call) -> None:
        return None

    with virtual_time():
        runtime = Runtime(
            MockTransport(slow_provider), max_dials_in_flight=5, max_requests_in_flight=8
        )
        async with runtime:
            handles = [await runtime.start("16089270862", greet) for _ in range(1000)]
            with anyio.fail_after(3600):
                placed = [await handle.placed() for handle in handles]
    assert all(placed)
    assert most["dials"] == 5
    assert most["all"] <= 8
    with pytest.raises(ValueError, match="max_dials_in_flight"):
        Runtime(MockTransport(), max_dials_in_flight=0)


async def test_the_kaphila_fixture_runs_on_a_loop_that_jumps(kaphila: FakeKaphila) -> None:
    """The plugin gave anyio's plain backend a loop whose clock can jump, and the fixture
    switched jumping on: an hour on the loop's clock is a jump, not a wait."""
    assert virtual_time_available()
    assert kaphila.virtual_time is True
    before = anyio.current_time()
    await anyio.sleep(3600)
    # The deadline is ``before + 3600`` rounded to the clock's float: compare as such.
    assert anyio.current_time() - before == pytest.approx(3600)
