"""``make demo`` itself: every story of product.md ends as expected and the exit
code says so."""

from __future__ import annotations

import asyncio
import sys

from ccbs_isdn.drivers.sim.demo import REPO, STORIES


async def test_make_demo_plays_every_story_and_exits_0() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccbs_isdn.drivers.sim.demo", cwd=str(REPO),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    summary = text[text.index("=== summary"):]
    lines = summary.splitlines()
    for name, _ in STORIES:
        (line,) = [ln for ln in lines if ln.endswith(name)]
        assert line.split()[0] == "ok", line
    assert "FAILED" not in summary
    assert "ccbsctl status" in text and "AT%RING=" in text
