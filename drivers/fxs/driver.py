"""FXS bridge driver: the FXB/1 session over pyserial-asyncio-fast.

Owns one bridge (``docs/analog-bridge.md`` §3): the serial link (any pyserial URL: a
device path such as ``/dev/ccbs/fxs0``, a pty path, ``socket://host:port``), the session
rules of §3.7 (initialisation, ``%READY`` resync, keep-alive, reconnect after unplug),
one command in flight with its timeout (1 s, 3 s for ``AT%RESET``/``ATZ``), the
reconciliation polls of §5 (``ccbs_isdn.analog.poll``), and the port state model
(hook, ringing, cross-connects) that turns bridge lines into the indications of
``ccbs_isdn.analog.contract``.

It never decides CCBS policy or call control: indications go to one callback (or an
``asyncio.Queue``) in the order the bridge reported the facts; commands come in through
``send()``. A bridge that goes away produces ``BridgeDown`` (the owner suspends, never
cancels) and, when it is back and initialised, ``BridgeUp(reconnected=True)``. Garbage
from the bridge is logged and skipped, never fatal.

Latency: a URC is parsed and delivered synchronously in ``data_received``; the owner's
callback can answer it with ``send()`` right away (no queue hop on that path).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ccbs_isdn.analog.contract import (
    Activity,
    AnalogCommand,
    AnalogIndication,
    BridgeDown,
    BridgeReady,
    BridgeUp,
    CrossConnect,
    DefineCadence,
    Dtmf,
    FaultKind,
    Flash,
    HookChanged,
    HookSnapshot,
    HookTiming,
    PlayTone,
    PollHook,
    PortFault,
    PortStatus,
    ResetPort,
    Ring,
    RingEnded,
    RingEndReason,
    RingTrip,
    Tone,
)
from ccbs_isdn.analog.fxb import (
    ConnUrc,
    DtmfUrc,
    Echo,
    EdgeUrc,
    ErrReport,
    FaultUrc,
    FinalResult,
    FlashUrc,
    HookUrc,
    Line,
    LineFramer,
    PulseUrc,
    ReadyUrc,
    RingEndUrc,
    RingTripUrc,
    RingUrc,
    StateInfo,
    TextInfo,
    parse_line,
)
from ccbs_isdn.analog.poll import PollPolicy
from ccbs_isdn.errors import AtParseError, BridgeError, ConfigError, LinkDown

log = logging.getLogger("ccbs_isdn.fxs")

#: ``BridgeError.at_name`` for a command that got no final result in time, and for one
#: that was lost because the bridge rebooted under it (not FXB/1 error names: §3.5
#: has no code for "no answer").
TIMEOUT = "TIMEOUT"
REBOOTED = "REBOOTED"


@dataclass(frozen=True, slots=True)
class FxsConfig:
    """Settings of one bridge. Defaults are the ones of FXB/1 §3.1, §3.7 and §5."""

    url: str
    name: str = "fxs0"
    baudrate: int = 115200
    hook: HookTiming = field(default_factory=HookTiming)
    tone_plan: str = "DE"
    #: extra ring cadences to define at start-up (id, (on, off, ...) ms), e.g. a
    #: site-specific recall ring
    cadences: tuple[tuple[int, tuple[int, ...]], ...] = ()
    command_timeout: float = 1.0
    slow_timeout: float = 3.0  # ATZ / AT%RESET
    keepalive: float = 15.0  # AT when idle this long
    keepalive_misses: int = 3  # consecutive unanswered commands = bridge down
    init_tries: int = 3  # "AT until OK", this many times ...
    init_retry: float = 1.0  # ... this far apart
    reconnect_min: float = 0.5  # backoff after a failed open / lost link
    reconnect_max: float = 30.0
    poll_active: float = 5.0
    poll_idle: float = 30.0

    def __post_init__(self) -> None:
        if not self.url:
            raise ConfigError("no device", key="fxs.device",
                              expected="a path or pyserial URL such as /dev/ccbs/fxs0")
        positive = {
            "command_timeout": self.command_timeout, "slow_timeout": self.slow_timeout,
            "keepalive": self.keepalive, "init_retry": self.init_retry,
            "reconnect_min": self.reconnect_min, "reconnect_max": self.reconnect_max,
        }
        for key, value in positive.items():
            if not value > 0:
                raise ConfigError(f"{key} = {value}", key=f"fxs.{key}",
                                  expected="a positive number of seconds")
        if self.keepalive_misses < 1 or self.init_tries < 1:
            raise ConfigError("keepalive_misses / init_tries < 1", key="fxs",
                              expected="at least 1")
        if self.reconnect_max < self.reconnect_min:
            raise ConfigError("reconnect_max < reconnect_min", key="fxs.reconnect_max",
                              expected=f">= {self.reconnect_min}")
        for cid, pattern in self.cadences:
            DefineCadence(cid, pattern)  # validates


@dataclass(frozen=True, slots=True)
class AtResponse:
    """The answer to one command: its information lines (the final ``OK`` is implied;
    an ``ERROR`` raises ``BridgeError`` instead)."""

    command: str
    lines: tuple[Line, ...] = ()


class _PortModel:
    __slots__ = ("off_hook", "ringing", "peer", "tone", "activity", "fault")

    def __init__(self) -> None:
        self.off_hook = False
        self.ringing = False
        self.peer = 0
        self.tone = Tone.OFF
        self.activity = Activity.IDLE
        self.fault: FaultKind | None = None


class _Pending:
    __slots__ = ("text", "future", "lines", "err", "hook_poll", "on_ok")

    def __init__(self, text: str, future: asyncio.Future[tuple[Line, ...]],
                 on_ok: Callable[[], None] | None) -> None:
        self.text = text
        self.future = future
        self.lines: list[Line] = []
        self.err: ErrReport | None = None
        self.hook_poll = text.upper() == "AT%HOOK?"
        self.on_ok = on_ok


class _Protocol(asyncio.Protocol):
    """Forwards one connection's bytes; a stale connection's events are ignored."""

    def __init__(self, driver: FxsDriver, generation: int) -> None:
        self.driver = driver
        self.generation = generation

    def data_received(self, data: bytes) -> None:
        if self.generation == self.driver._generation:
            self.driver._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.driver._on_connection_lost(self.generation, exc)


class FxsDriver:
    """One FXS bridge. ``await start()``, then indications flow to ``on_indication``
    (or to ``self.indications`` when no callback is given); ``await send(command)``."""

    def __init__(
        self,
        config: FxsConfig,
        *,
        on_indication: Callable[[AnalogIndication], None] | None = None,
        trace: Callable[[str, str], None] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.policy = PollPolicy(config.poll_active, config.poll_idle)
        self.indications: asyncio.Queue[AnalogIndication] = asyncio.Queue()
        self.stats: dict[str, int] = {
            "garbage_lines": 0, "stray_lines": 0, "timeouts": 0, "urcs": 0,
            "commands": 0, "polls": 0, "reconnects": 0, "ready": 0,
        }
        self.fw_version = ""
        self._on_indication = on_indication
        self._trace = trace
        self._ports: dict[int, _PortModel] = {}
        self._nports = 0
        self._framer = LineFramer()
        self._transport: asyncio.BaseTransport | None = None
        self._generation = 0
        self._pending: _Pending | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        self._lost_reason = ""
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self._stopping = False
        self._ready = False  # session initialised: commands may be sent
        self._up = False  # BridgeUp sent and no BridgeDown since
        self._ever_up = False
        self._down_reported = False
        self._initialising = False
        self._resync = False
        self._misses = 0
        self._last_tx = 0.0
        self._was_initialised = False

    # ============================================================== public API

    async def start(self) -> None:
        """Open the bridge and initialise it. Returns after the first attempt, whether
        it worked (``BridgeUp`` delivered) or not (``BridgeDown``; retrying in the
        background). Never raises for a missing device."""
        if self._task is not None:
            return
        self._stopping = False
        self._first_attempt.clear()
        self._task = asyncio.create_task(self._run(), name=f"fxs-{self.name}")
        await self._first_attempt.wait()

    async def stop(self) -> None:
        self._stopping = True
        self._first_attempt.set()  # a start() still waiting returns
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_transport()
        self._ready = self._up = False

    async def send(self, cmd: AnalogCommand) -> AtResponse:
        """Execute one command. ``BridgeError`` on ``ERROR`` (with ``at_code`` and
        ``at_name`` from ``%ERR``) or when no answer came in time (``at_name`` =
        ``"TIMEOUT"``); ``LinkDown`` when the bridge is down or re-initialising."""
        text = cmd.at()
        timeout = self.config.slow_timeout if cmd.slow else self.config.command_timeout
        async with self._lock:
            self._check_ready()
            if isinstance(cmd, PollHook):
                response, _ = await self._poll_locked()
                return response
            return await self._exchange(text, timeout, self._model_update(cmd))

    async def at(self, text: str, timeout: float | None = None) -> AtResponse:
        """A raw command line (diagnostics, ``hwtests``); same rules as ``send``."""
        if text[:2].upper() != "AT" or "\r" in text or "\n" in text:
            raise BridgeError(f"not a single AT command line: {text!r}")
        if timeout is None:
            slow = text.upper().replace(" ", "") in ("ATZ", "ATZ0") or \
                text.upper().startswith("AT%RESET")
            timeout = self.config.slow_timeout if slow else self.config.command_timeout
        async with self._lock:
            self._check_ready()
            return await self._exchange(text, timeout)

    async def poll(self) -> HookSnapshot:
        """Poll the hook state now (e.g. right before a recall) and return it."""
        async with self._lock:
            self._check_ready()
            _, snapshot = await self._poll_locked()
            return snapshot

    def set_watched(self, ports: Iterable[int]) -> None:
        """Ports that are origin or target of an active request: polled every
        ``poll_active`` s instead of ``poll_idle`` s (FXB/1 §5)."""
        self.policy.set_watched(ports)
        self._wake.set()

    def poll_soon(self, reason: str = "") -> None:
        """Ask for a reconciliation poll as soon as the link allows."""
        self.policy.poll_now(asyncio.get_running_loop().time(), reason)
        self._wake.set()

    @property
    def is_up(self) -> bool:
        return self._up and self._ready

    @property
    def ports(self) -> int:
        """Number of ports the bridge reported (0 before the first initialisation)."""
        return self._nports

    def hook(self, port: int) -> bool:
        """True if ``port`` is off-hook, as far as the bridge told us."""
        return self._port(port).off_hook

    def port_status(self, port: int) -> PortStatus:
        m = self._port(port)
        return PortStatus(port, m.off_hook, m.ringing, m.peer, m.tone, m.activity,
                          (m.fault,) if m.fault else ())

    # ======================================================= connection manager

    async def _run(self) -> None:
        delay = self.config.reconnect_min
        while not self._stopping:
            reason = ""
            try:
                await self._open()
            except Exception as exc:  # pyserial raises SerialException / OSError / ValueError
                reason = f"cannot open {self.config.url}: {exc}"
            else:
                try:
                    await self._session()
                except LinkDown as exc:
                    reason = exc.message
                except Exception as exc:  # a driver bug: log it, start a fresh session
                    log.exception("fxs %s: session failed", self.name)
                    reason = f"driver error: {exc!r}"
                finally:
                    await self._close_transport()
                if self._was_initialised:
                    delay = self.config.reconnect_min
            if self._stopping:
                break
            self._report_down(reason)
            self._first_attempt.set()
            log.warning("fxs %s: %s; retrying in %.1f s", self.name, reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max)
            self.stats["reconnects"] += 1

    async def _open(self) -> None:
        import serial_asyncio_fast  # the driver's only dependency on pyserial

        self._generation += 1
        generation = self._generation
        self._framer.reset()
        self._lost = asyncio.Event()
        self._lost_reason = ""
        self._closed = asyncio.Event()
        self._misses = 0
        self._was_initialised = False
        loop = asyncio.get_running_loop()
        transport, _ = await serial_asyncio_fast.create_serial_connection(
            loop, lambda: _Protocol(self, generation), self.config.url,
            baudrate=self.config.baudrate,
        )
        self._transport = transport
        log.info("fxs %s: opened %s", self.name, self.config.url)

    async def _close_transport(self) -> None:
        transport, self._transport = self._transport, None
        self._ready = False
        self._fail_pending(LinkDown(f"FXS bridge {self.name}: link closed"))
        if transport is None:
            return
        transport.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), 2.0)

    def _on_connection_lost(self, generation: int, exc: Exception | None) -> None:
        if generation != self._generation:
            return
        self._closed.set()
        self._link_lost(f"link lost ({exc})" if exc else "link closed")

    def _link_lost(self, reason: str) -> None:
        if self._lost.is_set():
            return
        self._lost_reason = reason
        self._lost.set()
        self._ready = False
        self._fail_pending(LinkDown(f"FXS bridge {self.name}: {reason}"))
        self._wake.set()

    def _report_down(self, reason: str) -> None:
        self.policy.forget()
        if self._up or not self._down_reported:
            self._up = False
            self._down_reported = True
            self._emit(BridgeDown(reason, bridge=self.name))

    # ================================================================ session

    async def _session(self) -> None:
        async with self._lock:
            await self._initialise()
        self._was_initialised = True
        self._ready = True
        self._up = True
        self._down_reported = False
        reconnected, self._ever_up = self._ever_up, True
        self._emit(BridgeUp(self._nports, self.fw_version, reconnected, bridge=self.name))
        self._first_attempt.set()
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            if self._lost.is_set():
                raise LinkDown(self._lost_reason)
            if self._resync:
                self._ready = False
                async with self._lock:
                    await self._initialise()
                self._ready = True
                self._emit(BridgeReady(self._nports, self.fw_version, bridge=self.name))
                continue
            now = loop.time()
            due = min(self.policy.next_poll(now), self._last_tx + self.config.keepalive)
            if due > now:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(due - now):
                        await self._wake.wait()
                continue
            try:
                async with self._lock:
                    if self._lost.is_set() or self._resync:
                        continue
                    if self.policy.due(loop.time()):
                        await self._poll_locked()
                    else:
                        await self._exchange("AT", self.config.command_timeout)
            except LinkDown as exc:
                self._link_lost(exc.message)  # the top of the loop reports it
                continue
            except BridgeError as exc:
                log.warning("fxs %s: maintenance command failed: %s", self.name, exc)

    async def _initialise(self) -> None:
        """FXB/1 §3.7.1; again after every ``%READY`` (§3.7.2). Holds the lock."""
        self._initialising = True
        try:
            for _ in range(3):
                self._resync = False
                try:
                    await self._init_sequence()
                except BridgeError as exc:
                    if exc.at_name == REBOOTED:
                        continue
                    if exc.at_name == TIMEOUT:
                        raise LinkDown(f"bridge stopped answering during set-up ({exc})") from exc
                    raise LinkDown(f"bridge refused set-up: {exc}") from exc
                if not self._resync:
                    return
            raise LinkDown("bridge keeps rebooting during set-up")
        finally:
            self._initialising = False

    async def _init_sequence(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        for attempt in range(1, cfg.init_tries + 1):
            started = loop.time()
            try:
                await self._exchange("AT", cfg.command_timeout, count_miss=False)
                break
            except BridgeError as exc:
                if exc.at_name not in (TIMEOUT, REBOOTED):
                    break  # it answered, if only with ERROR: it is alive
                if attempt == cfg.init_tries:
                    raise LinkDown(f"no answer to AT after {attempt} tries") from exc
                if exc.at_name == TIMEOUT:
                    await asyncio.sleep(max(0.0, cfg.init_retry - (loop.time() - started)))
                # after %READY the bridge listens again: ask at once
        # a %READY before the first OK is the boot we are setting up, not a new one
        self._resync = False
        steps = ["ATE0", "AT%CMEE=1", "AT%URC=1", "AT%TS=1", cfg.hook.at(0),
                 f"AT%TPLAN={cfg.tone_plan}"]
        steps += [DefineCadence(cid, pattern).at() for cid, pattern in cfg.cadences]
        for text in steps:
            try:
                await self._exchange(text, cfg.command_timeout, count_miss=False)
            except BridgeError as exc:
                if exc.at_name in (TIMEOUT, REBOOTED):
                    raise
                # an older firmware without this feature still serves calls
                log.warning("fxs %s: %s refused (%s); continuing", self.name, text, exc)
        await self._poll_locked(count_miss=False)
        try:
            response = await self._exchange("AT%STATE?", cfg.command_timeout,
                                            count_miss=False)
        except BridgeError as exc:
            if exc.at_name in (TIMEOUT, REBOOTED):
                raise
            log.warning("fxs %s: AT%%STATE? refused (%s)", self.name, exc)
        else:
            self._reconcile_state([ln for ln in response.lines if isinstance(ln, StateInfo)])
        # V.250 identification, for logs and status: the %READY that carries the
        # version is usually sent before we open the port
        try:
            ident = await self._exchange("AT+GMR", cfg.command_timeout, count_miss=False)
        except BridgeError as exc:
            if exc.at_name in (TIMEOUT, REBOOTED):
                raise
        else:
            texts = [ln.text for ln in ident.lines if isinstance(ln, TextInfo)]
            if texts:
                self.fw_version = texts[0]

    def _reconcile_state(self, states: list[StateInfo]) -> None:
        """After (re)initialisation: rings and connections the bridge no longer has are
        gone (a reboot drops them all, §3.7.2) — say so instead of assuming them."""
        for st in states:
            m = self._port(st.port)
            if m.ringing and st.activity is not Activity.RINGING:
                m.ringing = False
                self._emit(RingEnded(st.port, RingEndReason.RESET, bridge=self.name))
            if m.peer != st.peer:
                old, m.peer = m.peer, st.peer
                if old:
                    other = self._port(old)
                    if other.peer == st.port:
                        other.peer = 0
                    self._emit(CrossConnect(min(st.port, old), max(st.port, old), False,
                                            bridge=self.name))
                if st.peer and st.port < st.peer:  # one indication per pair
                    self._emit(CrossConnect(st.port, st.peer, True, bridge=self.name))
            m.activity = st.activity
            if st.activity is not Activity.TONE:
                m.tone = Tone.OFF
            if st.activity is not Activity.FAULT:
                m.fault = None

    async def _poll_locked(self, *, count_miss: bool = True) -> tuple[AtResponse, HookSnapshot]:
        started = asyncio.get_running_loop().time()
        try:
            response = await self._exchange("AT%HOOK?", self.config.command_timeout,
                                            count_miss=count_miss)
        except BridgeError as exc:
            if exc.at_name not in (TIMEOUT, REBOOTED):
                self.policy.polled(started)  # refused: try again at the next interval
            raise
        self.stats["polls"] += 1
        self.policy.polled(started)
        hooks = [ln for ln in response.lines if isinstance(ln, HookUrc)]
        if hooks:
            self._nports = max(ln.port for ln in hooks)
        snapshot = HookSnapshot(
            tuple(self._port(p).off_hook for p in range(1, self._nports + 1)),
            bridge=self.name,
        )
        self._emit(snapshot)
        return response, snapshot

    def _check_ready(self) -> None:
        if not self._ready:
            state = "re-initialising" if self._up else "down"
            raise LinkDown(f"FXS bridge {self.name} is {state}")

    # =============================================================== commands

    async def _exchange(self, text: str, timeout: float,
                        on_ok: Callable[[], None] | None = None, *,
                        count_miss: bool = True) -> AtResponse:
        """Send one command line and wait for its final result. Caller holds the lock."""
        transport = self._transport
        if transport is None or self._lost.is_set():
            raise LinkDown(f"FXS bridge {self.name}: link is down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Line, ...]] = loop.create_future()
        self._pending = _Pending(text, future, on_ok)
        self.stats["commands"] += 1
        self._write(transport, text)
        try:
            async with asyncio.timeout(timeout):
                lines = await future
        except TimeoutError:
            self.stats["timeouts"] += 1
            if count_miss:
                self._misses += 1
                if self._misses >= self.config.keepalive_misses:
                    self._link_lost(f"{self._misses} commands unanswered")
            raise BridgeError(f"{text}: no answer within {timeout:g} s",
                              at_name=TIMEOUT) from None
        except BridgeError:
            self._misses = 0
            raise
        finally:
            if self._pending is not None and self._pending.future is future:
                self._pending = None
        self._misses = 0
        return AtResponse(text, lines)

    def _write(self, transport: asyncio.BaseTransport, text: str) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self._last_tx = asyncio.get_running_loop().time()
        if self._trace is not None:
            self._trace("->", text)
        log.debug("fxs %s -> %s", self.name, text)
        transport.write(text.encode("ascii") + b"\r")

    def _fail_pending(self, exc: Exception) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not pending.future.done():
            pending.future.set_exception(exc)

    def _model_update(self, cmd: AnalogCommand) -> Callable[[], None] | None:
        """What an ``OK`` to ``cmd`` means for the port model; applied when the OK is
        read, before any URC behind it, so a fast ``%RINGEND`` is never undone."""
        if isinstance(cmd, Ring):
            port = self._port(cmd.port)

            def ringing() -> None:
                port.ringing = True
                port.activity = Activity.RINGING

            return ringing
        if isinstance(cmd, PlayTone):
            model, tone = self._port(cmd.port), cmd.tone

            def toned() -> None:
                model.tone = tone  # the last tone asked for; a timed one ends silently
                if not model.ringing and not model.peer:
                    model.activity = Activity.TONE if model.tone is not Tone.OFF \
                        else Activity.IDLE

            return toned
        if isinstance(cmd, ResetPort):
            return lambda: self._reset_ports(cmd.port)
        return None

    def _reset_ports(self, which: int) -> None:
        """``AT%RESET`` drops rings and connections without URCs (§3.9.2)."""
        for number, m in list(self._ports.items()):
            if which not in (0, number):
                continue
            if m.ringing:
                m.ringing = False
                self._emit(RingEnded(number, RingEndReason.RESET, bridge=self.name))
            if m.peer:
                peer = m.peer
                self._port(peer).peer = 0
                m.peer = 0
                self._emit(CrossConnect(min(number, peer), max(number, peer), False,
                                        bridge=self.name))
            m.tone = Tone.OFF
            m.activity = Activity.IDLE
            m.fault = None

    # ================================================================ receive

    def _on_data(self, data: bytes) -> None:
        for raw in self._framer.feed(data):
            try:
                line = parse_line(raw)
            except AtParseError as exc:
                self.stats["garbage_lines"] += 1
                log.warning("fxs %s: skipped garbage line %r: %s (offset %s)",
                            self.name, raw[:80], exc, exc.offset)
                continue
            if self._trace is not None:
                self._trace("<-", raw.decode("ascii"))
            try:
                self._on_line(line)
            except Exception:  # one bad fact must not end the session
                log.exception("fxs %s: failed to handle %r", self.name, raw)

    def _on_line(self, line: Line) -> None:
        handler = _HANDLERS.get(type(line))
        if handler is not None:
            self.stats["urcs"] += 1
            handler(self, line)
            return
        pending = self._pending
        if isinstance(line, FinalResult):
            if pending is None or pending.future.done():
                self.stats["stray_lines"] += 1
                log.info("fxs %s: final result %s without a command (late answer?)",
                         self.name, "OK" if line.ok else "ERROR")
                return
            self._pending = None
            if line.ok:
                if pending.on_ok is not None:
                    pending.on_ok()
                pending.future.set_result(tuple(pending.lines))
            else:
                err = pending.err
                name = err.name if err else None
                pending.future.set_exception(BridgeError(
                    f"{pending.text}: ERROR{f' {err.code},{err.name}' if err else ''}",
                    at_code=err.code if err else None, at_name=name,
                ))
            return
        if isinstance(line, Echo):
            return
        if pending is None:
            self.stats["stray_lines"] += 1
            log.info("fxs %s: information line outside a response: %r", self.name, line)
            return
        if isinstance(line, ErrReport):
            pending.err = line
        else:
            pending.lines.append(line)

    # ------------------------------------------------------------------ URCs

    def _on_hook(self, line: HookUrc) -> None:
        pending = self._pending
        if pending is not None and pending.hook_poll and not pending.future.done():
            pending.lines.append(line)  # §3.9.7: the poll answer states the same fact
            self._apply_hook(line.port, line.off_hook, polled=True, ts=line.ts_ms)
        else:
            self._apply_hook(line.port, line.off_hook, polled=False, ts=line.ts_ms)

    def _apply_hook(self, port: int, off_hook: bool, *, polled: bool, ts: int | None) -> None:
        m = self._port(port)
        if m.off_hook == off_hook:
            return
        m.off_hook = off_hook
        if not off_hook:
            m.tone = Tone.OFF  # tones stop on-hook (§3.9.12)
        if off_hook and m.ringing and polled and not self._initialising:
            # we believed it was ringing and the poll shows it answered: the
            # %RINGTRIP was lost
            m.ringing = False
            self._emit(RingTrip(port, True, ts, bridge=self.name))
            self._emit(RingEnded(port, RingEndReason.TRIP, bridge=self.name))
            return
        self._emit(HookChanged(port, off_hook, polled, ts, bridge=self.name))

    def _on_flash(self, line: FlashUrc) -> None:
        self._emit(Flash(line.port, line.ms, line.ts_ms, bridge=self.name))

    def _on_dtmf(self, line: DtmfUrc) -> None:
        self._emit(Dtmf(line.port, line.digit, line.ms, False, line.ts_ms, bridge=self.name))

    def _on_pulse(self, line: PulseUrc) -> None:
        self._emit(Dtmf(line.port, line.digit, None, True, line.ts_ms, bridge=self.name))

    def _on_ring(self, line: RingUrc) -> None:
        log.debug("fxs %s: port %d ring burst %s", self.name, line.port, line.on)

    def _on_edge(self, line: EdgeUrc) -> None:
        log.debug("fxs %s: port %d loop %s after %d ms", self.name, line.port,
                  "closed" if line.closed else "open", line.ms)

    def _on_ringtrip(self, line: RingTripUrc) -> None:
        m = self._port(line.port)
        m.off_hook = True
        m.ringing = False
        self._emit(RingTrip(line.port, False, line.ts_ms, bridge=self.name))

    def _on_ringend(self, line: RingEndUrc) -> None:
        m = self._port(line.port)
        m.ringing = False
        if m.activity is Activity.RINGING:
            m.activity = Activity.IDLE
        self._emit(RingEnded(line.port, line.reason, line.ts_ms, bridge=self.name))

    def _on_conn(self, line: ConnUrc) -> None:
        a, b = self._port(line.p1), self._port(line.p2)
        if line.up:
            a.peer, b.peer = line.p2, line.p1
            a.tone = b.tone = Tone.OFF  # UP stops tones on both ports (§3.9.4)
        else:
            if a.peer == line.p2:
                a.peer = 0
            if b.peer == line.p1:
                b.peer = 0
        self._emit(CrossConnect(line.p1, line.p2, line.up, line.ts_ms, bridge=self.name))

    def _on_fault(self, line: FaultUrc) -> None:
        m = self._port(line.port)
        m.fault = line.kind
        m.activity = Activity.FAULT
        self._emit(PortFault(line.port, line.kind, line.ts_ms, bridge=self.name))

    def _on_ready(self, line: ReadyUrc) -> None:
        """The bridge rebooted (§3.7.2): whatever was in flight is lost; re-initialise."""
        self.stats["ready"] += 1
        self.fw_version = line.fw_version
        log.warning("fxs %s: bridge rebooted (%%READY %s, %d ports)", self.name,
                    line.fw_version, line.ports)
        self._resync = True
        if not self._initialising:
            self._ready = False
        self._fail_pending(BridgeError("bridge rebooted before answering", at_name=REBOOTED))
        self.policy.poll_now(asyncio.get_running_loop().time(), "ready")
        self._wake.set()

    # ================================================================ helpers

    def _port(self, port: int) -> _PortModel:
        m = self._ports.get(port)
        if m is None:
            m = self._ports[port] = _PortModel()
        return m

    def _emit(self, indication: AnalogIndication) -> None:
        if self._on_indication is None:
            self.indications.put_nowait(indication)
            return
        try:
            self._on_indication(indication)
        except Exception:  # the owner's bug must not take the bridge down
            log.exception("fxs %s: indication handler failed on %r", self.name, indication)


#: URC type -> handler. Everything else belongs to the command in flight.
_HANDLERS: dict[type[Any], Callable[[FxsDriver, Any], None]] = {
    HookUrc: FxsDriver._on_hook,
    FlashUrc: FxsDriver._on_flash,
    DtmfUrc: FxsDriver._on_dtmf,
    PulseUrc: FxsDriver._on_pulse,
    RingUrc: FxsDriver._on_ring,
    RingTripUrc: FxsDriver._on_ringtrip,
    RingEndUrc: FxsDriver._on_ringend,
    ConnUrc: FxsDriver._on_conn,
    FaultUrc: FxsDriver._on_fault,
    EdgeUrc: FxsDriver._on_edge,
    ReadyUrc: FxsDriver._on_ready,
}
