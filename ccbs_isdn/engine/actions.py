"""Actions the CCBS engine asks the runtime to carry out.

This module owns the *output vocabulary* of ``ccbs_isdn.engine``: frozen, slotted
dataclasses in engine terms. ISDN work is returned as the ``ccbs_isdn.isdn``
``IsdnCommand`` objects themselves (``CcRequest``, ``CcDeactivate``,
``CcInterrogate``, ``CcStatusAnswer``, ``CcTSuspend``, ``CcTResume``, ``PlaceCall``,
``HangUp``, ``DestinationStatusAnswer``) for the capi20 driver. It must not do I/O.

Execution rules for the runtime:

* Persist first: after ``handle()`` / ``handle_timer()`` / ``restore()``, commit
  ``engine.take_changes()`` and only then execute the returned actions, in order.
* Idempotence: every ring carries a ``key`` (``"<request id>.<attempt>"``) and every
  call the engine places a ``call_id`` (``"ccbs-<request id>-<attempt>"``); the
  engine never emits the same key twice, also not across a restart (the attempt
  counter is persisted before the ring is asked for). ``StopRing`` /
  ``DisconnectPort`` / ``PollPorts`` are harmless to repeat.
* Replies (``RequestAccepted``, ``RequestRefused``, ``CancelDone``, ``StatusReply``)
  echo the ``tag`` of the user event so the runtime can play CONFIRM / REJECT on the
  right port or answer the right control-socket client.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ccbs_isdn.engine.request import RequestRecord
from ccbs_isdn.isdn import IsdnCommand


@dataclass(frozen=True, slots=True)
class Action:
    """Base class of the engine's own (non-ISDN) actions."""


class Cadence(enum.Enum):
    """Ring cadences of the bridge (analog-bridge.md §3.9.11, ``AT%CAD`` ids)."""

    NORMAL = 0
    RECALL = 1  # the distinctive "Rückruf" cadence
    INTERNAL = 2


class Tone(enum.Enum):
    """Tones the engine plays (names as in ``AT%TONE``)."""

    RINGBACK = "RINGBACK"
    BUSY = "BUSY"
    CONFIRM = "CONFIRM"
    REJECT = "REJECT"


class NotifyKind(enum.Enum):
    ACTIVATED = "activated"
    RECALL = "recall"  # B is free: A is rung now (auto) or told to call (notify)
    COMPLETED = "completed"
    EXPIRED = "expired"
    FAILED = "failed"
    CANCELLED = "cancelled"


# ------------------------------------------------------------------ FXS ports


@dataclass(frozen=True, slots=True)
class Ring(Action):
    port: str
    cadence: Cadence
    timeout: float  # seconds; the engine runs the same timer itself
    clip_number: str
    clip_name: str
    key: str


@dataclass(frozen=True, slots=True)
class StopRing(Action):
    port: str
    key: str


@dataclass(frozen=True, slots=True)
class PlayTone(Action):
    port: str
    tone: Tone
    ms: int | None = None  # None = until changed


@dataclass(frozen=True, slots=True)
class ConnectPorts(Action):
    """Cross-connect two ports (``AT%CONN``); completes on ``port_b``'s ring-trip."""

    port_a: str
    port_b: str
    key: str


@dataclass(frozen=True, slots=True)
class DisconnectPort(Action):
    port: str


@dataclass(frozen=True, slots=True)
class ConnectCall(Action):
    """Put the FXS ``port`` on the ISDN call ``call_id`` of controller ``ctrl``."""

    port: str
    ctrl: int
    call_id: str


@dataclass(frozen=True, slots=True)
class PollPorts(Action):
    """Ask the bridge for the hook state now (answers come back as
    ``PortState(source=POLL)``)."""

    ports: tuple[str, ...]


# ------------------------------------------------------------------- call control


@dataclass(frozen=True, slots=True)
class ClaimCall(Action):
    """Answer to ``Dialled``: this call from A to B is the recall of ``request_id``.
    Call control places it with ``cc_reference`` (PTMP CCBSCall) or ``cc_t_handle``
    (CCBS-T-Call) when set; a local call just proceeds."""

    call_id: str
    request_id: int
    cc_reference: int | None = None
    cc_t_handle: int | None = None


# ---------------------------------------------------------------------- replies


@dataclass(frozen=True, slots=True)
class RequestAccepted(Action):
    tag: str
    request_id: int
    caller: str
    target: str
    refreshed: bool = False  # a repeat for the same (A, B): lifetime restarted
    fallback: bool = False  # the network refused CCBS: watched by redial instead


@dataclass(frozen=True, slots=True)
class RequestRefused(Action):
    """A request (or a cancel) could not be done. ``reason`` is a stable slug
    (``caller-limit``, ``callee-limit``, ``global-limit``, ``denied-caller``,
    ``denied-target``, ``callee-opt-out``, ``no-failed-call``, ``unknown-caller``,
    ``store-unavailable``, ``network:<etsi error>``, ``activation-timeout``,
    ``no-such-request``, ...); ``text`` is for a person."""

    tag: str
    caller: str
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class CancelDone(Action):
    tag: str
    request_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StatusReply(Action):
    tag: str
    caller: str
    pending: bool
    request_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Notify(Action):
    """For the notifier (hook, e-mail, webhook) and the event stream."""

    kind: NotifyKind
    request: RequestRecord
    detail: str = ""


#: Everything ``CcbsEngine`` returns.
EngineAction = Action | IsdnCommand

__all__ = [
    "Action",
    "Cadence",
    "CancelDone",
    "ClaimCall",
    "ConnectCall",
    "ConnectPorts",
    "DisconnectPort",
    "EngineAction",
    "Notify",
    "NotifyKind",
    "PlayTone",
    "PollPorts",
    "RequestAccepted",
    "RequestRefused",
    "Ring",
    "StatusReply",
    "StopRing",
    "Tone",
]
