"""A local recall cut by a restart while B was rung, and poll answers as one event.

* The old daemon rang B with the cross-connect pending (``RecallB``) and died — maybe
  in the few ms between B's ring-trip (the bridge then connected A and B on its own,
  analog-bridge.md §3.9.4) and the commit of "Completed". The restarted engine must
  not tear down a call it cannot see: the request waits (``Interrupted``) until a poll
  answer says what A and B are cross-connected to. Connected to each other: the
  recall worked (Completed). Not: stop B's ring, drop the pending connect, re-check.
* ``PortStates`` (one poll answer, every port) is one engine step that acts exactly as
  one ``PortState`` per port would.
"""

from __future__ import annotations

import pytest

from ccbs_isdn.engine import (
    Activate,
    Book,
    CallFailed,
    Cancel,
    CancelDone,
    CcbsEngine,
    DisconnectPort,
    EngineAction,
    Notify,
    NotifyKind,
    PollPorts,
    PortSource,
    PortState,
    PortStates,
    RequestAccepted,
    Ring,
    StopRing,
)
from tests.engine.harness import Box, only


def ringing_b(box: Box) -> Ring:
    """21 asked to be called back on busy 22; 22 hung up; 21 answered the recall: 22
    rings with the cross-connect pending. Returns B's ring."""
    box.lines.hook["p22"] = True
    box.start()
    box.send(CallFailed("21", "22", 17))
    box.send(Activate("21", tag="port-21"))
    box.hang_up("p22")
    box.advance(3)  # guard, re-check, ring A
    out = box.lift("p21")
    assert box.state() == "RecallB"
    return only(box.of(Ring, out))


def b_answers_unseen(box: Box) -> None:
    """B lifts: the bridge trips the ring and completes the cross-connect; the daemon
    is already dead and never hears of it."""
    lines = box.lines
    lines.hook["p22"] = True
    lines.ringing.pop("p22")
    lines.connected.add(frozenset((lines.pending_conn.pop("p22"), "p22")))


TEARDOWN = (StopRing, DisconnectPort, Ring)


def test_b_answered_as_the_old_daemon_died_counts_as_completed() -> None:
    old = Box()
    ringing_b(old)
    b_answers_unseen(old)
    assert old.committed()[0].state == "RecallB"  # "Completed" never reached the store

    new = old.restarted()
    done = only(new.of(Notify))
    assert (done.kind, done.request.state, done.request.reason) == (
        NotifyKind.COMPLETED, "Completed", "recalled")
    assert new.trail() == ["Interrupted", "Completed"]
    assert not [a for a in new.log if isinstance(a, TEARDOWN)]  # the call is left alone
    assert frozenset({"p21", "p22"}) in new.lines.connected
    assert len(new.engine) == 0


def test_the_restore_itself_touches_neither_ring_nor_connect() -> None:
    old = Box()
    ringing_b(old)
    engine = CcbsEngine(old.directory, old.policy)
    out = engine.restore(old.committed(), old.now)
    assert [a for a in out if isinstance(a, TEARDOWN)] == []
    assert only([a for a in out if isinstance(a, PollPorts)]).ports == ("p21", "p22")
    assert engine.get(1) is not None and engine.get(1).state == "Interrupted"  # type: ignore[union-attr]


def test_b_still_ringing_at_the_restart_is_stopped_rechecked_and_a_rung_again() -> None:
    old = Box()
    ring_b = ringing_b(old)  # B keeps ringing with the old daemon's ring

    new = old.restarted()
    assert new.trail()[:3] == ["Interrupted", "Recheck", "Suspended"]  # A still listens
    assert StopRing("p22", ring_b.key) in new.log
    assert DisconnectPort("p21") in new.log  # the pending connect goes with the ring
    assert "p22" not in new.lines.ringing and not new.lines.pending_conn

    new.hang_up("p21")  # A gives up listening to silence and is called back
    new.advance(5)
    ring_a = only(new.of(Ring))
    assert ring_a.port == "p21" and ring_a.key != ring_b.key
    new.lift("p21")
    new.lift("p22")
    assert new.state() == "Completed"
    keys = [a.key for a in [*old.log, *new.log] if isinstance(a, Ring)]
    assert len(keys) == len(set(keys))  # no ring key is used twice


def test_without_cross_connect_facts_the_recall_waits_and_b_stays_taken() -> None:
    old = Box()
    ringing_b(old)
    engine = CcbsEngine(old.directory, old.policy)
    now = old.now
    engine.restore(old.committed(), now)
    # the bridge's first poll after a restart comes before AT%STATE?: peers unknown
    out = engine.handle(PortStates((PortState("p21", True, PortSource.POLL),
                                    PortState("p22", True, PortSource.POLL))), now)
    assert [a for a in out if isinstance(a, TEARDOWN)] == []
    assert engine.get(1).state == "Interrupted"  # type: ignore[union-attr]
    # someone else asks for 22 meanwhile; 22 hangs up: still nobody else is served
    engine.handle(PortState("p23", False, PortSource.POLL), now)
    assert only([a for a in engine.handle(Book("23", "22", tag="t"), now)
                 if isinstance(a, RequestAccepted)]).request_id == 2
    out = engine.handle(PortState("p22", False), now + 1)
    assert engine.handle_timer(now + 10) == [] and engine.get(2).state == "Waiting"  # type: ignore[union-attr]
    # the bridge is initialised: 21 and 22 are connected (B answered, then hung up;
    # going on-hook does not tear a connection down, §3.9.4)
    out = engine.handle(PortState("p21", True, PortSource.POLL, peer="p22"), now + 11)
    assert only([a for a in out if isinstance(a, Notify)]).kind is NotifyKind.COMPLETED
    assert engine.get(1) is None
    assert engine.get(2).state == "Guard"  # type: ignore[union-attr]  # 22 is free: 23's turn


def test_a_second_restart_before_the_facts_keeps_the_recall_interrupted() -> None:
    old = Box()
    ringing_b(old)
    b_answers_unseen(old)
    old.lines.answer_polls = False  # the bridge never answered the first new daemon
    middle = old.restarted()
    assert middle.state() == "Interrupted"
    middle.lines.answer_polls = True
    last = middle.restarted()
    assert last.trail() == ["Interrupted", "Completed"]
    assert not [a for a in [*middle.log, *last.log] if isinstance(a, TEARDOWN)]


def test_cancel_while_interrupted_ends_the_request() -> None:
    old = Box()
    ringing_b(old)
    old.lines.answer_polls = False
    new = old.restarted()
    out = new.send(Cancel(request_id=1, tag="ctl-1"))
    assert only(new.of(CancelDone, out)).request_ids == (1,)
    assert new.state() == "Cancelled"
    assert len(new.engine) == 0


# ------------------------------------------------------------ poll answers batched


class BatchBox(Box):
    """Answers every poll with one ``PortStates`` event, as the runtime does."""

    def execute(self, actions: list[EngineAction]) -> None:
        polls = [a for a in actions if isinstance(a, PollPorts)]
        if self.lines.answer_polls:
            for poll in polls:
                self._queue.append(PortStates(tuple(
                    PortState(p, self.lines.hook[p], PortSource.POLL, peer=self.peer(p))
                    for p in poll.ports if p in self.lines.hook)))
        super().execute([a for a in actions if not isinstance(a, PollPorts)])


def fifo_story(box: Box) -> None:
    """Three callers wait for 22; a poll finds 21 busy; everyone is served in turn."""
    for port in ("p22", "p23"):
        box.lines.hook[port] = True
    box.start()
    for caller in ("21", "24", "25"):
        box.send(CallFailed(caller, "22", 17))
        box.send(Activate(caller, tag=f"port-{caller}"))
    box.lines.hook["p21"] = True  # 21 is on the phone when 22 frees
    box.hang_up("p22")
    box.advance(3)
    box.hang_up("p21")
    for _ in range(6):
        box.advance(3)
        for port in ("p21", "p24", "p25", "p22"):
            if port in box.lines.ringing:
                box.lift(port)
        for pair in list(box.lines.connected):
            for port in sorted(pair):
                box.hang_up(port)


@pytest.mark.parametrize("story", [fifo_story, ringing_b])
def test_a_poll_answer_as_one_event_acts_like_one_event_per_port(story: object) -> None:
    single, batch = Box(), BatchBox()
    story(single)  # type: ignore[operator]
    story(batch)  # type: ignore[operator]
    assert batch.log == single.log
    assert [(h.request_id, h.event, h.new_state) for h in batch.history] == [
        (h.request_id, h.event, h.new_state) for h in single.history]
    assert batch.steps < single.steps  # ... in fewer steps (commits)


def test_fifo_story_really_serves_everyone() -> None:
    box = BatchBox()
    fifo_story(box)
    assert [box.state(i) for i in (1, 2, 3)] == ["Completed"] * 3
