"""Random walks of plausible user behaviour through the exchange (hypothesis).

Terminals on two PTMP accesses and one PBX call around, meet busy, request CC, answer
status questions truthfully or not, recall, cancel; subscribers go busy and free; time
jumps. After every step the network's invariants must hold, and when all timers have run
out nothing may be left behind.
"""

from __future__ import annotations

from collections import Counter

from ccbs_isdn.drivers.sim.exchange import NetworkTimers, SimExchange
from ccbs_isdn.drivers.sim.q931 import Q931, MsgType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccbs_isdn.rose import types as rt
from ccbs_isdn.rose.codec import Invoke
from ccbs_isdn.rose.facility import decode_contents
from ccbs_isdn.rose.operations import Operation

from .test_exchange_support import Clock, Terminal, address, ie, invokes

EXTERNAL = ["0301", "0302", "0303"]
MSNS = {"isdn1": "3301", "isdn2": "4401", "pbx": "5550"}
HOLDING = {"b-available", "wait-callback", "callback"}

action = st.one_of(
    st.tuples(st.just("call"), st.sampled_from(list(MSNS)), st.sampled_from(EXTERNAL + ["4401"])),
    st.tuples(st.just("request"), st.sampled_from(["isdn1", "isdn2"]), st.booleans()),
    st.tuples(st.just("cct"), st.just("pbx"), st.sampled_from(EXTERNAL)),
    st.tuples(st.just("status"), st.sampled_from(["isdn1", "isdn2"]), st.booleans()),
    st.tuples(st.just("dest"), st.just("isdn2"), st.integers(0, 2)),
    st.tuples(st.just("recall"), st.sampled_from(list(MSNS)), st.booleans()),
    st.tuples(st.just("deactivate"), st.sampled_from(["isdn1", "isdn2"]), st.integers(0, 4)),
    st.tuples(st.just("busy"), st.sampled_from(EXTERNAL), st.booleans()),
    st.tuples(st.just("hangup"), st.sampled_from(list(MSNS)), st.booleans()),
    st.tuples(st.just("answer"), st.just("isdn2"), st.sampled_from([None, 17, 16])),
    st.tuples(st.just("call_from"), st.sampled_from(EXTERNAL), st.booleans()),
    st.tuples(st.just("wait"), st.sampled_from([0.5, 4.0, 21.0, 31.0, 200.0, 3000.0]), st.none()),
    # how the terminals behave from now on: answer status questions (free/busy/silent),
    # recall at once on CCBSRemoteUserFree / CCBS-T-RemoteUserFree or not
    st.tuples(
        st.just("mood"),
        st.sampled_from(list(MSNS)),
        st.tuples(st.sampled_from([True, False, None]), st.booleans()),
    ),
)


class World:
    def __init__(self) -> None:
        self.ex = SimExchange(NetworkTimers(), retention=True)
        self.ex.add_access("isdn1", ["3301"])
        self.ex.add_access("isdn2", ["4401"], max_requests=2)
        self.ex.add_access("pbx", ["5550"], ptp=True)
        self.ex.add_subscriber("0301", busy=True)
        self.ex.add_subscriber("0302", answer_delay=3.0)
        self.ex.add_subscriber("0303", answers=False, max_queue=2)
        self.clock = Clock(self.ex)
        self.t = {aid: Terminal(self.ex, self.clock, aid) for aid in MSNS}
        self.cct_cr = 0x30
        self.mood: dict[str, tuple[bool | None, bool]] = {aid: (None, False) for aid in MSNS}

    def pump(self) -> None:
        """Terminals react to what the network sent, as their mood says."""
        for _ in range(5):
            busy = False
            for aid, term in self.t.items():
                free, recall = self.mood[aid]
                for msg in term.take():
                    busy = True
                    for inv in invokes(msg):
                        if inv.operation == "CCBSStatusRequest" and free is not None:
                            term.answer_status(inv.invoke_id, free)
                        elif inv.operation == "StatusRequest" and free is not None:
                            status = rt.StatusResult(0 if free else 1)
                            term.answer_destination(inv.invoke_id, status)
                        elif inv.operation == "CCBSRemoteUserFree" and recall:
                            arg = inv.argument
                            assert isinstance(arg, rt.CCBSRemoteUserFreeArg)
                            b = arg.address_of_b.party_number.digits
                            term.recall(b, MSNS[aid], arg.ccbs_reference)
                        elif inv.operation == "CCBS-T-RemoteUserFree" and recall:
                            for rec in self.ex.cc_records(aid):
                                fac = ie(Invoke(term.invoke_id(), Operation.CCBS_T_Call))
                                term.setup(rec.b_number, "5550", facility=(fac,))
                                break
            if not busy:
                return

    def last(self, aid: str, operation: str) -> Invoke | None:
        for msg in reversed(self.t[aid].seen):
            found = invokes(msg, operation)
            if found:
                return found[-1]
        return None

    def step(self, kind: str, p1: object, p2: object) -> None:
        ex, clock = self.ex, self.clock
        if kind == "wait":
            assert isinstance(p1, float)
            clock.advance(p1)
            return
        if kind == "mood":
            assert isinstance(p2, tuple)
            self.mood[str(p1)] = p2
            return
        if kind == "busy":
            ex.set_busy(str(p1), bool(p2), clock.now)
            return
        if kind == "call_from":
            ex.call_from(str(p1), "4401", clock.now, cc=bool(p2))
            return
        term = self.t[str(p1)]
        if kind == "call":
            term.setup(str(p2), MSNS[term.access_id])
        elif kind == "request":
            retain = self.last(term.access_id, "CallInfoRetain")
            if retain is not None:
                term.request(retain.argument.call_linkage_id, ccnr=bool(p2))  # type: ignore[union-attr]
        elif kind == "cct":
            self.cct_cr = 0x30 + (self.cct_cr - 0x2F) % 15
            arg = rt.CCBS_T_RequestArg(address(str(p2)), bytes.fromhex("04038090A3"))
            fac = ie(Invoke(term.invoke_id(), Operation.CCBS_T_Request, arg))
            term.send(Q931(MsgType.REGISTER, self.cct_cr, False, facility=(fac,)))
        elif kind == "status":
            poll = self.last(term.access_id, "CCBSStatusRequest")
            if poll is not None:
                term.answer_status(poll.invoke_id, bool(p2))
        elif kind == "dest":
            poll = self.last(term.access_id, "StatusRequest")
            if poll is not None:
                term.answer_destination(poll.invoke_id, rt.StatusResult(int(p2)))  # type: ignore[call-overload]
        elif kind == "recall":
            if term.access_id == "pbx":
                for rec in ex.cc_records("pbx"):
                    fac = ie(Invoke(term.invoke_id(), Operation.CCBS_T_Call))
                    term.setup(rec.b_number, "5550", facility=(fac,))
                    break
                return
            ruf = self.last(term.access_id, "CCBSRemoteUserFree")
            if ruf is not None:
                arg = ruf.argument
                b = arg.address_of_b.party_number.digits  # type: ignore[union-attr]
                term.recall(b, MSNS[term.access_id], arg.ccbs_reference)  # type: ignore[union-attr]
        elif kind == "deactivate":
            term.deactivate(int(p2))  # type: ignore[call-overload]
        elif kind == "hangup":
            crs = [m.cr for m in term.seen if m.type is MsgType.CONNECT and m.cr is not None]
            if crs:
                term.disconnect(crs[-1] if p2 else crs[0])
        elif kind == "answer":
            setups = [m for m in term.seen if m.type is MsgType.SETUP]
            if setups:
                cr = setups[-1].cr or 0
                if p2 is None:
                    term.send(Q931(MsgType.CONNECT, cr, False))
                else:
                    term.send(Q931(MsgType.RELEASE_COMPLETE, cr, False, cause=int(p2)))  # type: ignore[call-overload]

    def check(self) -> None:
        records = self.ex.cc_records()
        holding = Counter(r.b_number for r in records if r.state in HOLDING)
        assert all(n == 1 for n in holding.values()), records
        refs = [(r.access_id, r.reference) for r in records if r.reference is not None]
        assert len(refs) == len(set(refs)), refs
        linkage_ids = [(lk.access_id, lk.linkage_id) for lk in self.ex.linkages()]
        linkage_ids = [x for x in linkage_ids if x[1] is not None]
        assert len(linkage_ids) == len(set(linkage_ids))
        for aid, term in self.t.items():
            assert len([r for r in records if r.access_id == aid]) <= (2 if aid == "isdn2" else 5)
            del term


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(action, min_size=5, max_size=40))
def test_random_walk_keeps_the_invariants_and_leaves_nothing_behind(
    steps: list[tuple[str, object, object]],
) -> None:
    world = World()
    for kind, p1, p2 in steps:
        world.step(kind, p1, p2)
        world.pump()
        world.check()
    # everybody hangs up, then every timer runs out
    for term in world.t.values():
        for msg in list(term.seen):
            if msg.type in (MsgType.CONNECT, MsgType.SETUP) and msg.cr is not None:
                term.disconnect(msg.cr)
                term.release_complete(msg.cr)
    for number in EXTERNAL:
        world.ex.hang_up(number, world.clock.now)
    world.clock.advance(24 * 3600.0)
    world.check()
    assert world.ex.cc_records() == []
    assert world.ex.linkages() == []
    assert world.ex.next_deadline() is None
    for term in world.t.values():
        for msg in term.seen:
            for contents in msg.facility:
                decode_contents(contents)
