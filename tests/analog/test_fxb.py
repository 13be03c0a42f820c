"""FXB/1 line parser: every line of analog-bridge.md §3 decodes to its typed result;
malformed lines raise AtParseError with an offset; fuzzing never escapes it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccbs_isdn.analog.contract import Activity, FaultKind, RingEndReason
from ccbs_isdn.analog.fxb import (
    MAX_LINE,
    ConnUrc,
    DtmfUrc,
    Echo,
    EdgeUrc,
    ErrReport,
    FaultUrc,
    FinalResult,
    FlashUrc,
    HftInfo,
    HookUrc,
    LineFramer,
    LinkInfo,
    PortsInfo,
    PulseUrc,
    ReadyUrc,
    RingEndUrc,
    RingTripUrc,
    RingUrc,
    SettingInfo,
    StateInfo,
    TextInfo,
    is_urc,
    parse_line,
)
from ccbs_isdn.errors import AtParseError

GOOD = [
    ("OK", FinalResult(True)),
    ("ERROR", FinalResult(False)),
    ("%ERR: 3,PORT_OFFHOOK", ErrReport(3, "PORT_OFFHOOK")),
    ("%HOOK: 2,OFF,@120034", HookUrc(2, True, ts_ms=120034)),
    ("%HOOK: 1,ON", HookUrc(1, False)),
    ("%FLASH: 2,92,@124870", FlashUrc(2, 92, ts_ms=124870)),
    ("%DTMF: 2,*,@125600", DtmfUrc(2, "*", ts_ms=125600)),
    ("%DTMF: 2,#,80,@126500", DtmfUrc(2, "#", 80, ts_ms=126500)),
    ("%DTMF: 4,D", DtmfUrc(4, "D")),
    ("%PULSE: 1,7", PulseUrc(1, "7")),
    ("%RING: 3,ON,@5", RingUrc(3, True, ts_ms=5)),
    ("%RINGTRIP: 2,@406800", RingTripUrc(2, ts_ms=406800)),
    ("%RINGEND: 2,TIMEOUT", RingEndUrc(2, RingEndReason.TIMEOUT)),
    ("%RINGEND: 2,STOPPED,@1", RingEndUrc(2, RingEndReason.STOPPED, ts_ms=1)),
    ("%CONN: 2,3,UP,@411301", ConnUrc(2, 3, True, ts_ms=411301)),
    ("%CONN: 2,3,DOWN", ConnUrc(2, 3, False)),
    ("%FAULT: 4,SHORT", FaultUrc(4, FaultKind.SHORT)),
    ("%EDGE: 1,0,1200", EdgeUrc(1, False, 1200)),
    ("%READY: 1.2.3,4", ReadyUrc("1.2.3", 4)),
    ("%STATE: 2,OFF,CONNECTED,3", StateInfo(2, True, Activity.CONNECTED, 3)),
    ("%PORTS: 4,FXS,FXS,FXS,FXS", PortsInfo(4, ("FXS",) * 4)),
    ("%HFT: 1,20,70,600,0", HftInfo(1, 20, 70, 600, False)),
    ("%HFT: 1,20,70,600", HftInfo(1, 20, 70, 600)),
    ("%LINK: 1,4", LinkInfo(1, 4)),
    ("%URC: 1", SettingInfo("URC", ("1",))),
    ('%CAD: 1,"250,250"', SettingInfo("CAD", ("1", "250,250"))),
    ("AT%HOOK?", Echo("AT%HOOK?")),
    ("FXB/1 bridge simulator", TextInfo("FXB/1 bridge simulator")),
    ("%HOOK: 2,OFF  ", HookUrc(2, True)),
]


@pytest.mark.parametrize(("line", "expected"), GOOD, ids=[g[0] for g in GOOD])
def test_every_documented_line_decodes(line: str, expected: object) -> None:
    assert parse_line(line.encode()) == expected
    assert parse_line(line) == expected


BAD = [
    ("", 0, "empty"),
    ("%HOOK: 2", 7, "needs 2 fields"),
    ("%HOOK: 0,ON", 7, "port 1..999"),
    ("%HOOK: 2,MAYBE", 9, "hook state"),
    ("%HOOK: 2,ON,@x", 13, "unsigned number"),
    ("%HOOK: 2,ON,17", 12, "needs 2 fields"),
    ("%FLASH: 2,-5", 10, "unsigned number"),
    ("%DTMF: 2,E", 9, "DTMF digit"),
    ("%DTMF: 2,12", 9, "DTMF digit"),
    ("%PULSE: 2,*", 10, "pulse digit"),
    ("%RINGEND: 2,SOON", 12, "ring end reason"),
    ("%FAULT: 2,FIRE", 10, "fault kind"),
    ("%READY: 1.0,4,@7", 14, "needs 2 fields"),
    ("%ERR: 3,port_offhook", 8, "error name"),
    ("%XYZ: 1", 1, "unknown result code"),
    ("%HOOK 2,ON", 1, "bad result code name"),
    ("%HOOK", 5, "expected ':'"),
    ('%URC: "1', 8, "unterminated"),
    ("%CONN: 2,3,SIDEWAYS", 11, "UP or DOWN"),
    ("%STATE: 1,ON,SLEEPING,0", 13, "activity"),
    ("%HFT: 1,20,70,600,0,9", 20, "needs 4-5 fields"),
    ("%HOOK: 1234567890,ON", 7, "unsigned number"),
]


@pytest.mark.parametrize(("line", "offset", "message"), BAD, ids=[b[0] or "empty" for b in BAD])
def test_malformed_lines_say_where_and_what(line: str, offset: int, message: str) -> None:
    with pytest.raises(AtParseError, match=message) as info:
        parse_line(line.encode())
    assert info.value.offset == offset


def test_control_bytes_and_non_ascii_are_rejected_with_their_offset() -> None:
    with pytest.raises(AtParseError) as info:
        parse_line(b"%HOOK: 2,\x10H")
    assert info.value.offset == 9
    with pytest.raises(AtParseError) as info:
        parse_line("OK\u00e4")
    assert info.value.offset == 2


def test_overlong_line_is_rejected() -> None:
    with pytest.raises(AtParseError, match="longer than"):
        parse_line(b"A" * (MAX_LINE + 1))


def test_urcs_are_told_from_answers_by_type() -> None:
    assert is_urc(parse_line(b"%HOOK: 1,ON"))
    assert is_urc(parse_line(b"%READY: 1,4"))
    assert not is_urc(parse_line(b"%STATE: 1,ON,IDLE,0"))
    assert not is_urc(parse_line(b"OK"))


def test_framer_handles_crlf_framing_split_anywhere() -> None:
    stream = b"\r\nOK\r\n\r\n%HOOK: 2,OFF,@5\r\n\r\n%ERR: 7,NOT_SUPPORTED\r\n\r\nERROR\r\n"
    expected = [b"OK", b"%HOOK: 2,OFF,@5", b"%ERR: 7,NOT_SUPPORTED", b"ERROR"]
    for cut in range(len(stream) + 1):
        framer = LineFramer()
        assert framer.feed(stream[:cut]) + framer.feed(stream[cut:]) == expected
    framer = LineFramer()
    assert [line for b in stream for line in framer.feed(bytes([b]))] == expected


def test_framer_bounds_a_line_without_terminator() -> None:
    framer = LineFramer(max_line=16)
    out = framer.feed(b"X" * 40)
    assert out == [b"X" * 17]
    with pytest.raises(AtParseError):
        parse_line(out[0][:16] + b"\x00")
    # the rest of the overlong line is skipped, the next one is intact
    assert framer.feed(b"YYYY\r\nOK\r\n") == [b"OK"]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_only_raise_at_parse_error(data: bytes) -> None:
    try:
        parse_line(data)
    except AtParseError as exc:
        assert exc.offset is not None


_names = st.sampled_from(
    ["HOOK", "FLASH", "DTMF", "PULSE", "RING", "RINGTRIP", "RINGEND", "CONN", "FAULT",
     "EDGE", "READY", "ERR", "STATE", "PORTS", "HFT", "LINK", "URC", "TS", "XYZ", "hook"]
)
_fields = st.lists(
    st.one_of(
        st.integers(-5, 10**11).map(str),
        st.sampled_from(["ON", "OFF", "UP", "DOWN", "TRIP", "SHORT", "IDLE", "@12", "@",
                         "*", "#", "", '"', '"a,b"', "1.0", "PORT_OFFHOOK"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=6),
    ),
    max_size=7,
)


@settings(max_examples=600, deadline=None)
@given(_names, _fields)
def test_fuzz_structured_lines_only_raise_at_parse_error(name: str, fields: list[str]) -> None:
    line = f"%{name}: " + ",".join(fields)
    try:
        result = parse_line(line)
    except AtParseError as exc:
        assert exc.offset is not None and 0 <= exc.offset <= len(line)
    else:
        assert result is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=12), st.binary(max_size=400))
def test_fuzz_framer_and_parser_on_split_streams(chunks: list[bytes], tail: bytes) -> None:
    framer = LineFramer(max_line=64)
    for chunk in [*chunks, tail]:
        for line in framer.feed(chunk):
            assert b"\r" not in line and b"\n" not in line and 0 < len(line) <= 65
            try:
                parse_line(line)
            except AtParseError:
                pass
