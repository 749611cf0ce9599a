"""The call-control endpoints (``/makecall``, ``/voice``, ...) as plain async functions.

What a flow's every step costs the simulator: bytes in (the path, the Authorization
header, the body), an ``Answer`` out (the status, the JSON body, its extra headers).
The simulator's own HTTP server (``_server``) calls ``call_endpoint`` straight from
the socket; the Quart app (``_http``) routes the same paths to it for anything that
speaks ASGI. Every error is the provider's envelope ``{"success": false, "error": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._commands import ForwardCall, Gather, Hangup, MakeCall, Play, Voice
from .._exceptions import ApiError, BadRequest
from .._provider import AccountState
from .._wire import FieldError
from ._core import Simulator

__all__ = [
    "ENDPOINTS",
    "LOST",
    "MAX_BODY_BYTES",
    "TOO_LARGE",
    "Answer",
    "api_error_answer",
    "api_key",
    "call_endpoint",
    "envelope",
    "json_answer",
    "parse_body",
]

MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer with a JSON body."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    #: The connection cannot carry another request (the rest of the body is unread).
    close: bool = False


def json_answer(payload: Mapping[str, Any], status: int = 200) -> Answer:
    return Answer(status, json.dumps(payload).encode())


def envelope(status: int, message: str, **extra: Any) -> Answer:
    return json_answer({"success": False, "error": message, **extra}, status)


def api_error_answer(error: ApiError) -> Answer:
    extra: dict[str, Any] = dict(error.details)
    if error.code:
        extra["code"] = error.code
    answer = envelope(error.status_code, error.message, **extra)
    if error.retry_after is None:
        return answer
    retry_after = (("Retry-After", str(int(error.retry_after + 0.999))),)
    return Answer(answer.status, answer.body, retry_after)


_too_large = envelope(413, f"Request body over {MAX_BODY_BYTES} bytes")
#: A body over the limit: its rest is never read, so the connection cannot carry
#: another request (a client that reused it would see it drop).
TOO_LARGE = Answer(_too_large.status, _too_large.body, close=True)

#: The answer that never comes (``Faults``: the work is done, the answer is lost).
LOST = Answer(0, b"")


class BodyTooLarge(Exception):
    """A request body over ``MAX_BODY_BYTES``."""


def parse_body(raw: bytes) -> dict[str, Any]:
    """A request's JSON object (``{}`` for no body); ``BadRequest`` saying what is wrong."""
    if len(raw) > MAX_BODY_BYTES:
        raise BodyTooLarge
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        detail = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)[:120]
        raise BadRequest(f"Invalid JSON body: {detail}") from None
    if not isinstance(data, dict):
        raise BadRequest("Invalid JSON body: expected an object")
    return data


def api_key(authorization: str) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header (``None`` without one)."""
    return authorization[7:].strip() if authorization[:7].lower() == "bearer " else None


Endpoint = Callable[[Simulator, AccountState, dict[str, Any]], Awaitable[dict[str, Any]]]


async def _makecall(simulator: Simulator, account: AccountState, body: dict[str, Any]) -> Any:
    return simulator.make_call(account, MakeCall.from_body(body)).to_json()


async def _voice(simulator: Simulator, account: AccountState, body: dict[str, Any]) -> Any:
    return (await simulator.playback(account, Voice.from_body(body))).to_json()


async def _play(simulator: Simulator, account: AccountState, body: dict[str, Any]) -> Any:
    return (await simulator.playback(account, Play.from_body(body))).to_json()


async def _gather(simulator: Simulator, account: AccountState, body: dict[str, Any]) -> Any:
    command = Gather.from_body(body)
    return simulator.handle(account, command).to_json(command.call_id)


async def _forwardcall(simulator: Simulator, account: AccountState, body: dict[str, Any]) -> Any:
    return simulator.handle(account, ForwardCall.from_body(body)).to_json()


async def _hangup(simulator: Simulator, account: AccountState, body: dict[str, Any]) -> Any:
    command = Hangup.from_body(body)
    return simulator.handle(account, command).to_json(command.call_id)


#: The POST endpoints a call's steps take, by path.
ENDPOINTS: dict[str, Endpoint] = {
    "/makecall": _makecall,
    "/batchcall": _makecall,
    "/voice": _voice,
    "/play": _play,
    "/gather": _gather,
    "/forwardcall": _forwardcall,
    "/hangup": _hangup,
}


async def call_endpoint(simulator: Simulator, path: str, authorization: str, raw: bytes) -> Answer:
    """POST ``raw`` to the endpoint at ``path`` (one of ``ENDPOINTS``); counted in the
    simulator's metrics unless its answer is ``LOST``."""
    try:
        account = simulator.authenticate(api_key(authorization))
        simulator.admit(account, path)
        body = parse_body(raw)
        simulator.record_request(path, body)
        payload = await ENDPOINTS[path](simulator, account, body)
    except ApiError as error:
        answer = api_error_answer(error)
    except FieldError as error:
        answer = envelope(400, str(error))
    except BodyTooLarge:
        answer = TOO_LARGE
    else:
        if simulator.faults.lose_answer(path):
            return LOST
        answer = json_answer(payload)
    simulator.metrics.request(path, answer.status)
    return answer
