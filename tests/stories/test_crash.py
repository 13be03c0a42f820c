"""``kill -9`` of ccbsd at every point of a local and of an ISDN lifecycle, then a
restart: no request is lost, nobody is rung twice at once or after the end, and
every request ends or carries on (product.md: "Nothing is lost, nothing rings
twice").

Each point is a moment a user could observe; the daemon is killed the instant the
box sees it, so whatever the daemon was doing in between is cut off mid-way."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from ccbs_isdn.drivers.sim.demo import Stage

from .conftest import ANNA, BERT, EXTERNAL_BUSY

FINAL = ("Completed", "Cancelled", "Expired", "Failed")


def assert_rings_sane(stage: Stage, port: int, *, at_most: int, restarted_at: int) -> None:
    """No more recall rings than allowed. A phone can never ring twice at once: the
    bridge refuses a ring on a ringing port (FXB/1 §3.3); such a refusal may only
    happen right after the restart, when the new daemon's recall meets the ring the
    old one left behind (call control stops that one)."""
    tried = stage.box.commands(f"AT%RING={port},")
    refused = [c for c in tried if c.error == "PORT_RINGING"]
    assert all(stage.box.bridge.commands.index(c) >= restarted_at for c in refused)
    assert 1 <= len(stage.box.rings(port, cadence=1)) <= at_most


async def freeze(stage: Stage) -> None:
    """SIGSTOP the daemon and wait until the kernel has stopped it: from here on it
    handles nothing, so whatever the box does next it never learns of."""
    proc = stage.ccbsd.proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGSTOP)
    stat = Path(f"/proc/{proc.pid}/stat")

    async def stopped() -> None:
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "T":
            await asyncio.sleep(0.001)

    await asyncio.wait_for(stopped(), 5)


async def kill_and_restart(stage: Stage, request_id: int) -> int:
    """kill -9, start again; returns the bridge log position of the restart."""
    await stage.ccbsd.kill()
    restarted_at = stage.mark()
    await stage.start_daemon()
    status = await stage.status()
    known = {r["id"] for r in status["requests"]}
    if request_id not in known:  # not active any more: it must be final in the store
        history = await stage.history(request_id)
        assert history["state"] in FINAL, history
    return restarted_at


# ------------------------------------------------------------------ local


async def _local_until(stage: Stage, point: str) -> int:
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.lift(bert)
    await stage.call_busy(anna, BERT)
    await stage.activate(anna)
    request = await stage.pending(ANNA, BERT)
    await stage.hang_up(anna)
    if point == "waiting":
        return int(request["id"])
    since = stage.mark()
    bert.hang_up()
    if point == "guard":
        await box.wait_for(lambda: not bert.off_hook, 10, "Bert on-hook reported")
        return int(request["id"])
    await stage.command("AT%RING=1,1,", since=since)
    if point == "ringing-a":
        return int(request["id"])
    await box.wait_for(lambda: anna.clip is not None, 10, "CLIP")
    anna.answer()
    await stage.command("AT%RING=2,", since=since)
    if point == "ringing-b":
        return int(request["id"])
    # "connected": killed in the few ms between Bert's ring-trip and the commit of
    # "Completed" — made certain by freezing the daemon before Bert answers, so it
    # never hears of it. The bridge connects the two on its own once the pending
    # cross-connect is there (FXB/1 §3.9.4).
    await stage.command("AT%CONN=1,2", since=since)
    await freeze(stage)
    bert.answer()
    await box.wait_for(lambda: anna.peer == 2, 10, "connected")
    return int(request["id"])


async def _local_finish(stage: Stage, point: str, request_id: int) -> None:
    """What the users do after the restart, depending on where they were."""
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    since = stage.mark()
    if point == "waiting":
        await stage.hang_up(bert)
    if point == "ringing-b":
        # Anna was listening to ringback when the daemon died: silence; she hangs up
        # and is called back once more
        await stage.hang_up(anna)
    if point == "connected":
        # the restarted daemon finds Anna and Bert cross-connected: the recall worked;
        # their call is left alone until Anna hangs up
        await stage.settled()
        assert (anna.peer, bert.peer) == (2, 1)
        assert not [c for c in box.commands("AT%DISC") if box.bridge.commands.index(c) >= since]
        history = await stage.history(request_id)
        assert [(h["event"], h["new_state"]) for h in history["history"][-2:]] == [
            ("restart", "Interrupted"), ("linked", "Completed")]
        await stage.hang_up(anna)
        await box.wait_for(lambda: anna.peer == 0, 10, "the connection is torn down")
        assert not [c for c in box.rings(1) if box.bridge.commands.index(c) >= since]
        return
    await box.wait_for(lambda: anna.ringing and anna.clip is not None, 15, "recall ring")
    anna.answer()
    await box.wait_for(lambda: bert.ringing, 10, "Bert rings")
    bert.answer()
    await box.wait_for(lambda: anna.peer == 2, 10, "connected")
    await stage.settled()


@pytest.mark.parametrize("point", ["waiting", "guard", "ringing-a", "ringing-b", "connected"])
async def test_kill_9_in_a_local_lifecycle(stage: Stage, point: str) -> None:
    request_id = await _local_until(stage, point)
    restarted_at = await kill_and_restart(stage, request_id)
    await _local_finish(stage, point, request_id)
    history = await stage.history(request_id)
    assert history["state"] == "Completed"
    allowed = {"waiting": 1, "guard": 1, "ringing-a": 2, "ringing-b": 2, "connected": 1}
    assert_rings_sane(stage, 1, at_most=allowed[point], restarted_at=restarted_at)
    assert not (await stage.status())["requests"]


# ------------------------------------------------------------------- ISDN


IsdnStep = Callable[[Stage], Awaitable[None]]


async def _isdn_until(stage: Stage, point: str) -> int:
    box = stage.box
    anna, b = box.phone(1), box.subscriber(EXTERNAL_BUSY)
    if point == "recall-call":
        b.answers(True, delay=2.0)  # the recall call alerts for a while
    await stage.call_busy(anna, "0" + EXTERNAL_BUSY + "#")
    await stage.activate(anna, method="digit")
    request = await stage.pending(ANNA, EXTERNAL_BUSY)
    await stage.hang_up(anna)
    if point == "activated":
        return int(request["id"])
    since = stage.mark()
    b.hang_up()
    b.free()
    await stage.command("AT%RING=1,1,", since=since)
    if point == "ringing-a":
        return int(request["id"])
    await box.wait_for(lambda: anna.clip is not None, 10, "CLIP")
    anna.answer()
    await box.wait_for(lambda: bool(box.exchange_log("CCBSCall")), 10, "recall SETUP")
    if point == "recall-call":
        return int(request["id"])
    await box.wait_for(lambda: b.in_call(), 10, "recall connected")
    return int(request["id"])


@pytest.mark.parametrize("point", ["activated", "ringing-a", "recall-call", "connected"])
async def test_kill_9_in_an_isdn_lifecycle(stage: Stage, point: str) -> None:
    box = stage.box
    anna, b = box.phone(1), box.subscriber(EXTERNAL_BUSY)
    request_id = await _isdn_until(stage, point)
    restarted_at = await kill_and_restart(stage, request_id)
    if point == "activated":
        # the restarted daemon asked the network what it still holds (Interrogate)
        await box.wait_for(lambda: bool(box.exchange_log("CCBSInterrogate")), 10,
                           "reconciliation with the network")
        assert (await stage.pending(ANNA, EXTERNAL_BUSY))["id"] == request_id
        b.hang_up()
        b.free()
    if point in ("activated", "ringing-a"):
        await box.wait_for(lambda: anna.ringing and anna.clip is not None, 15, "recall ring")
        anna.answer()
        await box.wait_for(lambda: b.in_call(), 10, "recall connected")
        await stage.settled()
        assert (await stage.history(request_id))["state"] == "Completed"
    else:
        # the recall call was cut off (recall-call) or is up (connected): the network
        # and the restarted daemon agree that the request is over
        await stage.settled()
        assert (await stage.history(request_id))["state"] in FINAL
        await stage.hang_up(anna)
    assert_rings_sane(stage, 1, at_most=2 if point == "ringing-a" else 1,
                      restarted_at=restarted_at)
    assert not box.cc_records("ctrl1")
