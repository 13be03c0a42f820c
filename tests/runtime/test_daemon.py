"""ccbsd as systemd runs it: Type=notify readiness, watchdog, SIGHUP reload without
losing a request, SIGTERM, restart with the same store, trace and metrics files."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime.harness import Ccbsd, CtlResult, base_config


@pytest.fixture
def daemon() -> Iterator[Ccbsd]:
    d = Ccbsd()
    try:
        yield d
    finally:
        d.close()


def ok(result: CtlResult) -> CtlResult:
    assert result.code == 0, f"exit {result.code}: {result.stderr}{result.stdout}"
    return result


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout} s")
        time.sleep(0.05)


def test_ready_status_and_graceful_stop(daemon: Ccbsd) -> None:
    ready = daemon.start().notifications[-1]
    assert "READY=1" in ready.split("\n")
    assert re.search(r"STATUS=0 active requests, 4/4 lines up", ready)
    assert Path(daemon.socket).exists()
    daemon.signal(signal.SIGTERM)
    daemon.wait_for("STOPPING=1")
    assert daemon.stop() == 0
    assert not Path(daemon.socket).exists()
    log = daemon.log()
    assert "<6>ccbsd ready logger=daemon" in log
    assert "<6>ccbsd stopped" in log
    assert all(re.match(r"<[2-7]>", line) for line in log.splitlines() if line)


def test_watchdog_pings_come_from_the_loop() -> None:
    d = Ccbsd(env={"WATCHDOG_USEC": "400000"})
    try:
        d.start()
        d.wait_for("WATCHDOG=1", timeout=10)
        d.wait_for("WATCHDOG=1", timeout=10)  # and keeps pinging
    finally:
        d.close()


def test_reload_with_a_changed_limit_keeps_every_request(daemon: Ccbsd) -> None:
    daemon.start()
    ok(daemon.ctl("request", "--from", "21", "--to", "22"))
    daemon.config.write_text(base_config(daemon.root, "[limits]\nper_caller = 1\n"))
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("RELOADING=1")
    ready = daemon.wait_for("READY=1")
    assert "STATUS=1 active requests" in ready

    refused = daemon.ctl("request", "--from", "21", "--to", "23", json_output=True)
    assert refused.code == 1
    assert refused.json()["error"]["reason"] == "caller-limit"
    status = ok(daemon.ctl("status", json_output=True)).json()
    assert [(r["id"], r["caller"], r["target"]) for r in status["requests"]] == \
        [(1, "21", "22")]

    daemon.config.write_text(base_config(daemon.root, "[limits]\nper_caller = 5\n"))
    reloaded = ok(daemon.ctl("reload", json_output=True)).json()
    assert reloaded == {"files": [str(daemon.config)], "restart_needed": []}
    assert ok(daemon.ctl("request", "--from", "21", "--to", "23", json_output=True)
              ).json()["id"] == 2


def test_bad_config_on_reload_keeps_the_old_one(daemon: Ccbsd) -> None:
    daemon.start()
    ok(daemon.ctl("request", "--from", "21", "--to", "22"))
    good = daemon.config.read_text()
    daemon.config.write_text(good + "\n[limits]\nper_callee = -3\n")
    failed = daemon.ctl("reload")
    assert failed.code == 78
    assert f"{daemon.config}: limits.per_callee" in failed.stderr
    daemon.signal(signal.SIGHUP)
    assert "STATUS=reload failed" in daemon.wait_for("READY=1")
    assert "reload failed, keeping the running configuration" in daemon.log()
    assert [r["id"] for r in ok(daemon.ctl("status", json_output=True)).json()["requests"]] \
        == [1]


def test_a_restart_keeps_the_requests_and_never_reuses_an_id(daemon: Ccbsd) -> None:
    daemon.start()
    ok(daemon.ctl("request", "--from", "21", "--to", "22"))
    ok(daemon.ctl("request", "--from", "22", "--to", "23"))
    ok(daemon.ctl("cancel", "2"))
    assert daemon.stop() == 0
    daemon.start()
    status = ok(daemon.ctl("status", json_output=True)).json()
    assert [(r["id"], r["caller"], r["target"]) for r in status["requests"]] == \
        [(1, "21", "22")]
    history = ok(daemon.ctl("show", "1", json_output=True)).json()["history"]
    assert history[0]["event"] == "activate"
    assert any(h["actor"] == "restore" for h in history)
    assert ok(daemon.ctl("request", "--from", "23", "--to", "21", json_output=True)
              ).json()["id"] == 3
    assert "restored=1" in daemon.log()
    assert "no driver for action" not in daemon.log()  # reconciliation ran on the drivers


def test_a_second_daemon_on_the_same_socket_exits_75(daemon: Ccbsd) -> None:
    daemon.start()
    (daemon.root / "second").mkdir()
    # same control socket, its own state directory
    second = Ccbsd(daemon.config.read_text().replace(
        str(daemon.root / "state"), str(daemon.root / "second" / "state")),
        root=daemon.root / "second")
    try:
        second.start(wait_ready=False)
        assert second.proc is not None
        assert second.proc.wait(60) == 75
        assert "another ccbsd is running" in second.log()
    finally:
        second.close()
    ok(daemon.ctl("status"))  # the first one is unharmed


def test_trace_file_on_demand(daemon: Ccbsd) -> None:
    daemon.start()
    trace = daemon.root / "trace.log"
    started = ok(daemon.ctl("trace", "start", str(trace), json_output=True)).json()
    assert started == {"file": str(trace)}
    ok(daemon.ctl("request", "--from", "21", "--to", "22"))  # the engine polls the lines
    wait_until(lambda: "AT%HOOK?" in trace.read_text(), what="a traced hook poll")
    text = trace.read_text()
    assert re.search(r' at bridge=fxs0 dir=tx line="?AT%HOOK\?', text)
    assert re.search(r" at bridge=fxs0 dir=rx line=\"%HOOK: 2,ON\"", text)
    stopped = ok(daemon.ctl("trace", "stop", json_output=True)).json()
    assert stopped["file"] == str(trace) and stopped["lines"] >= 3
    assert text.splitlines()[0].split()[1] == "trace"


def test_metrics_textfile_follows_the_requests() -> None:
    d = Ccbsd()
    prom = d.root / "metrics" / "ccbsd.prom"
    d.config.write_text(base_config(
        d.root, f'[metrics]\nmode = "textfile"\ntextfile = "{prom}"\ninterval = 0.2\n'))
    try:
        d.start()
        ok(d.ctl("request", "--from", "21", "--to", "22"))
        wait_until(lambda: prom.exists() and re.search(
            r'ccbs_requests_active\{role="local",state="\w+"\} 1\.0', prom.read_text()),
            what="the active request in the textfile")
        text = prom.read_text()
        assert 'ccbs_line_up{id="fxs0",kind="bridge"} 1.0' in text
        assert 'ccbs_control_requests_total{command="request",result="ok"} 1.0' in text
    finally:
        d.close()
