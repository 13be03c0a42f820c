"""Facility information element framing (Q.932 §8.2.3, digest §2.1).

This module owns the octets around the ROSE components:

    octet 1    0x1C            Facility IE identifier (codeset 0)
    octet 2    L               length of the contents (0..255)
    octet 3    profile         0x91 ROSE (ETSI DSS1), 0x9F networking extensions (Q.932)
    octet 3a   (optional)      present when the extension bit of octet 3 is 0
    ...        header          optional NetworkFacilityExtension [10], NetworkProtocolProfile
                               [18], InterpretationAPDU [11] — skipped on receive
    ...        components      one or more ROSE components (codec.py)

``*_contents`` functions work on the contents (profile octet onwards, as CAPI's
INFO_IND for info number 0x001C delivers them); ``*_ie`` functions include 0x1C and L.
Octet 3a and the header elements are kept verbatim in :attr:`Facility.header`, so a
decoded IE re-encodes to the same bytes. ETSI mode sends 0x91 with no header.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ccbs_isdn.errors import FacilityError
from ccbs_isdn.rose.ber import describe_tag, encode_error, fail, json_error, read_tlv
from ccbs_isdn.rose.codec import (
    Component,
    component_from_json,
    component_to_json,
    decode_component,
    encode_component,
)

FACILITY_IE = 0x1C
PROFILE_ROSE = 0x91  # ext bit + 10001 "remote operations protocol"
PROFILE_NETWORKING_EXTENSIONS = 0x9F  # ext bit + 11111 (Q.932 networking extensions)
PROFILE_NAMES = {PROFILE_ROSE: "rose", PROFILE_NETWORKING_EXTENSIONS: "networkingExtensions"}
_PROFILE_BY_NAME = {name: value for value, name in PROFILE_NAMES.items()}
_PROFILE_KINDS = (0x11, 0x1F)  # low five bits libpri accepts

# Q.932 networking-extension header elements that may precede the first component:
# NetworkFacilityExtension [10] (AA), NetworkProtocolProfile [18] (92),
# InterpretationAPDU [11] (8B).
HEADER_TAGS = (0xAA, 0x92, 0x8B)

MAX_CONTENTS = 255  # the Facility IE length is one octet


@dataclass(frozen=True, slots=True)
class Facility:
    """The contents of one Facility IE.

    ``profile`` is the raw protocol-profile octet; ``header`` holds octet 3a and any
    networking-extension header elements verbatim (empty in ETSI mode).
    """

    components: tuple[Component, ...]
    profile: int = PROFILE_ROSE
    header: bytes = b""

    def to_json(self) -> dict[str, Any]:
        """The ``ccbsctl facility`` JSON form (for logs and trace files)."""
        return facility_to_json(self)


def encode_contents(facility: Facility) -> bytes:
    """Profile octet onwards (what CAPI carries as the Facility IE contents)."""
    profile = facility.profile
    if (
        not isinstance(profile, int)
        or not 0 <= profile <= 0xFF
        or profile & 0x1F not in _PROFILE_KINDS
    ):
        raise encode_error("profile", f"{profile!r} is not 0x91 or 0x9F")
    if not facility.components:
        raise encode_error("facility", "a Facility IE carries at least one component")
    out = bytes((profile,)) + bytes(facility.header)
    try:
        header_end = _skip_header(out, 0, len(out))
    except FacilityError:
        header_end = -1
    if header_end != len(out):
        raise encode_error(
            "header",
            "must be octet 3a (profile without ext bit) and NetworkFacilityExtension / "
            "NetworkProtocolProfile / InterpretationAPDU elements only",
        )
    out += b"".join(encode_component(c) for c in facility.components)
    if len(out) > MAX_CONTENTS:
        raise encode_error("facility", f"{len(out)} octets, a Facility IE holds at most 255")
    return out


def encode_ie(facility: Facility) -> bytes:
    """The complete IE: ``1C L`` + contents."""
    contents = encode_contents(facility)
    return bytes((FACILITY_IE, len(contents))) + contents


def _skip_header(data: bytes, start: int, end: int) -> int:
    """Check the profile octet at ``start``; return the position of the first component."""
    if start >= end:
        raise fail(start, "expected the protocol profile octet (91 or 9F), found the end")
    profile = data[start]
    if profile & 0x1F not in _PROFILE_KINDS:
        raise fail(
            start,
            f"expected protocol profile 91 (ROSE) or 9F (networking extensions), "
            f"found {profile:02X}",
            None,
        )
    pos = start + 1
    if not profile & 0x80:
        pos += 1  # octet 3a (libpri: DMS-100 service indicator), ignored
        if pos > end:
            raise fail(end, "expected octet 3a after a profile octet with ext bit 0")
    while pos < end and data[pos] in HEADER_TAGS:
        pos = read_tlv(data, pos, end)[3]
    return pos


def _decode(data: bytes, start: int) -> Facility:
    end = len(data)
    pos = _skip_header(data, start, end)
    header = data[start + 1 : pos]
    if pos >= end:
        raise fail(pos, "expected a ROSE component (tag A1..A4), found the end")
    components = []
    while pos < end:
        component, pos = decode_component(data, pos, end)
        components.append(component)
    return Facility(tuple(components), data[start], header)


def decode_contents(data: bytes | bytearray | memoryview) -> Facility:
    """Decode IE contents (profile octet onwards). Offsets in errors count from it."""
    return _decode(bytes(data), 0)


def decode_each(
    data: bytes | bytearray | memoryview, *, ie: bool = False
) -> tuple[Facility, tuple[FacilityError, ...]]:
    """Decode component by component: a component that fails to decode does not take the
    others in the same IE down (digest §7: act on what is addressed to you, reject only
    that). Returns the good components and, in order, the error of each bad one (with
    its reject problem and invoke id). Framing damage — bad profile or header, a
    component whose length runs past the end — still raises, as nothing after it can be
    trusted. ``ie=True``: ``data`` starts with ``1C L``.
    """
    raw = bytes(data)
    if ie:
        _check_ie_frame(raw)
        start = 2
    else:
        start = 0
    end = len(raw)
    pos = _skip_header(raw, start, end)
    header = raw[start + 1 : pos]
    if pos >= end:
        raise fail(pos, "expected a ROSE component (tag A1..A4), found the end")
    components = []
    errors = []
    while pos < end:
        nxt = read_tlv(raw, pos, end)[3]  # the frame of this component must be sound
        try:
            component, _ = decode_component(raw, pos, nxt)
        except FacilityError as exc:
            errors.append(exc)
        else:
            components.append(component)
        pos = nxt
    return Facility(tuple(components), raw[start], header), tuple(errors)


def _check_ie_frame(raw: bytes) -> None:
    if len(raw) < 2:
        raise fail(len(raw), "expected 1C and a length octet, found the end")
    if raw[0] != FACILITY_IE:
        raise fail(0, f"expected the Facility IE identifier 1C, found {describe_tag(raw[0])}", None)
    length = raw[1]
    if len(raw) < 2 + length:
        raise fail(len(raw), f"IE length says {length} octets, only {len(raw) - 2} present")
    if len(raw) > 2 + length:
        raise fail(2 + length, f"{len(raw) - 2 - length} octets of garbage after the IE")


def decode_ie(data: bytes | bytearray | memoryview) -> Facility:
    """Decode a complete Facility IE (``1C L ...``); the length must match exactly.
    Offsets in errors count from the 0x1C octet."""
    raw = bytes(data)
    _check_ie_frame(raw)
    return _decode(raw, 2)


# --------------------------------------------------------------------------------- JSON


def facility_to_json(facility: Facility) -> dict[str, Any]:
    """``{"profile": "rose", "components": [...]}`` (+ ``"header": hex`` when present)."""
    out: dict[str, Any] = {"profile": PROFILE_NAMES.get(facility.profile, facility.profile)}
    if facility.header:
        out["header"] = facility.header.hex().upper()
    out["components"] = [component_to_json(c) for c in facility.components]
    return out


def facility_from_json(obj: Any) -> Facility:
    """Inverse of :func:`facility_to_json`; FacilityError names the bad JSON path."""
    if not isinstance(obj, dict):
        raise json_error("$", f"expected an object, got {obj!r}")
    extra = set(obj) - {"profile", "header", "components"}
    if extra:
        raise json_error("$", f"unknown key(s) {', '.join(sorted(extra))}")
    raw_profile = obj.get("profile", "rose")
    profile = _PROFILE_BY_NAME.get(raw_profile) if isinstance(raw_profile, str) else raw_profile
    if not isinstance(profile, int) or isinstance(profile, bool) or not 0 <= profile <= 0xFF:
        raise json_error(
            "$.profile", f'expected "rose" or "networkingExtensions", got {raw_profile!r}'
        )
    header = b""
    if obj.get("header"):
        try:
            header = bytes.fromhex(obj["header"])
        except (ValueError, TypeError):
            raise json_error("$.header", f"expected hex, got {obj['header']!r}") from None
    components = obj.get("components")
    if not isinstance(components, list) or not components:
        raise json_error("$.components", "expected a non-empty list of components")
    return Facility(
        tuple(component_from_json(c, f"$.components[{i}]") for i, c in enumerate(components)),
        profile,
        header,
    )


def decode_any(data: bytes) -> Facility:
    """Decode either a complete IE (starting with 1C) or bare contents: a profile octet
    is never 1C, so the first octet tells them apart."""
    if data[:1] == bytes((FACILITY_IE,)):
        return decode_ie(data)
    return decode_contents(data)


__all__ = [
    "FACILITY_IE",
    "PROFILE_ROSE",
    "PROFILE_NETWORKING_EXTENSIONS",
    "Facility",
    "FacilityError",
    "encode_ie",
    "decode_ie",
    "encode_contents",
    "decode_contents",
    "decode_each",
    "decode_any",
    "facility_to_json",
    "facility_from_json",
]
