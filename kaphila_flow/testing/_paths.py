"""What ``explore`` finds: the tree of a flow's paths, each path, and its problems.

Values only; the search that builds them lives in ``_explore.py``, the pictures in
``_diagram.py`` and ``_diagram_html.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .._commands import Command, Gather, Voice
from .._result import CallResult

__all__ = [
    "Action",
    "Branch",
    "CallPath",
    "Choice",
    "Coverage",
    "Ending",
    "Exploration",
    "Node",
    "Point",
    "PointKind",
    "Problem",
    "ProblemKind",
    "Step",
]

#: How much of a long text a one-line description shows.
SHORT = 48


def shorten(text: str, width: int = SHORT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


class PointKind(enum.Enum):
    """Where a call stands when the caller has a say."""

    DIAL = "dial"  # the phone rings: how is it answered?
    SAY = "say"  # the flow speaks: listen on, or hang up
    GATHER = "gather"  # the flow waits on a gather: keys, silence, or hang up
    WAIT = "wait"  # the flow waits for keys outside a gather (call.keys(), wait_for)
    END = "end"  # the call is over


@dataclass(frozen=True, slots=True)
class Point:
    """One place in a call where the caller chooses (or the end)."""

    kind: PointKind
    #: What is being said (``SAY``) or the gather's prompt (``GATHER``).
    text: str | None = None
    #: The gather waited on, its ``call_id`` blanked so that points compare by meaning.
    gather: Gather | None = None

    def describe(self) -> str:
        if self.kind is PointKind.SAY:
            return f"says {shorten(self.text or '')!r}"
        if self.kind is PointKind.GATHER:
            return f"asks {shorten(self.text)!r}" if self.text else "gathers keys"
        if self.kind is PointKind.WAIT:
            return "waits for keys"
        return str(self.kind.value)


class Action(enum.Enum):
    """What the caller does at a point."""

    ANSWER = "answer"
    LISTEN = "listen"
    PRESS = "press"
    SILENCE = "silence"
    HANG_UP = "hang up"


#: How each ``answer`` reads in a description.
ANSWER_WORDS = {
    "human": "a person answers",
    "machine": "voicemail answers",
    "unknown": "AMD is unsure",
    "busy": "busy",
    "no-answer": "no answer",
}


@dataclass(frozen=True, slots=True)
class Choice:
    """One thing the caller does: answer (``detail`` says how), press ``detail``, ..."""

    action: Action
    detail: str = ""

    def __str__(self) -> str:
        if self.action is Action.ANSWER:
            return ANSWER_WORDS.get(self.detail, self.detail)
        if self.action is Action.PRESS:
            return f"press {self.detail}"
        return str(self.action.value)


@dataclass(frozen=True, slots=True)
class Step:
    """The caller's choice at a point of the call."""

    point: Point
    choice: Choice

    def describe(self) -> str:
        if self.choice.action is Action.HANG_UP and self.point.kind is PointKind.SAY:
            return f"hang up during {shorten(self.point.text or '', 32)!r}"
        if self.choice.action is Action.HANG_UP and self.point.kind is PointKind.GATHER:
            return f"hang up at {shorten(self.point.text or 'a gather', 32)!r}"
        return str(self.choice)


class Ending(enum.Enum):
    """How one path of the call ended."""

    COMPLETED = "completed"  # the flow returned; the flow or the runtime hung up
    FORWARDED = "forwarded"  # the flow handed the call to another number
    HUNG_UP = "hung-up"  # the caller hung up
    FAILED = "failed"  # the flow raised
    NOT_ANSWERED = "not-answered"  # busy or no answer: the flow never ran
    CUT = "cut"  # still going at the explorer's bound; the explorer hung up


@dataclass(frozen=True, slots=True)
class CallPath:
    """One way the call can go: the caller's choices, what was sent, how it ended."""

    steps: tuple[Step, ...]
    commands: tuple[Command[Any], ...] = field(repr=False)
    result: CallResult = field(repr=False)
    ending: Ending
    #: The kinds of problem this path shows.
    problems: tuple[ProblemKind, ...] = ()

    @property
    def answer(self) -> str:
        """How the callee answered: ``human``, ``machine``, ``unknown``, ``busy``, ``no-answer``."""
        return self.steps[0].choice.detail

    @property
    def heard(self) -> tuple[str, ...]:
        """What the caller heard: each ``say`` and gather prompt, in order."""
        return tuple(
            c.text or ""
            for c in self.commands
            if isinstance(c, Voice) or (isinstance(c, Gather) and c.text)
        )

    @property
    def pressed(self) -> tuple[str, ...]:
        """The keys pressed, one entry per gather answered with keys."""
        return tuple(s.choice.detail for s in self.steps if s.choice.action is Action.PRESS)

    def describe_ending(self) -> str:
        result = self.result
        if self.ending is Ending.FAILED and result.error is not None:
            return f"failed: {type(result.error).__name__}"
        if self.ending is Ending.NOT_ANSWERED:
            return f"not answered ({result.end_reason or 'no answer'})"
        if self.ending is Ending.CUT:
            return "cut: still going at the bound"
        if self.ending is Ending.HUNG_UP:
            return "hung-up"
        text = f"{result.status}: {shorten(repr(result.value), 60)}"
        if result.forwarded_to:
            text += f", forwarded to {result.forwarded_to}"
        return text

    def describe(self) -> str:
        """One line: the caller's choices and the ending."""
        moves = [s.describe() for s in self.steps if s.choice.action is not Action.LISTEN]
        return " → ".join([*moves, self.describe_ending()])

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True, slots=True)
class Branch:
    """An edge of the tree: a choice and where it leads.

    Keys that the flow answers alike (the same commands and the same next point)
    share one branch; ``entries`` lists them and ``choice`` presses the first.
    """

    choice: Choice
    label: str
    node: Node
    entries: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Node:
    """A point of the call and the branches from it; an ``END`` node holds its path."""

    point: Point
    branches: tuple[Branch, ...] = ()
    path: CallPath | None = None
    #: False where the search stopped (at its bound) before trying every branch.
    complete: bool = True

    def walk(self) -> list[Node]:
        """This node and every node below it, depth first."""
        out: list[Node] = [self]
        for branch in self.branches:
            out.extend(branch.node.walk())
        return out


class ProblemKind(enum.Enum):
    """What ``explore`` reports (see docs/exploring.md)."""

    UNHANDLED_EXCEPTION = "unhandled-exception"
    NEVER_ENDS = "never-ends"
    COMMAND_AFTER_END = "command-after-end"
    UNREACHABLE_OPTION = "unreachable-option"
    NO_GOODBYE = "no-goodbye"
    LONG_PROMPT = "long-prompt"
    UNREPEATABLE = "unrepeatable"


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem, the first (shortest) path that shows it, and how many paths do."""

    kind: ProblemKind
    message: str
    path: CallPath
    count: int = 1
    #: The point it is about, where there is one (a long prompt, a gather's offer).
    point: Point | None = None

    def __str__(self) -> str:
        more = f" ({self.count} paths)" if self.count > 1 else ""
        return f"{self.kind.value}: {self.message}{more}\n    path: {self.path.describe()}"


class Coverage(enum.Enum):
    """How far the search went."""

    EVERY_PATH = "every path"  # every distinct path was followed to its end
    DEPTH_LIMIT = "depth limit"  # every branch was tried, but some paths were cut at max_depth
    PATH_LIMIT = "path limit"  # stopped at max_paths with branches left untried


@dataclass(frozen=True, slots=True)
class Exploration:
    """Every path ``explore`` followed, as a tree and as a list, and what it found."""

    #: The flow's name (``module.function``).
    flow: str
    #: The call as a tree: the root is the ringing phone (``PointKind.DIAL``).
    root: Node
    #: Every distinct path, in the tree's order.
    paths: tuple[CallPath, ...]
    problems: tuple[Problem, ...]
    coverage: Coverage
    #: Calls placed: one per path, and one per key tried that behaved like another.
    calls: int
    #: Branches left untried at the path bound.
    unexplored: int
    max_depth: int

    @property
    def exhaustive(self) -> bool:
        """Whether every path was followed to its end (no bound was reached)."""
        return self.coverage is Coverage.EVERY_PATH

    def summary(self) -> str:
        if self.coverage is Coverage.EVERY_PATH:
            reach = "every path covered"
        elif self.coverage is Coverage.DEPTH_LIMIT:
            reach = f"some paths cut at max_depth={self.max_depth}"
        else:
            reach = f"stopped at the path bound with {self.unexplored} branches untried"
        found = len(self.problems)
        problems = "no problems" if not found else f"{found} problem{'s' * (found != 1)}"
        return f"{self.flow}: {len(self.paths)} paths ({self.calls} calls), {reach}, {problems}"

    def to_text(self, *, hang_ups: bool = False) -> str:
        """The tree for a terminal; ``hang_ups`` draws the uneventful hang-ups too."""
        from ._diagram import render_text

        return render_text(self, hang_ups=hang_ups)

    def to_mermaid(self, *, hang_ups: bool = False) -> str:
        """The call flow as a Mermaid ``flowchart``."""
        from ._diagram import render_mermaid

        return render_mermaid(self, hang_ups=hang_ups)

    def to_html(self, *, title: str | None = None, hang_ups: bool = False) -> str:
        """A self-contained HTML page: the call flow drawn (SVG), problems, paths."""
        from ._diagram_html import render_html

        return render_html(self, title=title, hang_ups=hang_ups)

    def __str__(self) -> str:
        return "\n".join([self.summary(), *(str(p) for p in self.problems)])
