"""Hypothesis strategies for what a peer or an operator can throw at ccbsd: CAPI frames
as a (broken) card sends them, FXB/1 lines as a (broken) bridge sends them, control
socket lines, and TOML configuration files built from the configuration schema.

Each strategy mixes well-formed input (so the fuzzing reaches deep into the parsers
and the state machines behind them) with mutations of it and with plain noise. The
same generators feed ``tests/fuzz/atheris_main.py`` as seeds. No I/O here.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from ccbs_isdn.drivers.capi20 import messages as m
from ccbs_isdn.drivers.capi20.tables import Command, Subcommand
from hypothesis import strategies as st

from ccbs_isdn.config import SCHEMA, Key

VECTORS = Path(__file__).resolve().parents[1] / "rose" / "vectors" / "etsi-ccbs-vectors.json"
EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "etc" / "ccbsd.toml.example"

# ---------------------------------------------------------------------- mutation


@st.composite
def mutated(draw: st.DrawFn, data: bytes, max_ops: int = 4) -> bytes:
    """``data`` with 1..max_ops bit flips, cuts, insertions or duplicated slices."""
    raw = bytearray(data)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup", "set"]))
        if not raw:
            op = "insert"
        if op == "flip":
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del raw[draw(st.integers(0, len(raw) - 1)):]
        elif op == "insert":
            at = draw(st.integers(0, len(raw)))
            raw[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "dup":
            a = draw(st.integers(0, len(raw) - 1))
            b = draw(st.integers(a, len(raw)))
            raw[b:b] = raw[a:b]
        else:  # a length-ish octet set to an edge value
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0xFF]))
    return bytes(raw)


# ------------------------------------------------------------------------- ROSE


@lru_cache(maxsize=1)
def facility_vectors() -> tuple[bytes, ...]:
    """Contents of every Facility IE of the ETSI conformance vectors."""
    doc = json.loads(VECTORS.read_text())
    found: list[bytes] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            text = node.get("ie_contents_hex")
            if isinstance(text, str):
                try:
                    found.append(bytes.fromhex(text))
                except ValueError:
                    pass  # a placeholder, not bytes
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    return tuple(found)


def facility_contents() -> st.SearchStrategy[bytes]:
    """Facility IE contents: vectors, mutated vectors, ROSE-looking noise."""
    vectors = facility_vectors()
    return st.one_of(
        st.sampled_from(vectors),
        st.sampled_from(vectors).flatmap(mutated),
        st.builds(lambda tag, body: bytes([0x91, tag]) + body,
                  st.sampled_from([0xA1, 0xA2, 0xA3, 0xA4, 0x30, 0x02]),
                  st.binary(max_size=60)),
        st.binary(max_size=40),
    )


# ------------------------------------------------------------------------- CAPI

#: messages a card sends an application; DATA_B3_IND is left out: libcapi20 itself
#: (C code, not our parser) follows its data pointer and length
CARD_MESSAGES = tuple(sorted(
    (key for key in m.LAYOUTS
     if key[1] in (Subcommand.IND, Subcommand.CONF)
     and key != (Command.DATA_B3, Subcommand.IND)),
    key=lambda k: (k[0].value, k[1].value)))
#: controller, PLCIs and NCCIs of controller 1 and 2, and nonsense
ADDRESSES = (1, 2, 9, 0x0101, 0x0201, 0x0102, 0x7F01, 0x010101, 0x00010201, 0xFFFFFFFF, 0)
SUPP_IND = tuple(sorted(f for (f, sub) in m.SUPP_LAYOUTS if sub is Subcommand.IND))


def _value(kind: str) -> st.SearchStrategy[m.Value]:
    kind = kind.rstrip("?")
    if kind == "s":
        return st.binary(max_size=64)
    octets = {"b": 1, "w": 2, "d": 4, "q": 8}[kind]
    return st.integers(0, (1 << (8 * octets)) - 1)


@st.composite
def supp_parameter(draw: st.DrawFn) -> bytes:
    """A selector-3 parameter of a supplementary-service indication."""
    function = draw(st.one_of(st.sampled_from(SUPP_IND), st.integers(0, 0xFFFF)))
    layout = m.SUPP_LAYOUTS.get((function, Subcommand.IND))
    if layout is None:
        return m.encode_supp(Subcommand.IND, m.SuppParam(function, {},
                                                         draw(st.binary(max_size=40))))
    fields = {name: draw(_value(kind)) for name, kind in layout
              if not kind.endswith("?") or draw(st.booleans())}
    return m.encode_supp(Subcommand.IND, m.SuppParam(function, fields))


@st.composite
def card_message(draw: st.DrawFn) -> bytes:
    """A well-formed CAPI message a card could send (random but typed parameters)."""
    command, sub = draw(st.sampled_from(CARD_MESSAGES))
    layout = m.LAYOUTS[(command, sub)]
    params: dict[str, m.Value] = {}
    for i, (name, kind) in enumerate(layout):
        if kind.endswith("?") and not draw(st.booleans()):
            break
        if i == 0:
            params[name] = draw(st.sampled_from(ADDRESSES))
        elif name == "selector" and command is Command.FACILITY:
            params[name] = draw(st.sampled_from([3, 3, 3, 0, 1, 9]))
        elif name == "parameter" and params.get("selector") == 3:
            params[name] = draw(supp_parameter())
        elif name == "info_number" and command is Command.INFO:
            params[name] = draw(st.sampled_from([0x1C, 0x1C, 0x08, 0x18, 0x28, 0x8045,
                                                 0x4000, 0x0070]))
        elif name == "info_element" and params.get("info_number") == 0x1C:
            params[name] = draw(facility_contents())
        else:
            params[name] = draw(_value(kind))
    number = draw(st.integers(0, 0xFFFF))
    return m.encode(m.CapiMessage(command, sub, number, params, 1))


@st.composite
def capi_frame(draw: st.DrawFn) -> bytes:
    """What a broken card may send: a message, a mutated message, or a header with
    noise (always at least the 8 header octets, see ``CARD_MESSAGES``)."""
    kind = draw(st.sampled_from(["valid", "mutated", "mutated", "noise"]))
    if kind == "valid":
        return draw(card_message())
    if kind == "mutated":
        raw = draw(card_message().flatmap(mutated))
    else:
        body = draw(st.binary(max_size=120))
        command = draw(st.one_of(st.sampled_from([c.value for c in Command]),
                                 st.integers(0, 255)))
        sub = draw(st.sampled_from([0x81, 0x82, 0x80, 0x83, 0x00, 0xFF]))
        length = draw(st.one_of(st.just(8 + len(body)), st.integers(0, 0xFFFF)))
        raw = struct.pack("<HHBBH", length, 1, command, sub,
                          draw(st.integers(0, 0xFFFF))) + body
    if len(raw) < 8:
        raw = raw + bytes(8 - len(raw))
    # the length word may lie, up to 0xFFFF: far past libcapi20's receive buffer
    # (capi.md §1), which lib.get_message must not read beyond (it once did: SIGSEGV)
    if draw(st.integers(0, 9)) == 0:
        raw = struct.pack("<H", draw(st.sampled_from([0, 7, 8, 2048, 2049, 4096, 0x8068,
                                                      0xFFFF]))) + raw[2:]
    if raw[4:6] == bytes([Command.DATA_B3, Subcommand.IND]):
        raw = raw[:4] + bytes([Command.INFO, Subcommand.IND]) + raw[6:]
    return raw


# ------------------------------------------------------------------------ FXB/1

URC_HEADS = ("%HOOK", "%DTMF", "%RING", "%FLASH", "%PULSE", "%FAULT", "%READY", "%STATE",
             "%CONN", "%TONE", "%CAD", "+GMR", "OK", "ERROR", "%ERROR", "%CME ERROR")


@st.composite
def bridge_line(draw: st.DrawFn) -> str:
    """A line from a confused bridge: near-miss URCs (never for port 4, which the
    tests use as a probe) and noise."""
    head = draw(st.sampled_from(URC_HEADS))
    port = draw(st.sampled_from(["1", "2", "3", "0", "5", "99", "-1", "", "x", "1.5",
                                 "99999999999999999999"]))
    args = draw(st.lists(st.one_of(
        st.sampled_from(["ON", "OFF", "TRIP", "ENDED", "TIMEOUT", "STOP", "5", "*", "#",
                         "SHORT", "FXB/1", "@12", "@-3", "@", "", '"22"', '"']),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                max_size=12)), max_size=5))
    sep = draw(st.sampled_from([": ", ":", " ", "=", ""]))
    line = head + sep + ",".join([port, *args])
    if draw(st.integers(0, 5)) == 0:
        line = draw(st.text(max_size=200))
    return line.replace("\r", "").replace("\n", "")


def bridge_bytes() -> st.SearchStrategy[bytes]:
    """Raw noise outside any line discipline (CR/LF included)."""
    return st.one_of(
        st.binary(max_size=120),
        st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"%", b"OK", b"\x00", b"\xff",
                                  b"%HOOK: ", b"1,", b"ON"]), max_size=20).map(b"".join),
    )


# ---------------------------------------------------------------------- control

COMMANDS = ("status", "show", "cancel", "request", "events", "reload", "trace", "nope",
            "", "STATUS")


@st.composite
def control_line(draw: st.DrawFn) -> bytes:
    """One line for the control socket: near-valid requests, wrong types, JSON that
    is not an object, broken JSON, bytes that are not UTF-8, huge values."""
    kind = draw(st.sampled_from(["request", "request", "json", "broken", "bytes"]))
    if kind == "request":
        doc: dict[str, Any] = {}
        if draw(st.booleans()):
            doc["v"] = draw(st.one_of(st.just(1), st.integers(-5, 5), st.text(max_size=3),
                                      st.none(), st.floats(allow_nan=True)))
        doc["cmd"] = draw(st.one_of(st.sampled_from(COMMANDS), st.integers(), st.none()))
        args = draw(st.one_of(
            st.dictionaries(st.sampled_from(["id", "caller", "target", "all", "follow",
                                             "last", "path", "action", "x"]),
                            _json_value(), max_size=4),
            _json_value()))
        doc["args"] = args
        if draw(st.booleans()):
            doc["tag"] = draw(_json_value())
        # cancel/request/reload/trace change things: keep them harmless (unknown
        # callers, impossible ids) so the probe lifecycle is not disturbed
        if doc["cmd"] in ("reload", "trace") and isinstance(args, dict):
            doc["cmd"] = "status"
        text = json.dumps(doc)
    elif kind == "json":
        text = json.dumps(draw(_json_value()))
    elif kind == "broken":
        text = draw(st.sampled_from(['{"v": 1, "cmd": "status"', '{"v":1,"cmd":"status",}',
                                     "{", "}", "[]", "null", '"', "\\u0000", "{'v': 1}",
                                     '{"v": 1e999999}', '{"cmd": "' + "x" * 5000 + '"}']))
        text = draw(st.just(text) | st.text(max_size=80))
    else:
        return draw(st.binary(max_size=200)).replace(b"\n", b" ") + b"\n"
    return text.replace("\n", " ").encode("utf-8", "surrogatepass") + b"\n"


def _json_value() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                        st.floats(allow_nan=False, allow_infinity=False),
                        st.text(max_size=20), st.sampled_from(["21", "22", "99", "1"]))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner,
                                                     max_size=3)), max_leaves=6)


# ------------------------------------------------------------------------- TOML


def toml_value(value: Any) -> str:
    """A TOML literal for a generated value (inline tables/arrays for nesting)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(k)} = {toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(type(value))


def _string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, for text without surrogates)."""
    return json.dumps(text, ensure_ascii=False)


_TEXT = st.characters(blacklist_categories=("Cs",))

_SCALARS = st.one_of(
    st.booleans(), st.integers(-(2 ** 63), 2 ** 63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=_TEXT, max_size=30),
    st.sampled_from(["", "/", "/tmp/x", "relative/path", "*37#", "21", "0", "22:00-07:00",
                     "Europe/Berlin", "Mars/Olympus", "http://127.0.0.1:1/x", "rcapi",
                     "debug", "DE", "auto", "127.0.0.1", "::1", "10.0.0.1"]),
)


def _for_key(key: Key) -> st.SearchStrategy[Any]:
    """A value for ``key``: often of the right type, sometimes of any type."""
    if key.kind == "section" and key.table is not None:
        return st.one_of(_table(key.table), _SCALARS)
    if key.kind == "tables" and key.table is not None:
        return st.one_of(st.lists(_table(key.table), max_size=3), _table(key.table),
                         _SCALARS)
    typed: st.SearchStrategy[Any]
    if key.kind in ("int",):
        low = int(key.min) - 2 if key.min is not None else -5
        high = int(key.max) + 2 if key.max is not None else 100000
        typed = st.integers(low, high)
    elif key.kind in ("float", "seconds"):
        typed = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10, 10 ** 6)
    elif key.kind == "bool":
        typed = st.booleans()
    elif key.kind == "enum":
        typed = st.sampled_from([*key.choices, "nonsense"])
    elif key.kind.endswith("list") or key.kind in ("patterns", "argv", "events",
                                                   "time-ranges"):
        typed = st.lists(_SCALARS, max_size=4)
    else:
        typed = _SCALARS
    return st.one_of(typed, typed, _SCALARS, st.lists(_SCALARS, max_size=2))


def _table(schema: Mapping[str, Key]) -> st.SearchStrategy[dict[str, Any]]:
    keys = sorted(schema)
    return st.dictionaries(
        st.one_of(st.sampled_from(keys), st.sampled_from(keys), st.text(_TEXT, max_size=8)),
        st.deferred(lambda: st.just(None)), max_size=5,
    ).flatmap(lambda chosen: st.fixed_dictionaries({
        name: (_for_key(schema[name]) if name in schema else _SCALARS)
        for name in chosen}))


@st.composite
def config_document(draw: st.DrawFn) -> str:
    """A TOML document: schema sections with right and wrong values, unknown keys,
    the shipped example mutated, or noise."""
    kind = draw(st.sampled_from(["schema", "schema", "schema", "example", "noise"]))
    if kind == "example":
        text = EXAMPLE_CONFIG.read_bytes()
        return draw(mutated(text, max_ops=6)).decode("utf-8", "replace")
    if kind == "noise":
        return draw(st.text(max_size=300))
    doc = draw(_table(SCHEMA))
    lines: list[str] = []
    for name, value in doc.items():
        lines.append(f"{_string(name)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


__all__ = ["bridge_bytes", "bridge_line", "capi_frame", "card_message", "config_document",
           "control_line", "facility_contents", "mutated", "toml_value"]
