"""``CcbsEngine``: events in, actions out — the pure CCBS/CCNR decision core.

This module owns the running set of CC requests, their indices (per controller
network ids, per-port queues), the timer heap and the translation of events into the
triggers of ``machine.py``'s rulebooks, and implements the callbacks those rulebooks
name. It must not do I/O, read a clock, import asyncio or decide states itself (only
the tables in ``machine.py`` do).

Contract (architecture.md §3):

* ``handle(event, now)`` / ``handle_timer(now)`` / ``restore(records, now)`` return
  the actions of that step; ``next_deadline()`` says when ``handle_timer`` is due.
  ``now`` is POSIX time in seconds (lifetimes and quiet hours are wall-clock
  matters and must survive a restart). Same inputs, same outputs.
* Persist-then-act: after each step the runtime commits ``take_changes()`` (changed
  request snapshots + history rows) and only then executes the actions.
* Requests are compact ``CcRequest`` records. One ``transitions.Machine`` per role
  holds one permanently attached model; the engine binds that model to the request an
  event is for, fires the trigger and unbinds it. Attaching a model per request
  costs ~25 kB and an O(n) ``add_model`` (see ``bench/engine.py``); binding costs
  nothing. Callbacks never fire triggers on other requests directly: they queue the
  work (``_later``), which runs after the current transition, in order.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from transitions import Machine

from ccbs_isdn.engine import machine as rules
from ccbs_isdn.engine.actions import (
    Cadence,
    CancelDone,
    ClaimCall,
    ConnectCall,
    ConnectPorts,
    DisconnectPort,
    EngineAction,
    Notify,
    NotifyKind,
    PlayTone,
    PollPorts,
    RequestAccepted,
    RequestRefused,
    Ring,
    StatusReply,
    StopRing,
    Tone,
)
from ccbs_isdn.engine.directory import Directory
from ccbs_isdn.engine.events import (
    Activate,
    Book,
    CallFailed,
    Cancel,
    Dialled,
    EngineEvent,
    PortsAvailable,
    PortSource,
    PortState,
    PortStates,
    PortsUnavailable,
    RingAnswered,
    RingEnded,
    StatusQuery,
    StoreState,
)
from ccbs_isdn.engine.policy import CallerRecallMode, Policy, Refusal
from ccbs_isdn.engine.request import CcRequest, Changes, HistoryEntry, RequestRecord, Role
from ccbs_isdn.errors import LocalError
from ccbs_isdn.isdn import (
    CAUSE_NO_ANSWER,
    CAUSE_NO_USER_RESPONDING,
    CAUSE_USER_BUSY,
    CallAlerting,
    CallConnected,
    CallEnded,
    CcAvailable,
    CcBFree,
    CcDeactivate,
    CcErase,
    CcEraseCallLinkage,
    CcInterrogate,
    CcInterrogateResult,
    CcKind,
    CcRemoteUserFree,
    CcRequestResult,
    CcStatusAnswer,
    CcStatusRequest,
    CcStopAlerting,
    CcTConnectionCleared,
    CcTRemoteUserFree,
    CcTResume,
    CcTSuspend,
    ControllerDown,
    ControllerUp,
    DestinationStatus,
    DestinationStatusAnswer,
    DestinationStatusRequest,
    HangUp,
    PlaceCall,
)
from ccbs_isdn.isdn import CcRequest as IsdnCcRequest

#: Local states in which a request is using B ("being served"): B's FIFO waits.
_SERVING = frozenset({"Guard", "Recheck", "RecallA", "RecallB", "Interrupted"})

#: Final state -> notification kind.
_FINAL_NOTIFY = {
    rules.COMPLETED: NotifyKind.COMPLETED,
    rules.CANCELLED: NotifyKind.CANCELLED,
    rules.EXPIRED: NotifyKind.EXPIRED,
    rules.FAILED: NotifyKind.FAILED,
}

#: Q.850 causes that make a failed call eligible for CC, and the CC kind they mean.
_FAILED_CALL_KIND = {
    CAUSE_USER_BUSY: CcKind.CCBS,
    CAUSE_NO_USER_RESPONDING: CcKind.CCNR,
    CAUSE_NO_ANSWER: CcKind.CCNR,
}

#: ISDN indication -> rulebook trigger (CCBSErase: by reason, machine.ERASE_TRIGGERS).
_NETWORK_TRIGGERS: dict[type, str] = {
    CcRemoteUserFree: "remote_user_free",
    CcBFree: "bfree",
    CcStopAlerting: "stop_alerting",
    CcTRemoteUserFree: "remote_user_free",
    CcTConnectionCleared: "conn_cleared",
    CallAlerting: "call_alerting",
    CallConnected: "call_connected",
}

#: CCBSCall errors in the clearing of a recall that end the request (§5.3).
_RECALL_REFUSALS = frozenset({"invalidCCBSReference", "alreadyAccepted"})

#: Information transfer capabilities (Q.931 BC octet 3, bits 5-1) an analog port can
#: take: speech and 3.1 kHz audio (StatusRequest compatibility, ETS 300 196-1 annex D).
_ANALOG_CAPABILITIES = frozenset({0x00, 0x10})

_HEAP_STATE, _HEAP_LIFE, _HEAP_INTERROGATE = 0, 1, 2
_DIALLED_MEMORY = 4096  # outgoing ISDN calls remembered for attributing CC offers


@dataclass(slots=True)
class _Port:
    busy: bool | None = None  # None = unknown until an event or poll says
    available: bool = True
    since: float = -math.inf  # when the current busy/free state began
    polled_at: float = -math.inf


@dataclass(frozen=True, slots=True)
class _FailedCall:
    number: str
    kind: CcKind
    at: float
    ctrl: int | None
    call_id: str
    offer_id: int | None = None  # the monitor offer (Available) made for this call


@dataclass(frozen=True, slots=True)
class _Dial:
    caller: str
    number: str
    ctrl: int | None


@dataclass(frozen=True, slots=True)
class _Reply:
    tag: str
    actor: str


_K = TypeVar("_K", bound=Hashable)

_UNBOUND = CcRequest(0, Role.LOCAL, CcKind.CCBS, "Waiting", "", "", 0.0, 0.0)


class _Model:
    """The single model of one role's machine, bound to one request per trigger.

    Conditions and callbacks named in ``machine.py`` are methods here; they read
    ``self.req``/``self.now``/``self.event`` and call back into the engine.
    """

    def __init__(self, engine: CcbsEngine) -> None:
        self.e = engine
        self.req = _UNBOUND
        self.now = 0.0
        self.event: object = None
        self.trigger_name = ""

    @property
    def state(self) -> str:
        return self.req.state

    @state.setter
    def state(self, value: str) -> None:
        self.req.state = value

    # ------------------------------------------------------------- conditions

    def is_ptp(self) -> bool:
        return self.req.ptp

    def notify_mode(self) -> bool:
        return self.e.policy.recall_mode_for(self.req.caller) is CallerRecallMode.NOTIFY

    def a_can_take_recall(self) -> bool:
        return self.e._a_free(self.req, self.now)

    def can_ring_a(self) -> bool:
        return (not self.notify_mode() and not self.req.ring_port
                and self.req.timer != "retry" and self.e._a_free(self.req, self.now))

    def retries_left(self) -> bool:
        return self.req.missed < self.e.policy.recall_retries

    def b_known_free(self) -> bool:
        return self.e._b_free(self.req)

    def b_has_answered(self) -> bool:
        return self.req.b_answered

    def recall_refused(self) -> bool:
        event = self.event
        return isinstance(event, CallEnded) and event.error in _RECALL_REFUSALS

    # ------------------------------------------------- monitor: activation

    def send_request(self) -> None:
        req, e = self.req, self.e
        assert req.ctrl is not None
        if req.handle is not None:
            e._by_handle.pop((req.ctrl, req.handle), None)
        req.handle = e._new_handle()
        e._by_handle[(req.ctrl, req.handle)] = req.id
        e._emit(IsdnCcRequest(req.ctrl, handle=req.handle, kind=req.kind,
                              linkage_id=None if req.ptp else req.linkage_id,
                              called=req.target, calling=req.calling, bearer=req.bearer))
        e._arm(req, "t_activate", self.now + e.policy.timers.t_activate)
        e._enlist(req)

    def activated(self) -> None:
        req, e, event = self.req, self.e, self.event
        assert isinstance(event, CcRequestResult) and req.ctrl is not None
        if req.linkage_id is not None:
            e._unindex(e._by_linkage, (req.ctrl, req.linkage_id), req.id)
            req.linkage_id = None  # §6: drop L; a later EraseCallLinkageID is not for us
        req.recall_mode = event.recall_mode
        req.retention = event.retention
        if not req.ptp:  # on PTP the handle keeps naming the CCBS-T connection
            assert req.handle is not None and event.reference is not None
            e._unindex(e._by_handle, (req.ctrl, req.handle), req.id)
            req.reference = event.reference & 0x7F  # 7-bit, as libpri masks it
            stale = e._by_ref.get((req.ctrl, req.reference))
            if stale is not None and stale != req.id:
                # the network handed out R again: it no longer holds our older request
                old = e._reqs[stale]
                e._later(lambda: e._fire_if_active(old, "reconcile_lost", self.now, None,
                                                   "network", "reference reused"))
            e._by_ref[(req.ctrl, req.reference)] = req.id
        first = req.expires_at is None  # not a CC-T request renewed after a restart
        e._set_expiry(req, self.now + e.policy.supervision(req.kind, req.ptp))
        e._accepted(req)
        if first:
            e._notify(NotifyKind.ACTIVATED, req)

    def note_reference(self) -> None:
        event = self.event
        if isinstance(event, CcRequestResult) and event.reference is not None:
            self.req.reference = event.reference & 0x7F

    def activation_failed(self) -> None:
        req, e, event = self.req, self.e, self.event
        if isinstance(event, CcRequestResult):
            reason = f"network:{event.error or 'unknown'}"
            text = f"the network refused call completion ({event.error})"
        elif isinstance(event, CcTConnectionCleared):
            reason, text = "connection-cleared", "the network cleared the CC connection"
        else:
            reason, text = "activation-timeout", "the network did not answer the request"
        req.reason = reason
        reply = e._pending.pop(req.id, None)
        if e.policy.redial_fallback and req.a_port is not None and reply is not None:
            e._later(lambda: e._start_fallback(req, reply, self.now))
            return
        if reply is not None:
            e._emit(RequestRefused(reply.tag, req.caller, reason, text))

    def await_adoption(self) -> None:
        """After a restart in Requested: wait for the CCBSInterrogate answer before
        deciding whether the request reached the network (``_adopt``)."""
        req, e = self.req, self.e
        e._adopting.add(req.id)
        t = e.policy.timers
        e._arm(req, "t_activate", self.now + t.t_interrogate + t.t_activate)

    def offer_gone(self) -> None:
        self.req.reason = {
            "erase_linkage": "linkage-erased",
            "retention": "offer-expired",
        }.get(self.trigger_name, "cancelled")

    # ------------------------------------------------- monitor: network side

    def send_deactivate(self) -> None:
        req, e = self.req, self.e
        if req.ctrl is None:
            return
        if req.ptp:
            if req.handle is not None:  # CC-T: clearing the connection cancels
                e._emit(CcDeactivate(req.ctrl, handle=req.handle, reference=None, kind=req.kind))
        elif req.reference is not None:
            e._emit(CcDeactivate(req.ctrl, handle=e._new_handle(), reference=req.reference,
                                 kind=req.kind))

    def send_t_suspend(self) -> None:
        req = self.req
        assert req.ctrl is not None and req.handle is not None
        req.reason = self.e._suspend_reason(req, self.now)
        self.e._emit(CcTSuspend(req.ctrl, handle=req.handle))

    def send_t_resume(self) -> None:
        req = self.req
        assert req.ctrl is not None and req.handle is not None
        req.reason = ""
        self.e._emit(CcTResume(req.ctrl, handle=req.handle))

    def erased(self) -> None:
        event = self.event
        if isinstance(event, CcErase):
            self.req.reason = f"erase:{event.reason.name.lower().replace('_', '-')}"
        else:
            self.req.reason = "connection-cleared"

    def network_lost(self) -> None:
        self.req.reason = "network-lost"

    def network_done(self) -> None:
        self.req.reason = "recalled"

    def await_reconcile(self) -> None:
        """No interrogation answer within T-INTERROGATE: assume R is still held."""
        t = self.e.policy.timers
        self.e._arm(self.req, "reconcile_held", self.now + t.t_interrogate)

    def reconcile(self) -> None:
        req = self.req
        if req.ctrl is not None and not req.ptp:
            self.e._to_interrogate.add((req.ctrl, req.kind))

    # ------------------------------------------------------- monitor: recall

    def recall_a(self) -> None:
        """§6 RemoteUserFree: alert the user — ring A (auto) or tell A (notify)."""
        req, e = self.req, self.e
        if self.notify_mode():
            e._notify(NotifyKind.RECALL, req, "B is free: call now")
        elif self.can_ring_a():
            self.ring_a()
        elif req.a_port is not None and e.port_busy(req.a_port) is None:
            e._emit(PollPorts((req.a_port,)))  # A's line unknown: ring once a poll says free

    def place_recall(self) -> None:
        req, e = self.req, self.e
        assert req.ctrl is not None
        e._clear_ring(req, stop=False)  # the ring ended by the answer (ring-trip)
        call_id = e._new_call_id(req)
        e._emit(PlaceCall(req.ctrl, call_id=call_id, called=req.target, calling=req.calling,
                          bearer=req.bearer,
                          cc_reference=None if req.ptp else req.reference,
                          cc_t_handle=req.handle if req.ptp else None))
        if req.a_port is not None:
            e._emit(ConnectCall(req.a_port, req.ctrl, call_id))

    def claim_recall(self) -> None:
        req, e, event = self.req, self.e, self.event
        assert isinstance(event, Dialled)
        e._clear_ring(req, stop=True)
        e._set_call(req, event.call_id)
        e._emit(ClaimCall(event.call_id, req.id,
                          cc_reference=None if req.ptp else req.reference,
                          cc_t_handle=req.handle if req.ptp else None))

    def recall_connected(self) -> None:
        req = self.req
        req.reason = "recalled"
        if req.ptp and req.ctrl is not None and req.handle is not None:
            # chan_misdn: the CC-T link is released once the recall is answered
            self.e._emit(CcDeactivate(req.ctrl, handle=req.handle, reference=None,
                                      kind=req.kind))

    def recall_failed(self) -> None:
        event = self.event
        assert isinstance(event, CallEnded)
        self.req.reason = f"recall-refused:{event.error}"

    def recall_call_failed(self) -> None:
        self.req.reason = ""

    def watch_call(self) -> None:
        event = self.event
        assert isinstance(event, Dialled)
        self.e._set_call(self.req, event.call_id)

    def forget_call(self) -> None:
        self.e._set_call(self.req, "")

    def own_call_connected(self) -> None:
        self.req.reason = "own-call"

    def hang_up_call(self) -> None:
        req = self.req
        if req.call_id and req.ctrl is not None and req.call_id not in self.e._released:
            # the call stays indexed: its CallEnded still has to reach this request
            self.e._released.add(req.call_id)
            self.e._emit(HangUp(req.ctrl, call_id=req.call_id))

    def restart_recall(self) -> None:
        self.e._clear_ring(self.req, stop=True)
        self.restart_poll()

    # ------------------------------------------------------------ local agent

    def start_guard(self) -> None:
        req, e = self.req, self.e
        assert req.b_port is not None
        since = e._port(req.b_port).since
        e._arm(req, "guard", max(self.now, since + e.policy.timers.guard))

    def start_recheck(self) -> None:
        req, e = self.req, self.e
        e._recheck_started[req.id] = self.now
        e._arm(req, "checked", self.now + e.policy.timers.recheck)
        e._emit(PollPorts(e._ports_of(req)))

    def requeue(self) -> None:
        req = self.req
        req.reason = ""
        self.e._recheck_started.pop(req.id, None)
        self.e._release(req)
        if req.b_port is not None:
            port = req.b_port
            self.e._later(lambda: self.e._serve_b(port, self.now))

    def notify_free(self) -> None:
        self.e._notify(NotifyKind.RECALL, self.req, "B is free: call now")
        self.requeue()

    def suspend(self) -> None:
        req, e = self.req, self.e
        e._recheck_started.pop(req.id, None)
        req.reason = e._suspend_reason(req, self.now)
        quiet_end = e.policy.quiet_until(req.caller, self.now)
        if quiet_end is not None:
            e._arm(req, "quiet_end", quiet_end)
        e._release(req)
        if req.b_port is not None:  # the next in B's FIFO may be served meanwhile
            port = req.b_port
            e._later(lambda: e._serve_b(port, self.now))

    def ring_a(self) -> None:
        req, e = self.req, self.e
        assert req.a_port is not None
        e._recheck_started.pop(req.id, None)
        target = e.directory.ext(req.target)
        e._ring(req, req.a_port, Cadence.RECALL, e.policy.timers.a_answer,
                clip_number=req.target,
                clip_name=e.policy.recall_clip_name if target is None or not target.name
                else target.name)
        e._arm(req, "a_missed", self.now + e.policy.timers.a_answer)
        e._notify(NotifyKind.RECALL, req, f"ringing {req.caller}")

    def ring_b(self) -> None:
        req, e = self.req, self.e
        assert req.a_port is not None and req.b_port is not None
        e._clear_ring(req, stop=False)  # A answered: the bridge ended that ring itself
        e._emit(PlayTone(req.a_port, Tone.RINGBACK))
        caller = e.directory.ext(req.caller)
        key = e._ring(req, req.b_port, Cadence.INTERNAL, e.policy.timers.b_answer,
                      clip_number=req.caller, clip_name=caller.name if caller else "")
        e._claim(req, req.a_port)  # A is on the line for this recall
        e._emit(ConnectPorts(req.a_port, req.b_port, key))
        e._arm(req, "b_missed", self.now + e.policy.timers.b_answer)

    def b_gone(self) -> None:
        req = self.req
        assert req.a_port is not None
        self.e._clear_ring(req, stop=False)
        self.e._emit(PlayTone(req.a_port, Tone.BUSY))
        self.requeue()

    def schedule_retry(self) -> None:
        req, e = self.req, self.e
        req.missed += 1
        e._clear_ring(req, stop=True)
        e._release(req)
        req.reason = "recall-missed"
        e._arm(req, "retry", self.now + e.policy.timers.recall_retry)

    def recall_not_answered(self) -> None:
        req = self.req
        req.missed += 1
        self.e._clear_ring(req, stop=True)
        req.reason = "recall-not-answered"

    def connected(self) -> None:
        self.e._clear_ring(self.req, stop=False)
        self.req.reason = "recalled"

    def b_not_answering(self) -> None:
        req, e = self.req, self.e
        e._clear_ring(req, stop=True)
        if req.a_port is not None:
            e._emit(DisconnectPort(req.a_port))
            e._emit(PlayTone(req.a_port, Tone.BUSY))

    def abandoned(self) -> None:
        req, e = self.req, self.e
        e._clear_ring(req, stop=True)
        if req.a_port is not None and req.role is Role.LOCAL:
            e._emit(DisconnectPort(req.a_port))
        req.reason = "abandoned"

    def claim_own_call(self) -> None:
        req, e, event = self.req, self.e, self.event
        assert isinstance(event, Dialled)
        e._clear_ring(req, stop=True)
        e._emit(ClaimCall(event.call_id, req.id))
        req.reason = "own-call"

    def lines_lost(self) -> None:
        req = self.req
        self.e._clear_ring(req, stop=True)
        self.e._release(req)
        self.e._recheck_started.pop(req.id, None)
        req.reason = "bridge-unavailable"

    def expired(self) -> None:
        self.e._clear_ring(self.req, stop=True)
        self.req.reason = "lifetime"

    def mark_cancelled(self) -> None:
        self.req.reason = "cancelled"

    def mark_lifetime(self) -> None:
        self.req.reason = "lifetime"

    def cancelled(self) -> None:
        req, e = self.req, self.e
        in_recall_b = req.ring_port and req.ring_port == req.b_port
        e._clear_ring(req, stop=True)
        if in_recall_b and req.a_port is not None:
            e._emit(DisconnectPort(req.a_port))
        req.reason = "cancelled"

    def stop_ring(self) -> None:
        self.e._clear_ring(self.req, stop=True)
        self.e._release(self.req)

    def restart_recheck(self) -> None:
        req, e = self.req, self.e
        was_b = req.ring_port != "" and req.ring_port == req.b_port
        e._clear_ring(req, stop=True)
        if was_b and req.a_port is not None:
            e._emit(DisconnectPort(req.a_port))
        self.start_recheck()

    def restart_poll(self) -> None:
        # collected: restore() / a reconnect asks for one poll of all these ports
        self.e._to_poll.update(self.e._ports_of(self.req))

    # ----------------------------------------------------------------- redial

    def place_probe(self) -> None:
        req, e = self.req, self.e
        assert req.ctrl is not None
        call_id = e._new_call_id(req)
        e._emit(PlaceCall(req.ctrl, call_id=call_id, called=req.target, calling=req.calling,
                          bearer=req.bearer))
        req.b_answered = False
        # B neither alerting nor refusing: give the probe up like a failed call
        e._arm(req, "call_failed", self.now + e.policy.timers.b_answer)

    def schedule_probe(self) -> None:
        self.hang_up_call()
        self.e._arm(self.req, "probe", self.now + self.e.policy.timers.redial_interval)

    def schedule_retry_probe(self) -> None:
        self.req.missed += 1
        self.req.reason = "recall-missed"
        self.schedule_probe()

    def note_b_answered(self) -> None:
        self.req.b_answered = True

    def bridge_probe(self) -> None:
        req, e = self.req, self.e
        assert req.a_port is not None and req.ctrl is not None
        e._clear_ring(req, stop=False)
        e._emit(ConnectCall(req.a_port, req.ctrl, req.call_id))

    def probe_lost(self) -> None:
        req = self.req
        if req.state == "Waiting" and req.a_port is not None and self.trigger_name == "call_failed":
            port = self.e._port(req.a_port)
            if port.busy:  # A was already on the line (Connecting): tell him
                self.e._emit(PlayTone(req.a_port, Tone.BUSY))
        self.schedule_probe()


class CcbsEngine:
    """The CCBS/CCNR engine. Construct with the directory and policy; feed it events
    and timer ticks; commit ``take_changes()`` before executing what it returns."""

    def __init__(self, directory: Directory, policy: Policy | None = None, *,
                 last_id: int = 0) -> None:
        self.directory = directory
        self.policy = policy if policy is not None else Policy()
        self._last_id = last_id
        self._next_handle_value = 1
        self._reqs: dict[int, CcRequest] = {}
        self._models: dict[Role, _Model] = {}
        self._machines: dict[Role, Machine] = {}
        for role in Role:
            model = _Model(self)
            self._models[role] = model
            self._machines[role] = rules.build_machine(role, model)
        # indices (all keyed by controller where the network's ids are involved)
        self._by_linkage: dict[tuple[int, int], int] = {}
        self._by_ref: dict[tuple[int, int], int] = {}
        self._by_handle: dict[tuple[int, int], int] = {}
        self._by_call: dict[str, int] = {}
        self._by_ring: dict[str, int] = {}
        self._offers: dict[str, int] = {}  # caller -> Available monitor request
        self._enlisted: set[int] = set()  # real requests (not offers): limits count these
        self._by_caller: dict[str, list[int]] = {}
        self._by_target: dict[str, list[int]] = {}
        self._pairs: dict[tuple[str, str], int] = {}
        self._b_queue: dict[str, list[int]] = {}  # local B port -> FIFO of request ids
        # ... of which those not simply Waiting (the only ones a line event of B can
        # move or a re-check wait for): B's events and polls skip a long FIFO
        self._b_active: dict[str, set[int]] = {}
        self._a_reqs: dict[str, set[int]] = {}  # port -> requests whose A is there
        self._claims: dict[str, int] = {}  # port -> request ringing/using it
        self._ports: dict[str, _Port] = {}
        self._ctrls: dict[int, ControllerUp] = {}
        self._interrogations: dict[int, tuple[int, CcKind, float]] = {}
        self._to_interrogate: set[tuple[int, CcKind]] = set()
        self._to_poll: set[str] = set()
        self._failed: dict[str, _FailedCall] = {}
        self._dialled: dict[str, _Dial] = {}
        self._pending: dict[int, _Reply] = {}  # reply owed when the network answers
        self._adopting: set[int] = set()  # restarted in Requested: see _adopt
        self._released: set[str] = set()  # calls we hung up, until their CallEnded
        self._recheck_started: dict[int, float] = {}
        # kept up to date at every change, so that the runtime's periodic look at them
        # (metrics, the poll watch-list) costs O(states + ports), not O(requests)
        self._counts: dict[tuple[str, str], int] = {}  # (role, state) -> active requests
        self._watched: dict[str, int] = {}  # port -> enlisted requests using it
        self._heap: list[tuple[float, int, int, int]] = []
        self._seq = itertools.count()
        self._store_writable = True
        # per-step scratch
        self._out: list[EngineAction] = []
        self._dirty: dict[int, CcRequest] = {}
        self._history: list[HistoryEntry] = []
        self._deferred: deque[Callable[[], None]] = deque()
        self._busy = False
        self._draining = False
        self._armed = False
        self._dispatch: dict[type, Callable[[Any, float], None]] = {
            Activate: self._on_activate,
            Book: self._on_book,
            Cancel: self._on_cancel,
            StatusQuery: self._on_status_query,
            Dialled: self._on_dialled,
            CallFailed: self._on_call_failed,
            PortState: self._on_port_state,
            PortStates: self._on_port_states,
            RingAnswered: self._on_ring_answered,
            RingEnded: self._on_ring_ended,
            PortsUnavailable: self._on_ports_unavailable,
            PortsAvailable: self._on_ports_available,
            StoreState: self._on_store_state,
            ControllerUp: self._on_controller_up,
            ControllerDown: self._on_controller_down,
            CcAvailable: self._on_cc_available,
            CcEraseCallLinkage: self._on_erase_linkage,
            CcRequestResult: self._on_request_result,
            CcInterrogateResult: self._on_interrogate_result,
            CcStatusRequest: self._on_status_request,
            CcRemoteUserFree: self._on_by_reference,
            CcBFree: self._on_by_reference,
            CcStopAlerting: self._on_by_reference,
            CcErase: self._on_by_reference,
            CcTRemoteUserFree: self._on_by_handle,
            CcTConnectionCleared: self._on_by_handle,
            CallAlerting: self._on_call,
            CallConnected: self._on_call,
            CallEnded: self._on_call_ended,
            DestinationStatusRequest: self._on_destination_status,
        }

    # =============================================================== public API

    def handle(self, event: EngineEvent, now: float) -> list[EngineAction]:
        """Process one event; returns the actions to execute (after persisting)."""
        self._begin()
        handler = self._dispatch.get(type(event))
        if handler is not None:
            handler(event, now)
        self._drain()
        return self._end()

    def handle_timer(self, now: float) -> list[EngineAction]:
        """Fire every timer due at ``now``."""
        self._begin()
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, key, kind = heapq.heappop(heap)
            if kind == _HEAP_INTERROGATE:
                pending = self._interrogations.get(key)
                if pending is not None and pending[2] == when:
                    del self._interrogations[key]  # no answer: keep what we have
                continue
            req = self._reqs.get(key)
            if req is None:
                continue
            if kind == _HEAP_STATE and req.deadline == when:
                trigger = req.timer
                req.deadline, req.timer = None, ""
                self._touch(req, now)
                self._fire(req, trigger, now, None, "timer")
            elif kind == _HEAP_LIFE and req.expires_at == when:
                self._fire(req, "lifetime", now, None, "timer")
            self._drain()
        return self._end()

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` must run next (None: no timer pending)."""
        heap = self._heap
        while heap:
            when, _, key, kind = heap[0]
            if kind == _HEAP_INTERROGATE:
                pending = self._interrogations.get(key)
                if pending is not None and pending[2] == when:
                    return when
            else:
                req = self._reqs.get(key)
                if req is not None and (
                    (kind == _HEAP_STATE and req.deadline == when)
                    or (kind == _HEAP_LIFE and req.expires_at == when)
                ):
                    return when
            heapq.heappop(heap)
        return None

    def take_changes(self) -> Changes:
        """Snapshots of the requests changed since the last call and their new
        history rows. Commit them before executing the step's actions."""
        changes = Changes(
            requests=tuple(req.snapshot() for req in self._dirty.values()),
            history=tuple(self._history),
        )
        self._dirty = {}
        self._history = []
        return changes

    def restore(self, records: Iterable[RequestRecord], now: float, *,
                last_id: int = 0) -> list[EngineAction]:
        """Rebuild from the store after a restart and return the reconciliation
        actions: CCBSInterrogate per controller for ISDN requests, a poll of the
        ports of local ones. A recall that was in flight is re-checked (new key),
        never rung again with the old one."""
        if self._reqs:
            raise LocalError("restore() needs a fresh engine")
        self._begin()
        restored: list[CcRequest] = []
        for record in sorted(records, key=lambda r: r.id):
            self._last_id = max(self._last_id, record.id)
            if not record.active:
                continue
            req = CcRequest.from_record(record)
            self._reqs[req.id] = req
            self._count(req.role, req.state, 1)
            self._index(req)
            if req.handle is not None:
                self._next_handle_value = max(self._next_handle_value, req.handle + 1)
            if req.deadline is not None:
                self._push(req.deadline, req.id, _HEAP_STATE)
            if req.expires_at is not None:
                self._push(req.expires_at, req.id, _HEAP_LIFE)
            restored.append(req)
        self._last_id = max(self._last_id, last_id)
        for req in restored:
            if req.id in self._reqs:
                self._fire(req, "restart", now, None, "restore")
        self._drain()
        self._start_interrogations(now)
        self._to_poll.update(p for req in self._reqs.values() for p in self._ports_of(req))
        self._flush_polls()
        return self._end()

    def reconfigure(self, directory: Directory | None = None,
                    policy: Policy | None = None) -> None:
        """Reload (SIGHUP): new limits and rules apply to new requests and decisions
        from now on; no request is lost."""
        if directory is not None:
            self.directory = directory
        if policy is not None:
            self.policy = policy

    # --------------------------------------------------------------- queries

    def get(self, request_id: int) -> RequestRecord | None:
        req = self._reqs.get(request_id)
        return req.snapshot() if req is not None else None

    def requests(self, caller: str | None = None) -> list[RequestRecord]:
        """Active requests (offers included), oldest first."""
        return [req.snapshot() for req in self._reqs.values()
                if caller is None or req.caller == caller]

    def __len__(self) -> int:
        return len(self._reqs)

    def state_counts(self) -> dict[tuple[str, str], int]:
        """(role, state) -> number of active requests. Kept at every change: O(states),
        however many requests there are."""
        return dict(self._counts)

    def watched_ports(self) -> frozenset[str]:
        """Ports origin or target of an active request (polled every 5 s by policy).
        Kept at every change: O(ports), however many requests there are."""
        return frozenset(self._watched)

    def port_busy(self, port: str) -> bool | None:
        state = self._ports.get(port)
        return state.busy if state is not None else None

    @property
    def last_id(self) -> int:
        return self._last_id

    # ============================================================ event handlers

    def _on_activate(self, event: Activate, now: float) -> None:
        caller = event.caller
        failed = self._failed.get(caller)
        offer = self._reqs.get(failed.offer_id) if failed and failed.offer_id else None
        if offer is not None and offer.state == "Available":
            self._activate_offer(offer, event.tag, event.actor, now)
            return
        if offer is not None and offer.id in self._enlisted:  # asked twice for one call
            self._refresh(offer, event.tag, event.actor, now)
            return
        window = self.policy.timers.activation_window
        if failed is None or failed.offer_id is not None or now > failed.at + window:
            self._refuse(event.tag, caller, "no-failed-call",
                         "there is no recent busy or unanswered call to complete")
            return
        if self.directory.port_of(failed.number) is not None:
            self._new_local(caller, failed.number, failed.kind, event.tag, event.actor, now)
        elif self.policy.redial_fallback:
            self._new_redial(caller, failed.number, failed.kind, failed.ctrl, event.tag,
                             event.actor, now)
        else:
            self._refuse(event.tag, caller, "not-offered",
                         f"the network did not offer call completion to {failed.number}")

    def _on_book(self, event: Book, now: float) -> None:
        if self.directory.port_of(event.number) is not None:
            self._new_local(event.caller, event.number, event.kind, event.tag, event.actor, now)
        elif self.policy.redial_fallback:
            self._new_redial(event.caller, event.number, event.kind, None, event.tag,
                             event.actor, now)
        else:
            self._refuse(event.tag, event.caller, "external-book",
                         "requests without a prior call work only for internal numbers")

    def _on_cancel(self, event: Cancel, now: float) -> None:
        if event.request_id is not None:
            found = self._reqs.get(event.request_id)
            victims = [found] if found is not None else []
        elif event.all_requests:
            victims = [self._reqs[rid] for rid in sorted(self._enlisted)]
        elif event.caller is not None:
            victims = [self._reqs[rid] for rid in self._by_caller.get(event.caller, ())
                       if event.target is None or self._reqs[rid].target == event.target]
        else:
            victims = []
        done: list[int] = []
        for req in victims:
            if req.id in self._reqs and self._fire(req, "cancel", now, event,
                                                   event.actor or "user"):
                done.append(req.id)
        if done:
            self._emit(CancelDone(event.tag, tuple(done)))
        else:
            self._refuse(event.tag, event.caller or "", "no-such-request",
                         "no matching pending request")

    def _on_status_query(self, event: StatusQuery, now: float) -> None:
        ids = tuple(self._by_caller.get(event.caller, ()))
        self._emit(StatusReply(event.tag, event.caller, bool(ids), ids))

    def _on_dialled(self, event: Dialled, now: float) -> None:
        if event.ctrl is not None:
            self._dialled[event.call_id] = _Dial(event.caller, event.number, event.ctrl)
            while len(self._dialled) > _DIALLED_MEMORY:
                del self._dialled[next(iter(self._dialled))]
        rid = self._pairs.get((event.caller, event.number))
        if rid is not None:
            self._fire(self._reqs[rid], "dialled", now, event, "caller")

    def _on_call_failed(self, event: CallFailed, now: float) -> None:
        kind = _FAILED_CALL_KIND.get(event.cause)
        if kind is None:
            return
        previous = self._failed.get(event.caller)
        if previous is not None and previous.offer_id is not None and event.call_id \
                and previous.call_id == event.call_id:
            return  # the same call, already offered CC by the network
        self._failed[event.caller] = _FailedCall(event.number, kind, now, event.ctrl,
                                                 event.call_id)

    def _on_port_states(self, event: PortStates, now: float) -> None:
        for state in event.states:
            self._on_port_state(state, now)
            self._drain()  # exactly as if every port had been its own event

    def _on_port_state(self, event: PortState, now: float) -> None:
        port = self._port(event.port)
        changed = port.busy is not event.busy
        port.busy = event.busy
        if changed:
            port.since = now
        if event.peer is not None:
            self._settle_interrupted(event.port, event.peer, now)
        if event.source is PortSource.POLL:
            port.polled_at = now
        elif not changed:
            return
        for rid in sorted(self._a_reqs.get(event.port, ())):
            req = self._reqs.get(rid)
            if req is None:
                continue
            if not event.busy:
                for trigger in ("a_hung_up", "resume", "a_free"):
                    if req.id in self._reqs:
                        self._fire(req, trigger, now, event, "line")
            self._check_recheck(req, now)
        # FIFO order (ids ascend in a FIFO); a Waiting request has no b_busy row and
        # no re-check, so the walk skips those
        for rid in sorted(self._b_active.get(event.port, ())):
            req = self._reqs.get(rid)
            if req is None:
                continue
            if event.busy:
                self._fire(req, "b_busy", now, event, "line")
            self._check_recheck(req, now)
        if not event.busy:
            self._serve_b(event.port, now)

    def _settle_interrupted(self, port: str, peer: str, now: float) -> None:
        """A recall restarted in RecallB (``Interrupted``) learns what ``port`` — its A
        or its B — is cross-connected to: B's ring-trip completes the connect
        (analog-bridge.md §3.9.4), so A and B connected means B answered."""
        ids = set(self._a_reqs.get(port, ()))
        ids.update(self._b_active.get(port, ()))
        for rid in sorted(ids):
            req = self._reqs.get(rid)
            if req is None or req.state != "Interrupted" or req.role is not Role.LOCAL:
                continue
            other = req.b_port if port == req.a_port else req.a_port
            trigger = "linked" if other is not None and peer == other else "unlinked"
            self._fire(req, trigger, now, None, "line",
                       f"{port} connected to {peer or 'nothing'}")

    def _on_ring_answered(self, event: RingAnswered, now: float) -> None:
        port = self._port(event.port)
        if port.busy is not True:
            port.busy, port.since = True, now  # ring-trip: no separate off-hook report
        req = self._ring_owner(event.port, event.key)
        if req is not None:
            trigger = "b_answered" if event.port == req.b_port else "a_answered"
            self._fire(req, trigger, now, event, "line")

    def _on_ring_ended(self, event: RingEnded, now: float) -> None:
        req = self._ring_owner(event.port, event.key)
        if req is not None:
            trigger = "b_missed" if event.port == req.b_port else "a_missed"
            self._fire(req, trigger, now, event, "line", event.reason)

    def _on_ports_unavailable(self, event: PortsUnavailable, now: float) -> None:
        affected: set[int] = set()
        for name in event.ports:
            port = self._port(name)
            port.available, port.busy = False, None
            affected.update(self._a_reqs.get(name, ()))
            affected.update(self._b_queue.get(name, ()))
            if name in self._claims:
                affected.add(self._claims[name])
        for rid in sorted(affected):
            req = self._reqs.get(rid)
            if req is not None:
                self._fire(req, "ports_unavailable", now, event, "bridge")

    def _on_ports_available(self, event: PortsAvailable, now: float) -> None:
        for name in event.ports:
            port = self._port(name)
            port.available, port.busy = True, None  # unknown until the poll answers
        if event.ports:
            self._emit(PollPorts(tuple(event.ports)))

    def _on_store_state(self, event: StoreState, now: float) -> None:
        self._store_writable = event.writable

    # ---------------------------------------------------------------- ISDN side

    def _on_controller_up(self, event: ControllerUp, now: float) -> None:
        self._ctrls[event.ctrl] = event
        if not event.reconnected:
            return
        for req in sorted(self._reqs.values(), key=lambda r: r.id):
            if req.ctrl == event.ctrl and req.role is Role.MONITOR:
                self._fire(req, "reconnect", now, event, "network")
        self._drain()
        self._start_interrogations(now)
        self._flush_polls()

    def _on_controller_down(self, event: ControllerDown, now: float) -> None:
        self._ctrls.pop(event.ctrl, None)

    def _on_cc_available(self, event: CcAvailable, now: float) -> None:
        dial = self._dialled.get(event.call_id)
        caller = dial.caller if dial is not None else None
        if caller is None:
            owners = self.directory.by_msn(event.ctrl, event.calling)
            if len(owners) != 1:
                return  # cannot tell whose call it was: nobody can take the offer up
            caller = owners[0].ext
        ext = self.directory.ext(caller)
        target = dial.number if dial is not None else event.called
        old = self._offers.get(caller)
        if old is not None:
            self._fire(self._reqs[old], "cancel", now, event, "network", "superseded")
        req = self._create(Role.MONITOR, event.kind, caller, target, now, "cc_available",
                           "network")
        req.ctrl = event.ctrl
        req.ptp = event.linkage_id is None
        req.linkage_id = event.linkage_id
        req.bearer = event.bearer
        req.calling = event.calling or (ext.msn if ext and ext.msn else "")
        req.a_port = ext.port if ext is not None else None
        self._index(req)
        self._arm(req, "retention", now + self.policy.timers.t_retention)
        self._failed[caller] = _FailedCall(target, event.kind, now, event.ctrl,
                                           event.call_id, offer_id=req.id)

    def _on_erase_linkage(self, event: CcEraseCallLinkage, now: float) -> None:
        rid = self._by_linkage.get((event.ctrl, event.linkage_id & 0x7F))
        if rid is not None:
            self._fire(self._reqs[rid], "erase_linkage", now, event, "network")

    def _on_request_result(self, event: CcRequestResult, now: float) -> None:
        rid = self._by_handle.get((event.ctrl, event.handle))
        if rid is None:
            return
        req = self._reqs[rid]
        if event.error is None and (req.ptp or event.reference is not None):
            self._fire(req, "result_ok", now, event, "network")
        else:
            self._fire(req, "result_error", now, event, "network", event.error or "")

    def _on_interrogate_result(self, event: CcInterrogateResult, now: float) -> None:
        pending = self._interrogations.pop(event.handle, None)
        if pending is None or pending[0] != event.ctrl or event.error is not None:
            return  # not ours, or the network cannot tell: keep what we have
        _, kind, _ = pending
        held = {ref & 0x7F for ref in event.references}
        mine = [req for req in sorted(self._reqs.values(), key=lambda r: r.id)
                if req.ctrl == event.ctrl and req.kind is kind and not req.ptp]
        for req in mine:
            if req.reference is not None:
                trigger = "reconcile_held" if req.reference in held else "reconcile_lost"
                self._fire(req, trigger, now, event, "network")
        self._adopt(event, kind, held, mine, now)

    def _adopt(self, event: CcInterrogateResult, kind: CcKind, held: set[int],
               mine: list[CcRequest], now: float) -> None:
        """Requests restarted while Requested: the network holds exactly one reference
        we do not know -> that is ours (adopt it); none -> our CCBSRequest never
        arrived (send it again); several -> cannot tell (fail)."""
        waiting = [req for req in mine if req.id in self._adopting and req.id in self._reqs]
        if not waiting:
            return
        self._adopting.difference_update(req.id for req in waiting)
        unknown = sorted(held - {req.reference for req in mine if req.reference is not None})
        for req in waiting:
            handle = req.handle if req.handle is not None else 0
            if len(waiting) == 1 and len(unknown) == 1:
                result = CcRequestResult(event.ctrl, handle=handle, reference=unknown[0],
                                         recall_mode=event.recall_mode)
                self._fire(req, "result_ok", now, result, "restore", "adopted")
            elif not unknown:
                self._fire(req, "resend", now, event, "restore")
            else:
                result = CcRequestResult(event.ctrl, handle=handle,
                                         error="ambiguous-after-restart")
                self._fire(req, "result_error", now, result, "restore")

    def _on_status_request(self, event: CcStatusRequest, now: float) -> None:
        rid = self._by_ref.get((event.ctrl, event.reference & 0x7F))
        if rid is None:
            return  # etsi-ccbs.md §6: never answer for references we do not own
        req = self._reqs[rid]
        free = self._a_status_free(req, now)
        self._emit(CcStatusAnswer(event.ctrl, token=event.token, free=free))
        if free:
            self._fire(req, "status_free", now, event, "network")

    def _on_by_reference(self, event: CcRemoteUserFree | CcBFree | CcStopAlerting | CcErase,
                         now: float) -> None:
        rid = self._by_ref.get((event.ctrl, event.reference & 0x7F))
        if rid is None:
            return  # broadcast for a reference we do not hold: ignore silently (§6)
        if isinstance(event, CcErase):
            trigger = rules.ERASE_TRIGGERS[event.reason]
        else:
            trigger = _NETWORK_TRIGGERS[type(event)]
        self._fire(self._reqs[rid], trigger, now, event, "network")

    def _on_by_handle(self, event: CcTRemoteUserFree | CcTConnectionCleared,
                      now: float) -> None:
        rid = self._by_handle.get((event.ctrl, event.handle))
        if rid is None:
            return
        self._fire(self._reqs[rid], _NETWORK_TRIGGERS[type(event)], now, event, "network")

    def _on_call(self, event: CallAlerting | CallConnected, now: float) -> None:
        rid = self._by_call.get(event.call_id)
        if rid is not None:
            self._fire(self._reqs[rid], _NETWORK_TRIGGERS[type(event)], now, event, "network")

    def _on_call_ended(self, event: CallEnded, now: float) -> None:
        dial = self._dialled.pop(event.call_id, None)
        if dial is not None and event.cause is not None:
            self._on_call_failed(CallFailed(dial.caller, dial.number, event.cause, dial.ctrl,
                                            event.call_id), now)
        rid = self._by_call.get(event.call_id)
        if rid is None:
            return
        req = self._reqs[rid]
        self._set_call(req, "")  # the call is gone: never hang it up again
        detail = f"cause {event.cause}" if event.cause is not None else ""
        if event.error:
            detail = f"{detail} {event.error}".strip()
        self._fire(req, "call_failed", now, event, "network", detail)

    def _on_destination_status(self, event: DestinationStatusRequest, now: float) -> None:
        """ETS 300 196-1 annex D: we are user B; answer from our ports' state."""
        if event.msn:
            candidates = self.directory.by_msn(event.ctrl, event.msn)
        else:
            candidates = tuple(e for e in self.directory.extensions
                               if e.msn and e.ctrl in (None, event.ctrl))
        ports = [e.port for e in candidates if e.port is not None]
        if not ports or not _bearer_is_analog(event.bearer):
            status = DestinationStatus.INCOMPATIBLE
        elif any(self._port_idle(p) for p in ports):
            status = DestinationStatus.COMPATIBLE_AND_FREE
        else:
            status = DestinationStatus.COMPATIBLE_AND_BUSY
        self._emit(DestinationStatusAnswer(event.ctrl, token=event.token, status=status))

    # ========================================================= request creation

    def _admit(self, caller: str, target: str) -> Refusal | CcRequest | None:
        """Refusal, the existing request for this (A, B) pair, or None (go ahead)."""
        if not self._store_writable:
            return Refusal("store-unavailable",
                           "requests cannot be stored right now; existing ones continue")
        if self.directory.ext(caller) is None:
            return Refusal("unknown-caller", f"{caller} is not an extension of this box")
        if caller == target:
            return Refusal("own-number", "a request to the own number makes no sense")
        refusal = self.policy.check_caller(caller) or self.policy.check_target(target)
        if refusal is not None:
            return refusal
        existing = self._pairs.get((caller, target))
        if existing is not None:
            return self._reqs[existing]
        return self.policy.check_limits(
            caller, len(self._by_caller.get(caller, ())), target,
            len(self._by_target.get(target, ())), len(self._enlisted))

    def _admitted(self, caller: str, target: str, tag: str, actor: str, now: float) -> bool:
        verdict = self._admit(caller, target)
        if isinstance(verdict, Refusal):
            self._refuse(tag, caller, verdict.reason, verdict.text)
            return False
        if isinstance(verdict, CcRequest):
            self._refresh(verdict, tag, actor, now)
            return False
        return True

    def _refresh(self, req: CcRequest, tag: str, actor: str, now: float) -> None:
        """product.md: one request per (A, B); a repeat restarts its lifetime."""
        if req.role is Role.MONITOR:
            lifetime = self.policy.supervision(req.kind, req.ptp)
        else:
            lifetime = self.policy.lifetime(req.kind)
        if req.expires_at is not None or req.role is not Role.MONITOR:
            self._set_expiry(req, now + lifetime)
        self._history.append(HistoryEntry(req.id, now, "refresh", req.state, req.state,
                                          actor or "user"))
        self._touch(req, now)
        self._emit(RequestAccepted(tag, req.id, req.caller, req.target, refreshed=True))

    def _activate_offer(self, offer: CcRequest, tag: str, actor: str, now: float) -> None:
        verdict = self._admit(offer.caller, offer.target)
        if isinstance(verdict, Refusal):
            self._refuse(tag, offer.caller, verdict.reason, verdict.text)
            return
        if isinstance(verdict, CcRequest):
            self._refresh(verdict, tag, actor, now)
            self._fire(offer, "cancel", now, None, actor or "user", "duplicate")
            return
        if offer.ctrl is not None and not self._controller_offers(offer.ctrl, offer.kind):
            self._refuse(tag, offer.caller, "not-offered",
                         f"controller {offer.ctrl} does not offer {offer.kind.value.upper()}")
            return
        self._pending[offer.id] = _Reply(tag, actor)
        self._fire(offer, "activate", now, None, actor or "user")

    def _new_local(self, caller: str, target: str, kind: CcKind, tag: str, actor: str,
                   now: float) -> None:
        if not self._admitted(caller, target, tag, actor, now):
            return
        a_port = self.directory.port_of(caller)
        b_port = self.directory.port_of(target)
        if a_port is None or b_port is None:
            self._refuse(tag, caller, "no-port", f"{caller} has no phone port to ring")
            return
        req = self._create(Role.LOCAL, kind, caller, target, now, "activate", actor or "user")
        req.a_port, req.b_port = a_port, b_port
        self._set_expiry(req, now + self.policy.lifetime(kind))
        self._index(req)
        self._enlist(req)
        self._accepted(req, tag)
        self._notify(NotifyKind.ACTIVATED, req)
        unknown = tuple(p for p in (a_port, b_port) if self._port(p).busy is None)
        if unknown:
            self._emit(PollPorts(unknown))
        self._later(lambda: self._serve_b(b_port, now))

    def _new_redial(self, caller: str, target: str, kind: CcKind, ctrl: int | None, tag: str,
                    actor: str, now: float, *, fallback: bool = False) -> CcRequest | None:
        if not self._admitted(caller, target, tag, actor, now):
            return None
        ext = self.directory.ext(caller)
        ctrl = ctrl if ctrl is not None else (ext.ctrl if ext is not None else None)
        if ext is None or ext.port is None or ctrl is None:
            self._refuse(tag, caller, "no-port", f"{caller} cannot be watched by redial")
            return None
        req = self._create(Role.REDIAL, kind, caller, target, now, "activate", actor or "user")
        req.a_port, req.ctrl, req.calling = ext.port, ctrl, ext.msn or ""
        self._set_expiry(req, now + self.policy.lifetime(kind))
        self._index(req)
        self._enlist(req)
        self._arm(req, "probe", now + self.policy.timers.redial_interval)
        self._emit(RequestAccepted(tag, req.id, caller, target, fallback=fallback))
        self._notify(NotifyKind.ACTIVATED, req, "redial fallback" if fallback else "redial")
        return req

    def _start_fallback(self, failed: CcRequest, reply: _Reply, now: float) -> None:
        created = self._new_redial(failed.caller, failed.target, failed.kind, failed.ctrl,
                                   reply.tag, reply.actor, now, fallback=True)
        if created is not None:
            created.bearer = failed.bearer

    def _create(self, role: Role, kind: CcKind, caller: str, target: str, now: float,
                event: str, actor: str) -> CcRequest:
        self._last_id += 1
        req = CcRequest(self._last_id, role, kind, rules.INITIAL[role], caller, target,
                        created=now, updated=now)
        self._reqs[req.id] = req
        self._count(role, req.state, 1)
        self._history.append(HistoryEntry(req.id, now, event, "", req.state, actor))
        self._touch(req, now)
        return req

    def _flush_polls(self) -> None:
        if self._to_poll:
            self._emit(PollPorts(tuple(sorted(self._to_poll))))
            self._to_poll.clear()

    def _start_interrogations(self, now: float) -> None:
        for ctrl, kind in sorted(self._to_interrogate, key=lambda k: (k[0], k[1].value)):
            handle = self._new_handle()
            deadline = now + self.policy.timers.t_interrogate
            self._interrogations[handle] = (ctrl, kind, deadline)
            self._push(deadline, handle, _HEAP_INTERROGATE)
            self._emit(CcInterrogate(ctrl, handle=handle, kind=kind))
        self._to_interrogate.clear()

    # ============================================================ transitions

    def _fire(self, req: CcRequest, trigger: str, now: float, event: object, actor: str,
              detail: str = "") -> bool:
        """Run ``trigger`` of the request's rulebook; record history; finish the
        request if it reached a final state. Nested calls are queued."""
        if self._busy:
            self._later(lambda: self._fire_if_active(req, trigger, now, event, actor, detail))
            return False
        machine = self._machines[req.role]
        transitions_event = machine.events.get(trigger)
        if transitions_event is None or req.state not in transitions_event.transitions:
            return False
        model = self._models[req.role]
        old = req.state
        self._busy, self._armed = True, False
        model.req, model.now, model.event, model.trigger_name = req, now, event, trigger
        try:
            done = transitions_event.trigger(model)
        finally:
            model.req, model.event = _UNBOUND, None
            self._busy = False
            if req.state != old:
                self._count(req.role, old, -1)
                self._count(req.role, req.state, 1)
                self._track_b(req)
        if done:
            if req.state != old and not self._armed:
                req.deadline, req.timer = None, ""
            self._history.append(HistoryEntry(req.id, now, trigger, old, req.state, actor,
                                              detail))
            self._touch(req, now)
            if req.state in rules.FINAL_STATES:
                self._finish(req, now)
            elif req.expires_at is not None and req.expires_at <= now and trigger != "lifetime":
                # the lifetime passed while a recall was in progress: end it now if allowed
                self._later(lambda: self._fire_if_active(req, "lifetime", now, None, "timer"))
        return bool(done)

    def _fire_if_active(self, req: CcRequest, trigger: str, now: float, event: object,
                        actor: str, detail: str = "") -> None:
        if req.id in self._reqs:
            self._fire(req, trigger, now, event, actor, detail)

    def _finish(self, req: CcRequest, now: float) -> None:
        req.ended_at = now
        req.deadline, req.timer = None, ""
        self._clear_ring(req, stop=True)
        self._release(req)
        self._recheck_started.pop(req.id, None)
        self._pending.pop(req.id, None)
        self._adopting.discard(req.id)
        enlisted = req.id in self._enlisted
        self._unindex_all(req)
        del self._reqs[req.id]
        self._count(req.role, req.state, -1)
        if enlisted:
            self._notify(_FINAL_NOTIFY[req.state], req, req.reason)
        if req.b_port is not None and req.role is Role.LOCAL:
            port = req.b_port
            self._later(lambda: self._serve_b(port, now))

    def _serve_b(self, b_port: str, now: float) -> None:
        """Give B to the first request in its FIFO that waits for it (EN 300 359-1
        queues requests per destination; product.md: FIFO)."""
        queue = self._b_queue.get(b_port)
        port = self._ports.get(b_port)
        if not queue or port is None or port.busy is not False or not port.available:
            return
        if b_port in self._claims:
            return
        if any(self._reqs[rid].state in _SERVING for rid in self._b_active.get(b_port, ())):
            return
        for rid in queue:  # the first success returns: the FIFO is not changed under us
            req = self._reqs[rid]
            # CCNR: B must have been used (busy, then free) since the request was made
            if req.state == "Waiting" and (req.kind is CcKind.CCBS or port.since > req.created):
                if self._fire(req, "b_free", now, None, "line"):
                    return

    def _check_recheck(self, req: CcRequest, now: float) -> None:
        started = self._recheck_started.get(req.id)
        if started is None or req.state != "Recheck":
            return
        if all(self._port(p).polled_at >= started for p in self._ports_of(req)):
            self._fire(req, "checked", now, None, "line")

    # ============================================================ helpers

    def _begin(self) -> None:
        self._out = []

    def _end(self) -> list[EngineAction]:
        out, self._out = self._out, []
        return out

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while self._deferred:
                self._deferred.popleft()()
        finally:
            self._draining = False

    def _later(self, work: Callable[[], None]) -> None:
        self._deferred.append(work)

    def _emit(self, action: EngineAction) -> None:
        self._out.append(action)

    def _track_b(self, req: CcRequest) -> None:
        """Keep ``_b_active`` in step with a local request's state."""
        if req.role is not Role.LOCAL or req.b_port is None:
            return
        active = self._b_active.get(req.b_port)
        if req.state == "Waiting" or req.state in rules.FINAL_STATES:
            if active is not None:
                active.discard(req.id)
                if not active:
                    del self._b_active[req.b_port]
        elif active is None:
            self._b_active[req.b_port] = {req.id}
        else:
            active.add(req.id)

    def _count(self, role: Role, state: str, delta: int) -> None:
        key = (role.value, state)
        left = self._counts.get(key, 0) + delta
        if left:
            self._counts[key] = left
        else:
            del self._counts[key]

    def _touch(self, req: CcRequest, now: float) -> None:
        req.updated = now
        self._dirty[req.id] = req

    def _push(self, when: float, key: int, kind: int) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), key, kind))

    def _arm(self, req: CcRequest, trigger: str, when: float) -> None:
        req.deadline, req.timer = when, trigger
        self._armed = True
        self._push(when, req.id, _HEAP_STATE)

    def _set_expiry(self, req: CcRequest, when: float) -> None:
        req.expires_at = when
        self._push(when, req.id, _HEAP_LIFE)

    def _new_handle(self) -> int:
        handle = self._next_handle_value
        self._next_handle_value += 1
        return handle

    def _new_call_id(self, req: CcRequest) -> str:
        req.attempt += 1
        call_id = f"ccbs-{req.id}-{req.attempt}"
        self._set_call(req, call_id)
        return call_id

    def _set_call(self, req: CcRequest, call_id: str) -> None:
        if req.call_id:
            self._unindex(self._by_call, req.call_id, req.id)
            self._released.discard(req.call_id)
        req.call_id = call_id
        if call_id:
            self._by_call[call_id] = req.id

    def _ring(self, req: CcRequest, port: str, cadence: Cadence, timeout: float,
              clip_number: str, clip_name: str) -> str:
        self._clear_ring(req, stop=True)
        req.attempt += 1  # persisted with this step: the key is never used twice
        key = f"{req.id}.{req.attempt}"
        req.ring_port, req.ring_key = port, key
        self._by_ring[key] = req.id
        self._claim(req, port)
        self._emit(Ring(port, cadence, timeout, clip_number, clip_name, key))
        return key

    def _clear_ring(self, req: CcRequest, *, stop: bool) -> None:
        if not req.ring_port:
            return
        if stop:
            self._emit(StopRing(req.ring_port, req.ring_key))
        if self._claims.get(req.ring_port) == req.id:
            del self._claims[req.ring_port]
        self._by_ring.pop(req.ring_key, None)
        req.ring_port, req.ring_key = "", ""

    def _ring_owner(self, port: str, key: str) -> CcRequest | None:
        rid = self._by_ring.get(key)
        req = self._reqs.get(rid) if rid is not None else None
        if req is None or req.ring_port != port:
            return None
        return req

    def _claim(self, req: CcRequest, port: str) -> None:
        self._claims[port] = req.id

    def _release(self, req: CcRequest) -> None:
        for port in self._ports_of(req):
            if self._claims.get(port) == req.id:
                del self._claims[port]

    def _port(self, name: str) -> _Port:
        port = self._ports.get(name)
        if port is None:
            port = self._ports[name] = _Port()
        return port

    def _ports_of(self, req: CcRequest) -> tuple[str, ...]:
        if req.a_port is None:
            return (req.b_port,) if req.b_port is not None else ()
        if req.b_port is None:
            return (req.a_port,)
        return (req.a_port, req.b_port)

    def _port_idle(self, name: str) -> bool:
        port = self._ports.get(name)
        return (port is not None and port.available and port.busy is False
                and name not in self._claims)

    def _a_free(self, req: CcRequest, now: float) -> bool:
        """A can be rung for a recall now: free line, bridge up, nobody else ringing
        it, not in the caller's quiet hours."""
        if req.a_port is None:
            return False
        port = self._ports.get(req.a_port)
        if port is None or not port.available or port.busy is not False:
            return False
        owner = self._claims.get(req.a_port)
        if owner is not None and owner != req.id:
            return False
        return self.policy.quiet_until(req.caller, now) is None

    def _a_status_free(self, req: CcRequest, now: float) -> bool:
        """The answer to CCBSStatusRequest: A's real state. An unknown line (not yet
        polled after a restart) counts as free — the recall re-checks anyway."""
        if self.policy.quiet_until(req.caller, now) is not None:
            return False
        if req.a_port is None:
            return True
        port = self._ports.get(req.a_port)
        if port is not None and (not port.available or port.busy is True):
            return False
        owner = self._claims.get(req.a_port)
        return owner is None or owner == req.id

    def _b_free(self, req: CcRequest) -> bool:
        if req.b_port is None:
            return False
        port = self._ports.get(req.b_port)
        if port is None or not port.available or port.busy is not False:
            return False
        owner = self._claims.get(req.b_port)
        return owner is None or owner == req.id

    def _suspend_reason(self, req: CcRequest, now: float) -> str:
        if self.policy.quiet_until(req.caller, now) is not None:
            return "quiet-hours"
        port = self._ports.get(req.a_port) if req.a_port is not None else None
        if port is not None and not port.available:
            return "bridge-unavailable"
        return "a-busy"

    def _controller_offers(self, ctrl: int, kind: CcKind) -> bool:
        info = self._ctrls.get(ctrl)
        if info is None:
            return True  # not announced (yet): let the network answer
        return info.ccnr if kind is CcKind.CCNR else info.ccbs

    def _accepted(self, req: CcRequest, tag: str | None = None) -> None:
        """Reply to whoever asked (nobody waits for a request restored from disk)."""
        reply = self._pending.pop(req.id, None)
        if tag is None:
            if reply is None:
                return
            tag = reply.tag
        self._emit(RequestAccepted(tag, req.id, req.caller, req.target))

    def _refuse(self, tag: str, caller: str, reason: str, text: str) -> None:
        self._emit(RequestRefused(tag, caller, reason, text))

    def _notify(self, kind: NotifyKind, req: CcRequest, detail: str = "") -> None:
        self._emit(Notify(kind, req.snapshot(), detail))

    # ---------------------------------------------------------------- indices

    def _enlist(self, req: CcRequest) -> None:
        if req.id in self._enlisted:
            return
        self._enlisted.add(req.id)
        for port in self._ports_of(req):
            self._watched[port] = self._watched.get(port, 0) + 1
        self._by_caller.setdefault(req.caller, []).append(req.id)
        self._by_target.setdefault(req.target, []).append(req.id)
        self._pairs[(req.caller, req.target)] = req.id
        if self._offers.get(req.caller) == req.id:
            del self._offers[req.caller]

    def _index(self, req: CcRequest) -> None:
        """(Re)build every index entry of a request from its fields."""
        if req.a_port is not None:
            self._a_reqs.setdefault(req.a_port, set()).add(req.id)
        if req.role is Role.LOCAL and req.b_port is not None:
            queue = self._b_queue.setdefault(req.b_port, [])
            if req.id not in queue:
                queue.append(req.id)
            self._track_b(req)
        if req.role is Role.MONITOR and req.ctrl is not None:
            if req.state == "Available":
                self._offers[req.caller] = req.id
                self._failed.setdefault(req.caller, _FailedCall(
                    req.target, req.kind, req.created, req.ctrl, "", offer_id=req.id))
            if req.linkage_id is not None and req.state in ("Available", "Requested",
                                                            "WaitDestruction"):
                self._by_linkage[(req.ctrl, req.linkage_id)] = req.id
            if req.reference is not None and not req.ptp:
                self._by_ref[(req.ctrl, req.reference)] = req.id
            if req.handle is not None and (req.ptp or req.state in ("Requested",
                                                                    "WaitDestruction")):
                self._by_handle[(req.ctrl, req.handle)] = req.id
        if req.call_id:
            self._by_call[req.call_id] = req.id
        if req.ring_key:
            self._by_ring[req.ring_key] = req.id
            self._claims[req.ring_port] = req.id
        if req.state != "Available" or req.role is not Role.MONITOR:
            self._enlist(req)

    @staticmethod
    def _unindex(index: dict[_K, int], key: _K, rid: int) -> None:
        if index.get(key) == rid:
            del index[key]

    def _unindex_all(self, req: CcRequest) -> None:
        if req.ctrl is not None:
            if req.linkage_id is not None:
                self._unindex(self._by_linkage, (req.ctrl, req.linkage_id), req.id)
            if req.reference is not None:
                self._unindex(self._by_ref, (req.ctrl, req.reference), req.id)
            if req.handle is not None:
                self._unindex(self._by_handle, (req.ctrl, req.handle), req.id)
        if req.call_id:
            self._unindex(self._by_call, req.call_id, req.id)
            self._released.discard(req.call_id)
        if self._offers.get(req.caller) == req.id:
            del self._offers[req.caller]
        if req.a_port is not None:
            reqs = self._a_reqs.get(req.a_port)
            if reqs is not None:
                reqs.discard(req.id)
                if not reqs:
                    del self._a_reqs[req.a_port]
        if req.b_port is not None and req.role is Role.LOCAL:
            queue = self._b_queue.get(req.b_port)
            if queue is not None and req.id in queue:
                queue.remove(req.id)
                if not queue:
                    del self._b_queue[req.b_port]
            active = self._b_active.get(req.b_port)
            if active is not None:
                active.discard(req.id)
                if not active:
                    del self._b_active[req.b_port]
        if req.id in self._enlisted:
            self._enlisted.discard(req.id)
            for port in self._ports_of(req):
                left = self._watched[port] - 1
                if left:
                    self._watched[port] = left
                else:
                    del self._watched[port]
            for index, key in ((self._by_caller, req.caller), (self._by_target, req.target)):
                ids = index.get(key)
                if ids is not None and req.id in ids:
                    ids.remove(req.id)
                    if not ids:
                        del index[key]
            if self._pairs.get((req.caller, req.target)) == req.id:
                del self._pairs[(req.caller, req.target)]
        failed = self._failed.get(req.caller)
        if failed is not None and failed.offer_id == req.id:
            del self._failed[req.caller]


def _bearer_is_analog(bearer: bytes) -> bool:
    """True when the BC of ``bearer`` (complete Q.931 IEs) can be served by an analog
    port; no BC at all counts as compatible (the network did not say)."""
    pos = 0
    while pos + 1 < len(bearer):
        ident, length = bearer[pos], bearer[pos + 1]
        if ident == 0x04 and length >= 1 and pos + 2 < len(bearer):
            return (bearer[pos + 2] & 0x1F) in _ANALOG_CAPABILITIES
        pos += 2 + length
    return True


__all__ = ["CcbsEngine"]
