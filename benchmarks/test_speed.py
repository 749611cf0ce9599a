"""Flow tests per second through FakeKaphila: the menu flow's test, on one core."""

from __future__ import annotations

import time

import anyio

from kaphila_flow import Call
from kaphila_flow.testing import FakeKaphila

from ._report import Row, median

SALES = "16085550101"


async def menu(call: Call) -> str:
    await call.say("Welcome to our company.")
    choice = await call.gather("Press 1 for sales, 2 for support.", num_digits=1)
    if choice == "1":
        await call.forward(SALES)
    return choice


async def _flows(count: int) -> float:
    async with FakeKaphila() as kaphila:
        started = time.perf_counter()
        for n in range(count):
            phone = await kaphila.call(menu, number=f"1608555{n % 10000:04d}")
            assert await phone.hears() == "Welcome to our company."
            assert await phone.hears() == "Press 1 for sales, 2 for support."
            await phone.press("1")
            assert await phone.forwarded_to() == SALES
            assert (await phone.result()).value == "1"
        return count / (time.perf_counter() - started)


def run(quick: bool = False) -> list[Row]:
    count = 300 if quick else 2000
    anyio.run(_flows, 50)  # warm-up
    rows = []
    for backend in ("asyncio", "trio"):
        rates = [anyio.run(_flows, count, backend=backend) for _ in range(3)]
        rows.append(
            Row(
                f"test speed ({backend})",
                "menu flow tests per second",
                median(rates),
                None,
                "/s",
                ">= 5,000/s",
            )
        )
    return rows
