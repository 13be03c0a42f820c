"""``[sim] enabled = true``: ccbsd starts the SimBox in its own process (the ISDN side
on a thread of its own) and reaches it through the real libcapi20 over loopback and
the real FXS driver on the pty — the simulator as a first-class backend."""

from __future__ import annotations

from pathlib import Path

from ccbs_isdn.drivers.sim.demo import Ccbsd

CONFIG = """
[daemon]
state_dir = "{root}/state"
socket = "{root}/control.sock"
socket_group = ""
admin_group = ""

[sim]
enabled = true
fxs_ports = 4
timer_scale = 0.1

[[sim.subscribers]]
number = "301234"
busy = true

[[capi.controllers]]
ctrl = 1
msns = ["5551", "5552"]

[[capi.controllers]]
ctrl = 2
msns = ["7771"]
ptp = true

[[fxs.ports]]
port = 1
extension = "21"
msn = "5551"

[[fxs.ports]]
port = 2
extension = "22"
msn = "5552"
"""


async def test_ccbsd_runs_on_its_in_process_sim_backend(tmp_path: Path) -> None:
    daemon = Ccbsd(tmp_path, CONFIG.format(root=tmp_path))
    try:
        await daemon.start()
        status = await daemon.status()
        lines = {(line["kind"], line["id"]): line for line in status["lines"]}
        assert lines[("bridge", "fxs0")]["up"]
        assert lines[("controller", "1")]["up"]
        assert lines[("controller", "1")]["detail"].startswith("supplementary, ptmp")
        assert lines[("controller", "2")]["detail"].startswith("raw, ptp")
        assert (tmp_path / "state" / "sim-fxs0").is_symlink()
        # a request between the two simulated phones is taken and shown
        result = await daemon.call("request", caller="21", target="22")
        assert result["route"] == "local"
        code, text, _ = await daemon.ctl("status")
        assert code == 0 and "21" in text and "local" in text
    finally:
        assert await daemon.stop() == 0
        daemon.close()
