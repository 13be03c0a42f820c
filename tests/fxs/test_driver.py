"""FXS driver against the bridge simulator through a real pty: the session rules of
analog-bridge.md §3.7, the analog stories, lost URCs, reboot and unplug."""

from __future__ import annotations

import asyncio
import random

import pytest
from ccbs_isdn.drivers.fxs.driver import FxsConfig, FxsDriver
from ccbs_isdn.drivers.sim.bridge import BridgeSim

from ccbs_isdn.analog.contract import (
    BridgeDown,
    BridgeReady,
    BridgeUp,
    Cadence,
    Connect,
    CrossConnect,
    Disconnect,
    Dtmf,
    FaultKind,
    Flash,
    HookChanged,
    HookSnapshot,
    PlayTone,
    PollHook,
    PortFault,
    ResetPort,
    Ring,
    RingEnded,
    RingEndReason,
    RingStop,
    RingTrip,
    Tone,
)
from ccbs_isdn.analog.fxb import HookUrc
from ccbs_isdn.errors import BridgeError, ConfigError, LinkDown
from tests.fxs.conftest import DriverFactory, Inbox, config

pytestmark = pytest.mark.integration

INIT = ["AT", "ATE0", "AT%CMEE=1", "AT%URC=1", "AT%TS=1", "AT%HFT=0,5,30,120,0",
        "AT%TPLAN=DE", "AT%HOOK?", "AT%STATE?", "AT+GMR"]


async def test_session_set_up_follows_the_rules(sim: BridgeSim, driver: FxsDriver,
                                                inbox: Inbox) -> None:
    assert [c.text for c in sim.commands] == INIT
    up = inbox.of(BridgeUp)
    assert up == [BridgeUp(4, "1.0-sim", False, bridge="fxs0")]
    assert driver.is_up and driver.ports == 4
    assert inbox.of(HookSnapshot)[-1].off_hook == (False,) * 4
    assert all(sim.port(p).timing.flash_max == 120 for p in range(1, 5))


async def test_echo_on_bridge_is_tolerated(tmp_path, make_driver: DriverFactory,
                                           inbox: Inbox) -> None:
    sim = BridgeSim(2, echo=True, boot_ms=10)
    await sim.open_pty(tmp_path / "echo0")
    try:
        drv = await make_driver(sim.url)
        await inbox.wait(BridgeUp)
        assert drv.is_up and not sim.echo  # ATE0 switched it off
        assert drv.stats["garbage_lines"] == 0
    finally:
        await sim.close()


async def test_caller_lifts_flashes_dials_and_hangs_up(sim: BridgeSim, driver: FxsDriver,
                                                       inbox: Inbox) -> None:
    sim.lift(2)
    off = await inbox.wait(HookChanged, port=2, off_hook=True)
    assert not off.polled and off.ts_ms is not None and driver.hook(2)
    sim.flash(2, 60)
    flash = await inbox.wait(Flash, port=2)
    assert flash.ms == 60
    # a flash is never a hang-up: no on-hook was reported for it
    assert not [h for h in inbox.of(HookChanged) if not h.off_hook]
    sim.dial(2, "*37#", tone_ms=20, gap_ms=20)
    await inbox.wait(Dtmf, port=2, digit="#")
    assert [d.digit for d in inbox.of(Dtmf)] == ["*", "3", "7", "#"]
    loop = asyncio.get_running_loop()
    t0, bridge_t0 = loop.time(), sim.now_ms()
    sim.hang_up(2)
    on = await inbox.wait(HookChanged, port=2, off_hook=False)
    assert loop.time() - t0 >= 0.110  # on-hook delay: flash_max (120 ms) after the break
    assert on.ts_ms is not None and on.ts_ms - bridge_t0 in (119, 120, 121)
    assert not driver.hook(2)


async def test_pulse_digits_arrive_as_dtmf_with_pulse_flag(
        tmp_path, make_driver: DriverFactory, inbox: Inbox) -> None:
    from ccbs_isdn.analog.contract import HookTiming

    sim = BridgeSim(2, boot_ms=10)
    await sim.open_pty(tmp_path / "pulse0")
    try:
        await make_driver(sim.url, hook=HookTiming(5, 30, 120, pulse=True))
        await inbox.wait(BridgeUp)
        sim.lift(1)
        await inbox.wait(HookChanged, port=1, off_hook=True)
        sim.dial_pulse(1, "2", break_ms=15, make_ms=15)
        digit = await inbox.wait(Dtmf, port=1)
        assert (digit.digit, digit.pulse) == ("2", True)
    finally:
        await sim.close()


async def test_recall_ring_with_clip_ring_trip_and_cross_connect(
        sim: BridgeSim, driver: FxsDriver, inbox: Inbox) -> None:
    sim.lift(3)  # B is off-hook (will be connected to A)
    await inbox.wait(HookChanged, port=3, off_hook=True)
    await driver.send(Ring(2, Cadence.RECALL, 20, "31", "Rückruf"))
    port = sim.port(2)
    assert port.ringing and port.cadence == Cadence.RECALL
    assert driver.port_status(2).ringing
    await sim.wait_for(lambda: port.clip is not None)
    assert port.clip == ("31", "Rueckruf")
    await driver.send(Connect(2, 3))  # pending: completes on A's ring-trip
    mark = inbox.mark()
    sim.answer(2)
    await inbox.wait(RingTrip, port=2, since=mark)
    ended = await inbox.wait(RingEnded, port=2, since=mark)
    up = await inbox.wait(CrossConnect, since=mark)
    assert ended.reason is RingEndReason.TRIP
    assert (up.p1, up.p2, up.up) == (2, 3, True)
    assert not inbox.of(HookChanged, mark)  # ring-trip is not a separate hook event
    assert driver.hook(2) and driver.port_status(2).peer == 3
    await driver.send(Disconnect(3))
    down = await inbox.wait(CrossConnect, since=mark, up=False)
    assert (down.p1, down.p2) == (2, 3)
    assert driver.port_status(3).peer == 0


async def test_ring_timeout_and_stop_are_reported(sim: BridgeSim, driver: FxsDriver,
                                                  inbox: Inbox) -> None:
    await driver.send(Ring(1, timeout=1))
    ended = await inbox.wait(RingEnded, port=1)
    assert ended.reason is RingEndReason.TIMEOUT and not driver.port_status(1).ringing
    mark = inbox.mark()
    await driver.send(Ring(1, timeout=0))
    await driver.send(RingStop(1))
    assert (await inbox.wait(RingEnded, since=mark, port=1)).reason is RingEndReason.STOPPED


async def test_tones_and_bridge_errors(sim: BridgeSim, driver: FxsDriver, inbox: Inbox) -> None:
    sim.lift(2)
    await inbox.wait(HookChanged, port=2, off_hook=True)
    for tone in (Tone.DIAL, Tone.BUSY, Tone.SPECIALDIAL, Tone.REJECT):
        await driver.send(PlayTone(2, tone))
        assert sim.port(2).tone == tone.value
    await driver.send(PlayTone(2, Tone.CONFIRM, 1000))
    assert sim.commands[-1].text == "AT%TONE=2,CONFIRM,1000"
    with pytest.raises(BridgeError) as info:
        await driver.send(PlayTone(1, Tone.BUSY))  # port 1 is on-hook
    assert (info.value.at_code, info.value.at_name) == (4, "PORT_ONHOOK")
    with pytest.raises(BridgeError) as info:
        await driver.send(Ring(2))  # port 2 is off-hook
    assert (info.value.at_code, info.value.at_name) == (3, "PORT_OFFHOOK")
    assert driver.is_up  # an ERROR is an answer, not a failure of the link


async def test_lost_hang_up_urc_is_caught_by_the_poll(sim: BridgeSim, make_driver: DriverFactory,
                                                       inbox: Inbox) -> None:
    drv = await make_driver(poll_active=0.3, poll_idle=30.0)
    await inbox.wait(BridgeUp)
    drv.set_watched({3})  # B of an active request: polled every 0.3 s
    sim.lift(3)
    await inbox.wait(HookChanged, port=3, off_hook=True)
    mark = inbox.mark()
    sim.drop_next_urc(3)
    sim.hang_up(3)
    change = await inbox.wait(HookChanged, port=3, since=mark)
    assert sim.dropped and sim.dropped[0].startswith("%HOOK: 3,ON")
    assert (change.off_hook, change.polled) == (False, True)
    snapshot = await inbox.wait(HookSnapshot, since=mark)
    assert snapshot.is_off_hook(3) is False
    assert inbox.pos(change) < inbox.pos(snapshot)


async def test_lost_ring_trip_is_caught_by_the_poll(sim: BridgeSim, driver: FxsDriver,
                                                    inbox: Inbox) -> None:
    await driver.send(Ring(4, timeout=0))
    mark = inbox.mark()
    sim.drop_next_urc(4, count=2)  # %RINGTRIP and %RINGEND both lost
    sim.answer(4)
    await sim.wait_for(lambda: len(sim.dropped) == 2)
    snapshot = await driver.poll()  # e.g. right before acting on port 4
    assert snapshot.is_off_hook(4)
    trip = await inbox.wait(RingTrip, since=mark, port=4)
    assert trip.polled
    assert (await inbox.wait(RingEnded, since=mark, port=4)).reason is RingEndReason.TRIP
    assert not driver.port_status(4).ringing


async def test_poll_that_agrees_reports_no_change(sim: BridgeSim, driver: FxsDriver,
                                                  inbox: Inbox) -> None:
    sim.lift(1)
    await inbox.wait(HookChanged, port=1, off_hook=True)
    mark = inbox.mark()
    response = await driver.send(PollHook())
    assert [ln for ln in response.lines if isinstance(ln, HookUrc)][0] == HookUrc(1, True)
    assert inbox.of(HookChanged, mark) == []
    assert len(inbox.of(HookSnapshot, mark)) == 1


async def test_bridge_reboot_resyncs_and_drops_what_was_in_flight(
        sim: BridgeSim, driver: FxsDriver, inbox: Inbox) -> None:
    sim.lift(1)
    await inbox.wait(HookChanged, port=1, off_hook=True)
    await driver.send(Ring(2, timeout=0))
    await driver.send(Connect(1, 2))
    n, mark = sim.mark(), inbox.mark()
    sim.reboot()
    ready = await inbox.wait(BridgeReady, since=mark)
    assert ready.ports == 4
    assert sim.commands_since(n) == INIT
    ended = await inbox.wait(RingEnded, since=mark, port=2)
    assert ended.reason is RingEndReason.RESET  # never assumed to continue (§3.7.2)
    assert inbox.pos(ended) < inbox.pos(ready)
    assert driver.is_up and not driver.port_status(2).ringing
    assert driver.hook(1)  # the lifted handset survives a reboot
    await driver.send(PlayTone(1, Tone.DIAL))


async def test_atz_gets_the_slow_timeout_and_leads_to_a_resync(
        sim: BridgeSim, make_driver: DriverFactory, inbox: Inbox) -> None:
    drv = await make_driver(command_timeout=0.2, slow_timeout=2.0)
    await inbox.wait(BridgeUp)
    sim.response_delay = 0.5  # slower than a normal command may take
    mark = inbox.mark()
    await drv.at("ATZ")
    sim.response_delay = 0.0
    await inbox.wait(BridgeReady, since=mark)
    assert drv.is_up
    with pytest.raises(BridgeError, match="single AT command"):
        await drv.at("AT\rATZ")


async def test_reset_port_drops_ring_without_urc(sim: BridgeSim, driver: FxsDriver,
                                                 inbox: Inbox) -> None:
    await driver.send(Ring(3, timeout=0))
    mark = inbox.mark()
    await driver.send(ResetPort(3))
    ended = await inbox.wait(RingEnded, since=mark, port=3)
    assert ended.reason is RingEndReason.RESET and not sim.port(3).ringing


async def test_unplug_and_replug(sim: BridgeSim, driver: FxsDriver, inbox: Inbox) -> None:
    mark = inbox.mark()
    await sim.unplug()
    down = await inbox.wait(BridgeDown, since=mark)
    assert "link" in down.reason and not driver.is_up
    with pytest.raises(LinkDown):
        await driver.send(PlayTone(1, Tone.OFF))
    sim.lift(2)  # happens while the bridge is away
    await sim.replug()
    up = await inbox.wait(BridgeUp, since=mark, timeout=10.0)
    assert up.reconnected
    change = await inbox.wait(HookChanged, since=mark, port=2)
    assert change.polled and change.off_hook  # found by the set-up poll
    assert inbox.pos(change) < inbox.pos(up)
    assert len(inbox.of(BridgeDown, mark)) == 1
    await driver.send(PlayTone(2, Tone.DIAL))
    assert sim.port(2).tone == "DIAL"


async def test_keepalive_and_three_misses_mean_down(sim: BridgeSim, make_driver: DriverFactory,
                                                    inbox: Inbox) -> None:
    drv = await make_driver(keepalive=0.2, command_timeout=0.2, poll_idle=60.0)
    await inbox.wait(BridgeUp)
    n = sim.mark()
    await sim.wait_command("AT", since=n)  # an idle link is pinged
    mark = inbox.mark()
    sim.mute()
    await inbox.wait(BridgeDown, since=mark)
    assert drv.stats["timeouts"] >= 3
    sim.mute(False)
    up = await inbox.wait(BridgeUp, since=mark, timeout=10.0)
    assert up.reconnected and drv.is_up


async def test_a_slow_answer_times_out_and_the_late_ok_is_ignored(
        sim: BridgeSim, inbox: Inbox) -> None:
    late_ok = asyncio.Event()
    timed_out = asyncio.Event()

    def trace(direction: str, line: str) -> None:
        if direction == "<-" and line == "OK" and timed_out.is_set():
            late_ok.set()

    drv = FxsDriver(config(sim.url), on_indication=inbox, trace=trace)
    await drv.start()
    try:
        sim.response_delay = 0.8  # longer than the 0.5 s command timeout
        with pytest.raises(BridgeError) as info:
            await drv.send(Ring(1))
        assert info.value.at_name == "TIMEOUT"
        timed_out.set()
        await asyncio.wait_for(late_ok.wait(), 5)  # the driver has read the late OK
        assert drv.stats["stray_lines"] == 1
        sim.response_delay = 0.0
        n = sim.mark()
        await drv.send(RingStop(1))  # answered by its own OK, not the stray one
        assert sim.commands_since(n) == ["AT%RINGSTOP=1"]
        assert (await inbox.wait(RingEnded, port=1)).reason is RingEndReason.STOPPED
        assert drv.is_up
    finally:
        await drv.stop()


async def test_port_fault_is_reported(sim: BridgeSim, driver: FxsDriver, inbox: Inbox) -> None:
    await driver.send(Ring(2, timeout=0))
    sim.fault(2, "SHORT")
    fault = await inbox.wait(PortFault, port=2)
    assert fault.kind is FaultKind.SHORT
    assert (await inbox.wait(RingEnded, port=2)).reason is RingEndReason.FAULT
    with pytest.raises(BridgeError) as info:
        await driver.send(Ring(2))
    assert info.value.at_name == "HW_FAULT"


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_garbage_from_the_bridge_is_skipped(sim: BridgeSim, driver: FxsDriver,
                                                  inbox: Inbox, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(40):
        chunk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        sim.send_garbage(chunk.replace(b"OK", b"xx").replace(b"%", b"?"))
    sim.send_garbage(b"\r\n" + b"Z" * 1000 + b"\r\n")  # an endless line
    sim.send_line("%HOOK: 9x,ON")
    sim.send_line("%BOGUS: 1")
    sim.send_line("%READY")
    sim.send_garbage(b"\r\n")
    sim.lift(1)
    await inbox.wait(HookChanged, port=1, off_hook=True)
    assert driver.stats["garbage_lines"] >= 4
    assert driver.is_up and not inbox.of(BridgeDown)
    await driver.send(PlayTone(1, Tone.DIAL))
    assert sim.port(1).tone == "DIAL"


async def test_a_failing_owner_callback_does_not_stop_the_driver(sim: BridgeSim) -> None:
    hooked = asyncio.Event()

    def handler(ind: object) -> None:
        if isinstance(ind, HookChanged):
            hooked.set()
        raise RuntimeError("owner bug")

    drv = FxsDriver(config(sim.url), on_indication=handler)  # type: ignore[arg-type]
    await drv.start()
    try:
        sim.lift(1)
        await asyncio.wait_for(hooked.wait(), 5)
        await drv.send(PlayTone(1, Tone.DIAL))
        assert drv.is_up
    finally:
        await drv.stop()


async def test_queue_delivery_without_callback(sim: BridgeSim) -> None:
    drv = FxsDriver(config(sim.url))
    await drv.start()
    try:
        first = await asyncio.wait_for(drv.indications.get(), 5)
        assert isinstance(first, HookSnapshot)
        assert isinstance(await asyncio.wait_for(drv.indications.get(), 5), BridgeUp)
    finally:
        await drv.stop()


async def test_missing_device_at_start_is_down_then_up_when_it_appears(
        tmp_path, make_driver: DriverFactory, inbox: Inbox) -> None:
    path = tmp_path / "later0"
    drv = await make_driver(str(path))
    down = await inbox.wait(BridgeDown)
    assert "cannot open" in down.reason and not drv.is_up
    sim = BridgeSim(2, boot_ms=10)
    await sim.open_pty(path)
    try:
        up = await inbox.wait(BridgeUp, timeout=10.0)
        assert up.ports == 2 and not up.reconnected
    finally:
        await drv.stop()
        await sim.close()


async def test_socket_url(make_driver: DriverFactory, inbox: Inbox) -> None:
    sim = BridgeSim(4, boot_ms=10)
    url = await sim.serve_tcp()
    try:
        await sim.wait_for(lambda: bool(sim.sent))
        drv = await make_driver(url)
        await inbox.wait(BridgeUp)
        sim.lift(4)
        await inbox.wait(HookChanged, port=4, off_hook=True)
        mark = inbox.mark()
        await sim.unplug()
        await inbox.wait(BridgeDown, since=mark)
        await sim.replug()
        assert (await inbox.wait(BridgeUp, since=mark, timeout=10.0)).reconnected
        assert drv.hook(4)
    finally:
        await sim.close()


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError):
        FxsConfig("")
    with pytest.raises(ConfigError):
        FxsConfig("/dev/ccbs/fxs0", command_timeout=0)
    with pytest.raises(ConfigError):
        FxsConfig("/dev/ccbs/fxs0", reconnect_min=5, reconnect_max=1)
    with pytest.raises(Exception):  # noqa: B017 - a LocalError from the cadence check
        FxsConfig("/dev/ccbs/fxs0", cadences=((3, (5,)),))
