"""The shipped unit and sysusers files: required settings present, and systemd's own
tools accept them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "ccbsd.service"
SYSUSERS = ROOT / "systemd" / "ccbs-isdn.sysusers.conf"


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key}", []).append(value)
    return settings


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Service.Type", "notify"),
        ("Service.ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Service.ProtectSystem", "strict"),
        ("Service.PrivateTmp", "yes"),
        ("Service.NoNewPrivileges", "yes"),
        ("Service.StateDirectory", "ccbs-isdn"),
        ("Service.RuntimeDirectory", "ccbs-isdn"),
        ("Service.SupplementaryGroups", "dialout"),
        ("Service.User", "ccbs-isdn"),
        ("Service.RestartPreventExitStatus", "78"),
    ],
)
def test_unit_has_the_required_settings(key: str, value: str) -> None:
    assert value in unit_settings().get(key, []), f"{key}={value} missing from {UNIT}"


def test_unit_watchdog_and_paths_match_the_daemon_defaults() -> None:
    from ccbs_isdn.config import default_config

    settings = unit_settings()
    assert int(settings["Service.WatchdogSec"][0]) >= 10
    daemon = default_config().daemon
    assert daemon.state_dir == "/var/lib/" + settings["Service.StateDirectory"][0]
    assert daemon.socket.startswith("/run/" + settings["Service.RuntimeDirectory"][0] + "/")
    assert daemon.socket_group == settings["Service.Group"][0]


def test_sysusers_creates_the_groups_the_defaults_name(tmp_path: Path) -> None:
    from ccbs_isdn.config import default_config

    lines = [line.split() for line in SYSUSERS.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    created = {fields[1] for fields in lines if fields[0] in ("u", "g")}
    daemon = default_config().daemon
    assert {daemon.socket_group, daemon.admin_group} <= created
    assert ["m", "ccbs-isdn", "dialout"] in lines


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at a binary this machine has
    unit = tmp_path / "ccbsd.service"
    unit.write_text(UNIT.read_text().replace("/usr/bin/ccbsd", shutil.which("true") or "/bin/true"))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers missing")
def test_systemd_sysusers_accepts_the_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    done = subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    groups = (tmp_path / "etc" / "group").read_text()
    assert "ccbs-isdn-admin:" in groups
    assert any(line.startswith("dialout:") and "ccbs-isdn" in line
               for line in groups.splitlines())
    assert "ccbs-isdn:" in (tmp_path / "etc" / "passwd").read_text()
