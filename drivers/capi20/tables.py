"""CAPI 2.0 code tables: commands, Info values, Reasons, Q.850 causes, CIP values, masks.

This module owns the *names* of CAPI and Q.931 numbers, as data literals that code walks.
It must not do I/O or hold state. Sources: CAPI 2.0 Part I (message and parameter
definitions, Info/Reason annex), Part III (supplementary services, facility selector 3),
ITU-T Q.850 (cause values) and Q.931 §4.5 (information elements) — as digested in
shared/docs/capi.md §4–§6.
"""

from __future__ import annotations

import enum


class Command(enum.IntEnum):
    """CAPI 2.0 Part I §5 command octets."""

    ALERT = 0x01
    CONNECT = 0x02
    CONNECT_ACTIVE = 0x03
    DISCONNECT = 0x04
    LISTEN = 0x05
    INFO = 0x08
    SELECT_B_PROTOCOL = 0x41
    FACILITY = 0x80
    CONNECT_B3 = 0x82
    CONNECT_B3_ACTIVE = 0x83
    DISCONNECT_B3 = 0x84
    DATA_B3 = 0x86
    RESET_B3 = 0x87
    CONNECT_B3_T90_ACTIVE = 0x88
    MANUFACTURER = 0xFF


class Subcommand(enum.IntEnum):
    REQ = 0x80
    CONF = 0x81
    IND = 0x82
    RESP = 0x83


#: Info values (CAPI 2.0 Part I annex C.1): returned by library calls and carried in CONFs.
INFO: dict[int, str] = {
    0x0000: "request accepted",
    0x0001: "NCPI not supported by current protocol, NCPI ignored",
    0x0002: "flags not supported by current protocol, flags ignored",
    0x0003: "alert already sent by another application",
    0x1001: "too many applications",
    0x1002: "logical block size too small, must be at least 128 bytes",
    0x1003: "buffer exceeds 64 kByte",
    0x1004: "message buffer size too small, must be at least 1024 bytes",
    0x1005: "max. number of logical connections not supported",
    0x1006: "reserved",
    0x1007: "message not accepted because of an internal busy condition",
    0x1008: "OS resource error (register)",
    0x1009: "CAPI not installed",
    0x100A: "controller does not support external equipment",
    0x100B: "controller does only support external equipment",
    0x1101: "illegal application number",
    0x1102: "illegal command or subcommand, or message length less than 12 bytes",
    0x1103: "message not accepted because of a queue full condition",
    0x1104: "queue is empty",
    0x1105: "queue overflow, a message was lost",
    0x1106: "unknown notification parameter",
    0x1107: "message not accepted because of an internal busy condition",
    0x1108: "OS resource error (message exchange)",
    0x1109: "CAPI not installed (message exchange)",
    0x110A: "controller does not support external equipment (message exchange)",
    0x110B: "controller does only support external equipment (message exchange)",
    0x2001: "message not supported in current state",
    0x2002: "illegal Controller / PLCI / NCCI",
    0x2003: "out of PLCI",
    0x2004: "out of NCCI",
    0x2005: "out of LISTEN",
    0x2006: "out of FAX resources (protocol T.30)",
    0x2007: "illegal message parameter coding",
    0x3001: "B1 protocol not supported",
    0x3002: "B2 protocol not supported",
    0x3003: "B3 protocol not supported",
    0x3004: "B1 protocol parameter not supported",
    0x3005: "B2 protocol parameter not supported",
    0x3006: "B3 protocol parameter not supported",
    0x3007: "B protocol combination not supported",
    0x3008: "NCPI not supported",
    0x3009: "CIP value unknown",
    0x300A: "flags not supported (reserved bits)",
    0x300B: "facility not supported",
    0x300C: "data length not supported by current protocol",
    0x300D: "reset procedure not supported by current protocol",
    0x300E: "supplementary service not supported",
    0x300F: "unsupported interoperability",
    0x3010: "request not allowed in this state",
    0x3011: "facility specific function not supported",
}

INFO_OK = 0x0000
INFO_NOT_INSTALLED = 0x1009
INFO_OS_RESOURCE = 0x1008
INFO_ILLEGAL_APPL_ID = 0x1101
INFO_ILLEGAL_COMMAND = 0x1102
INFO_QUEUE_FULL = 0x1103
INFO_QUEUE_EMPTY = 0x1104
INFO_MSG_OS_RESOURCE = 0x1108
INFO_WRONG_STATE = 0x2001
INFO_ILLEGAL_ADDRESS = 0x2002
INFO_OUT_OF_PLCI = 0x2003
INFO_ILLEGAL_PARAMETER = 0x2007
INFO_CIP_UNKNOWN = 0x3009
INFO_FACILITY_NOT_SUPPORTED = 0x300B
INFO_SUPPLEMENTARY_NOT_SUPPORTED = 0x300E
INFO_NOT_ALLOWED_IN_STATE = 0x3010
INFO_FUNCTION_NOT_SUPPORTED = 0x3011

#: Reasons of DISCONNECT_IND other than the 0x34xx network causes (CAPI 2.0 annex C.2).
REASON: dict[int, str] = {
    0x0000: "normal clearing, no cause available",
    0x3301: "protocol error layer 1",
    0x3302: "protocol error layer 2",
    0x3303: "protocol error layer 3",
    0x3304: "another application got that call",
    0x3305: "cleared by call control supervision",
}

#: 0x34xx = network cause: low byte is the Q.850 cause value with the extension bit set.
REASON_NETWORK_BASE = 0x3480

#: Supplementary-service Reasons 0x36xx in selector-3 result indications. CAPI leaves the
#: low byte to the stack (capi.md §6.1); ccbs-isdn defines it as the ETSI error value:
#: the local value of a general error (ETS 300 196-1 General-Errors) or the last OID arc
#: of a CCBS error {0 4 0 359 1 n} (EN 300 359-1). 0x36FE = ROSE reject, 0x36FF = the
#: network never answered. The simulated firmware uses exactly this table.
SUPPLEMENTARY_REASON: dict[int, str] = {
    0x3600: "notSubscribed",
    0x3601: "rejectedByNetwork",
    0x3602: "rejectedByUser",
    0x3603: "notAvailable",
    0x3604: "notImplemented",
    0x3605: "insufficientInformation",
    0x3606: "invalidServedUserNr",
    0x3607: "invalidCallState",
    0x3608: "basicServiceNotProvided",
    0x3609: "notIncomingCall",
    0x360A: "supplementaryServiceInteractionNotAllowed",
    0x360B: "resourceUnavailable",
    0x3614: "invalidCallLinkageID",
    0x3615: "invalidCCBSReference",
    0x3616: "longTermDenial",
    0x3617: "shortTermDenial",
    0x3618: "cCBSIsAlreadyActivated",
    0x3619: "alreadyAccepted",
    0x361A: "outgoingCCBSQueueFull",
    0x361B: "callFailureReasonNotBusy",
    0x361C: "notReadyForCall",
    0x362B: "proceduralError",
    0x36FE: "reject",
    0x36FF: "timeout",
}
SUPPLEMENTARY_REASON_BY_NAME: dict[str, int] = {v: k for k, v in SUPPLEMENTARY_REASON.items()}

#: Q.850 cause values (ITU-T Q.850 Table 1).
CAUSE: dict[int, str] = {
    1: "unallocated (unassigned) number",
    2: "no route to specified transit network",
    3: "no route to destination",
    6: "channel unacceptable",
    7: "call awarded and being delivered in an established channel",
    16: "normal call clearing",
    17: "user busy",
    18: "no user responding",
    19: "no answer from user (user alerted)",
    20: "subscriber absent",
    21: "call rejected",
    22: "number changed",
    26: "non-selected user clearing",
    27: "destination out of order",
    28: "invalid number format (address incomplete)",
    29: "facility rejected",
    30: "response to STATUS ENQUIRY",
    31: "normal, unspecified",
    34: "no circuit/channel available",
    38: "network out of order",
    41: "temporary failure",
    42: "switching equipment congestion",
    43: "access information discarded",
    44: "requested circuit/channel not available",
    47: "resource unavailable, unspecified",
    49: "quality of service not available",
    50: "requested facility not subscribed",
    55: "incoming calls barred within CUG",
    57: "bearer capability not authorized",
    58: "bearer capability not presently available",
    63: "service or option not available, unspecified",
    65: "bearer capability not implemented",
    66: "channel type not implemented",
    69: "requested facility not implemented",
    70: "only restricted digital information bearer capability is available",
    79: "service or option not implemented, unspecified",
    81: "invalid call reference value",
    82: "identified channel does not exist",
    83: "a suspended call exists, but this call identity does not",
    84: "call identity in use",
    85: "no call suspended",
    86: "call having the requested call identity has been cleared",
    88: "incompatible destination",
    91: "invalid transit network selection",
    95: "invalid message, unspecified",
    96: "mandatory information element is missing",
    97: "message type non-existent or not implemented",
    98: "message not compatible with call state or message type non-existent",
    99: "information element non-existent or not implemented",
    100: "invalid information element contents",
    101: "message not compatible with call state",
    102: "recovery on timer expiry",
    111: "protocol error, unspecified",
    127: "interworking, unspecified",
}

#: CONNECT_RESP Reject values (CAPI 2.0 Part I, CONNECT_RESP).
REJECT: dict[int, str] = {
    0: "accept the call",
    1: "ignore the call",
    2: "reject call, normal call clearing",
    3: "reject call, user busy",
    4: "reject call, requested circuit/channel not available",
    5: "reject call, facility rejected",
    6: "reject call, channel unacceptable",
    7: "reject call, incompatible destination",
    8: "reject call, destination out of order",
}
REJECT_ACCEPT = 0
REJECT_IGNORE = 1
#: Q.850 cause -> the standard Reject value that produces it; other causes are sent as
#: 0x3480|cause (chan_capi's extension, capi.md §5.4).
REJECT_FOR_CAUSE: dict[int, int] = {16: 2, 17: 3, 44: 4, 29: 5, 6: 6, 88: 7, 27: 8}
#: ... and back, for the simulated firmware.
CAUSE_FOR_REJECT: dict[int, int] = {v: k for k, v in REJECT_FOR_CAUSE.items()}

#: CIP values (CAPI 2.0 Part I, parameter CIP Value).
CIP: dict[int, str] = {
    0: "no predefined profile",
    1: "speech",
    2: "unrestricted digital information",
    3: "restricted digital information",
    4: "3.1 kHz audio",
    5: "7 kHz audio",
    6: "video",
    7: "packet mode",
    8: "56 kbit/s rate adaptation",
    9: "unrestricted digital information with tones/announcements",
    16: "telephony",
    17: "fax group 2/3",
    18: "fax group 4 class 1",
    19: "teletex/fax group 4 class 2/3 (basic and mixed mode)",
    20: "teletex/fax group 4 class 2/3 (basic and processable mode)",
    21: "teletex basic mode",
    22: "international interworking for videotex",
    23: "telex",
    24: "message handling systems (X.400)",
    25: "OSI application (X.200)",
    26: "7 kHz telephony",
    27: "video telephony, first connection",
    28: "video telephony, second connection",
}

#: Bearer capability / HLC contents (without IE id and length) implied by a CIP value,
#: A-law (ETSI). CIP -> (BC contents, HLC contents).
CIP_BEARER: dict[int, tuple[bytes, bytes]] = {
    1: (bytes.fromhex("8090A3"), b""),
    2: (bytes.fromhex("8890"), b""),
    3: (bytes.fromhex("8990"), b""),
    4: (bytes.fromhex("9090A3"), b""),
    5: (bytes.fromhex("9190"), b""),
    16: (bytes.fromhex("8090A3"), bytes.fromhex("9181")),
    17: (bytes.fromhex("9090A3"), bytes.fromhex("9184")),
}

#: Listen CIP mask: bit n accepts CIP value n; these are all defined values (chan_capi).
CIP_MASK_ALL = 0x1FFF03FF

#: LISTEN_REQ Info mask bits (capi.md §5.3).
INFO_MASK: dict[int, str] = {
    0x0001: "cause",
    0x0002: "date/time",
    0x0004: "display",
    0x0008: "user-user information",
    0x0010: "call progression",
    0x0020: "facility",
    0x0040: "charging",
    0x0080: "called party number",
    0x0100: "channel identification",
    0x0200: "early B3 connect",
    0x0400: "redirecting/redirection information",
    0x1000: "sending complete",
}
INFO_MASK_CAUSE = 0x0001
INFO_MASK_PROGRESS = 0x0010
INFO_MASK_FACILITY = 0x0020
INFO_MASK_EARLY_B3 = 0x0200

#: Info numbers of INFO_IND: 0x00xx = Q.931 IE id, 0x80xx = message type received.
INFO_NUMBER: dict[int, str] = {
    0x0008: "Cause",
    0x0018: "Channel identification",
    0x001C: "Facility",
    0x001E: "Progress indicator",
    0x0027: "Notification indicator",
    0x0028: "Display",
    0x0029: "Date/time",
    0x0070: "Called party number",
    0x0074: "Redirecting number",
    0x0076: "Redirection number",
    0x007E: "User-user",
    0x00A1: "Sending complete",
    0x4000: "Charging units",
    0x4001: "Charging currency",
    0x8001: "ALERTING",
    0x8002: "CALL PROCEEDING",
    0x8003: "PROGRESS",
    0x8005: "SETUP",
    0x8007: "CONNECT",
    0x800D: "SETUP ACKNOWLEDGE",
    0x800F: "CONNECT ACKNOWLEDGE",
    0x8045: "DISCONNECT",
    0x804D: "RELEASE",
    0x805A: "RELEASE COMPLETE",
    0x8062: "FACILITY",
    0x806E: "NOTIFY",
    0x807B: "INFORMATION",
    0x807D: "STATUS",
}
INFO_NUMBER_CAUSE = 0x0008
INFO_NUMBER_FACILITY = 0x001C
INFO_NUMBER_ALERTING = 0x8001
INFO_NUMBER_CALL_PROCEEDING = 0x8002
INFO_NUMBER_DISCONNECT = 0x8045
INFO_NUMBER_MESSAGE_BASE = 0x8000

#: Global options of the controller profile (capi.md §5.5).
GLOBAL_OPTIONS: dict[int, str] = {
    0x0001: "internal controller",
    0x0002: "external equipment",
    0x0004: "handset",
    0x0008: "DTMF",
    0x0010: "supplementary services",
    0x0020: "channel allocation",
    0x0040: "B channel operation",
    0x0080: "line interconnect",
    0x0100: "broadband",
    0x0200: "echo cancellation",
}
GLOBAL_OPTION_SUPPLEMENTARY = 0x0010

#: Facility selectors (FACILITY_REQ/CONF/IND/RESP).
FACILITY_SELECTOR: dict[int, str] = {
    0: "handset",
    1: "DTMF",
    2: "V.42bis",
    3: "supplementary services",
    4: "power management wakeup",
    5: "line interconnect",
    6: "echo cancellation",
}
SELECTOR_SUPPLEMENTARY = 3

#: Supplementary-service functions of selector 3 (CAPI 2.0 Part III; capi.md §6.2).
SUPP_FUNCTION: dict[int, str] = {
    0x0000: "GetSupportedServices",
    0x0001: "Listen",
    0x0002: "Hold",
    0x0003: "Retrieve",
    0x0004: "Suspend",
    0x0005: "Resume",
    0x0006: "ECT",
    0x0007: "3PTY begin",
    0x0008: "3PTY end",
    0x0009: "CF activate",
    0x000A: "CF deactivate",
    0x000B: "CF interrogate parameters",
    0x000C: "CF interrogate numbers",
    0x000D: "CD",
    0x000E: "MCID",
    0x000F: "CCBS request",
    0x0010: "CCBS deactivate",
    0x0011: "CCBS interrogate",
    0x0012: "CCBS call",
    0x0013: "MWI activate",
    0x0014: "MWI deactivate",
    0x0015: "CCNR request",
    0x0016: "CCNR interrogate",
    0x8000: "hold notification",
    0x8001: "retrieve notification",
    0x8002: "suspend notification",
    0x8003: "resume notification",
    0x8004: "call is diverting",
    0x8005: "diversion activated",
    0x8006: "CF activate notification",
    0x8007: "CF deactivate notification",
    0x8008: "diversion information",
    0x8009: "call transfer alerted",
    0x800A: "call transfer active",
    0x800B: "conference established",
    0x800C: "conference disconnected",
    0x800D: "CCBS erase call linkage ID",
    0x800E: "CCBS status",
    0x800F: "CCBS remote user free",
    0x8010: "CCBS B-free",
    0x8011: "CCBS erase",
    0x8012: "CCBS stop alerting",
    0x8013: "CCBS info retain",
    0x8014: "MWI indication",
    0x8015: "CCNR info retain",
}
FN_GET_SUPPORTED = 0x0000
FN_LISTEN = 0x0001
FN_CCBS_REQUEST = 0x000F
FN_CCBS_DEACTIVATE = 0x0010
FN_CCBS_INTERROGATE = 0x0011
FN_CCBS_CALL = 0x0012
FN_CCNR_REQUEST = 0x0015
FN_CCNR_INTERROGATE = 0x0016
FN_CCBS_ERASE_CALL_LINKAGE_ID = 0x800D
FN_CCBS_STATUS = 0x800E
FN_CCBS_REMOTE_USER_FREE = 0x800F
FN_CCBS_B_FREE = 0x8010
FN_CCBS_ERASE = 0x8011
FN_CCBS_STOP_ALERTING = 0x8012
FN_CCBS_INFO_RETAIN = 0x8013
FN_CCNR_INFO_RETAIN = 0x8015

#: Supplementary services bits (GetSupportedServices CONF and the Listen notification mask).
SUPPORTED_SERVICES: dict[int, str] = {
    0x0001: "hold/retrieve",
    0x0002: "terminal portability",
    0x0004: "ECT",
    0x0008: "3PTY",
    0x0010: "call forwarding",
    0x0020: "call deflection",
    0x0040: "MCID",
    0x0080: "CCBS",
    0x0100: "MWI",
    0x0200: "CCNR",
    0x0400: "CONF",
}
SERVICE_CCBS = 0x0080
SERVICE_CCNR = 0x0200
#: chan_capi's notification mask (capi.md §6.3).
NOTIFICATION_MASK_ALL = 0x0000079F

#: "No CCBS reference" in the CCBS interrogate request (a reference is 0..127): ask for all.
CCBS_REFERENCE_ALL = 0xFFFF

#: B channel information modes of Additional Info (CAPI 2.0 Part I).
B_CHANNEL_USE_B = 0
B_CHANNEL_USE_D = 1
#: "neither B nor D channel": a call-independent signalling connection (Q.931 REGISTER,
#: used for the CCBS-T signalling connection of EN 300 359-1 on a PTP access).
B_CHANNEL_NONE = 2


def info_name(info: int) -> str:
    """A readable name for any Info/Reason value (never raises)."""
    if info in INFO:
        return INFO[info]
    if info in REASON:
        return REASON[info]
    if info in SUPPLEMENTARY_REASON:
        return SUPPLEMENTARY_REASON[info]
    if info & 0xFF00 == 0x3400:
        cause = info & 0x7F
        return f"network cause {cause} ({CAUSE.get(cause, 'unknown cause')})"
    return f"unknown info 0x{info:04X}"


def cause_name(cause: int) -> str:
    return CAUSE.get(cause, f"cause {cause}")


def reason_to_cause(reason: int) -> int | None:
    """Q.850 cause of a DISCONNECT_IND Reason, or None when the reason carries none."""
    if reason & 0xFF00 == 0x3400:
        return reason & 0x7F
    return None


def cause_to_reason(cause: int) -> int:
    return REASON_NETWORK_BASE | (cause & 0x7F)
