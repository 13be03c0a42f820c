"""ccbsctl against a real ccbsd process (simulated FXB/1 bridge on a pty, real FXS
driver, real SQLite): the administrator's stories, with and without --json."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from tests.runtime.harness import Ccbsd, CtlResult


@pytest.fixture
def daemon() -> Iterator[Ccbsd]:
    d = Ccbsd().start()
    try:
        yield d
    finally:
        d.close()


def ok(result: CtlResult) -> CtlResult:
    assert result.code == 0, f"exit {result.code}: {result.stderr}{result.stdout}"
    return result


def test_book_show_and_cancel_a_request_as_a_person_would(daemon: Ccbsd) -> None:
    booked = ok(daemon.ctl("request", "--from", "21", "--to", "22"))
    assert re.match(r"request 1 \w+: 21 -> 22 via local", booked.stdout)

    status = ok(daemon.ctl("status")).stdout
    assert "Requests: 1 active" in status
    header, row = [line for line in status.splitlines() if line.startswith(("ID ", "1 "))]
    assert header.split() == ["ID", "CALLER", "TARGET", "ROUTE", "STATE", "AGE", "EXPIRES",
                              "REASON"]
    cells = row.split()
    assert cells[:4] == ["1", "21", "22", "local"]
    assert re.fullmatch(r"4[45]m\d\ds", cells[6])  # 45 min lifetime
    assert "Lines: 4 of 4 up" in status
    assert re.search(r"^port\s+2\s+22\s+up\s+on-hook$", status, re.M)

    shown = ok(daemon.ctl("show", "1")).stdout
    assert "caller:      21" in shown and "target:      22" in shown
    assert re.search(r"activate\s+- -> Waiting\s+ctl:root\(0\)", shown) or \
        re.search(r"activate\s+- -> Waiting\s+ctl:\S+\(\d+\)", shown)

    cancelled = ok(daemon.ctl("cancel", "1"))
    assert cancelled.stdout.strip() == "cancelled 1 request(s): 1"
    assert "Requests: 0 active" in ok(daemon.ctl("status")).stdout
    history = ok(daemon.ctl("show", "1")).stdout
    assert re.search(r"cancel\s+\w+ -> Cancelled", history)
    assert "state:       Cancelled" in history


def test_json_output_is_one_document_per_command(daemon: Ccbsd) -> None:
    booked = ok(daemon.ctl("request", "--from", "21", "--to", "23", json_output=True)).json()
    assert booked["id"] == 1 and booked["caller"] == "21" and booked["target"] == "23"
    assert booked["route"] == "local" and booked["refreshed"] is False

    again = ok(daemon.ctl("request", "--from", "21", "--to", "23", json_output=True)).json()
    assert again["id"] == 1 and again["refreshed"] is True  # one request per (A, B) pair

    status = ok(daemon.ctl("status", json_output=True)).json()
    assert [r["id"] for r in status["requests"]] == [1]
    assert status["requests"][0]["expires"] > status["now"]
    assert {(x["kind"], x["id"], x["up"]) for x in status["lines"]} == {
        ("bridge", "fxs0", True), ("port", "1", True), ("port", "2", True),
        ("port", "3", True)}
    assert status["daemon"]["pid"] == daemon.proc.pid  # type: ignore[union-attr]

    shown = ok(daemon.ctl("show", "1", json_output=True)).json()
    assert shown["history"][0]["event"] == "activate"
    assert shown["history"][0]["actor"].startswith("ctl:")

    events = ok(daemon.ctl("events", "-n", "50", json_output=True)).json()["events"]
    assert any(e["event"] == "activated" and e.get("id") == 1 for e in events)

    cancelled = ok(daemon.ctl("cancel", "--caller", "21", json_output=True)).json()
    assert cancelled == {"cancelled": [1]}


def test_cancel_by_caller_and_all(daemon: Ccbsd) -> None:
    for caller, target in (("21", "22"), ("21", "23"), ("23", "22"), ("22", "23")):
        ok(daemon.ctl("request", "--from", caller, "--to", target))
    assert ok(daemon.ctl("cancel", "--caller", "21")).stdout.strip() == \
        "cancelled 2 request(s): 1, 2"
    everything = ok(daemon.ctl("cancel", "--all", "--yes", json_output=True)).json()
    assert sorted(everything["cancelled"]) == [3, 4]
    assert ok(daemon.ctl("status", json_output=True)).json()["requests"] == []


def test_refusals_and_unknown_requests_exit_1(daemon: Ccbsd) -> None:
    external = daemon.ctl("request", "--from", "21", "--to", "0301234567")
    assert external.code == 1
    assert "only for internal numbers" in external.stderr

    as_json = daemon.ctl("request", "--from", "21", "--to", "0301234567", json_output=True)
    assert as_json.code == 1
    assert as_json.json()["error"]["reason"] == "external-book"

    missing = daemon.ctl("cancel", "999")
    assert missing.code == 1 and "no matching pending request" in missing.stderr
    unknown = daemon.ctl("show", "999", json_output=True)
    assert unknown.code == 1 and unknown.json()["error"]["code"] == "not-found"
    not_a_number = daemon.ctl("show", "abc")
    assert not_a_number.code == 2 and "request ids are numbers" in not_a_number.stderr


def test_events_follow_streams_live(daemon: Ccbsd) -> None:
    human = daemon.follow("events", "--follow", "-n", "0")
    machine = daemon.follow("--json", "events", "--follow", "-n", "0")
    try:
        ok(daemon.ctl("status"))  # both followers are connected once this returns ...
        ok(daemon.ctl("request", "--from", "22", "--to", "21"))
        line = human.wait_for("activated")
        assert "id=1" in line and "caller=22" in line and "target=21" in line
        ok(daemon.ctl("cancel", "1"))
        assert "id=1" in human.wait_for("cancelled")
        import json

        kinds = []
        while "cancelled" not in kinds:
            kinds.append(json.loads(machine.next_line())["event"])
        assert "activated" in kinds
    finally:
        human.close()
        machine.close()


needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="running ccbsctl as another uid needs root")
NOBODY = 65534


@needs_root
def test_socket_group_member_may_read_but_not_change() -> None:
    d = Ccbsd(socket_group="nogroup").start()
    try:
        st = os.stat(d.socket)
        assert (st.st_mode & 0o777, st.st_gid) == (0o660, NOBODY)  # group nogroup
        ok(d.ctl("request", "--from", "21", "--to", "22"))
        status = d.ctl_as(NOBODY, NOBODY, "status", json_output=True)
        assert status.code == 0, status.stderr
        assert [r["id"] for r in status.json()["requests"]] == [1]
        denied = d.ctl_as(NOBODY, NOBODY, "cancel", "1")
        assert denied.code == 77
        assert "may not change requests (cancel)" in denied.stderr
        assert "admin group" in denied.stderr
        booked = d.ctl_as(NOBODY, NOBODY, "request", "--from", "21", "--to", "23", json_output=True)
        assert booked.code == 77 and booked.json()["error"]["code"] == "permission-denied"
        assert [r["id"] for r in ok(d.ctl("status", json_output=True)).json()["requests"]] \
            == [1]
        assert "control request failed" in d.log() and "code=permission-denied" in d.log()
    finally:
        d.close()


@needs_root
def test_user_outside_the_socket_group_gets_77_and_a_hint() -> None:
    d = Ccbsd(socket_group="").start()  # socket group = the daemon's group (root)
    try:
        denied = d.ctl_as(NOBODY, NOBODY, "status")
        assert denied.code == 77
        assert f"permission denied on {d.socket}" in denied.stderr
        assert "add your user to group 'root'" in denied.stderr
    finally:
        d.close()


@needs_root
def test_admin_group_member_may_change() -> None:
    d = Ccbsd(socket_group="nogroup", admin_group="nogroup").start()
    try:
        ok(d.ctl_as(NOBODY, NOBODY, "request", "--from", "21", "--to", "22"))
        shown = ok(d.ctl("show", "1", json_output=True)).json()
        assert shown["history"][0]["actor"] == "ctl:nobody(65534)"
        ok(d.ctl_as(NOBODY, NOBODY, "cancel", "1"))
    finally:
        d.close()
