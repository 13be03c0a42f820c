"""Basic call control of the analog ports (pure): the dial plan (``plan``), the
vocabulary (``vocab``) and the per-port line state machine (``control``).

Nothing here does I/O, uses asyncio or reads a clock; ``ccbs_isdn.runtime.callcontrol``
feeds it the FXS and ISDN facts and executes what it asks for.
"""

from ccbs_isdn.calls.control import (
    CC_CAUSES,
    LINE_RULES,
    Call,
    CallControl,
    CallKind,
    Line,
    LineState,
    reply_tone,
)
from ccbs_isdn.calls.plan import DialPlan, Route, RouteKind, Station, codes_from_config
from ccbs_isdn.calls.vocab import (
    AttachCall,
    CallInput,
    CallOutput,
    DetachCall,
    Digit,
    HookFlash,
    LinkPorts,
    Loopback,
    OffHook,
    OnHook,
    PortsLost,
    PortsReset,
    Proceed,
    RingAnswer,
    RingOver,
    RingPort,
    SetTone,
    StopRinging,
    UnlinkPort,
)

__all__ = [
    "CC_CAUSES", "LINE_RULES", "AttachCall", "Call", "CallControl", "CallInput", "CallKind",
    "CallOutput", "DetachCall", "DialPlan", "Digit", "HookFlash", "Line", "LineState",
    "LinkPorts", "Loopback", "OffHook", "OnHook", "PortsLost", "PortsReset", "Proceed",
    "RingAnswer", "RingOver", "RingPort", "Route", "RouteKind", "SetTone", "Station",
    "StopRinging", "UnlinkPort", "codes_from_config", "reply_tone",
]
