"""The runtime's one-line hooks into metrics, traces and log fields.

Each moment of a call that an operator may want to see passes through one method here,
called from one place in the runtime: a call's task starts, its call id is known, a
webhook is dispatched, a command leaves, the call has its result.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from . import _events as ev
from ._commands import Command, command_call_id
from ._logging import flow_name, set_call
from ._metrics import Metrics, WebhookOutcome
from ._session import CallSession, Delivery
from ._tracing import CallTracer, TracerProvider

__all__ = ["Instruments"]

OUTCOMES: dict[Delivery, WebhookOutcome] = {
    Delivery.DELIVERED: "delivered",
    Delivery.DUPLICATE: "duplicate",
    Delivery.FINISHED_CALL: "late",
    Delivery.UNKNOWN_CALL: "unknown_call",
    Delivery.REJECTED: "rejected",
}


class Instruments:
    """Metrics (``metrics``), spans (``tracer``) and the log fields of the current call."""

    __slots__ = ("metrics", "tracer")

    def __init__(
        self,
        transport: object,
        metrics: Metrics | None = None,
        tracing: bool | TracerProvider = False,
    ) -> None:
        # A KaphilaClient counts its requests in its own Metrics: the runtime shares it.
        shared = getattr(transport, "metrics", None)
        if metrics is None:
            metrics = shared if isinstance(shared, Metrics) else Metrics()
        self.metrics = metrics
        self.tracer = CallTracer(tracing)

    def call_started(self, session: CallSession, flow: object) -> None:
        """In the call's own task, before anything else."""
        session.flow_name = name = flow_name(flow)
        set_call(session)  # its log fields are the session's own
        self.metrics.call_started()
        self.tracer.call_started(name)

    def call_placed(self, call_id: str) -> None:
        """In the call's task, once ``/makecall`` named the call."""
        self.tracer.call_placed(call_id)

    def webhook(self, event: ev.Event, delivery: Delivery) -> Delivery:
        outcome = OUTCOMES[delivery]
        self.metrics.webhook(outcome, event.call_id)
        self.tracer.webhook(event.call_id, event.name, outcome)
        return delivery

    def command(self, command: Command[Any]) -> AbstractContextManager[None]:
        self.metrics.command(command_call_id(command))
        return self.tracer.command(command)

    def call_finished(self, call_id: str | None, status: str, error: BaseException | None) -> None:
        self.metrics.call_finished(status, call_id)
        self.tracer.call_finished(call_id, status, error)
