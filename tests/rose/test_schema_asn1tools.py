"""``etsi_ccbs.asn`` is the source of truth; the fast codec (ber.py/schema.py) must agree
with asn1tools compiling that file, for every type in both directions:

* our encoding decodes with asn1tools to the value we meant (compared in JER form, the
  same X.697 shape our JSON uses);
* asn1tools' encoding (DER-style, BOOLEAN TRUE as FF) decodes with ours to the same value;
* the operation and error codes in operations.py equal the value assignments of the .asn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asn1tools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ccbs_isdn.rose
from ccbs_isdn.rose import (
    Component,
    Invoke,
    Operation,
    Reject,
    ReturnError,
    ReturnResult,
    encode_component,
)
from ccbs_isdn.rose.ber import Node, Single, read_tlv
from ccbs_isdn.rose.operations import (
    CCBS_ERRORS,
    CCBS_T_ERRORS,
    GENERAL_ERRORS,
    OPERATIONS,
    PROBLEM_CLASSES,
)
from ccbs_isdn.rose.schema import (
    ADDRESS,
    PARTY_NUMBER,
    PARTY_SUBADDRESS,
    PRESENTED_NUMBER_UNSCREENED,
)
from tests.rose import strategies as S

ASN = Path(ccbs_isdn.rose.__file__).with_name("etsi_ccbs.asn")
BER = asn1tools.compile_files(str(ASN), "ber")
JER = asn1tools.compile_files(str(ASN), "jer")
MODULE = asn1tools.parse_files(str(ASN))["ETSI-CCBS-Facility"]

# (ASN.1 type, our node, strategy) for every ARG/RES type and the shared CHOICE types
CASES: list[tuple[str, Node, st.SearchStrategy[Any]]] = [
    ("PartyNumber", PARTY_NUMBER, S.party_numbers),
    ("PartySubaddress", PARTY_SUBADDRESS, S.party_subaddresses),
    ("Address", ADDRESS, S.addresses),
    ("PresentedNumberUnscreened", PRESENTED_NUMBER_UNSCREENED, S.presented_numbers_unscreened),
]
for _op, _spec in OPERATIONS.items():
    if _spec.argument is not None:
        CASES.append((f"{_op.value}Arg", _spec.argument, S.ARGUMENTS[_op]))
    if _spec.result is not None:
        CASES.append((f"{_op.value}Res", _spec.result, S.RESULTS[_op]))


def _ours_as_jer(node: Node, value: Any) -> Any:
    ours = node.to_json(value)
    if isinstance(node, Single):
        return ours[node.ident]  # JSON keys a bare ARGUMENT by its identifier
    return ours


def _drop_defaults(type_name: str, jer: Any) -> Any:
    # asn1tools fills in DEFAULT values on decode; our JSON leaves a default out
    if type_name.endswith("-T-RequestArg") and jer.get("retentionSupported") is False:
        del jer["retentionSupported"]
    return jer


def _our_decode(node: Node, raw: bytes) -> Any:
    tag, start, end, nxt = read_tlv(raw, 0, len(raw))
    assert nxt == len(raw) and tag in node.tags
    return node.decode(raw, tag, start, end)


@pytest.mark.parametrize(("type_name", "node", "strategy"), CASES, ids=[case[0] for case in CASES])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fast_codec_agrees_with_asn1tools(
    type_name: str, node: Node, strategy: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    value = data.draw(strategy)
    ours = node.encode(value)
    theirs = BER.decode(type_name, ours)
    jer = json.loads(JER.encode(type_name, theirs))
    assert _drop_defaults(type_name, jer) == _ours_as_jer(node, value)
    # and the other way: asn1tools' encoding of the same value decodes to it
    assert _our_decode(node, bytes(BER.encode(type_name, theirs))) == value


def _oid(arcs: tuple[int, ...]) -> tuple[str, str]:
    return ("globalValue", ".".join(map(str, arcs)))


@settings(max_examples=400, deadline=None)
@given(component=S.components)
def test_component_envelopes_agree_with_asn1tools(component: Component) -> None:
    kind, fields = BER.decode("Component", encode_component(component))
    assert fields["invokeId"] == component.invoke_id or kind == "reject"
    if isinstance(component, Invoke):
        spec = OPERATIONS[component.operation]
        assert kind == "invoke"
        assert fields.get("linkedId") == component.linked_id
        assert fields["operationValue"] == _oid(spec.code)  # type: ignore[arg-type]
        if component.argument is not None:
            assert spec.argument is not None
            assert bytes(fields["argument"]) == spec.argument.encode(component.argument)
        else:
            assert "argument" not in fields
    elif isinstance(component, ReturnResult):
        assert kind == "returnResult"
        if component.operation is None:
            assert "result" not in fields
        else:
            spec = OPERATIONS[component.operation]
            assert fields["result"]["operationValue"] == _oid(spec.code)  # type: ignore[arg-type]
            if component.result is not None:
                assert spec.result is not None
                assert bytes(fields["result"]["result"]) == spec.result.encode(component.result)
    elif isinstance(component, ReturnError):
        value = component.error.value
        expected = ("localValue", value) if isinstance(value, int) else _oid(value)
        assert kind == "returnError" and fields["errorValue"] == expected
    else:
        assert isinstance(component, Reject)
        assert kind == "reject"
        if component.invoke_id is None:
            assert fields["invokeId"] == ("not-derivable", None)
        else:
            assert fields["invokeId"] == ("derivable", component.invoke_id)
        problem_class, code = component.problem
        assert fields["problem"][0] == PROBLEM_CLASSES[problem_class][1]
        assert fields["problem"][1] == code


def _asn_value_name(operation: Operation) -> str:
    # ASN.1 value references start lower-case: CCBSRequest → cCBSRequest
    return operation.value[0].lower() + operation.value[1:]


def test_operation_codes_are_the_ones_in_the_asn_file() -> None:
    values = MODULE["values"]
    for operation, spec in OPERATIONS.items():
        assert tuple(values[_asn_value_name(operation)]["value"]) == spec.code, operation
        if spec.argument is not None:
            assert f"{operation.value}Arg" in MODULE["types"]
        if spec.result is not None:
            assert f"{operation.value}Res" in MODULE["types"]


def test_error_codes_are_the_ones_in_the_asn_file() -> None:
    values = MODULE["values"]
    for name, error in GENERAL_ERRORS.items():
        assert values[name] == {"type": "INTEGER", "value": error.value}
    for name, error in CCBS_ERRORS.items():
        assert tuple(values[name]["value"]) == error.value
    for name, error in CCBS_T_ERRORS.items():
        assert tuple(values[f"cCBS-T-{name}"]["value"]) == error.value
