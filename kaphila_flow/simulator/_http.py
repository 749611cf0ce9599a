"""The simulator's HTTP face: Kaphila's endpoints as a Quart app.

Every error answers with the provider's envelope ``{"success": false, "error": ...}``
and its status code; bad input (broken JSON, wrong types, huge bodies) is a 4xx,
never a 500.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from .._commands import StopRecording
from .._exceptions import ApiError, BadRequest
from .._metrics import CONTENT_TYPE
from .._provider import AccountState
from .._wire import FieldError
from ._core import Simulator
from ._endpoints import (
    ENDPOINTS,
    LOST,
    MAX_BODY_BYTES,
    TOO_LARGE,
    Answer,
    BodyTooLarge,
    api_error_answer,
    api_key,
    call_endpoint,
    envelope,
    json_answer,
    parse_body,
)

__all__ = ["MAX_BODY_BYTES", "create_app"]

VERSION = "2.0.0"


def _response(answer: Answer) -> Response:
    response = Response(answer.body, status=answer.status, mimetype="application/json")
    for name, value in answer.headers:
        response.headers[name] = value
    if answer.close:
        response.headers["Connection"] = "close"
    return response


def _json(payload: Mapping[str, Any], status: int = 200) -> Response:
    return _response(json_answer(payload, status))


def _envelope(status: int, message: str, **extra: Any) -> Response:
    return _response(envelope(status, message, **extra))


async def _body() -> dict[str, Any]:
    return parse_body(await request.get_data(False, False, False))


def create_app(simulator: Simulator, *, app_class: type[Quart] = Quart) -> Quart:
    """The simulated API as a Quart app (``QuartTrio`` for ``app_class`` under trio)."""
    app = app_class("kaphila_flow.simulator")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.after_request
    async def count(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        # Route templates, never raw paths: few series, no call ids. The call-control
        # endpoints count their own answers (``call_endpoint``).
        if rule != "/metrics" and rule not in ENDPOINTS:
            simulator.metrics.request(rule, response.status_code)
        return response

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(simulator.metrics.exposition(), mimetype=None, content_type=CONTENT_TYPE)

    def authed(
        path: str, handler: Callable[[AccountState], Awaitable[Response]]
    ) -> Callable[[], Awaitable[Response]]:
        async def endpoint() -> Response:
            account = simulator.authenticate(api_key(request.headers.get("Authorization", "")))
            simulator.admit(account, path)
            response = await handler(account)
            if simulator.faults.lose_answer(path):
                await anyio.sleep_forever()  # the work is done; the answer never comes
            return response

        return endpoint

    def endpoint(path: str) -> Callable[[], Awaitable[Response]]:
        async def call() -> Response:
            raw = await request.get_data(False, False, False)
            authorization = request.headers.get("Authorization", "")
            answer = await call_endpoint(simulator, path, authorization, raw)
            if answer is LOST:
                await anyio.sleep_forever()  # the work is done; the answer never comes
            return _response(answer)

        return call

    for path in ENDPOINTS:
        app.add_url_rule(path, path.strip("/"), endpoint(path), methods=["POST"])

    async def list_calls(account: AccountState) -> Response:
        calls = [simulator.snapshot(call_id) for call_id in simulator.calls]
        active = sum(1 for c in calls if c["status"] != "ended")
        return _json(
            {"success": True, "totalCalls": len(calls), "activeCalls": active, "calls": calls}
        )

    app.add_url_rule("/calls", "calls", authed("/calls", list_calls), methods=["GET"])

    async def get_call(call_id: str) -> Response:
        _check_key()
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
        return simulator.authenticate(api_key(request.headers.get("Authorization", "")))

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
        account = _account()
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
        return _response(api_error_answer(error))

    @app.errorhandler(FieldError)
    async def field_error(error: FieldError) -> Response:
        return _envelope(400, str(error))

    @app.errorhandler(BodyTooLarge)
    async def too_large(error: BodyTooLarge) -> Response:
        return _response(TOO_LARGE)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        if error.code == 413:
            return _response(TOO_LARGE)
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
