"""CCBS end to end through the real libcapi20: CapiDriver <-> rcapi simulator <-> exchange.

Each story is told from user A's side (etsi-ccbs.md §5.1, §5.3, §5.7): the call to a busy
B, the offer (CallInfoRetain), the request, B becoming free, the status check, the
recall — once with the card speaking ROSE (supplementary services) and once with the
driver speaking it (raw Facility IEs), and as CCBS-T on a point-to-point controller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ccbs_isdn.drivers.capi20.driver import ControllerConfig
from ccbs_isdn.drivers.sim.controller import ControllerSpec
from ccbs_isdn.drivers.sim.exchange import NetworkTimers

from ccbs_isdn import isdn
from ccbs_isdn.isdn import CcKind, CcRoute

from .conftest import CapiWorld, default_exchange

ROUTES = {
    "supplementary": (ControllerConfig(1, ("31", "32"), route="supplementary"),
                      CcRoute.SUPPLEMENTARY),
    "raw": (ControllerConfig(1, ("31", "32"), route="raw"), CcRoute.RAW_FACILITY),
}


async def start(world_factory: Any, route: str, **kwargs: Any) -> CapiWorld:
    cfg, expected = ROUTES[route]
    world: CapiWorld = await world_factory(controllers=(cfg,), **kwargs)
    up = await world.expect(isdn.ControllerUp)
    assert up.route is expected
    return world


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_busy_call_offers_ccbs_and_the_recall_connects(world_factory: Any,
                                                             route: str) -> None:
    world = await start(world_factory, route)
    drv = world.driver

    # A (31) calls B (22), who is busy: the network offers CCBS in the DISCONNECT.
    drv.send(isdn.PlaceCall(1, "c1", called="22", calling="31"))
    offer = await world.expect(isdn.CcAvailable)
    assert (offer.call_id, offer.kind, offer.called, offer.calling) == ("c1", CcKind.CCBS,
                                                                        "22", "31")
    assert offer.linkage_id is not None and 0 <= offer.linkage_id <= 127
    assert offer.bearer == isdn.BEARER_SPEECH
    ended = await world.expect(isdn.CallEnded)
    assert (ended.call_id, ended.cause) == ("c1", isdn.CAUSE_USER_BUSY)
    assert world.seen.index(offer) < world.seen.index(ended)

    # A asks for CCBS: the network accepts with a reference.
    drv.send(isdn.CcRequest(1, handle=77, kind=CcKind.CCBS, linkage_id=offer.linkage_id))
    result = await world.expect(isdn.CcRequestResult)
    assert result.handle == 77 and result.error is None and result.reference is not None
    reference = result.reference
    records = world.exchange(lambda ex, now: ex.cc_records("bri1"))
    assert [(r.reference, r.b_number, r.a_number) for r in records] == [(reference, "22", "31")]

    # B becomes free: the network asks whether A is free, then announces B free.
    world.exchange(lambda ex, now: ex.set_busy("22", False, now))
    status = await world.expect(isdn.CcStatusRequest)
    assert status.reference == reference
    drv.send(isdn.CcStatusAnswer(1, token=status.token, free=True))
    free = await world.expect(isdn.CcRemoteUserFree)
    assert free.reference == reference and free.b_number == "22"
    assert free.bearer == isdn.BEARER_SPEECH

    # The recall: a new call carrying the reference; B answers.
    drv.send(isdn.PlaceCall(1, "recall", called="22", calling="31", cc_reference=reference))
    # globalRecall: the other terminals on the bus are told to stop offering it
    assert (await world.expect(isdn.CcStopAlerting)).reference == reference
    connected = await world.expect(isdn.CallConnected)
    assert connected.call_id == "recall"
    calls = world.exchange(lambda ex, now: ex.calls())
    assert [(c.calling, c.called, c.recall) for c in calls] == [("31", "22", True)]
    drv.send(isdn.HangUp(1, "recall"))
    done = await world.expect(isdn.CallEnded, where=lambda i: i.call_id == "recall")
    assert done.error is None


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_interrogate_and_deactivate(world_factory: Any, route: str) -> None:
    world = await start(world_factory, route)
    drv = world.driver
    drv.send(isdn.PlaceCall(1, "c1", called="22", calling="32"))
    offer = await world.expect(isdn.CcAvailable)
    drv.send(isdn.CcRequest(1, handle=5, kind=CcKind.CCBS, linkage_id=offer.linkage_id))
    reference = (await world.expect(isdn.CcRequestResult)).reference
    assert reference is not None

    drv.send(isdn.CcInterrogate(1, handle=6))
    interrogated = await world.expect(isdn.CcInterrogateResult)
    assert (interrogated.handle, interrogated.error, interrogated.references) == (
        6, None, (reference,))

    drv.send(isdn.CcDeactivate(1, handle=8, reference=reference))
    deactivated = await world.expect(isdn.CcDeactivateResult)
    assert (deactivated.handle, deactivated.error) == (8, None)
    erased = await world.expect(isdn.CcErase)
    assert erased.reference == reference
    assert world.exchange(lambda ex, now: ex.cc_records("bri1")) == []

    drv.send(isdn.CcDeactivate(1, handle=9, reference=reference))
    again = await world.expect(isdn.CcDeactivateResult)
    assert (again.handle, again.error) == (9, "invalidCCBSReference")


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_refused_request_names_the_etsi_error(world_factory: Any, route: str) -> None:
    world = await start(world_factory, route)
    world.exchange(lambda ex, now: ex.refuse_requests("bri1", "shortTermDenial"))
    world.driver.send(isdn.PlaceCall(1, "c1", called="22", calling="31"))
    offer = await world.expect(isdn.CcAvailable)
    world.driver.send(isdn.CcRequest(1, handle=3, kind=CcKind.CCBS,
                                     linkage_id=offer.linkage_id))
    result = await world.expect(isdn.CcRequestResult)
    assert (result.handle, result.error, result.reference) == (3, "shortTermDenial", None)


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_a_busy_at_b_free_suspends_with_b_free(world_factory: Any, route: str) -> None:
    # T-CCBS1 (the network's wait for status answers) shortened: BFree follows its expiry
    world = await start(world_factory, route,
                        exchange=lambda: default_exchange(NetworkTimers(t_ccbs1=0.3)))
    drv = world.driver
    drv.send(isdn.PlaceCall(1, "c1", called="22", calling="31"))
    offer = await world.expect(isdn.CcAvailable)
    drv.send(isdn.CcRequest(1, handle=4, kind=CcKind.CCBS, linkage_id=offer.linkage_id))
    reference = (await world.expect(isdn.CcRequestResult)).reference
    world.exchange(lambda ex, now: ex.set_busy("22", False, now))
    status = await world.expect(isdn.CcStatusRequest)
    drv.send(isdn.CcStatusAnswer(1, token=status.token, free=False))
    b_free = await world.expect(isdn.CcBFree, timeout=15)
    assert (b_free.reference, b_free.b_number) == (reference, "22")


async def test_ccbs_t_on_a_point_to_point_controller(world_factory: Any) -> None:
    world: CapiWorld = await world_factory(controllers=(ControllerConfig(2, ("41",),
                                                                         ptp=True),))
    up = await world.expect(isdn.ControllerUp)
    assert (up.ctrl, up.ptp, up.route) == (2, True, CcRoute.RAW_FACILITY)
    drv = world.driver

    drv.send(isdn.PlaceCall(2, "c1", called="22", calling="41"))
    offer = await world.expect(isdn.CcAvailable)
    assert (offer.linkage_id, offer.kind, offer.called) == (None, CcKind.CCBS, "22")
    assert (await world.expect(isdn.CallEnded)).cause == isdn.CAUSE_USER_BUSY

    drv.send(isdn.CcRequest(2, handle=11, kind=CcKind.CCBS, linkage_id=None, called="22",
                            calling="41", bearer=offer.bearer))
    result = await world.expect(isdn.CcRequestResult)
    assert (result.handle, result.error) == (11, None)
    records = world.exchange(lambda ex, now: ex.cc_records("bri2"))
    assert [(r.ptp, r.b_number, r.a_number) for r in records] == [(True, "22", "41")]

    world.exchange(lambda ex, now: ex.set_busy("22", False, now))
    assert (await world.expect(isdn.CcTRemoteUserFree)).handle == 11

    drv.send(isdn.PlaceCall(2, "recall", called="22", calling="41", cc_t_handle=11))
    assert (await world.expect(isdn.CallConnected)).call_id == "recall"
    calls = world.exchange(lambda ex, now: ex.calls())
    assert [(c.calling, c.called, c.recall) for c in calls] == [("41", "22", True)]


def short(**timers: float) -> Any:
    return lambda: default_exchange(NetworkTimers(**timers))


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_no_reply_offers_ccnr_while_alerting(world_factory: Any, route: str) -> None:
    def exchange() -> Any:
        ex = default_exchange(NetworkTimers(t301=0.3))
        ex.add_subscriber("24", answers=False, answer_delay=0.01)
        return ex

    world = await start(world_factory, route, exchange=exchange)
    drv = world.driver
    drv.send(isdn.PlaceCall(1, "c1", called="24", calling="31"))
    await world.expect(isdn.CallAlerting)
    offer = await world.expect(isdn.CcAvailable)
    assert (offer.kind, offer.called) == (CcKind.CCNR, "24")
    ended = await world.expect(isdn.CallEnded)
    assert ended.cause == isdn.CAUSE_NO_ANSWER
    drv.send(isdn.CcRequest(1, handle=21, kind=CcKind.CCNR, linkage_id=offer.linkage_id))
    result = await world.expect(isdn.CcRequestResult)
    assert result.error is None and result.reference is not None
    records = world.exchange(lambda ex, now: ex.cc_records("bri1"))
    assert [(r.kind, r.reference) for r in records] == [(CcKind.CCNR, result.reference)]
    drv.send(isdn.CcInterrogate(1, handle=22, kind=CcKind.CCNR))
    assert (await world.expect(isdn.CcInterrogateResult)).references == (result.reference,)


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_unused_linkage_is_erased_after_t_retention(world_factory: Any,
                                                          route: str) -> None:
    world = await start(world_factory, route, exchange=short(t_retention=0.2))
    world.driver.send(isdn.PlaceCall(1, "c1", called="22", calling="31"))
    offer = await world.expect(isdn.CcAvailable)
    erased = await world.expect(isdn.CcEraseCallLinkage)
    assert erased.linkage_id == offer.linkage_id


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_recall_not_taken_up_is_erased_after_t_ccbs3(world_factory: Any,
                                                           route: str) -> None:
    world = await start(world_factory, route, exchange=short(t_ccbs3=0.2))
    drv = world.driver
    drv.send(isdn.PlaceCall(1, "c1", called="22", calling="31"))
    offer = await world.expect(isdn.CcAvailable)
    drv.send(isdn.CcRequest(1, handle=1, kind=CcKind.CCBS, linkage_id=offer.linkage_id))
    reference = (await world.expect(isdn.CcRequestResult)).reference
    world.exchange(lambda ex, now: ex.set_busy("22", False, now))
    status = await world.expect(isdn.CcStatusRequest)
    drv.send(isdn.CcStatusAnswer(1, token=status.token, free=True))
    await world.expect(isdn.CcRemoteUserFree)
    erase = await world.expect(isdn.CcErase)
    assert (erase.reference, erase.reason) == (reference, isdn.EraseReason.T_CCBS3_TIMEOUT)


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_recall_before_b_is_free_is_refused_in_the_clearing(world_factory: Any,
                                                                  route: str) -> None:
    world = await start(world_factory, route)
    drv = world.driver
    drv.send(isdn.PlaceCall(1, "c1", called="22", calling="31"))
    offer = await world.expect(isdn.CcAvailable)
    drv.send(isdn.CcRequest(1, handle=1, kind=CcKind.CCBS, linkage_id=offer.linkage_id))
    reference = (await world.expect(isdn.CcRequestResult)).reference
    drv.send(isdn.PlaceCall(1, "early", called="22", calling="31", cc_reference=reference))
    ended = await world.expect(isdn.CallEnded, where=lambda i: i.call_id == "early")
    assert ended.error == "notReadyForCall"


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_destination_side_status_request_for_our_msn(world_factory: Any,
                                                           route: str) -> None:
    # An external caller finds our MSN 31 busy; its network activates CCBS toward us and
    # the exchange (as B's network) asks our bus whether 31 is free (ETS 300 196-1).
    world = await start(world_factory, route, exchange=short(t_destination_poll=0.2))
    drv = world.driver
    world.exchange(lambda ex, now: ex.call_from("23", "31", now, cc=True))
    incoming = await world.expect(isdn.IncomingCall)
    drv.send(isdn.RejectCall(1, incoming.call_id, cause=isdn.CAUSE_USER_BUSY))
    await world.expect(isdn.CallEnded)
    asked = await world.expect(isdn.DestinationStatusRequest)
    assert asked.msn == "31" and asked.bearer.startswith(b"\x04")
    drv.send(isdn.DestinationStatusAnswer(1, token=asked.token,
                                          status=isdn.DestinationStatus.COMPATIBLE_AND_FREE))
    recall = await world.expect(isdn.IncomingCall, where=lambda i: i.call_id != incoming.call_id)
    assert (recall.called, recall.calling) == ("31", "23")


async def wait_until(check: Any, timeout: float = 10.0) -> None:
    """Poll a condition on the simulator (its state has no event to wait on)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def record_states(world: CapiWorld, access: str) -> list[str]:
    return [r.state for r in world.exchange(lambda ex, now: ex.cc_records(access))]


async def test_ccbs_t_suspend_resume_and_cancel(world_factory: Any) -> None:
    world: CapiWorld = await world_factory(controllers=(ControllerConfig(2, ("41",),
                                                                         ptp=True),))
    await world.expect(isdn.ControllerUp)
    drv = world.driver
    drv.send(isdn.PlaceCall(2, "c1", called="22", calling="41"))
    offer = await world.expect(isdn.CcAvailable)
    drv.send(isdn.CcRequest(2, handle=12, kind=CcKind.CCBS, linkage_id=None, called="22",
                            calling="41", bearer=offer.bearer))
    assert (await world.expect(isdn.CcRequestResult)).error is None

    # A busy: the request is suspended at the B side, B's becoming free does not recall
    drv.send(isdn.CcTSuspend(2, handle=12))
    await wait_until(lambda: record_states(world, "bri2") == ["suspended"])
    world.exchange(lambda ex, now: ex.set_busy("22", False, now))
    drv.send(isdn.CcTResume(2, handle=12))
    assert (await world.expect(isdn.CcTRemoteUserFree)).handle == 12
    assert not [i for i in world.seen[:-1] if isinstance(i, isdn.CcTRemoteUserFree)]

    # cancelling = clearing the signalling connection
    drv.send(isdn.CcDeactivate(2, handle=12, reference=None))
    result = await world.expect(isdn.CcDeactivateResult)
    assert (result.handle, result.error) == (12, None)
    await wait_until(lambda: record_states(world, "bri2") == [])
    drv.send(isdn.CcInterrogate(2, handle=13))
    assert (await world.expect(isdn.CcInterrogateResult)).error == "not-supported"


async def test_network_clearing_the_ccbs_t_connection_is_reported(world_factory: Any) -> None:
    world: CapiWorld = await world_factory(
        controllers=(ControllerConfig(2, ("41",), ptp=True),), exchange=short(t_ccbs5=0.3))
    await world.expect(isdn.ControllerUp)
    drv = world.driver
    drv.send(isdn.PlaceCall(2, "c1", called="22", calling="41"))
    offer = await world.expect(isdn.CcAvailable)
    drv.send(isdn.CcRequest(2, handle=14, kind=CcKind.CCBS, linkage_id=None, called="22",
                            calling="41", bearer=offer.bearer))
    assert (await world.expect(isdn.CcRequestResult)).error is None
    cleared = await world.expect(isdn.CcTConnectionCleared)  # T-CCBS5 ran out
    assert cleared.handle == 14


async def test_card_without_supplementary_services_falls_back_to_raw(
        world_factory: Any) -> None:
    # The "refuse CCBS" fault: the profile lacks global option 0x10.
    plain = (ControllerSpec(1, "bri1", ("31", "32"), supplementary=False),)
    world: CapiWorld = await world_factory(specs=plain,
                                           controllers=(ControllerConfig(1, ("31", "32")),))
    up = await world.expect(isdn.ControllerUp)
    assert (up.route, up.ccbs) == (CcRoute.RAW_FACILITY, True)
    world.driver.send(isdn.PlaceCall(1, "c1", called="22", calling="31"))
    offer = await world.expect(isdn.CcAvailable)
    world.driver.send(isdn.CcRequest(1, handle=2, kind=CcKind.CCBS,
                                     linkage_id=offer.linkage_id))
    assert (await world.expect(isdn.CcRequestResult)).reference is not None


async def test_forcing_supplementary_services_on_a_plain_card(world_factory: Any) -> None:
    plain = (ControllerSpec(1, "bri1", ("31", "32"), supplementary=False),)
    world: CapiWorld = await world_factory(
        specs=plain, controllers=(ControllerConfig(1, ("31",), route="supplementary"),))
    up = await world.expect(isdn.ControllerUp)
    assert (up.route, up.ccbs, up.ccnr) == (CcRoute.SUPPLEMENTARY, False, False)
    world.driver.send(isdn.CcRequest(1, handle=3, kind=CcKind.CCBS, linkage_id=1))
    result = await world.expect(isdn.CcRequestResult)
    assert (result.handle, result.error) == (3, "not-supported")
