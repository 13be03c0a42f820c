"""Hypothesis strategies for every value of ``ccbs_isdn.rose``: shared types, each
operation's argument and result, and whole components/facilities.

Sizes stay inside what libpri can hold (digits ≤ 20, subaddresses ≤ 20 octets,
Q931InformationElement = BC [+ LLC] [+ HLC] within libpri's 35-octet buffer), so the
libpri cross-check compares values rather than buffer limits. Reusable by other areas.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ccbs_isdn.rose import (
    OPERATIONS,
    Address,
    CallInfoRetainArg,
    CallInformation,
    CCBS_T_RequestArg,
    CCBS_T_RequestRes,
    CCBSBFreeArg,
    CCBSCallArg,
    CCBSDeactivateArg,
    CCBSEraseArg,
    CCBSEraseReason,
    CCBSInterrogateArg,
    CCBSInterrogateRes,
    CCBSRemoteUserFreeArg,
    CCBSRequestArg,
    CCBSRequestRes,
    CCBSStatusRequestArg,
    CCBSStatusRequestRes,
    CCBSStopAlertingArg,
    CompatibilityMode,
    EraseCallLinkageIDArg,
    Facility,
    Invoke,
    NSAPSubaddress,
    NumberingPlan,
    Operation,
    PartyNumber,
    Presentation,
    PresentedNumberUnscreened,
    PrivateTypeOfNumber,
    PublicTypeOfNumber,
    RecallMode,
    Reject,
    ReturnError,
    ReturnResult,
    RoseError,
    StatusRequestArg,
    StatusRequestRes,
    StatusResult,
    UserSpecifiedSubaddress,
)
from ccbs_isdn.rose.operations import ALL_ERRORS, ERROR_BY_VALUE, PROBLEM_NAMES

DIGITS = "0123456789"

invoke_ids = st.integers(-32768, 32767)
seven_bit = st.integers(0, 127)
digits = st.text(alphabet=DIGITS, min_size=1, max_size=20)


@st.composite
def q931_info_elements(draw: st.DrawFn) -> bytes:
    """Bearer capability, optionally LLC and HLC, in Q.931 order (whole IEs)."""
    bc = draw(st.binary(min_size=2, max_size=8))
    out = bytes((0x04, len(bc))) + bc
    if draw(st.booleans()):
        llc = draw(st.binary(min_size=2, max_size=12))
        out += bytes((0x7C, len(llc))) + llc
    if draw(st.booleans()):
        hlc = draw(st.binary(min_size=2, max_size=3))
        out += bytes((0x7D, len(hlc))) + hlc
    return out


party_numbers = st.one_of(
    st.builds(PartyNumber, digits, st.just(NumberingPlan.unknown)),
    st.builds(
        lambda d, ton: PartyNumber(d, NumberingPlan.public, ton),
        digits,
        st.sampled_from(list(PublicTypeOfNumber)),
    ),
    st.builds(
        lambda d, ton: PartyNumber(d, NumberingPlan.private, ton),
        digits,
        st.sampled_from(list(PrivateTypeOfNumber)),
    ),
    st.builds(
        lambda octets: PartyNumber("", NumberingPlan.nsap, 0, octets),
        st.binary(min_size=20, max_size=20),
    ),
    st.builds(
        PartyNumber,
        digits,
        st.sampled_from([NumberingPlan.data, NumberingPlan.telex, NumberingPlan.national_standard]),
    ),
)

party_subaddresses = st.one_of(
    st.builds(
        UserSpecifiedSubaddress,
        st.binary(min_size=1, max_size=20),
        st.one_of(st.none(), st.booleans()),
    ),
    st.builds(NSAPSubaddress, st.binary(min_size=1, max_size=20)),
)

addresses = st.builds(Address, party_numbers, st.one_of(st.none(), party_subaddresses))

presented_numbers_unscreened = st.one_of(
    st.builds(
        PresentedNumberUnscreened,
        st.sampled_from([Presentation.allowed, Presentation.restricted_number]),
        party_numbers,
    ),
    st.builds(
        PresentedNumberUnscreened,
        st.sampled_from([Presentation.restricted, Presentation.not_available]),
    ),
)

recall_modes = st.sampled_from(list(RecallMode))

call_information = st.builds(
    CallInformation,
    addresses,
    q931_info_elements(),
    seven_bit,
    st.one_of(st.none(), party_subaddresses),
)

interrogate_args = st.builds(
    CCBSInterrogateArg, st.one_of(st.none(), seven_bit), st.one_of(st.none(), party_numbers)
)
interrogate_results = st.builds(
    CCBSInterrogateRes,
    recall_modes,
    st.lists(call_information, min_size=0, max_size=2).map(tuple),
)
t_request_args = st.builds(
    CCBS_T_RequestArg,
    addresses,
    q931_info_elements(),
    st.booleans(),
    st.one_of(st.none(), st.booleans()),
    st.one_of(st.none(), addresses),
)
b_free_fields = (recall_modes, seven_bit, addresses, q931_info_elements())

ARGUMENTS: dict[Operation, st.SearchStrategy[Any]] = {
    Operation.StatusRequest: st.builds(
        StatusRequestArg, st.sampled_from(list(CompatibilityMode)), q931_info_elements()
    ),
    Operation.CallInfoRetain: st.builds(CallInfoRetainArg, seven_bit),
    Operation.CCBSRequest: st.builds(CCBSRequestArg, seven_bit),
    Operation.CCBSDeactivate: st.builds(CCBSDeactivateArg, seven_bit),
    Operation.CCBSInterrogate: interrogate_args,
    Operation.CCBSErase: st.builds(
        CCBSEraseArg, *b_free_fields, st.sampled_from(list(CCBSEraseReason))
    ),
    Operation.CCBSRemoteUserFree: st.builds(CCBSRemoteUserFreeArg, *b_free_fields),
    Operation.CCBSCall: st.builds(CCBSCallArg, seven_bit),
    Operation.CCBSStatusRequest: st.builds(
        CCBSStatusRequestArg, recall_modes, seven_bit, q931_info_elements()
    ),
    Operation.CCBSBFree: st.builds(CCBSBFreeArg, *b_free_fields),
    Operation.EraseCallLinkageID: st.builds(EraseCallLinkageIDArg, seven_bit),
    Operation.CCBSStopAlerting: st.builds(CCBSStopAlertingArg, seven_bit),
    Operation.CCBS_T_Request: t_request_args,
    Operation.CCNRRequest: st.builds(CCBSRequestArg, seven_bit),
    Operation.CCNRInterrogate: interrogate_args,
    Operation.CCNR_T_Request: t_request_args,
}

RESULTS: dict[Operation, st.SearchStrategy[Any]] = {
    Operation.StatusRequest: st.builds(StatusRequestRes, st.sampled_from(list(StatusResult))),
    Operation.CCBSRequest: st.builds(CCBSRequestRes, recall_modes, seven_bit),
    Operation.CCBSInterrogate: interrogate_results,
    Operation.CCBSStatusRequest: st.builds(CCBSStatusRequestRes, st.booleans()),
    Operation.CCBS_T_Request: st.builds(CCBS_T_RequestRes, st.booleans()),
    Operation.CCNRRequest: st.builds(CCBSRequestRes, recall_modes, seven_bit),
    Operation.CCNRInterrogate: interrogate_results,
    Operation.CCNR_T_Request: st.builds(CCBS_T_RequestRes, st.booleans()),
}

assert set(ARGUMENTS) == {op for op, spec in OPERATIONS.items() if spec.argument is not None}
assert set(RESULTS) == {op for op, spec in OPERATIONS.items() if spec.result is not None}


def invokes(operation: Operation) -> st.SearchStrategy[Invoke]:
    argument = ARGUMENTS.get(operation, st.none())
    return st.builds(
        Invoke, invoke_ids, st.just(operation), argument, st.one_of(st.none(), invoke_ids)
    )


def return_results(operation: Operation) -> st.SearchStrategy[ReturnResult]:
    if operation in RESULTS:
        return st.builds(ReturnResult, invoke_ids, st.just(operation), RESULTS[operation])
    # no result value: libpri's empty form or the opcode-only form
    return st.builds(ReturnResult, invoke_ids, st.sampled_from([None, operation]))


def return_errors(operation: Operation | None = None) -> st.SearchStrategy[ReturnError]:
    known = OPERATIONS[operation].errors if operation else ALL_ERRORS
    errors = st.sampled_from(list(known or ALL_ERRORS))
    return st.builds(ReturnError, invoke_ids, errors, st.just(operation))


unknown_errors = st.one_of(
    st.integers(-(2**31), 2**31 - 1).filter(lambda v: v not in ERROR_BY_VALUE).map(RoseError),
    # libpri keeps at most 10 OID subidentifiers of 16 bits
    st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=7).map(
        lambda tail: RoseError((0, 4, 0, 999, *tail))
    ),
)

problems = st.sampled_from(list(PROBLEM_NAMES)).flatmap(
    lambda kind: st.tuples(st.just(kind), st.integers(0, len(PROBLEM_NAMES[kind]) - 1))
)
rejects = st.builds(Reject, st.one_of(st.none(), invoke_ids), problems)


def components_of(operation: Operation) -> st.SearchStrategy[Any]:
    return st.one_of(invokes(operation), return_results(operation), return_errors(operation))


components = st.one_of(
    *(components_of(op) for op in Operation),
    rejects,
    st.builds(ReturnError, invoke_ids, unknown_errors),
)

facilities = st.builds(Facility, st.lists(components, min_size=1, max_size=3).map(tuple))
