"""BER (X.690) building blocks of the Facility codec: TLV reading/writing and schema nodes.

This module owns the byte-level rules: minimal definite lengths and BOOLEAN TRUE as ``01``
on encode (what libpri and mISDNuser emit, EN 300 359-1 vectors), and the tolerant decode
of the digest's §7 (short, long and indefinite lengths; any non-zero BOOLEAN octet; unknown
elements inside a SEQUENCE are skipped; SEQUENCE members matched by tag, not position).
It is strict where it matters: truncation, lengths running past their container, wrong
tags, out-of-range values and bad characters raise :class:`~ccbs_isdn.errors.FacilityError`
naming the offset and what was expected. Nothing else may escape a decode.

A *node* knows one ASN.1 type: ``encode(value) -> TLV bytes``,
``decode(data, tag, start, end) -> value`` (the caller has read the tag and length; the
content is ``data[start:end]``), and the JSON form (X.697 JER shape: SEQUENCE → object
keyed by ASN.1 identifiers, CHOICE → ``{"alternative": value}``, ENUMERATED → identifier,
OCTET STRING → upper-case hex). ``schema.py`` builds the node tree of ``etsi_ccbs.asn``.

Pure: no I/O, no clock, no asyncio.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ccbs_isdn.errors import FacilityError

# Reject problem used for anything wrong at the BER level (X.880 generalProblem).
BADLY_STRUCTURED = ("general", 2)

MAX_DEPTH = 24  # nesting guard for indefinite-length scanning of hostile input

TAG_NAMES = {
    0x00: "end-of-contents",
    0x01: "BOOLEAN",
    0x02: "INTEGER",
    0x04: "OCTET STRING",
    0x05: "NULL",
    0x06: "OBJECT IDENTIFIER",
    0x0A: "ENUMERATED",
    0x12: "NumericString",
    0x30: "SEQUENCE",
    0x40: "[APPLICATION 0]",
}


def describe_tag(tag: int) -> str:
    """``30 (SEQUENCE)``, ``A1 ([1] constructed)``, ``80 ([0])``."""
    if tag > 0xFF:
        return f"high-number tag {tag & 0xFFFF} (class {(tag >> 22) & 3})"
    name = TAG_NAMES.get(tag)
    if name is None:
        cls = tag >> 6
        number = tag & 0x1F
        prefix = ("UNIVERSAL ", "APPLICATION ", "", "PRIVATE ")[cls]
        name = f"[{prefix}{number}]" + (" constructed" if tag & 0x20 else "")
    return f"{tag:02X} ({name})"


def fail(
    offset: int, text: str, problem: tuple[str, int] | None = BADLY_STRUCTURED
) -> FacilityError:
    """Build the one error type of the codec; the message always starts with the offset."""
    return FacilityError(f"offset {offset}: {text}", offset=offset, problem=problem)


# ------------------------------------------------------------------------------- reading


def read_tlv(data: bytes, pos: int, end: int, depth: int = 0) -> tuple[int, int, int, int]:
    """Read one TLV at ``pos`` within ``data[:end]``.

    Returns ``(tag, content_start, content_end, next_pos)``. ``tag`` is the identifier
    octet for low tag numbers; high-tag-number identifiers (never used by these schemas)
    come back as an int above 0xFF so that they match nothing and can be skipped.
    Indefinite lengths (X.690 §8.1.3.6) are resolved here: ``content_end`` is the
    position of the end-of-contents octets and ``next_pos`` lies behind them.
    """
    if pos >= end:
        raise fail(pos, "expected a tag, found the end of the data")
    start = pos
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        number = 0
        for _ in range(4):
            if pos >= end:
                raise fail(pos, "truncated high-number tag")
            octet = data[pos]
            pos += 1
            number = (number << 7) | (octet & 0x7F)
            if not octet & 0x80:
                break
        else:
            raise fail(start, "high-number tag longer than 4 octets")
        tag = (tag & 0xE0) << 16 | 0x1000000 | number
    if pos >= end:
        raise fail(pos, f"expected the length of {describe_tag(tag)}, found the end of the data")
    first = data[pos]
    pos += 1
    if first < 0x80:
        length = first
    elif first == 0x80:
        if not (tag & 0x20 or tag & 0x200000):
            raise fail(pos - 1, f"indefinite length on primitive element {describe_tag(tag)}")
        if depth >= MAX_DEPTH:
            raise fail(start, "elements nested too deeply")
        scan = pos
        while True:
            if scan + 1 < end and data[scan] == 0 and data[scan + 1] == 0:
                return tag, pos, scan, scan + 2
            if scan >= end:
                raise fail(scan, f"expected end-of-contents 00 00 closing {describe_tag(tag)}")
            scan = read_tlv(data, scan, end, depth + 1)[3]
    else:
        count = first & 0x7F
        if count > 3:
            raise fail(pos - 1, f"length of {describe_tag(tag)} uses {count} octets (at most 3)")
        if pos + count > end:
            raise fail(pos, f"truncated length of {describe_tag(tag)}")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        raise fail(
            start,
            f"{describe_tag(tag)} needs {length} content octets, only {end - pos} left",
        )
    return tag, pos, pos + length, pos + length


# ------------------------------------------------------------------------------- writing


def tlv(tag: int, content: bytes) -> bytes:
    """One element with the minimal definite length (X.690 §10.1 / DER)."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    if n < 0x100:
        return bytes((tag, 0x81, n)) + content
    return bytes((tag, 0x82, n >> 8, n & 0xFF)) + content


def int_content(value: int) -> bytes:
    """Minimal two's complement octets of an INTEGER (X.690 §8.3.2): 130 → ``00 82``."""
    return value.to_bytes((value + (value < 0)).bit_length() // 8 + 1, "big", signed=True)


def encode_error(path: str, text: str) -> FacilityError:
    """A value given to the encoder is not valid for its ASN.1 type (nothing to answer)."""
    return FacilityError(f"cannot encode {path}: {text}", problem=None)


def json_error(path: str, text: str) -> FacilityError:
    return FacilityError(f"{path}: {text}", problem=None)


# --------------------------------------------------------------------------------- nodes


class Node:
    """One ASN.1 type. ``tags``: identifier octets an element of this type may carry."""

    tags: tuple[int, ...] = ()
    expect: str = ""

    def encode(self, value: Any, path: str = "") -> bytes:
        raise TypeError(type(self).__name__)

    def decode(self, data: bytes, tag: int, start: int, end: int) -> Any:
        raise TypeError(type(self).__name__)

    def to_json(self, value: Any) -> Any:
        raise TypeError(type(self).__name__)

    def from_json(self, value: Any, path: str) -> Any:
        raise TypeError(type(self).__name__)


def _int_from_content(data: bytes, start: int, end: int, what: str) -> int:
    n = end - start
    if n == 0:
        raise fail(start, f"{what}: empty INTEGER")
    if n > 4:
        raise fail(start, f"{what}: INTEGER of {n} octets (at most 4 accepted)")
    return int.from_bytes(data[start:end], "big", signed=True)


class Int(Node):
    """INTEGER, optionally bounded. ``mask7``: CallLinkageID/CCBSReference are 7-bit and
    libpri masks received values with 0x7F (digest §7); the encoder still checks 0..127."""

    def __init__(
        self,
        what: str,
        tag: int = 0x02,
        lo: int = -(2**31),
        hi: int = 2**31 - 1,
        mask7: bool = False,
    ) -> None:
        self.what = what
        self.tags = (tag,)
        self.tag = tag
        self.lo = lo
        self.hi = hi
        self.mask7 = mask7
        self.expect = f"INTEGER {what} (tag {tag:02X})"

    def encode(self, value: Any, path: str = "") -> bytes:
        if not isinstance(value, int) or isinstance(value, bool):
            raise encode_error(path or self.what, f"expected an int, got {value!r}")
        if not self.lo <= value <= self.hi:
            raise encode_error(path or self.what, f"{value} is outside {self.lo}..{self.hi}")
        return tlv(self.tag, int_content(value))

    def decode(self, data: bytes, tag: int, start: int, end: int) -> int:
        value = _int_from_content(data, start, end, self.what)
        if self.mask7:
            return value & 0x7F
        if not self.lo <= value <= self.hi:
            raise fail(start, f"{self.what}: {value} is outside {self.lo}..{self.hi}")
        return value

    def to_json(self, value: Any) -> Any:
        return int(value)

    def from_json(self, value: Any, path: str) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            raise json_error(path, f"expected an integer, got {value!r}")
        if not self.lo <= value <= self.hi:
            raise json_error(path, f"{value} is outside {self.lo}..{self.hi}")
        return value


class Enum(Node):
    """ENUMERATED (tag 0A unless implicitly tagged) bound to an ``Asn1Enum`` class."""

    def __init__(self, what: str, cls: Any, tag: int = 0x0A) -> None:
        self.what = what
        self.cls = cls
        self.tags = (tag,)
        self.tag = tag
        self.by_value: dict[int, Any] = {int(m): m for m in cls}
        self.by_name: dict[str, Any] = {m.asn1_name: m for m in cls}
        self.choices = ", ".join(f"{m.asn1_name}({int(m)})" for m in cls)
        self.encoded: dict[Any, bytes] = {m: tlv(tag, int_content(int(m))) for m in cls}
        self.expect = f"ENUMERATED {what} (tag {tag:02X})"

    def encode(self, value: Any, path: str = "") -> bytes:
        try:
            if isinstance(value, bool):
                raise TypeError(value)
            return self.encoded[value]
        except (KeyError, TypeError):
            raise encode_error(
                path or self.what, f"{value!r} is not one of {self.choices}"
            ) from None

    def decode(self, data: bytes, tag: int, start: int, end: int) -> Any:
        value = _int_from_content(data, start, end, self.what)
        member = self.by_value.get(value)
        if member is None:
            raise fail(start, f"{self.what}: {value} is not one of {self.choices}")
        return member

    def to_json(self, value: Any) -> Any:
        return value.asn1_name

    def from_json(self, value: Any, path: str) -> Any:
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            if value in self.by_value:
                return self.by_value[value]
        elif isinstance(value, str):
            # accept "nationalNumber" and the vectors' "nationalNumber(2)" spelling
            name = value.split("(", 1)[0].strip()
            member = self.by_name.get(name)
            if member is not None and (name == value or value == f"{name}({int(member)})"):
                return member
        raise json_error(path, f"expected one of {self.choices}, got {value!r}")


class Bool(Node):
    """BOOLEAN: TRUE is sent as ``01`` like libpri (not DER's ``FF``); any non-zero octet
    is accepted as TRUE (X.690 §8.2.2)."""

    def __init__(self, what: str, tag: int = 0x01) -> None:
        self.what = what
        self.tags = (tag,)
        self.true = bytes((tag, 1, 1))
        self.false = bytes((tag, 1, 0))
        self.expect = f"BOOLEAN {what} (tag {tag:02X})"

    def encode(self, value: Any, path: str = "") -> bytes:
        if value is True:
            return self.true
        if value is False:
            return self.false
        raise encode_error(path or self.what, f"expected a bool, got {value!r}")

    def decode(self, data: bytes, tag: int, start: int, end: int) -> bool:
        if end - start != 1:
            raise fail(start, f"{self.what}: BOOLEAN of {end - start} octets (expected 1)")
        return data[start] != 0

    def to_json(self, value: Any) -> Any:
        return bool(value)

    def from_json(self, value: Any, path: str) -> Any:
        if not isinstance(value, bool):
            raise json_error(path, f"expected true or false, got {value!r}")
        return value


class Null(Node):
    def __init__(self, what: str, tag: int = 0x05) -> None:
        self.what = what
        self.tags = (tag,)
        self.encoded = bytes((tag, 0))
        self.expect = f"NULL {what} (tag {tag:02X})"

    def encode(self, value: Any, path: str = "") -> bytes:
        return self.encoded

    def decode(self, data: bytes, tag: int, start: int, end: int) -> None:
        if end != start:
            raise fail(start, f"{self.what}: NULL with {end - start} content octets")
        return None

    def to_json(self, value: Any) -> Any:
        return None

    def from_json(self, value: Any, path: str) -> Any:
        if value is not None:
            raise json_error(path, f"expected null, got {value!r}")
        return None


class Octets(Node):
    """OCTET STRING (or an IMPLICIT tag of it, e.g. Q931InformationElement ``40``)."""

    def __init__(self, what: str, tag: int = 0x04, lo: int = 0, hi: int = 255) -> None:
        self.what = what
        self.tags = (tag,)
        self.tag = tag
        self.lo = lo
        self.hi = hi
        self.expect = f"OCTET STRING {what} (tag {tag:02X})"

    def _size(self) -> str:
        return f"{self.lo}" if self.lo == self.hi else f"{self.lo}..{self.hi}"

    def encode(self, value: Any, path: str = "") -> bytes:
        if not isinstance(value, bytes | bytearray):
            raise encode_error(path or self.what, f"expected bytes, got {value!r}")
        if not self.lo <= len(value) <= self.hi:
            raise encode_error(path or self.what, f"{len(value)} octets, expected {self._size()}")
        return tlv(self.tag, bytes(value))

    def decode(self, data: bytes, tag: int, start: int, end: int) -> bytes:
        if not self.lo <= end - start <= self.hi:
            raise fail(start, f"{self.what}: {end - start} octets, expected {self._size()}")
        return data[start:end]

    def to_json(self, value: Any) -> Any:
        return bytes(value).hex().upper()

    def from_json(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                pass
            else:
                if not self.lo <= len(raw) <= self.hi:
                    raise json_error(path, f"{len(raw)} octets, expected {self._size()}")
                return raw
        raise json_error(path, f"expected a hex string, got {value!r}")


# NumericString (X.680 §41) is digits and space; Q.931 numbers may also carry * and #
# (IA5), which libpri passes through, so the codec accepts those two as well.
DIGIT_CHARS = b"0123456789 *#"


class Digits(Node):
    """NumberDigits ::= NumericString (SIZE (1..20)), or an IMPLICIT tag of it."""

    def __init__(self, what: str, tag: int = 0x12, lo: int = 1, hi: int = 20) -> None:
        self.what = what
        self.tags = (tag,)
        self.tag = tag
        self.lo = lo
        self.hi = hi
        self.expect = f"NumericString {what} (tag {tag:02X})"

    def check(self, value: Any, path: str) -> bytes:
        if not isinstance(value, str):
            raise encode_error(path, f"expected a digit string, got {value!r}")
        raw = value.encode("ascii", "replace")
        if raw.translate(None, DIGIT_CHARS) or not self.lo <= len(raw) <= self.hi:
            raise encode_error(
                path, f"{value!r} is not {self.lo}..{self.hi} characters of 0-9, space, * or #"
            )
        return raw

    def encode(self, value: Any, path: str = "") -> bytes:
        return tlv(self.tag, self.check(value, path or self.what))

    def decode(self, data: bytes, tag: int, start: int, end: int) -> str:
        raw = data[start:end]
        if not self.lo <= len(raw) <= self.hi:
            raise fail(start, f"{self.what}: {len(raw)} digits, expected {self.lo}..{self.hi}")
        bad = raw.translate(None, DIGIT_CHARS)
        if bad:
            raise fail(start + raw.index(bad[0]), f"{self.what}: {bad[0]:02X} is not a digit")
        return raw.decode("ascii")

    def to_json(self, value: Any) -> Any:
        return str(value)

    def from_json(self, value: Any, path: str) -> Any:
        try:
            self.check(value, path)
        except FacilityError as exc:
            raise json_error(path, exc.message.split(": ", 1)[-1]) from None
        return value


class Member:
    """One component of a SEQUENCE: Python attribute, ASN.1 identifier, type and presence.

    ``absent`` is the Python value meaning "not on the wire" (None for OPTIONAL, the
    default for DEFAULT, ``()`` for an optional SEQUENCE OF); mandatory members have
    ``optional=False``.
    """

    __slots__ = ("attr", "ident", "node", "optional", "absent")

    def __init__(
        self, attr: str, ident: str, node: Node, optional: bool = False, absent: Any = None
    ) -> None:
        self.attr = attr
        self.ident = ident
        self.node = node
        self.optional = optional
        self.absent = absent


class Seq(Node):
    """SEQUENCE bound to a dataclass ``cls`` whose fields are in member order.

    Decoding matches elements to members by tag (first not yet seen member with that tag,
    in declaration order; libpri does not enforce the order of optional items), skips
    elements of unknown tags (extensions), and rejects duplicates and missing mandatory
    members.
    """

    def __init__(
        self,
        what: str,
        cls: Callable[..., Any],
        members: Sequence[Member],
        tag: int = 0x30,
        pytype: type | None = None,
    ) -> None:
        self.what = what
        self.cls = cls
        self.pytype: Any = pytype if pytype is not None else cls
        self.members = tuple(members)
        self.tags = (tag,)
        self.tag = tag
        self.expect = f"SEQUENCE {what} (tag {tag:02X})"
        by_tag: dict[int, list[int]] = {}
        for index, member in enumerate(self.members):
            for member_tag in member.node.tags:
                by_tag.setdefault(member_tag, []).append(index)
        self.by_tag = {t: tuple(ix) for t, ix in by_tag.items()}
        self.initial = [m.absent for m in self.members]
        self.mandatory = [i for i, m in enumerate(self.members) if not m.optional]

    def encode(self, value: Any, path: str = "") -> bytes:
        if not isinstance(value, self.pytype):
            raise encode_error(
                path or self.what,
                f"expected {getattr(self.pytype, '__name__', self.what)}, got {value!r}",
            )
        parts = []
        for member in self.members:
            item = getattr(value, member.attr)
            if member.optional and (item is None or item == member.absent):
                continue
            parts.append(member.node.encode(item, f"{path or self.what}.{member.ident}"))
        return tlv(self.tag, b"".join(parts))

    def decode(self, data: bytes, tag: int, start: int, end: int) -> Any:
        values = self.initial[:]
        seen = 0
        pos = start
        members = self.members
        by_tag = self.by_tag
        while pos < end:
            item_tag, cs, ce, pos = read_tlv(data, pos, end)
            candidates = by_tag.get(item_tag)
            if candidates is None:
                continue  # unknown element: an extension we do not know; skip it
            for index in candidates:
                if not seen >> index & 1:
                    break
            else:
                raise fail(cs - 2, f"{self.what}: repeated element {describe_tag(item_tag)}")
            seen |= 1 << index
            values[index] = members[index].node.decode(data, item_tag, cs, ce)
        for index in self.mandatory:
            if not seen >> index & 1:
                member = members[index]
                raise fail(
                    end, f"{self.what}: missing {member.ident}, expected {member.node.expect}"
                )
        return self.cls(*values)

    def to_json(self, value: Any) -> Any:
        out: dict[str, Any] = {}
        for member in self.members:
            item = getattr(value, member.attr)
            if member.optional and (item is None or item == member.absent):
                continue
            out[member.ident] = member.node.to_json(item)
        return out

    def from_json(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise json_error(path, f"expected an object for {self.what}, got {value!r}")
        known = {m.ident for m in self.members}
        for key in value:
            if key not in known:
                raise json_error(
                    f"{path}.{key}", f"unknown in {self.what} (known: {', '.join(sorted(known))})"
                )
        args = []
        for member in self.members:
            if member.ident in value:
                args.append(member.node.from_json(value[member.ident], f"{path}.{member.ident}"))
            elif member.optional:
                args.append(member.absent)
            else:
                raise json_error(path, f"missing {member.ident} in {self.what}")
        return self.cls(*args)


class SeqOf(Node):
    """SEQUENCE SIZE (lo..hi) OF element → tuple. An empty list decodes (tolerated)."""

    def __init__(self, what: str, element: Node, lo: int, hi: int, tag: int = 0x30) -> None:
        self.what = what
        self.element = element
        self.lo = lo
        self.hi = hi
        self.tags = (tag,)
        self.tag = tag
        self.expect = f"SEQUENCE OF {what} (tag {tag:02X})"

    def encode(self, value: Any, path: str = "") -> bytes:
        where = path or self.what
        if not isinstance(value, tuple | list) or not self.lo <= len(value) <= self.hi:
            raise encode_error(where, f"expected {self.lo}..{self.hi} entries, got {value!r}")
        return tlv(
            self.tag,
            b"".join(self.element.encode(v, f"{where}[{i}]") for i, v in enumerate(value)),
        )

    def decode(self, data: bytes, tag: int, start: int, end: int) -> tuple[Any, ...]:
        items = []
        pos = start
        element = self.element
        while pos < end:
            item_tag, cs, ce, pos = read_tlv(data, pos, end)
            if item_tag not in element.tags:
                raise fail(
                    cs - 2,
                    f"{self.what}: expected {element.expect}, found {describe_tag(item_tag)}",
                )
            items.append(element.decode(data, item_tag, cs, ce))
        if len(items) > self.hi:
            raise fail(start, f"{self.what}: {len(items)} entries, at most {self.hi}")
        return tuple(items)

    def to_json(self, value: Any) -> Any:
        return [self.element.to_json(v) for v in value]

    def from_json(self, value: Any, path: str) -> Any:
        if not isinstance(value, list) or not self.lo <= len(value) <= self.hi:
            raise json_error(path, f"expected a list of {self.lo}..{self.hi} entries")
        return tuple(self.element.from_json(v, f"{path}[{i}]") for i, v in enumerate(value))


class Single(Node):
    """A non-SEQUENCE operation argument/result (``ARGUMENT callLinkageID CallLinkageID``)
    bound to a one-field dataclass; JSON shows it keyed by its identifier."""

    def __init__(self, cls: Callable[..., Any], attr: str, ident: str, inner: Node) -> None:
        self.cls = cls
        self.attr = attr
        self.ident = ident
        self.inner = inner
        self.tags = inner.tags
        self.expect = inner.expect

    def encode(self, value: Any, path: str = "") -> bytes:
        if not isinstance(value, self.cls):  # type: ignore[arg-type]
            raise encode_error(
                path or self.ident,
                f"expected {getattr(self.cls, '__name__', self.ident)}, got {value!r}",
            )
        return self.inner.encode(getattr(value, self.attr), f"{path}.{self.ident}")

    def decode(self, data: bytes, tag: int, start: int, end: int) -> Any:
        return self.cls(self.inner.decode(data, tag, start, end))

    def to_json(self, value: Any) -> Any:
        return {self.ident: self.inner.to_json(getattr(value, self.attr))}

    def from_json(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict) or set(value) != {self.ident}:
            raise json_error(path, f'expected {{"{self.ident}": ...}}, got {value!r}')
        return self.cls(self.inner.from_json(value[self.ident], f"{path}.{self.ident}"))


def expect_one(data: bytes, pos: int, end: int, node: Node) -> tuple[Any, int]:
    """Read one element that must be of ``node``'s type; returns (value, next_pos)."""
    tag, cs, ce, nxt = read_tlv(data, pos, end)
    if tag not in node.tags:
        raise fail(pos, f"expected {node.expect}, found {describe_tag(tag)}")
    return node.decode(data, tag, cs, ce), nxt


class Mapped(Node):
    """``inner``'s encoding for a Python value of another shape: ``wrap`` builds the value
    from the decoded inner value, ``unwrap`` extracts the inner value to encode."""

    def __init__(
        self,
        inner: Node,
        wrap: Callable[[Any], Any],
        unwrap: Callable[[Any], Any],
    ) -> None:
        self.inner = inner
        self.wrap = wrap
        self.unwrap = unwrap
        self.tags = inner.tags
        self.expect = inner.expect

    def encode(self, value: Any, path: str = "") -> bytes:
        return self.inner.encode(self.unwrap(value), path)

    def decode(self, data: bytes, tag: int, start: int, end: int) -> Any:
        return self.wrap(self.inner.decode(data, tag, start, end))

    def to_json(self, value: Any) -> Any:
        return self.inner.to_json(self.unwrap(value))

    def from_json(self, value: Any, path: str) -> Any:
        return self.wrap(self.inner.from_json(value, path))


class Explicit(Node):
    """``[n] EXPLICIT Inner``: a constructed wrapper holding exactly one element."""

    def __init__(self, tag: int, inner: Node) -> None:
        self.tag = tag
        self.inner = inner
        self.tags = (tag,)
        self.expect = f"[{tag & 0x1F}] EXPLICIT {inner.expect} (tag {tag:02X})"

    def encode(self, value: Any, path: str = "") -> bytes:
        return tlv(self.tag, self.inner.encode(value, path))

    def decode(self, data: bytes, tag: int, start: int, end: int) -> Any:
        value, nxt = expect_one(data, start, end, self.inner)
        if nxt != end:
            raise fail(nxt, f"{end - nxt} octets after the element inside {describe_tag(tag)}")
        return value

    def to_json(self, value: Any) -> Any:
        return self.inner.to_json(value)

    def from_json(self, value: Any, path: str) -> Any:
        return self.inner.from_json(value, path)


class Choice(Node):
    """CHOICE: decode dispatches on the tag; encode picks the alternative ``key(value)``.

    ``alternatives`` maps a key (e.g. a NumberingPlan) to ``(ASN.1 identifier, node)``.
    """

    def __init__(
        self,
        what: str,
        key: Callable[[Any], Any],
        alternatives: dict[Any, tuple[str, Node]],
    ) -> None:
        self.what = what
        self.key = key
        self.alternatives = alternatives
        self.by_tag: dict[int, Node] = {}
        self.by_ident: dict[str, Node] = {}
        for ident, node in alternatives.values():
            self.by_ident[ident] = node
            for tag in node.tags:
                self.by_tag[tag] = node
        self.tags = tuple(self.by_tag)
        self.expect = f"{what} (tags {' '.join(f'{t:02X}' for t in self.tags)})"

    def _pick(self, value: Any, path: str) -> tuple[str, Node]:
        try:
            return self.alternatives[self.key(value)]
        except (KeyError, AttributeError, TypeError):
            raise encode_error(path or self.what, f"{value!r} is not a {self.what}") from None

    def encode(self, value: Any, path: str = "") -> bytes:
        ident, node = self._pick(value, path)
        return node.encode(value, f"{path or self.what}.{ident}")

    def decode(self, data: bytes, tag: int, start: int, end: int) -> Any:
        return self.by_tag[tag].decode(data, tag, start, end)

    def to_json(self, value: Any) -> Any:
        ident, node = self._pick(value, self.what)
        return {ident: node.to_json(value)}

    def from_json(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict) or len(value) != 1:
            raise json_error(
                path,
                f'expected {{"<alternative>": ...}} for {self.what} '
                f"({', '.join(self.by_ident)}), got {value!r}",
            )
        ((ident, inner),) = value.items()
        node = self.by_ident.get(ident)
        if node is None:
            raise json_error(path, f"{ident!r} is not one of {', '.join(self.by_ident)}")
        return node.from_json(inner, f"{path}.{ident}")
