"""Basic call control of the analog ports: one line state machine per FXS port.

This module owns what a phone on an FXS port experiences outside the CCBS decisions
(architecture.md §4 "Basic call control"): dial tone, digit collection against the
``DialPlan``, internal calls (ring B with CLIP = A, ringback to A, cross-connect on
answer), outgoing ISDN calls (``PlaceCall`` with the port's MSN), incoming ISDN calls
(MSN → port), busy / congestion tone, and the analog user procedures of
analog-bridge.md §6.2 through ``ccbs_isdn.analog.codes.CodeRecogniser``: after busy
``R`` + ``*37#`` or ``5`` within the activation window, and ``#37#``, ``#37*<n>#``,
``*#37#``, ``*37*<n>#`` from dial tone. A code becomes an engine event (``Activate``,
``Book``, ``Cancel``, ``StatusQuery``) with a tag; the engine's reply with that tag
becomes the confirm or reject tone (§6.2 "Feedback").

It also tells the engine what the engine needs of basic calls: ``Dialled`` before
every outgoing call (the engine may answer with ``ClaimCall``: then the call is a
CCBS recall and goes out with the CCBS reference), ``CallFailed`` for a local call
that met busy / no answer (ISDN failures the engine sees itself in ``CallEnded``), and
``PortState(busy=True)`` while a port is rung for a call (on-hook but in use; hook
changes themselves reach the engine from the FXS line).

The engine's own port work (recall rings, ringback, the cross-connect of a local
recall, putting A on the recall call) is executed by the FXS line; call control
*observes* those actions so that it knows who owns a port: a ring-trip on a port the
engine rings is the engine's (no call is answered), a line in the engine's recall
ignores digits, and the connection a local recall built is torn down here when
someone hangs up.

Pure: no I/O, no asyncio, no clock. ``handle(input, now)`` returns outputs;
``next_deadline()`` says when ``handle_timer(now)`` is due. Same inputs, same outputs.

======================================================================================
RULES. ``LINE_RULES`` alone decides what a line fact (hook, flash, digit, ring-trip,
ring end, timer) does in each line state; inputs without a row are ignored. Call
progress (ISDN indications, engine observations) is handled per call below.
======================================================================================
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from ccbs_isdn.analog.codes import (
    AwaitingCode,
    CodeDialled,
    CodeKind,
    CodeRecogniser,
    Collecting,
    NotACode,
    Outcome,
    Rejected,
)
from ccbs_isdn.analog.contract import Tone
from ccbs_isdn.calls.plan import DialPlan, Route, RouteKind, Station
from ccbs_isdn.calls.vocab import (
    AttachCall,
    CallOutput,
    DetachCall,
    Digit,
    HookFlash,
    LinkPorts,
    Loopback,
    OffHook,
    OnHook,
    PortsLost,
    PortsReset,
    Proceed,
    RingAnswer,
    RingOver,
    RingPort,
    SetTone,
    StopRinging,
    UnlinkPort,
)
from ccbs_isdn.engine import actions as A
from ccbs_isdn.engine import events as E
from ccbs_isdn.isdn import (
    CAUSE_NO_ANSWER,
    CAUSE_NO_USER_RESPONDING,
    CAUSE_USER_BUSY,
    AnswerCall,
    CallAlerting,
    CallConnected,
    CallEnded,
    HangUp,
    IncomingCall,
    IsdnCommand,
    PlaceCall,
    RejectCall,
)

#: Q.850 #27: the port an incoming call is for cannot be reached (bridge away).
CAUSE_DESTINATION_OUT_OF_ORDER: Final = 27

#: Causes of a failed outgoing call that mean "busy / no reply": busy tone and the
#: activation window (CCBS for #17, CCNR for #18/#19, EN 301 065-1). Others: congestion.
CC_CAUSES: Final = frozenset({CAUSE_USER_BUSY, CAUSE_NO_USER_RESPONDING, CAUSE_NO_ANSWER})

#: ISDN calls of others (the engine's recalls) whose progress we remember, at most.
_PHASE_MEMORY: Final = 1024

Output = CallOutput | IsdnCommand | E.Event


class LineState(enum.Enum):
    IDLE = "idle"  # on-hook, nothing going on
    DIALTONE = "dialtone"  # off-hook, dial tone, nothing dialled yet
    DIALLING = "dialling"  # collecting digits (a number or a service code)
    AWAIT_REPLY = "await-reply"  # a code went to the engine; silence until it answers
    FEEDBACK = "feedback"  # confirm / reject tone given; waits for on-hook (or R)
    CALLING = "calling"  # our outgoing call is being set up
    TALKING = "talking"  # connected to another port or to an ISDN call
    CLEARED = "cleared"  # busy / congestion tone; the activation window may be open
    RINGING = "ringing"  # rung for an internal or an incoming ISDN call
    RECALL = "recall"  # rung by the engine (A's recall ring, B of a local recall)
    HELD = "held"  # off-hook inside the engine's recall procedure
    PARKED = "parked"  # off-hook and silent; nothing happens until on-hook
    DOWN = "down"  # the bridge is away


class CallKind(enum.Enum):
    LOCAL = "local"  # port to port (a call of ours, or the engine's local recall)
    OUTGOING = "outgoing"  # from a port out over ISDN
    INCOMING = "incoming"  # from ISDN to a port
    ENGINE = "engine"  # the engine's ISDN call (recall, probe) that a port was put on


S = LineState

#: line state -> {line fact -> handler}. Facts: off_hook, on_hook, flash, digit,
#: answer (ring-trip), ring_over (ring ended unanswered), timer.
LINE_RULES: Final[Mapping[LineState, Mapping[str, str]]] = {
    # a ring-trip we did not expect: most likely a ring of the engine's we missed
    S.IDLE: {"off_hook": "give_dial_tone", "answer": "stray_answer"},
    S.DIALTONE: {"on_hook": "release", "flash": "give_dial_tone", "digit": "dial",
                 "timer": "no_digit"},
    S.DIALLING: {"on_hook": "release", "flash": "give_dial_tone", "digit": "dial",
                 "timer": "dial_timeout"},
    S.AWAIT_REPLY: {"on_hook": "release", "timer": "no_reply"},
    S.FEEDBACK: {"on_hook": "release", "flash": "give_dial_tone"},
    S.CALLING: {"on_hook": "abandon"},
    S.TALKING: {"on_hook": "hang_up"},
    # analog-bridge.md §6.2: R + code, or the quick digit, while the busy tone plays
    S.CLEARED: {"on_hook": "release", "flash": "code_flash", "digit": "code_digit",
                "timer": "code_timer"},
    # a poll that finds a ringing phone off-hook means the ring-trip URC was lost
    S.RINGING: {"answer": "answer", "off_hook": "answer", "ring_over": "not_answered"},
    S.RECALL: {"answer": "recall_answered", "off_hook": "recall_answered",
               "ring_over": "recall_over"},
    S.HELD: {"on_hook": "leave_recall"},
    S.PARKED: {"on_hook": "release"},
    S.DOWN: {},
}

#: Service code -> the engine event it becomes (caller, number, tag, actor).
CODE_EVENTS: Final[Mapping[CodeKind, Callable[[str, str, str, str], E.Event]]] = {
    CodeKind.ACTIVATE: lambda caller, number, tag, actor: E.Activate(caller, tag, actor),
    CodeKind.BOOK: lambda caller, number, tag, actor: E.Book(caller, number, tag=tag,
                                                             actor=actor),
    CodeKind.CANCEL_ALL: lambda caller, number, tag, actor: E.Cancel(caller=caller, tag=tag,
                                                                     actor=actor),
    CodeKind.CANCEL_ONE: lambda caller, number, tag, actor: E.Cancel(
        caller=caller, target=number, tag=tag, actor=actor),
    CodeKind.STATUS: lambda caller, number, tag, actor: E.StatusQuery(caller, tag),
}


def reply_tone(reply: A.Action) -> Tone:
    """analog-bridge.md §6.2: positive acknowledgement on success / pending, negative
    on refusal / nothing pending / nothing cancelled."""
    if isinstance(reply, A.RequestAccepted):
        return Tone.CONFIRM
    if isinstance(reply, A.CancelDone):
        return Tone.CONFIRM if reply.request_ids else Tone.REJECT
    if isinstance(reply, A.StatusReply):
        return Tone.CONFIRM if reply.pending else Tone.REJECT
    return Tone.REJECT


@dataclass(eq=False)
class Call:
    """One call a port takes part in. ``a_port``: the calling port (LOCAL, OUTGOING,
    ENGINE) or the called port (INCOMING); ``b_port``: the called port of a LOCAL call."""

    call_id: str
    kind: CallKind
    a_port: str
    b_port: str | None = None
    number: str = ""
    ctrl: int | None = None
    placed: bool = False  # PlaceCall sent / the called port is ringing
    connected: bool = False
    engine: bool = False  # built by the engine (local recall, recall call)
    cc_reference: int | None = None  # from ClaimCall: this call is a CCBS recall
    cc_t_handle: int | None = None

    def ports(self) -> tuple[str, ...]:
        return (self.a_port,) if self.b_port is None else (self.a_port, self.b_port)


@dataclass(eq=False)
class Line:
    station: Station
    codes: CodeRecogniser
    state: LineState = LineState.DOWN
    off_hook: bool = False
    digits: str = ""
    collecting_code: bool = False  # the recogniser still consumes dial-tone digits
    deadline: float | None = None
    call: Call | None = None
    tag: str = ""  # the engine reply this line waits for
    ring_key: str = ""  # the engine ring on this port

    @property
    def port(self) -> str:
        return self.station.port


class CallControl:
    """Basic call control of every analog port of a ``DialPlan`` (see the module
    docstring). ``call_prefix`` makes call ids unique across daemon runs."""

    def __init__(self, plan: DialPlan, *, call_prefix: str = "call-") -> None:
        self.plan = plan
        self.call_prefix = call_prefix
        self._lines: dict[str, Line] = {
            st.port: Line(st, CodeRecogniser(plan.codes)) for st in plan.stations}
        self._calls: dict[str, Call] = {}
        self._tags: dict[str, str] = {}  # reply tag -> port
        self._phases: dict[str, str] = {}  # others' ISDN calls: call id -> alerting/connected
        self._seq = 0
        self._out: list[Output] = []
        self._now = 0.0
        self._losing: frozenset[str] = frozenset()
        self._facts: dict[type, str] = {
            OffHook: "off_hook", OnHook: "on_hook", HookFlash: "flash", Digit: "digit",
            RingAnswer: "answer", RingOver: "ring_over",
        }

    # ============================================================== public API

    def handle(self, event: object, now: float) -> list[Output]:
        """One input (line fact, ISDN indication, engine action or reply, Proceed);
        returns the outputs to execute, in order."""
        self._now = now
        self._out = []
        fact = self._facts.get(type(event))
        if fact is not None:
            assert isinstance(event, (OffHook, OnHook, HookFlash, Digit, RingAnswer, RingOver))
            self._line_fact(event.port, fact, event)
        elif isinstance(event, Proceed):
            self._proceed(event.call_id)
        elif isinstance(event, IncomingCall):
            self._incoming(event)
        elif isinstance(event, (CallAlerting, CallConnected, CallEnded)):
            self._progress(event)
        elif isinstance(event, PortsLost):
            self._ports_lost(event.ports)
        elif isinstance(event, PortsReset):
            self._ports_reset(event)
        elif isinstance(event, (A.RequestAccepted, A.RequestRefused, A.CancelDone,
                                A.StatusReply)):
            self._reply(event)
        elif isinstance(event, A.Ring):
            self._seen_ring(event)
        elif isinstance(event, A.StopRing):
            self._seen_stop_ring(event)
        elif isinstance(event, A.ConnectPorts):
            self._seen_connect_ports(event)
        elif isinstance(event, A.DisconnectPort):
            self._seen_disconnect(event)
        elif isinstance(event, A.ConnectCall):
            self._seen_connect_call(event)
        elif isinstance(event, A.ClaimCall):
            self._seen_claim(event)
        out, self._out = self._out, []
        return out

    def handle_timer(self, now: float) -> list[Output]:
        """Fire every line timer due at ``now``."""
        self._now = now
        self._out = []
        for line in self._lines.values():
            due = self._line_deadline(line)
            if due is not None and due <= now:
                self._line_fact(line.port, "timer", None)
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        deadlines = [d for d in map(self._line_deadline, self._lines.values()) if d is not None]
        return min(deadlines) if deadlines else None

    def owns_tag(self, tag: str) -> bool:
        return tag in self._tags

    def state(self, port: str) -> LineState:
        return self._lines[port].state

    def line(self, port: str) -> Line:
        return self._lines[port]

    def calls(self) -> list[Call]:
        return list(self._calls.values())

    def in_use(self, port: str) -> bool:
        """Off-hook, or on-hook but rung for a call / by the engine."""
        line = self._lines.get(port)
        return line is not None and (line.off_hook or line.state in (S.RINGING, S.RECALL))

    # ============================================================ line facts

    def _line_fact(self, port: str, fact: str, event: object) -> None:
        line = self._lines.get(port)
        if line is None:
            return
        if fact == "off_hook":
            line.off_hook = True
        elif fact == "on_hook":
            line.off_hook = False
        elif fact == "answer":
            line.off_hook = True
        handler = LINE_RULES[line.state].get(fact)
        if handler is not None:
            getattr(self, "_" + handler)(line, event)

    def _give_dial_tone(self, line: Line, event: object) -> None:
        self._drop_call(line)
        line.state = S.DIALTONE
        line.digits = ""
        line.collecting_code = True
        line.codes.off_hook(self._now)
        line.deadline = self._now + self.plan.first_digit
        self._emit(SetTone(line.port, Tone.DIAL))

    def _release(self, line: Line, event: object) -> None:
        """On-hook: the bridge stops tones by itself (FXB/1 §3.9.12)."""
        self._drop_call(line)
        self._idle(line)

    def _idle(self, line: Line) -> None:
        line.state = S.IDLE
        line.digits = ""
        line.collecting_code = False
        line.deadline = None
        line.tag = ""
        line.ring_key = ""
        line.codes.on_hook(self._now)

    def _no_digit(self, line: Line, event: object) -> None:
        self._cleared(line, Tone.BUSY, window=False)

    def _dial(self, line: Line, event: object) -> None:
        assert isinstance(event, Digit)
        d = event.digit
        if line.state is S.DIALTONE:
            line.state = S.DIALLING
            self._emit(SetTone(line.port, Tone.OFF))
        if line.collecting_code:
            outcome = line.codes.digit(d, self._now)
            if isinstance(outcome, CodeDialled):
                self._code(line, outcome)
                return
            if isinstance(outcome, Collecting):
                line.deadline = None  # the recogniser's inter-digit timer runs
                return
            line.collecting_code = False
            if isinstance(outcome, NotACode):
                self._route(line, outcome.digits, complete=False)
                return
        if d == "#":
            self._route(line, line.digits, complete=True)
        else:
            self._route(line, line.digits + d, complete=False)

    def _dial_timeout(self, line: Line, event: object) -> None:
        if line.collecting_code:
            # the digits so far could have become a code, but the caller stopped
            outcome = line.codes.timeout(self._now)
            line.collecting_code = False
            digits = outcome.digits if isinstance(outcome, NotACode | Rejected) else ""
            self._route(line, digits, complete=True)
            return
        self._route(line, line.digits, complete=True)

    def _route(self, line: Line, digits: str, *, complete: bool) -> None:
        if digits.endswith("#"):
            digits, complete = digits[:-1], True
        line.digits = digits
        route = self.plan.route(digits, complete=complete)
        if route.kind is RouteKind.INCOMPLETE:
            line.deadline = self._now + self.plan.interdigit
        elif route.kind is RouteKind.INVALID:
            self._cleared(line, Tone.CONGESTION, window=False)
        else:
            self._start_call(line, route)

    # ------------------------------------------------------------ service codes

    def _code(self, line: Line, code: CodeDialled) -> None:
        self._seq += 1
        tag = f"calls:{line.station.ext}:{self._seq}"
        self._tags[tag] = line.port
        line.tag = tag
        line.state = S.AWAIT_REPLY
        line.collecting_code = False
        line.deadline = self._now + self.plan.reply_timeout
        self._emit(SetTone(line.port, Tone.OFF))
        self._emit(CODE_EVENTS[code.kind](line.station.ext, code.number or "", tag,
                                          f"ext:{line.station.ext}"))

    def _reply(self, reply: A.RequestAccepted | A.RequestRefused | A.CancelDone
               | A.StatusReply) -> None:
        port = self._tags.pop(reply.tag, None)
        line = self._lines.get(port) if port is not None else None
        if line is None or line.state is not S.AWAIT_REPLY or line.tag != reply.tag:
            return  # the caller hung up meanwhile: nobody to tell
        self._feedback(line, reply_tone(reply))

    def _no_reply(self, line: Line, event: object) -> None:
        self._tags.pop(line.tag, None)
        self._feedback(line, Tone.REJECT)

    def _feedback(self, line: Line, tone: Tone) -> None:
        line.state = S.FEEDBACK
        line.tag = ""
        line.deadline = None
        line.codes.on_hook(self._now)  # nothing more to recognise until R or on-hook
        self._emit(SetTone(line.port, tone, self.plan.feedback_ms))

    def _code_flash(self, line: Line, event: object) -> None:
        assert isinstance(event, HookFlash)
        self._code_outcome(line, line.codes.flash(event.ms, self._now))

    def _code_digit(self, line: Line, event: object) -> None:
        assert isinstance(event, Digit)
        self._code_outcome(line, line.codes.digit(event.digit, self._now))

    def _code_timer(self, line: Line, event: object) -> None:
        self._code_outcome(line, line.codes.timeout(self._now))

    def _code_outcome(self, line: Line, outcome: Outcome | None) -> None:
        if isinstance(outcome, AwaitingCode):
            self._emit(SetTone(line.port, Tone.SPECIALDIAL))
        elif isinstance(outcome, Collecting):
            if len(outcome.digits) == 1:
                self._emit(SetTone(line.port, Tone.OFF))
        elif isinstance(outcome, CodeDialled):
            self._code(line, outcome)
        elif isinstance(outcome, Rejected):
            self._feedback(line, Tone.REJECT)

    # ------------------------------------------------------------ outgoing calls

    def _new_call_id(self) -> str:
        self._seq += 1
        return f"{self.call_prefix}{self._seq}"

    def _start_call(self, line: Line, route: Route) -> None:
        st = line.station
        call_id = self._new_call_id()
        if route.kind is RouteKind.INTERNAL:
            assert route.station is not None
            call = Call(call_id, CallKind.LOCAL, line.port, route.station.port, route.number)
            ctrl = None
        else:
            ctrl = self.plan.ctrl_of(st)
            call = Call(call_id, CallKind.OUTGOING, line.port, None, route.number, ctrl)
        self._calls[call_id] = call
        line.call = call
        line.state = S.CALLING
        line.deadline = None
        # the engine must see the call before it exists: it may claim it as a recall
        self._emit(E.Dialled(st.ext, route.number, call_id, ctrl))
        self._emit(Loopback(Proceed(call_id)))

    def _proceed(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is None or call.placed:
            return
        line = self._lines[call.a_port]
        if line.call is not call or line.state is not S.CALLING:
            self._calls.pop(call_id, None)
            return
        call.placed = True
        if call.kind is CallKind.OUTGOING:
            assert call.ctrl is not None
            self._emit(PlaceCall(call.ctrl, call_id=call_id, called=call.number,
                                 calling=line.station.msn, cc_reference=call.cc_reference,
                                 cc_t_handle=call.cc_t_handle))
            return
        assert call.b_port is not None
        callee = self._lines[call.b_port]
        if callee is line or callee.state is not S.IDLE or callee.off_hook:
            self._local_failed(line, call, CAUSE_USER_BUSY)
            return
        callee.state = S.RINGING
        callee.call = call
        st = line.station
        self._emit(RingPort(callee.port, self.plan.internal_cadence, self.plan.ring_timeout,
                            st.ext, st.name))
        self._emit(E.PortState(callee.port, True))  # on-hook, but in use
        self._emit(SetTone(line.port, Tone.RINGBACK))

    def _local_failed(self, line: Line, call: Call, cause: int) -> None:
        """A local call met busy / no answer: busy tone, the window, and the engine's
        "last failed call" of this caller."""
        self._forget(call)
        line.call = None
        self._cleared(line, Tone.BUSY, window=True)
        self._emit(E.CallFailed(line.station.ext, call.number, cause, None, call.call_id))

    def _cleared(self, line: Line, tone: Tone, *, window: bool) -> None:
        line.state = S.CLEARED
        line.deadline = None
        line.digits = ""
        line.collecting_code = False
        if window:
            line.codes.busy(self._now)  # activation possible (analog-bridge.md §6.2)
        else:
            line.codes.on_hook(self._now)
        self._emit(SetTone(line.port, tone))

    def _abandon(self, line: Line, event: object) -> None:
        """The caller hung up before the call was answered."""
        call = line.call
        if call is not None:
            if call.kind is CallKind.LOCAL and call.b_port is not None:
                callee = self._lines[call.b_port]
                if callee.call is call and callee.state is S.RINGING:
                    self._emit(StopRinging(callee.port))
                    self._ring_done(callee)
            elif call.kind is CallKind.OUTGOING and call.placed and call.ctrl is not None:
                self._emit(HangUp(call.ctrl, call_id=call.call_id))
            self._forget(call)
        line.call = None
        self._idle(line)

    def _hang_up(self, line: Line, event: object) -> None:
        self._drop_call(line)
        self._idle(line)

    # ------------------------------------------------------------ ringing ports

    def _stray_answer(self, line: Line, event: object) -> None:
        line.state = S.HELD

    def _answer(self, line: Line, event: object) -> None:
        call = line.call
        if call is None:
            line.state = S.HELD
            return
        call.connected = True
        line.state = S.TALKING
        if call.kind is CallKind.INCOMING:
            assert call.ctrl is not None
            self._emit(AnswerCall(call.ctrl, call_id=call.call_id))
            self._emit(AttachCall(line.port, call.ctrl, call.call_id))
            return
        caller = self._lines[call.a_port]
        caller.state = S.TALKING
        self._emit(LinkPorts(caller.port, line.port))

    def _not_answered(self, line: Line, event: object) -> None:
        call = line.call
        self._ring_done(line)
        if call is None:
            return
        if call.kind is CallKind.INCOMING:
            assert call.ctrl is not None
            self._emit(RejectCall(call.ctrl, call_id=call.call_id, cause=CAUSE_NO_ANSWER))
            self._forget(call)
            return
        caller = self._lines[call.a_port]
        if caller.call is call:
            # a refused ring means the callee lifted just now: that is busy
            assert isinstance(event, RingOver)
            cause = CAUSE_USER_BUSY if event.reason == "failed" else CAUSE_NO_ANSWER
            self._local_failed(caller, call, cause)
        else:
            self._forget(call)

    def _ring_done(self, line: Line) -> None:
        """A port rung for a call is idle again (on-hook, no longer in use)."""
        line.call = None
        self._idle(line)
        if line.port not in self._losing:  # a lost port is the FXS line's to report
            self._emit(E.PortState(line.port, False))

    # -------------------------------------------------------- incoming ISDN calls

    def _incoming(self, event: IncomingCall) -> None:
        stations = self.plan.stations_for_msn(event.ctrl, event.called)
        if not stations:
            # not a number of an analog port: no terminal of ours answers for it
            self._emit(RejectCall(event.ctrl, call_id=event.call_id,
                                  cause=CAUSE_NO_USER_RESPONDING))
            return
        lines = [self._lines[st.port] for st in stations]
        free = next((ln for ln in lines if ln.state is S.IDLE and not ln.off_hook), None)
        if free is None:
            down = all(ln.state is S.DOWN for ln in lines)
            self._emit(RejectCall(event.ctrl, call_id=event.call_id,
                                  cause=CAUSE_DESTINATION_OUT_OF_ORDER if down
                                  else CAUSE_USER_BUSY))
            return
        call = Call(event.call_id, CallKind.INCOMING, free.port, None, event.calling,
                    event.ctrl, placed=True)
        self._calls[call.call_id] = call
        free.call = call
        free.state = S.RINGING
        self._emit(RingPort(free.port, self.plan.external_cadence, self.plan.ring_timeout,
                            _clip(event.calling)))
        self._emit(E.PortState(free.port, True))

    # ------------------------------------------------------------ call progress

    def _progress(self, event: CallAlerting | CallConnected | CallEnded) -> None:
        call = self._calls.get(event.call_id)
        if call is None:
            self._remember_phase(event)
            return
        line = self._lines[call.a_port]
        if isinstance(event, CallAlerting):
            if line.call is call and line.state in (S.CALLING, S.HELD):
                self._emit(SetTone(line.port, Tone.RINGBACK))
        elif isinstance(event, CallConnected):
            if call.connected or line.call is not call:
                call.connected = True
                return
            call.connected = True
            if line.state in (S.CALLING, S.HELD):
                line.state = S.TALKING
                assert call.ctrl is not None
                self._emit(AttachCall(line.port, call.ctrl, call.call_id))
        else:
            self._ended(call, line, event.cause)

    def _ended(self, call: Call, line: Line, cause: int | None) -> None:
        self._forget(call)
        if line.call is not call:
            return
        line.call = None
        if line.state is S.RINGING:  # the caller gave up before we answered
            self._emit(StopRinging(line.port))
            self._ring_done(line)
            return
        if call.connected:
            self._emit(DetachCall(line.port, call.call_id))
        if line.state not in (S.CALLING, S.TALKING, S.HELD):
            return
        if not call.connected and call.kind is CallKind.OUTGOING:
            busy = cause in CC_CAUSES
            self._cleared(line, Tone.BUSY if busy else Tone.CONGESTION, window=busy)
        else:
            self._cleared(line, Tone.BUSY, window=False)  # the far end hung up

    def _remember_phase(self, event: CallAlerting | CallConnected | CallEnded) -> None:
        if isinstance(event, CallEnded):
            self._phases.pop(event.call_id, None)
            return
        self._phases[event.call_id] = ("connected" if isinstance(event, CallConnected)
                                       else "alerting")
        while len(self._phases) > _PHASE_MEMORY:
            del self._phases[next(iter(self._phases))]

    # --------------------------------------------------- the engine's port work

    def _seen_ring(self, action: A.Ring) -> None:
        line = self._lines.get(action.port)
        if line is not None and line.state is S.IDLE and not line.off_hook:
            line.state = S.RECALL
            line.ring_key = action.key

    def _seen_stop_ring(self, action: A.StopRing) -> None:
        line = self._lines.get(action.port)
        if line is not None and line.state is S.RECALL and line.ring_key == action.key:
            self._drop_call(line)
            self._idle(line)

    def _recall_answered(self, line: Line, event: object) -> None:
        line.ring_key = ""
        call = line.call
        if call is not None and call.kind is CallKind.LOCAL and call.b_port == line.port:
            caller = self._lines[call.a_port]
            if caller.call is call:
                # B of a local recall: the bridge completes AT%CONN on this ring-trip
                call.connected = True
                line.state = caller.state = S.TALKING
                return
            line.call = None
        line.state = S.HELD

    def _recall_over(self, line: Line, event: object) -> None:
        self._drop_call(line)
        self._idle(line)

    def _leave_recall(self, line: Line, event: object) -> None:
        """A put the handset down inside the recall: the engine hangs up / stops what
        is not connected yet; what is connected is ours to clear."""
        self._drop_call(line)
        self._idle(line)

    def _seen_connect_ports(self, action: A.ConnectPorts) -> None:
        a = self._lines.get(action.port_a)
        b = self._lines.get(action.port_b)
        if a is None or b is None:
            return
        call = Call(f"recall:{action.key}", CallKind.LOCAL, a.port, b.port, b.station.ext,
                    placed=True, engine=True)
        self._calls[call.call_id] = call
        a.call = b.call = call

    def _seen_disconnect(self, action: A.DisconnectPort) -> None:
        line = self._lines.get(action.port)
        call = line.call if line is not None else None
        if call is None or call.kind is not CallKind.LOCAL:
            return
        self._forget(call)
        for port in call.ports():
            other = self._lines[port]
            if other.call is call:
                other.call = None
                if other.state is S.TALKING:
                    other.state = S.PARKED

    def _seen_connect_call(self, action: A.ConnectCall) -> None:
        line = self._lines.get(action.port)
        if line is None:
            return
        phase = self._phases.pop(action.call_id, "")
        call = Call(action.call_id, CallKind.ENGINE, line.port, None, "", action.ctrl,
                    placed=True, connected=phase == "connected", engine=True)
        self._calls[call.call_id] = call
        self._drop_call(line)
        line.call = call
        if line.state in (S.RECALL, S.IDLE):
            line.state = S.HELD
        if call.connected and line.state is S.HELD:
            line.state = S.TALKING
            self._emit(AttachCall(line.port, action.ctrl, action.call_id))
        elif phase == "alerting":
            self._emit(SetTone(line.port, Tone.RINGBACK))

    def _seen_claim(self, action: A.ClaimCall) -> None:
        call = self._calls.get(action.call_id)
        if call is not None and not call.placed:
            call.cc_reference = action.cc_reference
            call.cc_t_handle = action.cc_t_handle

    # --------------------------------------------------------- leaving a call

    def _drop_call(self, line: Line) -> None:
        """``line`` leaves its call (on-hook, new dial tone, bridge gone): clear what
        is ours to clear and tell the other port."""
        call, line.call = line.call, None
        if call is None:
            return
        self._forget(call)
        if call.kind is CallKind.LOCAL:
            if call.connected:
                self._emit(UnlinkPort(line.port))
            other_port = call.b_port if line.port == call.a_port else call.a_port
            other = self._lines.get(other_port) if other_port is not None else None
            if other is None or other.call is not call:
                return
            if other.state is S.RINGING:  # our own call: stop ringing the callee
                self._emit(StopRinging(other.port))
                self._ring_done(other)
            elif other.state in (S.TALKING, S.CALLING):
                other.call = None
                self._cleared(other, Tone.BUSY, window=False)
            return
        if call.kind is CallKind.INCOMING and not call.connected:
            assert call.ctrl is not None
            self._emit(RejectCall(call.ctrl, call_id=call.call_id, cause=CAUSE_USER_BUSY))
            return
        if call.connected:
            self._emit(DetachCall(line.port, call.call_id))
        # the engine clears its own call until it is connected (then it is done with it)
        if call.ctrl is not None and call.placed and (call.connected or not call.engine):
            self._emit(HangUp(call.ctrl, call_id=call.call_id))

    def _forget(self, call: Call) -> None:
        if self._calls.get(call.call_id) is call:
            del self._calls[call.call_id]

    # ------------------------------------------------------------ the bridge

    def _ports_lost(self, ports: tuple[str, ...]) -> None:
        self._losing = frozenset(ports)
        try:
            for port in ports:
                line = self._lines.get(port)
                if line is None:
                    continue
                self._drop_call(line)
                self._idle(line)
                line.state = S.DOWN
        finally:
            self._losing = frozenset()

    def _ports_reset(self, event: PortsReset) -> None:
        """Rings and tones are gone (FXB/1 §3.7.2): every call of these ports ends; an
        off-hook handset gets nothing until it is put down, except two handsets the
        bridge still connects (our predecessor's call): they talk on. A ring of our
        predecessor is stopped: nobody would answer for it."""
        off_hook = frozenset(event.off_hook)
        for port in event.ports:
            line = self._lines.get(port)
            if line is None:
                continue
            self._drop_call(line)
            self._idle(line)
            line.off_hook = port in off_hook
            line.state = S.PARKED if line.off_hook else S.IDLE
            if port in event.ringing and not line.off_hook:
                self._emit(StopRinging(port))
        for a_port, b_port in event.links:
            a, b = self._lines.get(a_port), self._lines.get(b_port)
            if a is None or b is None or not (a.off_hook and b.off_hook):
                continue
            call = Call(self._new_call_id(), CallKind.LOCAL, a_port, b_port, b.station.ext,
                        placed=True, connected=True)
            self._calls[call.call_id] = call
            a.call = b.call = call
            a.state = b.state = S.TALKING

    # ---------------------------------------------------------------- helpers

    def _line_deadline(self, line: Line) -> float | None:
        own = line.deadline
        if line.state is S.CLEARED or (line.state is S.DIALLING and line.collecting_code):
            codes = line.codes.next_deadline()
            if codes is not None and (own is None or codes < own):
                return codes
        return own

    def _emit(self, output: Output) -> None:
        self._out.append(output)


def _clip(number: str) -> str:
    """What a phone display can show (EN 300 659-3 CLIP carries up to 20 digits)."""
    return "".join(ch for ch in number if ch in "0123456789*#+")[:20]


__all__ = ["CC_CAUSES", "CODE_EVENTS", "Call", "CallControl", "CallKind", "LINE_RULES",
           "Line", "LineState", "reply_tone"]
