"""Wall-clock jumps under a running ccbsd (``runtime/clock.py``), through the test
hook ``CCBS_TEST_WALL_OFFSET_FILE``: a jump an hour ahead expires nothing early, a
jump an hour back delays nothing, the daemon says so in its log and in ``status``
(``clock_skew``) and re-anchors once no timer is pending; deadlines persisted in the
store stay wall-clock across a restart."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from ccbs_isdn.drivers.sim.demo import Stage

from tests.stories.conftest import ANNA, BERT

from .harness import ChaosStats, chaos_stage

pytestmark = pytest.mark.integration

HOUR = 3600.0


JumpStage = Callable[..., Awaitable[tuple[Stage, Path]]]


@pytest.fixture
async def make_jump_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                          ) -> AsyncIterator[JumpStage]:
    """``await make(lifetime=...)``: a stage whose ccbsd reads its wall-clock offset
    from ``<root>/wall-offset``; returns (stage, offset file)."""
    offset = tmp_path / "wall-offset"
    offset.write_text("0")
    monkeypatch.setenv("CCBS_TEST_WALL_OFFSET_FILE", str(offset))
    stages: list[Stage] = []

    async def make(lifetime: float) -> tuple[Stage, Path]:
        stage = chaos_stage(tmp_path / "stage", timers={"lifetime_ccbs": lifetime})
        (tmp_path / "stage").mkdir(exist_ok=True)
        stages.append(stage)
        await stage.open()
        return stage, offset

    yield make
    for stage in stages:
        await stage.close()


async def waiting_request(stage: Stage) -> int:
    """Anna calls Bert, who is on the phone, and asks for a callback."""
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.lift(bert)
    await stage.call_busy(anna, BERT)
    await stage.activate(anna)
    request = await stage.pending(ANNA, BERT)
    await stage.hang_up(anna)
    return int(request["id"])


def jump(offset: Path, seconds: float) -> None:
    offset.write_text(f"{seconds}\n")


async def test_a_jump_ahead_expires_nothing_early(make_jump_stage: JumpStage,
                                                  stats: ChaosStats) -> None:
    stage, offset = await make_jump_stage(lifetime=30.0)
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)
    rid = await waiting_request(stage)
    jump(offset, HOUR)
    stats.faults["clock-jump-ahead"] += 1
    status = await stage.status()
    assert status["daemon"]["clock_skew"] == pytest.approx(HOUR, abs=5)
    assert rid in {r["id"] for r in status["requests"]}
    # the guard after Bert hangs up fires the timer handling: a daemon that followed
    # the wall clock would now see the 30 s lifetime an hour over and expire it
    since = stage.mark()
    await stage.hang_up(bert)
    await stage.recall_ring(anna, since=since, clip=BERT)
    anna.answer()
    await box.wait_for(lambda: bert.ringing, 10, "Bert rings")
    bert.answer()
    await box.wait_for(lambda: anna.peer == 2, 10, "connected")
    await stage.settled()
    assert (await stage.history(rid))["state"] == "Completed"
    # no timer pending any more: daemon time follows the wall clock again
    status = await stage.status()
    assert status["daemon"]["clock_skew"] == 0
    assert status["now"] == pytest.approx(time.time() + HOUR, abs=5)
    log = stage.ccbsd.log()
    assert "wall clock jumped" in log and "skew=3600" in log
    assert "re-anchored to the wall clock" in log
    await stage.hang_up(anna)
    await stage.hang_up(bert)


async def test_a_jump_back_delays_nothing(make_jump_stage: JumpStage,
                                          stats: ChaosStats) -> None:
    stage, offset = await make_jump_stage(lifetime=4.0)
    rid = await waiting_request(stage)
    started = time.monotonic()
    jump(offset, -HOUR)
    stats.faults["clock-jump-back"] += 1
    status = await stage.status()
    assert status["daemon"]["clock_skew"] == pytest.approx(-HOUR, abs=5)
    # the 4 s lifetime ends after 4 s, not after an hour and 4 s
    await stage.settled(timeout=20)
    assert (await stage.history(rid))["state"] == "Expired"
    assert time.monotonic() - started < 15
    status = await stage.status()
    assert status["daemon"]["clock_skew"] == 0
    assert status["now"] == pytest.approx(time.time() - HOUR, abs=5)
    assert 0 < status["daemon"]["uptime"] < 60  # counted in elapsed time
    await stage.hang_up(stage.box.phone(2))


async def test_persisted_deadlines_stay_wall_clock_across_a_restart(
        make_jump_stage: JumpStage, stats: ChaosStats) -> None:
    stage, offset = await make_jump_stage(lifetime=60.0)
    rid = await waiting_request(stage)
    jump(offset, HOUR)
    # while it runs, the jump moves nothing ...
    assert rid in {r["id"] for r in (await stage.status())["requests"]}
    await stage.ccbsd.kill()
    stats.kills_survived += 1
    # ... but a restarted ccbsd reads the wall clock afresh: the stored lifetime of
    # 60 s ended an hour ago, so the request ends at start
    await stage.start_daemon()
    await stage.settled(timeout=15)
    history = await stage.history(rid)
    assert history["state"] == "Expired"
    await stage.hang_up(stage.box.phone(2))
