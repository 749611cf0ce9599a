"""Scripted callees: what the phone at a destination number does, without I/O.

"Answer after 1 s and press 1 two seconds into each menu", "voicemail picks up",
"never answers", "hangs up after 20 s". A ``CalleeRun`` reads a ``CallModel`` and says
which action is due next and when; the provider model applies it when its host lets
time pass. One script serves every host (the fake, the simulator, the dev phone).

One set of callee behaviours, with the same names everywhere (the fake's ``answer=``,
the CLI's ``--answer``, the simulator's config):

========== ==================================================="""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ._model import ENDED, KEYS, RINGING, CallModel

__all__ = ["AnswerMode", "Callee", "CalleeRun", "KeyStep", "normalize_answer"]

AnswerMode = Literal["human", "machine", "unknown", "busy", "no-answer", "held"]
ANSWER_MODES: tuple[str, ...] = get_args(AnswerMode)
#: Earlier spellings, still accepted with a DeprecationWarning.
_RENAMED = {"never": "no-answer", "reject": "busy"}
#: Time between two keys pressed one after another ("1234"), scripted or by hand.
KEY_GAP = 0.15


def normalize_answer(value: object, *, where: str = "answer") -> AnswerMode:
    """The callee behaviour ``value`` names; old spellings warn, unknown ones raise."""
    if isinstance(value, str) and value in _RENAMED:
        new = _RENAMED[value]
        warnings.warn(
            f"{where}={value!r} is deprecated: use {new!r}", DeprecationWarning, stacklevel=3
        )
        value = new
    if not isinstance(value, str) or value not in ANSWER_MODES:
        raise ValueError(f"{where} must be one of {', '.join(ANSWER_MODES)}, not {value!r}")
    return value  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class KeyStep:
    """Press ``keys`` ``after`` seconds into the next gather."""

    keys: str
    after: float = 1.0

    def __post_init__(self) -> None:
        if not self.keys or any(k not in KEYS for k in self.keys):
            raise ValueError(f"keys must be telephone keys (0-9, * and #), not {self.keys!r}")
        if self.after < 0:
            raise ValueError("after must be zero or more seconds")


@dataclass(frozen=True, slots=True)
class Callee:
    """What a simulated phone does: answer (how, when), keys per gather, hang up."""

    answer: AnswerMode = "human"
    answer_after: float = 1.0
    keys: tuple[KeyStep, ...] = ()
    hang_up_after: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "answer", normalize_answer(self.answer))
        if self.answer_after < 0:
            raise ValueError("answer_after must be zero or more seconds")
        if self.hang_up_after is not None and self.hang_up_after < 0:
            raise ValueError("hang_up_after must be zero or more seconds")
        if self.answer == "held" and (self.keys or self.hang_up_after is not None):
            raise ValueError("a held phone takes no keys or hang_up_after: its person acts")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "callee") -> Callee:
        """Read a callee from a TOML table; errors name the field (``callees.X.keys[0]``)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{where} must be a table")
        unknown = set(data) - {"answer", "answer_after", "keys", "hang_up_after"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        steps: list[KeyStep] = []
        raw_keys = data.get("keys", [])
        if not isinstance(raw_keys, list):
            raise ValueError(f"{where}.keys must be a list of {{ press = '1', after = 2.0 }}")
        for index, step in enumerate(raw_keys):
            at = f"{where}.keys[{index}]"
            if isinstance(step, str):
                step = {"press": step}
            if not isinstance(step, Mapping) or not isinstance(step.get("press"), str):
                raise ValueError(f"{at} needs press = '<keys>'")
            after = step.get("after", 1.0)
            if isinstance(after, bool) or not isinstance(after, int | float):
                raise ValueError(f"{at}.after must be a number of seconds")
            try:
                steps.append(KeyStep(step["press"], float(after)))
            except ValueError as exc:
                raise ValueError(f"{at}: {exc}") from None
        try:
            return cls(
                answer=data.get("answer", "human"),
                answer_after=_seconds(data, "answer_after", 1.0, where),
                keys=tuple(steps),
                hang_up_after=_optional_seconds(data, "hang_up_after", where),
            )
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None


def _seconds(data: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}.{key} must be a number of seconds")
    return float(value)


def _optional_seconds(data: Mapping[str, Any], key: str, where: str) -> float | None:
    return None if data.get(key) is None else _seconds(data, key, 0.0, where)


@dataclass(frozen=True, slots=True)
class Action:
    kind: Literal["answer", "reject", "press", "hang_up"]
    key: str = ""
    how: AnswerMode = "human"


#: What a scripted callee does when the phone rings, by its answer mode (one shared,
#: immutable action each, rather than one per call).
_ON_RING: dict[str, Action] = {
    "human": Action("answer", how="human"),
    "machine": Action("answer", how="machine"),
    "unknown": Action("answer", how="unknown"),
    "busy": Action("reject"),
}
_HANG_UP = Action("hang_up")


class CalleeRun:
    """One callee's progress on one call: its script, and what a person did by hand."""

    __slots__ = ("_answer", "_by_hand", "_gather_seen", "_presses", "_step", "_steps", "callee")

    def __init__(self, callee: Callee) -> None:
        self.callee = callee
        #: What the callee does when the phone rings (asked on each change).
        self._answer: Action | None = _ON_RING.get(callee.answer)
        #: The next of the callee's ``keys`` steps, one per gather.
        self._step = 0
        self._steps = len(callee.keys)
        self._gather_seen: float | None = None
        #: The keys this gather's step presses, and when (the pressed ones dropped).
        self._presses: list[tuple[float, str]] | None = None
        #: Actions a person took (a test's phone, the dev phone), due in order.
        self._by_hand: deque[tuple[float, Action]] | None = None

    def by_hand(self, at: float, action: Action) -> None:
        """A person acts at ``at`` (after anything they did before)."""
        if self._by_hand is None:
            self._by_hand = deque()
        elif self._by_hand:
            at = max(at, self._by_hand[-1][0])
        self._by_hand.append((at, action))

    @property
    def hand_pending(self) -> int:
        return len(self._by_hand) if self._by_hand else 0

    def next_action(self, model: CallModel) -> tuple[float, Action] | None:
        """The callee's next action on ``model`` and when it is due (model time)."""
        phase = model.phase
        if phase is ENDED:
            return None
        callee = self.callee
        by_hand = self._by_hand[0] if self._by_hand else None
        if phase is RINGING:
            # no-answer: the ring timeout ends it; held: only by hand
            if self._answer is None:
                return by_hand
            scripted = (model.created_at + callee.answer_after, self._answer)
            return scripted if by_hand is None or scripted[0] < by_hand[0] else by_hand
        presses = self._presses
        hang_up_after = callee.hang_up_after
        if not presses and self._step == self._steps and hang_up_after is None:
            # The usual answered call: nothing scripted is left to come (no key step
            # under way or ahead, no hang-up), so a new gather would start nothing.
            return by_hand
        started = model.gather_started_at
        if started is not None and started != self._gather_seen:
            self._gather_seen = started
            self._presses = None
            steps = callee.keys
            if self._step < len(steps):
                step = steps[self._step]
                self._step += 1
                self._presses = [
                    (started + step.after + i * KEY_GAP, key) for i, key in enumerate(step.keys)
                ]
        presses = self._presses
        if not presses and hang_up_after is None:
            return by_hand  # the gather's step is done: nothing scripted to come
        candidates: list[tuple[float, Action]] = []
        if by_hand is not None:
            candidates.append(by_hand)
        if presses and model.gathering is not None:
            at, key = presses[0]
            candidates.append((at, Action("press", key)))
        if hang_up_after is not None and model.answered_at is not None:
            candidates.append((model.answered_at + hang_up_after, _HANG_UP))
        return _earliest(candidates)

    def apply(self, model: CallModel, action: Action, now: float) -> None:
        by_hand = self._by_hand
        if by_hand and by_hand[0][1] is action:
            by_hand.popleft()
            if not by_hand:
                self._by_hand = None  # nothing kept for a person who is done
        elif action.kind == "press":
            assert self._presses
            self._presses.pop(0)
        if action.kind == "answer":
            model.answer(now, machine=action.how == "machine", unsure=action.how == "unknown")
        elif action.kind == "reject":
            model.decline(now)
        elif action.kind == "press":
            model.press(action.key, now)
        else:
            model.caller_hangs_up(now)


def _earliest(candidates: list[tuple[float, Action]]) -> tuple[float, Action] | None:
    """The earliest of ``candidates`` (the first of equals), if any."""
    if len(candidates) < 2:
        return candidates[0] if candidates else None
    return min(candidates, key=_moment)


def _moment(candidate: tuple[float, Action]) -> float:
    return candidate[0]
