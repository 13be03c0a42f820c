"""The FXB/1 bridge simulator, spoken to through a real pty (and TCP) by a plain
line client: the dialect of analog-bridge.md §3, the classifier of §4.2 with exact
(nominal) timestamps, rings, tones, cross-connects per §3.9 and the faults."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import serial_asyncio_fast
from ccbs_isdn.drivers.sim.bridge import BridgeSim

pytestmark = pytest.mark.integration


class Client:
    """A dumb FXB/1 client: sends a line, collects the block up to OK/ERROR; every
    other line is kept as a URC. Waits are event-driven with generous timeouts."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.urcs: list[str] = []

    async def line(self, timeout: float = 3.0) -> str:
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), timeout)
            if not raw:
                raise EOFError("link closed")
            text = raw.decode("latin-1").strip()
            if text:
                return text

    async def cmd(self, text: str) -> list[str]:
        self.writer.write(text.encode() + b"\r")
        block: list[str] = []
        while True:
            line = await self.line()
            if line in ("OK", "ERROR"):
                block.append(line)
                return block
            if line.startswith(("%HOOK:", "%STATE:", "%PORTS:", "%HFT:", "%LINK:", "%ERR:",
                                "%CAD:", "%URC:", "%TS:", "%TPLAN:", "%SEL:", "FXB/1", "+",
                                "ccbs", "SIM", "1.0", "AT")) and not _stamped(line):
                block.append(line)
            else:
                self.urcs.append(line)

    async def urc(self, prefix: str, timeout: float = 3.0) -> str:
        for i, line in enumerate(self.urcs):
            if line.startswith(prefix):
                del self.urcs[: i + 1]
                return line
        while True:
            line = await self.line(timeout)
            if line.startswith(prefix):
                return line
            self.urcs.append(line)

    async def no_urc_within(self, seconds: float) -> list[str]:
        """Everything that arrives in ``seconds`` (used to prove a *missing* URC)."""
        got = list(self.urcs)
        self.urcs.clear()
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                got.append(await self.line(left))
            except TimeoutError:
                break
        return got


def _stamped(line: str) -> bool:
    return ",@" in line


def ts(line: str) -> int:
    return int(line.rsplit(",@", 1)[1])


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[BridgeSim]:
    bridge = BridgeSim(4, boot_ms=20)
    await bridge.open_pty(tmp_path / "fxs0")
    yield bridge
    await bridge.close()


@pytest.fixture
async def client(sim: BridgeSim) -> AsyncIterator[Client]:
    await sim.wait_for(lambda: any(s.startswith("%READY") for s in sim.sent))
    reader, writer = await serial_asyncio_fast.open_serial_connection(url=sim.url)
    c = Client(reader, writer)
    assert await c.cmd("AT") == ["OK"]
    assert await c.cmd("AT%TS=1") == ["OK"]
    assert await c.cmd("AT%HFT=0,5,30,120,0") == ["OK"]
    yield c
    writer.close()


async def test_pty_path_is_a_stable_symlink_to_a_pty(sim: BridgeSim, tmp_path: Path) -> None:
    link = tmp_path / "fxs0"
    assert link.is_symlink() and os.readlink(link).startswith("/dev/pts/")


async def test_identification_and_queries(client: Client) -> None:
    assert (await client.cmd("ATI"))[-1] == "OK"
    assert await client.cmd("AT%PORTS?") == ["%PORTS: 4,FXS,FXS,FXS,FXS", "OK"]
    assert await client.cmd("AT%HOOK?") == [f"%HOOK: {p},ON" for p in range(1, 5)] + ["OK"]
    assert await client.cmd("AT%STATE?") == [f"%STATE: {p},ON,IDLE,0" for p in range(1, 5)] + [
        "OK"]
    assert (await client.cmd("AT%HFT?"))[:2] == ["%HFT: 1,5,30,120,0", "%HFT: 2,5,30,120,0"]
    assert await client.cmd("AT%TPLAN=US") == ["OK"]
    assert await client.cmd("AT%TPLAN?") == ["%TPLAN: US", "OK"]
    assert await client.cmd("AT%CONN=?") == ["OK"]


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("AT%FOO=1", "%ERR: 7,NOT_SUPPORTED"),
        ("AT%RING=9", "%ERR: 1,INVALID_PORT"),
        ("AT%RING=0", "%ERR: 1,INVALID_PORT"),
        ("AT%TONE=1,LOUD", "%ERR: 2,INVALID_PARAM"),
        ("AT%TONE=1,BUSY", "%ERR: 4,PORT_ONHOOK"),
        ("AT%RING=1,9", "%ERR: 2,INVALID_PARAM"),
        ('AT%RING=1,0,30,31', "%ERR: 2,INVALID_PARAM"),  # strings are quoted
        ("AT%HFT=1,50,30,120", "%ERR: 2,INVALID_PARAM"),
        ("AT%CONN=1,1", "%ERR: 2,INVALID_PARAM"),
        ("AT%CONN=1,2", "%ERR: 4,PORT_ONHOOK"),
        ("AT+VTS=1", "%ERR: 10,NOT_SELECTED"),
        ("AT" + "%URC=1" + " " * 130, "%ERR: 2,INVALID_PARAM"),
    ],
)
async def test_errors_carry_the_documented_codes(client: Client, command: str, error: str) -> None:
    assert await client.cmd(command) == [error, "ERROR"]


async def test_cmee_0_gives_bare_error(client: Client) -> None:
    assert await client.cmd("AT%CMEE=0") == ["OK"]
    assert await client.cmd("AT%FOO") == ["ERROR"]


async def test_lift_flash_dial_hangup_are_classified(sim: BridgeSim, client: Client) -> None:
    sim.lift(2)
    off = await client.urc("%HOOK: 2,OFF")
    sim.flash(2, 60)
    flash = await client.urc("%FLASH: 2,")
    assert flash.startswith("%FLASH: 2,60,@")
    assert ts(flash) - ts(off) >= 60
    sim.dial(2, "*37#", tone_ms=40, gap_ms=40)
    digits = [await client.urc("%DTMF: 2,") for _ in range(4)]
    assert [d.split(",")[1] for d in digits] == ["*", "3", "7", "#"]
    assert all(d.split(",")[2] == "40" for d in digits)
    assert [ts(b) - ts(a) for a, b in zip(digits, digits[1:], strict=False)] == [80, 80, 80]
    t0 = sim.now_ms()
    sim.hang_up(2)
    on = await client.urc("%HOOK: 2,ON")
    assert ts(on) - t0 in (119, 120, 121)  # exactly flash_max after the break (§3.9.6)


async def test_flash_window_bounds_are_inclusive_and_edges_are_timed(
        sim: BridgeSim, client: Client) -> None:
    assert await client.cmd("AT%URC=2") == ["OK"]
    sim.lift(1)
    await client.urc("%HOOK: 1,OFF")
    for ms in (30, 120):
        sim.flash(1, ms)
        assert (await client.urc("%FLASH: 1,")).startswith(f"%FLASH: 1,{ms},")
    # a timeline of breaks: 29 ms (under flash_min, pulse decoding off: ignored),
    # 3 ms (under the debounce: a glitch), 121 ms (one ms too long: a hang-up)
    client.urcs.clear()
    t = sim.now_ms()
    for opened, closed in ((0, 29), (100, 103), (200, 321)):
        sim.edge(1, False, opened)
        sim.edge(1, True, closed)
    on = await client.urc("%HOOK: 1,")
    assert on.startswith("%HOOK: 1,ON") and ts(on) - t in (319, 320, 321)
    off = await client.urc("%HOOK: 1,")
    assert off.startswith("%HOOK: 1,OFF") and ts(off) - ts(on) in (5, 6)
    assert [u for u in client.urcs if u.startswith("%FLASH")] == []
    edges = [u for u in client.urcs if u.startswith("%EDGE: 1,")]
    # ms spent in the previous state (the first one depends on when we started)
    assert [e.split(",")[2] for e in edges][1:] == ["29", "71", "3", "97", "121"]


async def test_hang_up_is_reported_flash_max_after_the_break(
        sim: BridgeSim, client: Client) -> None:
    assert await client.cmd("AT%URC=2") == ["OK"]
    sim.lift(3)
    await client.urc("%HOOK: 3,OFF")
    sim.hang_up(3)
    edge = await client.urc("%EDGE: 3,0,")
    on = await client.urc("%HOOK: 3,ON")
    assert ts(on) - ts(edge) == 120


async def test_pulse_dialling_is_decoded_when_enabled(sim: BridgeSim, client: Client) -> None:
    assert await client.cmd("AT%HFT=2,5,30,120,1") == ["OK"]
    sim.lift(2)
    await client.urc("%HOOK: 2,OFF")
    sim.dial_pulse(2, "30", break_ms=15, make_ms=15, interdigit_ms=400)
    assert (await client.urc("%PULSE: 2,")).startswith("%PULSE: 2,3,")
    assert (await client.urc("%PULSE: 2,")).startswith("%PULSE: 2,0,")


async def test_ring_with_clip_cadence_and_ring_trip(sim: BridgeSim, client: Client) -> None:
    assert await client.cmd("AT%URC=2") == ["OK"]
    assert await client.cmd('AT%RING=2,1,20,"31","Rueckruf"') == ["OK"]
    port = sim.port(2)
    assert port.ringing and port.cadence == 1 and port.clip is None
    on1 = await client.urc("%RING: 2,ON")
    off1 = await client.urc("%RING: 2,OFF")
    assert ts(off1) - ts(on1) == 250  # recall cadence: 3 x 250 on / 250 off (§3.9.11)
    assert port.clip == ("31", "Rueckruf")  # CLIP delivered when burst 1 ended
    assert await client.cmd("AT%STATE?") == [
        "%STATE: 1,ON,IDLE,0", "%STATE: 2,ON,RINGING,0", "%STATE: 3,ON,IDLE,0",
        "%STATE: 4,ON,IDLE,0", "OK"]
    assert await client.cmd('AT%RING=2') == ["%ERR: 5,PORT_RINGING", "ERROR"]
    sim.answer(2)
    trip = await client.urc("%RINGTRIP: 2")
    end = await client.urc("%RINGEND: 2,")
    assert end.startswith("%RINGEND: 2,TRIP") and ts(end) == ts(trip)
    assert not any(u.startswith("%HOOK: 2") for u in client.urcs)  # §3.9.1
    assert await client.cmd("AT%RING=2") == ["%ERR: 3,PORT_OFFHOOK", "ERROR"]


async def test_ring_timeout_and_ringstop(sim: BridgeSim, client: Client) -> None:
    assert await client.cmd("AT%RING=1,0,1") == ["OK"]
    end = await client.urc("%RINGEND: 1,")
    assert end.startswith("%RINGEND: 1,TIMEOUT")
    assert await client.cmd("AT%RING=1,2,0") == ["OK"]  # 0 = until stopped
    # RINGEND STOPPED is a URC after the OK (§3.9.3)
    client.writer.write(b"AT%RINGSTOP=1\r")
    assert await client.line() == "OK"
    assert (await client.line()).startswith("%RINGEND: 1,STOPPED")
    assert await client.cmd("AT%RINGSTOP=1") == ["OK"]  # nothing to stop


async def test_tones_play_stop_on_hook_and_time_out(sim: BridgeSim, client: Client) -> None:
    sim.lift(2)
    await client.urc("%HOOK: 2,OFF")
    assert await client.cmd("AT%TONE=2,BUSY") == ["OK"]
    assert sim.port(2).tone == "BUSY"
    assert await client.cmd("AT%STATE?") == [
        "%STATE: 1,ON,IDLE,0", "%STATE: 2,OFF,TONE,0", "%STATE: 3,ON,IDLE,0",
        "%STATE: 4,ON,IDLE,0", "OK"]
    assert await client.cmd("AT%TONE=2,CONFIRM,50") == ["OK"]
    await sim.wait_for(lambda: sim.port(2).tone == "OFF")  # a timed tone ends silently
    assert await client.cmd("AT%TONE=2,DIAL") == ["OK"]
    sim.hang_up(2)
    await client.urc("%HOOK: 2,ON")
    assert sim.port(2).tone == "OFF"  # §3.9.12


async def test_cross_connect_rules(sim: BridgeSim, client: Client) -> None:
    sim.lift(1)
    sim.lift(2)
    await client.urc("%HOOK: 1,OFF")
    await client.urc("%HOOK: 2,OFF")
    assert await client.cmd("AT%TONE=1,RINGBACK") == ["OK"]
    client.writer.write(b"AT%CONN=1,2\r")
    assert await client.line() == "OK"
    assert (await client.line()).startswith("%CONN: 1,2,UP")  # URC after the OK
    assert sim.port(1).tone == "OFF" and sim.port(1).peer == 2  # UP stops tones
    assert await client.cmd("AT%CONN=1,3") == ["%ERR: 6,PORT_IN_USE", "ERROR"]
    assert await client.cmd("AT%LINK?") == ["%LINK: 1,2", "OK"]
    sim.hang_up(2)
    await client.urc("%HOOK: 2,ON")
    assert sim.port(1).peer == 2  # on-hook does not tear it down (§3.9.4)
    client.writer.write(b"AT%DISC=2\r")
    assert await client.line() == "OK"
    assert (await client.line()).startswith("%CONN: 1,2,DOWN")
    assert await client.cmd("AT%DISC=2") == ["OK"]


async def test_pending_connect_completes_on_ring_trip_or_dies_with_the_ring(
        sim: BridgeSim, client: Client) -> None:
    sim.lift(2)
    await client.urc("%HOOK: 2,OFF")
    assert await client.cmd('AT%RING=3,0,1,"32"') == ["OK"]
    assert await client.cmd("AT%CONN=2,3") == ["OK"]
    timeout = await client.urc("%RINGEND: 3,")
    assert timeout.startswith("%RINGEND: 3,TIMEOUT")
    assert sim.pending_conns == [] and sim.port(2).peer == 0  # cancelled silently
    assert await client.cmd('AT%RING=3,0,20,"32"') == ["OK"]
    assert await client.cmd("AT%CONN=2,3") == ["OK"]
    sim.answer(3)
    await client.urc("%RINGTRIP: 3")
    up = await client.urc("%CONN: 2,3,")
    assert up.startswith("%CONN: 2,3,UP")


async def test_reboot_atz_and_settings_reset(sim: BridgeSim, client: Client) -> None:
    assert await client.cmd("AT%RING=1,0,0") == ["OK"]
    sim.reboot()
    ready = await client.urc("%READY:")
    assert ready == "%READY: 1.0-sim,4"  # no timestamp (§3.9.9)
    assert not sim.port(1).ringing
    assert await client.cmd("AT%TS?") == ["%TS: 0", "OK"]  # back to defaults
    assert await client.cmd("AT%HFT?") == [f"%HFT: {p},20,70,600,0" for p in range(1, 5)] + [
        "OK"]
    client.writer.write(b"ATZ\r")
    assert await client.line() == "OK"
    assert await client.line() == "%READY: 1.0-sim,4"
    assert sim.boots == 3


async def test_dropped_urc_and_garbage(sim: BridgeSim, client: Client) -> None:
    sim.lift(4)
    await client.urc("%HOOK: 4,OFF")
    sim.drop_next_urc(4)
    sim.hang_up(4)
    await sim.wait_for(lambda: len(sim.dropped) == 1)
    assert sim.dropped[0].startswith("%HOOK: 4,ON")
    assert await client.cmd("AT%HOOK?") == [f"%HOOK: {p},ON" for p in range(1, 5)] + ["OK"]
    sim.send_garbage(b"\x00\xff%HO\r\nzz\r\n")
    assert await client.line() == "\x00\xff%HO"
    assert await client.line() == "zz"
    assert await client.cmd("AT") == ["OK"]


async def test_mute_and_slow_answers(sim: BridgeSim, client: Client) -> None:
    sim.mute()
    client.writer.write(b"AT\r")
    with pytest.raises(TimeoutError):
        await client.line(timeout=0.3)
    sim.mute(False)
    assert await client.cmd("AT") == ["OK"]
    sim.response_delay = 0.2
    client.writer.write(b"AT%HOOK?\r")
    client.writer.write(b"AT\r")  # a second command while one executes (§3.9.8)
    first = await client.line()
    assert first == "%ERR: 11,BUSY_CMD"
    assert await client.line() == "ERROR"
    assert (await client.line()).startswith("%HOOK: 1,")


async def test_unplug_closes_the_pty_and_replug_reuses_the_path(
        sim: BridgeSim, client: Client, tmp_path: Path) -> None:
    link = tmp_path / "fxs0"
    before = os.readlink(link)
    await sim.unplug()
    assert not link.exists()
    with pytest.raises(Exception) as info:  # whatever the serial stack says, it is not data
        await client.line(timeout=2.0)
    assert not isinstance(info.value, TimeoutError)
    await sim.replug()
    assert link.is_symlink() and os.readlink(link).startswith("/dev/pts/")
    assert before.startswith("/dev/pts/")
    await sim.wait_for(lambda: sim.sent.count("%READY: 1.0-sim,4") == 2)
    reader, writer = await serial_asyncio_fast.open_serial_connection(url=str(link))
    again = Client(reader, writer)
    assert await again.cmd("AT") == ["OK"]
    writer.close()


async def test_the_same_bridge_serves_socket_urls() -> None:
    sim = BridgeSim(2, boot_ms=10)
    url = await sim.serve_tcp()
    assert url.startswith("socket://127.0.0.1:")
    host, port = url[len("socket://"):].split(":")
    await sim.wait_for(lambda: "%READY: 1.0-sim,2" in sim.sent)  # past its deaf boot time
    reader, writer = await asyncio.open_connection(host, int(port))
    c = Client(reader, writer)
    assert await c.cmd("AT%PORTS?") == ["%PORTS: 2,FXS,FXS", "OK"]
    sim.lift(2)
    assert (await c.urc("%HOOK: 2,")).startswith("%HOOK: 2,OFF")
    assert [cmd.text for cmd in sim.commands] == ["AT%PORTS?"]
    writer.close()
    await sim.close()


async def test_logs_are_capped_but_indices_stay_absolute(tmp_path: Path) -> None:
    sim = BridgeSim(1, boot_ms=5, max_log=10)
    await sim.open_pty(tmp_path / "cap0")
    await sim.wait_for(lambda: bool(sim.sent))
    reader, writer = await serial_asyncio_fast.open_serial_connection(url=sim.url)
    c = Client(reader, writer)
    for _ in range(25):
        assert await c.cmd("AT") == ["OK"]
    mark = sim.mark()
    assert mark == 25 and len(sim.commands) <= 10 and len(sim.sent) <= 10
    assert await c.cmd("AT%PORTS?") == ["%PORTS: 1,FXS", "OK"]
    assert sim.commands_since(mark) == ["AT%PORTS?"]
    assert (await sim.wait_command("AT%PORTS", since=mark)).ok
    writer.close()
    await sim.close()
