"""bench/analog.py: the analog side of the REAL ccbsd, measured against the simulated
bridge on a pty (never asserted in tests).

* CPU of the daemon per 100 watched ports at the default poll policy (analog-bridge.md
  §5: every port in a request polled every 5 s): 64 ports (the most one bridge
  configuration takes), 32 local requests so every port is watched, the daemon's
  process CPU (utime + stime from /proc) over a quiet window, scaled to 100 ports.
* Latency from the bridge sending ``%HOOK: p,ON`` for B to the bridge receiving
  ``AT%RING`` for A, minus the configured guard time (what is left is the re-check
  poll and the daemon's own work), p50/p99 over 200 recalls, while the 32 requests
  keep every port watched. The bridge reports a hang-up 20 ms after the loop opens
  (``flash_max``; before the ``%HOOK`` line, so outside the figure) to fit the samples
  into about a minute.

Results → bench/results.json area "analog". Also runnable as ``python bench/analog.py``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _results import percentile, write_section  # noqa: E402
from ccbs_isdn.drivers.sim.box import BoxConfig, BoxController, StationSpec  # noqa: E402
from ccbs_isdn.drivers.sim.bridge import BridgeSim  # noqa: E402
from ccbs_isdn.drivers.sim.demo import Stage  # noqa: E402

PORTS = 64  # [fxs.ports] port <= 64: the largest bridge a configuration describes
GUARD = 0.2  # s; subtracted from the latency
WINDOW = 15.0  # s of quiet CPU measurement (three 5-s poll rounds)
SAMPLES = 200  # a p99 over 40 samples is the maximum, not a percentile
HOOK = (5, 10, 20)  # debounce, flash_min, flash_max (ms) of the simulated bridge


class TimedBridge(BridgeSim):
    """The bridge simulator, noting the loop time of every URC line it writes and of
    every command it executes (its own log has only millisecond bridge time)."""

    def __init__(self, ports: int) -> None:
        super().__init__(ports)
        self.urc_times: list[tuple[float, str]] = []
        self.command_times: list[tuple[float, str]] = []

    def _line(self, text: str) -> None:
        if text.startswith("%"):
            self.urc_times.append((time.perf_counter(), text))
        super()._line(text)

    def _execute(self, text: str) -> None:
        self.command_times.append((time.perf_counter(), text))
        super()._execute(text)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def _measure() -> dict[str, Any]:
    stations = [StationSpec(p, f"2{p:02d}", "", 1, f"P{p}") for p in range(1, PORTS + 1)]
    stage = Stage(BoxConfig(controllers=(BoxController(1, ("5551",)),), fxs_ports=PORTS),
                  stations, timers={"guard": GUARD, "recheck": 2.0}, hook=HOOK,
                  extra="[limits]\nper_callee = 100\nper_caller = 100\n")
    stage.box.bridge = TimedBridge(PORTS)
    await stage.open()
    try:
        box, ccbsd = stage.box, stage.ccbsd
        # 32 requests A(odd) -> B(even) with every B busy: all 64 ports watched
        for b in range(2, PORTS + 1, 2):
            await stage.lift(box.phone(b))
        for a in range(1, PORTS + 1, 2):
            await ccbsd.call("request", caller=f"2{a:02d}", target=f"2{a + 1:02d}")
        await stage.until(lambda st: len(st["requests"]) == PORTS // 2, 20, "requests")
        pid = ccbsd.proc.pid if ccbsd.proc else 0
        polls_before = len(box.commands("AT%HOOK?"))
        cpu0, wall0 = _cpu_seconds(pid), time.perf_counter()
        await asyncio.sleep(WINDOW)  # the measurement window itself (no synchronisation)
        cpu1, wall1 = _cpu_seconds(pid), time.perf_counter()
        polls = len(box.commands("AT%HOOK?")) - polls_before
        share = (cpu1 - cpu0) / (wall1 - wall0)

        # recall latency: B(2) hangs up -> AT%RING for A(1), again and again
        bridge = box.bridge
        assert isinstance(bridge, TimedBridge)
        latencies: list[float] = []
        to_poll: list[float] = []  # guard end -> the re-check AT%HOOK? arrives
        poll_to_ring: list[float] = []  # re-check sent -> AT%RING arrives
        a, b = box.phone(1), box.phone(2)

        def rang(since: int) -> bool:
            return any(t.startswith("AT%RING=1,") for _, t in bridge.command_times[since:])

        for _ in range(SAMPLES):
            urcs, cmds = len(bridge.urc_times), len(bridge.command_times)
            await stage.hang_up(b)
            await box.wait_for(lambda cmds=cmds: rang(cmds), 20, "recall ring")  # type: ignore[misc]
            t_hook = next(t for t, text in bridge.urc_times[urcs:]
                          if text.startswith("%HOOK: 2,ON"))
            t_ring = next(t for t, text in bridge.command_times[cmds:]
                          if text.startswith("AT%RING=1,"))
            t_poll = max((t for t, text in bridge.command_times[cmds:]
                          if text == "AT%HOOK?" and t < t_ring), default=t_ring)
            latencies.append(t_ring - t_hook - GUARD)
            to_poll.append(t_poll - t_hook - GUARD)
            poll_to_ring.append(t_ring - t_poll)
            # A answers, B is rung and answers: the request completes; start over
            a.answer()
            await box.wait_for(lambda: b.ringing, 10, "B rings")
            b.answer()
            await box.wait_for(lambda: a.peer == 2, 10, "connected")
            await stage.hang_up(a)
            await box.wait_for(lambda: b.tone == "BUSY", 10, "B hears busy")
            await ccbsd.call("request", caller="201", target="202")
        return {
            "ports": PORTS,
            "watched_ports": PORTS,
            "window_s": round(wall1 - wall0, 2),
            "polls_in_window": polls,
            "daemon_cpu_share_64_ports": round(share, 5),
            "daemon_cpu_percent_per_100_ports": round(share * 100 * 100 / PORTS, 3),
            "hook_on_to_ring_ms": {
                "samples": len(latencies),
                "p50": round(percentile(latencies, 50) * 1000, 2),
                "p99": round(percentile(latencies, 99) * 1000, 2),
                "mean": round(statistics.fmean(latencies) * 1000, 2),
                "guard_excluded_s": GUARD,
                "guard_end_to_recheck_poll_p50": round(percentile(to_poll, 50) * 1000, 2),
                "guard_end_to_recheck_poll_p99": round(percentile(to_poll, 99) * 1000, 2),
                "recheck_poll_to_ring_p50": round(percentile(poll_to_ring, 50) * 1000, 2),
                "recheck_poll_to_ring_p99": round(percentile(poll_to_ring, 99) * 1000, 2),
            },
        }
    finally:
        await stage.close()


def run() -> dict[str, Any]:
    data = asyncio.run(_measure())
    data["headline"] = {
        "cpu_percent_per_100_watched_ports": data["daemon_cpu_percent_per_100_ports"],
        "hook_on_to_AT%RING_p50_ms_excl_guard": data["hook_on_to_ring_ms"]["p50"],
        "hook_on_to_AT%RING_p99_ms_excl_guard": data["hook_on_to_ring_ms"]["p99"],
    }
    write_section("analog", data)
    return data


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
