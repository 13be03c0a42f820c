"""The control socket of ccbsd: newline-delimited JSON over a Unix stream socket.

Protocol (version 1). A client sends one JSON object per line::

    {"v": 1, "cmd": "status", "args": {}, "tag": <anything, echoed>}

and gets one reply line per request::

    {"v": 1, "tag": ..., "ok": true, "result": {...}}
    {"v": 1, "tag": ..., "ok": false, "error": {"code": "permission-denied",
                                                "message": "...", "exit": 77}}

``events`` answers ``ok`` with the recent events, then (``"follow": true``) streams
``{"v": 1, "event": {...}}`` lines until the client closes the connection.

Who may do what (the socket is mode 0660, group ``[daemon] socket_group``): the caller
is identified by SO_PEERCRED (+ SO_PEERGROUPS); reading commands are open to everyone
who can connect and belongs to the socket group, the admin group, root or the daemon's
own user; changing commands (``cancel``, ``request``, ``reload``, ``trace``) need root,
the daemon's user or the admin group. The caller becomes the ``actor`` of the request
history (``ctl:anna(1000)``).

Owns the socket, framing, validation and authorisation. A malformed, oversized or
unauthorised request gets an error reply (:class:`ControlProtocolError`,
:class:`PermissionDenied`), never a crash, and one client's garbage never disturbs
another client. Must not decide anything about CCBS: it calls the
:class:`ControlTarget` (``runtime/service.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
import pwd
import socket
import struct
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ccbs_isdn.errors import (
    CcbsError,
    ConfigError,
    ControlProtocolError,
    LocalError,
    PermissionDenied,
    RequestRefused,
    StoreError,
)
from ccbs_isdn.runtime.logging import kv

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
#: longest request line; a ccbsctl request is < 300 bytes
MAX_REQUEST_BYTES = 64 * 1024
#: a client that sends nothing for this long is dropped (streams are exempt)
IDLE_TIMEOUT = 300.0

# sysexits(3) used by ccbsctl; the daemon tells the client which one fits
EX_OK = 0
EX_FAILURE = 1
EX_USAGE = 2
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78

#: error code → exit code of ccbsctl
EXIT_CODES: dict[str, int] = {
    "bad-request": EX_USAGE,
    "permission-denied": EX_NOPERM,
    "refused": EX_FAILURE,
    "not-found": EX_FAILURE,
    "store-error": EX_TEMPFAIL,
    "busy": EX_TEMPFAIL,
    "shutting-down": EX_TEMPFAIL,
    "config-error": EX_CONFIG,
}


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of a control command: JSON type(s), required, and a check."""

    types: tuple[type, ...]
    required: bool = False
    check: Callable[[Any], bool] | None = None
    expected: str = ""


def _digits(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 32 and value.isdigit() and value.isascii()


def _request_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64 and value.isprintable()


@dataclass(frozen=True, slots=True)
class Command:
    changes: bool
    args: Mapping[str, Arg] = field(default_factory=dict)
    stream: bool = False


#: The command table: what exists, who may run it, which arguments it takes.
COMMANDS: dict[str, Command] = {
    "ping": Command(changes=False),
    "status": Command(changes=False),
    "show": Command(changes=False, args={
        "id": Arg((str,), required=True, check=_request_id, expected="a request id"),
    }),
    "events": Command(changes=False, stream=True, args={
        "follow": Arg((bool,)),
        "last": Arg((int,), check=lambda n: 0 <= n <= 10000, expected="0..10000"),
    }),
    "cancel": Command(changes=True, args={
        "id": Arg((str,), check=_request_id, expected="a request id"),
        "caller": Arg((str,), check=_digits, expected="an extension (digits)"),
        "all": Arg((bool,)),
    }),
    "request": Command(changes=True, args={
        "caller": Arg((str,), required=True, check=_digits, expected="an extension (digits)"),
        "target": Arg((str,), required=True, check=_digits, expected="a number (digits)"),
    }),
    "reload": Command(changes=True),
    "trace": Command(changes=True, args={
        "action": Arg((str,), required=True, check=lambda a: a in ("start", "stop"),
                      expected="start or stop"),
        "file": Arg((str,), check=lambda p: p.startswith("/") and "\0" not in p,
                    expected="an absolute path"),
    }),
}


# ---------------------------------------------------------------- who is calling


@dataclass(frozen=True, slots=True)
class PeerCred:
    """The process on the other end of the socket (SO_PEERCRED, SO_PEERGROUPS)."""

    pid: int
    uid: int
    gid: int
    groups: frozenset[int] = frozenset()

    @property
    def user(self) -> str:
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return str(self.uid)

    @property
    def actor(self) -> str:
        """How the caller is written into the request history."""
        return f"ctl:{self.user}({self.uid})"


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Group ids allowed to read / to change, and the daemon's own uid."""

    read_gids: frozenset[int]
    admin_gids: frozenset[int]
    daemon_uid: int

    @classmethod
    def from_names(cls, socket_group: str, admin_group: str,
                   daemon_uid: int | None = None, daemon_gid: int | None = None
                   ) -> AccessPolicy:
        uid = os.getuid() if daemon_uid is None else daemon_uid
        gid = os.getgid() if daemon_gid is None else daemon_gid
        read = {group_id(socket_group, "daemon.socket_group")} if socket_group else {gid}
        admin = {group_id(admin_group, "daemon.admin_group")} if admin_group else set()
        return cls(frozenset(read), frozenset(admin), uid)


SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux >= 4.13


def group_id(name: str, key: str) -> int:
    """The gid of group *name* (or a numeric gid), ConfigError when it does not exist."""
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ConfigError(f"group {name!r} does not exist", key=key,
                          expected="an existing group (see systemd/ccbs-isdn.sysusers.conf)"
                          ) from None


def peer_credentials(sock: Any) -> PeerCred:
    """Read SO_PEERCRED (+ the peer's supplementary groups) from a connected socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    groups: set[int] = {gid}
    try:
        raw_groups = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * 1024)
        groups.update(struct.unpack(f"{len(raw_groups) // 4}I", raw_groups))
    except OSError:
        # older kernels: the groups of the user database (misses sg/newgrp changes)
        with contextlib.suppress(KeyError):
            groups.update(os.getgrouplist(pwd.getpwuid(uid).pw_name, gid))
    return PeerCred(pid=pid, uid=uid, gid=gid, groups=frozenset(groups))


def authorize(cred: PeerCred, command: str, policy: AccessPolicy) -> None:
    """Raise PermissionDenied unless *cred* may run *command* (the decision, pure)."""
    spec = COMMANDS[command]
    if cred.uid in (0, policy.daemon_uid):
        return
    if cred.groups & policy.admin_gids:
        return
    if not spec.changes and cred.groups & policy.read_gids:
        return
    what = "change requests" if spec.changes else "read the CCBS state"
    raise PermissionDenied(
        f"user {cred.user} (uid {cred.uid}) may not {what} ({command}); "
        + ("ask root or a member of the admin group" if spec.changes
           else "add the user to the socket group")
    )


# ----------------------------------------------------------------- the target


class ControlTarget(Protocol):
    """What the control server asks of the daemon (implemented by runtime/service.py).

    Every method may raise a CcbsError subclass; its ``code`` becomes the error code of
    the reply (``refused`` with ``reason``, ``not-found``, ``store-error`` ...).
    """

    def status(self) -> dict[str, Any]: ...

    def show(self, request_id: str) -> dict[str, Any]: ...

    async def cancel(self, *, request_id: str | None, caller: str | None, everything: bool,
                     actor: str) -> dict[str, Any]: ...

    async def request(self, *, caller: str, target: str, actor: str) -> dict[str, Any]: ...

    async def reload(self, *, actor: str) -> dict[str, Any]: ...

    def trace(self, *, action: str, path: str | None, actor: str) -> dict[str, Any]: ...

    def recent_events(self, last: int) -> list[dict[str, Any]]: ...

    def subscribe(self) -> AsyncIterator[dict[str, Any]]: ...


# ------------------------------------------------------------------- framing


def parse_request(line: bytes) -> tuple[str, dict[str, Any], Any]:
    """Decode and validate one request line → (command, args, tag).

    Raises ControlProtocolError (with ``offset`` for JSON syntax errors) for anything
    that is not a version-1 request of a known command with well-typed arguments.
    """
    if len(line) > MAX_REQUEST_BYTES:
        raise ControlProtocolError(f"request longer than {MAX_REQUEST_BYTES} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ControlProtocolError("request is not UTF-8", offset=exc.start) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ControlProtocolError(f"request is not JSON: {exc.msg}", offset=exc.pos) from None
    except RecursionError:
        raise ControlProtocolError("request is nested too deeply") from None
    if not isinstance(doc, dict):
        raise ControlProtocolError("request is not a JSON object")
    tag = doc.get("tag")
    version = doc.get("v")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise ControlProtocolError(
            f"unsupported protocol version {version!r} (this daemon speaks v{PROTOCOL_VERSION})"
        )
    unknown = set(doc) - {"v", "cmd", "args", "tag"}
    if unknown:
        raise ControlProtocolError(f"unknown request field(s): {', '.join(sorted(unknown))}")
    command = doc.get("cmd")
    if not isinstance(command, str) or command not in COMMANDS:
        raise ControlProtocolError(
            f"unknown command {command!r}; known: {', '.join(sorted(COMMANDS))}"
        )
    args = doc.get("args", {})
    if not isinstance(args, dict):
        raise ControlProtocolError("args is not a JSON object")
    spec = COMMANDS[command]
    for name, value in args.items():
        arg = spec.args.get(name)
        if arg is None:
            raise ControlProtocolError(f"{command}: unknown argument {name!r}")
        if value is None and not arg.required:
            continue
        if isinstance(value, bool) and bool not in arg.types:
            raise ControlProtocolError(f"{command}: {name} has the wrong type")
        if not isinstance(value, arg.types) or (arg.check is not None and not arg.check(value)):
            raise ControlProtocolError(
                f"{command}: {name} must be {arg.expected or arg.types[0].__name__}"
            )
    for name, arg in spec.args.items():
        if arg.required and args.get(name) is None:
            raise ControlProtocolError(f"{command}: argument {name!r} is required")
    return command, args, tag


def encode(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, separators=(",", ":"), default=str, ensure_ascii=False)
            + "\n").encode("utf-8")


def error_reply(exc: CcbsError, tag: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": exc.code,
        "message": str(exc),
        "exit": EXIT_CODES.get(exc.code, EX_FAILURE),
    }
    if isinstance(exc, RequestRefused):
        error["reason"] = exc.reason
    if isinstance(exc, ControlProtocolError) and exc.offset is not None:
        error["offset"] = exc.offset
    if isinstance(exc, ConfigError):
        error.update({"file": exc.file, "key": exc.key, "expected": exc.expected})
    return {"v": PROTOCOL_VERSION, "tag": tag, "ok": False, "error": error}


# -------------------------------------------------------------------- server


class ControlServer:
    """The asyncio Unix-socket server. ``await start()``, ``await stop()``."""

    def __init__(
        self,
        path: str,
        target: ControlTarget,
        access: AccessPolicy,
        *,
        socket_gid: int | None = None,
        max_clients: int = 64,
        on_request: Callable[[str, str], None] | None = None,
    ) -> None:
        self.path = path
        self.target = target
        self.access = access
        self.socket_gid = socket_gid
        self.max_clients = max_clients
        self.on_request = on_request or (lambda command, result: None)
        self._server: asyncio.base_events.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._closing = False
        self._inode: tuple[int, int] | None = None  # the socket file we created

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def start(self) -> None:
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, mode=0o755, exist_ok=True)
        await self._remove_stale_socket()
        # bind under a umask so the socket is never, even briefly, wider than 0660
        old_umask = os.umask(0o117)
        try:
            self._server = await asyncio.start_unix_server(
                self._client, path=self.path, limit=MAX_REQUEST_BYTES + 1
            )
        finally:
            os.umask(old_umask)
        st = os.stat(self.path)
        self._inode = (st.st_dev, st.st_ino)
        os.chmod(self.path, 0o660)
        if self.socket_gid is not None:
            os.chown(self.path, -1, self.socket_gid)
        log.info("control socket listening", extra=kv(path=self.path))

    async def _remove_stale_socket(self) -> None:
        if not os.path.exists(self.path):
            return
        try:
            _, writer = await asyncio.wait_for(asyncio.open_unix_connection(self.path), 2)
        except (ConnectionRefusedError, FileNotFoundError, TimeoutError, OSError):
            os.unlink(self.path)
            return
        writer.close()
        raise LocalError(f"{self.path} is in use: another ccbsd is running",
                         code="already-running")

    async def stop(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        # only our own socket file: never the one of a ccbsd that refused us or
        # replaced us meanwhile
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(self.path)
            if self._inode == (st.st_dev, st.st_ino):
                os.unlink(self.path)
        self._inode = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:  # one client's trouble must never reach the daemon
            log.exception("control client failed")
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            cred = peer_credentials(writer.get_extra_info("socket"))
        except OSError as exc:
            log.warning("cannot read peer credentials, closing", extra=kv(error=exc))
            return
        if len(self._clients) > self.max_clients or self._closing:
            code = "shutting-down" if self._closing else "busy"
            writer.write(encode(error_reply(LocalError(
                "ccbsd is shutting down" if self._closing
                else f"too many control clients (max {self.max_clients}); try again",
                code=code))))
            await writer.drain()
            return
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
            except TimeoutError:
                return
            except ValueError:
                # longer than the limit: the stream cannot be resynchronised, answer + close
                writer.write(encode(error_reply(ControlProtocolError(
                    f"request longer than {MAX_REQUEST_BYTES} bytes"))))
                await writer.drain()
                self.on_request("invalid", "bad-request")
                return
            if not line:
                return
            if not line.strip():
                continue
            stream = await self._one(line, cred, writer)
            if stream is not None:
                await self._stream_events(stream, reader, writer)
                return

    async def _one(self, line: bytes, cred: PeerCred, writer: asyncio.StreamWriter
                   ) -> AsyncIterator[dict[str, Any]] | None:
        tag: Any = None
        command = "invalid"
        stream: AsyncIterator[dict[str, Any]] | None = None
        try:
            command, args, tag = parse_request(line.rstrip(b"\r\n"))
            authorize(cred, command, self.access)
            result, stream = await self._dispatch(command, args, cred)
            reply: dict[str, Any] = {"v": PROTOCOL_VERSION, "tag": tag, "ok": True,
                                     "result": result}
            outcome = "ok"
        except CcbsError as exc:
            reply = error_reply(exc, tag)
            outcome = exc.code
            level = logging.WARNING if isinstance(exc, PermissionDenied) else logging.INFO
            if isinstance(exc, StoreError):
                level = logging.ERROR
            log.log(level, "control request failed",
                    extra=kv(cmd=command, actor=cred.actor, pid=cred.pid, code=exc.code,
                             error=str(exc)))
        except Exception as exc:
            log.exception("control command crashed", extra=kv(cmd=command))
            reply = error_reply(LocalError(f"internal error: {type(exc).__name__}: {exc}",
                                           code="internal-error"), tag)
            outcome = "internal-error"
        self.on_request(command, outcome)
        writer.write(encode(reply))
        await writer.drain()
        return stream

    async def _dispatch(self, command: str, args: dict[str, Any], cred: PeerCred
                        ) -> tuple[Any, AsyncIterator[dict[str, Any]] | None]:
        target = self.target
        actor = cred.actor
        if command == "ping":
            return {"pong": True, "pid": os.getpid(), "version": _version()}, None
        if command == "status":
            return target.status(), None
        if command == "show":
            return target.show(args["id"]), None
        if command == "cancel":
            chosen = [k for k in ("id", "caller", "all") if args.get(k) not in (None, False)]
            if len(chosen) != 1:
                raise ControlProtocolError("cancel: give exactly one of id, caller, all")
            log.info("cancel requested", extra=kv(actor=actor, **{k: args[k] for k in chosen}))
            return await target.cancel(request_id=args.get("id"), caller=args.get("caller"),
                                       everything=bool(args.get("all")), actor=actor), None
        if command == "request":
            log.info("request from the control socket",
                     extra=kv(actor=actor, caller=args["caller"], target=args["target"]))
            return await target.request(caller=args["caller"], target=args["target"],
                                        actor=actor), None
        if command == "reload":
            return await target.reload(actor=actor), None
        if command == "trace":
            return target.trace(action=args["action"], path=args.get("file"), actor=actor), None
        if command == "events":
            follow = bool(args.get("follow"))
            # subscribe before taking the backlog so nothing falls between the two
            stream = target.subscribe() if follow else None
            backlog = target.recent_events(int(args.get("last", 20)))
            return {"events": backlog, "follow": follow}, stream
        raise ControlProtocolError(f"unknown command {command!r}")  # COMMANDS and this agree

    async def _stream_events(self, stream: AsyncIterator[dict[str, Any]],
                             reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        """Forward events until the client goes away (EOF) or the daemon stops."""

        async def client_gone() -> None:
            while await reader.read(4096):
                pass  # a following client has nothing to say; ignore what it sends

        watcher = asyncio.ensure_future(client_gone())
        try:
            iterator = stream.__aiter__()
            while True:
                next_event = asyncio.ensure_future(iterator.__anext__())
                done, _ = await asyncio.wait({next_event, watcher},
                                             return_when=asyncio.FIRST_COMPLETED)
                if watcher in done:
                    next_event.cancel()
                    return
                try:
                    event = next_event.result()
                except StopAsyncIteration:
                    return
                writer.write(encode({"v": PROTOCOL_VERSION, "event": event}))
                await writer.drain()
        finally:
            watcher.cancel()
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()


def _version() -> str:
    from ccbs_isdn import __version__

    return __version__
