"""Pure analog (FXS) core: the FXB/1 line parser (``fxb``), the analog service
contract between the ``fxs`` driver and its users (``contract``), the activation-code
recogniser (``codes``) and the hook poll policy (``poll``).

Nothing here does I/O, uses asyncio or reads a clock; time comes in as ``now``.
The driver that talks to a real bridge lives in ``ccbs_isdn.drivers.fxs``.
"""

from ccbs_isdn.analog.codes import (
    ActivationCodes,
    AwaitingCode,
    CodeDialled,
    CodeKind,
    CodeRecogniser,
    Collecting,
    NotACode,
    Outcome,
    Rejected,
)
from ccbs_isdn.analog.contract import (
    Activity,
    AnalogCommand,
    AnalogIndication,
    BridgeDown,
    BridgeReady,
    BridgeUp,
    Cadence,
    Connect,
    CrossConnect,
    DefineCadence,
    Disconnect,
    Dtmf,
    FaultKind,
    Flash,
    HookChanged,
    HookSnapshot,
    HookTiming,
    Lockout,
    PlayTone,
    PollHook,
    PortFault,
    PortIndication,
    PortStatus,
    QueryState,
    ResetPort,
    Ring,
    RingEnded,
    RingEndReason,
    RingStop,
    RingTrip,
    SetDtmf,
    Tone,
)
from ccbs_isdn.analog.poll import PollPolicy

__all__ = [
    "ActivationCodes", "Activity", "AnalogCommand", "AnalogIndication", "AwaitingCode",
    "BridgeDown", "BridgeReady", "BridgeUp", "Cadence", "CodeDialled", "CodeKind",
    "CodeRecogniser", "Collecting", "Connect", "CrossConnect", "DefineCadence",
    "Disconnect", "Dtmf", "FaultKind", "Flash", "HookChanged", "HookSnapshot", "HookTiming",
    "Lockout", "NotACode", "Outcome", "PlayTone", "PollHook", "PollPolicy", "PortFault",
    "PortIndication", "PortStatus", "QueryState", "Rejected", "ResetPort", "Ring",
    "RingEndReason", "RingEnded", "RingStop", "RingTrip", "SetDtmf", "Tone",
]
