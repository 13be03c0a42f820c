"""The service seam in one process: config → engine policy/directory, the event bus,
persist-then-act with the real engine and the real SQLite store, a store that stops
writing, and the CAPI trace seam."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ccbs_isdn.config import config_from_dict
from ccbs_isdn.engine.policy import CallerRecallMode
from ccbs_isdn.errors import RequestRefused, StoreError
from ccbs_isdn.runtime.service import (
    CcbsService,
    EventBus,
    TracingCapiLib,
    build_directory,
    build_policy,
)
from ccbs_isdn.runtime.trace import Tracer

VECTORS = Path("/work/shared/vectors/etsi-ccbs-vectors.json")


def make_config(tmp_path: Path, **sections: Any) -> Any:
    data: dict[str, Any] = {
        "daemon": {"state_dir": str(tmp_path / "state"),
                   "socket": str(tmp_path / "control.sock")},
        "fxs": {"ports": [{"port": 1, "extension": "21"}, {"port": 2, "extension": "22"},
                          {"port": 3, "extension": "23", "msn": "5551", "ctrl": 1},
                          {"port": 4, "extension": "24"}]},
        "capi": {"controllers": [{"ctrl": 1, "msns": ["5551"]}]},
        "policy": {"quiet_hours": ["00:00-12:00", "12:00-00:00"], "timezone": "Europe/Berlin",
                   "callers": [{"extension": "21", "recall_mode": "notify",
                                "max_requests": 2}]},
        "limits": {"per_caller": 4, "per_callee": 3, "global": 100},
        "timers": {"guard": 1.5, "a_answer": 15},
    }
    for name, value in sections.items():
        data[name] = {**data.get(name, {}), **value}
    return config_from_dict(data)


def test_policy_and_directory_come_from_the_config(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    policy = build_policy(config)
    assert (policy.max_per_caller, policy.max_per_callee, policy.max_global) == (4, 3, 100)
    assert policy.timers.guard == 1.5 and policy.timers.a_answer == 15
    assert policy.timers.t_ccbs2 == 2700
    assert policy.recall_mode_for("21") is CallerRecallMode.NOTIFY
    assert policy.recall_mode_for("22") is CallerRecallMode.AUTO
    assert policy.caller_limit("21") == 2 and policy.caller_limit("22") == 4
    assert str(policy.tz) == "Europe/Berlin"
    assert policy.quiet_hours[0].start == dt.time(0, 0)
    directory = build_directory(config)
    assert directory.port_of("22") == "fxs0/2"
    assert directory.ext("23").msn == "5551" and directory.ext("23").ctrl == 1
    assert directory.port_of("0301234567") is None


async def test_event_bus_backlog_and_followers() -> None:
    bus = EventBus(backlog=3)
    stream = bus.subscribe()
    first = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)  # let the subscriber register
    for n in range(5):
        bus.publish({"event": "x", "n": n})
    assert (await asyncio.wait_for(first, 5))["n"] == 0
    assert [e["n"] for e in bus.recent(10)] == [2, 3, 4]
    assert bus.recent(0) == []
    await stream.aclose()
    assert bus.followers == 0


async def test_a_follower_that_does_not_read_is_cut_off() -> None:
    from ccbs_isdn.runtime import service

    bus = EventBus()
    stream = bus.subscribe()
    first = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)
    for n in range(service.SUBSCRIBER_QUEUE + 5):
        bus.publish({"n": n})
    assert bus.followers == 0
    got = [await asyncio.wait_for(first, 5)]
    async for item in stream:
        got.append(item)
    assert got[-1]["event"] == "overflow"
    assert len(got) <= service.SUBSCRIBER_QUEUE + 1


@pytest.fixture
async def service(tmp_path: Path):
    svc = CcbsService(make_config(tmp_path))
    await svc.open()
    await svc.start(timeout=5)
    svc.drivers = {}  # no FXS/CAPI in this test: actions for them are logged
    yield svc
    await svc.stop()


async def test_request_is_persisted_before_the_reply(service: CcbsService,
                                                     tmp_path: Path) -> None:
    result = await service.request(caller="22", target="21", actor="ctl:test(0)")
    assert result["id"] == 1 and result["route"] == "local"
    # the store already has it: what the engine said was committed first
    from ccbs_isdn.runtime.store import RequestStore

    other = RequestStore.open(str(tmp_path / "state" / "requests.db"), read_only=True)
    try:
        assert other.get(1) is not None
        assert other.history(1)[0].actor == "ctl:test(0)"
    finally:
        other.close()
    shown = service.show("1")
    assert shown["history"][0]["event"] == "activate"
    assert [e["event"] for e in service.recent_events(10)][:1] == ["activate"]
    with pytest.raises(RequestRefused) as refused:
        await service.request(caller="22", target="0301234567", actor="t")
    assert refused.value.reason == "external-book"
    assert (await service.cancel(request_id="1", caller=None, everything=False,
                                 actor="t")) == {"cancelled": [1]}


async def test_per_caller_limit_from_the_config(service: CcbsService) -> None:
    # caller 21 has its own limit of 2 ([[policy.callers]] max_requests)
    await service.request(caller="21", target="22", actor="t")
    await service.request(caller="21", target="23", actor="t")
    with pytest.raises(RequestRefused) as refused:
        await service.request(caller="21", target="24", actor="t")
    assert refused.value.reason == "caller-limit"
    assert (await service.request(caller="22", target="24", actor="t"))["id"] == 3


class FailingStore:
    """The real store, but saving fails while ``full`` (disk full)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.full = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def save(self, changes: Any) -> None:
        if self.full:
            raise StoreError("database or disk is full", code="store-full")
        self.store.save(changes)


async def test_a_full_disk_refuses_new_requests_and_catches_up_later(
        service: CcbsService, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccbs_isdn")
    await service.request(caller="22", target="21", actor="t")
    failing = FailingStore(service.store)
    service.store = failing
    failing.full = True
    # the step that meets the full disk carries on in memory (nothing is lost: its
    # changes wait), and from then on the engine refuses new requests
    first = await service.request(caller="23", target="21", actor="t")
    assert first["id"] == 2
    assert "request store cannot write; refusing new requests" in caplog.text
    assert service.status()["daemon"]["store_writable"] is False
    with pytest.raises(RequestRefused) as refused:
        await service.request(caller="21", target="22", actor="t")
    assert refused.value.reason == "store-unavailable"
    # existing requests carry on
    await service.cancel(request_id="1", caller=None, everything=False, actor="t")
    failing.full = False
    await service.request(caller="21", target="23", actor="t")
    assert service.status()["daemon"]["store_writable"] is True
    assert failing.store.get(1).state == "Cancelled"  # the unsaved steps caught up
    assert failing.store.get(2) is not None
    assert "request store writable again" in caplog.text


class FakeLib:
    """Stands in for drivers.capi20.lib.CapiLib (unit test of the trace seam only)."""

    def __init__(self, incoming: list[bytes]) -> None:
        self.incoming = incoming
        self.sent: list[bytes] = []

    def put_message(self, appl_id: int, raw: bytes) -> None:
        self.sent.append(raw)

    def get_message(self, appl_id: int) -> bytes | None:
        return self.incoming.pop(0) if self.incoming else None

    def fileno(self, appl_id: int) -> int:
        return 42


def test_capi_messages_and_their_facility_ies_are_traced(tmp_path: Path) -> None:
    from ccbs_isdn.drivers.capi20 import messages as m
    from ccbs_isdn.drivers.capi20.tables import Command, Subcommand

    vectors = json.loads(VECTORS.read_text())["vectors"]
    vector = next(v for v in vectors if v["name"].startswith("CCBSRemoteUserFree_invoke"))
    contents = bytes.fromhex(vector["ie_contents_hex"])
    info_ind = m.encode(m.message(Command.INFO, Subcommand.IND, 7, address=1,
                                  info_number=0x001C, info_element=contents))
    listen = m.encode(m.message(Command.LISTEN, Subcommand.REQ, 1, controller=1,
                                info_mask=0x40, cip_mask=1))
    tracer = Tracer()
    lib = TracingCapiLib(FakeLib([info_ind, b"\x05\x00"]), tracer)
    lib.put_message(1, listen)  # not tracing yet: passes through, no file
    trace = tmp_path / "trace.log"
    tracer.start(str(trace))
    lib.put_message(1, listen)
    assert lib.get_message(1) == info_ind
    assert lib.get_message(1) == b"\x05\x00"  # garbage is traced, not raised
    assert lib.fileno(1) == 42  # everything else is the library's
    tracer.stop()
    lines = trace.read_text().splitlines()
    assert f"capi dir=tx hex={listen.hex()}" in lines[1] and "LISTEN_REQ" in lines[1]
    assert "INFO_IND #7" in lines[2]
    facility = lines[3]
    assert f" facility ctrl=1 dir=rx hex={contents.hex()} decoded=" in facility
    assert "CCBSRemoteUserFree" in facility
    assert "capi dir=rx hex=0500" in lines[4] and "error:" in lines[4]


def test_reload_keeps_the_engine(tmp_path: Path) -> None:
    async def run() -> None:
        svc = CcbsService(make_config(tmp_path))
        await svc.open()
        await svc.start(timeout=5)
        svc.drivers = {}
        try:
            await svc.request(caller="22", target="21", actor="t")
            engine = svc.engine
            new = make_config(tmp_path, limits={"per_caller": 1})
            await svc.apply(new)
            assert svc.engine is engine and len(svc.engine) == 1
            with pytest.raises(RequestRefused) as refused:
                await svc.request(caller="22", target="23", actor="t")
            assert refused.value.reason == "caller-limit"
            await svc.apply(replace(new, limits=replace(new.limits, per_caller=5)))
            assert (await svc.request(caller="22", target="23", actor="t"))["id"] == 2
        finally:
            await svc.stop()

    asyncio.run(run())


async def test_the_store_is_retried_without_new_events(
        service: CcbsService, monkeypatch: pytest.MonkeyPatch) -> None:
    from ccbs_isdn.runtime import service as service_module

    monkeypatch.setattr(service_module, "STORE_RETRY", 0.02)
    failing = FailingStore(service.store)
    service.store = failing
    failing.full = True
    await service.request(caller="22", target="21", actor="t")
    assert service.status()["daemon"]["store_writable"] is False
    failing.full = False

    async def recovered() -> None:
        while not service.status()["daemon"]["store_writable"]:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(recovered(), 10)
    assert failing.store.get(1) is not None
