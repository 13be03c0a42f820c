"""``runtime/clock.py`` and the scheduler with it, on injected clocks: a step of the
wall clock moves no timer; daemon time re-anchors only while no timer is pending; the
test hook file."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from ccbs_isdn.runtime.clock import JUMP_THRESHOLD, DaemonClock, WallOffsetFile
from ccbs_isdn.runtime.scheduler import Scheduler


class Manual:
    """A clock a test sets."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def clocks(wall: float = 1_700_000_000.0) -> tuple[Manual, Manual, DaemonClock]:
    w, e = Manual(wall), Manual(50.0)
    return w, e, DaemonClock(wall=w, elapsed=e)


def test_daemon_time_is_the_wall_at_start_plus_elapsed_time() -> None:
    wall, elapsed, clock = clocks()
    assert clock() == 1_700_000_000.0
    wall.t += 7.5
    elapsed.t += 7.5
    assert clock() == pytest.approx(1_700_000_007.5)
    assert clock.skew == pytest.approx(0.0) and clock.jumps == 0


@pytest.mark.parametrize("step", [3600.0, -3600.0, 3.0, -86400.0 * 365])
def test_a_wall_step_is_not_followed_while_a_timer_is_pending(
        step: float, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ccbs_isdn")
    wall, elapsed, clock = clocks()
    clock.timers_pending(True)
    wall.t += step
    for _ in range(3):  # seen once, logged once
        elapsed.t += 1.0
        wall.t += 1.0
        now = clock()
    assert now == pytest.approx(1_700_000_003.0)
    assert clock.skew == pytest.approx(step)
    assert clock.jumps == 1
    assert caplog.text.count("wall clock jumped") == 1
    assert [r.ctx for r in caplog.records] == [{"skew": round(step, 3)}]  # type: ignore[attr-defined]


def test_a_small_step_is_no_jump_but_is_taken_up_when_idle(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ccbs_isdn")
    wall, _, clock = clocks()
    clock.timers_pending(True)
    wall.t += JUMP_THRESHOLD / 2
    clock()
    assert clock.jumps == 0 and clock.skew == pytest.approx(JUMP_THRESHOLD / 2)
    clock.timers_pending(False)
    assert clock() == wall.t  # re-anchored quietly
    assert clock.reanchors == 0 and "re-anchored" not in caplog.text


def test_without_pending_timers_the_clock_re_anchors_and_says_so(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ccbs_isdn")
    wall, elapsed, clock = clocks()
    clock.timers_pending(True)
    wall.t += 3600.0
    assert clock() == pytest.approx(1_700_000_000.0)
    clock.timers_pending(False)
    assert clock() == pytest.approx(1_700_003_600.0)
    assert clock.reanchors == 1 and clock.skew == 0.0
    assert "re-anchored to the wall clock" in caplog.text
    # and from there it counts elapsed time again, without further jumps
    elapsed.t += 2.0
    wall.t += 2.0
    clock.timers_pending(True)
    assert clock() == pytest.approx(1_700_003_602.0)
    assert clock.jumps == 1


def test_a_second_jump_is_reported_again() -> None:
    wall, _, clock = clocks()
    clock.timers_pending(True)
    wall.t += 100.0
    clock()
    wall.t -= 300.0
    clock()
    assert clock.jumps == 2 and clock.skew == pytest.approx(-200.0)


def test_offset_file_hook(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "offset"
    wall = WallOffsetFile(str(path), wall=lambda: 1000.0)
    assert wall() == 1000.0  # no file: no offset
    path.write_text("3600\n")
    assert wall() == 4600.0
    path.write_text("-12.5")
    assert wall() == 987.5
    path.write_text("not a number")
    assert wall() == 1000.0
    assert "unreadable" in caplog.text
    path.unlink()
    assert wall() == 1000.0


def test_from_environment_uses_the_hook_only_when_set(tmp_path: Path) -> None:
    path = tmp_path / "offset"
    path.write_text("86400")
    hooked = DaemonClock.from_environment({"CCBS_TEST_WALL_OFFSET_FILE": str(path)})
    plain = DaemonClock.from_environment({})
    assert hooked() - plain() == pytest.approx(86400.0, abs=1.0)


async def test_scheduler_timers_keep_elapsed_time_across_a_wall_jump() -> None:
    """On the real loop: a timer armed for +0.2 s fires after about 0.2 s whether the
    wall clock jumps an hour ahead (it would fire at once) or back (an hour late)."""
    loop = asyncio.get_running_loop()
    for step in (3600.0, -3600.0):
        wall = Manual(1_700_000_000.0)
        start = loop.time()

        def wall_now(wall: Manual = wall, start: float = start) -> float:
            return wall.t + (loop.time() - start)

        clock = DaemonClock(wall=wall_now, elapsed=loop.time)
        fired: list[float] = []
        done = asyncio.Event()

        def due(now: float, fired: list[float] = fired, done: asyncio.Event = done) -> None:
            fired.append(loop.time())
            done.set()

        sched = Scheduler(due, clock=clock)
        armed_at = loop.time()
        sched.arm(clock() + 0.2)
        assert clock.pending
        wall.t += step
        clock()  # the jump is seen while the timer is pending
        await asyncio.wait_for(done.wait(), 5)
        assert 0.15 <= fired[0] - armed_at < 2.0
        assert clock.jumps == 1
        sched.cancel()
        assert not clock.pending
        assert clock() == pytest.approx(wall_now(), abs=0.01)  # re-anchored


def test_uptime_counts_elapsed_time_through_re_anchoring() -> None:
    wall, elapsed, clock = clocks()
    elapsed.t += 10.0
    wall.t += 10.0 - 3600.0  # an hour back, no timer pending: re-anchored at once
    assert clock() == pytest.approx(1_700_000_010.0 - 3600.0)
    assert clock.uptime() == pytest.approx(10.0)
