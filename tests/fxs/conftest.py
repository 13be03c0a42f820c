"""Fixtures for the FXS driver tests: a simulated bridge on a real pty (or TCP) and a
driver with short, test-friendly timing. Every wait is event-driven."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from ccbs_isdn.drivers.fxs.driver import FxsConfig, FxsDriver
from ccbs_isdn.drivers.sim.bridge import BridgeSim

from ccbs_isdn.analog.contract import AnalogIndication, BridgeUp, HookTiming

#: Short hook windows so stories run fast; the classification is still exact.
TEST_HOOK = HookTiming(debounce=5, flash_min=30, flash_max=120)

IndT = TypeVar("IndT", bound=AnalogIndication)


class Inbox:
    """Collects indications; ``wait`` returns the first match after a mark."""

    def __init__(self) -> None:
        self.items: list[AnalogIndication] = []
        self._waiters: list[tuple[Callable[[AnalogIndication], bool], asyncio.Future[Any]]] = []

    def __call__(self, ind: AnalogIndication) -> None:
        self.items.append(ind)
        for predicate, fut in list(self._waiters):
            if not fut.done() and predicate(ind):
                fut.set_result(ind)

    def mark(self) -> int:
        return len(self.items)

    def pos(self, ind: AnalogIndication) -> int:
        """Position of this very object (equal frozen dataclasses are not the same)."""
        return next(i for i, item in enumerate(self.items) if item is ind)

    def of(self, kind: type[IndT], since: int = 0) -> list[IndT]:
        return [i for i in self.items[since:] if isinstance(i, kind)]

    async def wait(self, kind: type[IndT], *, since: int = 0, timeout: float = 5.0,
                   **fields: Any) -> IndT:
        def match(ind: AnalogIndication) -> bool:
            return isinstance(ind, kind) and all(
                getattr(ind, k) == v for k, v in fields.items())

        for ind in self.items[since:]:
            if match(ind):
                return ind  # type: ignore[return-value]
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = (match, fut)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, timeout)  # type: ignore[no-any-return]
        finally:
            self._waiters.remove(entry)


def config(url: str, **overrides: Any) -> FxsConfig:
    settings: dict[str, Any] = {
        "url": url, "name": "fxs0", "hook": TEST_HOOK, "command_timeout": 0.5,
        "init_retry": 0.2, "reconnect_min": 0.05, "reconnect_max": 0.2,
    }
    settings.update(overrides)
    return FxsConfig(**settings)


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[BridgeSim]:
    bridge = BridgeSim(4, boot_ms=20)
    await bridge.open_pty(tmp_path / "fxs0")
    await bridge.wait_for(lambda: bool(bridge.sent))  # booted: %READY is out
    yield bridge
    await bridge.close()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


DriverFactory = Callable[..., Awaitable[FxsDriver]]


@pytest.fixture
async def make_driver(sim: BridgeSim, inbox: Inbox) -> AsyncIterator[DriverFactory]:
    drivers: list[FxsDriver] = []

    async def make(url: str | None = None, **overrides: Any) -> FxsDriver:
        drv = FxsDriver(config(url or sim.url, **overrides), on_indication=inbox)
        drivers.append(drv)
        await drv.start()
        return drv

    yield make
    for drv in drivers:
        await drv.stop()


@pytest.fixture
async def driver(make_driver: DriverFactory, inbox: Inbox) -> FxsDriver:
    drv = await make_driver()
    await inbox.wait(BridgeUp)
    return drv
