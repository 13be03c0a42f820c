"""Small helpers between CAPI Facility IE contents and ``ccbs_isdn.rose``.

This module owns the few conversions the CAPI driver and the simulated card firmware
share on the raw-Facility route: one Facility IE's contents (as carried by INFO_IND
0x001C and the Facility data array, profile octet onwards) to ROSE components and back,
and the argument/result values of the ETSI CCBS operations they build (EN 300 359-1,
EN 301 065-1, ETS 300 196-1 annex D). It is pure and never raises anything but
:class:`ccbs_isdn.errors.FacilityError` for bad input.
"""

from __future__ import annotations

from ccbs_isdn import rose
from ccbs_isdn.rose import Address, Operation, PartyNumber

InInvoke = rose.Invoke
InResult = rose.ReturnResult
InError = rose.ReturnError
InReject = rose.Reject
Component = rose.Component


def decode(contents: bytes) -> tuple[Component, ...]:
    """Components of one Facility IE's contents (FacilityError when malformed)."""
    return tuple(rose.decode_contents(contents).components)


def _contents(component: Component) -> bytes:
    return rose.encode_contents(rose.Facility((component,)))


def invoke(invoke_id: int, operation: str, argument: rose.Argument | None = None) -> bytes:
    return _contents(rose.Invoke(invoke_id, Operation(operation), argument))


def result(invoke_id: int, operation: str | None, value: rose.Result | None = None) -> bytes:
    op = Operation(operation) if operation is not None else None
    return _contents(rose.ReturnResult(invoke_id, op, value))


def error(invoke_id: int, name: str, operation: str | None = None) -> bytes:
    op = Operation(operation) if operation is not None else None
    return _contents(rose.ReturnError(invoke_id, rose.rose_error(name, op), op))


def error_name(component: rose.ReturnError) -> str:
    return component.error.name or f"error {component.error.dotted}"


def party_number(digits: str) -> PartyNumber:
    return PartyNumber(digits)


def address(digits: str) -> Address:
    return Address(PartyNumber(digits))


def address_digits(value: Address | None) -> str:
    if value is None:
        return ""
    return value.party_number.digits


def linkage_of(component: rose.Invoke) -> int:
    """The CallLinkageID argument of CallInfoRetain / EraseCallLinkageID / requests."""
    value = getattr(component.argument, "call_linkage_id", 0)
    return int(value) & 0x7F


def reference_of(component: rose.Invoke) -> int:
    value = getattr(component.argument, "ccbs_reference", 0)
    return int(value) & 0x7F


def request_arg(linkage_id: int) -> rose.CCBSRequestArg:
    return rose.CCBSRequestArg(linkage_id)


def deactivate_arg(reference: int) -> rose.CCBSDeactivateArg:
    return rose.CCBSDeactivateArg(reference)


def interrogate_arg(reference: int | None, party: str | None) -> rose.CCBSInterrogateArg:
    return rose.CCBSInterrogateArg(reference, PartyNumber(party) if party else None)


def call_arg(reference: int) -> rose.CCBSCallArg:
    return rose.CCBSCallArg(reference)


def status_res(free: bool) -> rose.CCBSStatusRequestRes:
    return rose.CCBSStatusRequestRes(free)


def cct_request_arg(called: str, bearer: bytes, calling: str) -> rose.CCBS_T_RequestArg:
    """CCBS-T-Request / CCNR-T-Request argument: B's address and the bearer of the failed
    call; A's number with presentation allowed when known (libpri's habit, §3.3)."""
    return rose.CCBS_T_RequestArg(
        destination_address=address(called),
        q931_info_element=bearer,
        presentation_allowed_indicator=True if calling else None,
        originating_address=address(calling) if calling else None,
    )


def destination_status_res(status: int) -> rose.StatusRequestRes:
    return rose.StatusRequestRes(rose.StatusResult(status))
