"""Settings from the environment, checked once with one clear line per problem."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._exceptions import ConfigurationError

__all__ = ["Settings"]

DEFAULT_BASE_URL = "https://kaphila.com"


def _url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{name} must be an http(s) URL such as https://example.com, not {value!r}"
        )
    return value.rstrip("/")


def _float(name: str, value: str) -> float:
    try:
        result = float(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds, not {value!r}") from None
    if not result > 0:
        raise ConfigurationError(f"{name} must be positive, not {value!r}")
    return result


@dataclass(frozen=True, slots=True)
class Settings:
    """What a runtime needs to talk to Kaphila and be reached by it."""

    api_key: str
    base_url: str = DEFAULT_BASE_URL
    #: The public base URL of this process's webhook receiver (HTTPS in production).
    webhook_url: str | None = None
    caller_id: str | None = None
    voice_name: str | None = None
    gather_grace: float = 5.0

    def __repr__(self) -> str:  # the key never appears in a repr
        return (
            f"Settings(base_url={self.base_url!r}, webhook_url={self.webhook_url!r}, "
            f"caller_id={self.caller_id!r})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str | None) -> Settings:
        """Read ``KAPHILA_*`` variables; ``overrides`` (e.g. from CLI flags) win."""
        source = dict(os.environ if env is None else env)
        values = {
            "api_key": source.get("KAPHILA_API_KEY"),
            "base_url": source.get("KAPHILA_BASE_URL"),
            "webhook_url": source.get("KAPHILA_WEBHOOK_URL"),
            "caller_id": source.get("KAPHILA_CALLER_ID"),
            "voice_name": source.get("KAPHILA_VOICE"),
            "gather_grace": source.get("KAPHILA_GATHER_GRACE"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        api_key = (values["api_key"] or "").strip()
        if not api_key:
            raise ConfigurationError(
                "KAPHILA_API_KEY is not set: export your key (ak_...) or pass --api-key"
            )
        base_url = _url("KAPHILA_BASE_URL", values["base_url"] or DEFAULT_BASE_URL)
        webhook_url = values["webhook_url"]
        grace = values["gather_grace"]
        return cls(
            api_key=api_key,
            base_url=base_url,
            webhook_url=_url("KAPHILA_WEBHOOK_URL", webhook_url) if webhook_url else None,
            caller_id=values["caller_id"] or None,
            voice_name=values["voice_name"] or None,
            gather_grace=_float("KAPHILA_GATHER_GRACE", grace) if grace else 5.0,
        )
