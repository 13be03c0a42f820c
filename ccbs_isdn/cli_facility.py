"""``ccbsctl facility``: decode and encode ETSI CCBS/CCNR Facility IEs offline.

This module owns the command-line face of ``ccbs_isdn.rose``: parsing hex typed by a
person (with or without the ``1C L`` header, spaces allowed), printing the decoded
components (readable text, or one JSON document with ``--json``) and the inverse (JSON on
stdin → IE hex). It talks to no daemon and touches no device.

JSON shape (one document)::

    {"profile": "rose",
     "components": [
       {"component": "invoke", "invokeId": 70, "operation": "CCBSRemoteUserFree",
        "argument": {"recallMode": "globalRecall", "cCBSReference": 1,
                     "addressOfB": {"partyNumber": {"unknownPartyNumber": "22"}},
                     "q931InfoElement": "04038090A3"}},
       {"component": "returnResult", "invokeId": 30, "operation": "CCBSRequest",
        "result": {"recallMode": "globalRecall", "cCBSReference": 1}},
       {"component": "returnError", "invokeId": 120, "error": "shortTermDenial",
        "errorValue": "0.4.0.359.2.21"},
       {"component": "reject", "invokeId": 30,
        "problem": "invokeProblem.unrecognizedOperation"}]}

Values follow ITU-T X.697 (JER): SEQUENCE → object keyed by the ASN.1 identifiers, CHOICE
→ ``{"alternative": value}``, ENUMERATED → identifier, OCTET STRING → hex. ``linkedId``,
``operation`` (returnResult/returnError) and ``argument``/``result`` appear only when
present; ``errorValue`` (dotted OID or local int) pins the exact error (``longTermDenial``
exists in two modules). Bad input exits 1 with one line naming the offset (or JSON path)
and what was expected.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ccbs_isdn.errors import FacilityError
from ccbs_isdn.rose import (
    OPERATIONS,
    Facility,
    Operation,
    decode_any,
    encode_contents,
    encode_ie,
    facility_from_json,
    facility_to_json,
)

_HEX = set("0123456789abcdefABCDEF")


def parse_hex(text: str) -> bytes:
    """Hex digits with optional whitespace; errors name the character offset."""
    digits: list[str] = []
    for offset, char in enumerate(text):
        if char in _HEX:
            digits.append(char)
        elif not char.isspace():
            raise FacilityError(
                f"offset {offset}: expected a hex digit, found {char!r}",
                offset=offset,
                problem=None,
            )
    if not digits:
        raise FacilityError("offset 0: expected hex octets, found nothing", offset=0, problem=None)
    if len(digits) % 2:
        raise FacilityError(
            f"offset {len(text)}: expected an even number of hex digits, found {len(digits)}",
            offset=len(text),
            problem=None,
        )
    return bytes.fromhex("".join(digits))


def _want_json(ctx: click.Context, local: bool) -> bool:
    root = ctx.find_root().obj
    return local or bool(isinstance(root, dict) and root.get("json"))


def _fail(message: str, as_json: bool, offset: int | None = None) -> None:
    if as_json:
        click.echo(
            json.dumps({"error": {"code": "facility-error", "message": message, "offset": offset}})
        )
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _render(value: Any, indent: int, lines: list[str]) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                _render(item, indent + 1, lines)
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            lines.append(f"{pad}[{index}]")
            _render(item, indent + 1, lines)
    else:
        lines.append(f"{pad}{_scalar(value)}")


def _scalar(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return str(value)


def render_text(facility: Facility) -> str:
    """A person's view of a decoded IE (the JSON form, laid out as an indented tree)."""
    doc = facility_to_json(facility)
    count = len(facility.components)
    lines = [
        f"Facility, profile {facility.profile:02X} ({doc['profile']}), "
        f"{count} component{'s' if count != 1 else ''}"
    ]
    if facility.header:
        lines.append(f"  header: {facility.header.hex(' ').upper()}")
    for component in doc["components"]:
        head = [component["component"], f"invokeId={component['invokeId']}"]
        if "linkedId" in component:
            head.append(f"linkedId={component['linkedId']}")
        if "operation" in component:
            spec = OPERATIONS[Operation(component["operation"])]
            head.append(f"operation={component['operation']} ({spec.dotted})")
        if component["component"] == "returnResult" and "operation" not in component:
            head.append("(empty result)")
        if "error" in component or "errorValue" in component:
            head.append(f"error={component.get('error', '?')} ({component['errorValue']})")
        if "problem" in component:
            head.append(f"problem={component['problem']}")
        lines.append("  " + "  ".join(head))
        for key in ("argument", "result"):
            if key in component:
                lines.append(f"    {key}:")
                _render(component[key], 3, lines)
        if "parameter" in component:
            lines.append(f"    parameter: {component['parameter']}")
    return "\n".join(lines)


@click.group("facility")
def facility() -> None:
    """Decode and encode Facility IEs (ETSI CCBS/CCNR, ROSE) offline."""


@facility.command("decode")
@click.argument("hex_digits", nargs=-1, required=True, metavar="HEX")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def decode_command(ctx: click.Context, hex_digits: tuple[str, ...], as_json: bool) -> None:
    """Decode HEX (a Facility IE with or without the 1C/length header; spaces allowed)."""
    want_json = _want_json(ctx, as_json)
    try:
        data = parse_hex(" ".join(hex_digits))
        decoded = decode_any(data)
    except FacilityError as exc:
        _fail(exc.message, want_json, exc.offset)
        return
    if want_json:
        click.echo(json.dumps(facility_to_json(decoded), indent=2))
    else:
        click.echo(render_text(decoded))


@facility.command("encode")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"ie": hex, "contents": hex} instead of bare hex.',
)
@click.option(
    "--contents",
    "contents_only",
    is_flag=True,
    help="Print the contents only (profile octet onwards), without 1C and length.",
)
@click.pass_context
def encode_command(ctx: click.Context, as_json: bool, contents_only: bool) -> None:
    """Read the JSON that `decode --json` prints on stdin; print the IE as hex."""
    want_json = _want_json(ctx, as_json)
    try:
        text = sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(f"offset {exc.start}: expected UTF-8 JSON on stdin", want_json, exc.start)
        return
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(
            f"offset {exc.pos} (line {exc.lineno}, column {exc.colno}): expected JSON: {exc.msg}",
            want_json,
            exc.pos,
        )
        return
    try:
        decoded = facility_from_json(document)
        ie = encode_ie(decoded)
        contents = encode_contents(decoded)
    except FacilityError as exc:
        _fail(exc.message, want_json, exc.offset)
        return
    if want_json:
        click.echo(json.dumps({"ie": ie.hex().upper(), "contents": contents.hex().upper()}))
    else:
        click.echo((contents if contents_only else ie).hex().upper())
