"""CCBS policy: limits, allow/deny rules, quiet hours, recall mode, timers.

This module owns the frozen ``Policy`` the configuration code builds (and rebuilds on
reload) and the pure decisions derived from it: may this caller ask, may this target
be watched, is it quiet time for this caller (from ``now``, never from a clock), how
long does a request live. Refusals carry a stable reason slug and a sentence a user
can read. It must not read files or the clock.

Timer defaults are libpri's (etsi-ccbs.md §4; EN 300 359-1 / EN 301 065-1 ranges were
not available — every timer is configurable) plus the product timers of product.md.
Which timers the user-A engine itself runs:

* T-ACTIVATE (answer to CCBSRequest / CC-T request), T-INTERROGATE (answer to the
  reconciliation CCBSInterrogate), T-RETENTION (how long an offer can be taken up);
* local supervision on the A side (libpri's watchdog, etsi-ccbs.md §4): T-CCBS2 /
  T-CCNR2 on PTMP, T-CCBS6 / T-CCNR6 on PTP;
* the product timers: activation window, guard, re-check, A/B answer, recall retry,
  redial interval, lifetimes.

T-DEACTIVATE, T-CCBS1, T-CCBS3, T-CCBS4, T-CCBS5/T-CCNR5 and T-STATUS run on the
network side (the simulator uses the same defaults); they are kept here so one
``[timers]`` section describes every timer of the standard.
"""

from __future__ import annotations

import datetime as dt
import enum
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType

from ccbs_isdn.errors import ConfigError
from ccbs_isdn.isdn import CcKind


@dataclass(frozen=True, slots=True)
class Timers:
    """Every timer, in seconds."""

    # EN 300 359-1 / EN 301 065-1 (libpri defaults, etsi-ccbs.md §4)
    t_retention: float = 30.0
    t_activate: float = 10.0
    t_deactivate: float = 4.0
    t_interrogate: float = 4.0
    t_ccbs1: float = 4.0
    t_ccbs2: float = 45 * 60.0
    t_ccnr2: float = 180 * 60.0
    t_ccbs3: float = 20.0
    t_ccbs4: float = 5.0
    t_ccbs5: float = 60 * 60.0
    t_ccnr5: float = 195 * 60.0
    t_ccbs6: float = 60 * 60.0
    t_ccnr6: float = 195 * 60.0
    t_status: float = 4.0
    # product timers (product.md)
    activation_window: float = 20.0  # after a busy local call
    guard: float = 2.0  # after B goes on-hook, before the re-check
    recheck: float = 3.0  # how long to wait for the re-check poll
    a_answer: float = 20.0  # A must answer the recall ring within this
    b_answer: float = 30.0  # B must answer (local recall) within this
    recall_retry: float = 60.0  # pause before a missed recall is tried again
    redial_interval: float = 60.0  # redial fallback: probe B this often
    lifetime_ccbs: float = 45 * 60.0
    lifetime_ccnr: float = 180 * 60.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or value <= 0:
                raise ConfigError(
                    f"timer {f.name} must be a positive number of seconds",
                    key=f"timers.{f.name}",
                    expected="a number > 0",
                )

    def scaled(self, factor: float) -> Timers:
        """All timers multiplied by ``factor`` (tests and the demo run fast)."""
        return replace(self, **{f.name: getattr(self, f.name) * factor for f in fields(self)})


class CallerRecallMode(enum.Enum):
    """How a caller wants to be recalled (not ETSI's RecallMode)."""

    AUTO = "auto"  # ring A, then call B
    NOTIFY = "notify"  # send a notification; A's own call to B is the recall


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window (local time of ``Policy.tz``); ``start > end`` wraps midnight."""

    start: dt.time
    end: dt.time

    def contains(self, moment: dt.time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def end_after(self, now: dt.datetime) -> dt.datetime:
        """The end of the window that contains ``now``."""
        day = now.date()
        if self.start > self.end and now.time() >= self.start:
            day = day + dt.timedelta(days=1)
        return dt.datetime.combine(day, self.end, tzinfo=now.tzinfo)


@dataclass(frozen=True, slots=True)
class CallerPolicy:
    """Per-caller overrides (None / empty = use the global setting)."""

    recall_mode: CallerRecallMode | None = None
    quiet_hours: tuple[QuietHours, ...] | None = None
    max_requests: int | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything the engine decides by. Built by config code; replaced on reload."""

    max_per_caller: int = 5
    max_per_callee: int = 5  # waiting per callee, served FIFO
    max_global: int = 1000
    allow_callers: tuple[str, ...] = ()  # fnmatch patterns; empty = everybody
    deny_callers: tuple[str, ...] = ()
    allow_targets: tuple[str, ...] = ()
    deny_targets: tuple[str, ...] = ()
    opt_out: frozenset[str] = frozenset()  # callees that must not be watched
    recall_mode: CallerRecallMode = CallerRecallMode.AUTO
    quiet_hours: tuple[QuietHours, ...] = ()
    callers: Mapping[str, CallerPolicy] = field(default_factory=dict)
    recall_retries: int = 2  # a missed recall is tried again this many times
    redial_fallback: bool = False
    recall_clip_name: str = "Rueckruf"  # CLIP name shown with B's number on a recall
    tz: dt.tzinfo = dt.UTC
    timers: Timers = field(default_factory=Timers)

    def __post_init__(self) -> None:
        for name in ("max_per_caller", "max_per_callee", "max_global"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1", key=f"limits.{name}")
        if self.recall_retries < 0:
            raise ConfigError("recall_retries must not be negative", key="policy.recall_retries")
        object.__setattr__(self, "callers", MappingProxyType(dict(self.callers)))

    # ------------------------------------------------------------- who may ask

    def check_caller(self, caller: str) -> Refusal | None:
        if _matches(caller, self.deny_callers) or (
            self.allow_callers and not _matches(caller, self.allow_callers)
        ):
            return Refusal("denied-caller", f"{caller} may not use call completion")
        return None

    def check_target(self, target: str) -> Refusal | None:
        if target in self.opt_out:
            return Refusal("callee-opt-out", f"{target} does not accept call-completion requests")
        if _matches(target, self.deny_targets) or (
            self.allow_targets and not _matches(target, self.allow_targets)
        ):
            return Refusal("denied-target", f"call completion to {target} is not allowed")
        return None

    def caller_limit(self, caller: str) -> int:
        override = self.callers.get(caller)
        if override is not None and override.max_requests is not None:
            return override.max_requests
        return self.max_per_caller

    def check_limits(self, caller: str, by_caller: int, target: str, by_target: int,
                     total: int) -> Refusal | None:
        """Refusal when one more request would exceed a limit (EN 300 359-1 leaves the
        queue sizes to the network; these are the box's)."""
        limit = self.caller_limit(caller)
        if by_caller >= limit:
            return Refusal("caller-limit",
                           f"{caller} already has {by_caller} pending requests (limit {limit})")
        if by_target >= self.max_per_callee:
            return Refusal("callee-limit", f"{by_target} callers already wait for {target} "
                                           f"(limit {self.max_per_callee})")
        if total >= self.max_global:
            return Refusal("global-limit", f"the box already holds {total} requests "
                                           f"(limit {self.max_global})")
        return None

    # ------------------------------------------------------------ recall choices

    def recall_mode_for(self, caller: str) -> CallerRecallMode:
        override = self.callers.get(caller)
        if override is not None and override.recall_mode is not None:
            return override.recall_mode
        return self.recall_mode

    def quiet_until(self, caller: str, now: float) -> float | None:
        """End (POSIX time) of the quiet period ``now`` falls in, None when not quiet."""
        override = self.callers.get(caller)
        windows = self.quiet_hours
        if override is not None and override.quiet_hours is not None:
            windows = override.quiet_hours
        if not windows:
            return None
        moment = dt.datetime.fromtimestamp(now, self.tz)
        ends = [w.end_after(moment).timestamp() for w in windows if w.contains(moment.time())]
        return min(ends) if ends else None

    # ----------------------------------------------------------------- lifetimes

    def lifetime(self, kind: CcKind) -> float:
        """Lifetime of a local or redial request (product.md: 45 / 180 min)."""
        t = self.timers
        return t.lifetime_ccnr if kind is CcKind.CCNR else t.lifetime_ccbs

    def supervision(self, kind: CcKind, ptp: bool) -> float:
        """Local supervision of an activated ISDN request: T-CCBS2 / T-CCNR2 (PTMP),
        T-CCBS6 / T-CCNR6 (PTP) — etsi-ccbs.md §4."""
        t = self.timers
        if ptp:
            return t.t_ccnr6 if kind is CcKind.CCNR else t.t_ccbs6
        return t.t_ccnr2 if kind is CcKind.CCNR else t.t_ccbs2


def _matches(number: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(number, p) for p in patterns)


__all__ = [
    "CallerPolicy",
    "CallerRecallMode",
    "Policy",
    "QuietHours",
    "Refusal",
    "Timers",
]
