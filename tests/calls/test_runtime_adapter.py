"""The runtime adapter of call control (runtime/callcontrol.py) with stand-in drivers
and a stand-in engine (a unit test of that one module): ordering and re-entrancy."""

from __future__ import annotations

import asyncio
from typing import Any

from ccbs_isdn.analog import contract as C
from ccbs_isdn.calls import DialPlan, Station
from ccbs_isdn.engine import actions as A
from ccbs_isdn.engine import events as E
from ccbs_isdn.errors import LinkDown
from ccbs_isdn.isdn import CallEnded, PlaceCall
from ccbs_isdn.runtime.callcontrol import CallControlLine

PLAN = DialPlan(stations=(Station("21", "fxs0/1", "5551", 1), Station("22", "fxs0/2")))


class FakeBridge:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.sent_event = asyncio.Event()

    async def send(self, cmd: C.AnalogCommand) -> None:
        self.sent.append(cmd.at())
        self.sent_event.set()

    async def wait_for(self, text: str) -> None:
        while text not in self.sent:
            self.sent_event.clear()
            await self.sent_event.wait()

    def port_status(self, port: int) -> C.PortStatus:
        return C.PortStatus(port)


class FakeCapi:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Any] = []
        self.fail = fail

    def send(self, cmd: Any) -> None:
        if self.fail:
            raise LinkDown("controller 1 is down")
        self.sent.append(cmd)


class Holder:
    def __init__(self, driver: Any) -> None:
        self.driver = driver


class Engine:
    """Answers Dialled synchronously with ClaimCall, like the real service does."""

    def __init__(self) -> None:
        self.line: CallControlLine | None = None
        self.seen: list[Any] = []
        self.depth = 0
        self.max_depth = 0

    def deliver(self, event: Any) -> None:
        self.depth += 1
        self.max_depth = max(self.max_depth, self.depth)
        self.seen.append(event)
        if isinstance(event, E.Dialled) and self.line is not None:
            # the service executes the engine's actions inside its step
            self.line.execute(A.ClaimCall(event.call_id, 7, cc_reference=5))
        self.depth -= 1


def make(capi: FakeCapi | None = None) -> tuple[CallControlLine, Engine, FakeBridge, FakeCapi]:
    engine = Engine()
    bridge, capi = FakeBridge(), capi or FakeCapi()
    line = CallControlLine(PLAN, engine.deliver, fxs=Holder(bridge), capi=Holder(capi))
    engine.line = line
    line.on_analog(C.BridgeUp(4, bridge="fxs0"))
    return line, engine, bridge, capi


def dial(line: CallControlLine, digits: str) -> None:
    line.on_analog(C.HookChanged(1, True, bridge="fxs0"))
    for d in digits:
        line.on_analog(C.Dtmf(1, d, bridge="fxs0"))


async def test_the_claim_arrives_before_the_call_is_placed() -> None:
    line, engine, bridge, capi = make()
    await line.start()
    try:
        dial(line, "0301#")
        assert [type(e) for e in engine.seen] == [E.Dialled]
        assert capi.sent == [PlaceCall(1, call_id=capi.sent[0].call_id, called="301",
                                       calling="5551", cc_reference=5)]
        assert engine.max_depth == 1  # the engine was never entered from inside itself
        await asyncio.wait_for(bridge.wait_for("AT%TONE=1,DIAL"), 5)
        assert bridge.sent[0] == "AT%TONE=1,DIAL"
    finally:
        await line.stop()


async def test_engine_events_raised_inside_an_engine_step_wait_for_the_top() -> None:
    line, engine, bridge, _ = make()
    await line.start()
    try:
        line.on_analog(C.HookChanged(2, True, bridge="fxs0"))  # Bert busy
        dial(line, "22")
        failed = [e for e in engine.seen if isinstance(e, E.CallFailed)]
        assert failed and failed[0].cause == 17
        activate_seen = len(engine.seen)
        line.on_analog(C.Dtmf(1, "5", bridge="fxs0"))
        activate = engine.seen[-1]
        assert isinstance(activate, E.Activate) and len(engine.seen) == activate_seen + 1
        # the engine's reply comes while the service executes actions: consumed,
        # and the tone command it causes is queued for the bridge
        assert line.reply(A.RequestAccepted(activate.tag, 1, "21", "22"))
        assert not line.reply(A.RequestAccepted("ctl-9", 1, "21", "22"))
        await asyncio.wait_for(bridge.wait_for("AT%TONE=1,CONFIRM,1000"), 5)
    finally:
        await line.stop()


async def test_a_call_the_card_cannot_place_ends_for_phone_and_engine() -> None:
    line, engine, bridge, _ = make(FakeCapi(fail=True))
    await line.start()
    try:
        dial(line, "0301#")
        ended = [e for e in engine.seen if isinstance(e, CallEnded)]
        assert ended and ended[0].cause == 41
        await asyncio.wait_for(bridge.wait_for("AT%TONE=1,CONGESTION"), 5)
    finally:
        await line.stop()


async def test_an_engine_event_caused_inside_an_engine_step_is_delivered_after_it() -> None:
    line, engine, _, _ = make()
    await line.start()
    try:
        dial(line, "22")  # Bert's phone rings for Anna's call
        assert E.PortState("fxs0/2", True) in engine.seen
        # the engine, inside one of its steps, puts Anna on a call: her call to Bert
        # ends and Bert's port is free again - but not from inside that step
        line.observe(A.ConnectCall("fxs0/1", 1, "ccbs-1-1"))
        assert E.PortState("fxs0/2", False) not in engine.seen
        await asyncio.sleep(0)  # one turn of the loop: the scheduled drain runs
        assert E.PortState("fxs0/2", False) in engine.seen
        assert engine.max_depth == 1
    finally:
        await line.stop()


async def test_a_poll_answer_does_not_free_a_port_rung_for_a_call() -> None:
    line, engine, _, _ = make()
    await line.start()
    try:
        dial(line, "22")  # Bert's phone rings for Anna's call
        mark = len(engine.seen)
        # the poll says "on-hook" for Bert (a ringing phone is on-hook): call control
        # tells the engine at once that the port is in use, as one step
        line.on_analog(C.HookSnapshot((True, False, False, False), bridge="fxs0"))
        await asyncio.sleep(0)  # one turn of the loop: the correction runs
        assert engine.seen[mark:] == [E.PortStates((E.PortState("fxs0/2", True,
                                                                E.PortSource.POLL),))]
    finally:
        await line.stop()
