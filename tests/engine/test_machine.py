"""The rulebooks in machine.py are consistent data, and the engine implements them."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest

from ccbs_isdn.engine import Book, machine
from ccbs_isdn.engine import engine as engine_module
from ccbs_isdn.engine.engine import CcbsEngine, _Model
from ccbs_isdn.engine.request import CcRequest, RequestRecord, Role
from tests.engine.harness import Box


@pytest.mark.parametrize("role", list(Role))
def test_every_callback_and_condition_is_implemented(role: Role) -> None:
    missing = {name for name in machine.callbacks(role) if not callable(getattr(_Model, name,
                                                                               None))}
    assert missing == set()


@pytest.mark.parametrize("role", list(Role))
def test_every_state_named_by_a_rule_exists_and_every_state_is_reachable(role: Role) -> None:
    book = machine.rulebook(role)
    states = set(book["states"])
    for row in book["transitions"]:
        assert row["source"] in states, row
        assert row["dest"] in states, row
    reached = {book["initial"]}
    frontier = [book["initial"]]
    while frontier:
        here = frontier.pop()
        for row in book["transitions"]:
            if row["source"] == here and row["dest"] not in reached:
                reached.add(row["dest"])
                frontier.append(row["dest"])
    assert reached == states


@pytest.mark.parametrize("role", list(Role))
def test_final_states_have_no_way_out_and_every_live_state_can_end(role: Role) -> None:
    book = machine.rulebook(role)
    for row in book["transitions"]:
        assert row["source"] not in machine.FINAL_STATES, row
    # WaitDestruction *is* a cancel in progress; it ends by result, error or T-ACTIVATE
    live = set(book["states"]) - set(machine.FINAL_STATES) - {"WaitDestruction"}
    for state in live:
        assert any(row["source"] == state and row["trigger"] == "cancel"
                   for row in book["transitions"]), f"{role.value}: {state} cannot be cancelled"


def test_the_monitor_table_covers_etsi_user_a_clauses() -> None:
    """etsi-ccbs.md §6: the triggers of the user-A state table all have rows."""
    rows = {(r["trigger"], r["source"]) for r in machine.rulebook(Role.MONITOR)["transitions"]}
    for needed in [
        ("activate", "Available"), ("erase_linkage", "Available"), ("cancel", "Available"),
        ("result_ok", "Requested"), ("result_error", "Requested"), ("t_activate", "Requested"),
        ("cancel", "Requested"), ("result_ok", "WaitDestruction"),
        ("result_error", "WaitDestruction"), ("t_activate", "WaitDestruction"),
        ("bfree", "Activated"), ("remote_user_free", "Activated"),
        ("stop_alerting", "WaitCallback"), ("a_answered", "WaitCallback"),
        *[(t, s) for t in machine.ERASE_TRIGGERS.values()
          for s in ("Activated", "WaitCallback", "Callback")],
        *[("cancel", s) for s in ("Activated", "WaitCallback", "Callback")],
        *[("lifetime", s) for s in ("Activated", "WaitCallback")],
    ]:
        assert needed in rows, needed


def test_triggers_fired_by_the_engine_exist_in_a_rulebook() -> None:
    """Every string literal passed as a trigger in engine.py names a real trigger."""
    known = set().union(*(machine.triggers(role) for role in Role))
    tree = ast.parse(Path(inspect.getfile(engine_module)).read_text())
    fired: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
                "_fire", "_fire_if_active", "_arm"):
            for arg in node.args[1:2]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    fired.add(arg.value)
    fired |= set(machine.ERASE_TRIGGERS.values()) | set(engine_module._NETWORK_TRIGGERS.values())
    assert fired, "the scan found nothing: it is broken"
    assert fired - known == set()


def test_machine_has_no_auto_transitions_and_ignores_unknown_triggers() -> None:
    engine = CcbsEngine(Box().directory)
    for role in Role:
        m = engine._machines[role]
        assert not any(name.startswith("to_") for name in m.events)
        assert m.ignore_invalid_triggers


def test_diagram_data_has_every_role_and_why_texts() -> None:
    data = machine.diagram_data()
    assert set(data) == {"monitor", "local", "redial"}
    monitor = data["monitor"]
    assert monitor["initial"] == "Available"
    assert any("T-ACTIVATE" in row["why"] for row in monitor["transitions"])
    internal = [row for row in monitor["transitions"] if row["internal"]]
    assert internal and all(row["dest"] == row["source"] for row in internal)


def test_record_and_live_request_have_the_same_fields() -> None:
    live = [(f.name, f.default) for f in dataclasses.fields(CcRequest)]
    frozen = [(f.name, f.default) for f in dataclasses.fields(RequestRecord)]
    assert live == frozen


def test_snapshot_roundtrip() -> None:
    box = Box()
    box.start()
    box.send(Book("21", "22"))
    record = box.record()
    assert CcRequest.from_record(record).snapshot() == record
