"""Local CCBS between two analog phones of the box (product.md "Local CCBS"), told as
the users experience it, against the real ccbsd."""

from __future__ import annotations

import pytest
from ccbs_isdn.drivers.sim.demo import Stage

from .conftest import ANNA, BERT, TIMERS, StageFactory


async def _recall_completes(stage: Stage, *, since: int) -> None:
    """Anna's phone rings with the recall cadence showing Bert; she answers, Bert's
    phone rings showing Anna, he answers: they are connected and the request is done."""
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.recall_ring(anna, since=since, clip=BERT)
    anna.answer()
    await stage.command("AT%RING=2,2,", since=since)  # internal cadence
    await box.wait_for(lambda: bert.ringing and bert.clip is not None, 10, "Bert rings")
    assert bert.clip is not None and bert.clip[0] == ANNA
    assert anna.tone == "RINGBACK"
    bert.answer()
    await box.wait_for(lambda: anna.peer == 2 and bert.peer == 1, 10, "Anna and Bert talk")
    await stage.settled()


@pytest.mark.parametrize("method", ["flash", "digit"])
async def test_anna_gets_bert_back_after_busy(stage: Stage, method: str) -> None:
    """Bert is on the phone; Anna calls him and hears busy; R *37# (or just 5) gives
    the confirm tone; when Bert hangs up, after the guard time, Anna's phone rings."""
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.lift(bert)
    await stage.call_busy(anna, BERT)
    await stage.activate(anna, method=method)
    request = await stage.pending(ANNA, BERT)
    assert (request["route"], request["state"]) == ("local", "Waiting")
    code, text, _ = await stage.ccbsd.ctl("status")  # what the administrator sees
    assert code == 0 and f"{ANNA}" in text and "local" in text
    await stage.hang_up(anna)

    since = stage.mark()
    await stage.hang_up(bert)
    freed_ms = box.bridge.now_ms()
    await _recall_completes(stage, since=since)

    ring = box.rings(1, cadence=1)
    assert len(ring) == 1, "exactly one recall ring"
    assert ring[0].t_ms - freed_ms >= TIMERS["guard"] * 1000 - 20, "guard time kept"
    recheck = [c for c in box.bridge.commands[since:] if c.t_ms <= ring[0].t_ms]
    assert any(c.text == "AT%HOOK?" for c in recheck), "B re-checked before the recall"
    history = await stage.history(request["id"])
    assert history["state"] == "Completed"


async def test_status_and_cancel_codes(stage: Stage) -> None:
    """*#37# says whether a request is pending; #37# cancels all; *37*<n># books one
    without a call and #37*<n># cancels just that one."""
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.code(anna, "*#37#", "REJECT")  # nothing pending

    await stage.lift(bert)
    await stage.call_busy(anna, BERT)
    await stage.activate(anna)
    await stage.hang_up(anna)
    await stage.code(anna, "*#37#", "CONFIRM")
    await stage.code(anna, "#37#", "CONFIRM")
    await stage.settled()
    await stage.code(anna, "*#37#", "REJECT")
    await stage.code(anna, "#37#", "REJECT")  # nothing left to cancel

    await stage.code(anna, "*37*22#", "CONFIRM")
    request = await stage.pending(ANNA, BERT)
    await stage.code(anna, "#37*23#", "REJECT")  # not the one for 23
    await stage.code(anna, "#37*22#", "CONFIRM")
    await stage.settled()
    history = await stage.history(request["id"])
    assert history["state"] == "Cancelled"
    assert not box.rings(1)


async def test_anna_busy_when_bert_frees_is_rung_when_she_hangs_up(stage: Stage) -> None:
    """If A is on the phone when B frees, the request is suspended and resumes when A
    hangs up (product.md)."""
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.lift(bert)
    await stage.call_busy(anna, BERT)
    await stage.activate(anna, method="digit")
    await stage.hang_up(anna)
    await stage.lift(anna)  # Anna is busy with something else now
    since = stage.mark()
    await stage.hang_up(bert)
    await stage.until(lambda st: any(r["state"] == "Suspended" and r["reason"] == "a-busy"
                                     for r in st["requests"]), 15, "suspended, A busy")
    assert not box.rings(1)
    await stage.hang_up(anna)
    await _recall_completes(stage, since=since)
    assert len(box.rings(1, cadence=1)) == 1


async def test_a_missed_recall_is_tried_again(stage: Stage) -> None:
    """Anna does not answer the first recall; after the retry pause she is rung again
    and takes it."""
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.lift(bert)
    await stage.call_busy(anna, BERT)
    await stage.activate(anna)
    await stage.hang_up(anna)
    since = stage.mark()
    await stage.hang_up(bert)
    await stage.recall_ring(anna, since=since, clip=BERT)
    await box.wait_for(lambda: not anna.ringing, TIMERS["a_answer"] + 5, "ring times out")
    await stage.until(lambda st: any(r["reason"] == "recall-missed" or r["state"] != "RecallA"
                                     for r in st["requests"]), 10, "recall missed")
    second = stage.mark()
    await _recall_completes(stage, since=second)
    assert len(box.rings(1, cadence=1)) == 2


async def test_a_lost_hook_urc_is_caught_by_the_poll(make_stage: StageFactory) -> None:
    """Bert's on-hook URC is lost on the wire; the reconciliation poll (1 s while a
    request watches his port) finds him on-hook and the recall happens anyway."""
    stage = await make_stage(poll=(1.0, 30.0))
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.lift(bert)
    await stage.call_busy(anna, BERT)
    await stage.activate(anna)
    await stage.hang_up(anna)
    box.lose_next_urc(2)
    since = stage.mark()
    await stage.hang_up(bert)
    assert any(text.startswith("%HOOK: 2,ON") for text in box.bridge.dropped)
    await _recall_completes(stage, since=since)
    polls = [c for c in box.bridge.commands[since:] if c.text == "AT%HOOK?"]
    assert polls, "only a poll could have told the daemon"


async def test_bridge_reboot_while_a_request_waits(stage: Stage) -> None:
    """The bridge reboots (%READY) while Bert is still busy: the daemon re-initialises
    it, the request survives, and the recall works afterwards."""
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.lift(bert)
    await stage.call_busy(anna, BERT)
    await stage.activate(anna)
    await stage.hang_up(anna)
    since = stage.mark()
    box.reboot_bridge()
    await stage.command("AT%STATE?", since=since, timeout=10)  # re-initialised
    request = await stage.pending(ANNA, BERT)
    assert request["state"] in ("Waiting", "Suspended")
    since = stage.mark()
    await stage.hang_up(bert)
    await _recall_completes(stage, since=since)


async def test_bridge_unplugged_mid_request_suspends_and_resumes(stage: Stage) -> None:
    """Unplugging the bridge suspends the request (never cancels it); plugged in
    again, the daemon reconnects, re-checks the lines and the recall happens."""
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.lift(bert)
    await stage.call_busy(anna, BERT)
    await stage.activate(anna)
    await stage.hang_up(anna)
    await box.unplug_bridge()
    await stage.until(lambda st: any(r["state"] == "Suspended"
                                     and r["reason"] == "bridge-unavailable"
                                     for r in st["requests"]), 20, "suspended, bridge away")
    status = await stage.status()
    assert any(line["kind"] == "bridge" and not line["up"] for line in status["lines"])
    bert.hang_up()  # Bert hangs up while nobody can see it
    since = stage.mark()
    await box.replug_bridge()
    await _recall_completes(stage, since=since)
