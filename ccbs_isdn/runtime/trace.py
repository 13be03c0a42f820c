"""The support trace: every Facility IE, CAPI message and AT line, hex + decoded.

Like aioquic's qlog, the trace is separate from logging: one line per item in a file
an administrator switches on for a support case (``[daemon] trace_file`` or
``ccbsctl trace start FILE``), e.g.::

    2024-05-01T12:00:03.141593Z facility ctrl=1 dir=rx hex=91a1...  decoded=invoke ...
    2024-05-01T12:00:04.000100Z at bridge=fxs0 dir=tx line="AT%RING=2,1,20,\"31\""

Owns the file and the line format. Decoding is delegated to the codec passed in (the
ROSE facility decoder); a decode failure is written into the trace, never raised.
Must not decide what is traced: drivers call the ``facility``/``capi``/``at`` hooks.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from collections.abc import Callable
from typing import IO, Any

from ccbs_isdn.errors import CcbsError

log = logging.getLogger(__name__)

#: decodes a Facility IE (contents from the profile octet on) to something printable
FacilityDecoder = Callable[[bytes], Any]


def _utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _printable(value: Any) -> str:
    if hasattr(value, "to_json"):
        value = value.to_json()
    try:
        return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def default_facility_decoder() -> FacilityDecoder | None:
    """The ROSE codec's decoder of IE contents, rendered as the JSON document that
    ``ccbsctl facility decode --json`` prints; None when the codec cannot be imported."""
    try:
        from ccbs_isdn.rose import decode_contents, facility_to_json
    except ImportError:
        return None

    def decode(data: bytes) -> Any:
        return facility_to_json(decode_contents(data))

    return decode


class Tracer:
    """Writes trace lines to a file while started; every hook is a no-op otherwise."""

    def __init__(self, decode_facility: FacilityDecoder | None = None) -> None:
        self._file: IO[str] | None = None
        self.path = ""
        self._decode_facility = decode_facility
        self.lines = 0

    @property
    def active(self) -> bool:
        return self._file is not None

    def start(self, path: str) -> None:
        """Open *path* for appending (mode 0640); replaces a running trace."""
        self.stop()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._file = os.fdopen(fd, "a", buffering=1, encoding="utf-8")
        self.path = path
        if self._decode_facility is None:
            self._decode_facility = default_facility_decoder()
        self._write("trace", event="start", pid=os.getpid())

    def stop(self) -> None:
        if self._file is not None:
            self._write("trace", event="stop")
            self._file.close()
            self._file = None
            self.path = ""

    def _write(self, kind: str, **fields: Any) -> None:
        if self._file is None:
            return
        parts = [_utc_now(), kind]
        for key, value in fields.items():
            if value is None:
                continue
            text = str(value)
            if any(c in text for c in ' "\n'):
                text = json.dumps(text, ensure_ascii=False)
            parts.append(f"{key}={text}")
        try:
            self._file.write(" ".join(parts) + "\n")
            self.lines += 1
        except OSError as exc:
            # a full disk must not take the daemon down: stop tracing and say so
            log.error("trace file write failed, tracing stopped: %s", exc)
            try:
                self._file.close()
            finally:
                self._file = None

    def facility(self, direction: str, data: bytes, *, ctrl: int | None = None) -> None:
        """A Facility IE (contents, profile octet onwards) sent (tx) or received (rx)."""
        if self._file is None:
            return
        decoded: str
        if self._decode_facility is None:
            decoded = "(codec not available)"
        else:
            try:
                decoded = _printable(self._decode_facility(bytes(data)))
            except CcbsError as exc:
                decoded = f"error: {exc.code}: {exc}"
            except Exception as exc:  # the codec's bug must not cost us the trace line
                decoded = f"error: {type(exc).__name__}: {exc}"
        self._write("facility", ctrl=ctrl, dir=direction, hex=bytes(data).hex(),
                    decoded=decoded)

    def capi(self, direction: str, message: bytes, *, decoded: str | None = None) -> None:
        """A raw CAPI 2.0 message."""
        if self._file is None:
            return
        self._write("capi", dir=direction, hex=bytes(message).hex(), decoded=decoded)

    def at(self, direction: str, line: str, *, bridge: str = "") -> None:
        """An AT command sent (tx) or a line received (rx) from an FXS bridge."""
        if self._file is None:
            return
        self._write("at", bridge=bridge or None, dir=direction, line=line)

    def note(self, text: str, **fields: Any) -> None:
        """A free-form line (engine decisions worth seeing next to the wire data)."""
        self._write("note", text=text, **fields)
