"""The daemon's clock: wall time that advances at the rate of elapsed time.

Owns the one ``now`` that ccbsd hands the engine (and with it every deadline the
scheduler arms and every timestamp the store keeps). It is the wall clock read once at
start (the *anchor*) plus the elapsed time since then, read from a clock that is never
stepped (``CLOCK_BOOTTIME``: monotonic, and it counts a suspend too). Why: request
lifetimes and quiet hours are wall-clock matters that must survive a restart, so the
engine's times are POSIX seconds; but a guard of 2 s must last 2 s even when NTP,
an operator's ``date -s`` or a box without an RTC syncing its clock after boot steps
the wall clock by an hour (a forward step would fire every timer due within the hour
at once, a backward one would hold them all an hour).

So while a timer is pending this clock does *not* follow a step of the wall clock: it
notices it (the wall clock and this clock differ by more than ``JUMP_THRESHOLD``),
logs it once and keeps counting elapsed time. It re-anchors — deliberately, and says
so — as soon as no engine timer is pending (the scheduler tells it with
``timers_pending(False)``), because then no deadline can be moved by the step; and a
restart anchors afresh, so deadlines persisted in the store stay wall-clock across
restarts (a request whose wall-clock lifetime ran out while ccbsd was down ends at
start). Until then ``skew`` (wall minus this clock) says how far apart they are; the
daemon shows it in ``ccbsctl status``.

Test hook (never set in production): ``CCBS_TEST_WALL_OFFSET_FILE`` names a file
holding a number of seconds added to the wall clock, re-read when it changes — a
running daemon sees its wall clock jump when a test writes the file.

Must not arm timers or call the engine (the scheduler does), nor touch asyncio.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from ccbs_isdn.runtime.logging import kv

log = logging.getLogger(__name__)

#: a difference between the wall clock and this clock beyond this is a jump (seconds);
#: NTP slews small errors (both clocks follow the slew) and steps only large ones
JUMP_THRESHOLD = 2.0
#: below this a re-anchoring is not worth a log line (seconds)
REANCHOR_QUIET = 0.05
#: environment variable of the test hook (see the module docstring)
WALL_OFFSET_ENV = "CCBS_TEST_WALL_OFFSET_FILE"


def elapsed_clock() -> Callable[[], float]:
    """Seconds from a clock that is never stepped: CLOCK_BOOTTIME where the system has
    it (it keeps counting while suspended), else ``time.monotonic``."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return time.monotonic
    try:
        time.clock_gettime(boottime)
    except OSError:
        return time.monotonic
    return lambda: time.clock_gettime(boottime)


class WallOffsetFile:
    """The test hook: ``time.time()`` plus the number of seconds in ``path`` (0 while
    the file is missing or does not hold a number; re-read when its mtime changes)."""

    def __init__(self, path: str, wall: Callable[[], float] = time.time) -> None:
        self.path = path
        self._wall = wall
        self._stamp: tuple[int, int] | None = None
        self.offset = 0.0

    def __call__(self) -> float:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            self._stamp = stamp
            self.offset = self._read() if stamp is not None else 0.0
        return self._wall() + self.offset

    def _read(self) -> float:
        try:
            with open(self.path, encoding="ascii") as f:
                text = f.read().strip()
            return float(text) if text else 0.0
        except (OSError, ValueError, UnicodeDecodeError):
            log.warning("test wall-clock offset file unreadable; offset 0",
                        extra=kv(path=self.path))
            return 0.0


class DaemonClock:
    """``clock()`` → daemon time (POSIX seconds). See the module docstring.

    ``wall`` and ``elapsed`` are injectable for tests; ``elapsed`` must never step."""

    def __init__(self, *, wall: Callable[[], float] = time.time,
                 elapsed: Callable[[], float] | None = None,
                 threshold: float = JUMP_THRESHOLD) -> None:
        self._wall = wall
        self._elapsed = elapsed if elapsed is not None else elapsed_clock()
        self.threshold = threshold
        self._anchor_wall = wall()
        self._anchor_elapsed = self._started = self._elapsed()
        self._pending = False
        self._reported = 0.0  # the skew last logged as a jump
        self.skew = 0.0  # wall clock minus daemon time, as last seen
        self.jumps = 0  # wall-clock jumps noticed
        self.reanchors = 0  # deliberate re-anchorings (after a jump)

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> DaemonClock:
        """The daemon's clock; with the test hook if ``CCBS_TEST_WALL_OFFSET_FILE`` is
        set."""
        env = os.environ if environ is None else environ
        path = env.get(WALL_OFFSET_ENV, "")
        if path:
            log.warning("test hook: wall clock offset from a file", extra=kv(path=path))
            return cls(wall=WallOffsetFile(path))
        return cls()

    def __call__(self) -> float:
        wall = self._wall()
        now = self._anchor_wall + (self._elapsed() - self._anchor_elapsed)
        skew = wall - now
        if not self._pending and abs(skew) > REANCHOR_QUIET:
            return self._reanchor(wall, skew)
        self.skew = skew
        if abs(skew - self._reported) > self.threshold:
            self.jumps += 1
            self._reported = skew
            log.warning("wall clock jumped; timers keep counting elapsed time, daemon "
                        "time follows the wall clock once no timer is pending",
                        extra=kv(skew=round(skew, 3)))
        return now

    def uptime(self) -> float:
        """Seconds since this clock was made (not moved by any re-anchoring)."""
        return self._elapsed() - self._started

    def timers_pending(self, pending: bool) -> None:
        """The scheduler says whether an engine deadline is armed. Without one a jump
        can move no deadline: the next reading re-anchors."""
        self._pending = pending

    @property
    def pending(self) -> bool:
        return self._pending

    def _reanchor(self, wall: float, skew: float) -> float:
        noteworthy = abs(skew) > self.threshold or abs(self._reported) > self.threshold
        self._anchor_wall = wall
        self._anchor_elapsed = self._elapsed()
        self.skew = 0.0
        self._reported = 0.0
        if noteworthy:
            self.reanchors += 1
            log.warning("daemon time re-anchored to the wall clock (no timer pending)",
                        extra=kv(step=round(skew, 3)))
        return wall


__all__ = ["JUMP_THRESHOLD", "WALL_OFFSET_ENV", "DaemonClock", "WallOffsetFile",
           "elapsed_clock"]
