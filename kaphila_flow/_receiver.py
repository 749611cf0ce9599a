"""The webhook receiver: Kaphila's POSTs in, ``Runtime.dispatch`` out. Quart lives here.

Each call's ``webhookUrl`` is ``<public base>/<token>``, the token an unguessable
per-call secret (see ``Runtime.session_for_token``). The receiver answers at once: the
flow's work happens after the acknowledgement, so a slow flow never makes the provider
give up and retry. Bad input gets a 4xx with a JSON error, never a 5xx.

Beside the webhooks: ``GET /healthz`` and ``GET /metrics`` (the runtime's Prometheus
metrics). Every refused webhook is counted (``rejected`` or ``invalid``); the others
are counted by ``Runtime.dispatch``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from ._events import parse_event
from ._exceptions import InvalidEvent, WebhookRejected
from ._metrics import CONTENT_TYPE
from ._session import Delivery
from ._signing import WebhookSigner

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["MAX_BODY_BYTES", "create_receiver"]

logger = logging.getLogger("kaphila_flow.receiver")

#: Webhook bodies are small JSON objects; anything near this is not one.
MAX_BODY_BYTES = 64 * 1024
_JSON_TYPES = ("application/json", "text/json", "application/x-www-form-urlencoded")


def _error(status: int, message: str) -> Response:
    return Response(
        json.dumps({"success": False, "error": message}), status=status, mimetype="application/json"
    )


def _ok(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def create_receiver(
    runtime: Runtime,
    *,
    path: str = "/webhooks",
    app_class: type[Quart] = Quart,
    max_body_bytes: int = MAX_BODY_BYTES,
    signer: WebhookSigner | None = None,
) -> Quart:
    """The runtime's receiver as a Quart (ASGI) app; mount it or serve it."""
    app = app_class("kaphila_flow.receiver")
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    prefix = "/" + path.strip("/")

    @app.post(f"{prefix}/<token>")
    async def webhook(token: str) -> Response:
        return await _receive(runtime, token, max_body_bytes, signer)

    @app.post(prefix)
    async def webhook_without_token() -> Response:
        return _refuse(runtime, 403, "missing webhook token")

    @app.get("/healthz")
    async def healthz() -> Response:
        return _ok({"status": "ok", "live_calls": runtime.live_calls})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(runtime.metrics.exposition(), mimetype=None, content_type=CONTENT_TYPE)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        if exc.code == 413:
            return _refuse(runtime, 413, f"webhook body over {max_body_bytes} bytes")
        return _error(exc.code or 400, exc.description or exc.name)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:  # never a 5xx for the provider to retry
        logger.exception("webhook receiver error: %s", type(exc).__name__)
        return _error(400, "the request could not be processed")

    return app


def _refuse(runtime: Runtime, status: int, message: str) -> Response:
    """A webhook refused before dispatch: counted, then answered."""
    runtime.metrics.webhook("rejected" if status in (401, 403) else "invalid")
    return _error(status, message)


async def _receive(
    runtime: Runtime, token: str, limit: int, signer: WebhookSigner | None
) -> Response:
    session = runtime.session_for_token(token)
    late = session is None and runtime.finished_token(token)
    if session is None and not late:
        return _refuse(runtime, 403, "unknown or wrong webhook token")
    content_type = (request.mimetype or "").lower()
    if content_type and content_type not in _JSON_TYPES:
        return _refuse(runtime, 415, f"webhook bodies must be JSON, not {content_type}")
    body = await request.get_data(cache=False)
    if len(body) > limit:
        return _refuse(runtime, 413, f"webhook body over {limit} bytes")
    if signer is not None:
        try:
            headers = {k.lower(): v for k, v in request.headers.items()}
            signer.verify(headers, body if isinstance(body, bytes) else body.encode(), time.time())
        except WebhookRejected as rejected:
            return _refuse(runtime, rejected.status_code, rejected.reason)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else "not valid JSON"
        return _refuse(runtime, 400, f"webhook body is {reason}")
    try:
        event = parse_event(payload)
    except InvalidEvent as exc:
        return _refuse(runtime, 400, str(exc))
    delivery = runtime.dispatch(event, token=token)
    if delivery is Delivery.REJECTED:
        return _error(403, "unknown or wrong webhook token")
    return _ok({"success": True, "delivery": delivery.value})
