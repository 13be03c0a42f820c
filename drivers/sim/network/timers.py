"""Timers of the simulated exchange: the ETSI values (``NetworkTimers``) and a queue.

Owns the timer *values* (EN 300 359-1 / EN 301 065-1 timers with libpri's defaults, the
few Q.931 call-control timers the exchange needs, and the simulator's own policies) and a
deterministic deadline queue. It never reads a clock: deadlines are absolute numbers on
whatever time axis the caller passes in as ``now``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True, slots=True)
class NetworkTimers:
    """Timer values of the network side, in seconds.

    CC timers (EN 300 359-1 §… / EN 301 065-1, defaults as libpri ``pri.c`` — the
    standard's ranges are [unverified], see etsi-ccbs.md §4):

    * ``t_retention`` — CallLinkageID kept after the failed call is cleared; expiry →
      EraseCallLinkageID.
    * ``t_ccbs1`` — wait for answers to CCBSStatusRequest; 3 silent rounds in a row →
      CCBSErase(normal-unspecified).
    * ``t_ccbs2`` / ``t_ccnr2`` — service duration of a PTMP request; expiry →
      CCBSErase(t-CCBS2-timeout).
    * ``t_ccbs3`` — wait for the recall (CCBSCall) after CCBSRemoteUserFree; expiry →
      CCBSErase(t-CCBS3-timeout). Also bounds the wait for CCBS-T-Call on PTP.
    * ``t_ccbs5`` / ``t_ccnr5`` — service duration of a CCBS-T / CCNR-T request on a
      point-to-point access; expiry → the network clears the CC connection.
    * ``t_status`` — wait for answers to a StatusRequest (ETS 300 196-1 annex D).

    Q.931 call control (ETS 300 102-1 §9.1 names): ``t301`` (alerting, no answer → the
    network clears with cause #19; it is also what makes CCNR meaningful), ``t303``
    (SETUP to an access unanswered → cause #18 toward the caller), ``t310`` (CALL
    PROCEEDING from the called access but neither ALERTING nor CONNECT → cause #102),
    ``t305`` (DISCONNECT sent, no RELEASE), ``t308`` (RELEASE sent, no RELEASE COMPLETE).

    Simulator policy, not a standard timer: ``t_destination_poll`` — how often the
    network asks one of our MSNs (with StatusRequest) whether it became free while CC
    requests wait for it.
    """

    t_retention: float = 30.0
    t_ccbs1: float = 4.0
    t_ccbs2: float = 45 * 60.0
    t_ccnr2: float = 180 * 60.0
    t_ccbs3: float = 20.0
    t_ccbs5: float = 60 * 60.0
    t_ccnr5: float = 195 * 60.0
    t_status: float = 4.0
    t301: float = 180.0
    t303: float = 4.0
    t310: float = 10.0
    t305: float = 30.0
    t308: float = 4.0
    t_destination_poll: float = 10.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not value > 0:
                raise ValueError(f"NetworkTimers.{f.name} must be > 0 seconds, got {value!r}")

    def scaled(self, factor: float) -> NetworkTimers:
        """Every timer multiplied by *factor* (``0.001`` turns 45 min into 2.7 s)."""
        if not factor > 0:
            raise ValueError(f"scale factor must be > 0, got {factor!r}")
        return replace(self, **{f.name: getattr(self, f.name) * factor for f in fields(self)})


class Timer:
    """One armed timer. ``cancel()`` is idempotent; a fired timer is spent."""

    __slots__ = ("deadline", "name", "callback", "active", "_seq")

    def __init__(
        self, deadline: float, seq: int, name: str, callback: Callable[[float], None]
    ) -> None:
        self.deadline = deadline
        self.name = name
        self.callback = callback
        self.active = True
        self._seq = seq

    def cancel(self) -> None:
        self.active = False

    def __repr__(self) -> str:
        state = "armed" if self.active else "off"
        return f"Timer({self.name} @{self.deadline:.3f} {state})"


class TimerQueue:
    """Deadline queue with lazy cancellation.

    Ties are broken by the order the timers were started, so the same inputs always
    fire the same callbacks in the same order (the exchange must be deterministic).
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = 0

    def start(self, deadline: float, name: str, callback: Callable[[float], None]) -> Timer:
        self._seq += 1
        timer = Timer(deadline, self._seq, name, callback)
        heapq.heappush(self._heap, (deadline, self._seq, timer))
        return timer

    def _drop_cancelled(self) -> None:
        while self._heap and not self._heap[0][2].active:
            heapq.heappop(self._heap)

    def next_deadline(self) -> float | None:
        self._drop_cancelled()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> Timer | None:
        """The earliest active timer whose deadline is ``<= now``, now spent; or None."""
        self._drop_cancelled()
        if not self._heap or self._heap[0][0] > now:
            return None
        _, _, timer = heapq.heappop(self._heap)
        timer.active = False
        return timer

    def __len__(self) -> int:
        return sum(1 for _, _, t in self._heap if t.active)
