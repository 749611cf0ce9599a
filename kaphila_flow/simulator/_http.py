"""The simulator's HTTP face: Kaphila's endpoints as a Quart app.

Every error answers with the provider's envelope ``{"success": false, "error": ...}``
and its status code; bad input (broken JSON, wrong types, huge bodies) is a 4xx,
never a 500.
"""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from .._commands import ForwardCall, Gather, Hangup, MakeCall, Play, StopRecording, Voice
from .._exceptions import ApiError, BadRequest
from .._metrics import CONTENT_TYPE
from .._provider import AccountState
from .._wire import FieldError
from ._core import Simulator

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 256 * 1024
VERSION = "2.0.0"


def _json(payload: Mapping[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _envelope(status: int, message: str, **extra: Any) -> Response:
    return _json({"success": False, "error": message, **extra}, status)


def _api_error(error: ApiError) -> Response:
    extra: dict[str, Any] = dict(error.details)
    if error.code:
        extra["code"] = error.code
    response = _envelope(error.status_code, error.message, **extra)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(int(error.retry_after + 0.999))
    return response


async def _body() -> dict[str, Any]:
    raw = await request.get_data(cache=False)
    if len(raw) > MAX_BODY_BYTES:
        raise _TooLarge
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


class _TooLarge(Exception):
    pass


def create_app(simulator: Simulator, *, app_class: type[Quart] = Quart) -> Quart:
    """The simulated API as a Quart app (``QuartTrio`` for ``app_class`` under trio)."""
    app = app_class("kaphila_flow.simulator")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.after_request
    async def count(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        if rule != "/metrics":  # route templates, never raw paths: few series, no call ids
            simulator.metrics.request(rule, response.status_code)
        return response

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(simulator.metrics.exposition(), mimetype=None, content_type=CONTENT_TYPE)

    def authed(
        path: str, handler: Callable[[AccountState], Awaitable[Response]]
    ) -> Callable[[], Awaitable[Response]]:
        async def endpoint() -> Response:
            header = request.headers.get("Authorization", "")
            key = header[7:].strip() if header.lower().startswith("bearer ") else None
            account = simulator.authenticate(key)
            simulator.admit(account, path)
            response = await handler(account)
            if simulator.faults.lose_answer(path):
                await anyio.sleep_forever()  # the work is done; the answer never comes
            return response

        return endpoint

    def post(path: str) -> Callable[[Callable[[AccountState], Awaitable[Response]]], Any]:
        def register(handler: Callable[[AccountState], Awaitable[Response]]) -> Any:
            app.add_url_rule(path, handler.__name__, authed(path, handler), methods=["POST"])
            return handler

        return register

    async def _logged(path: str) -> dict[str, Any]:
        body = await _body()
        simulator.record_request(path, body)
        return body

    @post("/makecall")
    async def makecall(account: AccountState) -> Response:
        reply = simulator.make_call(account, MakeCall.from_body(await _logged("/makecall")))
        return _json(reply.to_json())

    @post("/batchcall")
    async def batchcall(account: AccountState) -> Response:
        reply = simulator.make_call(account, MakeCall.from_body(await _logged("/batchcall")))
        return _json(reply.to_json())

    @post("/voice")
    async def voice(account: AccountState) -> Response:
        reply = await simulator.playback(account, Voice.from_body(await _logged("/voice")))
        return _json(reply.to_json())

    @post("/play")
    async def play(account: AccountState) -> Response:
        reply = await simulator.playback(account, Play.from_body(await _logged("/play")))
        return _json(reply.to_json())

    @post("/gather")
    async def gather(account: AccountState) -> Response:
        command = Gather.from_body(await _logged("/gather"))
        return _json(simulator.handle(account, command).to_json(command.call_id))

    @post("/forwardcall")
    async def forwardcall(account: AccountState) -> Response:
        command = ForwardCall.from_body(await _logged("/forwardcall"))
        return _json(simulator.handle(account, command).to_json())

    @post("/hangup")
    async def hangup(account: AccountState) -> Response:
        command = Hangup.from_body(await _logged("/hangup"))
        return _json(simulator.handle(account, command).to_json(command.call_id))

    async def list_calls(account: AccountState) -> Response:
        calls = [simulator.snapshot(call_id) for call_id in simulator.calls]
        active = sum(1 for c in calls if c["status"] != "ended")
        return _json(
            {"success": True, "totalCalls": len(calls), "activeCalls": active, "calls": calls}
        )

    app.add_url_rule("/calls", "calls", authed("/calls", list_calls), methods=["GET"])

    async def get_call(call_id: str) -> Response:
        header = request.headers.get("Authorization", "")
        simulator.authenticate(header[7:].strip() if header.lower().startswith("bearer ") else None)
        return _json({"success": True, "call": simulator.snapshot(call_id)})

    app.add_url_rule("/calls/<call_id>", "call", get_call, methods=["GET"])

    def _recordings(call_id: str | None) -> list[dict[str, Any]]:
        out = []
        for cid, call in simulator.calls.items():
            if call.model.answered_at is None or (call_id is not None and cid != call_id):
                continue
            out.append(
                {
                    "callId": cid,
                    "filename": f"{cid}.wav",
                    "recordingId": f"rec-{cid}",
                    "active": call.model.recording_active,
                }
            )
        return out

    def _account() -> AccountState:
        header = request.headers.get("Authorization", "")
        return simulator.authenticate(
            header[7:].strip() if header.lower().startswith("bearer ") else None
        )

    def _check_key() -> None:
        _account()

    @app.get("/recordings")
    async def recordings() -> Response:
        _check_key()
        return _json({"success": True, "recordings": _recordings(None)})

    @app.get("/recordings/<call_id>")
    async def call_recordings(call_id: str) -> Response:
        _check_key()
        found = _recordings(call_id)
        if not found:
            return _envelope(404, "No recordings for this call")
        return _json({"success": True, "recordings": found})

    @app.get("/recordings/<call_id>/download")
    async def download(call_id: str) -> Response:
        _check_key()
        if not _recordings(call_id):
            return _envelope(404, "Recording not found")
        return Response(_silence_wav(), mimetype="audio/wav")

    @app.get("/recordings/file/<filename>/download")
    async def download_file(filename: str) -> Response:
        _check_key()
        if not any(r["filename"] == filename for r in _recordings(None)):
            return _envelope(404, "Recording not found")
        return Response(_silence_wav(), mimetype="audio/wav")

    @app.post("/recordings/<call_id>/stop")
    async def stop(call_id: str) -> Response:
        account = _account()
        return _json(simulator.handle(account, StopRecording(call_id)).to_json())

    @app.get("/health")
    async def health() -> Response:
        live = sum(1 for c in simulator.calls.values() if c.model.live)
        return _json(
            {
                "status": "ok",
                "service": "kaphila-simulator",
                "version": VERSION,
                "stats": {"activeCalls": live},
                "features": ["amd", "gather", "tts", "forward"],
            }
        )

    @app.get("/api/me")
    async def me() -> Response:
        header = request.headers.get("Authorization", "")
        account = simulator.authenticate(
            header[7:].strip() if header.lower().startswith("bearer ") else None
        )
        return _json(
            {
                "success": True,
                "credits": account.credits,
                "rateLimit": account.account.rate_limit,
                "usedThisHour": account.used_this_hour,
            }
        )

    @app.post("/api/call-logs")
    async def call_logs() -> Response:
        _check_key()
        body = await _body()
        page = _positive(body, "page", 1)
        size = _positive(body, "page_size", 20)
        status = body.get("status")
        rows = [c.model.snapshot() for c in simulator.calls.values()]
        if isinstance(status, str):
            rows = [r for r in rows if r["status"] == status]
        chunk = rows[(page - 1) * size : page * size]
        return _json(
            {"success": True, "page": page, "page_size": size, "total": len(rows), "logs": chunk}
        )

    @app.post("/api/analytics")
    async def analytics() -> Response:
        _check_key()
        body = await _body()
        days = _positive(body, "days", 7)
        answered = sum(1 for c in simulator.calls.values() if c.model.answered_at is not None)
        return _json(
            {
                "success": True,
                "days": days,
                "totalCalls": len(simulator.calls),
                "answeredCalls": answered,
            }
        )

    @app.post("/api/dashboard")
    async def dashboard() -> Response:
        _check_key()
        live = sum(1 for c in simulator.calls.values() if c.model.live)
        return _json({"success": True, "activeCalls": live, "totalCalls": len(simulator.calls)})

    @app.errorhandler(ApiError)
    async def api_error(error: ApiError) -> Response:
        return _api_error(error)

    @app.errorhandler(FieldError)
    async def field_error(error: FieldError) -> Response:
        return _envelope(400, str(error))

    def too_large_body() -> Response:
        response = _envelope(413, f"Request body over {MAX_BODY_BYTES} bytes")
        # The rest of the body is never read: the connection cannot carry another
        # request, and a client that reused it would see it drop.
        response.headers["Connection"] = "close"
        return response

    @app.errorhandler(_TooLarge)
    async def too_large(error: _TooLarge) -> Response:
        return too_large_body()

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        if error.code == 413:
            return too_large_body()
        if error.code == 404:
            return _envelope(404, f"Not found: {request.path}")
        return _envelope(error.code or 400, error.description or error.name)

    return app


def _positive(body: Mapping[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"{key} must be a positive whole number")
    return value


def _silence_wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()
