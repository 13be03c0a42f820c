"""An asyncio TCP server speaking libcapi20's remote-CAPI ("rcapi") protocol.

This module owns the asyncio side of the simulated ISDN card: the TCP framing of the
rcapi module (shared/docs/capi.md §9.1: big-endian frame length + payload, one write
per frame), its management requests (REGISTER, GET_PROFILE, GET_MANUFACTURER,
GET_VERSION, GET_SERIAL_NUMBER), one :class:`~drivers.sim.controller.SimController` per
controller, the clock and the single timer of the pure :class:`SimExchange` (it calls
``from_user`` with ``loop.time()`` and re-arms one ``loop.call_at`` for
``next_deadline()`` after every input), and fault injection (drop every connection,
refuse connections for a while, delay or lose CAPI messages).

It must not decide anything about CAPI calls (the controllers do) or CCBS (the exchange
does). The real Debian libcapi20 connects to it: select it with a ``.capi20rc`` holding
``REMOTE rcapi 127.0.0.1 <port>`` in a temporary HOME, or ``capi20ext_set_*``.

:class:`ThreadedRcapiServer` runs a server with its own event loop in a background
thread, so a process that also uses libcapi20 (whose remote calls block, capi.md §3)
never waits on itself; ``call(fn)`` runs ``fn(exchange, now)`` on the server's loop.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ..capi20 import messages as m
from ..capi20.tables import INFO_ILLEGAL_ADDRESS, Subcommand
from .controller import ControllerSpec, SimController
from .q931 import Q931, Deliver

log = logging.getLogger("ccbs_isdn.sim.rcapi")

T = TypeVar("T")

# Management requests of the rcapi module: (command, 0xFF) -> reply command (capi.md §9.1)
RCAPI_REGISTER = 0xF2
RCAPI_GET_PROFILE = 0xE0
RCAPI_GET_MANUFACTURER = 0xFA
RCAPI_GET_VERSION = 0xFC
RCAPI_GET_SERIAL_NUMBER = 0xFE
RCAPI_SUB = 0xFF
#: The rcapi module overflows a stack buffer above 4096 octets (capi.md §3).
MAX_FRAME = 4096


class Exchange(Protocol):
    """What the server needs of ``drivers.sim.exchange.SimExchange``."""

    def attach(self, access_id: str, deliver: Deliver) -> None: ...

    def detach(self, access_id: str) -> None: ...

    def from_user(self, access_id: str, msg: Q931, now: float) -> None: ...

    def next_deadline(self) -> float | None: ...

    def on_timer(self, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Identity:
    """What GET_MANUFACTURER / GET_VERSION / GET_SERIAL_NUMBER answer."""

    manufacturer: str = "ccbs-sim"
    version: tuple[int, int, int, int] = (2, 0, 1, 0)
    serial: str = "0000042"


def frame(payload: bytes) -> bytes:
    """rcapi framing: big-endian length counting its own two octets (capi.md §9.1)."""
    return struct.pack(">H", len(payload) + 2) + payload


def management_reply(command: int, number: int, data: bytes) -> bytes:
    """A management reply: an 8-octet CAPI header, then the data (read from offset 8)."""
    return struct.pack("<HHBBH", 8 + len(data), 0, command, RCAPI_SUB, number) + data


class _Connection(asyncio.Protocol):
    """One TCP connection: the library's control connection (management requests) or,
    after REGISTER, one application's message connection."""

    def __init__(self, server: RcapiServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.registered = False
        self.name = "conn"
        self.delayed: deque[bytes] = deque()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._connection_made(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connection_lost(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 2:
            (length,) = struct.unpack_from(">H", self.buffer)
            if length < 2 + 8 or length > MAX_FRAME:
                log.warning("%s: bad rcapi frame length %d: closing", self.name, length)
                self.server.errors.append(f"{self.name}: bad frame length {length}")
                self.close()
                return
            if len(self.buffer) < length:
                return
            payload = bytes(self.buffer[2:length])
            del self.buffer[:length]
            self.server._payload(self, payload)

    # AppPort
    def send(self, msg: m.CapiMessage) -> None:
        self.server._to_app(self, m.encode(msg))

    def write_frame(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame(payload))  # one write per frame (capi.md §3)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RcapiServer:
    """The simulated card: N controllers behind one rcapi TCP server.

    ``exchange`` None runs the controllers without a network; their uplink messages are
    then collected in ``uplinked`` (single-module tests)."""

    def __init__(
        self,
        specs: Sequence[ControllerSpec],
        exchange: Exchange | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        identity: Identity = Identity(),
    ) -> None:
        if port == 65535:
            raise ValueError("port 65535 is libcapi20's 'unset' marker; use another")
        self.host, self._port = host, port
        self.identity = identity
        self.exchange = exchange
        self.controllers: dict[int, SimController] = {}
        self.uplinked: list[tuple[str, Q931]] = []
        self.errors: list[str] = []
        self.connections: set[_Connection] = set()
        self._outbox: deque[tuple[str, Q931]] = deque()
        self._pumping = False
        self._timer: asyncio.TimerHandle | None = None
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refuse_until = 0.0
        self._lose_to_app = 0
        self._lose_from_app = 0
        self._delay_to_app: tuple[int, float] = (0, 0.0)
        self._conn_seq = 0
        self.frames_in = 0
        self.frames_out = 0
        for spec in specs:
            if spec.ctrl in self.controllers or not 1 <= spec.ctrl <= 127:
                raise ValueError(f"controller number {spec.ctrl} invalid or duplicate")
            ctrl = SimController(spec, self._uplink_for(spec.access_id))
            self.controllers[spec.ctrl] = ctrl
            if exchange is not None:
                exchange.attach(spec.access_id, self._deliver_for(ctrl))

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: _Connection(self), self.host, self._port
        )
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("rcapi simulator listening on %s:%d", self.host, self._port)
        return self._port

    @property
    def port(self) -> int:
        return self._port

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        # transport.close() only schedules the socket's close: let the loop run it, so
        # the clients see EOF instead of a server that silently stopped answering.
        for _ in range(200):
            if not self.connections:
                break
            await asyncio.sleep(0.005)
        if self._server is not None:
            await self._server.wait_closed()
        if self.exchange is not None:
            for ctrl in self.controllers.values():
                self.exchange.detach(ctrl.spec.access_id)

    def now(self) -> float:
        assert self._loop is not None, "server not started"
        return self._loop.time()

    # ------------------------------------------------------------ fault injection
    def drop_connections(self) -> int:
        """Close every TCP connection (control and applications) like a crashed server.
        Returns how many were closed."""
        conns = list(self.connections)
        for conn in conns:
            conn.close()
        return len(conns)

    def refuse_connections(self, seconds: float) -> None:
        """For *seconds*, close every new connection at once."""
        self._refuse_until = self.now() + seconds

    def lose_messages(self, count: int, *, to_app: bool = True) -> None:
        """Silently lose the next *count* CAPI messages toward (or from) applications."""
        if to_app:
            self._lose_to_app = count
        else:
            self._lose_from_app = count

    def delay_messages(self, count: int, seconds: float) -> None:
        """Hold the next *count* CAPI messages toward applications for *seconds* (order
        is kept: later messages queue behind them)."""
        self._delay_to_app = (count, seconds)

    def inject(self, payload: bytes) -> int:
        """Send raw *payload* (normally a CAPI message, possibly malformed on purpose) to
        every registered application as one frame. Returns how many got it."""
        apps = [c for c in self.connections if c.registered]
        for conn in apps:
            self.frames_out += 1
            conn.write_frame(payload)
        return len(apps)

    def application_count(self) -> int:
        return sum(1 for c in self.connections if c.registered)

    # ------------------------------------------------------------------ the network
    def _uplink_for(self, access_id: str) -> Callable[[Q931], None]:
        def uplink(msg: Q931) -> None:
            self._outbox.append((access_id, msg))
            self._pump()

        return uplink

    def _deliver_for(self, ctrl: SimController) -> Deliver:
        def deliver(msg: Q931) -> None:
            try:
                ctrl.from_network(msg)
            except Exception:  # the firmware must never take the exchange down
                log.exception("controller %d failed on %r", ctrl.ctrl, msg)
                self.errors.append(f"controller {ctrl.ctrl} failed on {msg.type.name}")

        return deliver

    def _pump(self) -> None:
        """Feed queued user->network messages to the exchange, one at a time: a delivery
        caused by one input may queue more input, which waits for its turn."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._outbox:
                access_id, msg = self._outbox.popleft()
                if self.exchange is None:
                    self.uplinked.append((access_id, msg))
                else:
                    self.exchange.from_user(access_id, msg, self.now())
        finally:
            self._pumping = False
        self._rearm()

    def _rearm(self) -> None:
        if self.exchange is None or self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.exchange.next_deadline()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        assert self.exchange is not None
        self.exchange.on_timer(self.now())
        self._pump()

    def with_exchange(self, fn: Callable[[Any, float], T]) -> T:
        """Run ``fn(exchange, now)`` (e.g. ``ex.set_busy("22", False, now)``), then feed
        what it caused and re-arm the timer. Call it on the server's loop."""
        if self.exchange is None:
            raise RuntimeError("this server has no exchange")
        result = fn(self.exchange, self.now())
        self._pump()
        return result

    # ------------------------------------------------------------- connections
    def _connection_made(self, conn: _Connection) -> None:
        self._conn_seq += 1
        conn.name = f"conn{self._conn_seq}"
        if self._loop is not None and self._loop.time() < self._refuse_until:
            log.info("%s refused (fault injection)", conn.name)
            conn.close()
            return
        self.connections.add(conn)

    def _connection_lost(self, conn: _Connection) -> None:
        self.connections.discard(conn)
        if conn.registered:
            for ctrl in self.controllers.values():
                ctrl.detach_app(conn)

    def _payload(self, conn: _Connection, payload: bytes) -> None:
        self.frames_in += 1
        if len(payload) >= 8 and payload[5] == RCAPI_SUB:
            self._management(conn, payload)
            return
        if not conn.registered:
            self.errors.append(f"{conn.name}: CAPI message before REGISTER")
            return
        if self._lose_from_app > 0:
            self._lose_from_app -= 1
            return
        try:
            msg = m.decode(payload)
        except Exception as exc:  # CapiMessageError; anything else is a bug, logged too
            log.warning("%s: undecodable CAPI message %s: %s", conn.name, payload.hex(), exc)
            self.errors.append(f"{conn.name}: {exc}")
            return
        ctrl = self.controllers.get(msg.controller)
        if ctrl is None:
            if msg.subcommand is Subcommand.REQ:
                self._reject(conn, msg)
            return
        try:
            ctrl.from_app(conn, msg)
        except Exception:
            log.exception("controller %d failed on %s", ctrl.ctrl, msg.name)
            self.errors.append(f"controller {ctrl.ctrl} failed on {msg.name}")

    def _reject(self, conn: _Connection, msg: m.CapiMessage) -> None:
        layout = m.LAYOUTS.get((msg.command, Subcommand.CONF))
        if layout is None:
            return
        values: dict[str, m.Value] = {layout[0][0]: msg.address}
        if any(n == "info" for n, _ in layout):
            values["info"] = INFO_ILLEGAL_ADDRESS
        if any(n == "selector" for n, _ in layout):
            values["selector"] = msg.get_int("selector")
        conn.send(m.message(msg.command, Subcommand.CONF, msg.number, **values))

    def _management(self, conn: _Connection, payload: bytes) -> None:
        command, number = payload[4], struct.unpack_from("<H", payload, 6)[0]
        ctrl_no = struct.unpack_from("<I", payload, 8)[0] if len(payload) >= 12 else 0
        if command == RCAPI_REGISTER:
            conn.registered = True
            conn.name = conn.name.replace("conn", "app")
            for ctrl in self.controllers.values():
                ctrl.attach_app(conn)
            reply = management_reply(0xF3, number, struct.pack("<H", 0))
        elif command == RCAPI_GET_PROFILE:
            reply = management_reply(0xE1, number, self._profile(ctrl_no))
        elif command == RCAPI_GET_MANUFACTURER:
            text = self.identity.manufacturer.encode()[:63].ljust(64, b"\0")
            reply = management_reply(0xFB, number, bytes((64,)) + text)
        elif command == RCAPI_GET_VERSION:
            reply = management_reply(0xFD, number, bytes((16,)) + struct.pack(
                "<IIII", *self.identity.version))
        elif command == RCAPI_GET_SERIAL_NUMBER:
            text = self.identity.serial.encode()[:7].ljust(8, b"\0")
            reply = management_reply(0xFF, number, bytes((8,)) + text)
        else:
            self.errors.append(f"{conn.name}: unknown management request 0x{command:02X}")
            return
        self.frames_out += 1
        conn.write_frame(reply)

    def _profile(self, ctrl_no: int) -> bytes:
        count = struct.pack("<H", len(self.controllers))
        if ctrl_no == 0:
            return struct.pack("<H", 0) + count + bytes(62)
        ctrl = self.controllers.get(ctrl_no)
        if ctrl is None:
            return struct.pack("<H", INFO_ILLEGAL_ADDRESS) + bytes(64)
        return struct.pack("<H", 0) + count + ctrl.profile()[2:]

    def _to_app(self, conn: _Connection, payload: bytes) -> None:
        if self._lose_to_app > 0:
            self._lose_to_app -= 1
            log.info("%s: lost %s (fault injection)", conn.name, payload[4:6].hex())
            return
        count, seconds = self._delay_to_app
        if count > 0 or conn.delayed:
            if count > 0:
                self._delay_to_app = (count - 1, seconds)
            first = not conn.delayed
            conn.delayed.append(payload)
            if first and self._loop is not None:
                self._loop.call_later(seconds, self._flush_delayed, conn)
            return
        self.frames_out += 1
        conn.write_frame(payload)

    def _flush_delayed(self, conn: _Connection) -> None:
        while conn.delayed:
            self.frames_out += 1
            conn.write_frame(conn.delayed.popleft())


class ThreadedRcapiServer:
    """An :class:`RcapiServer` on its own event loop in a daemon thread.

    Use it where the same process runs libcapi20 (tests, benchmarks, the demo): the
    library's remote calls block the calling thread until the server answers."""

    def __init__(self, factory: Callable[[], RcapiServer]) -> None:
        self._factory = factory
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="rcapi-sim", daemon=True)
        self._server: RcapiServer | None = None
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self, timeout: float = 10.0) -> int:
        self._thread.start()

        async def boot() -> int:
            self._server = self._factory()
            return await self._server.start()

        self.port = asyncio.run_coroutine_threadsafe(boot(), self._loop).result(timeout)
        return self.port

    @property
    def server(self) -> RcapiServer:
        assert self._server is not None, "not started"
        return self._server

    def call(self, fn: Callable[[RcapiServer], T], timeout: float = 10.0) -> T:
        """Run ``fn(server)`` on the server's loop and return its result."""

        async def run() -> T:
            return fn(self.server)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def exchange(self, fn: Callable[[Any, float], T], timeout: float = 10.0) -> T:
        """Run ``fn(exchange, now)`` on the server's loop (see RcapiServer.with_exchange)."""
        return self.call(lambda server: server.with_exchange(fn), timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Close the server and end the thread (idempotent)."""
        if self._loop.is_closed():
            return
        if self._server is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._server.close(), self._loop).result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._loop.is_running():
            self._loop.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ccbs_isdn.drivers.sim.rcapi``: a simulated card + exchange on a TCP
    port, for benchmarks and manual tests. Prints ``LISTENING <port>`` when ready."""
    import argparse

    from .exchange import SimExchange

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--controllers", type=int, default=1,
                        help="BRI controllers; controller n has MSNs n1 and n2")
    parser.add_argument("--raw", action="store_true",
                        help="cards without supplementary services (raw Facility route)")
    parser.add_argument("--subscribers", default="22:busy,23",
                        help="external subscribers, e.g. 22:busy,23")
    args = parser.parse_args(argv)
    exchange = SimExchange()
    specs = []
    for n in range(1, args.controllers + 1):
        msns = (f"{n}1", f"{n}2") if n < 10 else (f"{n}01", f"{n}02")
        exchange.add_access(f"bri{n}", msns)
        specs.append(ControllerSpec(n, f"bri{n}", msns, supplementary=not args.raw))
    for item in filter(None, args.subscribers.split(",")):
        number, _, state = item.partition(":")
        exchange.add_subscriber(number, busy=state == "busy")

    async def serve() -> None:
        server = RcapiServer(specs, exchange, host=args.host, port=args.port)
        port = await server.start()
        print(f"LISTENING {port}", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
