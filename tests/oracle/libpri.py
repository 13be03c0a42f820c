"""A Facility IE oracle: Debian's libpri (``/usr/lib/libpri.so.1.4``, package libpri1.4)
decodes bytes through ctypes, and its APDU debug dump is parsed into fields.

This is how the reference vectors' ``libpri_dump`` text was produced: a D-channel
controller from ``pri_new_bri_cb`` (EuroISDN, no real I/O: the read/write callbacks do
nothing), ``pri_set_debug(PRI_DEBUG_APDU)``, a message callback that captures the text,
and ``facility_decode_dump(ctrl, contents, length)`` on the IE contents (profile octet
onwards). Test-only code; reusable by the simulator tests::

    from tests.oracle.libpri import libpri_decode, require_libpri
    require_libpri()                        # skips: "Debian package libpri1.4 is missing"
    dump = libpri_decode(ie_contents)       # LibpriDump
    dump.summary   # [{"component": "invoke", "invokeId": 70,
                   #   "operation": "ROSE_ETSI_CCBSRemoteUserFree"}]  (as in the vectors)
    dump.values    # [("invokeId", 70), ("operationValue", "4.0.359.1.6"), ...]
    dump.complete  # libpri decoded every component without complaint
"""

from __future__ import annotations

import ctypes
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LIBPRI_PATH = "/usr/lib/libpri.so.1.4"
MISSING = "Debian package libpri1.4 is missing"

PRI_NETWORK = 1  # libpri.h node types
PRI_CPE = 2
PRI_SWITCH_EUROISDN_E1 = 5
PRI_DEBUG_APDU = 1 << 8

_IO = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
_MSG = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)

_COMPONENT_LINE = re.compile(r"^(INVOKE|RESULT|ERROR|REJECT) Component ")
_KINDS = {"INVOKE": "invoke", "RESULT": "returnResult", "ERROR": "returnError", "REJECT": "reject"}
_NAMED = {"operationValue": "operationName", "errorValue": "errorName", "problem": "problemName"}
_INT = re.compile(r"^(-?\d+)(?: 0x[0-9A-F]+)?$")  # BOOLEAN prints "= 1"
# octet strings: "    <04 03 80 90 A3 7D 02 91-81> - "~~~"", wrapped after 16 octets as
# "    <00 01 .. 0F - "~~"" + "     10 11 12 13> - "~~""
_HEX_LINE = re.compile(r"^ {4,}<?([0-9A-F]{2}(?:[ \-][0-9A-F]{2})*)>?(?: - \")")


@dataclass
class LibpriComponent:
    """One component as libpri reported it. ``fields``: ``(name, type, value)`` with value
    an int, a str (quoted strings, OIDs, operation/error names), bytes (octet strings) or
    None (structural lines such as ``addressOfB Address Sequence/C(48 0x30)``)."""

    kind: str
    fields: list[tuple[str, str, Any]] = field(default_factory=list)

    def get(self, name: str) -> Any:
        for key, _type, value in self.fields:
            if key == name:
                return value
        raise KeyError(name)


@dataclass
class LibpriDump:
    text: str
    components: list[LibpriComponent]
    problems: list[str]  # "Did not expect ..." lines and pri_error output

    @property
    def complete(self) -> bool:
        return not self.problems and bool(self.components)

    @property
    def summary(self) -> list[dict[str, Any]]:
        """The vectors' ``libpri_summary`` shape."""
        out = []
        for comp in self.components:
            entry: dict[str, Any] = {"component": comp.kind, "invokeId": comp.get("invokeId")}
            if comp.kind in ("invoke", "returnResult"):
                try:
                    entry["operation"] = comp.get("operationName")
                except KeyError:
                    entry["operation"] = "ROSE_None"
            elif comp.kind == "returnError":
                entry["error"] = comp.get("errorName")
            else:
                entry["problem"] = comp.get("problemName")
            out.append(entry)
        return out

    @property
    def values(self) -> list[tuple[str, Any]]:
        """``(name, value)`` of every line carrying a value, all components in order."""
        return [(n, v) for c in self.components for n, _t, v in c.fields if v is not None]


def parse_dump(text: str) -> LibpriDump:
    """Parse libpri's APDU dump (the part after ``ASN.1 end``) into components."""
    components: list[LibpriComponent] = []
    problems: list[str] = []
    _raw, _sep, decoded = text.partition("ASN.1 end\n")
    lines = decoded.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        match = _COMPONENT_LINE.match(line)
        if match:
            components.append(LibpriComponent(_KINDS[match.group(1)]))
            continue
        if "Did not expect" in line or line.startswith("!"):
            problems.append(line.strip())
            continue
        if not line.startswith("  ") or not components:
            problems.append(line.strip())
            continue
        body = line[2:]
        value: Any = None
        if body.endswith(" ="):
            # octet string: the value is the hex block on the following lines
            head = body[:-2]
            octets = bytearray()
            while index < len(lines) and _HEX_LINE.match(lines[index]):
                hexpart = _HEX_LINE.match(lines[index]).group(1)  # type: ignore[union-attr]
                octets.extend(bytes.fromhex(hexpart.replace("-", " ")))
                index += 1
            value = bytes(octets)
        elif " = " in body:
            head, value_text = body.split(" = ", 1)
            int_match = _INT.match(value_text)
            if int_match:
                value = int(int_match.group(1))
            elif value_text.startswith('"') and value_text.endswith('"'):
                value = value_text[1:-1]
            else:
                value = value_text
                if "not large enough" in value_text:
                    problems.append(f"{body.split(' ', 1)[0]}: {value_text}")
        else:
            head = body
        name, _sp, type_text = head.partition(" ")
        if not type_text and name in _NAMED:
            # "operationValue = ROSE_ETSI_CCBSRequest", "errorValue = General: ...",
            # "problem = Invoke: ...": libpri's names for the codes it just printed
            name = _NAMED[name]
        components[-1].fields.append((name, type_text, value))
    return LibpriDump(text, components, problems)


class _Libpri:
    """One EuroISDN BRI controller; libpri's message callback is process-global."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL(LIBPRI_PATH)
        self.lock = threading.Lock()
        self.buffer: list[str] = []
        self.errors: list[str] = []
        # keep the callbacks alive as long as the controller
        self._msg = _MSG(lambda _pri, text: self.buffer.append(text.decode("latin-1")))
        self._err = _MSG(lambda _pri, text: self.errors.append(text.decode("latin-1")))
        self._read = _IO(lambda _pri, _buf, _n: 0)
        self._write = _IO(lambda _pri, _buf, n: n)
        lib = self.lib
        lib.pri_set_message.argtypes = [_MSG]
        lib.pri_set_error.argtypes = [_MSG]
        lib.pri_new_bri_cb.restype = ctypes.c_void_p
        lib.pri_new_bri_cb.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            _IO,
            _IO,
            ctypes.c_void_p,
        ]
        lib.pri_set_debug.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.facility_decode_dump.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.facility_decode_dump.restype = None
        lib.pri_set_message(self._msg)
        lib.pri_set_error(self._err)
        # PTP BRI, network side, EuroISDN: the same controller kind as the vectors' run
        self.ctrl = lib.pri_new_bri_cb(
            -1, 1, PRI_NETWORK, PRI_SWITCH_EUROISDN_E1, self._read, self._write, None
        )
        if not self.ctrl:
            raise OSError("pri_new_bri_cb returned NULL")
        self.buffer.clear()
        self.errors.clear()
        lib.pri_set_debug(self.ctrl, PRI_DEBUG_APDU)

    def dump(self, contents: bytes) -> tuple[str, list[str]]:
        with self.lock:
            self.buffer.clear()
            self.errors.clear()
            self.lib.facility_decode_dump(self.ctrl, contents, len(contents))
            return "".join(self.buffer), [e.strip() for e in self.errors]


_instance: _Libpri | None = None


def libpri_available() -> bool:
    return Path(LIBPRI_PATH).exists()


def require_libpri() -> None:
    """Skip the calling test when libpri is not installed."""
    import pytest

    if not libpri_available():
        pytest.skip(MISSING)


def libpri_decode(ie_contents: bytes) -> LibpriDump:
    """Decode Facility IE contents (profile octet onwards) with libpri; parsed dump."""
    global _instance
    if _instance is None:
        if not libpri_available():
            raise FileNotFoundError(MISSING)
        _instance = _Libpri()
    text, errors = _instance.dump(bytes(ie_contents))
    dump = parse_dump(text)
    dump.problems.extend(errors)
    return dump
