"""ETSI CCBS/CCNR network side on a point-to-multipoint access (etsi-ccbs.md §5.1–§5.6).

Each test is one story told from the user side: A meets busy, asks for CCBS, B becomes
free, the network asks A, A recalls ... and asserts what the terminals on A's bus see.
"""

from __future__ import annotations

import pytest
from ccbs_isdn.drivers.sim.exchange import NetworkTimers, SimExchange
from ccbs_isdn.drivers.sim.q931 import Q931, MsgType

from ccbs_isdn.isdn import RecallMode
from ccbs_isdn.rose import types as rt
from ccbs_isdn.rose.codec import Invoke, Reject, ReturnError, ReturnResult
from ccbs_isdn.rose.operations import Operation

from .test_exchange_support import (
    BC_SPEECH,
    BC_UDI,
    Clock,
    Terminal,
    busy_call,
    components,
    ie,
    invokes,
)

B = "0303333"  # busy external subscriber


@pytest.fixture
def ex() -> SimExchange:
    ex = SimExchange(NetworkTimers())
    ex.add_access("isdn1", ["3301", "3302"])
    ex.add_access("isdn2", ["4401"], recall_mode=RecallMode.SPECIFIC)
    ex.add_subscriber(B, busy=True)
    ex.add_subscriber("0304444", answers=False)
    ex.add_subscriber("0305555", busy=True)
    ex.add_subscriber("0306666", busy=True)
    return ex


@pytest.fixture
def clock(ex: SimExchange) -> Clock:
    return Clock(ex)


@pytest.fixture
def a(ex: SimExchange, clock: Clock) -> Terminal:
    return Terminal(ex, clock, "isdn1")


def only(answers: object) -> ReturnResult | ReturnError:
    items = list(answers)  # type: ignore[call-overload]
    assert len(items) == 1, items
    item = items[0]
    assert isinstance(item, ReturnResult | ReturnError), item
    return item


def activate(a: Terminal, clock: Clock, b: str = B, calling: str = "3301") -> int:
    """5.1: busy call, CCBSRequest, result; returns the CCBSReference."""
    _, linkage = busy_call(a, clock, b, calling)
    iid = a.request(linkage)
    result = only(a.results())
    assert isinstance(result, ReturnResult) and result.invoke_id == iid
    assert isinstance(result.result, rt.CCBSRequestRes)
    a.broadcasts("EraseCallLinkageID")
    return result.result.ccbs_reference


def status_request(a: Terminal) -> Invoke:
    (inv,) = a.broadcasts("CCBSStatusRequest")
    return inv


# ----------------------------------------------------------------------------- 5.1


def test_5_1_request_accepted_then_linkage_erased_in_that_order(
    ex: SimExchange, a: Terminal, clock: Clock
) -> None:
    _, linkage = busy_call(a, clock, B, "3302")
    iid = a.request(linkage)
    first, second = a.take()
    assert first.type is MsgType.FACILITY and first.cr is None
    (result,) = components(first)
    assert isinstance(result, ReturnResult) and result.invoke_id == iid
    assert result.result == rt.CCBSRequestRes(rt.RecallMode.globalRecall, 1)
    (erase,) = invokes(second, "EraseCallLinkageID")
    assert erase.argument == rt.EraseCallLinkageIDArg(linkage)
    assert second.called == "3302"  # A's MSN rides along (EN 300 195-1 interaction)
    (record,) = ex.cc_records("isdn1")
    assert (record.reference, record.state, record.a_number, record.b_number) == (
        1,
        "activated",
        "3302",
        B,
    )
    assert record.bearer == BC_SPEECH
    assert ex.linkages() == []


def test_5_1_request_before_releasing_the_failed_call(ex: SimExchange, clock: Clock) -> None:
    a = Terminal(ex, clock, "isdn1", auto_release=False)
    cr = a.setup(B, "3301")
    disc = a.expect(MsgType.DISCONNECT, cr=cr)
    (retain,) = invokes(disc, "CallInfoRetain")
    a.request(retain.argument.call_linkage_id)
    assert isinstance(only(a.results()), ReturnResult)
    a.send(Q931(MsgType.RELEASE, cr, False))
    a.expect(MsgType.RELEASE_COMPLETE, cr=cr)
    clock.advance(ex.timers.t_retention + 1)
    # the linkage was consumed by the request: erased once, no T-RETENTION afterwards
    assert len(a.broadcasts("EraseCallLinkageID")) == 1
    assert [r.state for r in ex.cc_records()] == ["activated"]


def test_references_and_linkage_ids_are_per_access(ex: SimExchange, clock: Clock) -> None:
    a1 = Terminal(ex, clock, "isdn1")
    a2 = Terminal(ex, clock, "isdn2")
    assert activate(a1, clock) == 1
    assert activate(a2, clock, calling="4401") == 1
    (one,) = ex.cc_records("isdn1")
    (two,) = ex.cc_records("isdn2")
    assert one.recall_mode is RecallMode.GLOBAL and two.recall_mode is RecallMode.SPECIFIC


def test_linkage_ids_skip_ids_in_use_and_run_out_after_128(ex: SimExchange) -> None:
    ex.add_access("big", ["7701"])
    clock = Clock(ex)
    big = Terminal(ex, clock, "big")
    seen = []
    for _ in range(128):
        cr = big.setup(B, "7701")
        disc = big.expect(MsgType.DISCONNECT, cr=cr)
        seen.append(invokes(disc, "CallInfoRetain")[0].argument.call_linkage_id)
    assert sorted(seen) == list(range(128))
    cr = big.setup(B, "7701")
    disc = big.expect(MsgType.DISCONNECT, cr=cr)
    assert disc.cause == 17 and disc.facility == ()  # no id left: CC not offered


def test_5_1_ccnr_offered_in_alerting_and_requested_after_no_reply(
    ex: SimExchange, a: Terminal, clock: Clock
) -> None:
    cr = a.setup("0304444", "3301")
    alerting = a.expect(MsgType.ALERTING, cr=cr)
    (retain,) = invokes(alerting, "CallInfoRetain")
    clock.advance(ex.timers.t301)
    disc = a.expect(MsgType.DISCONNECT, cr=cr)
    assert disc.cause == 19 and not invokes(disc, "CallInfoRetain")  # offered already
    linkage = retain.argument.call_linkage_id
    a.request(linkage)  # CCBSRequest on a CCNR linkage
    error = only(a.results())
    assert isinstance(error, ReturnError) and error.error.name == "callFailureReasonNotBusy"
    iid = a.request(linkage, ccnr=True)
    result = only(a.results())
    assert isinstance(result, ReturnResult) and result.invoke_id == iid
    assert result.operation == Operation.CCNRRequest
    assert [r.kind.value for r in ex.cc_records()] == ["ccnr"]
    # EN 301 065-1: B must have been in use since activation before it counts as free
    a.broadcasts("EraseCallLinkageID")
    clock.advance(60)
    assert a.broadcasts("CCBSStatusRequest") == []
    ex.set_busy("0304444", True, clock.now)
    ex.set_busy("0304444", False, clock.now)
    assert status_request(a).argument.ccbs_reference == result.result.ccbs_reference


# ----------------------------------------------------------------------------- 5.2


@pytest.mark.parametrize(
    ("story", "error"),
    [
        ("unknown linkage", "invalidCallLinkageID"),
        ("second request for the same B", "cCBSIsAlreadyActivated"),
        ("A's queue is full", "outgoingCCBSQueueFull"),
        ("B's queue is full", "shortTermDenial"),
        ("B's network refuses", "longTermDenial"),
        ("access refusal hook", "supplementaryServiceInteractionNotAllowed"),
        ("CCNR for a busy call", "notAvailable"),
    ],
)
def test_5_2_request_refused(ex: SimExchange, clock: Clock, story: str, error: str) -> None:
    ex.add_access("small", ["5501"], max_requests=2)
    ex.add_subscriber("0307777", busy=True, max_queue=1)
    a = Terminal(ex, clock, "small")
    other = Terminal(ex, clock, "isdn1")
    linkage = 77
    ccnr = False
    if story == "unknown linkage":
        busy_call(a, clock, B, "5501")
    elif story == "second request for the same B":
        activate(a, clock)
        _, linkage = busy_call(a, clock, B, "5501")
    elif story == "A's queue is full":
        activate(a, clock, "0305555")
        activate(a, clock, "0306666")
        _, linkage = busy_call(a, clock, B, "5501")
    elif story == "B's queue is full":
        activate(other, clock, "0307777")
        _, linkage = busy_call(a, clock, "0307777", "5501")
    elif story == "B's network refuses":
        ex.refuse_requests_to(B, "longTermDenial")
        _, linkage = busy_call(a, clock, B, "5501")
    elif story == "access refusal hook":
        ex.refuse_requests("small", error)
        _, linkage = busy_call(a, clock, B, "5501")
    else:
        _, linkage = busy_call(a, clock, B, "5501")
        ccnr = True
    before = len(ex.cc_records("small"))
    iid = a.request(linkage, ccnr=ccnr)
    answer = only(a.results())
    assert isinstance(answer, ReturnError) and answer.invoke_id == iid
    assert answer.error.name == error
    assert answer.error.module == (
        "General-Errors"
        if error in ("notAvailable", "supplementaryServiceInteractionNotAllowed")
        else "CCBS-Operations-and-Errors"
    )
    assert len(ex.cc_records("small")) == before


def test_5_2_not_subscribed(ex: SimExchange, clock: Clock) -> None:
    ex.add_access("nocc", ["6601"], ccbs=False, ccnr=False)
    t = Terminal(ex, clock, "nocc")
    t.request(1)
    answer = only(t.results())
    assert isinstance(answer, ReturnError) and answer.error.name == "notSubscribed"
    assert answer.error.value == 0  # General-Errors localValue 0
    t.deactivate(1)
    answer = only(t.results())
    assert isinstance(answer, ReturnError) and answer.error.name == "notSubscribed"


def test_5_2_retention_expiry_erases_the_linkage(
    ex: SimExchange, a: Terminal, clock: Clock
) -> None:
    _, linkage = busy_call(a, clock, B, "3301")
    clock.advance(ex.timers.t_retention - 0.5)
    assert a.broadcasts("EraseCallLinkageID") == []
    clock.advance(1.0)
    (erase,) = a.broadcasts("EraseCallLinkageID")
    assert erase.argument.call_linkage_id == linkage
    a.request(linkage)
    answer = only(a.results())
    assert isinstance(answer, ReturnError) and answer.error.name == "invalidCallLinkageID"


# ----------------------------------------------------------------------------- 5.3


def test_5_3_b_free_status_request_remote_user_free_recall_and_erase(
    ex: SimExchange, a: Terminal, clock: Clock
) -> None:
    ref = activate(a, clock, calling="3302")
    ex.update_subscriber(B, answer_delay=3.0)
    ex.set_busy(B, False, clock.now)
    poll = status_request(a)
    assert poll.argument == rt.CCBSStatusRequestArg(rt.RecallMode.globalRecall, ref, BC_SPEECH)
    assert ex.cc_records()[0].state == "b-available"
    a.answer_status(poll.invoke_id, True)
    (ruf,) = a.broadcasts("CCBSRemoteUserFree")
    assert ruf.argument.ccbs_reference == ref
    assert ruf.argument.address_of_b.party_number.digits == B
    assert ruf.argument.q931_info_element == BC_SPEECH
    assert ex.cc_records()[0].state == "wait-callback"
    cr = a.recall(B, "3302", ref)
    (stop,) = a.broadcasts("CCBSStopAlerting")  # globalRecall: other terminals stop
    assert stop.argument.ccbs_reference == ref
    a.expect(MsgType.CALL_PROCEEDING, cr=cr)
    a.expect(MsgType.ALERTING, cr=cr)
    assert ex.cc_records()[0].state == "callback"
    assert [c.recall for c in ex.calls()] == [True]
    clock.advance(3.0)
    a.expect(MsgType.CONNECT, cr=cr)
    (erase,) = a.broadcasts("CCBSErase")
    assert erase.argument.erase_reason is rt.CCBSEraseReason.normal_unspecified
    assert ex.cc_records() == []


def test_5_3_specific_recall_sends_no_stop_alerting(ex: SimExchange, clock: Clock) -> None:
    t = Terminal(ex, clock, "isdn2")
    ref = activate(t, clock, calling="4401")
    ex.set_busy(B, False, clock.now)
    poll = status_request(t)
    assert poll.argument.recall_mode is rt.RecallMode.specificRecall
    t.answer_status(poll.invoke_id, True)
    t.broadcasts("CCBSRemoteUserFree")
    cr = t.recall(B, "4401", ref)
    assert t.broadcasts("CCBSStopAlerting") == []
    t.expect(MsgType.CONNECT, cr=cr)


def test_5_3_one_terminal_busy_another_free(ex: SimExchange, a: Terminal, clock: Clock) -> None:
    activate(a, clock)
    ex.set_busy(B, False, clock.now)
    poll = status_request(a)
    a.answer_status(poll.invoke_id, False)  # this terminal is busy...
    assert a.broadcasts("CCBSBFree") == []
    a.answer_status(poll.invoke_id, True)  # ...the one holding the request is free
    assert len(a.broadcasts("CCBSRemoteUserFree")) == 1


@pytest.mark.parametrize(
    ("story", "error"),
    [
        ("before B is free", "notReadyForCall"),
        ("unknown reference", "invalidCCBSReference"),
        ("second acceptance", "alreadyAccepted"),
    ],
)
def test_5_3_recall_refused_in_the_clearing_of_the_setup(
    ex: SimExchange, a: Terminal, clock: Clock, story: str, error: str
) -> None:
    ref = activate(a, clock)
    if story == "unknown reference":
        ref = 99
    elif story == "second acceptance":
        ex.update_subscriber(B, answer_delay=10.0)
        ex.set_busy(B, False, clock.now)
        a.answer_status(status_request(a).invoke_id, True)
        a.broadcasts("CCBSRemoteUserFree")
        first = a.recall(B, "3301", ref)
        a.expect(MsgType.ALERTING, cr=first)
        a.take()
    cr = a.recall(B, "3301", ref)
    rc = a.expect(MsgType.RELEASE_COMPLETE, cr=cr)
    (answer,) = components(rc)
    assert isinstance(answer, ReturnError) and answer.error.name == error
    assert rc.cause == 31
    assert a.inbox == []
    assert len(ex.cc_records()) == 1  # the request itself is untouched


# ----------------------------------------------------------------------------- 5.4


def test_5_4_a_busy_suspends_with_b_free_then_resumes(
    ex: SimExchange, a: Terminal, clock: Clock
) -> None:
    ref = activate(a, clock)
    ex.set_busy(B, False, clock.now)
    a.answer_status(status_request(a).invoke_id, False)
    clock.advance(ex.timers.t_ccbs1)
    (bfree,) = a.broadcasts("CCBSBFree")
    assert bfree.argument.ccbs_reference == ref
    assert bfree.argument.address_of_b.party_number.digits == B
    assert ex.cc_records()[0].state == "suspended"
    # asked again every T-CCBS1 while suspended
    poll = status_request(a)
    a.answer_status(poll.invoke_id, False)
    clock.advance(ex.timers.t_ccbs1)
    poll = status_request(a)
    a.answer_status(poll.invoke_id, True)
    # A free again and B still free: straight to RemoteUserFree, no second question
    (ruf,) = a.broadcasts("CCBSRemoteUserFree")
    assert ruf.argument.ccbs_reference == ref
    assert a.broadcasts("CCBSStatusRequest") == []


def test_5_4_suspension_lets_the_next_request_have_b(ex: SimExchange, clock: Clock) -> None:
    a1 = Terminal(ex, clock, "isdn1")
    a2 = Terminal(ex, clock, "isdn2")
    activate(a1, clock)
    activate(a2, clock, calling="4401")
    ex.set_busy(B, False, clock.now)
    assert a2.broadcasts("CCBSStatusRequest") == []  # one request at a time per B
    a1.answer_status(status_request(a1).invoke_id, False)
    clock.advance(ex.timers.t_ccbs1)
    assert len(a1.broadcasts("CCBSBFree")) == 1
    a2.answer_status(status_request(a2).invoke_id, True)
    assert len(a2.broadcasts("CCBSRemoteUserFree")) == 1


@pytest.mark.parametrize("fault", [False, True])
def test_5_4_three_silent_rounds_erase_the_request(
    ex: SimExchange, a: Terminal, clock: Clock, fault: bool
) -> None:
    ref = activate(a, clock)
    if fault:
        ex.ignore_status_answers("isdn1")
    ex.set_busy(B, False, clock.now)
    for round_ in range(3):
        poll = status_request(a)
        if fault:
            a.answer_status(poll.invoke_id, True)  # the network never hears it
        assert a.broadcasts("CCBSErase") == [], round_
        clock.advance(ex.timers.t_ccbs1)
    (erase,) = a.broadcasts("CCBSErase")
    assert erase.argument.ccbs_reference == ref
    assert erase.argument.erase_reason is rt.CCBSEraseReason.normal_unspecified
    assert ex.cc_records() == []


def test_5_4_late_and_unknown_status_answers(ex: SimExchange, a: Terminal, clock: Clock) -> None:
    activate(a, clock)
    ex.set_busy(B, False, clock.now)
    poll = status_request(a)
    clock.advance(ex.timers.t_ccbs1 + 0.5)  # one silent round; a new poll went out
    a.answer_status(poll.invoke_id, True)  # late: ignored quietly (extended T-CCBS1)
    assert a.broadcasts("CCBSRemoteUserFree") == [] and list(a.results()) == []
    a.answer_status(4242, True)  # never asked
    (reject,) = a.results()
    assert isinstance(reject, Reject) and reject.invoke_id == 4242
    assert reject.problem == ("returnResult", 0)  # unrecognizedInvocation


# ----------------------------------------------------------------------------- 5.5


def test_5_5_no_recall_within_t_ccbs3(ex: SimExchange, a: Terminal, clock: Clock) -> None:
    ref = activate(a, clock)
    ex.set_busy(B, False, clock.now)
    a.answer_status(status_request(a).invoke_id, True)
    a.broadcasts("CCBSRemoteUserFree")
    clock.advance(ex.timers.t_ccbs3 - 0.5)
    assert a.broadcasts("CCBSErase") == []
    clock.advance(1.0)
    (erase,) = a.broadcasts("CCBSErase")
    assert (erase.argument.ccbs_reference, erase.argument.erase_reason) == (
        ref,
        rt.CCBSEraseReason.t_CCBS3_timeout,
    )


@pytest.mark.parametrize("retention", [False, True])
def test_5_5_recall_finds_b_busy_again(clock: Clock, retention: bool) -> None:
    ex = SimExchange(NetworkTimers(), retention=retention)
    ex.add_access("isdn1", ["3301"])
    ex.add_subscriber(B, busy=True)
    clock = Clock(ex)
    a = Terminal(ex, clock, "isdn1")
    ref = activate(a, clock)
    ex.set_busy(B, False, clock.now)
    a.answer_status(status_request(a).invoke_id, True)
    a.broadcasts("CCBSRemoteUserFree")
    ex.set_busy(B, True, clock.now)
    cr = a.recall(B, "3301", ref)
    assert a.expect(MsgType.DISCONNECT, cr=cr).cause == 17
    if retention:
        assert a.broadcasts("CCBSErase") == []
        assert [r.state for r in ex.cc_records()] == ["activated"]
        ex.set_busy(B, False, clock.now)
        assert status_request(a).argument.ccbs_reference == ref
    else:
        (erase,) = a.broadcasts("CCBSErase")
        assert erase.argument.erase_reason is rt.CCBSEraseReason.basic_call_failed
        assert ex.cc_records() == []


# ----------------------------------------------------------------------------- 5.6


def test_5_6_deactivate(ex: SimExchange, a: Terminal, clock: Clock) -> None:
    ref = activate(a, clock)
    iid = a.deactivate(ref)
    first, second = a.take()
    (result,) = components(first)
    assert result == ReturnResult(iid)  # libpri's empty result
    (erase,) = invokes(second, "CCBSErase")
    assert erase.argument.erase_reason is rt.CCBSEraseReason.normal_unspecified
    a.deactivate(ref)
    answer = only(a.results())
    assert isinstance(answer, ReturnError) and answer.error.name == "invalidCCBSReference"


@pytest.mark.parametrize(("kind", "timer"), [("ccbs", "t_ccbs2"), ("ccnr", "t_ccnr2")])
def test_5_6_service_duration_expiry(
    ex: SimExchange, a: Terminal, clock: Clock, kind: str, timer: str
) -> None:
    if kind == "ccbs":
        ref = activate(a, clock)
    else:
        cr = a.setup("0304444", "3301")
        (retain,) = invokes(a.expect(MsgType.ALERTING, cr=cr), "CallInfoRetain")
        a.disconnect(cr)
        a.request(retain.argument.call_linkage_id, ccnr=True)
        result = only(a.results())
        assert isinstance(result, ReturnResult)
        ref = result.result.ccbs_reference
    a.take()
    clock.advance(getattr(ex.timers, timer) - 1)
    assert a.broadcasts("CCBSErase") == []
    clock.advance(1)
    (erase,) = a.broadcasts("CCBSErase")
    assert erase.argument.ccbs_reference == ref
    assert erase.argument.erase_reason is rt.CCBSEraseReason.t_CCBS2_timeout


def test_5_6_network_cancellation(ex: SimExchange, a: Terminal, clock: Clock) -> None:
    ref = activate(a, clock)
    assert ex.cancel_request("isdn1", ref, clock.now)
    (erase,) = a.broadcasts("CCBSErase")
    assert erase.argument.erase_reason is rt.CCBSEraseReason.normal_unspecified
    assert not ex.cancel_request("isdn1", ref, clock.now)


def test_5_6_interrogate(ex: SimExchange, a: Terminal, clock: Clock) -> None:
    a.interrogate()
    nothing = only(a.results())
    assert isinstance(nothing, ReturnResult)
    assert nothing.result == rt.CCBSInterrogateRes(rt.RecallMode.globalRecall, ())
    r1 = activate(a, clock, B, "3301")
    cr = a.setup("0305555", "3302", bearer=BC_UDI)
    (retain,) = invokes(a.expect(MsgType.DISCONNECT, cr=cr), "CallInfoRetain")
    a.request(retain.argument.call_linkage_id)
    r2 = only(a.results()).result.ccbs_reference
    a.take()
    a.interrogate()
    everything = only(a.results())
    details = everything.result.call_details
    assert [
        (d.ccbs_reference, d.address_of_b.party_number.digits, d.q931_info_element) for d in details
    ] == [(r1, B, BC_SPEECH), (r2, "0305555", BC_UDI)]
    a.interrogate(r2)
    assert [d.ccbs_reference for d in only(a.results()).result.call_details] == [r2]
    a.interrogate(party="3301")
    assert [d.ccbs_reference for d in only(a.results()).result.call_details] == [r1]
    a.interrogate(99)
    answer = only(a.results())
    assert isinstance(answer, ReturnError) and answer.error.name == "invalidCCBSReference"
    a.interrogate(r1, ccnr=True)  # a CCBS reference asked as CCNR (libpri: is_ccnr differs)
    answer = only(a.results())
    assert isinstance(answer, ReturnError) and answer.error.name == "invalidCCBSReference"


def test_5_6_interrogate_not_subscribed(ex: SimExchange, clock: Clock) -> None:
    ex.add_access("nocc", ["6601"], ccbs=False, ccnr=True)
    t = Terminal(ex, clock, "nocc")
    t.interrogate()
    answer = only(t.results())
    assert isinstance(answer, ReturnError) and answer.error.name == "notSubscribed"


def test_requests_in_a_register_are_answered_in_its_release_complete(
    ex: SimExchange, a: Terminal, clock: Clock
) -> None:
    _, linkage = busy_call(a, clock, B, "3301")
    fac = ie(Invoke(7, Operation.CCBSRequest, rt.CCBSRequestArg(linkage)))
    a.send(Q931(MsgType.REGISTER, 0x11, False, facility=(fac,)))
    rc = a.expect(MsgType.RELEASE_COMPLETE, cr=0x11)
    (result,) = components(rc)
    assert isinstance(result, ReturnResult) and result.invoke_id == 7
    assert len(a.broadcasts("EraseCallLinkageID")) == 1
    assert len(ex.cc_records()) == 1
