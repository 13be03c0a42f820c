"""CC request records: the engine's live record, its persisted snapshot, history rows.

This module owns the *shape* of a request — the fields the engine keeps per request
and the store persists — and nothing else: no state rules (``machine.py``), no
decisions (``engine.py``), no I/O.

* ``CcRequest`` is the live, mutable record (``@dataclass(slots=True, eq=False)``:
  compact, identity-compared). Idle requests are only these records; the transition
  machinery is bound to one of them only while an event is processed (see
  ``engine.py`` and ``bench/engine.py`` for why).
* ``RequestRecord`` is the frozen snapshot: what ``take_changes()`` hands to the
  store, what ``Notify`` carries and what queries return. ``RequestRecord`` and
  ``CcRequest`` have the same fields (a test keeps them in step).
* ``HistoryEntry`` is one append-only history row: time, trigger, old → new state,
  actor.

Network identifiers (CallLinkageID, CCBSReference, our CC handle) are only unique
per controller (EN 300 359-1): they are always kept together with ``ctrl``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields

from ccbs_isdn.isdn import BEARER_SPEECH, CcKind, RecallMode


class Role(enum.Enum):
    """Which rulebook a request follows (``machine.py`` has one table per role)."""

    MONITOR = "monitor"  # user A toward the ISDN network (EN 300 359-1 user side)
    LOCAL = "local"  # A and B are our own FXS ports: we are the network
    REDIAL = "redial"  # fallback: watch an external B by redialling


@dataclass(slots=True, eq=False)
class CcRequest:
    """The live record of one request (mutated only by the engine)."""

    id: int
    role: Role
    kind: CcKind
    state: str
    caller: str  # A's extension
    target: str  # B: an extension (local) or the number A dialled (external)
    created: float
    updated: float
    expires_at: float | None = None  # lifetime / local supervision (T-CCBS2, T-CCNR2 ...)
    deadline: float | None = None  # the state timer
    timer: str = ""  # trigger fired when ``deadline`` passes
    reason: str = ""  # why it ended, or why it is suspended
    a_port: str | None = None
    b_port: str | None = None
    ctrl: int | None = None
    ptp: bool = False
    linkage_id: int | None = None  # CallLinkageID (PTMP, before activation)
    reference: int | None = None  # CCBSReference (PTMP, after activation)
    handle: int | None = None  # our tag of the CC operation / the CCBS-T connection
    recall_mode: RecallMode = RecallMode.GLOBAL
    retention: bool = False  # CCBS-T retentionSupported
    bearer: bytes = BEARER_SPEECH  # BC/HLC/LLC of the original call, replayed exactly
    calling: str = ""  # A's number toward the network (MSN)
    attempt: int = 0  # recall/probe attempt counter: makes ring keys and call ids unique
    missed: int = 0  # recalls A (or B) did not answer
    call_id: str = ""  # the recall / probe call, or A's own call to B being watched
    ring_port: str = ""  # the port the engine is ringing for this request
    ring_key: str = ""
    b_answered: bool = False  # redial: B answered the probe before A did
    ended_at: float | None = None

    def snapshot(self) -> RequestRecord:
        return RequestRecord(*(getattr(self, name) for name in _FIELD_NAMES))

    @classmethod
    def from_record(cls, record: RequestRecord) -> CcRequest:
        return cls(*(getattr(record, name) for name in _FIELD_NAMES))


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """Immutable snapshot of a ``CcRequest`` (same fields, same order)."""

    id: int
    role: Role
    kind: CcKind
    state: str
    caller: str
    target: str
    created: float
    updated: float
    expires_at: float | None = None
    deadline: float | None = None
    timer: str = ""
    reason: str = ""
    a_port: str | None = None
    b_port: str | None = None
    ctrl: int | None = None
    ptp: bool = False
    linkage_id: int | None = None
    reference: int | None = None
    handle: int | None = None
    recall_mode: RecallMode = RecallMode.GLOBAL
    retention: bool = False
    bearer: bytes = BEARER_SPEECH
    calling: str = ""
    attempt: int = 0
    missed: int = 0
    call_id: str = ""
    ring_port: str = ""
    ring_key: str = ""
    b_answered: bool = False
    ended_at: float | None = None

    @property
    def active(self) -> bool:
        return self.ended_at is None


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(CcRequest))


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One row of a request's append-only history."""

    request_id: int
    at: float
    event: str  # the trigger (``remote_user_free``, ``t_activate`` ...)
    old_state: str
    new_state: str
    actor: str  # ``network``, ``line``, ``timer``, ``restore`` or who asked (uid, port)
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed since the last ``take_changes()``: commit it before acting."""

    requests: tuple[RequestRecord, ...] = ()
    history: tuple[HistoryEntry, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.requests or self.history)


__all__ = ["CcRequest", "Changes", "HistoryEntry", "RequestRecord", "Role"]
