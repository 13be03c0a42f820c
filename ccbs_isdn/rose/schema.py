"""The node tree of ``etsi_ccbs.asn``: one BER node per ASN.1 type, bound to ``types.py``.

This module owns the mapping ASN.1 type ↔ Python value (which tag, which identifier, which
dataclass field). It mirrors ``etsi_ccbs.asn`` line by line; the test
``tests/rose/test_schema_asn1tools.py`` compiles that file with asn1tools and checks that
both agree on every value, so the .asn stays the source of truth while this hand-built
tree is the fast path: asn1tools needs ~30 µs to decode and re-encode one
CCBSRemoteUserFree (before any dataclass is built), this codec ~7-9 µs per IE median
including the dataclasses (bench/codec.py).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Any

from ccbs_isdn.rose import types as t
from ccbs_isdn.rose.ber import (
    Bool,
    Choice,
    Digits,
    Enum,
    Explicit,
    Int,
    Mapped,
    Member,
    Node,
    Null,
    Octets,
    Seq,
    SeqOf,
    Single,
)

# ------------------------------------------------------------------ ETS 300 196-1 types


def _digits_alternative(plan: t.NumberingPlan, tag: int) -> Node:
    return Mapped(
        Digits(plan.value, tag=tag),
        wrap=lambda digits: t.PartyNumber(digits, plan),
        unwrap=lambda number: number.digits,
    )


def _typed_number(plan: t.NumberingPlan, tag: int, ton: type[t.Asn1Enum], prefix: str) -> Node:
    # PublicPartyNumber / PrivatePartyNumber ::= SEQUENCE { typeOfNumber, NumberDigits }
    return Seq(
        plan.value,
        lambda type_of_number, digits: t.PartyNumber(digits, plan, type_of_number),
        [
            Member("type_of_number", f"{prefix}TypeOfNumber", Enum(f"{prefix}TypeOfNumber", ton)),
            Member("digits", f"{prefix}NumberDigits", Digits(f"{prefix}NumberDigits")),
        ],
        tag=tag,
        pytype=t.PartyNumber,
    )


PARTY_NUMBER: Node = Choice(
    "PartyNumber",
    key=lambda number: number.plan,
    alternatives={
        t.NumberingPlan.unknown: (
            "unknownPartyNumber",
            _digits_alternative(t.NumberingPlan.unknown, 0x80),
        ),
        t.NumberingPlan.public: (
            "publicPartyNumber",
            _typed_number(t.NumberingPlan.public, 0xA1, t.PublicTypeOfNumber, "public"),
        ),
        t.NumberingPlan.nsap: (
            "nsapEncodedNumber",
            Mapped(
                Octets("nsapEncodedNumber", tag=0x82, lo=20, hi=20),
                wrap=lambda octets: t.PartyNumber("", t.NumberingPlan.nsap, 0, octets),
                unwrap=lambda number: number.nsap,
            ),
        ),
        t.NumberingPlan.data: ("dataPartyNumber", _digits_alternative(t.NumberingPlan.data, 0x83)),
        t.NumberingPlan.telex: (
            "telexPartyNumber",
            _digits_alternative(t.NumberingPlan.telex, 0x84),
        ),
        t.NumberingPlan.private: (
            "privatePartyNumber",
            _typed_number(t.NumberingPlan.private, 0xA5, t.PrivateTypeOfNumber, "private"),
        ),
        t.NumberingPlan.national_standard: (
            "nationalStandardPartyNumber",
            _digits_alternative(t.NumberingPlan.national_standard, 0x88),
        ),
    },
)

PARTY_SUBADDRESS: Node = Choice(
    "PartySubaddress",
    key=type,
    alternatives={
        t.UserSpecifiedSubaddress: (
            "userSpecifiedSubaddress",
            Seq(
                "UserSpecifiedSubaddress",
                t.UserSpecifiedSubaddress,
                [
                    Member(
                        "subaddress_information",
                        "subaddressInformation",
                        Octets("subaddressInformation", lo=1, hi=20),
                    ),
                    Member(
                        "odd_count_indicator",
                        "oddCountIndicator",
                        Bool("oddCountIndicator"),
                        optional=True,
                    ),
                ],
            ),
        ),
        t.NSAPSubaddress: (
            "nSAPSubaddress",
            Mapped(
                Octets("NSAPSubaddress", lo=1, hi=20),
                wrap=t.NSAPSubaddress,
                unwrap=lambda sub: sub.octets,
            ),
        ),
    },
)

ADDRESS: Node = Seq(
    "Address",
    t.Address,
    [
        Member("party_number", "partyNumber", PARTY_NUMBER),
        Member("party_subaddress", "partySubaddress", PARTY_SUBADDRESS, optional=True),
    ],
)


def _presented(presentation: t.Presentation) -> Any:
    return lambda number: t.PresentedNumberUnscreened(presentation, number)


PRESENTED_NUMBER_UNSCREENED: Node = Choice(
    "PresentedNumberUnscreened",
    key=lambda value: value.presentation,
    alternatives={
        t.Presentation.allowed: (
            "presentationAllowedNumber",
            Mapped(
                Explicit(0xA0, PARTY_NUMBER),
                wrap=_presented(t.Presentation.allowed),
                unwrap=lambda value: value.party_number,
            ),
        ),
        t.Presentation.restricted: (
            "presentationRestricted",
            Mapped(
                Null("presentationRestricted", tag=0x81),
                wrap=lambda _none: t.PresentedNumberUnscreened(t.Presentation.restricted),
                unwrap=lambda value: None,
            ),
        ),
        t.Presentation.not_available: (
            "numberNotAvailableDueToInterworking",
            Mapped(
                Null("numberNotAvailableDueToInterworking", tag=0x82),
                wrap=lambda _none: t.PresentedNumberUnscreened(t.Presentation.not_available),
                unwrap=lambda value: None,
            ),
        ),
        t.Presentation.restricted_number: (
            "presentationRestrictedNumber",
            Mapped(
                Explicit(0xA3, PARTY_NUMBER),
                wrap=_presented(t.Presentation.restricted_number),
                unwrap=lambda value: value.party_number,
            ),
        ),
    },
)

SCREENING_INDICATOR: Node = Enum("ScreeningIndicator", t.ScreeningIndicator)


def q931_information_element(ident: str) -> Node:
    """``Q931InformationElement ::= [APPLICATION 0] IMPLICIT OCTET STRING`` (tag 40)."""
    return Octets(ident, tag=0x40, lo=0, hi=255)


def call_linkage_id(ident: str = "callLinkageID") -> Node:
    return Int(ident, lo=0, hi=127, mask7=True)


def ccbs_reference(ident: str = "cCBSReference") -> Node:
    return Int(ident, lo=0, hi=127, mask7=True)


RECALL_MODE: Node = Enum("recallMode", t.RecallMode)

# -------------------------------------------------------------- operation ARG/RES types

STATUS_REQUEST_ARG: Node = Seq(
    "StatusRequestArg",
    t.StatusRequestArg,
    [
        Member(
            "compatibility_mode",
            "compatibilityMode",
            Enum("compatibilityMode", t.CompatibilityMode),
        ),
        Member(
            "q931_information_element",
            "q931InformationElement",
            q931_information_element("q931InformationElement"),
        ),
    ],
)
STATUS_REQUEST_RES: Node = Single(
    t.StatusRequestRes, "status_result", "statusResult", Enum("statusResult", t.StatusResult)
)

CALL_INFO_RETAIN_ARG: Node = Single(
    t.CallInfoRetainArg, "call_linkage_id", "callLinkageID", call_linkage_id()
)
ERASE_CALL_LINKAGE_ID_ARG: Node = Single(
    t.EraseCallLinkageIDArg, "call_linkage_id", "callLinkageID", call_linkage_id()
)
CCBS_REQUEST_ARG: Node = Single(
    t.CCBSRequestArg, "call_linkage_id", "callLinkageID", call_linkage_id()
)
CCBS_REQUEST_RES: Node = Seq(
    "CCBSRequestRes",
    t.CCBSRequestRes,
    [
        Member("recall_mode", "recallMode", RECALL_MODE),
        Member("ccbs_reference", "cCBSReference", ccbs_reference()),
    ],
)
CCBS_DEACTIVATE_ARG: Node = Single(
    t.CCBSDeactivateArg, "ccbs_reference", "cCBSReference", ccbs_reference()
)
CCBS_INTERROGATE_ARG: Node = Seq(
    "CCBSInterrogateArg",
    t.CCBSInterrogateArg,
    [
        Member("ccbs_reference", "cCBSReference", ccbs_reference(), optional=True),
        Member("party_number_of_a", "partyNumberOfA", PARTY_NUMBER, optional=True),
    ],
)
CALL_INFORMATION: Node = Seq(
    "CallInformation",
    t.CallInformation,
    [
        Member("address_of_b", "addressOfB", ADDRESS),
        Member("q931_info_element", "q931InfoElement", q931_information_element("q931InfoElement")),
        Member("ccbs_reference", "cCBSReference", ccbs_reference()),
        Member("sub_address_of_a", "subAddressOfA", PARTY_SUBADDRESS, optional=True),
    ],
)
CALL_DETAILS: Node = SeqOf("CallDetails", CALL_INFORMATION, 1, 5)
CCBS_INTERROGATE_RES: Node = Seq(
    "CCBSInterrogateRes",
    t.CCBSInterrogateRes,
    [
        Member("recall_mode", "recallMode", RECALL_MODE),
        Member("call_details", "callDetails", CALL_DETAILS, optional=True, absent=()),
    ],
)


def _b_free_like(name: str, cls: Any, erase: bool = False) -> Node:
    members = [
        Member("recall_mode", "recallMode", RECALL_MODE),
        Member("ccbs_reference", "cCBSReference", ccbs_reference()),
        Member("address_of_b", "addressOfB", ADDRESS),
        Member("q931_info_element", "q931InfoElement", q931_information_element("q931InfoElement")),
    ]
    if erase:
        members.append(
            Member("erase_reason", "eraseReason", Enum("eraseReason", t.CCBSEraseReason))
        )
    return Seq(name, cls, members)


CCBS_ERASE_ARG: Node = _b_free_like("CCBSEraseArg", t.CCBSEraseArg, erase=True)
CCBS_REMOTE_USER_FREE_ARG: Node = _b_free_like("CCBSRemoteUserFreeArg", t.CCBSRemoteUserFreeArg)
CCBS_B_FREE_ARG: Node = _b_free_like("CCBSBFreeArg", t.CCBSBFreeArg)
CCBS_CALL_ARG: Node = Single(t.CCBSCallArg, "ccbs_reference", "cCBSReference", ccbs_reference())
CCBS_STATUS_REQUEST_ARG: Node = Seq(
    "CCBSStatusRequestArg",
    t.CCBSStatusRequestArg,
    [
        Member("recall_mode", "recallMode", RECALL_MODE),
        Member("ccbs_reference", "cCBSReference", ccbs_reference()),
        Member("q931_info_element", "q931InfoElement", q931_information_element("q931InfoElement")),
    ],
)
CCBS_STATUS_REQUEST_RES: Node = Single(t.CCBSStatusRequestRes, "free", "free", Bool("free"))
CCBS_STOP_ALERTING_ARG: Node = Single(
    t.CCBSStopAlertingArg, "ccbs_reference", "cCBSReference", ccbs_reference()
)
CCBS_T_REQUEST_ARG: Node = Seq(
    "CCBS-T-RequestArg",
    t.CCBS_T_RequestArg,
    [
        Member("destination_address", "destinationAddress", ADDRESS),
        Member("q931_info_element", "q931InfoElement", q931_information_element("q931InfoElement")),
        # [1] IMPLICIT BOOLEAN DEFAULT FALSE: DER/libpri leave the default out
        Member(
            "retention_supported",
            "retentionSupported",
            Bool("retentionSupported", tag=0x81),
            optional=True,
            absent=False,
        ),
        Member(
            "presentation_allowed_indicator",
            "presentationAllowedIndicator",
            Bool("presentationAllowedIndicator", tag=0x82),
            optional=True,
        ),
        Member("originating_address", "originatingAddress", ADDRESS, optional=True),
    ],
)
CCBS_T_REQUEST_RES: Node = Single(
    t.CCBS_T_RequestRes, "retention_supported", "retentionSupported", Bool("retentionSupported")
)
