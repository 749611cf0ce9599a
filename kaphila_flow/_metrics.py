"""Prometheus metrics: one ``Metrics`` per runtime, one method per observation.

Each ``Metrics`` owns a ``CollectorRegistry`` of its own (not the process-wide one), so
several runtimes, or tests, never collide. The receiver serves it at ``/metrics``. No
label ever carries a call id, a number or a token: label values come from small fixed
sets (statuses, outcomes, endpoint templates), so the series stay few and say nothing
secret.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Literal, get_args

import anyio
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from ._campaign import Progress

__all__ = [
    "CONTENT_TYPE",
    "DropBound",
    "Metrics",
    "SimulatorMetrics",
    "WebhookOutcome",
    "endpoint_label",
]

#: The media type of ``Metrics.exposition()`` (Prometheus text format).
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: What became of a webhook: handed to its call, a repeat, for a finished call (late),
#: for no call this runtime knows, refused (wrong token or signature), or not a webhook
#: at all (bad JSON, wrong media type, too large).
#: ``timed_out``: the body did not arrive within the receiver's body timeout (408).
WebhookOutcome = Literal[
    "delivered", "duplicate", "late", "unknown_call", "rejected", "invalid", "timed_out"
]
#: Which per-call bound dropped something: the queue of events the flow has not taken
#: (256), the recording events kept on the call (64), the transcript (2,000).
DropBound = Literal["queue", "recordings", "transcript"]

#: From a webhook's arrival to the next command of its call: milliseconds to seconds.
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Waits for a rate-limit slot: from a moment to the hour-long window.
WAIT_BUCKETS = (0.1, 1.0, 10.0, 60.0, 300.0, 900.0, 3600.0)

#: Calls whose step is open at once, at most (each ends with a command or the call).
ARRIVAL_LIMIT = 100_000

_ID_IN_PATH = (
    (re.compile(r"^/calls/[^/]+$"), "/calls/{call_id}"),
    (re.compile(r"^/recordings/file/[^/]+/download$"), "/recordings/file/{filename}/download"),
    (re.compile(r"^/recordings/[^/]+/download$"), "/recordings/{call_id}/download"),
    (re.compile(r"^/recordings/[^/]+/stop$"), "/recordings/{call_id}/stop"),
    (re.compile(r"^/recordings/[^/]+$"), "/recordings/{call_id}"),
)


def _now() -> float | None:
    """The event loop's clock (virtual in tests), or ``None`` outside one."""
    try:
        return anyio.current_time()
    except RuntimeError:  # no event loop in this thread (anyio's or sniffio's error)
        return None


def endpoint_label(path: str) -> str:
    """A request path as a label: call ids and file names become placeholders."""
    if path.count("/") <= 1:
        return path
    for pattern, template in _ID_IN_PATH:
        if pattern.match(path):
            return template
    return path


class Metrics:
    """What a runtime and its client have done, as Prometheus metrics.

    ``runtime.metrics`` is one of these (shared with its ``KaphilaClient``); its
    ``registry`` is what ``/metrics`` serves. Pass ``registry=prometheus_client.REGISTRY``
    to add the series to the process-wide registry instead.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, namespace: str = "kaphila_flow"
    ) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        r, ns = self.registry, namespace
        self.live_calls = Gauge(
            "live_calls",
            "Calls placed or being placed that have no result yet.",
            namespace=ns,
            registry=r,
        )
        self.calls_started = Counter(
            "calls_started", "Calls the runtime started to place.", namespace=ns, registry=r
        )
        self.calls_finished = Counter(
            "calls_finished",
            "Calls that reached their result, by final status.",
            ["status"],
            namespace=ns,
            registry=r,
        )
        self.step_latency = Histogram(
            "step_latency_seconds",
            "From a webhook's arrival to the next command of its call (one step of a flow).",
            namespace=ns,
            registry=r,
            buckets=STEP_BUCKETS,
        )
        self.webhooks = Counter(
            "webhooks",
            "Webhooks received, by outcome.",
            ["outcome"],
            namespace=ns,
            registry=r,
        )
        self.provider_requests = Counter(
            "provider_requests",
            "Requests to Kaphila, by endpoint and HTTP status (or transport failure).",
            ["endpoint", "status"],
            namespace=ns,
            registry=r,
        )
        self.provider_retries = Counter(
            "provider_retries",
            "Requests to Kaphila tried again after a failure, by endpoint.",
            ["endpoint"],
            namespace=ns,
            registry=r,
        )
        self.rate_limit_waits = Histogram(
            "rate_limit_wait_seconds",
            "Waits for a slot under the hourly request limit.",
            namespace=ns,
            registry=r,
            buckets=WAIT_BUCKETS,
        )
        self.events_dropped = Counter(
            "events_dropped",
            "Events and transcript entries a live call's bounds dropped, by bound.",
            ["bound"],
            namespace=ns,
            registry=r,
        )
        self.finished_calls_forgotten = Counter(
            "finished_calls_forgotten",
            "Finished calls whose webhook token was forgotten to stay under the limit "
            "(a late webhook of theirs then gets 403).",
            namespace=ns,
            registry=r,
        )
        self._by_bound = {b: self.events_dropped.labels(bound=b) for b in get_args(DropBound)}
        # Every webhook passes here: its series are looked up once, not per webhook.
        self._by_outcome = {
            outcome: self.webhooks.labels(outcome=outcome) for outcome in get_args(WebhookOutcome)
        }
        #: The series of each (endpoint label, status) seen: a request's is looked up once.
        self._by_request: dict[tuple[str, int | str], Counter] = {}
        self._namespace = ns
        self._campaign: _CampaignGauges | None = None  # made by the first campaign
        #: When each call's latest webhook arrived, until its next command leaves.
        self._arrivals: dict[str, float] = {}

    # -- observations ----------------------------------------------------------------

    def call_started(self) -> None:
        """A call is being placed."""
        self.calls_started.inc()
        self.live_calls.inc()

    def call_finished(self, status: str, call_id: str | None = None) -> None:
        """A call has its result (``completed``, ``hung-up``, ``no-answer``, ...)."""
        self.calls_finished.labels(status=status).inc()
        self.live_calls.dec()
        if call_id is not None:
            self._arrivals.pop(call_id, None)

    def webhook(self, outcome: WebhookOutcome, call_id: str | None = None) -> None:
        """A webhook came in; a delivered one starts its call's next step."""
        self._by_outcome[outcome].inc()
        if outcome == "delivered" and call_id is not None and (now := _now()) is not None:
            self._arrivals.pop(call_id, None)  # the latest arrival goes last
            self._arrivals[call_id] = now
            if len(self._arrivals) > ARRIVAL_LIMIT:
                del self._arrivals[next(iter(self._arrivals))]

    def dropped(self, bound: DropBound) -> None:
        """A live call's ``bound`` dropped one event or transcript entry."""
        self._by_bound[bound].inc()

    def forgotten(self) -> None:
        """A finished call's token was forgotten (the finished-call limit)."""
        self.finished_calls_forgotten.inc()

    def command(self, call_id: str | None) -> None:
        """A command leaves for ``call_id``: the end of a step if a webhook started one."""
        if call_id is None:
            return
        arrived = self._arrivals.pop(call_id, None)
        if arrived is not None and (now := _now()) is not None:
            self.step(now - arrived)

    def step(self, latency_s: float) -> None:
        """One step took ``latency_s`` seconds from webhook to command."""
        self.step_latency.observe(max(0.0, latency_s))

    def request(self, endpoint: str, status: int | str) -> None:
        """Kaphila answered ``status`` to ``endpoint`` (or a failure such as ``timeout``)."""
        key = (endpoint_label(endpoint), status)
        series = self._by_request.get(key)
        if series is None:
            series = self._by_request[key] = self.provider_requests.labels(
                endpoint=key[0], status=str(status)
            )
        series.inc()

    def retry(self, endpoint: str) -> None:
        """A request to ``endpoint`` is tried again."""
        self.provider_retries.labels(endpoint=endpoint_label(endpoint)).inc()

    def rate_limit_wait(self, seconds: float) -> None:
        """A request waited ``seconds`` for the hourly limit (0: no wait, not counted)."""
        if seconds > 0:
            self.rate_limit_waits.observe(seconds)

    def campaign(self, progress: Progress) -> None:
        """Where the campaign running on this runtime stands."""
        if self._campaign is None:
            self._campaign = _CampaignGauges(self._namespace, self.registry)
        self._campaign.show(progress)

    # -- exposition ------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The registry in Prometheus text format (serve with ``CONTENT_TYPE``)."""
        return generate_latest(self.registry)


class _CampaignGauges:
    def __init__(self, ns: str, r: CollectorRegistry) -> None:
        self.contacts = Gauge(
            "campaign_contacts", "Contacts in the campaign.", namespace=ns, registry=r
        )
        self.remaining = Gauge(
            "campaign_remaining_contacts",
            "Contacts without a final status yet.",
            namespace=ns,
            registry=r,
        )
        self.finished = Gauge(
            "campaign_finished_contacts",
            "Contacts with a final status, by result (completed or failed).",
            ["result"],
            namespace=ns,
            registry=r,
        )
        self.placed = Gauge(
            "campaign_placed_calls", "Calls the campaign has placed.", namespace=ns, registry=r
        )
        self.answered = Gauge(
            "campaign_answered_calls",
            "Calls answered, by who answered (AMD: human, machine, unknown; else answered).",
            ["answered_by"],
            namespace=ns,
            registry=r,
        )
        self.live = Gauge(
            "campaign_live_calls", "The campaign's calls live now.", namespace=ns, registry=r
        )
        self.eta = Gauge(
            "campaign_eta_seconds",
            "Estimated seconds to the campaign's end (NaN until a contact is done).",
            namespace=ns,
            registry=r,
        )

    def show(self, p: Progress) -> None:
        self.contacts.set(p.total)
        self.remaining.set(p.remaining)
        self.finished.labels(result="completed").set(p.completed)
        self.finished.labels(result="failed").set(p.failed)
        self.placed.set(p.placed)
        for answered_by, count in p.amd.items():
            self.answered.labels(answered_by=answered_by).set(count)
        self.live.set(p.live)
        eta = p.eta_seconds
        self.eta.set(math.nan if eta is None else eta)


class SimulatorMetrics:
    """The simulator's own counters, served at its ``/metrics``."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, namespace: str = "kaphila_simulator"
    ) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        r, ns = self.registry, namespace
        self.calls_placed = Counter(
            "calls_placed", "Calls placed (/makecall, /batchcall).", namespace=ns, registry=r
        )
        self.webhooks = Counter(
            "webhooks",
            "Webhooks sent, by outcome (acknowledged, or failed after every attempt).",
            ["outcome"],
            namespace=ns,
            registry=r,
        )
        self.requests = Counter(
            "requests",
            "API requests answered, by endpoint and HTTP status.",
            ["endpoint", "status"],
            namespace=ns,
            registry=r,
        )
        # Each series' counter, looked up once: a few per simulated call add up.
        self._webhook_counters = {
            True: self.webhooks.labels(outcome="acknowledged"),
            False: self.webhooks.labels(outcome="failed"),
        }
        self._request_counters: dict[tuple[str, int], Counter] = {}

    def call_placed(self) -> None:
        self.calls_placed.inc()

    def webhook(self, acknowledged: bool) -> None:
        self._webhook_counters[acknowledged].inc()

    def request(self, endpoint: str, status: int) -> None:
        counter = self._request_counters.get((endpoint, status))
        if counter is None:
            if len(self._request_counters) > 10_000:
                self._request_counters.clear()  # raw paths of many calls: start over
            counter = self.requests.labels(endpoint=endpoint_label(endpoint), status=str(status))
            self._request_counters[endpoint, status] = counter
        counter.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
