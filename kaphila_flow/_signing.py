"""Standard Webhooks signatures (HMAC-SHA256), for a provider or proxy that signs.

Kaphila signs nothing today; the per-call URL token is the default protection. When
a signer sits in front (or Kaphila starts signing), switch this on with the shared
secret(s). Several secrets are accepted at once so a key can be rotated, and each
signature may list several ``v1,<base64>`` values. A timestamp outside the tolerance
is refused, so a captured request cannot be replayed later.

Pure functions: no I/O, no clock of their own (``now`` is passed in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._exceptions import ConfigurationError, WebhookRejected

__all__ = ["WebhookSigner", "sign", "verify"]

DEFAULT_TOLERANCE = 300.0  # seconds either side of now


def _secret_bytes(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret:
        raise ConfigurationError("a webhook signing secret must be a non-empty string")
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
        except ValueError:
            raise ConfigurationError(
                "a whsec_ signing secret must be base64 after the prefix"
            ) from None
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for a body (``v1,<base64>``)."""
    digest = hmac.new(
        _secret_bytes(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass(frozen=True, slots=True)
class WebhookSigner:
    """Verifies signed webhooks against one or more secrets."""

    secrets: Sequence[str]
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if not self.secrets:
            raise ConfigurationError("webhook signing needs at least one secret")
        for secret in self.secrets:
            _secret_bytes(secret)

    def __repr__(self) -> str:  # secrets never appear in a repr
        return f"WebhookSigner({len(self.secrets)} secret(s), tolerance={self.tolerance})"

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> str:
        return verify(self.secrets, headers, body, now, tolerance=self.tolerance)


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> str:
    """Check a signed request; returns its ``webhook-id`` or raises ``WebhookRejected``."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        raise WebhookRejected("missing webhook signature headers", status_code=401)
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookRejected("malformed webhook-timestamp", status_code=401) from None
    if abs(now - timestamp) > tolerance:
        raise WebhookRejected("webhook timestamp outside the tolerance", status_code=401)
    offered = [part.split(",", 1)[1] for part in signatures.split() if part.startswith("v1,")]
    for secret in secrets:
        expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1]
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return msg_id
    raise WebhookRejected("no valid webhook signature", status_code=401)
