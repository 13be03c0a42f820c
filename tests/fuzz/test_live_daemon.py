"""Garbage into a running ccbsd — the real daemon process against the simulated box —
on each of its inputs: the control socket (near-valid requests, wrong types, broken
JSON, invalid UTF-8, oversized lines), the FXS bridge (near-miss URCs, noise without
line discipline) and the ISDN card (broken CAPI frames). After every example the
daemon still answers and still works (a probe through the same input); at the end a
whole local and ISDN lifecycle runs with the invariants of the chaos monkey, and the
daemon's log holds no traceback (every bad input was refused by its parser's own
error and logged in one line)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ccbs_isdn.drivers.sim.demo import Stage
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.chaos.harness import ChaosStats, Monkey, bridge_set_up, chaos_stage
from tests.stories.conftest import EXTERNAL_FREE

from .conftest import FuzzCount, examples, long_mode
from .strategies import bridge_bytes, bridge_line, capi_frame, control_line

pytestmark = pytest.mark.integration

def fuzz_settings(bounded: int) -> settings:
    # the daemon lives through all examples of a test: an example depends on the
    # ones before it, so shrinking would chase a moving target; the failing run's
    # frames are in the daemon's log (every refused input is logged in hex)
    return settings(max_examples=examples(bounded), deadline=None, database=None,
                    derandomize=not long_mode(), phases=[Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
#: error codes a control-socket reply may carry (runtime/control.py, errors.py)
ERROR_CODES = {"bad-request", "permission-denied", "not-found", "refused", "local-error",
               "timeout", "busy", "not-supported", "trace-failed", "config-error",
               "store-error", "shutting-down"}


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Stage]:
    stage = chaos_stage(tmp_path)
    try:
        await stage.open()
        yield stage
    finally:
        await stage.close()


async def still_serves(stage: Stage) -> None:
    """A fresh control connection gets a status; the lines are up."""
    status = await asyncio.wait_for(stage.status(), 10)
    assert status["daemon"]["pid"] == stage.ccbsd.proc.pid  # type: ignore[union-attr]


async def final_round(stage: Stage) -> None:
    """Clean up whatever the garbage set going, then a whole local + ISDN lifecycle
    with the chaos monkey's invariants; and no traceback in the log."""
    with contextlib.suppress(Exception):
        await stage.ccbsd.call("cancel", all=True)
    # the bridge reboots: the daemon re-reads every port from it (FXB/1 §3.7)
    since = stage.mark()
    stage.box.reboot_bridge()
    await bridge_set_up(stage, since)
    await stage.settled(30)
    stats = ChaosStats(test="final", seed=0)
    rnd = await Monkey(stage, stats, random.Random(0)).round(1, None)
    assert stats.violations == [], "\n".join(stats.violations)
    timeline = "\n".join(f"{e.t:9.3f} {e.source:>8} {e.text}"
                         for e in stage.box.timeline[-60:])
    assert stats.completed == 2, f"{rnd.script_errors}\n{timeline}"
    log = stage.ccbsd.log()
    assert "Traceback" not in log, log[log.index("Traceback") - 2000:][:6000]


# ------------------------------------------------------------------ control


@fuzz_settings(120)
@given(lines=st.lists(control_line(), min_size=1, max_size=6),
       chunk=st.integers(1, 64))
async def test_control_socket_garbage(live: Stage, fuzz_count: FuzzCount,
                                      lines: list[bytes], chunk: int) -> None:
    reader, writer = await asyncio.open_unix_connection(live.ccbsd.socket, limit=1 << 20)
    data = b"".join(_no_follow(line) for line in lines)
    try:
        for i in range(0, len(data), chunk):  # in pieces: framing is the server's job
            writer.write(data[i:i + chunk])
        await writer.drain()
        writer.write_eof()
        replies = []
        while True:
            line = await asyncio.wait_for(reader.readline(), 15)
            if not line:
                break
            replies.append(json.loads(line))
    except ConnectionResetError:
        replies = []  # the server hung up on an oversized line: allowed
    finally:
        writer.close()
    assert len(replies) <= len(lines)
    for reply in replies:
        assert reply.get("v") == 1 and isinstance(reply.get("ok"), bool), reply
        if not reply["ok"]:
            assert reply["error"]["code"] in ERROR_CODES, reply
            fuzz_count.rejected += 1
    fuzz_count.cases += len(lines)
    fuzz_count.accepted = fuzz_count.cases - fuzz_count.rejected
    await still_serves(live)


async def test_control_garbage_leaves_a_working_daemon(live: Stage,
                                                       fuzz_count: FuzzCount) -> None:
    """Many clients at once, half-lines, an abrupt close, then the final round."""
    rng = random.Random(7)
    writers = []
    for _ in range(20):
        _, writer = await asyncio.open_unix_connection(live.ccbsd.socket)
        writer.write(bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))))
        writers.append(writer)
    for writer in writers:
        await writer.drain()
        writer.transport.abort()  # gone without a newline or a goodbye
    fuzz_count.cases += len(writers)
    await still_serves(live)
    await final_round(live)


def _no_follow(line: bytes) -> bytes:
    """``events --follow`` would stream forever; everything else answers once."""
    return line.replace(b'"follow": true', b'"follow": false')


# ------------------------------------------------------------------- bridge


@fuzz_settings(40)
@given(items=st.lists(st.one_of(bridge_line().map(lambda t: ("line", t)),
                                bridge_bytes().map(lambda b: ("bytes", b))),
                      min_size=1, max_size=6))
async def test_bridge_garbage(live: Stage, fuzz_count: FuzzCount,
                              items: list[tuple[str, object]]) -> None:
    box = live.box
    bridge = box.bridge
    since = live.mark()
    for kind, item in items:
        if kind == "line":
            bridge.send_line(str(item))
        else:
            bridge.send_garbage(item)  # type: ignore[arg-type]
    fuzz_count.cases += len(items)
    # probe through the same input: Dirk lifts and gets dial tone, hangs up
    dirk = box.phone(4)
    dirk.lift()
    await live.command("AT%TONE=4,DIAL", since=since, timeout=20)
    dirk.hang_up()
    await box.wait_for(lambda: not dirk.off_hook, 10, "Dirk on-hook")
    await still_serves(live)


async def test_bridge_garbage_leaves_a_working_daemon(live: Stage,
                                                      fuzz_count: FuzzCount) -> None:
    rng = random.Random(11)
    for _ in range(200):
        live.box.bridge.send_garbage(rng.randbytes(rng.randint(1, 64)))
    fuzz_count.cases += 200
    await still_serves(live)
    await final_round(live)


# --------------------------------------------------------------------- card


@fuzz_settings(8)
@given(frames=st.lists(capi_frame(), min_size=10, max_size=10))
async def test_card_garbage(live: Stage, fuzz_count: FuzzCount, frames: list[bytes]) -> None:
    box = live.box
    for frame in frames:
        assert box.rcapi.inject(frame) == 1
    fuzz_count.cases += len(frames)
    # probe through the same link: a call from the network rings Dirk's phone, he
    # answers, talks, hangs up (a caller who gives up before the answer is not used:
    # see the report of tests/fuzz about the simulated card)
    since = live.mark()
    caller = box.subscriber(EXTERNAL_FREE)
    dirk = box.phone(4)
    caller.call("5554")
    await live.command("AT%RING=4,", since=since, timeout=20)
    await box.wait_for(lambda: dirk.ringing, 10, "Dirk's phone rings")
    dirk.answer()
    await box.wait_for(caller.in_call, 10, "the call is connected")
    dirk.hang_up()
    await box.wait_for(lambda: not caller.in_call() and not dirk.off_hook, 15,
                       "the call is over")
    await still_serves(live)


async def test_card_garbage_leaves_a_working_daemon(live: Stage,
                                                    fuzz_count: FuzzCount) -> None:
    rng = random.Random(13)
    for _ in range(100):
        body = rng.randbytes(rng.randint(0, 60))
        header = bytes([8 + len(body), 0, 1, 0, rng.choice([0x02, 0x04, 0x08, 0x80]),
                        rng.choice([0x81, 0x82]), rng.randrange(256), 0])
        live.box.rcapi.inject(header + body)
    fuzz_count.cases += 100
    await still_serves(live)
    await final_round(live)
