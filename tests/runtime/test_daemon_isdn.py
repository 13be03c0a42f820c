"""ccbsd with ISDN controllers: the real libcapi20 talks to the simulated exchange
(rcapi over loopback TCP) inside the daemon process; a notification webhook; the CAPI
trace."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from tests.runtime.harness import Ccbsd, base_config
from tests.runtime.servers import HttpSink

LIBCAPI = [Path(p) for p in ("/usr/lib/x86_64-linux-gnu/libcapi20.so.3",
                             "/usr/lib/aarch64-linux-gnu/libcapi20.so.3",
                             "/usr/lib/libcapi20.so.3")]
needs_libcapi = pytest.mark.skipif(
    not any(p.exists() for p in LIBCAPI) or not os.access("/dev/shm", os.W_OK),
    reason="Debian package libcapi20-3 is missing (or /dev/shm is not writable)")

CONTROLLERS = """
[[capi.controllers]]
ctrl = 1
msns = ["5551", "5552"]

[[capi.controllers]]
ctrl = 2
msns = ["6661"]
route = "raw"
"""


@needs_libcapi
def test_controllers_come_up_through_the_real_libcapi20(tmp_path: Path) -> None:
    d = Ccbsd()
    trace = d.root / "trace.log"
    d.config.write_text(base_config(d.root, CONTROLLERS).replace(
        'log_level = "debug"', f'log_level = "debug"\ntrace_file = "{trace}"'))
    try:
        ready = d.start().notifications[-1]
        assert "STATUS=0 active requests, 6/6 lines up" in ready
        status = d.ctl("status", json_output=True).json()
        controllers = {x["id"]: x for x in status["lines"] if x["kind"] == "controller"}
        assert controllers["1"]["up"] and controllers["1"]["detail"] == "supplementary, ptmp"
        assert controllers["2"]["up"] and controllers["2"]["detail"] == "raw, ptmp"
        assert controllers["1"]["name"] == "5551,5552"
        text = trace.read_text()
        assert re.search(r" capi dir=tx hex=[0-9a-f]+ decoded=\"LISTEN_REQ ", text)
        assert re.search(r" capi dir=rx hex=[0-9a-f]+ decoded=\"LISTEN_CONF ", text)
        human = d.ctl("status").stdout
        assert re.search(r"^controller\s+1\s+5551,5552\s+up\s+supplementary, ptmp$", human,
                         re.M)
    finally:
        d.close()


def test_activation_is_posted_to_the_webhook() -> None:
    async def run() -> None:
        sink = HttpSink(asyncio.get_running_loop())
        d = Ccbsd()
        d.config.write_text(base_config(
            d.root, f'[notify]\nwebhook = "{sink.url}"\nevents = ["activated", "cancelled"]\n'))
        try:
            await asyncio.to_thread(d.start)
            booked = await asyncio.to_thread(d.ctl, "request", "--from", "21", "--to", "22")
            assert booked.code == 0, booked.stderr
            body = await asyncio.wait_for(sink.bodies.get(), 30)
            assert body["json"]["event"] == "activated"
            assert (body["json"]["id"], body["json"]["caller"], body["json"]["target"]) == \
                (1, "21", "22")
            assert body["json"]["route"] == "local"
            await asyncio.to_thread(d.ctl, "cancel", "1")
            cancelled = await asyncio.wait_for(sink.bodies.get(), 30)
            assert cancelled["json"]["event"] == "cancelled"
        finally:
            await asyncio.to_thread(d.close)
            sink.stop()

    asyncio.run(run())
