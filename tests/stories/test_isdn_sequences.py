"""The remaining ETSI CCBS sequences (etsi-ccbs.md §5.2, §5.4-§5.7) as end-to-end
stories: the REAL ccbsd (child process) reaches the simulated exchange only through
the real libcapi20 (loopback TCP to the rcapi server) and the phones only through the
pty bridge; requests live in real SQLite. Network timers (T-RETENTION, T-CCBS2,
T-CCBS3, T-CCBS5) and the daemon's timers are shortened per story.

Every PTMP sequence runs on both CAPI routes: the card's supplementary services
(facility selector 3, the firmware speaks ROSE) and raw Facility IEs (ccbsd encodes
ROSE itself). Each story asserts what a user or the network observes: tones and rings
in the bridge's command log, Facility operations in the exchange's log, the
exchange's CC records, ``ccbsctl`` output and the daemon's request history.

Already told elsewhere and not repeated here: §5.1 + §5.3 activation -> recall on both
routes and CCBS-T, §5.4 A busy at B-free, a network refusal on the supplementary
route (test_isdn.py); kill -9 at every point of an ISDN lifecycle including the
CCBSInterrogate after a restart (test_crash.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from ccbs_isdn.drivers.sim.box import BoxConfig, BoxController, BoxSubscriber, SimBox
from ccbs_isdn.drivers.sim.demo import Stage
from ccbs_isdn.drivers.sim.network.timers import NetworkTimers
from ccbs_isdn.drivers.sim.q931 import Q931, MsgType

from ccbs_isdn.isdn import BEARER_SPEECH
from ccbs_isdn.rose import types as rt
from ccbs_isdn.rose.codec import Invoke
from ccbs_isdn.rose.facility import Facility, encode_contents
from ccbs_isdn.rose.operations import Operation

from .conftest import (
    _FAILED,
    ANNA,
    EXTERNAL_BUSY,
    EXTERNAL_FREE,
    HOOK,
    MSNS,
    STATIONS,
    TIMERS,
)

pytestmark = pytest.mark.integration

#: a second busy external number (a second request from the same access)
OTHER_BUSY = "305555"
CTRL = "ctrl1"
#: the network timers every story starts from (seconds); a story shortens more
NETWORK = {"t_ccbs1": 1.0, "t_destination_poll": 1.0}

PTMP_ROUTES = [pytest.param("supplementary", id="supplementary"),
               pytest.param("raw", id="raw")]

Make = Callable[..., Awaitable[Stage]]


@pytest.fixture
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    """``await make(route=..., ptp=..., timers={daemon}, network={network timers},
    retention=..., max_requests=..., extra=toml)``: a box with four phones, three
    external subscribers and a running ccbsd; closed after the test."""
    stages: list[Stage] = []

    async def build(*, route: str = "supplementary", ptp: bool = False,
                    timers: dict[str, float] | None = None,
                    network: dict[str, float] | None = None, retention: bool = False,
                    max_requests: int = 5, extra: str = "") -> Stage:
        config = BoxConfig(
            controllers=(BoxController(1, MSNS, ptp=ptp, route=route,
                                       max_requests=max_requests),),
            subscribers=(BoxSubscriber(EXTERNAL_BUSY, busy=True),
                         BoxSubscriber(OTHER_BUSY, busy=True),
                         BoxSubscriber(EXTERNAL_FREE)),
            timers=NetworkTimers(**{**NETWORK, **(network or {})}),
            retention=retention,
        )
        stage = Stage(config, STATIONS, timers={**TIMERS, **(timers or {})}, hook=HOOK,
                      extra=extra, log_level="debug")
        stages.append(stage)
        await stage.open()
        return stage

    yield build
    for stage in stages:
        if request.node.stash.get(_FAILED, False):
            print(f"---- ccbsd log ({stage.root}) ----\n{stage.ccbsd.log()[-8000:]}")
            print("---- box timeline ----")
            for e in stage.box.timeline[-120:]:
                print(f"{e.t:10.3f} {e.source:>8}  {e.text}")
        await stage.close()


# ------------------------------------------------------------------ story steps


async def activated(stage: Stage, number: str = EXTERNAL_BUSY, port: int = 1
                    ) -> dict[str, Any]:
    """The phone on ``port`` calls ``number`` (busy), presses 5, hears the confirm tone
    and hangs up: the daemon's Activated request."""
    phone = stage.box.phone(port)
    await stage.call_busy(phone, "0" + number + "#")
    await stage.activate(phone, method="digit")
    request = await stage.pending(STATIONS[port - 1].ext, number)
    await stage.hang_up(phone)
    assert request["route"] == "isdn" and request["state"] == "Activated", request
    return request


async def ended(stage: Stage, request_id: int, timeout: float = 20.0) -> dict[str, Any]:
    """Until the request is no longer active; then its record (``ccbsctl --json show``,
    the real CLI: what an administrator sees)."""
    await stage.until(lambda st: all(r["id"] != request_id for r in st["requests"]),
                      timeout, f"request {request_id} ends")
    doc: dict[str, Any] = await stage.ccbsd.ctl_json("show", str(request_id))
    assert doc["active"] is False
    return doc


async def freed(stage: Stage, number: str = EXTERNAL_BUSY) -> int:
    """The external party hangs up and is free; returns the bridge log position."""
    since = stage.mark()
    b = stage.box.subscriber(number)
    b.hang_up()
    b.free()
    return since


def log_since(box: SimBox, start: int, contains: str) -> list[str]:
    return [line for line in box.exchange_log()[start:] if contains in line]


async def retained(box: SimBox) -> None:
    """Until the busy call is cleared and the network runs T-RETENTION for its
    CallLinkageID (what follows on the wire is call-independent)."""
    await box.wait_for(lambda: any(lk.retained
                                   for lk in box.exchange(lambda ex, now: ex.linkages(CTRL),
                                                          notify=False)),
                       10, "T-RETENTION running")


async def failed_request(stage: Stage, target: str) -> dict[str, Any]:
    """The last request toward ``target`` that ended Failed, from the event backlog."""
    events = (await stage.ccbsd.call("events", last=500))["events"]
    found = [e for e in events if e.get("event") == "failed" and e.get("target") == target]
    assert found, f"no failed request toward {target} in {events[-20:]}"
    return dict(found[-1])



class HookSink:
    """The far end of the notification command hook ([notify] command): the hook
    writes one line per notification into a FIFO that the test reads as the lines
    arrive (``loop.add_reader``), so waiting for a notification is event-driven."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "notify.fifo"
        os.mkfifo(self.path)
        self._read_fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        # our own writer keeps the FIFO from reporting EOF between two hook runs
        self._keep_fd = os.open(self.path, os.O_WRONLY)
        self.lines: list[str] = []
        self._partial = b""
        self._arrived = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._read_fd, self._read)

    def toml(self) -> str:
        """The ``[notify]`` section: event, id, state and reason of every notification."""
        script = (f'printf "%s %s %s %s\\n" "$CCBS_EVENT" "$CCBS_ID" "$CCBS_STATE" '
                  f'"$CCBS_REASON" > {shlex.quote(str(self.path))}')
        return f"\n[notify]\ncommand = [\"/bin/sh\", \"-c\", {json.dumps(script)}]\n"

    def _read(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._partial += os.read(self._read_fd, 65536)
        *complete, self._partial = self._partial.split(b"\n")
        self.lines.extend(line.decode() for line in complete)
        self._arrived.set()

    async def wait(self, prefix: str, timeout: float = 15.0) -> str:
        """The first line starting with ``prefix`` (waits for it)."""
        async def arrived() -> str:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                self._arrived.clear()
                await self._arrived.wait()

        try:
            return await asyncio.wait_for(arrived(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no notification {prefix!r}; got {self.lines}") from None

    def close(self) -> None:
        self._loop.remove_reader(self._read_fd)
        os.close(self._read_fd)
        os.close(self._keep_fd)


@pytest.fixture
async def hook(tmp_path: Path) -> AsyncIterator[HookSink]:
    sink = HookSink(tmp_path)
    yield sink
    sink.close()


class OtherTerminal:
    """A second ISDN terminal on the S0 bus of controller 1 (EN 300 359-1 PTMP: every
    terminal sees the network's broadcasts on the dummy call reference). It speaks
    Q.931 to the exchange directly; the network's answers to its own call reach it on
    its own data link, so the box's card never sees them (``deliver`` splits them off
    by call reference)."""

    CR = 0x3F  # a user call reference the card (0x01..) does not reach in a story

    def __init__(self, box: SimBox) -> None:
        self.box = box
        self.received: list[Q931] = []
        card = box.rcapi.controllers[1].from_network

        def deliver(msg: Q931) -> None:
            if msg.cr == self.CR:
                self.received.append(msg)
            else:
                card(msg)

        box.exchange(lambda ex, now: ex.attach(CTRL, deliver))

    def accept_recall(self, reference: int, called: str, calling: str) -> None:
        """The user of this terminal takes the recall: SETUP with CCBSCall(R) (§5.3)."""
        ie = encode_contents(Facility((Invoke(0x7E, Operation.CCBSCall,
                                              rt.CCBSCallArg(reference)),)))
        msg = Q931(MsgType.SETUP, self.CR, False, called=called, calling=calling,
                   bearer=BEARER_SPEECH, facility=(ie,))
        self.box.note("phone", f"another terminal on the bus takes the recall {reference}")
        self.box.exchange(lambda ex, now: ex.from_user(CTRL, msg, now))

    def connected(self) -> bool:
        return any(m.type is MsgType.CONNECT for m in self.received)


# ======================================================== §5.2 activation refused


@pytest.mark.parametrize("route", PTMP_ROUTES)
async def test_the_network_never_answers_the_request(make: Make, route: str) -> None:
    """§5.2: CCBSRequest goes out, the network accepts it but its answer is lost on
    the D channel. After T-ACTIVATE Anna hears the reject tone; the request is Failed
    with the reason activation-timeout, for ccbsctl as for the event stream."""
    stage = await make(route=route, timers={"t_activate": 1.0})
    box = stage.box
    anna = box.phone(1)
    await stage.call_busy(anna, "0" + EXTERNAL_BUSY + "#")
    await retained(box)
    box.exchange(lambda ex, now: ex.lose_messages(CTRL, 1))
    await stage.activate(anna, method="digit", expect="REJECT")
    assert len(box.exchange_log("lost (fault injection)")) == 1
    assert box.exchange_log("result CCBSRequest("), "the network did accept it"
    failed = await failed_request(stage, EXTERNAL_BUSY)
    assert failed["reason"] == "activation-timeout"
    doc = await ended(stage, failed["id"])
    assert (doc["state"], doc["reason"]) == ("Failed", "activation-timeout")
    assert [h["event"] for h in doc["history"]][-1] == "t_activate"
    code, text, _ = await stage.ccbsd.ctl("show", str(failed["id"]))
    assert code == 0 and "Failed" in text and "activation-timeout" in text
    await stage.hang_up(anna)
    assert not (await stage.status())["requests"]


@pytest.mark.parametrize("route", [
    pytest.param("supplementary", id="supplementary"),
    pytest.param("raw", id="raw"),
])
async def test_an_orphaned_network_request_is_never_answered(make: Make, route: str) -> None:
    """§5.2/§6: the network activated a request whose result never reached ccbsd (the
    activation failed by T-ACTIVATE). When B frees, the network polls A with
    CCBSStatusRequest; ccbsd must not answer for a reference it does not hold
    (etsi-ccbs.md §6), so after three silent rounds of T-CCBS1 (here 3.5 s, above the
    driver's 3 s status timeout, as with the standard 4 s) the network erases it.
    Nobody is rung."""
    stage = await make(route=route, timers={"t_activate": 1.0}, network={"t_ccbs1": 3.5})
    box = stage.box
    anna = box.phone(1)
    await stage.call_busy(anna, "0" + EXTERNAL_BUSY + "#")
    await retained(box)
    box.exchange(lambda ex, now: ex.lose_messages(CTRL, 1))
    await stage.activate(anna, method="digit", expect="REJECT")
    await stage.hang_up(anna)
    (orphan,) = box.cc_records(CTRL)
    assert orphan.state == "activated"

    start = len(box.exchange_log())
    await freed(stage)
    await box.wait_for(lambda: bool(log_since(box, start, "unanswered (1/3)")
                                    or log_since(box, start, "CCBSBFree")),
                       10, "the first round of T-CCBS1")
    assert not log_since(box, start, "result CCBSStatusRequest"), \
        "ccbsd answered a status request for a reference it does not hold"
    await box.wait_for(lambda: not box.cc_records(CTRL), 15, "the network gives up")
    assert log_since(box, start, "CCBSStatusRequest unanswered (3/3)")
    assert not box.rings(1), "nobody is recalled for a request that failed"


@pytest.mark.parametrize("route", PTMP_ROUTES)
async def test_the_network_refuses_with_a_readable_reason(make: Make, route: str) -> None:
    """§5.2 return errors: the B side refuses (shortTermDenial), then A's outgoing
    queue at the network is full (outgoingCCBSQueueFull: this access may hold one
    request). Each time the user hears the reject tone and ccbsctl names the ETSI
    error; the refused requests leave nothing behind."""
    stage = await make(route=route, max_requests=1)
    box = stage.box
    anna, bert = box.phone(1), box.phone(2)

    box.exchange(lambda ex, now: ex.refuse_requests_to(EXTERNAL_BUSY, "shortTermDenial"))
    await stage.call_busy(anna, "0" + EXTERNAL_BUSY + "#")
    await stage.activate(anna, method="digit", expect="REJECT")
    await stage.hang_up(anna)
    first = await failed_request(stage, EXTERNAL_BUSY)
    doc = await ended(stage, first["id"])
    assert (doc["state"], doc["reason"]) == ("Failed", "network:shortTermDenial")
    assert box.exchange_log("error shortTermDenial")

    box.exchange(lambda ex, now: ex.refuse_requests_to(EXTERNAL_BUSY, None))
    granted = await activated(stage)  # the one request the access may hold

    await stage.call_busy(bert, "0" + OTHER_BUSY + "#")
    await stage.activate(bert, method="digit", expect="REJECT")
    await stage.hang_up(bert)
    second = await failed_request(stage, OTHER_BUSY)
    code, text, _ = await stage.ccbsd.ctl("show", str(second["id"]))
    assert code == 0 and "network:outgoingCCBSQueueFull" in text
    assert box.exchange_log("error outgoingCCBSQueueFull")

    status = await stage.ccbsd.ctl_json("status")
    assert [r["id"] for r in status["requests"]] == [granted["id"]]
    assert [r.b_number for r in box.cc_records(CTRL)] == [EXTERNAL_BUSY]


@pytest.mark.parametrize("route", PTMP_ROUTES)
async def test_an_offer_not_taken_up_is_erased_after_t_retention(make: Make,
                                                                route: str) -> None:
    """§5.2 "no request at all": Anna hears busy and simply hangs up. The network
    keeps the CallLinkageID for T-RETENTION, then broadcasts EraseCallLinkageID; the
    daemon's offer ends (linkage-erased) and nothing is left on either side."""
    stage = await make(route=route, network={"t_retention": 1.5})
    box = stage.box
    anna = box.phone(1)
    await stage.call_busy(anna, "0" + EXTERNAL_BUSY + "#")
    status = await stage.until(lambda st: any(r["state"] == "Available"
                                              for r in st["requests"]), 10, "the CC offer")
    (offer,) = status["requests"]
    assert (offer["caller"], offer["target"]) == (ANNA, EXTERNAL_BUSY)
    await stage.hang_up(anna)
    doc = await ended(stage, offer["id"])
    assert (doc["state"], doc["reason"]) == ("Cancelled", "linkage-erased")
    assert box.exchange_log("T-RETENTION expired")
    assert box.exchange_log("EraseCallLinkageID(")
    assert not box.exchange_log("CCBSRequest(")
    assert not box.exchange(lambda ex, now: ex.linkages(CTRL), notify=False)
    assert not box.cc_records(CTRL)
    await stage.code(anna, "*#37#", "REJECT")  # Anna: nothing pending


@pytest.mark.parametrize("route", PTMP_ROUTES)
async def test_asking_twice_for_the_same_number_refreshes(make: Make, route: str) -> None:
    """One request per (A, B) (product.md): Anna hears busy from the same number again
    and presses 5 again. She hears the confirm tone, but no second CCBSRequest goes
    out (the network would refuse it with cCBSIsAlreadyActivated): the request she
    has is refreshed."""
    stage = await make(route=route)
    box = stage.box
    request = await activated(stage)
    again = await activated(stage)
    assert (again["id"], again["reference"]) == (request["id"], request["reference"])
    assert again["expires"] > request["expires"]
    status = await stage.ccbsd.ctl_json("status")
    assert [(r["id"], r["state"]) for r in status["requests"]] == [(request["id"],
                                                                    "Activated")]
    history = await stage.history(request["id"])
    assert [h["event"] for h in history["history"]].count("refresh") == 1
    assert len(box.exchange_log("U->N FACILITY cr=dummy {CCBSRequest(")) == 1
    assert len(box.exchange_log("CallInfoRetain(")) == 2
    assert len(box.cc_records(CTRL)) == 1


# ========================================================= §5.4 A never answers


@pytest.mark.parametrize("route", PTMP_ROUTES)
async def test_no_status_answers_three_times_erases_the_request(make: Make,
                                                               route: str) -> None:
    """§5.4 tail: B frees, the network asks A's status, but ccbsd's answers never
    reach the network. After three silent rounds of T-CCBS1 it sends
    CCBSErase(normal-unspecified): the request ends with that reason and Anna is
    never rung."""
    stage = await make(route=route)
    box = stage.box
    request = await activated(stage)
    box.exchange(lambda ex, now: ex.ignore_status_answers(CTRL))
    start = len(box.exchange_log())
    await freed(stage)
    doc = await ended(stage, request["id"])
    assert (doc["state"], doc["reason"]) == ("Cancelled", "erase:normal-unspecified")
    assert log_since(box, start, "CCBSStatusRequest unanswered (3/3)")
    # ccbsd answered every round (free, or busy while it had not yet seen Anna's
    # on-hook report): the network heard none of it
    answers = log_since(box, start, "U->N FACILITY cr=dummy {result CCBSStatusRequest(")
    assert len(answers) >= 3, answers
    assert log_since(box, start, "erase_reason=normal-unspecified")
    assert not box.rings(1)
    assert not box.cc_records(CTRL)


# ============================================== §5.5 recall not taken / recall fails


@pytest.mark.parametrize("route", PTMP_ROUTES)
async def test_recall_not_taken_up_within_t_ccbs3(make: Make, route: str) -> None:
    """§5.5: RemoteUserFree, Anna's phone rings, she does not lift. The network waits
    T-CCBS3 for the CCBSCall, then sends CCBSErase(t-CCBS3-timeout): the ring stops
    and the request ends Failed (the engine does not retry once the network erased
    it)."""
    stage = await make(route=route, timers={"a_answer": 15.0}, network={"t_ccbs3": 2.0})
    box = stage.box
    anna = box.phone(1)
    request = await activated(stage)
    since = await freed(stage)
    await stage.recall_ring(anna, since=since, clip=EXTERNAL_BUSY)
    await stage.command("AT%RINGSTOP=1", since=since, timeout=10)
    await box.wait_for(lambda: not anna.ringing, 5, "Anna's phone stops ringing")
    doc = await ended(stage, request["id"])
    assert (doc["state"], doc["reason"]) == ("Failed", "erase:t-ccbs3-timeout")
    assert box.exchange_log("T-CCBS3 expired")
    assert box.exchange_log("erase_reason=t-CCBS3-timeout")
    assert not box.exchange_log("CCBSCall(")
    assert len(anna.rings(cadence=1)) == 1
    assert not box.cc_records(CTRL)


@pytest.mark.parametrize("route", PTMP_ROUTES)
async def test_a_missed_recall_is_rung_again_while_the_network_waits(make: Make,
                                                                     route: str) -> None:
    """§5.5 with the product's retry: Anna misses the first recall ring; while T-CCBS3
    still runs the daemon rings her again after the retry pause; she answers and the
    recall call (CCBSCall) connects."""
    stage = await make(route=route, timers={"a_answer": 1.0, "recall_retry": 0.5})
    box = stage.box
    anna, b = box.phone(1), box.subscriber(EXTERNAL_BUSY)
    request = await activated(stage)
    since = await freed(stage)
    await stage.recall_ring(anna, since=since, clip=EXTERNAL_BUSY)
    await box.wait_for(lambda: not anna.ringing, 5, "the first ring times out")
    second = stage.mark()
    await stage.recall_ring(anna, since=second, clip=EXTERNAL_BUSY)
    anna.answer()
    await box.wait_for(lambda: b.in_call(), 10, "the recall call is connected")
    doc = await ended(stage, request["id"])
    assert (doc["state"], doc["reason"]) == ("Completed", "recalled")
    assert len(anna.rings(cadence=1)) == 2
    assert len(box.exchange_log("CCBSCall(")) == 1
    assert box.exchange_log("ended: recall answered")
    assert box.exchange_log("erase_reason=normal-unspecified")


@pytest.mark.parametrize("route", PTMP_ROUTES)
@pytest.mark.parametrize("retention", [pytest.param(False, id="erased"),
                                       pytest.param(True, id="retained")])
async def test_the_recall_call_finds_b_busy_again(make: Make, route: str,
                                                  retention: bool) -> None:
    """§5.5: Anna answers the recall, but B was taken meanwhile: the recall SETUP is
    cleared with #17 and Anna hears busy. Without retention the network sends
    CCBSErase(basic-call-failed) and the request ends Failed; with retention it stays
    queued, and the next time B frees Anna is recalled and connected."""
    stage = await make(route=route, retention=retention)
    box = stage.box
    anna, b = box.phone(1), box.subscriber(EXTERNAL_BUSY)
    request = await activated(stage)
    since = await freed(stage)
    await stage.recall_ring(anna, since=since, clip=EXTERNAL_BUSY)
    b.busy()  # somebody else reached B first
    anna.answer()
    await stage.command("AT%TONE=1,BUSY", since=since, timeout=10)
    assert len(box.exchange_log("CCBSCall(")) == 1
    assert box.exchange_log("cause=#17")
    if not retention:
        doc = await ended(stage, request["id"])
        assert (doc["state"], doc["reason"]) == ("Failed", "erase:basic-call-failed")
        assert box.exchange_log("erase_reason=basic-call-failed")
        assert not box.cc_records(CTRL)
        await stage.hang_up(anna)
        return
    status = await stage.until(lambda st: any(r["id"] == request["id"]
                                              and r["state"] == "Activated"
                                              for r in st["requests"]), 10,
                               "back to Activated")
    assert status["requests"][0]["reference"] == request["reference"]
    assert [r.state for r in box.cc_records(CTRL)] == ["activated"]
    assert not box.exchange_log("CCBSErase(")
    await stage.hang_up(anna)
    since = await freed(stage)
    await stage.recall_ring(anna, since=since, clip=EXTERNAL_BUSY)
    anna.answer()
    await box.wait_for(lambda: b.in_call(), 10, "the second recall is connected")
    doc = await ended(stage, request["id"])
    assert (doc["state"], doc["reason"]) == ("Completed", "recalled")
    assert len(box.exchange_log("CCBSCall(")) == 2


@pytest.mark.parametrize("route", PTMP_ROUTES)
async def test_another_terminal_takes_the_recall(make: Make, route: str) -> None:
    """§5.3 globalRecall: another ISDN terminal on the same bus accepts the recall
    (its SETUP carries CCBSCall(R)); the network tells every terminal
    CCBSStopAlerting: Anna's recall ring stops at once and the request is back in
    Activated (§6 WaitCallback -> Activated). When that call reaches B the network
    erases the request; for the box it ends without a call of its own."""
    stage = await make(route=route, timers={"a_answer": 15.0})
    box = stage.box
    anna, b = box.phone(1), box.subscriber(EXTERNAL_BUSY)
    other = OtherTerminal(box)
    request = await activated(stage)
    b.answers(True, delay=3.0)  # B's phone rings a while before B takes that call
    since = await freed(stage)
    await stage.recall_ring(anna, since=since, clip=EXTERNAL_BUSY)
    other.accept_recall(int(request["reference"]), EXTERNAL_BUSY, "5551")
    await stage.command("AT%RINGSTOP=1", since=since, timeout=10)
    await box.wait_for(lambda: not anna.ringing, 5, "Anna's phone stops ringing")
    assert box.exchange_log("CCBSStopAlerting(")
    assert not box.exchange_log("CCBSErase("), "the ring stopped on StopAlerting alone"
    status = await stage.status()
    assert [(r["id"], r["state"]) for r in status["requests"]] == \
        [(request["id"], "Activated")]
    await box.wait_for(lambda: other.connected() and b.in_call(), 10,
                       "the other terminal talks to B")
    doc = await ended(stage, request["id"])
    assert (doc["state"], doc["reason"]) == ("Cancelled", "erase:normal-unspecified")
    events = [h["event"] for h in doc["history"]]
    assert events[-2:] == ["stop_alerting", "erase_normal"], events
    assert box.exchange_log("U->N SETUP cr=0x3f") and len(box.exchange_log("CCBSCall(")) == 1
    assert len(anna.rings(cadence=1)) == 1 and not anna.off_hook
    assert not box.cc_records(CTRL)


# ===================================================== §5.6 cancel, expiry, erase


@pytest.mark.parametrize("route", PTMP_ROUTES)
async def test_ccbsctl_cancel_deactivates_at_the_network(make: Make, route: str) -> None:
    """§5.6: the administrator runs ``ccbsctl cancel ID``: CCBSDeactivate(R) goes on
    the wire, the network ends its record, the request is Cancelled. B freeing later
    rings nobody."""
    stage = await make(route=route)
    box = stage.box
    request = await activated(stage)
    rid = str(request["id"])
    code, out, err = await stage.ccbsd.ctl("cancel", rid)
    assert (code, out.strip()) == (0, f"cancelled 1 request(s): {rid}"), err
    await box.wait_for(lambda: not box.cc_records(CTRL), 10, "the network ends it")
    assert box.exchange_log(f"CCBSDeactivate(ccbs_reference={request['reference']})")
    assert box.exchange_log("ended: deactivated")
    doc = await ended(stage, request["id"])
    assert doc["state"] == "Cancelled"
    assert doc["history"][-1]["event"] == "cancel"
    assert doc["history"][-1]["actor"].startswith("ctl:")
    assert not (await stage.ccbsd.ctl_json("status"))["requests"]
    await freed(stage)
    code, _, err = await stage.ccbsd.ctl("cancel", rid)
    assert code == 1 and "no matching pending request" in err
    assert not box.rings(1)


@pytest.mark.parametrize("route", PTMP_ROUTES)
async def test_t_ccbs2_expiry_at_the_network(make: Make, route: str,
                                             hook: HookSink) -> None:
    """§5.6 "service duration over": B stays busy; T-CCBS2 (shortened to 3 s at the
    network; the daemon's own watchdog is longer) expires, the network sends
    CCBSErase(t-CCBS2-timeout): the request is Expired and the notification hook
    reports it."""
    stage = await make(route=route, network={"t_ccbs2": 3.0}, extra=hook.toml())
    box = stage.box
    request = await activated(stage)
    assert (await hook.wait("activated ")).split()[1] == str(request["id"])
    line = await hook.wait("expired ")
    assert line == f"expired {request['id']} Expired erase:t-ccbs2-timeout"
    doc = await ended(stage, request["id"])
    assert (doc["state"], doc["reason"]) == ("Expired", "erase:t-ccbs2-timeout")
    assert box.exchange_log("T-CCBS2 expired")
    assert box.exchange_log("erase_reason=t-CCBS2-timeout")
    assert not box.cc_records(CTRL)
    assert not box.exchange_log("CCBSDeactivate(")


@pytest.mark.parametrize("route", PTMP_ROUTES)
async def test_the_network_erases_the_request_for_another_reason(make: Make,
                                                                route: str) -> None:
    """§5.6: the network cancels the request itself (the B side gave up, an operator):
    CCBSErase(normal-unspecified) ends it at the box with that reason."""
    stage = await make(route=route)
    box = stage.box
    request = await activated(stage)
    assert box.exchange(lambda ex, now: ex.cancel_request(CTRL, request["reference"], now))
    doc = await ended(stage, request["id"])
    assert (doc["state"], doc["reason"]) == ("Cancelled", "erase:normal-unspecified")
    assert doc["history"][-1]["actor"] == "network"
    assert box.exchange_log("erase_reason=normal-unspecified")
    assert not box.exchange_log("CCBSDeactivate(")


@pytest.mark.parametrize("route", PTMP_ROUTES)
async def test_a_restart_interrogates_the_network(make: Make, route: str) -> None:
    """§5.6 interrogation: ccbsd is restarted (SIGTERM, start) while a request is
    Activated: it asks the network with CCBSInterrogate and keeps the request, same
    id, same reference. Then, while ccbsd is stopped, the network drops the request;
    the interrogation after the next start tells, and the request ends
    (network-lost). test_crash.py does the same with kill -9 on the default route."""
    stage = await make(route=route)
    box = stage.box
    request = await activated(stage)
    start = len(box.exchange_log())
    await stage.start_daemon()
    await box.wait_for(lambda: bool(log_since(box, start, "result CCBSInterrogate")), 10,
                       "CCBSInterrogate answered")
    assert log_since(box, start, "U->N FACILITY cr=dummy {CCBSInterrogate(")
    again = await stage.pending(ANNA, EXTERNAL_BUSY)
    assert (again["id"], again["state"], again["reference"]) == \
        (request["id"], "Activated", request["reference"])

    await stage.ccbsd.stop()
    assert box.exchange(lambda ex, now: ex.cancel_request(CTRL, request["reference"], now))
    start = len(box.exchange_log())
    await stage.start_daemon()
    doc = await ended(stage, request["id"])
    assert (doc["state"], doc["reason"]) == ("Cancelled", "network-lost")
    assert log_since(box, start, "CCBSInterrogate(")


# ================================================================== §5.7 CCBS-T


async def test_ccbs_t_cancel_clears_the_register_connection(make: Make) -> None:
    """§5.7 on a point-to-point access: ``ccbsctl cancel ID`` clears the CC signalling
    connection (REGISTER); the network ends the request."""
    stage = await make(route="raw", ptp=True)
    box = stage.box
    request = await activated(stage)
    (record,) = box.cc_records(CTRL)
    assert record.ptp
    assert box.exchange_log("U->N REGISTER")
    code, out, _ = await stage.ccbsd.ctl("cancel", str(request["id"]))
    assert code == 0 and out.startswith("cancelled 1 request(s)")
    await box.wait_for(lambda: not box.cc_records(CTRL), 10, "the network ends it")
    assert box.exchange_log("ended: CC connection cleared by the user")
    doc = await ended(stage, request["id"])
    assert doc["state"] == "Cancelled"


async def test_ccbs_t_t_ccbs5_at_the_network_ends_the_request(make: Make) -> None:
    """§5.7: T-CCBS5 runs out at the network (shortened to 2 s): it clears the CC
    connection (cause #102); the request ends at the box (connection-cleared)."""
    stage = await make(route="raw", ptp=True, network={"t_ccbs5": 2.0})
    box = stage.box
    request = await activated(stage)
    doc = await ended(stage, request["id"])
    assert (doc["state"], doc["reason"]) == ("Cancelled", "connection-cleared")
    assert box.exchange_log("T-CCBS5/T-CCNR5 expired")
    assert box.exchange_log("N->U DISCONNECT") and box.exchange_log("cause=#102")
    assert not box.cc_records(CTRL)


@pytest.mark.parametrize("route", PTMP_ROUTES)
async def test_the_local_supervision_expires_first(make: Make, route: str,
                                                   hook: HookSink) -> None:
    """etsi-ccbs.md §4/§6: the daemon's own T-CCBS2 watchdog (shortened to 2 s, the
    network's is long) ends the request: CCBSDeactivate(R) goes on the wire, the
    network ends its record, the request is Expired and the hook reports it."""
    stage = await make(route=route, timers={"t_ccbs2": 2.0}, extra=hook.toml())
    box = stage.box
    request = await activated(stage)
    line = await hook.wait("expired ")
    assert line.startswith(f"expired {request['id']} Expired")
    doc = await ended(stage, request["id"])
    assert doc["state"] == "Expired"
    assert (doc["history"][-1]["event"], doc["history"][-1]["actor"]) == ("lifetime", "timer")
    await box.wait_for(lambda: not box.cc_records(CTRL), 10, "the network ends it")
    assert box.exchange_log(f"CCBSDeactivate(ccbs_reference={request['reference']})")
    assert box.exchange_log("ended: deactivated")
    assert not box.exchange_log("T-CCBS2 expired")
