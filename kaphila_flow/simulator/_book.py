"""The simulator's TOML file: accounts, callees by number, speed."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._callees import Callee
from .._exceptions import ConfigurationError
from .._numbers import normalize_number
from .._provider import Account
from ._core import INSTANT, Simulator

__all__ = ["load_simulator", "simulator_from_mapping"]

EXAMPLE = """\
speed = 1.0                      # or "instant"

[accounts.ak_simulator]
credits = 100
caller_ids = ["16085550100"]
rate_limit = 100

[callees.default]
answer = "human"
answer_after = 1.0

[callees."16089270862"]
answer = "human"
keys = [{ press = "1", after = 2.0 }]

[callees."16085550150"]
answer = "machine"

[callees."16085550160"]
answer = "no-answer"
"""


def _speed(value: Any) -> float:
    if value == "instant":
        return INSTANT
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f'speed must be a positive number or "instant", not {value!r}')
    return float(value)


def _account(key: str, data: Any) -> Account:
    where = f"accounts.{key}"
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{where} must be a table")
    unknown = set(data) - {"credits", "caller_ids", "rate_limit"}
    if unknown:
        raise ConfigurationError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    caller_ids = data.get("caller_ids", [])
    if not isinstance(caller_ids, list) or not all(isinstance(c, str) for c in caller_ids):
        raise ConfigurationError(f"{where}.caller_ids must be a list of numbers as strings")
    credits = data.get("credits", 100)
    rate_limit = data.get("rate_limit", 100)
    for name, value in (("credits", credits), ("rate_limit", rate_limit)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigurationError(f"{where}.{name} must be a whole number")
    try:
        return Account(
            credits=credits,
            caller_ids=tuple(normalize_number(c) for c in caller_ids),
            rate_limit=rate_limit,
        )
    except ValueError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def simulator_from_mapping(
    data: Mapping[str, Any],
    *,
    speed: float | None = None,
    default_callee: Callee | None = None,
) -> Simulator:
    """A simulator from a parsed ``callees.toml``; ``default_callee`` stands for
    ``[callees.default]`` when the file has none."""
    unknown = set(data) - {"speed", "accounts", "callees"}
    if unknown:
        raise ConfigurationError(f"unknown setting(s) {', '.join(sorted(unknown))}")
    accounts_table = data.get("accounts", {})
    callees_table = data.get("callees", {})
    if not isinstance(accounts_table, Mapping) or not isinstance(callees_table, Mapping):
        raise ConfigurationError("accounts and callees must be tables")
    accounts = {key: _account(key, value) for key, value in accounts_table.items()} or None
    callees: dict[str, Callee] = {}
    default = default_callee
    for number, table in callees_table.items():
        where = f'callees."{number}"'
        try:
            callee = Callee.from_mapping(table, where=where)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        if number == "default":
            default = callee
            continue
        try:
            callees[normalize_number(number)] = callee
        except ValueError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
    return Simulator(
        accounts=accounts,
        callees=callees,
        default_callee=default,
        speed=speed if speed is not None else _speed(data.get("speed", 1.0)),
    )


def load_simulator(
    path: str | Path, *, speed: float | None = None, default_callee: Callee | None = None
) -> Simulator:
    """A simulator configured by a TOML file (see ``EXAMPLE``); ``default_callee``
    answers numbers the file does not list when it has no ``[callees.default]``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
    return simulator_from_mapping(data, speed=speed, default_callee=default_callee)
