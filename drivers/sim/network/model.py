"""The records the simulated exchange keeps: accesses, subscribers, calls, CC records.

Owns plain data only (mutable ``@dataclass(eq=False)`` records, compared by identity,
and frozen public *views* handed out for introspection). All behaviour lives in
``drivers/sim/exchange.py``; nothing here sends a message or arms a timer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ccbs_isdn.isdn import CcKind, RecallMode

from ..q931 import Deliver
from .timers import Timer

# ------------------------------------------------------------------------ parties


@dataclass(eq=False)
class Access:
    """One BRI access (D channel) of ours: the card's controller attaches to it."""

    access_id: str
    msns: tuple[str, ...]
    ptp: bool
    ccbs: bool
    ccnr: bool
    recall_mode: RecallMode
    max_requests: int
    channels: int
    deliver: Deliver | None = None
    # fault injection
    lose_next: int = 0
    ignore_status_answers: bool = False
    refuse_error: str | None = None
    # per-access allocators (EN 300 359-1: ids are only unique per access)
    last_linkage: int = 0
    last_reference: int = 0
    last_invoke: int = 0
    last_cr: int = 0x3F


@dataclass(eq=False)
class Subscriber:
    """An external subscriber somewhere behind the public network."""

    number: str
    busy: bool
    answers: bool
    answer_delay: float
    ccbs: bool
    max_queue: int | None
    refuse_error: str | None = None


# -------------------------------------------------------------------------- calls


class LegState(enum.Enum):
    """Network view of one call reference on an access (Q.931 clearing simplified)."""

    ACTIVE = "active"  # not clearing (setup, alerting, active)
    DISCONNECT_SENT = "disconnect-sent"  # T305 running
    RELEASE_SENT = "release-sent"  # T308 running
    GONE = "gone"


class CallPhase(enum.Enum):
    ROUTING = "routing"
    ALERTING = "alerting"
    ACTIVE = "active"
    ENDED = "ended"


@dataclass(eq=False)
class Leg:
    """The signalling of one call (or one CCBS-T connection) on one access.

    ``user_opened`` tells who chose the call reference: the user (SETUP/REGISTER from
    the access) or the network (SETUP toward the access).
    """

    access_id: str
    cr: int
    user_opened: bool
    call: Call | None = None
    record: CcRecord | None = None  # CCBS-T signalling connection (REGISTER)
    state: LegState = LegState.ACTIVE
    timer: Timer | None = None
    release_tries: int = 0
    cause: int | None = None


@dataclass(eq=False)
class Call:
    """One basic call through the exchange between two parties.

    A party is either a leg on one of our accesses or an external subscriber's number.
    """

    call_id: str
    calling: str
    called: str
    bearer: bytes
    started: float
    a_leg: Leg | None = None
    a_external: str | None = None
    b_leg: Leg | None = None
    b_external: str | None = None
    b_access: str | None = None  # access owning the called MSN
    phase: CallPhase = CallPhase.ROUTING
    linkage: Linkage | None = None
    recall: CcRecord | None = None
    auto_cc: bool = False  # an external caller requests CC on its own when B fails
    a_engaged: bool = False  # the call counts toward A's / B's "in a call" state
    b_engaged: bool = False
    t_answer: Timer | None = None
    t301: Timer | None = None
    end_cause: int | None = None


# ------------------------------------------------------------------------------ CC


@dataclass(eq=False)
class Linkage:
    """A retained failed call (EN 300 359-1: CallLinkageID, T-RETENTION).

    On a point-to-point access there is no id (CCBS-T-Available carries none): the
    retained call is found again by destination number and bearer.
    """

    access_id: str
    linkage_id: int | None
    kind: CcKind
    a_number: str
    b_number: str
    bearer: bytes
    created: float
    call: Call | None = None
    t_retention: Timer | None = None


class CcState(enum.Enum):
    """Network-side (agent) states of an activated request, after libpri's PTMP agent."""

    ACTIVATED = "activated"  # queued at B, waiting for B to become free
    B_AVAILABLE = "b-available"  # B free; CCBSStatusRequest out, T-CCBS1 running
    SUSPENDED = "suspended"  # B free but A busy (CCBSBFree sent / CCBS-T-Suspend)
    WAIT_CALLBACK = "wait-callback"  # RemoteUserFree sent, T-CCBS3 running
    CALLBACK = "callback"  # recall accepted, recall call under way


#: States in which a request holds B (the B side serves one request at a time).
HOLDING_B = frozenset({CcState.B_AVAILABLE, CcState.WAIT_CALLBACK, CcState.CALLBACK})

_S = CcState
#: Every state change the network side may make (libpri PTMP agent, etsi-ccbs.md §6,
#: plus CCBS-T §5.7 and external served users). Ending a request is allowed from any
#: state and is not a transition. The exchange checks each change against this table.
CC_TRANSITIONS: dict[CcState, frozenset[CcState]] = {
    # B free: ask A (PTMP), tell A (CCBS-T, or A known free), recall for an external
    # A or hold an external A that is busy; a CCBS-T recall may come from any state
    _S.ACTIVATED: frozenset({_S.B_AVAILABLE, _S.WAIT_CALLBACK, _S.SUSPENDED, _S.CALLBACK}),
    # A free → RemoteUserFree; only busy answers → BFree; B busy again → back
    _S.B_AVAILABLE: frozenset({_S.WAIT_CALLBACK, _S.SUSPENDED, _S.ACTIVATED}),
    # A free again (status answer, CCBS-T-Resume, external A idle); CCBS-T recall
    _S.SUSPENDED: frozenset({_S.ACTIVATED, _S.CALLBACK}),
    # CCBSCall / CCBS-T-Call accepted; CCBS-T-Suspend while the recall is awaited
    _S.WAIT_CALLBACK: frozenset({_S.CALLBACK, _S.SUSPENDED}),
    # the recall met busy and the request is retained
    _S.CALLBACK: frozenset({_S.ACTIVATED}),
}


@dataclass(eq=False)
class CcRecord:
    """One activated CCBS/CCNR request as the network keeps it.

    ``a_access`` None means served user A is an external subscriber (a CCBS request
    from the public network toward one of our MSNs).
    """

    key: int
    kind: CcKind
    a_access: str | None
    a_number: str
    b_number: str
    bearer: bytes
    reference: int | None
    recall_mode: RecallMode
    ptp: bool
    created: float
    state: CcState = CcState.ACTIVATED
    retention: bool = False
    conn: Leg | None = None
    t_service: Timer | None = None
    t_ccbs1: Timer | None = None
    t_ccbs3: Timer | None = None
    status_invoke: int | None = None
    silences: int = 0
    busy_answers: int = 0
    b_was_busy: bool = False
    a_known_free: bool = False  # A just answered "free": no need to ask again
    recall_call: Call | None = None
    ended: bool = False


@dataclass(eq=False)
class PendingInvoke:
    """A network invoke that expects answers (CCBSStatusRequest, StatusRequest)."""

    access_id: str
    invoke_id: int
    operation: str
    record: CcRecord | None = None
    msn: str | None = None
    answers: list[object] = field(default_factory=list)
    open: bool = True  # False: the wait is over; late answers are ignored quietly


@dataclass(eq=False)
class DestinationWatch:
    """The network watching one of our MSNs as user B (ETS 300 196-1 annex D)."""

    msn: str
    access_id: str
    status: str = "unknown"  # free | busy | unknown
    poll_timer: Timer | None = None
    pending: PendingInvoke | None = None
    answer_timer: Timer | None = None


# ------------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class CcRecordView:
    """Read-only snapshot of one network CC record (``SimExchange.cc_records``)."""

    access_id: str | None
    kind: CcKind
    reference: int | None
    state: str
    a_number: str
    b_number: str
    bearer: bytes
    recall_mode: RecallMode
    ptp: bool
    retention: bool
    created: float


@dataclass(frozen=True, slots=True)
class LinkageView:
    access_id: str
    linkage_id: int | None
    kind: CcKind
    a_number: str
    b_number: str
    retained: bool  # T-RETENTION running (the failed call is cleared)


@dataclass(frozen=True, slots=True)
class CallView:
    call_id: str
    calling: str
    called: str
    phase: str
    a: str  # "access:cr" or "ext:number"
    b: str
    recall: bool


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of the exchange's event log (``SimExchange.log``)."""

    time: float
    access_id: str | None
    text: str

    def __str__(self) -> str:
        where = self.access_id or "-"
        return f"[{self.time:10.3f}] {where:>8} {self.text}"
