"""FXS driver stories on a real bridge (see conftest.py for the switches).

Hands-off tests ring the phone on port A for a few seconds. The interactive ones
follow the user procedures of analog-bridge.md §3.8 and product.md.
"""

from __future__ import annotations

import asyncio

import pytest
from ccbs_isdn.drivers.fxs.driver import FxsDriver

from ccbs_isdn.analog.contract import (
    HOOK_PROFILES,
    BridgeDown,
    BridgeReady,
    BridgeUp,
    Cadence,
    Connect,
    CrossConnect,
    Disconnect,
    Dtmf,
    Flash,
    HookChanged,
    PlayTone,
    PollHook,
    Ring,
    RingEnded,
    RingEndReason,
    RingStop,
    RingTrip,
    Tone,
)
from ccbs_isdn.analog.fxb import HftInfo, HookUrc, PortsInfo, StateInfo
from ccbs_isdn.errors import BridgeError
from hwtests.conftest import HUMAN, PORT_A, PORT_B, PROFILE, tell
from tests.fxs.conftest import Inbox

pytestmark = pytest.mark.integration


async def test_session_set_up_and_queries(bridge: FxsDriver, inbox: Inbox) -> None:
    assert bridge.is_up and bridge.ports >= max(PORT_A, PORT_B)
    ports = await bridge.at("AT%PORTS?")
    assert isinstance(ports.lines[0], PortsInfo) and ports.lines[0].count == bridge.ports
    hft = await bridge.at("AT%HFT?")
    timing = HOOK_PROFILES[PROFILE]
    for line in hft.lines:
        assert isinstance(line, HftInfo)
        assert (line.debounce, line.flash_min, line.flash_max) == (
            timing.debounce, timing.flash_min, timing.flash_max)
    state = await bridge.at("AT%STATE?")
    assert [ln.port for ln in state.lines if isinstance(ln, StateInfo)] == list(
        range(1, bridge.ports + 1))


async def test_poll_answers_every_port(bridge: FxsDriver, inbox: Inbox) -> None:
    response = await bridge.send(PollHook())
    hooks = [ln for ln in response.lines if isinstance(ln, HookUrc)]
    assert [h.port for h in hooks] == list(range(1, bridge.ports + 1))
    for h in hooks:
        assert bridge.hook(h.port) == h.off_hook


async def test_ring_times_out_and_stops(bridge: FxsDriver, inbox: Inbox) -> None:
    if bridge.hook(PORT_A):
        pytest.skip(f"port {PORT_A} is off-hook: hang up the phone first")
    mark = inbox.mark()
    await bridge.send(Ring(PORT_A, Cadence.RECALL, 3, "31", "Rueckruf"))
    with pytest.raises(BridgeError) as info:
        await bridge.send(Ring(PORT_A))
    assert info.value.at_name == "PORT_RINGING"
    ended = await inbox.wait(RingEnded, since=mark, port=PORT_A, timeout=10)
    assert ended.reason is RingEndReason.TIMEOUT
    await bridge.send(Ring(PORT_A, Cadence.NORMAL, 0))
    await bridge.send(RingStop(PORT_A))
    stopped = await inbox.wait(RingEnded, since=mark, port=PORT_A,
                               reason=RingEndReason.STOPPED)
    assert stopped.ts_ms is not None


async def test_tone_on_an_on_hook_port_is_refused(bridge: FxsDriver) -> None:
    if bridge.hook(PORT_A):
        pytest.skip(f"port {PORT_A} is off-hook")
    with pytest.raises(BridgeError) as info:
        await bridge.send(PlayTone(PORT_A, Tone.BUSY))
    assert info.value.at_name == "PORT_ONHOOK"


async def test_soft_reset_is_a_reboot(bridge: FxsDriver, inbox: Inbox) -> None:
    mark = inbox.mark()
    await bridge.at("ATZ", timeout=3.0)
    await inbox.wait(BridgeReady, since=mark, timeout=10)
    assert bridge.is_up


@pytest.mark.interactive
async def test_caller_procedure_lift_flash_code_hang_up(bridge: FxsDriver, inbox: Inbox) -> None:
    timing = HOOK_PROFILES[PROFILE]
    mark = inbox.mark()
    tell(f"Lift the handset on port {PORT_A}.")
    await inbox.wait(HookChanged, since=mark, port=PORT_A, off_hook=True, timeout=HUMAN)
    await bridge.send(PlayTone(PORT_A, Tone.BUSY))
    tell("You hear busy. Press R (flash), then dial *37#.")
    flash = await inbox.wait(Flash, since=mark, port=PORT_A, timeout=HUMAN)
    assert timing.flash_min <= flash.ms <= timing.flash_max
    await bridge.send(PlayTone(PORT_A, Tone.SPECIALDIAL))
    await inbox.wait(Dtmf, since=mark, port=PORT_A, digit="#", timeout=HUMAN)
    digits = "".join(d.digit for d in inbox.of(Dtmf, mark) if d.port == PORT_A)
    assert digits.endswith("*37#")
    await bridge.send(PlayTone(PORT_A, Tone.CONFIRM, 1000))
    assert not [h for h in inbox.of(HookChanged, mark) if not h.off_hook]  # R is no hang-up
    tell("Hang up.")
    on = await inbox.wait(HookChanged, since=mark, port=PORT_A, off_hook=False, timeout=HUMAN)
    assert not on.polled


@pytest.mark.interactive
async def test_recall_ring_with_clip_then_cross_connect(bridge: FxsDriver, inbox: Inbox) -> None:
    mark = inbox.mark()
    tell(f"Lift the handset on port {PORT_B} (B) and keep it lifted.")
    await inbox.wait(HookChanged, since=mark, port=PORT_B, off_hook=True, timeout=HUMAN)
    await bridge.send(Ring(PORT_A, Cadence.RECALL, 20, "31", "Rueckruf"))
    await bridge.send(Connect(PORT_A, PORT_B))
    tell(f"Port {PORT_A} (A) rings with the recall cadence and shows 31 / Rueckruf: answer.")
    await inbox.wait(RingTrip, since=mark, port=PORT_A, timeout=HUMAN)
    up = await inbox.wait(CrossConnect, since=mark, up=True, timeout=5)
    assert {up.p1, up.p2} == {PORT_A, PORT_B}
    tell("A and B can talk now. Hang up both phones.")
    for port in (PORT_A, PORT_B):
        await inbox.wait(HookChanged, since=mark, port=port, off_hook=False, timeout=HUMAN)
    await bridge.send(Disconnect(PORT_A))
    await inbox.wait(CrossConnect, since=mark, up=False, timeout=5)


@pytest.mark.interactive
async def test_unplug_and_replug(bridge: FxsDriver, inbox: Inbox) -> None:
    mark = inbox.mark()
    tell("Unplug the bridge's USB cable.")
    await inbox.wait(BridgeDown, since=mark, timeout=HUMAN)
    tell("Plug it back in.")
    up = await inbox.wait(BridgeUp, since=mark, timeout=HUMAN + 30)
    assert up.reconnected and bridge.is_up
    await asyncio.wait_for(bridge.poll(), 5)
