"""ETSI CCBS/CCNR Facility codec: Q.932 Facility IE, ROSE components, EN 300 359-1 /
EN 301 065-1 / ETS 300 196-1 operations.

Pure package: no I/O, no asyncio, no clock. Every decoder raises only
:class:`ccbs_isdn.errors.FacilityError`, whose ``offset`` says where the bytes went wrong,
``problem`` which ROSE reject problem to answer with (``("invoke", 2)`` …, or None when
nothing should be answered) and ``invoke_id`` the offending invoke id when it was readable.
:func:`reject_for` turns such an error into the :class:`Reject` to send (only for input
addressed to you; broadcast input is ignored, digest §7).

Layout: ``etsi_ccbs.asn`` (the schema, source of truth; asn1tools checks the fast path
against it in the tests), ``types.py`` (typed values), ``ber.py`` + ``schema.py`` (BER
nodes), ``operations.py`` (operation/error tables as data), ``codec.py`` (ROSE
components), ``facility.py`` (IE framing and JSON form).

API
---
* ``encode_ie(facility) -> bytes``            complete IE, ``1C L 91 ...``
* ``decode_ie(data) -> Facility``             complete IE; length must match exactly
* ``encode_contents(facility) -> bytes``      profile octet onwards (CAPI INFO_IND 0x001C)
* ``decode_contents(data) -> Facility``
* ``decode_each(data, ie=False) -> (Facility, errors)``: a bad component does not take
  the other components of the IE down; each bad one comes back as its FacilityError
* ``decode_any(data)``: complete IE if it starts with 1C, else contents
* ``encode_component(c) -> bytes`` / ``decode_component(data, pos, end)``
* ``facility_to_json(f)`` / ``facility_from_json(obj)``: the ``ccbsctl facility`` JSON
* ``Facility(components, profile=0x91, header=b"")``
* ``Invoke(invoke_id, operation, argument=None, linked_id=None)``
* ``ReturnResult(invoke_id, operation=None, result=None)`` — operation None: empty result
* ``ReturnError(invoke_id, error: RoseError, operation=None, parameter=None)``
* ``Reject(invoke_id | None, problem=("invoke", 1))``
* ``Operation`` (StrEnum of ASN.1 operation names), ``OPERATIONS[op] -> OperationSpec``
  (code, argument/result node, errors), ``rose_error(name, operation=None) -> RoseError``
  (``rose_error("longTermDenial", Operation.CCBS_T_Request)`` is {0 4 0 359 2 20};
  without the operation it is {0 4 0 359 1 22}), ``GENERAL_ERRORS``, ``CCBS_ERRORS``,
  ``CCBS_T_ERRORS``.
* argument/result dataclasses (``CCBSRequestArg``, ``CCBSRequestRes``,
  ``CCBSRemoteUserFreeArg``, …) and shared types (``PartyNumber``, ``Address``,
  ``UserSpecifiedSubaddress``, ``NSAPSubaddress``, ``PresentedNumberUnscreened``,
  ``CallInformation``, ``RecallMode``, ``CCBSEraseReason`` …) from ``types.py``.

Building a CCBSRemoteUserFree invoke (digest §3.1 example)::

    >>> from ccbs_isdn.rose import (Address, CCBSRemoteUserFreeArg, Facility, Invoke,
    ...     Operation, PartyNumber, RecallMode, encode_ie)
    >>> invoke = Invoke(70, Operation.CCBSRemoteUserFree, CCBSRemoteUserFreeArg(
    ...     recall_mode=RecallMode.globalRecall, ccbs_reference=1,
    ...     address_of_b=Address(PartyNumber("22")),
    ...     q931_info_element=bytes.fromhex("04038090A3")))
    >>> encode_ie(Facility((invoke,))).hex().upper()
    '1C2391A120020146060604008267010630130A0100020101300480023232400504038090A3'

Decoding a CCBSRequest result (the network accepted the request as reference 1)::

    >>> from ccbs_isdn.rose import decode_ie, ReturnResult
    >>> fac = decode_ie(bytes.fromhex("1C1891A21502011E3010060604008267010230060A0100020101"))
    >>> result = fac.components[0]
    >>> isinstance(result, ReturnResult), result.invoke_id, result.operation
    (True, 30, <Operation.CCBSRequest: 'CCBSRequest'>)
    >>> result.result
    CCBSRequestRes(recall_mode=<RecallMode.globalRecall: 0>, ccbs_reference=1)
"""

from __future__ import annotations

from ccbs_isdn.rose.codec import (
    Component,
    Invoke,
    Reject,
    ReturnError,
    ReturnResult,
    component_from_json,
    component_to_json,
    decode_component,
    encode_component,
    problem_name,
    reject_for,
)
from ccbs_isdn.rose.facility import (
    FACILITY_IE,
    PROFILE_NETWORKING_EXTENSIONS,
    PROFILE_ROSE,
    Facility,
    decode_any,
    decode_contents,
    decode_each,
    decode_ie,
    encode_contents,
    encode_ie,
    facility_from_json,
    facility_to_json,
)
from ccbs_isdn.rose.operations import (
    CCBS_ERRORS,
    CCBS_T_ERRORS,
    GENERAL_ERRORS,
    OPERATIONS,
    Operation,
    OperationSpec,
    RoseError,
    rose_error,
)
from ccbs_isdn.rose.types import (
    Address,
    Argument,
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
    CCNR_T_RequestArg,
    CCNR_T_RequestRes,
    CCNRInterrogateArg,
    CCNRInterrogateRes,
    CCNRRequestArg,
    CCNRRequestRes,
    CompatibilityMode,
    EraseCallLinkageIDArg,
    NSAPSubaddress,
    NumberingPlan,
    PartyNumber,
    PartySubaddress,
    Presentation,
    PresentedNumberUnscreened,
    PrivateTypeOfNumber,
    PublicTypeOfNumber,
    RecallMode,
    Result,
    ScreeningIndicator,
    StatusRequestArg,
    StatusRequestRes,
    StatusResult,
    UserSpecifiedSubaddress,
)

__all__ = [
    "Address",
    "Argument",
    "CCBSBFreeArg",
    "CCBSCallArg",
    "CCBSDeactivateArg",
    "CCBSEraseArg",
    "CCBSEraseReason",
    "CCBSInterrogateArg",
    "CCBSInterrogateRes",
    "CCBSRemoteUserFreeArg",
    "CCBSRequestArg",
    "CCBSRequestRes",
    "CCBSStatusRequestArg",
    "CCBSStatusRequestRes",
    "CCBSStopAlertingArg",
    "CCBS_ERRORS",
    "CCBS_T_ERRORS",
    "CCBS_T_RequestArg",
    "CCBS_T_RequestRes",
    "CCNRInterrogateArg",
    "CCNRInterrogateRes",
    "CCNRRequestArg",
    "CCNRRequestRes",
    "CCNR_T_RequestArg",
    "CCNR_T_RequestRes",
    "CallInfoRetainArg",
    "CallInformation",
    "CompatibilityMode",
    "Component",
    "EraseCallLinkageIDArg",
    "FACILITY_IE",
    "Facility",
    "GENERAL_ERRORS",
    "Invoke",
    "NSAPSubaddress",
    "NumberingPlan",
    "OPERATIONS",
    "Operation",
    "OperationSpec",
    "PROFILE_NETWORKING_EXTENSIONS",
    "PROFILE_ROSE",
    "PartyNumber",
    "PartySubaddress",
    "Presentation",
    "PresentedNumberUnscreened",
    "PrivateTypeOfNumber",
    "PublicTypeOfNumber",
    "RecallMode",
    "Reject",
    "Result",
    "ReturnError",
    "ReturnResult",
    "RoseError",
    "ScreeningIndicator",
    "StatusRequestArg",
    "StatusRequestRes",
    "StatusResult",
    "UserSpecifiedSubaddress",
    "component_from_json",
    "component_to_json",
    "decode_any",
    "decode_component",
    "decode_contents",
    "decode_each",
    "decode_ie",
    "encode_component",
    "encode_contents",
    "encode_ie",
    "facility_from_json",
    "facility_to_json",
    "problem_name",
    "reject_for",
    "rose_error",
]
