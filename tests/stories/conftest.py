"""End-to-end stories: the REAL ccbsd (a child process) against the simulated box in
the test process — real libcapi20 over loopback TCP, the real FXS driver on a real
pty, real SQLite. Timers are shortened through the daemon's configuration and the
network's ``NetworkTimers``; every wait is event-driven (see drivers/sim/demo.py).

Each story has its own box, daemon, ports and files, so stories run in parallel
(``pytest -n 2``) without sharing anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from ccbs_isdn.drivers.sim.box import BoxConfig, BoxController, BoxSubscriber, StationSpec
from ccbs_isdn.drivers.sim.demo import Stage
from ccbs_isdn.drivers.sim.network.timers import NetworkTimers

pytestmark = pytest.mark.integration

ANNA, BERT, CLEO, DIRK = "21", "22", "23", "24"
STATIONS = (
    StationSpec(1, ANNA, "5551", 1, "Anna"),
    StationSpec(2, BERT, "5552", 1, "Bert"),
    StationSpec(3, CLEO, "5553", 1, "Cleo"),
    StationSpec(4, DIRK, "5554", 1, "Dirk"),
)
MSNS = ("5551", "5552", "5553", "5554")
#: an external subscriber who starts busy, and one who is free
EXTERNAL_BUSY = "301234"
EXTERNAL_FREE = "307777"

#: the daemon's timers, shortened (seconds)
TIMERS = {
    "guard": 0.3, "recheck": 1.5, "a_answer": 2.0, "b_answer": 3.0, "recall_retry": 0.5,
    "t_activate": 5.0,
}
#: hook timing of the bridge (debounce, flash_min, flash_max ms): a hang-up is
#: reported 150 ms after the break
HOOK = (10, 40, 150)


def box_config(*, route: str = "supplementary", ptp: bool = False, **kw: Any) -> BoxConfig:
    return BoxConfig(
        controllers=(BoxController(1, MSNS, ptp=ptp, route=route),),
        subscribers=(BoxSubscriber(EXTERNAL_BUSY, busy=True), BoxSubscriber(EXTERNAL_FREE)),
        timers=NetworkTimers(t_ccbs1=1.0, t_destination_poll=1.0),
        **kw,
    )


StageFactory = Callable[..., Awaitable[Stage]]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
async def make_stage(request: pytest.FixtureRequest) -> AsyncIterator[StageFactory]:
    """``await make_stage(route=..., ptp=..., timers=..., poll=...)``: a box with four
    phones and a running ccbsd against it; closed after the test."""
    stages: list[Stage] = []

    async def make(*, route: str = "supplementary", ptp: bool = False,
                   timers: dict[str, float] | None = None,
                   poll: tuple[float, float] = (5.0, 30.0), extra: str = "",
                   box: dict[str, Any] | None = None) -> Stage:
        stage = Stage(box_config(route=route, ptp=ptp, **(box or {})), STATIONS,
                      timers={**TIMERS, **(timers or {})}, hook=HOOK, poll=poll,
                      extra=extra, log_level="debug")
        stages.append(stage)
        await stage.open()
        return stage

    yield make
    for stage in stages:
        if request.node.stash.get(_FAILED, False):
            # what the daemon said and what the box saw, for the failure report
            print(f"---- ccbsd log ({stage.root}) ----\n{stage.ccbsd.log()[-6000:]}")
            print("---- box timeline ----")
            for e in stage.box.timeline[-80:]:
                print(f"{e.t:10.3f} {e.source:>8}  {e.text}")
        await stage.close()


@pytest.fixture
async def stage(make_stage: StageFactory) -> Stage:
    return await make_stage()
