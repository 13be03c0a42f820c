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
