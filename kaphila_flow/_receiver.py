"""The webhook receiver: Kaphila's POSTs in, ``Runtime.dispatch`` out. Quart lives here.

Each call's ``webhookUrl`` is ``<public base>/<token>``, the token an unguessable
per-call secret (see ``Runtime.session_for_token``). The receiver answers at once: the
flow's work happens after the acknowledgement, so a slow flow never makes the provider
give up and retry. Bad input gets a 4xx with a JSON error, never a 5xx. Everything but
the HTTP framing is ``_intake.receive_webhook``, the path the in-memory fake takes too.
The webhook POSTs themselves are answered before Quart by ``_webhook_post.WebhookPost``
(ASGI middleware, the same rules, a fraction of the work per webhook); Quart serves
the rest, and the webhooks too when the app is mounted under a root path.

Beside the webhooks: ``GET /healthz`` and ``GET /metrics`` (the runtime's Prometheus
metrics). Every refused webhook is counted (``rejected`` or ``invalid``) by the intake;
the others are counted by ``Runtime.dispatch``.

Memory per connection is bounded: a body over ``max_body_bytes`` gets 413 (also while
a chunked body streams in; Quart's ``MAX_CONTENT_LENGTH`` on its own routes), and a
body that has not fully arrived within ``body_timeout`` seconds gets 408 (Quart's
``BODY_TIMEOUT`` on its own routes),
counted as ``timed_out``; the connection is then closed, its body never read (under
trio, hypercorn closes it once silent for twice the body timeout: ``serve_app``). Headers
are bounded by hypercorn (16 KiB), and so is framing it cannot parse:
``Transfer-Encoding: gzip, chunked`` gets 501 from the HTTP layer before the app.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from ._intake import MAX_BODY_BYTES, IntakeReply, receive_webhook
from ._metrics import CONTENT_TYPE
from ._webhook_post import WebhookPost, reply_json

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["MAX_BODY_BYTES", "create_receiver"]

logger = logging.getLogger("kaphila_flow.receiver")


def _refuse(runtime: Runtime, status: int, message: str) -> Response:
    """A webhook refused before the intake saw it: counted, then answered."""
    runtime.metrics.webhook("rejected" if status in (401, 403) else "invalid")
    return _error(status, message)


def _error(status: int, message: str) -> Response:
    return Response(
        json.dumps({"success": False, "error": message}), status=status, mimetype="application/json"
    )


def _ok(payload: Mapping[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _answer(reply: IntakeReply) -> Response:
    return Response(reply_json(reply), status=reply.status, mimetype="application/json")


def create_receiver(
    runtime: Runtime,
    *,
    path: str = "/webhooks",
    app_class: type[Quart] = Quart,
    max_body_bytes: int = MAX_BODY_BYTES,
    body_timeout: float = 10.0,
) -> Quart:
    """The runtime's receiver as a Quart (ASGI) app; mount it or serve it."""
    app = app_class("kaphila_flow.receiver")
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.config["BODY_TIMEOUT"] = body_timeout
    prefix = "/" + path.strip("/")

    @app.post(f"{prefix}/<token>")
    async def webhook(token: str) -> Response:
        return await _receive(runtime, token, max_body_bytes)

    @app.get(prefix)
    async def who() -> Response:  # the runtime's start-up check of its webhook URL
        return _ok({"receiver": "kaphila_flow", "runtime": runtime.instance})

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
            response = _refuse(runtime, 413, f"webhook body over {max_body_bytes} bytes")
            response.headers["Connection"] = "close"  # the rest of the body is never read
            return response
        if exc.code == 408:
            runtime.metrics.webhook("timed_out")
            response = _error(408, f"the request body did not arrive within {body_timeout:g} s")
            response.headers["Connection"] = "close"
            return response
        return _error(exc.code or 400, exc.description or exc.name)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:  # never a 5xx for the provider to retry
        logger.exception("webhook receiver error: %s", type(exc).__name__)
        return _error(400, "the request could not be processed")

    # Webhooks take the short way, before Quart (the route above serves them when the
    # app is mounted under a root path).
    app.asgi_app = WebhookPost(  # type: ignore[method-assign, assignment]
        app.asgi_app, runtime, path=prefix, max_body_bytes=max_body_bytes, body_timeout=body_timeout
    )
    return app


async def _receive(runtime: Runtime, token: str, limit: int) -> Response:
    body = await request.get_data(cache=False)
    reply = receive_webhook(
        runtime,
        token,
        body if isinstance(body, bytes) else body.encode(),
        content_type=request.mimetype,
        headers=request.headers,  # read in place: usually only webhook-id is looked up
        limit=limit,
    )
    return _answer(reply)
