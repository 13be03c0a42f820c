"""CAPI 2.0 message codec: header, parameters, structs, and the sub-structures we use.

This module owns the byte layout of CAPI 2.0 messages (CAPI 2.0 Part I §5 and Part III
§2 for facility selector 3; digest: shared/docs/capi.md §4–§6 and §8). It is pure: no
I/O, no library, no clock. The parameter lists of every message are data
(``LAYOUTS``, ``SUPP_LAYOUTS``) that one small engine walks in both directions.

Decoding untrusted bytes raises only :class:`ccbs_isdn.errors.CapiMessageError` (with the
byte offset and what was expected). Encoding values that cannot be represented (a word
out of range, an unknown parameter name) is a programming error of the caller and raises
:class:`ccbs_isdn.errors.LocalError`.

Values: dword/word/byte/qword parameters are ``int``; struct parameters are ``bytes``
holding the struct *contents* (without the length octet(s)); an empty struct is ``b""``.
Nested structs (B protocol, Additional Info, the selector-3 parameter) have their own
small codecs below and are passed around as their encoded contents.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from ccbs_isdn.errors import CapiMessageError, LocalError

from .tables import (
    CIP_BEARER,
    FN_CCBS_CALL,
    FN_CCBS_DEACTIVATE,
    FN_CCBS_ERASE,
    FN_CCBS_ERASE_CALL_LINKAGE_ID,
    FN_CCBS_INFO_RETAIN,
    FN_CCBS_INTERROGATE,
    FN_CCBS_REMOTE_USER_FREE,
    FN_CCBS_REQUEST,
    FN_CCBS_STATUS,
    FN_CCBS_STOP_ALERTING,
    FN_CCNR_INFO_RETAIN,
    FN_CCNR_INTERROGATE,
    FN_CCNR_REQUEST,
    FN_GET_SUPPORTED,
    FN_LISTEN,
    Command,
    Subcommand,
)

Value = int | bytes
#: A parameter list: (name, type) with type one of b w d q s; a trailing "?" marks a
#: parameter that later CAPI revisions appended and older peers may omit.
Layout = tuple[tuple[str, str], ...]

HEADER: Final = struct.Struct("<HHBBH")
HEADER_LEN: Final = 8
_INT_SIZES: Final = {"b": 1, "w": 2, "d": 4, "q": 8}
_INT_FORMATS: Final = {"b": "<B", "w": "<H", "d": "<I", "q": "<Q"}

C, S = Command, Subcommand

# --------------------------------------------------------------------------- layouts
#: CAPI 2.0 Part I §5: the parameters of every message, in order. The first parameter is
#: always the address dword (Controller, PLCI or NCCI).
LAYOUTS: Final[dict[tuple[Command, Subcommand], Layout]] = {
    (C.ALERT, S.REQ): (("plci", "d"), ("additional_info", "s")),
    (C.ALERT, S.CONF): (("plci", "d"), ("info", "w")),
    (C.CONNECT, S.REQ): (
        ("controller", "d"), ("cip", "w"), ("called_number", "s"), ("calling_number", "s"),
        ("called_subaddress", "s"), ("calling_subaddress", "s"), ("b_protocol", "s"),
        ("bc", "s"), ("llc", "s"), ("hlc", "s"), ("additional_info", "s"),
    ),
    (C.CONNECT, S.CONF): (("plci", "d"), ("info", "w")),
    (C.CONNECT, S.IND): (
        ("plci", "d"), ("cip", "w"), ("called_number", "s"), ("calling_number", "s"),
        ("called_subaddress", "s"), ("calling_subaddress", "s"), ("bc", "s"), ("llc", "s"),
        ("hlc", "s"), ("additional_info", "s"), ("second_calling_number", "s?"),
    ),
    (C.CONNECT, S.RESP): (
        ("plci", "d"), ("reject", "w"), ("b_protocol", "s"), ("connected_number", "s"),
        ("connected_subaddress", "s"), ("llc", "s"), ("additional_info", "s"),
    ),
    (C.CONNECT_ACTIVE, S.IND): (
        ("plci", "d"), ("connected_number", "s"), ("connected_subaddress", "s"), ("llc", "s"),
    ),
    (C.CONNECT_ACTIVE, S.RESP): (("plci", "d"),),
    (C.DISCONNECT, S.REQ): (("plci", "d"), ("additional_info", "s")),
    (C.DISCONNECT, S.CONF): (("plci", "d"), ("info", "w")),
    (C.DISCONNECT, S.IND): (("plci", "d"), ("reason", "w")),
    (C.DISCONNECT, S.RESP): (("plci", "d"),),
    (C.LISTEN, S.REQ): (
        ("controller", "d"), ("info_mask", "d"), ("cip_mask", "d"), ("cip_mask2", "d"),
        ("calling_number", "s"), ("calling_subaddress", "s"),
    ),
    (C.LISTEN, S.CONF): (("controller", "d"), ("info", "w")),
    (C.INFO, S.REQ): (("address", "d"), ("called_number", "s"), ("additional_info", "s")),
    (C.INFO, S.CONF): (("address", "d"), ("info", "w")),
    (C.INFO, S.IND): (("address", "d"), ("info_number", "w"), ("info_element", "s")),
    (C.INFO, S.RESP): (("address", "d"),),
    (C.SELECT_B_PROTOCOL, S.REQ): (("plci", "d"), ("b_protocol", "s")),
    (C.SELECT_B_PROTOCOL, S.CONF): (("plci", "d"), ("info", "w")),
    (C.FACILITY, S.REQ): (("address", "d"), ("selector", "w"), ("parameter", "s")),
    (C.FACILITY, S.CONF): (
        ("address", "d"), ("info", "w"), ("selector", "w"), ("parameter", "s"),
    ),
    (C.FACILITY, S.IND): (("address", "d"), ("selector", "w"), ("parameter", "s")),
    (C.FACILITY, S.RESP): (("address", "d"), ("selector", "w"), ("parameter", "s")),
    (C.CONNECT_B3, S.REQ): (("plci", "d"), ("ncpi", "s")),
    (C.CONNECT_B3, S.CONF): (("ncci", "d"), ("info", "w")),
    (C.CONNECT_B3, S.IND): (("ncci", "d"), ("ncpi", "s")),
    (C.CONNECT_B3, S.RESP): (("ncci", "d"), ("reject", "w"), ("ncpi", "s")),
    (C.CONNECT_B3_ACTIVE, S.IND): (("ncci", "d"), ("ncpi", "s")),
    (C.CONNECT_B3_ACTIVE, S.RESP): (("ncci", "d"),),
    (C.CONNECT_B3_T90_ACTIVE, S.IND): (("ncci", "d"), ("ncpi", "s")),
    (C.CONNECT_B3_T90_ACTIVE, S.RESP): (("ncci", "d"),),
    (C.DISCONNECT_B3, S.REQ): (("ncci", "d"), ("ncpi", "s")),
    (C.DISCONNECT_B3, S.CONF): (("ncci", "d"), ("info", "w")),
    (C.DISCONNECT_B3, S.IND): (("ncci", "d"), ("reason_b3", "w"), ("ncpi", "s")),
    (C.DISCONNECT_B3, S.RESP): (("ncci", "d"),),
    (C.DATA_B3, S.REQ): (
        ("ncci", "d"), ("data", "d"), ("data_length", "w"), ("data_handle", "w"),
        ("flags", "w"), ("data64", "q?"),
    ),
    (C.DATA_B3, S.CONF): (("ncci", "d"), ("data_handle", "w"), ("info", "w")),
    (C.DATA_B3, S.IND): (
        ("ncci", "d"), ("data", "d"), ("data_length", "w"), ("data_handle", "w"),
        ("flags", "w"), ("data64", "q?"),
    ),
    (C.DATA_B3, S.RESP): (("ncci", "d"), ("data_handle", "w")),
    (C.RESET_B3, S.REQ): (("ncci", "d"), ("ncpi", "s")),
    (C.RESET_B3, S.CONF): (("ncci", "d"), ("info", "w")),
    (C.RESET_B3, S.IND): (("ncci", "d"), ("ncpi", "s")),
    (C.RESET_B3, S.RESP): (("ncci", "d"),),
    (C.MANUFACTURER, S.REQ): (
        ("controller", "d"), ("manu_id", "d"), ("class_", "d"), ("function", "d"),
        ("data", "s"),
    ),
    (C.MANUFACTURER, S.CONF): (
        ("controller", "d"), ("manu_id", "d"), ("class_", "d"), ("function", "d"),
        ("data", "s"),
    ),
    (C.MANUFACTURER, S.IND): (
        ("controller", "d"), ("manu_id", "d"), ("class_", "d"), ("function", "d"),
        ("data", "s"),
    ),
    (C.MANUFACTURER, S.RESP): (
        ("controller", "d"), ("manu_id", "d"), ("class_", "d"), ("function", "d"),
        ("data", "s"),
    ),
}

#: Sub-structures (CAPI 2.0 Part I §6: B protocol, Additional Info).
B_PROTOCOL_LAYOUT: Final[Layout] = (
    ("b1", "w"), ("b2", "w"), ("b3", "w"), ("b1_config", "s"), ("b2_config", "s"),
    ("b3_config", "s"), ("global_config", "s?"),
)
ADDITIONAL_INFO_LAYOUT: Final[Layout] = (
    ("b_channel_info", "s"), ("keypad", "s"), ("user_user", "s"), ("facility_array", "s"),
    ("sending_complete", "s"),
)

_CCBS_NOTIFY: Final[Layout] = (
    ("recall_mode", "w"), ("ccbs_reference", "w"), ("cip", "w"), ("bc", "s"), ("llc", "s"),
    ("hlc", "s"), ("called_number", "s"), ("called_subaddress", "s"), ("b_number", "s"),
    ("b_subaddress", "s"),
)
_REQUEST_RESULT: Final[Layout] = (
    ("reason", "w"), ("handle", "d"), ("recall_mode", "w"), ("ccbs_reference", "w"),
)
_INTERROGATE_REQ: Final[Layout] = (
    ("handle", "d"), ("ccbs_reference", "w"), ("party_number", "s"),
)
_INTERROGATE_RESULT: Final[Layout] = (
    ("reason", "w"), ("handle", "d"), ("recall_mode", "w"), ("instances", "s"),
)
_INFO_ONLY: Final[Layout] = (("info", "w"),)

#: Facility selector 3 (CAPI 2.0 Part III; capi.md §6.3/§6.4): the function-specific
#: struct per (function, subcommand). A CONF without an entry carries ``w Info``; a RESP
#: without an entry is empty.
SUPP_LAYOUTS: Final[dict[tuple[int, Subcommand], Layout]] = {
    (FN_GET_SUPPORTED, S.REQ): (),
    (FN_GET_SUPPORTED, S.CONF): (("info", "w"), ("supported", "d")),
    (FN_LISTEN, S.REQ): (("notification_mask", "d"),),
    (FN_CCBS_REQUEST, S.REQ): (("handle", "d"), ("call_linkage_id", "w")),
    (FN_CCNR_REQUEST, S.REQ): (("handle", "d"), ("call_linkage_id", "w")),
    (FN_CCBS_REQUEST, S.IND): _REQUEST_RESULT,
    (FN_CCNR_REQUEST, S.IND): _REQUEST_RESULT,
    (FN_CCBS_DEACTIVATE, S.REQ): (("handle", "d"), ("ccbs_reference", "w")),
    (FN_CCBS_DEACTIVATE, S.IND): (("reason", "w"), ("handle", "d")),
    (FN_CCBS_INTERROGATE, S.REQ): _INTERROGATE_REQ,
    (FN_CCNR_INTERROGATE, S.REQ): _INTERROGATE_REQ,
    (FN_CCBS_INTERROGATE, S.IND): _INTERROGATE_RESULT,
    (FN_CCNR_INTERROGATE, S.IND): _INTERROGATE_RESULT,
    (FN_CCBS_CALL, S.REQ): (
        ("ccbs_reference", "w"), ("cip", "w"), ("reserved", "w"), ("b_protocol", "s"),
        ("bc", "s"), ("llc", "s"), ("hlc", "s"), ("additional_info", "s"),
    ),
    (FN_CCBS_ERASE_CALL_LINKAGE_ID, S.IND): (
        ("call_linkage_id", "w"), ("called_number", "s"), ("called_subaddress", "s"),
    ),
    (FN_CCBS_STATUS, S.IND): (
        ("recall_mode", "w"), ("ccbs_reference", "w"), ("cip", "w"), ("bc", "s"),
        ("llc", "s"), ("hlc", "s"), ("called_number", "s"), ("called_subaddress", "s"),
    ),
    # chan_capi answers 1 = the local user is free, 0 = busy (capi.md §6.4).
    (FN_CCBS_STATUS, S.RESP): (("free", "w"),),
    (FN_CCBS_REMOTE_USER_FREE, S.IND): _CCBS_NOTIFY,
    (0x8010, S.IND): _CCBS_NOTIFY,
    (FN_CCBS_ERASE, S.IND): (
        ("recall_mode", "w"), ("ccbs_reference", "w"), ("erase_reason", "w"), ("cip", "w"),
        ("bc", "s"), ("llc", "s"), ("hlc", "s"), ("called_number", "s"),
        ("called_subaddress", "s"), ("b_number", "s"), ("b_subaddress", "s"),
    ),
    (FN_CCBS_STOP_ALERTING, S.IND): (("ccbs_reference", "w"),),
    (FN_CCBS_INFO_RETAIN, S.IND): (("call_linkage_id", "w"),),
    (FN_CCNR_INFO_RETAIN, S.IND): (("call_linkage_id", "w"),),
}

#: One instance of a CCBS interrogate result (inside the ``instances`` struct, each
#: instance a struct of its own). capi.md §11: the Diva layout is not verified; this is
#: the ccbs-isdn layout, shared by the driver and the simulated firmware.
INTERROGATE_INSTANCE_LAYOUT: Final[Layout] = (
    ("ccbs_reference", "w"), ("cip", "w"), ("bc", "s"), ("llc", "s"), ("hlc", "s"),
    ("b_number", "s"), ("b_subaddress", "s"), ("a_subaddress", "s"),
)


# ------------------------------------------------------------------------ the engine


def encode_struct(content: bytes) -> bytes:
    """Length octet + content; the 0xFF long form (FF, LE16 length) from 255 octets on."""
    n = len(content)
    if n < 255:
        return bytes((n,)) + content
    if n > 0xFFFF:
        raise LocalError(f"CAPI struct of {n} octets exceeds 65535")
    return b"\xff" + struct.pack("<H", n) + content


def _read_struct(data: bytes, offset: int, what: str) -> tuple[bytes, int]:
    if offset >= len(data):
        raise CapiMessageError(
            f"input ends at offset {offset}, expected the length of struct {what}",
            offset=offset,
        )
    n = data[offset]
    start = offset + 1
    if n == 0xFF:
        if start + 2 > len(data):
            raise CapiMessageError(
                f"input ends at offset {len(data)}, expected the 16-bit length of struct "
                f"{what} (0xFF form)",
                offset=offset,
            )
        (n,) = struct.unpack_from("<H", data, start)
        start += 2
    end = start + n
    if end > len(data):
        raise CapiMessageError(
            f"struct {what} at offset {offset} claims {n} octets, only "
            f"{len(data) - start} follow",
            offset=offset,
        )
    return data[start:end], end


def encode_fields(layout: Layout, values: Mapping[str, Value], where: str) -> bytes:
    """Encode *values* (missing ones as 0 / empty struct) in the order of *layout*."""
    names = {name for name, _ in layout}
    unknown = set(values) - names
    if unknown:
        raise LocalError(f"{where}: unknown parameter(s) {sorted(unknown)}")
    out = bytearray()
    for name, kind in layout:
        optional = kind.endswith("?")
        kind = kind.rstrip("?")
        if optional and name not in values:
            continue  # an omitted trailing parameter stays omitted on the wire
        value = values.get(name, b"" if kind == "s" else 0)
        if kind == "s":
            if not isinstance(value, bytes | bytearray):
                raise LocalError(f"{where}: struct parameter {name} must be bytes")
            out += encode_struct(bytes(value))
        else:
            if not isinstance(value, int) or isinstance(value, bool):
                raise LocalError(f"{where}: parameter {name} must be an int")
            size = _INT_SIZES[kind]
            if not 0 <= value < 1 << (8 * size):
                raise LocalError(f"{where}: parameter {name}={value} does not fit {size} octets")
            out += struct.pack(_INT_FORMATS[kind], value)
    return bytes(out)


def decode_fields(
    layout: Layout, data: bytes, offset: int, where: str, *, allow_trailing: bool
) -> tuple[dict[str, Value], int]:
    """Decode *layout* from data[offset:]; returns the values and the end offset."""
    values: dict[str, Value] = {}
    pos = offset
    for name, kind in layout:
        optional = kind.endswith("?")
        kind = kind.rstrip("?")
        if optional and pos == len(data):
            break
        if kind == "s":
            values[name], pos = _read_struct(data, pos, f"{where}.{name}")
            continue
        size = _INT_SIZES[kind]
        if pos + size > len(data):
            raise CapiMessageError(
                f"input ends at offset {len(data)}, expected {size}-octet {where}.{name} "
                f"at offset {pos}",
                offset=pos,
            )
        (values[name],) = struct.unpack_from(_INT_FORMATS[kind], data, pos)
        pos += size
    if pos != len(data) and not allow_trailing:
        raise CapiMessageError(
            f"{len(data) - pos} unexpected octet(s) after {where} at offset {pos}", offset=pos
        )
    return values, pos


# ----------------------------------------------------------------------- the message


@dataclass(frozen=True, slots=True)
class CapiMessage:
    """One CAPI message. ``params`` maps the parameter names of ``LAYOUTS`` to values;
    ``extra`` keeps octets a newer peer appended after the last known parameter."""

    command: Command
    subcommand: Subcommand
    number: int
    params: Mapping[str, Value] = field(default_factory=dict)
    appl_id: int = 0
    extra: bytes = b""

    @property
    def name(self) -> str:
        return f"{self.command.name}_{self.subcommand.name}"

    @property
    def address(self) -> int:
        """The first parameter: Controller, PLCI or NCCI."""
        layout = LAYOUTS[(self.command, self.subcommand)]
        return self.get_int(layout[0][0])

    @property
    def controller(self) -> int:
        return self.address & 0x7F

    def get_int(self, name: str) -> int:
        value = self.params.get(name, 0)
        if not isinstance(value, int):
            raise LocalError(f"{self.name}.{name} is a struct, not an integer")
        return value

    def get_struct(self, name: str) -> bytes:
        value = self.params.get(name, b"")
        if not isinstance(value, bytes):
            raise LocalError(f"{self.name}.{name} is an integer, not a struct")
        return value


def message(command: Command, subcommand: Subcommand, number: int, /, **params: Value
            ) -> CapiMessage:
    """Build a message, checking the parameter names against ``LAYOUTS``. The ApplID
    stays 0: the library puts in the right one (``dataclasses.replace`` sets another)."""
    layout = LAYOUTS.get((command, subcommand))
    if layout is None:
        raise LocalError(f"no such CAPI message {command.name}_{subcommand.name}")
    names = {n for n, _ in layout}
    unknown = set(params) - names
    if unknown:
        where = f"{command.name}_{subcommand.name}"
        raise LocalError(f"{where}: unknown parameter(s) {sorted(unknown)}")
    return CapiMessage(command, subcommand, number & 0xFFFF, dict(params))


def encode(msg: CapiMessage) -> bytes:
    layout = LAYOUTS.get((msg.command, msg.subcommand))
    if layout is None:
        raise LocalError(f"no such CAPI message {msg.name}")
    body = encode_fields(layout, msg.params, msg.name) + msg.extra
    total = HEADER_LEN + len(body)
    if total > 0xFFFF:
        raise LocalError(f"{msg.name} of {total} octets exceeds 65535")
    return HEADER.pack(total, msg.appl_id, msg.command, msg.subcommand, msg.number) + body


@dataclass(frozen=True, slots=True)
class Header:
    length: int
    appl_id: int
    command: int
    subcommand: int
    number: int


def decode_header(raw: bytes) -> Header:
    if len(raw) < HEADER_LEN:
        raise CapiMessageError(
            f"message of {len(raw)} octets, expected at least the 8-octet header",
            offset=len(raw),
        )
    return Header(*HEADER.unpack_from(raw))


def decode(raw: bytes) -> CapiMessage:
    """Decode one complete message (exactly the octets its length word names)."""
    raw = bytes(raw)
    head = decode_header(raw)
    if head.length != len(raw):
        raise CapiMessageError(
            f"length word says {head.length} octets, message has {len(raw)}", offset=0
        )
    try:
        command = Command(head.command)
    except ValueError:
        raise CapiMessageError(f"unknown CAPI command 0x{head.command:02X}", offset=4) from None
    try:
        subcommand = Subcommand(head.subcommand)
    except ValueError:
        raise CapiMessageError(
            f"unknown CAPI subcommand 0x{head.subcommand:02X}", offset=5
        ) from None
    layout = LAYOUTS.get((command, subcommand))
    if layout is None:
        raise CapiMessageError(f"no message {command.name}_{subcommand.name} in CAPI 2.0", offset=4)
    params, end = decode_fields(
        layout, raw, HEADER_LEN, f"{command.name}_{subcommand.name}", allow_trailing=True
    )
    return CapiMessage(command, subcommand, head.number, params, head.appl_id, raw[end:])


# ------------------------------------------------------------------- sub-structures


@dataclass(frozen=True, slots=True)
class BProtocol:
    """B protocol struct. Voice as chan_capi sends it: B1 1 (64k transparent), B2 1
    (transparent), B3 0 (transparent), configs empty (capi.md §5.1)."""

    b1: int = 1
    b2: int = 1
    b3: int = 0
    b1_config: bytes = b""
    b2_config: bytes = b""
    b3_config: bytes = b""
    global_config: bytes | None = None

    def encode(self) -> bytes:
        values: dict[str, Value] = {
            "b1": self.b1, "b2": self.b2, "b3": self.b3, "b1_config": self.b1_config,
            "b2_config": self.b2_config, "b3_config": self.b3_config,
        }
        if self.global_config is not None:
            values["global_config"] = self.global_config
        return encode_fields(B_PROTOCOL_LAYOUT, values, "B protocol")

    @classmethod
    def decode(cls, content: bytes) -> BProtocol:
        if not content:
            return cls(0, 0, 0)  # empty struct = the defaults B1 0, B2 0, B3 0
        v, _ = decode_fields(B_PROTOCOL_LAYOUT, content, 0, "B protocol", allow_trailing=True)
        gc = v.get("global_config")
        return cls(
            _i(v["b1"]), _i(v["b2"]), _i(v["b3"]), _b(v["b1_config"]), _b(v["b2_config"]),
            _b(v["b3_config"]), gc if isinstance(gc, bytes) else None,
        )


VOICE: Final = BProtocol()


@dataclass(frozen=True, slots=True)
class AdditionalInfo:
    """Additional Info struct (CAPI 2.0 Part I): all members are struct contents.
    ``facility_array`` holds complete Q.931 IEs (``1C len contents``, §8 of capi.md)."""

    b_channel_info: bytes = b""
    keypad: bytes = b""
    user_user: bytes = b""
    facility_array: bytes = b""
    sending_complete: bytes = b""

    def encode(self) -> bytes:
        """The struct contents; all members empty = the empty struct."""
        if not any((self.b_channel_info, self.keypad, self.user_user, self.facility_array,
                    self.sending_complete)):
            return b""
        return encode_fields(
            ADDITIONAL_INFO_LAYOUT,
            {"b_channel_info": self.b_channel_info, "keypad": self.keypad,
             "user_user": self.user_user, "facility_array": self.facility_array,
             "sending_complete": self.sending_complete},
            "Additional Info",
        )

    @classmethod
    def decode(cls, content: bytes) -> AdditionalInfo:
        if not content:
            return cls()
        v, _ = decode_fields(
            ADDITIONAL_INFO_LAYOUT, content, 0, "Additional Info", allow_trailing=True
        )
        return cls(*(_b(v[name]) for name, _ in ADDITIONAL_INFO_LAYOUT))

    @property
    def b_channel_mode(self) -> int | None:
        """The B channel information word (0 B, 1 D, 2 neither), None when absent."""
        if len(self.b_channel_info) >= 2:
            mode: int = struct.unpack_from("<H", self.b_channel_info)[0]
            return mode
        return None


def b_channel_info(mode: int) -> bytes:
    return struct.pack("<H", mode)


# ----------------------------------------------------------------- Q.931 IE helpers

IE_CAUSE: Final = 0x08
IE_FACILITY: Final = 0x1C
IE_BC: Final = 0x04
IE_LLC: Final = 0x7C
IE_HLC: Final = 0x7D


def parse_ies(data: bytes, what: str = "IE list") -> list[tuple[int, bytes]]:
    """Split concatenated Q.931 IEs (Q.931 §4.5.1): single-octet IEs (bit 8 set) have no
    length; the others are id, length, contents. Returns (id, contents) pairs."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        ie = data[pos]
        if ie & 0x80:
            out.append((ie, b""))
            pos += 1
            continue
        if pos + 1 >= len(data):
            raise CapiMessageError(
                f"{what}: IE 0x{ie:02X} at offset {pos} has no length octet", offset=pos
            )
        n = data[pos + 1]
        end = pos + 2 + n
        if end > len(data):
            raise CapiMessageError(
                f"{what}: IE 0x{ie:02X} at offset {pos} claims {n} octets, only "
                f"{len(data) - pos - 2} follow",
                offset=pos,
            )
        out.append((ie, data[pos + 2:end]))
        pos = end
    return out


def build_ie(ie: int, contents: bytes) -> bytes:
    if len(contents) > 255:
        raise LocalError(f"Q.931 IE 0x{ie:02X} of {len(contents)} octets exceeds 255")
    return bytes((ie, len(contents))) + contents


def facility_array(facilities: Iterable[bytes], *, cause: int | None = None) -> bytes:
    """A Facility data array: a Cause IE first when given (Q.931 IE order), then one
    Facility IE per *facilities* entry (IE contents, profile octet onwards)."""
    out = bytearray()
    if cause is not None:
        out += build_ie(IE_CAUSE, cause_contents(cause))
    for contents in facilities:
        out += build_ie(IE_FACILITY, contents)
    return bytes(out)


def facilities_in_array(array: bytes) -> tuple[bytes, ...]:
    """The contents of every Facility IE in a Facility data array."""
    return tuple(c for ie, c in parse_ies(array, "Facility data array") if ie == IE_FACILITY)


def cause_in_array(array: bytes) -> int | None:
    for ie, contents in parse_ies(array, "Facility data array"):
        if ie == IE_CAUSE:
            return decode_cause(contents)
    return None


def cause_contents(cause: int, location: int = 0) -> bytes:
    """Cause IE contents, ITU-T coding standard (Q.931 §4.5.12): ext|location, ext|cause."""
    return bytes((0x80 | (location & 0x0F), 0x80 | (cause & 0x7F)))


def decode_cause(contents: bytes) -> int:
    """Q.850 cause value of Cause IE contents (octet 3a, when present, is skipped)."""
    if not contents:
        raise CapiMessageError("empty Cause IE, expected octet 3", offset=0)
    pos = 1 if contents[0] & 0x80 else 2
    if pos >= len(contents):
        raise CapiMessageError(
            f"Cause IE of {len(contents)} octets ends before the cause value", offset=pos
        )
    return contents[pos] & 0x7F


def called_number(digits: str, type_plan: int = 0x81) -> bytes:
    """Called party number struct contents: type of number/numbering plan (0x81 =
    unknown, ISDN/telephony plan), then IA5 digits (CAPI 2.0 Part I)."""
    if not digits:
        return b""
    return bytes((type_plan | 0x80,)) + digits.encode("ascii")


def calling_number(digits: str, type_plan: int = 0x01, presentation: int = 0x80) -> bytes:
    """Calling/connected party number contents: type/plan with the extension bit clear,
    presentation/screening (0x80 allowed, user-provided not screened), then digits."""
    if not digits:
        return b""
    return bytes((type_plan & 0x7F, presentation | 0x80)) + digits.encode("ascii")


def number_digits(contents: bytes) -> str:
    """Digits of a called/calling/connected number struct (octet 3a skipped if present)."""
    if not contents:
        return ""
    pos = 1 if contents[0] & 0x80 else 2
    return contents[pos:].decode("latin-1")


# ------------------------------------------------------------------ bearer helpers


def split_bearer(bearer: bytes) -> tuple[bytes, bytes, bytes]:
    """(BC, LLC, HLC) *contents* from complete IEs as isdn.py carries them."""
    bc = llc = hlc = b""
    for ie, contents in parse_ies(bearer, "bearer"):
        if ie == IE_BC and not bc:
            bc = contents
        elif ie == IE_LLC and not llc:
            llc = contents
        elif ie == IE_HLC and not hlc:
            hlc = contents
    return bc, llc, hlc


def join_bearer(bc: bytes, llc: bytes = b"", hlc: bytes = b"") -> bytes:
    """Complete IEs in Q.931 order (BC 0x04, LLC 0x7C, HLC 0x7D)."""
    out = bytearray()
    for ie, contents in ((IE_BC, bc), (IE_LLC, llc), (IE_HLC, hlc)):
        if contents:
            out += build_ie(ie, contents)
    return bytes(out)


def cip_for_bearer(bc: bytes, hlc: bytes = b"") -> int:
    """The CIP value matching BC/HLC contents (0 = no predefined profile). Only the
    information transfer capability and rate octets of the BC are compared: the layer-1
    octet differs between A-law and µ-law variants of the same service."""
    with_hlc = [c for c, (_, h) in CIP_BEARER.items() if h]
    without_hlc = [c for c, (_, h) in CIP_BEARER.items() if not h]
    for cip in with_hlc:
        want_bc, want_hlc = CIP_BEARER[cip]
        if bc[:2] == want_bc[:2] and hlc == want_hlc:
            return cip
    for cip in without_hlc:
        if bc[:2] == CIP_BEARER[cip][0][:2]:
            return cip
    return 0


def bearer_for_cip(cip: int) -> bytes:
    """Complete BC (and HLC) IEs a CIP value implies; empty for unknown values."""
    if cip not in CIP_BEARER:
        return b""
    bc, hlc = CIP_BEARER[cip]
    return join_bearer(bc, b"", hlc)


# ----------------------------------------------------- facility selector 3 parameter


@dataclass(frozen=True, slots=True)
class SuppParam:
    """The selector-3 parameter: ``struct { w Function; struct { fields } }``.
    ``fields`` follow ``SUPP_LAYOUTS[(function, subcommand)]``; for a function/direction
    without a layout they are empty and ``raw`` keeps the inner struct's contents."""

    function: int
    fields: Mapping[str, Value] = field(default_factory=dict)
    raw: bytes = b""

    def get_int(self, name: str) -> int:
        return _i(self.fields.get(name, 0))

    def get_struct(self, name: str) -> bytes:
        return _b(self.fields.get(name, b""))


def _supp_layout(function: int, sub: Subcommand) -> Layout | None:
    layout = SUPP_LAYOUTS.get((function, sub))
    if layout is None and sub is Subcommand.CONF:
        return _INFO_ONLY
    return layout


def encode_supp(sub: Subcommand, param: SuppParam) -> bytes:
    """Contents of the Facility parameter struct for selector 3."""
    if not 0 <= param.function <= 0xFFFF:
        raise LocalError(f"supplementary function {param.function} out of range")
    layout = _supp_layout(param.function, sub)
    # An empty RESP is meaningful: for 0x800E it says "this terminal does not answer"
    # (EN 300 359-1: never answer a CCBSStatusRequest for a reference not held), so it
    # must not be filled with the layout's defaults (free = 0 would answer "busy").
    if layout is None or (not param.fields and (param.raw or sub is Subcommand.RESP)):
        inner = param.raw
    else:
        inner = encode_fields(layout, param.fields, f"function 0x{param.function:04X}")
    return struct.pack("<H", param.function) + encode_struct(inner)


def decode_supp(sub: Subcommand, content: bytes) -> SuppParam:
    """Decode the selector-3 parameter of a message with subcommand *sub*."""
    if len(content) < 2:
        raise CapiMessageError(
            f"supplementary service parameter of {len(content)} octets, expected the "
            "function word",
            offset=0,
        )
    (function,) = struct.unpack_from("<H", content)
    if len(content) == 2:
        inner = b""  # chan_capi sends a bare function word in some RESPs
    else:
        inner, _ = _read_struct(content, 2, f"function 0x{function:04X}")
    layout = _supp_layout(function, sub)
    if layout is None:
        return SuppParam(function, {}, inner)
    if not inner and sub is Subcommand.RESP:
        return SuppParam(function, {}, b"")  # an empty RESP is always acceptable
    fields, _ = decode_fields(layout, inner, 0, f"function 0x{function:04X}", allow_trailing=True)
    return SuppParam(function, fields, inner)


def encode_interrogate_instances(instances: Iterable[Mapping[str, Value]]) -> bytes:
    return b"".join(
        encode_struct(encode_fields(INTERROGATE_INSTANCE_LAYOUT, inst, "instance"))
        for inst in instances
    )


def decode_interrogate_instances(data: bytes) -> list[dict[str, Value]]:
    out: list[dict[str, Value]] = []
    pos = 0
    while pos < len(data):
        content, pos = _read_struct(data, pos, "interrogate instance")
        values, _ = decode_fields(
            INTERROGATE_INSTANCE_LAYOUT, content, 0, "interrogate instance", allow_trailing=True
        )
        out.append(values)
    return out


# ------------------------------------------------------------------------ internals


def _i(value: Value | None) -> int:
    return value if isinstance(value, int) else 0


def _b(value: Value | None) -> bytes:
    return value if isinstance(value, bytes) else b""
