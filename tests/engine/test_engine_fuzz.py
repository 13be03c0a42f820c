"""Any order of events — late, duplicated, for unknown or stale ids — leaves the engine
consistent: nothing raises, ended requests leave every index, ring keys are never
reused, no timer is left overdue, and an engine rebuilt from the snapshots at any
point carries on.

The event generator is *guided*: most events are aimed at what the engine currently
holds (a live request's reference, handle, ring key, call id), so random walks get
deep into every rulebook instead of bouncing off unknown ids. A seeded sweep checks
that they really do.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccbs_isdn.engine import (
    Activate,
    Book,
    CallerPolicy,
    CallerRecallMode,
    CallFailed,
    Cancel,
    CcbsEngine,
    Dialled,
    EngineEvent,
    Policy,
    PortsAvailable,
    PortSource,
    PortState,
    PortStates,
    PortsUnavailable,
    Ring,
    RingAnswered,
    RingEnded,
    Role,
    StatusQuery,
    StoreState,
)
from ccbs_isdn.engine.machine import FINAL_STATES
from ccbs_isdn.engine.request import RequestRecord
from ccbs_isdn.isdn import (
    CallAlerting,
    CallConnected,
    CallEnded,
    CcAvailable,
    CcBFree,
    CcErase,
    CcEraseCallLinkage,
    CcInterrogateResult,
    CcKind,
    CcRemoteUserFree,
    CcRequestResult,
    CcStatusRequest,
    CcStopAlerting,
    CcTConnectionCleared,
    CcTRemoteUserFree,
    ControllerDown,
    ControllerUp,
    DestinationStatusRequest,
)
from tests.engine.harness import T0, Box

EXTS = ["21", "22", "23", "24"]
PORTS = ["p21", "p22", "p23", "p24"]
NUMBERS = [*EXTS, "0301", "0302"]
PAUSES = [0.0, 0.5, 2.0, 5.0, 21.0, 61.0, 400.0, 3000.0]



Step = Callable[[RequestRecord, random.Random], "EngineEvent | float"]


def _ring_answer(r: RequestRecord, rng: random.Random) -> EngineEvent | float:
    return RingAnswered(r.ring_port, r.ring_key) if r.ring_port else 1.0


def _ring_end(r: RequestRecord, rng: random.Random) -> EngineEvent | float:
    return RingEnded(r.ring_port, r.ring_key) if r.ring_port else 1.0


def _line(port_of: str, busy: bool, source: PortSource = PortSource.EVENT) -> Step:
    def make(r: RequestRecord, rng: random.Random) -> EngineEvent | float:
        port = getattr(r, port_of)
        return PortState(port, busy, source) if port else 1.0
    return make


def _peer(port_of: str, linked: bool | None) -> Step:
    """A poll answer for A or B that says what the port is cross-connected to (its
    partner, nothing) or, with None, that the bridge does not know yet."""
    def make(r: RequestRecord, rng: random.Random) -> EngineEvent | float:
        port = getattr(r, port_of)
        other = r.b_port if port_of == "a_port" else r.a_port
        if not port:
            return 1.0
        peer = None if linked is None else (other or "") if linked else ""
        return PortState(port, True, PortSource.POLL, peer=peer)
    return make


def _net(make: Callable[[int, RequestRecord], EngineEvent]) -> Step:
    return lambda r, rng: make(r.ctrl or 1, r)


#: what moves a request in each (role, state) forward — or sideways
PROGRESS: dict[tuple[Role, str], list[Step]] = {
    (Role.MONITOR, "Available"): [
        lambda r, rng: Activate(r.caller),
        _net(lambda c, r: CcEraseCallLinkage(c, linkage_id=r.linkage_id or 0))],
    (Role.MONITOR, "Requested"): [
        _net(lambda c, r: CcRequestResult(c, handle=r.handle or 0, reference=r.id % 8,
                                          retention=r.ptp)),
        _net(lambda c, r: CcRequestResult(c, handle=r.handle or 0, error="shortTermDenial")),
        lambda r, rng: 10.0],
    (Role.MONITOR, "WaitDestruction"): [
        _net(lambda c, r: CcRequestResult(c, handle=r.handle or 0, reference=r.id % 8))],
    (Role.MONITOR, "Activated"): [
        _net(lambda c, r: CcRemoteUserFree(c, reference=r.reference or 0)),
        _net(lambda c, r: CcTRemoteUserFree(c, handle=r.handle or 0)),
        _net(lambda c, r: CcBFree(c, reference=r.reference or 0)),
        _net(lambda c, r: CcStatusRequest(c, token=1, reference=r.reference or 0)),
        _line("a_port", True),
        lambda r, rng: Dialled(r.caller, r.target, f"d{r.id}", r.ctrl)],
    (Role.MONITOR, "Suspended"): [
        _net(lambda c, r: CcStatusRequest(c, token=1, reference=r.reference or 0)),
        _net(lambda c, r: CcRemoteUserFree(c, reference=r.reference or 0)),
        _line("a_port", False)],
    (Role.MONITOR, "WaitCallback"): [
        _ring_answer, _ring_answer, _ring_end, _line("a_port", False),
        _net(lambda c, r: CcStopAlerting(c, reference=r.reference or 0)),
        lambda r, rng: Dialled(r.caller, r.target, f"d{r.id}", r.ctrl)],
    (Role.MONITOR, "Callback"): [
        _net(lambda c, r: CallConnected(c, call_id=r.call_id)),
        _net(lambda c, r: CallEnded(c, call_id=r.call_id, cause=17,
                                    error=None if r.id % 2 else "notReadyForCall")),
        _line("a_port", False)],
    (Role.LOCAL, "Waiting"): [_line("b_port", False), _line("b_port", True)],
    (Role.LOCAL, "Guard"): [lambda r, rng: 2.0, _line("b_port", True)],
    (Role.LOCAL, "Recheck"): [_line("a_port", False, PortSource.POLL),
                              _line("b_port", False, PortSource.POLL), lambda r, rng: 3.0],
    (Role.LOCAL, "RecallA"): [_ring_answer, _ring_answer, _ring_end],
    (Role.LOCAL, "RecallB"): [_ring_answer, _ring_answer, _ring_end, _line("a_port", False)],
    (Role.LOCAL, "Interrupted"): [_peer("a_port", True), _peer("b_port", True),
                                  _peer("a_port", False), _peer("b_port", None),
                                  lambda r, rng: Cancel(request_id=r.id)],
    (Role.LOCAL, "RetryWait"): [lambda r, rng: 61.0],
    (Role.LOCAL, "Suspended"): [_line("a_port", False, PortSource.POLL),
                                lambda r, rng: PortsAvailable(tuple(p for p in (r.a_port,
                                                                                 r.b_port)
                                                                    if p))],
    (Role.LOCAL, "Notified"): [lambda r, rng: Dialled(r.caller, r.target, f"d{r.id}"),
                               _line("b_port", True)],
    (Role.REDIAL, "Waiting"): [lambda r, rng: 61.0, _line("a_port", False)],
    (Role.REDIAL, "Dialling"): [_net(lambda c, r: CallAlerting(c, call_id=r.call_id)),
                                _net(lambda c, r: CallConnected(c, call_id=r.call_id)),
                                _net(lambda c, r: CallEnded(c, call_id=r.call_id, cause=17))],
    (Role.REDIAL, "RecallA"): [_ring_answer, _ring_end,
                               _net(lambda c, r: CallConnected(c, call_id=r.call_id))],
    (Role.REDIAL, "Connecting"): [_net(lambda c, r: CallConnected(c, call_id=r.call_id)),
                                  _line("a_port", False)],
    (Role.REDIAL, "Suspended"): [_line("a_port", False, PortSource.POLL)],
}


def guided_event(box: Box, rng: random.Random) -> EngineEvent | float:
    """The next input: an event, or a number of seconds to let pass. Mostly what moves
    a live request on; otherwise noise (unknown ids, stray line events, admin input)."""
    engine = box.engine
    live = engine.requests()
    req = rng.choice(live) if live else None
    if req is not None and rng.random() < 0.6:
        steps = PROGRESS.get((req.role, req.state))
        if steps:
            return rng.choice(steps)(req, rng)
    roll = rng.randrange(100)
    if roll < 10:
        return rng.choice(PAUSES)
    ext, number = rng.choice(EXTS), rng.choice(NUMBERS)
    if roll < 35:
        port = rng.choice(PORTS)
        if port != "p21" and rng.random() < 0.5:  # make some callees busy first
            return PortState(port, True)
        return rng.choice([
            CallFailed(ext, number, rng.choice([16, 17, 19])),
            Activate(ext), Book(ext, number, rng.choice(list(CcKind))),
            Dialled(ext, number, f"d{rng.randrange(3)}", rng.choice([None, 1, 2])),
        ])
    if roll < 45:
        return rng.choice([
            Cancel(caller=ext), Cancel(all_requests=True),
            Cancel(request_id=req.id if req else 1), StatusQuery(ext),
            StoreState(rng.random() < 0.8),
        ])
    if roll < 65:
        port = rng.choice(PORTS)
        return rng.choice([
            PortState(port, rng.random() < 0.5, rng.choice(list(PortSource))),
            PortState(port, rng.random() < 0.5, PortSource.POLL, peer=rng.choice(PORTS)),
            PortStates(tuple(PortState(p, rng.random() < 0.3, PortSource.POLL,
                                       peer=rng.choice([None, ""]))
                             for p in PORTS)),
            RingAnswered(port, f"{rng.randrange(1, 4)}.{rng.randrange(1, 4)}"),
            RingEnded(port, f"{rng.randrange(1, 4)}.{rng.randrange(1, 4)}"),
            PortsUnavailable((port,)), PortsAvailable((port,)),
        ])
    ctrl = rng.choice([1, 2])
    call = f"d{rng.randrange(3)}"
    c, ref = ctrl, rng.randrange(8)
    return rng.choice([
        CcAvailable(ctrl, call_id=call, kind=rng.choice(list(CcKind)),
                    linkage_id=None if ctrl == 2 else rng.randrange(4), called="0301",
                    calling=f"55510{ext}"),
        CcAvailable(ctrl, call_id=call, kind=CcKind.CCBS, linkage_id=rng.randrange(4),
                    called=number, calling="unknown"),
        ControllerUp(ctrl, ptp=ctrl == 2, reconnected=rng.random() < 0.3),
        ControllerDown(ctrl),
        DestinationStatusRequest(ctrl, token=2, msn=rng.choice(["", "5551022"]),
                                 bearer=rng.randbytes(rng.randrange(6))),
        CcRemoteUserFree(c, reference=ref), CcErase(c, reference=ref),
        CcStatusRequest(c, token=3, reference=ref), CcTConnectionCleared(c, handle=ref),
        CcRequestResult(c, handle=ref, reference=ref),
        *[CcInterrogateResult(c, handle=h, references=(ref,)) for h in engine._interrogations],
        CallEnded(c, call_id=call, cause=17), CallConnected(c, call_id=f"ccbs-1-{ref}"),
    ])


def check_consistent(engine: CcbsEngine, now: float) -> None:
    live = {r.id: r for r in engine.requests()}
    for record in live.values():
        assert record.state not in FINAL_STATES and record.ended_at is None
    for index in (engine._by_linkage, engine._by_ref, engine._by_handle, engine._by_call,
                  engine._by_ring, engine._offers, engine._claims):
        for owner in index.values():  # type: ignore[attr-defined]
            assert owner in live, (index, owner)
    assert engine._enlisted <= set(live)
    for queue in engine._b_queue.values():
        assert set(queue) <= set(live) and len(queue) == len(set(queue))
        assert queue == sorted(queue)  # FIFO = ascending ids (the engine relies on it)
    assert engine._b_active == {
        port: active for port, queue in engine._b_queue.items()
        if (active := {rid for rid in queue if live[rid].state != "Waiting"})}
    deadline = engine.next_deadline()
    assert deadline is None or deadline >= now  # nothing overdue left behind
    # the running tallies behind metrics and the poll watch-list match a full walk
    counts: dict[tuple[str, str], int] = {}
    for record in live.values():
        key = (record.role.value, record.state)
        counts[key] = counts.get(key, 0) + 1
    assert engine.state_counts() == counts
    assert engine.watched_ports() == frozenset(
        p for rid in engine._enlisted for p in (live[rid].a_port, live[rid].b_port) if p)


def walk(seed: random.Random, steps: int, restart_at: int | None = None) -> set[str]:
    """Run one guided random walk; returns the states its requests went through."""
    box = Box(policy=Policy(redial_fallback=True, recall_retries=1, callers={
        "23": CallerPolicy(recall_mode=CallerRecallMode.NOTIFY)}))
    box.lines.answer_polls = False  # the walk decides what the lines report
    now = T0
    rings: set[str] = set()
    latest: dict[int, RequestRecord] = {}
    seen: set[str] = set()
    for step in range(steps):
        if step == restart_at:  # a crash: rebuild from the snapshots and carry on
            box.engine = CcbsEngine(box.directory, box.policy)
            box.engine.restore(latest.values(), now)
            for record in box.engine.take_changes().requests:
                latest[record.id] = record
                seen.add(f"{record.role.value}:{record.state}")
        nxt = guided_event(box, seed)
        if isinstance(nxt, float):
            now += nxt
            actions = box.engine.handle_timer(now)
        else:
            actions = box.engine.handle_timer(now) + box.engine.handle(nxt, now)
        for record in box.engine.take_changes().requests:
            latest[record.id] = record
            seen.add(f"{record.role.value}:{record.state}")
        for action in actions:
            if isinstance(action, Ring):
                assert action.key not in rings, action
                rings.add(action.key)
        check_consistent(box.engine, now)
    return seen


@given(st.randoms(use_true_random=False), st.integers(10, 120),
       st.none() | st.integers(0, 120))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_guided_walks_keep_the_engine_consistent(
        rng: random.Random, steps: int, restart_at: int | None) -> None:
    walk(rng, steps, restart_at)


def test_the_walks_reach_deep_states_of_every_role() -> None:
    """Seeded sweep (deterministic): the generator is not shallow."""
    seen: set[str] = set()
    for seed in range(150):
        seen |= walk(random.Random(seed), 120, restart_at=60)
    for needed in ["monitor:Requested", "monitor:Activated", "monitor:Suspended",
                   "monitor:WaitCallback", "monitor:Callback", "monitor:Completed",
                   "monitor:WaitDestruction", "local:Guard", "local:RecallA",
                   "local:RecallB", "local:Completed", "local:RetryWait",
                   "redial:Waiting", "redial:Dialling", "redial:RecallA",
                   "redial:Completed", "monitor:Expired", "local:Notified",
                   "local:Interrupted"]:
        assert needed in seen, (needed, sorted(seen))
