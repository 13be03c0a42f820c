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
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from .box import BoxConfig, Phone, SimBox, StationSpec, ccbsd_toml

CCBSD = [sys.executable, "-m", "ccbs_isdn.runtime.daemon"]
CCBSCTL = [sys.executable, "-c",
           "import sys; from ccbs_isdn.cli import main; sys.argv[0] = 'ccbsctl'; main()"]
REPO = Path(__file__).resolve().parents[2]
#: one control-socket reply may list every request (10 000 of them in bench/e2e.py)
_LIMIT = 256 * 1024 * 1024


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
        reader, writer = await asyncio.open_unix_connection(self.socket, limit=_LIMIT)
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
        reader, writer = await asyncio.open_unix_connection(self.socket, limit=_LIMIT)
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


# =============================================================== make demo

DEMO_STATIONS = (
    StationSpec(1, "21", "5551", 1, "Anna"),
    StationSpec(2, "22", "5552", 1, "Bert"),
    StationSpec(3, "23", "5553", 1, "Cleo"),
    StationSpec(4, "24", "5554", 1, "Dirk"),
)
EXTERNAL = "301234"
#: product defaults, shortened where a person would wait (guard 2 s -> 1 s)
DEMO_TIMERS = {"guard": 1.0, "recheck": 1.5, "a_answer": 15.0, "b_answer": 15.0,
               "recall_retry": 5.0}
DEMO_HOOK = (20, 70, 310)  # the DE-strict profile (analog-bridge.md §4.2)

#: bridge commands and exchange messages worth showing a person
_SHOW_BRIDGE = ("AT%RING", "AT%RINGSTOP", "AT%CONN", "AT%DISC", "AT%TONE")
_SHOW_EXCHANGE = ("SETUP", "DISCONNECT", "N->U CONNECT cr", "FACILITY", "REGISTER")
_HIDE_EXCHANGE = ("CONNECT_ACK",)


def demo_box_config() -> BoxConfig:
    from .box import BoxController, BoxSubscriber
    from .network.timers import NetworkTimers

    return BoxConfig(
        controllers=(BoxController(1, ("5551", "5552", "5553", "5554")),),
        subscribers=(BoxSubscriber(EXTERNAL, busy=True),),
        timers=NetworkTimers(t_ccbs1=1.0),
    )


class Demo:
    """Plays the stories on one stage and keeps score."""

    def __init__(self, stage: Stage, out: Callable[[str], None] = print) -> None:
        self.stage = stage
        self.out = out
        self.results: list[tuple[str, bool, float, str]] = []
        self._t0 = 0.0
        self._shown = 0

    # -- printing
    def say(self, text: str) -> None:
        self.out(text)

    def timeline(self) -> None:
        """The box's timeline since the last call, filtered for a person."""
        entries = self.stage.box.timeline[self._shown:]
        self._shown = len(self.stage.box.timeline)
        for e in entries:
            text = e.text
            if e.source == "bridge":
                if not text.startswith(_SHOW_BRIDGE) or text.startswith("AT%TONE=") and \
                        ",OFF " in text:
                    continue
                who, text = "ccbsd -> bridge", text.replace(" -> OK", "")
            elif e.source == "exchange":
                if not any(k in text for k in _SHOW_EXCHANGE) or \
                        any(k in text for k in _HIDE_EXCHANGE):
                    continue
                who = "exchange"
            else:
                who = e.source
            self.out(f"  {e.t - self._t0:+8.2f}s  {who:<15} {text}")

    async def show_status(self, why: str) -> None:
        code, text, err = await self.stage.ccbsd.ctl("status")
        self.timeline()
        self.out(f"  ---- ccbsctl status ({why}) ----")
        for line in (text or err).rstrip().splitlines():
            self.out(f"  | {line}")

    # -- running
    async def run(self, name: str, story: Callable[[], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        if not self._t0:
            self._t0 = loop.time()
        self.say(f"\n=== {name}")
        self._shown = len(self.stage.box.timeline)
        started = loop.time()
        try:
            await story()
            ok, detail = True, ""
        except Exception as exc:  # a failed story is reported, the demo goes on
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        self.timeline()
        took = loop.time() - started
        self.results.append((name, ok, took, detail))
        self.say(f"=== {name}: {'as expected' if ok else 'FAILED ' + detail[:2000]}"
                 f" ({took:.1f} s)")

    def summary(self) -> bool:
        self.say("\n=== summary")
        for name, ok, took, _ in self.results:
            self.say(f"  {'ok    ' if ok else 'FAILED'}  {took:5.1f} s  {name}")
        return all(ok for _, ok, _, _ in self.results)


def _state_of(record: dict[str, Any]) -> str:
    return str(record["state"])


async def story_local_busy(demo: Demo) -> None:
    """Anna calls Bert, who is on the phone: R *37#, confirm tone; when Bert hangs up
    Anna's phone rings (recall cadence, Bert's number), she lifts, Bert rings."""
    stage, box = demo.stage, demo.stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.lift(bert)
    await stage.call_busy(anna, "22")
    await stage.activate(anna, method="flash")
    request = await stage.pending("21", "22")
    await demo.show_status("Anna waits for Bert")
    await stage.hang_up(anna)
    since = stage.mark()
    await stage.hang_up(bert)
    await stage.recall_ring(anna, since=since, clip="22")
    anna.answer()
    await box.wait_for(lambda: bert.ringing, 10, "Bert rings")
    bert.answer()
    await box.wait_for(lambda: anna.peer == 2, 10, "Anna and Bert talk")
    await stage.settled()
    assert _state_of(await stage.history(request["id"])) == "Completed"
    await stage.hang_up(anna)
    await stage.hang_up(bert)


async def story_isdn_busy(demo: Demo) -> None:
    """Cleo calls 0301234 over ISDN: busy, the network offers CCBS; she presses 5.
    When 301234 is free the network says so, Cleo's phone rings and lifting it places
    the CCBS recall call."""
    stage, box = demo.stage, demo.stage.box
    cleo, b = box.phone(3), box.subscriber(EXTERNAL)
    await stage.call_busy(cleo, "0" + EXTERNAL + "#")
    await stage.activate(cleo, method="digit")
    request = await stage.pending("23", EXTERNAL)
    await stage.hang_up(cleo)
    await demo.show_status("the network watches 301234 for Cleo")
    since = stage.mark()
    b.hang_up()
    b.free()
    await stage.recall_ring(cleo, since=since, clip=EXTERNAL)
    cleo.answer()
    await box.wait_for(lambda: b.in_call(), 10, "the recall call is connected")
    await stage.settled()
    assert _state_of(await stage.history(request["id"])) == "Completed"
    await stage.hang_up(cleo)
    box.exchange(lambda ex, now: ex.set_busy(EXTERNAL, True, now))


async def story_a_busy(demo: Demo) -> None:
    """Dirk waits for Bert but is on the phone himself when Bert hangs up: the request
    is suspended; when Dirk hangs up he is rung."""
    stage, box = demo.stage, demo.stage.box
    dirk, bert = box.phone(4), box.phone(2)
    await stage.lift(bert)
    await stage.call_busy(dirk, "22")
    await stage.activate(dirk, method="digit")
    await stage.hang_up(dirk)
    await stage.lift(dirk)
    since = stage.mark()
    await stage.hang_up(bert)
    await stage.until(lambda st: any(r["state"] == "Suspended" for r in st["requests"]), 15,
                      "suspended")
    await demo.show_status("Bert is free, but Dirk is busy")
    await stage.hang_up(dirk)
    await stage.recall_ring(dirk, since=since, clip="22")
    dirk.answer()
    await box.wait_for(lambda: bert.ringing, 10, "Bert rings")
    bert.answer()
    await box.wait_for(lambda: dirk.peer == 2, 10, "Dirk and Bert talk")
    await stage.settled()
    await stage.hang_up(dirk)
    await stage.hang_up(bert)


async def story_cancel(demo: Demo) -> None:
    """Anna asks for Bert, checks with *#37# (confirm), cancels with #37#, checks
    again (reject)."""
    stage, box = demo.stage, demo.stage.box
    anna, bert = box.phone(1), box.phone(2)
    await stage.lift(bert)
    await stage.call_busy(anna, "22")
    await stage.activate(anna, method="digit")
    request = await stage.pending("21", "22")
    await stage.hang_up(anna)
    await stage.code(anna, "*#37#", "CONFIRM")
    await stage.code(anna, "#37#", "CONFIRM")
    await stage.settled()
    await stage.code(anna, "*#37#", "REJECT")
    assert _state_of(await stage.history(request["id"])) == "Cancelled"
    await stage.hang_up(bert)


async def story_restart(demo: Demo) -> None:
    """Cleo waits for Dirk; ccbsd is restarted meanwhile; the request is still there
    and the recall happens when Dirk hangs up."""
    stage, box = demo.stage, demo.stage.box
    cleo, dirk = box.phone(3), box.phone(4)
    await stage.lift(dirk)
    await stage.call_busy(cleo, "24")
    await stage.activate(cleo, method="flash")
    request = await stage.pending("23", "24")
    await stage.hang_up(cleo)
    await demo.show_status("before the restart")
    box.note("box", "ccbsd is restarted (SIGTERM, start)")
    await stage.start_daemon()
    again = await stage.pending("23", "24")
    assert again["id"] == request["id"], "the same request, restored from the store"
    await demo.show_status("after the restart")
    since = stage.mark()
    await stage.hang_up(dirk)
    await stage.recall_ring(cleo, since=since, clip="24")
    cleo.answer()
    await box.wait_for(lambda: dirk.ringing, 10, "Dirk rings")
    dirk.answer()
    await box.wait_for(lambda: cleo.peer == 4, 10, "Cleo and Dirk talk")
    await stage.settled()
    await stage.hang_up(cleo)
    await stage.hang_up(dirk)


STORIES: tuple[tuple[str, Callable[[Demo], Awaitable[None]]], ...] = (
    ("Anna -> Bert (local, busy): R *37#, recall when Bert is free", story_local_busy),
    ("Cleo -> 0301234 (ISDN, busy): 5, network CCBS, recall call", story_isdn_busy),
    ("Dirk -> Bert: Dirk busy when Bert frees, suspended, then recalled", story_a_busy),
    ("Anna: *#37# status, #37# cancel", story_cancel),
    ("Cleo -> Dirk with a restart of ccbsd in the middle", story_restart),
)


async def play(out: Callable[[str], None] = print) -> bool:
    stage = Stage(demo_box_config(), DEMO_STATIONS, timers=DEMO_TIMERS, hook=DEMO_HOOK)
    out("ccbs-isdn demo: a simulated ISDN exchange + FXS bridge, the real ccbsd against it")
    try:
        await stage.open()
        out(f"  box: rcapi server 127.0.0.1:{stage.box.capi_port} (real libcapi20), "
            f"FXS bridge on {stage.box.bridge_url}; ccbsd pid "
            f"{stage.ccbsd.proc.pid if stage.ccbsd.proc else '?'}")
        out("  phones: 21 Anna, 22 Bert, 23 Cleo, 24 Dirk; external 301234 (busy)")
        demo = Demo(stage, out)
        for name, story in STORIES:
            await demo.run(name, lambda story=story: story(demo))  # type: ignore[misc]
        ok = demo.summary()
        if not ok:
            out("\n---- ccbsd log (tail) ----\n" + stage.ccbsd.log()[-4000:])
        return ok
    finally:
        await stage.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``make demo``: exit 0 only if every story ended as expected."""
    del argv
    try:
        ok = asyncio.run(play())
    except KeyboardInterrupt:
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
