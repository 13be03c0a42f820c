"""The engine's view of the box's numbering: extensions, their FXS ports and MSNs.

This module owns the immutable ``Directory`` the configuration code builds and hands
to the engine (and hands again, replaced, on reload). Through it the engine knows
which numbers are local (an extension with an FXS port: a *local* request, the box
is the network) and which MSN / controller an extension uses toward ISDN. It must not
read configuration files or do any I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ccbs_isdn.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Extension:
    """One internal number. ``port`` None = not an analog port of ours; ``msn`` /
    ``ctrl`` = the calling number and controller of its outgoing ISDN calls."""

    ext: str
    port: str | None = None
    msn: str | None = None
    ctrl: int | None = None
    name: str = ""


class Directory:
    """Immutable lookup tables over a set of ``Extension`` entries."""

    __slots__ = ("_by_ext", "_by_port", "_by_msn", "_extensions")

    def __init__(self, extensions: Iterable[Extension] = ()) -> None:
        by_ext: dict[str, Extension] = {}
        by_port: dict[str, Extension] = {}
        by_msn: dict[tuple[int | None, str], list[Extension]] = {}
        for entry in extensions:
            if not entry.ext:
                raise ConfigError("an extension needs a number", key="ext")
            if entry.ext in by_ext:
                raise ConfigError(f"extension {entry.ext} is defined twice", key=entry.ext)
            by_ext[entry.ext] = entry
            if entry.port is not None:
                if entry.port in by_port:
                    raise ConfigError(
                        f"port {entry.port} is used by {by_port[entry.port].ext} and {entry.ext}",
                        key=entry.ext,
                    )
                by_port[entry.port] = entry
            if entry.msn:
                by_msn.setdefault((entry.ctrl, entry.msn), []).append(entry)
        self._extensions: tuple[Extension, ...] = tuple(by_ext.values())
        self._by_ext: Mapping[str, Extension] = MappingProxyType(by_ext)
        self._by_port: Mapping[str, Extension] = MappingProxyType(by_port)
        self._by_msn: Mapping[tuple[int | None, str], tuple[Extension, ...]] = MappingProxyType(
            {key: tuple(value) for key, value in by_msn.items()}
        )

    @property
    def extensions(self) -> tuple[Extension, ...]:
        return self._extensions

    def ext(self, number: str) -> Extension | None:
        return self._by_ext.get(number)

    def by_port(self, port: str) -> Extension | None:
        return self._by_port.get(port)

    def by_msn(self, ctrl: int | None, msn: str) -> tuple[Extension, ...]:
        """Extensions using ``msn`` on ``ctrl`` (entries without a controller match
        every controller)."""
        found = self._by_msn.get((ctrl, msn), ())
        if ctrl is not None:
            found = found + self._by_msn.get((None, msn), ())
        return found

    def port_of(self, number: str) -> str | None:
        """The FXS port of a local number, None when ``number`` is not local."""
        entry = self._by_ext.get(number)
        return entry.port if entry is not None else None

    def ports(self) -> tuple[str, ...]:
        return tuple(self._by_port)

    def __len__(self) -> int:
        return len(self._extensions)


__all__ = ["Directory", "Extension"]
