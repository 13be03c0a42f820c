"""Analog commands render to the exact FXB/1 text of analog-bridge.md §3.3/§3.8."""

from __future__ import annotations

import pytest

from ccbs_isdn.analog.contract import (
    CADENCE_PATTERNS,
    ERROR_CODES,
    ERROR_NAMES,
    HOOK_PROFILES,
    BridgeUp,
    Cadence,
    Connect,
    DefineCadence,
    Disconnect,
    HookChanged,
    HookSnapshot,
    HookTiming,
    Lockout,
    PlayTone,
    PollHook,
    QueryState,
    ResetPort,
    Ring,
    RingStop,
    SetDtmf,
    Tone,
    clip_name_ascii,
)
from ccbs_isdn.errors import ConfigError, LocalError


@pytest.mark.parametrize(
    ("command", "text"),
    [
        (Ring(2, Cadence.RECALL, 20, "31", "Rueckruf"), 'AT%RING=2,1,20,"31","Rueckruf"'),
        (Ring(3, Cadence.NORMAL, 30, "32", ""), 'AT%RING=3,0,30,"32"'),
        (Ring(1), "AT%RING=1,0,30"),
        (Ring(1, timeout=0, clip_name="Rückruf"), 'AT%RING=1,0,0,"","Rueckruf"'),
        (RingStop(2), "AT%RINGSTOP=2"),
        (PlayTone(2, Tone.SPECIALDIAL), "AT%TONE=2,SPECIALDIAL"),
        (PlayTone(2, Tone.CONFIRM, 1000), "AT%TONE=2,CONFIRM,1000"),
        (Connect(2, 3), "AT%CONN=2,3"),
        (Disconnect(3), "AT%DISC=3"),
        (PollHook(), "AT%HOOK?"),
        (QueryState(), "AT%STATE?"),
        (DefineCadence(3, (400, 200, 400, 2000)), 'AT%CAD=3,"400,200,400,2000"'),
        (Lockout(4), "AT%LOCK=4,1"),
        (SetDtmf(4, False), "AT%DTMF=4,0"),
        (ResetPort(), "AT%RESET=0"),
    ],
)
def test_commands_render_fxb1_text(command: object, text: str) -> None:
    assert command.at() == text  # type: ignore[attr-defined]


def test_only_reset_is_slow() -> None:
    assert ResetPort(1).slow
    assert not Ring(1).slow


@pytest.mark.parametrize(
    "build",
    [
        lambda: Ring(0),
        lambda: Ring(1, clip_number='31"'),
        lambda: Ring(1, timeout=-1),
        lambda: Ring(1, cadence=16),
        lambda: PlayTone(1, "BUSY"),  # type: ignore[arg-type]
        lambda: PlayTone(1, Tone.BUSY, 0),
        lambda: Connect(2, 2),
        lambda: DefineCadence(3, (100,)),
        lambda: DefineCadence(3, (5, 100)),
        lambda: ResetPort(-1),
    ],
)
def test_invalid_commands_are_local_errors(build: object) -> None:
    with pytest.raises(LocalError) as info:
        build()  # type: ignore[operator]
    assert info.value.code == "invalid-command"


def test_clip_name_is_plain_ascii_without_quotes() -> None:
    assert clip_name_ascii('Müller "Büro" €') == "Mueller 'Buero' ?"
    assert len(clip_name_ascii("x" * 80)) == 32


def test_hook_timing_renders_hft_and_checks_order() -> None:
    assert HookTiming().at() == "AT%HFT=0,20,70,600,0"
    assert HOOK_PROFILES["DE-strict"].flash_max == 310
    assert HookTiming(5, 30, 120, True).at(2) == "AT%HFT=2,5,30,120,1"
    with pytest.raises(ConfigError):
        HookTiming(20, 600, 70)


def test_tables_match_the_document() -> None:
    assert ERROR_NAMES[3] == "PORT_OFFHOOK" and ERROR_CODES["BUSY_CMD"] == 11
    assert CADENCE_PATTERNS[Cadence.RECALL] == (250, 250, 250, 250, 250, 3750)


def test_indications_carry_the_bridge_name_as_keyword() -> None:
    ind = HookChanged(2, True, bridge="fxs0")
    assert (ind.port, ind.off_hook, ind.polled, ind.bridge) == (2, True, False, "fxs0")
    assert HookSnapshot((False, True)).is_off_hook(2)
    assert BridgeUp(4, "1.0").reconnected is False
