"""The simulated public exchange: basic calls and the ETSI network side of CCBS/CCNR.

``SimExchange`` models the public network behind N BRI accesses of ours plus any number
of external subscribers. It owns:

* basic call control toward each access (Q.931: SETUP, CALL PROCEEDING, ALERTING,
  CONNECT/CONNECT ACKNOWLEDGE, DISCONNECT, RELEASE, RELEASE COMPLETE, causes), calls
  between our accesses and to/from external subscribers;
* the network side of CCBS/CCNR (EN 300 359-1, EN 301 065-1) after libpri's PTMP agent
  (etsi-ccbs.md §5, §6 "Network side"): CallInfoRetain with per-access CallLinkageIDs,
  T-RETENTION, request acceptance and every refusal, status polling of A (T-CCBS1, three
  silent rounds → CCBSErase), CCBSRemoteUserFree vs CCBSBFree/suspension and resume,
  T-CCBS3, recall matching (CCBSCall), CCBSStopAlerting, CCBSErase with every reason,
  Interrogate, Deactivate, T-CCBS2/T-CCNR2; CCBS-T/CCNR-T on point-to-point accesses
  (REGISTER connection, Suspend/Resume, recall matched by numbers and bearer,
  T-CCBS5/T-CCNR5);
* the destination side toward our MSNs: StatusRequest (ETS 300 196-1 annex D) while a
  CC request waits for one of our MSNs as user B — the access's answers decide;
* fault injection and introspection (``log``, ``cc_records``, ``linkages``, ``calls``).

It must stay pure and deterministic: no asyncio, no sockets, no clock. Time arrives as
``now``; the owner (the rcapi server, or a test with a fake clock) arms one timer for
``next_deadline()`` and calls ``on_timer(now)``. Every entry point first fires the timers
that are due at its ``now``. Network→user messages go to the ``deliver`` callback of the
attached access in order, after the input that caused them is fully processed (a
callback may call back into the exchange). Bad input from a user never raises: it is
logged and answered as a network answers (ROSE Reject, RELEASE COMPLETE #81, ...).
Misuse of the Python API (unknown access or subscriber) raises ``KeyError``/``ValueError``.

Conventions of the simulator (a real D channel has the call reference flag to tell the
two ends' references apart; the seam in ``q931.py`` has none):

* the network picks its call references (SETUP toward an access) from ``0x40..0x7F``,
  never one in use on that access; a controller should pick ``0x01..0x3F`` for the calls
  and REGISTER connections it opens (a user message is matched to a user-opened
  reference first);
* network→user FACILITY messages on the dummy call reference carry A's MSN in
  ``Q931.called`` (EN 300 195-1 MSN interaction, etsi-ccbs.md §7); a StatusRequest toward
  our MSNs carries the asked MSN there;
* answers to a user's call-independent invoke come back on the call reference it used
  (the dummy one for FACILITY, §2.5); an invoke in a REGISTER is answered in the
  RELEASE COMPLETE that closes it (CCBS-T-Request: in a FACILITY, connection kept).

Example (fake clock; ``inbox`` collects what the network sends)::

    ex = SimExchange(NetworkTimers().scaled(0.01))
    ex.add_access("isdn1", ["3301"])
    ex.add_subscriber("0303333", busy=True)
    ex.attach("isdn1", inbox.append)
    ex.from_user("isdn1", Q931(MsgType.SETUP, 1, False, "0303333", "3301",
                               BEARER_SPEECH), now)
    # inbox: CALL PROCEEDING, DISCONNECT #17 {CallInfoRetain(callLinkageID 1)}
    ex.set_busy("0303333", False, now + 5)   # ... after CCBSRequest: CCBSStatusRequest
    print("\n".join(ex.log_lines()))       # the readable trace, both directions
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from typing import Final

from ccbs_isdn.errors import FacilityError
from ccbs_isdn.isdn import (
    BEARER_SPEECH,
    CAUSE_NO_ANSWER,
    CAUSE_NO_USER_RESPONDING,
    CAUSE_NORMAL_CLEARING,
    CAUSE_NORMAL_UNSPECIFIED,
    CAUSE_USER_BUSY,
    CcKind,
    DestinationStatus,
    EraseReason,
    RecallMode,
)
from ccbs_isdn.rose import types as rt

from .network import rose_adapter as rose
from .network.model import (
    CC_TRANSITIONS,
    HOLDING_B,
    Access,
    Call,
    CallPhase,
    CallView,
    CcRecord,
    CcRecordView,
    CcState,
    DestinationWatch,
    Leg,
    LegState,
    Linkage,
    LinkageView,
    LogEntry,
    PendingInvoke,
    Subscriber,
)
from .network.rose_adapter import Invoke, ReturnError, ReturnResult
from .network.timers import NetworkTimers, Timer, TimerQueue
from .q931 import Q931, Deliver, MsgType

__all__ = [
    "CCT_REQUEST_ERRORS",
    "CallView",
    "CcRecordView",
    "LinkageView",
    "LogEntry",
    "NetworkTimers",
    "PTMP_REQUEST_ERRORS",
    "SimExchange",
]

# Q.850 causes the exchange produces beyond those named in ccbs_isdn.isdn
CAUSE_UNALLOCATED_NUMBER: Final = 1
CAUSE_DESTINATION_OUT_OF_ORDER: Final = 27
CAUSE_INVALID_NUMBER_FORMAT: Final = 28
CAUSE_NO_CIRCUIT: Final = 34
CAUSE_INVALID_CALL_REFERENCE: Final = 81
CAUSE_RECOVERY_ON_TIMER_EXPIRY: Final = 102

#: Errors a CCBSRequest/CCNRRequest may be refused with (EN 300 359-1 ERRORS, etsi-ccbs.md
#: §3.1) — the names the refusal fault hooks accept.
PTMP_REQUEST_ERRORS: Final = frozenset(
    {
        "notSubscribed",
        "invalidCallLinkageID",
        "shortTermDenial",
        "longTermDenial",
        "cCBSIsAlreadyActivated",
        "supplementaryServiceInteractionNotAllowed",
        "outgoingCCBSQueueFull",
        "callFailureReasonNotBusy",
        "notAvailable",
    }
)
#: Errors of CCBS-T-Request/CCNR-T-Request (§3.3). A refusal configured with another
#: name is sent as longTermDenial on a point-to-point access.
CCT_REQUEST_ERRORS: Final = frozenset({"shortTermDenial", "longTermDenial", "notSubscribed"})

_REQUEST_OPS: Final = {"CCBSRequest": CcKind.CCBS, "CCNRRequest": CcKind.CCNR}
_INTERROGATE_OPS: Final = {"CCBSInterrogate": CcKind.CCBS, "CCNRInterrogate": CcKind.CCNR}
_CCT_REQUEST_OPS: Final = {"CCBS-T-Request": CcKind.CCBS, "CCNR-T-Request": CcKind.CCNR}
_MAX_CALL_DETAILS: Final = 5  # CallDetails ::= SEQUENCE SIZE (1..5) OF CallInformation
_SILENT_ROUNDS_MAX: Final = 3  # libpri: CCBSErase after 3 unanswered CCBSStatusRequests
_EXTENDED_T_CCBS1: Final = 2.0  # libpri: late status answers tolerated until T-CCBS1 + 2 s
_NETWORK_CR_FIRST: Final = 0x40
_NETWORK_CR_LAST: Final = 0x7F

# ROSE reject problems the exchange sends (etsi-ccbs.md §2.2)
_UNRECOGNIZED_OPERATION: Final = ("invoke", 1)
_MISTYPED_ARGUMENT: Final = ("invoke", 2)
_UNRECOGNIZED_INVOCATION: Final = ("returnResult", 0)
_MISTYPED_RESULT: Final = ("returnResult", 2)

_After = Callable[[float], None]


class SimExchange:
    """The public network behind our BRI accesses (pure; time passed in as ``now``)."""

    def __init__(
        self,
        timers: NetworkTimers | None = None,
        *,
        retention: bool = False,
        destination_queue_limit: int = 5,
        log_limit: int = 50_000,
    ) -> None:
        """``retention``: a recall that finds B busy again keeps the request queued
        instead of erasing it with basic-call-failed; CCBS-T-Request is answered with
        retentionSupported TRUE. ``destination_queue_limit``: requests that may wait for
        one B (one more → shortTermDenial). ``log_limit``: lines kept in ``log``."""
        self.timers = timers or NetworkTimers()
        self.retention = retention
        self.destination_queue_limit = destination_queue_limit
        self.log: deque[LogEntry] = deque(maxlen=log_limit)
        self._accesses: dict[str, Access] = {}
        self._msn_owner: dict[str, str] = {}
        self._subscribers: dict[str, Subscriber] = {}
        self._legs: dict[tuple[str, bool, int], Leg] = {}
        self._calls: dict[str, Call] = {}
        self._call_seq = 0
        self._linkages: dict[tuple[str, int], Linkage] = {}
        self._ptp_retained: list[Linkage] = []
        self._records: dict[int, CcRecord] = {}
        self._record_seq = 0
        self._references: dict[tuple[str, int], CcRecord] = {}
        self._b_queues: dict[str, list[CcRecord]] = {}
        self._pending: dict[tuple[str, int], PendingInvoke] = {}
        self._watches: dict[str, DestinationWatch] = {}
        self._engaged: dict[str, int] = {}
        self._tq = TimerQueue()
        self._outbox: deque[tuple[str, Q931]] = deque()
        self._flushing = False
        self._now = 0.0

    # ================================================================ configuration

    def add_access(
        self,
        access_id: str,
        msns: Iterable[str],
        *,
        ptp: bool = False,
        ccbs: bool = True,
        ccnr: bool = True,
        recall_mode: RecallMode = RecallMode.GLOBAL,
        max_requests: int = 5,
        channels: int = 2,
    ) -> None:
        """One BRI access of ours with its MSNs (the first is the default number).

        ``ptp``: point-to-point access (a PBX): CC runs as CCBS-T/CCNR-T.
        ``ccbs``/``ccnr``: the access subscribes to the service (otherwise no CC is
        offered and requests get notSubscribed). ``recall_mode``: what the network
        grants (globalRecall suits a bus with several terminals). ``max_requests``: A's
        outgoing queue (one more → outgoingCCBSQueueFull). ``channels``: B channels
        (one more call → cause #34 from the access, user busy toward it).
        """
        if access_id in self._accesses:
            raise ValueError(f"access {access_id!r} exists already")
        numbers = tuple(msns)
        if not numbers:
            raise ValueError(f"access {access_id!r} needs at least one MSN")
        for msn in numbers:
            if not msn or msn in self._msn_owner or msn in self._subscribers:
                raise ValueError(f"number {msn!r} is empty or already in use")
        if max_requests < 1 or channels < 1:
            raise ValueError("max_requests and channels must be >= 1")
        self._accesses[access_id] = Access(
            access_id, numbers, ptp, ccbs, ccnr, recall_mode, max_requests, channels
        )
        for msn in numbers:
            self._msn_owner[msn] = access_id

    def attach(self, access_id: str, deliver: Deliver) -> None:
        """Connect the card's controller: network→user messages go to *deliver*."""
        self._access(access_id).deliver = deliver
        self._note(access_id, "controller attached")

    def detach(self, access_id: str) -> None:
        """The controller is gone; messages toward the access are dropped (and logged)."""
        self._access(access_id).deliver = None
        self._note(access_id, "controller detached")

    def add_subscriber(
        self,
        number: str,
        *,
        busy: bool = False,
        answers: bool = True,
        answer_delay: float = 0.0,
        ccbs: bool = True,
        max_queue: int | None = None,
    ) -> None:
        """An external subscriber.

        ``answers``/``answer_delay``: how it takes calls (delay 0 = CONNECT at once,
        without ALERTING; not answering → T301 → cause #19). ``ccbs``: its network
        supports CC for calls to it, and as a caller it requests CCBS/CCNR itself when
        our MSN is busy / does not answer (see ``call_from``). ``max_queue`` overrides
        ``destination_queue_limit`` for requests waiting for it.
        """
        if not number or number in self._subscribers or number in self._msn_owner:
            raise ValueError(f"number {number!r} is empty or already in use")
        if answer_delay < 0:
            raise ValueError("answer_delay must be >= 0")
        self._subscribers[number] = Subscriber(number, busy, answers, answer_delay, ccbs, max_queue)

    def update_subscriber(
        self,
        number: str,
        *,
        answers: bool | None = None,
        answer_delay: float | None = None,
        ccbs: bool | None = None,
    ) -> None:
        """Change how an external subscriber takes the next calls."""
        sub = self._subscriber(number)
        if answer_delay is not None:
            if answer_delay < 0:
                raise ValueError("answer_delay must be >= 0")
            sub.answer_delay = answer_delay
        if answers is not None:
            sub.answers = answers
        if ccbs is not None:
            sub.ccbs = ccbs

    # ============================================================== fault injection

    def refuse_requests(self, access_id: str, error: str | None) -> None:
        """Refuse every CC request from this access with *error* (None: stop)."""
        self._access(access_id).refuse_error = _checked_error(error)

    def refuse_requests_to(self, number: str, error: str | None) -> None:
        """The destination network of external *number* refuses CC for it (None: stop)."""
        self._subscriber(number).refuse_error = _checked_error(error)

    def lose_messages(self, access_id: str, count: int) -> None:
        """Lose the next *count* network→user messages of the access."""
        if count < 0:
            raise ValueError("count must be >= 0")
        self._access(access_id).lose_next = count

    def ignore_status_answers(self, access_id: str, ignore: bool = True) -> None:
        """Never take notice of the access's answers to CCBSStatusRequest/StatusRequest:
        the network sees only silence (three silent rounds → CCBSErase)."""
        self._access(access_id).ignore_status_answers = ignore

    # ============================================================ scripted parties

    def set_busy(self, number: str, busy: bool, now: float) -> None:
        """External *number* becomes busy/free (free may start a CC recall)."""
        sub = self._subscriber(number)
        self._advance(now)
        if sub.busy != busy:
            sub.busy = busy
            self._note(None, f"subscriber {number} is {'busy' if busy else 'free'}")
            if busy:
                self._mark_b_busy(number)
            else:
                self._party_changed(number, now)
        self._flush()

    def hang_up(self, number: str, now: float) -> int:
        """External *number* hangs up every call it takes part in; returns how many."""
        self._subscriber(number)
        self._advance(now)
        victims = [c for c in list(self._calls.values()) if number in (c.a_external, c.b_external)]
        for call in victims:
            self._note(None, f"subscriber {number} hangs up {call.call_id}")
            self._end_call(call, CAUSE_NORMAL_CLEARING, now)
        self._flush()
        return len(victims)

    def call_from(self, number: str, to_msn: str, now: float, *, cc: bool | None = None) -> str:
        """External *number* calls our *to_msn*; returns the call id.

        ``cc``: if the MSN is busy (CCBS) or does not answer (CCNR) the caller's network
        activates CC toward it (the exchange is then the B side); None = the
        subscriber's ``ccbs`` setting."""
        sub = self._subscriber(number)
        if to_msn not in self._msn_owner:
            raise KeyError(f"{to_msn!r} is not an MSN of any access")
        self._advance(now)
        call = self._new_call(number, to_msn, BEARER_SPEECH, now)
        call.a_external = number
        call.auto_cc = sub.ccbs if cc is None else cc
        self._engage_a(call)
        self._note(None, f"{call.call_id}: {number} (external) calls {to_msn}")
        self._route(call, now)
        self._flush()
        return call.call_id

    def cancel_request(self, access_id: str, reference: int, now: float) -> bool:
        """The network cancels request *reference* of the access (the B side gave up,
        administration): CCBSErase(normal-unspecified). False when there is none."""
        self._access(access_id)
        self._advance(now)
        record = self._references.get((access_id, reference))
        if record is not None:
            self._end_record(record, now, EraseReason.NORMAL_UNSPECIFIED, why="cancelled")
        self._flush()
        return record is not None

    # ==================================================================== timing

    def next_deadline(self) -> float | None:
        """The earliest time ``on_timer`` has something to do, or None."""
        return self._tq.next_deadline()

    def on_timer(self, now: float) -> None:
        """Fire every timer due at *now* (calling early or late is harmless)."""
        self._advance(now)
        self._flush()

    def _advance(self, now: float) -> None:
        self._now = now
        while (timer := self._tq.pop_due(now)) is not None:
            # a timer fires at its own deadline, so later timers see the right time
            self._now = timer.deadline
            timer.callback(timer.deadline)
        self._now = now

    def _start(self, delay: float, name: str, now: float, callback: _After) -> Timer:
        return self._tq.start(now + delay, name, callback)

    # ============================================================= introspection

    def cc_records(self, access_id: str | None = None) -> list[CcRecordView]:
        """The network's CC records whose served user A is on *access_id* (None: all,
        external callers' requests included), oldest first."""
        return [
            CcRecordView(
                r.a_access,
                r.kind,
                r.reference,
                r.state.value,
                r.a_number,
                r.b_number,
                r.bearer,
                r.recall_mode,
                r.ptp,
                r.retention,
                r.created,
            )
            for r in self._records.values()
            if access_id is None or r.a_access == access_id
        ]

    def linkages(self, access_id: str | None = None) -> list[LinkageView]:
        """Retained failed calls (CallLinkageIDs; on PTP accesses without an id)."""
        return [
            LinkageView(
                lk.access_id,
                lk.linkage_id,
                lk.kind,
                lk.a_number,
                lk.b_number,
                lk.t_retention is not None and lk.t_retention.active,
            )
            for lk in (*self._linkages.values(), *self._ptp_retained)
            if access_id is None or lk.access_id == access_id
        ]

    def calls(self) -> list[CallView]:
        """Calls in progress."""

        def side(leg: Leg | None, ext: str | None) -> str:
            return f"{leg.access_id}:{leg.cr:#04x}" if leg is not None else f"ext:{ext}"

        return [
            CallView(
                c.call_id,
                c.calling,
                c.called,
                c.phase.value,
                side(c.a_leg, c.a_external),
                side(c.b_leg, c.b_external),
                c.recall is not None,
            )
            for c in self._calls.values()
        ]

    def is_busy(self, number: str) -> bool:
        """What the network believes: external — busy flag or in a call; our MSN — in
        a call through the exchange, or its last StatusRequest answer was busy."""
        if number in self._subscribers:
            return not self._external_free(number)
        watch = self._watches.get(number)
        return self._engaged.get(number, 0) > 0 or (watch is not None and watch.status == "busy")

    def log_lines(self) -> list[str]:
        return [str(entry) for entry in self.log]

    # ============================================================ user -> network

    def from_user(self, access_id: str, msg: Q931, now: float) -> None:
        """A message from the user side of *access_id*. Never raises for bad input."""
        access = self._accesses.get(access_id)
        if access is None:
            self._note(access_id, f"ignored {msg.type.name}: no such access")
            return
        self._advance(now)
        self._trace(access_id, msg, inbound=True)
        if msg.from_network:
            self._note(access_id, "ignored: a user message marked from_network")
        else:
            self._dispatch(access, msg, now)
        self._flush()

    def _dispatch(self, access: Access, msg: Q931, now: float) -> None:
        aid = access.access_id
        if msg.cr is None:
            if msg.type is MsgType.FACILITY:
                self._facility_independent(access, msg, now, answer_cr=None)
            else:
                self._note(aid, f"ignored {msg.type.name} on the dummy call reference")
            return
        if msg.type is MsgType.SETUP:
            self._user_setup(access, msg, now)
            return
        if msg.type is MsgType.REGISTER:
            self._user_register(access, msg, now)
            return
        leg = self._legs.get((aid, True, msg.cr)) or self._legs.get((aid, False, msg.cr))
        if leg is None:
            if msg.type is not MsgType.RELEASE_COMPLETE:
                # Q.931 §5.8.3.2: unknown call reference → RELEASE COMPLETE #81
                self._send(
                    aid,
                    Q931(
                        MsgType.RELEASE_COMPLETE,
                        msg.cr,
                        True,
                        cause=CAUSE_INVALID_CALL_REFERENCE,
                    ),
                )
            return
        handler = _LEG_HANDLERS.get(msg.type)
        if handler is None:
            self._note(aid, f"ignored {msg.type.name} on cr {msg.cr:#04x}")
            return
        handler(self, leg, msg, now)

    # ---------------------------------------------------------------- SETUP (A)

    def _user_setup(self, access: Access, msg: Q931, now: float) -> None:
        aid = access.access_id
        cr = msg.cr
        assert cr is not None
        if (aid, True, cr) in self._legs:
            self._note(aid, f"ignored SETUP: call reference {cr:#04x} is in use")
            return
        # a malformed component in a SETUP is rejected on the dummy call reference;
        # the call itself goes on
        ccbs_call: Invoke | None = None
        cct_call: Invoke | None = None
        for comp in self._decode_all(aid, msg.facility, answer_cr=None):
            if isinstance(comp, Invoke) and comp.operation == "CCBSCall":
                ccbs_call = comp
            elif isinstance(comp, Invoke) and comp.operation == "CCBS-T-Call":
                cct_call = comp
            elif isinstance(comp, Invoke):
                self._reject(aid, None, comp.invoke_id, _UNRECOGNIZED_OPERATION)
        if not msg.called:
            self._send(
                aid,
                Q931(MsgType.RELEASE_COMPLETE, cr, True, cause=CAUSE_INVALID_NUMBER_FORMAT),
            )
            return
        if self._channels_in_use(aid) >= access.channels:
            self._send(aid, Q931(MsgType.RELEASE_COMPLETE, cr, True, cause=CAUSE_NO_CIRCUIT))
            return
        calling = self._screen(access, msg.calling)
        bearer = msg.bearer
        if not bearer:
            self._note(aid, "SETUP without bearer capability: speech assumed")
            bearer = BEARER_SPEECH
        recall: CcRecord | None = None
        if ccbs_call is not None:
            recall = self._match_ccbs_call(access, ccbs_call, cr)
            if recall is None:
                return  # refused in the RELEASE COMPLETE of the SETUP
        elif cct_call is not None:
            recall = self._match_cct_call(access, calling, msg.called, bearer)
        # the reference names the request: the network calls the B it holds
        called = recall.b_number if recall is not None else msg.called
        leg = Leg(aid, cr, user_opened=True)
        self._legs[(aid, True, cr)] = leg
        call = self._new_call(calling, called, bearer, now)
        call.a_leg = leg
        leg.call = call
        self._engage_a(call)
        self._send(aid, Q931(MsgType.CALL_PROCEEDING, cr, True))
        self._note(aid, f"{call.call_id}: {calling} calls {called}")
        if recall is not None:
            self._recall_accepted(recall, call, now)
        self._route(call, now)

    def _screen(self, access: Access, calling: str) -> str:
        """Network screening (EN 300 092): a calling number that is not an MSN of the
        access is replaced by the access's default number."""
        return calling if calling in access.msns else access.msns[0]

    def _channels_in_use(self, access_id: str) -> int:
        return sum(1 for (aid, _, _), leg in self._legs.items() if aid == access_id and leg.call)

    # ---------------------------------------------------------------- routing

    def _new_call(self, calling: str, called: str, bearer: bytes, now: float) -> Call:
        self._call_seq += 1
        call = Call(f"c{self._call_seq}", calling, called, bearer, now)
        self._calls[call.call_id] = call
        return call

    def _route(self, call: Call, now: float) -> None:
        """Offer *call* to its destination."""
        called = call.called
        sub = self._subscribers.get(called)
        if sub is not None:
            call.b_external = called
            if not self._external_free(called):
                self._b_failed(call, CAUSE_USER_BUSY, now)
                return
            self._engage_b(call)
            if sub.answers and sub.answer_delay == 0:
                self._connected(call, now)
                return
            self._alerting(call, now)
            if sub.answers:
                call.t_answer = self._start(
                    sub.answer_delay, "answer", now, partial(self._ext_answer, call)
                )
            return
        owner = self._msn_owner.get(called)
        if owner is None:
            self._b_failed(call, CAUSE_UNALLOCATED_NUMBER, now)
            return
        access = self._accesses[owner]
        call.b_access = owner
        if access.deliver is None:
            self._b_failed(call, CAUSE_DESTINATION_OUT_OF_ORDER, now)
            return
        cr = self._alloc_cr(owner)
        if self._channels_in_use(owner) >= access.channels or cr is None:
            # no B channel free on the destination access: network-determined busy
            self._b_failed(call, CAUSE_USER_BUSY, now)
            return
        leg = Leg(owner, cr, user_opened=False, call=call)
        self._legs[(owner, False, cr)] = leg
        call.b_leg = leg
        self._engage_b(call)
        self._send(
            owner,
            Q931(MsgType.SETUP, cr, True, called=called, calling=call.calling, bearer=call.bearer),
        )
        leg.timer = self._start(self.timers.t303, "T303", now, partial(self._t303, leg))

    def _alloc_cr(self, access_id: str) -> int | None:
        access = self._accesses[access_id]
        span = _NETWORK_CR_LAST - _NETWORK_CR_FIRST + 1
        for step in range(1, span + 1):
            cr = _NETWORK_CR_FIRST + (access.last_cr - _NETWORK_CR_FIRST + step) % span
            if (access_id, False, cr) not in self._legs and (access_id, True, cr) not in self._legs:
                access.last_cr = cr
                return cr
        return None

    def _t303(self, leg: Leg, now: float) -> None:
        leg.timer = None
        self._note(leg.access_id, f"T303 expired on cr {leg.cr:#04x}: no user responding")
        self._leg_gone(leg, now)
        if leg.call is not None:
            self._b_failed(leg.call, CAUSE_NO_USER_RESPONDING, now)

    def _t310(self, leg: Leg, now: float) -> None:
        leg.timer = None
        call = leg.call
        if call is None or call.phase is not CallPhase.ROUTING:
            return
        self._note(leg.access_id, f"T310 expired on cr {leg.cr:#04x}")
        self._b_failed(call, CAUSE_RECOVERY_ON_TIMER_EXPIRY, now)

    def _ext_answer(self, call: Call, now: float) -> None:
        call.t_answer = None
        if call.phase is CallPhase.ALERTING:
            self._connected(call, now)

    def _alerting(self, call: Call, now: float) -> None:
        """B rings: ALERTING toward A, with a CCNR offer when possible; T301 runs."""
        if call.phase is not CallPhase.ROUTING:
            return
        call.phase = CallPhase.ALERTING
        call.t301 = self._start(self.timers.t301, "T301", now, partial(self._no_reply, call))
        if call.a_leg is not None:
            facility = self._offer_cc(call, CcKind.CCNR, now)
            self._send(
                call.a_leg.access_id,
                Q931(MsgType.ALERTING, call.a_leg.cr, True, facility=facility),
            )

    def _connected(self, call: Call, now: float) -> None:
        if call.phase in (CallPhase.ACTIVE, CallPhase.ENDED):
            return
        call.phase = CallPhase.ACTIVE
        _cancel(call.t301, call.t_answer)
        call.t301 = call.t_answer = None
        if call.a_leg is not None:
            self._send(call.a_leg.access_id, Q931(MsgType.CONNECT, call.a_leg.cr, True))
        self._note(call.a_leg.access_id if call.a_leg else None, f"{call.call_id} answered")
        if call.linkage is not None:
            # a CCNR offer made while alerting is moot once B answered
            self._drop_linkage(call.linkage, now, announce=True)
        if call.recall is not None:
            self._recall_answered(call.recall, now)

    def _no_reply(self, call: Call, now: float) -> None:
        call.t301 = None
        if call.phase is CallPhase.ALERTING:
            self._note(None, f"{call.call_id}: T301 expired, no answer")
            self._b_failed(call, CAUSE_NO_ANSWER, now)

    def _b_failed(self, call: Call, cause: int, now: float) -> None:
        """B was not reached (busy, no answer, unallocated...): clear the call; toward
        A, offer CCBS in the busy DISCONNECT when EN 300 359-1 allows it."""
        if call.phase is CallPhase.ENDED:
            return
        facility: tuple[bytes, ...] = ()
        if cause == CAUSE_USER_BUSY:
            if call.linkage is not None:
                # offered for CCNR while alerting, then refused busy: the failure
                # reason is now "busy", so the same linkage serves a CCBSRequest
                call.linkage.kind = CcKind.CCBS
            facility = self._offer_cc(call, CcKind.CCBS, now)
        self._end_call(call, cause, now, a_facility=facility)
        if call.a_external is not None and call.auto_cc and call.recall is None:
            if cause == CAUSE_USER_BUSY:
                self._external_request(call, CcKind.CCBS, now)
            elif cause in (CAUSE_NO_ANSWER, CAUSE_NO_USER_RESPONDING):
                self._external_request(call, CcKind.CCNR, now)

    def _end_call(
        self, call: Call, cause: int, now: float, *, a_facility: tuple[bytes, ...] = ()
    ) -> None:
        """The call is over: clear what is left of it, settle a recall, free parties."""
        if call.phase is CallPhase.ENDED:
            return
        answered = call.phase is CallPhase.ACTIVE
        call.phase = CallPhase.ENDED
        call.end_cause = cause
        _cancel(call.t301, call.t_answer)
        call.t301 = call.t_answer = None
        self._calls.pop(call.call_id, None)
        if call.a_leg is not None:
            self._net_clear(call.a_leg, cause, now, a_facility)
        if call.b_leg is not None:
            self._net_clear(call.b_leg, cause, now)
        if call.recall is not None and not answered:
            self._recall_failed(call.recall, cause, now)
        # free the parties last: a party becoming idle may start a CC recall
        if call.a_engaged:
            call.a_engaged = False
            self._disengage(call.calling, now)
        if call.b_engaged:
            call.b_engaged = False
            self._disengage(call.called, now)

    def _engage_a(self, call: Call) -> None:
        call.a_engaged = True
        self._engage(call.calling)

    def _engage_b(self, call: Call) -> None:
        call.b_engaged = True
        self._engage(call.called)

    def _engage(self, number: str) -> None:
        count = self._engaged.get(number, 0) + 1
        self._engaged[number] = count
        if count == 1:
            self._mark_b_busy(number)

    def _disengage(self, number: str, now: float) -> None:
        count = self._engaged.get(number, 0) - 1
        if count > 0:
            self._engaged[number] = count
            return
        self._engaged.pop(number, None)
        self._party_changed(number, now)

    # ------------------------------------------------------- leg message handlers

    def _on_alerting(self, leg: Leg, msg: Q931, now: float) -> None:
        call = leg.call
        if call is not None and leg is call.b_leg and leg.state is LegState.ACTIVE:
            _cancel(leg.timer)
            leg.timer = None
            self._alerting(call, now)

    def _on_call_proceeding(self, leg: Leg, msg: Q931, now: float) -> None:
        call = leg.call
        if call is not None and leg is call.b_leg and leg.state is LegState.ACTIVE:
            # T303 stops; T310 bounds the wait for ALERTING or CONNECT
            _cancel(leg.timer)
            leg.timer = self._start(self.timers.t310, "T310", now, partial(self._t310, leg))

    def _on_connect(self, leg: Leg, msg: Q931, now: float) -> None:
        call = leg.call
        if call is None or leg is not call.b_leg or leg.state is not LegState.ACTIVE:
            return
        _cancel(leg.timer)
        leg.timer = None
        self._send(leg.access_id, Q931(MsgType.CONNECT_ACK, leg.cr, True))
        self._connected(call, now)

    def _on_connect_ack(self, leg: Leg, msg: Q931, now: float) -> None:
        return None  # the network does not wait for it

    def _on_facility(self, leg: Leg, msg: Q931, now: float) -> None:
        access = self._accesses[leg.access_id]
        if leg.record is not None:
            self._facility_cct_connection(access, leg, msg, now)
        else:
            self._facility_independent(access, msg, now, answer_cr=leg.cr)

    def _on_disconnect(self, leg: Leg, msg: Q931, now: float) -> None:
        self._facility_in_clearing(leg, msg, now)
        if leg.state in (LegState.RELEASE_SENT, LegState.GONE):
            return
        was_active = leg.state is LegState.ACTIVE
        _cancel(leg.timer)
        leg.state = LegState.RELEASE_SENT
        leg.release_tries = 1
        self._send(leg.access_id, Q931(MsgType.RELEASE, leg.cr, True))
        leg.timer = self._start(self.timers.t308, "T308", now, partial(self._t308, leg))
        if was_active:
            self._user_cleared(leg, msg.cause, now)

    def _on_release(self, leg: Leg, msg: Q931, now: float) -> None:
        self._facility_in_clearing(leg, msg, now)
        was_active = leg.state is LegState.ACTIVE
        self._send(leg.access_id, Q931(MsgType.RELEASE_COMPLETE, leg.cr, True))
        self._leg_gone(leg, now)
        if was_active:
            self._user_cleared(leg, msg.cause, now)

    def _on_release_complete(self, leg: Leg, msg: Q931, now: float) -> None:
        self._facility_in_clearing(leg, msg, now)
        was_active = leg.state is LegState.ACTIVE
        self._leg_gone(leg, now)
        if was_active:
            self._user_cleared(leg, msg.cause, now)

    def _facility_in_clearing(self, leg: Leg, msg: Q931, now: float) -> None:
        if not msg.facility:
            return
        access = self._accesses[leg.access_id]
        if leg.record is not None:
            self._facility_cct_connection(access, leg, msg, now)
        else:
            # the call reference is going away: answers use the dummy one
            self._facility_independent(access, msg, now, answer_cr=None)

    def _user_cleared(self, leg: Leg, cause: int | None, now: float) -> None:
        """The user started clearing an active leg: propagate to the rest."""
        record = leg.record
        if record is not None:
            leg.record = None
            record.conn = None
            self._end_record(record, now, None, why="CC connection cleared by the user")
            return
        call = leg.call
        if call is None or call.phase is CallPhase.ENDED:
            return
        clearing_cause = CAUSE_NORMAL_CLEARING if cause is None else cause
        if leg is call.b_leg and call.phase is not CallPhase.ACTIVE:
            self._b_failed(call, clearing_cause, now)  # B refused (busy...) or gave up
        else:
            self._end_call(call, clearing_cause, now)

    def _t305(self, leg: Leg, now: float) -> None:
        leg.timer = None
        if leg.state is LegState.DISCONNECT_SENT:
            leg.state = LegState.RELEASE_SENT
            leg.release_tries = 1
            self._send(leg.access_id, Q931(MsgType.RELEASE, leg.cr, True, cause=leg.cause))
            leg.timer = self._start(self.timers.t308, "T308", now, partial(self._t308, leg))

    def _t308(self, leg: Leg, now: float) -> None:
        leg.timer = None
        if leg.state is not LegState.RELEASE_SENT:
            return
        if leg.release_tries < 2:
            # Q.931 §5.3.4.3: RELEASE is sent once more, then the reference is freed
            leg.release_tries += 1
            self._send(leg.access_id, Q931(MsgType.RELEASE, leg.cr, True, cause=leg.cause))
            leg.timer = self._start(self.timers.t308, "T308", now, partial(self._t308, leg))
            return
        self._leg_gone(leg, now)

    def _net_clear(
        self,
        leg: Leg,
        cause: int,
        now: float,
        facility: tuple[bytes, ...] = (),
        *,
        complete: bool = False,
    ) -> None:
        """The network clears *leg*: DISCONNECT (T305), or RELEASE COMPLETE when it
        refuses a SETUP/REGISTER outright (*complete*)."""
        if leg.state is not LegState.ACTIVE:
            return
        _cancel(leg.timer)
        leg.timer = None
        leg.cause = cause
        if complete:
            self._send(
                leg.access_id,
                Q931(MsgType.RELEASE_COMPLETE, leg.cr, True, cause=cause, facility=facility),
            )
            self._leg_gone(leg, now)
            return
        leg.state = LegState.DISCONNECT_SENT
        self._send(
            leg.access_id, Q931(MsgType.DISCONNECT, leg.cr, True, cause=cause, facility=facility)
        )
        leg.timer = self._start(self.timers.t305, "T305", now, partial(self._t305, leg))

    def _leg_gone(self, leg: Leg, now: float) -> None:
        if leg.state is LegState.GONE:
            return
        _cancel(leg.timer)
        leg.timer = None
        leg.state = LegState.GONE
        self._legs.pop((leg.access_id, leg.user_opened, leg.cr), None)
        call = leg.call
        if call is not None and leg is call.a_leg and call.linkage is not None:
            linkage = call.linkage
            if linkage.t_retention is None and self._linkage_alive(linkage):
                # EN 300 359-1: T-RETENTION runs from the clearing of the failed call
                linkage.t_retention = self._start(
                    self.timers.t_retention,
                    "T-RETENTION",
                    now,
                    partial(self._t_retention, linkage),
                )
        record = leg.record
        if record is not None:
            leg.record = None
            record.conn = None
            self._end_record(record, now, None, why="CC connection released")

    # ================================================================== CC offer

    def _cc_possible(self, call: Call, kind: CcKind) -> bool:
        if call.a_leg is None or call.recall is not None:
            return False
        access = self._accesses[call.a_leg.access_id]
        if not (access.ccbs if kind is CcKind.CCBS else access.ccnr):
            return False
        sub = self._subscribers.get(call.called)
        if sub is not None:
            return sub.ccbs
        return call.called in self._msn_owner

    def _offer_cc(self, call: Call, kind: CcKind, now: float) -> tuple[bytes, ...]:
        """Facility IEs offering CC in the ALERTING/DISCONNECT toward A (maybe none).
        PTMP: CallInfoRetain(CallLinkageID); PTP: CCBS-T-Available (no id)."""
        if call.linkage is not None or not self._cc_possible(call, kind):
            return ()
        assert call.a_leg is not None
        access = self._accesses[call.a_leg.access_id]
        if access.ptp:
            linkage = Linkage(
                access.access_id, None, kind, call.calling, call.called, call.bearer, now, call
            )
            self._ptp_retained.append(linkage)
            call.linkage = linkage
            return (rose.cct_invoke(self._invoke_id(access), "CCBS-T-Available"),)
        linkage_id = self._alloc_linkage(access)
        if linkage_id is None:
            self._note(access.access_id, "no CallLinkageID free: CC not offered")
            return ()
        linkage = Linkage(
            access.access_id, linkage_id, kind, call.calling, call.called, call.bearer, now, call
        )
        self._linkages[(access.access_id, linkage_id)] = linkage
        call.linkage = linkage
        return (rose.call_info_retain(self._invoke_id(access), linkage_id),)

    def _alloc_linkage(self, access: Access) -> int | None:
        # 7-bit ids per access, skipping ids in use (etsi-ccbs.md §7)
        for step in range(1, 129):
            candidate = (access.last_linkage + step) & 0x7F
            if (access.access_id, candidate) not in self._linkages:
                access.last_linkage = candidate
                return candidate
        return None

    def _linkage_alive(self, linkage: Linkage) -> bool:
        if linkage.linkage_id is None:
            return any(lk is linkage for lk in self._ptp_retained)
        return self._linkages.get((linkage.access_id, linkage.linkage_id)) is linkage

    def _drop_linkage(self, linkage: Linkage, now: float, *, announce: bool) -> None:
        """Forget a retained call; *announce*: broadcast EraseCallLinkageID (PTMP)."""
        if linkage.call is not None and linkage.call.linkage is linkage:
            linkage.call.linkage = None
        if not self._linkage_alive(linkage):
            return
        _cancel(linkage.t_retention)
        linkage.t_retention = None
        if linkage.linkage_id is None:
            self._ptp_retained = [lk for lk in self._ptp_retained if lk is not linkage]
            return
        del self._linkages[(linkage.access_id, linkage.linkage_id)]
        if announce:
            access = self._accesses[linkage.access_id]
            self._broadcast(
                access,
                rose.erase_call_linkage_id(self._invoke_id(access), linkage.linkage_id),
                msn=linkage.a_number,
            )

    def _t_retention(self, linkage: Linkage, now: float) -> None:
        linkage.t_retention = None
        self._note(linkage.access_id, f"T-RETENTION expired (linkage {linkage.linkage_id})")
        self._drop_linkage(linkage, now, announce=True)

    # ============================================ call-independent facility (PTMP)

    def _facility_independent(
        self, access: Access, msg: Q931, now: float, *, answer_cr: int | None
    ) -> None:
        """FACILITY from the user outside a CCBS-T connection: requests, deactivation,
        interrogation, and answers to the network's status invokes."""
        aid = access.access_id
        for comp in self._decode_all(aid, msg.facility, answer_cr=answer_cr):
            if isinstance(comp, Invoke):
                answer, after = self._answer_invoke(access, comp, now)
                if answer:
                    self._send(aid, Q931(MsgType.FACILITY, answer_cr, True, facility=(answer,)))
                if after is not None:
                    after(now)
            elif isinstance(comp, ReturnResult):
                self._user_result(access, comp, answer_cr, now)
            elif isinstance(comp, ReturnError):
                # counts as no answer: T-CCBS1 / T-STATUS decide
                self._note(aid, f"invoke {comp.invoke_id} answered with error {comp.error}")
            else:
                self._note(aid, f"invoke {comp.invoke_id} rejected: {comp.problem_name}")

    def _answer_invoke(
        self, access: Access, comp: Invoke, now: float
    ) -> tuple[bytes, _After | None]:
        """The answer to a user's call-independent invoke, plus what to do once it is
        sent (EN 300 359-1 orders e.g. the request result before EraseCallLinkageID)."""
        op = str(comp.operation)
        if op in _REQUEST_OPS:
            return self._handle_request(access, comp, _REQUEST_OPS[op], now)
        if op == "CCBSDeactivate":
            return self._handle_deactivate(access, comp)
        if op in _INTERROGATE_OPS:
            return self._handle_interrogate(access, comp, _INTERROGATE_OPS[op]), None
        if op in ("CCBSCall", "CCBS-T-Call"):
            # a recall outside the SETUP of a call names no call
            return rose.return_error(comp.invoke_id, op, "notReadyForCall"), None
        if op in _CCT_REQUEST_OPS:
            # CCBS-T-Request opens a REGISTER connection on a PTP access; not here
            return rose.return_error(comp.invoke_id, op, "notSubscribed"), None
        if op in ("CCBS-T-Suspend", "CCBS-T-Resume"):
            self._note(access.access_id, f"{op} outside a CC connection ignored")
            return b"", None
        # operations only the network invokes (CallInfoRetain, CCBSErase, ...)
        return rose.reject(comp.invoke_id, _UNRECOGNIZED_OPERATION), None

    # ------------------------------------------------------------- CCBSRequest

    def _handle_request(
        self, access: Access, comp: Invoke, kind: CcKind, now: float
    ) -> tuple[bytes, _After | None]:
        """CCBSRequest (EN 300 359-1) / CCNRRequest (EN 301 065-1) at the A side."""
        op = str(comp.operation)
        aid = access.access_id
        arg = comp.argument
        if not isinstance(arg, rt.CCBSRequestArg):
            return rose.reject(comp.invoke_id, _MISTYPED_ARGUMENT), None
        linkage_id = arg.call_linkage_id & 0x7F
        error = self._request_refusal(access, linkage_id, kind)
        reference = self._alloc_reference(access) if error is None else None
        if error is None and reference is None:
            error = "outgoingCCBSQueueFull"  # all 128 references in use
        if error is not None or reference is None:
            self._note(aid, f"{op}(linkage {linkage_id}) refused: {error}")
            return rose.return_error(comp.invoke_id, op, str(error)), None
        linkage = self._linkages[(aid, linkage_id)]
        record = self._new_record(
            kind,
            aid,
            linkage.a_number,
            linkage.b_number,
            linkage.bearer,
            reference,
            access.recall_mode,
            ptp=False,
            now=now,
        )
        self._references[(aid, reference)] = record
        self._note(
            aid,
            f"{op}(linkage {linkage_id}) accepted as reference {reference}: "
            f"{linkage.a_number} -> {linkage.b_number}",
        )
        self._activate(record, now)

        def after(t: float) -> None:
            # libpri broadcasts EraseCallLinkageID when the agent leaves "requested"
            # (etsi-ccbs.md §5.1); A must not take it for a cancellation of R.
            self._drop_linkage(linkage, t, announce=True)
            self._b_check(record.b_number, t)

        return rose.request_result(comp.invoke_id, op, access.recall_mode, reference), after

    def _request_refusal(self, access: Access, linkage_id: int, kind: CcKind) -> str | None:
        """The first reason to refuse, in the order: subscription, fault hook, linkage,
        failure reason, duplicate, A's queue, B side."""
        if not (access.ccbs if kind is CcKind.CCBS else access.ccnr):
            return "notSubscribed"
        if access.refuse_error is not None:
            return access.refuse_error
        linkage = self._linkages.get((access.access_id, linkage_id))
        if linkage is None:
            return "invalidCallLinkageID"
        if kind is CcKind.CCBS and linkage.kind is CcKind.CCNR:
            return "callFailureReasonNotBusy"
        if kind is CcKind.CCNR and linkage.kind is CcKind.CCBS:
            return "notAvailable"  # CCNR is for unanswered calls only (EN 301 065-1)
        mine = [r for r in self._records.values() if r.a_access == access.access_id]
        if any(r.a_number == linkage.a_number and r.b_number == linkage.b_number for r in mine):
            return "cCBSIsAlreadyActivated"
        if len(mine) >= access.max_requests:
            return "outgoingCCBSQueueFull"
        return self._destination_refusal(linkage.b_number)

    def _destination_refusal(self, b_number: str) -> str | None:
        """What the B side says to a new request for *b_number*."""
        sub = self._subscribers.get(b_number)
        limit = self.destination_queue_limit
        if sub is not None:
            if sub.refuse_error is not None:
                return sub.refuse_error
            if not sub.ccbs:
                return "longTermDenial"
            if sub.max_queue is not None:
                limit = sub.max_queue
        elif b_number not in self._msn_owner:
            return "longTermDenial"
        if len(self._b_queues.get(b_number, ())) >= limit:
            return "shortTermDenial"
        return None

    def _alloc_reference(self, access: Access) -> int | None:
        # CCBSReference: 7 bits, per access, skipping references in use
        for step in range(1, 129):
            candidate = (access.last_reference + step) & 0x7F
            if (access.access_id, candidate) not in self._references:
                access.last_reference = candidate
                return candidate
        return None

    def _new_record(
        self,
        kind: CcKind,
        a_access: str | None,
        a_number: str,
        b_number: str,
        bearer: bytes,
        reference: int | None,
        recall_mode: RecallMode,
        *,
        ptp: bool,
        now: float,
    ) -> CcRecord:
        self._record_seq += 1
        record = CcRecord(
            self._record_seq,
            kind,
            a_access,
            a_number,
            b_number,
            bearer,
            reference,
            recall_mode,
            ptp,
            now,
        )
        self._records[record.key] = record
        return record

    def _activate(self, record: CcRecord, now: float) -> None:
        """Queue the request at B and start its service-duration timer."""
        t = self.timers
        ccbs = record.kind is CcKind.CCBS
        if record.ptp:
            duration, name = (t.t_ccbs5, "T-CCBS5") if ccbs else (t.t_ccnr5, "T-CCNR5")
        else:
            duration, name = (t.t_ccbs2, "T-CCBS2") if ccbs else (t.t_ccnr2, "T-CCNR2")
        record.t_service = self._start(duration, name, now, partial(self._t_service, record))
        self._b_queues.setdefault(record.b_number, []).append(record)
        if record.b_number in self._msn_owner:
            self._watch_destination(record.b_number, now)

    def _t_service(self, record: CcRecord, now: float) -> None:
        record.t_service = None
        if record.ptp:
            self._end_record(
                record,
                now,
                None,
                why="T-CCBS5/T-CCNR5 expired",
                cause=CAUSE_RECOVERY_ON_TIMER_EXPIRY,
            )
        else:
            self._end_record(record, now, EraseReason.T_CCBS2_TIMEOUT, why="T-CCBS2 expired")

    # ------------------------------------------------------- Deactivate, Interrogate

    def _handle_deactivate(self, access: Access, comp: Invoke) -> tuple[bytes, _After | None]:
        arg = comp.argument
        op = str(comp.operation)
        if not isinstance(arg, rt.CCBSDeactivateArg):
            return rose.reject(comp.invoke_id, _MISTYPED_ARGUMENT), None
        if not (access.ccbs or access.ccnr):
            return rose.return_error(comp.invoke_id, op, "notSubscribed"), None
        record = self._references.get((access.access_id, arg.ccbs_reference & 0x7F))
        if record is None:
            return rose.return_error(comp.invoke_id, op, "invalidCCBSReference"), None

        def after(t: float) -> None:
            # libpri broadcasts CCBSErase after the (empty) result (etsi-ccbs.md §5.6)
            self._end_record(record, t, EraseReason.NORMAL_UNSPECIFIED, why="deactivated")

        return rose.empty_result(comp.invoke_id), after

    def _handle_interrogate(self, access: Access, comp: Invoke, kind: CcKind) -> bytes:
        arg = comp.argument
        op = str(comp.operation)
        if not isinstance(arg, rt.CCBSInterrogateArg):
            return rose.reject(comp.invoke_id, _MISTYPED_ARGUMENT)
        if not (access.ccbs if kind is CcKind.CCBS else access.ccnr):
            return rose.return_error(comp.invoke_id, op, "notSubscribed")
        records = [
            r
            for r in self._records.values()
            if r.a_access == access.access_id and r.kind is kind and r.reference is not None
        ]
        if arg.ccbs_reference is not None:
            records = [r for r in records if r.reference == arg.ccbs_reference & 0x7F]
            if not records:
                # unknown, or a request of the other kind (libpri: is_ccnr differs)
                return rose.return_error(comp.invoke_id, op, "invalidCCBSReference")
        party = rose.number_of(arg.party_number_of_a)
        if party is not None:
            records = [r for r in records if r.a_number == party]
        details = [
            (r.b_number, r.bearer, r.reference)
            for r in records[:_MAX_CALL_DETAILS]
            if r.reference is not None
        ]
        return rose.interrogate_result(comp.invoke_id, op, access.recall_mode, details)

    # --------------------------------------------------- answers to network invokes

    def _user_result(
        self, access: Access, comp: ReturnResult, answer_cr: int | None, now: float
    ) -> None:
        aid = access.access_id
        pending = self._pending.get((aid, comp.invoke_id))
        if pending is None:
            self._reject(aid, answer_cr, comp.invoke_id, _UNRECOGNIZED_INVOCATION)
            return
        if access.ignore_status_answers:
            self._note(aid, f"answer to invoke {comp.invoke_id} ignored (fault injection)")
            return
        if not pending.open:
            self._note(aid, f"late answer to invoke {comp.invoke_id} ignored")
            return
        if pending.operation == "CCBSStatusRequest":
            if not isinstance(comp.result, rt.CCBSStatusRequestRes):
                self._reject(aid, answer_cr, comp.invoke_id, _MISTYPED_RESULT)
                return
            assert pending.record is not None
            self._status_answer(pending.record, comp.result.free, now)
            return
        status = rose.status_of(comp.result)
        if status is None:
            self._reject(aid, answer_cr, comp.invoke_id, _MISTYPED_RESULT)
            return
        self._destination_answer(pending, status, now)

    # ======================================================= B side: waiting for B

    def _external_free(self, number: str) -> bool:
        return not self._subscribers[number].busy and self._engaged.get(number, 0) == 0

    def _b_free(self, b_number: str) -> bool:
        if b_number in self._subscribers:
            return self._external_free(b_number)
        watch = self._watches.get(b_number)
        return self._engaged.get(b_number, 0) == 0 and watch is not None and watch.status == "free"

    def _mark_b_busy(self, number: str) -> None:
        """B was seen busy: CCNR requests waiting for B may now fire when it is free."""
        for record in self._b_queues.get(number, ()):
            record.b_was_busy = True
        watch = self._watches.get(number)
        if watch is not None:
            watch.status = "busy"

    def _party_changed(self, number: str, now: float) -> None:
        """*number* may have become free: as a suspended external A (resume), as B (serve
        the queue), or as our MSN (ask it with StatusRequest)."""
        if number in self._subscribers:
            if not self._external_free(number):
                return
            for record in list(self._records.values()):
                if (
                    record.a_access is None
                    and record.a_number == number
                    and record.state is CcState.SUSPENDED
                ):
                    self._note(None, f"external A {number} free again: request resumed")
                    self._set_state(record, CcState.ACTIVATED)
                    self._b_check(record.b_number, now)
            self._b_check(number, now)
            return
        watch = self._watches.get(number)
        if watch is not None and self._engaged.get(number, 0) == 0:
            self._poll_destination(watch, now)

    def _b_check(self, b_number: str, now: float) -> None:
        """EN 300 359-1 B side: B is free → serve the first eligible request, one at a
        time, in queue order (a suspended request lets the next one have B)."""
        queue = self._b_queues.get(b_number)
        if not queue or not self._b_free(b_number):
            return
        if any(r.state in HOLDING_B for r in queue):
            return
        for record in list(queue):
            if record.ended or record.state is not CcState.ACTIVATED:
                continue
            if record.kind is CcKind.CCNR and not record.b_was_busy:
                continue  # CCNR: B must have been in use since activation (EN 301 065-1)
            self._b_available(record, now)
            if record.state in HOLDING_B or not self._b_free(b_number):
                return

    def _b_available(self, record: CcRecord, now: float) -> None:
        """B is free for *record*: find out about A (A side)."""
        if record.a_access is None:
            if self._external_free(record.a_number):
                self._external_recall(record, now)
            else:
                self._note(None, f"B {record.b_number} free, external A {record.a_number} busy")
                self._set_state(record, CcState.SUSPENDED)
            return
        access = self._accesses[record.a_access]
        if record.ptp:
            assert record.conn is not None
            self._set_state(record, CcState.WAIT_CALLBACK)
            ie = rose.cct_invoke(self._invoke_id(access), "CCBS-T-RemoteUserFree")
            self._send(
                access.access_id, Q931(MsgType.FACILITY, record.conn.cr, True, facility=(ie,))
            )
            record.t_ccbs3 = self._start(
                self.timers.t_ccbs3, "T-CCBS3", now, partial(self._t_ccbs3, record)
            )
            return
        if record.a_known_free:
            # "If N already knows A's state it skips the poll" (etsi-ccbs.md §5.3)
            self._remote_user_free(record, now)
            return
        self._set_state(record, CcState.B_AVAILABLE)
        self._poll_a(record, now)

    # ============================================ A side: status polling (T-CCBS1)

    def _poll_a(self, record: CcRecord, now: float) -> None:
        """Broadcast CCBSStatusRequest; the terminals holding R answer within T-CCBS1."""
        assert record.a_access is not None and record.reference is not None
        access = self._accesses[record.a_access]
        self._close_status_invoke(record, now)
        invoke_id = self._invoke_id(access)
        self._pending[(access.access_id, invoke_id)] = PendingInvoke(
            access.access_id, invoke_id, "CCBSStatusRequest", record=record
        )
        record.status_invoke = invoke_id
        record.busy_answers = 0
        ie = rose.ccbs_status_request(
            invoke_id, record.recall_mode, record.reference, record.bearer
        )
        self._broadcast(access, ie, msn=record.a_number)
        record.t_ccbs1 = self._start(
            self.timers.t_ccbs1, "T-CCBS1", now, partial(self._t_ccbs1, record)
        )

    def _close_status_invoke(self, record: CcRecord, now: float) -> None:
        _cancel(record.t_ccbs1)
        record.t_ccbs1 = None
        if record.status_invoke is None or record.a_access is None:
            return
        key = (record.a_access, record.status_invoke)
        record.status_invoke = None
        pending = self._pending.get(key)
        if pending is not None:
            # answers until T-CCBS1 + 2 s are late, not unknown (libpri's extended T-CCBS1)
            pending.open = False
            self._start(_EXTENDED_T_CCBS1, "late-answers", now, partial(self._forget, key))

    def _forget(self, key: tuple[str, int], now: float) -> None:
        pending = self._pending.get(key)
        if pending is not None and not pending.open:
            del self._pending[key]

    def _status_answer(self, record: CcRecord, free: bool, now: float) -> None:
        if record.ended:
            return
        record.silences = 0
        if not free:
            record.busy_answers += 1
            return  # T-CCBS1 decides: another terminal may still say "free"
        self._close_status_invoke(record, now)
        if record.state is CcState.SUSPENDED:
            # A is free again: monitoring of B resumes (etsi-ccbs.md §5.4)
            self._note(record.a_access, f"reference {record.reference}: A free, resumed")
            self._set_state(record, CcState.ACTIVATED)
            record.a_known_free = True
            self._b_check(record.b_number, now)
            record.a_known_free = False
        elif record.state is CcState.B_AVAILABLE:
            if self._b_free(record.b_number):
                self._remote_user_free(record, now)
            else:
                self._set_state(record, CcState.ACTIVATED)  # B got busy again meanwhile

    def _t_ccbs1(self, record: CcRecord, now: float) -> None:
        record.t_ccbs1 = None
        if record.ended:
            return
        busy = record.busy_answers > 0
        self._close_status_invoke(record, now)
        if not busy:
            record.silences += 1
            self._note(
                record.a_access,
                f"reference {record.reference}: CCBSStatusRequest unanswered "
                f"({record.silences}/{_SILENT_ROUNDS_MAX})",
            )
            if record.silences >= _SILENT_ROUNDS_MAX:
                self._end_record(
                    record, now, EraseReason.NORMAL_UNSPECIFIED, why="A does not answer"
                )
                return
        elif record.state is CcState.B_AVAILABLE:
            # B is free but A is busy: CCBSBFree, the request is suspended (§5.4)
            assert record.a_access is not None and record.reference is not None
            access = self._accesses[record.a_access]
            self._set_state(record, CcState.SUSPENDED)
            ie = rose.ccbs_b_free(
                self._invoke_id(access),
                record.recall_mode,
                record.reference,
                record.b_number,
                record.bearer,
            )
            self._broadcast(access, ie, msn=record.a_number)
            self._b_check(record.b_number, now)  # the next request may have B
        # asking again: while B is available, and every T-CCBS1 while suspended
        self._poll_a(record, now)

    def _remote_user_free(self, record: CcRecord, now: float) -> None:
        assert record.a_access is not None and record.reference is not None
        access = self._accesses[record.a_access]
        self._set_state(record, CcState.WAIT_CALLBACK)
        ie = rose.ccbs_remote_user_free(
            self._invoke_id(access),
            record.recall_mode,
            record.reference,
            record.b_number,
            record.bearer,
        )
        self._broadcast(access, ie, msn=record.a_number)
        record.t_ccbs3 = self._start(
            self.timers.t_ccbs3, "T-CCBS3", now, partial(self._t_ccbs3, record)
        )

    def _t_ccbs3(self, record: CcRecord, now: float) -> None:
        record.t_ccbs3 = None
        if record.ended or record.state is not CcState.WAIT_CALLBACK:
            return
        if record.ptp:
            self._end_record(
                record,
                now,
                None,
                why="no CCBS-T-Call in time",
                cause=CAUSE_RECOVERY_ON_TIMER_EXPIRY,
            )
        else:
            self._end_record(record, now, EraseReason.T_CCBS3_TIMEOUT, why="T-CCBS3 expired")

    # =========================================================== recall matching

    def _match_ccbs_call(self, access: Access, comp: Invoke, cr: int) -> CcRecord | None:
        """SETUP with CCBSCall(R): the record, or None after refusing the SETUP with the
        error in its RELEASE COMPLETE (EN 300 359-1; etsi-ccbs.md §5.3, §3 notes)."""
        arg = comp.argument
        answer: bytes | None = None
        record: CcRecord | None = None
        if not isinstance(arg, rt.CCBSCallArg):
            answer = rose.reject(comp.invoke_id, _MISTYPED_ARGUMENT)
        else:
            record = self._references.get((access.access_id, arg.ccbs_reference & 0x7F))
            error: str | None = None
            if record is None:
                error = "invalidCCBSReference"
            elif record.state is CcState.CALLBACK:
                error = "alreadyAccepted"
            elif record.state is not CcState.WAIT_CALLBACK:
                error = "notReadyForCall"
            if error is not None:
                self._note(access.access_id, f"CCBSCall({arg.ccbs_reference}) refused: {error}")
                answer = rose.return_error(comp.invoke_id, "CCBSCall", error)
        if answer is None:
            return record
        self._send(
            access.access_id,
            Q931(
                MsgType.RELEASE_COMPLETE,
                cr,
                True,
                cause=CAUSE_NORMAL_UNSPECIFIED,
                facility=(answer,),
            ),
        )
        return None

    def _match_cct_call(
        self, access: Access, calling: str, called: str, bearer: bytes
    ) -> CcRecord | None:
        """CCBS-T-Call is matched by A and B numbers and the BC/HLC/LLC bytes (§5.7).
        The recall may come from any active state — but while B is held for another
        request (one at a time), it is an ordinary call for this one."""
        for record in self._records.values():
            if (
                record.ptp
                and record.a_access == access.access_id
                and record.a_number == calling
                and record.b_number == called
                and record.bearer == bearer
                and record.state is not CcState.CALLBACK
            ):
                if record.state is CcState.WAIT_CALLBACK or not any(
                    r.state in HOLDING_B for r in self._b_queues.get(called, ())
                ):
                    return record
        self._note(access.access_id, "CCBS-T-Call matches no request: an ordinary call")
        return None

    def _recall_accepted(self, record: CcRecord, call: Call, now: float) -> None:
        _cancel(record.t_ccbs3)
        record.t_ccbs3 = None
        self._close_status_invoke(record, now)
        self._set_state(record, CcState.CALLBACK)
        record.silences = 0
        record.recall_call = call
        call.recall = record
        self._note(record.a_access, f"{call.call_id} is the recall of request {record.key}")
        if (
            not record.ptp
            and record.recall_mode is RecallMode.GLOBAL
            and record.a_access is not None
            and record.reference is not None
        ):
            # the other terminals of the bus stop offering the recall
            access = self._accesses[record.a_access]
            ie = rose.ccbs_stop_alerting(self._invoke_id(access), record.reference)
            self._broadcast(access, ie, msn=record.a_number)

    def _recall_answered(self, record: CcRecord, now: float) -> None:
        """The recall reached B: the request is complete."""
        if record.ptp:
            self._end_record(record, now, None, why="recall answered")
        else:
            self._end_record(record, now, EraseReason.NORMAL_UNSPECIFIED, why="recall answered")

    def _recall_failed(self, record: CcRecord, cause: int, now: float) -> None:
        record.recall_call = None
        if record.ended:
            return
        if cause == CAUSE_USER_BUSY and self.retention and (record.retention or not record.ptp):
            # retention: the request stays queued and waits for B again
            self._note(record.a_access, f"recall found B busy: request {record.key} retained")
            self._set_state(record, CcState.ACTIVATED)
            record.b_was_busy = True
            return
        why = f"recall failed (cause #{cause})"
        if record.ptp:
            self._end_record(record, now, None, why=why, cause=CAUSE_NORMAL_UNSPECIFIED)
        else:
            self._end_record(record, now, EraseReason.BASIC_CALL_FAILED, why=why)

    def _external_recall(self, record: CcRecord, now: float) -> None:
        """Served user A is external: its network places the recall on A's behalf."""
        self._set_state(record, CcState.CALLBACK)
        call = self._new_call(record.a_number, record.b_number, record.bearer, now)
        call.a_external = record.a_number
        call.recall = record
        record.recall_call = call
        self._engage_a(call)
        self._note(
            None, f"{call.call_id}: recall {record.a_number} (external) -> {record.b_number}"
        )
        self._route(call, now)

    def _external_request(self, call: Call, kind: CcKind, now: float) -> None:
        """An external caller's network activates CC toward our MSN; the exchange is
        the B side of it."""
        error = self._destination_refusal(call.called)
        if error is None and any(
            r.a_access is None and r.a_number == call.calling and r.b_number == call.called
            for r in self._records.values()
        ):
            error = "cCBSIsAlreadyActivated"
        if error is not None:
            self._note(None, f"external {kind.value} {call.calling} -> {call.called}: {error}")
            return
        record = self._new_record(
            kind,
            None,
            call.calling,
            call.called,
            call.bearer,
            None,
            RecallMode.GLOBAL,
            ptp=False,
            now=now,
        )
        self._note(None, f"external {kind.value} request {call.calling} -> {call.called}")
        self._activate(record, now)

    def _set_state(self, record: CcRecord, state: CcState) -> None:
        """The one place a request changes state; checked against CC_TRANSITIONS."""
        if state not in CC_TRANSITIONS[record.state]:
            raise AssertionError(f"request {record.key}: {record.state.value} -> {state.value}")
        name = f"reference {record.reference}" if record.reference is not None else "request"
        self._note(record.a_access, f"{name} {record.state.value} -> {state.value}")
        record.state = state

    # ========================================================= ending a request

    def _end_record(
        self,
        record: CcRecord,
        now: float,
        reason: EraseReason | None,
        *,
        why: str,
        cause: int = CAUSE_NORMAL_CLEARING,
    ) -> None:
        """Remove a request. PTMP: broadcast CCBSErase(*reason*) when one is given.
        PTP: clear the CC connection with *cause* if it is still up."""
        if record.ended:
            return
        record.ended = True
        held_b = record.state in HOLDING_B
        _cancel(record.t_service, record.t_ccbs3)
        record.t_service = record.t_ccbs3 = None
        self._close_status_invoke(record, now)
        self._records.pop(record.key, None)
        queue = self._b_queues.get(record.b_number)
        if queue is not None:
            queue[:] = [r for r in queue if r is not record]
            if not queue:
                del self._b_queues[record.b_number]
                self._unwatch_destination(record.b_number)
        if record.a_access is not None and record.reference is not None:
            self._references.pop((record.a_access, record.reference), None)
        name = f"reference {record.reference}" if record.reference is not None else "request"
        self._note(record.a_access, f"{name} {record.a_number} -> {record.b_number} ended: {why}")
        if record.a_access is not None and record.reference is not None and reason is not None:
            access = self._accesses[record.a_access]
            ie = rose.ccbs_erase(
                self._invoke_id(access),
                record.recall_mode,
                record.reference,
                record.b_number,
                record.bearer,
                reason,
            )
            self._broadcast(access, ie, msn=record.a_number)
        conn = record.conn
        if conn is not None:
            record.conn = None
            conn.record = None
            self._net_clear(conn, cause, now)
        if held_b:
            watch = self._watches.get(record.b_number)
            if watch is not None:
                # B's last "free" was used up by this request: ask again before the next
                watch.status = "unknown"
                self._poll_destination(watch, now)
            else:
                self._b_check(record.b_number, now)

    # ====================================================== CCBS-T (PTP accesses)

    def _user_register(self, access: Access, msg: Q931, now: float) -> None:
        aid = access.access_id
        cr = msg.cr
        assert cr is not None
        if (aid, True, cr) in self._legs:
            self._note(aid, f"ignored REGISTER: call reference {cr:#04x} is in use")
            return
        leg = Leg(aid, cr, user_opened=True)
        self._legs[(aid, True, cr)] = leg
        comps = self._decode_all(aid, msg.facility, answer_cr=cr, release=leg, now=now)
        if leg.state is not LegState.ACTIVE:
            return  # a malformed component was rejected in the RELEASE COMPLETE
        invokes = [c for c in comps if isinstance(c, Invoke)]
        if not invokes:
            self._net_clear(leg, CAUSE_NORMAL_UNSPECIFIED, now, complete=True)
            return
        comp = invokes[0]
        op = str(comp.operation)
        if op in _CCT_REQUEST_OPS:
            self._handle_cct_request(access, leg, comp, _CCT_REQUEST_OPS[op], msg, now)
            return
        # etsi-ccbs.md §3 notes: a network may take the PTMP requests in a REGISTER
        # too; the answer then travels in the RELEASE COMPLETE closing it.
        answer, after = self._answer_invoke(access, comp, now)
        self._net_clear(leg, CAUSE_NORMAL_CLEARING, now, (answer,) if answer else (), complete=True)
        if after is not None:
            after(now)

    def _handle_cct_request(
        self, access: Access, leg: Leg, comp: Invoke, kind: CcKind, msg: Q931, now: float
    ) -> None:
        """CCBS-T-Request / CCNR-T-Request in a REGISTER (EN 300 359-1 private-networks
        module; etsi-ccbs.md §5.7): accepted → result in a FACILITY, the connection stays
        up; refused → error in the RELEASE COMPLETE."""
        op = str(comp.operation)
        arg = comp.argument
        if not isinstance(arg, rt.CCBS_T_RequestArg):
            answer = rose.reject(comp.invoke_id, _MISTYPED_ARGUMENT)
            self._net_clear(leg, CAUSE_NORMAL_UNSPECIFIED, now, (answer,), complete=True)
            return
        destination = rose.number_of(arg.destination_address) or ""
        bearer = arg.q931_info_element
        retained = self._find_ptp_retained(access, destination, bearer)
        originating = rose.number_of(arg.originating_address)
        if retained is not None:
            a_number = retained.a_number
        else:
            a_number = self._screen(access, originating or msg.calling)
        error = self._cct_refusal(access, kind, destination)
        if error is None and any(
            r.ptp
            and r.a_access == access.access_id
            and r.a_number == a_number
            and r.b_number == destination
            and r.bearer == bearer
            for r in self._records.values()
        ):
            error = "shortTermDenial"  # the same request is active already
        if error is not None:
            self._note(access.access_id, f"{op} for {destination} refused: {error}")
            answer = rose.return_error(comp.invoke_id, op, error)
            self._net_clear(leg, CAUSE_NORMAL_UNSPECIFIED, now, (answer,), complete=True)
            return
        if retained is not None:
            self._drop_linkage(retained, now, announce=False)
        record = self._new_record(
            kind,
            access.access_id,
            a_number,
            destination,
            bearer,
            None,
            access.recall_mode,
            ptp=True,
            now=now,
        )
        record.retention = arg.retention_supported and self.retention
        record.conn = leg
        leg.record = record
        self._note(access.access_id, f"{op} accepted: {a_number} -> {destination}")
        answer = rose.cct_request_result(comp.invoke_id, op, self.retention)
        self._send(access.access_id, Q931(MsgType.FACILITY, leg.cr, True, facility=(answer,)))
        self._activate(record, now)
        self._b_check(record.b_number, now)

    def _cct_refusal(self, access: Access, kind: CcKind, destination: str) -> str | None:
        if not access.ptp or not (access.ccbs if kind is CcKind.CCBS else access.ccnr):
            return "notSubscribed"
        error = access.refuse_error
        if error is None:
            mine = sum(1 for r in self._records.values() if r.a_access == access.access_id)
            if mine >= access.max_requests:
                error = "shortTermDenial"
            elif not destination:
                error = "longTermDenial"
            else:
                error = self._destination_refusal(destination)
        if error is not None and error not in CCT_REQUEST_ERRORS:
            error = "longTermDenial"
        return error

    def _find_ptp_retained(self, access: Access, destination: str, bearer: bytes) -> Linkage | None:
        for linkage in self._ptp_retained:
            if (
                linkage.access_id == access.access_id
                and linkage.b_number == destination
                and linkage.bearer == bearer
            ):
                return linkage
        return None

    def _facility_cct_connection(self, access: Access, leg: Leg, msg: Q931, now: float) -> None:
        """FACILITY on a CCBS-T connection: CCBS-T-Suspend / CCBS-T-Resume (A busy/free)."""
        aid = access.access_id
        for comp in self._decode_all(aid, msg.facility, answer_cr=leg.cr):
            record = leg.record
            if not isinstance(comp, Invoke) or record is None or record.ended:
                continue
            if comp.operation == "CCBS-T-Suspend":
                self._note(aid, f"CCBS-T-Suspend: {record.a_number} -> {record.b_number}")
                if record.state is CcState.CALLBACK:
                    continue
                held_b = record.state is CcState.WAIT_CALLBACK
                _cancel(record.t_ccbs3)
                record.t_ccbs3 = None
                self._set_state(record, CcState.SUSPENDED)
                if held_b:
                    self._b_check(record.b_number, now)
            elif comp.operation == "CCBS-T-Resume":
                self._note(aid, f"CCBS-T-Resume: {record.a_number} -> {record.b_number}")
                if record.state is CcState.SUSPENDED:
                    self._set_state(record, CcState.ACTIVATED)
                    self._b_check(record.b_number, now)
            else:
                self._reject(aid, leg.cr, comp.invoke_id, _UNRECOGNIZED_OPERATION)

    # ======================================= destination side: our MSNs as user B

    def _watch_destination(self, msn: str, now: float) -> None:
        watch = self._watches.get(msn)
        if watch is None:
            watch = DestinationWatch(msn, self._msn_owner[msn])
            self._watches[msn] = watch
        self._schedule_destination_poll(watch, now)

    def _unwatch_destination(self, msn: str) -> None:
        watch = self._watches.pop(msn, None)
        if watch is None:
            return
        _cancel(watch.poll_timer, watch.answer_timer)
        if watch.pending is not None:
            self._pending.pop((watch.access_id, watch.pending.invoke_id), None)

    def _schedule_destination_poll(self, watch: DestinationWatch, now: float) -> None:
        if watch.poll_timer is None and watch.pending is None:
            watch.poll_timer = self._start(
                self.timers.t_destination_poll,
                "destination-poll",
                now,
                partial(self._poll_destination, watch),
            )

    def _poll_destination(self, watch: DestinationWatch, now: float) -> None:
        """StatusRequest (ETS 300 196-1 annex D) toward the access of our MSN, carrying
        the bearer of the first queued request; T-STATUS bounds the answers."""
        _cancel(watch.poll_timer)
        watch.poll_timer = None
        if self._watches.get(watch.msn) is not watch or watch.pending is not None:
            return
        queue = self._b_queues.get(watch.msn)
        if not queue:
            return
        if self._engaged.get(watch.msn, 0) > 0 or any(r.state in HOLDING_B for r in queue):
            # in a call through the exchange, or already being served: look again later
            self._schedule_destination_poll(watch, now)
            return
        access = self._accesses[watch.access_id]
        invoke_id = self._invoke_id(access)
        pending = PendingInvoke(access.access_id, invoke_id, "StatusRequest", msn=watch.msn)
        self._pending[(access.access_id, invoke_id)] = pending
        watch.pending = pending
        self._broadcast(access, rose.status_request(invoke_id, queue[0].bearer), msn=watch.msn)
        watch.answer_timer = self._start(
            self.timers.t_status, "T-STATUS", now, partial(self._t_status, watch)
        )

    def _destination_answer(
        self, pending: PendingInvoke, status: DestinationStatus, now: float
    ) -> None:
        watch = self._watches.get(pending.msn or "")
        if watch is None or watch.pending is not pending:
            return
        pending.answers.append(status)
        if status is DestinationStatus.COMPATIBLE_AND_FREE:
            self._destination_decided(watch, now)
        elif status is DestinationStatus.COMPATIBLE_AND_BUSY:
            # busy for now; T-STATUS still runs: another terminal may say "free"
            self._mark_b_busy(watch.msn)

    def _t_status(self, watch: DestinationWatch, now: float) -> None:
        watch.answer_timer = None
        if watch.pending is not None:
            self._destination_decided(watch, now)

    def _destination_decided(self, watch: DestinationWatch, now: float) -> None:
        pending = watch.pending
        assert pending is not None
        _cancel(watch.answer_timer)
        watch.answer_timer = None
        watch.pending = None
        self._pending.pop((pending.access_id, pending.invoke_id), None)
        answers = pending.answers
        if DestinationStatus.COMPATIBLE_AND_FREE in answers:
            watch.status = "free"
            self._note(watch.access_id, f"destination {watch.msn} answers: free")
            self._b_check(watch.msn, now)
        elif DestinationStatus.COMPATIBLE_AND_BUSY in answers:
            self._note(watch.access_id, f"destination {watch.msn} answers: busy")
            self._mark_b_busy(watch.msn)
        elif answers:
            # only "incompatible": B can never take the first queued call
            watch.status = "unknown"
            queue = self._b_queues.get(watch.msn, [])
            if queue:
                self._end_record(
                    queue[0], now, EraseReason.NORMAL_UNSPECIFIED, why="B is incompatible"
                )
        else:
            watch.status = "unknown"
            self._note(watch.access_id, f"destination {watch.msn}: no answer to StatusRequest")
        if self._watches.get(watch.msn) is watch:
            self._schedule_destination_poll(watch, now)

    # ============================================================ facility helpers

    def _decode_all(
        self,
        access_id: str,
        facility: tuple[bytes, ...],
        *,
        answer_cr: int | None,
        release: Leg | None = None,
        now: float = 0.0,
    ) -> list[rose.Component]:
        """Decode the Facility IEs of a user message. A malformed one (everything a user
        sends is addressed to the network) is answered with the ROSE Reject its
        FacilityError names — in the RELEASE COMPLETE of *release* if given."""
        out: list[rose.Component] = []
        for ie in facility:
            try:
                out.extend(rose.decode(ie))
            except FacilityError as exc:
                self._note(access_id, f"malformed facility from the user: {exc}")
                if exc.problem is None:
                    continue
                answer = rose.reject(exc.invoke_id, exc.problem)
                if release is not None:
                    self._net_clear(
                        release, CAUSE_NORMAL_UNSPECIFIED, now, (answer,), complete=True
                    )
                    return []
                self._send(access_id, Q931(MsgType.FACILITY, answer_cr, True, facility=(answer,)))
        return out

    def _reject(
        self, access_id: str, cr: int | None, invoke_id: int | None, problem: tuple[str, int]
    ) -> None:
        self._send(
            access_id,
            Q931(MsgType.FACILITY, cr, True, facility=(rose.reject(invoke_id, problem),)),
        )

    def _invoke_id(self, access: Access) -> int:
        # per D channel, unique among the network's outstanding invokes (§2.2)
        while True:
            access.last_invoke = access.last_invoke % 0x7FFF + 1
            if (access.access_id, access.last_invoke) not in self._pending:
                return access.last_invoke

    def _broadcast(self, access: Access, ie: bytes, *, msn: str) -> None:
        """FACILITY on the dummy call reference to every terminal of the bus (§2.5)."""
        self._send(access.access_id, Q931(MsgType.FACILITY, None, True, called=msn, facility=(ie,)))

    # ================================================================ plumbing

    def _access(self, access_id: str) -> Access:
        try:
            return self._accesses[access_id]
        except KeyError:
            raise KeyError(f"no access {access_id!r}") from None

    def _subscriber(self, number: str) -> Subscriber:
        try:
            return self._subscribers[number]
        except KeyError:
            raise KeyError(f"no external subscriber {number!r}") from None

    def _send(self, access_id: str, msg: Q931) -> None:
        access = self._accesses[access_id]
        self._trace(access_id, msg, inbound=False)
        if access.lose_next > 0:
            access.lose_next -= 1
            self._note(access_id, "    ^ lost (fault injection)")
        elif access.deliver is None:
            self._note(access_id, "    ^ dropped (no controller attached)")
        else:
            self._outbox.append((access_id, msg))

    def _flush(self) -> None:
        """Deliver queued messages in order. A deliver callback may call back into the
        exchange; what that produces joins the same queue (no reordering, no recursion)."""
        if self._flushing:
            return
        self._flushing = True
        try:
            while self._outbox:
                access_id, msg = self._outbox.popleft()
                deliver = self._accesses[access_id].deliver
                if deliver is not None:
                    deliver(msg)
        finally:
            self._flushing = False

    def _note(self, access_id: str | None, text: str) -> None:
        self.log.append(LogEntry(self._now, access_id, text))

    def _trace(self, access_id: str, msg: Q931, *, inbound: bool) -> None:
        parts = ["U->N" if inbound else "N->U", msg.type.name]
        parts.append("cr=dummy" if msg.cr is None else f"cr={msg.cr:#04x}")
        if msg.called:
            parts.append(f"called={msg.called}")
        if msg.calling:
            parts.append(f"calling={msg.calling}")
        if msg.cause is not None:
            parts.append(f"cause=#{msg.cause}")
        parts.extend("{" + rose.describe(ie) + "}" for ie in msg.facility)
        self._note(access_id, " ".join(parts))


# ---------------------------------------------------------------------- helpers


def _cancel(*timers: Timer | None) -> None:
    for timer in timers:
        if timer is not None:
            timer.cancel()


def _checked_error(error: str | None) -> str | None:
    if error is not None and error not in PTMP_REQUEST_ERRORS:
        known = ", ".join(sorted(PTMP_REQUEST_ERRORS))
        raise ValueError(f"unknown CCBSRequest error {error!r}; known: {known}")
    return error


_LEG_HANDLERS: Final[dict[MsgType, Callable[[SimExchange, Leg, Q931, float], None]]] = {
    MsgType.ALERTING: SimExchange._on_alerting,
    MsgType.CALL_PROCEEDING: SimExchange._on_call_proceeding,
    MsgType.CONNECT: SimExchange._on_connect,
    MsgType.CONNECT_ACK: SimExchange._on_connect_ack,
    MsgType.FACILITY: SimExchange._on_facility,
    MsgType.DISCONNECT: SimExchange._on_disconnect,
    MsgType.RELEASE: SimExchange._on_release,
    MsgType.RELEASE_COMPLETE: SimExchange._on_release_complete,
}
