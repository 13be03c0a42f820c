"""The rcapi server: framing and management requests on the wire (a plain TCP client),
then the same through the real libcapi20 (capi.md §9.1, §10)."""

from __future__ import annotations

import asyncio
import ctypes
import struct
from pathlib import Path

import pytest
from ccbs_isdn.drivers.capi20 import lib as capilib
from ccbs_isdn.drivers.capi20 import messages as m
from ccbs_isdn.drivers.capi20.tables import Command as C
from ccbs_isdn.drivers.capi20.tables import Subcommand as S
from ccbs_isdn.drivers.sim.controller import ControllerSpec
from ccbs_isdn.drivers.sim.q931 import MsgType
from ccbs_isdn.drivers.sim.rcapi import Identity, RcapiServer, ThreadedRcapiServer, frame

from ccbs_isdn.errors import CapiError, DriverNotAvailable

SPECS = (ControllerSpec(1, "bri1", ("31",)), ControllerSpec(2, "bri2", ("41",),
                                                             supplementary=False))
#: The REGISTER frame libcapi20 sends for register(2, 7, 2048) (capi.md §9.1).
REGISTER = bytes.fromhex("0017 0000 0000 f2ff 0000 00000000 0008 0200 0700 0008 02"
                         .replace(" ", ""))


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def frame(self) -> bytes:
        (length,) = struct.unpack(">H", await asyncio.wait_for(self.reader.readexactly(2), 5))
        return await asyncio.wait_for(self.reader.readexactly(length - 2), 5)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def management(self, command: int, ctrl: int = 0) -> bytes:
        self.send(frame(struct.pack("<HHBBHI", 0, 0, command, 0xFF, 0x1234, ctrl)))
        reply = await self.frame()
        assert (reply[4], reply[5]) == (command + 1, 0xFF)
        return reply[8:]


@pytest.fixture
async def server() -> RcapiServer:
    srv = RcapiServer(SPECS, identity=Identity("test-card", (2, 0, 3, 4), "1234567"))
    await srv.start()
    yield srv  # type: ignore[misc]
    await srv.close()


async def connect(server: RcapiServer) -> Client:
    return Client(*await asyncio.open_connection("127.0.0.1", server.port))


async def test_register_reply_and_application_traffic(server: RcapiServer) -> None:
    client = await connect(server)
    client.send(REGISTER)
    reply = await client.frame()
    assert reply == struct.pack("<HHBBH", 10, 0, 0xF3, 0xFF, 0) + b"\x00\x00"
    listen = m.encode(m.message(C.LISTEN, S.REQ, 77, controller=1, info_mask=1))
    client.send(frame(listen))
    conf = m.decode(await client.frame())
    assert (conf.name, conf.number, conf.get_int("info")) == ("LISTEN_CONF", 77, 0)
    assert server.application_count() == 1


async def test_profiles_and_identity(server: RcapiServer) -> None:
    client = await connect(server)
    head = await client.management(0xE0, 0)
    assert struct.unpack_from("<HH", head) == (0, 2)  # Info 0, two controllers
    one = await client.management(0xE0, 1)
    info, count, nb, gopt = struct.unpack_from("<HHHI", one)
    assert (info, count, nb, gopt & 0x10) == (0, 2, 2, 0x10)
    two = await client.management(0xE0, 2)
    assert struct.unpack_from("<I", two, 6)[0] & 0x10 == 0
    missing = await client.management(0xE0, 9)
    assert struct.unpack_from("<H", missing) == (0x2002,)
    assert (await client.management(0xFA, 1))[1:10] == b"test-card"
    assert struct.unpack("<IIII", (await client.management(0xFC, 1))[1:17]) == (2, 0, 3, 4)
    assert (await client.management(0xFE, 1))[1:8] == b"1234567"


async def test_a_message_for_an_unknown_controller_is_refused(server: RcapiServer) -> None:
    client = await connect(server)
    client.send(REGISTER)
    await client.frame()
    client.send(frame(m.encode(m.message(C.FACILITY, S.REQ, 5, address=9, selector=3))))
    conf = m.decode(await client.frame())
    assert (conf.name, conf.number, conf.get_int("info"), conf.get_int("selector")) == (
        "FACILITY_CONF", 5, 0x2002, 3)


async def test_capi_before_register_and_bad_frames(server: RcapiServer) -> None:
    client = await connect(server)
    client.send(frame(m.encode(m.message(C.LISTEN, S.REQ, 1, controller=1))))
    client.send(frame(b"\x0c\x00\x01\x00\x06\x82\x01\x00\x01\x00\x00\x00"))
    client.send(b"\x00\x03\x00")  # frame length 3: impossible
    assert await asyncio.wait_for(client.reader.read(), 5) == b""  # closed by the server
    assert any("before REGISTER" in e for e in server.errors)
    assert any("bad frame length 3" in e for e in server.errors)


async def test_uplink_without_exchange_is_collected(server: RcapiServer) -> None:
    client = await connect(server)
    client.send(REGISTER)
    await client.frame()
    req = m.message(C.CONNECT, S.REQ, 9, controller=1, cip=1,
                    called_number=m.called_number("22"))
    client.send(frame(m.encode(req)))
    conf = m.decode(await client.frame())
    assert conf.get_int("info") == 0
    ((access, setup),) = server.uplinked
    assert (access, setup.type, setup.called) == ("bri1", MsgType.SETUP, "22")
    client.writer.close()
    await asyncio.wait_for(client.writer.wait_closed(), 5)
    # the application is gone: the firmware clears its call toward the network
    for _ in range(100):
        if len(server.uplinked) > 1:
            break
        await asyncio.sleep(0.01)
    assert server.uplinked[-1][1].type is MsgType.DISCONNECT


async def test_lost_and_delayed_messages(server: RcapiServer) -> None:
    client = await connect(server)
    client.send(REGISTER)
    await client.frame()
    server.lose_messages(1)
    client.send(frame(m.encode(m.message(C.LISTEN, S.REQ, 1, controller=1))))
    client.send(frame(m.encode(m.message(C.LISTEN, S.REQ, 2, controller=1))))
    assert m.decode(await client.frame()).number == 2  # #1's CONF was lost
    server.delay_messages(1, 0.2)
    loop = asyncio.get_running_loop()
    began = loop.time()
    client.send(frame(m.encode(m.message(C.LISTEN, S.REQ, 3, controller=1))))
    client.send(frame(m.encode(m.message(C.LISTEN, S.REQ, 4, controller=1))))
    assert [m.decode(await client.frame()).number for _ in range(2)] == [3, 4]  # order kept
    assert loop.time() - began >= 0.19


def test_port_65535_is_refused() -> None:
    with pytest.raises(ValueError, match="65535"):
        RcapiServer(SPECS, port=65535)


# --------------------------------------------------------- through the real libcapi20


def test_the_real_library_registers_and_reads_identity(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        capilib.check_shm()
        ctypes.CDLL(capilib.LIBRARY_NAME)
    except (DriverNotAvailable, OSError):
        pytest.skip("Debian package libcapi20-3 is missing or /dev/shm is not writable")
    sim = ThreadedRcapiServer(lambda: RcapiServer(SPECS, identity=Identity(
        "test-card", (2, 0, 3, 4), "1234567")))
    port = sim.start()
    (tmp_path / ".capi20rc").write_text(capilib.capi20rc_text("rcapi", "127.0.0.1", port))
    monkeypatch.setenv("HOME", str(tmp_path))
    lib = capilib.load()
    appl = None
    try:
        lib.isinstalled()
        appl = lib.register(2, 7, 2048)
        assert appl > 0
        assert lib.number_of_controllers() == 2
        assert lib.get_profile(1).global_options & 0x10
        assert not lib.get_profile(2).global_options & 0x10
        with pytest.raises(CapiError) as exc:
            lib.get_profile(5)
        assert exc.value.info == 0x2002 and exc.value.call == "capi20_get_profile"
        assert lib.get_manufacturer(1) == "test-card"
        assert lib.get_version(1) == (2, 0, 3, 4)
        assert lib.get_serial_number(1) == "1234567"
        lib.put_message(appl, m.encode(m.message(C.LISTEN, S.REQ, 3, controller=1)))
        assert lib.waitformessage(appl, 5.0)
        raw = lib.get_message(appl)
        assert raw is not None
        conf = m.decode(raw)
        assert (conf.name, conf.number, conf.appl_id) == ("LISTEN_CONF", 3, appl)
        assert not lib.waitformessage(appl, 0.05)  # nothing else queued
        lib.release(appl)
        released, appl = appl, None
        with pytest.raises(CapiError) as exc:
            lib.put_message(released, m.encode(m.message(C.LISTEN, S.REQ, 4, controller=1)))
        assert exc.value.info == 0x1101  # illegal ApplID (capi.md §10)
    finally:
        if appl is not None:
            lib.release(appl)
        sim.stop()
