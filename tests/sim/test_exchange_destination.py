"""Our MSNs as user B: StatusRequest (ETS 300 196-1 annex D, etsi-ccbs.md §5.8) while a
CC request — an external caller's, or one from another of our accesses — waits for them.
The answers of the access decide; the recall arrives as a normal SETUP."""

from __future__ import annotations

import pytest
from ccbs_isdn.drivers.sim.exchange import NetworkTimers, SimExchange
from ccbs_isdn.drivers.sim.q931 import Q931, MsgType

from ccbs_isdn.rose import types as rt
from ccbs_isdn.rose.codec import Invoke

from .test_exchange_support import BC_SPEECH, Clock, Terminal, invokes

EXT = "0301111"
MSN = "4401"


@pytest.fixture
def ex() -> SimExchange:
    ex = SimExchange(NetworkTimers())
    ex.add_access("isdn1", ["3301"])
    ex.add_access("isdn2", [MSN, "4402"])
    ex.add_subscriber(EXT)
    ex.add_subscriber("0302222", ccbs=False)
    return ex


@pytest.fixture
def clock(ex: SimExchange) -> Clock:
    return Clock(ex)


@pytest.fixture
def b(ex: SimExchange, clock: Clock) -> Terminal:
    return Terminal(ex, clock, "isdn2", auto_release=False)


def reject_busy(b: Terminal) -> Q931:
    setup = b.expect(MsgType.SETUP)
    b.release_complete(setup.cr or 0, cause=17)
    return setup


def status_request(b: Terminal, msn: str = MSN) -> Invoke:
    msgs = [m for m in b.inbox if m.type is MsgType.FACILITY and m.cr is None]
    found = [(m, i) for m in msgs for i in invokes(m, "StatusRequest")]
    assert len(found) == 1, [b.describe(m) for m in b.inbox]
    msg, inv = found[0]
    b.inbox.remove(msg)
    assert msg.called == msn  # the network names the MSN it asks about
    return inv


def test_external_caller_ccbs_toward_our_msn(ex: SimExchange, clock: Clock, b: Terminal) -> None:
    ex.call_from(EXT, MSN, clock.now)
    reject_busy(b)
    (record,) = ex.cc_records()
    assert (record.access_id, record.a_number, record.b_number) == (None, EXT, MSN)
    clock.advance(ex.timers.t_destination_poll)
    poll = status_request(b)
    assert poll.argument == rt.StatusRequestArg(rt.CompatibilityMode.allBasicServices, BC_SPEECH)
    b.answer_destination(poll.invoke_id, rt.StatusResult.compatibleAndBusy)
    assert b.inbox == []
    assert ex.is_busy(MSN)
    clock.advance(ex.timers.t_status + ex.timers.t_destination_poll)
    poll = status_request(b)
    b.answer_destination(poll.invoke_id, rt.StatusResult.compatibleAndFree)
    # B is free and the external A is free: its network places the recall
    setup = b.expect(MsgType.SETUP)
    assert (setup.calling, setup.called) == (EXT, MSN)
    assert [c.recall for c in ex.calls()] == [True]
    b.send(Q931(MsgType.CONNECT, setup.cr, False))
    b.expect(MsgType.CONNECT_ACK)
    assert ex.cc_records() == []


def test_no_answer_means_unknown_and_the_network_asks_again(
    ex: SimExchange, clock: Clock, b: Terminal
) -> None:
    ex.call_from(EXT, MSN, clock.now)
    reject_busy(b)
    clock.advance(ex.timers.t_destination_poll)
    status_request(b)
    clock.advance(ex.timers.t_status)
    assert b.inbox == []
    clock.advance(ex.timers.t_destination_poll)
    status_request(b)
    assert len(ex.cc_records()) == 1


def test_incompatible_destination_ends_the_request(
    ex: SimExchange, clock: Clock, b: Terminal
) -> None:
    ex.call_from(EXT, MSN, clock.now)
    reject_busy(b)
    clock.advance(ex.timers.t_destination_poll)
    poll = status_request(b)
    b.answer_destination(poll.invoke_id, rt.StatusResult.incompatible)
    clock.advance(ex.timers.t_status)
    assert ex.cc_records() == []
    clock.advance(ex.timers.t_destination_poll * 3)
    assert b.inbox == []  # nobody waits for the MSN any more: no more polling


def test_external_a_busy_when_b_free_waits_then_recalls(
    ex: SimExchange, clock: Clock, b: Terminal
) -> None:
    ex.call_from(EXT, MSN, clock.now)
    reject_busy(b)
    ex.set_busy(EXT, True, clock.now)
    clock.advance(ex.timers.t_destination_poll)
    b.answer_destination(status_request(b).invoke_id, rt.StatusResult.compatibleAndFree)
    assert [r.state for r in ex.cc_records()] == ["suspended"]
    assert b.inbox == []
    ex.set_busy(EXT, False, clock.now)
    setup = b.expect(MsgType.SETUP)
    assert setup.calling == EXT


def test_external_caller_without_cc_does_not_request(
    ex: SimExchange, clock: Clock, b: Terminal
) -> None:
    ex.call_from("0302222", MSN, clock.now)
    reject_busy(b)
    ex.call_from(EXT, MSN, clock.now, cc=False)
    reject_busy(b)
    assert ex.cc_records() == []


def test_external_ccnr_needs_our_msn_to_have_been_busy(
    ex: SimExchange, clock: Clock, b: Terminal
) -> None:
    ex.call_from(EXT, MSN, clock.now)
    setup = b.expect(MsgType.SETUP)
    b.send(Q931(MsgType.ALERTING, setup.cr, False))
    clock.advance(ex.timers.t301)
    assert b.expect(MsgType.DISCONNECT, cr=setup.cr).cause == 19
    b.send(Q931(MsgType.RELEASE, setup.cr, False))
    (record,) = ex.cc_records()
    assert record.kind.value == "ccnr"
    clock.advance(ex.timers.t_destination_poll)
    b.answer_destination(status_request(b).invoke_id, rt.StatusResult.compatibleAndFree)
    assert not any(m.type is MsgType.SETUP for m in b.inbox)  # free, but never was busy
    b.take()
    clock.advance(ex.timers.t_destination_poll)
    b.answer_destination(status_request(b).invoke_id, rt.StatusResult.compatibleAndBusy)
    clock.advance(ex.timers.t_status + ex.timers.t_destination_poll)
    b.answer_destination(status_request(b).invoke_id, rt.StatusResult.compatibleAndFree)
    assert b.expect(MsgType.SETUP).calling == EXT


def test_ccbs_between_two_of_our_accesses(ex: SimExchange, clock: Clock, b: Terminal) -> None:
    a = Terminal(ex, clock, "isdn1")
    cr = a.setup(MSN, "3301")
    reject_busy(b)
    (retain,) = invokes(a.expect(MsgType.DISCONNECT, cr=cr), "CallInfoRetain")
    a.request(retain.argument.call_linkage_id)
    (result,) = a.results()
    reference = result.result.ccbs_reference  # type: ignore[union-attr]
    clock.advance(ex.timers.t_destination_poll)
    b.answer_destination(status_request(b).invoke_id, rt.StatusResult.compatibleAndFree)
    (poll,) = a.broadcasts("CCBSStatusRequest")
    a.answer_status(poll.invoke_id, True)
    assert len(a.broadcasts("CCBSRemoteUserFree")) == 1
    rcr = a.recall(MSN, "3301", reference)
    setup = b.expect(MsgType.SETUP)
    assert (setup.called, setup.calling) == (MSN, "3301")
    b.send(Q931(MsgType.CONNECT, setup.cr, False))
    a.expect(MsgType.CONNECT, cr=rcr)
    assert len(a.broadcasts("CCBSErase")) == 1
    assert ex.cc_records() == []


def test_a_call_ending_on_the_msn_triggers_an_immediate_question(
    ex: SimExchange, clock: Clock, b: Terminal
) -> None:
    # MSN is in a call through the exchange with another external party...
    ex.add_subscriber("0309999")
    ex.call_from("0309999", MSN, clock.now)
    first = b.expect(MsgType.SETUP)
    b.send(Q931(MsgType.CONNECT, first.cr, False))
    b.expect(MsgType.CONNECT_ACK)
    # ...so the network itself knows it is busy (no channel question needed)
    ex.call_from(EXT, MSN, clock.now)
    reject_busy(b)
    clock.advance(ex.timers.t_destination_poll)
    assert b.inbox == []  # in a call: the network does not ask
    ex.hang_up("0309999", clock.now)
    b.expect(MsgType.DISCONNECT, cr=first.cr)
    b.send(Q931(MsgType.RELEASE, first.cr, False))
    poll = status_request(b)  # asked at once, not after the poll interval
    b.answer_destination(poll.invoke_id, rt.StatusResult.compatibleAndFree)
    assert b.expect(MsgType.SETUP).calling == EXT


def test_destination_queue_limit(ex: SimExchange, clock: Clock, b: Terminal) -> None:
    ex.add_subscriber("0308888")
    for number in (EXT, "0308888"):
        ex.call_from(number, MSN, clock.now)
        reject_busy(b)
    assert len(ex.cc_records()) == 2
    small = SimExchange(NetworkTimers(), destination_queue_limit=1)
    small.add_access("isdn2", [MSN])
    small.add_subscriber(EXT)
    small.add_subscriber("0308888")
    sclock = Clock(small)
    sb = Terminal(small, sclock, "isdn2", auto_release=False)
    for number in (EXT, "0308888"):
        small.call_from(number, MSN, sclock.now)
        reject_busy(sb)
    assert [r.a_number for r in small.cc_records()] == [EXT]
    assert any("shortTermDenial" in line for line in small.log_lines())
