"""Test-only: a runtime with a store that places one call and stops in a crash window.

    python -m tests.crash_runtime BASE_URL STORE NUMBER WINDOW

``WINDOW`` is where the process stops and waits to be killed, after printing one line
``READY <window> <call id or ->`` on stdout:

* ``intent``: the intent is on disk, the ``/makecall`` has not left;
* ``sent``: the provider placed the call and answered, but the runtime never reads
  the answer (as if killed while the answer was on its way);
* ``live``: the call id is stored and the call is live.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

from kaphila_flow import Call, KaphilaClient, MakeCall, Runtime
from kaphila_flow.testing import MockTransport


async def silent(call: Call) -> None:
    await anyio.sleep_forever()


def ready(window: str, call_id: str | None) -> None:
    print(f"READY {window} {call_id or '-'}", flush=True)


async def main(base_url: str, store: str, number: str, window: str) -> None:
    client = KaphilaClient("ak_simulator", base_url=base_url)

    async def send(command: Any) -> Any:
        if isinstance(command, MakeCall) and window == "intent":
            ready(window, None)
            await anyio.sleep_forever()
        reply = await client.send(command)
        if isinstance(command, MakeCall) and window == "sent":
            ready(window, reply.call_id)
            await anyio.sleep_forever()
        return reply

    runtime = Runtime(MockTransport(send), store=store)
    async with runtime, anyio.create_task_group() as tg:
        await tg.start(runtime.serve, "127.0.0.1:0")
        handle = await runtime.start(number, silent)
        call_id = await handle.placed()
        ready(window, call_id)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:5])
