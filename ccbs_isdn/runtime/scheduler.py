"""The one timer of ccbsd: a single ``loop.call_at`` for ``engine.next_deadline()``.

After the aioquic pattern: the pure engine reports its next deadline; the runtime
re-arms exactly one asyncio timer after every input, and when it fires hands the
engine ``now``. Deadlines are wall-clock seconds (``time.time()``), because requests
and their deadlines survive a reboot in the store; the timer converts them to the
loop's monotonic clock when arming and re-checks the wall clock when it fires (an NTP
step may make it early: then it simply re-arms).

Owns only the timer. Must not call the engine itself: ``on_due(now)`` does that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

#: never arm further ahead than this: a later wall-clock step is noticed within it
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
        """(Re-)arm for *deadline* (wall clock), or disarm with None."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.deadline = deadline
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
            self.arm(deadline)  # early (clock step or the MAX_SLEEP cap): wait on
            return
        self.fired += 1
        self._on_due(now)
