"""``explore``: run a flow on the fake along every path a caller can take.

The search places one call per path and replays it from scratch: a path is a list of
choices (how the phone is answered, then at each point listen or hang up, press keys,
stay silent). A replay follows its plan and then goes on with the default choices
(listen, silence) to the end, so the first calls already reach the bottom of the
tree, where a loop with no exit shows. Every point a replay passes for the first time
queues its other choices.

Which keys to try at a gather is found by trying them: each candidate key is pressed
on its own call, which hangs up at the next point; keys that lead to the same
commands and the same next point are one branch (``Branch.entries``), and only its
first key is followed further.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import math
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict, Unpack

import anyio
import sniffio

from .._commands import Gather
from .._model import KEYS
from .._runtime import Flow
from ._fake import ANSWERS, Answer, FakeKaphila
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
    shorten,
)
from ._problems import Finding, announced_keys, check_path, question
from ._replay import Driver, Mode, Stop, Trace, completes
from ._virtual_time import virtual_time_backend

__all__ = ["Entries", "ExploreOptions", "explore", "explore_async"]

#: Candidate keys, in the order they are tried (the first of a group stands for it).
KEY_ORDER = "1234567890*#"
#: How keys sort in a label: "0,3-9,*,#".
_LABEL_ORDER = "0123456789*#"
DEFAULT_NUMBER = "16089270862"
#: Loggers that report each call's failure; the explorer reports them as problems.
_NOISY = ("kaphila_flow.runtime", "kaphila_flow.call")

#: Entries to try at a gather: ``{"part of the prompt": ["1234", ...]}`` or a function
#: of the ``Gather`` that returns them.
Entries = Mapping[str, Iterable[str]] | Callable[[Gather], Iterable[str]]


class ExploreOptions(TypedDict, total=False):
    """Options of ``explore`` and ``explore_async`` (all optional)."""

    #: How the callee may answer; default: every way, without ``machine`` and
    #: ``unknown`` unless the call uses AMD (without it a flow cannot tell them apart).
    answers: Sequence[Answer]
    #: Entries to try where the explorer cannot guess them (a PIN from a database).
    entries: Entries
    #: Choices on one path before it counts as never ending (default 40).
    max_depth: int
    #: Calls to place at most (default 5000).
    max_paths: int
    #: Seconds of speech above which a prompt is a problem (default 20).
    prompt_limit: float
    #: Problem kinds not to report.
    ignore: Collection[ProblemKind]
    #: The number dialled (default 16089270862).
    number: str
    #: Seconds (virtual) a flow may be busy outside the call before the path counts as stuck.
    patience: float
    #: The flow's name in reports (default: ``module.function``).
    name: str
    # What ``Runtime.start`` takes for the call:
    caller_id: str
    use_amd: bool
    voice: str
    ring_timeout: int
    on_machine: Flow | str
    data: Mapping[str, Any]


_DIAL_KEYS = frozenset({"caller_id", "use_amd", "voice", "ring_timeout", "on_machine", "data"})


@dataclass(frozen=True, slots=True)
class _Settings:
    answers: tuple[Answer, ...]
    entries: Entries | None
    max_depth: int
    max_paths: int
    prompt_limit: float
    ignore: frozenset[ProblemKind]
    number: str
    patience: float
    name: str | None
    dial: dict[str, Any]

    @classmethod
    def read(cls, options: Mapping[str, Any]) -> _Settings:
        unknown = sorted(set(options) - ExploreOptions.__optional_keys__)
        if unknown:
            raise TypeError(f"explore() got unknown option(s): {', '.join(unknown)}")
        dial = {k: v for k, v in options.items() if k in _DIAL_KEYS}
        default = ANSWERS if dial.get("use_amd") else ("human", "busy", "no-answer")
        answers = tuple(options.get("answers", default))
        if not answers:
            raise ValueError("answers must name at least one way to answer, such as 'human'")
        for answer in answers:
            if answer not in ANSWERS:
                raise ValueError(f"answers must be among {', '.join(ANSWERS)}, not {answer!r}")
        entries = options.get("entries")
        if entries is not None and not callable(entries):
            if not isinstance(entries, Mapping):
                raise TypeError("entries must be {part of a prompt: [keys, ...]} or a function")
            for values in entries.values():
                _check_entries(list(values))
        ignore = frozenset(options.get("ignore", ()))
        if any(not isinstance(kind, ProblemKind) for kind in ignore):
            raise TypeError("ignore takes ProblemKind values")
        return cls(
            answers=answers,
            entries=entries,
            max_depth=_whole("max_depth", options.get("max_depth", 40)),
            max_paths=_whole("max_paths", options.get("max_paths", 5000)),
            prompt_limit=_positive("prompt_limit", options.get("prompt_limit", 20.0)),
            ignore=ignore,
            number=str(options.get("number", DEFAULT_NUMBER)),
            patience=_positive("patience", options.get("patience", 3600.0)),
            name=options.get("name"),
            dial=dial,
        )


def _whole(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
    return value


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number, not {value!r}")
    if math.isinf(value):
        raise ValueError(f"{name} must be finite")
    return float(value)


def _check_entries(values: list[str]) -> list[str]:
    for value in values:
        if not isinstance(value, str) or not value or any(k not in KEYS for k in value):
            raise ValueError(f"entries must be telephone keys (0-9, * and #), not {value!r}")
    return values


def _flow_name(flow: Flow) -> str:
    inner = flow.func if isinstance(flow, functools.partial) else flow
    module = getattr(inner, "__module__", None) or ""
    name = getattr(inner, "__qualname__", None) or repr(inner)
    return f"{module.rpartition('.')[2]}.{name}" if module else name


# -- the tree while it grows -----------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Node:
    point: Point
    #: The steps from the root that reach this point.
    prefix: tuple[Step, ...]
    branches: dict[Choice, _Branch] = field(default_factory=dict)
    path: CallPath | None = None
    #: Entries to try here (gathers and waits) and what each led to.
    candidates: tuple[str, ...] = ()
    probes: dict[str, Trace] = field(default_factory=dict)
    grouped: bool = False
    cut: bool = False


@dataclass(eq=False, slots=True)
class _Branch:
    choice: Choice
    node: _Node
    entries: tuple[str, ...] = ()
    other: bool = False


_RANK = {Action.ANSWER: 0, Action.LISTEN: 1, Action.PRESS: 2, Action.SILENCE: 3, Action.HANG_UP: 4}
_ANSWER_LABELS = {
    "human": "person",
    "machine": "voicemail",
    "unknown": "AMD unsure",
    "busy": "busy",
    "no-answer": "no answer",
}


def _key_set(keys: Iterable[str]) -> str:
    """'0,3-9,*,#' for the keys 0, 3, 4, ..., 9, * and #."""
    ordered = sorted(set(keys), key=_LABEL_ORDER.index)
    digits = [int(k) for k in ordered if k.isdigit()]
    parts: list[str] = []
    start = 0
    while start < len(digits):
        end = start
        while end + 1 < len(digits) and digits[end + 1] == digits[end] + 1:
            end += 1
        if end - start >= 2:
            parts.append(f"{digits[start]}-{digits[end]}")
        else:
            parts.extend(str(d) for d in digits[start : end + 1])
        start = end + 1
    parts.extend(k for k in ordered if not k.isdigit())
    return ",".join(parts)


def _entry_label(gather: Gather | None, entry: str) -> str:
    if gather is not None and not completes(gather, entry):
        return f"{entry}, then silence"
    return entry


def _branch_label(node: _Node, branch: _Branch) -> str:
    action = branch.choice.action
    if action is Action.ANSWER:
        return _ANSWER_LABELS.get(branch.choice.detail, branch.choice.detail)
    if action is Action.LISTEN:
        return ""
    if action is not Action.PRESS:
        return str(action.value)
    entries = branch.entries or (branch.choice.detail,)
    if all(len(e) == 1 for e in entries):
        label = _key_set(entries)
    elif len(entries) <= 3:
        label = " / ".join(_entry_label(node.point.gather, e) for e in entries)
    else:
        label = f"{_entry_label(node.point.gather, entries[0])} and {len(entries) - 1} alike"
    return f"other: {label}" if branch.other else label


# -- the search --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Seen:
    finding: Finding
    path: CallPath
    count: int = 1


class _Search:
    def __init__(self, driver: Driver, settings: _Settings) -> None:
        self.driver = driver
        self.settings = settings
        self.root = _Node(Point(PointKind.DIAL), ())
        self.queue: deque[tuple[_Node, Choice, Mode]] = deque()
        self.seen: dict[tuple[ProblemKind, str], _Seen] = {}
        self.waiting: list[_Node] = []  # gathers whose keys are being tried
        self.cut = False
        self.broken: set[int] = set()  # nodes where a replay went another way

    async def run(self) -> None:
        for answer in self.settings.answers:
            self.queue.append((self.root, Choice(Action.ANSWER, answer), Mode.CONTINUE))
        while self.queue and self.driver.calls < self.settings.max_paths:
            node, choice, mode = self.queue.popleft()
            plan = (*node.prefix, Step(node.point, choice))
            trace = await self.driver.run(plan, mode)
            if trace.stop is Stop.DIVERGED:
                self._note(self._path(trace), [Finding(ProblemKind.UNREPEATABLE, "", trace.note)])
                self.broken.add(id(node))
            if mode is Mode.PROBE:
                node.probes[choice.detail] = trace
                if len(node.probes) == len(node.candidates):
                    self._group(node)
            elif trace.stop is not Stop.DIVERGED:
                self._attach(node, choice, trace)
        for node in self.waiting:
            if not node.grouped:
                self._group(node)

    # -- growing the tree ------------------------------------------------------------------

    def _attach(
        self,
        node: _Node,
        choice: Choice,
        trace: Trace,
        entries: tuple[str, ...] = (),
        other: bool = False,
    ) -> None:
        """Hang what ``trace`` did after ``node``'s ``choice`` under that branch."""
        steps = trace.steps
        current, via = node, choice
        for index in range(len(node.prefix) + 1, len(steps)):
            step = steps[index]
            child = _Node(step.point, steps[:index])
            current.branches[via] = _Branch(via, child, entries, other)
            entries, other = (), False
            cut = trace.stop is Stop.CUT and index == len(steps) - 1
            if cut:
                child.cut = self.cut = True
            else:
                self._expand(child, taken=step.choice)
            current, via = child, step.choice
        end = _Node(Point(PointKind.END), steps, path=self._record(trace))
        current.branches[via] = _Branch(via, end, entries, other)

    def _expand(self, node: _Node, *, taken: Choice) -> None:
        """Queue the choices at a new point other than the one its first call took."""
        kind = node.point.kind
        others: list[Choice] = []
        if kind is PointKind.SAY:
            others = [Choice(Action.LISTEN), Choice(Action.HANG_UP)]
        elif kind in (PointKind.GATHER, PointKind.WAIT):
            others = [Choice(Action.SILENCE), Choice(Action.HANG_UP)]
            node.candidates = self._candidates(node.point)
            for entry in node.candidates:
                self.queue.append((node, Choice(Action.PRESS, entry), Mode.PROBE))
            self.waiting.append(node)
        for choice in others:
            if choice != taken:
                self.queue.append((node, choice, Mode.CONTINUE))

    def _candidates(self, point: Point) -> tuple[str, ...]:
        gather = point.gather
        found: list[str] = []
        entries = self.settings.entries
        if gather is not None and entries is not None:
            if callable(entries):
                found += _check_entries(list(entries(gather)))
            else:
                prompt = (gather.text or "").lower()
                for part, values in entries.items():
                    if part.lower() in prompt:
                        found += list(values)
        found += _guesses(gather)
        return tuple(dict.fromkeys(found))

    def _group(self, node: _Node) -> None:
        """Keys that lead to the same commands and the same next point are one branch."""
        node.grouped = True
        groups: dict[tuple[object, ...], list[str]] = {}
        for entry in node.candidates:
            trace = node.probes.get(entry)
            if trace is not None and trace.stop is not Stop.DIVERGED:
                groups.setdefault(trace.reaction, []).append(entry)
        sizes = [*sorted((len(g) for g in groups.values()), reverse=True), 1]
        wrong: list[str] = []
        every_key = node.point.gather is None or node.point.gather.num_digits <= 2
        for members in groups.values():
            # Where every short entry was tried, the clearly biggest group is "any other key".
            other = every_key and len(groups) > 1 and len(members) == sizes[0] > sizes[1]
            trace = node.probes[members[0]]
            self._attach(node, Choice(Action.PRESS, members[0]), trace, tuple(members), other)
            if other:
                wrong = members
        if groups:
            self._unreachable(node, wrong)

    def _unreachable(self, node: _Node, wrong: list[str]) -> None:
        """Keys the prompt offers that the gather never takes, or takes as wrong keys."""
        gather = node.point.gather
        if gather is None or gather.num_digits > 2:
            return  # longer entries are not all tried
        prompt = shorten(gather.text or "", 40)
        for key in announced_keys(gather.text or ""):
            trace = node.probes.get(key)
            if len(key) > gather.num_digits:
                keys = f"{gather.num_digits} key{'s' * (gather.num_digits > 1)}"
                why = f"the gather ends after {keys}"
            elif not completes(gather, key) or key == gather.finish_on_key:
                why = "the gather does not take it"
            elif key in wrong and trace is not None:
                like = next(k for k in wrong if k != key)
                why = f"pressing {key} does what any wrong key does (like {like})"
            else:
                continue
            shown = trace or next(iter(node.probes.values()))
            finding = Finding(
                ProblemKind.UNREACHABLE_OPTION,
                f"{question(gather.text or '')}\0{key}",
                f"{prompt!r} offers {key}, but {why}",
                node.point,
            )
            self._note(self._path(shown), [finding])

    # -- paths and problems ----------------------------------------------------------------

    def _path(self, trace: Trace) -> CallPath:
        result = trace.result
        if trace.stop in (Stop.CUT, Stop.STUCK):
            ending = Ending.CUT
        elif result.status == "failed":
            ending = Ending.FAILED
        elif result.status == "hung-up":
            ending = Ending.HUNG_UP
        elif result.status == "completed":
            ending = Ending.FORWARDED if result.forwarded_to else Ending.COMPLETED
        else:
            ending = Ending.NOT_ANSWERED
        return CallPath(trace.steps, trace.commands, result, ending)

    def _record(self, trace: Trace) -> CallPath:
        path = self._path(trace)
        findings = check_path(
            path, hung_up_after=trace.hung_up_after, prompt_limit=self.settings.prompt_limit
        )
        if trace.stop is Stop.CUT:
            message = (
                f"the call is still going after {self.settings.max_depth} choices "
                "(max_depth): a loop with no exit?"
            )
            findings.append(Finding(ProblemKind.NEVER_ENDS, "", message))
        elif trace.stop is Stop.STUCK:
            findings.append(Finding(ProblemKind.NEVER_ENDS, "stuck", trace.note))
        kinds = tuple(dict.fromkeys(f.kind for f in findings if f.kind not in self.settings.ignore))
        path = replace(path, problems=kinds)
        self._note(path, findings)
        return path

    def _note(self, path: CallPath, findings: list[Finding]) -> None:
        for finding in findings:
            if finding.kind in self.settings.ignore:
                continue
            if finding.kind not in path.problems:
                path = replace(path, problems=(*path.problems, finding.kind))
            key = (finding.kind, finding.key)
            seen = self.seen.get(key)
            if seen is None:
                self.seen[key] = _Seen(finding, path)
                continue
            seen.count += 1
            if len(path.steps) < len(seen.path.steps):  # the shortest path shows it best
                seen.finding, seen.path = finding, path

    # -- the result ------------------------------------------------------------------------

    def result(self, flow: str) -> Exploration:
        pending = {id(node) for node, _choice, _mode in self.queue}
        paths: list[CallPath] = []

        def freeze(node: _Node) -> Node:
            order = {choice: i for i, choice in enumerate(self._answer_choices())}
            candidates = {entry: i for i, entry in enumerate(node.candidates)}

            def rank(branch: _Branch) -> tuple[int, int]:
                choice = branch.choice
                if choice.action is Action.ANSWER:
                    return (0, order.get(choice, 0))
                return (_RANK[choice.action], candidates.get(choice.detail, 0))

            branches = tuple(
                Branch(b.choice, _branch_label(node, b), freeze(b.node), b.entries)
                for b in sorted(node.branches.values(), key=rank)
            )
            if node.path is not None:
                paths.append(node.path)
            complete = (
                not node.cut
                and id(node) not in pending | self.broken
                and (node.grouped or not node.candidates)
            )
            return Node(node.point, branches, node.path, complete)

        root = freeze(self.root)
        if self.queue:
            coverage = Coverage.PATH_LIMIT
        elif self.cut:
            coverage = Coverage.DEPTH_LIMIT
        else:
            coverage = Coverage.EVERY_PATH
        kinds = list(ProblemKind)
        found = self.seen.values()
        problems = sorted(
            (
                Problem(f.finding.kind, f.finding.message, f.path, f.count, f.finding.point)
                for f in found
            ),
            key=lambda p: kinds.index(p.kind),
        )
        return Exploration(
            flow=flow,
            root=root,
            paths=tuple(paths),
            problems=tuple(problems),
            coverage=coverage,
            calls=self.driver.calls,
            unexplored=len(self.queue),
            max_depth=self.settings.max_depth,
        )

    def _answer_choices(self) -> list[Choice]:
        return [Choice(Action.ANSWER, a) for a in self.settings.answers]


def _guesses(gather: Gather | None) -> list[str]:
    """Entries to try when nothing says which: every key, or a few telling entries."""
    if gather is None:  # keys outside a gather: each key once
        return list(KEY_ORDER)
    finish = gather.finish_on_key
    allowed = [k for k in KEY_ORDER if gather.valid_digits is None or k in gather.valid_digits]
    digits = [k for k in allowed if k != finish]
    outside = [k for k in KEY_ORDER if k not in allowed and k != finish][:1]
    ends = [finish] if finish else []
    if gather.num_digits == 1:
        return [*allowed, *outside, *ends]
    first = digits[0] if digits else KEY_ORDER[0]
    short = [k + (finish or "") for k in digits]
    if gather.num_digits == 2:
        return [*short, *(a + b for a in digits for b in digits), *ends]
    # Longer entries (a PIN, an account number) cannot all be tried: one full entry,
    # one short one; the caller's own go in through ``entries``.
    return [first * gather.num_digits, first + (finish or ""), *ends]


# -- entry points ------------------------------------------------------------------------------


async def explore_async(flow: Flow, **options: Unpack[ExploreOptions]) -> Exploration:
    """Run ``flow`` on an in-memory Kaphila along every path a caller can take.

    At every point where the callee has a say the search tries each choice: how the
    call is answered; at each gather every key (grouped where the flow answers them
    alike), silence until the timeout, and hanging up; a hang-up during each ``say``.
    It stops when every path is covered or at ``max_depth`` / ``max_paths``, and says
    which (``Exploration.coverage``). See ``ExploreOptions`` for the options.
    """
    if not callable(flow):
        raise TypeError(f"flow must be an async function taking a Call, not {flow!r}")
    settings = _Settings.read(options)
    with _quiet():
        return await _search(flow, settings)


async def _search(flow: Flow, settings: _Settings) -> Exploration:
    async with FakeKaphila(patience=settings.patience) as kaphila:
        driver = Driver(
            kaphila,
            flow,
            number=settings.number,
            max_depth=settings.max_depth,
            dial_options=settings.dial,
            step_limit=settings.patience * 2 + 1,
        )
        search = _Search(driver, settings)
        await search.run()
    return search.result(settings.name or _flow_name(flow))


#: Set while exploring; the flows' tasks inherit it (contexts are copied at spawn).
_EXPLORING: contextvars.ContextVar[bool] = contextvars.ContextVar("exploring", default=False)


def _not_exploring(record: logging.LogRecord) -> bool:
    return not _EXPLORING.get()


@contextmanager
def _quiet() -> Iterator[None]:
    """Keep the runtime from logging each explored call's failure: they are problems.

    The filter stays on the loggers once added; outside ``explore`` it lets all through.
    """
    for name in _NOISY:
        logging.getLogger(name).addFilter(_not_exploring)  # added once, however often called
    token = _EXPLORING.set(True)
    try:
        yield
    finally:
        _EXPLORING.reset(token)


def explore(
    flow: Flow, *, backend: str = "asyncio", **options: Unpack[ExploreOptions]
) -> Exploration:
    """``explore_async`` in an event loop of its own (``backend``: asyncio or trio).

    For plain functions and tests: ``assert not explore(flow).problems``. Inside a
    running event loop (an async test) use ``await explore_async(flow)``.
    """
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        pass
    else:
        raise RuntimeError(
            f"explore() runs its own event loop, and {library} is already running here: "
            "use `await explore_async(flow)` in async code"
        )
    name, backend_options = virtual_time_backend(backend)  # every path in virtual time
    return anyio.run(
        functools.partial(explore_async, flow, **options),
        backend=name,
        backend_options=backend_options,
    )
