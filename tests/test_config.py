from __future__ import annotations

import pytest

from kaphila_flow import ConfigurationError, Settings


def test_settings_from_env_and_overrides() -> None:
    env = {
        "KAPHILA_API_KEY": "ak_secret_value",
        "KAPHILA_BASE_URL": "https://kaphila.example/",
        "KAPHILA_WEBHOOK_URL": "https://bot.example/webhooks",
        "KAPHILA_CALLER_ID": "16085550101",
    }
    settings = Settings.from_env(env, caller_id="16085550150")
    assert settings.base_url == "https://kaphila.example"
    assert settings.webhook_url == "https://bot.example/webhooks"
    assert settings.caller_id == "16085550150"
    assert "ak_secret_value" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "KAPHILA_API_KEY is not set"),
        ({"KAPHILA_API_KEY": "ak", "KAPHILA_BASE_URL": "kaphila.com"}, "KAPHILA_BASE_URL must be"),
        ({"KAPHILA_API_KEY": "ak", "KAPHILA_WEBHOOK_URL": "ftp://x"}, "KAPHILA_WEBHOOK_URL"),
        ({"KAPHILA_API_KEY": "ak", "KAPHILA_GATHER_GRACE": "soon"}, "KAPHILA_GATHER_GRACE"),
        ({"KAPHILA_API_KEY": "ak", "KAPHILA_GATHER_GRACE": "-1"}, "positive"),
    ],
)
def test_bad_settings_get_one_clear_line(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle) as caught:
        Settings.from_env(env)
    assert "\n" not in str(caught.value)


def test_runtime_from_env_builds_a_client_without_leaking_the_key() -> None:
    from kaphila_flow import Runtime
    from kaphila_flow._client import KaphilaClient

    env = {
        "KAPHILA_API_KEY": "ak_from_env_secret",
        "KAPHILA_BASE_URL": "https://kaphila.example",
        "KAPHILA_WEBHOOK_URL": "https://bot.example/webhooks/",
        "KAPHILA_CALLER_ID": "+1 608 555 0100",
    }
    runtime = Runtime.from_env(env)
    assert isinstance(runtime.transport, KaphilaClient)
    assert runtime.transport.base_url == "https://kaphila.example"
    assert runtime.webhook_url == "https://bot.example/webhooks"
    assert runtime.caller_id == "16085550100"
    assert "ak_from_env_secret" not in repr(runtime) + repr(runtime.transport)
