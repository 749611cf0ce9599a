"""Numbers: Kaphila's documented form is accepted and sent as is; national numbers are
read in a default region or refused with the likely international form, never guessed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from kaphila_flow import (
    BadRequest,
    Call,
    Campaign,
    ConfigurationError,
    InvalidNumber,
    PhoneNumber,
    Runtime,
    Settings,
    normalize_number,
)
from kaphila_flow._client import KaphilaClient
from kaphila_flow._retry import NO_RETRIES
from kaphila_flow.simulator import (
    Account,
    Provider,
    load_simulator,
    simulator_from_mapping,
)
from kaphila_flow.testing import FakeKaphila

#: The provider's own example caller id and forward number: 11 digits, no +, as documented.
PROVIDER_EXAMPLE = "19876543210"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("+1 (608) 927-0862", "16089270862"),
        ("16089270862", "16089270862"),
        ("001 608 927 0862", "16089270862"),
        ("+1.608.927.0862", "16089270862"),
        ("+1 608/927-0862", "16089270862"),
        ("+44 20 7946 0958", "442079460958"),
        ("0044 20 7946 0958", "442079460958"),
        ("+39 06 6982 0000", "390669820000"),  # Italy keeps its leading zero
        (PROVIDER_EXAMPLE, PROVIDER_EXAMPLE),  # documented, though no such area code
        ("+99999999999", "99999999999"),  # 10-15 digits is the rule, not a plan database
        ("+60 8927 0862", "6089270862"),  # 10 digits are fine once the + says international
        ("123456789012345", "123456789012345"),
    ],
)
def test_the_documented_form_is_accepted_and_sent_as_digits(typed: str, expected: str) -> None:
    number = normalize_number(typed)
    assert number == expected
    assert isinstance(number, PhoneNumber)
    assert number.e164 == "+" + expected


def test_a_national_number_is_refused_with_the_likely_international_form() -> None:
    with pytest.raises(InvalidNumber) as caught:
        normalize_number("(608) 927-0862")
    message = str(caught.value)
    assert "may be a national number" in message
    assert "+1 608-927-0862 (US)" in message  # the likely form, suggested, not dialled
    assert 'default_region="US"' in message and "KAPHILA_DEFAULT_REGION" in message
    with pytest.raises(InvalidNumber, match=r"trunk prefix.*\+44 20 7946 0958"):
        normalize_number("020 7946 0958")


@pytest.mark.parametrize(
    ("typed", "region", "expected"),
    [
        ("(608) 927-0862", "US", "16089270862"),
        ("608-927-0862", "us", "16089270862"),  # region codes in any case
        ("16089270862", "US", "16089270862"),
        ("020 7946 0958", "GB", "442079460958"),
        ("06 6982 0000", "IT", "390669820000"),
        ("011 44 20 7946 0958", "US", "442079460958"),  # the US international prefix
        # 11 to 15 digits are the documented form whatever the region: not rewritten.
        ("16089270862", "GB", "16089270862"),
        (PROVIDER_EXAMPLE, "DE", PROVIDER_EXAMPLE),
        ("+44 20 7946 0958", "US", "442079460958"),
    ],
)
def test_a_default_region_reads_national_numbers(typed: str, region: str, expected: str) -> None:
    assert normalize_number(typed, default_region=region) == expected


def test_numbering_plan_validity_is_an_opt_in_strict_check() -> None:
    assert normalize_number(PROVIDER_EXAMPLE) == PROVIDER_EXAMPLE
    with pytest.raises(InvalidNumber, match=r"not in use .* numbering plan"):
        normalize_number(PROVIDER_EXAMPLE, strict=True)
    with pytest.raises(InvalidNumber, match="numbering plan"):
        normalize_number("+99999999999", strict=True)
    assert normalize_number("+1 608 927 0862", strict=True) == "16089270862"
    assert normalize_number("(608) 927-0862", default_region="US", strict=True) == "16089270862"


def test_a_phone_number_is_read_once() -> None:
    # A 10-digit international number keeps its meaning when passed on as a value.
    number = normalize_number("+60 8927 0862")
    assert normalize_number(number) is number
    assert normalize_number(number, default_region="US") == "6089270862"
    assert PhoneNumber("16089270862") == "16089270862"
    with pytest.raises(InvalidNumber, match=r"PhoneNumber\.parse"):
        PhoneNumber("+1 608 927 0862")
    assert PhoneNumber.parse("(608) 927-0862", default_region="US").international == (
        "+1 608-927-0862"
    )


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("call me", "only digits"),
        ("1-800-FLOWERS", "only digits"),
        ("1+608 927 0862", "may only come first"),
        ("+", "no digits"),
        ("123", "3 digits"),
        ("+1 555", "4 digits"),
        ("1234567890123456", "at most 15"),
        ("+0 608 927 0862", "no country code starts with 0"),
        ("6089270862", "may be a national number"),
        (16089270862, "expected a string"),
        (None, "expected a string"),
    ],
)
def test_bad_numbers_raise_invalid_number(bad: object, reason: str) -> None:
    with pytest.raises(InvalidNumber, match=reason) as caught:
        normalize_number(bad)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("typed", "region", "reason"),
    [
        ("927-0862", "US", "without its area code"),
        ("12", "GB", "too short"),
    ],
)
def test_national_numbers_that_cannot_be_get_a_reason(typed: str, region: str, reason: str) -> None:
    with pytest.raises(InvalidNumber, match=reason):
        normalize_number(typed, default_region=region)


@pytest.mark.parametrize("region", ["USA", "", "XX", "1"])
def test_a_bad_region_is_a_configuration_error(region: str) -> None:
    with pytest.raises(ConfigurationError, match="region"):
        normalize_number("16089270862", default_region=region)
    with pytest.raises(ConfigurationError, match="region"):
        Runtime(FakeKaphila(), default_region=region)


# -- where numbers come in ------------------------------------------------------------


def recording_client() -> tuple[KaphilaClient, list[dict[str, Any]]]:
    bodies: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"success": True, "callId": "1.1", "status": "ringing"})

    client = KaphilaClient(
        "ak_test", transport=httpx.MockTransport(answer), retry=NO_RETRIES, rate_limit=None
    )
    return client, bodies


@pytest.mark.anyio
async def test_the_client_sends_the_documented_example_as_it_is() -> None:
    client, bodies = recording_client()
    async with client:
        await client.make_call("16089270862", caller_id=PROVIDER_EXAMPLE)
        await client.forward_call("1.1", PROVIDER_EXAMPLE)
        with pytest.raises(InvalidNumber, match=r"\+1 608-927-0862"):
            await client.make_call("(608) 927-0862")
    assert bodies[0]["number"] == "16089270862" and bodies[0]["callerId"] == PROVIDER_EXAMPLE
    assert bodies[1]["forwardNumber"] == PROVIDER_EXAMPLE
    assert len(bodies) == 2  # the national number sent nothing


def test_runtime_from_env_takes_the_documented_caller_id_and_a_region() -> None:
    env = {
        "KAPHILA_API_KEY": "ak_test",
        "KAPHILA_CALLER_ID": PROVIDER_EXAMPLE,
        "KAPHILA_DEFAULT_REGION": "us",
    }
    runtime = Runtime.from_env(env)
    assert runtime.caller_id == PROVIDER_EXAMPLE
    assert runtime.default_region == "US"
    settings = Settings.from_env({**env, "KAPHILA_CALLER_ID": "(608) 555-0100"})
    assert settings.caller_id == "16085550100" and settings.default_region == "US"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"KAPHILA_DEFAULT_REGION": "America"}, "KAPHILA_DEFAULT_REGION"),
        ({"KAPHILA_CALLER_ID": "(608) 555-0100"}, "KAPHILA_CALLER_ID.*national"),
    ],
)
def test_bad_number_settings_are_one_clear_line(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle) as caught:
        Settings.from_env({"KAPHILA_API_KEY": "ak_test", **env})
    assert "\n" not in str(caught.value)


async def forward_to(call: Call) -> None:
    await call.forward(call.data["to"])


@pytest.mark.anyio
async def test_dial_and_forward_read_national_numbers_in_the_default_region() -> None:
    async with FakeKaphila(default_region="US", caller_id="(608) 555-0100") as kaphila:
        phone = await kaphila.call(forward_to, number="16089270862", data={"to": "(608) 555-0101"})
        assert await phone.forwarded_to() == "16085550101"
        result = await phone.result()
        national = await kaphila.runtime.dial(
            "(608) 927-0862", forward_to, data={"to": "16085550101"}
        )
    assert result.forwarded_to == "16085550101"
    assert national.number == "16089270862"
    placed = [c for c in kaphila.commands if type(c).__name__ == "MakeCall"]
    assert [c.number for c in placed] == ["16089270862", "16089270862"]
    assert {c.caller_id for c in placed} == {"16085550100"}


@pytest.mark.anyio
async def test_without_a_region_dial_and_forward_refuse_national_numbers() -> None:
    async with FakeKaphila() as kaphila:
        with pytest.raises(InvalidNumber, match=r"\+1 608-927-0862 \(US\)"):
            await kaphila.runtime.dial("(608) 927-0862", forward_to, data={"to": "16085550101"})
        phone = await kaphila.call(forward_to, data={"to": "(608) 555-0101"})
        result = await phone.result()
        documented = await kaphila.call(forward_to, data={"to": PROVIDER_EXAMPLE})
        assert await documented.forwarded_to() == PROVIDER_EXAMPLE
    assert result.status == "failed" and isinstance(result.error, InvalidNumber)
    assert "may be a national number" in str(result.error)
    sent = [type(c).__name__ for c in kaphila.commands_for(phone.call_id or "")]
    assert "ForwardCall" not in sent  # refused before anything was sent


@pytest.mark.anyio
async def test_campaign_contacts_use_the_default_region() -> None:
    async def hello(call: Call) -> str:
        await call.say("Hi.")
        return "said"

    contacts = ["(608) 555-0001", "+1 608 555 0002", "020 7946 0958", PROVIDER_EXAMPLE]
    async with FakeKaphila() as kaphila:
        refused = Campaign(kaphila.runtime, hello, contacts)
        assert [c.number for c in refused.contacts] == ["16085550002", PROVIDER_EXAMPLE]
        assert "row 1: invalid phone number '(608) 555-0001'" in str(refused.problems[0])
        assert "+1 608-555-0001 (US)" in str(refused.problems[0])
        read = Campaign(kaphila.runtime, hello, contacts, default_region="US")
        assert [c.number for c in read.contacts] == ["16085550001", "16085550002", PROVIDER_EXAMPLE]
        assert "row 3" in str(read.problems[0]) and "trunk prefix" not in str(read.problems[0])
        strict = Campaign(
            kaphila.runtime, hello, contacts, default_region="GB", strict_numbers=True
        )
        assert [c.number for c in strict.contacts] == ["16085550002", "442079460958"]
        assert any("numbering plan" in str(p) for p in strict.problems)
    async with FakeKaphila(default_region="US") as kaphila:
        inherited = Campaign(kaphila.runtime, hello, contacts, do_not_call=["(608) 555-0002"])
        assert inherited.contacts[0].number == "16085550001"
        assert inherited.do_not_call == {"16085550002"}


def test_the_simulator_applies_the_providers_rule() -> None:
    from kaphila_flow._commands import ForwardCall, MakeCall

    # The provider model both hosts share, at a time of our choosing. Over HTTP, with
    # the quick-start's own bodies: tests/test_simulator_api.py.
    provider = Provider(accounts={"ak": Account(caller_ids=("16085550100",))})
    account = provider.authenticate("ak")
    reply = provider.handle(account, MakeCall(PROVIDER_EXAMPLE), 0.0)
    assert reply.status == "ringing"
    provider.answer_call(reply.call_id, 1.0)
    provider.advance(1.0)
    with pytest.raises(BadRequest, match="forwardNumber"):
        provider.handle(account, ForwardCall(reply.call_id, "+1 608 927 0862"), 2.0)
    with pytest.raises(BadRequest, match=r"not whitelisted.*16085550100"):
        provider.handle(account, MakeCall("16089270862", caller_id=PROVIDER_EXAMPLE), 2.0)
    for bad in ("+16089270862", "6089270", "(608) 927-0862"):
        with pytest.raises(BadRequest, match="10-15 digits without \\+"):
            provider.handle(account, MakeCall(bad), 2.0)
    configured = simulator_from_mapping(
        {"accounts": {"ak": {"caller_ids": [PROVIDER_EXAMPLE]}}, "callees": {PROVIDER_EXAMPLE: {}}}
    )
    assert configured.accounts["ak"].account.caller_ids == (PROVIDER_EXAMPLE,)
    assert PROVIDER_EXAMPLE in configured.callees


def test_the_simulator_config_refuses_national_numbers(tmp_path: Path) -> None:
    config = tmp_path / "callees.toml"
    config.write_text('[callees."(608) 927-0862"]\nanswer = "human"\n')
    with pytest.raises(ConfigurationError, match=r'callees\."\(608\) 927-0862".*\+1 608-927-0862'):
        load_simulator(config)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "kaphila_flow", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "KAPHILA_DEFAULT_REGION": "", **(env or {})},
    )


@pytest.mark.integration
def test_the_cli_reads_national_numbers_with_default_region() -> None:
    flow = "examples/appointment_confirm.py:flow"
    refused = run_cli("dial", flow, "(608) 927-0862", "--interactive")
    assert refused.returncode == 2
    assert "+1 608-927-0862 (US)" in refused.stderr and "--default-region" in refused.stderr
    read = run_cli("dial", flow, "(608) 927-0862", "--interactive", "--default-region", "US")
    assert read.returncode == 0, read.stderr
    assert "to 16089270862" in read.stdout
    from_env = run_cli(
        "dial", flow, "(608) 927-0862", "--interactive", env={"KAPHILA_DEFAULT_REGION": "US"}
    )
    assert from_env.returncode == 0 and "to 16089270862" in from_env.stdout
    bad = run_cli("dial", flow, "16089270862", "--interactive", "--default-region", "USA")
    assert bad.returncode == 2 and "two-letter region code" in bad.stderr


@pytest.mark.anyio
async def test_a_campaign_csv_is_read_in_the_default_region(tmp_path: Path) -> None:
    async def hello(call: Call) -> None:
        await call.say("Hi.")

    contacts = tmp_path / "contacts.csv"
    contacts.write_text("number,name\n(608) 555-0001,Ada\n0044 20 7946 0958,Alan\n")
    async with FakeKaphila() as kaphila:
        campaign = Campaign(kaphila.runtime, hello, contacts, default_region="US")
    assert [(c.number, c.data["name"]) for c in campaign.contacts] == [
        ("16085550001", "Ada"),
        ("442079460958", "Alan"),
    ]
    assert campaign.problems == []
