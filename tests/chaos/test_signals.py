"""SIGTERM in the middle of a recall — while A's phone rings with the recall cadence,
and while the ISDN recall call is being set up — then a restart: the request
completes, nobody is rung twice at once, nothing is lost (the invariants of
``harness.py``). And a check of the checker: doctored bridge logs are caught."""

from __future__ import annotations

import random

import pytest
from ccbs_isdn.drivers.sim.bridge import Command
from ccbs_isdn.drivers.sim.demo import Stage

from .harness import ChaosStats, Monkey, Round, last_id

pytestmark = pytest.mark.integration


async def test_sigterm_while_the_local_recall_rings(stage: Stage, stats: ChaosStats,
                                                    rng: random.Random) -> None:
    monkey = Monkey(stage, stats, rng)
    anna = stage.box.phone(1)
    rnd = await monkey.round(1, "sigterm", at=lambda: anna.ringing and anna.clip is not None)
    assert not rnd.forced, "the recall ring was never seen"
    assert stats.violations == [], "\n".join(stats.violations)
    assert stats.kills_survived == 1 and stats.completed == 2


async def test_sigterm_while_the_isdn_recall_call_is_set_up(stage: Stage, stats: ChaosStats,
                                                            rng: random.Random) -> None:
    monkey = Monkey(stage, stats, rng)
    box = stage.box
    b = box.subscriber("301234")
    b.answers(True, delay=2.0)  # the recall call alerts for a while
    rnd = await monkey.round(
        1, "sigterm", at=lambda: bool(box.exchange_log("CCBSCall")) and not b.in_call())
    assert not rnd.forced, "the recall call was never seen"
    assert stats.violations == [], "\n".join(stats.violations)
    assert stats.kills_survived == 1


async def test_the_checker_catches_what_it_is_for(stage: Stage, stats: ChaosStats,
                                                  rng: random.Random) -> None:
    """A clean round passes; the same checks over a doctored bridge log report a
    lost request, a recall rung too often and two rings at once."""
    monkey = Monkey(stage, stats, rng)
    await monkey.round(0, None)
    assert stats.violations == []
    bridge = stage.box.bridge
    fake = Round(99, None, 0, start=stage.mark())
    before = last_id(stage)
    bridge.commands.extend([
        Command(0, "AT%TONE=3,CONFIRM,1000", True),  # confirmed, nothing stored
        Command(0, 'AT%RING=1,1,20,"22","Bert"', True),
        Command(0, 'AT%RING=1,1,20,"22","Bert"', True),
        Command(0, 'AT%RING=1,1,20,"22","Bert"', False, "PORT_RINGING"),
    ])
    await monkey.check_round(fake, before)
    found = "\n".join(stats.violations)
    assert "store has no such request (lost)" in found
    assert "port 1 got 2 recall rings (at most 1)" in found
    assert "two rings at once" in found
    stats.violations.clear()  # they were planted
