"""Bad input never reaches a flow and never breaks the receiver (property-based).

`make test` sends a fixed-seed sample; `make fuzz` sends 20,000 or more.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaphila_flow import Call
from kaphila_flow.testing import FakeKaphila

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("KAPHILA_FUZZ_EXAMPLES", "2000"))

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "callId",
        "event",
        "digits",
        "digit",
        "amd",
        "status",
        "timestamp",
        "wasAnswered",
        "callDuration",
        "hangupCause",
        "recording",
        "reason",
        "playbackId",
        "endReason",
    ]
)
event_names = st.sampled_from(
    [
        "call.answered",
        "call.ended",
        "gather.complete",
        "gather.timeout",
        "gather.failed",
        "dtmf.received",
        "gather.progress",
        "tts.played",
        "recording.started",
        "x.unknown",
        "",
    ]
)


@st.composite
def wrong_typed_events(draw: st.DrawFn) -> bytes:
    """Events with the right names and the wrong types (never a valid event)."""
    payload: dict[str, Any] = {"event": draw(event_names)}
    payload.update(draw(st.dictionaries(field_names, json_values, max_size=6)))
    call_id = draw(
        st.one_of(st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2), st.just(""))
    )
    payload["callId"] = call_id  # never a usable call id
    return json.dumps(payload).encode()


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    wrong_typed_events(),
    st.binary(max_size=200),  # includes non-UTF-8 bytes
    st.integers(min_value=1, max_value=200_000).map(
        lambda n: json.dumps({"callId": "x" * n, "event": "a"}).encode()
    ),
    st.integers(min_value=2, max_value=50_000).map(deep),
    st.text(max_size=200).map(str.encode),
)
content_types = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "application/xml",
        "",
        "application/json; charset=latin-1",
        "multipart/form-data; boundary=x",
    ]
)


class Host:
    """A live call waiting in a gather, on a loop that outlives the examples."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.release = asyncio.Event()
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self.task = self.loop.create_task(self._run())
        self.loop.run_until_complete(self.ready)

    async def _run(self) -> None:
        async def flow(call: Call) -> str:
            # An hour: however slow the machine, the gather outlives the fuzzing.
            return await call.gather("Press 1.", timeout=3600)

        async with FakeKaphila() as self.fake:
            self.phone = await self.fake.call(flow)
            assert await self.phone.hears() == "Press 1."
            self.token = self.phone.webhook_token
            self.client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.fake.runtime.asgi_app), base_url="http://r"
            )
            self.ready.set_result(None)
            await self.release.wait()
            await self.phone.press("1")
            self.result = await self.phone.result()
            await self.client.aclose()

    def post(self, body: bytes, content_type: str, path: str) -> httpx.Response:
        headers = {"content-type": content_type} if content_type else {}
        return self.loop.run_until_complete(self.client.post(path, content=body, headers=headers))

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.release.set()
        self.loop.run_until_complete(self.task)
        self.loop.close()


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    running = Host()
    yield running
    running.close()


@settings(
    max_examples=EXAMPLES, suppress_health_check=list(HealthCheck), deadline=None, derandomize=True
)
@given(body=bodies, content_type=content_types, wrong_token=st.booleans())
def test_any_body_gets_a_4xx_or_2xx_and_leaves_the_flow_alone(
    host: Host, body: bytes, content_type: str, wrong_token: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="kaphila_flow")
    commands_before = len(host.fake.commands)
    path = f"/webhooks/{host.token}" + ("x" if wrong_token else "")
    answer = host.post(body, content_type, path)
    assert answer.status_code < 500
    assert answer.headers["content-type"].startswith("application/json")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # The flow still waits in the same gather; nothing was sent on its behalf.
    handle = host.phone.handle
    assert handle.waiting_for == "the caller's keys for gather 'Press 1.'"
    assert len(host.fake.commands) == commands_before
    assert not handle.done


def test_the_flow_still_completes_after_the_fuzzing(host: Host) -> None:
    host.close()
    assert host.result.value == "1"
    assert host.result.status == "completed"
