"""SimExchange basic call control (Q.931) on the seam of drivers/sim/q931.py."""

from __future__ import annotations

import pytest
from ccbs_isdn.drivers.sim.exchange import NetworkTimers, SimExchange
from ccbs_isdn.drivers.sim.q931 import Q931, MsgType

from .test_exchange_support import BC_UDI, Clock, Terminal, invokes


@pytest.fixture
def ex() -> SimExchange:
    ex = SimExchange(NetworkTimers())
    ex.add_access("isdn1", ["3301", "3302"])
    ex.add_access("isdn2", ["4401"])
    ex.add_subscriber("0301111", answers=True)
    ex.add_subscriber("0302222", answers=True, answer_delay=5.0)
    ex.add_subscriber("0303333", busy=True)
    ex.add_subscriber("0304444", answers=False)
    ex.add_subscriber("0305555", busy=True, ccbs=False)
    return ex


@pytest.fixture
def clock(ex: SimExchange) -> Clock:
    return Clock(ex)


@pytest.fixture
def a(ex: SimExchange, clock: Clock) -> Terminal:
    return Terminal(ex, clock, "isdn1")


@pytest.fixture
def b(ex: SimExchange, clock: Clock) -> Terminal:
    return Terminal(ex, clock, "isdn2", next_cr=7, auto_release=False)


def test_call_to_an_answering_subscriber_connects_and_clears(ex: SimExchange, a: Terminal) -> None:
    cr = a.setup("0301111", "3301")
    assert [m.type for m in a.inbox] == [MsgType.CALL_PROCEEDING, MsgType.CONNECT]
    assert all(m.cr == cr for m in a.inbox)
    assert ex.is_busy("0301111")
    assert [c.phase for c in ex.calls()] == ["active"]
    a.take()
    a.disconnect(cr)
    a.expect(MsgType.RELEASE, cr=cr)
    a.release_complete(cr)
    assert ex.calls() == []
    assert not ex.is_busy("0301111")


def test_alerting_offers_ccnr_and_the_answer_erases_the_linkage(
    ex: SimExchange, a: Terminal, clock: Clock
) -> None:
    cr = a.setup("0302222", "3301")
    alerting = a.expect(MsgType.ALERTING, cr=cr)
    (retain,) = invokes(alerting, "CallInfoRetain")
    assert [lk.kind.value for lk in ex.linkages("isdn1")] == ["ccnr"]
    clock.advance(5.0)
    a.expect(MsgType.CONNECT, cr=cr)
    (erase,) = a.broadcasts("EraseCallLinkageID")
    assert erase.argument.call_linkage_id == retain.argument.call_linkage_id
    assert ex.linkages("isdn1") == []


def test_unknown_number_is_cleared_with_cause_1(a: Terminal) -> None:
    cr = a.setup("0999", "3301")
    a.expect(MsgType.CALL_PROCEEDING, cr=cr)
    disc = a.expect(MsgType.DISCONNECT, cr=cr)
    assert disc.cause == 1
    assert disc.facility == ()


def test_busy_subscriber_gets_busy_disconnect_with_call_info_retain(
    ex: SimExchange, a: Terminal
) -> None:
    cr = a.setup("0303333", "3301")
    disc = a.expect(MsgType.DISCONNECT, cr=cr)
    assert disc.cause == 17
    (retain,) = invokes(disc, "CallInfoRetain")
    assert retain.argument.call_linkage_id == 1
    # the terminal released; the network completes the clearing and retains the call
    a.expect(MsgType.RELEASE_COMPLETE, cr=cr)
    (linkage,) = ex.linkages("isdn1")
    assert (linkage.linkage_id, linkage.b_number, linkage.retained) == (1, "0303333", True)


def test_no_cc_offer_without_subscription_or_destination_support(
    ex: SimExchange, clock: Clock
) -> None:
    ex.add_access("plain", ["5501"], ccbs=False, ccnr=False)
    plain = Terminal(ex, clock, "plain")
    cr = plain.setup("0303333", "5501")
    assert plain.expect(MsgType.DISCONNECT, cr=cr).facility == ()
    a = Terminal(ex, clock, "isdn1")
    cr = a.setup("0305555", "3301")  # busy, but B's network does not support CC
    disc = a.expect(MsgType.DISCONNECT, cr=cr)
    assert (disc.cause, disc.facility) == (17, ())
    assert ex.linkages() == []


def test_unanswered_call_is_cleared_by_t301_with_cause_19(
    ex: SimExchange, a: Terminal, clock: Clock
) -> None:
    cr = a.setup("0304444", "3301")
    a.expect(MsgType.ALERTING, cr=cr)
    clock.advance(ex.timers.t301 - 0.5)
    assert not any(m.type is MsgType.DISCONNECT for m in a.inbox)
    clock.advance(1.0)
    assert a.expect(MsgType.DISCONNECT, cr=cr).cause == 19


def test_call_between_two_accesses(ex: SimExchange, a: Terminal, b: Terminal) -> None:
    cr = a.setup("4401", "3302", bearer=BC_UDI)
    setup = b.expect(MsgType.SETUP)
    assert 0x40 <= (setup.cr or 0) <= 0x7F  # the network's own call reference range
    assert (setup.called, setup.calling, setup.bearer) == ("4401", "3302", BC_UDI)
    b.send(Q931(MsgType.ALERTING, setup.cr, False))
    alerting = a.expect(MsgType.ALERTING, cr=cr)
    assert invokes(alerting, "CallInfoRetain")  # CCNR offered toward an MSN too
    b.send(Q931(MsgType.CONNECT, setup.cr, False))
    b.expect(MsgType.CONNECT_ACK, cr=setup.cr)
    a.expect(MsgType.CONNECT, cr=cr)
    assert ex.is_busy("4401") and ex.is_busy("3302")
    b.disconnect(setup.cr or 0)
    b.expect(MsgType.RELEASE, cr=setup.cr)
    assert a.expect(MsgType.DISCONNECT, cr=cr).cause == 16
    a.expect(MsgType.RELEASE_COMPLETE, cr=cr)
    b.release_complete(setup.cr or 0)
    assert ex.calls() == []
    assert not ex.is_busy("4401")


def test_calling_number_is_screened_to_the_default_msn(a: Terminal, b: Terminal) -> None:
    a.setup("4401", "9999")
    assert b.expect(MsgType.SETUP).calling == "3301"


def test_destination_refusing_busy_gives_ccbs_offer(a: Terminal, b: Terminal) -> None:
    cr = a.setup("4401", "3301")
    setup = b.expect(MsgType.SETUP)
    b.release_complete(setup.cr or 0, cause=17)
    disc = a.expect(MsgType.DISCONNECT, cr=cr)
    assert disc.cause == 17
    assert invokes(disc, "CallInfoRetain")


def test_two_b_channels_only(a: Terminal) -> None:
    first = a.setup("0301111", "3301")
    second = a.setup("0302222", "3301")
    assert a.expect(MsgType.CONNECT, cr=first) and a.expect(MsgType.ALERTING, cr=second)
    third = a.setup("0304444", "3301")
    assert a.expect(MsgType.RELEASE_COMPLETE, cr=third).cause == 34
    # the subscriber in a call is busy for everyone else
    a.disconnect(second)
    a.release_complete(second)
    fourth = a.setup("0301111", "3301")
    assert a.expect(MsgType.DISCONNECT, cr=fourth).cause == 17


def test_unresponsive_destination_access_gives_cause_18(
    ex: SimExchange, a: Terminal, b: Terminal, clock: Clock
) -> None:
    cr = a.setup("4401", "3301")
    b.expect(MsgType.SETUP)
    clock.advance(ex.timers.t303 + 0.1)
    assert a.expect(MsgType.DISCONNECT, cr=cr).cause == 18
    assert ex.calls() == []


def test_detached_destination_is_out_of_order(ex: SimExchange, a: Terminal) -> None:
    cr = a.setup("4401", "3301")  # isdn2 has no controller attached
    assert a.expect(MsgType.DISCONNECT, cr=cr).cause == 27


def test_unknown_call_reference_is_answered_with_cause_81(a: Terminal) -> None:
    a.send(Q931(MsgType.DISCONNECT, 0x21, False, cause=16))
    assert a.expect(MsgType.RELEASE_COMPLETE, cr=0x21).cause == 81
    a.release_complete(0x22)  # RELEASE COMPLETE for nothing: silently ignored
    assert a.inbox == []


def test_setup_without_called_number(a: Terminal) -> None:
    cr = a.setup("", "3301")
    assert a.expect(MsgType.RELEASE_COMPLETE, cr=cr).cause == 28


def test_external_caller_reaches_our_msn_and_hangs_up(
    ex: SimExchange, b: Terminal, clock: Clock
) -> None:
    call_id = ex.call_from("0301111", "4401", clock.now)
    setup = b.expect(MsgType.SETUP)
    assert (setup.calling, setup.called) == ("0301111", "4401")
    b.send(Q931(MsgType.CONNECT, setup.cr, False))
    b.expect(MsgType.CONNECT_ACK)
    assert [c.call_id for c in ex.calls()] == [call_id]
    assert ex.hang_up("0301111", clock.now) == 1
    assert b.expect(MsgType.DISCONNECT, cr=setup.cr).cause == 16


def test_network_clearing_repeats_release_and_frees_the_reference(
    ex: SimExchange, clock: Clock
) -> None:
    silent = Terminal(ex, clock, "isdn1", auto_release=False)
    cr = silent.setup("0303333", "3301")
    silent.expect(MsgType.CALL_PROCEEDING, cr=cr)
    silent.expect(MsgType.DISCONNECT, cr=cr)
    clock.advance(ex.timers.t305)
    silent.expect(MsgType.RELEASE, cr=cr)
    clock.advance(ex.timers.t308)
    silent.expect(MsgType.RELEASE, cr=cr)
    clock.advance(ex.timers.t308)
    assert silent.inbox == []
    # the reference is free again: a late RELEASE COMPLETE is just ignored
    silent.release_complete(cr)
    assert silent.inbox == []
    # and T-RETENTION started when the failed call was finally cleared
    assert ex.linkages("isdn1")[0].retained


def test_deliver_may_reenter_the_exchange_in_order(ex: SimExchange, clock: Clock) -> None:
    seen: list[MsgType] = []

    def deliver(msg: Q931) -> None:
        seen.append(msg.type)
        if msg.type is MsgType.DISCONNECT:
            # answering from inside the callback must not reorder anything
            ex.from_user("isdn1", Q931(MsgType.RELEASE, msg.cr, False), clock.now)

    ex.attach("isdn1", deliver)
    ex.from_user("isdn1", Q931(MsgType.SETUP, 5, False, "0303333", "3301"), clock.now)
    assert seen == [MsgType.CALL_PROCEEDING, MsgType.DISCONNECT, MsgType.RELEASE_COMPLETE]


def test_api_misuse_raises_but_wire_input_does_not(ex: SimExchange, clock: Clock) -> None:
    with pytest.raises(KeyError):
        ex.set_busy("nobody", True, clock.now)
    with pytest.raises(ValueError):
        ex.add_access("isdn1", ["1"])
    with pytest.raises(ValueError):
        ex.refuse_requests("isdn1", "noSuchError")
    ex.from_user("nope", Q931(MsgType.SETUP, 1, False, "1"), clock.now)  # logged only
    ex.from_user("isdn1", Q931(MsgType.CONNECT, None, False), clock.now)
    ex.from_user("isdn1", Q931(MsgType.SETUP, 3, True, "0301111"), clock.now)
    lines = "\n".join(ex.log_lines())
    assert "ignored SETUP: no such access" in lines
    assert "ignored CONNECT on the dummy call reference" in lines
    assert "marked from_network" in lines
    assert ex.calls() == []


def test_busy_after_alerting_turns_the_ccnr_offer_into_ccbs(
    ex: SimExchange, a: Terminal, b: Terminal
) -> None:
    cr = a.setup("4401", "3301")
    setup = b.expect(MsgType.SETUP)
    b.send(Q931(MsgType.ALERTING, setup.cr, False))
    (retain,) = invokes(a.expect(MsgType.ALERTING, cr=cr), "CallInfoRetain")
    b.disconnect(setup.cr or 0, cause=17)  # the user at B refuses: busy
    disc = a.expect(MsgType.DISCONNECT, cr=cr)
    assert disc.cause == 17 and disc.facility == ()  # the linkage is known already
    (linkage,) = ex.linkages("isdn1")
    assert (linkage.linkage_id, linkage.kind.value) == (
        retain.argument.call_linkage_id,
        "ccbs",
    )


def test_called_access_proceeding_but_silent_runs_into_t310(
    ex: SimExchange, a: Terminal, b: Terminal, clock: Clock
) -> None:
    cr = a.setup("4401", "3301")
    setup = b.expect(MsgType.SETUP)
    b.send(Q931(MsgType.CALL_PROCEEDING, setup.cr, False))
    clock.advance(ex.timers.t303 + 1)
    assert not any(m.type is MsgType.DISCONNECT for m in a.inbox)  # T303 stopped
    clock.advance(ex.timers.t310)
    assert a.expect(MsgType.DISCONNECT, cr=cr).cause == 102
    assert b.expect(MsgType.DISCONNECT, cr=setup.cr).cause == 102
