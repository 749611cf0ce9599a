"""``Campaign``: one flow over a list of numbers, paced, within calling hours, resumable.

The loop every outbound user writes by hand, once: at most ``concurrency`` calls live,
placements spaced evenly, ``3600 / calls_per_hour`` seconds apart (the client's own
limiter keeps every request, the flows' commands included, under the account's hourly
limit), numbers read once in the campaign's default region, retries by outcome,
calling hours in the callee's time zone, a do-not-call list, and a journal so a stopped
or crashed campaign resumes without calling anyone twice.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from ._api_types import CallInfo
from ._commands import Hangup
from ._contacts import ContactProblem, load_contacts, load_do_not_call
from ._exceptions import (
    ApiError,
    BadRequest,
    CallEnded,
    CallNotFound,
    ConnectError,
    InvalidNumber,
    KaphilaError,
    NetworkError,
    RateLimited,
    Timeout,
)
from ._hours import CallingHours
from ._journal import ContactState, Journal, OpenAttempt
from ._pacing import Pacer
from ._recovery import made_within
from ._result import MASK, CallResult
from ._runtime import Flow, Runtime

__all__ = ["Campaign", "CampaignSummary", "Progress", "RetryRules"]

logger = logging.getLogger("kaphila_flow.campaign")


@dataclass(frozen=True, slots=True)
class RetryRules:
    """How often, and how long after, each outcome is tried again."""

    no_answer: int = 2  # retries after no answer
    no_answer_delay: float = 30 * 60
    provider_error: int = 2  # retries after 5xx, 503 no trunks, 429, network failure
    provider_error_delay: float = 10 * 60
    interrupted_delay: float = 10 * 60  # an attempt cut by a crash or a stop
    max_attempts: int = 3  # per number, whatever the outcomes


@dataclass(slots=True)
class Progress:
    """Where a campaign stands: what ``on_progress`` receives after each change."""

    total: int
    placed: int = 0
    answered: int = 0
    completed: int = 0
    failed: int = 0
    live: int = 0
    remaining: int = 0
    amd: Counter[str] = field(default_factory=Counter)
    started_at: float = 0.0
    now: float = 0.0

    @property
    def done(self) -> int:
        return self.total - self.remaining

    @property
    def rate_per_hour(self) -> float:
        elapsed = self.now - self.started_at
        return self.placed / elapsed * 3600 if elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        elapsed = self.now - self.started_at
        if self.done == 0 or elapsed <= 0:
            return None
        return elapsed / self.done * self.remaining


@dataclass(slots=True)
class CampaignSummary:
    """What ``Campaign.run`` returns: final statuses, attempts, problems, every contact's state."""

    total: int
    by_status: Counter[str]
    attempts: int
    placed: int
    max_live: int
    problems: list[ContactProblem]
    states: list[ContactState] = field(repr=False)
    #: Whether ``Campaign.stop()`` ended the run before every contact was done: the
    #: contacts not done count as ``remaining``; the same journal resumes them.
    stopped: bool = False

    @property
    def remaining(self) -> int:
        return sum(1 for s in self.states if s.state != "done")

    def __str__(self) -> str:
        parts = ", ".join(f"{count} {status}" for status, count in sorted(self.by_status.items()))
        counts = f"{self.attempts} attempts, {len(self.problems)} problems"
        return f"{self.total} contacts: {parts} ({counts})"


_PROVIDER_ERRORS = (ConnectError, NetworkError, Timeout, RateLimited)


def _classify(result: CallResult) -> tuple[str, bool]:
    """(final or interim status, whether it may be retried)."""
    if result.status == "completed" and result.answered_by == "machine":
        return "voicemail", False
    if result.status in ("completed", "hung-up"):
        return result.status, False
    if result.status == "no-answer":
        return "no-answer", True
    if result.status == "unknown":
        return "unknown", False  # it may have rung: never risk a second call
    if result.status == "no-webhooks":
        return "no-webhooks", False  # a wrong webhook URL: retrying would not mend it
    error = result.error
    if isinstance(error, InvalidNumber | BadRequest):
        return "invalid", False
    if isinstance(error, _PROVIDER_ERRORS) or (
        isinstance(error, ApiError) and error.status_code >= 500
    ):
        return "provider-error", True
    return "failed", False


class Campaign:
    """One flow over a list of numbers, paced, within calling hours, resumable.

    ``summary = await Campaign(runtime, flow, contacts).run()``
    """

    def __init__(
        self,
        runtime: Runtime,
        flow: Flow,
        contacts: str | Path | Iterable[Any],
        *,
        concurrency: int = 5,
        calls_per_hour: float | None = None,
        retries: RetryRules | None = None,
        calling_hours: CallingHours | None = None,
        journal: str | Path | Journal | None = None,
        do_not_call: str | Path | Iterable[str] | None = None,
        dial_options: dict[str, Any] | None = None,
        sensitive_fields: Collection[str] = (),
        on_progress: Callable[[Progress], None] | None = None,
        default_region: str | None = None,
        strict_numbers: bool = False,
    ) -> None:
        """``default_region`` (the runtime's unless given) reads national numbers in the
        contacts and the do-not-call list; ``strict_numbers`` also refuses numbers not in
        use in their country's numbering plan. ``calls_per_hour`` spaces placements
        ``3600 / calls_per_hour`` seconds apart."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.runtime = runtime
        self.flow = flow
        region = runtime.default_region if default_region is None else default_region
        self.contacts, self.problems = load_contacts(
            contacts, default_region=region, strict=strict_numbers
        )
        self.concurrency = concurrency
        self.retries = retries or RetryRules()
        self.hours = calling_hours or CallingHours()
        self.journal = journal if isinstance(journal, Journal) else Journal(journal)
        self.do_not_call = (
            load_do_not_call(do_not_call, default_region=region)
            if do_not_call is not None
            else frozenset()
        )
        self.dial_options = dict(dial_options or {})
        self.sensitive_fields = frozenset(sensitive_fields)
        self.on_progress = on_progress
        self._pacer = Pacer(calls_per_hour) if calls_per_hour is not None else None
        self._live = 0
        self.max_live = 0
        self._wake = anyio.Event()
        self._stopping = False
        self._turns: set[anyio.CancelScope] = set()
        self.progress = Progress(total=len(self.contacts), remaining=len(self.contacts))

    # -- time ------------------------------------------------------------------------

    def _now(self) -> float:
        return self.runtime.wall_time()

    async def _sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    async def _wait(self, seconds: float) -> None:
        """Until ``seconds`` pass or an attempt finishes, whichever is first."""
        wake = self._wake = anyio.Event()
        async with anyio.create_task_group() as tg:

            async def alarm() -> None:
                await self._sleep(seconds)
                wake.set()

            tg.start_soon(alarm)
            await wake.wait()
            tg.cancel_scope.cancel()

    # -- the run ---------------------------------------------------------------------

    def stop(self) -> None:
        """Place no new calls; ``run()`` returns once the live ones have ended.

        Live calls are left to their runtime: they finish, or ``runtime.shutdown(grace)``
        ends them, and each outcome is journaled (a call cut short counts as
        ``interrupted``, retried after ``RetryRules.interrupted_delay``). The summary
        says ``stopped``; the same journal resumes the contacts not done.
        """
        self._stopping = True
        for turn in self._turns:
            turn.cancel()  # a placement waiting for its pacing turn is not made
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """Whether ``stop()`` was called."""
        return self._stopping

    async def run(self) -> CampaignSummary:
        """Call every contact to a final status; returns the summary."""
        for problem in self.problems:
            logger.info("contacts %s", problem)  # also in summary.problems
        states = self.journal.load(self.contacts)
        await self._settle_open_attempts(states)
        now = self._now()
        self.progress.started_at = now
        for state in states:
            if state.state != "done" and state.contact.number in self.do_not_call:
                self._finish(state, "do-not-call")
        self._report(states)
        async with anyio.create_task_group() as tg:
            while not self._stopping:
                now = self._now()
                open_states = [s for s in states if s.state != "done"]
                if not open_states:
                    break
                next_due: float | None = None
                for state in open_states:
                    if state.in_flight:
                        continue
                    if state.next_at > now:
                        next_due = (
                            state.next_at if next_due is None else min(next_due, state.next_at)
                        )
                        continue
                    if self._live >= self.concurrency:
                        break
                    if not self._within_hours(state, now):
                        if state.state != "done":
                            next_due = (
                                state.next_at if next_due is None else min(next_due, state.next_at)
                            )
                        continue
                    state.in_flight = True
                    self._live += 1
                    self.max_live = max(self.max_live, self._live)
                    tg.start_soon(self._attempt, state, states)
                self._report(states)
                wait = 3600.0 if next_due is None else max(0.0, next_due - now)
                await self._wait(wait)
        self._report(states)
        by_status = Counter(
            (s.final_status or "?") if s.state == "done" else "remaining" for s in states
        )
        attempts = sum(s.attempts for s in states)
        return CampaignSummary(
            total=len(states),
            by_status=by_status,
            attempts=attempts,
            placed=self.progress.placed,
            max_live=self.max_live,
            problems=list(self.problems),
            states=states,
            stopped=self._stopping and any(s.state != "done" for s in states),
        )

    def _within_hours(self, state: ContactState, now: float) -> bool:
        number = state.contact.number
        at = datetime.fromtimestamp(now, UTC)
        if self.hours.allowed(number, at):
            return True
        opening = self.hours.next_opening(number, at)
        if opening is None:
            self._finish(
                state, "no-calling-window", error="no time is inside calling hours in all its zones"
            )
            return False
        state.next_at = opening.timestamp()
        state.state = "waiting"
        self.journal.save(state)
        return False

    async def _attempt(self, state: ContactState, states: list[ContactState]) -> None:
        number = state.contact.number
        try:
            if self._pacer is not None:
                with anyio.CancelScope() as turn:
                    self._turns.add(turn)
                    try:
                        await self._pacer.wait_turn()
                    finally:
                        self._turns.discard(turn)
            if self._stopping:
                return  # stopped before this placement: nothing was sent or journaled
            attempt_id = self.journal.begin_attempt(number, state.attempts + 1, self._now())
            state.attempts += 1
            try:
                handle = await self.runtime.start(
                    number, self.flow, data=state.contact.data, **self.dial_options
                )
            except (InvalidNumber, ValueError) as exc:
                self.journal.finish_attempt(attempt_id, "invalid", str(exc))
                self._finish(state, "invalid", error=str(exc))
                return
            except RuntimeError as exc:  # the runtime shuts down under the campaign
                self.journal.finish_attempt(attempt_id, "interrupted", f"not placed: {exc}")
                self.stop()
                self._interrupted(state, delay=0.0)
                return
            call_id = await handle.placed()
            self.journal.placed(attempt_id, call_id)
            if call_id is not None:
                self.progress.placed += 1
            result = await handle.result()
            if self._stopping and _cut_short(result):
                self.journal.finish_attempt(attempt_id, "interrupted", "stopped")
                self._interrupted(state, delay=self.retries.interrupted_delay)
                return
            outcome, retryable = _classify(result)
            self.journal.finish_attempt(
                attempt_id, outcome, type(result.error).__name__ if result.error else None
            )
            if result.answered_at is not None:
                self.progress.answered += 1
                self.progress.amd[result.answered_by or "answered"] += 1
            state.amd = result.amd.status if result.amd else None
            state.duration = result.duration
            state.value = result.value if _jsonable(result.value) else repr(result.value)
            if retryable and self._retry(state, outcome):
                return
            self._finish(state, outcome, error=str(result.error) if result.error else None)
        finally:
            state.in_flight = False
            self._live -= 1
            self._report(states)
            self._wake.set()

    def _retry(self, state: ContactState, outcome: str) -> bool:
        rules = self.retries
        if state.attempts >= rules.max_attempts:
            return False
        tries = [o for _, _, o in self.journal.attempts_for(state.contact.number)]
        if outcome == "no-answer":
            allowed, delay = rules.no_answer, rules.no_answer_delay
        else:
            allowed, delay = rules.provider_error, rules.provider_error_delay
        if tries.count(outcome) > allowed:
            return False
        state.state = "waiting"
        state.final_status = outcome
        state.next_at = self._now() + delay
        self.journal.save(state)
        return True

    def _finish(self, state: ContactState, status: str, *, error: str | None = None) -> None:
        state.state = "done"
        state.final_status = status
        state.error = error
        self.journal.save(state)

    async def _settle_open_attempts(self, states: list[ContactState]) -> None:
        """Attempts a stopped or crashed run left open: is their call still live?"""
        by_number = {s.contact.number: s for s in states}
        for attempt in self.journal.open_attempts():
            live = await self._live_call(attempt)
            if live is not None:
                logger.warning(
                    "call %s to %s was left live by a stopped run: hanging up", live, attempt.number
                )
                with contextlib.suppress(CallNotFound):
                    await self.runtime.send(Hangup(live))
            self.journal.finish_attempt(attempt.attempt_id, "interrupted")
            state = by_number.get(attempt.number)
            if state is not None and state.state != "done":
                self._interrupted(state, delay=self.retries.interrupted_delay)

    def _interrupted(self, state: ContactState, *, delay: float) -> None:
        """An attempt cut by a stop or a crash: tried again after ``delay``, within
        ``max_attempts``."""
        if state.attempts >= self.retries.max_attempts:
            self._finish(state, "interrupted")
            return
        state.state = "waiting"
        state.final_status = "interrupted"
        state.next_at = self._now() + delay
        self.journal.save(state)

    async def _live_call(self, attempt: OpenAttempt) -> str | None:
        """The live call of an open attempt: by its id, or, when the run died before
        the ``/makecall`` answer, the one live call to its number made around then."""
        call_id = attempt.call_id
        list_calls = getattr(self.runtime.transport, "list_calls", None)
        if list_calls is None:
            return call_id  # cannot look: assume the worst and hang it up if known
        try:
            calls: list[CallInfo] = (await list_calls()).calls
        except KaphilaError as exc:
            logger.warning("cannot list calls to settle an open attempt: %s", exc)
            return call_id
        live = [c for c in calls if (c.status or "").lower() not in ("ended", "completed")]
        if call_id is not None:
            return call_id if any(c.call_id == call_id for c in live) else None
        window = self.runtime.placement_window
        fits = [
            c.call_id
            for c in live
            if made_within(c, attempt.number, attempt.started_at, window) is not False
        ]
        if len(fits) > 1:
            logger.warning(
                "an open attempt to %s: %d live calls (%s) fit it and cannot be told apart; "
                "none is hung up",
                attempt.number,
                len(fits),
                ", ".join(fits),
            )
        return fits[0] if len(fits) == 1 else None

    # -- reporting -------------------------------------------------------------------

    def _report(self, states: list[ContactState]) -> None:
        progress = self.progress
        progress.live = self._live
        progress.remaining = sum(1 for s in states if s.state != "done")
        progress.completed = sum(
            1 for s in states if s.final_status in ("completed", "hung-up", "voicemail")
        )
        progress.failed = sum(
            1
            for s in states
            if s.state == "done" and s.final_status not in ("completed", "hung-up", "voicemail")
        )
        progress.now = self._now()
        self.runtime.metrics.campaign(progress)
        if self.on_progress is not None:
            self.on_progress(progress)

    def write_results(self, path: str | Path, summary: CampaignSummary) -> None:
        """One row per contact: CSV, or JSON lines for a ``.jsonl`` path."""
        rows = [self._row(state) for state in summary.states]
        target = Path(path)
        if target.suffix in (".jsonl", ".ndjson"):
            with target.open("w", encoding="utf-8") as out:
                for row in rows:
                    out.write(json.dumps(row, default=str) + "\n")
            return
        with target.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(
                out,
                fieldnames=["number", "attempts", "status", "amd", "duration", "value", "error"],
            )
            writer.writeheader()
            for row in rows:
                value = row["value"]
                if value is None:
                    row["value"] = ""
                elif not isinstance(value, str):
                    row["value"] = json.dumps(value, default=str)
                writer.writerow(row)

    def _row(self, state: ContactState) -> dict[str, Any]:
        return {
            "number": state.contact.number,
            "attempts": state.attempts,
            "status": state.final_status if state.state == "done" else "remaining",
            "amd": state.amd,
            "duration": state.duration,
            "value": self._masked(state.value),
            "error": state.error,
        }

    def _masked(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (MASK * 4 if k in self.sensitive_fields else v) for k, v in value.items()}
        return value


def _cut_short(result: CallResult) -> bool:
    """Ended by its runtime's shutdown (``CallEnded`` as the error of a failed call)."""
    return result.status == "failed" and isinstance(result.error, CallEnded)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
