"""Bad input from the card never crashes the driver: the simulator injects malformed CAPI
messages and Facility IEs through the real libcapi20; the driver logs them and goes on."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from ccbs_isdn.drivers.capi20 import messages as m
from ccbs_isdn.drivers.capi20.driver import ControllerConfig
from ccbs_isdn.drivers.capi20.tables import Command as C
from ccbs_isdn.drivers.capi20.tables import Subcommand as S

from ccbs_isdn import isdn
from ccbs_isdn.errors import LocalError

from .conftest import CapiWorld


def ind(command: C, **params: Any) -> bytes:
    return m.encode(m.message(command, S.IND, 0x7001, **params))


def raw_header(length: int, command: int, sub: int, body: bytes) -> bytes:
    return struct.pack("<HHBBH", length, 1, command, sub, 1) + body


#: case -> (payload, is it malformed (counted in bad_input) or just about nothing we know)
BAD: dict[str, tuple[bytes, bool]] = {
    "unknown command": (raw_header(12, 0x06, 0x82, b"\x01\x00\x00\x00"), True),
    "truncated DISCONNECT_IND": (raw_header(10, 0x04, 0x82, b"\x01\x01"), True),
    "struct overruns": (raw_header(15, 0x08, 0x82, b"\x01\x00\x00\x00\x1c\x00\x09"), True),
    "garbage dummy-CR facility": (ind(C.INFO, address=1, info_number=0x1C,
                                      info_element=bytes.fromhex("91A10502019906")), True),
    "not ROSE at all": (ind(C.INFO, address=1, info_number=0x1C, info_element=b"\x00\xff"),
                        True),
    "bad cause IE": (ind(C.INFO, address=0x0101, info_number=0x08, info_element=b"\x02"),
                     False),  # no call 0x0101: not even looked at
    "selector-3 parameter too short": (ind(C.FACILITY, address=1, selector=3,
                                           parameter=b"\x0f"), True),
    "remote user free with a broken inner struct": (ind(
        C.FACILITY, address=1, selector=3, parameter=bytes.fromhex("0F80 04 0000 0100")), True),
    "status request with a broken inner struct": (ind(
        C.FACILITY, address=1, selector=3, parameter=bytes.fromhex("0E80 03 000001")), True),
    "interrogate result with broken instances": (ind(
        C.FACILITY, address=1, selector=3,
        parameter=bytes.fromhex("1100 0B 0000 07000000 0000 03 05AA")), True),
    "facility for an unknown PLCI": (ind(C.INFO, address=0x7701, info_number=0x1C,
                                         info_element=bytes.fromhex("91A10502019906")), False),
    "connect active for nobody": (ind(C.CONNECT_ACTIVE, plci=0x0501), False),
    "disconnect for nobody": (ind(C.DISCONNECT, plci=0x0501, reason=0x3490), False),
    "B3 connection offered": (ind(C.CONNECT_B3, ncci=0x010101), False),
    "B3 data": (ind(C.DATA_B3, ncci=0x010101, data_length=0, data_handle=7), False),
    "unknown selector": (ind(C.FACILITY, address=1, selector=9, parameter=b"\x01"), False),
    "result nobody asked for": (ind(C.INFO, address=1, info_number=0x1C,
                                    info_element=bytes.fromhex("91A203020163")), False),
}


@pytest.mark.parametrize("case", sorted(BAD))
async def test_malformed_input_is_survived(world_factory: Any, loop_errors: list[Any],
                                           case: str) -> None:
    world: CapiWorld = await world_factory(controllers=(ControllerConfig(1, ("31",)),))
    await world.expect(isdn.ControllerUp)
    payload, malformed = BAD[case]
    before = world.driver.messages_in
    assert world.server(lambda s: s.inject(payload)) == 1
    # The link survives and keeps working.
    world.driver.send(isdn.PlaceCall(1, "after", called="23", calling="31"))
    assert (await world.expect(isdn.CallConnected)).call_id == "after"
    assert world.driver.up
    assert world.driver.messages_in > before + 1  # the injected message was read
    assert world.driver.bad_input == int(malformed)
    assert not [i for i in world.seen if isinstance(i, isdn.ControllerDown)]
    assert loop_errors == []


async def test_commands_for_unknown_things_are_local_errors(world_factory: Any) -> None:
    world: CapiWorld = await world_factory(controllers=(ControllerConfig(1, ("31",)),))
    await world.expect(isdn.ControllerUp)
    drv = world.driver
    with pytest.raises(LocalError, match="no call"):
        drv.send(isdn.HangUp(1, "nope"))
    with pytest.raises(LocalError, match="unknown or expired"):
        drv.send(isdn.CcStatusAnswer(1, token=999, free=True))
    with pytest.raises(LocalError, match="no controller 9"):
        drv.send(isdn.HangUp(9, "x"))
    with pytest.raises(LocalError, match="not a list of Q.931 IEs"):
        drv.send(isdn.PlaceCall(1, "bad", called="23", calling="31", bearer=b"\x04\x09"))
    with pytest.raises(LocalError, match="needs the CallLinkageID"):
        drv.send(isdn.CcRequest(1, handle=1, kind=isdn.CcKind.CCBS, linkage_id=None))
    with pytest.raises(LocalError, match="32-bit"):
        drv.send(isdn.CcRequest(1, handle=1 << 40, kind=isdn.CcKind.CCBS, linkage_id=3))
    drv.send(isdn.PlaceCall(1, "dup", called="23", calling="31"))
    with pytest.raises(LocalError, match="in use"):
        drv.send(isdn.PlaceCall(1, "dup", called="23", calling="31"))
