"""The one timer of ccbsd: a single ``loop.call_at`` for ``engine.next_deadline()``.

After the aioquic pattern: the pure engine reports its next deadline; the runtime
re-arms exactly one asyncio timer after every input, and when it fires hands the
engine ``now``. Deadlines are in the daemon's time (``runtime/clock.py``: POSIX
seconds, because requests and their deadlines survive a reboot in the store, advancing
at the rate of elapsed time, so a step of the wall clock neither fires a timer early
nor holds it). The timer converts a deadline to the loop's monotonic clock when
arming and re-checks the clock when it fires (if it is early — the ``MAX_SLEEP`` cap,
or a plain wall clock given by a test — it simply re-arms). It tells a
``DaemonClock`` whether a deadline is armed: only without one may the clock
re-anchor to a wall clock that jumped.

Owns only the timer. Must not call the engine itself: ``on_due(now)`` does that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ccbs_isdn.runtime.clock import DaemonClock

#: never arm further ahead than this: a clock that drifts from the loop's (a suspend
#: counted by CLOCK_BOOTTIME, or a plain wall clock stepping) is re-read within it
MAX_SLEEP = 300.0


class Scheduler:
    def __init__(
        self,
        on_due: Callable[[float], None],
        *,
        clock: Callable[[], float] = time.time,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._on_due = on_due
        self._clock = clock
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None
        self.deadline: float | None = None
        self.fired = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def arm(self, deadline: float | None) -> None:
        """(Re-)arm for *deadline* (daemon time), or disarm with None."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.deadline = deadline
        if isinstance(self._clock, DaemonClock):
            self._clock.timers_pending(deadline is not None)
        if deadline is None:
            return
        delay = min(max(0.0, deadline - self._clock()), MAX_SLEEP)
        self._handle = self.loop.call_at(self.loop.time() + delay, self._fire)

    def cancel(self) -> None:
        self.arm(None)

    def _fire(self) -> None:
        self._handle = None
        deadline = self.deadline
        now = self._clock()
        if deadline is None:
            return
        if now < deadline:
            self.arm(deadline)  # early (the MAX_SLEEP cap, a stepped test clock): wait on
            return
        self.fired += 1
        self._on_due(now)
