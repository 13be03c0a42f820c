"""Reconciliation poll policy for the hook state of FXS ports (``docs/analog-bridge.md`` §5).

Owns *when* the driver asks ``AT%HOOK?``. Hook facts normally arrive as URCs; the poll
only catches a lost URC. One ``AT%HOOK?`` answers for every port of the bridge, so the
interval is the shortest one any port needs:

* every ``active`` s (5) while any port is the origin or target of an active request
  (``set_watched``),
* every ``idle`` s (30) otherwise,
* immediately after ``%READY``, after a reconnect and right before a recall
  (``poll_now``); such an urgent poll is satisfied only by a poll that *started* at or
  after the request (a poll already on the wire may predate the fact we want).

Pure: no I/O, no clock; times are seconds on the caller's monotonic clock.
"""

from __future__ import annotations

from collections.abc import Iterable

from ccbs_isdn.errors import ConfigError


class PollPolicy:
    __slots__ = ("active", "idle", "_watched", "_last_start", "_urgent_since", "_reasons")

    def __init__(self, active: float = 5.0, idle: float = 30.0) -> None:
        if not 0 < active <= idle:
            raise ConfigError(
                f"poll intervals active={active} idle={idle}",
                key="fxs.poll", expected="0 < active <= idle (seconds)",
            )
        self.active = active
        self.idle = idle
        self._watched: frozenset[int] = frozenset()
        self._last_start: float | None = None
        self._urgent_since: float | None = None
        self._reasons: list[str] = []

    # ----------------------------------------------------------- inputs

    def set_watched(self, ports: Iterable[int]) -> None:
        """The ports that are origin or target of an active request, all of them."""
        self._watched = frozenset(ports)

    @property
    def watched(self) -> frozenset[int]:
        return self._watched

    def poll_now(self, now: float, reason: str = "") -> None:
        """Ask for a poll as soon as possible (``%READY``, reconnect, before a recall)."""
        if self._urgent_since is None:
            self._urgent_since = now
        if reason:
            self._reasons.append(reason)

    def polled(self, started: float) -> None:
        """A poll that was sent at ``started`` has been answered."""
        if self._last_start is None or started > self._last_start:
            self._last_start = started
        if self._urgent_since is not None and started >= self._urgent_since:
            self._urgent_since = None
            self._reasons.clear()

    def forget(self) -> None:
        """The link went down: the next poll after it comes back is urgent anyway."""
        self._last_start = None

    # ---------------------------------------------------------- queries

    def interval(self) -> float:
        return self.active if self._watched else self.idle

    def next_poll(self, now: float) -> float:
        """Absolute time of the next poll (``<= now`` means: poll now)."""
        if self._urgent_since is not None or self._last_start is None:
            return now
        return self._last_start + self.interval()

    def due(self, now: float) -> bool:
        return self.next_poll(now) <= now

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why an urgent poll is pending (for logs)."""
        return tuple(self._reasons)
