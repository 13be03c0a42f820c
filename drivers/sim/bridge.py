"""FXB/1 bridge simulator: N FXS ports with scriptable phones, on a pty or on TCP.

Owns the *device side* of ``docs/analog-bridge.md``: the AT command interpreter of
§3.3 with the errors of §3.5 and the clarifications of §3.9, URCs (§3.4) held back
while a response block is written (§3.1), the hook classifier of §4.2 (debounce,
flash window, ``%HOOK: p,ON`` exactly ``flash_max`` after the break, pulse digits),
ring cadences with CLIP after the first burst and ring timeouts, tones, cross-connects,
timestamps, and faults: reboot (``%READY``), lost URCs, garbage, mute (no answers),
slow answers, port faults, unplug and replug.

Transports: ``open_pty(link)`` makes a pty pair (``os.openpty``), keeps the master and
points the stable symlink ``link`` at the slave, which the daemon opens like
``/dev/ttyUSB0``; an unplug closes the pty (the daemon's reads fail like a vanished USB
device) and a replug re-points the same symlink at a new pty. ``serve_tcp()`` is the
same bridge behind ``socket://127.0.0.1:PORT``.

Timing is a discrete-event agenda synchronised to the event loop's clock: every hook
edge and timer has a *nominal* time and the agenda runs them in nominal order, so a
late event loop (a loaded CI box) delays a URC but never changes a classification.
Timestamps (``,@<ms>``) are nominal times since the last boot.

It must not: decide anything for the daemon, or talk to anything but its one link.
Every command received is logged in ``commands`` (and every line sent in ``sent``)
so tests and the demo can assert on the exact dialogue.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import heapq
import itertools
import logging
import os
import re
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccbs_isdn.analog.contract import CADENCE_PATTERNS, ERROR_NAMES, TONE_PLANS, HookTiming, Tone

log = logging.getLogger("ccbs_isdn.sim.bridge")

MAX_COMMAND = 128  # FXB/1 §3.1
PULSE_DIGIT_GAP_MS = 300  # a pulse digit ends after this long without a break (§4.2)

_TONES = frozenset(t.value for t in Tone)
_CLIP_NUMBER = re.compile(r"[0-9*#+]{0,20}")


class _AtError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(ERROR_NAMES[code])
        self.code = code


INVALID_PORT, INVALID_PARAM, PORT_OFFHOOK, PORT_ONHOOK, PORT_RINGING = 1, 2, 3, 4, 5
PORT_IN_USE, NOT_SUPPORTED, HW_FAULT, NOT_SELECTED, BUSY_CMD = 6, 7, 8, 10, 11


@dataclass
class _Event:
    at: float
    seq: int
    fn: Callable[[], None]
    cancelled: bool = False

    def __lt__(self, other: _Event) -> bool:
        return (self.at, self.seq) < (other.at, other.seq)

    def cancel(self) -> None:
        self.cancelled = True


@dataclass(frozen=True, slots=True)
class Command:
    """One command line the bridge received, with its nominal time and answer."""

    t_ms: int
    text: str
    ok: bool
    error: str | None = None


@dataclass
class SimPort:
    """One FXS port and the phone on it. Read these in tests; change them only through
    the simulator's methods."""

    number: int
    timing: HookTiming = field(default_factory=HookTiming)
    loop_closed: bool = False  # physical: handset lifted
    off_hook: bool = False  # classified, as the bridge reports it
    ringing: bool = False
    cadence: int = 0
    clip: tuple[str, str] | None = None  # what the phone's display got (after burst 1)
    tone: str = "OFF"
    peer: int = 0
    locked: bool = False
    fault: str | None = None
    dtmf: bool = True
    rings: int = 0  # AT%RING accepted for this port since boot
    # classifier internals
    _break_t0: float | None = None
    _edge_t: float = 0.0
    _settle: _Event | None = None
    _expiry: _Event | None = None
    _pulses: int = 0
    _pulse_end: _Event | None = None
    _ring_events: list[_Event] = field(default_factory=list)
    _clip_pending: tuple[str, str] | None = None
    _tone_end: _Event | None = None

    @property
    def activity(self) -> str:
        if self.fault:
            return "FAULT"
        if self.locked:
            return "LOCKOUT"
        if self.ringing:
            return "RINGING"
        if self.peer:
            return "CONNECTED"
        if self.tone != "OFF":
            return "TONE"
        return "IDLE"


class BridgeSim:
    """An FXB/1 bridge with ``ports`` FXS ports. See the module docstring."""

    def __init__(
        self,
        ports: int = 4,
        *,
        fw_version: str = "1.0-sim",
        echo: bool = False,
        boot_ms: int = 100,
        max_log: int = 100_000,
    ) -> None:
        if not 1 <= ports <= 999:
            raise ValueError("ports must be 1..999")
        self.nports = ports
        self.fw_version = fw_version
        self.boot_ms = boot_ms
        self._echo_default = echo
        # observable logs, capped at ``max_log`` entries each (oldest dropped) so a
        # long-running simulated box does not grow; indices stay absolute: see mark()
        self.max_log = max_log
        self.commands: list[Command] = []
        self.sent: list[str] = []  # every line written, in order (URCs and responses)
        self.dropped: list[str] = []  # URCs eaten by drop_next_urc
        self._commands_trimmed = 0
        self.ports: dict[int, SimPort] = {p: SimPort(p) for p in range(1, ports + 1)}
        self.response_delay = 0.0  # seconds before a command is answered
        self.boots = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._agenda: list[_Event] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._now = 0.0
        self._boot_t = 0.0
        self._deaf_until = 0.0
        self._muted = False
        self._executing: _Event | None = None
        self._in_command = False
        self._held: list[str] = []
        self._drop: dict[int, int] = {}
        self._inbuf = bytearray()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._link: _PtyLink | _TcpLink | None = None
        self._reset_settings()

    # ================================================================ transports

    async def open_pty(self, link: str | os.PathLike[str]) -> str:
        """Plug the bridge in as a pty; ``link`` becomes a symlink to the slave."""
        self._start()
        pty_link = _PtyLink(self, Path(link))
        pty_link.open()
        self._link = pty_link
        self._power_up()
        return str(link)

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the bridge on TCP (one client at a time); returns the socket:// URL."""
        self._start()
        tcp = _TcpLink(self, host, port)
        await tcp.open()
        self._link = tcp
        self._power_up()
        return self.url

    @property
    def url(self) -> str:
        """What the daemon opens: the pty symlink or ``socket://host:port``."""
        if isinstance(self._link, _PtyLink):
            return str(self._link.path)
        if isinstance(self._link, _TcpLink):
            return f"socket://{self._link.host}:{self._link.port}"
        raise RuntimeError("bridge is not plugged in")

    @property
    def plugged(self) -> bool:
        return self._link is not None and self._link.is_open

    async def unplug(self) -> None:
        """Pull the USB cable: the link closes, the bridge loses power."""
        if self._link is not None:
            await self._link.close(unplug=True)
        self._cancel_all_activity(silent=True)
        self._notify()

    async def replug(self) -> None:
        """Plug the same bridge back in (same path / same TCP port); it boots."""
        if self._link is None:
            raise RuntimeError("replug before the first open")
        if isinstance(self._link, _PtyLink):
            self._link.open()
        else:
            await self._link.open()
        self._power_up()

    async def close(self) -> None:
        if self._link is not None:
            await self._link.close(unplug=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._agenda.clear()
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters.clear()

    # ============================================================ phone scripts

    def port(self, p: int) -> SimPort:
        return self.ports[p]

    def lift(self, p: int) -> None:
        """Lift the handset (answers a ringing phone after the debounce)."""
        self._script(lambda: self._edge(self.ports[p], True))

    answer = lift

    def hang_up(self, p: int) -> None:
        """Replace the handset; reported ``flash_max`` ms later as ``%HOOK: p,ON``."""
        self._script(lambda: self._edge(self.ports[p], False))

    def flash(self, p: int, ms: float) -> None:
        """Open the loop for ``ms`` ms (a hook flash if inside the window)."""
        port = self.ports[p]

        def run() -> None:
            # the close goes on the agenda first: a close exactly at flash_max then
            # runs before the expiry check of the same instant (bounds are inclusive)
            self._at(self._now + ms / 1000, lambda: self._edge(port, True))
            self._edge(port, False)

        self._script(run)

    def edge(self, p: int, closed: bool, after_ms: float = 0.0) -> None:
        """A raw loop edge, now or ``after_ms`` from now."""
        port = self.ports[p]

        def run() -> None:
            self._at(self._now + after_ms / 1000, lambda: self._edge(port, closed))

        self._script(run)

    def dial(self, p: int, digits: str, *, tone_ms: int = 80, gap_ms: int = 80) -> None:
        """Press DTMF keys; each is reported when its tone ends (§3.4)."""
        port = self.ports[p]
        for d in digits:
            if d not in "0123456789*#ABCD":
                raise ValueError(f"not a DTMF key: {d!r}")

        def run() -> None:
            t = self._now
            for d in digits:
                t += tone_ms / 1000
                self._at(t, functools.partial(self._dtmf_end, port, d, tone_ms))
                t += gap_ms / 1000

        self._script(run)

    def dial_pulse(self, p: int, digits: str, *, break_ms: int = 60, make_ms: int = 40,
                   interdigit_ms: int = 700) -> None:
        """Dial with the hook switch / rotary dial: ``n`` breaks per digit (0 = 10)."""
        port = self.ports[p]
        if not digits.isdigit():
            raise ValueError("pulse dialling knows only 0-9")

        def run() -> None:
            t = self._now
            for d in digits:
                for _ in range(int(d) or 10):
                    self._at(t, lambda: self._edge(port, False))
                    self._at(t + break_ms / 1000, lambda: self._edge(port, True))
                    t += (break_ms + make_ms) / 1000
                t += interdigit_ms / 1000

        self._script(run)

    # =================================================================== faults

    def reboot(self) -> None:
        """Watchdog reset / power glitch: everything is gone, then ``%READY``."""
        self._script(self._boot)

    def drop_next_urc(self, p: int, count: int = 1) -> None:
        """The next ``count`` URCs of port ``p`` are lost on the wire."""
        self._drop[p] = self._drop.get(p, 0) + count

    def send_garbage(self, data: bytes) -> None:
        """Raw bytes to the daemon, outside any response block."""
        self._script(lambda: self._write(data))

    def send_line(self, text: str) -> None:
        """One framed line (``CR LF text CR LF``) to the daemon."""
        self._script(lambda: self._line(text))

    def mute(self, muted: bool = True) -> None:
        """A hung firmware: commands are swallowed without an answer."""
        self._muted = muted

    def fault(self, p: int, kind: str = "SHORT") -> None:
        """A SLIC fault on port ``p``: ``%FAULT``; a ring on it ends with FAULT."""
        port = self.ports[p]

        def run() -> None:
            port.fault = kind
            if port.ringing:
                self._ring_end(port, "FAULT")
            self._urc(port.number, f"%FAULT: {port.number},{kind}")

        self._script(run)

    def clear_fault(self, p: int) -> None:
        self.ports[p].fault = None

    # ============================================================== observation

    def mark(self) -> int:
        """Absolute index of the next command, for ``commands_since``/``wait_command``."""
        return self._commands_trimmed + len(self.commands)

    def commands_since(self, index: int) -> list[str]:
        return [c.text for c in self.commands[max(0, index - self._commands_trimmed):]]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; re-checked on every change of the bridge."""
        if predicate():
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (predicate, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    async def wait_command(self, prefix: str, *, since: int = 0,
                           timeout: float = 5.0) -> Command:
        """The first command at index >= ``since`` that starts with ``prefix``."""

        def find() -> Command | None:
            for cmd in self.commands[max(0, since - self._commands_trimmed):]:
                if cmd.text.startswith(prefix):
                    return cmd
            return None

        await self.wait_for(lambda: find() is not None, timeout)
        found = find()
        assert found is not None
        return found

    def now_ms(self) -> int:
        """Bridge time (ms since the last boot), as in the timestamps."""
        return self._ms(self._clock())

    # ======================================================= agenda and clock

    def _start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._now = self._loop.time()
            self._boot_t = self._now

    def _clock(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def _ms(self, t: float) -> int:
        return max(0, round((t - self._boot_t) * 1000))

    def _at(self, at: float, fn: Callable[[], None]) -> _Event:
        ev = _Event(at, next(self._seq), fn)
        heapq.heappush(self._agenda, ev)
        self._arm()
        return ev

    def _arm(self) -> None:
        if self._loop is None or not self._agenda:
            return
        first = self._agenda[0].at
        if self._timer is not None and self._timer_at <= first:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = first
        self._timer = self._loop.call_at(first, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._advance()
        self._notify()

    def _advance(self) -> None:
        """Run every agenda event due by the real clock, in nominal order."""
        real = self._clock()
        while self._agenda and self._agenda[0].at <= real:
            ev = heapq.heappop(self._agenda)
            if ev.cancelled:
                continue
            self._now = max(self._now, ev.at)
            try:
                ev.fn()
            except Exception:  # a bug in one event must not stop the bridge
                log.exception("bridge simulator event failed")
        self._now = max(self._now, real)
        self._arm()

    def _script(self, fn: Callable[[], None]) -> None:
        self._start()
        self._advance()
        fn()
        self._advance()
        self._notify()

    def _notify(self) -> None:
        for predicate, fut in list(self._waiters):
            if fut.done():
                continue
            try:
                if predicate():
                    fut.set_result(None)
            except Exception as exc:  # a broken predicate fails its own waiter
                fut.set_exception(exc)

    # ================================================================== output

    def _write(self, data: bytes) -> None:
        if self._link is not None and self._link.is_open:
            self._link.write(data)

    def _line(self, text: str) -> None:
        if self._link is not None and self._link.is_open:
            self.sent.append(text)
            self._trim(self.sent)
            self._link.write(b"\r\n" + text.encode("ascii", "replace") + b"\r\n")

    def _trim(self, log_lines: list[str]) -> None:
        if len(log_lines) > self.max_log:
            del log_lines[: len(log_lines) - self.max_log * 9 // 10]

    def _urc(self, port: int | None, text: str, *, stamp: bool = True) -> None:
        if self.urc_mode == 0 and not text.startswith("%READY"):
            return
        if port is not None and self._drop.get(port):
            self._drop[port] -= 1
            self.dropped.append(text)
            self._trim(self.dropped)
            return
        if stamp and self.ts:
            text = f"{text},@{self._ms(self._now)}"
        if self._in_command:
            self._held.append(text)  # §3.1: never inside a response block
        else:
            self._line(text)

    # ================================================================ lifecycle

    def _reset_settings(self) -> None:
        self.echo = self._echo_default
        self.urc_mode = 1
        self.cmee = 1
        self.ts = False
        self.tone_plan = "DE"
        self.selected = 0
        self.cadences: dict[int, tuple[int, ...]] = {
            int(k): v for k, v in CADENCE_PATTERNS.items()
        }
        self.pending_conns: list[tuple[int, int]] = []
        self.conns: list[tuple[int, int]] = []

    def _cancel_all_activity(self, *, silent: bool) -> None:
        for port in self.ports.values():
            for ev in (port._settle, port._expiry, port._pulse_end, port._tone_end):
                if ev is not None:
                    ev.cancel()
            for ev in port._ring_events:
                ev.cancel()
            port._ring_events.clear()
            port._settle = port._expiry = port._pulse_end = port._tone_end = None
            port._break_t0 = None
            port._pulses = 0
            port.ringing = False
            port._clip_pending = None
            port.tone = "OFF"
            port.peer = 0
            port.locked = False
            port.fault = None
            port.dtmf = True
            port.timing = HookTiming()
            # a powered-down bridge re-reads the loop when it boots
            port.off_hook = port.loop_closed
            port._edge_t = self._now
        self._reset_settings()

    def _power_up(self) -> None:
        self._script(self._boot)

    def _boot(self) -> None:
        """Power-up, ATZ or watchdog: state gone, deaf for ``boot_ms``, ``%READY``."""
        self._cancel_all_activity(silent=True)
        if self._executing is not None:
            self._executing.cancel()
            self._executing = None
        self.boots += 1
        self._inbuf.clear()
        self._boot_t = self._now
        self._deaf_until = self._now + self.boot_ms / 1000
        self._at(self._deaf_until, self._ready)

    def _ready(self) -> None:
        self._boot_t = self._now  # timestamps count from here (§3.9.9)
        self._urc(None, f"%READY: {self.fw_version},{self.nports}", stamp=False)

    # ============================================================ hook classifier

    def _edge(self, port: SimPort, closed: bool) -> None:
        if port.loop_closed == closed:
            return
        t = self._now
        if self.urc_mode == 2:
            self._urc(port.number, f"%EDGE: {port.number},{int(closed)},"
                                   f"{round((t - port._edge_t) * 1000)}")
        port.loop_closed = closed
        port._edge_t = t
        timing = port.timing
        if closed:
            port._settle = self._at(t + timing.debounce / 1000,
                                    lambda: self._close_settled(port, t))
            return
        if port._settle is not None:  # the close did not last: contact bounce
            port._settle.cancel()
            port._settle = None
        if port._pulse_end is not None:
            port._pulse_end.cancel()
            port._pulse_end = None
        if not port.off_hook:
            return
        if port._break_t0 is None:
            port._break_t0 = t
            port._expiry = self._at(t + timing.flash_max / 1000,
                                    lambda: self._break_expired(port, t))
        elif port._expiry is None and t - port._break_t0 >= timing.flash_max / 1000:
            self._break_expired(port, port._break_t0)  # bounced across flash_max

    def _close_settled(self, port: SimPort, t_close: float) -> None:
        port._settle = None
        if not port.off_hook:
            port.off_hook = True
            if port.ringing:  # ring-trip: no separate %HOOK (§3.9.1)
                self._urc(port.number, f"%RINGTRIP: {port.number}")
                self._ring_end(port, "TRIP")
                self._complete_pending_conns(port.number)
            else:
                self._urc(port.number, f"%HOOK: {port.number},OFF")
            return
        t0 = port._break_t0
        port._break_t0 = None
        if port._expiry is not None:
            port._expiry.cancel()
            port._expiry = None
        if t0 is None:
            return
        ms = round((t_close - t0) * 1000)
        timing = port.timing
        if ms < timing.debounce:
            return  # glitch
        if ms < timing.flash_min:
            if timing.pulse:
                port._pulses += 1
                port._pulse_end = self._at(t_close + PULSE_DIGIT_GAP_MS / 1000,
                                           lambda: self._pulse_digit(port))
            return
        port._pulses = 0
        self._urc(port.number, f"%FLASH: {port.number},{ms}")

    def _break_expired(self, port: SimPort, t0: float) -> None:
        port._expiry = None
        if port._break_t0 != t0 or port.loop_closed:
            return  # closed in time: the settle classifies it
        port._break_t0 = None
        port._pulses = 0
        port.off_hook = False
        self._stop_tone(port)  # §3.9.12; a connection stays until AT%DISC (§3.9.4)
        self._urc(port.number, f"%HOOK: {port.number},ON")

    def _pulse_digit(self, port: SimPort) -> None:
        port._pulse_end = None
        n, port._pulses = port._pulses, 0
        if 1 <= n <= 10 and port.off_hook:
            self._urc(port.number, f"%PULSE: {port.number},{n % 10}")

    def _dtmf_end(self, port: SimPort, digit: str, ms: int) -> None:
        if port.off_hook and port.loop_closed and port.dtmf and not port.ringing:
            self._urc(port.number, f"%DTMF: {port.number},{digit},{ms}")

    # ==================================================================== rings

    def _start_ring(self, port: SimPort, cadence: int, timeout: int,
                    clip: tuple[str, str] | None) -> None:
        port.ringing = True
        port.cadence = cadence
        port.rings += 1
        port.clip = None
        port._clip_pending = clip
        pattern = self.cadences[cadence]
        start = self._now
        self._ring_step(port, pattern, 0, start)
        if timeout:
            port._ring_events.append(
                self._at(start + timeout, lambda: self._ring_end(port, "TIMEOUT")))

    def _ring_step(self, port: SimPort, pattern: tuple[int, ...], index: int,
                   t: float) -> None:
        """Burst ``index`` of the cadence begins at ``t``; schedules its own end."""
        on = index % 2 == 0
        if self.urc_mode == 2:
            self._urc(port.number, f"%RING: {port.number},{'ON' if on else 'OFF'}")
        if index == 1 and port._clip_pending is not None:
            port.clip, port._clip_pending = port._clip_pending, None  # §3.9.11
        nxt = (index + 1) % len(pattern)
        end = t + pattern[index] / 1000
        port._ring_events = [e for e in port._ring_events if not e.cancelled and e.at > t]
        port._ring_events.append(
            self._at(end, lambda: self._ring_step(port, pattern, nxt, end)))

    def _ring_end(self, port: SimPort, reason: str) -> None:
        if not port.ringing:
            return
        port.ringing = False
        for ev in port._ring_events:
            ev.cancel()
        port._ring_events.clear()
        port._clip_pending = None
        self._urc(port.number, f"%RINGEND: {port.number},{reason}")
        if reason != "TRIP":  # a pending connect dies silently (§3.9.4)
            self.pending_conns = [c for c in self.pending_conns if port.number not in c]

    # ============================================================ connections

    def _connect(self, p1: int, p2: int) -> None:
        a, b = self.ports[p1], self.ports[p2]
        a.peer, b.peer = p2, p1
        self._stop_tone(a)
        self._stop_tone(b)
        self.conns.append((p1, p2))
        self._urc(None, f"%CONN: {p1},{p2},UP")

    def _complete_pending_conns(self, tripped: int) -> None:
        for conn in list(self.pending_conns):
            if tripped not in conn:
                continue
            p1, p2 = conn
            a, b = self.ports[p1], self.ports[p2]
            if a.off_hook and b.off_hook and not a.ringing and not b.ringing:
                self.pending_conns.remove(conn)
                self._connect(p1, p2)

    def _disconnect(self, p: int, *, silent: bool = False) -> None:
        for conn in list(self.conns):
            if p in conn:
                self.conns.remove(conn)
                for q in conn:
                    self.ports[q].peer = 0
                if not silent:
                    self._urc(None, f"%CONN: {conn[0]},{conn[1]},DOWN")
        self.pending_conns = [c for c in self.pending_conns if p not in c]

    def _stop_tone(self, port: SimPort) -> None:
        port.tone = "OFF"
        if port._tone_end is not None:
            port._tone_end.cancel()
            port._tone_end = None

    # ================================================================== input

    def _received(self, data: bytes) -> None:
        self._start()
        self._advance()
        if self._muted or self._clock() < self._deaf_until:
            self._notify()
            return
        self._inbuf += data
        while True:
            cr = self._inbuf.find(b"\r")
            if cr < 0:
                if len(self._inbuf) > 4 * MAX_COMMAND:
                    self._inbuf.clear()  # noise without a terminator
                break
            raw = bytes(self._inbuf[:cr]).replace(b"\n", b"")
            del self._inbuf[: cr + 1]
            if raw.strip():
                self._command_line(raw)
        self._notify()

    def _command_line(self, raw: bytes) -> None:
        text = raw.decode("ascii", "replace")
        if len(text) <= MAX_COMMAND:
            text = text.strip()  # an overlong line stays overlong: _execute refuses it
        if self.echo:
            self._write(raw + b"\r")
        if self._executing is not None:  # §3.9.8: the daemon never does this
            self._answer(text, [], BUSY_CMD, record=True)
            return
        if self.response_delay > 0:
            self._executing = self._at(self._now + self.response_delay,
                                       lambda: self._execute(text))
        else:
            self._execute(text)

    def _execute(self, text: str) -> None:
        self._executing = None
        if len(text) > MAX_COMMAND:
            self._answer(text, [], INVALID_PARAM)
            return
        if text[:2].upper() != "AT":
            return  # V.250: not a command line
        self._in_command = True
        info: list[str] = []
        after: Callable[[], None] | None = None
        try:
            after = self._dispatch(text[2:], info)
            code = 0
        except _AtError as err:
            code = err.code
            info = []
        finally:
            self._in_command = False
        self._answer(text, info, code)
        if after is not None:
            after()

    def _answer(self, text: str, info: list[str], code: int, *, record: bool = True) -> None:
        if record:
            self.commands.append(Command(self._ms(self._now), text, code == 0,
                                         ERROR_NAMES.get(code) if code else None))
            if len(self.commands) > self.max_log:
                cut = len(self.commands) - self.max_log * 9 // 10
                del self.commands[:cut]
                self._commands_trimmed += cut
        block = [*info]
        if code:
            if self.cmee:
                block.append(f"%ERR: {code},{ERROR_NAMES[code]}")
            block.append("ERROR")
        else:
            block.append("OK")
        held, self._held = self._held, []
        self.sent.extend(block)
        self._trim(self.sent)
        # one write: nothing can come between the lines of a response block (§3.1)
        self._write(b"".join(b"\r\n" + line.encode() + b"\r\n" for line in block))
        for urc in held:
            self._line(urc)

    # ================================================================ commands

    def _dispatch(self, body: str, info: list[str]) -> Callable[[], None] | None:
        if not body:
            return None
        args: list[str]
        if body[0] in "%+":
            m = re.fullmatch(r"([%+][A-Za-z]+)(=\?|\?|=(.*))?", body)
            if m is None:
                raise _AtError(INVALID_PARAM)
            name = m.group(1).upper()
            if m.group(2) == "=?":
                form, args = "test", []
            elif m.group(2) == "?":
                form, args = "query", []
            elif m.group(2) is None:
                form, args = "exec", []
            else:
                form, args = "set", _args(m.group(3))
            handler = _EXTENDED.get(name)
            if handler is None:
                raise _AtError(NOT_SUPPORTED)
            if form == "test":
                return None  # "the command exists"
            return handler(self, form, args, info)
        return self._basic(body, info)

    def _basic(self, body: str, info: list[str]) -> Callable[[], None] | None:
        after: Callable[[], None] | None = None
        rest = body.upper()
        while rest:
            m = re.match(r"(E[01]?|V1?|Z0?|&F0?|I0?)", rest)
            if m is None:
                raise _AtError(NOT_SUPPORTED)
            cmd = m.group(1)
            rest = rest[len(cmd):]
            if cmd[0] == "E":
                self.echo = cmd.endswith("1")
            elif cmd[0] == "V" and cmd == "V0":
                raise _AtError(NOT_SUPPORTED)  # numeric result codes (§3.1)
            elif cmd[0] == "Z":
                after = self._boot
            elif cmd.startswith("&F"):
                self._reset_settings()
            elif cmd[0] == "I":
                info.append(f"FXB/1 bridge simulator {self.fw_version}, {self.nports} ports")
        return after

    def _port_arg(self, args: list[str], i: int, *, allow_all: bool = False) -> int:
        value = _int_arg(args, i)
        if value == 0 and allow_all:
            return 0
        if value not in self.ports:
            raise _AtError(INVALID_PORT)
        return value

    def _need(self, form: str, *forms: str) -> None:
        if form not in forms:
            raise _AtError(INVALID_PARAM)

    def _c_ports(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "query")
        info.append("%PORTS: " + ",".join([str(self.nports)] + ["FXS"] * self.nports))

    def _setting(self, attr: str, name: str, allowed: range, form: str, args: list[str],
                 info: list[str]) -> None:
        if form == "query":
            info.append(f"%{name}: {int(getattr(self, attr))}")
            return
        self._need(form, "set")
        if len(args) != 1:
            raise _AtError(INVALID_PARAM)
        value = _int_arg(args, 0)
        if value not in allowed:
            raise _AtError(INVALID_PARAM)
        setattr(self, attr, value if attr == "urc_mode" else bool(value))

    def _c_urc(self, form: str, args: list[str], info: list[str]) -> None:
        self._setting("urc_mode", "URC", range(3), form, args, info)

    def _c_cmee(self, form: str, args: list[str], info: list[str]) -> None:
        self._setting("cmee", "CMEE", range(2), form, args, info)

    def _c_ts(self, form: str, args: list[str], info: list[str]) -> None:
        self._setting("ts", "TS", range(2), form, args, info)

    def _c_vcompat(self, form: str, args: list[str], info: list[str]) -> None:
        if form == "query":
            info.append("%VCOMPAT: 0")
            return
        self._need(form, "set")
        if args != ["0"]:
            raise _AtError(NOT_SUPPORTED)  # the simulator emits no DLE codes

    def _c_hft(self, form: str, args: list[str], info: list[str]) -> None:
        if form == "query":
            for port in self.ports.values():
                t = port.timing
                info.append(f"%HFT: {port.number},{t.debounce},{t.flash_min},"
                            f"{t.flash_max},{int(t.pulse)}")
            return
        self._need(form, "set")
        if len(args) not in (4, 5):
            raise _AtError(INVALID_PARAM)
        p = self._port_arg(args, 0, allow_all=True)
        values = [_int_arg(args, i) for i in range(1, len(args))]
        pulse = bool(values[3]) if len(values) == 4 else False
        if len(values) == 4 and values[3] not in (0, 1):
            raise _AtError(INVALID_PARAM)
        try:
            timing = HookTiming(values[0], values[1], values[2], pulse)
        except Exception:
            raise _AtError(INVALID_PARAM) from None
        for port in self.ports.values():
            if p in (0, port.number):
                port.timing = timing

    def _c_hook(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "query")
        for port in self.ports.values():
            info.append(f"%HOOK: {port.number},{'OFF' if port.off_hook else 'ON'}")

    def _c_state(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "query")
        for port in self.ports.values():
            info.append(f"%STATE: {port.number},{'OFF' if port.off_hook else 'ON'},"
                        f"{port.activity},{port.peer}")

    def _c_ring(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "set")
        if not 1 <= len(args) <= 5:
            raise _AtError(INVALID_PARAM)
        port = self.ports[self._port_arg(args, 0)]
        cadence = _int_arg(args, 1) if len(args) > 1 and args[1] else 0
        timeout = _int_arg(args, 2) if len(args) > 2 and args[2] else 30
        number = _str_arg(args, 3) if len(args) > 3 else ""
        name = _str_arg(args, 4) if len(args) > 4 else ""
        if cadence not in self.cadences or timeout > 3600:
            raise _AtError(INVALID_PARAM)
        if not _CLIP_NUMBER.fullmatch(number) or len(name) > 32:
            raise _AtError(INVALID_PARAM)
        if port.fault:
            raise _AtError(HW_FAULT)
        if port.ringing:
            raise _AtError(PORT_RINGING)
        if port.off_hook:
            raise _AtError(PORT_OFFHOOK)
        clip = (number, name) if number or name else None
        self._start_ring(port, cadence, timeout, clip)

    def _c_ringstop(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "set")
        port = self.ports[self._port_arg(args, 0)]
        if len(args) != 1:
            raise _AtError(INVALID_PARAM)
        self._ring_end(port, "STOPPED")  # held: sent after the OK (§3.9.3)

    def _c_cad(self, form: str, args: list[str], info: list[str]) -> None:
        if form == "query":
            for cid, pattern in sorted(self.cadences.items()):
                info.append(f'%CAD: {cid},"{",".join(map(str, pattern))}"')
            return
        self._need(form, "set")
        if len(args) != 2:
            raise _AtError(INVALID_PARAM)
        cid = _int_arg(args, 0)
        steps = _str_arg(args, 1).split(",")
        try:
            pattern = tuple(int(s) for s in steps)
        except ValueError:
            raise _AtError(INVALID_PARAM) from None
        if not 0 <= cid <= 15 or len(pattern) % 2 or not pattern or len(pattern) > 16:
            raise _AtError(INVALID_PARAM)
        if any(not 10 <= ms <= 10_000 for ms in pattern):
            raise _AtError(INVALID_PARAM)
        self.cadences[cid] = pattern

    def _c_tplan(self, form: str, args: list[str], info: list[str]) -> None:
        if form == "query":
            info.append(f"%TPLAN: {self.tone_plan}")
            return
        self._need(form, "set")
        if len(args) != 1 or args[0].upper() not in TONE_PLANS:
            raise _AtError(INVALID_PARAM)
        self.tone_plan = args[0].upper()

    def _c_tone(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "set")
        if len(args) not in (2, 3):
            raise _AtError(INVALID_PARAM)
        port = self.ports[self._port_arg(args, 0)]
        name = args[1].upper()
        if name not in _TONES:
            raise _AtError(INVALID_PARAM)
        ms = _int_arg(args, 2) if len(args) == 3 else 0
        if len(args) == 3 and not 1 <= ms <= 600_000:
            raise _AtError(INVALID_PARAM)
        if name != "OFF" and not port.off_hook:
            raise _AtError(PORT_ONHOOK)
        self._stop_tone(port)
        port.tone = name
        if ms and name != "OFF":
            def end() -> None:
                port._tone_end = None
                port.tone = "OFF"  # a timed tone ends without a URC (§3.9.12)

            port._tone_end = self._at(self._now + ms / 1000, end)

    def _c_sel(self, form: str, args: list[str], info: list[str]) -> None:
        if form == "query":
            info.append(f"%SEL: {self.selected}")
            return
        self._need(form, "set")
        self.selected = self._port_arg(args, 0)

    def _c_vts(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "set")
        if not self.selected:
            raise _AtError(NOT_SELECTED)
        if not args:
            raise _AtError(INVALID_PARAM)

    def _c_vtd(self, form: str, args: list[str], info: list[str]) -> None:
        if form == "query":
            info.append("+VTD: 10")
            return
        self._need(form, "set")
        _int_arg(args, 0)

    def _c_dtmf(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "set")
        if len(args) != 2 or args[1] not in ("0", "1"):
            raise _AtError(INVALID_PARAM)
        self.ports[self._port_arg(args, 0)].dtmf = args[1] == "1"

    def _c_conn(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "set")
        if len(args) != 2:
            raise _AtError(INVALID_PARAM)
        p1, p2 = self._port_arg(args, 0), self._port_arg(args, 1)
        if p1 == p2:
            raise _AtError(INVALID_PARAM)
        a, b = self.ports[p1], self.ports[p2]
        busy = {q for conn in self.conns + self.pending_conns for q in conn}
        if p1 in busy or p2 in busy:
            raise _AtError(PORT_IN_USE)
        for side in (a, b):
            if not side.off_hook and not side.ringing:
                raise _AtError(PORT_ONHOOK)
        if a.ringing or b.ringing:
            self.pending_conns.append((p1, p2))  # completes on ring-trip (§3.9.4)
        else:
            self._connect(p1, p2)

    def _c_disc(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "set")
        if len(args) != 1:
            raise _AtError(INVALID_PARAM)
        self._disconnect(self._port_arg(args, 0))

    def _c_link(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "query")
        for p1, p2 in self.conns:
            info.append(f"%LINK: {p1},{p2}")

    def _c_cpc(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "set")
        if len(args) != 2:
            raise _AtError(INVALID_PARAM)
        self._port_arg(args, 0)
        _int_arg(args, 1)

    def _c_lock(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "set")
        if len(args) != 2 or args[1] not in ("0", "1"):
            raise _AtError(INVALID_PARAM)
        self.ports[self._port_arg(args, 0)].locked = args[1] == "1"

    def _c_reset(self, form: str, args: list[str], info: list[str]) -> None:
        self._need(form, "set")
        if len(args) != 1:
            raise _AtError(INVALID_PARAM)
        p = self._port_arg(args, 0, allow_all=True)
        for port in self.ports.values():
            if p not in (0, port.number):
                continue
            # §3.9.2: that port's state only, no %READY and no URCs for what it drops
            port.ringing = False
            for ev in port._ring_events:
                ev.cancel()
            port._ring_events.clear()
            self._stop_tone(port)
            self._disconnect(port.number, silent=True)
            port.locked = False
            port.fault = None
            port.dtmf = True
            port.timing = HookTiming()

    def _ident_line(self, name: str) -> str:
        return {
            "+GMI": "ccbs-isdn",
            "+GMM": f"FXB/1 bridge simulator, {self.nports} FXS",
            "+GMR": self.fw_version,
            "+GSN": f"SIM{self.nports:04d}",
        }[name]


def _ident(name: str) -> Callable[[BridgeSim, str, list[str], list[str]], None]:
    def handler(sim: BridgeSim, form: str, args: list[str], info: list[str]) -> None:
        sim._need(form, "exec")
        info.append(sim._ident_line(name))

    return handler


def _args(text: str) -> list[str]:
    """Comma-separated arguments; quotes protect commas and are kept."""
    out: list[str] = []
    start, quoted = 0, False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append(text[start:i].strip())
            start = i + 1
    if quoted:
        raise _AtError(INVALID_PARAM)
    out.append(text[start:].strip())
    return out


def _int_arg(args: list[str], i: int) -> int:
    if i >= len(args) or not args[i].isdigit() or len(args[i]) > 7:
        raise _AtError(INVALID_PARAM)
    return int(args[i])


def _str_arg(args: list[str], i: int) -> str:
    text = args[i]
    if len(text) < 2 or text[0] != '"' or text[-1] != '"' or '"' in text[1:-1]:
        raise _AtError(INVALID_PARAM)  # strings are quoted (§3.9.10)
    return text[1:-1]


_Handler = Callable[[BridgeSim, str, list[str], list[str]], Any]

#: The extended command table (FXB/1 §3.3): name -> handler(sim, form, args, info).
_EXTENDED: dict[str, _Handler] = {
    "%PORTS": BridgeSim._c_ports,
    "%URC": BridgeSim._c_urc,
    "%CMEE": BridgeSim._c_cmee,
    "%TS": BridgeSim._c_ts,
    "%VCOMPAT": BridgeSim._c_vcompat,
    "%HFT": BridgeSim._c_hft,
    "%HOOK": BridgeSim._c_hook,
    "%STATE": BridgeSim._c_state,
    "%RING": BridgeSim._c_ring,
    "%RINGSTOP": BridgeSim._c_ringstop,
    "%CAD": BridgeSim._c_cad,
    "%TPLAN": BridgeSim._c_tplan,
    "%TONE": BridgeSim._c_tone,
    "%SEL": BridgeSim._c_sel,
    "+VTS": BridgeSim._c_vts,
    "+VTD": BridgeSim._c_vtd,
    "%DTMF": BridgeSim._c_dtmf,
    "%CONN": BridgeSim._c_conn,
    "%DISC": BridgeSim._c_disc,
    "%LINK": BridgeSim._c_link,
    "%CPC": BridgeSim._c_cpc,
    "%LOCK": BridgeSim._c_lock,
    "%RESET": BridgeSim._c_reset,
    "+GMI": _ident("+GMI"),
    "+GMM": _ident("+GMM"),
    "+GMR": _ident("+GMR"),
    "+GSN": _ident("+GSN"),
}


# =================================================================== transports


class _PtyLink:
    """The bridge end of a pty pair; the slave is reachable through ``path``."""

    def __init__(self, sim: BridgeSim, path: Path) -> None:
        self.sim = sim
        self.path = path
        self.master: int | None = None
        self.slave: int | None = None
        self._out = bytearray()
        self._writing = False

    @property
    def is_open(self) -> bool:
        return self.master is not None

    def open(self) -> None:
        master, slave = os.openpty()
        # raw before anyone opens it: no echo, no CR/LF translation on the way in
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.master, self.slave = master, slave
        tmp = self.path.with_name(self.path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.path)  # atomic re-point on replug
        asyncio.get_running_loop().add_reader(master, self._readable)

    def _readable(self) -> None:
        assert self.master is not None
        try:
            data = os.read(self.master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return  # nobody has the slave open at this instant
            raise
        if data:
            self.sim._received(data)

    def write(self, data: bytes) -> None:
        if self.master is None:
            return
        self._out += data
        if len(self._out) > 65536:  # nobody reads: the UART FIFO overflows
            del self._out[: len(self._out) - 65536]
        self._flush()

    def _flush(self) -> None:
        if self.master is None:
            return
        while self._out:
            try:
                n = os.write(self.master, self._out)
            except BlockingIOError:
                break
            except OSError:
                self._out.clear()
                break
            del self._out[:n]
        loop = asyncio.get_running_loop()
        if self._out and not self._writing:
            loop.add_writer(self.master, self._flush)
            self._writing = True
        elif not self._out and self._writing:
            loop.remove_writer(self.master)
            self._writing = False

    async def close(self, *, unplug: bool) -> None:
        if self.master is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.master)
        if self._writing:
            loop.remove_writer(self.master)
            self._writing = False
        self._out.clear()
        os.close(self.master)
        if self.slave is not None:
            os.close(self.slave)
        self.master = self.slave = None
        if unplug:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # the device node disappears


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, link: _TcpLink) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.link._attach(self)

    def data_received(self, data: bytes) -> None:
        if self.link.client is self:
            self.link.sim._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.link.client is self:
            self.link.client = None


class _TcpLink:
    """The bridge behind ``socket://``: one client at a time, the newest wins."""

    def __init__(self, sim: BridgeSim, host: str, port: int) -> None:
        self.sim = sim
        self.host = host
        self.port = port
        self.server: asyncio.Server | None = None
        self.client: _TcpProtocol | None = None

    @property
    def is_open(self) -> bool:
        return self.server is not None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _TcpProtocol(self), self.host,
                                               self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    def _attach(self, proto: _TcpProtocol) -> None:
        if self.client is not None and self.client.transport is not None:
            self.client.transport.close()
        self.client = proto

    def write(self, data: bytes) -> None:
        if self.client is not None and self.client.transport is not None:
            self.client.transport.write(data)

    async def close(self, *, unplug: bool) -> None:
        if self.client is not None and self.client.transport is not None:
            self.client.transport.abort()
        self.client = None
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


# ========================================================================= main


async def _serve(args: Any) -> None:
    sim = BridgeSim(args.ports)
    if args.tcp is not None:
        url = await sim.serve_tcp(port=args.tcp)
    else:
        url = await sim.open_pty(args.pty)
    print(f"FXB/1 bridge simulator with {args.ports} ports at {url}", flush=True)
    seen = 0

    def more(count: int) -> Callable[[], bool]:
        return lambda: len(sim.commands) > count

    while True:
        await sim.wait_for(more(seen), timeout=3600)
        for cmd in sim.commands[seen:]:
            print(f"{cmd.t_ms:>9} ms  {cmd.text}  -> {'OK' if cmd.ok else cmd.error}",
                  flush=True)
        seen = len(sim.commands)


def main(argv: list[str] | None = None) -> None:
    """``python -m ccbs_isdn.drivers.sim.bridge --pty /tmp/fxs0``: a bridge to poke
    at with miniterm (``python -m serial.tools.miniterm /tmp/fxs0``) or the daemon."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", help="symlink to create for the pty slave")
    where.add_argument("--tcp", type=int, help="TCP port on 127.0.0.1 (0 = any)")
    parser.add_argument("--ports", type=int, default=4)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
