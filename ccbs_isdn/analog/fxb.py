"""FXB/1 wire parser: bytes from the bridge -> lines -> typed results.

Owns the framing (``LineFramer``: CR/LF-delimited lines, bounded length) and the
decoding of one line (``parse_line``) into a final result, an ``%ERR`` report, an
unsolicited result code (URC) or an information line (``docs/analog-bridge.md`` §3).
URCs are recognised by their prefix wherever they appear: the bridge should hold them
back inside a response block (§3.1) but the daemon must not rely on it. Whether a
``%HOOK`` line is a URC or part of the ``AT%HOOK?`` answer is the caller's business
(it states the same fact either way, §3.9.7).

Pure: no I/O, no clock. Every malformed line raises ``AtParseError`` with the character
offset of the problem and what was expected, and nothing else escapes.

The syntax of each result code is a literal table (``SYNTAX``) that the decoder walks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ccbs_isdn.analog.contract import Activity, FaultKind, RingEndReason
from ccbs_isdn.errors import AtParseError

#: Longest line we accept from the bridge. Commands are at most 128 characters (§3.1);
#: responses are shorter than that, but identification text may be longer.
MAX_LINE: Final = 256

DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")

# ------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class FinalResult:
    """``OK`` or ``ERROR`` (V.250 final result codes; FXB/1 uses only these two)."""

    ok: bool


@dataclass(frozen=True, slots=True)
class ErrReport:
    """``%ERR: <code>,<name>`` right before ``ERROR`` when ``AT%CMEE=1`` (§3.5)."""

    code: int
    name: str


@dataclass(frozen=True, slots=True)
class Echo:
    """Our own command echoed back (the bridge has ``ATE1`` until we send ``ATE0``)."""

    text: str


@dataclass(frozen=True, slots=True)
class TextInfo:
    """A free-text information line (``ATI``, ``AT+GMI`` ... answers)."""

    text: str


@dataclass(frozen=True, slots=True)
class HookUrc:
    port: int
    off_hook: bool
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class FlashUrc:
    port: int
    ms: int
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DtmfUrc:
    port: int
    digit: str
    ms: int | None = None
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class PulseUrc:
    port: int
    digit: str
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RingUrc:
    port: int
    on: bool
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RingTripUrc:
    port: int
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RingEndUrc:
    port: int
    reason: RingEndReason
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ConnUrc:
    p1: int
    p2: int
    up: bool
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class FaultUrc:
    port: int
    kind: FaultKind
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class EdgeUrc:
    """Raw loop edge (``AT%URC=2`` only): ``closed`` and the ms spent before it."""

    port: int
    closed: bool
    ms: int
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ReadyUrc:
    """``%READY``: the bridge (re)booted; no timestamp (§3.9.9)."""

    fw_version: str
    ports: int


@dataclass(frozen=True, slots=True)
class StateInfo:
    port: int
    off_hook: bool
    activity: Activity
    peer: int


@dataclass(frozen=True, slots=True)
class PortsInfo:
    count: int
    kinds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HftInfo:
    port: int
    debounce: int
    flash_min: int
    flash_max: int
    pulse: bool = False


@dataclass(frozen=True, slots=True)
class LinkInfo:
    p1: int
    p2: int


@dataclass(frozen=True, slots=True)
class SettingInfo:
    """Answer to a settings query (``AT%URC?``, ``AT%TS?``, ``AT%TPLAN?`` ...)."""

    name: str
    values: tuple[str, ...]


Urc = (
    HookUrc | FlashUrc | DtmfUrc | PulseUrc | RingUrc | RingTripUrc | RingEndUrc | ConnUrc
    | FaultUrc | EdgeUrc | ReadyUrc
)
Info = StateInfo | PortsInfo | HftInfo | LinkInfo | SettingInfo | TextInfo
Line = FinalResult | ErrReport | Echo | Urc | Info

URC_TYPES: Final = (
    HookUrc, FlashUrc, DtmfUrc, PulseUrc, RingUrc, RingTripUrc, RingEndUrc, ConnUrc,
    FaultUrc, EdgeUrc, ReadyUrc,
)

# ------------------------------------------------------------------------ framing


class LineFramer:
    """Splits the byte stream at CR and LF, drops empty lines (``CR LF`` framing,
    §3.1). A line longer than ``max_line`` is handed on cut to ``max_line + 1``
    bytes, so that ``parse_line`` rejects it, and the rest up to the next terminator
    is skipped: a stuck device cannot make us buffer without bound."""

    __slots__ = ("_buf", "_max", "_skipping")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = bytearray()
        self._max = max_line
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        buf = self._buf
        start = 0
        n = len(data)
        while start < n:
            cr = data.find(b"\r", start)
            lf = data.find(b"\n", start)
            if cr < 0 or (0 <= lf < cr):
                cr = lf
            if cr < 0:
                self._append(data[start:], lines)
                break
            self._append(data[start:cr], lines)
            if self._skipping:
                self._skipping = False
            elif buf:
                lines.append(bytes(buf))
            buf.clear()
            start = cr + 1
        return lines

    def _append(self, piece: bytes, lines: list[bytes]) -> None:
        if self._skipping or not piece:
            return
        self._buf += piece
        if len(self._buf) > self._max:
            lines.append(bytes(self._buf[: self._max + 1]))
            self._buf.clear()
            self._skipping = True

    def reset(self) -> None:
        self._buf.clear()
        self._skipping = False


# ------------------------------------------------------------------------ decoding


def _fail(message: str, offset: int) -> AtParseError:
    return AtParseError(message, offset=offset)


_Conv = Callable[[str, int], Any]


def _uint(text: str, at: int) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise _fail(f"expected an unsigned number, got {text!r}", at)
    return int(text)


def _port(text: str, at: int) -> int:
    value = _uint(text, at)
    if not 1 <= value <= 999:
        raise _fail(f"expected a port 1..999, got {text!r}", at)
    return value


def _choice(table: dict[str, Any], what: str) -> _Conv:
    def conv(text: str, at: int) -> Any:
        try:
            return table[text]
        except KeyError:
            raise _fail(f"expected {what} ({'|'.join(table)}), got {text!r}", at) from None

    return conv


def _enum(kind: type[Any], what: str) -> _Conv:
    return _choice({member.value: member for member in kind}, what)


def _digit(text: str, at: int) -> str:
    if len(text) != 1 or text not in DTMF_DIGITS:
        raise _fail(f"expected a DTMF digit 0-9*#A-D, got {text!r}", at)
    return text


def _pulse_digit(text: str, at: int) -> str:
    if len(text) != 1 or not "0" <= text <= "9":
        raise _fail(f"expected a pulse digit 0-9, got {text!r}", at)
    return text


def _word(text: str, at: int) -> str:
    if not text or not all(ch.isalnum() or ch in "._-+/" for ch in text):
        raise _fail(f"expected a word, got {text!r}", at)
    return text


def _name(text: str, at: int) -> str:
    if not text or not all(ch.isupper() or ch.isdigit() or ch == "_" for ch in text):
        raise _fail(f"expected an error name like PORT_OFFHOOK, got {text!r}", at)
    return text


_CONVERTERS: dict[str, _Conv] = {
    "port": _port,
    "uint": _uint,
    # %HOOK reports the hook switch: OFF = handset lifted (loop closed).
    "hook": _choice({"OFF": True, "ON": False}, "hook state"),
    "onoff": _choice({"ON": True, "OFF": False}, "ON or OFF"),
    "updown": _choice({"UP": True, "DOWN": False}, "UP or DOWN"),
    "bit": _choice({"1": True, "0": False}, "0 or 1"),
    "digit": _digit,
    "pulse": _pulse_digit,
    "ringend": _enum(RingEndReason, "ring end reason"),
    "fault": _enum(FaultKind, "fault kind"),
    "activity": _enum(Activity, "activity"),
    "word": _word,
    "name": _name,
}

#: name -> (result class, required fields, optional fields, repeated field, timestamp
#: allowed). Field kinds are keys of ``_CONVERTERS``. Straight from FXB/1 §3.3-3.5.
SYNTAX: Final[dict[str, tuple[type[Any], tuple[str, ...], tuple[str, ...], str | None, bool]]] = {
    # URCs (§3.4); all may carry ",@<ms>" with AT%TS=1
    "HOOK": (HookUrc, ("port", "hook"), (), None, True),
    "FLASH": (FlashUrc, ("port", "uint"), (), None, True),
    "DTMF": (DtmfUrc, ("port", "digit"), ("uint",), None, True),
    "PULSE": (PulseUrc, ("port", "pulse"), (), None, True),
    "RING": (RingUrc, ("port", "onoff"), (), None, True),
    "RINGTRIP": (RingTripUrc, ("port",), (), None, True),
    "RINGEND": (RingEndUrc, ("port", "ringend"), (), None, True),
    "CONN": (ConnUrc, ("port", "port", "updown"), (), None, True),
    "FAULT": (FaultUrc, ("port", "fault"), (), None, True),
    "EDGE": (EdgeUrc, ("port", "bit", "uint"), (), None, True),
    "READY": (ReadyUrc, ("word", "uint"), (), None, False),
    # error report (§3.5) and information lines (§3.3)
    "ERR": (ErrReport, ("uint", "name"), (), None, False),
    "STATE": (StateInfo, ("port", "hook", "activity", "uint"), (), None, False),
    "PORTS": (PortsInfo, ("uint",), (), "word", False),
    "HFT": (HftInfo, ("port", "uint", "uint", "uint"), ("bit",), None, False),
    "LINK": (LinkInfo, ("port", "port"), (), None, False),
}

#: Settings whose query answer is ``%NAME: value[,value...]``.
SETTINGS: Final = frozenset({"URC", "TS", "CMEE", "TPLAN", "VCOMPAT", "SEL", "CAD"})


def _split(body: str, base: int) -> list[tuple[str, int]]:
    """Comma-separated fields with their offsets; double quotes protect commas."""
    fields: list[tuple[str, int]] = []
    start = 0
    quoted = False

    def add(piece: str, at: int) -> None:
        # offsets point at the field itself, not at the blank after ':'
        fields.append((piece.strip(), base + at + len(piece) - len(piece.lstrip())))

    for i, ch in enumerate(body):
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            add(body[start:i], start)
            start = i + 1
    if quoted:
        raise _fail("unterminated quoted string", base + len(body))
    add(body[start:], start)
    return fields


def _unquote(text: str, at: int) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    if '"' in text:
        raise _fail(f"stray quote in {text!r}", at)
    return text


def _decode_result(name: str, body: str, base: int) -> Line:
    fields = _split(body, base) if body.strip() else []
    if name in SETTINGS:
        return SettingInfo(name, tuple(_unquote(text, at) for text, at in fields))
    try:
        kind, required, optional, repeated, stamped = SYNTAX[name]
    except KeyError:
        raise _fail(f"unknown result code %{name}", 1) from None
    ts: int | None = None
    if stamped and fields and fields[-1][0].startswith("@"):
        text, at = fields.pop()
        ts = _uint(text[1:], at + 1)
    if len(fields) < len(required) or (
        repeated is None and len(fields) > len(required) + len(optional)
    ):
        expected = len(required) if not optional else f"{len(required)}-{len(required) + 1}"
        raise _fail(
            f"%{name} needs {expected} fields, got {len(fields)}",
            fields[-1][1] if fields else base,
        )
    values: list[Any] = []
    kinds = list(required) + list(optional)
    for index, (text, at) in enumerate(fields):
        if index < len(kinds):
            values.append(_CONVERTERS[kinds[index]](text, at))
    if repeated is not None:
        extra = tuple(_CONVERTERS[repeated](text, at) for text, at in fields[len(required):])
        values.append(extra)
    if stamped:
        return kind(*values, ts_ms=ts)  # type: ignore[no-any-return]
    return kind(*values)  # type: ignore[no-any-return]


def parse_line(raw: bytes | str) -> Line:
    """Decode one line (without its CR/LF). Raises ``AtParseError`` only."""
    if isinstance(raw, bytes):
        for offset, byte in enumerate(raw):
            if byte < 0x20 or byte > 0x7E:
                raise _fail(f"byte 0x{byte:02X} is not printable ASCII", offset)
        text = raw.decode("ascii")
    else:
        for offset, ch in enumerate(raw):
            if not " " <= ch <= "~":
                raise _fail(f"character {ch!r} is not printable ASCII", offset)
        text = raw
    if len(text) > MAX_LINE:
        raise _fail(f"line longer than {MAX_LINE} characters", MAX_LINE)
    text = text.rstrip(" ")
    if not text:
        raise _fail("empty line", 0)
    if text == "OK":
        return FinalResult(True)
    if text == "ERROR":
        return FinalResult(False)
    if text[0] == "%":
        colon = text.find(":")
        name = text[1:] if colon < 0 else text[1:colon]
        if not name or not all("A" <= c <= "Z" for c in name):
            raise _fail(f"bad result code name {name!r}", 1)
        if colon < 0:
            raise _fail(f"expected ':' after %{name}", len(text))
        return _decode_result(name, text[colon + 1:], colon + 1)
    if text[:2].upper() == "AT":
        return Echo(text)
    return TextInfo(text)


def is_urc(line: Line) -> bool:
    return isinstance(line, URC_TYPES)
