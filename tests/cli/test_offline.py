"""ccbsctl without a daemon: exit 69 with a hint, config check (78 for every bad
config, naming file and key), diagram from the engine's own tables, usage errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.config.test_config import BAD_CONFIGS
from tests.runtime.harness import CCBSCTL, CCBSD, REPO

EXAMPLE = REPO / "etc" / "ccbsd.toml.example"


def ctl(*args: str, input_text: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CCBSCTL, *args], cwd=REPO, capture_output=True, text=True,
                          input=input_text, timeout=60, check=False)


def test_daemon_not_running_exits_69_with_a_hint(tmp_path: Path) -> None:
    sock = str(tmp_path / "nothing.sock")
    done = ctl("--socket", sock, "status")
    assert done.returncode == 69
    assert f"ccbsd is not running (no control socket at {sock})" in done.stderr
    assert "hint: start it with 'systemctl start ccbsd'" in done.stderr
    assert done.stdout == ""


def test_daemon_not_running_with_json_is_one_document(tmp_path: Path) -> None:
    done = ctl("--json", "--socket", str(tmp_path / "x.sock"), "status")
    assert done.returncode == 69
    doc = json.loads(done.stdout)
    assert doc["ok"] is False
    assert doc["error"]["code"] == "unavailable" and doc["error"]["exit"] == 69
    assert "systemctl start ccbsd" in doc["error"]["hint"]


def test_stale_socket_file_counts_as_not_running(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    assert ctl("--socket", str(path), "show", "1").returncode == 69


def test_config_check_accepts_the_example() -> None:
    done = ctl("--json", "config", "check", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == [str(EXAMPLE)]


@pytest.mark.parametrize(("text", "key", "expected"), BAD_CONFIGS,
                         ids=[case[1] for case in BAD_CONFIGS])
def test_config_check_exits_78_naming_file_and_key(tmp_path: Path, text: str, key: str,
                                                   expected: str) -> None:
    path = tmp_path / "ccbsd.toml"
    path.write_text(text)
    done = ctl("config", "check", str(path))
    assert done.returncode == 78
    assert f"{path}: {key}: " in done.stderr
    assert expected in done.stderr


@pytest.mark.parametrize(("text", "key", "expected"), BAD_CONFIGS,
                         ids=[case[1] for case in BAD_CONFIGS])
def test_ccbsd_refuses_every_bad_config_with_78(tmp_path: Path, text: str, key: str,
                                                 expected: str) -> None:
    path = tmp_path / "ccbsd.toml"
    path.write_text(text)
    done = subprocess.run([*CCBSD, "--config", str(path)], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 78
    assert done.stderr.startswith("<3>configuration error: ")
    assert f"{path}: {key}: " in done.stderr and expected in done.stderr


def test_ccbsd_check_config_option(tmp_path: Path) -> None:
    done = subprocess.run([*CCBSD, "--check-config", "--config", str(EXAMPLE)], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "configuration ok" in done.stdout
    missing = subprocess.run([*CCBSD, "--check-config", "--config", str(tmp_path / "no")],
                             cwd=REPO, capture_output=True, text=True, timeout=60,
                             check=False)
    assert missing.returncode == 78 and "does not exist" in missing.stderr


def test_diagram_mermaid_is_drawn_from_the_engine_tables() -> None:
    from ccbs_isdn.engine.machine import diagram_data

    done = ctl("diagram", "--role", "monitor")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "stateDiagram-v2"
    table = diagram_data()["monitor"]
    for t in table["transitions"]:
        assert any(f"monitor_{t['source']} --> monitor_{t['dest']} : {t['trigger']}" in line
                   for line in lines), t
    assert "[*] --> monitor_" + table["initial"] in done.stdout


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' is missing")
@pytest.mark.parametrize(("fmt", "magic"), [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_diagram_renders_with_dot(tmp_path: Path, fmt: str, magic: bytes) -> None:
    out = tmp_path / f"ccbs.{fmt}"
    done = ctl("--json", "diagram", "--format", fmt, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert magic in out.read_bytes()[:400]
    assert json.loads(done.stdout)["bytes"] == out.stat().st_size


def test_unknown_diagram_role_is_a_usage_error() -> None:
    done = ctl("diagram", "--role", "nope")
    assert done.returncode == 2 and "unknown role" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [(["cancel"], "exactly one of ID, --caller EXT or --all"),
     (["cancel", "3", "--all"], "exactly one of"),
     (["cancel", "--caller", "2x"], "--caller must be an extension"),
     (["request", "--from", "21"], "Missing option '--to'"),
     (["request", "--from", "21", "--to", "030-12"], "--to must be digits"),
     (["frobnicate"], "No such command")],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    done = ctl("--socket", "/nonexistent/x.sock", *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_cancel_all_needs_confirmation_when_not_interactive(tmp_path: Path) -> None:
    done = ctl("--socket", str(tmp_path / "x.sock"), "cancel", "--all")
    assert done.returncode == 2
    assert "add --yes" in done.stderr


def test_shell_completion_script_is_generated() -> None:
    done = subprocess.run([*CCBSCTL], cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=False, env={"_CCBSCTL_COMPLETE": "bash_source",
                                            "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0
    assert "_ccbsctl_completion" in done.stdout
    assert "complete -o nosort -F _ccbsctl_completion ccbsctl" in done.stdout


def test_facility_command_is_still_there() -> None:
    done = ctl("facility", "--help")
    assert done.returncode == 0 and "decode" in done.stdout


def test_help_lists_the_commands() -> None:
    out = ctl("--help").stdout
    for command in ("status", "show", "cancel", "request", "events", "diagram", "facility",
                    "config", "reload", "trace"):
        assert f"  {command} " in out
