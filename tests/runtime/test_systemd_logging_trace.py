"""sd_notify over a real datagram socket, journald-prefixed logging, the trace file."""

from __future__ import annotations

import io
import logging
import os
import socket
from pathlib import Path

import pytest

from ccbs_isdn.errors import FacilityError
from ccbs_isdn.runtime.logging import JournalFormatter, kv, setup_logging
from ccbs_isdn.runtime.systemd import SystemdNotifier, watchdog_interval
from ccbs_isdn.runtime.trace import Tracer


@pytest.fixture
def notify_socket(tmp_path: Path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def test_notify_sends_state_lines_to_a_path_socket(notify_socket) -> None:
    path, sock = notify_socket
    notifier = SystemdNotifier(path)
    assert notifier.ready("3 requests")
    assert sock.recv(4096) == b"READY=1\nSTATUS=3 requests"
    assert notifier.reloading()
    lines = sock.recv(4096).decode().split("\n")
    assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.close()


def test_notify_reaches_an_abstract_socket() -> None:
    name = f"ccbsd-test-{os.getpid()}-{id(object())}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        assert SystemdNotifier("@" + name).stopping()
        assert sock.recv(100) == b"STOPPING=1"
    finally:
        sock.close()


def test_without_systemd_notify_is_a_no_op() -> None:
    notifier = SystemdNotifier("")
    assert not notifier.enabled
    assert notifier.ready() is False


def test_notify_to_a_vanished_socket_does_not_raise(tmp_path: Path) -> None:
    assert SystemdNotifier(str(tmp_path / "gone")).ready() is False


@pytest.mark.parametrize(
    ("env", "interval"),
    [({"WATCHDOG_USEC": "30000000"}, 15.0), ({}, None), ({"WATCHDOG_USEC": "0"}, None),
     ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, None),
     ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}, 1.0),
     ({"WATCHDOG_USEC": "junk"}, None)],
)
def test_watchdog_interval_is_half_of_watchdog_usec(env: dict[str, str],
                                                    interval: float | None) -> None:
    assert watchdog_interval(env) == interval


def _record(level: int, msg: str, **ctx: object) -> logging.LogRecord:
    record = logging.LogRecord("ccbs_isdn.runtime.service", level, __file__, 1, msg, (), None)
    record.ctx = ctx
    return record


@pytest.mark.parametrize(("level", "prefix"), [(logging.ERROR, "<3>"), (logging.WARNING, "<4>"),
                                               (logging.INFO, "<6>"), (logging.DEBUG, "<7>")])
def test_journal_priority_prefixes(level: int, prefix: str) -> None:
    line = JournalFormatter().format(_record(level, "request activated", id=17, caller="21"))
    assert line == f"{prefix}request activated logger=runtime.service id=17 caller=21"


def test_context_values_with_blanks_are_quoted_and_tracebacks_keep_the_priority() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = _record(logging.ERROR, "failed", reason='no "answer" here')
        record.exc_info = sys.exc_info()
    lines = JournalFormatter().format(record).splitlines()
    assert lines[0] == '<3>failed logger=runtime.service reason="no \\"answer\\" here"'
    assert all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>ValueError: boom"


def test_setup_logging_writes_prefixed_lines_and_honours_the_level() -> None:
    root = logging.getLogger("ccbs_isdn")
    saved = (root.level, root.propagate, list(root.handlers))
    stream = io.StringIO()
    try:
        setup_logging("warning", stream)
        log = logging.getLogger("ccbs_isdn.test")
        log.info("hidden")
        log.warning("shown", extra=kv(port=2))
        assert stream.getvalue() == "<4>shown logger=test port=2\n"
    finally:  # leave the loggers as pytest's caplog expects them
        root.setLevel(saved[0])
        root.propagate = saved[1]
        root.handlers[:] = saved[2]


def test_trace_writes_hex_and_decoded_facility_and_at_lines(tmp_path: Path) -> None:
    def decode(data: bytes) -> dict[str, object]:
        if data[0] != 0x91:
            raise FacilityError("unknown protocol profile", offset=0)
        return {"component": "invoke", "operation": "CCBSRemoteUserFree"}

    tracer = Tracer(decode)
    tracer.facility("rx", b"\x91\xa1\x00", ctrl=1)  # not started: nothing happens
    path = tmp_path / "trace.log"
    tracer.start(str(path))
    tracer.facility("rx", b"\x91\xa1\x00", ctrl=1)
    tracer.facility("tx", b"\x42", ctrl=2)
    tracer.at("tx", 'AT%RING=2,1,20,"31"', bridge="fxs0")
    tracer.stop()
    lines = path.read_text().splitlines()
    assert lines[0].split()[1:] == ["trace", "event=start", f"pid={os.getpid()}"]
    assert " facility ctrl=1 dir=rx hex=91a100 decoded=" in lines[1]
    assert "CCBSRemoteUserFree" in lines[1]
    assert 'ctrl=2 dir=tx hex=42 decoded="error: facility-error: unknown protocol profile"' \
        in lines[2]
    assert ' at bridge=fxs0 dir=tx line="AT%RING=2,1,20,\\"31\\""' in lines[3]
    assert lines[4].endswith("trace event=stop")
    assert path.stat().st_mode & 0o007 == 0  # never world-readable
