"""Basic call control, told as phone stories with a fake clock (pure, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccbs_isdn.analog.contract import Tone
from ccbs_isdn.calls import (
    AttachCall,
    CallControl,
    DetachCall,
    DialPlan,
    Digit,
    HookFlash,
    LineState,
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
    Station,
    StopRinging,
    UnlinkPort,
)
from ccbs_isdn.engine import actions as A
from ccbs_isdn.engine import events as E
from ccbs_isdn.isdn import (
    AnswerCall,
    CallAlerting,
    CallConnected,
    CallEnded,
    HangUp,
    IncomingCall,
    PlaceCall,
    RejectCall,
)

P1, P2, P3 = "fxs0/1", "fxs0/2", "fxs0/3"
PLAN = DialPlan(
    stations=(Station("21", P1, "5551", 1, "Anna"), Station("22", P2, "5552", 1, "Bert"),
              Station("23", P3)),
    interdigit=4.0, first_digit=15.0, feedback_ms=800,
)


class Phones:
    """Drives a CallControl like the runtime does: outputs are collected, Loopbacks
    fed back in order; the fake clock moves only when told."""

    def __init__(self, plan: DialPlan = PLAN) -> None:
        self.cc = CallControl(plan, call_prefix="c")
        self.now = 0.0
        self.out: list[Any] = []
        self.feed(PortsReset(plan.ports()))
        self.out.clear()

    def feed(self, event: Any) -> list[Any]:
        got = self.cc.handle(event, self.now)
        return self._run(got)

    def _run(self, got: list[Any]) -> list[Any]:
        done: list[Any] = []
        for item in got:
            if isinstance(item, Loopback):
                done += self.feed(item.event)
            else:
                done.append(item)
                self.out.append(item)
        return done

    def wait(self, seconds: float) -> list[Any]:
        end = self.now + seconds
        done: list[Any] = []
        while (due := self.cc.next_deadline()) is not None and due <= end:
            self.now = max(self.now, due)
            done += self._run(self.cc.handle_timer(self.now))
        self.now = end
        return done

    def lift(self, port: str) -> list[Any]:
        return self.feed(OffHook(port))

    def hang_up(self, port: str) -> list[Any]:
        return self.feed(OnHook(port))

    def dial(self, port: str, digits: str) -> list[Any]:
        done: list[Any] = []
        for d in digits:
            done += self.feed(Digit(port, d))
        return done

    def tones(self, port: str) -> list[Tone]:
        return [o.tone for o in self.out if isinstance(o, SetTone) and o.port == port]

    def state(self, port: str) -> LineState:
        return self.cc.state(port)

    def of(self, kind: type) -> list[Any]:
        return [o for o in self.out if isinstance(o, kind)]


@pytest.fixture
def phones() -> Phones:
    return Phones()


# ------------------------------------------------------------ internal calls


def test_anna_calls_bert_who_answers_and_hangs_up_first(phones: Phones) -> None:
    assert phones.lift(P1) == [SetTone(P1, Tone.DIAL)]
    out = phones.dial(P1, "22")
    assert out[0] == SetTone(P1, Tone.OFF)
    assert out[1] == E.Dialled("21", "22", "c1", None)
    assert RingPort(P2, PLAN.internal_cadence, PLAN.ring_timeout, "21", "Anna") in out
    assert E.PortState(P2, True) in out  # on-hook but in use
    assert out[-1] == SetTone(P1, Tone.RINGBACK)
    assert phones.state(P2) is LineState.RINGING

    assert phones.feed(RingAnswer(P2)) == [LinkPorts(P1, P2)]
    assert phones.state(P1) is phones.state(P2) is LineState.TALKING

    out = phones.hang_up(P2)
    assert out == [UnlinkPort(P2), SetTone(P1, Tone.BUSY)]
    assert phones.state(P1) is LineState.CLEARED
    phones.dial(P1, "5")  # the far end hung up: no activation window
    assert not phones.of(E.Activate)


def test_bert_busy_anna_flashes_and_dials_star37_and_hears_confirm(phones: Phones) -> None:
    phones.lift(P2)
    phones.lift(P1)
    out = phones.dial(P1, "22")
    assert SetTone(P1, Tone.BUSY) in out
    assert E.CallFailed("21", "22", 17, None, "c1") in out
    assert phones.state(P1) is LineState.CLEARED

    phones.wait(3)
    assert phones.feed(HookFlash(P1, 90)) == [SetTone(P1, Tone.SPECIALDIAL)]
    out = phones.dial(P1, "*37#")
    assert out[0] == SetTone(P1, Tone.OFF)
    activate = out[-1]
    assert isinstance(activate, E.Activate) and activate.caller == "21"
    assert phones.state(P1) is LineState.AWAIT_REPLY
    assert phones.cc.owns_tag(activate.tag)

    out = phones.feed(A.RequestAccepted(activate.tag, 7, "21", "22"))
    assert out == [SetTone(P1, Tone.CONFIRM, 800)]
    assert phones.state(P1) is LineState.FEEDBACK
    phones.hang_up(P1)
    assert phones.state(P1) is LineState.IDLE


def test_the_quick_digit_5_activates_within_the_window_only(phones: Phones) -> None:
    phones.lift(P2)
    phones.lift(P1)
    phones.dial(P1, "22")
    phones.wait(19)
    out = phones.dial(P1, "5")
    assert isinstance(out[-1], E.Activate)

    phones.hang_up(P1)
    phones.lift(P1)
    phones.dial(P1, "22")
    phones.wait(20.5)
    assert phones.dial(P1, "5") == []  # too late: a key over busy tone means nothing


def test_r_code_after_the_window_is_rejected(phones: Phones) -> None:
    phones.lift(P2)
    phones.lift(P1)
    phones.dial(P1, "22")
    phones.wait(18)
    phones.feed(HookFlash(P1, 100))
    phones.dial(P1, "*3")
    out = [o for o in phones.wait(5) if o.port == P1]
    assert out == [SetTone(P1, Tone.REJECT, 800)]
    assert not phones.of(E.Activate)


def test_a_refusal_gives_the_reject_tone(phones: Phones) -> None:
    phones.lift(P2)
    phones.lift(P1)
    phones.dial(P1, "22")
    activate = phones.dial(P1, "5")[-1]
    out = phones.feed(A.RequestRefused(activate.tag, "21", "caller-limit", "too many"))
    assert out == [SetTone(P1, Tone.REJECT, 800)]


def test_no_answer_from_the_engine_gives_the_reject_tone(phones: Phones) -> None:
    phones.lift(P2)
    phones.lift(P1)
    phones.dial(P1, "22")
    activate = phones.dial(P1, "5")[-1]
    out = [o for o in phones.wait(PLAN.reply_timeout) if o.port == P1]
    assert out == [SetTone(P1, Tone.REJECT, 800)]
    assert not phones.cc.owns_tag(activate.tag)
    assert phones.feed(A.RequestAccepted(activate.tag, 1, "21", "22")) == []


def test_a_reply_after_hang_up_is_swallowed(phones: Phones) -> None:
    phones.lift(P2)
    phones.lift(P1)
    phones.dial(P1, "22")
    activate = phones.dial(P1, "5")[-1]
    phones.hang_up(P1)
    assert phones.feed(A.RequestAccepted(activate.tag, 1, "21", "22")) == []


def test_bert_does_not_answer_anna_hears_busy_and_may_ask_ccnr(phones: Phones) -> None:
    phones.lift(P1)
    phones.dial(P1, "22")
    out = phones.feed(RingOver(P2, "timeout"))
    assert E.PortState(P2, False) in out
    assert SetTone(P1, Tone.BUSY) in out
    assert E.CallFailed("21", "22", 19, None, "c1") in out
    assert isinstance(phones.dial(P1, "5")[-1], E.Activate)


def test_anna_gives_up_while_bert_rings(phones: Phones) -> None:
    phones.lift(P1)
    phones.dial(P1, "22")
    out = phones.hang_up(P1)
    assert out == [StopRinging(P2), E.PortState(P2, False)]
    assert phones.state(P2) is LineState.IDLE
    assert phones.feed(RingOver(P2, "stopped")) == []


def test_calling_yourself_is_busy(phones: Phones) -> None:
    phones.lift(P1)
    out = phones.dial(P1, "21")
    assert SetTone(P1, Tone.BUSY) in out


# ------------------------------------------------------------- service codes


@pytest.mark.parametrize("digits, event", [
    ("#37#", E.Cancel(caller="21", tag="T", actor="ext:21")),
    ("#37*22#", E.Cancel(caller="21", target="22", tag="T", actor="ext:21")),
    ("*#37#", E.StatusQuery("21", "T")),
    ("*37*22#", E.Book("21", "22", tag="T", actor="ext:21")),
])
def test_codes_from_dial_tone_become_engine_events(phones: Phones, digits: str,
                                                   event: Any) -> None:
    phones.lift(P1)
    out = phones.dial(P1, digits)
    got = out[-1]
    assert type(got) is type(event)
    assert got.__class__(**{**{f: getattr(got, f) for f in got.__slots__},
                            "tag": "T"}) == event


@pytest.mark.parametrize("reply, tone", [
    (A.CancelDone("T", (1, 2)), Tone.CONFIRM),
    (A.CancelDone("T", ()), Tone.REJECT),
    (A.StatusReply("T", "21", True, (3,)), Tone.CONFIRM),
    (A.StatusReply("T", "21", False), Tone.REJECT),
])
def test_replies_become_tones(phones: Phones, reply: Any, tone: Tone) -> None:
    phones.lift(P1)
    query = phones.dial(P1, "*#37#")[-1]
    fields = {f: getattr(reply, f) for f in reply.__slots__}
    fields["tag"] = query.tag
    assert phones.feed(type(reply)(**fields)) == [SetTone(P1, tone, 800)]


def test_a_star_code_that_is_not_a_code_is_unobtainable(phones: Phones) -> None:
    phones.lift(P1)
    phones.dial(P1, "*3")
    out = phones.wait(PLAN.codes.inter_digit)
    assert out == [SetTone(P1, Tone.CONGESTION)]


# ---------------------------------------------------------- ISDN outgoing


def test_outgoing_isdn_call_is_announced_then_placed_with_the_msn(phones: Phones) -> None:
    phones.lift(P1)
    out = phones.dial(P1, "0301234#")
    assert E.Dialled("21", "301234", "c1", 1) in out
    assert out[-1] == PlaceCall(1, call_id="c1", called="301234", calling="5551")
    assert phones.feed(CallAlerting(1, "c1")) == [SetTone(P1, Tone.RINGBACK)]
    assert phones.feed(CallConnected(1, "c1")) == [AttachCall(P1, 1, "c1")]
    assert phones.hang_up(P1) == [DetachCall(P1, "c1"), HangUp(1, call_id="c1")]
    assert phones.feed(CallEnded(1, "c1", 16)) == []


def test_the_inter_digit_timeout_ends_dialling(phones: Phones) -> None:
    phones.lift(P1)
    phones.dial(P1, "0301")
    assert phones.wait(3.9) == []
    out = phones.wait(0.2)
    assert out[-1] == PlaceCall(1, call_id="c1", called="301", calling="5551")


def test_a_claimed_call_goes_out_as_the_ccbs_recall(phones: Phones) -> None:
    """The engine answers Dialled synchronously with ClaimCall; Proceed comes after."""
    cc = phones.cc
    phones.lift(P1)
    out = cc.handle(Digit(P1, "0"), 0) + cc.handle(Digit(P1, "2"), 0) \
        + cc.handle(Digit(P1, "#"), 0)
    assert isinstance(out[-1], Loopback)
    assert cc.handle(A.ClaimCall("c1", 4, cc_reference=9), 0) == []
    assert cc.handle(Proceed("c1"), 0) == [
        PlaceCall(1, call_id="c1", called="2", calling="5551", cc_reference=9)]


def test_external_busy_opens_the_window_but_leaves_callfailed_to_the_engine(
        phones: Phones) -> None:
    phones.lift(P1)
    phones.dial(P1, "022#")
    out = phones.feed(CallEnded(1, "c1", 17))
    assert out == [SetTone(P1, Tone.BUSY)]
    assert not phones.of(E.CallFailed)
    assert isinstance(phones.dial(P1, "5")[-1], E.Activate)


def test_external_congestion_has_no_window(phones: Phones) -> None:
    phones.lift(P1)
    phones.dial(P1, "022#")
    assert phones.feed(CallEnded(1, "c1", 34)) == [SetTone(P1, Tone.CONGESTION)]
    assert phones.dial(P1, "5") == []


def test_hanging_up_before_the_call_is_placed_places_nothing(phones: Phones) -> None:
    cc = phones.cc
    phones.lift(P1)
    for d in "022#":
        cc.handle(Digit(P1, d), 0)
    cc.handle(OnHook(P1), 0)
    assert cc.handle(Proceed("c1"), 0) == []


def test_the_far_end_hangs_up(phones: Phones) -> None:
    phones.lift(P1)
    phones.dial(P1, "022#")
    phones.feed(CallConnected(1, "c1"))
    assert phones.feed(CallEnded(1, "c1", 16)) == [DetachCall(P1, "c1"),
                                                    SetTone(P1, Tone.BUSY)]


# ---------------------------------------------------------- ISDN incoming


def test_incoming_call_rings_the_msn_port_and_is_answered(phones: Phones) -> None:
    out = phones.feed(IncomingCall(1, "in1", called="5552", calling="0301234"))
    assert out == [RingPort(P2, PLAN.external_cadence, PLAN.ring_timeout, "0301234"),
                   E.PortState(P2, True)]
    out = phones.feed(RingAnswer(P2))
    assert out == [AnswerCall(1, call_id="in1"), AttachCall(P2, 1, "in1")]
    assert phones.hang_up(P2) == [DetachCall(P2, "in1"), HangUp(1, call_id="in1")]


def test_incoming_call_to_a_busy_port_is_rejected_busy(phones: Phones) -> None:
    phones.lift(P2)
    assert phones.feed(IncomingCall(1, "in1", called="5552", calling="9")) == [
        RejectCall(1, call_id="in1", cause=17)]


def test_incoming_call_to_an_unknown_msn_is_not_ours(phones: Phones) -> None:
    assert phones.feed(IncomingCall(1, "in1", called="777", calling="9")) == [
        RejectCall(1, call_id="in1", cause=18)]


def test_the_caller_gives_up_while_the_port_rings(phones: Phones) -> None:
    phones.feed(IncomingCall(1, "in1", called="5552", calling="9"))
    assert phones.feed(CallEnded(1, "in1", 16)) == [StopRinging(P2), E.PortState(P2, False)]


def test_nobody_answers_an_incoming_call(phones: Phones) -> None:
    phones.feed(IncomingCall(1, "in1", called="5552", calling="9"))
    assert phones.feed(RingOver(P2, "timeout")) == [
        E.PortState(P2, False), RejectCall(1, call_id="in1", cause=19)]


# ------------------------------------------------------ the engine's recalls


def test_isdn_recall_ring_answer_and_the_recall_call(phones: Phones) -> None:
    """The engine rings A, A answers, the engine places the recall and puts A on it."""
    assert phones.feed(A.Ring(P1, A.Cadence.RECALL, 20, "22", "Rueckruf", "5.1")) == []
    assert phones.state(P1) is LineState.RECALL
    assert phones.feed(RingAnswer(P1)) == []  # the engine's, not a call to answer
    assert phones.state(P1) is LineState.HELD
    assert phones.dial(P1, "123") == []
    assert phones.feed(A.ConnectCall(P1, 1, "ccbs-5-2")) == []
    assert phones.feed(CallAlerting(1, "ccbs-5-2")) == [SetTone(P1, Tone.RINGBACK)]
    assert phones.feed(CallConnected(1, "ccbs-5-2")) == [AttachCall(P1, 1, "ccbs-5-2")]
    assert phones.hang_up(P1) == [DetachCall(P1, "ccbs-5-2"), HangUp(1, call_id="ccbs-5-2")]


def test_recall_call_not_yet_connected_is_the_engines_to_clear(phones: Phones) -> None:
    phones.feed(A.Ring(P1, A.Cadence.RECALL, 20, "22", "", "5.1"))
    phones.feed(RingAnswer(P1))
    phones.feed(A.ConnectCall(P1, 1, "ccbs-5-2"))
    assert phones.hang_up(P1) == []


def test_a_probe_that_was_connected_before_a_joined(phones: Phones) -> None:
    phones.feed(CallConnected(1, "ccbs-9-1"))
    phones.feed(A.Ring(P1, A.Cadence.RECALL, 20, "0301", "", "9.1"))
    phones.feed(RingAnswer(P1))
    assert phones.feed(A.ConnectCall(P1, 1, "ccbs-9-1")) == [AttachCall(P1, 1, "ccbs-9-1")]
    assert phones.state(P1) is LineState.TALKING


def test_local_recall_ring_a_then_b_then_talk(phones: Phones) -> None:
    phones.feed(A.Ring(P1, A.Cadence.RECALL, 20, "22", "Bert", "3.1"))
    phones.feed(RingAnswer(P1))
    phones.feed(A.PlayTone(P1, A.Tone.RINGBACK))
    phones.feed(A.Ring(P2, A.Cadence.INTERNAL, 30, "21", "Anna", "3.2"))
    phones.feed(A.ConnectPorts(P1, P2, "3.2"))
    assert phones.state(P2) is LineState.RECALL
    assert phones.feed(RingAnswer(P2)) == []  # AT%CONN completes in the bridge
    assert phones.state(P1) is phones.state(P2) is LineState.TALKING
    assert phones.hang_up(P2) == [UnlinkPort(P2), SetTone(P1, Tone.BUSY)]


def test_local_recall_a_hangs_up_while_b_rings(phones: Phones) -> None:
    phones.feed(A.Ring(P1, A.Cadence.RECALL, 20, "22", "Bert", "3.1"))
    phones.feed(RingAnswer(P1))
    phones.feed(A.Ring(P2, A.Cadence.INTERNAL, 30, "21", "Anna", "3.2"))
    phones.feed(A.ConnectPorts(P1, P2, "3.2"))
    assert phones.hang_up(P1) == []  # the engine stops B and disconnects
    phones.feed(A.StopRing(P2, "3.2"))
    assert phones.state(P2) is LineState.IDLE


def test_missed_recall_ring(phones: Phones) -> None:
    phones.feed(A.Ring(P1, A.Cadence.RECALL, 20, "22", "", "3.1"))
    assert phones.feed(RingOver(P1, "timeout")) == []
    assert phones.state(P1) is LineState.IDLE
    assert phones.lift(P1) == [SetTone(P1, Tone.DIAL)]


def test_the_engine_cannot_ring_an_off_hook_port(phones: Phones) -> None:
    phones.lift(P1)
    phones.feed(A.Ring(P1, A.Cadence.RECALL, 20, "22", "", "3.1"))
    assert phones.state(P1) is LineState.DIALTONE


# ------------------------------------------------------------------- timers


def test_dial_tone_without_digits_turns_to_busy(phones: Phones) -> None:
    phones.lift(P1)
    assert phones.wait(15) == [SetTone(P1, Tone.BUSY)]
    assert phones.dial(P1, "#37#") == []


def test_unobtainable_number(phones: Phones) -> None:
    phones.lift(P1)
    assert phones.dial(P1, "9")[-1] == SetTone(P1, Tone.CONGESTION)


def test_flash_during_dialling_restarts_dial_tone(phones: Phones) -> None:
    phones.lift(P1)
    phones.dial(P1, "2")
    assert phones.feed(HookFlash(P1, 100)) == [SetTone(P1, Tone.DIAL)]
    out = phones.dial(P1, "22")
    assert E.Dialled("21", "22", "c1", None) in out


# ------------------------------------------------------------------ the bridge


def test_a_lost_bridge_ends_calls_and_a_reset_gives_fresh_lines(phones: Phones) -> None:
    phones.lift(P1)
    phones.dial(P1, "022#")
    phones.feed(CallConnected(1, "c1"))
    out = phones.feed(PortsLost(PLAN.ports()))
    assert HangUp(1, call_id="c1") in out
    assert all(phones.state(p) is LineState.DOWN for p in PLAN.ports())
    assert phones.feed(IncomingCall(1, "in", called="5551", calling="9")) == [
        RejectCall(1, call_id="in", cause=27)]
    phones.feed(PortsReset(PLAN.ports(), off_hook=(P1,)))
    assert phones.state(P1) is LineState.PARKED
    assert phones.state(P2) is LineState.IDLE
    assert phones.dial(P1, "22") == []
    phones.hang_up(P1)
    assert phones.lift(P1) == [SetTone(P1, Tone.DIAL)]


def test_a_connection_left_by_a_previous_daemon_is_torn_down_on_hang_up(
        phones: Phones) -> None:
    phones.feed(PortsReset(PLAN.ports(), off_hook=(P1, P2), links=((P1, P2),)))
    assert phones.state(P1) is phones.state(P2) is LineState.TALKING
    assert phones.hang_up(P2) == [UnlinkPort(P2), SetTone(P1, Tone.BUSY)]


def test_a_ring_left_by_a_previous_daemon_is_stopped(phones: Phones) -> None:
    out = phones.feed(PortsReset(PLAN.ports(), ringing=(P2,)))
    assert out == [StopRinging(P2)]
    assert phones.state(P2) is LineState.IDLE


def test_a_lost_callee_is_not_reported_free_by_call_control(phones: Phones) -> None:
    phones.lift(P1)
    phones.dial(P1, "22")
    out = phones.feed(PortsLost((P2,)))
    assert E.PortState(P2, False) not in out
    assert SetTone(P1, Tone.BUSY) in out


# --------------------------------------------------------------- robustness

FACTS = st.one_of(
    st.builds(OffHook, st.sampled_from([P1, P2, P3])),
    st.builds(OnHook, st.sampled_from([P1, P2, P3])),
    st.builds(HookFlash, st.sampled_from([P1, P2, P3]), st.integers(70, 600)),
    st.builds(Digit, st.sampled_from([P1, P2, P3]), st.sampled_from(list("0123579*#"))),
    st.builds(RingAnswer, st.sampled_from([P1, P2, P3])),
    st.builds(RingOver, st.sampled_from([P1, P2, P3]), st.sampled_from(["timeout", "failed"])),
    st.builds(CallEnded, st.just(1), st.sampled_from(["c1", "c2", "c3"]),
              st.sampled_from([16, 17, 34, None])),
    st.builds(CallConnected, st.just(1), st.sampled_from(["c1", "c2", "c3"])),
    st.builds(IncomingCall, st.just(1), st.sampled_from(["i1", "i2"]),
              st.sampled_from(["5551", "5552"]), st.just("9")),
    st.builds(PortsLost, st.just((P1, P2, P3))),
    st.builds(PortsReset, st.just((P1, P2, P3))),
    st.floats(0, 30),  # time passes
)


@settings(max_examples=300, deadline=None)
@given(st.lists(FACTS, max_size=60))
def test_any_sequence_of_facts_keeps_the_lines_consistent(facts: list[Any]) -> None:
    def run() -> list[Any]:
        phones = Phones()
        for fact in facts:
            if isinstance(fact, float):
                phones.wait(fact)
            else:
                phones.feed(fact)
            for port in PLAN.ports():
                line = phones.cc.line(port)
                if line.call is not None and line.state is not LineState.RECALL:
                    assert port in line.call.ports()
                if line.state is LineState.IDLE:
                    assert not line.off_hook
                if line.state in (LineState.CALLING, LineState.TALKING, LineState.RINGING):
                    assert line.call is not None
        return phones.out

    assert run() == run()  # deterministic
