"""Garbage and mutated CAPI frames *from the card*: the simulated firmware's rcapi
server sends hypothesis-made frames to the real driver through the real libcapi20.
The driver may refuse them (``CapiMessageError``/``FacilityError``, counted in
``bad_input``) or act on them, but no other exception reaches the event loop, the
link stays usable and a call placed afterwards connects."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ccbs_isdn.drivers.capi20 import lib as capilib
from ccbs_isdn.drivers.capi20.driver import CapiConfig, CapiDriver, ControllerConfig
from ccbs_isdn.drivers.sim.rcapi import RcapiServer, ThreadedRcapiServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccbs_isdn import isdn
from tests.integration.conftest import DEFAULT_SPECS, CapiWorld, default_exchange

from .conftest import FuzzCount, examples, long_mode
from .strategies import capi_frame

pytestmark = pytest.mark.integration


class CountingLib:
    """libcapi20 as the driver sees it, counting the messages the driver has read
    (so a test waits for exactly its frames, event-driven)."""

    def __init__(self, lib: capilib.CapiLib) -> None:
        self._lib = lib
        self.read = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lib, name)

    def get_message(self, appl_id: int) -> bytes | None:
        raw: bytes | None = self._lib.get_message(appl_id)
        if raw is not None:
            self.read += 1
            for target, fut in list(self._waiters):
                if self.read >= target and not fut.done():
                    fut.get_loop().call_soon_threadsafe(_settle, fut)
        return raw

    async def until_read(self, count: int, timeout: float = 10.0) -> None:
        if self.read >= count:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (count, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            self._waiters.remove(entry)


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


@pytest.fixture
async def card(capi_home: Path) -> AsyncIterator[tuple[CapiWorld, CountingLib]]:
    sim = ThreadedRcapiServer(lambda: RcapiServer(DEFAULT_SPECS, default_exchange()))
    port = sim.start()
    libs: list[CountingLib] = []

    def load(name: str) -> capilib.CapiLib:
        counting = CountingLib(capilib.load(name))
        libs.append(counting)
        return counting  # type: ignore[return-value]

    driver = CapiDriver(CapiConfig(driver="rcapi", host="127.0.0.1", port=port,
                                   controllers=(ControllerConfig(1, ("31", "32")),)),
                        library=load)
    try:
        await driver.start()
        world = CapiWorld(sim, driver)
        await world.expect(isdn.ControllerUp)
        yield world, libs[0]
    finally:
        await driver.stop()
        sim.stop()


@settings(max_examples=examples(150), deadline=None, database=None,
          derandomize=not long_mode(),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frames=st.lists(capi_frame(), min_size=1, max_size=4))
async def test_frames_from_a_broken_card_never_crash_the_driver(
        card: tuple[CapiWorld, CountingLib], loop_errors: list[Any],
        fuzz_count: FuzzCount, frames: list[bytes]) -> None:
    world, lib = card
    bad_before = world.driver.bad_input
    target = lib.read + len(frames)
    for frame in frames:
        assert world.server(lambda s, f=frame: s.inject(f)) == 1
    await lib.until_read(target)  # every frame reached the driver (and anything it caused)
    assert loop_errors == [], loop_errors
    fuzz_count.cases += len(frames)
    fuzz_count.rejected += world.driver.bad_input - bad_before
    fuzz_count.accepted = fuzz_count.cases - fuzz_count.rejected


@settings(max_examples=examples(3, 40), deadline=None, database=None,
          derandomize=not long_mode(),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frames=st.lists(capi_frame(), min_size=30, max_size=30))
async def test_after_the_garbage_the_link_still_places_calls(
        card: tuple[CapiWorld, CountingLib], loop_errors: list[Any],
        fuzz_count: FuzzCount, frames: list[bytes]) -> None:
    world, lib = card
    drv = world.driver
    target, bad_before = lib.read + len(frames), drv.bad_input
    for frame in frames:
        world.server(lambda s, f=frame: s.inject(f))
    await lib.until_read(target)
    fuzz_count.cases += len(frames)
    fuzz_count.rejected += drv.bad_input - bad_before
    fuzz_count.accepted = fuzz_count.cases - fuzz_count.rejected
    # garbage may have taken the controller down (a broken LISTEN_CONF, say): the
    # driver brings it back on its own
    if not drv.up:
        await world.expect(isdn.ControllerUp, timeout=30)
    call_id = f"after-{fuzz_count.cases}"
    drv.send(isdn.PlaceCall(1, call_id, called="23", calling="31"))
    connected = await world.expect(isdn.CallConnected, timeout=15,
                                   where=lambda i: i.call_id == call_id)
    assert connected.call_id == call_id
    drv.send(isdn.HangUp(1, call_id))
    await world.expect(isdn.CallEnded, timeout=15, where=lambda i: i.call_id == call_id)
    assert loop_errors == []


async def test_a_length_word_beyond_the_receive_buffer_is_not_believed(
        card: tuple[CapiWorld, CountingLib], loop_errors: list[Any]) -> None:
    world, lib = card
    seen: list[int] = []
    original = lib._lib.get_message

    def spy(appl_id: int) -> bytes | None:
        raw: bytes | None = original(appl_id)
        if raw is not None:
            seen.append(len(raw))
        return raw

    lib._lib.get_message = spy  # type: ignore[method-assign]
    # The largest length word there is, far past libcapi20's receive buffer of
    # max(2048, 128 + MaxBDataLen) octets (capi.md §1; the driver registers with 2048):
    # believed, this read out of bounds (SIGSEGV found by fuzzing with 0x8068).
    frame = struct.pack("<HHBBH", 0xFFFF, 1, 0x08, 0x82, 1) + b"\x01\x00\x00\x00"
    world.server(lambda s: s.inject(frame))
    await lib.until_read(lib.read + 1)
    assert seen and max(seen) <= 128 + 2048, f"the driver copied {max(seen)} octets"
    assert loop_errors == []
