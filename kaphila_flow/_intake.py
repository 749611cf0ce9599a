"""Webhook intake: a POST's token, headers and body in; a status and a reply out.

The one path every webhook takes into the runtime, whoever carried it: the Quart
receiver (HTTP) or the in-memory fake (no HTTP framing). In order: the token names a
live or finished call (else 403), the body is JSON of a bounded size (415, 413, 400),
the signature holds when signing is on, ``parse_event`` accepts it (400), and the call
table routes it (``Runtime.dispatch``). No I/O; it never raises for bad input.

``receive_event`` is the same path for a sender that holds the event as a value and
the JSON body it stands for (the fake, unsigned): the body is not decoded and parsed
again, and everything else is the same, the body's size and its duplicate identity
included.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from ._events import Event, parse_event
from ._exceptions import InvalidEvent, WebhookRejected
from ._session import Delivery

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["MAX_BODY_BYTES", "Headers", "IntakeReply", "receive_event", "receive_webhook"]

#: Webhook bodies are small JSON objects; anything near this is not one.
MAX_BODY_BYTES = 64 * 1024
JSON_TYPES = ("application/json", "text/json", "application/x-www-form-urlencoded")


class Headers(Protocol):
    """A webhook's headers: a ``Mapping[str, str]``, or the receiver's request headers
    (read in place, not copied)."""

    def get(self, key: str, /) -> str | None: ...

    def items(self) -> Iterable[tuple[str, str]]: ...


@dataclass(frozen=True, slots=True)
class IntakeReply:
    """What the receiver answers: an HTTP status and a JSON body."""

    status: int
    body: Mapping[str, Any]
    delivery: Delivery | None = None

    @classmethod
    def error(cls, status: int, message: str) -> IntakeReply:
        return cls(status, {"success": False, "error": message})


#: The answer to each dispatched webhook, made once: every webhook of every call
#: gets one of these (read-only, shared), not a new mapping of its own.
_DISPATCHED: dict[Delivery, IntakeReply] = {
    delivery: IntakeReply(
        200, MappingProxyType({"success": True, "delivery": delivery.value}), delivery
    )
    for delivery in Delivery
    if delivery is not Delivery.REJECTED
}
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
_REJECTED = IntakeReply(
    403,
    MappingProxyType({"success": False, "error": "unknown or wrong webhook token"}),
    Delivery.REJECTED,
)


def _header(headers: Headers, name: str) -> str | None:
    """Header ``name`` (lower case) of ``headers``, whatever case the sender used.

    The receiver's request headers answer at once (they ignore case); a ``Mapping``
    (the in-memory fake's ``dict``) is searched.
    """
    value = headers.get(name)
    if value is None and isinstance(headers, Mapping):
        for key, found in headers.items():
            if isinstance(key, str) and key.lower() == name:
                return str(found)
    return value


def receive_webhook(
    runtime: Runtime,
    token: str,
    body: bytes,
    *,
    content_type: str | None,
    headers: Headers,
    limit: int = MAX_BODY_BYTES,
) -> IntakeReply:
    """Take one webhook POST addressed to ``<webhook path>/<token>``.

    A webhook refused before dispatch is counted (``rejected`` or ``invalid``); the
    others are counted by ``Runtime.dispatch``.
    """
    return _counted(runtime, _receive(runtime, token, body, content_type, headers, limit))


def receive_event(
    runtime: Runtime, token: str, event: Event, body: bytes, *, limit: int = MAX_BODY_BYTES
) -> IntakeReply:
    """Take ``event``, posted unsigned as JSON ``body`` (which ``parse_event`` turns back
    into an equal event) to ``<webhook path>/<token>``: ``receive_webhook``'s outcome
    for that POST, without decoding ``body``. With signing on, the unsigned POST is
    what is judged (refused, as it lacks a signature)."""
    if runtime.webhook_signer is not None:
        return receive_webhook(
            runtime, token, body, content_type="application/json", headers=_NO_HEADERS
        )
    refused = _refusal(runtime, token, body, None, limit)
    if refused is not None:
        return _counted(runtime, refused)
    return _dispatch(runtime, event, token, event.delivery_identity(body))


def _counted(runtime: Runtime, reply: IntakeReply) -> IntakeReply:
    """``reply``, counted if the webhook was refused before dispatch (``rejected`` or
    ``invalid``; ``Runtime.dispatch`` counts the others)."""
    if reply.delivery is None:
        runtime.metrics.webhook("rejected" if reply.status in (401, 403) else "invalid")
    return reply


def _refusal(
    runtime: Runtime, token: str, body: bytes, content_type: str | None, limit: int
) -> IntakeReply | None:
    """Why a POST is refused before its body is read (token, type, size), or ``None``."""
    known = runtime.session_for_token(token) is not None or runtime.finished_token(token)
    if not known:
        return IntakeReply.error(403, "unknown or wrong webhook token")
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind and kind not in JSON_TYPES:
        return IntakeReply.error(415, f"webhook bodies must be JSON, not {kind}")
    if len(body) > limit:
        return IntakeReply.error(413, f"webhook body over {limit} bytes")
    return None


def _dispatch(runtime: Runtime, event: Event, token: str, identity: bytes | None) -> IntakeReply:
    delivery = runtime.dispatch(event, token=token, identity=identity)
    return _REJECTED if delivery is Delivery.REJECTED else _DISPATCHED[delivery]


def _receive(
    runtime: Runtime,
    token: str,
    body: bytes,
    content_type: str | None,
    headers: Headers,
    limit: int,
) -> IntakeReply:
    refused = _refusal(runtime, token, body, content_type, limit)
    if refused is not None:
        return refused
    signer = runtime.webhook_signer
    if signer is not None:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            signer.verify(lowered, body, runtime.wall_time())
        except WebhookRejected as rejected:
            return IntakeReply.error(rejected.status_code, rejected.reason)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else "not valid JSON"
        return IntakeReply.error(400, f"webhook body is {reason}")
    try:
        event = parse_event(payload)
    except InvalidEvent as exc:
        return IntakeReply.error(400, str(exc))
    # A webhook id (Standard Webhooks) names one message across retries; else the
    # raw body does, where identical bodies mean one delivery (``delivery_identity``).
    message_id = _header(headers, "webhook-id")
    identity = b"id:" + message_id.encode() if message_id else event.delivery_identity(body)
    return _dispatch(runtime, event, token, identity)
