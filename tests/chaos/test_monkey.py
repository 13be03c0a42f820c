"""The chaos monkey (``harness.py``): rounds of a concurrent local and ISDN
lifecycle with one fault each at a seeded random command — kill -9 (also twice, the
second in the middle of the start-up), SIGTERM, CAPI connection drops, bridge
reboots, unplugs, lost URCs, garbage. Every fault type at least once per test in
``make test``; ``CCBS_CHAOS_LONG=1`` runs many random rounds. After every round the
invariants of ``harness.py`` are checked; the test fails listing every violation."""

from __future__ import annotations

import random

import pytest
from ccbs_isdn.drivers.sim.demo import Stage

from .harness import ALL_FAULTS, ChaosStats, long_mode, run_rounds

pytestmark = pytest.mark.integration

#: bounded plan: each test runs every fault once, in a seeded order
BOUNDED = list(ALL_FAULTS)
LONG_ROUNDS = 60


@pytest.mark.timeout(1800 if long_mode() else 300)
@pytest.mark.parametrize("half", ["a", "b"])
async def test_faults_at_random_points_lose_nothing_and_ring_nobody_twice(
        stage: Stage, stats: ChaosStats, rng: random.Random, half: str) -> None:
    if long_mode():
        plan: list[str | None] = [rng.choice(ALL_FAULTS) for _ in range(LONG_ROUNDS)]
    else:
        plan = list(BOUNDED)
        rng.shuffle(plan)
    monkey = await run_rounds(stage, stats, rng, plan)
    print(stats.line())
    assert stats.violations == [], "\n".join(stats.violations + monkey.log[-40:])
    assert stats.rounds == len(plan) + 1
    assert stats.kills_survived >= sum(1 for f in plan if f in ("kill9", "sigterm")) + \
        2 * plan.count("kill9-twice")
    assert stats.completed >= 1
