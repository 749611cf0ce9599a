"""The table of live calls, kept on disk so a restarted process finds what it owned.

A call is written *before* its ``/makecall`` leaves, as an intent (the number, the
reference of the webhook token it carries, the moment it left); Kaphila's call id is
filled in when the answer comes, and the row goes when the call's result is recorded.
After a crash, the rows left are calls no flow is in charge of: the next runtime on the
same file hangs up those with a call id, and looks for the others in ``GET /calls``
(see ``_recovery``).

``CallStore`` is the first version of the protocol (call ids only, written after the
answer); a store that also has the ``IntentStore`` methods gets the intents. A store
written for the first version keeps working, without the crash safety of the window
between sending ``/makecall`` and its answer.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ._exceptions import ConfigurationError

__all__ = ["CallIntent", "CallStore", "IntentStore", "SqliteCallStore", "StoredCall"]


@dataclass(frozen=True, slots=True)
class StoredCall:
    """A call Kaphila placed for this runtime (it has a call id)."""

    call_id: str
    number: str
    started_at: float
    #: The reference of the webhook token the call was placed with (its intent's).
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class CallIntent:
    """A ``/makecall`` about to leave, written before it does: what was sent, and when.

    ``ref`` is the reference part of the call's webhook token (``<ref>.<secret>``, the
    last segment of the ``webhookUrl`` sent): unique per call. ``placed_at`` is the
    wall-clock moment the request left (epoch seconds).
    """

    ref: str
    number: str
    placed_at: float


class CallStore(Protocol):
    """Where a runtime keeps its live calls (``Runtime(store=...)``)."""

    def add(self, call: StoredCall) -> None: ...

    def remove(self, call_id: str) -> None: ...

    def leftovers(self) -> list[StoredCall]: ...

    def close(self) -> None: ...


@runtime_checkable
class IntentStore(CallStore, Protocol):
    """A ``CallStore`` that also records each ``/makecall`` before it leaves.

    ``add(StoredCall(..., ref=r))`` replaces the intent ``r`` with the placed call in
    one write, so a crash never finds neither.
    """

    def add_intent(self, intent: CallIntent) -> None: ...

    def remove_intent(self, ref: str) -> None: ...

    def intents(self) -> list[CallIntent]: ...


#: ``PRAGMA user_version`` of the current layout. Version 0 is the first release's
#: ``live_calls`` table (call ids only), migrated when such a file is opened.
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS placements (
    ref TEXT UNIQUE,
    call_id TEXT UNIQUE,
    number TEXT NOT NULL,
    placed_at REAL NOT NULL,
    CHECK (ref IS NOT NULL OR call_id IS NOT NULL)
)
"""


class SqliteCallStore:
    """``IntentStore`` in a SQLite file (WAL, one small table).

    Every write is its own transaction, committed before the method returns, so a
    process killed right after it (even with SIGKILL) leaves the row on disk.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot use {self.path} as the call store: {exc}") from None

    def _migrate(self) -> None:
        db = self._db
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"{self.path} was written by a newer kaphila_flow (store version {version}, "
                f"this one reads up to {SCHEMA_VERSION}): upgrade, or give a new file"
            )
        if version == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(_SCHEMA)
            old = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'live_calls'"
            ).fetchone()
            if old is not None:  # the first release's table: calls with ids only
                db.execute(
                    "INSERT OR IGNORE INTO placements (call_id, number, placed_at)"
                    " SELECT call_id, number, started_at FROM live_calls"
                )
                db.execute("DROP TABLE live_calls")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def __repr__(self) -> str:
        return f"<SqliteCallStore {self.path}>"

    def add_intent(self, intent: CallIntent) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO placements (ref, call_id, number, placed_at)"
            " VALUES (?, NULL, ?, ?)",
            (intent.ref, intent.number, intent.placed_at),
        )

    def add(self, call: StoredCall) -> None:
        if call.ref is not None:
            done = self._db.execute(
                "UPDATE placements SET call_id = ? WHERE ref = ?", (call.call_id, call.ref)
            )
            if done.rowcount:
                return
        self._db.execute(
            "INSERT OR REPLACE INTO placements (ref, call_id, number, placed_at)"
            " VALUES (?, ?, ?, ?)",
            (call.ref, call.call_id, call.number, call.started_at),
        )

    def remove(self, call_id: str) -> None:
        self._db.execute("DELETE FROM placements WHERE call_id = ?", (call_id,))

    def remove_intent(self, ref: str) -> None:
        self._db.execute("DELETE FROM placements WHERE ref = ?", (ref,))

    def leftovers(self) -> list[StoredCall]:
        rows = self._db.execute(
            "SELECT call_id, number, placed_at, ref FROM placements"
            " WHERE call_id IS NOT NULL ORDER BY rowid"
        ).fetchall()
        return [StoredCall(str(a), str(b), float(c), d) for a, b, c, d in rows]

    def intents(self) -> list[CallIntent]:
        rows = self._db.execute(
            "SELECT ref, number, placed_at FROM placements WHERE call_id IS NULL ORDER BY rowid"
        ).fetchall()
        return [CallIntent(str(a), str(b), float(c)) for a, b, c in rows]

    def close(self) -> None:
        self._db.close()
