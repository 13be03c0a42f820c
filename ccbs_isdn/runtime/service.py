"""The wiring seam of ccbsd: engine + store + scheduler + drivers + notifier + metrics.

``CcbsService`` is what the control server talks to (``status()``, ``show(id)``,
``cancel(...)``, ``request(...)``, the event stream, line/port state, ``reload``) and
what the drivers deliver to. Every input goes through one path, :meth:`step`:

    event ─▶ engine.handle(event, now) ─▶ commit engine.take_changes() to the store
          ─▶ execute the actions (drivers, notifier, replies, event stream)
          ─▶ re-arm the one timer for engine.next_deadline()

Persist-then-act (architecture.md §3): nothing is executed before the state change
that produced it is committed — a hook poll excepted, which only asks. A step without
actions is committed with the next commit, at the latest ``COMMIT_DELAY`` later; a
step whose only action is a poll is committed right after the poll went out, while
the bridge answers (from B's hang-up to A's recall ring one fsync waits for the disk,
not three). When the store cannot write (disk full, read-only), the engine is told
(``StoreState(writable=False)``) so it refuses new requests; the unsaved changes are
kept and written with the next successful commit, and existing requests carry on.

Owns the mapping between driver vocabulary (``ccbs_isdn.isdn``,
``ccbs_isdn.analog.contract``) and engine vocabulary, and the translation of engine
replies into control-socket answers. Must not decide CCBS policy (the engine does)
or speak a wire protocol (the drivers do).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import itertools
import logging
import os
import time
import zoneinfo
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

from ccbs_isdn import __version__
from ccbs_isdn.config import Config, TimeRange
from ccbs_isdn.engine import actions as A
from ccbs_isdn.engine import events as E
from ccbs_isdn.engine.directory import Directory, Extension
from ccbs_isdn.engine.policy import (
    CallerPolicy,
    CallerRecallMode,
    Policy,
    QuietHours,
    Timers,
)
from ccbs_isdn.engine.request import Changes, HistoryEntry, RequestRecord, Role
from ccbs_isdn.errors import (
    CcbsError,
    ControlProtocolError,
    LocalError,
    RequestRefused,
    StoreError,
)
from ccbs_isdn.isdn import IsdnCommand
from ccbs_isdn.runtime.clock import DaemonClock
from ccbs_isdn.runtime.logging import kv
from ccbs_isdn.runtime.metrics import Metrics
from ccbs_isdn.runtime.notifier import Notifier
from ccbs_isdn.runtime.scheduler import Scheduler
from ccbs_isdn.runtime.trace import Tracer

log = logging.getLogger(__name__)

#: name of the (single) FXS bridge; engine ports are "<bridge>/<port number>"
BRIDGE = "fxs0"
#: how many recent events ``ccbsctl events`` can show
EVENT_BACKLOG = 1000
#: per-subscriber queue; a follower that falls this far behind is cut off
SUBSCRIBER_QUEUE = 1000
STORE_FILE = "requests.db"
#: while the store refuses writes, try again this often (seconds)
STORE_RETRY = 5.0
#: seconds between two looks at the engine for metrics and the poll watch-list
OBSERVE_INTERVAL = 0.5
#: a step without actions is committed with the next commit, at the latest after this
#: many seconds (see ``_after_step``)
COMMIT_DELAY = 0.05

#: Engine actions that only ask: a hook poll changes nothing at the bridge, so running
#: it before the step that asked is durable can neither repeat nor lose anything.
_QUERIES: tuple[type, ...] = (A.PollPorts,)

ROUTES = {Role.MONITOR: "isdn", Role.LOCAL: "local", Role.REDIAL: "redial"}


def port_id(port: int) -> str:
    return f"{BRIDGE}/{port}"


def port_number(port: str) -> int:
    return int(port.rsplit("/", 1)[1])


# ------------------------------------------------------------ config → engine


def _quiet(ranges: Iterable[TimeRange]) -> tuple[QuietHours, ...]:
    return tuple(QuietHours(dt.time(r.start // 60, r.start % 60),
                            dt.time(r.end // 60, r.end % 60)) for r in ranges)


def _timezone(name: str) -> dt.tzinfo:
    if name:
        return zoneinfo.ZoneInfo(name)
    local = dt.datetime.now().astimezone().tzinfo
    return local if local is not None else dt.UTC


def build_policy(config: Config) -> Policy:
    """The engine's frozen Policy from ``[limits]``, ``[timers]`` and ``[policy]``."""
    timers = Timers(**{f.name: getattr(config.timers, f.name) for f in fields(Timers)})
    pol = config.policy
    callers = {
        rule.extension: CallerPolicy(
            recall_mode=CallerRecallMode(rule.recall_mode) if rule.recall_mode else None,
            quiet_hours=_quiet(rule.quiet_hours) if rule.quiet_hours is not None else None,
            max_requests=rule.max_requests,
        )
        for rule in pol.callers
    }
    return Policy(
        max_per_caller=config.limits.per_caller,
        max_per_callee=config.limits.per_callee,
        max_global=config.limits.total,
        allow_callers=pol.allow_callers,
        deny_callers=pol.deny_callers,
        allow_targets=pol.allow_targets,
        deny_targets=pol.deny_targets,
        opt_out=frozenset(pol.opt_out),
        recall_mode=CallerRecallMode(pol.recall_mode),
        quiet_hours=_quiet(pol.quiet_hours),
        callers=callers,
        recall_retries=pol.recall_retries,
        redial_fallback=pol.redial_fallback,
        recall_clip_name=config.fxs.recall_clip_name,
        tz=_timezone(pol.timezone),
        timers=timers,
    )


def build_directory(config: Config) -> Directory:
    """Extensions → FXS ports and MSNs, from ``[[fxs.ports]]``."""
    return Directory(
        Extension(ext=p.extension, port=port_id(p.port), msn=p.msn or None,
                  ctrl=p.ctrl if p.msn else None, name=p.name)
        for p in config.fxs.ports
    )


# ------------------------------------------------------------------ event bus


class EventBus:
    """Recent events for ``ccbsctl events`` and live fan-out for ``--follow``."""

    def __init__(self, backlog: int = EVENT_BACKLOG) -> None:
        self._recent: deque[dict[str, Any]] = deque(maxlen=backlog)
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()

    def publish(self, event: dict[str, Any]) -> None:
        self._recent.append(event)
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # a follower that does not read must not hold memory forever
                self._subscribers.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)

    def recent(self, last: int) -> list[dict[str, Any]]:
        if last <= 0:
            return []
        return list(self._recent)[-last:]

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    yield {"event": "overflow", "time": time.time(),
                           "detail": "you fell behind; events were dropped"}
                    return
                yield item
        finally:
            self._subscribers.discard(queue)

    def close(self) -> None:
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self._subscribers.clear()

    @property
    def followers(self) -> int:
        return len(self._subscribers)


# ----------------------------------------------------------------- the service


def request_view(record: RequestRecord, now: float | None = None) -> dict[str, Any]:
    """A request as the control socket, the notifier and the event stream show it."""
    view: dict[str, Any] = {
        "id": record.id,
        "kind": record.kind.value,
        "route": ROUTES.get(record.role, record.role.value),
        "caller": record.caller,
        "target": record.target,
        "state": record.state,
        "reason": record.reason or None,
        "created": record.created,
        "updated": record.updated,
        "expires": record.expires_at,
        "active": record.ended_at is None,
    }
    if record.ctrl is not None:
        view["ctrl"] = record.ctrl
    if record.reference is not None:
        view["reference"] = record.reference
    if record.ended_at is not None:
        view["ended"] = record.ended_at
    return view


def _merged(steps: list[Changes]) -> Changes:
    """Several steps' changes as one: the latest snapshot of each request, every
    history row in order."""
    if len(steps) == 1:
        return steps[0]
    latest: dict[int, RequestRecord] = {}
    for changes in steps:
        for record in changes.requests:
            latest[record.id] = record
    return Changes(requests=tuple(latest.values()),
                   history=tuple(h for changes in steps for h in changes.history))


def history_view(entry: HistoryEntry) -> dict[str, Any]:
    return {"time": entry.at, "event": entry.event, "old_state": entry.old_state,
            "new_state": entry.new_state, "actor": entry.actor,
            "detail": entry.detail or None}


class CcbsService:
    """Implements ``runtime.control.ControlTarget`` and the drivers' delivery side."""

    def __init__(
        self,
        config: Config,
        *,
        metrics: Metrics | None = None,
        reload: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.time,
        started: float | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self._reload = reload
        self.clock = clock
        self.started = started if started is not None else clock()
        self.tracer = Tracer()
        self.notifier = Notifier(config.notify, on_result=self.metrics.notification)
        self.bus = EventBus()
        self.scheduler = Scheduler(self._on_timer, clock=clock)
        self._observe_handle: asyncio.TimerHandle | None = None
        self._commit_handle: asyncio.TimerHandle | None = None
        self.engine: Any = None
        self.store: Any = None
        self.drivers: dict[str, Any] = {}
        self._unsaved: list[Any] = []
        self._store_writable = True
        self._tags = itertools.count(1)
        self._replies: dict[str, asyncio.Future[A.Action]] = {}
        self._trace_from_config = ""
        self._store_retry: asyncio.Future[None] | None = None
        self._restore_actions: list[Any] = []
        self._lines: dict[tuple[str, str], dict[str, Any]] = {}

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Open the store, build the engine and restore every active request."""
        from ccbs_isdn.engine.engine import CcbsEngine
        from ccbs_isdn.runtime.store import RequestStore

        state_dir = Path(self.config.daemon.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        self.store = RequestStore.open(str(state_dir / STORE_FILE))
        self.engine = CcbsEngine(build_directory(self.config), build_policy(self.config))
        records = self.store.load_active()
        now = self.clock()
        actions = self.engine.restore(records, now, last_id=self.store.last_id())
        # persist now; the reconciliation (interrogate, hook polls) needs the drivers,
        # so it is executed by start() once they run
        self._commit()
        self._restore_actions = list(actions)
        log.info("store opened", extra=kv(path=str(state_dir / STORE_FILE),
                                          restored=len(records)))

    async def start(self, *, timeout: float) -> None:
        """Start notifier, trace and drivers; return when they are up or *timeout*."""
        self.notifier.start()
        self._apply_trace(self.config.daemon.trace_file)
        self.drivers = build_lines(self.config, self)
        if not self.drivers:
            log.info("no drivers enabled: control-socket requests only")
        results = await asyncio.gather(
            *(asyncio.wait_for(driver.start(), timeout) for driver in self.drivers.values()),
            return_exceptions=True,
        )
        for (name, _driver), result in zip(self.drivers.items(), results, strict=True):
            if isinstance(result, TimeoutError):
                log.warning("driver not up yet, keeps retrying", extra=kv(driver=name))
            elif isinstance(result, BaseException):
                raise result
        self._refresh_lines()
        actions, self._restore_actions = self._restore_actions, []
        self._after_step(actions, self.clock())
        # the restored requests, the drivers and the modules they loaded live as long as
        # the daemon: keep them out of the cyclic collector's full collections (with 10k
        # requests each one stopped the loop for 15-20 ms: the tail of bench/e2e.py's
        # B-free -> ring latency)
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        self.scheduler.cancel()
        if self._observe_handle is not None:
            self._observe_handle.cancel()
            self._observe_handle = None
        if self._commit_handle is not None:
            self._commit_handle.cancel()
            self._commit_handle = None
        for name, driver in self.drivers.items():
            try:
                await asyncio.wait_for(driver.stop(), 10)
            except Exception as exc:
                log.warning("driver did not stop cleanly", extra=kv(driver=name, error=exc))
        self.drivers = {}
        for future in self._replies.values():
            if not future.done():
                future.set_exception(LocalError("ccbsd is shutting down",
                                                code="shutting-down"))
        self.bus.close()
        await self.notifier.stop()
        self.tracer.stop()
        if self._store_retry is not None:
            self._store_retry.cancel()
        if self.store is not None:
            self._commit()
            if self._unsaved:
                log.error("request store still refuses writes at shutdown; the last "
                          "changes are lost", extra=kv(steps=len(self._unsaved)))
            self.store.close()
            self.store = None

    def summary(self) -> str:
        active = len(self._active())
        up = sum(1 for line in self._lines.values() if line["up"])
        return f"{active} active requests, {up}/{len(self._lines)} lines up"

    async def apply(self, config: Config) -> None:
        """A reload: policy, limits, timers, notify and trace in place. Lines and ports
        (the directory) stay as they are: the drivers hold them, a restart changes them
        (the daemon says so in the journal)."""
        self.engine.reconfigure(policy=build_policy(config))
        self.notifier.apply(config.notify)
        if config.daemon.trace_file != self.config.daemon.trace_file:
            self._apply_trace(config.daemon.trace_file)
        self.config = config
        # new timers may move the next deadline
        self.scheduler.arm(self.engine.next_deadline())

    def _apply_trace(self, path: str) -> None:
        if path:
            try:
                self.tracer.start(path)
                self._trace_from_config = path
            except OSError as exc:
                log.error("cannot open trace file", extra=kv(path=path, error=exc))
        elif self._trace_from_config and self.tracer.path == self._trace_from_config:
            self.tracer.stop()
            self._trace_from_config = ""

    # ------------------------------------------------------------ the one path

    def step(self, event: Any, *, now: float | None = None) -> list[Any]:
        """Feed one event to the engine, commit, act, re-arm. Returns the actions."""
        when = self.clock() if now is None else now
        started = time.perf_counter()
        if not self._store_writable:
            self._flush()  # the store may be back: then this event is judged normally
        actions = self.engine.handle(event, when)
        self._after_step(actions, when)
        self.metrics.handle_seconds.observe(time.perf_counter() - started)
        self.metrics.events_total.labels(type(event).__name__).inc()
        return list(actions)

    def _on_timer(self, now: float) -> None:
        try:
            actions = self.engine.handle_timer(now)
            self._after_step(actions, now)
        except Exception:
            log.exception("timer handling failed")
            self.scheduler.arm(self.engine.next_deadline())

    def _after_step(self, actions: Iterable[Any], now: float) -> None:
        actions = tuple(actions)
        acts = not all(isinstance(action, _QUERIES) for action in actions)
        if acts:
            self._commit()
        else:
            # Persist-then-act protects *acts*. A step without one is written later:
            # with nothing to do (B went on-hook -> Guard) together with the next
            # commit, at the latest COMMIT_DELAY later; with a poll to send (the guard
            # ended -> Recheck) right after the poll went out, so the write overlaps
            # the bridge's answer instead of delaying it. A crash in between loses
            # only steps a restart redoes anyway (Guard/Recheck restart as Recheck).
            self._take_changes()
        for action in actions:
            try:
                self._execute(action, now)
            except Exception:  # one bad action must not stop the others
                log.exception("action failed", extra=kv(action=type(action).__name__))
        if not acts:
            self._commit_later(0.0 if actions else COMMIT_DELAY)
        self.scheduler.arm(self.engine.next_deadline())
        self._observe_soon()

    def _commit(self) -> None:
        self._take_changes()
        self._flush()

    def _take_changes(self) -> None:
        if self.engine is None or self.store is None:
            return
        changes = self.engine.take_changes()
        if changes:
            self._unsaved.append(changes)
            self._publish_history(changes)

    def _commit_later(self, delay: float) -> None:
        """Write what was taken within ``delay`` seconds, unless a commit comes first
        (at once when stepped outside a loop: unit tests). Behind the callbacks
        already due, so a poll just handed to the FXS line is written out first."""
        if not self._unsaved:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush()
            return
        handle = self._commit_handle
        if handle is not None:
            if handle.when() <= loop.time() + delay:
                return
            handle.cancel()
        self._commit_handle = loop.call_later(delay, self._commit_due)

    def _commit_due(self) -> None:
        self._commit_handle = None
        self._commit()

    def _flush(self) -> bool:
        """Write every pending step, as one transaction; False while the store
        refuses."""
        if self.store is None:
            return False
        try:
            if self._unsaved:
                self.store.save(_merged(self._unsaved))
                self._unsaved.clear()
        except StoreError as exc:
            if self._store_writable:
                self._store_failed(exc)
            return False
        if not self._store_writable:
            self._store_recovered()
        return True

    def _store_failed(self, exc: StoreError) -> None:
        self._store_writable = False
        self.metrics.store_writable.set(0)
        log.error("request store cannot write; refusing new requests",
                  extra=kv(error=str(exc), code=exc.code, unsaved=len(self._unsaved)))
        self._tell_engine_store_state(False)
        if self._store_retry is None or self._store_retry.done():
            self._store_retry = asyncio.ensure_future(self._retry_store())

    def _store_recovered(self) -> None:
        self._store_writable = True
        self.metrics.store_writable.set(1)
        log.info("request store writable again")
        self._tell_engine_store_state(True)
        self._flush()

    def _tell_engine_store_state(self, writable: bool) -> None:
        now = self.clock()
        actions = self.engine.handle(E.StoreState(writable=writable), now)
        changes = self.engine.take_changes()
        if changes:
            self._unsaved.append(changes)
            self._publish_history(changes)
        for action in actions:
            self._execute(action, now)

    async def _retry_store(self) -> None:
        # nothing else may write for a while (no new requests): try on our own
        while not self._store_writable and self.store is not None:
            await asyncio.sleep(STORE_RETRY)
            self._flush()

    def _publish_history(self, changes: Any) -> None:
        records = {r.id: r for r in changes.requests}
        for entry in changes.history:
            record = records.get(entry.request_id)
            event: dict[str, Any] = {"time": entry.at, "event": entry.event,
                                     "id": entry.request_id, "state": entry.new_state,
                                     "old_state": entry.old_state, "actor": entry.actor}
            if record is not None:
                event.update(caller=record.caller, target=record.target,
                             route=ROUTES.get(record.role), reason=record.reason or None)
            if entry.detail:
                event["detail"] = entry.detail
            self.bus.publish(event)

    # ---------------------------------------------------------------- actions

    def _execute(self, action: Any, now: float) -> None:
        if isinstance(action, (A.RequestAccepted, A.RequestRefused, A.CancelDone,
                               A.StatusReply)):
            self._reply(action)
            return
        if isinstance(action, A.Notify):
            view = request_view(action.request)
            if action.detail:
                view["detail"] = action.detail
            self.notifier.submit(action.kind.value, view)
            self.bus.publish({"time": now, "event": action.kind.value, **{
                k: view.get(k) for k in ("id", "caller", "target", "route", "state",
                                         "reason", "detail") if view.get(k) is not None}})
            if action.kind in (A.NotifyKind.COMPLETED, A.NotifyKind.EXPIRED,
                               A.NotifyKind.FAILED, A.NotifyKind.CANCELLED):
                self.metrics.requests_total.labels(action.kind.value).inc()
            return
        driver = self._driver_for(action)
        if driver is None:
            log.warning("no driver for action", extra=kv(action=repr(action)))
            return
        driver.execute(action)

    def _driver_for(self, action: Any) -> Any:
        if isinstance(action, IsdnCommand):
            return self.drivers.get("capi")
        if isinstance(action, (A.Ring, A.StopRing, A.PlayTone, A.ConnectPorts,
                               A.DisconnectPort, A.PollPorts, A.ConnectCall)):
            return self.drivers.get("fxs")
        if isinstance(action, A.ClaimCall):
            return self.drivers.get("calls")
        return None

    def _reply(self, action: Any) -> None:
        future = self._replies.pop(action.tag, None)
        if isinstance(action, A.RequestRefused):
            self.metrics.refusals_total.labels(action.reason).inc()
        if future is not None and not future.done():
            future.set_result(action)
            return
        for driver in self.drivers.values():
            handler = getattr(driver, "reply", None)
            if handler is not None and handler(action):
                return
        log.debug("reply without a waiting client", extra=kv(tag=action.tag))

    # -------------------------------------------------------------- from drivers

    def deliver(self, event: Any) -> None:
        """Drivers hand every engine event (ISDN indications included) here."""
        try:
            self.step(event)
        except Exception:
            log.exception("engine step failed", extra=kv(event=repr(event)))

    def line_state(self, kind: str, ident: str, *, up: bool, name: str = "",
                   detail: str = "") -> None:
        """Drivers report controllers / bridge / ports up or down here."""
        key = (kind, ident)
        old = self._lines.get(key)
        self._lines[key] = {"kind": kind, "id": ident, "name": name, "up": up,
                            "detail": detail}
        # the first report of a line that starts down is its initial state, not news
        if (old is None and up) or (old is not None and old["up"] != up):
            self.bus.publish({"time": self.clock(), "event": "line-up" if up else "line-down",
                              "detail": f"{kind} {ident}" + (f" ({name})" if name else "")})
            (log.info if up else log.warning)(
                "line up" if up else "line down", extra=kv(kind=kind, id=ident, name=name,
                                                           detail=detail or None))
        self.metrics.observe_lines([self._lines[key]])

    def _refresh_lines(self) -> None:
        for driver in self.drivers.values():
            for line in getattr(driver, "lines", lambda: [])():
                self.line_state(line["kind"], line["id"], up=line["up"],
                                name=line.get("name", ""), detail=line.get("detail", ""))

    # ---------------------------------------------------------- control target

    def _active(self) -> list[RequestRecord]:
        return self.engine.requests() if self.engine is not None else []

    def _observe_soon(self) -> None:
        """Metrics and the poll watch-list follow the engine at most every
        OBSERVE_INTERVAL: both walk every active request, which must not happen per step
        (a poll answer of 64 ports is 64 steps; 10k requests make one walk ~ms)."""
        if self._observe_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # stepped outside a loop (unit tests): observe at once
            self._observe()
            return
        self._observe_handle = loop.call_later(OBSERVE_INTERVAL, self._observe)

    def _observe(self) -> None:
        self._observe_handle = None
        if self.engine is None:
            return
        self.metrics.observe_active(self.engine.state_counts())
        fxs = self.drivers.get("fxs")
        if fxs is not None:
            fxs.watch(self.engine.watched_ports())

    def status(self) -> dict[str, Any]:
        now = self.clock()
        requests = sorted(self._active(), key=lambda r: r.id)
        return {
            "now": now,
            "requests": [request_view(r, now) for r in requests],
            "lines": sorted(self._lines.values(), key=lambda x: (x["kind"], x["id"])),
            "daemon": {
                "version": __version__,
                "pid": os.getpid(),
                "uptime": (self.clock.uptime() if isinstance(self.clock, DaemonClock)
                           else now - self.started),
                "store_writable": self._store_writable,
                # wall clock minus daemon time: non-zero after a wall-clock jump while
                # timers were pending (runtime/clock.py)
                "clock_skew": round(float(getattr(self.clock, "skew", 0.0)), 3),
                "trace": self.tracer.path or None,
                "notifications_pending": self.notifier.pending,
                "followers": self.bus.followers,
            },
        }

    def show(self, request_id: str) -> dict[str, Any]:
        rid = self._parse_id(request_id)
        record = self.engine.get(rid)
        if record is None:
            record = self.store.get(rid)
        if record is None:
            raise LocalError(f"there is no request {request_id}", code="not-found")
        view = request_view(record)
        self._flush()  # steps that did not act may still wait for their commit
        view["history"] = [history_view(h) for h in self.store.history(rid)]
        return view

    @staticmethod
    def _parse_id(request_id: str) -> int:
        if not request_id.isdigit():
            raise ControlProtocolError(f"request ids are numbers, not {request_id!r}")
        return int(request_id)

    def _new_tag(self) -> str:
        return f"ctl-{next(self._tags)}"

    async def _ask(self, event: Any, tag: str, timeout: float) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[tag] = future
        try:
            self.step(event)
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise LocalError("no answer within the activation time; see 'ccbsctl events'",
                             code="timeout") from None
        finally:
            self._replies.pop(tag, None)

    def _reply_timeout(self) -> float:
        timers = self.config.timers
        return timers.t_activate + timers.t_retention + 5.0

    async def request(self, *, caller: str, target: str, actor: str) -> dict[str, Any]:
        tag = self._new_tag()
        reply = await self._ask(E.Book(caller=caller, number=target, tag=tag, actor=actor),
                                tag, self._reply_timeout())
        if isinstance(reply, A.RequestRefused):
            raise RequestRefused(reply.text, reason=reply.reason)
        record = self.engine.get(reply.request_id)
        result = request_view(record) if record is not None else {"id": reply.request_id}
        result["refreshed"] = reply.refreshed
        result["fallback"] = reply.fallback
        return result

    async def cancel(self, *, request_id: str | None, caller: str | None, everything: bool,
                     actor: str) -> dict[str, Any]:
        tag = self._new_tag()
        event = E.Cancel(request_id=self._parse_id(request_id) if request_id else None,
                         caller=caller, all_requests=everything, tag=tag, actor=actor)
        reply = await self._ask(event, tag, self._reply_timeout())
        if isinstance(reply, A.RequestRefused):
            if reply.reason == "no-such-request":
                raise LocalError(reply.text, code="not-found")
            raise RequestRefused(reply.text, reason=reply.reason)
        return {"cancelled": list(reply.request_ids)}

    async def reload(self, *, actor: str) -> dict[str, Any]:
        if self._reload is None:
            raise LocalError("reload is not available", code="not-supported")
        result: dict[str, Any] = await self._reload(actor=actor)
        return result

    def trace(self, *, action: str, path: str | None, actor: str) -> dict[str, Any]:
        if action == "stop":
            lines = self.tracer.lines
            was = self.tracer.path
            self.tracer.stop()
            self._trace_from_config = ""
            log.info("trace stopped", extra=kv(actor=actor, file=was or None))
            return {"file": was or None, "lines": lines}
        target = path or self.config.daemon.trace_file
        if not target:
            raise ControlProtocolError("no trace file given and [daemon] trace_file is empty")
        try:
            self.tracer.start(target)
        except OSError as exc:
            raise LocalError(f"cannot open {target}: {exc.strerror}",
                             code="trace-failed") from None
        log.info("trace started", extra=kv(actor=actor, file=target))
        return {"file": target}

    def recent_events(self, last: int) -> list[dict[str, Any]]:
        return self.bus.recent(last)

    def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        return self.bus.subscribe()


__all__ = ["CcbsService", "EventBus", "build_directory", "build_policy", "port_id",
           "request_view"]


# ------------------------------------------------------------------ the lines


class FxsLine:
    """The FXS bridge driver seen from the service: engine actions → AT commands (in
    order, one at a time), analog indications → engine events, port/bridge state →
    ``line_state``."""

    kind = "fxs"

    def __init__(self, config: Config, service: CcbsService, *, url: str | None = None,
                 sim: Any = None) -> None:
        from ccbs_isdn.analog.contract import HookTiming
        from ccbs_isdn.drivers import load_driver

        driver_class = load_driver("fxs")
        module = __import__(driver_class.__module__, fromlist=["FxsConfig"])
        fxs = config.fxs
        self.service = service
        self.ports = {p.port: p for p in fxs.ports}
        self.sim = sim
        self.url = url or fxs.device
        self.recall_cadence = fxs.recall_cadence
        self.driver = driver_class(
            module.FxsConfig(
                url=self.url, name=BRIDGE, baudrate=fxs.baudrate,
                hook=HookTiming(fxs.hook.debounce_ms, fxs.hook.flash_min_ms,
                                fxs.hook.flash_max_ms, fxs.hook.pulse),
                tone_plan=fxs.tone_plan, keepalive=fxs.keepalive,
                poll_active=fxs.poll_active, poll_idle=fxs.poll_idle,
            ),
            on_indication=self._indication,
            trace=self._trace,
        )
        self._ring_keys: dict[int, str] = {}
        self.calls: Any = None  # basic call control (runtime/callcontrol.py), if any
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._up = False

    # -- lifecycle
    async def start(self) -> None:
        if self.sim is not None:
            await self.sim.start()
        self._worker = asyncio.create_task(self._run(), name="fxs-actions")
        self._report()
        await self.driver.start()

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        await self.driver.stop()
        if self.sim is not None:
            await self.sim.stop()

    def lines(self) -> list[dict[str, Any]]:
        out = [{"kind": "bridge", "id": BRIDGE, "name": self.url, "up": self._up,
                "detail": f"{self.driver.ports} ports" if self._up else ""}]
        out += [self._port_line(number) for number in sorted(self.ports)]
        return out

    def _port_line(self, number: int) -> dict[str, Any]:
        detail = ""
        if self._up:
            detail = "off-hook" if self.driver.hook(number) else "on-hook"
        return {"kind": "port", "id": str(number), "name": self.ports[number].extension,
                "up": self._up, "detail": detail}

    def _report(self) -> None:
        for line in self.lines():
            self.service.line_state(line["kind"], line["id"], up=line["up"],
                                    name=line["name"], detail=line["detail"])

    def _report_port(self, number: int) -> None:
        """One port's line after its hook changed (not all 64: that is per URC)."""
        if number in self.ports:
            line = self._port_line(number)
            self.service.line_state("port", line["id"], up=line["up"], name=line["name"],
                                    detail=line["detail"])

    def watch(self, ports: Iterable[str]) -> None:
        self.driver.set_watched(port_number(p) for p in ports if p.startswith(BRIDGE + "/"))

    def _trace(self, direction: str, line: str) -> None:
        self.service.tracer.at("tx" if direction == "->" else "rx", line, bridge=BRIDGE)

    # -- engine actions → bridge commands
    def execute(self, action: Any) -> None:
        if self.calls is not None:
            self.calls.observe(action)  # it must know who owns a port
        self._queue.put_nowait(action)

    async def _run(self) -> None:
        while True:
            action = await self._queue.get()
            try:
                await self._send(action)
            except CcbsError as exc:
                self._failed(action, exc)
            except Exception:
                log.exception("fxs action failed", extra=kv(action=repr(action)))

    async def _send(self, action: Any) -> None:
        from ccbs_isdn.analog import contract as C

        command: Any
        if isinstance(action, A.Ring):
            number = port_number(action.port)
            self._ring_keys[number] = action.key
            cadence = int(action.cadence.value)
            if action.cadence is A.Cadence.RECALL:
                cadence = self.recall_cadence  # the site's AT%CAD id for "Rückruf"
            command = C.Ring(number, cadence,
                             max(1, int(action.timeout + 0.999)),
                             action.clip_number, C.clip_name_ascii(action.clip_name))
        elif isinstance(action, A.StopRing):
            command = C.RingStop(port_number(action.port))
        elif isinstance(action, A.PlayTone):
            command = C.PlayTone(port_number(action.port), C.Tone(action.tone.value),
                                 action.ms)
        elif isinstance(action, A.ConnectPorts):
            command = C.Connect(port_number(action.port_a), port_number(action.port_b))
        elif isinstance(action, A.DisconnectPort):
            command = C.Disconnect(port_number(action.port))
        elif isinstance(action, A.PollPorts):
            command = C.PollHook()
        else:
            log.info("analog action without a bridge command",
                     extra=kv(action=type(action).__name__))
            return
        await self.driver.send(command)

    def _poll_answer(self, snapshot: Any) -> E.PortStates:
        """A hook poll answer as one engine event (one step and one commit, not one per
        port). Once the bridge is up (initialised: ``AT%STATE?`` read, ``%CONN``
        followed) each port also says what it is cross-connected to; before that (the
        poll inside the initialisation) its peers are not known yet."""
        known = self._up and self.driver.is_up
        states = []
        for number in sorted(self.ports):
            if number > len(snapshot.off_hook):
                continue
            peer: str | None = None
            if known:
                other = self.driver.port_status(number).peer
                peer = port_id(other) if other else ""
            states.append(E.PortState(port_id(number), snapshot.is_off_hook(number),
                                      E.PortSource.POLL, peer=peer))
        return E.PortStates(tuple(states))

    def _failed(self, action: Any, exc: CcbsError) -> None:
        log.warning("bridge refused an action", extra=kv(action=repr(action), error=str(exc)))
        if isinstance(action, A.Ring):
            # the engine runs the A-answer timer too; tell it now so it can retry
            self._ring_keys.pop(port_number(action.port), None)
            self.service.deliver(E.RingEnded(action.port, action.key, reason="failed"))

    # -- bridge indications → engine events
    def _indication(self, ind: Any) -> None:
        from ccbs_isdn.analog import contract as C

        if self.calls is not None:
            self.calls.on_analog(ind)  # first: it must know whose ring-trip this is
        deliver = self.service.deliver
        if isinstance(ind, C.HookChanged):
            deliver(E.PortState(port_id(ind.port), ind.off_hook,
                                E.PortSource.POLL if ind.polled else E.PortSource.EVENT))
            self._report_port(ind.port)
        elif isinstance(ind, C.HookSnapshot):
            deliver(self._poll_answer(ind))
        elif isinstance(ind, C.RingTrip):
            key = self._ring_keys.pop(ind.port, None)
            if key is not None:
                deliver(E.RingAnswered(port_id(ind.port), key))
            self._report_port(ind.port)
        elif isinstance(ind, C.RingEnded):
            key = self._ring_keys.pop(ind.port, None)
            if key is not None and ind.reason is not C.RingEndReason.TRIP:
                deliver(E.RingEnded(port_id(ind.port), key, reason=ind.reason.value.lower()))
        elif isinstance(ind, C.BridgeDown):
            self._up = False
            self._report()
            deliver(E.PortsUnavailable(tuple(port_id(p) for p in sorted(self.ports))))
        elif isinstance(ind, (C.BridgeUp, C.BridgeReady)):
            self._up = True
            self._report()
            deliver(E.PortsAvailable(tuple(port_id(p) for p in sorted(self.ports))))
        elif isinstance(ind, C.PortFault):
            log.warning("port fault", extra=kv(port=ind.port, fault=ind.kind.value))
        else:
            # Flash / Dtmf / CrossConnect belong to basic call control
            log.debug("analog indication", extra=kv(indication=repr(ind)))


class CapiLine:
    """The CAPI driver seen from the service: every ISDN indication goes to the engine,
    controller up/down also to ``line_state``; IsdnCommands go to the driver."""

    kind = "capi"

    def __init__(self, config: Config, service: CcbsService, *, sim: Any = None) -> None:
        from ccbs_isdn.drivers import load_driver

        driver_class = load_driver("capi20")
        self.module = __import__(driver_class.__module__,
                                 fromlist=["CapiConfig", "ControllerConfig"])
        self.driver_class = driver_class
        self.config = config
        self.service = service
        self.sim = sim
        self.driver: Any = None
        self.calls: Any = None  # basic call control (runtime/callcontrol.py), if any
        self._up: dict[int, tuple[bool, str]] = {
            c.ctrl: (False, "") for c in config.capi.controllers}

    def _driver_config(self, host: str, port: int, transport: str) -> Any:
        mod = self.module
        return mod.CapiConfig(
            driver=transport, host=host, port=port,
            controllers=tuple(mod.ControllerConfig(c.ctrl, c.msns, c.ptp, c.route)
                              for c in self.config.capi.controllers),
        )

    async def start(self) -> None:
        capi = self.config.capi
        transport, host, port = capi.driver, capi.host, capi.port
        if self.sim is not None:
            port = await self.sim.start()
            transport, host = "rcapi", "127.0.0.1"
        tracer = self.service.tracer

        def traced_library(name: str) -> Any:
            from ccbs_isdn.drivers.capi20 import lib

            return TracingCapiLib(lib.load(name), tracer)

        self.driver = self.driver_class(self._driver_config(host, port, transport),
                                        self._indication, library=traced_library)
        self._report()
        await self.driver.start()

    async def stop(self) -> None:
        if self.driver is not None:
            await self.driver.stop()
        if self.sim is not None:
            await self.sim.stop()

    def lines(self) -> list[dict[str, Any]]:
        names = {c.ctrl: ",".join(c.msns) for c in self.config.capi.controllers}
        return [{"kind": "controller", "id": str(ctrl), "name": names.get(ctrl, ""),
                 "up": up, "detail": detail} for ctrl, (up, detail) in sorted(self._up.items())]

    def _report(self) -> None:
        for line in self.lines():
            self.service.line_state(line["kind"], line["id"], up=line["up"],
                                    name=line["name"], detail=line["detail"])

    def _indication(self, ind: Any) -> None:
        from ccbs_isdn import isdn

        if isinstance(ind, isdn.ControllerUp):
            self._up[ind.ctrl] = (True, f"{ind.route.value}, {'ptp' if ind.ptp else 'ptmp'}"
                                  + (", reconnected" if ind.reconnected else ""))
            self._report()
        elif isinstance(ind, isdn.ControllerDown):
            self._up[ind.ctrl] = (False, ind.reason)
            self._report()
        self.service.deliver(ind)
        if self.calls is not None:
            self.calls.on_isdn(ind)

    def execute(self, command: Any) -> None:
        try:
            self.driver.send(command)
        except CcbsError as exc:
            # the engine's own timers (T-ACTIVATE, A-answer ...) cover a lost command
            log.warning("ISDN command not sent", extra=kv(command=repr(command),
                                                          error=str(exc)))


class TracingCapiLib:
    """libcapi20 as the CAPI driver sees it, with every message copied to the trace
    (hex + decoded; Facility IEs also through the ROSE decoder). Costs nothing while
    no trace runs."""

    def __init__(self, lib: Any, tracer: Tracer) -> None:
        self._lib = lib
        self._tracer = tracer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lib, name)

    def put_message(self, appl_id: int, raw: bytes) -> None:
        if self._tracer.active:
            self._trace("tx", raw)
        self._lib.put_message(appl_id, raw)

    def get_message(self, appl_id: int) -> bytes | None:
        raw: bytes | None = self._lib.get_message(appl_id)
        if raw is not None and self._tracer.active:
            self._trace("rx", raw)
        return raw

    def _trace(self, direction: str, raw: bytes) -> None:
        from ccbs_isdn.drivers.capi20 import messages as m

        try:
            msg = m.decode(raw)
        except CcbsError as exc:
            self._tracer.capi(direction, raw, decoded=f"error: {exc}")
            return
        params = " ".join(f"{k}={v.hex() if isinstance(v, bytes) else hex(v)}"
                          for k, v in msg.params.items() if v not in (b"", 0))
        self._tracer.capi(direction, raw, decoded=f"{msg.name} #{msg.number} {params}")
        ctrl = msg.controller
        facilities: tuple[bytes, ...] = ()
        if msg.name == "INFO_IND" and msg.get_int("info_number") == 0x001C:
            facilities = (msg.get_struct("info_element"),)
        elif "additional_info" in msg.params:
            try:
                array = m.AdditionalInfo.decode(msg.get_struct("additional_info")).facility_array
                facilities = m.facilities_in_array(array)
            except CcbsError as exc:
                self._tracer.note(f"additional info not decodable: {exc}", ctrl=ctrl)
        for contents in facilities:
            self._tracer.facility(direction, contents, ctrl=ctrl)


def build_lines(config: Config, service: CcbsService) -> dict[str, Any]:
    """The drivers ``config`` enables, wrapped for the service. With ``[sim]`` the
    simulated exchange and bridge stand in for the hardware and the real drivers talk
    to them (libcapi20 over loopback TCP, the FXS driver over a pty)."""
    lines: dict[str, Any] = {}
    backend: Any = None
    if config.sim.enabled:
        from ccbs_isdn.drivers.sim.box import SimBackend

        backend = SimBackend(config)  # SimBox: exchange + card + bridge, in-process
    if config.capi.enabled or (config.sim.enabled and config.capi.controllers):
        lines["capi"] = CapiLine(config, service,
                                 sim=backend.isdn() if backend is not None else None)
    if config.fxs.enabled or (config.sim.enabled and config.fxs.ports):
        sim = backend.bridge() if backend is not None else None
        url = str(sim.link) if sim is not None else None
        lines["fxs"] = FxsLine(config, service, url=url, sim=sim)
    if "fxs" in lines:
        from ccbs_isdn.runtime.callcontrol import CallControlLine

        lines["calls"] = CallControlLine.for_service(config, service, lines["fxs"],
                                                     lines.get("capi"))
    return lines
