"""Contacts for a campaign: from an iterable or a CSV file with a ``number`` column.

Each bad row gets its own message and the good rows still run. Numbers are read once,
here (``default_region`` for national ones, ``strict`` for the numbering-plan check),
and travel on as ``PhoneNumber`` values.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._exceptions import ConfigurationError, InvalidNumber
from ._numbers import check_region, normalize_number

__all__ = ["Contact", "ContactProblem", "load_contacts", "load_do_not_call"]


@dataclass(frozen=True, slots=True)
class Contact:
    """One number to call, and the other columns of its row (``call.data``)."""

    number: str  # a PhoneNumber: Kaphila's form, read once
    data: Mapping[str, Any] = field(default_factory=dict)
    row: int = 0  # the CSV file's line (1 is the header), or the position in an iterable


@dataclass(frozen=True, slots=True)
class ContactProblem:
    """A contact row that cannot be called, and why (``row 3: invalid phone number ...``)."""

    row: int
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


def _rows(source: str | Path | Iterable[Any]) -> tuple[list[tuple[int, Mapping[str, Any]]], str]:
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            handle = path.open(newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
        with handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None:
                raise ConfigurationError(
                    f"{path} is empty: it needs a header with a 'number' column"
                )
            if "number" not in [name.strip() for name in reader.fieldnames]:
                raise ConfigurationError(
                    f"{path} has no 'number' column (columns: {', '.join(reader.fieldnames)})"
                )
            # line_num is the file's own line (blank lines are skipped but counted).
            rows: list[tuple[int, Mapping[str, Any]]] = [
                (reader.line_num, {(k or "").strip(): v for k, v in row.items()}) for row in reader
            ]
        return rows, str(path)
    out: list[tuple[int, Mapping[str, Any]]] = []
    for index, item in enumerate(source, start=1):
        out.append((index, {"number": item} if isinstance(item, str) else item))
    return out, "contacts"


def load_contacts(
    source: str | Path | Iterable[Any],
    *,
    default_region: str | None = None,
    strict: bool = False,
) -> tuple[list[Contact], list[ContactProblem]]:
    """The valid contacts, in order, and a problem for every row that cannot be called.

    ``default_region`` reads national numbers (``(608) 927-0862`` with ``"US"``);
    ``strict`` refuses numbers not in use in their country's numbering plan.
    """
    region = check_region(default_region)
    rows, name = _rows(source)
    contacts: list[Contact] = []
    problems: list[ContactProblem] = []
    first_row: dict[str, int] = {}
    for row, data in rows:
        if not isinstance(data, Mapping):
            problems.append(ContactProblem(row, "not a number or a mapping with a 'number'"))
            continue
        raw = data.get("number")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            problems.append(ContactProblem(row, "no number"))
            continue
        try:
            number = normalize_number(
                raw if isinstance(raw, str) else str(raw), default_region=region, strict=strict
            )
        except InvalidNumber as exc:
            problems.append(ContactProblem(row, str(exc)))
            continue
        if number in first_row:
            problems.append(ContactProblem(row, f"duplicate of row {first_row[number]} ({number})"))
            continue
        first_row[number] = row
        extra = {k: v for k, v in data.items() if k != "number"}
        contacts.append(Contact(number, extra, row))
    if not rows:
        problems.append(ContactProblem(0, f"{name} has no contacts"))
    return contacts, problems


def load_do_not_call(
    source: str | Path | Iterable[str], *, default_region: str | None = None
) -> frozenset[str]:
    """Numbers never to call: a file of one number a line (``#`` comments), or numbers."""
    region = check_region(default_region)
    if isinstance(source, str | Path):
        try:
            lines = Path(source).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {source}: {exc.strerror}") from None
    else:
        lines = list(source)
    numbers = set()
    for index, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip().split(",", 1)[0].strip()
        if not text or text.lower() == "number":
            continue
        try:
            numbers.add(normalize_number(text, default_region=region))
        except InvalidNumber as exc:
            raise ConfigurationError(f"do-not-call list, line {index}: {exc}") from None
    return frozenset(numbers)
