"""CCBS-T / CCNR-T on a point-to-point access (a PBX), etsi-ccbs.md §5.7."""

from __future__ import annotations

import pytest
from ccbs_isdn.drivers.sim.exchange import NetworkTimers, SimExchange
from ccbs_isdn.drivers.sim.q931 import Q931, MsgType

from ccbs_isdn.rose import types as rt
from ccbs_isdn.rose.codec import Invoke, ReturnError, ReturnResult
from ccbs_isdn.rose.operations import Operation

from .test_exchange_support import (
    BC_SPEECH,
    BC_UDI,
    Clock,
    Terminal,
    address,
    components,
    ie,
    invokes,
)

B = "0303333"
CONN = 0x10  # the PBX's call reference for the CC signalling connection


def make(retention: bool = False) -> tuple[SimExchange, Clock, Terminal]:
    ex = SimExchange(NetworkTimers(), retention=retention)
    ex.add_access("pbx", ["5550", "5551"], ptp=True)
    ex.add_access("isdn1", ["3301"])
    ex.add_subscriber(B, busy=True)
    ex.add_subscriber("0304444", answers=False)
    clock = Clock(ex)
    return ex, clock, Terminal(ex, clock, "pbx")


def cct_request(
    pbx: Terminal,
    b: str = B,
    *,
    bearer: bytes = BC_SPEECH,
    cr: int = CONN,
    op: Operation = Operation.CCBS_T_Request,
    retention: bool = False,
    originating: str | None = "5550",
) -> int:
    iid = pbx.invoke_id()
    arg = rt.CCBS_T_RequestArg(
        address(b),
        bearer,
        retention_supported=retention,
        presentation_allowed_indicator=None if originating is None else True,
        originating_address=None if originating is None else address(originating),
    )
    pbx.send(Q931(MsgType.REGISTER, cr, False, facility=(ie(Invoke(iid, op, arg)),)))
    return iid


def busy_then_request(pbx: Terminal, *, retention: bool = False) -> None:
    cr = pbx.setup(B, "5550")
    disc = pbx.expect(MsgType.DISCONNECT, cr=cr)
    assert disc.cause == 17
    assert invokes(disc, "CCBS-T-Available")  # no linkage id on a PTP access
    iid = cct_request(pbx, retention=retention)
    fac = pbx.expect(MsgType.FACILITY, cr=CONN)
    (result,) = components(fac)
    assert isinstance(result, ReturnResult) and result.invoke_id == iid
    assert isinstance(result.result, rt.CCBS_T_RequestRes)


def test_5_7_request_remote_user_free_recall_and_connection_cleared() -> None:
    ex, clock, pbx = make()
    busy_then_request(pbx)
    (record,) = ex.cc_records("pbx")
    assert (record.ptp, record.reference, record.a_number, record.state) == (
        True,
        None,
        "5550",
        "activated",
    )
    assert ex.linkages() == []  # the retained call was taken up by the request
    pbx.take()
    ex.set_busy(B, False, clock.now)
    fac = pbx.expect(MsgType.FACILITY, cr=CONN)
    assert [c.operation for c in components(fac)] == ["CCBS-T-RemoteUserFree"]
    # the recall is a new call matched by numbers and bearer (no reference)
    call = pbx.invoke_id()
    cr = pbx.setup(B, "5550", facility=(ie(Invoke(call, Operation.CCBS_T_Call)),))
    pbx.expect(MsgType.CALL_PROCEEDING, cr=cr)
    pbx.expect(MsgType.CONNECT, cr=cr)
    # CC is complete: the network clears the REGISTER connection
    assert pbx.expect(MsgType.DISCONNECT, cr=CONN).cause == 16
    pbx.expect(MsgType.RELEASE_COMPLETE, cr=CONN)
    assert ex.cc_records() == []


@pytest.mark.parametrize(
    ("story", "error", "oid"),
    [
        ("B refuses", "shortTermDenial", (0, 4, 0, 359, 2, 21)),
        ("B refuses long", "longTermDenial", (0, 4, 0, 359, 2, 20)),
        ("hook with a PTMP-only error", "longTermDenial", (0, 4, 0, 359, 2, 20)),
        ("unknown destination", "longTermDenial", (0, 4, 0, 359, 2, 20)),
    ],
)
def test_5_7_refusal_comes_in_the_release_complete(
    story: str, error: str, oid: tuple[int, ...]
) -> None:
    ex, clock, pbx = make()
    target = B
    if story == "B refuses":
        ex.refuse_requests_to(B, "shortTermDenial")
    elif story == "B refuses long":
        ex.refuse_requests_to(B, "longTermDenial")
    elif story == "hook with a PTMP-only error":
        ex.refuse_requests("pbx", "outgoingCCBSQueueFull")
    else:
        target = "0999999"
    iid = cct_request(pbx, target)
    rc = pbx.expect(MsgType.RELEASE_COMPLETE, cr=CONN)
    (answer,) = components(rc)
    assert isinstance(answer, ReturnError) and answer.invoke_id == iid
    assert (answer.error.name, answer.error.value) == (error, oid)
    assert ex.cc_records() == []


def test_5_7_cct_request_on_a_ptmp_access_is_not_subscribed() -> None:
    ex, clock, _ = make()
    a = Terminal(ex, clock, "isdn1")
    cct_request(a, originating=None)
    (answer,) = components(a.expect(MsgType.RELEASE_COMPLETE, cr=CONN))
    assert isinstance(answer, ReturnError) and answer.error.name == "notSubscribed"


def test_5_7_same_request_twice_is_denied() -> None:
    ex, clock, pbx = make()
    busy_then_request(pbx)
    cct_request(pbx, cr=0x11)
    (answer,) = components(pbx.expect(MsgType.RELEASE_COMPLETE, cr=0x11))
    assert isinstance(answer, ReturnError) and answer.error.name == "shortTermDenial"
    assert len(ex.cc_records()) == 1


def test_5_7_suspend_and_resume() -> None:
    ex, clock, pbx = make()
    busy_then_request(pbx)
    pbx.take()
    pbx.facility(Invoke(pbx.invoke_id(), Operation.CCBS_T_Suspend), cr=CONN)
    assert ex.cc_records()[0].state == "suspended"
    ex.set_busy(B, False, clock.now)
    assert pbx.inbox == []  # A is busy: nothing to tell
    pbx.facility(Invoke(pbx.invoke_id(), Operation.CCBS_T_Resume), cr=CONN)
    fac = pbx.expect(MsgType.FACILITY, cr=CONN)
    assert [c.operation for c in components(fac)] == ["CCBS-T-RemoteUserFree"]
    assert ex.cc_records()[0].state == "wait-callback"


def test_5_7_suspend_while_recall_pending_passes_b_to_the_next_request() -> None:
    ex, clock, pbx = make()
    busy_then_request(pbx)
    a = Terminal(ex, clock, "isdn1")
    cr = a.setup(B, "3301")
    (retain,) = invokes(a.expect(MsgType.DISCONNECT, cr=cr), "CallInfoRetain")
    a.request(retain.argument.call_linkage_id)
    a.take()
    pbx.take()
    ex.set_busy(B, False, clock.now)
    pbx.expect(MsgType.FACILITY, cr=CONN)
    assert a.broadcasts("CCBSStatusRequest") == []
    pbx.facility(Invoke(pbx.invoke_id(), Operation.CCBS_T_Suspend), cr=CONN)
    assert len(a.broadcasts("CCBSStatusRequest")) == 1


@pytest.mark.parametrize(("kind", "timer"), [("ccbs", "t_ccbs5"), ("ccnr", "t_ccnr5")])
def test_5_7_service_duration_clears_the_connection(kind: str, timer: str) -> None:
    ex, clock, pbx = make()
    if kind == "ccbs":
        busy_then_request(pbx)
    else:
        cr = pbx.setup("0304444", "5550")
        alerting = pbx.expect(MsgType.ALERTING, cr=cr)
        assert invokes(alerting, "CCBS-T-Available")
        pbx.disconnect(cr)
        pbx.expect(MsgType.RELEASE, cr=cr)
        pbx.release_complete(cr)
        cct_request(pbx, "0304444", op=Operation.CCNR_T_Request)
        (result,) = components(pbx.expect(MsgType.FACILITY, cr=CONN))
        assert isinstance(result, ReturnResult)
        assert result.operation == Operation.CCNR_T_Request
        assert ex.cc_records()[0].kind.value == "ccnr"
    pbx.take()
    clock.advance(getattr(ex.timers, timer) - 1)
    assert pbx.inbox == []
    clock.advance(1)
    assert pbx.expect(MsgType.DISCONNECT, cr=CONN).cause == 102
    assert ex.cc_records() == []


def test_5_7_user_clears_the_connection_to_cancel() -> None:
    ex, clock, pbx = make()
    busy_then_request(pbx)
    pbx.take()
    pbx.disconnect(CONN)
    pbx.expect(MsgType.RELEASE, cr=CONN)
    assert ex.cc_records() == []
    ex.set_busy(B, False, clock.now)
    pbx.release_complete(CONN)
    assert pbx.inbox == []


def test_5_7_recall_not_matching_is_an_ordinary_call() -> None:
    ex, clock, pbx = make()
    busy_then_request(pbx)
    ex.set_busy(B, False, clock.now)
    pbx.take()
    fac = ie(Invoke(pbx.invoke_id(), Operation.CCBS_T_Call))
    cr = pbx.setup(B, "5550", bearer=BC_UDI, facility=(fac,))  # other bearer: no match
    pbx.expect(MsgType.CONNECT, cr=cr)
    assert ex.cc_records()[0].state == "wait-callback"
    assert any("matches no request" in line for line in ex.log_lines())


def test_5_7_no_recall_in_time_clears_the_connection() -> None:
    ex, clock, pbx = make()
    busy_then_request(pbx)
    ex.set_busy(B, False, clock.now)
    pbx.take()
    clock.advance(ex.timers.t_ccbs3)
    assert pbx.expect(MsgType.DISCONNECT, cr=CONN).cause == 102


@pytest.mark.parametrize("retention", [False, True])
def test_5_7_recall_finds_b_busy(retention: bool) -> None:
    ex, clock, pbx = make(retention=retention)
    busy_then_request(pbx, retention=True)
    ex.set_busy(B, False, clock.now)
    pbx.take()
    ex.set_busy(B, True, clock.now)
    fac = ie(Invoke(pbx.invoke_id(), Operation.CCBS_T_Call))
    cr = pbx.setup(B, "5550", facility=(fac,))
    assert pbx.expect(MsgType.DISCONNECT, cr=cr).cause == 17
    if retention:
        assert [r.state for r in ex.cc_records()] == ["activated"]
        assert not any(m.type is MsgType.DISCONNECT and m.cr == CONN for m in pbx.inbox)
    else:
        assert pbx.expect(MsgType.DISCONNECT, cr=CONN).cause == 31
        assert ex.cc_records() == []


def test_5_7_result_reports_network_retention() -> None:
    ex, clock, pbx = make(retention=True)
    cct_request(pbx)
    (result,) = components(pbx.expect(MsgType.FACILITY, cr=CONN))
    assert isinstance(result, ReturnResult)
    assert result.result == rt.CCBS_T_RequestRes(True)
