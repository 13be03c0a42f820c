"""Hardware tests: the FXS driver stories against a real bridge.

Switched on by environment variables (never part of ``make test``):

* ``CCBS_HW_FXS`` — the bridge: a device path (``/dev/ccbs/fxs0``) or any pyserial URL.
* ``CCBS_HW_INTERACTIVE=1`` — a person lifts, flashes, dials and hangs up when told
  (run with ``-s`` to see the prompts); otherwise only the hands-off tests run.
* ``CCBS_HW_FXS_PORT_A`` / ``CCBS_HW_FXS_PORT_B`` — the two ports with phones (1, 2).
* ``CCBS_HW_FXS_PROFILE`` — hook timing profile ``DE`` (default), ``DE-strict``, ``US``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator

import pytest
from ccbs_isdn.drivers.fxs.driver import FxsConfig, FxsDriver

from ccbs_isdn.analog.contract import HOOK_PROFILES, BridgeUp
from tests.fxs.conftest import Inbox

HW_URL = os.environ.get("CCBS_HW_FXS", "")
INTERACTIVE = os.environ.get("CCBS_HW_INTERACTIVE") == "1"
PORT_A = int(os.environ.get("CCBS_HW_FXS_PORT_A", "1"))
PORT_B = int(os.environ.get("CCBS_HW_FXS_PORT_B", "2"))
PROFILE = os.environ.get("CCBS_HW_FXS_PROFILE", "DE")

#: A person needs time to reach the phone.
HUMAN = 30.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "interactive: needs a person at the phones")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not HW_URL:
            item.add_marker(pytest.mark.skip(
                reason="no FXS bridge: set CCBS_HW_FXS=/dev/ccbs/fxs0 (or a pyserial URL)"))
        elif "interactive" in item.keywords and not INTERACTIVE:
            item.add_marker(pytest.mark.skip(
                reason="needs a person at the phones: set CCBS_HW_INTERACTIVE=1, run with -s"))


def tell(message: str) -> None:
    """A prompt for the person at the phones (bypasses pytest's capture)."""
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"\n>>> {message}\n")
    stream.flush()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
async def bridge(inbox: Inbox) -> AsyncIterator[FxsDriver]:
    driver = FxsDriver(FxsConfig(HW_URL, name="hw", hook=HOOK_PROFILES[PROFILE]),
                       on_indication=inbox)
    await driver.start()
    try:
        await inbox.wait(BridgeUp, timeout=10.0)
        yield driver
    finally:
        await driver.stop()
