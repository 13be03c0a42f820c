"""``SimBox``: the whole simulated PBX box for tests, ``make demo`` and ``[sim]``.

Owns the assembly of the simulator parts: the public network (``SimExchange``), the
ISDN card behind the rcapi TCP server with N controllers (each with its MSNs, PTMP or
PTP, CCBS offered as CAPI supplementary services or as raw Facility IEs), the FXB/1
bridge simulator on a pty (a stable symlink the daemon opens like ``/dev/ttyUSB0``)
and the external subscribers; and the *scripting* of stories: phones (lift, dial,
flash, hang up, answer), external subscribers (busy / free, answering, calling in),
faults (bridge reboot, unplug, a lost URC, CAPI connection drop) and event-driven
waiting (``await box.wait_for(predicate)`` is re-checked on every change of the
bridge, the exchange or a script step — never a sleep).

The daemon reaches the box only through real interfaces: the real libcapi20 over
loopback TCP (``[capi] driver = "rcapi"``, ``host``/``port`` from ``capi_port``) and
the real FXS driver over the pty (``[fxs] device = box.bridge_url``).
``ccbsd_toml()`` writes such a configuration.

Two ways to run the ISDN side: on the caller's event loop (the daemon is another
process: tests, the demo), or ``threaded=True`` on a thread of its own (the daemon is
this process: libcapi20's blocking calls must never wait on our own loop).

It must not decide anything for the daemon, and holds no CCBS logic itself (the
exchange does the network side, the bridge simulator the device side).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from ccbs_isdn.isdn import RecallMode

from .bridge import BridgeSim, Command, SimPort
from .controller import ControllerSpec
from .exchange import SimExchange
from .network.timers import NetworkTimers
from .q931 import Q931, Deliver
from .rcapi import RcapiServer, ThreadedRcapiServer

T = TypeVar("T")

ROUTES = ("supplementary", "raw")


@dataclass(frozen=True, slots=True)
class BoxController:
    """One ISDN controller of the box and the BRI access behind it. ``route``: how
    the simulated card offers CCBS (CAPI supplementary services, or only raw Facility
    IEs: a card without supplementary services)."""

    ctrl: int
    msns: tuple[str, ...]
    ptp: bool = False
    route: str = "supplementary"
    ccbs: bool = True
    ccnr: bool = True
    recall_mode: RecallMode = RecallMode.GLOBAL
    max_requests: int = 5

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"route {self.route!r}: expected one of {ROUTES}")
        if not self.msns:
            raise ValueError(f"controller {self.ctrl} needs at least one MSN")

    @property
    def access_id(self) -> str:
        return f"ctrl{self.ctrl}"


@dataclass(frozen=True, slots=True)
class BoxSubscriber:
    """An external subscriber behind the public network."""

    number: str
    busy: bool = False
    answers: bool = True
    answer_delay: float = 0.0
    ccbs: bool = True


@dataclass(frozen=True, slots=True)
class BoxConfig:
    controllers: tuple[BoxController, ...] = (BoxController(1, ("5551",)),)
    subscribers: tuple[BoxSubscriber, ...] = ()
    fxs_ports: int = 4
    link: str = ""  # pty symlink; empty: <a temporary directory>/fxs0
    timers: NetworkTimers = field(default_factory=NetworkTimers)
    retention: bool = False  # the network keeps a request whose recall met busy
    threaded: bool = False  # the ISDN side on its own thread (libcapi20 in this process)
    bridge_tcp: bool = False  # the bridge on socket:// instead of a pty
    timeline: bool = True  # keep a readable timeline (off for benchmarks)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of the box's timeline: loop time, who, what."""

    t: float
    source: str  # "phone", "bridge", "exchange", "external", "box"
    text: str


class _WatchedExchange:
    """The exchange as the rcapi server sees it; tells the box after every input."""

    def __init__(self, exchange: SimExchange, changed: Callable[[], None]) -> None:
        self.exchange = exchange
        self._changed = changed

    def attach(self, access_id: str, deliver: Deliver) -> None:
        self.exchange.attach(access_id, deliver)

    def detach(self, access_id: str) -> None:
        self.exchange.detach(access_id)

    def from_user(self, access_id: str, msg: Q931, now: float) -> None:
        self.exchange.from_user(access_id, msg, now)
        self._changed()

    def next_deadline(self) -> float | None:
        return self.exchange.next_deadline()

    def on_timer(self, now: float) -> None:
        self.exchange.on_timer(now)
        self._changed()


class Phone:
    """The phone on FXS port ``number`` of the box."""

    def __init__(self, box: SimBox, number: int) -> None:
        self.box = box
        self.number = number

    @property
    def port(self) -> SimPort:
        return self.box.bridge.port(self.number)

    # -- what the user does
    def lift(self) -> None:
        self.box.note("phone", f"phone {self.number} lifts the handset")
        self.box.bridge.lift(self.number)

    def answer(self) -> None:
        self.box.note("phone", f"phone {self.number} answers")
        self.box.bridge.lift(self.number)

    def hang_up(self) -> None:
        self.box.note("phone", f"phone {self.number} hangs up")
        self.box.bridge.hang_up(self.number)

    def flash(self, ms: float | None = None) -> None:
        """Press R: a loop break in the middle of the port's flash window."""
        timing = self.port.timing
        duration = ms if ms is not None else (timing.flash_min + timing.flash_max) / 2
        self.box.note("phone", f"phone {self.number} presses R ({duration:.0f} ms)")
        self.box.bridge.flash(self.number, duration)

    def dial(self, digits: str) -> None:
        self.box.note("phone", f"phone {self.number} dials {digits}")
        self.box.bridge.dial(self.number, digits)

    # -- what the user hears and sees
    @property
    def off_hook(self) -> bool:
        return self.port.off_hook

    @property
    def ringing(self) -> bool:
        return self.port.ringing

    @property
    def tone(self) -> str:
        return self.port.tone

    @property
    def clip(self) -> tuple[str, str] | None:
        return self.port.clip

    @property
    def peer(self) -> int:
        return self.port.peer

    def rings(self, cadence: int | None = None) -> list[Command]:
        """Every ``AT%RING`` the daemon sent for this phone (optionally one cadence)."""
        return self.box.rings(self.number, cadence)


class External:
    """External subscriber ``number`` behind the public network."""

    def __init__(self, box: SimBox, number: str) -> None:
        self.box = box
        self.number = number

    def busy(self) -> None:
        self.box.note("external", f"{self.number} becomes busy")
        self.box.exchange(lambda ex, now: ex.set_busy(self.number, True, now))

    def free(self) -> None:
        self.box.note("external", f"{self.number} becomes free")
        self.box.exchange(lambda ex, now: ex.set_busy(self.number, False, now))

    def hang_up(self) -> int:
        self.box.note("external", f"{self.number} hangs up")
        return self.box.exchange(lambda ex, now: ex.hang_up(self.number, now))

    def answers(self, answers: bool = True, delay: float = 0.0) -> None:
        self.box.exchange(lambda ex, now: ex.update_subscriber(
            self.number, answers=answers, answer_delay=delay))

    def call(self, msn: str) -> str:
        self.box.note("external", f"{self.number} calls {msn}")
        return self.box.exchange(lambda ex, now: ex.call_from(self.number, msn, now))

    @property
    def is_busy(self) -> bool:
        return self.box.exchange(lambda ex, now: ex.is_busy(self.number), notify=False)

    def in_call(self) -> bool:
        """True while a call to or from this subscriber is connected."""
        tag = f"ext:{self.number}"
        return any(c.phase == "active" and tag in (c.a, c.b) for c in self.box.calls())


class SimBox:
    """See the module docstring. ``async with SimBox(cfg) as box: ...``"""

    def __init__(self, config: BoxConfig | None = None) -> None:
        self.config = config or BoxConfig()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        link = self.config.link
        if not link and not self.config.bridge_tcp:
            self._tmp = tempfile.TemporaryDirectory(prefix="ccbs-box-")
            link = str(Path(self._tmp.name) / "fxs0")
        self.link = link
        self.bridge = BridgeSim(self.config.fxs_ports)
        self.network = self._build_exchange()
        self._rcapi: RcapiServer | None = None
        self._threaded: ThreadedRcapiServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._watcher: asyncio.Task[None] | None = None
        self.timeline: list[TimelineEntry] = []
        self._seen_commands = 0
        self._seen_log = 0
        self._started = False

    # ================================================================ building

    @classmethod
    def from_config(cls, config: Any, *, link: str = "", threaded: bool = False) -> SimBox:
        """A box from a ccbsd ``Config``: ``[capi] controllers`` become the accesses
        (``route = "raw"`` a card without supplementary services), ``[sim]`` gives the
        ports, subscribers and the timer scale, ``[timers]`` the network's timers."""
        timers = NetworkTimers(**{f.name: getattr(config.timers, f.name)
                                  for f in fields(NetworkTimers)
                                  if hasattr(config.timers, f.name)})
        return cls(BoxConfig(
            controllers=tuple(
                BoxController(c.ctrl, tuple(c.msns) or (f"99{c.ctrl}",), ptp=c.ptp,
                              route="raw" if c.route == "raw" else "supplementary")
                for c in config.capi.controllers),
            subscribers=tuple(BoxSubscriber(s.number, s.busy, s.answers, ccbs=s.ccbs)
                              for s in config.sim.subscribers),
            fxs_ports=config.sim.fxs_ports,
            link=link,
            timers=timers.scaled(config.sim.timer_scale),
            threaded=threaded,
            timeline=False,
        ))

    def _build_exchange(self) -> SimExchange:
        cfg = self.config
        exchange = SimExchange(cfg.timers, retention=cfg.retention)
        for c in cfg.controllers:
            exchange.add_access(c.access_id, c.msns, ptp=c.ptp, ccbs=c.ccbs, ccnr=c.ccnr,
                                recall_mode=c.recall_mode, max_requests=c.max_requests)
        for s in cfg.subscribers:
            exchange.add_subscriber(s.number, busy=s.busy, answers=s.answers,
                                    answer_delay=s.answer_delay, ccbs=s.ccbs)
        return exchange

    def _specs(self) -> list[ControllerSpec]:
        return [ControllerSpec(c.ctrl, c.access_id, c.msns,
                               supplementary=c.route == "supplementary", ptp=c.ptp)
                for c in self.config.controllers]

    # ================================================================ lifecycle

    async def start(self) -> SimBox:
        if self._started:
            return self
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.current_thread()
        watched = _WatchedExchange(self.network, self._changed_from_any_thread)
        if self.config.threaded:
            self._threaded = ThreadedRcapiServer(lambda: RcapiServer(self._specs(), watched))
            await asyncio.to_thread(self._threaded.start)
        else:
            self._rcapi = RcapiServer(self._specs(), watched)
            await self._rcapi.start()
        if self.config.bridge_tcp:
            await self.bridge.serve_tcp()
        else:
            await self.bridge.open_pty(self.link)
        self._watcher = asyncio.create_task(self._watch_bridge(), name="box-bridge-watch")
        self._started = True
        self.note("box", f"box up: rcapi on 127.0.0.1:{self.capi_port}, "
                         f"bridge at {self.bridge_url}")
        return self

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self.bridge.close()
        if self._rcapi is not None:
            await self._rcapi.close()
            self._rcapi = None
        if self._threaded is not None:
            await asyncio.to_thread(self._threaded.stop)
            self._threaded = None
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self._started = False

    async def __aenter__(self) -> SimBox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def capi_port(self) -> int:
        if self._rcapi is not None:
            return self._rcapi.port
        if self._threaded is not None:
            return self._threaded.port
        raise RuntimeError("the box is not started")

    @property
    def rcapi(self) -> RcapiServer:
        if self._rcapi is not None:
            return self._rcapi
        if self._threaded is not None:
            return self._threaded.server
        raise RuntimeError("the box is not started")

    @property
    def bridge_url(self) -> str:
        return self.bridge.url

    # ================================================================ scripting

    def phone(self, number: int) -> Phone:
        if number not in self.bridge.ports:
            raise KeyError(f"the box has no FXS port {number}")
        return Phone(self, number)

    def subscriber(self, number: str) -> External:
        return External(self, number)

    def exchange(self, fn: Callable[[SimExchange, float], T], *, notify: bool = True) -> T:
        """Run ``fn(exchange, now)`` where the exchange lives, feed what it caused to
        the card and re-arm the network's timer; then re-check the waiters."""
        if self._threaded is not None:
            result = self._threaded.exchange(lambda ex, now: fn(ex.exchange, now))
        elif self._rcapi is not None:
            result = self._rcapi.with_exchange(lambda ex, now: fn(ex.exchange, now))
        else:
            result = fn(self.network, 0.0)
        if notify:
            self._changed()
        return result

    def calls(self) -> list[Any]:
        return self.exchange(lambda ex, now: ex.calls(), notify=False)

    def cc_records(self, access_id: str | None = None) -> list[Any]:
        return self.exchange(lambda ex, now: ex.cc_records(access_id), notify=False)

    # -- faults
    def reboot_bridge(self) -> None:
        self.note("box", "the FXS bridge reboots")
        self.bridge.reboot()

    async def unplug_bridge(self) -> None:
        self.note("box", "the FXS bridge is unplugged")
        await self.bridge.unplug()
        self._changed()

    async def replug_bridge(self) -> None:
        self.note("box", "the FXS bridge is plugged in again")
        await self.bridge.replug()
        self._changed()

    def lose_next_urc(self, port: int, count: int = 1) -> None:
        self.note("box", f"the next {count} URC(s) of port {port} will be lost")
        self.bridge.drop_next_urc(port, count)

    def drop_capi_connections(self) -> int:
        self.note("box", "the CAPI server drops every connection")
        if self._threaded is not None:
            return self._threaded.call(lambda server: server.drop_connections())
        return self.rcapi.drop_connections()

    # =============================================================== observing

    def rings(self, port: int, cadence: int | None = None) -> list[Command]:
        """``AT%RING`` commands the bridge accepted for ``port`` since it was built."""
        head = f"AT%RING={port},"
        found = [c for c in self.bridge.commands if c.ok and c.text.startswith(head)]
        if cadence is not None:
            found = [c for c in found if c.text[len(head):].split(",")[0] == str(cadence)]
        return found

    def commands(self, prefix: str = "", port: int | None = None) -> list[Command]:
        """Commands the daemon sent the bridge (``AT%TONE=2`` style filters)."""
        found = [c for c in self.bridge.commands if c.text.startswith(prefix)]
        if port is not None:
            found = [c for c in found if _port_of(c.text) == port]
        return found

    def exchange_log(self, contains: str = "") -> list[str]:
        lines = self.exchange(lambda ex, now: ex.log_lines(), notify=False)
        return [line for line in lines if contains in line]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0,
                       what: str = "") -> None:
        """Wait until ``predicate()`` holds; it is re-checked on every change of the
        bridge, of the exchange and after every script step. ``TimeoutError`` names
        ``what`` and the last timeline lines."""
        if self._check(predicate):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (predicate, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            tail = "\n".join(f"  {e.t:9.3f} {e.source:>8}  {e.text}"
                             for e in self.timeline[-25:])
            raise TimeoutError(f"box: {what or 'condition'} not reached within "
                               f"{timeout:g} s; last events:\n{tail}") from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def note(self, source: str, text: str) -> None:
        """Add a line to the timeline (and re-check the waiters)."""
        if self.config.timeline:
            self._collect()
            self.timeline.append(TimelineEntry(self._now(), source, text))
        self._changed()

    # ================================================================ internals

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def _check(self, predicate: Callable[[], bool]) -> bool:
        return bool(predicate())

    async def _watch_bridge(self) -> None:
        def poke() -> bool:
            self._changed()
            return False

        with contextlib.suppress(TimeoutError):
            await self.bridge.wait_for(poke, timeout=365 * 86400.0)

    def _changed_from_any_thread(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if threading.current_thread() is self._loop_thread:
            self._changed()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._changed)

    def _changed(self) -> None:
        if self.config.timeline:
            self._collect()
        for predicate, fut in list(self._waiters):
            if fut.done():
                continue
            try:
                if predicate():
                    fut.set_result(None)
            except Exception as exc:  # a broken predicate fails its own waiter
                fut.set_exception(exc)

    def _collect(self) -> None:
        """New bridge commands and exchange log lines into the timeline."""
        now = self._now()
        cmds = self.bridge.commands
        for cmd in cmds[self._seen_commands:]:
            result = "OK" if cmd.ok else f"ERROR {cmd.error}"
            self.timeline.append(TimelineEntry(now, "bridge", f"{cmd.text} -> {result}"))
        self._seen_commands = len(cmds)
        if self._threaded is not None:
            return  # the log belongs to the other thread; read it with exchange_log()
        log = self.network.log
        if len(log) < self._seen_log:
            self._seen_log = 0
        for entry in list(log)[self._seen_log:]:
            self.timeline.append(TimelineEntry(entry.time, "exchange",
                                               f"{entry.access_id or '-'} {entry.text}"))
        self._seen_log = len(log)


def _port_of(text: str) -> int | None:
    """The port argument of an ``AT%...=<p>,...`` command."""
    _, eq, args = text.partition("=")
    head = args.split(",", 1)[0] if eq else ""
    return int(head) if head.isdigit() else None


# ================================================== the daemon's [sim] backend


class SimBackend:
    """``SimBox`` as ccbsd's ``[sim]`` backend, in the daemon's own process: the CAPI
    line and the FXS line each start and stop "their" part (``isdn()``, ``bridge()``);
    the box starts with the first and stops with the last. The ISDN side runs on a
    thread of its own (``threaded``), because the real libcapi20 in this process
    blocks while it waits for the server (capi.md §3)."""

    def __init__(self, config: Any) -> None:
        self.state_dir = Path(config.daemon.state_dir)
        self.box = SimBox.from_config(config, link=str(self.state_dir / "sim-fxs0"),
                                      threaded=True)
        self._users = 0
        self._lock = asyncio.Lock()

    @property
    def link(self) -> str:
        return self.box.link

    def isdn(self) -> _BackendPart:
        return _BackendPart(self, isdn=True)

    def bridge(self) -> _BackendPart:
        return _BackendPart(self, isdn=False)

    async def _acquire(self) -> None:
        async with self._lock:
            if self._users == 0:
                # libcapi20 reads $HOME/.capi20rc, whose REMOTE line would override the
                # daemon's choice of transport (capi.md §2.2): a home of its own
                home = self.state_dir / "sim-home"
                home.mkdir(parents=True, exist_ok=True)
                (home / ".capi20rc").write_text("# ccbsd simulator: transport set by "
                                                "the daemon\n")
                os.environ["HOME"] = str(home)
                await self.box.start()
            self._users += 1

    async def _release(self) -> None:
        async with self._lock:
            self._users -= 1
            if self._users == 0:
                await self.box.stop()


class _BackendPart:
    """What ``CapiLine(sim=...)`` / ``FxsLine(sim=...)`` start and stop."""

    def __init__(self, backend: SimBackend, *, isdn: bool) -> None:
        self.backend = backend
        self.isdn = isdn
        self._started = False
        self.link = backend.link

    async def start(self) -> int:
        """Start the box (once); the ISDN part returns the rcapi port."""
        if not self._started:
            await self.backend._acquire()
            self._started = True
        return self.backend.box.capi_port if self.isdn else 0

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self.backend._release()


# ============================================================ ccbsd configuration


@dataclass(frozen=True, slots=True)
class StationSpec:
    """An extension of the box: phone on ``port`` with ``ext``, MSN and controller."""

    port: int
    ext: str
    msn: str = ""
    ctrl: int = 1
    name: str = ""


def ccbsd_toml(box: SimBox, *, state_dir: str | Path, socket: str | Path,
               stations: Sequence[StationSpec], timers: dict[str, float] | None = None,
               hook: tuple[int, int, int] = (10, 40, 150), extra: str = "",
               poll: tuple[float, float] = (5.0, 30.0), log_level: str = "info",
               routes: dict[int, str] | None = None) -> str:
    """A ccbsd configuration that reaches ``box`` through real interfaces: libcapi20's
    rcapi transport to ``box.capi_port`` and the FXS driver on ``box.bridge_url``.
    ``hook`` = (debounce, flash_min, flash_max) ms; ``routes`` forces a controller's
    CCBS route in the daemon (default: auto, i.e. what the card's profile offers)."""
    routes = routes or {}
    lines = [
        "[daemon]",
        f'state_dir = "{state_dir}"',
        f'socket = "{socket}"',
        'socket_group = ""',
        'admin_group = ""',
        f'log_level = "{log_level}"',
        "start_timeout = 20",
        "",
        "[capi]",
        "enabled = true",
        'driver = "rcapi"',
        'host = "127.0.0.1"',
        f"port = {box.capi_port}",
    ]
    for c in box.config.controllers:
        msns = ", ".join(f'"{m}"' for m in c.msns)
        lines += ["", "[[capi.controllers]]", f"ctrl = {c.ctrl}", f"msns = [{msns}]",
                  f"ptp = {'true' if c.ptp else 'false'}",
                  f'route = "{routes.get(c.ctrl, "auto")}"']
    lines += ["", "[fxs]", "enabled = true", f'device = "{box.bridge_url}"',
              f"poll_active = {poll[0]}", f"poll_idle = {poll[1]}"]
    for st in stations:
        lines += ["", "[[fxs.ports]]", f"port = {st.port}", f'extension = "{st.ext}"',
                  f'msn = "{st.msn}"', f"ctrl = {st.ctrl}", f'name = "{st.name}"']
    debounce, flash_min, flash_max = hook
    lines += ["", "[fxs.hook]", f"debounce_ms = {debounce}", f"flash_min_ms = {flash_min}",
              f"flash_max_ms = {flash_max}"]
    if timers:
        lines += ["", "[timers]"] + [f"{k} = {v}" for k, v in sorted(timers.items())]
    return "\n".join(lines) + "\n" + extra


def stations_for(ports: Iterable[tuple[int, str, str]], ctrl: int = 1) -> list[StationSpec]:
    """``(port, ext, msn)`` triples as station specs on one controller."""
    return [StationSpec(p, ext, msn, ctrl) for p, ext, msn in ports]


__all__ = ["BoxConfig", "BoxController", "BoxSubscriber", "External", "Phone", "SimBackend",
           "SimBox",
           "StationSpec", "TimelineEntry", "ccbsd_toml", "stations_for"]
