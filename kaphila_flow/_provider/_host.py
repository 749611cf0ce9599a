"""``ProviderHost``: what both hosts of the provider model share, on anyio's time.

It maps the event loop's clock to provider time (an origin and a speed factor), runs
the one scheduler that lets time pass (``Provider.advance``) and hands due webhooks to
the host's delivery, and turns a ``/voice`` or ``/play`` into an await that ends when
the playback does. The fake delivers webhooks in memory; the simulator over HTTP.

What a request or a callee's action emits goes out in the same step (no hop through the
scheduler); the scheduler sleeps until the provider's next deadline (or a waiter's
alarm) and runs only then, a poke moving its wake-up. On asyncio the scheduler is a loop
timer callback (a wake-up costs one callback, no task step; what comes sooner than the
time set fires as well and leaves that time set, for the round after it mostly finds it
still due); on trio, which has no timer callbacks, a task sleeping in a cancel scope
whose deadline the poke moves.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.abc
import sniffio

from .._commands import Command, PlaybackReply
from .._timers import TimerHeap
from .._wake import LoopTimer, Parking, ScopeSleep
from .._wallclock import running_clock
from ._accounts import AccountState
from ._kaphila import PendingPlayback, Provider, Webhook

__all__ = ["ProviderHost"]

R = TypeVar("R")


class ProviderHost:
    """Drives a ``Provider`` on the running event loop's time."""

    def __init__(
        self,
        provider: Provider,
        *,
        origin: float,
        speed: float = 1.0,
        on_webhooks: Callable[[list[Webhook]], None],
    ) -> None:
        if not speed > 0:
            raise ValueError("speed must be a positive factor (1 = real time)")
        self.provider = provider
        self.origin = origin
        self.speed = speed
        self._on_webhooks = on_webhooks
        self._t0: float | None = None
        #: Reads the loop's clock: ``anyio.current_time``, or while the scheduler runs the
        #: very clock it reads, without the backend lookup on each reading.
        self._clock: Callable[[], float] = anyio.current_time
        self._last = origin
        #: On trio, where the scheduler sleeps (its scope while it does, None while it
        #: runs), and until when (in provider time): a poke that brings nothing earlier
        #: leaves it asleep.
        self._sleeper = ScopeSleep()
        self._sleeping_until = math.inf
        #: Where each request waiting for its playback to finish is parked.
        self._playbacks: dict[int, Parking] = {}
        #: Alarms: callbacks due at a provider time; and the earliest alarm's time
        #: (infinity if none), kept as the heap changes rather than asked at each look.
        self._alarms: TimerHeap[Callable[[], None]] = TimerHeap()
        self._alarm_at = math.inf
        #: On asyncio the scheduler is a timer callback, not a task; and whether it is
        #: armed for what is due (not while a round is waiting for its turn).
        self._timer = LoopTimer(self._on_timer)
        self._armed = False
        self._set_at = self._sooner_at = math.inf
        #: How often the loop's clock ticks (0: finely enough to ignore).
        self._ticks_per_second = 0
        #: Moves the scheduler's wake-up to the next thing due: the timer's on asyncio
        #: (``_rearm``), the sleeping task's on trio (``_move_sleep``); nothing while
        #: the scheduler does not run.
        self._reschedule: Callable[[], None] = _not_running

    def now(self) -> float:
        """Provider time: ``origin`` plus the loop's time since start, times ``speed``."""
        loop_now = self._clock()
        if self._t0 is None:
            self._t0 = loop_now
        now = self.origin + (loop_now - self._t0) * self.speed
        if now > self._last:
            self._last = now
        return self._last

    def loop_now(self) -> float:
        """The event loop's time (read without anyio's backend lookup while it runs)."""
        return self._clock()

    def loop_time(self, provider_time: float) -> float:
        """The event loop's time at which ``provider_time`` comes."""
        if self._t0 is None:
            self.now()
        assert self._t0 is not None
        return self._t0 + (provider_time - self.origin) / self.speed

    def poke(self, now: float | None = None) -> None:
        """Something changed (a request, a person's action): the webhooks it emitted go
        out now, and the scheduler's wake-up moves to the provider's next deadline.
        ``now`` is the provider time, if the caller just read it.

        What the change made due (a callee answering at once) waits for the scheduler's
        next round, as it would over HTTP: after the request's answer."""
        if now is None:
            now = self.now()
        self._flush(now)
        self._reschedule()

    def alarm(self, loop_at: float, callback: Callable[[], None]) -> int:
        """Call ``callback()`` from the scheduler once the loop's clock reaches ``loop_at``,
        unless ``disarm``-ed first; returns the ticket to disarm it with. What waits with
        a deadline this way costs no cancel scope of its own."""
        if self._t0 is None:
            self.now()
        assert self._t0 is not None
        at = self.origin + (loop_at - self._t0) * self.speed
        ticket = self._alarms.push(at, callback)
        if at < self._alarm_at:
            self._alarm_at = at
            if at < self._sleeping_until:  # a later alarm leaves the wake-up where it is
                self._reschedule()
        return ticket

    def disarm(self, ticket: int) -> None:
        """The alarm ``ticket`` is no longer wanted (fired or not)."""
        alarms = self._alarms
        if alarms.withdraw(ticket):  # it was the earliest: the next one may come later
            at = self._alarm_at
            following = alarms.next_at()
            self._alarm_at = math.inf if following is None else following
            if at <= self._sleeping_until:  # (else it was not what the wake-up is for)
                self._reschedule()

    def _wake_at(self, due: float) -> float:
        """The loop time to wake at for provider time ``due``: on the loop's next clock
        tick at or after it (a deadline between ticks would have the timer fire and re-arm
        until the tick, spinning the loop)."""
        if due == math.inf:
            return math.inf
        at = self.loop_time(due)
        ticks = self._ticks_per_second  # k / 1000 is the clock's own reading of tick k
        return math.ceil(at * ticks) / ticks if ticks else at

    def _next_due(self) -> float:
        """The provider time of the next thing due: the provider's deadline or an alarm."""
        due = self.provider.next_deadline()
        alarm = self._alarm_at
        return alarm if due is None or alarm < due else due

    def _ring(self, now: float) -> None:
        alarms = self._alarms
        while (callback := alarms.pop_due(now)) is not None:
            callback()
        # The heap's top is a wanted alarm again (``next_at`` drops withdrawn ones), so
        # a withdrawal tells truly whether it was the earliest.
        following = alarms.next_at()
        self._alarm_at = math.inf if following is None else following

    def _move_sleep(self) -> None:
        """trio: move the sleeping scheduler's deadline to the next thing due, earlier
        or later. Moving the deadline of the scope it sleeps in costs no task step: the
        scheduler runs only when something is due."""
        sleep = self._sleeper.scope
        if sleep is None:
            return
        due = self._next_due()
        if due <= self._last:
            # Due already: resume the scheduler (one step), rather than cancel its sleep.
            self._sleeper.wake()
            return
        if due != self._sleeping_until:
            self._sleeping_until = due
            sleep.deadline = self._wake_at(due)

    def _round(self) -> None:
        """One round of the scheduler: let time pass, send what is due, ring alarms."""
        now = self.now()
        self.provider.advance(now)
        self._flush(now)
        if self._alarm_at <= now:
            self._ring(now)

    # -- asyncio: the scheduler is a timer callback -----------------------------------

    def _rearm(self) -> None:
        """Point the timer at the next thing due (the next loop round, if due now).

        While armed (``_armed``), ``_set_at`` is when the timer is set to fire and
        ``_sooner_at`` when it fires before that as well (infinity: not set), and
        ``_sleeping_until`` the earlier of the two. A round due now leaves what is set
        in place, and so does something due sooner (a playback's end before a phone's
        patience runs out): the round after it recomputes what is due, mostly the very
        time still set, which then costs no new timer handle. A time kept that way
        which nothing waits for any more is replaced at that round, before the loop's
        clock can reach it."""
        if not self._armed:
            return  # a round is coming, or running: it reschedules at its end
        timer = self._timer
        due = self._next_due()
        if due <= self._last:
            self._armed = False  # a round is coming: it reschedules at its end
            timer.soon(None, False)
            return
        if due == self._sleeping_until:
            return
        set_at = self._set_at
        if due < set_at != math.inf:
            timer.sooner(self._wake_at(due), due, True)  # (instead of what was sooner)
            self._sooner_at = self._sleeping_until = due
            return
        if self._sooner_at != math.inf:
            timer.cancel_sooner()
            self._sooner_at = math.inf
        self._sleeping_until = due
        if due != set_at:
            self._set_at = due
            if due == math.inf:
                timer.cancel()
            else:
                timer.at(self._wake_at(due), due, False)

    def _on_timer(self, reached: float | None, sooner: bool) -> None:
        """A firing of the timer: ``reached``, the provider time it was set for (the
        loop's clock reached it, rounding aside), or ``None`` for a round due now."""
        self._armed = False
        if reached is not None:
            if self._last < reached:
                self._last = reached
            if sooner:
                self._sooner_at = math.inf
            else:
                self._set_at = math.inf
            set_at, sooner_at = self._set_at, self._sooner_at
            self._sleeping_until = sooner_at if sooner_at < set_at else set_at
        self._round()  # what it raises, the run task raises
        self._armed = True
        self._rearm()

    async def _run_on_timers(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        timer = self._timer
        timer.bind()
        self._sleeping_until = self._set_at = self._sooner_at = math.inf
        self._reschedule = self._rearm
        try:
            timer.fire(None, False)
            task_status.started()
            await timer.failure()
        finally:
            self._reschedule = _not_running
            timer.unbind()
            self._armed = False

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Let provider time pass until cancelled."""
        self.now()
        self._ticks_per_second = _clock_ticks()
        try:
            # The run's clock itself: what anyio.current_time() reads, without the
            # backend lookup (and, on trio, the two calls) it takes to get there.
            self._clock = running_clock()
            if sniffio.current_async_library() == "asyncio":
                await self._run_on_timers(task_status)
            else:
                await self._run_in_task(task_status)
        finally:
            self._clock = anyio.current_time

    # -- trio: the scheduler is a task sleeping in a cancel scope -----------------------

    async def _run_in_task(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        import trio

        sleeper = self._sleeper
        sleeper.bind()
        self._reschedule = self._move_sleep
        task_status.started()
        try:
            while True:
                self._round()
                due = self._sleeping_until = self._next_due()
                # trio's own scope: this path runs on trio only, and anyio's wrapper adds
                # its bookkeeping to each round and to each move of the deadline. A scope
                # serves until its deadline comes (it is cancelled then): a nudge's round
                # runs in it and moves its deadline.
                with trio.CancelScope(deadline=self._wake_at(due)) as sleep:
                    while True:
                        await sleeper.sleep(sleep)  # until a nudge, or the scope's deadline
                        if sleeper.reached:
                            break
                        self._round()
                        due = self._next_due()
                        if due != self._sleeping_until:
                            self._sleeping_until = due
                            sleep.deadline = self._wake_at(due)
                until = self._sleeping_until
                if self._last < until and self._wake_at(until) <= self._clock():
                    self._last = until  # the loop's clock reached it; rounding aside
        finally:
            self._reschedule = _not_running
            sleeper.unbind()

    def handle(self, account: AccountState, command: Command[R]) -> R:
        """Carry out a request that answers at once (anything but a playback)."""
        now = self.now()
        reply = self.provider.handle(account, command, now)
        self.poke(now)
        return reply

    async def request(
        self, account: AccountState, command: Command[R], now: float | None = None
    ) -> R:
        """Carry out ``command`` now (``now``: the provider time, if the caller just read
        it); a playback's answer comes when it finishes."""
        if now is None:
            now = self.now()
        reply: Any = self.provider.handle(account, command, now)
        # What the command emitted goes out before its answer comes back, as it may over
        # HTTP; the scheduler wakes for what comes later.
        self.poke(now)
        if isinstance(reply, PendingPlayback):
            if not reply.finished:
                self._playbacks[id(reply)] = parking = Parking()
                try:
                    await parking.park()  # until _flush finds it finished
                finally:
                    self._playbacks.pop(id(reply), None)
            answer: PlaybackReply = self.provider.playback_reply(reply)
            return answer  # type: ignore[return-value]
        return reply  # type: ignore[no-any-return]

    def _flush(self, now: float) -> None:
        for pending in self.provider.take_finished_playbacks():
            parking = self._playbacks.get(id(pending))
            if parking is not None:
                parking.notify()
        webhooks = self.provider.take_webhooks(now)
        if webhooks:
            self._on_webhooks(webhooks)


def _not_running() -> None:
    """The scheduler does not run: its first round looks at what is due."""


def _clock_ticks() -> int:
    """How often the running loop's clock ticks a second: uvloop's counts whole
    milliseconds; asyncio's and trio's tick finely enough to ignore (0)."""
    if sniffio.current_async_library() != "asyncio":
        return 0

    loop = asyncio.get_running_loop()
    return 1000 if type(loop).__module__.partition(".")[0] == "uvloop" else 0
