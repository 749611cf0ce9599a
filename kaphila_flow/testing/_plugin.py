"""The pytest plugin (``pytest11`` entry point): the ``kaphila`` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ._fake import FakeKaphila


@pytest.fixture
async def kaphila(anyio_backend: object) -> AsyncIterator[FakeKaphila]:
    """An in-memory Kaphila with virtual time; mark the test with ``pytest.mark.anyio``."""
    async with FakeKaphila() as fake:
        yield fake
