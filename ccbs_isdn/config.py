"""ccbsd configuration: TOML files → validated, frozen dataclasses.

This module owns the configuration *schema* (``SCHEMA``, a literal table of every key
with its type, default and one line of documentation), loading ``ccbsd.toml`` plus
``conf.d/*.toml`` (later files override earlier ones, table by table), and the checks
that span several keys. Every problem is a :class:`~ccbs_isdn.errors.ConfigError` that
names the file, the dotted key and what was expected.

It must not touch devices, sockets or the clock, and it does not know what the engine
does with the values: the runtime turns them into engine policy and driver settings.

Durations are numbers of seconds (``2700`` = 45 min). Number patterns (allow/deny,
opt-out) are digit strings where ``?`` stands for one digit and ``*`` for any rest.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ccbs_isdn.errors import ConfigError

DEFAULT_CONFIG = "/etc/ccbs-isdn/ccbsd.toml"

# --------------------------------------------------------------------------- schema


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key: how to check it, its default and a line of documentation.

    ``kind`` names an entry of ``_CHECKS``; ``table`` holds the sub-schema for
    ``kind="tables"`` (arrays of tables) and ``kind="section"`` (a nested table).
    ``attr`` is the dataclass attribute when the TOML name is a Python keyword.
    """

    kind: str
    default: Any
    doc: str
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    table: Mapping[str, Key] | None = None
    attr: str | None = None


_HOUR = 3600.0

#: default of a key that must be given; a default of None means "inherit" (left out)
REQUIRED: Any = object()

# Timers of etsi-ccbs.md §4 (libpri defaults; EN 300 359-1 / EN 301 065-1 names) and the
# product timers of product.md. All in seconds.
TIMERS: dict[str, Key] = {
    "t_retention": Key("seconds", 30.0, "T-RETENTION: the network keeps a CallLinkageID"),
    "t_activate": Key("seconds", 10.0, "T-ACTIVATE: wait for the CCBSRequest answer"),
    "t_deactivate": Key("seconds", 4.0, "T-DEACTIVATE: wait for the CCBSDeactivate answer"),
    "t_interrogate": Key("seconds", 4.0, "T-INTERROGATE: wait for the CCBSInterrogate answer"),
    "t_ccbs1": Key("seconds", 4.0, "T-CCBS1: status polling of A (network side, simulator)"),
    "t_ccbs2": Key("seconds", 0.75 * _HOUR, "T-CCBS2: CCBS supervision, local watchdog"),
    "t_ccnr2": Key("seconds", 3.0 * _HOUR, "T-CCNR2: CCNR supervision, local watchdog"),
    "t_ccbs3": Key("seconds", 20.0, "T-CCBS3: recall must be taken up after RemoteUserFree"),
    "t_ccbs4": Key("seconds", 5.0, "T-CCBS4: guard on B's side before a recall (network)"),
    "t_ccbs5": Key("seconds", 1.0 * _HOUR, "T-CCBS5: CCBS-T supervision on B's side (PTP)"),
    "t_ccnr5": Key("seconds", 195 * 60.0, "T-CCNR5: CCNR-T supervision on B's side (PTP)"),
    "t_ccbs6": Key("seconds", 1.0 * _HOUR, "T-CCBS6: CCBS-T supervision on A's side (PTP)"),
    "t_ccnr6": Key("seconds", 195 * 60.0, "T-CCNR6: CCNR-T supervision on A's side (PTP)"),
    "t_status": Key("seconds", 4.0, "T-STATUS: StatusRequest procedure (ETS 300 196-1)"),
    "activation_window": Key("seconds", 20.0, "an analog caller may activate this long after busy"),
    "guard": Key("seconds", 2.0, "wait after B went on-hook, then re-check B before a recall"),
    "recheck": Key("seconds", 3.0, "wait this long for the re-check poll of B's line"),
    "a_answer": Key("seconds", 20.0, "A must answer the recall ring within this time"),
    "b_answer": Key("seconds", 30.0, "B must answer a local recall within this time"),
    "lifetime_ccbs": Key("seconds", 0.75 * _HOUR, "a CCBS request expires after this"),
    "lifetime_ccnr": Key("seconds", 3.0 * _HOUR, "a CCNR request expires after this"),
    "recall_retry": Key("seconds", 60.0, "wait before ringing A again after a missed recall"),
    "redial_interval": Key("seconds", 60.0, "fallback: interval between redials of B"),
}

CONTROLLER: dict[str, Key] = {
    "ctrl": Key("int", REQUIRED, "CAPI controller number (1-based)", min=1, max=127),
    "msns": Key("digits-list", [], "MSNs of this BRI (numbers the box answers for)"),
    "ptp": Key("bool", False, "point-to-point access (CCBS-T) instead of point-to-multipoint"),
    "route": Key(
        "enum",
        "auto",
        "CCBS route: auto = from the controller profile, supplementary = CAPI facility "
        "selector 3, raw = ETSI Facility IEs encoded by ccbsd",
        choices=("auto", "supplementary", "raw"),
    ),
}

PORT: dict[str, Key] = {
    "port": Key("int", REQUIRED, "bridge port number (1-based)", min=1, max=64),
    "extension": Key("digits", REQUIRED, "internal number of the phone on this port"),
    "msn": Key("digits", "", "MSN used for outgoing ISDN calls of this port (empty: none)"),
    "ctrl": Key("int", 1, "CAPI controller for outgoing ISDN calls of this port", min=1),
    "name": Key("str", "", "display name (CLIP name toward other ports)"),
}

SUBSCRIBER: dict[str, Key] = {
    "number": Key("digits", REQUIRED, "public number of a simulated external subscriber"),
    "busy": Key("bool", False, "starts busy"),
    "answers": Key("bool", True, "answers calls"),
    "ccbs": Key("bool", True, "its exchange offers CCBS/CCNR"),
}

CALLER_POLICY: dict[str, Key] = {
    "extension": Key("digits", REQUIRED, "the caller (an extension) these rules are for"),
    # left out = the [policy] / [limits] setting applies
    "recall_mode": Key("enum", None, "auto = ring A then B; notify = only notify",
                       choices=("auto", "notify")),
    "quiet_hours": Key("time-ranges", None, "local times without recall rings, e.g. 22:00-07:00"),
    "max_requests": Key("int", None, "own limit of active requests", min=1, max=100000),
}

CALLER_NOTIFY: dict[str, Key] = {
    "extension": Key("digits", REQUIRED, "the caller (an extension) these channels are for"),
    "email": Key("str-list", [], "extra e-mail recipients for this caller's requests"),
    "webhook": Key("url", "", "extra webhook URL for this caller's requests"),
    "command": Key("argv", [], "extra command hook for this caller's requests"),
}

NOTIFY_EVENTS = ("activated", "recall", "completed", "expired", "failed", "cancelled")

SCHEMA: dict[str, Key] = {
    "daemon": Key("section", None, "the daemon process", table={
        "state_dir": Key("abspath", "/var/lib/ccbs-isdn", "directory of the request store"),
        "socket": Key("abspath", "/run/ccbs-isdn/control.sock", "control socket path"),
        "socket_group": Key("str", "ccbs-isdn",
                            "group owning the socket (mode 0660); may read; empty: unchanged"),
        "admin_group": Key("str", "ccbs-isdn-admin",
                           "members may cancel and request (besides root); empty: root only"),
        "trace_file": Key("path", "",
                          "facility/AT trace file (hex + decoded); empty: off until "
                          "'ccbsctl trace start'"),
        "log_level": Key("enum", "info", "journal verbosity",
                         choices=("debug", "info", "warning", "error")),
        "max_clients": Key("int", 64, "concurrent control-socket clients", min=1, max=4096),
        "start_timeout": Key("seconds", 30.0,
                             "readiness is reported at the latest after this, drivers "
                             "that are still down keep retrying"),
    }),
    "capi": Key("section", None, "ISDN cards through CAPI 2.0 (libcapi20)", table={
        "enabled": Key("bool", False, "use ISDN controllers"),
        "driver": Key("enum", "", "libcapi20 transport: empty = auto-detect (real card)",
                      choices=("", "standard", "rcapi", "fritzbox")),
        "host": Key("str", "", "remote CAPI host (rcapi/fritzbox)"),
        "port": Key("int", 2662, "remote CAPI TCP port", min=1, max=65535),
        "controllers": Key("tables", [], "one table per controller", table=CONTROLLER),
    }),
    "fxs": Key("section", None, "analog phones through an FXB/1 serial bridge", table={
        "enabled": Key("bool", False, "use an FXS bridge"),
        "device": Key("str", "/dev/ccbs/fxs0", "pyserial URL or device path of the bridge"),
        "baudrate": Key("int", 115200, "serial speed", min=1200, max=4000000),
        "tone_plan": Key("enum", "DE", "national tone plan (AT%TPLAN)",
                         choices=("DE", "EU", "US")),
        "keepalive": Key("seconds", 15.0, "idle keep-alive interval (3 misses = down)"),
        "poll_active": Key("seconds", 5.0, "hook poll interval of ports in a request"),
        "poll_idle": Key("seconds", 30.0, "hook poll interval of other ports"),
        "recall_cadence": Key("int", 1, "AT%CAD id of the recall ring", min=0, max=9),
        "recall_clip_name": Key("str", "Rueckruf", "CLIP name shown with a recall"),
        "ports": Key("tables", [], "one table per port", table=PORT),
        "hook": Key("section", None, "hook-flash classification (AT%HFT)", table={
            "debounce_ms": Key("int", 20, "debounce of every loop edge", min=1, max=200),
            "flash_min_ms": Key("int", 70, "shortest break that is a flash", min=10, max=2000),
            "flash_max_ms": Key("int", 600, "longest flash; longer = on-hook", min=20, max=3000),
            "pulse": Key("bool", False, "decode pulse dialling"),
        }),
        "codes": Key("section", None, "activation codes (analog-bridge.md §6.2)", table={
            "activate": Key("code", "*37#", "after busy: R then this"),
            "activate_digit": Key("code", "5", "after busy: this digit alone; empty = off"),
            "cancel": Key("code", "#37#", "cancel all own requests"),
            "cancel_one": Key("code", "#37*", "prefix: cancel the request for <number>#"),
            "status": Key("code", "*#37#", "confirm tone if a request is pending"),
            "book": Key("code", "*37*", "prefix: book a request for <number># directly"),
        }),
    }),
    "sim": Key("section", None, "the simulated exchange + bridge backend (tests, demo)", table={
        "enabled": Key("bool", False, "run against the simulator instead of hardware"),
        "timer_scale": Key("float", 1.0, "network timers are multiplied by this",
                           min=0.0001, max=10.0),
        "fxs_ports": Key("int", 4, "ports of the simulated bridge", min=1, max=64),
        "subscribers": Key("tables", [], "external subscribers", table=SUBSCRIBER),
    }),
    "dialplan": Key("section", None, "basic call control of analog ports", table={
        "outgoing_prefix": Key("code", "0", "dial this to go out over ISDN (stripped)"),
        "interdigit_timeout": Key("seconds", 5.0, "end of dialling after this pause"),
        "first_digit_timeout": Key("seconds", 15.0, "busy tone if nothing is dialled"),
        "default_ctrl": Key("int", 1, "controller for outgoing calls without a port MSN",
                            min=1),
    }),
    "limits": Key("section", None, "request limits (product.md)", table={
        "per_caller": Key("int", 5, "active requests per caller", min=1, max=100000),
        "per_callee": Key("int", 5, "waiting requests per callee (FIFO)", min=1, max=100000),
        "global": Key("int", 1000, "active requests in total", min=1, max=10000000,
                      attr="total"),
    }),
    "timers": Key("section", None, "every timer, in seconds", table=TIMERS),
    "policy": Key("section", None, "who may ask whom, and how recalls happen", table={
        "allow_callers": Key("patterns", [], "only these callers (empty: all)"),
        "deny_callers": Key("patterns", [], "never these callers"),
        "allow_targets": Key("patterns", [], "only these targets (empty: all)"),
        "deny_targets": Key("patterns", [], "never these targets"),
        "opt_out": Key("digits-list", [], "callees (exact numbers) that refuse to be watched"),
        "recall_mode": Key("enum", "auto", "default recall mode", choices=("auto", "notify")),
        "quiet_hours": Key("time-ranges", [], "default quiet hours, e.g. [\"22:00-07:00\"]"),
        "timezone": Key("timezone", "", "IANA zone of the quiet hours; empty: the system's"),
        "recall_retries": Key("int", 2, "rings of A again after a missed recall", min=0,
                              max=20),
        "redial_fallback": Key("bool", False,
                               "watch by redialling B when the network offers no CCBS"),
        "callers": Key("tables", [], "per-caller rules", table=CALLER_POLICY),
    }),
    "notify": Key("section", None, "notifications (command, e-mail, webhook)", table={
        "events": Key("events", list(NOTIFY_EVENTS), "which events notify"),
        "command": Key("argv", [], "command hook argv; request fields in CCBS_* variables"),
        "email": Key("str-list", [], "e-mail recipients for every request"),
        "webhook": Key("url", "", "URL that receives an HTTP POST with a JSON body"),
        "smtp_host": Key("str", "localhost", "SMTP relay"),
        "smtp_port": Key("int", 25, "SMTP port", min=1, max=65535),
        "smtp_from": Key("str", "ccbsd@localhost", "envelope and header sender"),
        "smtp_starttls": Key("bool", False, "use STARTTLS"),
        "smtp_user": Key("str", "", "SMTP login (empty: none)"),
        "smtp_password_file": Key("path", "", "file holding the SMTP password"),
        "queue_size": Key("int", 1000, "pending notifications; more are dropped and logged",
                          min=1, max=1000000),
        "retries": Key("int", 5, "attempts per notification and channel", min=1, max=100),
        "backoff": Key("seconds", 2.0, "first retry delay, doubled each time"),
        "timeout": Key("seconds", 10.0, "per delivery attempt"),
        "callers": Key("tables", [], "per-caller channels", table=CALLER_NOTIFY),
    }),
    "metrics": Key("section", None, "Prometheus metrics", table={
        "mode": Key("enum", "off", "off, textfile (node-exporter collector) or http",
                    choices=("off", "textfile", "http")),
        "textfile": Key("abspath", "/var/lib/prometheus/node-exporter/ccbsd.prom",
                        "file written in textfile mode"),
        "interval": Key("seconds", 15.0, "textfile rewrite interval"),
        "address": Key("loopback", "127.0.0.1", "HTTP listen address (loopback only)"),
        "port": Key("int", 9633, "HTTP listen port (0: any free port)", min=0, max=65535),
    }),
}

# ------------------------------------------------------------------- dataclasses


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    state_dir: str
    socket: str
    socket_group: str
    admin_group: str
    trace_file: str
    log_level: str
    max_clients: int
    start_timeout: float


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    ctrl: int
    msns: tuple[str, ...]
    ptp: bool
    route: str


@dataclass(frozen=True, slots=True)
class CapiConfig:
    enabled: bool
    driver: str
    host: str
    port: int
    controllers: tuple[ControllerConfig, ...]


@dataclass(frozen=True, slots=True)
class PortConfig:
    port: int
    extension: str
    msn: str
    ctrl: int
    name: str


@dataclass(frozen=True, slots=True)
class HookConfig:
    debounce_ms: int
    flash_min_ms: int
    flash_max_ms: int
    pulse: bool


@dataclass(frozen=True, slots=True)
class CodesConfig:
    activate: str
    activate_digit: str
    cancel: str
    cancel_one: str
    status: str
    book: str


@dataclass(frozen=True, slots=True)
class FxsConfig:
    enabled: bool
    device: str
    baudrate: int
    tone_plan: str
    keepalive: float
    poll_active: float
    poll_idle: float
    recall_cadence: int
    recall_clip_name: str
    ports: tuple[PortConfig, ...]
    hook: HookConfig
    codes: CodesConfig


@dataclass(frozen=True, slots=True)
class SubscriberConfig:
    number: str
    busy: bool
    answers: bool
    ccbs: bool


@dataclass(frozen=True, slots=True)
class SimConfig:
    enabled: bool
    timer_scale: float
    fxs_ports: int
    subscribers: tuple[SubscriberConfig, ...]


@dataclass(frozen=True, slots=True)
class DialplanConfig:
    outgoing_prefix: str
    interdigit_timeout: float
    first_digit_timeout: float
    default_ctrl: int


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    per_caller: int
    per_callee: int
    total: int


@dataclass(frozen=True, slots=True)
class TimersConfig:
    t_retention: float
    t_activate: float
    t_deactivate: float
    t_interrogate: float
    t_ccbs1: float
    t_ccbs2: float
    t_ccnr2: float
    t_ccbs3: float
    t_ccbs4: float
    t_ccbs5: float
    t_ccnr5: float
    t_ccbs6: float
    t_ccnr6: float
    t_status: float
    activation_window: float
    guard: float
    recheck: float
    a_answer: float
    b_answer: float
    lifetime_ccbs: float
    lifetime_ccnr: float
    recall_retry: float
    redial_interval: float


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Minutes since local midnight; ``start > end`` wraps over midnight."""

    start: int
    end: int

    def contains(self, minute_of_day: int) -> bool:
        if self.start <= self.end:
            return self.start <= minute_of_day < self.end
        return minute_of_day >= self.start or minute_of_day < self.end

    def __str__(self) -> str:
        def hhmm(minutes: int) -> str:
            return f"{minutes // 60:02d}:{minutes % 60:02d}"

        return f"{hhmm(self.start)}-{hhmm(self.end)}"


@dataclass(frozen=True, slots=True)
class CallerPolicyConfig:
    """Per-caller rules; None = the global [policy] / [limits] value applies."""

    extension: str
    recall_mode: str | None
    quiet_hours: tuple[TimeRange, ...] | None
    max_requests: int | None


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    allow_callers: tuple[str, ...]
    deny_callers: tuple[str, ...]
    allow_targets: tuple[str, ...]
    deny_targets: tuple[str, ...]
    opt_out: tuple[str, ...]
    recall_mode: str
    quiet_hours: tuple[TimeRange, ...]
    timezone: str
    recall_retries: int
    redial_fallback: bool
    callers: tuple[CallerPolicyConfig, ...]

    def for_caller(self, extension: str) -> CallerPolicyConfig:
        """The effective rules of *extension* (its own table over the defaults)."""
        for rule in self.callers:
            if rule.extension == extension:
                return CallerPolicyConfig(
                    extension,
                    rule.recall_mode if rule.recall_mode is not None else self.recall_mode,
                    rule.quiet_hours if rule.quiet_hours is not None else self.quiet_hours,
                    rule.max_requests,
                )
        return CallerPolicyConfig(extension, self.recall_mode, self.quiet_hours, None)


@dataclass(frozen=True, slots=True)
class CallerNotifyConfig:
    extension: str
    email: tuple[str, ...]
    webhook: str
    command: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    events: tuple[str, ...]
    command: tuple[str, ...]
    email: tuple[str, ...]
    webhook: str
    smtp_host: str
    smtp_port: int
    smtp_from: str
    smtp_starttls: bool
    smtp_user: str
    smtp_password_file: str
    queue_size: int
    retries: int
    backoff: float
    timeout: float
    callers: tuple[CallerNotifyConfig, ...]


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    mode: str
    textfile: str
    interval: float
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class Config:
    daemon: DaemonConfig
    capi: CapiConfig
    fxs: FxsConfig
    sim: SimConfig
    dialplan: DialplanConfig
    limits: LimitsConfig
    timers: TimersConfig
    policy: PolicyConfig
    notify: NotifyConfig
    metrics: MetricsConfig
    #: the files read, in order (the main file first, then conf.d/*.toml)
    sources: tuple[str, ...] = field(default=())

    def extension_of_port(self, port: int) -> str | None:
        for p in self.fxs.ports:
            if p.port == port:
                return p.extension
        return None

    def port_of_extension(self, extension: str) -> int | None:
        for p in self.fxs.ports:
            if p.extension == extension:
                return p.port
        return None


#: which dataclass each section (and nested section / array of tables) becomes
_CLASSES: dict[str, type] = {
    "daemon": DaemonConfig,
    "capi": CapiConfig,
    "capi.controllers": ControllerConfig,
    "fxs": FxsConfig,
    "fxs.ports": PortConfig,
    "fxs.hook": HookConfig,
    "fxs.codes": CodesConfig,
    "sim": SimConfig,
    "sim.subscribers": SubscriberConfig,
    "dialplan": DialplanConfig,
    "limits": LimitsConfig,
    "timers": TimersConfig,
    "policy": PolicyConfig,
    "policy.callers": CallerPolicyConfig,
    "notify": NotifyConfig,
    "notify.callers": CallerNotifyConfig,
    "metrics": MetricsConfig,
}

# ------------------------------------------------------------------ value checks


class _Bad(Exception):
    """A value failed its check; carries what was expected."""

    def __init__(self, expected: str, message: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.message = message


_DIGITS = re.compile(r"[0-9]+")
_CODE = re.compile(r"[0-9*#]*")
_PATTERN = re.compile(r"[0-9*?#+]+")
_TIME_RANGE = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])-([01]?[0-9]|2[0-3]):([0-5][0-9])")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _range_text(key: Key, what: str) -> str:
    if key.min is not None and key.max is not None:
        return f"{what} from {key.min:g} to {key.max:g}"
    if key.min is not None:
        return f"{what} >= {key.min:g}"
    return what


def _check_int(value: object, key: Key) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Bad(_range_text(key, "an integer"))
    if (key.min is not None and value < key.min) or (key.max is not None and value > key.max):
        raise _Bad(_range_text(key, "an integer"), f"{value} is out of range")
    return value


def _check_float(value: object, key: Key) -> float:
    if not _is_number(value):
        raise _Bad(_range_text(key, "a number"))
    number = float(value)  # type: ignore[arg-type]
    if (key.min is not None and number < key.min) or (key.max is not None and number > key.max):
        raise _Bad(_range_text(key, "a number"), f"{value} is out of range")
    return number


def _check_seconds(value: object, key: Key) -> float:
    if not _is_number(value) or float(value) <= 0:  # type: ignore[arg-type]
        raise _Bad("a number of seconds > 0")
    return float(value)  # type: ignore[arg-type]


def _check_bool(value: object, key: Key) -> bool:
    if not isinstance(value, bool):
        raise _Bad("true or false")
    return value


def _check_str(value: object, key: Key) -> str:
    if not isinstance(value, str):
        raise _Bad("a string")
    return value


def _check_enum(value: object, key: Key) -> str:
    if not isinstance(value, str) or value not in key.choices:
        raise _Bad("one of " + ", ".join(repr(c) for c in key.choices))
    return value


def _check_digits(value: object, key: Key) -> str:
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        if key.default == "" and value == "":
            return ""
        raise _Bad("a string of digits 0-9")
    return value


def _check_code(value: object, key: Key) -> str:
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        raise _Bad("a string of DTMF digits 0-9, * and #")
    return value


def _check_path(value: object, key: Key) -> str:
    if not isinstance(value, str) or "\0" in value:
        raise _Bad("a file path (or empty)")
    return value


def _check_abspath(value: object, key: Key) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value:
        raise _Bad("an absolute path")
    return value


def _check_url(value: object, key: Key) -> str:
    if not isinstance(value, str):
        raise _Bad("an http:// or https:// URL (or empty)")
    if value and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise _Bad("an http:// or https:// URL (or empty)")
    return value


def _check_loopback(value: object, key: Key) -> str:
    try:
        if isinstance(value, str) and ipaddress.ip_address(value).is_loopback:
            return value
    except ValueError:
        pass
    raise _Bad("a loopback address such as 127.0.0.1 or ::1")


def _list_of(value: object, expected: str, check: Callable[[object], bool]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(check(v) for v in value):
        raise _Bad(expected)
    return tuple(value)


def _check_str_list(value: object, key: Key) -> tuple[str, ...]:
    return _list_of(value, "a list of strings", lambda v: isinstance(v, str) and v != "")


def _check_digits_list(value: object, key: Key) -> tuple[str, ...]:
    return _list_of(
        value,
        "a list of digit strings",
        lambda v: isinstance(v, str) and _DIGITS.fullmatch(v) is not None,
    )


def _check_patterns(value: object, key: Key) -> tuple[str, ...]:
    return _list_of(
        value,
        "a list of number patterns (digits, ? = one digit, * = any rest)",
        lambda v: isinstance(v, str) and _PATTERN.fullmatch(v) is not None,
    )


def _check_argv(value: object, key: Key) -> tuple[str, ...]:
    argv = _list_of(value, "an argv list of strings, program first", lambda v: isinstance(v, str))
    if argv and not argv[0]:
        raise _Bad("an argv list of strings, program first")
    return argv


def _check_events(value: object, key: Key) -> tuple[str, ...]:
    return _list_of(
        value,
        "a list of events from " + ", ".join(NOTIFY_EVENTS),
        lambda v: v in NOTIFY_EVENTS,
    )


def parse_time_range(text: str) -> TimeRange:
    match = _TIME_RANGE.fullmatch(text.strip())
    if match is None:
        raise _Bad('time ranges like "22:00-07:00"')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise _Bad('time ranges like "22:00-07:00"', "start equals end")
    return TimeRange(start, end)


def _check_timezone(value: object, key: Key) -> str:
    if not isinstance(value, str):
        raise _Bad("an IANA time zone such as Europe/Berlin (or empty)")
    if value:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise _Bad("an IANA time zone such as Europe/Berlin (or empty)",
                       f"unknown time zone {value!r}") from None
    return value


def _check_time_ranges(value: object, key: Key) -> tuple[TimeRange, ...]:
    if isinstance(value, str):
        value = [value] if value else []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Bad('a list of time ranges like "22:00-07:00"')
    return tuple(parse_time_range(v) for v in value)


_CHECKS: dict[str, Callable[[object, Key], Any]] = {
    "int": _check_int,
    "float": _check_float,
    "seconds": _check_seconds,
    "bool": _check_bool,
    "str": _check_str,
    "enum": _check_enum,
    "digits": _check_digits,
    "code": _check_code,
    "path": _check_path,
    "abspath": _check_abspath,
    "url": _check_url,
    "loopback": _check_loopback,
    "str-list": _check_str_list,
    "digits-list": _check_digits_list,
    "patterns": _check_patterns,
    "argv": _check_argv,
    "events": _check_events,
    "time-ranges": _check_time_ranges,
    "timezone": _check_timezone,
}


def number_matches(pattern: str, number: str) -> bool:
    """Whether *number* matches a config number pattern (``?`` one digit, ``*`` any rest)."""
    return fnmatch.fnmatchcase(number, pattern.replace("[", "[[]"))


# ----------------------------------------------------------------------- loading


def _build(
    path: str,
    schema: Mapping[str, Key],
    data: Mapping[str, Any],
    origin: Mapping[str, str],
    default_file: str,
) -> dict[str, Any]:
    """Check ``data`` against ``schema`` (rooted at dotted ``path``); return dataclass kwargs.

    ``origin`` maps dotted keys to the file that set them, so errors name the right file.
    """
    out: dict[str, Any] = {}
    for name in data:
        if name not in schema:
            dotted = f"{path}.{name}" if path else name
            raise ConfigError(
                "unknown key",
                file=origin.get(dotted, default_file),
                key=dotted,
                expected="one of " + ", ".join(sorted(schema)),
            )
    for name, key in schema.items():
        dotted = f"{path}.{name}" if path else name
        attr = key.attr or name
        file = origin.get(dotted, default_file)
        present = name in data
        value = data.get(name)
        if key.kind == "section":
            assert key.table is not None
            if present and not isinstance(value, dict):
                raise ConfigError("is not a table", file=file, key=dotted,
                                  expected=f"a [{dotted}] table")
            kwargs = _build(dotted, key.table, value or {}, origin, default_file)
            out[attr] = _CLASSES[_class_key(dotted)](**kwargs)
            continue
        if key.kind == "tables":
            assert key.table is not None
            if not present:
                out[attr] = ()
                continue
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ConfigError("is not an array of tables", file=file, key=dotted,
                                  expected=f"[[{dotted}]] tables")
            items = []
            for index, item in enumerate(value):
                item_path = f"{dotted}[{index}]"
                item_origin = {f"{item_path}.{k}": file for k in item}
                kwargs = _build(item_path, key.table, item, item_origin, file)
                items.append(_CLASSES[_class_key(dotted)](**kwargs))
            out[attr] = tuple(items)
            continue
        if not present:
            if key.default is REQUIRED:
                raise ConfigError("is missing", file=file, key=dotted,
                                  expected=_expected_of(key))
            if key.default is None:
                out[attr] = None
                continue
            value = key.default
        try:
            out[attr] = _CHECKS[key.kind](value, key)
        except _Bad as bad:
            raise ConfigError(
                bad.message or f"has the wrong value {value!r}",
                file=file,
                key=dotted,
                expected=bad.expected,
            ) from None
    return out


def _class_key(dotted: str) -> str:
    return re.sub(r"\[\d+\]", "", dotted)


def _expected_of(key: Key) -> str:
    try:
        _CHECKS[key.kind](object(), key)
    except _Bad as bad:
        return bad.expected
    return key.kind


def _merge(
    base: dict[str, Any],
    extra: Mapping[str, Any],
    origin: dict[str, str],
    file: str,
    prefix: str,
    schema: Mapping[str, Key] | None,
) -> None:
    """Merge *extra* into *base*: tables merge key by key, everything else is replaced."""
    for name, value in extra.items():
        dotted = f"{prefix}.{name}" if prefix else name
        key = schema.get(name) if schema is not None else None
        if (
            isinstance(value, dict)
            and key is not None
            and key.kind == "section"
            and isinstance(base.get(name), dict)
        ):
            _merge(base[name], value, origin, file, dotted, key.table)
            continue
        base[name] = value
        _mark(origin, dotted, value, file, key)


def _mark(origin: dict[str, str], dotted: str, value: Any, file: str, key: Key | None) -> None:
    origin[dotted] = file
    if isinstance(value, dict) and key is not None and key.kind == "section":
        for name, sub in value.items():
            sub_key = key.table.get(name) if key.table else None
            _mark(origin, f"{dotted}.{name}", sub, file, sub_key)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("file does not exist", file=str(path)) from None
    except PermissionError:
        raise ConfigError("file is not readable", file=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory", file=str(path), expected="a TOML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"is not UTF-8 ({exc.reason})", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"TOML syntax error: {exc}", file=str(path)) from None


def conf_d_files(main: Path) -> list[Path]:
    """``conf.d/*.toml`` next to the main file, in name order."""
    directory = main.parent / "conf.d"
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


def load_config(path: str | Path = DEFAULT_CONFIG, *, conf_d: bool = True) -> Config:
    """Read and validate the main file plus ``conf.d/*.toml``; raise ConfigError."""
    main = Path(path)
    files = [main] + (conf_d_files(main) if conf_d else [])
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for file in files:
        _merge(merged, _read_toml(file), origin, str(file), "", SCHEMA)
    return config_from_dict(merged, origin=origin, default_file=str(main),
                            sources=tuple(str(f) for f in files))


def config_from_dict(
    data: Mapping[str, Any],
    *,
    origin: Mapping[str, str] | None = None,
    default_file: str = "<config>",
    sources: tuple[str, ...] = (),
) -> Config:
    """Validate an already parsed TOML document (tests, ``config check``)."""
    kwargs = _build("", SCHEMA, data, origin or {}, default_file)
    config = Config(**kwargs, sources=sources)
    _cross_checks(config, origin or {}, default_file)
    return config


def default_config() -> Config:
    """Every key at its default (no file)."""
    return config_from_dict({})


# ------------------------------------------------------------------ cross checks


def _dupes(values: Iterable[Any]) -> list[Any]:
    seen: set[Any] = set()
    dupes = []
    for v in values:
        if v in seen:
            dupes.append(v)
        seen.add(v)
    return dupes


def _cross_checks(config: Config, origin: Mapping[str, str], default_file: str) -> None:
    def fail(key: str, message: str, expected: str) -> None:
        top = key.split("[")[0]
        raise ConfigError(message, file=origin.get(top, default_file), key=key,
                          expected=expected)

    ctrls = [c.ctrl for c in config.capi.controllers]
    for dup in _dupes(ctrls):
        fail("capi.controllers", f"controller {dup} is configured twice", "unique ctrl numbers")
    msns = [m for c in config.capi.controllers for m in c.msns]
    for dup in _dupes(msns):
        fail("capi.controllers", f"MSN {dup} is configured twice", "each MSN on one controller")
    for dup in _dupes(p.port for p in config.fxs.ports):
        fail("fxs.ports", f"port {dup} is configured twice", "unique port numbers")
    for dup in _dupes(p.extension for p in config.fxs.ports):
        fail("fxs.ports", f"extension {dup} is configured twice", "unique extensions")
    for i, port in enumerate(config.fxs.ports):
        if config.sim.enabled and port.port > config.sim.fxs_ports:
            fail(f"fxs.ports[{i}].port", f"port {port.port} does not exist on the simulated "
                 "bridge", f"at most sim.fxs_ports = {config.sim.fxs_ports}")
        if not port.msn:
            continue
        owner = [c for c in config.capi.controllers if c.ctrl == port.ctrl]
        if config.capi.controllers and not owner:
            fail(f"fxs.ports[{i}].ctrl", f"controller {port.ctrl} is not configured",
                 "one of " + ", ".join(str(c) for c in ctrls))
        if owner and port.msn not in owner[0].msns:
            fail(f"fxs.ports[{i}].msn", f"{port.msn} is not an MSN of controller {port.ctrl}",
                 "one of " + ", ".join(owner[0].msns))
    if config.fxs.hook.flash_min_ms >= config.fxs.hook.flash_max_ms:
        fail("fxs.hook.flash_max_ms", "must be longer than flash_min_ms",
             f"more than {config.fxs.hook.flash_min_ms}")
    codes = config.fxs.codes
    for name in ("activate", "cancel", "status"):
        if not getattr(codes, name):
            fail(f"fxs.codes.{name}", "must not be empty", "a DTMF code such as *37#")
    if len(codes.activate_digit) > 1:
        fail("fxs.codes.activate_digit", "is longer than one digit", "one digit, or empty")
    for dup in _dupes(c.extension for c in config.policy.callers):
        fail("policy.callers", f"extension {dup} has two rule tables", "one table per caller")
    for dup in _dupes(c.extension for c in config.notify.callers):
        fail("notify.callers", f"extension {dup} has two tables", "one table per caller")
    if config.capi.enabled and config.capi.driver in ("rcapi", "fritzbox") and not (
        config.capi.host
    ):
        fail("capi.host", f"is empty but capi.driver is {config.capi.driver!r}",
             "the remote CAPI host")
    if config.fxs.enabled and not config.fxs.device and not config.sim.enabled:
        fail("fxs.device", "is empty", "a device path or pyserial URL")


# ------------------------------------------------------------------ introspection


def schema_keys(schema: Mapping[str, Key] = SCHEMA, prefix: str = "") -> list[str]:
    """Every dotted key the config code knows (arrays of tables as ``a.b[].c``)."""
    keys: list[str] = []
    for name, key in schema.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if key.kind == "section":
            assert key.table is not None
            keys.extend(schema_keys(key.table, dotted))
        elif key.kind == "tables":
            assert key.table is not None
            keys.extend(schema_keys(key.table, dotted + "[]"))
        else:
            keys.append(dotted)
    return keys


def dataclass_fields_match_schema() -> list[str]:
    """Names that differ between SCHEMA and the dataclasses (empty when consistent)."""
    problems: list[str] = []

    def walk(path: str, schema: Mapping[str, Key]) -> None:
        cls = _CLASSES[path]
        expected = {key.attr or name for name, key in schema.items()}
        have = {f.name for f in fields(cls)} - {"sources"}
        if expected != have:
            problems.append(f"{path}: schema {sorted(expected)} vs {cls.__name__} {sorted(have)}")
        for name, key in schema.items():
            if key.table is not None:
                walk(f"{path}.{name}", key.table)

    for name, key in SCHEMA.items():
        assert key.table is not None
        walk(name, key.table)
    return problems
