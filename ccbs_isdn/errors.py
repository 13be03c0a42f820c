"""The one exception tree of ccbs-isdn.

Rules (after h11): an error says whose fault it is.

* ``LocalError`` — we (or our user) asked for something wrong: bad config, a refused
  request, a misuse of an API. It never reaches the wire.
* ``RemoteProtocolError`` — a peer sent bytes we cannot accept. It carries what to
  answer (a ROSE reject problem, a CAPI Info value, an AT error) so the caller can
  reply correctly, and where in the input the problem was found.
* ``DeviceError`` — a device or library failed (libcapi20 Info codes, a serial line
  that went away).

Every error has a stable ``code`` (a short slug, used in logs, the control socket and
``ccbsctl --json``) and a message a person can act on. Wire parsers raise only their
own subclass of ``RemoteProtocolError``; nothing else may escape them.
"""

from __future__ import annotations


class CcbsError(Exception):
    """Base of every error raised by ccbs-isdn on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- local


class LocalError(CcbsError):
    """Our side asked for something that cannot be done."""

    code = "local-error"


class ConfigError(LocalError):
    """A configuration file is wrong. Names the file, the key and what was expected."""

    code = "config-error"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.file = file
        self.key = key
        self.expected = expected
        where = ""
        if file:
            where = file
        if key:
            where = f"{where}: {key}" if where else key
        text = f"{where}: {message}" if where else message
        if expected:
            text = f"{text} (expected {expected})"
        super().__init__(text)


class RequestRefused(LocalError):
    """A CCBS request was refused by policy (limits, patterns, opt-out, quiet hours...).

    ``reason`` is a stable slug (``caller-limit``, ``callee-limit``, ``global-limit``,
    ``denied-caller``, ``denied-target``, ``callee-opt-out``, ``no-such-request``, ...).
    """

    code = "refused"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, code="refused")
        self.reason = reason


class StoreError(LocalError):
    """The request store (SQLite) cannot write: disk full, read-only, corrupt."""

    code = "store-error"


class PermissionDenied(LocalError):
    """A control-socket client may not do what it asked."""

    code = "permission-denied"


# -------------------------------------------------------------------------- remote


class RemoteProtocolError(CcbsError):
    """A peer sent something we cannot accept.

    ``offset`` is the byte (or character) offset in the input where decoding failed,
    when known.
    """

    code = "protocol-error"

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class FacilityError(RemoteProtocolError):
    """A Facility IE or ROSE component could not be decoded (or encoded).

    ``problem`` is the ROSE reject problem to answer with, as ``(class, code)`` — e.g.
    ``("general", 2)`` for badlyStructuredComponent, ``("invoke", 2)`` for
    mistypedArgument — or ``None`` when nothing should be sent (e.g. broadcast input).
    ``invoke_id`` is the invoke id of the offending component when it could be read.
    """

    code = "facility-error"

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        problem: tuple[str, int] | None = ("general", 2),
        invoke_id: int | None = None,
    ) -> None:
        super().__init__(message, offset=offset)
        self.problem = problem
        self.invoke_id = invoke_id


class CapiMessageError(RemoteProtocolError):
    """A CAPI 2.0 message is malformed (too short, bad struct length, unknown command)."""

    code = "capi-message-error"


class AtParseError(RemoteProtocolError):
    """A line from the FXS bridge is not valid FXB/1."""

    code = "at-parse-error"


class ControlProtocolError(RemoteProtocolError):
    """A control-socket request is malformed (not JSON, oversized, wrong fields)."""

    code = "bad-request"


# -------------------------------------------------------------------------- device


class DeviceError(CcbsError):
    """A device, library or link failed."""

    code = "device-error"


class DriverNotAvailable(DeviceError):
    """A driver cannot run here: library missing, /dev/shm not writable, no device."""

    code = "driver-not-available"


class CapiError(DeviceError):
    """A libcapi20 call or a CAPI confirmation returned a non-zero Info value."""

    code = "capi-error"

    def __init__(self, info: int, message: str | None = None, *, call: str | None = None) -> None:
        self.info = info
        self.call = call
        text = message or f"CAPI info 0x{info:04X}"
        if call:
            text = f"{call}: {text}"
        super().__init__(text)


class BridgeError(DeviceError):
    """The FXS bridge answered ERROR, timed out, or went away."""

    code = "bridge-error"

    def __init__(self, message: str, *, at_code: int | None = None, at_name: str | None = None):
        super().__init__(message)
        self.at_code = at_code
        self.at_name = at_name


class LinkDown(DeviceError):
    """The device link is down (unplugged bridge, lost CAPI connection)."""

    code = "link-down"
