"""Engine benchmark (fake clock, no I/O in the measured paths): 1k / 10k / 100k active
requests — memory per request, time to handle one event (p50/p99, including
``take_changes()``, which the runtime calls after every step), activations per
second, restart time (store load + ``engine.restore``), plus the cost of one SQLite
step commit and the reason for the engine's model binding (a ``transitions`` model
attached per request vs. one bound model per role).

Each size runs in its own process so RSS figures are not polluted by the previous one.
Targets (H5): p99 <= 1 ms per event at 10k, memory linear, 10k requests <= 200 MB RSS,
restart of 10k <= 2 s, 100k must work. Results -> bench/results.json "engine".
"""

from __future__ import annotations

import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from _results import percentile, summary_us, write_section  # noqa: E402

from ccbs_isdn.engine import (  # noqa: E402
    Book,
    CcbsEngine,
    Changes,
    Directory,
    Extension,
    Policy,
    PortSource,
    PortState,
)
from ccbs_isdn.engine.events import Activate, Dialled  # noqa: E402
from ccbs_isdn.isdn import (  # noqa: E402
    CcAvailable,
    CcKind,
    CcRemoteUserFree,
    CcRequest,
    CcRequestResult,
    CcStatusRequest,
    CcStopAlerting,
    ControllerUp,
)
from ccbs_isdn.runtime.store import RequestStore  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
EVENTS = 4_000
ISDN_SHARE = 5  # every 5th request is an ETSI (monitor) request
REFS_PER_CTRL = 100  # CCBSReference is 7-bit per controller


class World:
    """The engine under test and what the event generator needs to know about it.
    (A plain class: bench/run.py loads this file without registering the module,
    which ``@dataclass`` needs.)"""

    def __init__(self, engine: CcbsEngine, now: float, b_ports: list[str],
                 refs: list[tuple[int, int]]) -> None:
        self.engine = engine
        self.now = now
        self.b_ports = b_ports
        self.refs = refs  # (ctrl, reference) of activated ETSI requests


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def directory_for(n: int) -> Directory:
    exts = []
    for i in range(n):
        exts.append(Extension(f"1{i:06d}", port=f"a{i}", msn=f"55{i:06d}",
                              ctrl=1 + i // REFS_PER_CTRL))
    for j in range(n // 4 + 1):
        exts.append(Extension(f"2{j:06d}", port=f"b{j}"))
    return Directory(exts)


def build(n: int, directory: Directory) -> tuple[World, float]:
    """n active requests: 4 of 5 local (4 callers per B), 1 of 5 ETSI. Returns the
    world and the wall time spent activating. Changes are taken after every step, as
    the runtime does."""
    policy = Policy(max_global=n + 10)
    engine = CcbsEngine(directory, policy)
    now = 1_700_000_000.0
    b_ports = [f"b{j}" for j in range(n // 4 + 1)]
    for port in b_ports:  # every B is on the phone
        engine.handle(PortState(port, True, PortSource.POLL), now)
    for i in range(n):
        engine.handle(PortState(f"a{i}", False, PortSource.POLL), now)
    engine.take_changes()
    refs: list[tuple[int, int]] = []
    ctrls: set[int] = set()
    started = time.perf_counter()
    for i in range(n):
        caller = f"1{i:06d}"
        if i % ISDN_SHARE:
            engine.handle(Book(caller, f"2{i // 4:06d}"), now)
            engine.take_changes()
        else:
            ctrl = 1 + i // REFS_PER_CTRL
            if ctrl not in ctrls:
                engine.handle(ControllerUp(ctrl), now)
                ctrls.add(ctrl)
            call, number = f"c{i}", f"030{i:07d}"
            engine.handle(Dialled(caller, number, call, ctrl=ctrl), now)
            engine.handle(CcAvailable(ctrl, call_id=call, kind=CcKind.CCBS, linkage_id=i % 128,
                                      called=number, calling=f"55{i:06d}"), now)
            request = next(a for a in engine.handle(Activate(caller), now)
                           if isinstance(a, CcRequest))
            reference = i % REFS_PER_CTRL
            engine.handle(CcRequestResult(ctrl, handle=request.handle, reference=reference),
                          now)
            engine.take_changes()
            refs.append((ctrl, reference))
    elapsed = time.perf_counter() - started
    return World(engine, now, b_ports, refs), elapsed


def event_latencies(world: World) -> dict[str, list[float]]:
    """Steady-state events against the full engine: B hangs up (FIFO head goes to
    Guard) and lifts again, status requests, B-free for ETSI requests and
    stop-alerting. Each sample = handle() + take_changes()."""
    rng = random.Random(7)
    engine, now = world.engine, world.now
    samples: dict[str, list[float]] = {"port_state": [], "status_request": [],
                                       "remote_user_free": [], "stop_alerting": []}
    clock = time.perf_counter
    for k in range(EVENTS):
        now += 0.01
        if k % 2 == 0:
            port = rng.choice(world.b_ports)
            for busy in (False, True):
                t = clock()
                engine.handle(PortState(port, busy), now)
                engine.take_changes()
                samples["port_state"].append(clock() - t)
        else:
            ctrl, ref = rng.choice(world.refs)
            t = clock()
            engine.handle(CcStatusRequest(ctrl, token=k, reference=ref), now)
            engine.take_changes()
            samples["status_request"].append(clock() - t)
            t = clock()
            engine.handle(CcRemoteUserFree(ctrl, reference=ref), now)
            engine.take_changes()
            samples["remote_user_free"].append(clock() - t)
            t = clock()
            engine.handle(CcStopAlerting(ctrl, reference=ref), now)
            engine.take_changes()
            samples["stop_alerting"].append(clock() - t)
    return samples


def restart_time(world: World, tmp: Path) -> dict[str, float]:
    store_path = tmp / "bench.sqlite"
    records = world.engine.requests()
    with RequestStore.open(store_path) as store:
        started = time.perf_counter()
        store.save(Changes(requests=tuple(records)))
        save_all = time.perf_counter() - started
    started = time.perf_counter()
    with RequestStore.open(store_path) as store:
        loaded = store.load_active()
        last_id = store.last_id()
    loaded_at = time.perf_counter()
    engine = CcbsEngine(world.engine.directory, world.engine.policy, last_id=last_id)
    actions = engine.restore(loaded, world.now + 5)
    engine.take_changes()
    done = time.perf_counter()
    assert len(engine) == len(records), (len(engine), len(records))
    return {"save_all_s": round(save_all, 3), "load_s": round(loaded_at - started, 3),
            "rebuild_s": round(done - loaded_at, 3), "restart_s": round(done - started, 3),
            "reconcile_actions": len(actions)}


def step_commit_ms(tmp: Path) -> dict[str, float]:
    """What persist-then-act adds per engine step: one small transaction, fsynced."""
    from ccbs_isdn.engine import HistoryEntry, RequestRecord, Role

    samples = []
    with RequestStore.open(tmp / "steps.sqlite") as store:
        for i in range(1, 201):
            record = RequestRecord(i, Role.LOCAL, CcKind.CCBS, "Waiting", "21", "22", 1.0, 1.0)
            changes = Changes((record,), (HistoryEntry(i, 1.0, "activate", "", "Waiting", "u"),))
            t = time.perf_counter()
            store.save(changes)
            samples.append(time.perf_counter() - t)
    return {"p50_ms": round(percentile(samples, 50) * 1e3, 3),
            "p99_ms": round(percentile(samples, 99) * 1e3, 3)}


def model_binding_cost() -> dict[str, float]:
    """Why requests are compact records: a transitions model attached per request."""
    from ccbs_isdn.engine import machine
    from ccbs_isdn.engine.engine import _Model

    engine = CcbsEngine(Directory())
    m = machine.build_machine(machine.Role.LOCAL, _Model(engine))
    models = [_Model(engine) for _ in range(2000)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for model in models[:1000]:
        m.add_model(model, initial="Waiting")
    attached = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    started = time.perf_counter()
    for model in models[1000:]:
        m.add_model(model, initial="Waiting")
    add_us = (time.perf_counter() - started) / 1000 * 1e6
    return {"attached_model_bytes": round(attached / 1000), "add_model_us_at_1k_to_2k":
            round(add_us, 1)}


def measure(n: int) -> dict[str, Any]:
    directory = directory_for(n)  # configuration, not per-request state
    gc.collect()
    rss_before = rss_mb()
    tracemalloc.start()
    world, _ = build(n, directory)
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del world
    gc.collect()
    world, activation_s = build(n, directory)
    rss_after = rss_mb()
    latencies = event_latencies(world)
    everything = [s for values in latencies.values() for s in values]
    with tempfile.TemporaryDirectory() as tmp:
        restart = restart_time(world, Path(tmp))
    return {
        "requests": n,
        "bytes_per_request": round(traced / n),
        "rss_mb": round(rss_after, 1),
        "rss_growth_mb": round(rss_after - rss_before, 1),
        "activations_per_s": round(n / activation_s),
        "event": summary_us(everything),
        "event_by_kind": {kind: summary_us(values) for kind, values in latencies.items()},
        **restart,
    }


def run() -> dict[str, Any]:
    sizes: dict[str, Any] = {}
    for n in SIZES:
        out = subprocess.run([sys.executable, __file__, "--size", str(n)], check=True,
                             capture_output=True, text=True)
        sizes[str(n)] = json.loads(out.stdout)
    with tempfile.TemporaryDirectory() as tmp:
        commit = step_commit_ms(Path(tmp))
    binding = model_binding_cost()
    ten_k = sizes["10000"]
    data = {
        "sizes": sizes,
        "store_step_commit": commit,
        "model_binding": binding,
        "headline": {
            "event p99 us @10k": ten_k["event"]["p99_us"],
            "event p99 us @100k": sizes["100000"]["event"]["p99_us"],
            "bytes per request @100k": sizes["100000"]["bytes_per_request"],
            "RSS MB @10k": ten_k["rss_mb"],
            "activations/s @10k": ten_k["activations_per_s"],
            "restart s @10k": ten_k["restart_s"],
            "restart s @100k": sizes["100000"]["restart_s"],
            "store step commit p99 ms": commit["p99_ms"],
        },
    }
    write_section("engine", data)
    return data


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--size":
        print(json.dumps(measure(int(sys.argv[2]))))
        sys.exit(0)
    result = run()
    for key, value in result["headline"].items():
        print(f"{key:<40} {value}")
    print(f"{'transitions model attached per request':<40} "
          f"{result['model_binding']['attached_model_bytes']} bytes, "
          f"add_model {result['model_binding']['add_model_us_at_1k_to_2k']} us")
