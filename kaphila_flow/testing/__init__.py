"""Test helpers: an in-memory Kaphila (``FakeKaphila``), the ``kaphila`` fixture, virtual time.

* ``FakeKaphila`` hosts the one provider model in memory; ``Phone`` is the callee's
  phone a test holds; ``Turn`` is where the callee has a say.
* ``InProcessKaphila`` joins the simulator and a runtime over HTTP without sockets
  (the real client and receiver, over ASGI), in virtual time.
* ``MockTransport(handler)`` answers a runtime's commands with a function of yours.
* ``VIRTUAL_TIME_BACKENDS``, ``virtual_time()``, ``VirtualTimeEventLoop``: event loops
  whose clock jumps ahead whenever every task waits (asyncio and trio).
"""

from .._callees import Callee, KeyStep
from .._provider import Account, Faults
from ._fake import FAKE_WEBHOOK_URL, FakeKaphila, Phone, Turn
from ._in_process import InProcessKaphila
from ._mock import MockTransport, default_reply
from ._virtual_time import (
    VIRTUAL_TIME_BACKENDS,
    VirtualTimeEventLoop,
    virtual_time,
    virtual_time_available,
    virtual_time_backend,
)

__all__ = [
    "FAKE_WEBHOOK_URL",
    "Account",
    "Callee",
    "Faults",
    "KeyStep",
    "VIRTUAL_TIME_BACKENDS",
    "FakeKaphila",
    "InProcessKaphila",
    "MockTransport",
    "Phone",
    "Turn",
    "VirtualTimeEventLoop",
    "default_reply",
    "virtual_time",
    "virtual_time_available",
    "virtual_time_backend",
]
