"""The chaos monkey: the REAL ccbsd (a child process) against the simulated box, with
faults injected at seeded random points of concurrent local and ISDN lifecycles.

Reuses the story stage (``drivers/sim/demo.py``: ``Stage``, ``Ccbsd``) and the story
box (``tests/stories/conftest.py``: four phones, an external subscriber who starts
busy, shortened timers). One *round* is one local lifecycle (Anna calls Bert who is
busy, R *37#, recall when Bert hangs up) and one ISDN lifecycle (Cleo calls 0301234,
busy, 5, network CCBS, recall call) running at the same time. At the k-th bridge
command of the round (k seeded, + a seeded jitter of a few ms) one fault strikes:

==================  =====================================================================
``kill9``           ``kill -9`` of ccbsd, restart
``kill9-twice``     ``kill -9``, restart, ``kill -9`` again in the middle of the start-up
``sigterm``         SIGTERM (graceful stop) in the middle of the lifecycle, restart
``capi-drop``       the simulated card drops every CAPI connection (the driver reconnects)
``bridge-reboot``   the FXS bridge reboots (``%READY``): rings, tones, cross-connects gone
``bridge-unplug``   the bridge disappears (USB pulled) until ccbsd notices; plugged back
``urc-loss``        the next URCs of a port are lost on the wire (the hook poll catches up)
``garbage``         seeded random bytes and lines from the bridge amid the URCs
==================  =====================================================================

The users then give up what they were doing and behave like people (``settle``):
hang up, answer whatever rings, hang up after a connection, until the daemon has no
active request. Invariants checked after every round (``check_round``), each
violation recorded with the seed and the round:

* no request lost: an activation that got the confirm tone has its request in the
  store (read from the SQLite file itself);
* none duplicated: at most one request per caller and target per round;
* no recall rung twice: accepted recall rings (``AT%RING=<A>,<recall cadence>``)
  per request at most 1 + the disruptive faults of the round, and at least one for
  a completed local request; a ring refused as ``PORT_RINGING`` (two at once) only
  right after a restart; no recall ring between rounds;
* every request final (or, should settling time out, still active: resumable), and
  the network holds no CC record of ours any more;
* the daemon answers ``ccbsctl status`` (the real CLI).

Owns nothing of the product; holds no CCBS logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccbs_isdn.drivers.sim.demo import ControlRefused, DaemonGone, Stage

from ccbs_isdn.runtime.store import RequestFilter, RequestStore
from tests.stories.conftest import (
    ANNA,
    BERT,
    CLEO,
    EXTERNAL_BUSY,
    HOOK,
    STATIONS,
    TIMERS,
    box_config,
)

FINAL = ("Completed", "Cancelled", "Expired", "Failed")
RECALL_CADENCE = 1  # [fxs] recall_cadence default
ALL_FAULTS = ("kill9", "kill9-twice", "sigterm", "capi-drop", "bridge-reboot",
              "bridge-unplug", "urc-loss", "garbage")
#: faults after which a recall may be rung once more (the ring in flight was cut)
DISRUPTIVE = frozenset(ALL_FAULTS) - {"garbage"}
#: faults that end the daemon process
KILLS = frozenset({"kill9", "kill9-twice", "sigterm"})
#: the hook poll of ports in a request: a lost hang-up URC is caught within this
POLL = (1.0, 5.0)
#: how long the users keep settling before a request counts as stuck
SETTLE_TIMEOUT = 60.0
#: a person off-hook with nothing happening hangs up after this
PATIENCE = 2.5
#: a connected pair talks this long
TALK = 0.3


def long_mode() -> bool:
    """``CCBS_CHAOS_LONG=1``: many more rounds (not in ``make test``)."""
    return os.environ.get("CCBS_CHAOS_LONG", "") not in ("", "0")


def base_seed() -> int:
    """``CCBS_CHAOS_SEED`` or a fresh one (printed by the tests, so any run can be
    repeated)."""
    text = os.environ.get("CCBS_CHAOS_SEED", "")
    return int(text) if text else int.from_bytes(os.urandom(4), "big")


# ------------------------------------------------------------------ statistics


@dataclass
class ChaosStats:
    """What one chaos test did; written as JSON next to the others for the summary."""

    test: str
    seed: int
    rounds: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    kills_survived: int = 0  # daemon processes killed (-9 or TERM) and restarted
    requests: int = 0
    completed: int = 0
    recall_rings: int = 0
    fuzz_cases: int = 0
    violations: list[str] = field(default_factory=list)

    def violation(self, text: str) -> None:
        self.violations.append(text)

    def to_json(self) -> dict[str, Any]:
        return {"test": self.test, "seed": self.seed, "rounds": self.rounds,
                "faults": dict(self.faults), "kills_survived": self.kills_survived,
                "requests": self.requests, "completed": self.completed,
                "recall_rings": self.recall_rings, "fuzz_cases": self.fuzz_cases,
                "violations": self.violations}

    def line(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        return (f"{self.test}: seed {self.seed}, {self.rounds} rounds, "
                f"{self.kills_survived} kills survived, faults [{faults}], "
                f"{self.requests} requests ({self.completed} completed), "
                f"{self.recall_rings} recall rings, {len(self.violations)} invariant "
                f"violations")


# ------------------------------------------------------------------ the stage


def chaos_stage(root: Path, *, extra: str = "", timers: dict[str, float] | None = None,
                log_level: str = "debug") -> Stage:
    """The story box and a ccbsd configured against it (not opened yet)."""
    return Stage(box_config(), STATIONS, timers={**TIMERS, **(timers or {})}, hook=HOOK,
                 poll=POLL, extra=extra, log_level=log_level, root=root)


def store_path(stage: Stage) -> Path:
    return stage.root / "state" / "requests.db"


def read_store(stage: Stage, *, after: int = 0) -> list[Any]:
    """Requests with id > ``after`` as the SQLite file holds them (read-only
    connection beside the running daemon: WAL lets readers in)."""
    store = RequestStore.open(store_path(stage), read_only=True)
    try:
        return [r for r in store.list(RequestFilter()) if r.id > after]
    finally:
        store.close()


def last_id(stage: Stage) -> int:
    store = RequestStore.open(store_path(stage), read_only=True)
    try:
        return store.last_id()
    finally:
        store.close()


# ------------------------------------------------------------------ the monkey


@dataclass
class Round:
    number: int
    fault: str | None
    k: int
    start: int = 0  # bridge mark when the round began
    faulted_at: int | None = None  # bridge mark when the fault struck
    restarted_at: list[int] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)
    commands: int = 0
    #: strike when this holds instead of at the k-th command (a chosen moment)
    at: Callable[[], bool] | None = None
    forced: bool = False  # the round was over before its moment: struck at the end


class Monkey:
    """Runs rounds on one stage. ``await monkey.round(...)``; violations go to
    ``stats``."""

    def __init__(self, stage: Stage, stats: ChaosStats, rng: random.Random) -> None:
        self.stage = stage
        self.stats = stats
        self.rng = rng
        self.box = stage.box
        self.anna, self.bert, self.cleo = (self.box.phone(1), self.box.phone(2),
                                           self.box.phone(3))
        self.b = self.box.subscriber(EXTERNAL_BUSY)
        self.last_round_end = 0
        self.log: list[str] = []
        self._force = False

    def note(self, text: str) -> None:
        self.log.append(f"{time.monotonic():.3f} {text}")
        self.box.note("box", f"chaos: {text}")

    # ---------------------------------------------------------------- scripts

    async def local_script(self) -> None:
        stage = self.stage
        await stage.lift(self.bert)
        await stage.call_busy(self.anna, BERT)
        await stage.activate(self.anna)
        await stage.hang_up(self.anna)
        since = stage.mark()
        await stage.hang_up(self.bert)
        await stage.command(f"AT%RING=1,{RECALL_CADENCE},", since=since, timeout=15)
        await self.box.wait_for(lambda: self.anna.clip is not None, 10, "CLIP")
        self.anna.answer()
        await self.box.wait_for(lambda: self.bert.ringing, 10, "Bert rings")
        self.bert.answer()
        await self.box.wait_for(lambda: self.anna.peer == 2, 10, "connected")

    async def isdn_script(self) -> None:
        stage = self.stage
        await stage.call_busy(self.cleo, "0" + EXTERNAL_BUSY + "#")
        await stage.activate(self.cleo, method="digit")
        await stage.hang_up(self.cleo)
        since = stage.mark()
        self.b.hang_up()
        self.b.free()
        await stage.command(f"AT%RING=3,{RECALL_CADENCE},", since=since, timeout=15)
        await self.box.wait_for(lambda: self.cleo.clip is not None, 10, "CLIP")
        self.cleo.answer()
        await self.box.wait_for(lambda: self.b.in_call(), 10, "recall connected")

    # ----------------------------------------------------------------- faults

    async def kill(self, sig: int) -> None:
        """Signal the daemon and wait for it to end; count it."""
        ccbsd = self.stage.ccbsd
        if sig == signal.SIGKILL:
            await ccbsd.kill()
        else:
            code = await ccbsd.stop(timeout=30)
            if code != 0:
                self.stats.violation(f"ccbsd exited {code} on SIGTERM")
        self.stats.kills_survived += 1  # confirmed when the restart answers

    async def restart(self, rnd: Round) -> None:
        rnd.restarted_at.append(self.stage.mark())
        await self.stage.start_daemon()

    async def strike(self, rnd: Round) -> None:
        """Inject ``rnd.fault`` and repair what a person would repair."""
        fault = rnd.fault
        rnd.faulted_at = self.stage.mark()
        self.note(f"round {rnd.number}: {fault} at command {rnd.k}")
        self.stats.faults[str(fault)] += 1
        box, stage = self.box, self.stage
        if fault == "kill9":
            await self.kill(signal.SIGKILL)
            await self.restart(rnd)
        elif fault == "kill9-twice":
            await self.kill(signal.SIGKILL)
            rnd.restarted_at.append(stage.mark())
            await stage.ccbsd.start(wait_ready=False)
            # somewhere in the start-up: store opened, drivers coming up, restore
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stage.ccbsd.wait_notify("READY=1"),
                                       self.rng.uniform(0.05, 0.6))
            await self.kill(signal.SIGKILL)
            await self.restart(rnd)
        elif fault == "sigterm":
            await self.kill(signal.SIGTERM)
            await self.restart(rnd)
        elif fault == "capi-drop":
            # the driver notices the lost connection, re-registers and reconciles
            async with EventWatch(stage) as events:
                box.drop_capi_connections()
                await events.until(lambda e: e["event"] == "line-down"
                                   and e["detail"].startswith("controller"), 30)
                await events.until(lambda e: e["event"] == "line-up"
                                   and e["detail"].startswith("controller"), 30)
            await stage.lines_up(30)
        elif fault == "bridge-reboot":
            since = stage.mark()
            box.reboot_bridge()
            await bridge_set_up(stage, since)
        elif fault == "bridge-unplug":
            await box.unplug_bridge()
            await stage.until(lambda st: any(
                line["kind"] == "bridge" and not line["up"] for line in st["lines"]),
                30, "the daemon notices the bridge is gone")
            since = stage.mark()
            await box.replug_bridge()
            await bridge_set_up(stage, since)
        elif fault == "urc-loss":
            port = self.rng.choice((1, 2, 3))
            box.lose_next_urc(port, self.rng.randint(1, 2))
        elif fault == "garbage":
            for _ in range(self.rng.randint(1, 4)):
                if self.rng.random() < 0.5:
                    box.bridge.send_garbage(self.rng.randbytes(self.rng.randint(1, 80)))
                else:
                    box.bridge.send_line(garbage_line(self.rng))
        else:
            raise ValueError(f"unknown fault {fault!r}")

    # ------------------------------------------------------------------ round

    async def round(self, number: int, fault: str | None, k: int = 0, *,
                    at: Callable[[], bool] | None = None) -> Round:
        rnd = Round(number, fault, k, at=at)
        box, stage = self.box, self.stage
        rnd.start = stage.mark()
        before = last_id(stage)
        self.note(f"round {number} begins ({fault or 'no fault'} at command {k})")
        # nobody was rung between the rounds
        between = [c.text for c in box.bridge.commands[self.last_round_end:]
                   if c.text.startswith("AT%RING=") and _cadence(c.text) == RECALL_CADENCE]
        if between:
            self.stats.violation(f"round {number}: recall rung between rounds: {between}")
        self.b.busy()
        self._force = False
        scripts = [asyncio.ensure_future(self.local_script()),
                   asyncio.ensure_future(self.isdn_script())]
        fault_task = (asyncio.ensure_future(self._fault(rnd, scripts))
                      if fault is not None else None)
        try:
            results = await asyncio.gather(*scripts, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException) and \
                        not isinstance(result, asyncio.CancelledError):
                    # a lifecycle cut by the fault: settle() finishes it
                    rnd.script_errors.append(f"{type(result).__name__}: "
                                             f"{str(result)[:200]}")
            await self.settle(rnd, fault_task)
        finally:
            # nothing of this round may outlive it (a test that fails must not leave
            # a restart running behind the stage's back)
            await _cancel([*scripts, *([fault_task] if fault_task else [])])
        rnd.commands = stage.mark() - rnd.start
        await self.check_round(rnd, before)
        self.last_round_end = stage.mark()
        self.stats.rounds += 1
        return rnd

    async def _fault(self, rnd: Round, scripts: list[asyncio.Future[Any]]) -> None:
        """At the round's k-th bridge command (or when the round is over before it,
        ``_force``), plus a few ms: the users drop what they do, the fault strikes."""
        stage = self.stage
        hit = rnd.start + rnd.k
        at = rnd.at or (lambda: stage.mark() >= hit)
        await self.box.wait_for(lambda: at() or self._force, 120, "the fault's moment")
        rnd.forced = not at()
        if not self._force and rnd.at is None:
            # strike between two commands, in the middle of the daemon's work
            await asyncio.sleep(self.rng.uniform(0.0, 0.03))
        if rnd.fault != "garbage":
            await _cancel(scripts)  # the users give up what they were doing
        await self.strike(rnd)

    # ------------------------------------------------------------- settling

    async def settle(self, rnd: Round, fault_task: asyncio.Future[None] | None) -> None:
        """Everyone gives up and then behaves: hang up, answer rings, talk briefly,
        until the daemon holds no active request and the phones are idle (and the
        round's fault has struck and been repaired)."""
        stage = self.stage
        phones = (self.anna, self.bert, self.cleo)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT
        for phone in phones:
            if phone.port.loop_closed:
                phone.hang_up()
        if self.b.in_call():
            self.b.hang_up()
        self.b.free()
        since: dict[int, float] = {}  # phone -> when it went off-hook / got connected
        while True:
            now = loop.time()
            faulting = fault_task is not None and not fault_task.done()
            if fault_task is not None and fault_task.done() and not fault_task.cancelled() \
                    and fault_task.exception() is not None:
                exc = fault_task.exception()
                self.stats.violation(f"round {rnd.number} ({rnd.fault}): repairing the "
                                     f"fault failed: {type(exc).__name__}: {exc}")
                fault_task = None
            if now > deadline:
                status = await self._status_or_none()
                self.stats.violation(
                    f"round {rnd.number} ({rnd.fault}): not settled within "
                    f"{SETTLE_TIMEOUT:g} s: {json.dumps(status and status['requests'])}")
                if fault_task is not None:
                    await _cancel([fault_task])
                return
            for phone in phones:
                port = phone.port
                talking = port.peer or (phone is self.cleo and self.b.in_call())
                if port.ringing and not port.loop_closed:
                    phone.answer()
                    since.pop(phone.number, None)
                elif port.loop_closed:
                    limit = TALK if talking else PATIENCE
                    if now - since.setdefault(phone.number, now) >= limit:
                        phone.hang_up()
                        since.pop(phone.number, None)
                else:
                    since.pop(phone.number, None)
            if not self.cleo.port.loop_closed and self.b.in_call():
                self.b.hang_up()
            status = await self._status_or_none()
            if status is None:
                if not faulting:
                    self.stats.violation(f"round {rnd.number} ({rnd.fault}): ccbsd does "
                                         "not answer the control socket")
                    if not stage.ccbsd.running:
                        self.stats.violation(f"ccbsd died:\n{stage.ccbsd.log()[-3000:]}")
                        await self.restart(rnd)
                await self._next_change(0.25)
                continue
            quiet = all(not p.port.loop_closed and not p.off_hook and not p.ringing
                        for p in phones) and not self.b.in_call()
            if not status["requests"] and quiet:
                if fault_task is None or fault_task.done():
                    return
                self._force = True  # the round is over before the fault's command
                self.box.note("box", "chaos: the round ended before the fault's command")
            await self._next_change(0.25)

    async def _status_or_none(self) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(self.stage.status(), 10)
        except (OSError, TimeoutError, ValueError, ControlRefused, DaemonGone):
            return None  # not answering, or "shutting down"

    async def _next_change(self, timeout: float) -> None:
        """Until the box changes (a command, a URC, a phone) or ``timeout``."""
        box = self.box
        seen = (box.bridge.mark(), len(box.bridge.sent))
        with contextlib.suppress(TimeoutError):
            await box.wait_for(lambda: (box.bridge.mark(), len(box.bridge.sent)) != seen,
                               timeout, "a change")

    # ------------------------------------------------------------ invariants

    async def check_round(self, rnd: Round, before: int) -> None:
        stats, stage, box = self.stats, self.stage, self.box
        where = f"round {rnd.number} ({rnd.fault} at {rnd.k})"
        commands = box.bridge.commands[rnd.start:]
        # the daemon answers the real ccbsctl
        code, out, err = await stage.ccbsd.ctl("status")
        if code != 0:
            stats.violation(f"{where}: ccbsctl status exit {code}: {err or out}")
        records = read_store(stage, after=before)
        stats.requests += len(records)
        pairs = Counter((r.caller, r.target) for r in records)
        for pair, n in pairs.items():
            if n > 1:
                stats.violation(f"{where}: {n} requests for {pair} (duplicated)")
        confirmed = {
            (ANNA, BERT): any(c.ok and c.text.startswith("AT%TONE=1,CONFIRM")
                              for c in commands),
            (CLEO, EXTERNAL_BUSY): any(c.ok and c.text.startswith("AT%TONE=3,CONFIRM")
                                       for c in commands),
        }
        for pair, heard in confirmed.items():
            if heard and pair not in pairs:
                stats.violation(f"{where}: the confirm tone was given for {pair} but the "
                                "store has no such request (lost)")
        for record in records:
            if record.state not in FINAL:
                stats.violation(f"{where}: request {record.id} {record.caller}->"
                                f"{record.target} still {record.state} after settling")
            if record.state == "Completed":
                stats.completed += 1
        disruptions = int(rnd.fault in DISRUPTIVE) + max(0, len(rnd.restarted_at) - 1)
        for port, pair in ((1, (ANNA, BERT)), (3, (CLEO, EXTERNAL_BUSY))):
            rings = [c for c in commands if c.ok and c.text.startswith(
                f"AT%RING={port},{RECALL_CADENCE},")]
            stats.recall_rings += len(rings)
            if len(rings) > 1 + disruptions:
                stats.violation(f"{where}: port {port} got {len(rings)} recall rings "
                                f"(at most {1 + disruptions}): {[c.text for c in rings]}")
            done = [r for r in records if (r.caller, r.target) == pair
                    and r.state == "Completed"]
            if done and pair[1] == BERT and not rings:
                stats.violation(f"{where}: {pair} completed without a recall ring")
        first_restart = min(rnd.restarted_at, default=None)
        for c in commands:
            if c.error == "PORT_RINGING" and c.text.startswith("AT%RING="):
                index = box.bridge.commands.index(c)
                if first_restart is None or index < first_restart:
                    stats.violation(f"{where}: two rings at once on a port: {c.text}")
        leftover = box.cc_records("ctrl1")
        if leftover:
            stats.violation(f"{where}: the network still holds CC records: {leftover}")


async def bridge_set_up(stage: Stage, since: int) -> None:
    """Until the daemon has set the (re)booted bridge up again: its set-up ends with
    ``AT%STATE?`` (FXB/1 §3.7.1; a phone lifted before that is not reported) and the
    lines are up."""
    await stage.command("AT%STATE?", since=since, timeout=30)
    await stage.lines_up(30)


class EventWatch:
    """The daemon's event stream (``events --follow``) from now on:
    ``async with EventWatch(stage) as ev: ...; await ev.until(pred, timeout)``."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.seen: list[dict[str, Any]] = []

    async def __aenter__(self) -> EventWatch:
        self.reader, self.writer = await self.stage.ccbsd.follow()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()

    async def until(self, predicate: Callable[[dict[str, Any]], bool],
                    timeout: float) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            while True:
                line = await self.reader.readline()
                if not line:
                    raise ConnectionError("the daemon closed the event stream")
                event = json.loads(line).get("event")
                if event is None:
                    continue
                self.seen.append(event)
                if predicate(event):
                    return dict(event)

        return await asyncio.wait_for(read(), timeout)


def _cadence(text: str) -> int | None:
    args = text.partition("=")[2].split(",")
    return int(args[1]) if len(args) > 1 and args[1].isdigit() else None


def garbage_line(rng: random.Random) -> str:
    """A line a broken bridge might send: near-miss URCs and noise."""
    choices = [
        lambda: "%HOOK: " + ",".join(str(rng.randint(-2, 99)) for _ in range(rng.randint(0, 4))),
        lambda: "%DTMF: 9," + rng.choice(["", "X", "12", "*#", "\x00"]),
        lambda: "%RING: " + rng.choice(["", "1", "1,ENDED", "77,TRIP,9"]),
        lambda: "OK" + "K" * rng.randint(0, 3),
        lambda: "ERROR: " + str(rng.randint(-5, 999)),
        lambda: "%READY: " + rng.choice(["", "FXB/9", "FXB/1,x"]),
        lambda: "".join(chr(rng.randint(32, 126)) for _ in range(rng.randint(0, 120))),
        lambda: "%" + "A" * rng.randint(0, 300),
    ]
    return rng.choice(choices)()


async def _cancel(tasks: list[asyncio.Future[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):
            await task


async def run_rounds(stage: Stage, stats: ChaosStats, rng: random.Random,
                     faults: list[str | None],
                     between: Callable[[int], Awaitable[None]] | None = None) -> Monkey:
    """Round 0 without a fault measures the round's length in bridge commands; then
    one round per entry of ``faults`` with the fault at a seeded command index."""
    monkey = Monkey(stage, stats, rng)
    calibration = await monkey.round(0, None, 0)
    length = max(4, calibration.commands)
    for number, fault in enumerate(faults, start=1):
        await monkey.round(number, fault, rng.randint(1, length))
        if between is not None:
            await between(number)
    return monkey


def write_stats(directory: Path, stats: ChaosStats) -> Path:
    """One JSON file per test under the session's chaos directory."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stats.test.replace('/', '_').replace(':', '_')}.json"
    path.write_text(json.dumps(stats.to_json(), indent=1))
    return path


__all__ = ["ALL_FAULTS", "ChaosStats", "Monkey", "base_seed", "bridge_set_up", "chaos_stage",
           "last_id",
           "long_mode", "read_store", "run_rounds", "write_stats"]
