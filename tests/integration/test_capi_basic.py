"""The real libcapi20 against the rcapi simulator: registration, profile, LISTEN, calls."""

from __future__ import annotations

from typing import Any

from ccbs_isdn import isdn
from ccbs_isdn.isdn import CcRoute

from .conftest import CapiWorld


async def test_controllers_come_up_with_their_routes(world_factory: Any) -> None:
    world: CapiWorld = await world_factory()
    up1 = await world.expect(isdn.ControllerUp, where=lambda i: i.ctrl == 1)
    up2 = await world.expect(isdn.ControllerUp, where=lambda i: i.ctrl == 2)
    assert (up1.route, up1.ptp, up1.ccbs, up1.ccnr, up1.reconnected) == (
        CcRoute.SUPPLEMENTARY, False, True, True, False)
    assert (up2.route, up2.ptp) == (CcRoute.RAW_FACILITY, True)


async def test_configuration_through_capi20rc(world_factory: Any) -> None:
    # The library's own configuration file (REMOTE line) instead of capi20ext_set_*.
    world: CapiWorld = await world_factory(via_capi20rc=True)
    ups = {(await world.expect(isdn.ControllerUp)).ctrl for _ in range(2)}
    assert ups == {1, 2}


async def test_outgoing_call_connects_and_hangs_up_with_a_cause(world_factory: Any) -> None:
    world: CapiWorld = await world_factory()
    await world.expect(isdn.ControllerUp, where=lambda i: i.ctrl == 1)
    world.exchange(lambda ex, now: ex.update_subscriber("23", answer_delay=0.05))
    world.driver.send(isdn.PlaceCall(1, "out", called="23", calling="31"))
    assert (await world.expect(isdn.CallAlerting)).call_id == "out"
    assert (await world.expect(isdn.CallConnected)).call_id == "out"
    world.driver.send(isdn.HangUp(1, "out", cause=isdn.CAUSE_CALL_REJECTED))
    ended = await world.expect(isdn.CallEnded)
    assert ended.call_id == "out"
    assert any("U->N DISCONNECT" in line and "cause=#21" in line
               for line in world.ex_log().splitlines())


async def test_incoming_call_is_offered_answered_and_cleared_by_the_far_end(
        world_factory: Any) -> None:
    world: CapiWorld = await world_factory()
    await world.expect(isdn.ControllerUp, where=lambda i: i.ctrl == 1)
    world.exchange(lambda ex, now: ex.call_from("23", "31", now))
    incoming = await world.expect(isdn.IncomingCall)
    assert (incoming.ctrl, incoming.called, incoming.calling) == (1, "31", "23")
    assert incoming.bearer == isdn.BEARER_SPEECH
    world.driver.send(isdn.AnswerCall(1, incoming.call_id))
    assert (await world.expect(isdn.CallConnected)).call_id == incoming.call_id
    world.exchange(lambda ex, now: ex.hang_up("23", now))
    ended = await world.expect(isdn.CallEnded)
    assert (ended.call_id, ended.cause) == (incoming.call_id, isdn.CAUSE_NORMAL_CLEARING)


async def test_a_caller_who_hangs_up_before_the_answer_ends_the_offered_call(
        world_factory: Any) -> None:
    # the phone must stop ringing when the far end gives up (CONNECT_IND, then the
    # network's DISCONNECT before any CONNECT_RESP)
    world: CapiWorld = await world_factory()
    await world.expect(isdn.ControllerUp, where=lambda i: i.ctrl == 1)
    world.exchange(lambda ex, now: ex.call_from("23", "31", now))
    incoming = await world.expect(isdn.IncomingCall)
    world.exchange(lambda ex, now: ex.hang_up("23", now))
    ended = await world.expect(isdn.CallEnded, timeout=10)
    assert ended.call_id == incoming.call_id
    assert ended.cause == isdn.CAUSE_NORMAL_CLEARING


async def test_rejected_incoming_call_is_busy_for_the_caller(world_factory: Any) -> None:
    world: CapiWorld = await world_factory()
    await world.expect(isdn.ControllerUp, where=lambda i: i.ctrl == 1)
    world.exchange(lambda ex, now: ex.call_from("23", "32", now, cc=False))
    incoming = await world.expect(isdn.IncomingCall)
    world.driver.send(isdn.RejectCall(1, incoming.call_id, cause=isdn.CAUSE_USER_BUSY))
    ended = await world.expect(isdn.CallEnded)
    assert ended.call_id == incoming.call_id
    assert any("U->N RELEASE_COMPLETE" in line and "cause=#17" in line
               for line in world.ex_log().splitlines())


async def test_calls_to_other_msns_on_the_bus_are_left_alone(world_factory: Any) -> None:
    # Only MSN 31 is ours on this controller: a call to 32 is ignored (CONNECT_RESP
    # "ignore"), so the network's T303 runs out and the caller hears #18.
    from ccbs_isdn.drivers.capi20.driver import ControllerConfig
    from ccbs_isdn.drivers.sim.exchange import NetworkTimers

    from .conftest import default_exchange

    world: CapiWorld = await world_factory(
        controllers=(ControllerConfig(1, ("31",)),),
        exchange=lambda: default_exchange(NetworkTimers(t303=0.2)))
    await world.expect(isdn.ControllerUp)
    world.exchange(lambda ex, now: ex.call_from("23", "32", now, cc=False))
    world.exchange(lambda ex, now: ex.call_from("23", "31", now, cc=False))
    incoming = await world.expect(isdn.IncomingCall)
    assert incoming.called == "31"  # the call to 32 produced no indication before it
    assert not [i for i in world.seen if isinstance(i, isdn.IncomingCall) and i.called == "32"]
