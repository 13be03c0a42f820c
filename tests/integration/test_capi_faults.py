"""Fault injection on the CAPI link: the simulator drops or refuses connections, loses or
delays messages. The driver must notice, report, reconnect with backoff and report
``ControllerUp(reconnected=True)`` so the owner reconciles — and nothing may escape."""

from __future__ import annotations

import time
from typing import Any

import pytest
from ccbs_isdn.drivers.capi20.driver import ControllerConfig

from ccbs_isdn import isdn
from ccbs_isdn.errors import LinkDown
from ccbs_isdn.isdn import CcKind

from .conftest import CapiWorld

ONE = (ControllerConfig(1, ("31", "32")),)


async def test_dropped_connection_is_detected_and_reconciled(
        world_factory: Any, loop_errors: list[dict[str, Any]]) -> None:
    world: CapiWorld = await world_factory(controllers=ONE, reconnect_initial=0.05)
    await world.expect(isdn.ControllerUp)
    drv = world.driver
    # a CCBS request the network will keep across the outage
    drv.send(isdn.PlaceCall(1, "c1", called="22", calling="31"))
    offer = await world.expect(isdn.CcAvailable)
    drv.send(isdn.CcRequest(1, handle=1, kind=CcKind.CCBS, linkage_id=offer.linkage_id))
    reference = (await world.expect(isdn.CcRequestResult)).reference
    # and a call in progress
    drv.send(isdn.PlaceCall(1, "live", called="23", calling="31"))
    await world.expect(isdn.CallConnected)

    assert world.server(lambda s: s.drop_connections()) >= 1
    down = await world.expect(isdn.ControllerDown)
    assert down.ctrl == 1 and "closed" in down.reason
    ended = await world.expect(isdn.CallEnded, where=lambda i: i.call_id == "live")
    assert ended.cause is None
    with pytest.raises(LinkDown):
        drv.send(isdn.PlaceCall(1, "too-early", called="23", calling="31"))

    up = await world.expect(isdn.ControllerUp)
    assert up.reconnected and up.ctrl == 1
    assert drv.reconnects == 1
    # reconcile: the network still holds the request
    drv.send(isdn.CcInterrogate(1, handle=2))
    held = await world.expect(isdn.CcInterrogateResult)
    assert held.references == (reference,)
    # and the link works for calls again
    drv.send(isdn.PlaceCall(1, "after", called="23", calling="31"))
    assert (await world.expect(isdn.CallConnected)).call_id == "after"
    assert loop_errors == []


async def test_reconnect_backs_off_while_the_server_refuses(
        world_factory: Any, loop_errors: list[dict[str, Any]]) -> None:
    world: CapiWorld = await world_factory(controllers=ONE, reconnect_initial=0.05,
                                           reconnect_max=0.2)
    await world.expect(isdn.ControllerUp)
    refused_for = 0.8
    began = time.monotonic()
    world.server(lambda s: (s.refuse_connections(refused_for), s.drop_connections()))
    await world.expect(isdn.ControllerDown)
    up = await world.expect(isdn.ControllerUp, timeout=15)
    assert up.reconnected
    assert time.monotonic() - began >= refused_for
    assert world.driver.reconnects == 1
    assert world.server(lambda s: s.application_count()) == 1
    assert loop_errors == []


async def test_start_without_a_server_keeps_trying(
        world_factory: Any, loop_errors: list[dict[str, Any]]) -> None:
    world: CapiWorld = await world_factory(controllers=ONE, reconnect_initial=0.05,
                                           reconnect_max=0.2, start=False)
    world.server(lambda s: s.refuse_connections(0.5))
    await world.driver.start()  # must not raise
    down = await world.expect(isdn.ControllerDown)
    assert down.ctrl == 1 and "start failed" in down.reason
    up = await world.expect(isdn.ControllerUp, timeout=15)
    assert up.ctrl == 1
    assert loop_errors == []


async def test_delayed_and_lost_messages(world_factory: Any) -> None:
    world: CapiWorld = await world_factory(controllers=ONE)
    await world.expect(isdn.ControllerUp)
    drv = world.driver
    drv.send(isdn.PlaceCall(1, "c1", called="22", calling="31"))
    offer = await world.expect(isdn.CcAvailable)
    await world.expect(isdn.CallEnded)
    # The confirmation and the result are held back for a while: they still arrive.
    world.server(lambda s: s.delay_messages(2, 0.3))
    drv.send(isdn.CcRequest(1, handle=1, kind=CcKind.CCBS, linkage_id=offer.linkage_id))
    result = await world.expect(isdn.CcRequestResult)
    assert result.error is None
    # A lost indication: the driver simply never hears of it (the engine's T-ACTIVATE
    # or reconciliation covers it); the next operation works.
    world.server(lambda s: s.lose_messages(2))
    drv.send(isdn.CcInterrogate(1, handle=2))
    drv.send(isdn.CcInterrogate(1, handle=3))
    third = await world.expect(isdn.CcInterrogateResult)
    assert third.handle == 3 and third.references == (result.reference,)


async def test_stale_library_transport_is_dropped_at_start(world_factory: Any) -> None:
    # libcapi20 reopens its control connection on the next call after a release and
    # keeps it (capi.md §2.4); if that server then goes away, the connection is stale.
    from ccbs_isdn.drivers.capi20 import lib as capilib
    from ccbs_isdn.drivers.capi20 import messages as m
    from ccbs_isdn.drivers.capi20.tables import Command, Subcommand

    from ccbs_isdn.errors import CapiError

    old: CapiWorld = await world_factory(controllers=ONE)
    await old.expect(isdn.ControllerUp)
    assert old.driver._link is not None
    appl_id = old.driver._link.appl_id
    await old.driver.stop()
    lib = capilib.load()
    with pytest.raises(CapiError):  # touches the transport after the release
        lib.put_message(appl_id, m.encode(m.message(Command.LISTEN, Subcommand.REQ, 1,
                                              controller=1)))
    old.sim.stop()

    new: CapiWorld = await world_factory(controllers=ONE)
    up = await new.expect(isdn.ControllerUp)
    assert not up.reconnected  # the first attempt succeeded
    assert not [i for i in new.seen if isinstance(i, isdn.ControllerDown)]
