"""The runtime adapter of basic call control (``ccbs_isdn.calls``).

Owns one ``CallControl`` and everything asynchronous around it: the FXS line hands it
every analog indication (``on_analog``) and every engine port action it executes
(``observe``), the CAPI line every ISDN indication after the engine had it
(``on_isdn``), the service the engine's ``ClaimCall`` (``execute``) and replies
(``reply``). It turns them into call-control inputs, and executes the outputs:
bridge commands through the FXS driver (one worker, in order), ISDN commands through
the CAPI driver, engine events through ``service.deliver``; it arms one
``loop.call_at`` for ``CallControl.next_deadline()``.

Re-entrancy rule: the engine is only ever called from the top of an input, never from
inside one of its own steps. Engine events (and ``Loopback``) queue in one FIFO that
is drained at the top level; an input that arrives while the service executes engine
actions (``observe``/``execute``/``reply``) only queues and, if nobody is draining,
schedules the drain with ``call_soon``. Because ``service.deliver`` runs the engine
synchronously, the engine's ``ClaimCall`` answer to a ``Dialled`` is in before the
``Proceed`` behind it is fed back — the recall goes out with its CCBS reference.

Must not decide CCBS (the engine does) or speak AT / CAPI itself (the drivers do).
The media path of an ISDN call to an analog port is the box's hardware: ``AttachCall``
silences the port's tone and is logged, nothing more (FXB/1 has no command for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from ccbs_isdn.analog import contract as C
from ccbs_isdn.calls import (
    AttachCall,
    CallControl,
    CallOutput,
    DetachCall,
    DialPlan,
    Digit,
    HookFlash,
    LinkPorts,
    Loopback,
    OffHook,
    OnHook,
    PortsLost,
    PortsReset,
    RingAnswer,
    RingOver,
    RingPort,
    SetTone,
    Station,
    StopRinging,
    UnlinkPort,
    codes_from_config,
)
from ccbs_isdn.calls.control import LineState
from ccbs_isdn.config import Config
from ccbs_isdn.engine import actions as A
from ccbs_isdn.engine import events as E
from ccbs_isdn.errors import CcbsError
from ccbs_isdn.isdn import (
    AnswerCall,
    CallAlerting,
    CallConnected,
    CallEnded,
    IncomingCall,
    IsdnCommand,
    IsdnIndication,
    PlaceCall,
)
from ccbs_isdn.runtime.logging import kv

log = logging.getLogger("ccbs_isdn.calls")

#: Q.850 #41 "temporary failure": the call could not even be handed to the card.
CAUSE_TEMPORARY_FAILURE = 41

#: Engine actions call control watches (the FXS line executes them).
_OBSERVED = (A.Ring, A.StopRing, A.ConnectPorts, A.DisconnectPort, A.ConnectCall)
_REPLIES = (A.RequestAccepted, A.RequestRefused, A.CancelDone, A.StatusReply)


def build_plan(config: Config, port_id: Callable[[int], str]) -> DialPlan:
    """The dial plan from ``[fxs.ports]``, ``[fxs.codes]``, ``[dialplan]`` and the
    activation window of ``[timers]``."""
    dp, codes = config.dialplan, config.fxs.codes
    return DialPlan(
        stations=tuple(Station(p.extension, port_id(p.port), p.msn, p.ctrl, p.name)
                       for p in config.fxs.ports),
        outgoing_prefix=dp.outgoing_prefix,
        default_ctrl=dp.default_ctrl,
        interdigit=dp.interdigit_timeout,
        first_digit=dp.first_digit_timeout,
        # an ISDN activation is answered within T-ACTIVATE (etsi-ccbs.md §4)
        reply_timeout=config.timers.t_activate + 2.0,
        codes=codes_from_config(codes.activate, codes.activate_digit, codes.cancel,
                                codes.cancel_one, codes.status, codes.book,
                                window=config.timers.activation_window,
                                inter_digit=dp.interdigit_timeout),
    )


class CallControlLine:
    """Call control as one of the service's lines (``drivers["calls"]``)."""

    kind = "calls"

    def __init__(
        self,
        plan: DialPlan,
        deliver: Callable[[Any], None],
        *,
        fxs: Any = None,
        capi: Any = None,
        port_id: Callable[[int], str] = lambda n: f"fxs0/{n}",
        port_number: Callable[[str], int] = lambda p: int(p.rsplit("/", 1)[1]),
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.plan = plan
        self.core = CallControl(plan, call_prefix=f"ph{int(time.time()) % 1_000_000:x}-")
        self._deliver = deliver
        self.fxs = fxs  # the FXS line (``.driver`` is the FxsDriver)
        self.capi = capi  # the CAPI line (``.driver`` is the CapiDriver), or None
        self._port_id = port_id
        self._port_number = port_number
        self._clock = clock
        self._fifo: deque[Loopback | E.Event | IsdnIndication] = deque()
        self._draining = False
        self._nested = 0
        self._drain_soon: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._commands: asyncio.Queue[CallOutput] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.media: dict[str, tuple[int, str]] = {}  # port -> (ctrl, call id) on its B channel
        self.stats = {"inputs": 0, "bridge_commands": 0, "isdn_commands": 0,
                      "engine_events": 0, "failed_commands": 0}

    @classmethod
    def for_service(cls, config: Config, service: Any, fxs: Any, capi: Any) -> CallControlLine:
        """Wire call control into a ``CcbsService``'s FXS and CAPI lines."""
        from ccbs_isdn.runtime import service as svc

        line = cls(build_plan(config, svc.port_id), service.deliver, fxs=fxs, capi=capi,
                   port_id=svc.port_id, port_number=svc.port_number)
        fxs.calls = line
        if capi is not None:
            capi.calls = line
        return line

    # ================================================================ lifecycle

    async def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="calls-bridge")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._drain_soon is not None:
            self._drain_soon.cancel()
            self._drain_soon = None
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    def lines(self) -> list[dict[str, Any]]:
        return []  # the ports are the FXS line's; their calls show in the log

    def line_states(self) -> dict[str, str]:
        """Port id -> line state (for tests, the demo and diagnostics)."""
        return {port: self.core.state(port).value for port in self.plan.ports()}

    # ========================================================= inputs: drivers

    def on_analog(self, ind: C.AnalogIndication) -> None:
        """Every indication of the FXS driver, before the FXS line gives it to the
        engine (so a ring-trip is known to be the engine's before it reacts)."""
        event = self._translate(ind)
        if event is not None:
            self._feed(event)
        if isinstance(ind, C.HookSnapshot):
            # the poll answers "on-hook" for a port rung for a call; it is in use
            asyncio.get_running_loop().call_soon(self._assert_in_use)

    def on_isdn(self, ind: IsdnIndication) -> None:
        """Every ISDN indication, after the engine had it."""
        if isinstance(ind, (IncomingCall, CallAlerting, CallConnected, CallEnded)):
            self._feed(ind)

    # ========================================================= inputs: service

    def observe(self, action: Any) -> None:
        """An engine action the FXS line is about to execute."""
        if isinstance(action, _OBSERVED):
            self._nested_feed(action)

    def execute(self, action: Any) -> None:
        """Engine actions addressed to call control (``ClaimCall``)."""
        if isinstance(action, A.ClaimCall):
            self._nested_feed(action)
        else:
            self.observe(action)

    def reply(self, action: Any) -> bool:
        """An engine reply; True when its tag is one of ours (a phone waits for it)."""
        if isinstance(action, _REPLIES) and self.core.owns_tag(action.tag):
            self._nested_feed(action)
            return True
        return False

    # ============================================================== the core

    def _now(self) -> float:
        return self._clock() if self._clock is not None else \
            asyncio.get_running_loop().time()

    def _nested_feed(self, event: Any) -> None:
        self._nested += 1
        try:
            self._feed(event)
        finally:
            self._nested -= 1

    def _feed(self, event: Any) -> None:
        self.stats["inputs"] += 1
        try:
            outputs = self.core.handle(event, self._now())
        except Exception:  # a bug for one input must not stop the phones
            log.exception("call control failed", extra=kv(event=repr(event)))
            return
        self._dispatch(outputs)
        self._arm()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            outputs = self.core.handle_timer(self._now())
        except Exception:
            log.exception("call control timer failed")
            outputs = []
        self._dispatch(outputs)
        self._arm()

    def _arm(self) -> None:
        deadline = self.core.next_deadline()
        if deadline == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            loop = asyncio.get_running_loop()
            # the core runs on the loop's clock unless a clock was given
            delay = max(0.0, deadline - self._now())
            self._timer = loop.call_later(delay, self._on_timer)

    def _dispatch(self, outputs: Iterable[Any]) -> None:
        for out in outputs:
            if isinstance(out, Loopback) or isinstance(out, E.Event):
                self._fifo.append(out)
            elif isinstance(out, IsdnCommand):
                self._isdn(out)
            elif isinstance(out, CallOutput):
                self._commands.put_nowait(out)
            else:
                log.warning("call control output without an executor",
                            extra=kv(output=repr(out)))
        self._drain()

    def _drain(self) -> None:
        if self._draining or not self._fifo:
            return
        if self._nested:
            # inside one of the engine's steps: never re-enter the engine from here
            if self._drain_soon is None:
                self._drain_soon = asyncio.get_running_loop().call_soon(self._drain_later)
            return
        self._draining = True
        try:
            while self._fifo:
                item = self._fifo.popleft()
                if isinstance(item, Loopback):
                    self._feed(item.event)
                else:
                    self.stats["engine_events"] += 1
                    try:
                        self._deliver(item)
                    except Exception:
                        log.exception("engine delivery failed", extra=kv(event=repr(item)))
        finally:
            self._draining = False

    def _drain_later(self) -> None:
        self._drain_soon = None
        self._drain()

    # ============================================================ executing

    def _isdn(self, cmd: IsdnCommand) -> None:
        self.stats["isdn_commands"] += 1
        driver = getattr(self.capi, "driver", None)
        try:
            if driver is None:
                raise CcbsError("no ISDN controller is configured", code="no-isdn")
            driver.send(cmd)
        except CcbsError as exc:
            self.stats["failed_commands"] += 1
            log.warning("ISDN command failed", extra=kv(command=repr(cmd), error=str(exc)))
            if isinstance(cmd, (PlaceCall, AnswerCall)):
                # the call never existed (or is gone): both the engine and the phone
                # must see it end, or the caller waits in silence
                ended = CallEnded(cmd.ctrl, cmd.call_id, CAUSE_TEMPORARY_FAILURE)
                self._fifo.append(ended)
                self._fifo.append(Loopback(ended))

    async def _run(self) -> None:
        while True:
            out = await self._commands.get()
            try:
                await self._bridge(out)
            except CcbsError as exc:
                self.stats["failed_commands"] += 1
                log.warning("bridge command failed", extra=kv(command=repr(out),
                                                              error=str(exc)))
                if isinstance(out, RingPort):
                    self._feed(RingOver(out.port, "failed"))
            except Exception:
                log.exception("bridge command failed", extra=kv(command=repr(out)))

    async def _bridge(self, out: CallOutput) -> None:
        command = self._command(out)
        if command is None:
            return
        driver = getattr(self.fxs, "driver", None)
        if driver is None:
            raise CcbsError("no FXS bridge", code="no-bridge")
        self.stats["bridge_commands"] += 1
        await driver.send(command)

    def _command(self, out: CallOutput) -> C.AnalogCommand | None:
        """Call-control output -> FXB/1 command (analog-bridge.md §3.3)."""
        if isinstance(out, RingPort):
            return C.Ring(self._port_number(out.port), out.cadence, out.timeout,
                          out.clip_number, C.clip_name_ascii(out.clip_name))
        if isinstance(out, StopRinging):
            return C.RingStop(self._port_number(out.port))
        if isinstance(out, SetTone):
            return C.PlayTone(self._port_number(out.port), out.tone, out.ms)
        if isinstance(out, LinkPorts):
            return C.Connect(self._port_number(out.port), self._port_number(out.peer))
        if isinstance(out, UnlinkPort):
            return C.Disconnect(self._port_number(out.port))
        if isinstance(out, AttachCall):
            self.media[out.port] = (out.ctrl, out.call_id)
            log.info("port on ISDN call", extra=kv(port=out.port, ctrl=out.ctrl,
                                                   call=out.call_id))
            return C.PlayTone(self._port_number(out.port), C.Tone.OFF)
        if isinstance(out, DetachCall):
            self.media.pop(out.port, None)
            log.info("port off ISDN call", extra=kv(port=out.port, call=out.call_id))
            return None
        log.warning("unknown call-control output", extra=kv(output=repr(out)))
        return None

    # ============================================================== helpers

    def _ports(self) -> tuple[str, ...]:
        return self.plan.ports()

    def _translate(self, ind: C.AnalogIndication) -> Any:
        if isinstance(ind, C.HookChanged):
            port = self._port_id(ind.port)
            return OffHook(port) if ind.off_hook else OnHook(port)
        if isinstance(ind, C.Dtmf):
            return Digit(self._port_id(ind.port), ind.digit)
        if isinstance(ind, C.Flash):
            return HookFlash(self._port_id(ind.port), ind.ms)
        if isinstance(ind, C.RingTrip):
            return RingAnswer(self._port_id(ind.port))
        if isinstance(ind, C.RingEnded):
            if ind.reason is C.RingEndReason.TRIP:
                return None  # the RingTrip before it said everything
            return RingOver(self._port_id(ind.port), ind.reason.value.lower())
        if isinstance(ind, C.BridgeDown):
            return PortsLost(self._ports())
        if isinstance(ind, (C.BridgeUp, C.BridgeReady)):
            driver = getattr(self.fxs, "driver", None)
            off: list[str] = []
            links: list[tuple[str, str]] = []
            ringing: list[str] = []
            for port in self._ports():
                status = self._status(driver, port)
                if status is None:
                    continue
                if status.off_hook:
                    off.append(port)
                if status.peer > status.port:
                    links.append((port, self._port_id(status.peer)))
                if status.activity is C.Activity.RINGING:  # AT%STATE?: not our ring
                    ringing.append(port)
            return PortsReset(self._ports(), tuple(off), tuple(links), tuple(ringing))
        return None

    def _status(self, driver: Any, port: str) -> C.PortStatus | None:
        if driver is None:
            return None
        try:
            status: C.PortStatus = driver.port_status(self._port_number(port))
        except (KeyError, IndexError, ValueError):
            return None
        return status

    def _assert_in_use(self) -> None:
        ringing = tuple(E.PortState(port, True, E.PortSource.POLL) for port in self._ports()
                        if self.core.state(port) is LineState.RINGING)
        if ringing:  # one engine step, like the poll answer it corrects
            self._fifo.append(E.PortStates(ringing))
        self._drain()


__all__ = ["CallControlLine", "build_plan"]
