"""Test helpers: an in-memory Kaphila (``FakeKaphila``), the ``kaphila`` fixture, and
``explore``, which runs a flow along every path a caller can take."""

from ._explore import Entries, ExploreOptions, explore, explore_async
from ._fake import Answer, FakeKaphila, Phone, Turn
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

__all__ = [
    "Action",
    "Answer",
    "Branch",
    "CallPath",
    "Choice",
    "Coverage",
    "Ending",
    "Entries",
    "ExploreOptions",
    "Exploration",
    "FakeKaphila",
    "Node",
    "Phone",
    "Point",
    "PointKind",
    "Problem",
    "ProblemKind",
    "Step",
    "Turn",
    "explore",
    "explore_async",
]
