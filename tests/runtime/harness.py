"""A real ccbsd process for tests: temp config, its own notify socket, ccbsctl runs.

``Ccbsd`` starts ``python -m ccbs_isdn.runtime.daemon`` with ``NOTIFY_SOCKET`` pointing
at a datagram socket of the test, so tests synchronise on what systemd would see
(``READY=1``, ``RELOADING=1``, ``STOPPING=1``, ``WATCHDOG=1``) instead of sleeping.
``ctl(...)`` runs the real ``ccbsctl`` as a subprocess (optionally as another uid).
Everything lives in a private directory under /tmp (mode 0755 so another uid can
reach the socket); safe under pytest-xdist.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# imported here, before any fork: a child running as another uid may not be able to
# read the interpreter's library directory any more
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from ccbs_isdn.cli import cli

REPO = Path(__file__).resolve().parents[2]
CCBSCTL = [sys.executable, "-c", "import sys; from ccbs_isdn.cli import main; "
           "sys.argv[0] = 'ccbsctl'; main()"]
CCBSD = [sys.executable, "-m", "ccbs_isdn.runtime.daemon"]
START_TIMEOUT = 60.0

#: a recall would ring a phone nobody scripts here: keep every request waiting
ALL_DAY_QUIET = '["00:00-12:00", "12:00-00:00"]'


def base_config(root: Path, extra: str = "", *, socket_group: str = "",
                admin_group: str = "", sim_ports: bool = True) -> str:
    text = f"""
[daemon]
state_dir = "{root / 'state'}"
socket = "{root / 'run' / 'control.sock'}"
socket_group = "{socket_group}"
admin_group = "{admin_group}"
log_level = "debug"
start_timeout = 20
"""
    if sim_ports:
        text += f"""
[sim]
enabled = true
fxs_ports = 4

[[fxs.ports]]
port = 1
extension = "21"
name = "Anna"

[[fxs.ports]]
port = 2
extension = "22"
name = "Bert"

[[fxs.ports]]
port = 3
extension = "23"

[policy]
quiet_hours = {ALL_DAY_QUIET}
"""
    return text + extra


@dataclass
class CtlResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Ccbsd:
    def __init__(self, config_text: str | None = None, *, root: Path | None = None,
                 env: dict[str, str] | None = None, **config_args: Any) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="ccbsd-test-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        (self.root / "run").mkdir(exist_ok=True, mode=0o755)
        os.chmod(self.root / "run", 0o755)
        self.config = self.root / "ccbsd.toml"
        self.config.write_text(config_text if config_text is not None
                               else base_config(self.root, **config_args))
        self.socket = str(self.root / "run" / "control.sock")
        self.stderr_path = self.root / "ccbsd.stderr"
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify_path = str(self.root / "notify")
        self.notify.bind(self.notify_path)
        self.notifications: list[str] = []

    # ------------------------------------------------------------------ process
    def start(self, *, wait_ready: bool = True) -> Ccbsd:
        env = {**os.environ, "NOTIFY_SOCKET": self.notify_path, "PYTHONUNBUFFERED": "1",
               **self.env}
        env.pop("CCBS_SOCKET", None)
        self._stderr = open(self.stderr_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([*CCBSD, "--config", str(self.config)], cwd=REPO,
                                     env=env, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr)
        if wait_ready:
            self.wait_for("READY=1")
        return self

    def wait_for(self, state: str, timeout: float = START_TIMEOUT) -> str:
        """Wait for a notify datagram containing the line *state*; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {state} from ccbsd; stderr:\n{self.log()}")
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"ccbsd exited with {self.proc.returncode} before "
                                   f"{state}; stderr:\n{self.log()}")
            self.notify.settimeout(min(remaining, 0.5))
            try:
                datagram = self.notify.recv(4096).decode()
            except TimeoutError:
                continue
            self.notifications.append(datagram)
            if state in datagram.split("\n"):
                return datagram

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout)
        self.proc = None
        self._stderr.close()
        return code

    def close(self) -> None:
        self.stop()
        self.notify.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------------ ccbsctl
    def ctl(self, *args: str, json_output: bool = False, user: int | None = None,
            group: int | None = None, input_text: str | None = None,
            timeout: float = 60.0) -> CtlResult:
        argv = [*CCBSCTL, "--socket", self.socket]
        if json_output:
            argv.append("--json")
        argv.extend(args)
        extra: dict[str, Any] = {}
        if user is not None:
            extra.update(user=user, group=group if group is not None else user,
                         extra_groups=[])
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True,
                              input=input_text if input_text is not None else "",
                              timeout=timeout, check=False,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, **extra)
        return CtlResult(done.returncode, done.stdout, done.stderr)

    def ctl_as(self, uid: int, gid: int, *args: str, json_output: bool = False
               ) -> CtlResult:
        """ccbsctl as another user: the interpreter may not be executable for that
        user (a pyenv under /root), so fork, drop to *uid*/*gid* with no supplementary
        groups, and run the click command in the child (a real connect, real
        SO_PEERCRED on the daemon's side)."""
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            status = 1
            try:
                os.close(read_fd)
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
                argv = ["--socket", self.socket, *(["--json"] if json_output else []), *args]
                result = CliRunner().invoke(cli, argv, prog_name="ccbsctl")
                stderr = result.stderr
                if result.exception is not None and not isinstance(result.exception,
                                                                   SystemExit):
                    stderr += f"\n(exception in ccbsctl: {result.exception!r})"
                payload = {"code": result.exit_code, "stdout": result.stdout,
                           "stderr": stderr}
                os.write(write_fd, json.dumps(payload).encode())
                status = 0
            except BaseException:
                os.write(write_fd, json.dumps({"code": -1, "stdout": "",
                                               "stderr": traceback.format_exc()}).encode())
            finally:
                os._exit(status)
        os.close(write_fd)
        chunks = []
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
        doc = json.loads(b"".join(chunks))
        assert status == 0, f"ccbsctl child failed ({status}): {doc['stderr']}"
        return CtlResult(doc["code"], doc["stdout"], doc["stderr"])

    def follow(self, *args: str) -> Follower:
        """``ccbsctl [--json] events --follow`` running in the background."""
        proc = subprocess.Popen([*CCBSCTL, "--socket", self.socket, *args], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
        return Follower(proc)


class Follower:
    """Lines of a background process, read by a thread, taken with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        import queue
        import threading

        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.lines.put(line)

        self.thread = threading.Thread(target=pump, daemon=True)
        self.thread.start()

    def next_line(self, timeout: float = 30.0) -> str:
        import queue

        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no output line in time") from None

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(max(0.01, deadline - time.monotonic()))
            if text in line:
                return line

    def close(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(10)
        finally:
            if self.proc.stderr:
                self.proc.stderr.close()
