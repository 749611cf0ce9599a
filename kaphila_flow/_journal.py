"""The campaign journal: every attempt written before it is placed, every outcome after.

SQLite, so a campaign that is stopped or crashes picks up where it was: completed
numbers are never called again, and an attempt whose call may still be live is looked
up (``GET /calls``) instead of being placed a second time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._contacts import Contact
from ._exceptions import ConfigurationError

__all__ = ["ContactState", "Journal", "OpenAttempt"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    number TEXT PRIMARY KEY, row INTEGER, data TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    final_status TEXT, next_at REAL NOT NULL DEFAULT 0, amd TEXT, duration REAL,
    value TEXT, error TEXT
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, number TEXT NOT NULL, attempt INTEGER NOT NULL,
    call_id TEXT, started_at REAL NOT NULL, outcome TEXT, detail TEXT
);
"""


@dataclass(slots=True)
class ContactState:
    contact: Contact
    state: str = "pending"  # pending | waiting | done
    attempts: int = 0
    final_status: str | None = None
    next_at: float = 0.0
    amd: str | None = None
    duration: float | None = None
    value: Any = None
    error: str | None = None
    in_flight: bool = False


@dataclass(frozen=True, slots=True)
class OpenAttempt:
    attempt_id: int
    number: str
    call_id: str | None
    #: When the attempt began (epoch seconds), just before its ``/makecall``.
    started_at: float = 0.0


class Journal:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        try:
            self._db = sqlite3.connect(
                ":memory:" if path is None else str(path),
                isolation_level=None,
                check_same_thread=False,
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot use {path} as a campaign journal: {exc}") from None

    def __repr__(self) -> str:
        return f"<Journal {self.path or 'in memory'}>"

    def close(self) -> None:
        self._db.close()

    def load(self, contacts: Iterable[Contact]) -> list[ContactState]:
        """The state of every contact: new ones are added, known ones resumed."""
        states = []
        for contact in contacts:
            self._db.execute(
                "INSERT OR IGNORE INTO contacts (number, row, data) VALUES (?, ?, ?)",
                (contact.number, contact.row, json.dumps(dict(contact.data), default=str)),
            )
            row = self._db.execute(
                "SELECT state, attempts, final_status, next_at, amd, duration, value, error"
                " FROM contacts WHERE number = ?",
                (contact.number,),
            ).fetchone()
            state, attempts, final, next_at, amd, duration, value, error = row
            states.append(
                ContactState(
                    contact,
                    state=state,
                    attempts=attempts,
                    final_status=final,
                    next_at=next_at,
                    amd=amd,
                    duration=duration,
                    value=json.loads(value) if value is not None else None,
                    error=error,
                )
            )
        return states

    def save(self, state: ContactState) -> None:
        self._db.execute(
            "UPDATE contacts SET state=?, attempts=?, final_status=?, next_at=?, amd=?,"
            " duration=?, value=?, error=? WHERE number=?",
            (
                state.state,
                state.attempts,
                state.final_status,
                state.next_at,
                state.amd,
                state.duration,
                json.dumps(state.value, default=str) if state.value is not None else None,
                state.error,
                state.contact.number,
            ),
        )

    def begin_attempt(self, number: str, attempt: int, at: float) -> int:
        cursor = self._db.execute(
            "INSERT INTO attempts (number, attempt, started_at) VALUES (?, ?, ?)",
            (number, attempt, at),
        )
        self._db.execute("UPDATE contacts SET attempts = ? WHERE number = ?", (attempt, number))
        return int(cursor.lastrowid or 0)

    def placed(self, attempt_id: int, call_id: str | None) -> None:
        self._db.execute("UPDATE attempts SET call_id = ? WHERE id = ?", (call_id, attempt_id))

    def finish_attempt(self, attempt_id: int, outcome: str, detail: str | None = None) -> None:
        self._db.execute(
            "UPDATE attempts SET outcome = ?, detail = ? WHERE id = ?",
            (outcome, detail, attempt_id),
        )

    def open_attempts(self) -> list[OpenAttempt]:
        rows = self._db.execute(
            "SELECT id, number, call_id, started_at FROM attempts WHERE outcome IS NULL ORDER BY id"
        ).fetchall()
        return [OpenAttempt(int(a), str(b), c, float(d)) for a, b, c, d in rows]

    def attempts_for(self, number: str) -> list[tuple[int, str | None, str | None]]:
        rows = self._db.execute(
            "SELECT attempt, call_id, outcome FROM attempts WHERE number = ? ORDER BY id", (number,)
        ).fetchall()
        return [(int(a), b, c) for a, b, c in rows]
