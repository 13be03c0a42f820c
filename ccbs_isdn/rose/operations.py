"""The operation and error tables of ETSI CCBS/CCNR as data (digest §2.3, §3, §3.6).

This module owns *which* operations and errors exist: their ASN.1 names, their codes
(OBJECT IDENTIFIER arcs for global values, an int for local values), the node of each
operation's ARGUMENT and RESULT, the errors each operation may return, and the names of
the ROSE reject problems. The codec walks these tables; nothing here encodes bytes by hand.

Error names are not unique: ``longTermDenial`` and ``shortTermDenial`` exist in
CCBS-Operations-and-Errors {0 4 0 359 1} *and* in CCBS-private-networks-Operations-and-
Errors {0 4 0 359 2} with different OIDs. A :class:`RoseError` therefore carries its value
and its module; :func:`rose_error` resolves a name in the context of an operation.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ccbs_isdn.rose import schema as s
from ccbs_isdn.rose.ber import Node

Code = int | tuple[int, ...]  # localValue, or globalValue OID arcs

CCBS = (0, 4, 0, 359, 1)  # EN 300 359-1 CCBS-Operations-and-Errors
CCBS_T = (0, 4, 0, 359, 2)  # EN 300 359-1 CCBS-private-networks-Operations-and-Errors
CCNR = (0, 4, 0, 1065, 1)  # EN 301 065-1 CCNR-Operations-and-Errors
CCNR_T = (0, 4, 0, 1065, 2)  # EN 301 065-1 CCNR-private-networks-Operations-and-Errors
STATUS = (0, 4, 0, 196, 9)  # ETS 300 196-1 annex D Status-Request-Procedure

MODULE_NAMES: dict[tuple[int, ...], str] = {
    CCBS: "CCBS-Operations-and-Errors",
    CCBS_T: "CCBS-private-networks-Operations-and-Errors",
    CCNR: "CCNR-Operations-and-Errors",
    CCNR_T: "CCNR-private-networks-Operations-and-Errors",
    STATUS: "Status-Request-Procedure",
}


class Operation(StrEnum):
    """Every operation the codec knows; the value is the ASN.1 operation name."""

    StatusRequest = "StatusRequest"
    CallInfoRetain = "CallInfoRetain"
    CCBSRequest = "CCBSRequest"
    CCBSDeactivate = "CCBSDeactivate"
    CCBSInterrogate = "CCBSInterrogate"
    CCBSErase = "CCBSErase"
    CCBSRemoteUserFree = "CCBSRemoteUserFree"
    CCBSCall = "CCBSCall"
    CCBSStatusRequest = "CCBSStatusRequest"
    CCBSBFree = "CCBSBFree"
    EraseCallLinkageID = "EraseCallLinkageID"
    CCBSStopAlerting = "CCBSStopAlerting"
    CCBS_T_Request = "CCBS-T-Request"
    CCBS_T_Call = "CCBS-T-Call"
    CCBS_T_Suspend = "CCBS-T-Suspend"
    CCBS_T_Resume = "CCBS-T-Resume"
    CCBS_T_RemoteUserFree = "CCBS-T-RemoteUserFree"
    CCBS_T_Available = "CCBS-T-Available"
    CCNRRequest = "CCNRRequest"
    CCNRInterrogate = "CCNRInterrogate"
    CCNR_T_Request = "CCNR-T-Request"


@dataclass(frozen=True, slots=True)
class RoseError:
    """An ErrorValue: ``value`` is the local int or the OID arcs; equality is by value.

    ``name`` is the ASN.1 error name (None for a value no table knows; such errors still
    decode and re-encode byte-identically).
    """

    value: Code
    name: str | None = field(default=None, compare=False)

    @property
    def module(self) -> str:
        if isinstance(self.value, int):
            return "General-Errors"
        return MODULE_NAMES.get(self.value[:-1], "unknown module")

    @property
    def dotted(self) -> str:
        """``0.4.0.359.2.21`` for a global value, ``3`` for a local one."""
        if isinstance(self.value, int):
            return str(self.value)
        return ".".join(str(arc) for arc in self.value)

    def __str__(self) -> str:
        return self.name or f"error {self.dotted}"


def _errors(prefix: Code | None, table: dict[str, int]) -> dict[str, RoseError]:
    if prefix is None:
        return {name: RoseError(value, name) for name, value in table.items()}
    assert isinstance(prefix, tuple)
    return {name: RoseError((*prefix, value), name) for name, value in table.items()}


# ETS 300 196-1 General-Errors (localValue; digest §3.6)
GENERAL_ERRORS = _errors(
    None,
    {
        "notSubscribed": 0,
        "rejectedByNetwork": 1,
        "rejectedByUser": 2,
        "notAvailable": 3,
        "notImplemented": 4,
        "insufficientInformation": 5,
        "invalidServedUserNr": 6,
        "invalidCallState": 7,
        "basicServiceNotProvided": 8,
        "notIncomingCall": 9,
        "supplementaryServiceInteractionNotAllowed": 10,
        "resourceUnavailable": 11,
        "callFailure": 25,
        "proceduralError": 43,
    },
)

# EN 300 359-1 §3.1 errors {0 4 0 359 1 n}; CCNR uses these too (digest §3 notes)
CCBS_ERRORS = _errors(
    CCBS,
    {
        "invalidCallLinkageID": 20,
        "invalidCCBSReference": 21,
        "longTermDenial": 22,
        "shortTermDenial": 23,
        "cCBSIsAlreadyActivated": 24,
        "alreadyAccepted": 25,
        "outgoingCCBSQueueFull": 26,
        "callFailureReasonNotBusy": 27,
        "notReadyForCall": 28,
    },
)

# EN 300 359-1 §3.3 errors {0 4 0 359 2 n}
CCBS_T_ERRORS = _errors(CCBS_T, {"longTermDenial": 20, "shortTermDenial": 21})

ALL_ERRORS: tuple[RoseError, ...] = (
    *GENERAL_ERRORS.values(),
    *CCBS_ERRORS.values(),
    *CCBS_T_ERRORS.values(),
)
ERROR_BY_VALUE: dict[Code, RoseError] = {e.value: e for e in ALL_ERRORS}


def _pick(*names: str) -> tuple[RoseError, ...]:
    out = []
    for name in names:
        out.append(GENERAL_ERRORS.get(name) or CCBS_ERRORS[name])
    return tuple(out)


_REQUEST_ERRORS = _pick(
    "notSubscribed",
    "invalidCallLinkageID",
    "shortTermDenial",
    "longTermDenial",
    "cCBSIsAlreadyActivated",
    "supplementaryServiceInteractionNotAllowed",
    "outgoingCCBSQueueFull",
    "callFailureReasonNotBusy",
    "notAvailable",
)
_INTERROGATE_ERRORS = _pick("invalidCCBSReference", "notSubscribed")
_T_REQUEST_ERRORS = (
    CCBS_T_ERRORS["shortTermDenial"],
    GENERAL_ERRORS["notSubscribed"],
    CCBS_T_ERRORS["longTermDenial"],
)


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """One row of the catalogue (digest §3): code, ARGUMENT/RESULT nodes, ERRORS."""

    operation: Operation
    code: Code
    argument: Node | None
    result: Node | None
    errors: tuple[RoseError, ...] = ()

    @property
    def module(self) -> str:
        if isinstance(self.code, int):
            return "local"
        return MODULE_NAMES.get(self.code[:-1], "unknown module")

    @property
    def dotted(self) -> str:
        if isinstance(self.code, int):
            return str(self.code)
        return ".".join(str(arc) for arc in self.code)


_O = Operation
OPERATIONS: dict[Operation, OperationSpec] = {
    spec.operation: spec
    for spec in (
        OperationSpec(_O.StatusRequest, (*STATUS, 1), s.STATUS_REQUEST_ARG, s.STATUS_REQUEST_RES),
        OperationSpec(_O.CallInfoRetain, (*CCBS, 1), s.CALL_INFO_RETAIN_ARG, None),
        OperationSpec(
            _O.CCBSRequest, (*CCBS, 2), s.CCBS_REQUEST_ARG, s.CCBS_REQUEST_RES, _REQUEST_ERRORS
        ),
        OperationSpec(
            _O.CCBSDeactivate,
            (*CCBS, 3),
            s.CCBS_DEACTIVATE_ARG,
            None,
            _pick("notSubscribed", "invalidCCBSReference"),
        ),
        OperationSpec(
            _O.CCBSInterrogate,
            (*CCBS, 4),
            s.CCBS_INTERROGATE_ARG,
            s.CCBS_INTERROGATE_RES,
            _INTERROGATE_ERRORS,
        ),
        OperationSpec(_O.CCBSErase, (*CCBS, 5), s.CCBS_ERASE_ARG, None),
        OperationSpec(_O.CCBSRemoteUserFree, (*CCBS, 6), s.CCBS_REMOTE_USER_FREE_ARG, None),
        OperationSpec(
            _O.CCBSCall,
            (*CCBS, 7),
            s.CCBS_CALL_ARG,
            None,
            _pick("invalidCCBSReference", "alreadyAccepted", "notReadyForCall"),
        ),
        OperationSpec(
            _O.CCBSStatusRequest, (*CCBS, 8), s.CCBS_STATUS_REQUEST_ARG, s.CCBS_STATUS_REQUEST_RES
        ),
        OperationSpec(_O.CCBSBFree, (*CCBS, 9), s.CCBS_B_FREE_ARG, None),
        OperationSpec(_O.EraseCallLinkageID, (*CCBS, 10), s.ERASE_CALL_LINKAGE_ID_ARG, None),
        OperationSpec(_O.CCBSStopAlerting, (*CCBS, 11), s.CCBS_STOP_ALERTING_ARG, None),
        OperationSpec(
            _O.CCBS_T_Request,
            (*CCBS_T, 1),
            s.CCBS_T_REQUEST_ARG,
            s.CCBS_T_REQUEST_RES,
            _T_REQUEST_ERRORS,
        ),
        OperationSpec(_O.CCBS_T_Call, (*CCBS_T, 2), None, None),
        OperationSpec(_O.CCBS_T_Suspend, (*CCBS_T, 3), None, None),
        OperationSpec(_O.CCBS_T_Resume, (*CCBS_T, 4), None, None),
        OperationSpec(_O.CCBS_T_RemoteUserFree, (*CCBS_T, 5), None, None),
        OperationSpec(_O.CCBS_T_Available, (*CCBS_T, 6), None, None),
        OperationSpec(
            _O.CCNRRequest, (*CCNR, 1), s.CCBS_REQUEST_ARG, s.CCBS_REQUEST_RES, _REQUEST_ERRORS
        ),
        OperationSpec(
            _O.CCNRInterrogate,
            (*CCNR, 2),
            s.CCBS_INTERROGATE_ARG,
            s.CCBS_INTERROGATE_RES,
            _INTERROGATE_ERRORS,
        ),
        OperationSpec(
            _O.CCNR_T_Request,
            (*CCNR_T, 1),
            s.CCBS_T_REQUEST_ARG,
            s.CCBS_T_REQUEST_RES,
            _T_REQUEST_ERRORS,
        ),
    )
}
OPERATION_BY_CODE: dict[Code, OperationSpec] = {spec.code: spec for spec in OPERATIONS.values()}


def rose_error(name: str, operation: Operation | str | None = None) -> RoseError:
    """The error called ``name``, as ``operation`` would return it.

    Without an operation, a name is looked up in General-Errors, then the CCBS module,
    then the CCBS-T module (so ``longTermDenial`` alone means {0 4 0 359 1 22}). A dotted
    OID (``0.4.0.359.2.20``) or a decimal local value is accepted as well.
    Raises KeyError for an unknown name.
    """
    if operation is not None:
        for error in OPERATIONS[Operation(operation)].errors:
            if error.name == name:
                return error
    for table in (GENERAL_ERRORS, CCBS_ERRORS, CCBS_T_ERRORS):
        if name in table:
            return table[name]
    code = parse_code(name)
    if code is None:
        raise KeyError(name)
    return ERROR_BY_VALUE.get(code) or RoseError(code)


def parse_code(text: str) -> Code | None:
    """``"0.4.0.359.1.2"`` → OID arcs, ``"3"`` → 3; None when it is neither."""
    parts = text.split(".")
    if not all(p.isdigit() for p in parts):
        if len(parts) == 1 and text.startswith("-") and text[1:].isdigit():
            return int(text)
        return None
    if len(parts) == 1:
        return int(text)
    arcs = tuple(int(p) for p in parts)
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        return None
    return arcs


# ------------------------------------------------------------ ROSE reject problems
# X.880 / Q.932 Reject.problem: [0] general, [1] invoke, [2] returnResult, [3] returnError.
# The keys match errors.FacilityError.problem ("general", 2) etc.

PROBLEM_CLASSES: dict[str, tuple[int, str]] = {
    "general": (0x80, "generalProblem"),
    "invoke": (0x81, "invokeProblem"),
    "returnResult": (0x82, "returnResultProblem"),
    "returnError": (0x83, "returnErrorProblem"),
}

PROBLEM_NAMES: dict[str, tuple[str, ...]] = {
    "general": ("unrecognizedComponent", "mistypedComponent", "badlyStructuredComponent"),
    "invoke": (
        "duplicateInvocation",
        "unrecognizedOperation",
        "mistypedArgument",
        "resourceLimitation",
        "initiatorReleasing",
        "unrecognizedLinkedId",
        "linkedResponseUnexpected",
        "unexpectedChildOperation",
    ),
    "returnResult": ("unrecognizedInvocation", "resultResponseUnexpected", "mistypedResult"),
    "returnError": (
        "unrecognizedInvocation",
        "errorResponseUnexpected",
        "unrecognizedError",
        "unexpectedError",
        "mistypedParameter",
    ),
}
