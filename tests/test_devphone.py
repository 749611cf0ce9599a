"""The dev phone: a person holds the phone, the page watches the calls live.

Three layers: the simulator's seam (held callees, the person's actions, ``watch()``),
on asyncio and trio; the page's HTTP face (stream, actions, token, files), on a real
loopback server; and the page itself in headless Chromium (``browser`` mark), driven
through ``kaphila-flow phone`` in a process of its own.
"""

from __future__ import annotations

import json
import signal
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from kaphila_flow import (
    Call,
    CallNotFound,
    Gather,
    KaphilaClient,
    MakeCall,
    Runtime,
)
from kaphila_flow.cli import main
from kaphila_flow.devphone import DevPhone, serve_phone
from kaphila_flow.simulator import (
    DEFAULT_KEY,
    INSTANT,
    Callee,
    KeyStep,
    Notice,
    NoticeFeed,
    NoticeKind,
    Simulator,
)

from .devphone_browser import CHROMIUM, chromium, kaphila_flow_cli, phone_cli

pytestmark = pytest.mark.anyio

HELD = Callee(answer="held")
NUMBER = "16089270862"
#: Long enough that nothing rings out or times out while a test (or a browser) acts.
PATIENT = 300
#: A guard against a hang, never a speed assertion.
GUARD = 30


def place(simulator: Simulator, number: str = NUMBER, **options: Any) -> str:
    account = simulator.authenticate(DEFAULT_KEY)
    options.setdefault("ring_timeout", PATIENT)
    return simulator.make_call(account, MakeCall(number, **options)).call_id


@asynccontextmanager
async def running(simulator: Simulator) -> AsyncIterator[NoticeFeed]:
    async with anyio.create_task_group() as tg, simulator.watch() as feed:
        await tg.start(simulator.run)
        yield feed
        tg.cancel_scope.cancel()


async def next_notice(
    feed: NoticeFeed, kind: NoticeKind, name: str | None = None, *, seen: list[Notice] | None = None
) -> Notice:
    """The next notice of ``kind`` (and ``name``); the ones before it go to ``seen``."""
    with anyio.fail_after(GUARD):
        async for notice in feed:
            if notice.kind is kind and (name is None or notice.name == name):
                return notice
            if seen is not None:
                seen.append(notice)
    raise AssertionError("the feed ended")


# -- the seam: held callees, the person's actions, watch() -------------------------------


def test_a_held_phone_takes_no_script() -> None:
    with pytest.raises(ValueError, match="held phone takes no keys"):
        Callee(answer="held", keys=(KeyStep("1"),))
    with pytest.raises(ValueError, match="held phone takes no keys"):
        Callee(answer="held", hang_up_after=5)
    assert Callee.from_mapping({"answer": "held"}, where="callees.default").answer == "held"


async def test_a_held_phone_presses_nothing_by_itself() -> None:
    simulator = Simulator(default_callee=HELD, speed=INSTANT)
    async with running(simulator) as feed:
        call_id = place(simulator)
        simulator.answer_call(call_id)
        simulator.handle(
            simulator.authenticate(DEFAULT_KEY), Gather(call_id, None, num_digits=1, timeout=1)
        )
        seen: list[Notice] = []
        timeout = await next_notice(feed, NoticeKind.EVENT, "gather.timeout", seen=seen)
        assert timeout.detail["digits"] == ""
        assert "dtmf.received" not in [n.name for n in seen]


async def test_the_person_answers_presses_and_hangs_up_and_the_watcher_sees_it_in_order() -> None:
    simulator = Simulator(default_callee=HELD)
    async with running(simulator) as feed:
        call_id = place(simulator)
        ringing = await next_notice(feed, NoticeKind.RINGING)
        assert ringing.call_id == call_id
        assert ringing.detail["number"] == NUMBER
        assert ringing.detail["callee"] == "held"
        assert ringing.detail["ringsUntil"] == pytest.approx(ringing.at + PATIENT, abs=1)
        assert (await next_notice(feed, NoticeKind.EVENT)).name == "call.initiated"

        simulator.answer_call(call_id)
        seen: list[Notice] = []
        await next_notice(feed, NoticeKind.EVENT, "recording.started", seen=seen)
        assert [n.name for n in seen] == ["call.answered"]

        simulator.handle(
            simulator.authenticate(DEFAULT_KEY),
            Gather(call_id, "Enter your PIN", num_digits=4, timeout=60),
        )
        gather = await next_notice(feed, NoticeKind.GATHER)
        assert gather.detail["active"] is True
        assert gather.detail["expected"] == 4
        assert gather.detail["digits"] == ""
        assert gather.detail["until"] > gather.at

        simulator.press_keys(call_id, "12")  # one after another, as a scripted callee does
        seen = []
        gather = await next_notice(feed, NoticeKind.GATHER, seen=seen)
        assert gather.detail["digits"] == "1"
        gather = await next_notice(feed, NoticeKind.GATHER, seen=seen)
        assert [(n.name, n.detail.get("digit") or n.detail.get("digits")) for n in seen] == [
            ("dtmf.received", "1"),
            ("gather.progress", "1"),
            ("dtmf.received", "2"),
            ("gather.progress", "12"),
        ]
        assert gather.detail["digits"] == "12"

        simulator.callee_hangs_up(call_id)
        ended = await next_notice(feed, NoticeKind.ENDED)
        assert ended.call_id == call_id
        assert ended.detail["wasAnswered"] is True
        assert ended.detail["endReason"] == "normal_hangup"
        for act in (
            partial(simulator.answer_call, call_id),
            partial(simulator.decline_call, call_id),
            partial(simulator.press_keys, call_id, "1"),
            partial(simulator.callee_hangs_up, call_id),
        ):
            with pytest.raises(CallNotFound):
                act()


@pytest.mark.parametrize(
    ("how", "status"), [("human", "HUMAN"), ("machine", "MACHINE"), ("unknown", "UNKNOWN")]
)
async def test_how_the_person_answers_is_what_amd_reports(how: Any, status: str) -> None:
    simulator = Simulator(default_callee=HELD)
    async with running(simulator) as feed:
        call_id = place(simulator, use_amd=True)
        simulator.answer_call(call_id, how)
        answered = await next_notice(feed, NoticeKind.EVENT, "call.answered")
        assert answered.detail["amd"]["status"] == status
        assert simulator.snapshot(call_id)["amd"]["status"] == status
        simulator.callee_hangs_up(call_id)
        ended = await next_notice(feed, NoticeKind.ENDED)
        assert ended.detail["amd"] == status


async def test_declining_ends_the_call_unanswered() -> None:
    simulator = Simulator(default_callee=HELD)
    async with running(simulator) as feed:
        call_id = place(simulator)
        simulator.decline_call(call_id)
        ended = await next_notice(feed, NoticeKind.ENDED)
        assert ended.detail["wasAnswered"] is False
        assert ended.detail["endReason"] == "busy"
        assert simulator.snapshot(call_id)["status"] == "ended"


async def test_a_held_phone_nobody_answers_rings_out() -> None:
    simulator = Simulator(default_callee=HELD, speed=INSTANT)
    async with running(simulator) as feed:
        call_id = place(simulator, ring_timeout=1)
        seen: list[Notice] = []
        ended = await next_notice(feed, NoticeKind.ENDED, seen=seen)
        names = [n.name for n in seen]
        assert "call.timeout" in names and "call.answered" not in names
        assert ended.call_id == call_id
        assert ended.detail["endReason"] == "no_answer"


async def test_wrong_actions_are_clear_errors() -> None:
    simulator = Simulator(default_callee=HELD)
    async with running(simulator):
        call_id = place(simulator)
        with pytest.raises(CallNotFound):
            simulator.answer_call("no-such-call")
        with pytest.raises(ValueError, match="how must be human, machine or unknown"):
            simulator.answer_call(call_id, "robot")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="not answered yet"):
            simulator.press_keys(call_id, "1")
        simulator.answer_call(call_id)
        for keys in ("", "12a", "1 2"):
            with pytest.raises(ValueError, match="telephone keys"):
                simulator.press_keys(call_id, keys)
        with pytest.raises(ValueError, match="not ringing"):
            simulator.answer_call(call_id)
        with pytest.raises(ValueError, match="not ringing"):
            simulator.decline_call(call_id)


async def test_a_slow_watcher_loses_the_oldest_notices_and_is_told() -> None:
    simulator = Simulator(default_callee=HELD)
    async with running(simulator) as everything, simulator.watch(limit=3) as slow:
        calls = [place(simulator) for _ in range(3)]  # a RINGING and an EVENT each
        dropped = await anext(slow)
        assert dropped.kind is NoticeKind.DROPPED
        assert dropped.detail["count"] == 3
        newest = [await anext(slow) for _ in range(3)]
        assert [(n.call_id, n.name) for n in newest] == [
            (calls[1], "call.initiated"),
            (calls[2], "ringing"),
            (calls[2], "call.initiated"),
        ]
        assert slow.dropped == 3
        # Another watcher lost nothing.
        assert [(await anext(everything)).call_id for _ in range(6)] == [
            calls[0],
            calls[0],
            calls[1],
            calls[1],
            calls[2],
            calls[2],
        ]


# -- the page's HTTP face: stream, actions, token, files (asyncio: Quart) ------------------

asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


@asynccontextmanager
async def phone_server(
    simulator: Simulator | None = None, bind: str = "127.0.0.1:0", **options: Any
) -> AsyncIterator[DevPhone]:
    async with anyio.create_task_group() as tg:
        simulator = simulator or Simulator(default_callee=HELD)
        phone: DevPhone = await tg.start(partial(serve_phone, simulator, bind, **options))
        yield phone
        tg.cancel_scope.cancel()


class Stream:
    """The page's server-sent events, read message by message."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        self.raw: list[str] = []
        self._lines = response.aiter_lines()

    async def next(self) -> tuple[str, dict[str, Any]]:
        name = "message"
        with anyio.fail_after(GUARD):
            async for line in self._lines:
                self.raw.append(line)
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    return name, json.loads(line.removeprefix("data: "))
        raise AssertionError("the stream ended")

    async def until(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while True:
            _name, data = await self.next()
            if match(data):
                return data


def kind(name: str, event: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda n: n["kind"] == name and (event is None or n["name"] == event)


API_KEY = {"Authorization": f"Bearer {DEFAULT_KEY}"}


@asyncio_only
async def test_the_page_streams_each_call_as_it_happens_and_acts_for_the_person() -> None:
    async with phone_server() as phone, httpx.AsyncClient(timeout=GUARD) as http:
        page = f"{phone.base_url}/phone"
        async with http.stream("GET", f"{page}/api/events") as response:
            stream = Stream(response)
            name, hello = await stream.next()
            assert name == "hello"
            assert hello["speed"] == 1.0
            assert hello["canDial"] is False
            reply = await http.post(
                f"{phone.api_url}/makecall",
                headers=API_KEY,
                json={
                    "number": NUMBER,
                    "ringTimeout": PATIENT,
                    "webhookUrl": "http://127.0.0.1:9/webhooks/ref.call-secret",
                },
            )
            call_id = reply.json()["callId"]
            request = await stream.until(kind("request", "/makecall"))
            assert request["detail"]["webhookUrl"] == "http://127.0.0.1:9/webhooks/…"
            assert "call-secret" not in "\n".join(stream.raw)
            ringing = await stream.until(kind("ringing"))
            assert ringing["callId"] == call_id

            answer = await http.post(f"{page}/api/calls/{call_id}/answer", json={"how": "human"})
            assert answer.status_code == 200
            await stream.until(kind("event", "call.answered"))

            await http.post(
                f"{phone.api_url}/gather",
                headers=API_KEY,
                json={"callId": call_id, "text": "Press <b>1</b>", "numDigits": 2},
            )
            prompt = await stream.until(kind("request", "/gather"))
            assert prompt["callId"] == call_id
            assert prompt["detail"]["text"] == "Press <b>1</b>"
            assert (await stream.until(kind("gather")))["detail"]["active"] is True

            keys = await http.post(f"{page}/api/calls/{call_id}/keys", json={"keys": "42"})
            assert keys.status_code == 200
            gather = await stream.until(kind("gather"))
            assert gather["detail"]["digits"] == "4"  # one key after the other
            gather = await stream.until(kind("gather"))
            assert gather["detail"]["active"] is False  # two digits: complete
            assert (await http.post(f"{page}/api/calls/{call_id}/hangup", json={})).is_success
            ended = await stream.until(kind("ended"))
            assert ended["detail"]["wasAnswered"] is True

        # A page opened later sees the call from its start.
        async with http.stream("GET", f"{page}/api/events") as response:
            late = Stream(response)
            await late.next()
            assert (await late.until(kind("ringing")))["callId"] == call_id
            assert (await late.until(kind("ended")))["callId"] == call_id


@asyncio_only
async def test_wrong_actions_get_a_clear_error_and_change_nothing() -> None:
    async with phone_server() as phone, httpx.AsyncClient(timeout=GUARD) as http:
        page = f"{phone.base_url}/phone/api"
        call_id = place(phone.simulator)

        async def post(path: str, body: object, **options: Any) -> tuple[int, str]:
            response = await http.post(f"{page}/{path}", json=body, **options)
            return response.status_code, response.json().get("error", "")

        status, error = await post(f"calls/{call_id}/keys", {"keys": "1"})
        assert (status, error) == (400, f"call {call_id} is not answered yet")
        status, error = await post(f"calls/{call_id}/answer", {"how": "robot"})
        assert status == 400 and "human, machine or unknown" in error
        status, error = await post("calls/nope/answer", {})
        assert status == 404 and "no such live call" in error
        assert await post(f"calls/{call_id}/keys", ["1"]) == (400, "the body must be a JSON object")
        form = await http.post(f"{page}/calls/{call_id}/decline", data={"x": "1"})
        assert form.status_code == 415  # a foreign page's plain form cannot act
        status, error = await post("dial", {"number": NUMBER})
        assert status == 404 and "places no calls" in error
        assert phone.simulator.snapshot(call_id)["status"] == "ringing"
        assert (await post(f"calls/{call_id}/answer", {}))[0] == 200
        status, error = await post(f"calls/{call_id}/keys", {"keys": "1x"})
        assert status == 400 and "telephone keys" in error
        status, error = await post(f"calls/{call_id}/decline", {})
        assert status == 400 and "not ringing" in error
        assert phone.simulator.snapshot(call_id)["status"] == "answered"


@asyncio_only
async def test_beyond_loopback_every_page_request_needs_the_token() -> None:
    async with phone_server(bind="0.0.0.0:0") as phone, httpx.AsyncClient(timeout=GUARD) as http:
        assert phone.token and f"?token={phone.token}" in phone.page_url
        local = f"{phone.api_url}/phone"
        call_id = place(phone.simulator)
        for url in (f"{local}/", f"{local}/?token=wrong", f"{local}/api/events"):
            refused = await http.get(url)
            assert refused.status_code == 403
            assert "token" in refused.json()["error"]
        action = await http.post(f"{local}/api/calls/{call_id}/answer", json={})
        assert action.status_code == 403
        assert phone.simulator.snapshot(call_id)["status"] == "ringing"
        token = {"token": phone.token}
        assert (await http.get(f"{local}/", params=token)).status_code == 200
        answered = await http.post(f"{local}/api/calls/{call_id}/answer", params=token, json={})
        assert answered.status_code == 200
        async with http.stream("GET", f"{local}/api/events", params=token) as response:
            assert (await Stream(response).next())[0] == "hello"
        assert (await http.get(f"{phone.api_url}/health")).status_code == 200  # the API as ever


@asyncio_only
async def test_on_loopback_the_page_answers_loopback_names_only() -> None:
    async with phone_server() as phone, httpx.AsyncClient(timeout=GUARD) as http:
        assert phone.token is None and "token" not in phone.page_url
        port = phone.base_url.rsplit(":", 1)[1]
        url = f"{phone.base_url}/phone/"
        assert (await http.get(url, headers={"Host": f"localhost:{port}"})).status_code == 200
        rebound = await http.get(url, headers={"Host": f"attacker.example:{port}"})
        assert rebound.status_code == 403  # DNS rebinding: a foreign name on our address


@asyncio_only
async def test_the_page_is_the_packages_own_files_under_a_strict_policy() -> None:
    async with phone_server() as phone, httpx.AsyncClient(timeout=GUARD) as http:
        bare = await http.get(f"{phone.base_url}/phone")
        assert bare.status_code in (301, 308)
        assert bare.headers["location"].endswith("/phone/")
        index = await http.get(f"{phone.base_url}/phone/")
        assert index.headers["content-type"].startswith("text/html")
        policy = index.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert index.headers["referrer-policy"] == "no-referrer"
        assert 'src="static/app.js"' in index.text
        script = await http.get(f"{phone.base_url}/phone/static/app.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert "EventSource" in script.text
        assert "innerHTML" not in script.text  # text goes in as text
        style = await http.get(f"{phone.base_url}/phone/static/style.css")
        assert style.headers["content-type"].startswith("text/css")
        assert (await http.get(f"{phone.base_url}/phone/static/secret.py")).status_code == 404
        for asset in ("http://", "https://", "//cdn"):
            assert asset not in index.text  # works offline: nothing from the network


async def menu_flow(call: Call) -> str:
    await call.say("Hello <b>there</b>.")
    return "done"


async def failing_flow(call: Call) -> None:
    raise LookupError("no <i>order</i> for this caller")


@asyncio_only
async def test_how_each_flow_ends_reaches_the_page() -> None:
    simulator = Simulator(default_callee=Callee(answer="human", answer_after=0), speed=INSTANT)
    async with phone_server(simulator) as phone, phone.watch() as feed:
        client = KaphilaClient(DEFAULT_KEY, base_url=phone.api_url, rate_limit=None)
        runtime = Runtime(client, owns_transport=True, on_transcript=phone.observe)
        async with runtime, anyio.create_task_group() as tg:
            await tg.start(runtime.serve, "127.0.0.1:0")

            async def dial(number: str) -> None:
                phone.follow(await runtime.start(number, failing_flow))

            phone.dial = dial
            # One call followed through the runtime's transcript (as campaigns are) ...
            await runtime.start(NUMBER, menu_flow)
            done = await next_notice(feed, NoticeKind.RESULT)
            assert done.detail["status"] == "completed"
            assert done.detail["value"] == "'done'"
            assert done.detail["error"] is None
            # ... one placed by the page's "Call" button, whose flow raises.
            async with httpx.AsyncClient(timeout=GUARD) as http:
                placed = await http.post(
                    f"{phone.base_url}/phone/api/dial", json={"number": "+1 608 555 0123"}
                )
                assert placed.status_code == 200
                refused = await http.post(f"{phone.base_url}/phone/api/dial", json={"number": "12"})
                assert refused.status_code == 400
            failed = await next_notice(feed, NoticeKind.RESULT)
            assert failed.detail["number"] == "16085550123"
            assert failed.detail["status"] == "failed"
            assert failed.detail["error"] == "LookupError: no <i>order</i> for this caller"
            assert "failing_flow" in failed.detail["traceback"]
            tg.cancel_scope.cancel()


def test_phone_refuses_a_bad_number_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["phone", "examples/ivr_menu.py:flow", "12", "--no-browser"])
    assert status == 2
    assert capsys.readouterr().err.startswith("kaphila-flow: ")


def test_simulator_phone_serves_the_page_for_any_client() -> None:
    with kaphila_flow_cli("simulator", "--phone", "--port", "0") as run:
        url = run.url
        base = url.split("/phone/")[0]
        with httpx.Client(timeout=GUARD) as http:
            assert "Kaphila dev phone" in http.get(url).text
            reply = http.post(
                f"{base}/makecall", headers=API_KEY, json={"number": NUMBER, "ringTimeout": 60}
            )
            call_id = reply.json()["callId"]
            # Unscripted numbers ring on the page: they wait for the person.
            assert (
                http.get(f"{base}/calls/{call_id}", headers=API_KEY).json()["call"]["status"]
                == "ringing"
            )
            answered = http.post(f"{url}api/calls/{call_id}/answer", json={})
            assert answered.status_code == 200
            assert (
                http.get(f"{base}/calls/{call_id}", headers=API_KEY).json()["call"]["status"]
                == "answered"
            )


def test_ctrl_c_hangs_up_live_calls_and_stops_cleanly_with_a_page_open() -> None:
    with kaphila_flow_cli(
        "phone", "examples/ivr_menu.py:flow", "--no-browser", "--ring-timeout", str(PATIENT)
    ) as run:
        base = run.url.split("/phone/")[0]
        with (
            httpx.Client(timeout=GUARD) as http,
            http.stream("GET", f"{run.url}api/events") as events,
        ):
            lines = events.iter_lines()
            while "kind" not in (line := next(lines)) or '"ringing"' not in line:
                pass  # the page is open, so the flow's call rings
            call_id = json.loads(line.removeprefix("data: "))["callId"]
            status = run.stop(signal.SIGINT)
            assert list(lines)[-1:] in ([], [""])  # the stream ended, not cut
        assert status == 0
        output = "".join(run.output)
        assert "Stopping the dev phone." in output
        assert f"call {call_id}: shutting down, hanging up" in output
        assert "Traceback" not in output
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/health")


# -- the page in a real browser ----------------------------------------------------------

browser = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs the system's Chromium: run `make browser`"
)

MENU_FLOW = """
from kaphila_flow import Call

async def flow(call: Call) -> str:
    await call.say("Welcome to the test line.")
    team = await call.menu(
        "Press 1 for sales, 2 for support.", {"1": "sales", "2": "support"}, timeout=600
    )
    await call.forward("16085550101" if team == "sales" else "16085550102")
    return team
"""

MARKUP_FLOW = """
from kaphila_flow import Call

PROMPT = '<img src=x onerror="window.pwned=1"><b>bold</b> & <script>window.pwned=2</script>'

async def flow(call: Call) -> str:
    await call.say(PROMPT)
    raise RuntimeError("<b>boom</b>")
"""

EXPECT = 60_000  # ms: Playwright waits up to this for each expectation


def flow_file(tmp_path: Path, source: str) -> str:
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(source))
    return f"{path}:flow"


def card(page: Any, number: str) -> Any:
    return page.locator(f'.call:has-text("+{number}")')


@pytest.mark.browser
@browser
def test_browser_answer_hear_the_welcome_press_1_see_the_forward_and_result(
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    target = flow_file(tmp_path, MENU_FLOW)
    with phone_cli(target, NUMBER, "--ring-timeout", str(PATIENT)) as url, chromium() as page:
        page.goto(url)
        call = card(page, NUMBER)
        expect(call).to_have_attribute("data-state", "ringing", timeout=EXPECT)
        expect(call.locator(".callee")).to_have_text("you hold this phone")
        call.get_by_role("button", name="Answer").click()
        expect(call).to_have_attribute("data-state", "answered", timeout=EXPECT)
        expect(call.locator(".transcript")).to_contain_text(
            "Welcome to the test line.", timeout=EXPECT
        )
        expect(call.locator(".gather")).to_be_visible(timeout=EXPECT)
        expect(call.locator(".gather-meta")).to_have_text("1 digit")
        expect(call.locator(".gather-left")).to_contain_text("s left")
        page.keyboard.press("1")  # the keyboard presses into the call
        expect(call.locator(".transcript")).to_contain_text("You pressed1", timeout=EXPECT)
        expect(call.locator(".transcript")).to_contain_text(
            "Forwarded to +16085550101", timeout=EXPECT
        )
        expect(call.locator(".result-line")).to_have_text(
            "completed · returned 'sales'", timeout=EXPECT
        )
        timeline = call.locator(".timeline")
        for step in ("ringing", "call.answered", "POST /voice", "POST /gather", "dtmf.received"):
            expect(timeline).to_contain_text(step)
        expect(timeline).to_contain_text("POST /forwardcall16085550101")
        expect(page.locator('[data-count="placed"]')).to_have_text("1")


@pytest.mark.browser
@browser
def test_browser_voicemail_picks_up_and_the_flow_leaves_a_message() -> None:
    from playwright.sync_api import expect

    with (
        phone_cli("examples/voicemail_drop.py:flow", NUMBER, "--ring-timeout", str(PATIENT)) as url,
        chromium() as page,
    ):
        page.goto(url)
        call = card(page, NUMBER)
        call.get_by_role("button", name="Voicemail").click()
        expect(call.locator(".transcript")).to_contain_text("AMD says MACHINE", timeout=EXPECT)
        expect(call.locator(".transcript")).to_contain_text(
            "Hello, this is Acme calling about your order.", timeout=EXPECT
        )
        expect(call.locator(".result-line")).to_have_text(
            "completed · returned 'voicemail'", timeout=EXPECT
        )
        expect(call).to_have_attribute("data-outcome", "voicemail", timeout=EXPECT)
        expect(page.locator('#chart [data-outcome="voicemail"]')).to_have_attribute(
            "data-count", "1", timeout=EXPECT
        )


@pytest.mark.browser
@browser
def test_browser_a_call_nobody_answers_rings_out() -> None:
    from playwright.sync_api import expect

    with (
        phone_cli("examples/ivr_menu.py:flow", NUMBER, "--ring-timeout", "1") as url,
        chromium() as page,
    ):
        page.goto(url)
        call = card(page, NUMBER)
        expect(call).to_have_attribute("data-outcome", "no-answer", timeout=EXPECT)
        expect(call.locator(".transcript")).to_contain_text("Rang out: no answer")
        expect(call.locator(".timeline")).to_contain_text("call.timeout")
        expect(call.locator(".result-line")).to_have_text(
            "no-answer · returned None", timeout=EXPECT
        )
        expect(page.locator('#chart [data-outcome="no-answer"]')).to_have_attribute(
            "data-count", "1"
        )


@pytest.mark.browser
@browser
def test_browser_two_calls_side_by_side(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    target = flow_file(tmp_path, MENU_FLOW)
    other = "16085550123"
    with (
        phone_cli(target, NUMBER, other, "--ring-timeout", str(PATIENT)) as url,
        chromium() as page,
    ):
        page.goto(url)
        first, second = card(page, NUMBER), card(page, other)
        expect(page.locator('[data-count="ringing"]')).to_have_text("2", timeout=EXPECT)
        first.get_by_role("button", name="Answer").click()
        second.get_by_role("button", name="Answer").click()
        expect(page.locator('[data-count="live"]')).to_have_text("2", timeout=EXPECT)
        expect(first.locator(".gather")).to_be_visible(timeout=EXPECT)
        expect(second.locator(".gather")).to_be_visible(timeout=EXPECT)
        second.locator('[data-key="2"]').click()
        first.locator('[data-key="1"]').click()
        expect(second.locator(".result-line")).to_have_text(
            "completed · returned 'support'", timeout=EXPECT
        )
        expect(first.locator(".result-line")).to_have_text(
            "completed · returned 'sales'", timeout=EXPECT
        )
        expect(second.locator(".timeline")).to_contain_text("16085550102")
        expect(first.locator(".timeline")).to_contain_text("16085550101")
        expect(page.locator('[data-count="placed"]')).to_have_text("2")


@pytest.mark.browser
@browser
def test_browser_markup_in_a_prompt_or_an_error_is_shown_as_text(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    target = flow_file(tmp_path, MARKUP_FLOW)
    with phone_cli(target, NUMBER, "--ring-timeout", str(PATIENT)) as url, chromium() as page:
        page.goto(url)
        call = card(page, NUMBER)
        call.get_by_role("button", name="Answer").click()
        prompt = '<img src=x onerror="window.pwned=1"><b>bold</b> & <script>window.pwned=2</script>'
        expect(call.locator(".transcript")).to_contain_text(prompt, timeout=EXPECT)
        expect(call.locator(".result-line")).to_have_text(
            "failed: RuntimeError: <b>boom</b>", timeout=EXPECT
        )
        expect(call.locator(".traceback")).to_contain_text("RuntimeError: <b>boom</b>")
        expect(call).to_have_attribute("data-outcome", "failed", timeout=EXPECT)
        assert call.locator(".transcript img, .transcript b, .transcript script").count() == 0
        assert call.locator(".result b").count() == 0
        assert page.evaluate("window.pwned") is None


@pytest.mark.browser
@browser
def test_browser_a_campaign_shows_counters_and_a_chart_of_outcomes(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    numbers = ["16085550131", "16085550132", "16085550133"]
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("number\n" + "\n".join(numbers) + "\n")
    with (
        phone_cli(
            "examples/voicemail_drop.py:flow",
            "--contacts",
            str(contacts),
            "--ring-timeout",
            str(PATIENT),
        ) as url,
        chromium() as page,
    ):
        page.goto(url)
        expect(page.locator('[data-count="ringing"]')).to_have_text("3", timeout=EXPECT)
        card(page, numbers[0]).get_by_role("button", name="Voicemail").click()
        card(page, numbers[1]).get_by_role("button", name="Decline").click()
        person = card(page, numbers[2])
        person.get_by_role("button", name="Answer").click()
        expect(person.locator(".gather")).to_be_visible(timeout=EXPECT)
        person.get_by_role("button", name="Hang up").click()
        expect(page.locator('[data-count="ended"]')).to_have_text("3", timeout=EXPECT)
        for outcome in ("voicemail", "declined", "hung-up"):
            expect(page.locator(f'#chart [data-outcome="{outcome}"]')).to_have_attribute(
                "data-count", "1", timeout=EXPECT
            )
        expect(page.locator('#chart [data-outcome="completed"]')).to_have_attribute(
            "data-count", "0"
        )
        expect(page.locator("#chart-legend")).to_have_text("Outcomes of 3 ended calls")
