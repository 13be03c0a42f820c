"""``ccbsd``: the daemon process — configuration, signals, systemd, and the pieces.

Start-up order: load and validate the configuration (exit 78 on any error, naming
file and key) → open the store and restore the engine (every request re-checked
before acting) → control socket → drivers → ``READY=1`` (Type=notify; at the latest
after ``[daemon] start_timeout``: a driver still down keeps retrying and shows as
down in ``ccbsctl status``) → watchdog pings from the event loop itself (a stuck loop
stops pinging and systemd restarts us).

Signals: SIGHUP reloads (``RELOADING=1`` … ``READY=1``; limits, policy, timers,
notify, metrics, log level and trace file change in place — no request is touched or
lost; a bad file is logged and the old configuration stays); SIGTERM/SIGINT stop
gracefully (``STOPPING=1``, control socket closed, drivers stopped, store closed).

Exit codes (sysexits): 0 stopped, 1 unexpected failure, 69 a required library or
device is not available, 75 temporary (another ccbsd runs, the store is locked),
77 permission denied (state directory, socket), 78 configuration error.

Owns the process lifecycle. Must not decide anything about CCBS (the engine does) or
talk to devices (the drivers do); ``runtime/service.py`` wires them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ccbs_isdn import __version__
from ccbs_isdn.config import DEFAULT_CONFIG, Config, load_config
from ccbs_isdn.errors import (
    CcbsError,
    ConfigError,
    DriverNotAvailable,
    LocalError,
    StoreError,
)
from ccbs_isdn.runtime.clock import DaemonClock
from ccbs_isdn.runtime.control import AccessPolicy, ControlServer, group_id
from ccbs_isdn.runtime.logging import kv, set_level, setup_logging
from ccbs_isdn.runtime.metrics import Metrics
from ccbs_isdn.runtime.systemd import SystemdNotifier, watchdog_interval

log = logging.getLogger("ccbs_isdn.daemon")

EX_OK = 0
EX_SOFTWARE = 1
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78

#: keys whose change needs a restart (everything else is applied by a reload)
RESTART_KEYS = (
    ("daemon", "state_dir"), ("daemon", "socket"), ("daemon", "socket_group"),
    ("daemon", "admin_group"), ("daemon", "max_clients"), ("capi", None), ("fxs", None),
    ("sim", None), ("dialplan", None),
)


def restart_needed(old: Config, new: Config) -> list[str]:
    """Dotted names of changed settings that a reload cannot apply."""
    changed = []
    for section, key in RESTART_KEYS:
        a, b = getattr(old, section), getattr(new, section)
        if key is None:
            if a != b:
                changed.append(section)
        elif getattr(a, key) != getattr(b, key):
            changed.append(f"{section}.{key}")
    return changed


class Daemon:
    """One run of ccbsd. ``await run()`` returns the exit code."""

    def __init__(self, config_path: str, config: Config, *,
                 systemd: SystemdNotifier | None = None) -> None:
        self.config_path = config_path
        self.config = config
        self.systemd = systemd or SystemdNotifier()
        self.metrics = Metrics()
        self.stopping = asyncio.Event()
        # wall time advancing at the rate of elapsed time: a step of the wall clock
        # moves no timer (runtime/clock.py)
        self.clock = DaemonClock.from_environment()
        self.started = self.clock()
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.service: Any = None
        self.control: ControlServer | None = None
        self.ready = False  # READY=1 sent: a reload may now say RELOADING/READY

    # --------------------------------------------------------------------- run

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self._spawn_reload)
        try:
            return await self._run()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            self.systemd.close()

    async def _run(self) -> int:
        from ccbs_isdn.runtime.service import CcbsService

        cfg = self.config
        try:
            access = AccessPolicy.from_names(cfg.daemon.socket_group, cfg.daemon.admin_group)
            socket_gid = (group_id(cfg.daemon.socket_group, "daemon.socket_group")
                          if cfg.daemon.socket_group else None)
        except ConfigError as exc:
            return self._fatal(exc, EX_CONFIG, file=self.config_path)
        self.service = CcbsService(cfg, metrics=self.metrics, reload=self.reload,
                                   clock=self.clock, started=self.started)
        try:
            await self.service.open()
        except StoreError as exc:
            return self._fatal(exc, EX_TEMPFAIL)
        except PermissionError as exc:
            return self._fatal(exc, EX_NOPERM)
        self.control = ControlServer(cfg.daemon.socket, self.service, access,
                                     socket_gid=socket_gid,
                                     max_clients=cfg.daemon.max_clients,
                                     on_request=self.metrics.control)
        try:
            await self.metrics.start(cfg.metrics)
            await self.control.start()
            await self.service.start(timeout=cfg.daemon.start_timeout)
        except ConfigError as exc:
            await self._shutdown()
            return self._fatal(exc, EX_CONFIG, file=self.config_path)
        except DriverNotAvailable as exc:
            await self._shutdown()
            return self._fatal(exc, EX_UNAVAILABLE)
        except PermissionError as exc:
            await self._shutdown()
            return self._fatal(exc, EX_NOPERM)
        except LocalError as exc:
            await self._shutdown()
            return self._fatal(exc, EX_TEMPFAIL if exc.code == "already-running"
                               else EX_SOFTWARE)
        except OSError as exc:
            await self._shutdown()
            return self._fatal(exc, EX_SOFTWARE)
        self.systemd.ready(self.service.summary())
        self.ready = True
        log.info("ccbsd ready", extra=kv(version=__version__, pid=os.getpid(),
                                         socket=cfg.daemon.socket,
                                         config=",".join(cfg.sources) or self.config_path))
        interval = watchdog_interval()
        if interval:
            self._spawn(self._watchdog(interval))
        await self.stopping.wait()
        self.systemd.stopping()
        log.info("ccbsd stopping")
        await self._shutdown()
        log.info("ccbsd stopped")
        return EX_OK

    def _fatal(self, exc: BaseException, code: int, *, file: str | None = None) -> int:
        text = str(exc)
        if isinstance(exc, ConfigError) and not exc.file and file:
            text = f"{file}: {text}"
        log.error("ccbsd cannot start: %s", text, extra=kv(exit=code))
        self.systemd.notify(f"STATUS=cannot start: {text}", f"ERRNO={code}")
        return code

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.control is not None:
            await self.control.stop()
        if self.service is not None:
            await self.service.stop()
        await self.metrics.stop()

    def request_stop(self, why: str = "") -> None:
        if not self.stopping.is_set():
            log.info("stop requested", extra=kv(signal=why or None))
            self.stopping.set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watchdog(self, interval: float) -> None:
        # pinging from the loop itself: if the loop hangs, the pings stop
        while True:
            self.systemd.watchdog()
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ reload

    def _spawn_reload(self) -> None:
        self._spawn(self._reload_quietly())

    async def _reload_quietly(self) -> None:
        with contextlib.suppress(CcbsError):
            await self.reload(actor="SIGHUP")

    async def reload(self, *, actor: str = "") -> dict[str, Any]:
        """Re-read the files and apply what can change in place. Raises ConfigError
        (the old configuration stays in force)."""
        if not self.ready or self.stopping.is_set():
            raise LocalError("ccbsd is starting or stopping; reload later", code="busy")
        async with self._reload_lock:
            self.systemd.reloading()
            try:
                new = load_config(self.config_path)
            except ConfigError as exc:
                self.metrics.reloads_total.labels("error").inc()
                log.error("reload failed, keeping the running configuration",
                          extra=kv(actor=actor, error=str(exc)))
                self.systemd.ready(f"reload failed: {exc}")
                raise
            needs_restart = restart_needed(self.config, new)
            await self.service.apply(new)
            await self.metrics.apply(new.metrics)
            set_level(new.daemon.log_level)
            self.config = new
            self.metrics.reloads_total.labels("ok").inc()
            for name in needs_restart:
                log.warning("changed setting needs a restart to take effect",
                            extra=kv(setting=name))
            log.info("configuration reloaded",
                     extra=kv(actor=actor, files=",".join(new.sources)))
            self.systemd.ready(self.service.summary())
            return {"files": list(new.sources), "restart_needed": needs_restart}


# ------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ccbsd",
        description="CCBS/CCNR call completion daemon for ISDN (CAPI 2.0) and analog FXS "
                    "ports.",
    )
    parser.add_argument("--config", "-c", default=os.environ.get("CCBS_CONFIG",
                                                                  DEFAULT_CONFIG),
                        help="main configuration file; conf.d/*.toml next to it is read "
                             "too (default: %(default)s)")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the configuration and exit (0 ok, 78 error)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        help="override [daemon] log_level")
    parser.add_argument("--version", action="version", version=f"ccbsd {__version__}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level or "info")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        log.error("configuration error: %s", exc, extra=kv(file=exc.file, key=exc.key))
        if args.check_config:
            print(f"ccbsd: {exc}", file=sys.stderr)
        return EX_CONFIG
    if args.check_config:
        print("configuration ok: " + ", ".join(config.sources))
        return EX_OK
    setup_logging(args.log_level or config.daemon.log_level)
    if config.capi.enabled or config.sim.enabled:
        # libcapi20 reads $HOME/.capi20rc; make sure HOME names a real directory
        os.environ.setdefault("HOME", str(Path(config.daemon.state_dir)))
    try:
        return asyncio.run(Daemon(args.config, config).run())
    except KeyboardInterrupt:
        return EX_OK


if __name__ == "__main__":
    sys.exit(main())
