"""The dev phone's HTTP face: the page, its live stream (server-sent events), its actions.

Mounted under ``/phone`` on the simulator's Quart app. Safe by default: on loopback
the page answers only to loopback host names (no DNS rebinding); elsewhere every
request needs ``?token=`` (compared in constant time). Actions take JSON only, so a
foreign web page cannot post a form to them, and the page runs under a strict
Content-Security-Policy (its own script only; text goes in as text).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from quart import Blueprint, Quart, Response, request
from werkzeug.exceptions import HTTPException

from .._exceptions import ApiError, CallNotFound, KaphilaError
from ..simulator import Notice, NoticeKind
from ._phone import PAGE_PATH, DevPhone

__all__ = ["mount_phone"]

#: Seconds between keep-alive comments on an idle stream (finds closed pages).
KEEP_ALIVE = 15.0
_STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the page's URL may carry its token
    "Cache-Control": "no-store",
}


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    response = Response(json.dumps(payload), status=status, mimetype="application/json")
    response.headers.update(_SECURITY_HEADERS)
    return response


def _loopback_name(host_header: str) -> bool:
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _static(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


def mount_phone(app: Quart, phone: DevPhone) -> None:
    """Serve ``phone``'s page under ``/phone`` on ``app`` (the simulator's app)."""
    page = Blueprint("devphone", __name__, url_prefix=PAGE_PATH)
    simulator = phone.simulator

    @page.before_request
    async def guard() -> None:
        if request.path.startswith(f"{PAGE_PATH}/static/"):
            return  # the package's own files; nothing secret
        if phone.token is not None:
            given = request.args.get("token", "")
            if not hmac.compare_digest(given.encode(), phone.token.encode()):
                raise _Refused(403, "this dev phone needs its ?token= (printed when it started)")
        elif not _loopback_name(request.host):
            raise _Refused(403, "this dev phone answers on loopback names only")

    async def body() -> dict[str, Any]:
        if request.mimetype != "application/json":
            raise _Refused(415, "send the action as JSON (Content-Type: application/json)")
        raw = await request.get_data(cache=False)
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise _Refused(400, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _Refused(400, "the body must be a JSON object")
        return data

    @page.get("/")
    async def index() -> Response:
        response = Response(_static("index.html"), mimetype="text/html")
        response.headers.update(_SECURITY_HEADERS)
        return response

    @page.get("/static/<name>")
    async def static(name: str) -> Response:
        mimetype = _STATIC.get(name)
        if mimetype is None:
            raise _Refused(404, f"no such file: {name}")
        response = Response(_static(name), content_type=mimetype)
        response.headers.update(_SECURITY_HEADERS)
        return response

    @page.get("/api/events")
    async def events() -> Response:
        hello = phone.hello()

        async def stream() -> AsyncIterator[bytes]:
            async with phone.watch() as feed:
                phone.page_opened()
                try:
                    yield b"retry: 1000\n" + _event("hello", hello)
                    while True:
                        notice = await feed.next_within(KEEP_ALIVE)
                        if notice is None and feed.closed:
                            return  # the dev phone stops
                        if notice is None:
                            yield b": keep-alive\n\n"
                        else:
                            yield _event("notice", _shown(notice))
                finally:
                    phone.page_closed()

        response = Response(stream(), mimetype="text/event-stream")
        response.headers.update(_SECURITY_HEADERS)
        response.headers["X-Accel-Buffering"] = "no"
        response.timeout = None
        return response

    @page.post("/api/calls/<call_id>/answer")
    async def answer(call_id: str) -> Response:
        # The provider model checks ``how`` (a ValueError, answered as a 400).
        simulator.answer_call(call_id, (await body()).get("how", "human"))
        return _json({"ok": True})

    @page.post("/api/calls/<call_id>/decline")
    async def decline(call_id: str) -> Response:
        await body()
        simulator.decline_call(call_id)
        return _json({"ok": True})

    @page.post("/api/calls/<call_id>/keys")
    async def keys(call_id: str) -> Response:
        pressed = (await body()).get("keys")
        if not isinstance(pressed, str):
            raise _Refused(400, 'send the keys as {"keys": "1"}')
        simulator.press_keys(call_id, pressed)
        return _json({"ok": True})

    @page.post("/api/calls/<call_id>/hangup")
    async def hangup(call_id: str) -> Response:
        await body()
        simulator.callee_hangs_up(call_id)
        return _json({"ok": True})

    @page.post("/api/dial")
    async def dial() -> Response:
        number = (await body()).get("number")
        if phone.dial is None:
            raise _Refused(404, "this page places no calls: the flow runs in another program")
        if not isinstance(number, str) or not number.strip():
            raise _Refused(400, 'send the number as {"number": "16089270862"}')
        try:
            await phone.dial(number.strip())
        except (ValueError, KaphilaError, RuntimeError) as exc:
            raise _Refused(400, str(exc)) from None
        return _json({"ok": True})

    @page.errorhandler(_Refused)
    async def refused(error: _Refused) -> Response:
        return _json({"error": error.message}, error.status)

    @page.errorhandler(CallNotFound)
    async def not_found(error: CallNotFound) -> Response:
        return _json({"error": "no such live call (it may have ended)"}, 404)

    @page.errorhandler(ApiError)
    async def api_error(error: ApiError) -> Response:
        return _json({"error": error.message}, error.status_code or 400)

    @page.errorhandler(ValueError)
    async def bad_value(error: ValueError) -> Response:
        return _json({"error": str(error)}, 400)

    @page.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        return _json({"error": error.description or error.name}, error.code or 400)

    app.register_blueprint(page)


def _shown(notice: Notice) -> dict[str, Any]:
    """A notice as the page gets it: a webhook URL's secret part (its last path
    segment, where the runtime puts the call's token, and any query) is masked."""
    data = notice.to_json()
    url = data["detail"].get("webhookUrl") if notice.kind is NoticeKind.REQUEST else None
    if isinstance(url, str):
        parts = urlsplit(url)
        path = parts.path.rsplit("/", 1)[0] if parts.path.count("/") > 1 else ""
        data["detail"]["webhookUrl"] = f"{parts.scheme}://{parts.netloc}{path}/…"
    return data


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
