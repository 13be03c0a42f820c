"""The reference vectors (a copy of shared/vectors/etsi-ccbs-vectors.json, produced by
libpri 1.6 and cross-checked with mISDNuser) and their "decoded" fields translated into
the JSON form of ``ccbs_isdn.rose`` (X.697 JER shape), so tests compare like with like.
Reusable by other areas' tests (``from tests.rose.vectors import VECTORS``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("vectors") / "etsi-ccbs-vectors.json"
DATA: dict[str, Any] = json.loads(PATH.read_text())
VECTORS: list[dict[str, Any]] = DATA["vectors"]
ALTERNATES: list[dict[str, Any]] = DATA["alternate_encodings"]
BY_NAME: dict[str, dict[str, Any]] = {v["name"]: v for v in VECTORS}

_ENUM = re.compile(r"^([A-Za-z][\w-]*)\((\d+)\)$")
_TYPED_PLANS = {"publicPartyNumber": "public", "privatePartyNumber": "private"}


def _value(value: Any) -> Any:
    """Vector spelling → ours: "globalRecall(0)" → "globalRecall", hex upper-cased,
    {"choice": ..} party numbers/subaddresses → {"alternative": ..}."""
    if isinstance(value, str):
        match = _ENUM.match(value)
        if match:
            return match.group(1)
        return value
    if isinstance(value, list):
        return [_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    choice = value.get("choice")
    if choice in _TYPED_PLANS:
        prefix = _TYPED_PLANS[choice]
        return {
            choice: {
                f"{prefix}TypeOfNumber": _value(value["typeOfNumber"]),
                f"{prefix}NumberDigits": value["digits"],
            }
        }
    if choice in (
        "unknownPartyNumber",
        "dataPartyNumber",
        "telexPartyNumber",
        "nationalStandardPartyNumber",
    ):
        return {choice: value["digits"]}
    if choice == "userSpecifiedSubaddress":
        inner: dict[str, Any] = {"subaddressInformation": value["subaddressInformation"].upper()}
        if "oddCountIndicator" in value:
            inner["oddCountIndicator"] = value["oddCountIndicator"]
        return {choice: inner}
    if choice == "nSAPSubaddress":
        return {choice: value["octets"].upper()}
    out = {}
    for key, item in value.items():
        if key in ("q931InfoElement", "q931InformationElement"):
            out[key] = item.upper()
        else:
            out[key] = _value(item)
    return out


def expected_component(vector: dict[str, Any]) -> dict[str, Any]:
    """The component JSON ``ccbs_isdn.rose`` must produce for this vector."""
    decoded = dict(vector["decoded"])
    decoded.pop("note", None)
    kind = vector["component"]
    out: dict[str, Any] = {"component": kind, "invokeId": decoded.pop("invokeId")}
    if kind == "invoke":
        out["operation"] = vector["operation"]
        decoded.pop("operationValue", None)
        # the vectors write "argument": null for operations without one and flatten
        # the argument's fields into "decoded" otherwise (an empty dict: empty SEQUENCE)
        argument = decoded.pop("argument", decoded)
        if argument is not None:
            argument = _value(argument)
            # retentionSupported is DEFAULT FALSE: absent on the wire, absent in our JSON
            if argument.get("retentionSupported") is False:
                del argument["retentionSupported"]
            out["argument"] = argument
    elif kind == "returnResult":
        if decoded.get("result") is not None:
            out["operation"] = vector["operation"]
            out["result"] = _value(decoded["result"])
    elif kind == "returnError":
        out["error"] = decoded["errorValue"]
        code = decoded["errorCode"]
        out["errorValue"] = int(code.split()[1]) if code.startswith("localValue") else code[4:]
    else:
        # "invokeProblem [1] unrecognizedOperation(1)" → "invokeProblem.unrecognizedOperation"
        head, _tag, name = decoded["problem"].split()
        out["problem"] = f"{head}.{_ENUM.match(name).group(1)}"  # type: ignore[union-attr]
    return out
