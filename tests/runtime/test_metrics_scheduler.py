"""Metrics exposition (textfile, loopback HTTP) and the single-timer scheduler."""

from __future__ import annotations

import asyncio
import urllib.request
from dataclasses import replace
from pathlib import Path

from ccbs_isdn.config import default_config
from ccbs_isdn.runtime.metrics import Metrics
from ccbs_isdn.runtime.scheduler import Scheduler


async def test_textfile_mode_writes_the_registry(tmp_path: Path) -> None:
    path = tmp_path / "collector" / "ccbsd.prom"
    metrics = Metrics()
    metrics.observe_active({("local", "activated"): 3, ("monitor", "requested"): 1})
    metrics.observe_lines([{"kind": "port", "id": "1", "up": True},
                           {"kind": "controller", "id": "1", "up": False}])
    await metrics.start(replace(default_config().metrics, mode="textfile",
                                textfile=str(path), interval=60))
    metrics.observe_active({("local", "activated"): 2})  # monitor/requested → 0
    await metrics.stop()  # writes a last time
    text = path.read_text()
    assert 'ccbs_requests_active{role="local",state="activated"} 2.0' in text
    assert 'ccbs_requests_active{role="monitor",state="requested"} 0.0' in text
    assert 'ccbs_line_up{id="1",kind="controller"} 0.0' in text
    assert 'ccbs_line_up{id="1",kind="port"} 1.0' in text


async def test_http_mode_serves_metrics_on_loopback() -> None:
    metrics = Metrics()
    metrics.notification("webhook", "ok")
    await metrics.start(replace(default_config().metrics, mode="http", port=0))
    try:
        url = f"http://127.0.0.1:{metrics.http_port}/metrics"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
    finally:
        await metrics.stop()
    assert b'ccbs_notifications_total{channel="webhook",result="ok"} 1.0' in body
    assert metrics.http_port is None


async def test_off_mode_exposes_nothing_and_apply_switches_modes(tmp_path: Path) -> None:
    metrics = Metrics()
    await metrics.start(default_config().metrics)
    assert metrics.http_port is None
    path = tmp_path / "m.prom"
    await metrics.apply(replace(default_config().metrics, mode="textfile", textfile=str(path)))
    await metrics.stop()
    assert "ccbs_store_writable 1.0" in path.read_text()


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_one_timer_fires_once_with_now_and_rearming_replaces_it() -> None:
    fired: list[float] = []
    got = asyncio.Event()
    clock = FakeClock(1000.0)

    def due(now: float) -> None:
        fired.append(now)
        got.set()

    sched = Scheduler(due, clock=clock)
    sched.arm(1000.0 + 3600)  # far away ...
    sched.arm(1000.0)  # ... replaced by "now": only this one may fire
    await asyncio.wait_for(got.wait(), 5)
    assert fired == [1000.0]
    assert sched.fired == 1
    assert len([h for h in asyncio.get_running_loop()._scheduled if not h.cancelled()]) == 0


async def test_an_early_wakeup_rearms_instead_of_firing() -> None:
    fired: list[float] = []
    clock = FakeClock(50.0)
    sched = Scheduler(fired.append, clock=clock)
    sched.arm(60.0)
    sched._fire()  # as if the loop woke up early (wall clock stepped back)
    assert fired == [] and sched.deadline == 60.0
    clock.now = 60.5
    sched._fire()
    assert fired == [60.5]


async def test_disarm() -> None:
    fired: list[float] = []
    sched = Scheduler(fired.append, clock=FakeClock(0.0))
    sched.arm(0.0)
    sched.cancel()
    assert [h for h in asyncio.get_running_loop()._scheduled if not h.cancelled()] == []
    assert fired == [] and sched.deadline is None
