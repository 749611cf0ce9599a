"""Every ```python snippet in README.md and docs/ runs, or at least compiles.

A fence whose preceding line (blank lines aside) is ``<!-- fragment -->`` is a fragment:
a piece of a flow or of a deployment (``await call.menu(...)``, a real account) that is
only compiled. Every other snippet is runnable: the runnable snippets of one page are
executed in order in one namespace, as a reader pastes them one after another, on
asyncio and on trio (``anyio.run`` in a snippet runs on the backend under test, on a loop that can
jump in virtual time). Then
each ``test_*`` function the page defines is run, with the ``kaphila`` fixture if it
asks for it. Snippets that need a server use the simulator in-process.
"""

from __future__ import annotations

import ast
import inspect
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, get_args

import anyio
import pytest

from kaphila_flow import CallStatus
from kaphila_flow.testing import FakeKaphila, virtual_time_backend

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FRAGMENT = "<!-- fragment -->"
#: Seconds (virtual, where a fake or the in-process simulator runs) any one snippet or
#: test may take before the run is called stuck.
PATIENCE = 86_400


@dataclass(frozen=True)
class Snippet:
    page: Path
    line: int  # of the opening fence, 1-based
    code: str
    fragment: bool

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def snippets(page: Path) -> list[Snippet]:
    found: list[Snippet] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```python":
            index += 1
            continue
        start = index
        before = [line.strip() for line in lines[:start] if line.strip()]
        end = start + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        assert end < len(lines), f"{page.name}:{start + 1}: the python fence is never closed"
        code = "\n".join(lines[start + 1 : end]) + "\n"
        found.append(Snippet(page, start + 1, code, bool(before) and before[-1] == FRAGMENT))
        index = end + 1
    return found


ALL = [snippet for page in PAGES for snippet in snippets(page)]
RUNNABLE_PAGES = sorted({s.page for s in ALL if not s.fragment})


def test_the_pages_have_snippets() -> None:
    names = {s.page.name for s in ALL}
    assert {"README.md", "guide.md", "campaigns.md", "simulator.md"} <= names
    assert {"testing.md", "going-live.md"} <= names
    assert sum(not s.fragment for s in ALL) >= 10


@pytest.mark.parametrize("snippet", ALL, ids=[s.where for s in ALL])
def test_every_snippet_compiles(snippet: Snippet) -> None:
    compile(snippet.code, snippet.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=[p.name for p in RUNNABLE_PAGES])
def test_runnable_snippets_name_nothing_undefined(page: Path) -> None:
    """Also inside functions no run reaches (a ``main`` left for the reader to call)."""
    code = "".join(f"# {s.where}\n{s.code}" for s in snippets(page) if not s.fragment)
    checked = subprocess.run(
        [
            *(sys.executable, "-m", "ruff", "check", "--isolated", "--select", "F821,F822,F823"),
            *("--output-format", "concise", "--stdin-filename", f"{page.stem}.py", "-"),
        ],
        input=code,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _guarded_run(real_run: Callable[..., Any], backend: str) -> Callable[..., Any]:
    """``anyio.run`` on ``backend``, failing a snippet that never finishes."""

    def run(func: Callable[..., Any], *args: Any, **options: Any) -> Any:
        if "backend" in options:  # library code that runs a loop of its own (explore())
            return real_run(func, *args, **options)
        options.pop("backend_options", None)  # the backend under test brings its own

        async def guarded() -> Any:
            with anyio.fail_after(PATIENCE):
                return await func(*args)

        name, backend_options = virtual_time_backend(backend)
        return real_run(guarded, backend=name, backend_options=backend_options, **options)

    return run


async def _run_test(test: Callable[..., Any]) -> None:
    wanted = list(inspect.signature(test).parameters)
    unknown = set(wanted) - {"kaphila"}
    assert not unknown, f"{test.__name__} asks for fixtures the docs test cannot give: {unknown}"
    with anyio.fail_after(PATIENCE):
        if "kaphila" in wanted:
            async with FakeKaphila() as kaphila:
                await test(kaphila=kaphila)
        else:
            result = test()
            if inspect.isawaitable(result):
                await result


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=[p.name for p in RUNNABLE_PAGES])
def test_runnable_snippets_run(
    page: Path, backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_run = anyio.run
    monkeypatch.setattr(anyio, "run", _guarded_run(real_run, backend))
    # A snippet may configure logging, as a reader's program would; the suite's stays.
    for name in ("", "kaphila_flow"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.getLogger(name).level)
    monkeypatch.setattr(logging.root, "handlers", list(logging.root.handlers))
    monkeypatch.chdir(tmp_path)  # files a snippet writes land here
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for snippet in snippets(page):
        if snippet.fragment:
            continue
        try:
            exec(compile(snippet.code, snippet.where, "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"the snippet at {snippet.where} failed: {exc!r}") from exc
    tests = {
        name: value
        for name, value in namespace.items()
        if name.startswith("test_") and inspect.isfunction(value)
    }
    name_, backend_options = virtual_time_backend(backend)
    for name, test in tests.items():
        try:
            if inspect.iscoroutinefunction(test) or "kaphila" in inspect.signature(test).parameters:
                real_run(partial(_run_test, test), backend=name_, backend_options=backend_options)
            else:
                test()  # a plain test, as pytest calls it (explore() runs its own loop)
        except Exception as exc:
            raise AssertionError(f"{name} from {page.name} failed: {exc!r}") from exc


def test_the_reference_names_every_call_status() -> None:
    reference = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    statuses = get_args(CallStatus)
    assert statuses, "CallStatus lists the statuses"
    listed = re.search(r"`status` \(([^)]*)\)", reference.split("## `CallResult`", 1)[1])
    assert listed, "docs/reference.md's CallResult lists the statuses as `status` (...)"
    missing = [s for s in statuses if f"`{s}`" not in listed.group(1)]
    assert missing == [], f"docs/reference.md's CallResult omits the status {missing}"


def test_the_fragment_marker_is_spelled_one_way() -> None:
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"<!--\s*fragment", line, re.IGNORECASE):
                assert line.strip() == FRAGMENT, f"{page.name}:{number}: write {FRAGMENT}"
