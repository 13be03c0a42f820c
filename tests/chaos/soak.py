"""``make soak``: a day of CCBS traffic compressed into minutes against one ccbsd, with
its resident memory and open file descriptors sampled — they must stay flat.

``python -m tests.chaos.soak [--lifecycles 2000] [--workers 10] [--minutes 30]``

The real ccbsd (a child process) runs against a simulated box with 16 phones, three
BRI controllers and four external subscribers, through the real libcapi20 (loopback
TCP), the real FXS driver (pty) and a real SQLite store. Ten simulated people work at
once, each repeating one kind of lifecycle: six local pairs (A calls B who is busy,
R *37# or 5, B hangs up, A is recalled, B rings, they talk; one in ten cancels with
#37# instead) and four callers of external numbers (busy, 5, network CCBS, the recall
call). Every wait is event-driven; a lifecycle that does not finish counts as failed.

Every ``--sample`` lifecycles the daemon's VmRSS and the entries of /proc/<pid>/fd are
read. Verdict, after a warm-up of the first fifth of the samples: a leak is file
descriptors that do not come back down (the lowest count of the last third two or
more above the highest of the first third) or memory that keeps growing (median of the last third
more than max(8 MiB, 10 %) above the median of the first third). Exit code 0: flat and
every lifecycle finished; 1: a leak; 2: lifecycles failed or the daemon died.

Owns nothing of the product; holds no CCBS logic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ccbs_isdn.drivers.sim.box import (
    BoxConfig,
    BoxController,
    BoxSubscriber,
    Phone,
    SimBox,
    StationSpec,
)
from ccbs_isdn.drivers.sim.demo import Stage
from ccbs_isdn.drivers.sim.network.timers import NetworkTimers

from ccbs_isdn.runtime.store import RequestFilter, RequestStore

LOCAL_PAIRS = 6
ISDN_CALLERS = 4
PORTS = 2 * LOCAL_PAIRS + ISDN_CALLERS
EXTERNALS = tuple(f"30{4000 + i}" for i in range(ISDN_CALLERS))
TIMERS = {"guard": 0.1, "recheck": 1.0, "a_answer": 5.0, "b_answer": 5.0,
          "recall_retry": 0.5, "t_activate": 5.0}
HOOK = (10, 40, 150)
STEP = 20.0  # seconds any single step may take before the lifecycle counts as failed


def ctrl_of(port: int) -> int:
    """Local pairs on controller 1; the ISDN callers two by two on controllers 2 and 3
    (a BRI has two B channels: no caller waits for a free one)."""
    if port <= 2 * LOCAL_PAIRS:
        return 1
    return 2 + (port - 2 * LOCAL_PAIRS - 1) // 2


def stations() -> list[StationSpec]:
    return [StationSpec(p, str(100 + p), f"55{p:02d}", ctrl_of(p), f"P{p}")
            for p in range(1, PORTS + 1)]


def box_config() -> BoxConfig:
    ctrls = sorted({st.ctrl for st in stations()})
    return BoxConfig(
        controllers=tuple(BoxController(c, tuple(st.msn for st in stations() if st.ctrl == c),
                                        max_requests=50) for c in ctrls),
        subscribers=tuple(BoxSubscriber(n, busy=True) for n in EXTERNALS),
        fxs_ports=PORTS,
        timers=NetworkTimers(t_ccbs1=1.0, t_destination_poll=1.0),
        timeline=False,  # a long run: keep no readable timeline in this process
    )


# ---------------------------------------------------------------- measuring


@dataclass
class Sample:
    lifecycles: int
    seconds: float
    rss_kib: int
    fds: int
    active: int


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Verdict:
    leak: bool
    reasons: list[str] = field(default_factory=list)
    rss_growth_kib: float = 0.0
    fd_growth: int = 0


def judge(samples: list[Sample]) -> Verdict:
    """See the module docstring."""
    steady = samples[len(samples) // 5:]
    if len(steady) < 6:
        return Verdict(False, ["too few samples to judge (raise --lifecycles)"])
    third = len(steady) // 3
    first, last = steady[:third], steady[-third:]
    verdict = Verdict(False)
    # a control connection or a call in flight moves the count by one or two: a leak
    # is the whole last third above everything the first third saw
    verdict.fd_growth = min(s.fds for s in last) - max(s.fds for s in first)
    if verdict.fd_growth >= 2:
        verdict.leak = True
        verdict.reasons.append(f"open file descriptors grew by {verdict.fd_growth} "
                               "and did not come back down")
    base = statistics.median(s.rss_kib for s in first)
    verdict.rss_growth_kib = statistics.median(s.rss_kib for s in last) - base
    if verdict.rss_growth_kib > max(8 * 1024, 0.10 * base):
        verdict.leak = True
        verdict.reasons.append(f"resident memory grew by {verdict.rss_growth_kib / 1024:.1f} "
                               f"MiB from {base / 1024:.1f} MiB")
    return verdict


# ---------------------------------------------------------------- the people


class Soak:
    def __init__(self, stage: Stage, lifecycles: int, sample_every: int, seed: int) -> None:
        self.stage = stage
        self.box: SimBox = stage.box
        self.bridge = stage.box.bridge
        self.target = lifecycles
        self.sample_every = sample_every
        self.rng = random.Random(seed)
        self.started = 0
        self.done = 0
        self.failed: list[str] = []
        self.kinds: dict[str, int] = {"local": 0, "cancel": 0, "isdn": 0}
        self.samples: list[Sample] = []
        self.t0 = time.monotonic()
        self._sampling = asyncio.Lock()

    @property
    def pid(self) -> int:
        proc = self.stage.ccbsd.proc
        assert proc is not None, "ccbsd is not running"
        return proc.pid

    async def sample(self) -> None:
        async with self._sampling:
            status = await self.stage.status()
            s = Sample(self.done, time.monotonic() - self.t0, rss_kib(self.pid),
                       open_fds(self.pid), len(status["requests"]))
            self.samples.append(s)
            print(f"  {s.lifecycles:6d} lifecycles {s.seconds:7.1f} s  rss {s.rss_kib / 1024:7.1f} "
                  f"MiB  fds {s.fds:3d}  active {s.active:3d}", flush=True)

    def claim(self) -> bool:
        if self.started >= self.target:
            return False
        self.started += 1
        return True

    async def finished(self, kind: str) -> None:
        self.done += 1
        self.kinds[kind] += 1
        if self.done % self.sample_every == 0:
            await self.sample()

    # -- steps (absolute bridge marks: the bridge's log is capped on a long run)
    async def command(self, prefix: str, since: int) -> None:
        await self.bridge.wait_command(prefix, since=since, timeout=STEP)

    async def lift(self, phone: Phone) -> None:
        since = self.bridge.mark()
        phone.lift()
        await self.command(f"AT%TONE={phone.number},DIAL", since)

    async def hang_up(self, phone: Phone) -> None:
        phone.hang_up()
        await self.box.wait_for(lambda: not phone.off_hook, STEP, "on-hook")

    async def dial(self, phone: Phone, digits: str, tone: str) -> None:
        since = self.bridge.mark()
        phone.dial(digits)
        await self.command(f"AT%TONE={phone.number},{tone}", since)

    async def activate(self, phone: Phone, flash: bool) -> None:
        since = self.bridge.mark()
        if flash:
            phone.flash()
            await self.command(f"AT%TONE={phone.number},SPECIALDIAL", since)
            phone.dial("*37#")
        else:
            phone.dial("5")
        await self.command(f"AT%TONE={phone.number},CONFIRM", since)

    # -- lifecycles
    async def local(self, a: Phone, b: Phone, b_ext: str) -> None:
        while self.claim():
            cancel = self.rng.random() < 0.1
            try:
                await self.lift(b)
                await self.lift(a)
                await self.dial(a, b_ext, "BUSY")
                await self.activate(a, flash=self.rng.random() < 0.5)
                await self.hang_up(a)
                if cancel:
                    await self.lift(a)
                    await self.dial(a, "#37#", "CONFIRM")
                    await self.hang_up(a)
                    await self.hang_up(b)
                    await self.finished("cancel")
                    continue
                since = self.bridge.mark()
                await self.hang_up(b)
                await self.command(f"AT%RING={a.number},1,", since)
                await self.box.wait_for(lambda: a.ringing and a.clip is not None, STEP,
                                        "recall ring")
                a.answer()
                await self.box.wait_for(lambda: b.ringing, STEP, "B rings")
                b.answer()
                await self.box.wait_for(lambda: a.peer == b.number, STEP, "connected")
                await self.hang_up(a)
                await self.hang_up(b)
                await self.finished("local")
            except (TimeoutError, AssertionError) as exc:
                await self.failure(f"local {a.number}->{b.number}", exc, (a, b))

    async def isdn(self, a: Phone, number: str) -> None:
        ext = self.box.subscriber(number)
        while self.claim():
            try:
                ext.busy()
                await self.lift(a)
                await self.dial(a, "0" + number + "#", "BUSY")
                await self.activate(a, flash=False)
                await self.hang_up(a)
                since = self.bridge.mark()
                ext.hang_up()
                ext.free()
                await self.command(f"AT%RING={a.number},1,", since)
                await self.box.wait_for(lambda: a.ringing and a.clip is not None, STEP,
                                        "recall ring")
                a.answer()
                await self.box.wait_for(ext.in_call, STEP, "recall call connected")
                await self.hang_up(a)
                await self.box.wait_for(lambda: not ext.in_call(), STEP, "call over")
                await self.finished("isdn")
            except (TimeoutError, AssertionError) as exc:
                await self.failure(f"isdn {a.number}->{number}", exc, (a,))

    async def failure(self, what: str, exc: BaseException, phones: tuple[Phone, ...]) -> None:
        self.failed.append(f"{what}: {type(exc).__name__}: {str(exc)[:300]}")
        print(f"  FAILED {what}: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
        for phone in phones:  # start over from idle
            if phone.port.loop_closed:
                phone.hang_up()
        with contextlib.suppress(TimeoutError):
            await self.box.wait_for(lambda: not any(p.off_hook or p.ringing for p in phones),
                                    STEP, "idle")

    async def run(self) -> None:
        await self.sample()  # before any traffic
        workers = []
        for i in range(LOCAL_PAIRS):
            a, b = self.box.phone(2 * i + 1), self.box.phone(2 * i + 2)
            workers.append(self.local(a, b, str(100 + b.number)))
        for i, number in enumerate(EXTERNALS):
            workers.append(self.isdn(self.box.phone(2 * LOCAL_PAIRS + i + 1), number))
        await asyncio.gather(*workers)
        await self.stage.settled(60)
        await self.sample()


async def soak(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="ccbs-soak-"))
    stage = Stage(box_config(), stations(), timers=TIMERS, hook=HOOK, poll=(5.0, 30.0),
                  root=root, log_level="warning",
                  extra="\n[limits]\nper_caller = 5\nper_callee = 5\nglobal = 1000\n")
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    print(f"soak: {args.lifecycles} lifecycles, {LOCAL_PAIRS} local pairs + {ISDN_CALLERS} "
          f"ISDN callers, sample every {args.sample}, seed {seed}, state in {root}")
    try:
        await stage.open()
        run = Soak(stage, args.lifecycles, args.sample, seed)
        try:
            await asyncio.wait_for(run.run(), args.minutes * 60)
        except TimeoutError:
            run.failed.append(f"not finished within {args.minutes:g} min")
        code, out, err = await stage.ccbsd.ctl("status")
        alive = stage.ccbsd.running and code == 0
        store = RequestStore.open(root / "state" / "requests.db", read_only=True)
        try:
            records = store.list(RequestFilter())
        finally:
            store.close()
        states: dict[str, int] = {}
        for record in records:
            states[record.state] = states.get(record.state, 0) + 1
    finally:
        await stage.close()
    took = time.monotonic() - run.t0
    verdict = judge(run.samples)
    print(f"\nsoak: {run.done} lifecycles in {took:.0f} s ({run.done / took:.1f}/s): "
          f"{run.kinds}; store: {len(records)} requests {states}")
    print(f"  failed lifecycles: {len(run.failed)}")
    for line in run.failed[:20]:
        print(f"    {line}")
    print(f"  rss growth {verdict.rss_growth_kib / 1024:+.1f} MiB, fd growth "
          f"{verdict.fd_growth:+d} (after warm-up)")
    if not alive:
        print(f"VERDICT: the daemon did not answer at the end (ccbsctl {code}: {err})")
        return 2
    if verdict.leak:
        print("VERDICT: LEAK — " + "; ".join(verdict.reasons))
        return 1
    if run.failed:
        print("VERDICT: flat, but lifecycles failed")
        return 2
    print("VERDICT: flat — no leak (" + ("; ".join(verdict.reasons) or "memory and file "
                                        "descriptors steady") + ")")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--lifecycles", type=int, default=2000)
    parser.add_argument("--sample", type=int, default=0,
                        help="sample every N lifecycles (default: lifecycles / 40)")
    parser.add_argument("--minutes", type=float, default=45.0, help="give up after this")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if args.sample <= 0:
        args.sample = max(1, args.lifecycles // 40)
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())
