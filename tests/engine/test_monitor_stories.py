"""ETSI CCBS/CCNR stories as seen from user A (etsi-ccbs.md §5.1-§5.7, §6).

A is extension 21 (analog port p21, MSN 5551021 on controller 1, PTMP). The network's
side is written out by hand as ``ccbs_isdn.isdn`` indications, like a D-channel
trace; the assertions are the commands the engine sends back and what A's phone
does.
"""

from __future__ import annotations

import datetime as dt

import pytest

from ccbs_isdn.engine import (
    Activate,
    Cadence,
    CallerPolicy,
    CallerRecallMode,
    Cancel,
    ClaimCall,
    ConnectCall,
    Dialled,
    Notify,
    NotifyKind,
    Policy,
    QuietHours,
    RequestAccepted,
    RequestRefused,
    Ring,
    StopRing,
)
from ccbs_isdn.isdn import (
    BEARER_SPEECH,
    CallConnected,
    CallEnded,
    CcAvailable,
    CcBFree,
    CcDeactivate,
    CcDeactivateResult,
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
    ControllerUp,
    DestinationStatus,
    DestinationStatusAnswer,
    DestinationStatusRequest,
    EraseReason,
    HangUp,
    PlaceCall,
    RecallMode,
)
from ccbs_isdn.isdn import CcRequest as NetCcRequest
from tests.engine.harness import T0, Box, only

B = "0301234567"
HLC = bytes.fromhex("04038090A37D029181")  # BC speech + HLC telephony: replayed exactly


def offered(box: Box, *, caller: str = "21", ctrl: int = 1, linkage: int | None = 5,
            kind: CcKind = CcKind.CCBS, call_id: str = "c1", number: str = B,
            calling: str = "5551021") -> None:
    """A dials B, B is busy; the DISCONNECT carries CallInfoRetain(linkage)."""
    box.send(Dialled(caller, number, call_id, ctrl=ctrl))
    box.send(CcAvailable(ctrl, call_id=call_id, kind=kind, linkage_id=linkage, called=number,
                         calling=calling, bearer=HLC))
    box.send(CallEnded(ctrl, call_id=call_id, cause=17))


def requested(box: Box, caller: str = "21") -> NetCcRequest:
    return only(box.of(NetCcRequest, box.send(Activate(caller, tag=f"port-{caller}"))))


def activated(box: Box, reference: int = 1, **kw: object) -> NetCcRequest:
    offered(box, **kw)  # type: ignore[arg-type]
    request = requested(box, str(kw.get("caller", "21")))
    box.send(CcRequestResult(request.ctrl, handle=request.handle, reference=reference,
                             recall_mode=RecallMode.GLOBAL))
    return request


@pytest.fixture
def box() -> Box:
    box = Box()
    box.start()
    box.send(ControllerUp(1))
    box.send(ControllerUp(2, ptp=True))
    return box


# -------------------------------------------------------------- §5.1 activation

def test_5_1_cc_offered_then_activated(box: Box) -> None:
    offered(box)
    assert box.state() == "Available"
    assert box.of(Notify) == []  # an offer is not a request yet
    out = box.send(Activate("21", tag="port-21"))
    request = only(box.of(NetCcRequest, out))
    assert request == NetCcRequest(1, handle=request.handle, kind=CcKind.CCBS, linkage_id=5,
                                   called=B, calling="5551021", bearer=HLC)
    assert box.state() == "Requested"
    assert box.record().deadline == pytest.approx(T0 + 10)  # T-ACTIVATE
    out = box.send(CcRequestResult(1, handle=request.handle, reference=9,
                                   recall_mode=RecallMode.SPECIFIC))
    assert only(box.of(RequestAccepted, out)) == RequestAccepted("port-21", 1, "21", B)
    assert only(box.of(Notify, out)).kind is NotifyKind.ACTIVATED
    record = box.record()
    assert (record.state, record.reference, record.linkage_id, record.recall_mode) == (
        "Activated", 9, None, RecallMode.SPECIFIC)
    assert record.expires_at == pytest.approx(T0 + 45 * 60)  # local T-CCBS2
    # libpri broadcasts EraseCallLinkageID when leaving "requested": not a cancellation
    assert box.send(CcEraseCallLinkage(1, linkage_id=5)) == []
    assert box.state() == "Activated"
    assert box.trail() == ["Available", "Requested", "Activated"]


def test_5_1_ccnr_offered_in_alerting_uses_ccnr_and_t_ccnr2(box: Box) -> None:
    offered(box, kind=CcKind.CCNR)
    assert requested(box).kind is CcKind.CCNR
    box.send(CcRequestResult(1, handle=box.record().handle or 0, reference=3))
    assert box.record().expires_at == pytest.approx(T0 + 180 * 60)


def test_5_1_offer_can_only_be_taken_up_within_the_retention_time(box: Box) -> None:
    offered(box)
    box.advance(30)  # T-RETENTION: the linkage is dead
    assert box.state() == "Expired"
    assert box.of(Notify) == []
    assert only(box.of(RequestRefused, box.send(Activate("21")))).reason == "no-failed-call"


def test_5_2_erase_call_linkage_before_the_request_kills_the_offer(box: Box) -> None:
    offered(box)
    box.send(CcEraseCallLinkage(1, linkage_id=5))
    assert box.state() == "Cancelled" and box.record().reason == "linkage-erased"
    assert only(box.of(RequestRefused, box.send(Activate("21")))).reason == "no-failed-call"


@pytest.mark.parametrize("error", [
    "shortTermDenial", "longTermDenial", "invalidCallLinkageID", "cCBSIsAlreadyActivated",
    "outgoingCCBSQueueFull", "notSubscribed", "callFailureReasonNotBusy", "reject",
])
def test_5_2_activation_refused_by_the_network(box: Box, error: str) -> None:
    offered(box)
    request = requested(box)
    out = box.send(CcRequestResult(1, handle=request.handle, error=error))
    refusal = only(box.of(RequestRefused, out))
    assert (refusal.tag, refusal.reason) == ("port-21", f"network:{error}")
    assert only(box.of(Notify, out)).kind is NotifyKind.FAILED
    assert box.state() == "Failed"


def test_5_2_no_answer_to_the_request_t_activate(box: Box) -> None:
    offered(box)
    requested(box)
    out = box.advance(10)
    assert only(box.of(RequestRefused, out)).reason == "activation-timeout"
    assert box.state() == "Failed"
    # a late result for that handle changes nothing
    assert box.send(CcRequestResult(1, handle=1, reference=4)) == []


def test_6_cancel_while_requested_deactivates_once_the_result_comes(box: Box) -> None:
    offered(box)
    request = requested(box)
    box.send(Cancel(caller="21"))
    assert box.state() == "WaitDestruction"
    out = box.send(CcRequestResult(1, handle=request.handle, reference=7))
    deactivate = only(box.of(CcDeactivate, out))
    assert (deactivate.ctrl, deactivate.reference) == (1, 7)
    assert box.state() == "Cancelled"


def test_6_cancel_while_requested_and_then_refused_sends_nothing(box: Box) -> None:
    offered(box)
    request = requested(box)
    box.send(Cancel(caller="21"))
    out = box.send(CcRequestResult(1, handle=request.handle, error="shortTermDenial"))
    assert box.of(CcDeactivate, out) == [] and box.state() == "Cancelled"


# ------------------------------------------------------- §5.3 B free -> recall

def test_5_3_status_request_remote_user_free_recall_connects(box: Box) -> None:
    activated(box, reference=1)
    out = box.send(CcStatusRequest(1, token=77, reference=1, bearer=HLC))
    assert out == [CcStatusAnswer(1, token=77, free=True)]
    out = box.send(CcRemoteUserFree(1, reference=1, b_number=B, bearer=HLC))
    ring = only(box.of(Ring, out))
    assert (ring.port, ring.cadence, ring.clip_number, ring.clip_name) == (
        "p21", Cadence.RECALL, B, "Rueckruf")
    assert box.state() == "WaitCallback"
    out = box.lift("p21")  # A accepts the recall
    call = only(box.of(PlaceCall, out))
    assert call == PlaceCall(1, call_id=call.call_id, called=B, calling="5551021", bearer=HLC,
                             cc_reference=1)
    assert ConnectCall("p21", 1, call.call_id) in out
    assert box.state() == "Callback"
    out = box.send(CallConnected(1, call_id=call.call_id))
    done = only(box.of(Notify, out))
    assert (done.kind, done.request.reason) == (NotifyKind.COMPLETED, "recalled")
    # the network closes the request later: an Erase for a reference we no longer hold
    assert box.send(CcErase(1, reference=1)) == []
    assert box.trail() == ["Available", "Requested", "Activated", "WaitCallback", "Callback",
                           "Completed"]


def test_5_3_stop_alerting_another_terminal_took_the_recall(box: Box) -> None:
    activated(box)
    box.send(CcRemoteUserFree(1, reference=1))
    out = box.send(CcStopAlerting(1, reference=1))
    assert StopRing("p21", "1.1") in out
    assert box.state() == "Activated"


def test_5_3_status_requests_for_references_we_do_not_own_are_not_answered(box: Box) -> None:
    activated(box, reference=1)
    assert box.send(CcStatusRequest(1, token=1, reference=2)) == []
    assert box.send(CcStatusRequest(2, token=2, reference=1)) == []  # ids are per controller
    assert box.send(CcRemoteUserFree(1, reference=2)) == []


@pytest.mark.parametrize(("error", "state"), [
    ("notReadyForCall", "Activated"), ("alreadyAccepted", "Failed"),
    ("invalidCCBSReference", "Failed"),
])
def test_5_3_recall_errors_in_the_clearing(box: Box, error: str, state: str) -> None:
    activated(box)
    box.send(CcRemoteUserFree(1, reference=1))
    call = only(box.of(PlaceCall, box.lift("p21")))
    box.send(CallEnded(1, call_id=call.call_id, cause=31, error=error))
    assert box.state() == state


def test_5_3_a_busy_at_remote_user_free_is_rung_when_free(box: Box) -> None:
    activated(box)
    box.lift("p21")
    out = box.send(CcRemoteUserFree(1, reference=1))
    assert box.of(Ring, out) == [] and box.state() == "WaitCallback"
    out = box.hang_up("p21")
    assert only(box.of(Ring, out)).port == "p21"


# ------------------------------------------------------------- §5.4 A busy

def test_5_4_a_busy_bfree_suspends_then_resumes_on_a_free_answer(box: Box) -> None:
    activated(box)
    box.lift("p21")
    assert box.send(CcStatusRequest(1, token=5, reference=1)) == [
        CcStatusAnswer(1, token=5, free=False)]
    box.send(CcBFree(1, reference=1, b_number=B))
    assert box.state() == "Suspended"
    box.hang_up("p21")
    assert box.send(CcStatusRequest(1, token=6, reference=1)) == [
        CcStatusAnswer(1, token=6, free=True)]
    assert box.state() == "Activated"
    box.send(CcRemoteUserFree(1, reference=1))
    assert box.state() == "WaitCallback"


def test_5_4_quiet_hours_answer_busy(box: Box) -> None:
    box.engine.reconfigure(policy=Policy(quiet_hours=(QuietHours(dt.time(11), dt.time(13)),)))
    activated(box)
    assert box.send(CcStatusRequest(1, token=5, reference=1)) == [
        CcStatusAnswer(1, token=5, free=False)]


def test_5_4_unanswered_polls_end_with_a_network_erase(box: Box) -> None:
    activated(box)
    box.send(CcBFree(1, reference=1))
    out = box.send(CcErase(1, reference=1, reason=EraseReason.NORMAL_UNSPECIFIED))
    ended = only(box.of(Notify, out))
    assert (ended.kind, ended.request.reason) == (NotifyKind.CANCELLED, "erase:normal-unspecified")


# ------------------------------------------------------- §5.5 recall not taken

def test_5_5_recall_not_accepted_t_ccbs3(box: Box) -> None:
    activated(box)
    box.send(CcRemoteUserFree(1, reference=1))
    box.advance(19)
    out = box.send(CcErase(1, reference=1, reason=EraseReason.T_CCBS3_TIMEOUT))
    assert StopRing("p21", "1.1") in out
    failed = only(box.of(Notify, out))
    assert (failed.kind, failed.request.reason) == (NotifyKind.FAILED, "erase:t-ccbs3-timeout")


def test_5_5_missed_recall_ring_is_retried_while_the_network_waits() -> None:
    box = Box(policy=Policy(recall_retries=1))
    box.start()
    activated(box)
    box.send(CcRemoteUserFree(1, reference=1))
    box.ring_times_out("p21")
    assert box.state() == "WaitCallback"
    out = box.advance(60)
    assert only(box.of(Ring, out)).key == "1.2"
    out = box.advance(20)
    assert only(box.of(CcDeactivate, out)).reference == 1
    assert box.state() == "Failed"


def test_5_5_recall_call_fails_then_network_erases_basic_call_failed(box: Box) -> None:
    activated(box)
    box.send(CcRemoteUserFree(1, reference=1))
    call = only(box.of(PlaceCall, box.lift("p21")))
    box.send(CallEnded(1, call_id=call.call_id, cause=17))
    assert box.state() == "Activated"  # the network decides: erase or keep
    box.send(CcErase(1, reference=1, reason=EraseReason.BASIC_CALL_FAILED))
    assert box.state() == "Failed"


def test_5_5_a_hangs_up_during_the_recall_call(box: Box) -> None:
    activated(box)
    box.send(CcRemoteUserFree(1, reference=1))
    call = only(box.of(PlaceCall, box.lift("p21")))
    out = box.hang_up("p21")
    assert out == [HangUp(1, call_id=call.call_id)]
    box.send(CallEnded(1, call_id=call.call_id, cause=16))
    assert box.state() == "Activated"


# ------------------------------------------------ §5.6 cancel / expiry / erase

def test_5_6_cancel_by_a_sends_deactivate(box: Box) -> None:
    activated(box, reference=4)
    out = box.send(Cancel(caller="21", tag="port-21"))
    deactivate = only(box.of(CcDeactivate, out))
    assert (deactivate.ctrl, deactivate.reference, deactivate.kind) == (1, 4, CcKind.CCBS)
    assert box.state() == "Cancelled" and box.record().reason == "cancelled"
    assert box.send(CcDeactivateResult(1, handle=deactivate.handle)) == []
    assert box.send(CcErase(1, reference=4)) == []  # libpri also broadcasts this


@pytest.mark.parametrize(("reason", "state", "kind"), [
    (EraseReason.T_CCBS2_TIMEOUT, "Expired", NotifyKind.EXPIRED),
    (EraseReason.NORMAL_UNSPECIFIED, "Cancelled", NotifyKind.CANCELLED),
    (EraseReason.BASIC_CALL_FAILED, "Failed", NotifyKind.FAILED),
])
def test_5_6_erase_by_the_network(box: Box, reason: EraseReason, state: str,
                                   kind: NotifyKind) -> None:
    activated(box)
    out = box.send(CcErase(1, reference=1, reason=reason))
    assert box.state() == state and only(box.of(Notify, out)).kind is kind
    assert box.of(CcDeactivate, out) == []


def test_5_6_local_supervision_expiry_deactivates(box: Box) -> None:
    activated(box, reference=2)
    out = box.advance(45 * 60)
    assert only(box.of(CcDeactivate, out)).reference == 2
    assert box.state() == "Expired" and box.record().reason == "lifetime"


# ----------------------------------------------------------- §5.7 CCBS-T (PTP)

def ptp_activated(box: Box) -> NetCcRequest:
    offered(box, caller="24", ctrl=2, linkage=None, calling="5551024")
    request = requested(box, "24")
    assert request.linkage_id is None and request.called == B and request.bearer == HLC
    box.send(CcRequestResult(2, handle=request.handle, retention=True))
    return request


def test_5_7_ccbs_t_request_suspend_resume_recall(box: Box) -> None:
    request = ptp_activated(box)
    record = box.record()
    assert (record.state, record.ptp, record.retention) == ("Activated", True, True)
    assert record.expires_at == pytest.approx(T0 + 60 * 60)  # T-CCBS6
    box.lift("p24")  # A busy when B frees
    out = box.send(CcTRemoteUserFree(2, handle=request.handle))
    assert out == [CcTSuspend(2, handle=request.handle)]
    assert box.state() == "Suspended"
    out = box.hang_up("p24")
    assert out == [CcTResume(2, handle=request.handle)]
    assert box.state() == "Activated"
    box.send(CcTRemoteUserFree(2, handle=request.handle))
    call = only(box.of(PlaceCall, box.lift("p24")))
    assert (call.cc_t_handle, call.cc_reference, call.calling) == (
        request.handle, None, "5551024")
    out = box.send(CallConnected(2, call_id=call.call_id))
    # chan_misdn: the CC-T link is released once the recall is answered
    assert CcDeactivate(2, handle=request.handle, reference=None) in out
    assert box.state() == "Completed"


def test_5_7_ccbs_t_refused_and_connection_cleared(box: Box) -> None:
    offered(box, caller="24", ctrl=2, linkage=None, calling="5551024")
    request = requested(box, "24")
    out = box.send(CcRequestResult(2, handle=request.handle, error="longTermDenial"))
    assert only(box.of(RequestRefused, out)).reason == "network:longTermDenial"
    ptp_activated(box)
    box.send(CcTConnectionCleared(2, handle=box.record(2).handle or 0, cause=16))
    assert box.state(2) == "Cancelled"


def test_5_7_cancel_clears_the_ccbs_t_connection(box: Box) -> None:
    request = ptp_activated(box)
    out = box.send(Cancel(caller="24"))
    assert CcDeactivate(2, handle=request.handle, reference=None) in out


# --------------------------------------------------------------------- more

def test_ids_are_per_controller(box: Box) -> None:
    box.send(ControllerUp(3))
    activated(box, reference=1)
    activated(box, reference=1, caller="24", ctrl=3, call_id="c2", calling="5551024")
    box.send(CcRemoteUserFree(3, reference=1))
    assert (box.state(1), box.state(2)) == ("Activated", "WaitCallback")


def test_notify_mode_a_dialling_b_is_the_recall_with_the_reference(box: Box) -> None:
    box.engine.reconfigure(policy=Policy(
        callers={"21": CallerPolicy(recall_mode=CallerRecallMode.NOTIFY)}))
    activated(box, reference=6)
    out = box.send(CcRemoteUserFree(1, reference=6))
    assert box.of(Ring, out) == []
    assert only(box.of(Notify, out)).kind is NotifyKind.RECALL
    out = box.send(Dialled("21", B, "c9", ctrl=1))
    assert only(box.of(ClaimCall, out)) == ClaimCall("c9", 1, cc_reference=6)
    box.send(CallConnected(1, call_id="c9"))
    assert box.state() == "Completed"


def test_a_own_call_to_b_that_connects_completes_and_deactivates(box: Box) -> None:
    activated(box, reference=3)
    box.send(Dialled("21", B, "c5", ctrl=1))
    out = box.send(CallConnected(1, call_id="c5"))
    assert only(box.of(CcDeactivate, out)).reference == 3
    assert box.state() == "Completed" and box.record().reason == "own-call"


def test_a_own_call_to_b_that_fails_leaves_the_request(box: Box) -> None:
    activated(box)
    box.send(Dialled("21", B, "c5", ctrl=1))
    box.send(CallEnded(1, call_id="c5", cause=17))
    assert box.state() == "Activated"


def test_controller_without_ccbs_refuses_activation(box: Box) -> None:
    box.send(ControllerUp(1, ccbs=False))
    offered(box)
    assert only(box.of(RequestRefused, box.send(Activate("21")))).reason == "not-offered"


def test_a_second_busy_call_supersedes_the_older_offer(box: Box) -> None:
    offered(box)
    offered(box, linkage=6, call_id="c2", number="0409999")
    assert box.state(1) == "Cancelled" and box.state(2) == "Available"
    assert requested(box).linkage_id == 6


def test_offer_for_a_call_we_cannot_attribute_is_ignored(box: Box) -> None:
    box.send(CcAvailable(1, call_id="x", kind=CcKind.CCBS, linkage_id=1, called=B,
                         calling="999"))
    assert len(box.engine) == 0


def test_offer_attributed_by_msn_without_dialled(box: Box) -> None:
    box.send(CcAvailable(1, call_id="x", kind=CcKind.CCBS, linkage_id=1, called=B,
                         calling="5551022"))
    assert box.record().caller == "22"


def test_asking_twice_for_the_same_call_refreshes(box: Box) -> None:
    activated(box)
    out = box.send(Activate("21", tag="again"))
    assert only(box.of(RequestAccepted, out)).refreshed
    assert box.of(NetCcRequest, out) == []


def test_reconnect_interrogates_and_drops_what_the_network_forgot(box: Box) -> None:
    activated(box, reference=1)
    activated(box, reference=2, caller="22", call_id="c2", calling="5551022")
    out = box.send(ControllerUp(1, reconnected=True))
    interrogate = only(box.of(CcInterrogate, out))
    assert (interrogate.ctrl, interrogate.kind, interrogate.reference) == (1, CcKind.CCBS, None)
    out = box.send(CcInterrogateResult(1, handle=interrogate.handle, references=(2,)))
    lost = only(box.of(Notify, out))
    assert (lost.request.id, lost.request.reason) == (1, "network-lost")
    assert box.state(2) == "Activated"


def test_unanswered_interrogation_keeps_the_requests(box: Box) -> None:
    activated(box)
    box.send(ControllerUp(1, reconnected=True))
    assert box.engine.next_deadline() == pytest.approx(box.now + 4)  # T-INTERROGATE
    box.advance(4)
    assert box.state() == "Activated"


@pytest.mark.parametrize(("msn", "busy", "bearer", "status"), [
    ("5551022", False, BEARER_SPEECH, DestinationStatus.COMPATIBLE_AND_FREE),
    ("5551022", True, BEARER_SPEECH, DestinationStatus.COMPATIBLE_AND_BUSY),
    ("5551022", False, bytes.fromhex("04028890"), DestinationStatus.INCOMPATIBLE),
    ("5559999", False, BEARER_SPEECH, DestinationStatus.INCOMPATIBLE),
    ("", True, b"", DestinationStatus.COMPATIBLE_AND_FREE),  # others on the bus are free
])
def test_destination_status_request_answered_from_port_state(
        box: Box, msn: str, busy: bool, bearer: bytes, status: DestinationStatus) -> None:
    if busy:
        box.lift("p22")
    out = box.send(DestinationStatusRequest(1, token=3, msn=msn, bearer=bearer))
    assert out == [DestinationStatusAnswer(1, token=3, status=status)]


def test_a_reference_handed_out_again_ends_the_older_request(box: Box) -> None:
    activated(box, reference=1)
    activated(box, reference=1, caller="22", call_id="c2", calling="5551022")
    assert box.state(1) == "Cancelled" and box.record(1).reason == "network-lost"
    box.send(CcRemoteUserFree(1, reference=1))
    assert box.state(2) == "WaitCallback"
