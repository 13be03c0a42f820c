"""bench/e2e.py: the whole box end to end — the REAL ccbsd (child process) through the
real libcapi20 against the simulated exchange and card, and through its FXS driver
against the bridge simulator on a pty — with 10 000 requests pending.

* 10 000 local requests are written to the daemon's SQLite store before it starts
  (callers without a port, each waiting for one of 8 busy phones), so every figure
  below is taken with a large restored request set; the restart time is measured.
* activations per second: ``request`` (Book) on the control socket, 16 clients at
  once, each answered only after the request is committed to SQLite (persist-then-act).
* ISDN activations: 8 phones dial a busy number over ISDN, hear busy, press 5 and
  wait for the confirm tone (busy call + CCBSRequest/result through libcapi20); the
  rate is bounded by the simulated DTMF (40 ms tones, 40 ms gaps) and is reported as
  such.
* B free at the exchange → ``AT%RING`` for A at the bridge (CCBSStatusRequest answered
  from A's line, CCBSRemoteUserFree, the recall ring), p50/p99 over 200 recalls (one
  per ISDN activation). ISDN recalls have no guard time of ours: the network decides
  when B is free.
* The service's cost of one 64-port hook poll answer (one engine step) with 1k/10k
  requests restored.

Results → bench/results.json area "e2e". Also runnable as ``python bench/e2e.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _results import percentile, write_section  # noqa: E402
from ccbs_isdn.drivers.sim.box import (  # noqa: E402
    BoxConfig,
    BoxController,
    BoxSubscriber,
    StationSpec,
)
from ccbs_isdn.drivers.sim.bridge import BridgeSim  # noqa: E402
from ccbs_isdn.drivers.sim.demo import Stage  # noqa: E402
from ccbs_isdn.drivers.sim.network.timers import NetworkTimers  # noqa: E402

from ccbs_isdn.engine.request import Changes, RequestRecord, Role  # noqa: E402
from ccbs_isdn.isdn import CcKind  # noqa: E402
from ccbs_isdn.runtime.store import RequestStore  # noqa: E402

PENDING = 10_000
#: above this many ms for one 64-port hook poll answer the daemon cannot follow a poll
#: every 5 s: the end-to-end run is not attempted
SATURATED_MS = 500.0
ISDN_PHONES = (1, 2, 3, 4, 13, 14, 15, 16)
BUSY_PORTS = tuple(range(5, 13))  # B of the pending requests: off-hook all along
CALLER_PORTS = tuple(range(17, 65))
ISDN_ROUNDS = 25  # ISDN activations per phone: 200 recalls to measure
NUMBERS = tuple(f"401{i:03d}" for i in range(len(ISDN_PHONES) * ISDN_ROUNDS))
BATCH = 100  # ISDN requests active at once (a user access has 128 CCBSReferences)
CLIENTS = 16


def ext(port: int) -> str:
    return f"3{port:02d}"


class TimedBridge(BridgeSim):
    """Notes the loop-independent time of every command it executes."""

    def __init__(self, ports: int) -> None:
        super().__init__(ports)
        self.command_times: list[tuple[float, str]] = []

    def _execute(self, text: str) -> None:
        self.command_times.append((time.perf_counter(), text))
        super()._execute(text)


def _preload(path: Path, pending: int) -> None:
    now = time.time()
    records = [
        RequestRecord(id=i, role=Role.LOCAL, kind=CcKind.CCBS, state="Waiting",
                      caller=f"9{i:05d}", target=ext(BUSY_PORTS[i % len(BUSY_PORTS)]),
                      created=now, updated=now, expires_at=now + 86400.0,
                      b_port=f"fxs0/{BUSY_PORTS[i % len(BUSY_PORTS)]}")
        for i in range(1, pending + 1)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    store = RequestStore.open(str(path))
    try:
        store.save(Changes(requests=tuple(records)))
    finally:
        store.close()


async def _step_cost(pending: int) -> dict[str, float]:
    """The daemon's own service object (engine + store + metrics, no drivers) with
    ``pending`` restored requests: ms for one 64-port hook poll answer (one step, as
    the FXS line delivers it), and per single-port step for comparison."""
    import tempfile

    from ccbs_isdn.config import config_from_dict
    from ccbs_isdn.engine import events as E
    from ccbs_isdn.runtime.service import CcbsService

    with tempfile.TemporaryDirectory(prefix="ccbs-e2e-") as tmp:
        root = Path(tmp)
        _preload(root / "state" / "requests.db", pending)
        cfg = config_from_dict({
            "daemon": {"state_dir": str(root / "state"), "socket": str(root / "s.sock"),
                       "socket_group": "", "admin_group": ""},
            "fxs": {"ports": [{"port": p, "extension": ext(p)} for p in range(1, 65)]},
        })
        service = CcbsService(cfg)
        started = time.perf_counter()
        await service.open()
        opened = time.perf_counter() - started
        ports = [E.PortState(f"fxs0/{p}", p in BUSY_PORTS, E.PortSource.POLL, peer="")
                 for p in range(1, 65)]
        poll = E.PortStates(tuple(ports))
        service.step(poll)  # the first answer changes states; the later ones are steady
        rounds = 50
        started = time.perf_counter()
        for _ in range(rounds):
            service.step(poll)
        per_poll = (time.perf_counter() - started) / rounds
        started = time.perf_counter()
        for event in ports:
            service.step(event)
        per_port = (time.perf_counter() - started) / len(ports)
        await service.stop()
    return {"pending": pending, "open_and_restore_s": round(opened, 3),
            "ms_per_64_port_poll": round(per_poll * 1000, 3),
            "ms_per_single_port_step": round(per_port * 1000, 3)}


async def _measure(pending: int) -> dict[str, Any]:
    stations = [StationSpec(p, ext(p), f"555{p}" if p in ISDN_PHONES else "", 1, f"P{p}")
                for p in range(1, 65)]
    box_config = BoxConfig(
        controllers=(BoxController(1, tuple(f"555{p}" for p in ISDN_PHONES),
                                   max_requests=1000),),
        subscribers=tuple(BoxSubscriber(n, busy=True) for n in NUMBERS),
        fxs_ports=64, timers=NetworkTimers(t_ccbs1=1.0), timeline=False)
    stage = Stage(box_config, stations, timers={"guard": 0.2, "a_answer": 10.0},
                  hook=(5, 10, 20),
                  extra="[limits]\nper_caller = 100000\nper_callee = 100000\n"
                        "global = 100000\n")
    stage.box.bridge = TimedBridge(64)
    await stage.open(start_daemon=False)
    try:
        box = stage.box
        for port in BUSY_PORTS:  # busy before the daemon looks: nobody is recalled
            box.bridge.lift(port)
        _preload(stage.root / "state" / "requests.db", pending)
        started = time.perf_counter()
        await stage.start_daemon()
        restart_s = time.perf_counter() - started
        status = await stage.status()
        restored = len(status["requests"])

        # ---- activations per second on the control socket
        pairs = [(ext(a), ext(b)) for a in CALLER_PORTS for b in BUSY_PORTS]
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        for pair in pairs:
            queue.put_nowait(pair)

        async def client() -> None:
            while not queue.empty():
                caller, target = queue.get_nowait()
                await stage.ccbsd.call("request", caller=caller, target=target)

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        book_rate = len(pairs) / (time.perf_counter() - t0)

        # ---- ISDN activations by phones
        bridge = box.bridge
        assert isinstance(bridge, TimedBridge)
        owner: dict[str, int] = {}

        async def phone(port: int, numbers: list[str]) -> None:
            for number in numbers:
                since = stage.mark()
                bridge.lift(port)
                await stage.command(f"AT%TONE={port},DIAL", since=since)
                since = stage.mark()
                bridge.dial(port, "0" + number + "#", tone_ms=40, gap_ms=40)
                await stage.command(f"AT%TONE={port},BUSY", since=since, timeout=20)
                since = stage.mark()
                bridge.dial(port, "5", tone_ms=40, gap_ms=40)
                await stage.command(f"AT%TONE={port},CONFIRM", since=since, timeout=20)
                bridge.hang_up(port)
                await box.wait_for(lambda: not bridge.port(port).off_hook, 10)
                owner[number] = port

        async def recall(number: str) -> float:
            """B free at the exchange -> AT%RING for A; then A takes the recall."""
            port = owner[number]
            cmds = len(bridge.command_times)
            head = f"AT%RING={port},"
            t_free = time.perf_counter()
            box.exchange(lambda ex, now: ex.set_busy(number, False, now))
            await box.wait_for(lambda: any(
                t.startswith(head) for _, t in bridge.command_times[cmds:]), 20, "recall")
            t_ring = next(t for t, text in bridge.command_times[cmds:] if text.startswith(head))
            await box.wait_for(lambda: bridge.port(port).ringing, 10)
            bridge.lift(port)
            await box.wait_for(box.subscriber(number).in_call, 10, "recall connected")
            bridge.hang_up(port)
            await box.wait_for(lambda: not bridge.port(port).off_hook, 10)
            return t_ring - t_free

        # a user access holds at most 128 CCBSReferences (7 bits, EN 300 359-1): activate
        # and recall in batches well below that
        latencies: list[float] = []
        activating = 0.0
        for first in range(0, len(NUMBERS), BATCH):
            batch = NUMBERS[first:first + BATCH]
            plan = {p: list(batch[i::len(ISDN_PHONES)]) for i, p in enumerate(ISDN_PHONES)}
            t0 = time.perf_counter()
            await asyncio.gather(*(phone(p, numbers) for p, numbers in plan.items()))
            activating += time.perf_counter() - t0
            # a control-socket round trip: the daemon has handled what the bridge said
            # before (the phones' last %HOOK ON), or the first status request could
            # overtake it (A busy: the network asks again after T-CCBS1, a 1 s outlier)
            await stage.ccbsd.call("ping")
            for number in batch:
                latencies.append(await recall(number))
        isdn_rate = len(NUMBERS) / activating
        final = await stage.status()
        return {
            "pending_requests": restored,
            "restart_with_pending_s": round(restart_s, 2),
            "control_socket_activations": {"count": len(pairs), "clients": CLIENTS,
                                           "per_s": round(book_rate, 1)},
            "isdn_activations": {"count": len(NUMBERS), "phones": len(ISDN_PHONES),
                                 "per_s": round(isdn_rate, 2),
                                 "dtmf_ms": 40, "note": "bounded by the simulated dialling"},
            "b_free_to_ring_ms": {
                "samples": len(latencies),
                "p50": round(percentile(latencies, 50) * 1000, 2),
                "p99": round(percentile(latencies, 99) * 1000, 2),
                "mean": round(statistics.fmean(latencies) * 1000, 2),
            },
            "still_pending_after": len(final["requests"]),
        }
    finally:
        await stage.close()


async def _all() -> dict[str, Any]:
    data: dict[str, Any] = {"step_cost": [await _step_cost(n) for n in (1_000, PENDING)]}
    for n in (1_000, PENDING):
        cost = next(c for c in data["step_cost"] if c["pending"] == n)
        key = f"with_{n}_pending"
        if cost["ms_per_64_port_poll"] > SATURATED_MS:
            data[key] = {"skipped": f"daemon saturated: {cost['ms_per_64_port_poll']} ms "
                                    "per 64-port poll answer"}
            continue
        data[key] = await _measure(n)
    return data


def run() -> dict[str, Any]:
    data = asyncio.run(_all())
    headline: dict[str, Any] = {}
    for n in (1_000, PENDING):
        part = data[f"with_{n}_pending"]
        tag = f"{n // 1000}k_pending"
        if "skipped" in part:
            headline[f"e2e_{tag}"] = "skipped (daemon saturated)"
            continue
        headline[f"activations_per_s_{tag}"] = part["control_socket_activations"]["per_s"]
        headline[f"b_free_to_AT%RING_p50_ms_{tag}"] = part["b_free_to_ring_ms"]["p50"]
        headline[f"b_free_to_AT%RING_p99_ms_{tag}"] = part["b_free_to_ring_ms"]["p99"]
    for cost in data["step_cost"]:
        headline[f"service_ms_per_64_port_poll_{cost['pending'] // 1000}k_pending"] = \
            cost["ms_per_64_port_poll"]
    data["headline"] = headline
    write_section("e2e", data)
    return data


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
