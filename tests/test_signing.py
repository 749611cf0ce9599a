"""Standard Webhooks signatures: rotation, replays, tampering, and the receiver."""

from __future__ import annotations

import base64
import json
import logging

import httpx
import pytest

from kaphila_flow import Call, ConfigurationError, WebhookRejected
from kaphila_flow._signing import WebhookSigner, sign, verify
from kaphila_flow.testing import FakeKaphila

OLD = "whsec_" + base64.b64encode(b"old secret bytes").decode()
NEW = "whsec_" + base64.b64encode(b"new secret bytes").decode()
BODY = b'{"callId":"1.1","event":"dtmf.received","digit":"1"}'
NOW = 1_800_000_000


def headers(
    secret: str, *, at: int = NOW, msg_id: str = "msg_1", body: bytes = BODY
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(at),
        "webhook-signature": sign(secret, msg_id, at, body),
    }


def test_known_vector() -> None:
    # The Standard Webhooks reference example.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_valid_signature_and_rotation() -> None:
    assert verify([NEW, OLD], headers(OLD), BODY, NOW) == "msg_1"
    both = headers(NEW)
    both["webhook-signature"] = "v1,bogus " + both["webhook-signature"]
    assert verify([NEW], both, BODY, NOW + 100) == "msg_1"


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda h: h.pop("webhook-signature"), "missing"),
        (lambda h: h.update({"webhook-timestamp": "soon"}), "malformed"),
        (lambda h: h.update({"webhook-timestamp": str(NOW - 301)}), "tolerance"),
        (lambda h: h.update({"webhook-id": "msg_2"}), "no valid"),
        (lambda h: h.update({"webhook-signature": "v2,abc"}), "no valid"),
    ],
)
def test_rejections(mutate: object, needle: str) -> None:
    h = headers(NEW)
    mutate(h)  # type: ignore[operator]
    with pytest.raises(WebhookRejected, match=needle) as caught:
        verify([NEW], h, BODY, NOW)
    assert caught.value.status_code == 401


def test_tampered_body_and_unknown_secret() -> None:
    with pytest.raises(WebhookRejected):
        verify([NEW], headers(NEW), BODY + b" ", NOW)
    with pytest.raises(WebhookRejected):
        verify([NEW], headers(OLD), BODY, NOW)


def test_bad_secrets_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        WebhookSigner([])
    with pytest.raises(ConfigurationError):
        WebhookSigner(["whsec_###"])
    assert NEW not in repr(WebhookSigner([NEW]))


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # Quart is asyncio; served on trio elsewhere
async def test_receiver_requires_a_signature_when_configured(
    caplog: pytest.LogCaptureFixture,
) -> None:

    caplog.set_level(logging.DEBUG)

    async def flow(call: Call) -> str:
        return await call.gather("Press 1.")

    async with FakeKaphila(webhook_secrets=[NEW]) as kaphila:
        phone = await kaphila.call(flow)
        await phone.hears()
        token = phone.webhook_token
        app = kaphila.runtime.asgi_app
        body = json.dumps(
            {"callId": phone.call_id, "event": "gather.complete", "digits": "1"}
        ).encode()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://r"
        ) as client:
            unsigned = await client.post(f"/webhooks/{token}", content=body)
            assert unsigned.status_code == 401
            with pytest.raises(AssertionError, match="waiting for the caller"):
                await phone.hears()  # nothing was dispatched
            stamp = int(kaphila.runtime.wall_time())
            signed = headers(NEW, at=stamp, msg_id="msg_by_hand", body=body)
            answer = await client.post(f"/webhooks/{token}", content=body, headers=signed)
            assert answer.status_code == 200
        assert (await phone.result()).value == "1"
        # (the test's own httpx client logs the URL it posts to; that is not ours)
        logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx")
        assert token not in logged
        assert signed["webhook-signature"] not in logged
