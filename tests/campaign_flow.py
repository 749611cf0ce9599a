"""Test-only: the smallest campaign flow, one key press (used by subprocess tests)."""

from kaphila_flow import Call


async def flow(call: Call) -> str:
    return await call.gather("Press 1.", num_digits=1, timeout=600)
