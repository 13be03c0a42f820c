"""The exchange's use of ``ccbs_isdn.rose``: Facility IE contents in and out.

Owns the translation between the exchange's vocabulary (numbers as digit strings,
``ccbs_isdn.isdn`` enums, raw BC/HLC/LLC bytes) and the codec's typed ROSE components,
so that ``exchange.py`` never builds a component by hand. Every byte goes through the
project codec (``ccbs_isdn.rose``); this module adds no BER of its own.

Outgoing: one component per Facility IE, profile 0x91, no networking-extension header
(ETSI DSS1, etsi-ccbs.md §2.1). Incoming: decoded tolerantly by the codec; its
``FacilityError`` (with the ROSE reject problem to answer) is passed on to the caller.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from ccbs_isdn.errors import FacilityError
from ccbs_isdn.isdn import DestinationStatus, EraseReason, RecallMode
from ccbs_isdn.rose import types as t
from ccbs_isdn.rose.codec import Component, Invoke, Reject, ReturnError, ReturnResult
from ccbs_isdn.rose.facility import Facility, decode_contents, encode_contents
from ccbs_isdn.rose.operations import Operation, rose_error

__all__ = [
    "Component",
    "Invoke",
    "Reject",
    "ReturnError",
    "ReturnResult",
    "decode",
    "describe",
    "number_of",
    "status_of",
]

_RECALL_MODE = {
    RecallMode.GLOBAL: t.RecallMode.globalRecall,
    RecallMode.SPECIFIC: t.RecallMode.specificRecall,
}
_ERASE_REASON = {
    EraseReason.NORMAL_UNSPECIFIED: t.CCBSEraseReason.normal_unspecified,
    EraseReason.T_CCBS2_TIMEOUT: t.CCBSEraseReason.t_CCBS2_timeout,
    EraseReason.T_CCBS3_TIMEOUT: t.CCBSEraseReason.t_CCBS3_timeout,
    EraseReason.BASIC_CALL_FAILED: t.CCBSEraseReason.basic_call_failed,
}
_DESTINATION_STATUS = {
    t.StatusResult.compatibleAndFree: DestinationStatus.COMPATIBLE_AND_FREE,
    t.StatusResult.compatibleAndBusy: DestinationStatus.COMPATIBLE_AND_BUSY,
    t.StatusResult.incompatible: DestinationStatus.INCOMPATIBLE,
}


# ------------------------------------------------------------------------- decoding


def decode(contents: bytes) -> tuple[Component, ...]:
    """The components of one Facility IE (contents, profile octet onwards).

    Raises only ``FacilityError`` (its ``problem``/``invoke_id`` say what to reject).
    """
    return decode_contents(contents).components


def number_of(address: t.Address | t.PartyNumber | None) -> str | None:
    """The digits of an Address / PartyNumber (any numbering plan), or None."""
    if address is None:
        return None
    number = address.party_number if isinstance(address, t.Address) else address
    return number.digits


def status_of(result: object) -> DestinationStatus | None:
    """A StatusRequest result as ``ccbs_isdn.isdn.DestinationStatus`` (None: not one)."""
    if isinstance(result, t.StatusRequestRes):
        return _DESTINATION_STATUS.get(result.status_result)
    return None


def describe(contents: bytes) -> str:
    """One short line for the exchange's log; never raises."""
    try:
        components = decode(contents)
    except FacilityError as exc:
        return f"undecodable facility {contents.hex()}: {exc}"
    return "; ".join(_describe(c) for c in components)


def _describe(component: Component) -> str:
    if isinstance(component, Invoke):
        arg = "" if component.argument is None else _args(component.argument)
        return f"{component.operation}({arg}) id={component.invoke_id}"
    if isinstance(component, ReturnResult):
        res = "" if component.result is None else _args(component.result)
        op = component.operation or "empty"
        return f"result {op}({res}) id={component.invoke_id}"
    if isinstance(component, ReturnError):
        return f"error {component.error} id={component.invoke_id}"
    return f"reject {component.problem_name} id={component.invoke_id}"


def _args(value: object) -> str:
    slots = getattr(type(value), "__slots__", ())
    parts = []
    for name in slots:
        item = getattr(value, name)
        if item is None or item == () or item == b"":
            continue
        if isinstance(item, bytes):
            text = item.hex()
        elif isinstance(item, t.Address | t.PartyNumber):
            text = number_of(item) or "?"
        elif isinstance(item, t.Asn1Enum):
            text = item.asn1_name
        elif isinstance(item, tuple):
            text = f"[{len(item)}]"
        else:
            text = str(item)
        parts.append(f"{name}={text}")
    return ", ".join(parts)


# ------------------------------------------------------------------------- encoding


def _ie(component: Component) -> bytes:
    return encode_contents(Facility((component,)))


def _address(number: str) -> t.Address:
    # unknownPartyNumber, as in libpri's and the vectors' CCBS encodings
    return t.Address(t.PartyNumber(number, t.NumberingPlan.unknown))


def call_info_retain(invoke_id: int, linkage_id: int) -> bytes:
    return _ie(Invoke(invoke_id, Operation.CallInfoRetain, t.CallInfoRetainArg(linkage_id)))


def erase_call_linkage_id(invoke_id: int, linkage_id: int) -> bytes:
    return _ie(Invoke(invoke_id, Operation.EraseCallLinkageID, t.EraseCallLinkageIDArg(linkage_id)))


def ccbs_status_request(invoke_id: int, mode: RecallMode, reference: int, bearer: bytes) -> bytes:
    arg = t.CCBSStatusRequestArg(_RECALL_MODE[mode], reference, bearer)
    return _ie(Invoke(invoke_id, Operation.CCBSStatusRequest, arg))


def ccbs_remote_user_free(
    invoke_id: int, mode: RecallMode, reference: int, b_number: str, bearer: bytes
) -> bytes:
    arg = t.CCBSRemoteUserFreeArg(_RECALL_MODE[mode], reference, _address(b_number), bearer)
    return _ie(Invoke(invoke_id, Operation.CCBSRemoteUserFree, arg))


def ccbs_b_free(
    invoke_id: int, mode: RecallMode, reference: int, b_number: str, bearer: bytes
) -> bytes:
    arg = t.CCBSBFreeArg(_RECALL_MODE[mode], reference, _address(b_number), bearer)
    return _ie(Invoke(invoke_id, Operation.CCBSBFree, arg))


def ccbs_erase(
    invoke_id: int,
    mode: RecallMode,
    reference: int,
    b_number: str,
    bearer: bytes,
    reason: EraseReason,
) -> bytes:
    arg = t.CCBSEraseArg(
        _RECALL_MODE[mode], reference, _address(b_number), bearer, _ERASE_REASON[reason]
    )
    return _ie(Invoke(invoke_id, Operation.CCBSErase, arg))


def ccbs_stop_alerting(invoke_id: int, reference: int) -> bytes:
    return _ie(Invoke(invoke_id, Operation.CCBSStopAlerting, t.CCBSStopAlertingArg(reference)))


def status_request(invoke_id: int, bearer: bytes) -> bytes:
    """StatusRequest (ETS 300 196-1 annex D), compatibilityMode allBasicServices."""
    arg = t.StatusRequestArg(t.CompatibilityMode.allBasicServices, bearer)
    return _ie(Invoke(invoke_id, Operation.StatusRequest, arg))


def cct_invoke(invoke_id: int, operation: str) -> bytes:
    """An argument-less CCBS-T operation (CCBS-T-Available, CCBS-T-RemoteUserFree)."""
    return _ie(Invoke(invoke_id, Operation(operation)))


def request_result(invoke_id: int, operation: str, mode: RecallMode, reference: int) -> bytes:
    res = t.CCBSRequestRes(_RECALL_MODE[mode], reference)
    return _ie(ReturnResult(invoke_id, Operation(operation), res))


def empty_result(invoke_id: int) -> bytes:
    """The empty return result libpri sends, e.g. for CCBSDeactivate (§3 notes)."""
    return _ie(ReturnResult(invoke_id))


def interrogate_result(
    invoke_id: int,
    operation: str,
    mode: RecallMode,
    details: list[tuple[str, bytes, int]],
) -> bytes:
    """CCBSInterrogate/CCNRInterrogate result; entries (B, bearer, reference).

    Like libpri, CallInformation entries are dropped from the end until the IE fits."""
    infos = [t.CallInformation(_address(b), bearer, ref) for b, bearer, ref in details]
    while True:
        res = t.CCBSInterrogateRes(_RECALL_MODE[mode], tuple(infos))
        try:
            return _ie(ReturnResult(invoke_id, Operation(operation), res))
        except FacilityError:
            if not infos:
                raise
            infos.pop()


def cct_request_result(invoke_id: int, operation: str, retention: bool) -> bytes:
    res = t.CCBS_T_RequestRes(retention)
    return _ie(ReturnResult(invoke_id, Operation(operation), res))


def return_error(invoke_id: int, operation: str, error: str) -> bytes:
    """ReturnError *error* as *operation* returns it (shortTermDenial of CCBS-T-Request
    is {0 4 0 359 2 21}, that of CCBSRequest {0 4 0 359 1 23})."""
    op = Operation(operation)
    return _ie(ReturnError(invoke_id, rose_error(error, op), op))


def reject(invoke_id: int | None, problem: tuple[str, int]) -> bytes:
    return _ie(Reject(invoke_id, problem))
