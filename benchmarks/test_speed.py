"""Flow tests per second through FakeKaphila, against the runtime alone (the floor).

The fake: the menu flow's test, driven by its ``Phone``, in virtual time (as the
``kaphila`` fixture runs it), one flow after another. The floor: the same flow on a
``Runtime`` whose transport answers at once and posts the same seven webhooks through
``Runtime.receive_webhook``, with no provider model and no phone. The ratio says how
much the test harness adds to what the runtime costs anyway. One core, both backends.

Every figure here is per second of the process's own CPU time (``time.process_time``):
tests per second per core, as the goal reads, and steady while other processes share
the machine (wall-clock time would count the moments they ran instead).
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from kaphila_flow import Call, Runtime
from kaphila_flow._callees import KEY_GAP, Callee
from kaphila_flow._commands import Command, ForwardCall, Gather, MakeCall, Voice
from kaphila_flow._provider import Account, Provider
from kaphila_flow._provider._host import ProviderHost
from kaphila_flow._wake import Parking
from kaphila_flow.testing import FakeKaphila, default_reply, virtual_time, virtual_time_backend

from ._report import Row

SALES = "16085550101"
WEBHOOK_URL = "https://receiver.invalid/webhooks"


async def menu(call: Call) -> str:
    await call.say("Welcome to our company.")
    choice = await call.gather("Press 1 for sales, 2 for support.", num_digits=1)
    if choice == "1":
        await call.forward(SALES)
    return choice


async def _fake_flows(count: int) -> float:
    async with FakeKaphila() as kaphila:
        started = time.process_time()
        for n in range(count):
            phone = await kaphila.call(menu, number=f"1608555{n % 10000:04d}")
            assert await phone.hears() == "Welcome to our company."
            assert await phone.hears() == "Press 1 for sales, 2 for support."
            await phone.press("1")
            assert await phone.forwarded_to() == SALES
            assert (await phone.result()).value == "1"
        return count / (time.process_time() - started)


def _body(call_id: str, event: str, at: str, extra: str = "") -> bytes:
    return (
        f'{{"callId": "{call_id}", "event": "{event}", '
        f'"timestamp": "2026-01-01T00:00:{at}Z"{extra}}}'
    ).encode()


class InstantKaphila:
    """Answers every command at once and posts the webhooks the fake posts for the menu
    flow (call.initiated, call.answered, recording.started, tts.played, gather.started,
    dtmf.received, gather.complete) straight into the runtime's intake."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.placed = 0
        self.answer_gathers = True
        self._tokens: dict[str, str] = {}

    def _post(self, call_id: str, *bodies: bytes) -> None:
        assert self.runtime is not None
        token = self._tokens[call_id]
        for body in bodies:
            self.runtime.receive_webhook(token, body)

    async def send(self, command: Command[Any]) -> Any:
        if isinstance(command, MakeCall):
            self.placed += 1
            call_id = f"{self.placed}.1"
            self._tokens[call_id] = (command.webhook_url or "").rsplit("/", 1)[-1]
            recording = ', "recording": {"filename": "a.wav", "recordingId": "r", "active": true}'
            self._post(
                call_id,
                _body(call_id, "call.initiated", "00.000", ', "status": "ringing"'),
                _body(call_id, "call.answered", "00.000", ', "status": "answered"'),
                _body(call_id, "recording.started", "00.000", recording),
            )
            return default_reply(command, call_id=call_id)
        call_id = getattr(command, "call_id", "")
        if isinstance(command, Gather) and not self.answer_gathers:
            pass
        elif isinstance(command, Gather):
            self._post(call_id, _body(call_id, "gather.started", "01.600"))
            self._post(
                call_id,
                _body(call_id, "dtmf.received", "01.750", ', "digit": "1"'),
                _body(call_id, "gather.complete", "01.750", ', "digits": "1"'),
            )
        elif not isinstance(command, ForwardCall):  # a Voice: played at once
            self._post(call_id, _body(call_id, "tts.played", "01.600", ', "playbackId": "p"'))
        if isinstance(command, ForwardCall):
            self._tokens.pop(call_id, None)
        return default_reply(command, call_id=call_id)

    async def aclose(self) -> None:
        return None


async def _floor_flows(count: int) -> float:
    transport = InstantKaphila()
    runtime = Runtime(transport, webhook_url=WEBHOOK_URL)
    transport.runtime = runtime
    async with runtime:
        started = time.process_time()
        for n in range(count):
            handle = await runtime.start(f"1608555{n % 10000:04d}", menu)
            result = await handle.result()
            assert result.value == "1" and result.forwarded_to == SALES, result
        return count / (time.process_time() - started)


async def _webhooks(count: int) -> float:
    """Microseconds per informational webhook (key, progress, playback) to a call parked
    in a gather, the loop let run after each, less the cost of that loop round alone."""
    transport = InstantKaphila()
    runtime = Runtime(transport, webhook_url=WEBHOOK_URL)
    transport.runtime = runtime
    kinds = (
        ("dtmf.received", ', "digit": "1"'),
        ("gather.progress", ', "digits": "1"'),
        ("tts.played", ', "playbackId": "p"'),
        ("gather.started", ""),
    )

    async def parked(call: Call) -> str:
        return await call.gather("Your account number?", num_digits=20, timeout=86_400)

    async with runtime:
        transport.answer_gathers = False
        handle = await runtime.start("16089270862", parked)
        await handle.placed()
        token = (handle.webhook_url or "").rsplit("/", 1)[-1]
        call_id = handle.call_id or ""
        for _ in range(20):  # until it waits in the gather
            await anyio.lowlevel.checkpoint()
        bodies = [
            _body(
                call_id, kinds[n % 4][0], f"{n % 60:02d}.{n % 1000:03d}", kinds[n % 4][1]
            ).replace(b"T00:00", f"T{n // 60000:02d}:{n // 1000 % 60:02d}".encode())
            for n in range(count)
        ]
        started = time.process_time()
        for body in bodies:
            runtime.receive_webhook(token, body)
            await anyio.lowlevel.checkpoint()  # what it woke runs now
        total = time.process_time() - started
        started = time.process_time()
        for _ in bodies:
            await anyio.lowlevel.checkpoint()
        total -= time.process_time() - started
        runtime.receive_webhook(
            token, _body(call_id, "gather.complete", "59.999", ', "digits": "1"')
        )
        await handle.result()
    return total / count * 1e6


def _model_calls(count: int) -> float:
    """Microseconds per menu call of the provider model alone: the fake's commands and
    times fed to ``Provider`` directly, its webhooks taken, with no loop, no runtime, no
    phone and no delivery (what any fake built on the one model pays at the least)."""
    provider = Provider(accounts={"bench": Account(credits=10**9, rate_limit=10**9)})
    account = provider.authenticate("bench")
    callee = Callee("human", answer_after=0.0)
    now = 1_767_225_600.0
    taken = 0

    def menu_call(n: int, now: float) -> float:
        nonlocal taken
        number = f"1608555{n % 10000:04d}"
        provider.expect_call(number, callee)
        placed = provider.handle(account, MakeCall(number=number, webhook_url=WEBHOOK_URL), now)
        call_id = placed.call_id
        taken += len(provider.take_webhooks(now))
        provider.advance(now)  # the callee answers at once
        taken += len(provider.take_webhooks(now))
        greeting = provider.handle(account, Voice(call_id=call_id, text="Welcome."), now)
        now = provider.next_deadline() or now  # the greeting's end
        provider.advance(now)
        provider.take_finished_playbacks()
        taken += len(provider.take_webhooks(now))
        provider.playback_reply(greeting)
        menu = Gather(call_id=call_id, text="Press 1 for sales, 2 for support.", num_digits=1)
        provider.handle(account, menu, now)
        taken += len(provider.take_webhooks(now))
        provider.press_keys(call_id, "1", now + KEY_GAP)
        now = provider.next_deadline() or now  # the key
        provider.advance(now)
        taken += len(provider.take_webhooks(now))
        provider.handle(account, ForwardCall(call_id=call_id, forward_number=SALES), now)
        taken += len(provider.take_webhooks(now))
        return now

    for n in range(200):  # warm-up
        now = menu_call(n, now)
    taken = 0
    started = time.process_time()
    for n in range(count):
        now = menu_call(n, now)
    elapsed = time.process_time() - started
    assert taken == 7 * count, taken  # the seven webhooks of a menu test, every call
    return elapsed / count * 1e6


async def _task_switches(count: int) -> float:
    """Microseconds per task switch as a fake test makes them: one task parks, another
    wakes it and parks in turn (the wake, the loop's step, the park)."""
    mine, other = Parking(), Parking()

    async def partner() -> None:
        for _ in range(count):
            await other.park()
            mine.notify()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(partner)
        while not other.parked:  # a wake before it parks would be lost
            await anyio.lowlevel.checkpoint()
        started = time.process_time()
        for _ in range(count):
            other.notify()
            await mine.park()
        elapsed = time.process_time() - started
    return elapsed / (2 * count) * 1e6


async def _timed_wakes(count: int) -> float:
    """Microseconds per timed wake as a fake test makes them (a greeting's end, a key's
    moment): a task parks until a time later in virtual time, every other task waits,
    the loop's clock jumps there, the provider's scheduler runs its round and wakes it."""
    host = ProviderHost(Provider(), origin=1_767_225_600.0, on_webhooks=lambda _: None)
    parking = Parking()
    with virtual_time():
        async with anyio.create_task_group() as tasks:
            await tasks.start(host.run)
            started = time.process_time()
            for _ in range(count):
                host.alarm(host.loop_now() + KEY_GAP, parking.notify)
                await parking.park()
            elapsed = time.process_time() - started
            tasks.cancel_scope.cancel()
    return elapsed / count * 1e6


def _run(flows: Any, count: int, backend: str) -> float:
    name, options = virtual_time_backend(backend)
    return float(anyio.run(flows, count, backend=name, backend_options=options))


def measure(count: int, rounds: int = 7) -> dict[str, dict[str, float]]:
    """The fake's and the floor's flows/s on each backend, in alternating rounds, and
    the parts' costs: each the best of its rounds, with the spread of the two rates.

    The best, not the median: these are CPU-bound loops in one process, and what other
    processes do to the machine (caches, the core's clock) only ever slows a round, so
    the fastest round of each side is the steadiest reading of what the code costs
    (as ``timeit`` reads its repeats). Both sides are read the same way."""
    figures: dict[str, dict[str, float]] = {}
    model = min(_model_calls(count) for _ in range(rounds))
    for backend in ("asyncio", "trio"):
        _run(_fake_flows, 50, backend)  # warm-up
        _run(_floor_flows, 50, backend)
        fake: list[float] = []
        floor: list[float] = []
        for _ in range(rounds):
            fake.append(_run(_fake_flows, count, backend))
            floor.append(_run(_floor_flows, count, backend))
        figures[backend] = {
            "fake": max(fake),
            "floor": max(floor),
            "fake_low": min(fake),
            "floor_low": min(floor),
            "webhook_us": min(_run(_webhooks, 20_000, backend) for _ in range(rounds)),
            "switch_us": min(_run(_task_switches, 50_000, backend) for _ in range(rounds)),
            "wake_us": min(_run(_timed_wakes, 20_000, backend) for _ in range(rounds)),
            "model_us": model,
        }
    return figures


#: What a fake menu test does that the runtime alone never does, at the least: the
#: greeting's end and the key's moment come in virtual time (two timed wakes), and five
#: more task steps (the flow resumed by the answer; the test resumed by each of the two
#: utterances, by the key's moment and by the forward; the runtime alone's flow never
#: waits, and its test wakes once, for the result).
TIMED_WAKES_PER_TEST = 2
TASK_SWITCHES_PER_TEST = 5


def budget(figure: dict[str, float]) -> dict[str, float]:
    """A backend's figures read as microseconds per test: what the fake adds to the
    runtime alone today; what it may add at the goal's 0.7x; and the least it can add,
    with the provider model at its measured cost and nothing else but its timed wakes
    and task switches (no phone, delivery or bookkeeping at all)."""
    floor_us = 1e6 / figure["floor"]
    least = (
        figure["model_us"]
        + TIMED_WAKES_PER_TEST * figure["wake_us"]
        + TASK_SWITCHES_PER_TEST * figure["switch_us"]
    )
    return {
        "adds_us": 1e6 / figure["fake"] - floor_us,
        "allowed_us": floor_us / 0.7 - floor_us,
        "least_us": least,
    }


def run(quick: bool = False) -> list[Row]:
    figures = measure(300 if quick else 1000, rounds=3 if quick else 7)
    rows = []
    for backend, figure in figures.items():
        spent = budget(figure)
        rows += [
            Row(
                f"test speed ({backend})",
                "menu flow tests per CPU second: fake vs runtime alone (best of 7 rounds)",
                figure["fake"],
                figure["floor"],
                "/s",
                ">= 5,000/s, ratio >= 0.7",
                ours_range=(figure["fake_low"], figure["fake"]),
                baseline_range=(figure["floor_low"], figure["floor"]),
            ),
            Row(
                f"runtime cost ({backend})",
                "menu flow on the runtime alone, per call",
                1e6 / figure["floor"],
                None,
                "us",
                "",
            ),
            Row(
                f"runtime cost ({backend})",
                "informational webhook to a parked call (intake, record, no wake)",
                figure["webhook_us"],
                None,
                "us",
                "",
            ),
            Row(
                f"test speed budget ({backend})",
                "what the fake adds per test to the runtime alone, against what 0.7x allows",
                spent["adds_us"],
                spent["allowed_us"],
                "us",
                "",
            ),
            Row(
                f"test speed budget ({backend})",
                "the least the fake can add per test: the model, 2 timed wakes, 5 task "
                "switches, against what 0.7x allows",
                spent["least_us"],
                spent["allowed_us"],
                "us",
                "",
            ),
            Row(
                f"test speed budget ({backend})",
                "a task switch: park, wake, the loop's step",
                figure["switch_us"],
                None,
                "us",
                "",
            ),
            Row(
                f"test speed budget ({backend})",
                "a timed wake: the clock's jump, the provider's round, the task's step",
                figure["wake_us"],
                None,
                "us",
                "",
            ),
        ]
    rows.append(
        Row(
            "test speed budget",
            "the provider model alone, per menu call (no loop, runtime, phone or delivery)",
            figures["asyncio"]["model_us"],
            None,
            "us",
            "",
        )
    )
    return rows


if __name__ == "__main__":
    for backend, figure in measure(1000).items():
        ratio = figure["fake"] / figure["floor"]
        print(
            f"{backend:8} fake {figure['fake']:8,.0f}/s  floor {figure['floor']:8,.0f}/s  "
            f"ratio {ratio:.2f}  per call (floor) {1e6 / figure['floor']:5.0f} us  "
            f"informational webhook {figure['webhook_us']:5.1f} us"
        )
        spent = budget(figure)
        print(
            f"{'':8} the least it can add {spent['least_us']:4.0f} us (model, "
            f"{TIMED_WAKES_PER_TEST} timed wakes, {TASK_SWITCHES_PER_TEST} task switches)"
        )
        print(
            f"{'':8} the fake adds {spent['adds_us']:4.0f} us a test (0.7x allows "
            f"{spent['allowed_us']:3.0f}); provider model alone {figure['model_us']:4.0f} us; "
            f"task switch {figure['switch_us']:4.1f} us; timed wake {figure['wake_us']:4.1f} us"
        )
