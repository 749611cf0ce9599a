"""IVR building blocks on top of ``Call.gather``: menus, free entry, confirmation.

Retries are plain loops here, so their rules read in one place:

* a try is one gather; ``tries`` is how many gathers at most;
* silence (``""``) plays ``no_input`` and asks again, a wrong answer plays ``invalid``
  and asks again; each is spoken in front of the next prompt, in the same ``/gather``
  request, so a caller can barge in and each retry costs one request, not two;
* after the last try ``failure`` is spoken (its own ``/voice``) and ``MenuFailed`` raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from ._exceptions import MenuFailed
from ._model import KEYS

if TYPE_CHECKING:
    from ._call import Call

__all__ = ["ask", "confirm", "menu"]

T = TypeVar("T")

INVALID = "Sorry, that is not a valid choice."
NO_INPUT = "Sorry, I did not hear your choice."
FAILURE = "Sorry, we could not get your answer. Goodbye."


def _check_tries(tries: int) -> None:
    if isinstance(tries, bool) or not isinstance(tries, int) or tries < 1:
        raise ValueError(f"tries must be a whole number of at least 1, not {tries!r}")


def _join(*parts: str | None) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


async def menu(
    call: Call,
    prompt: str,
    options: Mapping[str, T],
    *,
    tries: int = 3,
    timeout: float = 5.0,
    invalid: str | None = INVALID,
    no_input: str | None = NO_INPUT,
    failure: str | None = FAILURE,
    reprompt: str | None = None,
) -> T:
    """Ask until the caller presses one of ``options``' keys; return its value.

    Barge-in: the prompt goes in the ``/gather`` itself. A wrong key plays ``invalid``,
    silence plays ``no_input``, each before the prompt (or ``reprompt``) again; after
    ``tries`` gathers, ``failure`` plays and ``MenuFailed`` is raised.
    """
    if not options:
        raise ValueError("a menu needs at least one option")
    for key in options:
        if not isinstance(key, str) or not key or any(k not in KEYS for k in key):
            raise ValueError(f"menu keys must be telephone keys such as '1' or '10', not {key!r}")
    _check_tries(tries)
    longest = max(len(key) for key in options)
    uneven = any(len(key) != longest for key in options)
    # Keys of different lengths ("1" and "10"): the caller ends a short one with '#'
    # or by pausing; either way the gather returns what was pressed.
    finish_on_key = "#" if uneven and "#" not in "".join(options) else None
    lead: str | None = None
    for attempt in range(tries):
        text = _join(lead, prompt if attempt == 0 else (reprompt or prompt))
        digits = await call.gather(
            text, num_digits=longest, timeout=timeout, finish_on_key=finish_on_key
        )
        if digits in options:
            return options[digits]
        lead = no_input if digits == "" else invalid
    if failure:
        await call.say(failure)
    raise MenuFailed(call.id, tries)


async def ask(
    call: Call,
    prompt: str,
    *,
    max_digits: int,
    finish_on_key: str | None = "#",
    validate: Callable[[str], bool] | None = None,
    tries: int = 3,
    timeout: float = 10.0,
    invalid: str | None = "Sorry, that entry is not valid.",
    no_input: str | None = "Sorry, I did not get your entry.",
    failure: str | None = FAILURE,
    reprompt: str | None = None,
    sensitive: bool = False,
) -> str:
    """Free entry (a PIN, an account number) with an optional validator and retries.

    ``sensitive=True`` keeps the keys out of logs, the transcript (masked) and
    exception messages.
    """
    _check_tries(tries)
    lead: str | None = None
    for attempt in range(tries):
        text = _join(lead, prompt if attempt == 0 else (reprompt or prompt))
        digits = await call.gather(
            text,
            num_digits=max_digits,
            timeout=timeout,
            finish_on_key=finish_on_key,
            sensitive=sensitive,
        )
        if digits and (validate is None or validate(digits)):
            return digits
        lead = no_input if digits == "" else invalid
    if failure:
        await call.say(failure)
    raise MenuFailed(call.id, tries, what="entry")


async def confirm(
    call: Call,
    prompt: str,
    *,
    yes: str = "1",
    no: str = "2",
    tries: int = 3,
    timeout: float = 5.0,
    invalid: str | None = INVALID,
    no_input: str | None = NO_INPUT,
    failure: str | None = FAILURE,
) -> bool:
    """A yes/no question on two keys; ``True`` for ``yes``."""
    if yes == no:
        raise ValueError("yes and no must be different keys")
    return await menu(
        call,
        prompt,
        {yes: True, no: False},
        tries=tries,
        timeout=timeout,
        invalid=invalid,
        no_input=no_input,
        failure=failure,
    )
