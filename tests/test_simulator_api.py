"""The simulator as any client sees it: the quick-start's own requests, over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from kaphila_flow.simulator import Account, Callee, Simulator, SimulatorThread

pytestmark = pytest.mark.integration

KEY = "ak_your_api_key_here"
CALLER = "16085550100"
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

# The quick-start's curl body, byte for byte, with its comment inside the JSON.
COMMENTED = """{ "number": "16089270862", "callerId": "19876543210", // Must be whitelisted
"webhookUrl": "https://kaphila.com/call-handler", "useAmd": true, "voiceName": "en-US-Neural2-A",
"ringTimeout": 30 }"""


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    simulator = Simulator(
        accounts={KEY: Account(credits=3, caller_ids=(CALLER,), rate_limit=12)},
        default_callee=Callee(answer="human", answer_after=0.5),
        speed=200,
    )
    with SimulatorThread(simulator) as running:
        yield running


@pytest.fixture
def api(sim: SimulatorThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, headers=AUTH, timeout=10) as client:
        yield client


def make_call(api: httpx.Client, **extra: object) -> httpx.Response:
    return api.post(
        "/makecall",
        json={
            "number": "16089270862",
            "callerId": CALLER,
            "useAmd": True,
            "voiceName": "en-US-Neural2-A",
            "ringTimeout": 30,
            **extra,
        },
    )


def wait_answered(sim: SimulatorThread, call_id: str) -> None:
    deadline = time.monotonic() + 5
    while sim.simulator.calls[call_id].model.answered_at is None:
        assert time.monotonic() < deadline, "the callee never answered"
        time.sleep(0.01)


def test_makecall_answers_with_the_documented_shape(api: httpx.Client) -> None:
    answer = make_call(api)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) >= {
        "success",
        "callId",
        "status",
        "amdEnabled",
        "voiceName",
        "credits",
        "ringTimeoutSeconds",
        "trunk",
        "trunkAttempts",
        "totalTrunks",
        "timestamp",
    }
    assert body["success"] is True and body["status"] == "ringing" and body["amdEnabled"] is True
    assert body["callId"].count(".") == 1


def test_quick_start_voice_gather_forward_hangup(sim: SimulatorThread, api: httpx.Client) -> None:
    call_id = make_call(api).json()["callId"]
    wait_answered(sim, call_id)
    voice = api.post(
        "/voice",
        json={"callId": call_id, "text": "Hello, this is a test message.", "playTo": "bridge"},
    )
    assert voice.status_code == 200
    assert voice.json()["message"] == "TTS played successfully"
    assert voice.json()["playbackId"].startswith("tts-")
    gather = api.post(
        "/gather",
        json={
            "callId": call_id,
            "text": "Press 1 for sales, 2 for support.",
            "numDigits": 1,
            "timeout": 10000,
        },
    )
    assert gather.json() == {
        "success": True,
        "message": "Gathering 1 digits with 10000ms timeout",
        "callId": call_id,
        "expectedDigits": 1,
        "timeoutMs": 10000,
    }
    forward = api.post("/forwardcall", json={"callId": call_id, "forwardNumber": "16085550101"})
    assert forward.json()["message"] == "Call forwarded to 16085550101"
    assert forward.json()["forwardedCallId"]
    assert api.post("/hangup", json={"callId": call_id}).json()["success"] is True
    again = api.post("/hangup", json={"callId": call_id})
    assert again.status_code == 404 and again.json()["success"] is False


def test_the_quick_start_example_numbers_are_accepted() -> None:
    """``19876543210`` is 11 digits without +, exactly the documented form."""
    simulator = Simulator(
        accounts={KEY: Account(caller_ids=("19876543210",))},
        default_callee=Callee(answer="human", answer_after=0.1),
        speed=200,
    )
    with (
        SimulatorThread(simulator) as sim,
        httpx.Client(base_url=sim.base_url, headers=AUTH, timeout=10) as api,
    ):
        placed = api.post("/makecall", json={"number": "19876543210", "callerId": "19876543210"})
        assert placed.status_code == 200, placed.text
        call_id = placed.json()["callId"]
        wait_answered(sim, call_id)
        forward = api.post("/forwardcall", json={"callId": call_id, "forwardNumber": "19876543210"})
        assert forward.status_code == 200, forward.text
        assert forward.json()["message"] == "Call forwarded to 19876543210"
        refused = api.post("/forwardcall", json={"callId": call_id, "forwardNumber": "+1 608"})
        assert refused.status_code == 400 and "10-15 digits" in refused.json()["error"]


def test_comment_laden_quick_start_body_is_a_400(api: httpx.Client) -> None:
    answer = api.post("/makecall", content=COMMENTED)
    assert answer.status_code == 400
    assert answer.json()["success"] is False
    assert answer.json()["error"].startswith("Invalid JSON body")


@pytest.mark.parametrize(
    ("headers", "status", "needle"),
    [({}, 401, "Missing API key"), ({"Authorization": "Bearer ak_wrong"}, 401, "Invalid API key")],
)
def test_auth(sim: SimulatorThread, headers: dict[str, str], status: int, needle: str) -> None:
    answer = httpx.post(f"{sim.base_url}/makecall", json={"number": "16089270862"}, headers=headers)
    assert answer.status_code == status
    assert needle in answer.json()["error"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"number": "+16089270862"}, "10-15 digits without +"),
        ({"number": "123"}, "10-15 digits"),
        ({"number": "608927086"}, "10-15 digits without +"),
        ({"number": "(608) 927-0862"}, "10-15 digits without +"),
        ({"number": "16089270862", "callerId": "16085550199"}, "not whitelisted"),
        # The quick-start's own caller id is a well-formed number, just not on this account.
        ({"number": "16089270862", "callerId": "19876543210"}, "not whitelisted"),
        ({}, "missing field 'number'"),
        ({"number": 16089270862}, "'number' must be"),
        ({"number": "16089270862", "useAmd": "yes"}, "'useAmd' must be"),
        ({"number": "16089270862", "ringTimeout": 0}, "ringTimeout"),
    ],
)
def test_bad_makecall_bodies(api: httpx.Client, body: dict[str, object], needle: str) -> None:
    answer = api.post("/makecall", json=body)
    assert answer.status_code == 400
    assert needle in answer.json()["error"]


@pytest.mark.parametrize("path", ["/voice", "/gather", "/hangup", "/forwardcall", "/play"])
def test_unknown_call_is_404(api: httpx.Client, path: str) -> None:
    body = {"callId": "1.999", "text": "x", "file": "custom/x", "forwardNumber": "16085550101"}
    answer = api.post(path, json=body)
    assert answer.status_code == 404
    assert answer.json() == {"success": False, "error": "Call not found or already ended"}


def huge_body_status(api: httpx.Client) -> int:
    """The status for a body over the limit. The server answers 413 without reading
    the rest; closing a socket with unread data resets it, which may reach the client
    before the 413 does: a reset is the same refusal, never an acceptance."""
    try:
        return api.post("/voice", content=b"{" + b" " * 300_000 + b"}").status_code
    except httpx.RemoteProtocolError:
        return 413


def test_huge_body_is_413_and_other_bad_input_is_4xx(api: httpx.Client) -> None:
    assert huge_body_status(api) == 413
    assert api.post("/voice", content=b"\xff\xfe").status_code == 400
    assert api.post("/voice", content=b"[1,2]").status_code == 400
    assert api.post("/voice", content=b"[" * 50_000 + b"]" * 50_000).status_code == 400
    assert api.get("/nowhere").status_code == 404
    assert api.get("/nowhere").json()["success"] is False


def test_rate_limit_and_credits(sim: SimulatorThread, api: httpx.Client) -> None:
    placed = [make_call(api) for _ in range(4)]
    assert [p.status_code for p in placed[:3]] == [200, 200, 200]
    for p in placed[:3]:
        wait_answered(sim, p.json()["callId"])
    assert placed[3].status_code in (200, 402)
    assert make_call(api).status_code == 402  # three answered calls used the credits
    assert api.get("/api/me").json()["credits"] == 0
    statuses = [api.post("/hangup", json={"callId": "1.1"}).status_code for _ in range(10)]
    assert 429 in statuses
    limited = api.post("/voice", json={"callId": "1.1", "text": "x"})
    assert limited.status_code == 429
    assert limited.json() == {"success": False, "error": "Rate limit exceeded"}
    assert int(limited.headers["Retry-After"]) > 0


def test_reads_health_calls_recordings(sim: SimulatorThread, api: httpx.Client) -> None:
    call_id = make_call(api).json()["callId"]
    wait_answered(sim, call_id)
    health = httpx.get(f"{sim.base_url}/health").json()  # no key needed
    assert health["status"] == "ok" and health["stats"]["activeCalls"] == 1
    calls = api.get("/calls").json()
    assert calls["totalCalls"] == 1 and calls["calls"][0]["callId"] == call_id
    assert calls["calls"][0]["amd"]["status"] == "HUMAN"
    one = api.get(f"/calls/{call_id}").json()["call"]
    assert one["status"] == "answered" and one["recording"]["active"] is True
    recordings = api.get(f"/recordings/{call_id}").json()["recordings"]
    assert recordings[0]["filename"] == f"{call_id}.wav"
    wav = api.get(f"/recordings/{call_id}/download")
    assert wav.headers["content-type"].startswith("audio/wav") and wav.content[:4] == b"RIFF"
    assert api.post(f"/recordings/{call_id}/stop").json()["success"] is True
    assert api.post(f"/recordings/{call_id}/stop").status_code == 404
    logs = api.post("/api/call-logs", json={"page": 1, "page_size": 10}).json()
    assert logs["total"] == 1
    assert api.post("/api/analytics", json={"days": 7}).json()["totalCalls"] == 1
    assert api.post("/api/dashboard", json={}).json()["activeCalls"] == 1
    assert api.get("/calls/1.999").status_code == 404


def test_curl_style_request_with_valid_json(sim: SimulatorThread) -> None:
    body = json.dumps(
        {
            "number": "16089270862",
            "callerId": CALLER,
            "webhookUrl": "http://127.0.0.1:9/none",
            "useAmd": True,
            "voiceName": "en-US-Neural2-A",
            "ringTimeout": 30,
        }
    )
    answer = httpx.post(f"{sim.base_url}/makecall", content=body, headers=AUTH)
    assert answer.status_code == 200
