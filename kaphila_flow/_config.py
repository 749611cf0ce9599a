"""Settings from the environment, checked once with one clear line per problem."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._exceptions import ConfigurationError, InvalidNumber
from ._numbers import check_region, normalize_number

__all__ = ["Settings", "default_region_from_env"]

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


def _region(value: str) -> str | None:
    try:
        return check_region(value)
    except ConfigurationError:
        raise ConfigurationError(
            "KAPHILA_DEFAULT_REGION (--default-region) must be a two-letter region code "
            f"such as US, GB or DE, not {value!r}"
        ) from None


def _caller_id(value: str, region: str | None) -> str:
    try:
        return normalize_number(value, default_region=region)
    except InvalidNumber as exc:
        raise ConfigurationError(f"KAPHILA_CALLER_ID (--caller-id): {exc}") from None


def default_region_from_env(
    env: Mapping[str, str] | None = None, override: str | None = None
) -> str | None:
    """``KAPHILA_DEFAULT_REGION`` (or ``override``, e.g. ``--default-region``), checked."""
    source = os.environ if env is None else env
    value = override if override is not None else source.get("KAPHILA_DEFAULT_REGION")
    return _region(value) if value else None


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
    #: Where numbers written without a country code are (``"US"``): KAPHILA_DEFAULT_REGION.
    default_region: str | None = None

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
            "default_region": source.get("KAPHILA_DEFAULT_REGION"),
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
        region = _region(values["default_region"]) if values["default_region"] else None
        caller_id = values["caller_id"]
        return cls(
            api_key=api_key,
            base_url=base_url,
            webhook_url=_url("KAPHILA_WEBHOOK_URL", webhook_url) if webhook_url else None,
            caller_id=_caller_id(caller_id, region) if caller_id else None,
            voice_name=values["voice_name"] or None,
            gather_grace=_float("KAPHILA_GATHER_GRACE", grace) if grace else 5.0,
            default_region=region,
        )
