"""Optional OpenTelemetry tracing: a span per call, a child span per command, webhooks
as events on their call's span. Off by default; OpenTelemetry is imported only when
tracing is on (the ``tracing`` extra), so without it nothing here costs anything.

Spans carry the flow's name, the call id, the endpoint and the final status: never a
number, a spoken text or a digit pressed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any, Protocol

from ._commands import Command, command_call_id, url_path
from ._exceptions import ConfigurationError

__all__ = ["CallTracer", "TracerProvider"]

#: Webhooks kept for a call whose span does not know its id yet: per call, and calls.
EARLY_LIMIT = 64
EARLY_CALLS = 1_000


class TracerProvider(Protocol):
    """An OpenTelemetry ``TracerProvider`` (``opentelemetry.sdk.trace.TracerProvider``)."""

    def get_tracer(self, instrumenting_module_name: str, *args: Any, **kwargs: Any) -> Any: ...


_call_span: ContextVar[Any] = ContextVar("kaphila_flow_call_span", default=None)


class CallTracer:
    """Spans for calls and commands; with ``tracing=False``, every method does nothing."""

    def __init__(self, tracing: bool | TracerProvider = False) -> None:
        self.enabled = tracing is not False
        self._tracer: Any = None
        self._spans: dict[str, Any] = {}
        self._early: dict[str, list[tuple[str, str]]] = {}
        if not self.enabled:
            return
        try:
            from opentelemetry import trace
        except ImportError:
            raise ConfigurationError(
                "tracing needs OpenTelemetry: pip install 'kaphila-flow[tracing]'"
            ) from None
        from . import __version__

        provider: Any = None if tracing is True else tracing
        self._tracer = trace.get_tracer("kaphila_flow", __version__, tracer_provider=provider)

    def call_started(self, flow: str) -> None:
        """In the call's task: open its span and make it current there."""
        if self._tracer is None:
            return
        from opentelemetry import context, trace

        span = self._tracer.start_span(f"call {flow}", attributes={"kaphila.flow": flow})
        _call_span.set(span)
        # Never detached: the context belongs to the call's task, which ends with the call.
        context.attach(trace.set_span_in_context(span))

    def call_placed(self, call_id: str) -> None:
        span = _call_span.get() if self._tracer is not None else None
        if span is None:
            return
        span.set_attribute("kaphila.call_id", call_id)
        self._spans[call_id] = span
        for name, outcome in self._early.pop(call_id, []):
            # Came before /makecall named the call: with its token (delivered), or
            # without one and held by the runtime until now.
            held = "held" if outcome == "unknown_call" else outcome
            span.add_event(name, {"kaphila.delivery": held, "kaphila.before_placed": True})

    def webhook(self, call_id: str, event: str, outcome: str) -> None:
        """A webhook for ``call_id`` arrived: an event on its call's span."""
        if self._tracer is None:
            return
        span = self._spans.get(call_id)
        if span is not None:
            span.add_event(event, {"kaphila.delivery": outcome})
        elif outcome in ("delivered", "unknown_call"):  # maybe for a call being placed
            early = self._early.get(call_id)
            if early is None:
                if len(self._early) >= EARLY_CALLS:
                    del self._early[next(iter(self._early))]
                early = self._early[call_id] = []
            if len(early) < EARLY_LIMIT:
                early.append((event, outcome))

    def call_finished(self, call_id: str | None, status: str, error: BaseException | None) -> None:
        span = _call_span.get() if self._tracer is not None else None
        if span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        _call_span.set(None)
        if call_id is not None:
            self._spans.pop(call_id, None)
            self._early.pop(call_id, None)
        span.set_attribute("kaphila.call.status", status)
        if error is not None:
            span.set_attribute("kaphila.call.error", type(error).__name__)
        if status in ("failed", "unknown"):
            span.set_status(Status(StatusCode.ERROR, type(error).__name__ if error else status))
        span.end()

    def command(self, command: Command[Any]) -> AbstractContextManager[None]:
        """Around one command: a child span of its call's span."""
        if self._tracer is None:
            return nullcontext()
        return self._command_span(command)

    @contextmanager
    def _command_span(self, command: Command[Any]) -> Iterator[None]:
        from opentelemetry import context, trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        endpoint = url_path(command)
        attributes = {"kaphila.endpoint": endpoint, "kaphila.command": type(command).__name__}
        call_id = command_call_id(command)
        if call_id is not None:
            attributes["kaphila.call_id"] = call_id
        span = self._tracer.start_span(
            f"POST {endpoint}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        token = context.attach(trace.set_span_in_context(span))
        try:
            yield
        except Exception as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        except BaseException:  # cancelled: the span ends, the cancellation goes on
            span.set_attribute("kaphila.cancelled", True)
            raise
        finally:
            context.detach(token)
            span.end()
