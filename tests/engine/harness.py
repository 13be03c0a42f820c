"""Story harness for the pure engine: a fake clock, simulated phone lines that obey the
engine's port actions (rings, polls, cross-connects) and a record of every action.

The lines behave like the FXB/1 bridge (analog-bridge.md §3.9): a ring-trip is
reported as ``RingAnswered`` (no separate off-hook), polls answer with the current
hook state (and cross-connect peer) of every port asked for, a cross-connect completes
on B's ring-trip. The
ISDN network is *not* simulated here: stories feed ``ccbs_isdn.isdn`` indications by
hand and assert the commands, like a protocol trace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ccbs_isdn.engine import (
    CcbsEngine,
    Changes,
    ConnectPorts,
    Directory,
    DisconnectPort,
    EngineAction,
    EngineEvent,
    Extension,
    HistoryEntry,
    Policy,
    PollPorts,
    PortSource,
    PortState,
    Ring,
    RingAnswered,
    RingEnded,
    StopRing,
)

#: 2024-01-10 12:00:00 UTC, a Wednesday: stories start at noon.
T0 = dt.datetime(2024, 1, 10, 12, 0, tzinfo=dt.UTC).timestamp()

A = TypeVar("A")

#: extension -> FXS port; 21..24 analog phones, 31 with an MSN on controller 1
DEFAULT_EXTENSIONS = (
    Extension("21", port="p21", msn="5551021", ctrl=1, name="Anna"),
    Extension("22", port="p22", msn="5551022", ctrl=1, name="Bernd"),
    Extension("23", port="p23", msn="5551023", ctrl=1, name="Clara"),
    Extension("24", port="p24", msn="5551024", ctrl=2, name="Dora"),
    Extension("25", port="p25", msn="5551025", ctrl=1, name="Emil"),
    Extension("26", port="p26", msn="5551026", ctrl=1, name="Fritz"),
    Extension("27", port="p27", msn="5551027", ctrl=1, name="Gerd"),
)


@dataclass
class Lines:
    """Simulated FXS ports: hook state, current rings, cross-connects."""

    hook: dict[str, bool] = field(default_factory=dict)  # True = off-hook
    ringing: dict[str, str] = field(default_factory=dict)  # port -> ring key
    pending_conn: dict[str, str] = field(default_factory=dict)  # B port -> A port
    connected: set[frozenset[str]] = field(default_factory=set)
    answer_polls: bool = True


class Box:
    """One engine + lines + fake clock. ``send``/``advance`` run the engine and let
    the lines react to its actions (poll answers come back as events at once)."""

    def __init__(self, extensions: Iterable[Extension] = DEFAULT_EXTENSIONS,
                 policy: Policy | None = None, *, now: float = T0,
                 engine: CcbsEngine | None = None) -> None:
        self.directory = Directory(extensions)
        self.policy = policy or Policy()
        self.engine = engine or CcbsEngine(self.directory, self.policy)
        self.now = now
        self.lines = Lines()
        for ext in self.directory.extensions:
            if ext.port is not None:
                self.lines.hook[ext.port] = False
        self.log: list[EngineAction] = []
        self.history: list[HistoryEntry] = []
        self.changes: list[Changes] = []
        self.steps = 0
        self._queue: list[EngineEvent] = []

    # --------------------------------------------------------------- running

    def start(self) -> list[EngineAction]:
        """Tell the engine the initial hook state of every port (as a poll would)."""
        out: list[EngineAction] = []
        for port, off in sorted(self.lines.hook.items()):
            out += self.send(PortState(port, off, PortSource.POLL))
        return out

    def send(self, event: EngineEvent) -> list[EngineAction]:
        actions = self.engine.handle(event, self.now)
        return self._step(actions)

    def advance(self, seconds: float) -> list[EngineAction]:
        """Move the clock, firing every timer on the way at its own time."""
        target = self.now + seconds
        out: list[EngineAction] = []
        while True:
            due = self.engine.next_deadline()
            if due is None or due > target:
                break
            self.now = max(self.now, due)
            out += self._step(self.engine.handle_timer(self.now))
        self.now = target
        return out

    def _step(self, actions: list[EngineAction]) -> list[EngineAction]:
        self.steps += 1
        changes = self.engine.take_changes()
        self.persist(changes)
        self.log.extend(actions)
        self.execute(actions)
        out = list(actions)
        while self._queue:
            event = self._queue.pop(0)
            out += self._step(self.engine.handle(event, self.now))
        return out

    def persist(self, changes: Changes) -> None:
        self.changes.append(changes)
        self.history.extend(changes.history)

    def execute(self, actions: list[EngineAction]) -> None:
        lines = self.lines
        for action in actions:
            if isinstance(action, PollPorts) and lines.answer_polls:
                for port in action.ports:
                    if port in lines.hook:
                        self._queue.append(PortState(port, lines.hook[port], PortSource.POLL,
                                                     peer=self.peer(port)))
            elif isinstance(action, Ring):
                if lines.hook.get(action.port):
                    self._queue.append(RingEnded(action.port, action.key, "failed"))
                else:
                    lines.ringing[action.port] = action.key
            elif isinstance(action, StopRing):
                if lines.ringing.get(action.port) == action.key:
                    del lines.ringing[action.port]
            elif isinstance(action, ConnectPorts):
                lines.pending_conn[action.port_b] = action.port_a
            elif isinstance(action, DisconnectPort):
                lines.connected = {c for c in lines.connected if action.port not in c}
                lines.pending_conn = {b: a for b, a in lines.pending_conn.items()
                                      if action.port not in (a, b)}

    def peer(self, port: str) -> str:
        """The port ``port`` is cross-connected to ("" = none), as a poll answer of an
        initialised bridge tells it (``AT%STATE?``, ``%CONN``)."""
        for pair in self.lines.connected:
            if port in pair:
                (other,) = pair - {port}
                return other
        return ""

    def committed(self) -> list[Any]:
        """What the store holds: the latest snapshot of every request still active."""
        latest: dict[int, Any] = {}
        for changes in self.changes:
            for record in changes.requests:
                latest[record.id] = record
        return [r for r in latest.values() if r.ended_at is None]

    def restarted(self) -> Box:
        """``kill -9`` and a new daemon: a fresh engine restored from what was
        committed, on the same lines (the bridge kept running); the restore's actions
        are executed like those of any step."""
        box = Box(self.directory.extensions, self.policy, now=self.now,
                  engine=CcbsEngine(self.directory, self.policy, last_id=self.engine.last_id))
        box.lines = self.lines
        box._step(box.engine.restore(self.committed(), box.now))
        return box

    # -------------------------------------------------------------- the users

    def lift(self, port: str) -> list[EngineAction]:
        """Handset up: answers a ring (ring-trip) or goes off-hook."""
        self.lines.hook[port] = True
        key = self.lines.ringing.pop(port, None)
        if key is not None:
            a_port = self.lines.pending_conn.pop(port, None)
            if a_port is not None:
                self.lines.connected.add(frozenset((a_port, port)))
            return self.send(RingAnswered(port, key))
        return self.send(PortState(port, True))

    def hang_up(self, port: str) -> list[EngineAction]:
        self.lines.hook[port] = False
        self.lines.connected = {c for c in self.lines.connected if port not in c}
        return self.send(PortState(port, False))

    def ring_times_out(self, port: str) -> list[EngineAction]:
        key = self.lines.ringing.pop(port)
        return self.send(RingEnded(port, key, "timeout"))

    # ------------------------------------------------------------- inspecting

    def state(self, request_id: int = 1) -> str:
        live = self.engine.get(request_id)
        if live is not None:
            return live.state
        for changes in reversed(self.changes):
            for record in changes.requests:
                if record.id == request_id:
                    return record.state
        raise KeyError(request_id)

    def record(self, request_id: int = 1) -> Any:
        live = self.engine.get(request_id)
        if live is not None:
            return live
        for changes in reversed(self.changes):
            for record in changes.requests:
                if record.id == request_id:
                    return record
        raise KeyError(request_id)

    def of(self, kind: type[A], actions: Iterable[EngineAction] | None = None) -> list[A]:
        return [a for a in (self.log if actions is None else actions) if isinstance(a, kind)]

    def trail(self, request_id: int = 1) -> list[str]:
        """The request's states in order, as the history records them."""
        states: list[str] = []
        for entry in self.history:
            if entry.request_id == request_id and (not states or states[-1] != entry.new_state):
                states.append(entry.new_state)
        return states


def only(items: list[A]) -> A:
    assert len(items) == 1, items
    return items[0]
