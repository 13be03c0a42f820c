"""Local CCBS at its limits (product.md "Behaviour that users expect"): a request that
outlives its lifetime, and every limit reached — per caller, per callee (served FIFO),
global, one request per (A, B) pair — told through the phones (the reject tone a user
hears) and through the real ``ccbsctl`` (the error an administrator reads), against
the real ccbsd on the simulated box."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ccbs_isdn.drivers.sim.demo import Stage

from .conftest import ANNA, BERT, CLEO, DIRK, StageFactory
from .test_isdn_sequences import HookSink

pytestmark = pytest.mark.integration


@pytest.fixture
async def hook(tmp_path: Path) -> AsyncIterator[HookSink]:
    sink = HookSink(tmp_path)
    yield sink
    sink.close()


def limits(**values: int) -> str:
    return "\n[limits]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())


async def book_by_phone(stage: Stage, port: int, target: str, expect: str = "CONFIRM") -> None:
    """The phone on ``port`` calls ``target`` (busy), presses 5, hears ``expect``
    and hangs up."""
    phone = stage.box.phone(port)
    await stage.call_busy(phone, target)
    await stage.activate(phone, method="digit", expect=expect)
    await stage.hang_up(phone)


async def book_by_ctl(stage: Stage, caller: str, target: str) -> dict[str, Any]:
    """``ccbsctl --json request --from caller --to target`` that must succeed."""
    doc: dict[str, Any] = await stage.ccbsd.ctl_json("request", "--from", caller,
                                                     "--to", target)
    return doc


async def refused_by_ctl(stage: Stage, caller: str, target: str) -> tuple[str, dict[str, Any]]:
    """``ccbsctl request`` that must be refused: (the text a person reads on stderr,
    the ``--json`` error document)."""
    code, out, err = await stage.ccbsd.ctl("request", "--from", caller, "--to", target)
    assert code == 1 and not out, (code, out, err)
    code, out, _ = await stage.ccbsd.ctl("--json", "request", "--from", caller, "--to",
                                         target)
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False and doc["error"]["code"] == "refused"
    return err.strip(), doc["error"]


def pairs(status: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["caller"], r["target"]) for r in status["requests"]]


async def test_a_request_expires_after_its_lifetime(make_stage: StageFactory,
                                                    hook: HookSink) -> None:
    """Bert stays on the phone longer than the request lives (lifetime shortened to
    2 s): the request expires, the notification hook says so, and *#37# answers
    with the reject tone (nothing pending any more)."""
    stage = await make_stage(timers={"lifetime_ccbs": 2.0}, extra=hook.toml())
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.lift(bert)
    await book_by_phone(stage, 1, BERT)
    request = await stage.pending(ANNA, BERT)
    assert await hook.wait("activated ") == f"activated {request['id']} Waiting "
    assert await hook.wait("expired ") == f"expired {request['id']} Expired lifetime"
    await stage.settled()
    doc = await stage.ccbsd.ctl_json("show", str(request["id"]))
    assert (doc["state"], doc["reason"]) == ("Expired", "lifetime")
    assert doc["history"][-1]["event"] == "lifetime"
    await stage.code(anna, "*#37#", "REJECT")
    assert not box.rings(1)


async def test_per_caller_limit(make_stage: StageFactory) -> None:
    """Anna may have two requests pending: the third is refused on the phone (reject
    tone) and by ccbsctl (caller-limit); her other requests are untouched."""
    stage = await make_stage(extra=limits(per_caller=2))
    box = stage.box
    for port in (2, 3, 4):
        await stage.lift(box.phone(port))  # Bert, Cleo and Dirk are on the phone
    await book_by_phone(stage, 1, BERT)
    booked = await book_by_ctl(stage, ANNA, CLEO)
    assert (booked["route"], booked["state"], booked["refreshed"]) == ("local", "Waiting",
                                                                       False)
    await book_by_phone(stage, 1, DIRK, expect="REJECT")
    text, error = await refused_by_ctl(stage, ANNA, DIRK)
    assert text == f"ccbsctl: {ANNA} already has 2 pending requests (limit 2)"
    assert error["reason"] == "caller-limit"
    status = await stage.ccbsd.ctl_json("status")
    assert pairs(status) == [(ANNA, BERT), (ANNA, CLEO)]
    # someone else may still ask for Dirk
    assert (await book_by_ctl(stage, BERT, DIRK))["state"] == "Waiting"


async def test_per_callee_limit_and_fifo(make_stage: StageFactory) -> None:
    """Two callers may wait for Bert; Dirk, the third, hears the reject tone. When
    Bert hangs up the first in the queue (Anna) is recalled, the second (Cleo) only
    after Anna's call with Bert is over."""
    stage = await make_stage(extra=limits(per_callee=2))
    box = stage.box
    anna, bert, cleo = box.phone(1), box.phone(2), box.phone(3)
    await stage.lift(bert)
    await book_by_phone(stage, 1, BERT)
    await book_by_ctl(stage, CLEO, BERT)
    await book_by_phone(stage, 4, BERT, expect="REJECT")
    text, error = await refused_by_ctl(stage, DIRK, BERT)
    assert text == f"ccbsctl: 2 callers already wait for {BERT} (limit 2)"
    assert error["reason"] == "callee-limit"
    first = await stage.pending(ANNA, BERT)
    second = await stage.pending(CLEO, BERT)

    since = stage.mark()
    await stage.hang_up(bert)
    await stage.recall_ring(anna, since=since, clip=BERT)
    assert not box.rings(3), "Cleo waits her turn"
    anna.answer()
    await box.wait_for(lambda: bert.ringing, 10, "Bert rings for Anna")
    bert.answer()
    await box.wait_for(lambda: anna.peer == 2, 10, "Anna and Bert talk")
    await stage.until(lambda st: pairs(st) == [(CLEO, BERT)], 10, "Anna's request done")
    assert not box.rings(3), "Bert is busy with Anna: Cleo still waits"

    await stage.hang_up(anna)
    since = stage.mark()
    await stage.hang_up(bert)
    await stage.recall_ring(cleo, since=since, clip=BERT)
    cleo.answer()
    await box.wait_for(lambda: bert.ringing, 10, "Bert rings for Cleo")
    bert.answer()
    await box.wait_for(lambda: cleo.peer == 2, 10, "Cleo and Bert talk")
    await stage.settled()
    for request in (first, second):
        assert (await stage.history(request["id"]))["state"] == "Completed"
    assert len(box.rings(1, cadence=1)) == len(box.rings(3, cadence=1)) == 1


async def test_global_limit(make_stage: StageFactory) -> None:
    """The box holds at most three requests: the fourth is refused (global-limit),
    whoever asks and for whomever."""
    stage = await make_stage(extra=limits(**{"global": 3}))
    box = stage.box
    await stage.lift(box.phone(2))
    await stage.lift(box.phone(3))
    await book_by_ctl(stage, ANNA, BERT)
    await book_by_ctl(stage, ANNA, CLEO)
    await book_by_phone(stage, 4, BERT)
    await book_by_phone(stage, 4, CLEO, expect="REJECT")
    text, error = await refused_by_ctl(stage, DIRK, CLEO)
    assert text == "ccbsctl: the box already holds 3 requests (limit 3)"
    assert error["reason"] == "global-limit"
    status = await stage.ccbsd.ctl_json("status")
    assert pairs(status) == [(ANNA, BERT), (ANNA, CLEO), (DIRK, BERT)]


async def test_one_request_per_pair_is_refreshed_not_duplicated(
        make_stage: StageFactory) -> None:
    """Anna asks for Bert twice by phone and once more with ccbsctl: each time she is
    told yes (confirm tone / refreshed), but there is one request, with a later
    expiry, and one recall."""
    stage = await make_stage()
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.lift(bert)
    await book_by_phone(stage, 1, BERT)
    request = await stage.pending(ANNA, BERT)
    await book_by_phone(stage, 1, BERT)
    again = await book_by_ctl(stage, ANNA, BERT)
    assert (again["id"], again["refreshed"]) == (request["id"], True)
    assert again["expires"] > request["expires"]
    status = await stage.ccbsd.ctl_json("status")
    assert pairs(status) == [(ANNA, BERT)]
    history = await stage.history(request["id"])
    assert [h["event"] for h in history["history"]].count("refresh") == 2

    since = stage.mark()
    await stage.hang_up(bert)
    await stage.recall_ring(anna, since=since, clip=BERT)
    anna.answer()
    await box.wait_for(lambda: bert.ringing, 10, "Bert rings")
    bert.answer()
    await box.wait_for(lambda: anna.peer == 2, 10, "Anna and Bert talk")
    await stage.settled()
    assert len(box.rings(1, cadence=1)) == 1
