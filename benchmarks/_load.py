"""A load generator for webhook ingest, run as its own process.

    python -m benchmarks._load PORT SECONDS CONNECTIONS < paths.json

Keep-alive HTTP/1.1 POSTs of `dtmf.received` / `gather.progress` payloads (distinct
timestamps, so none is a duplicate), round-robin over the live calls. Prints the
acknowledged events per second as JSON.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time


async def connection(
    port: int,
    until: float,
    targets: list[tuple[str, str]],
    counter: itertools.count[int],
    done: list[int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    acknowledged = 0
    try:
        while time.monotonic() < until:
            n = next(counter)
            path, call_id = targets[n % len(targets)]
            if n % 2:
                event = {
                    "callId": call_id,
                    "event": "dtmf.received",
                    "digit": "5",
                    "timestamp": f"t{n}",
                }
            else:
                event = {
                    "callId": call_id,
                    "event": "gather.progress",
                    "digits": "5",
                    "timestamp": f"t{n}",
                }
            body = json.dumps(event).encode()
            head = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"User-Agent: Kaphila-API-API/2.0\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if status_line.split()[1].startswith(b"2"):
                acknowledged += 1
    finally:
        writer.close()
        done.append(acknowledged)


async def main() -> None:
    port, seconds, connections = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    targets = [tuple(pair) for pair in json.loads(sys.stdin.read())["paths"]]
    counter = itertools.count()
    done: list[int] = []
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(
        *(connection(port, until, targets, counter, done) for _ in range(connections))
    )  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    print(json.dumps({"rate": sum(done) / elapsed, "acknowledged": sum(done)}))


if __name__ == "__main__":
    asyncio.run(main())
