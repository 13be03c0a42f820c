"""``make demo``: the simulated box, the REAL ccbsd against it, the product's stories.

``python -m ccbs_isdn.drivers.sim.demo`` starts a ``SimBox`` (simulated exchange +
ISDN card behind the rcapi server + FXB/1 bridge on a pty) in this process and the
real ``ccbsd`` as a child process that reaches it only through the real libcapi20
(loopback TCP) and the pty, with its requests in a real SQLite file. It plays the
stories of product.md — analog caller to a busy local phone, analog caller to a busy
ISDN number (network CCBS), A busy when B frees, cancel, a restart of ccbsd while a
request waits — shows ``ccbsctl status`` while they run, prints a readable timeline
and exits 0 only if every story ended as expected.

This module also owns the pieces the end-to-end tests (``tests/stories``) reuse: the
asyncio management of a ccbsd child process (``Ccbsd``: notify socket, ``kill -9``,
restart, control-socket requests, real ``ccbsctl`` runs) and the ``Stage`` that joins
it to a box, with story steps ("A lifts and dials", "wait for the confirm tone").
Everything is event-driven (notify datagrams, the box's change notifications, the
daemon's event stream); nothing sleeps to synchronise. It holds no CCBS logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .box import BoxConfig, Phone, SimBox, StationSpec, ccbsd_toml

CCBSD = [sys.executable, "-m", "ccbs_isdn.runtime.daemon"]
CCBSCTL = [sys.executable, "-c",
           "import sys; from ccbs_isdn.cli import main; sys.argv[0] = 'ccbsctl'; main()"]
REPO = Path(__file__).resolve().parents[2]


class DaemonGone(RuntimeError):
    """ccbsd exited while we waited for it."""


class ControlRefused(RuntimeError):
    """The daemon answered a control request with an error."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error


class Ccbsd:
    """One ccbsd child process with its own directory, notify socket and HOME."""

    def __init__(self, root: Path, config_text: str, *, capi_port: int | None = None) -> None:
        self.root = root
        self.config = root / "ccbsd.toml"
        self.config.write_text(config_text)
        self.socket = str(root / "control.sock")
        self.stderr_path = root / "ccbsd.log"
        self.home = root / "home"
        self.home.mkdir(exist_ok=True)
        # libcapi20 reads $HOME/.capi20rc, whose REMOTE line would win over the
        # daemon's settings (capi.md §2.2): make it name the simulator too
        rc = (f"REMOTE rcapi 127.0.0.1 {capi_port}\n" if capi_port
              else "# no machine-wide CAPI configuration for this daemon\n")
        (self.home / ".capi20rc").write_text(rc)
        self.proc: asyncio.subprocess.Process | None = None
        self.notify_path = str(root / "notify")
        self._notify: socket.socket | None = None
        self.notifications: list[str] = []
        self.starts = 0
        self._stderr: Any = None

    # ------------------------------------------------------------------ process

    async def start(self, *, wait_ready: bool = True, timeout: float = 60.0) -> Ccbsd:
        if self._notify is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.notify_path)
            self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._notify.bind(self.notify_path)
            self._notify.setblocking(False)
        env = {**os.environ, "NOTIFY_SOCKET": self.notify_path, "PYTHONUNBUFFERED": "1",
               "HOME": str(self.home)}
        env.pop("CCBS_SOCKET", None)
        self._stderr = open(self.stderr_path, "ab")  # noqa: SIM115 - closed in _reap
        self.proc = await asyncio.create_subprocess_exec(
            *CCBSD, "--config", str(self.config), cwd=str(REPO), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=self._stderr)
        self.starts += 1
        if wait_ready:
            await self.wait_notify("READY=1", timeout)
        return self

    async def wait_notify(self, state: str, timeout: float = 60.0) -> str:
        """Wait for a notify datagram with the line ``state`` (``READY=1`` ...)."""
        assert self._notify is not None
        loop = asyncio.get_running_loop()

        async def receive() -> str:
            while True:
                proc = self.proc
                recv = asyncio.ensure_future(loop.sock_recv(self._notify, 4096))  # type: ignore[arg-type]
                waiters: set[asyncio.Future[Any]] = {recv}
                exited: asyncio.Future[Any] | None = None
                if proc is not None:
                    exited = asyncio.ensure_future(proc.wait())
                    waiters.add(exited)
                done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if recv not in done:
                    recv.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await recv
                    raise DaemonGone(f"ccbsd exited with {proc.returncode if proc else '?'} "
                                     f"before {state}:\n{self.log()[-4000:]}")
                if exited is not None:
                    exited.cancel()
                text = recv.result().decode(errors="replace")
                self.notifications.append(text)
                if state in text.split("\n"):
                    return text

        try:
            return await asyncio.wait_for(receive(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no {state} from ccbsd within {timeout:g} s:\n"
                               f"{self.log()[-4000:]}") from None

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait (SIGKILL if it does not stop in time)."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            code = await proc.wait()
        self._reap()
        return code

    async def kill(self) -> int:
        """``kill -9``: no clean-up of any kind in the daemon."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        code = await proc.wait()
        self._reap()
        return code

    async def restart(self, *, kill: bool = False, timeout: float = 60.0) -> None:
        if kill:
            await self.kill()
        else:
            await self.stop()
        await self.start(timeout=timeout)

    def _reap(self) -> None:
        self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        if self._notify is not None:
            self._notify.close()
            self._notify = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def log(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------------ ccbsctl

    async def ctl(self, *args: str, timeout: float = 60.0) -> tuple[int, str, str]:
        """Run the real ``ccbsctl`` against this daemon: (exit code, stdout, stderr)."""
        proc = await asyncio.create_subprocess_exec(
            *CCBSCTL, "--socket", self.socket, *args, cwd=str(REPO),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return proc.returncode or 0, out.decode(), err.decode()

    async def ctl_json(self, *args: str) -> Any:
        code, out, err = await self.ctl("--json", *args)
        if code != 0:
            raise RuntimeError(f"ccbsctl {' '.join(args)} failed with {code}: {err or out}")
        return json.loads(out)

    async def call(self, cmd: str, **args: Any) -> Any:
        """One request on the control socket (NDJSON v1, runtime/control.py)."""
        reader, writer = await asyncio.open_unix_connection(self.socket)
        try:
            writer.write(json.dumps({"v": 1, "cmd": cmd, "args": args, "tag": 1}).encode()
                         + b"\n")
            await writer.drain()
            reply = json.loads(await reader.readline())
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        if not reply.get("ok"):
            raise ControlRefused(reply.get("error", {}))
        return reply["result"]

    async def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = await self.call("status")
        return doc

    async def follow(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection that receives every new event (``events --follow``)."""
        reader, writer = await asyncio.open_unix_connection(self.socket)
        writer.write(json.dumps({"v": 1, "cmd": "events",
                                 "args": {"follow": True, "last": 0}}).encode() + b"\n")
        await writer.drain()
        reply = json.loads(await reader.readline())
        if not reply.get("ok"):
            writer.close()
            raise ControlRefused(reply.get("error", {}))
        return reader, writer


class Stage:
    """A ``SimBox`` plus a real ccbsd configured against it. ``async with``."""

    def __init__(self, box_config: BoxConfig, stations: Sequence[StationSpec], *,
                 timers: dict[str, float] | None = None, extra: str = "",
                 hook: tuple[int, int, int] = (10, 40, 150),
                 poll: tuple[float, float] = (5.0, 30.0),
                 routes: dict[int, str] | None = None, root: Path | None = None,
                 log_level: str = "info") -> None:
        self.box = SimBox(box_config)
        self.stations = list(stations)
        self.timers = timers or {}
        self.extra = extra
        self.hook = hook
        self.poll = poll
        self.routes = routes
        self.log_level = log_level
        self._own_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="ccbs-stage-"))
        self.daemon: Ccbsd | None = None

    async def __aenter__(self) -> Stage:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self, *, start_daemon: bool = True) -> Stage:
        await self.box.start()
        text = ccbsd_toml(self.box, state_dir=self.root / "state",
                          socket=self.root / "control.sock", stations=self.stations,
                          timers=self.timers, hook=self.hook, extra=self.extra,
                          poll=self.poll, log_level=self.log_level, routes=self.routes)
        self.daemon = Ccbsd(self.root, text, capi_port=self.box.capi_port)
        if start_daemon:
            await self.start_daemon()
        return self

    async def start_daemon(self, *, kill_first: bool = False) -> None:
        """(Re)start ccbsd and wait until it is ready and every line is up."""
        assert self.daemon is not None
        if self.daemon.running:
            await (self.daemon.kill() if kill_first else self.daemon.stop())
        since = len(self.box.bridge.commands)
        await self.daemon.start()
        # its bridge set-up ends with AT%STATE? (FXB/1 §3.7.1)
        await self.box.wait_for(lambda: any(c.text == "AT%STATE?"
                                            for c in self.box.bridge.commands[since:]),
                                30, "the daemon's bridge set-up")
        await self.lines_up()

    async def lines_up(self, timeout: float = 30.0) -> None:
        """Until every controller and the bridge are up in the daemon's status."""
        await self.until(lambda st: all(line["up"] for line in st["lines"]
                                        if line["kind"] in ("controller", "bridge")),
                         timeout, "every line up")

    async def close(self) -> None:
        if self.daemon is not None:
            with contextlib.suppress(Exception):
                await self.daemon.stop()
            self.daemon.close()
        await self.box.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------ story steps

    def mark(self) -> int:
        """A position in the bridge's command log, for ``command(since=...)``."""
        return len(self.box.bridge.commands)

    async def command(self, prefix: str, *, since: int = 0, timeout: float = 10.0,
                      what: str = "") -> str:
        """Wait for the daemon to send the bridge a command starting with ``prefix``."""
        cmd = await self.box.bridge.wait_command(prefix, since=since, timeout=timeout)
        del what
        return cmd.text

    async def lift(self, phone: Phone) -> None:
        """Lift the handset and wait for dial tone."""
        since = self.mark()
        phone.lift()
        await self.command(f"AT%TONE={phone.number},DIAL", since=since)

    async def hang_up(self, phone: Phone) -> None:
        """Put the handset down and wait until the bridge has reported it (FXB/1:
        ``flash_max`` after the break)."""
        phone.hang_up()
        await self.box.wait_for(lambda: not phone.off_hook, 10, f"phone {phone.number} on-hook")

    async def call_busy(self, phone: Phone, digits: str) -> None:
        """A lifts, dials and hears busy."""
        await self.lift(phone)
        since = self.mark()
        phone.dial(digits)
        await self.command(f"AT%TONE={phone.number},BUSY", since=since, timeout=15)

    async def activate(self, phone: Phone, *, method: str = "flash",
                       expect: str = "CONFIRM") -> None:
        """While busy: ``R`` + ``*37#`` (method "flash") or ``5`` (method "digit");
        wait for the confirm (or ``expect``) tone."""
        since = self.mark()
        if method == "flash":
            phone.flash()
            await self.command(f"AT%TONE={phone.number},SPECIALDIAL", since=since)
            phone.dial("*37#")
        else:
            phone.dial("5")
        await self.command(f"AT%TONE={phone.number},{expect}", since=since, timeout=15)

    async def code(self, phone: Phone, digits: str, expect: str) -> None:
        """From dial tone: a service code (``#37#``, ``*#37#`` ...) and its answer tone."""
        await self.lift(phone)
        since = self.mark()
        phone.dial(digits)
        await self.command(f"AT%TONE={phone.number},{expect}", since=since, timeout=15)
        await self.hang_up(phone)

    async def recall_ring(self, phone: Phone, *, since: int, clip: str,
                          timeout: float = 20.0) -> None:
        """Wait until ``phone`` rings with the recall cadence and shows ``clip``."""
        await self.command(f"AT%RING={phone.number},1,", since=since, timeout=timeout)
        await self.box.wait_for(lambda: phone.ringing and phone.clip is not None,
                                timeout, f"recall ring with CLIP on {phone.number}")
        if phone.clip is None or phone.clip[0] != clip:
            raise AssertionError(f"phone {phone.number} shows {phone.clip}, not {clip}")

    async def pending(self, caller: str, target: str, timeout: float = 10.0) -> dict[str, Any]:
        """The daemon's active request of ``caller`` for ``target`` (waits for it)."""
        status = await self.until(lambda st: _find(st, caller, target) is not None, timeout,
                                  f"a request {caller} -> {target}")
        found = _find(status, caller, target)
        assert found is not None
        return found

    async def settled(self, timeout: float = 15.0) -> None:
        """Until no request is active any more."""
        await self.until(lambda st: not st["requests"], timeout, "every request finished")

    async def history(self, request_id: int) -> dict[str, Any]:
        doc: dict[str, Any] = await self.ccbsd.call("show", id=str(request_id))
        return doc

    # ------------------------------------------------------------------ helpers

    @property
    def ccbsd(self) -> Ccbsd:
        assert self.daemon is not None
        return self.daemon

    async def status(self) -> dict[str, Any]:
        return await self.ccbsd.status()

    async def requests(self) -> list[dict[str, Any]]:
        status = await self.status()
        requests: list[dict[str, Any]] = status["requests"]
        return requests

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0,
                    what: str = "") -> dict[str, Any]:
        """Until ``status`` satisfies ``predicate``: every event of the daemon's event
        stream is a reason to look again (no polling interval)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        reader, writer = await self.ccbsd.follow()
        try:
            while True:
                status = await self.status()
                if predicate(status):
                    return status
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(f"ccbsd: {what or 'condition'} not reached; "
                                       f"status: {json.dumps(status)[:3000]}")
                with contextlib.suppress(TimeoutError):
                    line = await asyncio.wait_for(reader.readline(), remaining)
                    if not line and not self.ccbsd.running:
                        raise DaemonGone(self.ccbsd.log()[-4000:])
                    if not line:
                        reader, writer = await self._refollow(writer)
        finally:
            writer.close()

    async def _refollow(self, old: asyncio.StreamWriter
                        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        old.close()
        return await self.ccbsd.follow()


def _find(status: dict[str, Any], caller: str, target: str) -> dict[str, Any] | None:
    for req in status["requests"]:
        if req["caller"] == caller and req["target"] == target \
                and req["state"] not in ("Available", "Requested"):
            return dict(req)
    return None


__all__ = ["CCBSCTL", "CCBSD", "Ccbsd", "ControlRefused", "DaemonGone", "Stage"]
