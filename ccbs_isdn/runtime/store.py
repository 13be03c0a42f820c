"""The request store: CC requests, their network ids and their history in SQLite.

This module owns the on-disk state of ccbsd: one SQLite file (WAL journal,
``synchronous=FULL`` so a committed step survives a power cut) with

* ``requests`` — the latest snapshot of every request (active and ended);
* ``network_ids`` — per request the controller and the ids the network gave it
  (CallLinkageID, CCBSReference, our CC handle), which are only unique per controller;
* ``history`` — append-only rows: time, trigger, old → new state, actor (SQLite
  triggers refuse UPDATE, and DELETE while the request is active);
* ``meta`` — the highest request id ever used (ids are never reused).

The schema is versioned with ``PRAGMA user_version`` and upgraded by the ordered
``MIGRATIONS`` when opened. ``save(changes)`` writes one engine step in one
transaction: the runtime calls it *before* executing the step's actions
(persist-then-act). Every sqlite3 failure leaves as ``StoreError`` with a code
(``store-full``, ``store-read-only``, ``store-busy``, ``store-corrupt``,
``store-too-new``, ``store-io``) so the daemon can refuse new requests and keep the
old ones running. It must not decide anything about requests (that is the engine's).
The calls are blocking and short; the runtime owns the thread/loop question.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from ccbs_isdn.engine.request import Changes, HistoryEntry, RequestRecord, Role
from ccbs_isdn.errors import StoreError
from ccbs_isdn.isdn import CcKind, RecallMode

#: MIGRATIONS[n] upgrades a database from user_version n to n + 1.
MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE requests (
        id          INTEGER PRIMARY KEY,
        role        TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        state       TEXT    NOT NULL,
        caller      TEXT    NOT NULL,
        target      TEXT    NOT NULL,
        created     REAL    NOT NULL,
        updated     REAL    NOT NULL,
        expires_at  REAL,
        deadline    REAL,
        timer       TEXT    NOT NULL DEFAULT '',
        reason      TEXT    NOT NULL DEFAULT '',
        a_port      TEXT,
        b_port      TEXT,
        recall_mode INTEGER NOT NULL DEFAULT 0,
        retention   INTEGER NOT NULL DEFAULT 0,
        bearer      BLOB    NOT NULL,
        calling     TEXT    NOT NULL DEFAULT '',
        attempt     INTEGER NOT NULL DEFAULT 0,
        missed      INTEGER NOT NULL DEFAULT 0,
        call_id     TEXT    NOT NULL DEFAULT '',
        ring_port   TEXT    NOT NULL DEFAULT '',
        ring_key    TEXT    NOT NULL DEFAULT '',
        b_answered  INTEGER NOT NULL DEFAULT 0,
        ended_at    REAL
    );
    CREATE INDEX requests_active ON requests(id) WHERE ended_at IS NULL;
    CREATE INDEX requests_caller ON requests(caller);
    CREATE TABLE network_ids (
        request_id  INTEGER PRIMARY KEY REFERENCES requests(id) ON DELETE CASCADE,
        ctrl        INTEGER NOT NULL,
        ptp         INTEGER NOT NULL DEFAULT 0,
        linkage_id  INTEGER,
        reference   INTEGER,
        handle      INTEGER
    );
    CREATE INDEX network_ids_reference ON network_ids(ctrl, reference);
    CREATE TABLE history (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id  INTEGER NOT NULL REFERENCES requests(id),
        at          REAL    NOT NULL,
        event       TEXT    NOT NULL,
        old_state   TEXT    NOT NULL,
        new_state   TEXT    NOT NULL,
        actor       TEXT    NOT NULL,
        detail      TEXT    NOT NULL DEFAULT ''
    );
    CREATE INDEX history_request ON history(request_id, seq);
    CREATE TRIGGER history_append_only BEFORE UPDATE ON history
    BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
    CREATE TRIGGER history_keep_active BEFORE DELETE ON history
    WHEN (SELECT ended_at FROM requests WHERE id = OLD.request_id) IS NULL
    BEGIN SELECT RAISE(ABORT, 'history of an active request cannot be deleted'); END;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

_REQUEST_COLUMNS: Final = (
    "id", "role", "kind", "state", "caller", "target", "created", "updated", "expires_at",
    "deadline", "timer", "reason", "a_port", "b_port", "recall_mode", "retention", "bearer",
    "calling", "attempt", "missed", "call_id", "ring_port", "ring_key", "b_answered",
    "ended_at",
)
_UPSERT_REQUEST: Final = (
    f"INSERT INTO requests ({', '.join(_REQUEST_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _REQUEST_COLUMNS)}) ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _REQUEST_COLUMNS[1:])
)
_UPSERT_NETWORK: Final = (
    "INSERT INTO network_ids (request_id, ctrl, ptp, linkage_id, reference, handle) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(request_id) DO UPDATE SET ctrl = excluded.ctrl, "
    "ptp = excluded.ptp, linkage_id = excluded.linkage_id, reference = excluded.reference, "
    "handle = excluded.handle"
)
_INSERT_HISTORY: Final = (
    "INSERT INTO history (request_id, at, event, old_state, new_state, actor, detail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_REQUESTS: Final = (
    "SELECT " + ", ".join(f"r.{c}" for c in _REQUEST_COLUMNS)
    + ", n.ctrl, n.ptp, n.linkage_id, n.reference, n.handle "
    "FROM requests r LEFT JOIN network_ids n ON n.request_id = r.id"
)

#: SQLite primary result code -> StoreError code.
_ERROR_CODES: Final = {
    "SQLITE_FULL": "store-full",
    "SQLITE_READONLY": "store-read-only",
    "SQLITE_BUSY": "store-busy",
    "SQLITE_LOCKED": "store-busy",
    "SQLITE_CORRUPT": "store-corrupt",
    "SQLITE_NOTADB": "store-corrupt",
    "SQLITE_CANTOPEN": "store-io",
    "SQLITE_IOERR": "store-io",
    "SQLITE_PERM": "store-read-only",
}


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """What ``RequestStore.list`` returns (None = any)."""

    active: bool | None = None
    caller: str | None = None
    target: str | None = None
    state: str | None = None
    role: Role | None = None
    limit: int | None = None


class RequestStore:
    """One SQLite database file. Use ``RequestStore.open(path)``."""

    def __init__(self, conn: sqlite3.Connection, path: str, read_only: bool) -> None:
        self._conn = conn
        self.path = path
        self.read_only = read_only

    # ------------------------------------------------------------------ open

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False,
             max_bytes: int | None = None, busy_timeout: float = 5.0) -> RequestStore:
        """Open (and create or upgrade) the store. ``read_only`` opens the file for
        reading only (``ccbsctl`` without a daemon); ``max_bytes`` caps the file size
        (writes beyond it fail as ``store-full``)."""
        name = str(path)
        with _mapped("open"):
            if read_only:
                uri = Path(name).absolute().as_uri() + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout,
                                       isolation_level=None)
            else:
                conn = sqlite3.connect(name, timeout=busy_timeout, isolation_level=None)
        store = cls(conn, name, read_only)
        try:
            with _mapped("open"):
                conn.execute("PRAGMA foreign_keys = ON")
                if not read_only:
                    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                    if str(mode).lower() != "wal":
                        raise StoreError(f"{name}: cannot switch to WAL journal ({mode})",
                                         code="store-io")
                conn.execute("PRAGMA synchronous = FULL")
                if max_bytes is not None:
                    page = conn.execute("PRAGMA page_size").fetchone()[0]
                    conn.execute(f"PRAGMA max_page_count = {max(1, max_bytes // page)}")
            store._migrate()
        except BaseException:
            conn.close()
            raise
        return store

    def _migrate(self) -> None:
        with _mapped("migrate"):
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}; this ccbsd knows up to "
                f"{SCHEMA_VERSION} (downgrade not supported)", code="store-too-new")
        if version == SCHEMA_VERSION:
            return
        if self.read_only:
            raise StoreError(f"{self.path} needs a schema upgrade; open it writable once",
                             code="store-read-only")
        for step in range(version, SCHEMA_VERSION):
            with _mapped("migrate"):
                # user_version lives in the database header: it commits with the DDL
                self._conn.executescript(
                    f"BEGIN IMMEDIATE;\n{MIGRATIONS[step]}\n"
                    f"PRAGMA user_version = {step + 1};\nCOMMIT;")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RequestStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with _mapped("schema_version"):
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # ----------------------------------------------------------------- write

    def save(self, changes: Changes) -> None:
        """Write one engine step (request snapshots + history rows) atomically."""
        if not changes:
            return
        requests = changes.requests
        with self._transaction("save"):
            self._conn.executemany(_UPSERT_REQUEST, [_request_row(r) for r in requests])
            network = [(r.id, r.ctrl, int(r.ptp), r.linkage_id, r.reference, r.handle)
                       for r in requests if r.ctrl is not None]
            if network:
                self._conn.executemany(_UPSERT_NETWORK, network)
            without = [(r.id,) for r in requests if r.ctrl is None]
            if without:
                self._conn.executemany("DELETE FROM network_ids WHERE request_id = ?", without)
            if changes.history:
                self._conn.executemany(_INSERT_HISTORY, [
                    (h.request_id, h.at, h.event, h.old_state, h.new_state, h.actor, h.detail)
                    for h in changes.history])
            if requests:
                top = max(r.id for r in requests)
                self._conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('last_id', ?) ON CONFLICT(key) "
                    "DO UPDATE SET value = max(CAST(value AS INTEGER), "
                    "CAST(excluded.value AS INTEGER))", (str(top),))

    def purge(self, ended_before: float) -> int:
        """Delete requests (and their history) that ended before ``ended_before``;
        returns how many. Active requests are never touched."""
        with self._transaction("purge"):
            ids = [row[0] for row in self._conn.execute(
                "SELECT id FROM requests WHERE ended_at IS NOT NULL AND ended_at < ?",
                (ended_before,))]
            self._conn.executemany("DELETE FROM history WHERE request_id = ?",
                                   [(i,) for i in ids])
            self._conn.executemany("DELETE FROM requests WHERE id = ?", [(i,) for i in ids])
        return len(ids)

    # ------------------------------------------------------------------ read

    def load_active(self) -> builtins.list[RequestRecord]:
        """Every request that has not ended, oldest first (for ``engine.restore``)."""
        return self._select("WHERE r.ended_at IS NULL ORDER BY r.id", ())

    def get(self, request_id: int) -> RequestRecord | None:
        found = self._select("WHERE r.id = ?", (request_id,))
        return found[0] if found else None

    def list(self, where: RequestFilter | None = None) -> builtins.list[RequestRecord]:
        where = where or RequestFilter()
        clauses: builtins.list[str] = []
        params: builtins.list[Any] = []
        if where.active is not None:
            clauses.append("r.ended_at IS NULL" if where.active else "r.ended_at IS NOT NULL")
        for column, value in (("caller", where.caller), ("target", where.target),
                              ("state", where.state),
                              ("role", where.role.value if where.role else None)):
            if value is not None:
                clauses.append(f"r.{column} = ?")
                params.append(value)
        sql = ("WHERE " + " AND ".join(clauses) + " " if clauses else "") + "ORDER BY r.id"
        if where.limit is not None:
            sql += " LIMIT ?"
            params.append(where.limit)
        return self._select(sql, tuple(params))

    def history(self, request_id: int) -> builtins.list[HistoryEntry]:
        with _mapped("history"):
            rows = self._conn.execute(
                "SELECT request_id, at, event, old_state, new_state, actor, detail "
                "FROM history WHERE request_id = ? ORDER BY seq", (request_id,)).fetchall()
        return [HistoryEntry(*row) for row in rows]

    def last_id(self) -> int:
        """The highest request id ever saved (pass to ``CcbsEngine(last_id=...)``)."""
        with _mapped("last_id"):
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'last_id'").fetchone()
            top = self._conn.execute("SELECT max(id) FROM requests").fetchone()[0]
        return max(int(row[0]) if row else 0, int(top or 0))

    # -------------------------------------------------------------- internal

    def _select(self, tail: str, params: Sequence[Any]) -> builtins.list[RequestRecord]:
        with _mapped("read"):
            rows = self._conn.execute(f"{_SELECT_REQUESTS} {tail}", params).fetchall()
        return [_record(row) for row in rows]

    @contextmanager
    def _transaction(self, what: str) -> Iterator[None]:
        with _mapped(what):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Turn every sqlite3 failure into a StoreError with a code a person can act on."""
    try:
        yield
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", "") or ""
        primary = name.split("_")[0:2]
        code = _ERROR_CODES.get("_".join(primary), "store-io")
        raise StoreError(f"request store: {what} failed: {exc}", code=code) from exc


def _request_row(r: RequestRecord) -> tuple[Any, ...]:
    return (
        r.id, r.role.value, r.kind.value, r.state, r.caller, r.target, r.created, r.updated,
        r.expires_at, r.deadline, r.timer, r.reason, r.a_port, r.b_port, r.recall_mode.value,
        int(r.retention), r.bearer, r.calling, r.attempt, r.missed, r.call_id, r.ring_port,
        r.ring_key, int(r.b_answered), r.ended_at,
    )


def _record(row: Sequence[Any]) -> RequestRecord:
    (rid, role, kind, state, caller, target, created, updated, expires_at, deadline, timer,
     reason, a_port, b_port, recall_mode, retention, bearer, calling, attempt, missed, call_id,
     ring_port, ring_key, b_answered, ended_at, ctrl, ptp, linkage_id, reference,
     handle) = row
    return RequestRecord(
        id=rid, role=Role(role), kind=CcKind(kind), state=state, caller=caller, target=target,
        created=created, updated=updated, expires_at=expires_at, deadline=deadline,
        timer=timer, reason=reason, a_port=a_port, b_port=b_port, ctrl=ctrl,
        ptp=bool(ptp), linkage_id=linkage_id, reference=reference, handle=handle,
        recall_mode=RecallMode(recall_mode), retention=bool(retention), bearer=bytes(bearer),
        calling=calling, attempt=attempt, missed=missed, call_id=call_id,
        ring_port=ring_port, ring_key=ring_key, b_answered=bool(b_answered),
        ended_at=ended_at,
    )


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "RequestFilter", "RequestStore"]
