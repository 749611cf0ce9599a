"""A full simulated day of example calls: no key, token, signature or PIN in any log."""

from __future__ import annotations

import logging
import re

import pytest

from kaphila_flow.simulator import Account, Callee, Faults, KeyStep
from kaphila_flow.testing import InProcessKaphila

from .examples_loader import load_example

pytestmark = pytest.mark.anyio

API_KEY = "ak_live_SECRETKEY_7f3c9a"
SIGNING = "whsec_c2lnbmluZyBzZWNyZXQgZm9yIHRoZSBkYXk="
WRONG_PIN, RIGHT_PIN = "975318", "123456"
# Over HTTP in process (the real client and receiver), in virtual time: no result
# depends on how fast or busy the machine is.


async def test_a_day_of_calls_logs_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # everything, from every library
    pin_entry = load_example("pin_entry")
    plan = []
    for n in range(24):
        number = f"1608555{n:04d}"
        kind = n % 4
        if kind == 0:
            plan.append((pin_entry.flow, number, Callee(keys=(KeyStep(WRONG_PIN + "#"),)), {}))
        elif kind == 1:
            plan.append(
                (pin_entry.flow, number, Callee(keys=(KeyStep("97"), KeyStep(RIGHT_PIN))), {})
            )
        elif kind == 2:
            plan.append((load_example("ivr_menu").flow, number, Callee(keys=(KeyStep("2"),)), {}))
        else:
            plan.append(
                (
                    load_example("voicemail_drop").flow,
                    number,
                    Callee(answer="machine"),
                    {"use_amd": True},
                )
            )
    callees = {number: callee for _flow, number, callee, _options in plan}
    async with InProcessKaphila(
        api_key=API_KEY,
        account=Account(credits=1000, rate_limit=10_000),
        callees=callees,
        webhook_secret=SIGNING,
        faults=Faults(
            seed=3, duplicate=0.2, webhook_delay=0.01, api_error=0.05, api_error_status=429
        ),
    ) as kaphila:
        handles = [
            await kaphila.runtime.start(number, flow, **options)
            for flow, number, _c, options in plan
        ]
        results = [await handle.result() for handle in handles]
        tokens = [
            call.model.request.webhook_url.rsplit("/", 1)[1]
            for call in kaphila.simulator.calls.values()
            if call.model.request.webhook_url
        ]
    assert [r.value for r in results[:2]] == ["denied", "verified"]
    assert len(tokens) == len(plan)
    text = "\n".join(record.getMessage() for record in caplog.records)
    text += "\n".join(str(r) + r.transcript_text() for r in results)
    assert len(caplog.records) > 50, "the day was logged"
    secrets = [API_KEY, SIGNING, SIGNING.removeprefix("whsec_"), WRONG_PIN, RIGHT_PIN, *tokens]
    secrets += [token.split(".", 1)[1] for token in tokens]
    for secret in secrets:
        assert secret not in text
    assert not re.search(r"v1,[A-Za-z0-9+/=]{20,}", text), "a signature was logged"
