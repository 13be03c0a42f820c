"""Analog phones calling out over ISDN: network CCBS (EN 300 359-1) on both CAPI
routes and CCBS-T on a point-to-point controller, plus the basic calls it rests on."""

from __future__ import annotations

import pytest
from ccbs_isdn.drivers.sim.demo import Stage

from .conftest import ANNA, EXTERNAL_BUSY, EXTERNAL_FREE, StageFactory

ROUTES = [
    pytest.param("supplementary", False, "CCBSCall", id="ptmp-supplementary"),
    pytest.param("raw", False, "CCBSCall", id="ptmp-raw-facility"),
    pytest.param("raw", True, "CCBS-T-Call", id="ptp-ccbs-t"),
]


async def _activate_on_busy_number(stage: Stage) -> dict[str, object]:
    anna = stage.box.phone(1)
    await stage.call_busy(anna, "0" + EXTERNAL_BUSY + "#")
    await stage.activate(anna, method="digit")
    request = await stage.pending(ANNA, EXTERNAL_BUSY)
    await stage.hang_up(anna)
    return request


@pytest.mark.parametrize("route, ptp, recall_op", ROUTES)
async def test_anna_gets_a_busy_isdn_number_back(make_stage: StageFactory, route: str,
                                                 ptp: bool, recall_op: str) -> None:
    """Anna dials out, the number is busy and the network offers CCBS; she presses 5
    and hears the confirm tone. When the number is free the network tells the box,
    Anna's phone rings with the recall cadence showing the number, she lifts and the
    recall call (with the CCBS reference / CCBS-T-Call) connects."""
    stage = await make_stage(route=route, ptp=ptp)
    box = stage.box
    anna, b = box.phone(1), box.subscriber(EXTERNAL_BUSY)
    status = await stage.status()
    (controller,) = [line for line in status["lines"] if line["kind"] == "controller"]
    assert controller["detail"].startswith("raw" if ptp else route)

    request = await _activate_on_busy_number(stage)
    assert request["route"] == "isdn" and request["state"] == "Activated"
    assert len(box.cc_records("ctrl1")) == 1

    since = stage.mark()
    b.hang_up()
    b.free()
    await stage.recall_ring(anna, since=since, clip=EXTERNAL_BUSY)
    anna.answer()
    await box.wait_for(lambda: b.in_call(), 10, "the recall call is connected")
    assert box.exchange_log(recall_op), f"the recall carried {recall_op}"
    assert any(c.recall for c in box.calls())
    await stage.settled()
    history = await stage.history(int(str(request["id"])))
    assert history["state"] == "Completed"
    assert len(anna.rings(cadence=1)) == 1
    assert not box.cc_records("ctrl1"), "the network closed the request too"


async def test_anna_busy_when_the_number_frees_is_suspended_then_recalled(
        stage: Stage) -> None:
    """The network asks whether A is free (CCBSStatusRequest); the box answers from
    Anna's real line: busy → CCBSBFree, suspended; when she hangs up the next
    status question is answered free and the recall follows (etsi-ccbs.md §5.4)."""
    box = stage.box
    anna, b = box.phone(1), box.subscriber(EXTERNAL_BUSY)
    await _activate_on_busy_number(stage)
    await stage.lift(anna)
    since = stage.mark()
    b.hang_up()
    b.free()
    await box.wait_for(lambda: bool(box.exchange_log("CCBSBFree")), 10, "CCBSBFree")
    assert box.exchange_log("result CCBSStatusRequest(free=False)")
    await stage.until(lambda st: any(r["state"] == "Suspended" for r in st["requests"]), 10,
                      "suspended at the box")
    assert not box.rings(1)
    await stage.hang_up(anna)
    await stage.recall_ring(anna, since=since, clip=EXTERNAL_BUSY)
    anna.answer()
    await box.wait_for(lambda: b.in_call(), 10, "recall connected")
    await stage.settled()


async def test_the_network_refuses_and_anna_hears_the_reject_tone(stage: Stage) -> None:
    box = stage.box
    anna = box.phone(1)
    box.exchange(lambda ex, now: ex.refuse_requests("ctrl1", "outgoingCCBSQueueFull"))
    await stage.call_busy(anna, "0" + EXTERNAL_BUSY + "#")
    await stage.activate(anna, expect="REJECT")
    await stage.settled()
    history = await stage.ccbsd.call("events", last=50)
    assert any("outgoingCCBSQueueFull" in str(e) for e in history["events"])


async def test_basic_calls_in_and_out(stage: Stage) -> None:
    """An external caller rings Bert's MSN and Bert answers; Anna calls a free number,
    it answers, then hangs up and Anna hears busy tone."""
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    caller = box.subscriber(EXTERNAL_FREE)
    since = stage.mark()
    caller.call("5552")
    await stage.command("AT%RING=2,0,", since=since)
    await box.wait_for(lambda: bert.ringing and bert.clip is not None, 10, "Bert rings")
    assert bert.clip is not None and bert.clip[0] == EXTERNAL_FREE
    bert.answer()
    await box.wait_for(lambda: caller.in_call(), 10, "incoming call connected")
    await stage.hang_up(bert)
    await box.wait_for(lambda: not caller.in_call(), 10, "incoming call cleared")

    await stage.lift(anna)
    since = stage.mark()
    anna.dial("0" + EXTERNAL_FREE + "#")
    await box.wait_for(lambda: caller.in_call(), 10, "outgoing call connected")
    assert box.exchange_log("calling=5551"), "Anna's MSN is the calling number"
    caller.hang_up()
    await stage.command("AT%TONE=1,BUSY", since=since)
    await stage.hang_up(anna)
    assert not (await stage.status())["requests"]
