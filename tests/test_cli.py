"""The command line, run as a user runs it: a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(
    *args: str, stdin: str = "", env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kaphila_flow", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_interactive_dial_makes_the_terminal_the_callee() -> None:
    done = run("dial", "examples/ivr_menu.py:flow", "16089270862", "--interactive", stdin="9\n2\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "said      Welcome to our company." in out
    assert "Sorry, that is not a valid choice." in out
    assert "forwarded 16085550102" in out
    assert "result: 'support'" in out


def test_interactive_answer_machine_answers_as_a_machine() -> None:
    done = run(
        "dial",
        "examples/voicemail_drop.py:flow",
        "16089270862",
        "--interactive",
        "--use-amd",
        "--answer",
        "machine",
    )
    assert done.returncode == 0, done.stderr
    assert "AMD MACHINE" in done.stdout
    assert "result: 'voicemail'" in done.stdout


def test_interactive_hangup() -> None:
    done = run(
        "dial", "examples/pin_entry.py:flow", "16089270862", "--interactive", stdin="12\nh\n"
    )
    assert done.returncode == 0, done.stderr
    assert ": hung-up" in done.stdout
    assert "12" not in done.stdout.split("keys>")[-1].replace(
        "16089270862", ""
    )  # the PIN is masked


def test_end_of_input_hangs_up() -> None:
    done = run(
        "dial", "examples/appointment_confirm.py:flow", "16089270862", "--interactive", stdin=""
    )
    assert done.returncode == 0, done.stderr
    assert ": hung-up" in done.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("dial", "examples/nope.py:flow", "16089270862", "--interactive"), "no such file"),
        (("dial", "examples/ivr_menu.py", "16089270862", "--interactive"), "MODULE_OR_FILE:NAME"),
        (
            ("dial", "examples/ivr_menu.py:nothing", "16089270862", "--interactive"),
            "has no 'nothing'",
        ),
        (
            ("dial", "examples/ivr_menu.py:SALES", "16089270862", "--interactive"),
            "not an `async def` flow",
        ),
        (
            ("dial", "examples/ivr_menu.py:flow", "12345", "--interactive"),
            "invalid phone number '12345'",
        ),
        (("dial", "examples/ivr_menu.py:flow", "16089270862"), "KAPHILA_API_KEY is not set"),
    ],
)
def test_bad_input_is_one_clear_line(args: tuple[str, ...], needle: str) -> None:
    done = run(*args, env={"KAPHILA_API_KEY": ""})
    assert done.returncode == 2
    assert needle in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_missing_webhook_url_is_explained() -> None:
    done = run(
        "dial",
        "examples/ivr_menu.py:flow",
        "16089270862",
        env={"KAPHILA_API_KEY": "ak_x", "KAPHILA_WEBHOOK_URL": ""},
    )
    assert done.returncode == 2
    assert "KAPHILA_WEBHOOK_URL is not set" in done.stderr


def test_dial_simulate_runs_a_flow_over_http() -> None:
    done = run(
        "dial",
        "examples/appointment_confirm.py:flow",
        "16089270862",
        "--simulate",
        "--speed",
        "100",
        "--keys",
        "1",
    )
    assert done.returncode == 0, done.stderr
    assert "said      Confirmed! Thank you." in done.stdout
    assert "result: 'confirmed'" in done.stdout


def test_dial_simulate_with_a_machine_and_the_example_dial_options() -> None:
    done = run(
        "dial",
        "examples/voicemail_drop.py:flow",
        "16089270862",
        "--simulate",
        "--speed",
        "100",
        "--answer",
        "machine",
    )
    assert done.returncode == 0, done.stderr
    assert "answered by: machine" in done.stdout
    assert "result: 'voicemail'" in done.stdout


@pytest.mark.integration
def test_make_demo_prints_a_complete_call() -> None:
    done = run("demo", timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for expected in (
        "answered",
        "said      Welcome to our company.",
        "prompt    Press 1 for Sales",
        "keys      1",
        "forwarded 16085550101",
        "ended     completed",
        "result: 'sales'",
        "answered (no answering-machine detection)",
    ):
        assert expected in out
    assert "answered by: answered" not in out
    assert "Running on" not in done.stderr


def test_simulator_command_serves_the_api(tmp_path: Path) -> None:
    import socket
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "kaphila_flow", "simulator", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the simulator did not come up"
                time.sleep(0.1)
        assert health.json()["status"] == "ok"
        call = httpx.post(
            f"http://127.0.0.1:{port}/makecall",
            json={"number": "16089270862"},
            headers={"Authorization": "Bearer ak_simulator"},
        )
        assert call.status_code == 200 and call.json()["success"] is True
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.integration
def test_serve_places_calls_and_receives_their_webhooks() -> None:
    import socket

    from kaphila_flow.simulator import Callee, KeyStep, Simulator, SimulatorThread

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with SimulatorThread(Simulator(speed=100)) as sim:
        sim.simulator.callee("16089270862", Callee(keys=(KeyStep("1"),)))
        env = {
            **os.environ,
            "KAPHILA_API_KEY": "ak_simulator",
            "KAPHILA_BASE_URL": sim.base_url,
            "KAPHILA_WEBHOOK_URL": f"http://127.0.0.1:{port}/webhooks",
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kaphila_flow",
                "serve",
                "examples/ivr_menu.py:flow",
                "--dial",
                "16089270862",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            lines = []
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if "result:" in line:
                    break
        finally:
            process.terminate()
            process.wait(timeout=10)
    out = "".join(lines)
    assert "receiving webhooks on" in out
    assert "result: 'sales'" in out
