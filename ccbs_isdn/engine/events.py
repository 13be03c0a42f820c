"""Events the CCBS engine consumes (everything that is not an ISDN indication).

This module owns the *input vocabulary* of ``ccbs_isdn.engine``: frozen, slotted
dataclasses for user/admin requests, the runtime's basic call control, the FXS port
line state and the health of the runtime's store. ISDN input is the
``ccbs_isdn.isdn`` indications themselves (``IsdnIndication`` subclasses are events
too: the runtime forwards every indication to ``CcbsEngine.handle`` and the engine
ignores what is not its business). It must not do I/O, read a clock or import
asyncio.

Who sends what (the runtime's side of the contract):

* user procedures (analog codes, ``ccbsctl``): ``Activate``, ``Book``, ``Cancel``,
  ``StatusQuery`` — each carries a ``tag`` echoed in the reply action so the runtime
  can play the right tone on the right port or answer the right control client, and
  an ``actor`` written to the request history;
* basic call control: ``Dialled`` for every outgoing call an extension places (before
  placing it), ``CallFailed`` for every call that met busy / no answer;
* the FXS driver: ``PortState`` for every hook change, ``PortStates`` (or one
  ``PortState`` per port) for every reconciliation poll answer — with ``peer`` once
  the bridge's cross-connects are known —, ``RingAnswered`` / ``RingEnded`` for
  rings the engine asked for, ``PortsUnavailable`` / ``PortsAvailable`` when a bridge
  goes away / comes back;
* the runtime itself: ``StoreState`` when the request store stops (or resumes)
  accepting writes.

Ports are opaque strings chosen by the configuration (e.g. ``"fxs0/2"``); the engine
only compares them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ccbs_isdn.isdn import CcKind, IsdnIndication


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of the engine's own (non-ISDN) events."""


# ------------------------------------------------------------ user / admin input


@dataclass(frozen=True, slots=True)
class Activate(Event):
    """The caller asks for CC on *their last failed call* (``R *37#`` or ``5`` after
    busy). ISDN calls with CC offered become ETSI requests; local calls a local
    request; a refused or unoffered external call a redial request (if enabled)."""

    caller: str
    tag: str = ""
    actor: str = ""


@dataclass(frozen=True, slots=True)
class Book(Event):
    """A request without a prior call (``*37*<number>#``, ``ccbsctl request``)."""

    caller: str
    number: str
    kind: CcKind = CcKind.CCBS
    tag: str = ""
    actor: str = ""


@dataclass(frozen=True, slots=True)
class Cancel(Event):
    """Cancel requests: one by ``request_id``; all of ``caller`` (optionally only the
    one for ``target``: ``#37*<number>#``); or every request (``all_requests``)."""

    request_id: int | None = None
    caller: str | None = None
    target: str | None = None
    all_requests: bool = False
    tag: str = ""
    actor: str = ""


@dataclass(frozen=True, slots=True)
class StatusQuery(Event):
    """``*#37#``: is a request of this caller pending?"""

    caller: str
    tag: str = ""


# ------------------------------------------------------------ basic call control


@dataclass(frozen=True, slots=True)
class Dialled(Event):
    """An extension is about to place an outgoing call (local: ``ctrl`` None). Lets
    the engine tie ISDN CC offers to the caller and treat a call from A to B while a
    request is pending as the recall (answered with ``ClaimCall``)."""

    caller: str
    number: str
    call_id: str
    ctrl: int | None = None


@dataclass(frozen=True, slots=True)
class CallFailed(Event):
    """A call of ``caller`` to ``number`` failed (Q.850 cause: 17 busy, 18/19 no
    answer). It becomes "the last failed call" that ``Activate`` refers to."""

    caller: str
    number: str
    cause: int
    ctrl: int | None = None
    call_id: str = ""


# ------------------------------------------------------------------- port lines


class PortSource(enum.Enum):
    EVENT = "event"  # a URC (hook change) from the bridge
    POLL = "poll"  # the answer to a reconciliation poll (AT%HOOK?)


@dataclass(frozen=True, slots=True)
class PortState(Event):
    """Line state of an FXS port: ``busy`` = off-hook or otherwise in use. Poll
    answers are sent even when nothing changed: they confirm a re-check.

    ``peer``: the port this one is cross-connected to ("" = none), when the bridge's
    cross-connects are known (a poll answer once the bridge is initialised:
    ``AT%STATE?`` and ``%CONN``, analog-bridge.md §3.2); None = not known. It settles
    a recall that was interrupted by a restart while B was being rung (``Interrupted``:
    A and B connected means B answered)."""

    port: str
    busy: bool
    source: PortSource = PortSource.EVENT
    peer: str | None = None


@dataclass(frozen=True, slots=True)
class PortStates(Event):
    """One poll answer (``AT%HOOK?``) as one event: the ``PortState`` of every port
    in it, handled in order exactly as if each had been sent alone, in one engine
    step (one commit instead of one per port)."""

    states: tuple[PortState, ...]


@dataclass(frozen=True, slots=True)
class RingAnswered(Event):
    """The phone on ``port`` answered the ring the engine started with ``key``."""

    port: str
    key: str


@dataclass(frozen=True, slots=True)
class RingEnded(Event):
    """The ring with ``key`` ended without an answer (``reason``: timeout, stopped,
    fault, or failed when the bridge refused to ring)."""

    port: str
    key: str
    reason: str = "timeout"


@dataclass(frozen=True, slots=True)
class PortsUnavailable(Event):
    """A bridge went away: its ports cannot ring or report. Requests are suspended,
    never cancelled."""

    ports: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PortsAvailable(Event):
    """The bridge is back; the engine asks for a poll before trusting the lines."""

    ports: tuple[str, ...]


# --------------------------------------------------------------------- runtime


@dataclass(frozen=True, slots=True)
class StoreState(Event):
    """The request store accepts writes (``writable``) or not (disk full, read-only):
    while it does not, new requests are refused and existing ones carry on."""

    writable: bool


#: Everything ``CcbsEngine.handle`` accepts.
EngineEvent = Event | IsdnIndication

__all__ = [
    "Activate",
    "Book",
    "CallFailed",
    "Cancel",
    "Dialled",
    "EngineEvent",
    "Event",
    "PortSource",
    "PortState",
    "PortStates",
    "PortsAvailable",
    "PortsUnavailable",
    "RingAnswered",
    "RingEnded",
    "StatusQuery",
    "StoreState",
]
