"""The dial plan of the analog ports: which digits reach which extension or go out.

This module owns the numbering seen from an analog phone (architecture.md §4 "Basic
call control"): the *stations* (an extension on an FXS port, with the MSN and
controller its outgoing ISDN calls use), the outgoing prefix, the dialling timers and
the activation codes of analog-bridge.md §6.2. ``DialPlan.route(digits)`` says what a
digit string means. It is immutable, does no I/O and reads no clock; the
configuration code builds it.

Rules of ``route`` (``complete`` = the caller ended dialling with ``#`` or the
inter-digit timeout ran out):

* digits starting with ``outgoing_prefix`` go out over ISDN, prefix stripped, once
  dialling is complete (an external number has no known length);
* an extension number is reached as soon as it is dialled completely and no longer
  extension starts with it (then only on completion);
* with an empty prefix everything that is not (the start of) an extension goes out;
* anything else is invalid ("number unobtainable").
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType

from ccbs_isdn.analog.codes import ActivationCodes
from ccbs_isdn.analog.contract import Cadence
from ccbs_isdn.errors import ConfigError

#: Digits a dialled number may contain (service codes are the recogniser's business).
_NUMBER_DIGITS = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class Station:
    """One analog extension: number ``ext`` on FXS ``port`` (an engine port id such
    as ``"fxs0/2"``). ``msn``/``ctrl``: calling number and controller of its outgoing
    ISDN calls (empty / None: the network's default number, the plan's controller)."""

    ext: str
    port: str
    msn: str = ""
    ctrl: int | None = None
    name: str = ""


class RouteKind(enum.Enum):
    INTERNAL = "internal"  # another analog extension of the box
    EXTERNAL = "external"  # out over ISDN
    INCOMPLETE = "incomplete"  # wait for more digits
    INVALID = "invalid"  # number unobtainable


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    number: str = ""  # the extension, or the external number (prefix stripped)
    station: Station | None = None


_INCOMPLETE = Route(RouteKind.INCOMPLETE)
_INVALID = Route(RouteKind.INVALID)


@dataclass(frozen=True, slots=True)
class DialPlan:
    """The numbering and dialling timers of the analog side (seconds, milliseconds
    where named ``_ms``)."""

    stations: tuple[Station, ...] = ()
    outgoing_prefix: str = "0"
    default_ctrl: int = 1
    interdigit: float = 4.0  # end of dialling after this pause
    first_digit: float = 15.0  # dial tone without a digit: busy tone
    reply_timeout: float = 15.0  # a code's answer from the engine (ISDN: T-ACTIVATE)
    ring_timeout: int = 60  # internal and incoming calls ring this long, s
    feedback_ms: int = 1000  # confirm / reject tone length (analog-bridge.md §6.2)
    max_digits: int = 24
    internal_cadence: int = Cadence.INTERNAL
    external_cadence: int = Cadence.NORMAL
    codes: ActivationCodes = field(default_factory=ActivationCodes)
    _by_ext: MappingProxyType[str, Station] = field(init=False, repr=False, compare=False)
    _by_port: MappingProxyType[str, Station] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_ext: dict[str, Station] = {}
        by_port: dict[str, Station] = {}
        for st in self.stations:
            if not st.ext or not set(st.ext) <= _NUMBER_DIGITS:
                raise ConfigError(f"extension {st.ext!r} is not a digit string",
                                  key="fxs.ports.extension", expected="digits 0-9")
            if st.ext in by_ext:
                raise ConfigError(f"extension {st.ext} is used twice",
                                  key="fxs.ports.extension", expected="unique numbers")
            if st.port in by_port:
                raise ConfigError(f"port {st.port} is used twice", key="fxs.ports.port",
                                  expected="one extension per port")
            if self.outgoing_prefix and st.ext.startswith(self.outgoing_prefix):
                raise ConfigError(
                    f"extension {st.ext} starts with the outgoing prefix "
                    f"{self.outgoing_prefix!r}: it could never be dialled",
                    key="dialplan.outgoing_prefix", expected="a prefix no extension uses")
            by_ext[st.ext] = st
            by_port[st.port] = st
        if not set(self.outgoing_prefix) <= _NUMBER_DIGITS:
            raise ConfigError(f"outgoing prefix {self.outgoing_prefix!r}",
                              key="dialplan.outgoing_prefix", expected="digits 0-9 or empty")
        if not (0 < self.interdigit <= 60 and 0 < self.first_digit <= 600
                and 0 < self.reply_timeout <= 600 and 1 <= self.ring_timeout <= 3600
                and 1 <= self.feedback_ms <= 60_000 and 1 <= self.max_digits <= 32):
            raise ConfigError("dialling timers out of range", key="dialplan",
                              expected="0 < interdigit <= 60 s, 0 < first_digit <= 600 s, "
                                       "1 <= ring_timeout <= 3600 s")
        object.__setattr__(self, "_by_ext", MappingProxyType(by_ext))
        object.__setattr__(self, "_by_port", MappingProxyType(by_port))

    # ---------------------------------------------------------------- lookups

    def station(self, ext: str) -> Station | None:
        return self._by_ext.get(ext)

    def station_at(self, port: str) -> Station | None:
        return self._by_port.get(port)

    def ports(self) -> tuple[str, ...]:
        return tuple(self._by_port)

    def stations_for_msn(self, ctrl: int, msn: str) -> tuple[Station, ...]:
        """The stations an incoming call to ``msn`` on ``ctrl`` rings (in plan
        order; the first idle one takes it). A station without a controller answers
        on every controller."""
        return tuple(st for st in self.stations
                     if st.msn == msn and st.ctrl in (None, ctrl))

    def ctrl_of(self, station: Station) -> int:
        return station.ctrl if station.ctrl is not None else self.default_ctrl

    # ----------------------------------------------------------------- routing

    def route(self, digits: str, *, complete: bool) -> Route:
        """What ``digits`` (without the final ``#``) mean; see the module docstring."""
        if not digits:
            return _INVALID if complete else _INCOMPLETE
        if not set(digits) <= _NUMBER_DIGITS or len(digits) > self.max_digits:
            return _INVALID
        prefix = self.outgoing_prefix
        if prefix and digits.startswith(prefix):
            number = digits[len(prefix):]
            if not complete:
                return _INCOMPLETE
            return Route(RouteKind.EXTERNAL, number) if number else _INVALID
        if prefix and prefix.startswith(digits):
            return _INVALID if complete else _INCOMPLETE
        station = self._by_ext.get(digits)
        longer = any(ext != digits and ext.startswith(digits) for ext in self._by_ext)
        if station is not None and (complete or not longer):
            return Route(RouteKind.INTERNAL, digits, station)
        if longer and not complete:
            return _INCOMPLETE
        if not prefix:
            return Route(RouteKind.EXTERNAL, digits) if complete else _INCOMPLETE
        return _INVALID


def codes_from_config(activate: str, activate_digit: str, cancel: str, cancel_one: str,
                      status: str, book: str, *, window: float,
                      inter_digit: float) -> ActivationCodes:
    """``ActivationCodes`` from the ``[fxs.codes]`` strings, where ``cancel_one`` and
    ``book`` are prefixes followed by ``<number>#`` and an empty string disables."""
    return ActivationCodes(
        activate=activate,
        quick_digit=activate_digit or None,
        cancel_all=cancel or None,
        cancel_one=f"{cancel_one}N#" if cancel_one else None,
        status=status or None,
        book=f"{book}N#" if book else None,
        window=window,
        inter_digit=inter_digit,
    )


def stations(entries: Iterable[tuple[str, str, str, int | None, str]]
             ) -> tuple[Station, ...]:
    """Stations from ``(ext, port, msn, ctrl, name)`` tuples."""
    return tuple(Station(ext, port, msn, ctrl, name) for ext, port, msn, ctrl, name in entries)


__all__ = ["DialPlan", "Route", "RouteKind", "Station", "codes_from_config", "stations"]
