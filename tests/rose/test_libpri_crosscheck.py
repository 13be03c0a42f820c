"""Cross-check with an independent implementation: hypothesis builds random valid values
of every operation (invoke, result, error) and every reject; our encoder turns them into
Facility IE contents; Debian's libpri decodes those bytes; every value libpri reports must
equal ours, field by field, in encoding order."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccbs_isdn.rose import (
    Address,
    CallInfoRetainArg,
    CallInformation,
    CCBS_T_RequestArg,
    CCBS_T_RequestRes,
    CCBSBFreeArg,
    CCBSCallArg,
    CCBSDeactivateArg,
    CCBSEraseArg,
    CCBSInterrogateArg,
    CCBSInterrogateRes,
    CCBSRemoteUserFreeArg,
    CCBSRequestArg,
    CCBSRequestRes,
    CCBSStatusRequestArg,
    CCBSStatusRequestRes,
    CCBSStopAlertingArg,
    Component,
    EraseCallLinkageIDArg,
    Facility,
    Invoke,
    NSAPSubaddress,
    NumberingPlan,
    Operation,
    PartyNumber,
    PartySubaddress,
    Reject,
    ReturnError,
    ReturnResult,
    StatusRequestArg,
    StatusRequestRes,
    encode_contents,
)
from ccbs_isdn.rose.operations import OPERATIONS
from tests.oracle.libpri import libpri_decode, require_libpri
from tests.rose import strategies as S

Fields = list[tuple[str, Any]]
# structural lines that still carry information: which CHOICE alternative was taken
MARKERS = {"publicPartyNumber", "privatePartyNumber", "user"}
# ETS 300 196 General-Errors libpri knows in ETSI mode; the Q.950-only ones it does not
Q950_ONLY = {
    "rejectedByNetwork",
    "rejectedByUser",
    "insufficientInformation",
    "callFailure",
    "proceduralError",
}
LIBPRI_PREFIX = {
    "General-Errors": "General: ",
    "CCBS-Operations-and-Errors": "CCBS: ",
    "CCBS-private-networks-Operations-and-Errors": "CCBS-T: ",
}
PROBLEM_FIELDS = {
    "general": "problemGeneral",
    "invoke": "problemInvoke",
    "returnResult": "problemResult",
    "returnError": "problemError",
}


def _subids(arcs: tuple[int, ...]) -> str:
    """libpri prints OID subidentifiers: {0 4 0 359 1 6} → 4.0.359.1.6."""
    return ".".join(str(n) for n in (arcs[0] * 40 + arcs[1], *arcs[2:]))


def party_number(number: PartyNumber) -> Fields:
    if number.plan is NumberingPlan.public or number.plan is NumberingPlan.private:
        return [
            (number.plan.value, None),
            ("typeOfNumber", int(number.type_of_number)),
            ("numberDigits", number.digits),
        ]
    if number.plan is NumberingPlan.nsap:
        return [("nsapEncodedPartyNumber", number.nsap)]
    return [(number.plan.value, number.digits)]


def subaddress(sub: PartySubaddress | None) -> Fields:
    if sub is None:
        return []
    if isinstance(sub, NSAPSubaddress):
        return [("nsap", sub.octets)]
    out: Fields = [("user", None), ("subaddressInformation", sub.subaddress_information)]
    if sub.odd_count_indicator is not None:
        out.append(("oddCount", int(sub.odd_count_indicator)))
    return out


def address(addr: Address) -> Fields:
    return party_number(addr.party_number) + subaddress(addr.party_subaddress)


def value_fields(value: Any) -> Fields:
    """Our argument/result value as libpri names its fields."""
    match value:
        case StatusRequestArg():
            return [
                ("compatibilityMode", int(value.compatibility_mode)),
                ("q931ie", value.q931_information_element),
            ]
        case StatusRequestRes():
            return [("status", int(value.status_result))]
        case CallInfoRetainArg() | EraseCallLinkageIDArg() | CCBSRequestArg():
            return [("callLinkageId", value.call_linkage_id)]
        case CCBSRequestRes():
            return [("recallMode", int(value.recall_mode)), ("ccbsReference", value.ccbs_reference)]
        case CCBSDeactivateArg() | CCBSCallArg() | CCBSStopAlertingArg():
            return [("ccbsReference", value.ccbs_reference)]
        case CCBSInterrogateArg():
            out: Fields = []
            if value.ccbs_reference is not None:
                out.append(("ccbsReference", value.ccbs_reference))
            if value.party_number_of_a is not None:
                out += party_number(value.party_number_of_a)
            return out
        case CCBSInterrogateRes():
            out = [("recallMode", int(value.recall_mode))]
            for entry in value.call_details:
                assert isinstance(entry, CallInformation)
                out += address(entry.address_of_b)
                out += [
                    ("q931ie", entry.q931_info_element),
                    ("ccbsReference", entry.ccbs_reference),
                ]
                out += subaddress(entry.sub_address_of_a)
            return out
        case CCBSEraseArg() | CCBSRemoteUserFreeArg() | CCBSBFreeArg():
            out = [("recallMode", int(value.recall_mode)), ("ccbsReference", value.ccbs_reference)]
            out += address(value.address_of_b) + [("q931ie", value.q931_info_element)]
            if isinstance(value, CCBSEraseArg):
                out.append(("eraseReason", int(value.erase_reason)))
            return out
        case CCBSStatusRequestArg():
            return [
                ("recallMode", int(value.recall_mode)),
                ("ccbsReference", value.ccbs_reference),
                ("q931ie", value.q931_info_element),
            ]
        case CCBSStatusRequestRes():
            return [("free", int(value.free))]
        case CCBS_T_RequestArg():
            out = address(value.destination_address) + [("q931ie", value.q931_info_element)]
            if value.retention_supported:
                out.append(("retentionSupported", 1))
            if value.presentation_allowed_indicator is not None:
                out.append(
                    ("presentationAllowedIndicator", int(value.presentation_allowed_indicator))
                )
            if value.originating_address is not None:
                out += address(value.originating_address)
            return out
        case CCBS_T_RequestRes():
            return [("retentionSupported", int(value.retention_supported))]
    raise AssertionError(f"no libpri view for {value!r}")


def _operation_fields(operation: Operation) -> Fields:
    spec = OPERATIONS[operation]
    assert isinstance(spec.code, tuple)
    return [
        ("operationValue", _subids(spec.code)),
        ("operationName", "ROSE_ETSI_" + operation.value.replace("-", "_")),
    ]


def expected_fields(component: Component) -> Fields:
    if isinstance(component, Invoke):
        out: Fields = [("invokeId", component.invoke_id)]
        if component.linked_id is not None:
            out.append(("linkedId", component.linked_id))
        out += _operation_fields(component.operation)
        if component.argument is not None:
            out += value_fields(component.argument)
        return out
    if isinstance(component, ReturnResult):
        out = [("invokeId", component.invoke_id)]
        if component.operation is not None:
            out += _operation_fields(component.operation)
            if component.result is not None:
                out += value_fields(component.result)
        return out
    if isinstance(component, ReturnError):
        value = component.error.value
        shown = value if isinstance(value, int) else _subids(value)
        return [("invokeId", component.invoke_id), ("errorValue", shown)]
    assert isinstance(component, Reject)
    out = [] if component.invoke_id is None else [("invokeId", component.invoke_id)]
    return out + [(PROBLEM_FIELDS[component.problem[0]], component.problem[1])]


def libpri_fields(contents: bytes) -> tuple[Fields, list[str], list[Any]]:
    dump = libpri_decode(contents)
    fields: Fields = []
    names: list[Any] = []
    for comp in dump.components:
        for name, _type, value in comp.fields:
            if name in ("errorName", "problemName"):
                names.append(value)
            elif value is not None or name in MARKERS:
                fields.append((name, value))
    return fields, dump.problems, names


def check(component: Component) -> None:
    contents = encode_contents(Facility((component,)))
    fields, problems, names = libpri_fields(contents)
    assert problems == [], (contents.hex(), problems)
    assert fields == expected_fields(component), contents.hex()
    if isinstance(component, ReturnError):
        # libpri names the error by its own table: the module must match ours, which
        # tells {0 4 0 359 1 22} longTermDenial from {0 4 0 359 2 20} longTermDenial
        name = component.error.name
        if name is None or name in Q950_ONLY:
            assert names == ["Unknown error-value code"]
        else:
            assert names[0].startswith(LIBPRI_PREFIX[component.error.module]), names
    if isinstance(component, Reject):
        assert "Unknown" not in names[0]


@pytest.fixture(autouse=True)
def _libpri() -> None:
    require_libpri()


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("operation", list(Operation), ids=[o.value for o in Operation])
@SETTINGS
@given(data=st.data())
def test_libpri_reads_our_encoding_of_every_operation(
    operation: Operation, data: st.DataObject
) -> None:
    check(data.draw(S.invokes(operation), label="invoke"))
    check(data.draw(S.return_results(operation), label="returnResult"))
    check(data.draw(S.return_errors(operation), label="returnError"))


@SETTINGS
@given(component=st.one_of(S.rejects, st.builds(ReturnError, S.invoke_ids, S.unknown_errors)))
def test_libpri_reads_our_rejects_and_unknown_errors(component: Component) -> None:
    check(component)


def test_the_view_itself_can_fail() -> None:
    # guard against a comparison that always passes: a wrong value must be noticed
    invoke = Invoke(5, Operation.CCBSCall, CCBSCallArg(3))
    fields, _problems, _names = libpri_fields(encode_contents(Facility((invoke,))))
    assert fields == expected_fields(invoke)
    assert fields != expected_fields(Invoke(5, Operation.CCBSCall, CCBSCallArg(4)))
