"""Fixtures for integration tests against the real libcapi20: the rcapi simulator (with
the simulated exchange) in a background thread, a temporary HOME whose ``.capi20rc``
points the library at it, and a started ``CapiDriver`` collecting its indications.

libcapi20 keeps its transport per process (shared/docs/capi.md §9.4): every driver
started here is stopped (its ApplID released) before the next simulator starts, so the
library re-reads the configuration each time. pytest-xdist workers are separate
processes with their own ports.
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from ccbs_isdn.drivers.capi20 import lib as capilib
from ccbs_isdn.drivers.capi20.driver import CapiConfig, CapiDriver, ControllerConfig
from ccbs_isdn.drivers.sim.controller import ControllerSpec
from ccbs_isdn.drivers.sim.exchange import NetworkTimers, SimExchange
from ccbs_isdn.drivers.sim.rcapi import RcapiServer, ThreadedRcapiServer

from ccbs_isdn import isdn
from ccbs_isdn.errors import DriverNotAvailable

Ind = TypeVar("Ind", bound=isdn.IsdnIndication)


def libcapi20_or_skip() -> None:
    """Skip (with the reason) where the real library cannot run."""
    try:
        capilib.check_shm()
    except DriverNotAvailable as exc:
        pytest.skip(str(exc))
    try:
        ctypes.CDLL(capilib.LIBRARY_NAME)
    except OSError:
        pytest.skip("Debian package libcapi20-3 is missing (libcapi20.so.3 not found)")


@pytest.fixture
def capi_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME: libcapi20 reads $HOME/.capi20rc (and then not /etc/capi20.conf)."""
    libcapi20_or_skip()
    home = tmp_path / "home"
    home.mkdir()
    (home / ".capi20rc").write_text("# ccbs-isdn test: no REMOTE line, set by the driver\n")
    monkeypatch.setenv("HOME", str(home))
    return home


@dataclass
class CapiWorld:
    """The simulated card + exchange, and our driver talking to it through libcapi20."""

    sim: ThreadedRcapiServer
    driver: CapiDriver
    seen: list[isdn.IsdnIndication] = field(default_factory=list)
    backlog: list[isdn.IsdnIndication] = field(default_factory=list)

    async def expect(self, kind: type[Ind], timeout: float = 10.0,
                     where: Callable[[Ind], bool] | None = None) -> Ind:
        """The first indication of *kind* (matching *where*) not taken yet; indications
        passed over stay available to later calls. All are recorded in ``seen``."""
        def matches(ind: isdn.IsdnIndication) -> bool:
            return isinstance(ind, kind) and (where is None or where(ind))

        for ind in self.backlog:
            if matches(ind):
                self.backlog.remove(ind)
                return ind  # type: ignore[return-value]

        async def wait() -> Ind:
            while True:
                ind = await self.driver.indications.get()
                self.seen.append(ind)
                if matches(ind):
                    return ind  # type: ignore[return-value]
                self.backlog.append(ind)

        return await asyncio.wait_for(wait(), timeout)

    def exchange(self, fn: Callable[[SimExchange, float], Any]) -> Any:
        return self.sim.exchange(fn)

    def server(self, fn: Callable[[RcapiServer], Any]) -> Any:
        return self.sim.call(fn)

    def ex_log(self) -> str:
        return "\n".join(self.sim.exchange(lambda ex, now: ex.log_lines()))


@pytest.fixture
def loop_errors() -> Iterator[list[dict[str, Any]]]:
    """Everything that reaches the event loop's exception handler (must stay empty: no
    exception may escape the driver's callbacks)."""
    loop = asyncio.get_event_loop()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    yield seen
    loop.set_exception_handler(None)


def default_exchange(timers: NetworkTimers | None = None) -> SimExchange:
    ex = SimExchange(timers or NetworkTimers())
    ex.add_access("bri1", ["31", "32"])
    ex.add_access("bri2", ["41"], ptp=True)
    ex.add_subscriber("22", busy=True)
    ex.add_subscriber("23")
    return ex


DEFAULT_SPECS = (
    ControllerSpec(1, "bri1", ("31", "32"), supplementary=True),
    ControllerSpec(2, "bri2", ("41",), supplementary=True, ptp=True),
)


@pytest.fixture
async def world_factory(capi_home: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await world_factory(...)`` starts a simulator and a driver; both are stopped
    (the ApplID released) at teardown, drivers first."""
    sims: list[ThreadedRcapiServer] = []
    drivers: list[CapiDriver] = []

    async def make(
        *,
        exchange: Callable[[], SimExchange] = default_exchange,
        specs: Sequence[ControllerSpec] = DEFAULT_SPECS,
        controllers: Sequence[ControllerConfig] = (
            ControllerConfig(1, ("31", "32")), ControllerConfig(2, ("41",), ptp=True)),
        via_capi20rc: bool = False,
        start: bool = True,
        **config: Any,
    ) -> CapiWorld:
        sim = ThreadedRcapiServer(lambda: RcapiServer(specs, exchange()))
        port = sim.start()
        sims.append(sim)
        if via_capi20rc:
            text = capilib.capi20rc_text("rcapi", "127.0.0.1", port)
            (capi_home / ".capi20rc").write_text(text)
            cfg = CapiConfig(controllers=tuple(controllers), **config)
        else:
            cfg = CapiConfig(driver="rcapi", host="127.0.0.1", port=port,
                             controllers=tuple(controllers), **config)
        driver = CapiDriver(cfg)
        drivers.append(driver)
        if start:
            await driver.start()
        return CapiWorld(sim, driver)

    yield make
    for driver in reversed(drivers):
        await driver.stop()
    for sim in reversed(sims):
        sim.stop()


__all__ = ["CapiWorld", "default_exchange", "DEFAULT_SPECS", "libcapi20_or_skip"]
