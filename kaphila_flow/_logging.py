"""Structured logs: every record about a call carries ``call_id`` and ``flow`` fields.

While a call's task runs, a context variable holds its call id and its flow's name;
``CallContextFilter`` copies them onto each record a handler sees, whichever library
logged it. ``configure_logging`` installs one handler on the root logger, as text or
as JSON lines. Messages are the library's own, so what they never contain (the API key,
webhook tokens, sensitive digits) is never in either format.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TextIO

from ._loading import FILE_MODULE_PREFIX

__all__ = [
    "CallContextFilter",
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "call_fields",
    "configure_logging",
    "flow_name",
    "set_call",
]

#: ``configure_logging`` formats: human-readable lines, or one JSON object a line.
LogFormat = Literal["text", "json"]


class CallLog(Protocol):
    """The call a task runs, as its log records name it (the call's own session)."""

    @property
    def call_id(self) -> str | None: ...

    @property
    def flow_name(self) -> str: ...


#: One variable set once per call task, to the call's session: its id is read when a
#: record is logged, so it needs no second ``set`` (each copies the task's context map,
#: which a call keeps all its life) and no object of its own.
_call: ContextVar[CallLog | None] = ContextVar("kaphila_flow_call", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "call_id", "flow", "call_context", "taskName"}
)


def flow_name(flow: object) -> str:
    """A flow's name for logs and traces: ``module.function``."""
    try:
        return _named_flow(flow)  # one string per flow, not one per call
    except TypeError:  # an unhashable callable
        return _flow_name(flow)


@functools.lru_cache(maxsize=256)
def _named_flow(flow: object) -> str:
    return _flow_name(flow)


def _flow_name(flow: object) -> str:
    name = getattr(flow, "__qualname__", None) or type(flow).__qualname__
    module = getattr(flow, "__module__", None)
    if not isinstance(module, str) or module == "__main__":
        return str(name)
    return f"{module.removeprefix(FILE_MODULE_PREFIX)}.{name}"


def set_call(log: CallLog) -> None:
    """The current task now runs the call ``log`` (its id may come later)."""
    _call.set(log)


def call_fields(call_id: str | None, flow: str | None = None) -> dict[str, Any]:
    """``extra=`` for a record about a call, logged outside that call's task."""
    return {"call_id": call_id, "flow": flow}


class CallContextFilter(logging.Filter):
    """Adds ``call_id`` and ``flow`` to every record (``None`` outside a call).

    Attach it to a handler: records from every logger then carry the fields, e.g. for
    ``%(call_id)s`` in a format string. A record logged with ``extra={"call_id": ...}``
    keeps its own value.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        log = _call.get()
        if getattr(record, "call_id", None) is None:
            record.call_id = log.call_id if log is not None else None
        if getattr(record, "flow", None) is None:
            record.flow = (log.flow_name or None) if log is not None else None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``message``,
    ``call_id``, ``flow``, any ``extra=`` fields, and ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "call_id": getattr(record, "call_id", None),
            "flow": getattr(record, "flow", None),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [call ID flow NAME] message``; the brackets only about a call."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(call_context)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        call_id, flow = getattr(record, "call_id", None), getattr(record, "flow", None)
        parts = [f"call {call_id}" if call_id else "", f"flow {flow}" if flow else ""]
        context = " ".join(part for part in parts if part)
        record.call_context = f" [{context}]" if context else ""
        return super().format(record)


_INSTALLED = "_kaphila_flow_handler"


def configure_logging(
    log_format: LogFormat = "text",
    *,
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as text or JSON lines, with the
    ``call_id`` and ``flow`` fields. Calling it again replaces the handler it installed.

    Logging belongs to the process, not to one runtime, so this is a function: call it
    once at start-up (the CLI's ``--log-format`` does). With a logging setup of your own,
    add ``CallContextFilter`` and, for JSON, ``JsonFormatter`` to your handler instead.
    """
    if log_format not in ("text", "json"):
        raise ValueError(f"log_format must be 'text' or 'json', not {log_format!r}")
    if isinstance(level, str):
        resolved = logging.getLevelName(level.upper())
        if not isinstance(resolved, int):
            raise ValueError(f"unknown log level {level!r}")
        level = resolved
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(CallContextFilter())
    setattr(handler, _INSTALLED, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _INSTALLED, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
