"""CAPI message rate through the real libcapi20 to the rcapi simulator (bench, not a test).

The simulator runs in its own process (``python -m ccbs_isdn.drivers.sim.rcapi``), so
the figures are what one ccbsd process sees over loopback TCP:

* round trip: one LISTEN_REQ, wait for the fd, get_message the LISTEN_CONF (latency);
* pipelined: N requests written back to back, then N confirmations read (messages/s);
* calls: a whole basic call through ``CapiDriver`` (CONNECT_REQ ... DISCONNECT_IND,
  about ten CAPI messages and six Q.931 messages at the exchange) per second.

Writes bench/results.json "capi". Run: ``python bench/capi.py`` or ``make bench``.
"""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from _results import summary_us, write_section  # noqa: E402

ROUND_TRIPS = 2000
PIPELINED = 5000
CALLS = 200


def start_simulator() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ccbs_isdn.drivers.sim.rcapi", "--port", "0",
         "--subscribers", "22:busy,23"],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("LISTENING "):
        proc.kill()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return proc, int(line.split()[1])


def library_figures(port: int) -> dict[str, Any]:
    from ccbs_isdn.drivers.capi20 import lib as capilib
    from ccbs_isdn.drivers.capi20 import messages as m
    from ccbs_isdn.drivers.capi20.tables import Command, Subcommand

    lib = capilib.load()
    lib.configure("rcapi", "127.0.0.1", port)
    lib.isinstalled()
    appl = lib.register(2, 7, 2048)
    fd = lib.fileno(appl)
    try:
        def req(number: int) -> bytes:
            return m.encode(m.message(Command.LISTEN, Subcommand.REQ, number, controller=1,
                                      info_mask=0x2B1, cip_mask=0))

        samples: list[float] = []
        for i in range(ROUND_TRIPS):
            raw = req(i & 0x7FFF)
            began = time.perf_counter()
            lib.put_message(appl, raw)
            select.select([fd], [], [], 5)
            reply = lib.get_message(appl)
            samples.append(time.perf_counter() - began)
            assert reply is not None and m.decode(reply).number == i & 0x7FFF

        began = time.perf_counter()
        for i in range(PIPELINED):
            lib.put_message(appl, req(i & 0x7FFF))
        got = 0
        while got < PIPELINED:
            select.select([fd], [], [], 5)
            if lib.get_message(appl) is not None:
                got += 1
        pipelined = time.perf_counter() - began
    finally:
        lib.release(appl)
    return {
        "round_trip": summary_us(samples),
        "round_trips_per_s": round(ROUND_TRIPS / sum(samples)),
        "pipelined_messages_per_s": round(2 * PIPELINED / pipelined),
        "pipelined_requests": PIPELINED,
    }


async def driver_figures(port: int) -> dict[str, Any]:
    from ccbs_isdn.drivers.capi20.driver import CapiConfig, CapiDriver, ControllerConfig

    from ccbs_isdn import isdn

    driver = CapiDriver(CapiConfig(driver="rcapi", host="127.0.0.1", port=port,
                                   controllers=(ControllerConfig(1, ("11", "12")),)))
    await driver.start()
    try:
        async def next_of(kind: type) -> Any:
            while True:
                ind = await asyncio.wait_for(driver.indications.get(), 10)
                if isinstance(ind, kind):
                    return ind

        await next_of(isdn.ControllerUp)
        messages_before = driver.messages_in + driver.messages_out
        samples: list[float] = []
        for i in range(CALLS):
            began = time.perf_counter()
            driver.send(isdn.PlaceCall(1, f"b{i}", called="23", calling="11"))
            await next_of(isdn.CallConnected)
            driver.send(isdn.HangUp(1, f"b{i}"))
            await next_of(isdn.CallEnded)
            samples.append(time.perf_counter() - began)
        messages = driver.messages_in + driver.messages_out - messages_before
    finally:
        await driver.stop()
    return {
        "call": summary_us(samples),
        "calls_per_s": round(CALLS / sum(samples), 1),
        "capi_messages_per_call": round(messages / CALLS, 1),
    }


def run() -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="capibench-")
    Path(home, ".capi20rc").write_text("# bench: transport set by the program\n")
    os.environ["HOME"] = home
    proc, port = start_simulator()
    try:
        lib_part = library_figures(port)
        call_part = asyncio.run(driver_figures(port))
    finally:
        proc.terminate()
        proc.wait(10)
    data: dict[str, Any] = {**lib_part, **call_part}
    data["headline"] = {
        "capi round trip p50 (us)": data["round_trip"]["p50_us"],
        "capi pipelined messages/s": data["pipelined_messages_per_s"],
        "capi basic calls/s via CapiDriver": data["calls_per_s"],
    }
    write_section("capi", data)
    return data


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
