"""The one exception tree of kaphila_flow.

    KaphilaError
    ├── ApiError                      the provider answered with an error envelope
    │   ├── BadRequest                400
    │   ├── AuthenticationError       401
    │   ├── InsufficientCredits       402
    │   ├── CallNotFound              404 (also: the call already ended)
    │   ├── RateLimited               429
    │   ├── ServerError               500 (OriginationFailed for ORIGINATION_FAILED)
    │   └── NoTrunks                  503
    ├── TransportError                no usable answer came back
    │   ├── NetworkError              the request could not be sent or the connection broke
    │   │   └── ConnectError          nothing was sent: safe to retry any endpoint
    │   ├── Timeout                   connect/read/write/pool timeout
    │   └── MalformedResponse         an answer that is not the documented JSON
    ├── InvalidNumber (ValueError)    a phone number Kaphila cannot dial
    ├── InvalidEvent (ValueError)     a webhook payload that is not an event
    ├── ConfigurationError (ValueError)
    ├── WebhookRejected               a webhook failed authentication
    └── FlowError                     raised inside flows
        ├── CallEnded                 the call ended while (or before) the flow awaited
        ├── GatherFailed              Kaphila reported gather.failed
        └── MenuFailed                a menu got no valid choice after its tries

Messages never contain the API key, webhook tokens, or digits marked sensitive.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadRequest",
    "CallEnded",
    "CallNotFound",
    "ConfigurationError",
    "ConnectError",
    "FlowError",
    "GatherFailed",
    "InsufficientCredits",
    "InvalidEvent",
    "InvalidNumber",
    "KaphilaError",
    "MalformedResponse",
    "MenuFailed",
    "NetworkError",
    "NoTrunks",
    "OriginationFailed",
    "RateLimited",
    "ServerError",
    "Timeout",
    "TransportError",
    "WebhookRejected",
]

from collections.abc import Mapping
from typing import Any


class KaphilaError(Exception):
    """Root of every error kaphila_flow raises."""


class ApiError(KaphilaError):
    """Kaphila answered a request with an error (``{"success": false, "error": ...}``)."""

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        endpoint: str | None = None,
        details: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
        enveloped: bool = True,
    ) -> None:
        if status_code is not None:
            self.status_code = status_code
        self.message = message
        #: Whether the answer was Kaphila's own error envelope (``{"success": false,
        #: "error": ...}``): the provider itself said the request failed. ``False`` for a
        #: bare error page (a proxy's 502 or 504), which says nothing of what was done.
        self.enveloped = enveloped
        self.code = code
        self.endpoint = endpoint
        self.details: Mapping[str, Any] = dict(details or {})
        self.retry_after = retry_after
        where = f" {endpoint}" if endpoint else ""
        code_part = f" [{code}]" if code else ""
        super().__init__(f"Kaphila{where} answered {self.status_code}{code_part}: {message}")


class BadRequest(ApiError):
    """400: Kaphila refused the request as malformed (a bad number, a missing field)."""

    status_code = 400


class AuthenticationError(ApiError):
    """401: the API key is missing or wrong."""

    status_code = 401


class InsufficientCredits(ApiError):
    """402: the account has no credits left."""

    status_code = 402


class CallNotFound(ApiError):
    """404: no such call, or it has already ended."""

    status_code = 404


class RateLimited(ApiError):
    """429: over the account's hourly request limit; ``retry_after`` says when to try again."""

    status_code = 429


class ServerError(ApiError):
    """500: Kaphila failed (for ``/makecall``, the call may or may not have been placed)."""

    status_code = 500


class OriginationFailed(ServerError):
    """500 with ``code: ORIGINATION_FAILED``: no trunk could place the call."""


class NoTrunks(ApiError):
    """503: no trunk could place the call; nothing was dialled."""

    status_code = 503


class TransportError(KaphilaError):
    """No usable answer came back from Kaphila."""

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        self.endpoint = endpoint
        super().__init__(message)


class NetworkError(TransportError):
    """The connection failed or broke; the request may or may not have been received."""


class ConnectError(NetworkError):
    """The connection could not be opened: nothing was sent."""


class Timeout(TransportError):
    """Kaphila did not answer in time; the request may have been carried out."""


class MalformedResponse(TransportError):
    """Kaphila answered with something that is not the documented JSON."""


class InvalidNumber(KaphilaError, ValueError):
    """A phone number that Kaphila cannot dial."""

    def __init__(self, number: object, reason: str) -> None:
        self.number = number
        self.reason = reason
        super().__init__(f"invalid phone number {number!r}: {reason}")


class InvalidEvent(KaphilaError, ValueError):
    """A webhook payload that is not a Kaphila event."""


class ConfigurationError(KaphilaError, ValueError):
    """A missing or malformed setting."""


class WebhookRejected(KaphilaError):
    """A webhook request failed authentication (wrong token or signature)."""

    def __init__(self, reason: str, *, status_code: int = 403) -> None:
        self.reason = reason
        self.status_code = status_code
        super().__init__(reason)


class FlowError(KaphilaError):
    """Raised inside a flow by the ``Call`` it awaits."""


class CallEnded(FlowError):
    """The call ended: the caller hung up, it was forwarded away, or it was hung up."""

    def __init__(self, call_id: str, reason: str = "ended") -> None:
        self.call_id = call_id
        self.reason = reason
        super().__init__(f"call {call_id} has ended ({reason})")


class GatherFailed(FlowError):
    """Kaphila reported ``gather.failed`` for the gather the flow awaited."""

    def __init__(self, call_id: str, reason: str) -> None:
        self.call_id = call_id
        self.reason = reason
        super().__init__(f"gather failed on call {call_id}: {reason}")


class MenuFailed(FlowError):
    """A menu or prompt got no acceptable answer within its tries."""

    def __init__(self, call_id: str, tries: int, what: str = "menu") -> None:
        self.call_id = call_id
        self.tries = tries
        super().__init__(f"{what} on call {call_id} got no valid answer after {tries} tries")
