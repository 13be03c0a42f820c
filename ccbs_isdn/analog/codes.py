"""Activation-code recogniser for analog callers (``docs/analog-bridge.md`` §6.2).

Owns the user procedure of one port: what the caller's flashes and digits *mean*
for CCBS/CCNR. It is driven by call control with the events of that port (off-hook,
"this call failed busy", flash, digit, on-hook) and the time ``now``; it returns what
the user asked for. It does not play tones, check limits or store requests (call
control and the engine do), does no I/O and reads no clock: ``next_deadline()`` says
when ``timeout(now)`` must be called.

Procedures (defaults; every code is configurable in ``ActivationCodes``):

* While hearing busy after a failed call, within ``window`` (20 s) of the busy:
  ``R`` then ``*37#`` (T-Net/ETSI habit, §6.1), or just the quick digit ``5``
  (FRITZ!Box habit; can be disabled). The whole code must be complete inside the
  window, because an ISDN CallLinkageID is kept only about 30 s (§6.2).
* From dial tone (and after ``R`` while busy): ``#37#`` cancel all of this port's
  requests, ``#37*<number>#`` cancel the request for one target, ``*#37#`` status,
  ``*37*<number>#`` book a request without a prior call.

Codes are patterns over the DTMF alphabet where ``N`` stands for a number of one or
more digits 0-9, ended by the character that follows ``N`` in the pattern.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ccbs_isdn.errors import ConfigError

_DTMF = frozenset("0123456789*#ABCD")
_NUMBER = "N"


class CodeKind(enum.Enum):
    ACTIVATE = "activate"  # CCBS/CCNR for the call that just failed
    BOOK = "book"  # *37*<number>#: request without a prior call
    CANCEL_ALL = "cancel-all"  # #37#
    CANCEL_ONE = "cancel-one"  # #37*<number>#
    STATUS = "status"  # *#37#


@dataclass(frozen=True, slots=True)
class ActivationCodes:
    """The configurable codes and timers. ``None`` disables a procedure."""

    activate: str = "*37#"
    quick_digit: str | None = "5"
    cancel_all: str | None = "#37#"
    cancel_one: str | None = "#37*N#"
    status: str | None = "*#37#"
    book: str | None = "*37*N#"
    window: float = 20.0  # s after busy in which activation is possible
    inter_digit: float = 5.0  # s between two digits of a code
    max_number: int = 24

    def __post_init__(self) -> None:
        patterns = self.patterns()
        for kind, pattern in patterns:
            _check_pattern(kind, pattern)
        if self.quick_digit is not None and (
            len(self.quick_digit) != 1 or self.quick_digit not in _DTMF
        ):
            raise ConfigError(
                f"quick digit {self.quick_digit!r} is not one DTMF key",
                key="codes.quick_digit", expected="one of 0-9 * # A-D, or unset",
            )
        texts = [p for _, p in patterns]
        if len(set(texts)) != len(texts):
            raise ConfigError(
                f"two procedures share one code: {sorted(texts)}",
                key="codes", expected="a different code per procedure",
            )
        fixed = [(k, p) for k, p in patterns if _NUMBER not in p]
        for kind, pattern in fixed:
            for other_kind, other in patterns:
                if other_kind is not kind and _could_start(other, pattern):
                    raise ConfigError(
                        f"code {pattern!r} ({kind.value}) is a prefix of "
                        f"{other!r} ({other_kind.value}): the first would always win",
                        key=f"codes.{kind.name.lower()}", expected="codes that are not prefixes",
                    )
        if not 0 < self.window <= 600 or not 0 < self.inter_digit <= 60:
            raise ConfigError(
                "activation window / inter-digit timeout out of range",
                key="codes.window", expected="0 < window <= 600 s, 0 < inter_digit <= 60 s",
            )
        if not 1 <= self.max_number <= 32:
            raise ConfigError("max_number out of range", key="codes.max_number",
                              expected="1..32")

    def patterns(self) -> list[tuple[CodeKind, str]]:
        table = [
            (CodeKind.ACTIVATE, self.activate),
            (CodeKind.CANCEL_ALL, self.cancel_all),
            (CodeKind.CANCEL_ONE, self.cancel_one),
            (CodeKind.STATUS, self.status),
            (CodeKind.BOOK, self.book),
        ]
        return [(kind, pattern) for kind, pattern in table if pattern is not None]


def _check_pattern(kind: CodeKind, pattern: str) -> None:
    key = f"codes.{kind.name.lower()}"
    ok = bool(pattern) and all(ch in _DTMF or ch == _NUMBER for ch in pattern)
    if ok and _NUMBER in pattern:
        at = pattern.index(_NUMBER)
        ok = (
            pattern.count(_NUMBER) == 1
            and at > 0
            and at + 1 < len(pattern)
            and pattern[at + 1] in "*#"
        )
    if not ok or pattern[0] not in "*#":
        raise ConfigError(
            f"code {pattern!r} is not a service code",
            key=key,
            expected="DTMF keys starting with * or #, optionally one N (number) "
            "followed by * or #",
        )


def _could_start(longer: str, fixed: str) -> bool:
    """True when dialling ``fixed`` completely could also be the start of ``longer``."""
    if len(longer) <= len(fixed):
        return False
    for i, ch in enumerate(fixed):
        if longer[i] == _NUMBER:
            return ch.isdigit()
        if longer[i] != ch:
            return False
    return True


# ------------------------------------------------------------------------ outcomes


@dataclass(frozen=True, slots=True)
class CodeDialled:
    """The user asked for something. ``number`` for BOOK and CANCEL_ONE."""

    kind: CodeKind
    digits: str
    number: str | None = None


@dataclass(frozen=True, slots=True)
class AwaitingCode:
    """R was pressed while busy, inside the window: play special dial tone."""


@dataclass(frozen=True, slots=True)
class Collecting:
    """The digits so far may still become a code: do not route them yet."""

    digits: str


@dataclass(frozen=True, slots=True)
class NotACode:
    """These digits (from dial tone) are not a service code: ordinary dialling."""

    digits: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """In code context (after R while busy) the user dialled something invalid or too
    late: play the negative acknowledgement. ``reason`` is a slug."""

    digits: str
    reason: str


Outcome = CodeDialled | AwaitingCode | Collecting | NotACode | Rejected


class _State(enum.Enum):
    ON_HOOK = "on-hook"
    DIALTONE = "dialtone"  # off-hook, codes from dial tone possible
    BUSY = "busy"  # hearing busy after a failed call
    AFTER_FLASH = "after-flash"  # R pressed while busy: collecting a code
    IDLE = "idle"  # off-hook, not our business (dialling, talking, done)


class CodeRecogniser:
    """The procedure of one port. Call control feeds every event of the port:

    ``off_hook(now)`` at dial tone, ``busy(now)`` when the caller's call failed busy
    (or unanswered, for CCNR), ``flash(ms, now)``, ``digit(d, now)``, ``on_hook(now)``,
    and ``timeout(now)`` at ``next_deadline()``. Each returns an ``Outcome`` or ``None``
    when the event is not part of a CCBS procedure (call control handles it).
    """

    __slots__ = ("codes", "_state", "_digits", "_window_end", "_digit_deadline")

    def __init__(self, codes: ActivationCodes | None = None) -> None:
        self.codes = codes or ActivationCodes()
        self._state = _State.ON_HOOK
        self._digits = ""
        self._window_end: float | None = None
        self._digit_deadline: float | None = None

    @property
    def state(self) -> str:
        return self._state.value

    # --------------------------------------------------------------- inputs

    def off_hook(self, now: float) -> None:
        self._enter(_State.DIALTONE)

    def on_hook(self, now: float) -> None:
        self._enter(_State.ON_HOOK)

    def busy(self, now: float) -> None:
        """The caller hears busy for a call that CC could complete."""
        self._enter(_State.BUSY)
        self._window_end = now + self.codes.window

    def flash(self, ms: int, now: float) -> Outcome | None:
        if self._state in (_State.BUSY, _State.AFTER_FLASH) and self._in_window(now):
            # a second R while entering a code starts the code again
            self._enter(_State.AFTER_FLASH, keep_window=True)
            self._digit_deadline = now + self.codes.inter_digit
            return AwaitingCode()
        if self._state is _State.BUSY:
            self._enter(_State.IDLE)
        return None

    def digit(self, d: str, now: float) -> Outcome | None:
        state = self._state
        if state is _State.BUSY:
            if self._in_window(now) and d == self.codes.quick_digit:
                self._enter(_State.IDLE)
                return CodeDialled(CodeKind.ACTIVATE, d)
            return None  # a key pressed over busy tone means nothing
        if state is _State.DIALTONE:
            return self._collect(d, now, after_flash=False)
        if state is _State.AFTER_FLASH:
            return self._collect(d, now, after_flash=True)
        return None

    def timeout(self, now: float) -> Outcome | None:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return None
        state, digits = self._state, self._digits
        if state is _State.BUSY:
            self._enter(_State.IDLE)  # window over: busy tone goes on, R means nothing
            return None
        if state is _State.AFTER_FLASH:
            window_over = self._window_end is not None and now >= self._window_end
            self._enter(_State.IDLE)
            return Rejected(digits, "window-expired" if window_over else "incomplete")
        if state is _State.DIALTONE and digits:
            self._enter(_State.IDLE)
            return NotACode(digits)
        return None

    def next_deadline(self) -> float | None:
        if self._state is _State.BUSY:
            return self._window_end
        if self._state is _State.AFTER_FLASH:
            if self._window_end is None or self._digit_deadline is None:
                return self._window_end or self._digit_deadline
            return min(self._window_end, self._digit_deadline)
        if self._state is _State.DIALTONE and self._digits:
            return self._digit_deadline
        return None

    # ------------------------------------------------------------- internals

    def _enter(self, state: _State, *, keep_window: bool = False) -> None:
        self._state = state
        self._digits = ""
        self._digit_deadline = None
        if not keep_window:
            self._window_end = None

    def _in_window(self, now: float) -> bool:
        return self._window_end is not None and now < self._window_end

    def _collect(self, d: str, now: float, *, after_flash: bool) -> Outcome:
        digits = self._digits + d
        if after_flash and not self._in_window(now):
            self._enter(_State.IDLE)
            return Rejected(digits, "window-expired")
        candidates = self.codes.patterns()
        if not after_flash:  # activation needs the failed call: only after R
            candidates = [(k, p) for k, p in candidates if k is not CodeKind.ACTIVATE]
        partial = False
        for kind, pattern in candidates:
            verdict, number = _match(pattern, digits, self.codes.max_number)
            if verdict == "full":
                self._enter(_State.IDLE)
                return CodeDialled(kind, digits, number)
            partial = partial or verdict == "partial"
        if partial:
            self._digits = digits
            self._digit_deadline = now + self.codes.inter_digit
            return Collecting(digits)
        self._enter(_State.IDLE)
        if after_flash:
            return Rejected(digits, "unknown-code")
        return NotACode(digits)


def _match(pattern: str, digits: str, max_number: int) -> tuple[str, str | None]:
    """``("full", number)``, ``("partial", None)`` or ``("no", None)``."""
    at = pattern.find(_NUMBER)
    if at < 0:
        if digits == pattern:
            return "full", None
        return ("partial", None) if pattern.startswith(digits) else ("no", None)
    head, end = pattern[:at], pattern[at + 1]
    tail = pattern[at + 2:]
    if len(digits) <= len(head):
        return ("partial", None) if head.startswith(digits) else ("no", None)
    if not digits.startswith(head):
        return "no", None
    rest = digits[len(head):]
    stop = rest.find(end)
    number = rest if stop < 0 else rest[:stop]
    if not number.isdigit() and number:
        return "no", None
    if len(number) > max_number:
        return "no", None
    if stop < 0:
        return "partial", None
    if not number:
        return "no", None
    after = rest[stop + 1:]
    if after == tail:
        return "full", number
    return ("partial", None) if tail.startswith(after) else ("no", None)
