"""systemd service integration: ``sd_notify`` by hand, and the watchdog interval.

Owns the datagram to ``$NOTIFY_SOCKET`` (sd_notify(3): a path, or an abstract socket
when it starts with ``@``) and reading ``$WATCHDOG_USEC`` / ``$WATCHDOG_PID``
(sd_watchdog_enabled(3)). Without systemd every call is a silent no-op, so the daemon
runs the same in a terminal, in tests and under ``Type=notify``.

Must not decide *when* to notify: the daemon does (READY=1 after the drivers are up,
RELOADING=1/READY=1 around a reload, STOPPING=1, WATCHDOG=1 from its own loop).
"""

from __future__ import annotations

import os
import socket
import time


class SystemdNotifier:
    """Sends sd_notify state strings; a no-op when not started by systemd."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def _target(self) -> str:
        # An abstract socket is named with a leading NUL; systemd writes it as "@".
        if self.address.startswith("@"):
            return "\0" + self.address[1:]
        return self.address

    def notify(self, *states: str) -> bool:
        """Send ``KEY=value`` lines in one datagram. Returns whether one was sent."""
        if not self.enabled or not states:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.sendto("\n".join(states).encode(), self._target())
        except OSError:
            # systemd went away (e.g. daemon-reexec in progress); nothing to do about it here
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        # MONOTONIC_USEC is required with RELOADING=1 for Type=notify-reload (systemd 253)
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None when not wanted."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1e6 / 2
