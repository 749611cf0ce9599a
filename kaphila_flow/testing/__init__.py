"""Test helpers: an in-memory Kaphila (``FakeKaphila``), the ``kaphila`` fixture, virtual
time, and ``explore``, which runs a flow along every path a caller can take.

* ``FakeKaphila`` hosts the one provider model in memory; ``Phone`` is the callee's
  phone a test holds; ``Turn`` is where the callee has a say.
* ``InProcessKaphila`` joins the simulator and a runtime over HTTP without sockets
  (the real client and receiver, over ASGI), in virtual time.
* ``MockTransport(handler)`` answers a runtime's commands with a function of yours.
* ``VIRTUAL_TIME_BACKENDS``, ``virtual_time()``, ``VirtualTimeEventLoop``: event loops
  whose clock jumps ahead whenever every task waits (asyncio and trio).
* ``explore(flow)``: every path of a flow, the problems found on them, a diagram.
"""

from .._callees import Callee, KeyStep
from .._provider import Account, Faults
from ._deliveries import Deliveries
from ._explore import Entries, ExploreOptions, explore, explore_async
from ._fake import FAKE_WEBHOOK_URL, Answer, FakeKaphila, Phone, Turn
from ._in_process import InProcessKaphila
from ._mock import MockTransport, default_reply
from ._paths import (
    Action,
    Branch,
    CallPath,
    Choice,
    Coverage,
    Ending,
    Exploration,
    Node,
    Point,
    PointKind,
    Problem,
    ProblemKind,
    Step,
)
from ._virtual_time import (
    VIRTUAL_TIME_BACKENDS,
    VirtualTimeEventLoop,
    virtual_time,
    virtual_time_available,
    virtual_time_backend,
)

__all__ = [
    "FAKE_WEBHOOK_URL",
    "VIRTUAL_TIME_BACKENDS",
    "Account",
    "Action",
    "Answer",
    "Branch",
    "CallPath",
    "Callee",
    "Choice",
    "Coverage",
    "Deliveries",
    "Ending",
    "Entries",
    "ExploreOptions",
    "Exploration",
    "FakeKaphila",
    "Faults",
    "InProcessKaphila",
    "KeyStep",
    "MockTransport",
    "Node",
    "Phone",
    "Point",
    "PointKind",
    "Problem",
    "ProblemKind",
    "Step",
    "Turn",
    "VirtualTimeEventLoop",
    "default_reply",
    "explore",
    "explore_async",
    "virtual_time",
    "virtual_time_available",
    "virtual_time_backend",
]
