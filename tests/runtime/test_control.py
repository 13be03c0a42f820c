"""Control socket: request validation (fuzzed), the SO_PEERCRED decision, and a real
Unix-socket server with a scripted target (unit test of runtime/control.py only)."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccbs_isdn.errors import ControlProtocolError, LocalError, PermissionDenied, RequestRefused
from ccbs_isdn.runtime.control import (
    COMMANDS,
    MAX_REQUEST_BYTES,
    AccessPolicy,
    ControlServer,
    PeerCred,
    authorize,
    parse_request,
    peer_credentials,
)


def line(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_a_valid_request_parses() -> None:
    cmd, args, tag = parse_request(line({"v": 1, "cmd": "show", "args": {"id": "17"},
                                         "tag": 5}))
    assert (cmd, args, tag) == ("show", {"id": "17"}, 5)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (line([1, 2]), "not a JSON object"),
        (line({"cmd": "status"}), "unsupported protocol version None"),
        (line({"v": 2, "cmd": "status"}), "unsupported protocol version 2"),
        (line({"v": True, "cmd": "status"}), "unsupported protocol version True"),
        (line({"v": 1, "cmd": "format-disk"}), "unknown command 'format-disk'"),
        (line({"v": 1, "cmd": "status", "extra": 1}), "unknown request field"),
        (line({"v": 1, "cmd": "status", "args": []}), "args is not a JSON object"),
        (line({"v": 1, "cmd": "show"}), "argument 'id' is required"),
        (line({"v": 1, "cmd": "show", "args": {"id": 17}}), "id must be a request id"),
        (line({"v": 1, "cmd": "request", "args": {"caller": "21", "target": "0x1"}}),
         "target must be a number"),
        (line({"v": 1, "cmd": "cancel", "args": {"all": "yes"}}), "all must be bool"),
        (line({"v": 1, "cmd": "cancel", "args": {"caller": True}}), "wrong type"),
        (line({"v": 1, "cmd": "events", "args": {"last": 10**9}}), "last must be 0..10000"),
        (line({"v": 1, "cmd": "trace", "args": {"action": "start", "file": "rel"}}),
         "file must be an absolute path"),
        (b"[" * 100000, "longer than"),
    ],
)
def test_malformed_requests_are_control_protocol_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ControlProtocolError, match=message):
        parse_request(raw)


def test_json_syntax_errors_carry_the_offset() -> None:
    with pytest.raises(ControlProtocolError) as info:
        parse_request(b'{"v": 1, "cmd": }')
    assert info.value.offset == 16


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_control_protocol_error(raw: bytes) -> None:
    try:
        parse_request(raw)
    except ControlProtocolError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=10,
)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(sorted(COMMANDS)), st.dictionaries(
    st.sampled_from(["id", "caller", "target", "all", "follow", "last", "action", "file", "x"]),
    json_values, max_size=4))
def test_random_arguments_raise_only_control_protocol_error(cmd: str,
                                                            args: dict[str, Any]) -> None:
    try:
        command, parsed, _ = parse_request(line({"v": 1, "cmd": cmd, "args": args}))
    except ControlProtocolError:
        return
    assert command == cmd and parsed == args


POLICY = AccessPolicy(read_gids=frozenset({500}), admin_gids=frozenset({600}), daemon_uid=998)


@pytest.mark.parametrize(
    ("uid", "groups", "command", "allowed"),
    [
        (0, set(), "cancel", True),  # root
        (998, set(), "request", True),  # the daemon's own user
        (1000, {600}, "cancel", True),  # admin group
        (1000, {600}, "status", True),
        (1000, {500}, "status", True),  # socket group reads
        (1000, {500}, "events", True),
        (1000, {500}, "cancel", False),  # ... but may not change
        (1000, {500}, "request", False),
        (1000, {500}, "reload", False),
        (1000, {500}, "trace", False),
        (1000, {100}, "status", False),  # neither group
        (1000, set(), "show", False),
    ],
)
def test_peercred_decision(uid: int, groups: set[int], command: str, allowed: bool) -> None:
    cred = PeerCred(pid=42, uid=uid, gid=uid, groups=frozenset(groups))
    if allowed:
        authorize(cred, command, POLICY)
    else:
        with pytest.raises(PermissionDenied, match=command):
            authorize(cred, command, POLICY)


def test_peer_credentials_of_a_real_socketpair() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        cred = peer_credentials(a)
    assert (cred.pid, cred.uid, cred.gid) == (os.getpid(), os.getuid(), os.getgid())
    assert os.getgid() in cred.groups
    assert cred.actor.startswith("ctl:") and cred.actor.endswith(f"({os.getuid()})")


class ScriptedTarget:
    """Answers like the service would, and records who asked (actor)."""

    def __init__(self) -> None:
        self.actors: list[str] = []
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def status(self) -> dict[str, Any]:
        return {"requests": [{"id": 1, "caller": "21"}], "lines": []}

    def show(self, request_id: str) -> dict[str, Any]:
        if request_id != "1":
            raise LocalError(f"no request {request_id}", code="not-found")
        return {"id": 1, "history": []}

    async def cancel(self, *, request_id: str | None, caller: str | None, everything: bool,
                     actor: str) -> dict[str, Any]:
        self.actors.append(actor)
        return {"cancelled": [1]}

    async def request(self, *, caller: str, target: str, actor: str) -> dict[str, Any]:
        self.actors.append(actor)
        raise RequestRefused("caller 21 already has 5 requests", reason="caller-limit")

    async def reload(self, *, actor: str) -> dict[str, Any]:
        return {"files": []}

    def trace(self, *, action: str, path: str | None, actor: str) -> dict[str, Any]:
        return {"file": path}

    def recent_events(self, last: int) -> list[dict[str, Any]]:
        return [{"event": "activated", "id": 1}][:last]

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.queue.get()


@pytest.fixture
async def server(tmp_path: Path):
    target = ScriptedTarget()
    srv = ControlServer(str(tmp_path / "run" / "control.sock"), target,
                        AccessPolicy(frozenset({os.getgid()}), frozenset(), os.getuid()),
                        max_clients=3)
    await srv.start()
    yield srv, target
    await srv.stop()


async def ask(path: str, *raw_lines: bytes) -> list[dict[str, Any]]:
    reader, writer = await asyncio.open_unix_connection(path, limit=2**20)
    replies = []
    for raw in raw_lines:
        writer.write(raw + b"\n")
        await writer.drain()
        reply = await asyncio.wait_for(reader.readline(), 10)
        replies.append(json.loads(reply))
    writer.close()
    return replies


async def test_socket_mode_is_0660_and_replies_carry_results(server) -> None:
    srv, target = server
    assert os.stat(srv.path).st_mode & 0o777 == 0o660
    replies = await ask(srv.path, line({"v": 1, "cmd": "status", "tag": "t1"}),
                        line({"v": 1, "cmd": "show", "args": {"id": "9"}}),
                        line({"v": 1, "cmd": "request", "args": {"caller": "21",
                                                                  "target": "22"}}),
                        line({"v": 1, "cmd": "cancel", "args": {"id": "1", "caller": "21"}}),
                        line({"v": 1, "cmd": "cancel", "args": {"id": "1"}}))
    assert replies[0] == {"v": 1, "tag": "t1", "ok": True,
                          "result": {"requests": [{"id": 1, "caller": "21"}], "lines": []}}
    assert replies[1]["error"] == {"code": "not-found", "message": "no request 9", "exit": 1}
    assert replies[2]["error"]["reason"] == "caller-limit"
    assert replies[3]["error"]["code"] == "bad-request"
    assert replies[3]["error"]["exit"] == 2
    assert replies[4]["result"] == {"cancelled": [1]}
    me = f"ctl:{pwd.getpwuid(os.getuid()).pw_name}({os.getuid()})"
    assert target.actors == [me, me]  # who asked is passed on for the history


async def test_garbage_from_one_client_does_not_disturb_another(server) -> None:
    srv, _ = server
    bad_reader, bad_writer = await asyncio.open_unix_connection(srv.path)
    bad_writer.write(b"\x00\xff garbage {{{\n")
    await bad_writer.drain()
    bad_reply = json.loads(await asyncio.wait_for(bad_reader.readline(), 10))
    assert bad_reply["ok"] is False and bad_reply["error"]["code"] == "bad-request"
    # half a request, never finished: the other client is served meanwhile
    bad_writer.write(b'{"v": 1, "cmd": "sta')
    await bad_writer.drain()
    good = await ask(srv.path, line({"v": 1, "cmd": "ping"}))
    assert good[0]["result"]["pong"] is True
    # the garbage client's connection still works after its error
    bad_writer.write(b'tus"}\n')
    await bad_writer.drain()
    assert json.loads(await asyncio.wait_for(bad_reader.readline(), 10))["ok"] is True
    bad_writer.close()


async def test_oversized_request_gets_an_error_and_the_connection_closes(server) -> None:
    srv, _ = server
    reader, writer = await asyncio.open_unix_connection(srv.path)
    writer.write(b"x" * (MAX_REQUEST_BYTES + 10) + b"\n")
    await writer.drain()
    reply = json.loads(await asyncio.wait_for(reader.readline(), 10))
    assert reply["error"]["code"] == "bad-request"
    assert "longer than" in reply["error"]["message"]
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    assert (await ask(srv.path, line({"v": 1, "cmd": "ping"})))[0]["ok"] is True


async def test_too_many_clients_are_told_to_retry(server) -> None:
    srv, _ = server
    held = [await asyncio.open_unix_connection(srv.path) for _ in range(3)]
    for reader, writer in held:  # make sure each is being served
        writer.write(line({"v": 1, "cmd": "ping"}) + b"\n")
        await writer.drain()
        await asyncio.wait_for(reader.readline(), 10)
    reader, writer = await asyncio.open_unix_connection(srv.path)
    reply = json.loads(await asyncio.wait_for(reader.readline(), 10))
    assert reply["error"]["code"] == "busy" and reply["error"]["exit"] == 75
    writer.close()
    for _, w in held:
        w.close()


async def test_events_follow_streams_until_the_client_leaves(server) -> None:
    srv, target = server
    reader, writer = await asyncio.open_unix_connection(srv.path)
    writer.write(line({"v": 1, "cmd": "events", "args": {"follow": True, "last": 5}}) + b"\n")
    await writer.drain()
    first = json.loads(await asyncio.wait_for(reader.readline(), 10))
    assert first["result"] == {"events": [{"event": "activated", "id": 1}], "follow": True}
    await target.queue.put({"event": "recall", "id": 1})
    streamed = json.loads(await asyncio.wait_for(reader.readline(), 10))
    assert streamed == {"v": 1, "event": {"event": "recall", "id": 1}}
    writer.close()

    async def streams_gone() -> None:
        while srv.clients:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(streams_gone(), 10)


async def test_a_second_daemon_refuses_a_live_socket(server) -> None:
    srv, target = server
    other = ControlServer(srv.path, target, srv.access)
    with pytest.raises(LocalError, match="another ccbsd is running"):
        await other.start()


async def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()
    srv = ControlServer(str(path), ScriptedTarget(), POLICY)
    await srv.start()
    try:
        assert (await ask(str(path), line({"v": 1, "cmd": "ping"})))[0]["ok"] is True
    finally:
        await srv.stop()
    assert not path.exists()
