"""The SQLite request store: schema, round trips, append-only history, failure mapping.

Real SQLite files under tmp_path; no mocks.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccbs_isdn.engine import (
    Activate,
    CallFailed,
    Changes,
    Dialled,
    HistoryEntry,
    RequestRecord,
    Role,
)
from ccbs_isdn.errors import StoreError
from ccbs_isdn.isdn import CcAvailable, CcKind, CcRequestResult, ControllerUp, RecallMode
from ccbs_isdn.isdn import CcRequest as NetCcRequest
from ccbs_isdn.runtime.store import SCHEMA_VERSION, RequestFilter, RequestStore
from tests.engine.harness import Box, only


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ccbs.sqlite"


def record(rid: int, **kw: object) -> RequestRecord:
    base: dict[str, object] = dict(id=rid, role=Role.LOCAL, kind=CcKind.CCBS, state="Waiting",
                                   caller="21", target="22", created=1.0, updated=1.0)
    base.update(kw)
    return RequestRecord(**base)  # type: ignore[arg-type]


def changes(*records: RequestRecord, history: tuple[HistoryEntry, ...] = ()) -> Changes:
    return Changes(requests=records, history=history or tuple(
        HistoryEntry(r.id, r.updated, "test", "", r.state, "test") for r in records))


def engine_with_requests() -> Box:
    """A local request (21 -> 22) and an activated ETSI request (23 -> external)."""
    box = Box()
    box.lines.hook["p22"] = True
    box.start()
    box.send(CallFailed("21", "22", 17))
    box.send(Activate("21"))
    box.send(ControllerUp(1))
    box.send(Dialled("23", "0301234", "c1", ctrl=1))
    box.send(CcAvailable(1, call_id="c1", kind=CcKind.CCNR, linkage_id=9, called="0301234",
                         calling="5551023"))
    request = only(box.of(NetCcRequest, box.send(Activate("23"))))
    box.send(CcRequestResult(1, handle=request.handle, reference=77,
                             recall_mode=RecallMode.SPECIFIC))
    return box


def test_new_store_is_wal_full_sync_and_current_schema(db: Path) -> None:
    with RequestStore.open(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.load_active() == [] and store.last_id() == 0


def test_engine_changes_round_trip_with_network_ids_and_history(db: Path) -> None:
    box = engine_with_requests()
    with RequestStore.open(db) as store:
        for step in box.changes:
            store.save(step)
    with RequestStore.open(db) as store:  # a fresh process would see the same
        active = store.load_active()
        assert active == [box.engine.get(1), box.engine.get(2)]
        etsi = store.get(2)
        assert etsi is not None
        assert (etsi.ctrl, etsi.reference, etsi.linkage_id, etsi.kind, etsi.recall_mode) == (
            1, 77, None, CcKind.CCNR, RecallMode.SPECIFIC)
        row = store._conn.execute(
            "SELECT ctrl, reference, handle FROM network_ids WHERE request_id = 2").fetchone()
        assert row == (1, 77, etsi.handle)
        assert [h.new_state for h in store.history(2)] == ["Available", "Requested", "Activated"]
        assert store.history(2) == [h for h in box.history if h.request_id == 2]
        assert store.last_id() == 2


@given(st.builds(
    record,
    rid=st.integers(1, 2**40),
    role=st.sampled_from(list(Role)),
    kind=st.sampled_from(list(CcKind)),
    state=st.text(min_size=1, max_size=20),
    caller=st.text(max_size=30), target=st.text(max_size=30),
    created=st.floats(0, 4e9), updated=st.floats(0, 4e9),
    expires_at=st.none() | st.floats(0, 4e9), deadline=st.none() | st.floats(0, 4e9),
    timer=st.text(max_size=10), reason=st.text(max_size=40),
    a_port=st.none() | st.text(max_size=10), b_port=st.none() | st.text(max_size=10),
    ctrl=st.none() | st.integers(1, 127), ptp=st.booleans(),
    linkage_id=st.none() | st.integers(0, 127), reference=st.none() | st.integers(0, 127),
    handle=st.none() | st.integers(0, 2**31), recall_mode=st.sampled_from(list(RecallMode)),
    retention=st.booleans(), bearer=st.binary(max_size=40), calling=st.text(max_size=20),
    attempt=st.integers(0, 10**6), missed=st.integers(0, 100), call_id=st.text(max_size=20),
    ring_port=st.text(max_size=10), ring_key=st.text(max_size=12), b_answered=st.booleans(),
    ended_at=st.none() | st.floats(0, 4e9),
))
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_record_round_trips_exactly(db: Path, rec: RequestRecord) -> None:
    with RequestStore.open(db) as store:
        store.save(changes(rec))
        loaded = store.get(rec.id)
    expected = rec
    if rec.ctrl is None:  # network ids are stored only with a controller
        expected = record(rec.id, **{f: getattr(rec, f) for f in rec.__slots__
                                     if f not in ("id", "linkage_id", "reference", "handle",
                                                  "ptp")})
    assert loaded == expected


def test_history_is_append_only(db: Path) -> None:
    with RequestStore.open(db) as store:
        store.save(changes(record(1)))
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE history SET event = 'forged'")
    with pytest.raises(sqlite3.DatabaseError, match="active request"):
        conn.execute("DELETE FROM history")
    conn.close()


def test_purge_removes_only_old_ended_requests_and_ids_are_never_reused(db: Path) -> None:
    with RequestStore.open(db) as store:
        store.save(changes(record(1, ended_at=100.0, state="Completed"), record(2),
                           record(3, ended_at=500.0, state="Expired")))
        assert store.purge(ended_before=400.0) == 1
        assert store.get(1) is None and store.history(1) == []
        assert store.get(2) is not None and store.get(3) is not None
        assert store.purge(ended_before=1e9) == 1
        assert [r.id for r in store.list()] == [2]
        assert store.last_id() == 3  # id 3 is gone but must not be handed out again


def test_list_filters(db: Path) -> None:
    with RequestStore.open(db) as store:
        store.save(changes(record(1), record(2, caller="23", state="Guard"),
                           record(3, role=Role.MONITOR, ctrl=1, ended_at=9.0, state="Failed"),
                           record(4, target="24")))
        assert [r.id for r in store.list(RequestFilter(active=True))] == [1, 2, 4]
        assert [r.id for r in store.list(RequestFilter(active=False))] == [3]
        assert [r.id for r in store.list(RequestFilter(caller="23"))] == [2]
        assert [r.id for r in store.list(RequestFilter(target="24"))] == [4]
        assert [r.id for r in store.list(RequestFilter(state="Guard"))] == [2]
        assert [r.id for r in store.list(RequestFilter(role=Role.MONITOR))] == [3]
        assert [r.id for r in store.list(RequestFilter(limit=2))] == [1, 2]


def test_a_failing_save_writes_nothing(db: Path) -> None:
    with RequestStore.open(db) as store:
        orphan = HistoryEntry(999, 1.0, "x", "", "Waiting", "t")
        with pytest.raises(StoreError):
            store.save(changes(record(1), history=(orphan,)))
        assert store.get(1) is None and store.last_id() == 0
        store.save(changes(record(1)))  # the store still works afterwards
        assert store.get(1) is not None


def test_read_only_store_reads_and_refuses_writes_with_a_clear_error(db: Path) -> None:
    with RequestStore.open(db) as store:
        store.save(changes(record(1)))
    with RequestStore.open(db, read_only=True) as store:
        assert [r.id for r in store.load_active()] == [1]
        with pytest.raises(StoreError) as err:
            store.save(changes(record(2)))
        assert err.value.code == "store-read-only"


def test_disk_full_is_a_store_error_and_keeps_what_was_committed(db: Path) -> None:
    with RequestStore.open(db, max_bytes=64 * 1024) as store:
        store.save(changes(record(1)))
        with pytest.raises(StoreError) as err:
            for rid in range(2, 5000):
                store.save(changes(record(rid, reason="x" * 500)))
        assert err.value.code == "store-full"
        assert "full" in str(err.value)
        assert store.get(1) is not None
        assert len(store.load_active()) == store.last_id()  # no half-written step


def test_newer_schema_is_refused(db: Path) -> None:
    RequestStore.open(db).close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError) as err:
        RequestStore.open(db)
    assert err.value.code == "store-too-new"


def test_existing_empty_database_is_migrated(db: Path) -> None:
    sqlite3.connect(db).close()  # version 0, no tables
    with RequestStore.open(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.save(changes(record(1)))


def test_garbage_file_is_reported_as_corrupt(db: Path) -> None:
    db.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError) as err:
        RequestStore.open(db)
    assert err.value.code == "store-corrupt"


def test_missing_directory_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as err:
        RequestStore.open(tmp_path / "no" / "such" / "dir" / "x.sqlite")
    assert err.value.code == "store-io"
