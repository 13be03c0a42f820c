"""The CCBS engine: pure and deterministic — events in, actions out, ``now`` as an
argument. No I/O, no asyncio, no clock (architecture.md §3).

Public API (what the runtime wires in)::

    engine = CcbsEngine(directory, policy, last_id=store.last_id())
    actions = engine.restore(store.load_active(), now)       # once, at start
    actions = engine.handle(event, now)                        # every event
    actions = engine.handle_timer(now)                         # at engine.next_deadline()
    store.save(engine.take_changes())                          # BEFORE executing actions

Events: ``events.py`` plus every ``ccbs_isdn.isdn`` indication. Actions: ``actions.py``
plus ``ccbs_isdn.isdn`` commands. Rulebooks (and ``diagram_data()`` for
``ccbsctl diagram``): ``machine.py``.
"""

from ccbs_isdn.engine.actions import (
    Action,
    Cadence,
    CancelDone,
    ClaimCall,
    ConnectCall,
    ConnectPorts,
    DisconnectPort,
    EngineAction,
    Notify,
    NotifyKind,
    PlayTone,
    PollPorts,
    RequestAccepted,
    RequestRefused,
    Ring,
    StatusReply,
    StopRing,
    Tone,
)
from ccbs_isdn.engine.directory import Directory, Extension
from ccbs_isdn.engine.engine import CcbsEngine
from ccbs_isdn.engine.events import (
    Activate,
    Book,
    CallFailed,
    Cancel,
    Dialled,
    EngineEvent,
    Event,
    PortsAvailable,
    PortSource,
    PortState,
    PortStates,
    PortsUnavailable,
    RingAnswered,
    RingEnded,
    StatusQuery,
    StoreState,
)
from ccbs_isdn.engine.machine import diagram_data, rulebook
from ccbs_isdn.engine.policy import (
    CallerPolicy,
    CallerRecallMode,
    Policy,
    QuietHours,
    Refusal,
    Timers,
)
from ccbs_isdn.engine.request import CcRequest, Changes, HistoryEntry, RequestRecord, Role

__all__ = [
    "Action",
    "Activate",
    "Book",
    "Cadence",
    "CallFailed",
    "CallerPolicy",
    "CallerRecallMode",
    "Cancel",
    "CancelDone",
    "CcRequest",
    "CcbsEngine",
    "Changes",
    "ClaimCall",
    "ConnectCall",
    "ConnectPorts",
    "Dialled",
    "Directory",
    "DisconnectPort",
    "EngineAction",
    "EngineEvent",
    "Event",
    "Extension",
    "HistoryEntry",
    "Notify",
    "NotifyKind",
    "PlayTone",
    "Policy",
    "PollPorts",
    "PortSource",
    "PortState",
    "PortStates",
    "PortsAvailable",
    "PortsUnavailable",
    "QuietHours",
    "Refusal",
    "RequestAccepted",
    "RequestRecord",
    "RequestRefused",
    "Ring",
    "RingAnswered",
    "RingEnded",
    "Role",
    "StatusQuery",
    "StatusReply",
    "StopRing",
    "StoreState",
    "Timers",
    "Tone",
    "diagram_data",
    "rulebook",
]
