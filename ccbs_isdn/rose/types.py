"""Typed values of the ETSI CCBS/CCNR facility schema (``etsi_ccbs.asn``).

This module owns the Python shape of every ASN.1 type the codec knows: enumerations
(member names are the ASN.1 identifiers, ``-`` written as ``_``), the shared address types
of ETS 300 196-1 and one frozen dataclass per operation argument/result. It holds values
only: no encoding (``schema.py``/``ber.py``), no I/O, no clock.

Integers that the standards bound (CallLinkageID, CCBSReference: ``INTEGER (0..127)``) are
plain ``int``; the encoder checks the bounds, the decoder masks them to 7 bits like libpri.
``Q931InformationElement`` values are ``bytes`` holding whole Q.931 IEs (identifier, length,
contents), replayed verbatim (EN 300 359-1 matches a recall by them).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Asn1Enum(IntEnum):
    """An ENUMERATED type; ``asn1_name`` is the standard's identifier (``t-CCBS2-timeout``)."""

    @property
    def asn1_name(self) -> str:
        # ASN.1 identifiers may contain '-' but never '_', so the mapping is lossless.
        return self.name.replace("_", "-")

    @classmethod
    def from_asn1_name(cls, name: str) -> Asn1Enum:
        return cls[name.replace("-", "_")]


# ------------------------------------------------------------------ ETS 300 196-1 types


class PublicTypeOfNumber(Asn1Enum):
    unknown = 0
    internationalNumber = 1
    nationalNumber = 2
    networkSpecificNumber = 3
    subscriberNumber = 4
    abbreviatedNumber = 6


class PrivateTypeOfNumber(Asn1Enum):
    unknown = 0
    level2RegionalNumber = 1
    level1RegionalNumber = 2
    pISNSpecificNumber = 3
    localNumber = 4
    abbreviatedNumber = 6


class ScreeningIndicator(Asn1Enum):
    userProvidedNotScreened = 0
    userProvidedVerifiedAndPassed = 1
    userProvidedVerifiedAndFailed = 2
    networkProvided = 3


class NumberingPlan(StrEnum):
    """The alternatives of ``PartyNumber`` (ETS 300 196-1); values are the ASN.1 names."""

    unknown = "unknownPartyNumber"  # [0] NumberDigits
    public = "publicPartyNumber"  # [1] E.164, with PublicTypeOfNumber
    nsap = "nsapEncodedNumber"  # [2] 20 octets (X.213)
    data = "dataPartyNumber"  # [3] X.121, reserved
    telex = "telexPartyNumber"  # [4] F.69, reserved
    private = "privatePartyNumber"  # [5] with PrivateTypeOfNumber
    national_standard = "nationalStandardPartyNumber"  # [8] reserved


@dataclass(frozen=True, slots=True)
class PartyNumber:
    """``PartyNumber``: a number in one numbering plan.

    ``digits`` is the NumberDigits string (NumericString; ``*`` and ``#`` are accepted
    because Q.931 numbers may carry them). ``type_of_number`` is a PublicTypeOfNumber or
    PrivateTypeOfNumber value and only meaningful for the public and private plans.
    ``nsap`` holds the 20 octets of an nsapEncodedNumber (then ``digits`` is empty).
    """

    digits: str = ""
    plan: NumberingPlan = NumberingPlan.unknown
    type_of_number: int = 0
    nsap: bytes = b""


@dataclass(frozen=True, slots=True)
class UserSpecifiedSubaddress:
    """``UserSpecifiedSubaddress``; ``odd_count_indicator``: the BCD digit count is odd."""

    subaddress_information: bytes
    odd_count_indicator: bool | None = None


@dataclass(frozen=True, slots=True)
class NSAPSubaddress:
    """``NSAPSubaddress``: an X.213 NSAP address, 1..20 octets."""

    octets: bytes


PartySubaddress = UserSpecifiedSubaddress | NSAPSubaddress


@dataclass(frozen=True, slots=True)
class Address:
    """``Address ::= SEQUENCE { PartyNumber, PartySubaddress OPTIONAL }``."""

    party_number: PartyNumber
    party_subaddress: PartySubaddress | None = None


class Presentation(StrEnum):
    """The alternatives of ``PresentedNumberUnscreened``."""

    allowed = "presentationAllowedNumber"
    restricted = "presentationRestricted"
    not_available = "numberNotAvailableDueToInterworking"
    restricted_number = "presentationRestrictedNumber"


@dataclass(frozen=True, slots=True)
class PresentedNumberUnscreened:
    """``PresentedNumberUnscreened`` (used by Q.SIG CC, not by the ETSI operations).

    ``party_number`` is set for the ``allowed`` and ``restricted_number`` alternatives.
    """

    presentation: Presentation
    party_number: PartyNumber | None = None


# ------------------------------------------------------ EN 300 359-1 / EN 301 065-1 types


class RecallMode(Asn1Enum):
    globalRecall = 0
    specificRecall = 1


class CCBSEraseReason(Asn1Enum):
    normal_unspecified = 0
    t_CCBS2_timeout = 1
    t_CCBS3_timeout = 2
    basic_call_failed = 3


class CompatibilityMode(Asn1Enum):
    allBasicServices = 0
    oneOrMoreBasicServices = 1


class StatusResult(Asn1Enum):
    compatibleAndFree = 0
    compatibleAndBusy = 1
    incompatible = 2


@dataclass(frozen=True, slots=True)
class CallInformation:
    """One entry of ``CallDetails`` in a CCBSInterrogate/CCNRInterrogate result."""

    address_of_b: Address
    q931_info_element: bytes
    ccbs_reference: int
    sub_address_of_a: PartySubaddress | None = None


# ------------------------------------------------------ operation arguments and results
# One class per ASN.1 <Operation>Arg / <Operation>Res of etsi_ccbs.asn. CCNR operations
# reuse the CCBS classes (EN 301 065-1 imports the CCBS types unchanged).


@dataclass(frozen=True, slots=True)
class StatusRequestArg:
    """ETS 300 196-1 annex D: the network asks whether B's terminals are compatible/free."""

    compatibility_mode: CompatibilityMode
    q931_information_element: bytes


@dataclass(frozen=True, slots=True)
class StatusRequestRes:
    status_result: StatusResult


@dataclass(frozen=True, slots=True)
class CallInfoRetainArg:
    """N→A in DISCONNECT/ALERTING: CC is possible for the call named ``call_linkage_id``."""

    call_linkage_id: int


@dataclass(frozen=True, slots=True)
class EraseCallLinkageIDArg:
    """N→A: the retained call ``call_linkage_id`` is forgotten (T-RETENTION expiry)."""

    call_linkage_id: int


@dataclass(frozen=True, slots=True)
class CCBSRequestArg:
    """A→N: activate CCBS (or CCNR) for the retained call ``call_linkage_id``."""

    call_linkage_id: int


@dataclass(frozen=True, slots=True)
class CCBSRequestRes:
    """The network accepted the request and named it ``ccbs_reference``."""

    recall_mode: RecallMode
    ccbs_reference: int


@dataclass(frozen=True, slots=True)
class CCBSDeactivateArg:
    ccbs_reference: int


@dataclass(frozen=True, slots=True)
class CCBSInterrogateArg:
    """Both fields absent: ask for all of A's requests."""

    ccbs_reference: int | None = None
    party_number_of_a: PartyNumber | None = None


@dataclass(frozen=True, slots=True)
class CCBSInterrogateRes:
    """``call_details`` empty: no request active (the element is then omitted)."""

    recall_mode: RecallMode
    call_details: tuple[CallInformation, ...] = ()


@dataclass(frozen=True, slots=True)
class CCBSEraseArg:
    recall_mode: RecallMode
    ccbs_reference: int
    address_of_b: Address
    q931_info_element: bytes
    erase_reason: CCBSEraseReason


@dataclass(frozen=True, slots=True)
class CCBSRemoteUserFreeArg:
    """N→A: B is free, recall now (T-CCBS3 runs at the network)."""

    recall_mode: RecallMode
    ccbs_reference: int
    address_of_b: Address
    q931_info_element: bytes


@dataclass(frozen=True, slots=True)
class CCBSCallArg:
    """In the SETUP of the recall: this call completes request ``ccbs_reference``."""

    ccbs_reference: int


@dataclass(frozen=True, slots=True)
class CCBSStatusRequestArg:
    recall_mode: RecallMode
    ccbs_reference: int
    q931_info_element: bytes


@dataclass(frozen=True, slots=True)
class CCBSStatusRequestRes:
    """``free``: TRUE when A is free, FALSE when A is busy."""

    free: bool


@dataclass(frozen=True, slots=True)
class CCBSBFreeArg:
    """N→A: B is free but A is busy; the request is suspended."""

    recall_mode: RecallMode
    ccbs_reference: int
    address_of_b: Address
    q931_info_element: bytes


@dataclass(frozen=True, slots=True)
class CCBSStopAlertingArg:
    ccbs_reference: int


@dataclass(frozen=True, slots=True)
class CCBS_T_RequestArg:
    """CCBS-T-Request / CCNR-T-Request (PTP, in REGISTER).

    ``retention_supported`` is DEFAULT FALSE and therefore only encoded when TRUE.
    """

    destination_address: Address
    q931_info_element: bytes
    retention_supported: bool = False
    presentation_allowed_indicator: bool | None = None
    originating_address: Address | None = None


@dataclass(frozen=True, slots=True)
class CCBS_T_RequestRes:
    retention_supported: bool


# EN 301 065-1 reuses the CCBS types unchanged.
CCNRRequestArg = CCBSRequestArg
CCNRRequestRes = CCBSRequestRes
CCNRInterrogateArg = CCBSInterrogateArg
CCNRInterrogateRes = CCBSInterrogateRes
CCNR_T_RequestArg = CCBS_T_RequestArg
CCNR_T_RequestRes = CCBS_T_RequestRes

Argument = (
    StatusRequestArg
    | CallInfoRetainArg
    | EraseCallLinkageIDArg
    | CCBSRequestArg
    | CCBSDeactivateArg
    | CCBSInterrogateArg
    | CCBSEraseArg
    | CCBSRemoteUserFreeArg
    | CCBSCallArg
    | CCBSStatusRequestArg
    | CCBSBFreeArg
    | CCBSStopAlertingArg
    | CCBS_T_RequestArg
)
Result = (
    StatusRequestRes
    | CCBSRequestRes
    | CCBSInterrogateRes
    | CCBSStatusRequestRes
    | CCBS_T_RequestRes
)
