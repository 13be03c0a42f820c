"""The vocabulary of basic call control: what it is told (inputs) and what it asks for
(outputs), in addition to the ISDN contract (``ccbs_isdn.isdn``) and the engine's
events and actions it also consumes or produces.

This module owns only frozen, slotted dataclasses; no I/O, no clock. Ports are the
engine's port ids (``"fxs0/2"``); the runtime adapter translates to and from the FXS
driver's port numbers.

Inputs (``CallInput``): line facts of an FXS port as the bridge classified them
(analog-bridge.md §3.4, §4.2) and the health of the bridge. ISDN call indications
(``IncomingCall``, ``CallAlerting``, ``CallConnected``, ``CallEnded``) and the engine's
port actions (``Ring``, ``StopRing``, ``ConnectPorts``, ``DisconnectPort``,
``ConnectCall``, ``ClaimCall``; the FXS line executes them, call control *observes*
them to know who owns a port) are inputs too, as are the engine's replies.

Outputs (``CallOutput``): bridge work in port terms, the media path of an ISDN call,
and ``Loopback``. ISDN commands (``PlaceCall``, ``AnswerCall``, ``RejectCall``,
``HangUp``) and engine events (``Dialled``, ``CallFailed``, ``Activate``, ``Book``,
``Cancel``, ``StatusQuery``, ``PortState``) are outputs too.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccbs_isdn.analog.contract import Tone

# ------------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True)
class CallInput:
    """Base class of call control's own inputs."""


@dataclass(frozen=True, slots=True)
class LineInput(CallInput):
    port: str


@dataclass(frozen=True, slots=True)
class OffHook(LineInput):
    """The handset was lifted (URC, or a poll found it; not a ring-trip)."""


@dataclass(frozen=True, slots=True)
class OnHook(LineInput):
    """The handset was put down (reported ``flash_max`` after the break, §4.2)."""


@dataclass(frozen=True, slots=True)
class HookFlash(LineInput):
    """``R``: a loop break inside the flash window."""

    ms: int


@dataclass(frozen=True, slots=True)
class Digit(LineInput):
    """One DTMF (or pulse) digit ``0-9 * # A-D``."""

    digit: str


@dataclass(frozen=True, slots=True)
class RingAnswer(LineInput):
    """The ringing phone was lifted (``%RINGTRIP``; no separate off-hook)."""


@dataclass(frozen=True, slots=True)
class RingOver(LineInput):
    """A ring ended without an answer (``timeout``, ``stopped``, ``fault``, ``reset``
    when the bridge rebooted, ``failed`` when the bridge refused to ring)."""

    reason: str


@dataclass(frozen=True, slots=True)
class PortsLost(CallInput):
    """The bridge of these ports went away (unplugged, keep-alive failed)."""

    ports: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PortsReset(CallInput):
    """The bridge is (back) up and initialised, or rebooted (``%READY``): every ring
    and tone of these ports is gone (FXB/1 §3.7.2) and our calls with them.
    ``off_hook`` lists the ports whose handset is off the hook now. After a restart
    of the daemon (not of the bridge) the bridge may still hold work of the previous
    daemon (``AT%STATE?``): ``links``, cross-connects that are ours to tear down when
    someone hangs up, and ``ringing``, rings nobody owns any more — they are
    stopped, so that a recall the engine restarts is never rung twice at once."""

    ports: tuple[str, ...]
    off_hook: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    ringing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Proceed(CallInput):
    """Fed back by the runtime (from ``Loopback``) once the engine has seen the
    ``Dialled`` of ``call_id``: the engine's ``ClaimCall`` (if any) has arrived, the
    call may be placed now."""

    call_id: str


# ----------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class CallOutput:
    """Base class of call control's own outputs."""


@dataclass(frozen=True, slots=True)
class PortOutput(CallOutput):
    port: str


@dataclass(frozen=True, slots=True)
class RingPort(PortOutput):
    """``AT%RING``: ring ``port`` with ``cadence`` (FXB/1 §3.9.11 ids) for ``timeout``
    s, CLIP after the first burst."""

    cadence: int
    timeout: int
    clip_number: str = ""
    clip_name: str = ""


@dataclass(frozen=True, slots=True)
class StopRinging(PortOutput):
    """``AT%RINGSTOP``."""


@dataclass(frozen=True, slots=True)
class SetTone(PortOutput):
    """``AT%TONE``: ``Tone.OFF`` silences; ``ms`` None = until changed."""

    tone: Tone
    ms: int | None = None


@dataclass(frozen=True, slots=True)
class LinkPorts(PortOutput):
    """``AT%CONN``: cross-connect ``port`` and ``peer`` (both off-hook)."""

    peer: str


@dataclass(frozen=True, slots=True)
class UnlinkPort(PortOutput):
    """``AT%DISC``: tear down the cross-connect of ``port`` (going on-hook does not,
    FXB/1 §3.9.4)."""


@dataclass(frozen=True, slots=True)
class AttachCall(PortOutput):
    """Put ``port`` on the B channel of ISDN call ``call_id``. The audio path is the
    box's hardware (FXB/1 has no command for it): the runtime silences the port's tone
    and records the path."""

    ctrl: int
    call_id: str


@dataclass(frozen=True, slots=True)
class DetachCall(PortOutput):
    """The B channel of ``call_id`` no longer reaches ``port``."""

    call_id: str


@dataclass(frozen=True, slots=True)
class Loopback(CallOutput):
    """Feed ``event`` (any call-control input) back into call control after every
    output before it has been executed (the engine's synchronous answer to a
    ``Dialled`` must be in first)."""

    event: object


__all__ = [
    "AttachCall", "CallInput", "CallOutput", "DetachCall", "Digit", "HookFlash", "LineInput",
    "LinkPorts", "Loopback", "OffHook", "OnHook", "PortOutput", "PortsLost", "PortsReset",
    "Proceed", "RingAnswer", "RingOver", "RingPort", "SetTone", "StopRinging", "UnlinkPort",
]
