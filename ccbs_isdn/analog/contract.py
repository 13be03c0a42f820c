"""The analog service contract between the ``fxs`` driver and its users (call control,
the CCBS engine's runtime), in the same role as ``ccbs_isdn/isdn.py`` for ISDN.

This module owns the *vocabulary* only: frozen dataclasses for what an FXS bridge
reports (indications) and what we ask of it (commands), the tone/cadence/timing names
of the FXB/1 dialect (``docs/analog-bridge.md`` §3), and the one place where a
command becomes AT text (``AnalogCommand.at()``). It does no I/O, reads no clock and
never decides CCBS policy.

Identifiers:

* ``port`` — the bridge port, 1..N (FXB/1 §3.2). Port 0 means "all ports" and is only
  accepted by ``ResetPort`` (and hook timing, which the driver sends at start-up).
* ``bridge`` — the name of the bridge (``FxsConfig.name``) on every indication, so a
  box with several bridges can tell them apart.
* ``ts_ms`` — the bridge's own timestamp of a URC (``,@<ms>`` since its last boot,
  FXB/1 §3.1, §3.9.9), ``None`` when the bridge sends none or the fact came from a poll.

Hook facts are *classified* facts: the bridge debounces and separates hook flash from
hang-up (§4.2), so ``HookChanged(off_hook=False)`` arrives ``flash_max`` ms after the
physical break and a flash never looks like a hang-up.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from ccbs_isdn.errors import ConfigError, LocalError

# --------------------------------------------------------------------------- names


class Tone(enum.Enum):
    """Tone names of ``AT%TONE`` (FXB/1 §3.3); frequencies come from the tone plan."""

    OFF = "OFF"
    DIAL = "DIAL"
    SPECIALDIAL = "SPECIALDIAL"  # dial tone after R: "enter a code"
    BUSY = "BUSY"
    CONGESTION = "CONGESTION"
    RINGBACK = "RINGBACK"
    CONFIRM = "CONFIRM"  # positive acknowledgement (request stored, status: pending)
    REJECT = "REJECT"  # negative acknowledgement (refused, status: none pending)
    CALLWAIT = "CALLWAIT"
    SIT = "SIT"


class Cadence(enum.IntEnum):
    """Predefined ring cadences (FXB/1 §3.9.11); ids 3.. may be defined by ``AT%CAD``."""

    NORMAL = 0  # 1000 on / 4000 off
    RECALL = 1  # 3 x (250 on / 250 off), then 3750 off: the CCBS recall ring
    INTERNAL = 2  # 500 on / 500 off / 500 on / 3500 off


#: The predefined cadences as (on, off, on, off, ...) in ms (FXB/1 §3.9.11).
CADENCE_PATTERNS: dict[int, tuple[int, ...]] = {
    Cadence.NORMAL: (1000, 4000),
    Cadence.RECALL: (250, 250, 250, 250, 250, 3750),
    Cadence.INTERNAL: (500, 500, 500, 3500),
}


class RingEndReason(enum.Enum):
    """Why ringing ended (``%RINGEND``, FXB/1 §3.4). ``RESET`` is the driver's own:
    the bridge rebooted or was re-initialised and the ring is simply gone (§3.7.2)."""

    TIMEOUT = "TIMEOUT"
    STOPPED = "STOPPED"
    TRIP = "TRIP"
    FAULT = "FAULT"
    RESET = "RESET"


class FaultKind(enum.Enum):
    """``%FAULT`` kinds (FXB/1 §3.4)."""

    SHORT = "SHORT"
    OVERTEMP = "OVERTEMP"
    NOLOOP = "NOLOOP"
    GROUNDFAULT = "GROUNDFAULT"
    OTHER = "OTHER"


class Activity(enum.Enum):
    """Port activity of ``%STATE`` (FXB/1 §3.2)."""

    IDLE = "IDLE"
    RINGING = "RINGING"
    TONE = "TONE"
    CONNECTED = "CONNECTED"
    LOCKOUT = "LOCKOUT"
    FAULT = "FAULT"


#: ``%ERR`` codes and names (FXB/1 §3.5).
ERROR_NAMES: dict[int, str] = {
    1: "INVALID_PORT",
    2: "INVALID_PARAM",
    3: "PORT_OFFHOOK",
    4: "PORT_ONHOOK",
    5: "PORT_RINGING",
    6: "PORT_IN_USE",
    7: "NOT_SUPPORTED",
    8: "HW_FAULT",
    9: "NO_RESOURCE",
    10: "NOT_SELECTED",
    11: "BUSY_CMD",
}
ERROR_CODES: dict[str, int] = {name: code for code, name in ERROR_NAMES.items()}

#: National tone plans of ``AT%TPLAN`` (FXB/1 §3.3).
TONE_PLANS = ("DE", "EU", "US")


@dataclass(frozen=True, slots=True)
class HookTiming:
    """Hook classifier windows in ms (FXB/1 §4.2): debounce, flash if the loop is open
    ``flash_min..flash_max`` (inclusive, §3.9.6), hang-up after ``flash_max``;
    ``pulse`` enables pulse-digit decoding of shorter breaks."""

    debounce: int = 20
    flash_min: int = 70
    flash_max: int = 600
    pulse: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.debounce < self.flash_min <= self.flash_max <= 60_000:
            raise ConfigError(
                f"hook timing {self.debounce}/{self.flash_min}/{self.flash_max} ms is "
                "not ordered",
                key="fxs.hook",
                expected="0 < debounce < flash_min <= flash_max <= 60000",
            )

    def at(self, port: int = 0) -> str:
        return (
            f"AT%HFT={port},{self.debounce},{self.flash_min},{self.flash_max},"
            f"{int(self.pulse)}"
        )


#: Profiles worth shipping (FXB/1 §4.2): the trade-off is hang-up latency.
HOOK_PROFILES: dict[str, HookTiming] = {
    "DE": HookTiming(20, 70, 600),
    "DE-strict": HookTiming(20, 70, 310),
    "US": HookTiming(20, 300, 1100),
}

# ----------------------------------------------------------------------- indications


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalogIndication:
    """Base class: something an FXS bridge (or the driver on its behalf) reported."""

    bridge: str = ""


@dataclass(frozen=True, slots=True)
class PortIndication(AnalogIndication):
    port: int


@dataclass(frozen=True, slots=True)
class HookChanged(PortIndication):
    """The classified hook state of ``port`` changed. ``polled`` is True when the
    change was found by a reconciliation poll or a re-initialisation, i.e. a URC was
    lost or the bridge was away (FXB/1 §5)."""

    off_hook: bool
    polled: bool = False
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Flash(PortIndication):
    """Hook flash ("R") of ``ms`` milliseconds, classified by the bridge (§4.2)."""

    ms: int
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Dtmf(PortIndication):
    """One dialled digit (``0-9 * # A-D``); ``pulse`` for a pulse-dialled digit."""

    digit: str
    ms: int | None = None
    pulse: bool = False
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RingTrip(PortIndication):
    """The ringing phone was answered (no separate ``HookChanged`` follows, §3.9.1).
    ``polled`` is True when only a poll showed the phone off-hook while we believed it
    was ringing (the URC was lost)."""

    polled: bool = False
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RingEnded(PortIndication):
    reason: RingEndReason
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class CrossConnect(AnalogIndication):
    """Audio of ``p1`` and ``p2`` is connected (``up``) or no longer (FXB/1 §3.9.4).
    ``up=False`` is also sent by the driver when a re-initialisation shows that a
    connection it knew of is gone."""

    p1: int
    p2: int
    up: bool
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class PortFault(PortIndication):
    kind: FaultKind
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class HookSnapshot(AnalogIndication):
    """Result of one hook poll (``AT%HOOK?``): ``off_hook[i]`` is port ``i + 1``.
    Sent after the ``HookChanged(polled=True)`` corrections of that poll, so an owner
    waiting for "B is still on-hook" before a recall can act on it."""

    off_hook: tuple[bool, ...]

    def is_off_hook(self, port: int) -> bool:
        return self.off_hook[port - 1]


@dataclass(frozen=True, slots=True)
class BridgeUp(AnalogIndication):
    """The link is open and the session initialised (FXB/1 §3.7.1); the driver's port
    state model has been reconciled (corrections were sent before this).
    ``reconnected`` after a ``BridgeDown``: resume suspended requests."""

    ports: int
    fw_version: str = ""
    reconnected: bool = False


@dataclass(frozen=True, slots=True)
class BridgeDown(AnalogIndication):
    """The link is gone (unplugged, keep-alive failed). Suspend, never cancel,
    the requests of this bridge's ports (FXB/1 §3.7.3); the driver reconnects."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class BridgeReady(AnalogIndication):
    """The bridge rebooted (``%READY``) and the driver re-ran the session set-up: all
    rings, tones and cross-connects are gone (FXB/1 §3.7.2). A recall in progress
    must be restarted or failed, never assumed to continue."""

    ports: int
    fw_version: str = ""


# -------------------------------------------------------------------------- commands

#: CLIP number: what a phone can display and FSK can carry (ETSI EN 300 659-3 is
#: digit-oriented); the name is plain ASCII, quoted on the wire (FXB/1 §3.9.10).
_CLIP_NUMBER = re.compile(r"[0-9*#+]{0,20}")
_CLIP_NAME_MAX = 32
#: German letters a phone can still read after transliteration.
_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe",
                           "Ü": "Ue", "ß": "ss", '"': "'"})


def clip_name_ascii(name: str) -> str:
    """The CLIP name as the bridge can carry it: transliterated, printable ASCII only,
    no double quote (it delimits the string), at most 32 characters."""
    text = name.translate(_TRANSLIT)
    text = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return text[:_CLIP_NAME_MAX]


def _invalid(message: str) -> LocalError:
    return LocalError(message, code="invalid-command")


def _check_port(port: int, *, allow_all: bool = False) -> None:
    low = 0 if allow_all else 1
    if not isinstance(port, int) or not low <= port <= 999:
        raise _invalid(f"port {port!r} out of range (expected {low}..999)")


@dataclass(frozen=True, slots=True)
class AnalogCommand:
    """Base class: something we ask the bridge to do. ``at()`` is the AT text."""

    #: ATZ and AT%RESET may take up to 3 s (FXB/1 §3.1); everything else 1 s.
    @property
    def slow(self) -> bool:
        return False

    def at(self) -> str:
        raise TypeError(f"{type(self).__name__} is an abstract command")


@dataclass(frozen=True, slots=True)
class Ring(AnalogCommand):
    """Ring ``port`` with ``cadence`` for at most ``timeout`` s (0 = until stopped),
    sending CLIP after the first burst (FXB/1 §3.3, §3.9.11)."""

    port: int
    cadence: int = Cadence.NORMAL
    timeout: int = 30
    clip_number: str = ""
    clip_name: str = ""

    def __post_init__(self) -> None:
        _check_port(self.port)
        if not 0 <= int(self.cadence) <= 15:
            raise _invalid(f"ring cadence {self.cadence!r} out of range (0..15)")
        if not 0 <= self.timeout <= 3600:
            raise _invalid(f"ring timeout {self.timeout!r} out of range (0..3600 s)")
        if not _CLIP_NUMBER.fullmatch(self.clip_number):
            raise _invalid(f"CLIP number {self.clip_number!r} is not 0-20 of 0-9*#+")

    def at(self) -> str:
        text = f"AT%RING={self.port},{int(self.cadence)},{self.timeout}"
        name = clip_name_ascii(self.clip_name)
        if self.clip_number or name:
            text += f',"{self.clip_number}"'
            if name:
                text += f',"{name}"'
        return text


@dataclass(frozen=True, slots=True)
class RingStop(AnalogCommand):
    port: int

    def __post_init__(self) -> None:
        _check_port(self.port)

    def at(self) -> str:
        return f"AT%RINGSTOP={self.port}"


@dataclass(frozen=True, slots=True)
class PlayTone(AnalogCommand):
    """Play ``tone`` on ``port``, for ``ms`` ms or until changed (``None``)."""

    port: int
    tone: Tone
    ms: int | None = None

    def __post_init__(self) -> None:
        _check_port(self.port)
        if not isinstance(self.tone, Tone):
            raise _invalid(f"tone {self.tone!r} is not a Tone")
        if self.ms is not None and not 1 <= self.ms <= 600_000:
            raise _invalid(f"tone duration {self.ms!r} out of range (1..600000 ms)")

    def at(self) -> str:
        text = f"AT%TONE={self.port},{self.tone.value}"
        return text if self.ms is None else f"{text},{self.ms}"


@dataclass(frozen=True, slots=True)
class Connect(AnalogCommand):
    """Cross-connect two ports; completes on ring-trip if one side rings (§3.9.4)."""

    p1: int
    p2: int

    def __post_init__(self) -> None:
        _check_port(self.p1)
        _check_port(self.p2)
        if self.p1 == self.p2:
            raise _invalid(f"cannot connect port {self.p1} to itself")

    def at(self) -> str:
        return f"AT%CONN={self.p1},{self.p2}"


@dataclass(frozen=True, slots=True)
class Disconnect(AnalogCommand):
    port: int

    def __post_init__(self) -> None:
        _check_port(self.port)

    def at(self) -> str:
        return f"AT%DISC={self.port}"


@dataclass(frozen=True, slots=True)
class PollHook(AnalogCommand):
    """Reconciliation poll of all ports (FXB/1 §5)."""

    def at(self) -> str:
        return "AT%HOOK?"


@dataclass(frozen=True, slots=True)
class QueryState(AnalogCommand):
    def at(self) -> str:
        return "AT%STATE?"


@dataclass(frozen=True, slots=True)
class DefineCadence(AnalogCommand):
    """``AT%CAD``: cadence ``cadence_id`` = (on, off, on, off, ...) ms."""

    cadence_id: int
    pattern: tuple[int, ...]

    def __post_init__(self) -> None:
        if not 0 <= self.cadence_id <= 15:
            raise _invalid(f"cadence id {self.cadence_id!r} out of range (0..15)")
        if not self.pattern or len(self.pattern) % 2 or len(self.pattern) > 16:
            raise _invalid("a cadence is 1..8 (on, off) pairs")
        if any(not 10 <= ms <= 10_000 for ms in self.pattern):
            raise _invalid("cadence steps must be 10..10000 ms")

    def at(self) -> str:
        return f'AT%CAD={self.cadence_id},"{",".join(str(ms) for ms in self.pattern)}"'


@dataclass(frozen=True, slots=True)
class Lockout(AnalogCommand):
    """``AT%LOCK``: a locked port gets no dial tone (after a fault, or disabled)."""

    port: int
    locked: bool = True

    def __post_init__(self) -> None:
        _check_port(self.port)

    def at(self) -> str:
        return f"AT%LOCK={self.port},{int(self.locked)}"


@dataclass(frozen=True, slots=True)
class SetDtmf(AnalogCommand):
    port: int
    enabled: bool = True

    def __post_init__(self) -> None:
        _check_port(self.port)

    def at(self) -> str:
        return f"AT%DTMF={self.port},{int(self.enabled)}"


@dataclass(frozen=True, slots=True)
class ResetPort(AnalogCommand):
    """``AT%RESET``: re-initialise one port (0 = all); answers OK, no ``%READY``."""

    port: int = 0

    def __post_init__(self) -> None:
        _check_port(self.port, allow_all=True)

    @property
    def slow(self) -> bool:
        return True

    def at(self) -> str:
        return f"AT%RESET={self.port}"


@dataclass(frozen=True, slots=True)
class PortStatus:
    """The driver's model of one port, as the bridge last told us."""

    port: int
    off_hook: bool = False
    ringing: bool = False
    peer: int = 0
    tone: Tone = Tone.OFF
    activity: Activity = Activity.IDLE
    faults: tuple[FaultKind, ...] = field(default_factory=tuple)
