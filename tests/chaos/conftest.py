"""Chaos suites: the REAL ccbsd under faults (kill -9, SIGTERM, CAPI drops, bridge
reboots/unplugs/garbage/lost URCs, a full disk, wall-clock jumps). Bounded counts in
``make test``; ``CCBS_CHAOS_LONG=1`` for many more rounds; ``CCBS_CHAOS_SEED=<n>``
repeats a run (every test prints its seed)."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from ccbs_isdn.drivers.sim.demo import Stage

from .harness import ChaosStats, base_seed, chaos_stage
from .summary import report, summary_dir, totals


@pytest.fixture(scope="session")
def seed(request: pytest.FixtureRequest) -> int:
    """``CCBS_CHAOS_SEED``, else one per run: the xdist workers share the run's id,
    so one seed covers the whole run."""
    run_id = getattr(request.config, "workerinput", {}).get("testrunuid")
    found = base_seed() if run_id is None or os.environ.get("CCBS_CHAOS_SEED") \
        else int(str(run_id)[:8], 16)
    print(f"chaos seed {found} (repeat with CCBS_CHAOS_SEED={found})")
    return found


@pytest.fixture
def rng(seed: int, request: pytest.FixtureRequest) -> random.Random:
    """Seeded per test: the same seed and test give the same fault plan."""
    return random.Random(f"{seed}:{request.node.name}")


@pytest.fixture
def stats(seed: int, request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStats]:
    """The test's counters; written and reported as its summary line afterwards."""
    found = ChaosStats(test=request.node.nodeid.split("::", 1)[-1], seed=seed)
    yield found
    report(tmp_path_factory, request.node.nodeid, "chaos " + found.line(), found.to_json())


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


@pytest.fixture
async def stage(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Stage]:
    """The story box with a running ccbsd (hook polls of 1 s: a lost URC is caught
    quickly); on failure the daemon's log tail and the box's timeline are printed."""
    st = chaos_stage(tmp_path)
    try:
        await st.open()
        yield st
    finally:
        if request.node.stash.get(_FAILED, False) and st.daemon is not None:
            print(f"---- ccbsd log ({st.root}) ----\n{st.ccbsd.log()[-8000:]}")
            print("---- box timeline ----")
            for e in st.box.timeline[-120:]:
                print(f"{e.t:10.3f} {e.source:>8}  {e.text}")
        await st.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Totals of the proof suites (only where this conftest runs in the process that
    prints: without xdist; with xdist see the ProofSummary warnings)."""
    config = terminalreporter.config
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:
        return
    directory = summary_dir(factory)
    found = totals(directory)
    if found["tests"]:
        terminalreporter.write_line(
            f"proof suites: {found['tests']} tests, {found['rounds']} chaos rounds, "
            f"{found['kills_survived']} kills survived, {found['fuzz_cases']} fuzz "
            f"cases, {found['violations']} invariant violations ({directory})")
