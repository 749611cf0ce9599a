"""The pytest plugin (``pytest11`` entry point): the ``kaphila`` fixture and virtual time.

anyio's ``anyio_backend`` fixture names the event loop a test runs on. This plugin
swaps a plain ``"asyncio"`` or ``"trio"`` for the same backend on a loop whose clock
*can* jump (``VIRTUAL_TIME_BACKENDS``). Such a loop keeps real pace until something
switches jumping on: the ``kaphila`` fixture (and any ``FakeKaphila``) does, for the
time it is open, so flows run in virtual time while tests over real sockets keep real
time. A backend given with options of its own is left alone. Turn the swap off with
``kaphila_virtual_time = false`` in the pytest ini options or ``--kaphila-real-time``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any

import pytest

from ._fake import FakeKaphila
from ._virtual_time import virtual_time_backend


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "kaphila_virtual_time",
        type="bool",
        default=True,
        help="run anyio tests on loops whose clock can jump (kaphila_flow); default true",
    )
    parser.getgroup("kaphila_flow").addoption(
        "--kaphila-real-time",
        action="store_true",
        default=False,
        help="keep anyio's plain event loops (no virtual time for the kaphila fixture)",
    )


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getini("kaphila_virtual_time")) and not config.getoption(
        "--kaphila-real-time"
    )


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: Any, request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    value = yield
    if fixturedef.argname != "anyio_backend" or not _enabled(request.config):
        return value
    if isinstance(value, str) and value in ("asyncio", "trio"):
        swapped = virtual_time_backend(value)
        cached = fixturedef.cached_result
        if cached is not None and cached[0] == value:
            fixturedef.cached_result = (swapped, *cached[1:])
        return swapped
    return value


@pytest.fixture
async def kaphila(anyio_backend: object) -> AsyncIterator[FakeKaphila]:
    """An in-memory Kaphila in virtual time; mark the test with ``pytest.mark.anyio``."""
    async with FakeKaphila() as fake:
        yield fake
