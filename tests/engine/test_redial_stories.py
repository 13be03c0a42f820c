"""Redial fallback stories (off by default): the network offers or grants no CCBS for an
external B, so the box probes B by calling it; when B alerts, A is rung; B is never
called while A cannot be rung, and B's call is released when A does not answer."""

from __future__ import annotations

import pytest

from ccbs_isdn.engine import (
    Activate,
    Cadence,
    Cancel,
    ConnectCall,
    Notify,
    NotifyKind,
    PlayTone,
    Policy,
    RequestAccepted,
    RequestRefused,
    Ring,
    StopRing,
    Timers,
    Tone,
)
from ccbs_isdn.engine.events import Dialled
from ccbs_isdn.isdn import (
    CallAlerting,
    CallConnected,
    CallEnded,
    CcAvailable,
    CcKind,
    CcRequestResult,
    ControllerUp,
    HangUp,
    PlaceCall,
)
from ccbs_isdn.isdn import CcRequest as NetCcRequest
from tests.engine.harness import Box, only

B = "0409876543"


def busy_call_without_cc(box: Box, caller: str = "21") -> None:
    box.send(Dialled(caller, B, "c1", ctrl=1))
    box.send(CallEnded(1, call_id="c1", cause=17))


@pytest.fixture
def box() -> Box:
    box = Box(policy=Policy(redial_fallback=True))
    box.start()
    box.send(ControllerUp(1))
    return box


def probe(box: Box) -> PlaceCall:
    return only(box.of(PlaceCall, box.advance(60)))


def test_redial_is_off_by_default() -> None:
    box = Box()
    box.start()
    busy_call_without_cc(box)
    assert only(box.of(RequestRefused, box.send(Activate("21")))).reason == "not-offered"


def test_busy_b_is_probed_until_it_alerts_then_a_is_rung_and_connected(box: Box) -> None:
    busy_call_without_cc(box)
    reply = only(box.of(RequestAccepted, box.send(Activate("21", tag="t"))))
    assert not reply.fallback and box.record().state == "Waiting"
    call = probe(box)
    assert (call.ctrl, call.called, call.calling, call.cc_reference) == (1, B, "5551021", None)
    box.send(CallEnded(1, call_id=call.call_id, cause=17))  # still busy
    assert box.state() == "Waiting"
    call = probe(box)
    out = box.send(CallAlerting(1, call_id=call.call_id))  # B is free and rings
    ring = only(box.of(Ring, out))
    assert (ring.port, ring.cadence, ring.clip_number) == ("p21", Cadence.RECALL, B)
    out = box.lift("p21")
    assert out[0] == ConnectCall("p21", 1, call.call_id)
    assert box.state() == "Connecting"
    out = box.send(CallConnected(1, call_id=call.call_id))
    assert only(box.of(Notify, out)).kind is NotifyKind.COMPLETED


def test_b_answering_before_a_completes_when_a_answers(box: Box) -> None:
    busy_call_without_cc(box)
    box.send(Activate("21"))
    call = probe(box)
    box.send(CallConnected(1, call_id=call.call_id))
    assert box.state() == "RecallA"
    box.lift("p21")
    assert box.state() == "Completed"


def test_b_is_never_called_while_a_is_busy(box: Box) -> None:
    busy_call_without_cc(box)
    box.send(Activate("21"))
    box.lift("p21")
    assert box.of(PlaceCall, box.advance(60)) == []
    box.hang_up("p21")
    assert box.of(PlaceCall, box.advance(60))


def test_a_not_answering_releases_b_at_once(box: Box) -> None:
    busy_call_without_cc(box)
    box.send(Activate("21"))
    call = probe(box)
    box.send(CallAlerting(1, call_id=call.call_id))
    out = box.advance(20)
    assert StopRing("p21", "1.2") in out and HangUp(1, call_id=call.call_id) in out
    assert box.state() == "Waiting" and box.record().missed == 1


def test_b_hanging_up_while_a_listens_gives_a_busy_tone(box: Box) -> None:
    busy_call_without_cc(box)
    box.send(Activate("21"))
    call = probe(box)
    box.send(CallAlerting(1, call_id=call.call_id))
    box.lift("p21")
    out = box.send(CallEnded(1, call_id=call.call_id, cause=16))
    assert PlayTone("p21", Tone.BUSY) in out and box.state() == "Waiting"


def test_probe_that_never_alerts_is_given_up(box: Box) -> None:
    busy_call_without_cc(box)
    box.send(Activate("21"))
    call = probe(box)
    out = box.advance(30)
    assert HangUp(1, call_id=call.call_id) in out and box.state() == "Waiting"


def test_network_refusal_falls_back_to_redial_with_the_original_bearer(box: Box) -> None:
    bearer = bytes.fromhex("04038090A37D029181")
    box.send(Dialled("21", B, "c1", ctrl=1))
    box.send(CcAvailable(1, call_id="c1", kind=CcKind.CCBS, linkage_id=3, called=B,
                         calling="5551021", bearer=bearer))
    request = only(box.of(NetCcRequest, box.send(Activate("21", tag="t"))))
    out = box.send(CcRequestResult(1, handle=request.handle, error="outgoingCCBSQueueFull"))
    reply = only(box.of(RequestAccepted, out))
    assert (reply.tag, reply.request_id, reply.fallback) == ("t", 2, True)
    assert box.of(RequestRefused, out) == []
    assert box.state(1) == "Failed" and box.state(2) == "Waiting"
    assert probe(box).bearer == bearer


def test_cancel_while_ringing_a_releases_everything(box: Box) -> None:
    busy_call_without_cc(box)
    box.send(Activate("21"))
    call = probe(box)
    box.send(CallAlerting(1, call_id=call.call_id))
    out = box.send(Cancel(caller="21"))
    assert StopRing("p21", "1.2") in out and HangUp(1, call_id=call.call_id) in out


def test_lifetime_ends_a_redial_request() -> None:
    box = Box(policy=Policy(redial_fallback=True, timers=Timers(lifetime_ccbs=100.0)))
    box.start()
    busy_call_without_cc(box)
    box.send(Activate("21"))
    call = only(box.of(PlaceCall, box.advance(60)))
    out = box.advance(40)
    assert HangUp(1, call_id=call.call_id) in out
    assert box.state() == "Expired"
