"""The table of live calls, kept on disk so a restarted process finds what it owned.

A call is written when Kaphila gives its id and removed when its result is recorded.
After a crash, the rows left are calls no flow is in charge of: the next runtime on the
same file hangs them up (optionally after a short apology) and reports them as failed.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ._exceptions import ConfigurationError

__all__ = ["CallStore", "SqliteCallStore", "StoredCall"]


@dataclass(frozen=True, slots=True)
class StoredCall:
    call_id: str
    number: str
    started_at: float


class CallStore(Protocol):
    def add(self, call: StoredCall) -> None: ...

    def remove(self, call_id: str) -> None: ...

    def leftovers(self) -> list[StoredCall]: ...

    def close(self) -> None: ...


class SqliteCallStore:
    """``CallStore`` in a SQLite file (WAL, one small table)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS live_calls ("
                " call_id TEXT PRIMARY KEY, number TEXT NOT NULL, started_at REAL NOT NULL)"
            )
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot use {self.path} as the call store: {exc}") from None

    def __repr__(self) -> str:
        return f"<SqliteCallStore {self.path}>"

    def add(self, call: StoredCall) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO live_calls VALUES (?, ?, ?)",
            (call.call_id, call.number, call.started_at),
        )

    def remove(self, call_id: str) -> None:
        self._db.execute("DELETE FROM live_calls WHERE call_id = ?", (call_id,))

    def leftovers(self) -> list[StoredCall]:
        rows = self._db.execute("SELECT call_id, number, started_at FROM live_calls").fetchall()
        return [StoredCall(str(a), str(b), float(c)) for a, b, c in rows]

    def close(self) -> None:
        self._db.close()
