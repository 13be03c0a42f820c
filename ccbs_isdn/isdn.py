"""The ISDN service contract between the ``capi20`` driver and its users (engine, runtime).

This module owns the *vocabulary* only: frozen dataclasses for what an ISDN controller
reports (indications) and what we ask of it (commands). It does no I/O.

Both CCBS routes of a controller — CAPI supplementary services (facility selector 3,
the card's firmware speaks ROSE) and raw ETSI Facility IEs (we speak ROSE ourselves,
``ccbs_isdn.rose``) — are hidden behind this contract: the driver translates. The
engine never sees a PLCI, a CAPI message or a ROSE component.

Identifiers:

* ``ctrl`` — CAPI controller number (1-based). Every id the network gives
  (CallLinkageID, CCBSReference) is only unique per controller (EN 300 359-1).
* ``call_id`` — the driver's id for one basic call (outgoing or incoming), a string
  unique within the driver's lifetime.
* ``handle`` — our own tag for one outstanding CC operation (request, deactivate,
  interrogate), chosen by the caller of the command and echoed in the result; for
  CCBS-T (PTP) it also names the REGISTER signalling connection of the request.
* ``token`` — the driver's opaque id for an indication that must be answered
  (CCBSStatusRequest, StatusRequest); echo it in the answer command.

Q.850 causes are plain ints (17 = user busy, 16 = normal clearing, 18 no user
responding, 19 no answer). ``bearer`` is the Q.931 information elements (BC, then
HLC/LLC if any; complete IEs with id and length) of the original call: stored and
replayed byte-exactly (EN 300 359-1 requires the recall to match the original call).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# Q.850 cause values used by CCBS decisions
CAUSE_NORMAL_CLEARING = 16
CAUSE_USER_BUSY = 17
CAUSE_NO_USER_RESPONDING = 18
CAUSE_NO_ANSWER = 19
CAUSE_CALL_REJECTED = 21
CAUSE_NORMAL_UNSPECIFIED = 31

#: BC speech, 64 kbit/s circuit mode, A-law — the default bearer of an analog caller.
BEARER_SPEECH = bytes.fromhex("04038090A3")


class CcRoute(enum.Enum):
    """How a controller carries CCBS."""

    SUPPLEMENTARY = "supplementary"  # CAPI facility selector 3
    RAW_FACILITY = "raw"  # Facility IEs through INFO_REQ/INFO_IND


class CcKind(enum.Enum):
    CCBS = "ccbs"  # completion on busy subscriber, EN 300 359-1
    CCNR = "ccnr"  # completion on no reply, EN 301 065-1


class EraseReason(enum.Enum):
    """CCBSEraseReason (EN 300 359-1)."""

    NORMAL_UNSPECIFIED = 0
    T_CCBS2_TIMEOUT = 1
    T_CCBS3_TIMEOUT = 2
    BASIC_CALL_FAILED = 3


class RecallMode(enum.Enum):
    GLOBAL = 0
    SPECIFIC = 1


class DestinationStatus(enum.Enum):
    """StatusResult of ETS 300 196-1 annex D."""

    COMPATIBLE_AND_FREE = 0
    COMPATIBLE_AND_BUSY = 1
    INCOMPATIBLE = 2


@dataclass(frozen=True, slots=True)
class IsdnIndication:
    """Base class: something an ISDN controller reported."""

    ctrl: int


@dataclass(frozen=True, slots=True)
class IsdnCommand:
    """Base class: something we ask an ISDN controller to do."""

    ctrl: int


# ----------------------------------------------------------------- controller state


@dataclass(frozen=True, slots=True)
class ControllerUp(IsdnIndication):
    """Controller registered, listening, CCBS route chosen. After a reconnect this is
    sent again with ``reconnected=True``: the owner must reconcile (interrogate)."""

    ptp: bool = False
    route: CcRoute = CcRoute.SUPPLEMENTARY
    ccbs: bool = True  # the controller/network offers CCBS at all
    ccnr: bool = True
    reconnected: bool = False


@dataclass(frozen=True, slots=True)
class ControllerDown(IsdnIndication):
    reason: str = ""


# ------------------------------------------------------------------------ basic calls


@dataclass(frozen=True, slots=True)
class PlaceCall(IsdnCommand):
    """Outgoing call. ``cc_reference`` set = this is a CCBS recall (CCBSCall(R) in the
    SETUP, or the supplementary-services CCBS-call function); ``cc_t`` set = a CCBS-T
    recall on the connection of that handle (CCBS-T-Call in the SETUP)."""

    call_id: str
    called: str
    calling: str
    bearer: bytes = BEARER_SPEECH
    cc_reference: int | None = None
    cc_t_handle: int | None = None


@dataclass(frozen=True, slots=True)
class AnswerCall(IsdnCommand):
    call_id: str


@dataclass(frozen=True, slots=True)
class RejectCall(IsdnCommand):
    call_id: str
    cause: int = CAUSE_USER_BUSY


@dataclass(frozen=True, slots=True)
class HangUp(IsdnCommand):
    call_id: str
    cause: int = CAUSE_NORMAL_CLEARING


@dataclass(frozen=True, slots=True)
class IncomingCall(IsdnIndication):
    call_id: str
    called: str
    calling: str
    bearer: bytes = BEARER_SPEECH


@dataclass(frozen=True, slots=True)
class CallAlerting(IsdnIndication):
    call_id: str


@dataclass(frozen=True, slots=True)
class CallConnected(IsdnIndication):
    call_id: str


@dataclass(frozen=True, slots=True)
class CallEnded(IsdnIndication):
    """The call is gone. ``cause`` is the Q.850 cause (None = none given).
    ``error`` names a CCBS error that came with the clearing of a recall
    (``invalidCCBSReference``, ``alreadyAccepted``, ``notReadyForCall``)."""

    call_id: str
    cause: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CcAvailable(IsdnIndication):
    """The network offered CC for a failed call (CallInfoRetain in the busy DISCONNECT,
    or in ALERTING for CCNR; CCBS-T-Available on a PTP access, then ``linkage_id`` is
    None). Sent before the ``CallEnded`` of that call."""

    call_id: str
    kind: CcKind
    linkage_id: int | None
    called: str
    calling: str
    bearer: bytes = BEARER_SPEECH


# ------------------------------------------------------------ CC commands (user A)


@dataclass(frozen=True, slots=True)
class CcRequest(IsdnCommand):
    """CCBSRequest / CCNRRequest(linkage) on PTMP; on PTP (``linkage_id`` None) a
    REGISTER with CCBS-T-Request / CCNR-T-Request for ``called`` + ``bearer``."""

    handle: int
    kind: CcKind
    linkage_id: int | None
    called: str = ""
    calling: str = ""
    bearer: bytes = BEARER_SPEECH


@dataclass(frozen=True, slots=True)
class CcDeactivate(IsdnCommand):
    """CCBSDeactivate(reference); on PTP: clear the CCBS-T connection of ``handle``."""

    handle: int
    reference: int | None
    kind: CcKind = CcKind.CCBS


@dataclass(frozen=True, slots=True)
class CcInterrogate(IsdnCommand):
    """CCBSInterrogate / CCNRInterrogate (all of our requests when reference is None)."""

    handle: int
    kind: CcKind = CcKind.CCBS
    reference: int | None = None
    party_number_of_a: str | None = None


@dataclass(frozen=True, slots=True)
class CcStatusAnswer(IsdnCommand):
    """Answer to a ``CcStatusRequest``: is A free?"""

    token: int
    free: bool


@dataclass(frozen=True, slots=True)
class CcTSuspend(IsdnCommand):
    """CCBS-T-Suspend (A busy) on the connection of ``handle``."""

    handle: int


@dataclass(frozen=True, slots=True)
class CcTResume(IsdnCommand):
    handle: int


@dataclass(frozen=True, slots=True)
class DestinationStatusAnswer(IsdnCommand):
    """Answer to a ``DestinationStatusRequest`` (StatusRequest, ETS 300 196-1)."""

    token: int
    status: DestinationStatus


# --------------------------------------------------------- CC indications (user A)


@dataclass(frozen=True, slots=True)
class CcRequestResult(IsdnIndication):
    """Result of a ``CcRequest``: ``error`` None = accepted with ``reference`` and
    ``recall_mode`` (PTMP) or ``retention`` (PTP). ``error`` is the ETSI error name
    (``shortTermDenial``, ``outgoingCCBSQueueFull``...), ``reject`` for a ROSE reject,
    ``timeout`` when T-ACTIVATE ran out in the driver (never set by the driver: the
    engine runs T-ACTIVATE), or ``not-supported`` when the controller cannot."""

    handle: int
    error: str | None = None
    reference: int | None = None
    recall_mode: RecallMode = RecallMode.GLOBAL
    retention: bool = False


@dataclass(frozen=True, slots=True)
class CcDeactivateResult(IsdnIndication):
    handle: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CcInterrogateResult(IsdnIndication):
    """``references``: the CCBS references the network still holds for us."""

    handle: int
    error: str | None = None
    recall_mode: RecallMode = RecallMode.GLOBAL
    references: tuple[int, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class CcEraseCallLinkage(IsdnIndication):
    linkage_id: int


@dataclass(frozen=True, slots=True)
class CcStatusRequest(IsdnIndication):
    """CCBSStatusRequest: the network asks whether A (of ``reference``) is free. Must be
    answered with ``CcStatusAnswer(token=...)`` — only for references we own."""

    token: int
    reference: int
    recall_mode: RecallMode = RecallMode.GLOBAL
    bearer: bytes = b""


@dataclass(frozen=True, slots=True)
class CcRemoteUserFree(IsdnIndication):
    reference: int
    recall_mode: RecallMode = RecallMode.GLOBAL
    b_number: str = ""
    bearer: bytes = b""


@dataclass(frozen=True, slots=True)
class CcBFree(IsdnIndication):
    """B is free but A was reported busy: the request is suspended at the network."""

    reference: int
    recall_mode: RecallMode = RecallMode.GLOBAL
    b_number: str = ""


@dataclass(frozen=True, slots=True)
class CcStopAlerting(IsdnIndication):
    reference: int


@dataclass(frozen=True, slots=True)
class CcErase(IsdnIndication):
    reference: int
    reason: EraseReason = EraseReason.NORMAL_UNSPECIFIED


@dataclass(frozen=True, slots=True)
class CcTRemoteUserFree(IsdnIndication):
    """CCBS-T-RemoteUserFree on the connection of ``handle``."""

    handle: int


@dataclass(frozen=True, slots=True)
class CcTConnectionCleared(IsdnIndication):
    """The CCBS-T signalling connection of ``handle`` was cleared by the network."""

    handle: int
    cause: int | None = None


@dataclass(frozen=True, slots=True)
class DestinationStatusRequest(IsdnIndication):
    """StatusRequest toward our MSNs (we are user B): answer with
    ``DestinationStatusAnswer``. ``msn`` is the called number when the network added
    one, else empty (then answer for the whole bus)."""

    token: int
    msn: str = ""
    bearer: bytes = b""
