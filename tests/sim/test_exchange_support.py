"""Helpers for the SimExchange tests: a fake clock and a scripted user side per access.

``Terminal`` plays the user side (TE) of one BRI access the way the card firmware would,
but in the test's hands: it sends Q.931 messages built with ``ccbs_isdn.rose`` and keeps
every network→user message for assertions. ``Clock`` advances time the way the runtime
does: jump to ``next_deadline()``, call ``on_timer``, repeat.

No tests live here (pytest collects it and finds none).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ccbs_isdn.drivers.sim.exchange import SimExchange
from ccbs_isdn.drivers.sim.q931 import Q931, MsgType

from ccbs_isdn.isdn import BEARER_SPEECH
from ccbs_isdn.rose import types as rt
from ccbs_isdn.rose.codec import Component, Invoke, Reject, ReturnError, ReturnResult
from ccbs_isdn.rose.facility import Facility, decode_contents, encode_contents
from ccbs_isdn.rose.operations import Operation

BC_SPEECH = BEARER_SPEECH
BC_UDI = bytes.fromhex("04028890")  # unrestricted digital information, 64 kbit/s


def ie(component: Component) -> bytes:
    """Facility IE contents (profile octet onwards) holding one component."""
    return encode_contents(Facility((component,)))


def components(msg: Q931) -> list[Component]:
    out: list[Component] = []
    for contents in msg.facility:
        out.extend(decode_contents(contents).components)
    return out


def invokes(msg: Q931, operation: str | None = None) -> list[Invoke]:
    return [
        c
        for c in components(msg)
        if isinstance(c, Invoke) and (operation is None or c.operation == operation)
    ]


def address(number: str) -> rt.Address:
    return rt.Address(rt.PartyNumber(number, rt.NumberingPlan.unknown))


@dataclass
class Clock:
    """Fake time for one exchange; ``advance`` fires timers in order like the runtime."""

    ex: SimExchange
    now: float = 1000.0

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while True:
            deadline = self.ex.next_deadline()
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            self.ex.on_timer(self.now)
        self.now = target
        self.ex.on_timer(self.now)


@dataclass
class Terminal:
    """The user side of one access: sends what a TE sends, records what it receives."""

    ex: SimExchange
    clock: Clock
    access_id: str
    inbox: list[Q931] = field(default_factory=list)
    seen: list[Q931] = field(default_factory=list)  # everything received, never popped
    next_cr: int = 1
    next_invoke: int = 100
    auto_release: bool = True  # answer a network DISCONNECT with RELEASE (as a TE does)

    def __post_init__(self) -> None:
        self.ex.attach(self.access_id, self._deliver)

    def _deliver(self, msg: Q931) -> None:
        assert msg.from_network
        self.inbox.append(msg)
        self.seen.append(msg)
        if self.auto_release and msg.type is MsgType.DISCONNECT and msg.cr is not None:
            self.ex.from_user(self.access_id, Q931(MsgType.RELEASE, msg.cr, False), self.clock.now)

    # ----------------------------------------------------------------- sending

    def send(self, msg: Q931) -> None:
        self.ex.from_user(self.access_id, msg, self.clock.now)

    def cr(self) -> int:
        cr = self.next_cr
        self.next_cr = self.next_cr % 0x3F + 1
        return cr

    def invoke_id(self) -> int:
        self.next_invoke += 1
        return self.next_invoke

    def setup(
        self,
        called: str,
        calling: str = "",
        *,
        bearer: bytes = BC_SPEECH,
        facility: tuple[bytes, ...] = (),
    ) -> int:
        cr = self.cr()
        self.send(Q931(MsgType.SETUP, cr, False, called, calling, bearer, facility=facility))
        return cr

    def facility(self, component: Component, cr: int | None = None) -> None:
        self.send(Q931(MsgType.FACILITY, cr, False, facility=(ie(component),)))

    def request(self, linkage_id: int, *, ccnr: bool = False) -> int:
        """CCBSRequest/CCNRRequest(linkage) on the dummy call reference; the invoke id."""
        iid = self.invoke_id()
        op = Operation.CCNRRequest if ccnr else Operation.CCBSRequest
        self.facility(Invoke(iid, op, rt.CCBSRequestArg(linkage_id)))
        return iid

    def deactivate(self, reference: int) -> int:
        iid = self.invoke_id()
        self.facility(Invoke(iid, Operation.CCBSDeactivate, rt.CCBSDeactivateArg(reference)))
        return iid

    def interrogate(
        self, reference: int | None = None, party: str | None = None, *, ccnr: bool = False
    ) -> int:
        iid = self.invoke_id()
        number = None if party is None else rt.PartyNumber(party, rt.NumberingPlan.unknown)
        op = Operation.CCNRInterrogate if ccnr else Operation.CCBSInterrogate
        self.facility(Invoke(iid, op, rt.CCBSInterrogateArg(reference, number)))
        return iid

    def answer_status(self, invoke_id: int, free: bool) -> None:
        self.facility(
            ReturnResult(invoke_id, Operation.CCBSStatusRequest, rt.CCBSStatusRequestRes(free))
        )

    def answer_destination(self, invoke_id: int, status: rt.StatusResult) -> None:
        self.facility(ReturnResult(invoke_id, Operation.StatusRequest, rt.StatusRequestRes(status)))

    def recall(self, called: str, calling: str, reference: int, bearer: bytes = BC_SPEECH) -> int:
        """SETUP with CCBSCall(reference) (etsi-ccbs.md §5.3)."""
        iid = self.invoke_id()
        fac = ie(Invoke(iid, Operation.CCBSCall, rt.CCBSCallArg(reference)))
        return self.setup(called, calling, bearer=bearer, facility=(fac,))

    def disconnect(self, cr: int, cause: int = 16) -> None:
        self.send(Q931(MsgType.DISCONNECT, cr, False, cause=cause))

    def release_complete(self, cr: int, cause: int | None = None) -> None:
        self.send(Q931(MsgType.RELEASE_COMPLETE, cr, False, cause=cause))

    # --------------------------------------------------------------- receiving

    def take(self) -> list[Q931]:
        out, self.inbox = self.inbox, []
        return out

    def expect(
        self, type_: MsgType, *, cr: int | None | bool = True, operation: str | None = None
    ) -> Q931:
        """Pop the first received message of *type_* (on call reference *cr*; True =
        any; with *operation*, holding an invoke or result of it). Fails if none."""
        for i, msg in enumerate(self.inbox):
            if msg.type is not type_:
                continue
            if cr is not True and msg.cr != cr:
                continue
            if operation is not None and not any(
                getattr(c, "operation", None) == operation for c in components(msg)
            ):
                continue
            return self.inbox.pop(i)
        raise AssertionError(
            f"no {type_.name} (cr={cr}, operation={operation}) in "
            f"{[self.describe(m) for m in self.inbox]}"
        )

    def broadcasts(self, operation: str | None = None) -> list[Invoke]:
        """Invokes in FACILITY on the dummy call reference, popped from the inbox."""
        found: list[Invoke] = []
        keep: list[Q931] = []
        for msg in self.inbox:
            if msg.type is MsgType.FACILITY and msg.cr is None:
                matching = invokes(msg, operation)
                if matching:
                    found.extend(matching)
                    continue
            keep.append(msg)
        self.inbox = keep
        return found

    def results(self) -> Iterator[ReturnResult | ReturnError | Reject]:
        """Answers (result/error/reject) in FACILITY messages, popped from the inbox."""
        keep: list[Q931] = []
        found: list[ReturnResult | ReturnError | Reject] = []
        for msg in self.inbox:
            answers = [
                c for c in components(msg) if isinstance(c, ReturnResult | ReturnError | Reject)
            ]
            if msg.type is MsgType.FACILITY and answers:
                found.extend(answers)
            else:
                keep.append(msg)
        self.inbox = keep
        return iter(found)

    @staticmethod
    def describe(msg: Q931) -> str:
        ops = [
            f"{type(c).__name__}:{getattr(c, 'operation', None) or getattr(c, 'error', '')}"
            for c in components(msg)
        ]
        return f"{msg.type.name}(cr={msg.cr}, cause={msg.cause}, {ops})"


def busy_call(
    term: Terminal, clock: Clock, called: str, calling: str, *, release: bool = True
) -> tuple[int, int]:
    """A calls *called* and meets busy; returns (call reference, CallLinkageID)."""
    cr = term.setup(called, calling)
    term.expect(MsgType.CALL_PROCEEDING, cr=cr)
    disc = term.expect(MsgType.DISCONNECT, cr=cr)
    assert disc.cause == 17
    (retain,) = invokes(disc, "CallInfoRetain")
    assert isinstance(retain.argument, rt.CallInfoRetainArg)
    if release:
        # the Terminal released automatically on DISCONNECT; the network completes it
        term.expect(MsgType.RELEASE_COMPLETE, cr=cr)
    return cr, retain.argument.call_linkage_id
