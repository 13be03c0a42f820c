"""The asyncio ISDN driver over libcapi20: implements the contract of ``ccbs_isdn.isdn``.

This module owns one CAPI application: registering it, reading its messages
(``loop.add_reader`` on ``capi20_fileno``, one ``get_message`` per readiness), LISTEN on
every controller, basic calls in both directions, and CCBS/CCNR on each controller's
route — CAPI supplementary services (facility selector 3, the card speaks ROSE) or raw
ETSI Facility IEs (we speak ROSE with ``ccbs_isdn.rose``: INFO_IND 0x001C in, the Facility
data array of INFO_REQ/CONNECT_REQ/DISCONNECT_REQ out, the dummy call reference being
INFO_REQ/INFO_IND addressed to the controller). It detects a dead connection,
re-registers with backoff, re-LISTENs and reports ``ControllerUp(reconnected=True)`` so
the owner reconciles. It never decides CCBS policy (the engine does) and hides PLCIs,
CAPI messages and ROSE from its users. Facts: shared/docs/capi.md, etsi-ccbs.md §2.5, §5.

Threading: libcapi20's remote calls that wait for the server (isinstalled, register,
get_profile, release) run on one worker thread; put_message/get_message run on the event
loop (the fd is readable, so a whole frame is there, capi.md §3).

Routes per controller (``ControllerUp.route``): ``auto`` picks supplementary services
when the profile has global option 0x10 and GetSupportedServices reports CCBS (bit 0x80,
chan_capi's rule, capi.md §6.5), else raw Facility IEs; config can force either. A
point-to-point controller always uses the raw route: CAPI selector 3 has no CCBS-T
functions, so CCBS-T (EN 300 359-1 private-networks module) runs in a call-independent
signalling connection opened by CONNECT_REQ with B channel information 2 ("neither B nor D
channel", the simulator maps it to Q.931 REGISTER).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from ccbs_isdn import isdn
from ccbs_isdn.errors import (
    CapiError,
    CapiMessageError,
    ConfigError,
    FacilityError,
    LinkDown,
    LocalError,
)
from ccbs_isdn.isdn import CcKind, CcRoute, RecallMode

from . import lib as capilib
from . import messages as m
from . import rose_glue as rg
from . import tables as t
from .tables import Command as C
from .tables import Subcommand as S

log = logging.getLogger("ccbs_isdn.capi20")

T = TypeVar("T")

#: LISTEN Info mask: cause, call progression (ALERTING as 0x8001), Facility IEs, called
#: party number (the MSN of broadcast FACILITY), early-B3 DISCONNECT notice (capi.md §5.3).
INFO_MASK: Final = (
    t.INFO_MASK_CAUSE | t.INFO_MASK_PROGRESS | t.INFO_MASK_FACILITY | 0x0080
    | t.INFO_MASK_EARLY_B3
)
#: Supplementary Listen: CCBS and CCNR notifications (capi.md §6.3).
NOTIFICATION_MASK: Final = t.SERVICE_CCBS | t.SERVICE_CCNR
_RAW_INVOKE_IDS: Final = range(1, 0x4000)  # the firmware of our simulator uses 0x4000+
_ROUTES: Final = ("auto", "supplementary", "raw")
_NOT_SUPPORTED_INFOS: Final = frozenset({
    t.INFO_FACILITY_NOT_SUPPORTED, t.INFO_SUPPLEMENTARY_NOT_SUPPORTED,
    t.INFO_FUNCTION_NOT_SUPPORTED,
})
_STALE_TRANSPORT: Final = frozenset({t.INFO_MSG_OS_RESOURCE, t.INFO_NOT_INSTALLED, 0x1109})
_NOTIFY_OPERATIONS: Final = frozenset({
    "CCBSStatusRequest", "CCBSRemoteUserFree", "CCBSBFree", "CCBSErase", "CCBSStopAlerting",
    "EraseCallLinkageID", "StatusRequest",
})


# ===================================================================== configuration


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    """One controller: its CAPI number, our MSNs on it (empty = take every call), whether
    the access is point-to-point, and the CCBS route (auto | supplementary | raw)."""

    ctrl: int
    msns: tuple[str, ...] = ()
    ptp: bool = False
    route: str = "auto"

    def __post_init__(self) -> None:
        if not 1 <= self.ctrl <= 127:
            raise ConfigError(f"controller {self.ctrl} out of range",
                              key="capi.controllers.ctrl", expected="1..127")
        if self.route not in _ROUTES:
            raise ConfigError(f"unknown route {self.route!r}", key="capi.controllers.route",
                              expected=" | ".join(_ROUTES))


@dataclass(frozen=True, slots=True)
class CapiConfig:
    """``driver``/``host``/``port`` select libcapi20's transport (empty driver: the
    library's own choice, i.e. $HOME/.capi20rc or /etc/capi20.conf, then the kernel
    device). ``controllers`` empty = every controller the library reports, route auto."""

    driver: str = ""
    host: str = ""
    port: int = 0
    controllers: tuple[ControllerConfig, ...] = ()
    library: str = capilib.LIBRARY_NAME
    max_logical_connections: int = 8
    #: how long one CONF may take during start-up before the link counts as dead
    confirm_timeout: float = 10.0
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    #: a CCBS status indication (0x800E) nobody answered gets an empty RESP after this;
    #: below T-CCBS1 (4 s, etsi-ccbs.md §4) so the card is never left waiting
    status_answer_timeout: float = 3.0


# ============================================================================ state


@dataclass(eq=False)
class _Controller:
    cfg: ControllerConfig
    route: CcRoute = CcRoute.RAW_FACILITY
    ccbs: bool = True
    ccnr: bool = True
    up: bool = False
    last_msn: str = ""  # INFO_IND 0x0070 before a broadcast Facility IE
    next_invoke: int = 0
    invokes: dict[int, _RawInvoke] = field(default_factory=dict)


@dataclass(eq=False)
class _Call:
    """A basic call, or (``cct_handle`` set) a CCBS-T signalling connection."""

    call_id: str
    ctrl: int
    outgoing: bool
    called: str = ""
    calling: str = ""
    bearer: bytes = isdn.BEARER_SPEECH
    plci: int | None = None
    state: str = "dialing"  # dialing | offered | alerting | active | clearing
    cause: int | None = None
    error: str | None = None
    hangup_cause: int | None = None  # HangUp before the PLCI was known
    cct_handle: int | None = None
    cct_kind: CcKind = CcKind.CCBS
    cct_accepted: bool = False
    cct_answered: bool = False
    cct_deactivating: bool = False
    recall: bool = False  # a CCBS recall (carries CCBSCall)
    recall_invoke: int | None = None  # our invoke id of CCBSCall (raw route only)


@dataclass(eq=False)
class _RawInvoke:
    """An invoke we sent on the raw route and whose answer we wait for."""

    operation: str
    handle: int
    kind: CcKind = CcKind.CCBS
    call: _Call | None = None


@dataclass(eq=False)
class _Token:
    """An indication that must be answered (status request)."""

    ctrl: int
    supplementary: bool
    number: int = 0  # FACILITY_IND message number (supplementary)
    invoke_id: int = 0  # network invoke id (raw)
    operation: str = "CCBSStatusRequest"
    timer: asyncio.TimerHandle | None = None


class _Link:
    """One registration of the application with libcapi20."""

    def __init__(self, appl_id: int, fd: int) -> None:
        self.appl_id = appl_id
        self.fd = fd
        self.dead = False
        # A private descriptor of the same socket for the EOF check of capi.md §3 (the
        # library reports EOF as "queue empty"). MSG_DONTWAIT per call: the library's own
        # descriptor must stay blocking.
        self.peek: socket.socket | None = None
        dup = os.dup(fd)
        try:
            self.peek = socket.socket(fileno=dup)
        except OSError:
            os.close(dup)  # the kernel device (/dev/capi20), not a remote module's socket
            return
        # The remote modules leave Nagle on: a RESP written right after a REQ would wait
        # for the peer's delayed ACK (~40 ms). Keep-alive notices a silently dead peer.
        # Both act on the shared socket.
        for level, option in ((socket.IPPROTO_TCP, socket.TCP_NODELAY),
                              (socket.SOL_SOCKET, socket.SO_KEEPALIVE)):
            try:
                self.peek.setsockopt(level, option, 1)
            except OSError:
                pass

    def peer_closed(self) -> bool:
        if self.peek is None:
            return False  # a kernel device has no peer; 0x1104 just means "empty"
        try:
            data = self.peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return data == b""

    def close(self) -> None:
        if self.peek is not None:
            self.peek.close()


# =========================================================================== driver


class CapiDriver:
    """ISDN driver over libcapi20 (see the module docstring).

    Indications go to ``on_indication`` when given, else into ``indications`` (an
    ``asyncio.Queue``). ``send(cmd)`` executes an ``isdn.IsdnCommand``; its outcome comes
    back as indications. ``send`` raises ``LinkDown`` while the CAPI connection is down
    and ``LocalError`` for a command naming an unknown call/handle/token.
    """

    def __init__(
        self,
        config: CapiConfig,
        on_indication: Callable[[isdn.IsdnIndication], None] | None = None,
        *,
        library: Callable[[str], capilib.CapiLib] = capilib.load,
    ) -> None:
        self.config = config
        self._on_indication = on_indication
        self.indications: asyncio.Queue[isdn.IsdnIndication] = asyncio.Queue()
        self._library_loader = library
        self._lib: capilib.CapiLib | None = None
        self._executor: _LibraryThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._link: _Link | None = None
        self._controllers: dict[int, _Controller] = {}
        self._calls: dict[str, _Call] = {}
        self._by_plci: dict[int, _Call] = {}
        self._cct: dict[int, _Call] = {}  # handle -> CCBS-T connection
        self._waiters: dict[int, Callable[[m.CapiMessage], None]] = {}
        self._tokens: dict[int, _Token] = {}
        self._offer_numbers: dict[str, int] = {}  # CONNECT_IND number, echoed by CONNECT_RESP
        self._token_seq = itertools.count(1)
        self._call_seq = itertools.count(1)
        self._number = 0
        self._reconnect_task: asyncio.Task[None] | None = None
        self._lost_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._ever_up = False
        self.reconnects = 0
        self.messages_in = 0
        self.messages_out = 0
        #: messages or Facility IEs from the card that were malformed and dropped
        self.bad_input = 0

    # ================================================================ lifecycle

    async def start(self) -> None:
        """Load the library (``DriverNotAvailable`` if impossible), register, LISTEN and
        report ``ControllerUp`` per controller. If the CAPI server cannot be reached the
        driver reports ``ControllerDown`` and keeps retrying in the background."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        if self._executor is None:
            self._executor = _LibraryThread()
        self._lib = await self._blocking(self._library_loader, self.config.library)
        await self._blocking(self._lib.configure, self.config.driver, self.config.host,
                             self.config.port)
        try:
            await self._connect(reconnected=False)
        except (TimeoutError, CapiError, LinkDown, OSError) as exc:
            log.warning("CAPI start failed: %s; retrying in the background", exc)
            await self._lost(f"start failed: {exc}")

    async def stop(self) -> None:
        """Release the application (calls are cleared by the card) and stop retrying."""
        self._stopping = True
        if self._lost_task is not None:
            await asyncio.gather(self._lost_task, return_exceptions=True)
            self._lost_task = None
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            try:
                await self._reconnect_task
            except asyncio.CancelledError:
                pass
            self._reconnect_task = None
        await self._drop_link("stopped")
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    @property
    def up(self) -> bool:
        return self._link is not None and not self._link.dead

    def route(self, ctrl: int) -> CcRoute:
        return self._controllers[ctrl].route

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._loop is not None and self._executor is not None
        return await self._loop.run_in_executor(self._executor, fn, *args)

    # ============================================================== connecting

    async def _connect(self, *, reconnected: bool) -> None:
        lib = self._lib
        assert lib is not None and self._loop is not None

        def register() -> tuple[int, int, dict[int, capilib.Profile]]:
            # libcapi20 keeps its control connection (used by get_profile) from one
            # isinstalled until a release, and reopens it on *any* call after a release
            # (capi.md §2.4). If that server went away meanwhile, get_profile on the stale
            # connection fails or never returns. A throw-away registration released at
            # once closes whatever connection the library holds; the next isinstalled
            # opens a fresh one to the configured server.
            lib.isinstalled()
            lib.release(lib.register(1, 1, 128))
            for attempt in (1, 2):
                lib.isinstalled()
                appl_id = lib.register(self.config.max_logical_connections, 7, 2048)
                try:
                    count = lib.number_of_controllers()
                    wanted = ([c.ctrl for c in self.config.controllers]
                              or list(range(1, count + 1)))
                    profiles = {c: lib.get_profile(c) for c in wanted}
                    return appl_id, lib.fileno(appl_id), profiles
                except CapiError as exc:
                    # The library keeps its control connection until a release; if the
                    # server went away meanwhile that connection is stale (get_profile
                    # fails with 0x1108). release() drops it; one fresh try is enough.
                    lib.release(appl_id)
                    if attempt == 2 or exc.info not in _STALE_TRANSPORT:
                        raise
            raise AssertionError("unreachable")

        assert self._executor is not None
        future = self._loop.run_in_executor(self._executor, register)
        # libcapi20 has no timeout on its control requests (capi.md §3): a server that
        # accepts but never answers would hold us forever. Give up waiting (the worker
        # stays blocked until the library returns) and release a registration that
        # completes after we gave up.
        try:
            done, _ = await asyncio.wait({future}, timeout=self.config.confirm_timeout)
        except asyncio.CancelledError:
            future.add_done_callback(self._release_late)  # stop() during a connect
            raise
        if not done:
            future.add_done_callback(self._release_late)
            raise TimeoutError("libcapi20 did not return from register/get_profile within "
                               f"{self.config.confirm_timeout} s (server not answering)")
        appl_id, fd, profiles = future.result()
        link = _Link(appl_id, fd)
        self._link = link
        self._loop.add_reader(fd, self._on_readable)
        configs = {c.ctrl: c for c in self.config.controllers}
        try:
            for ctrl_no, profile in profiles.items():
                cfg = configs.get(ctrl_no, ControllerConfig(ctrl_no))
                await self._bring_up(cfg, profile, reconnected=reconnected)
        except (TimeoutError, CapiError, LinkDown):
            await self._drop_link("start-up failed")
            raise
        self._ever_up = True

    def _release_late(self, future: asyncio.Future[tuple[int, int, Any]]) -> None:
        if future.cancelled() or future.exception() is not None or self._lib is None:
            return
        appl_id = future.result()[0]
        log.info("releasing ApplID %d that registered after we gave up on it", appl_id)
        try:
            self._lib.release(appl_id)  # closes sockets only: no wait on the server
        except CapiError as exc:
            log.debug("release of ApplID %d: %s", appl_id, exc)

    async def _bring_up(self, cfg: ControllerConfig, profile: capilib.Profile, *,
                        reconnected: bool) -> None:
        ctrl = self._controllers.get(cfg.ctrl) or _Controller(cfg)
        self._controllers[cfg.ctrl] = ctrl
        ctrl.invokes.clear()
        supp_possible = bool(profile.global_options & t.GLOBAL_OPTION_SUPPLEMENTARY)
        supported = 0
        if supp_possible and cfg.route != "raw" and not cfg.ptp:
            conf = await self._request(m.message(
                C.FACILITY, S.REQ, self._next_number(), address=cfg.ctrl,
                selector=t.SELECTOR_SUPPLEMENTARY,
                parameter=m.encode_supp(S.REQ, m.SuppParam(t.FN_GET_SUPPORTED))))
            if conf.get_int("info") == 0:
                param = m.decode_supp(S.CONF, conf.get_struct("parameter"))
                if param.get_int("info") == 0:
                    supported = param.get_int("supported")
        use_supp = not cfg.ptp and (
            cfg.route == "supplementary" or (cfg.route == "auto" and bool(
                supported & t.SERVICE_CCBS)))
        ctrl.route = CcRoute.SUPPLEMENTARY if use_supp else CcRoute.RAW_FACILITY
        if use_supp:
            ctrl.ccbs = bool(supported & t.SERVICE_CCBS)
            ctrl.ccnr = bool(supported & t.SERVICE_CCNR)
        else:
            ctrl.ccbs = ctrl.ccnr = True  # the network decides; requests may be refused
        conf = await self._request(m.message(
            C.LISTEN, S.REQ, self._next_number(), controller=cfg.ctrl, info_mask=INFO_MASK,
            cip_mask=t.CIP_MASK_ALL))
        if conf.get_int("info") != 0:
            raise CapiError(conf.get_int("info"), t.info_name(conf.get_int("info")),
                            call="LISTEN_REQ")
        if use_supp:
            conf = await self._request(m.message(
                C.FACILITY, S.REQ, self._next_number(), address=cfg.ctrl,
                selector=t.SELECTOR_SUPPLEMENTARY,
                parameter=m.encode_supp(S.REQ, m.SuppParam(
                    t.FN_LISTEN, {"notification_mask": NOTIFICATION_MASK}))))
            if conf.get_int("info") != 0:
                log.warning("controller %d: supplementary Listen refused: %s", cfg.ctrl,
                            t.info_name(conf.get_int("info")))
        ctrl.up = True
        log.info("controller %d up: route %s, ptp %s%s", cfg.ctrl, ctrl.route.value, cfg.ptp,
                 " (reconnected)" if reconnected else "")
        self._emit(isdn.ControllerUp(cfg.ctrl, ptp=cfg.ptp, route=ctrl.route, ccbs=ctrl.ccbs,
                                     ccnr=ctrl.ccnr, reconnected=reconnected))

    async def _request(self, msg: m.CapiMessage) -> m.CapiMessage:
        """Send a REQ and wait for its CONF (start-up only)."""
        assert self._loop is not None
        future: asyncio.Future[m.CapiMessage] = self._loop.create_future()

        def done(conf: m.CapiMessage) -> None:
            if not future.done():
                future.set_result(conf)

        self._waiters[msg.number] = done
        try:
            self._put(msg)
            return await asyncio.wait_for(future, self.config.confirm_timeout)
        finally:
            self._waiters.pop(msg.number, None)

    # ========================================================= losing the link

    async def _lost(self, reason: str) -> None:
        await self._drop_link(reason)
        if not self._stopping and (self._reconnect_task is None or self._reconnect_task.done()):
            self._reconnect_task = asyncio.ensure_future(self._reconnect_loop())

    async def _drop_link(self, reason: str) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.dead = True
            if self._loop is not None:
                self._loop.remove_reader(link.fd)
            link.close()
        for waiter in list(self._waiters.values()):
            waiter(m.message(C.LISTEN, S.CONF, 0, controller=0, info=t.INFO_MSG_OS_RESOURCE))
        self._waiters.clear()
        for token in self._tokens.values():
            if token.timer is not None:
                token.timer.cancel()
        self._tokens.clear()
        for ctrl in self._controllers.values():
            ctrl.invokes.clear()
            if ctrl.up:
                ctrl.up = False
                self._emit(isdn.ControllerDown(ctrl.cfg.ctrl, reason))
        if not self._ever_up:
            for cfg in self.config.controllers:
                if cfg.ctrl not in self._controllers:
                    self._emit(isdn.ControllerDown(cfg.ctrl, reason))
        # The card clears every call of an application whose connection is gone.
        for call in list(self._calls.values()):
            self._forget_call(call)
            if call.cct_handle is not None:
                if call.cct_accepted:
                    self._emit(isdn.CcTConnectionCleared(call.ctrl, call.cct_handle, None))
                elif not call.cct_answered:
                    self._emit(isdn.CcRequestResult(call.ctrl, call.cct_handle, error="reject"))
            else:
                self._emit(isdn.CallEnded(call.ctrl, call.call_id, None))
        if link is not None and self._lib is not None:
            try:
                await self._blocking(self._lib.release, link.appl_id)
            except CapiError as exc:
                log.debug("release of ApplID %d: %s", link.appl_id, exc)

    async def _reconnect_loop(self) -> None:
        delay = self.config.reconnect_initial
        while not self._stopping:
            await asyncio.sleep(delay)
            try:
                await self._connect(reconnected=True)
            except (TimeoutError, CapiError, LinkDown, OSError) as exc:
                log.info("CAPI reconnect failed: %s (next try in %.1f s)", exc,
                         min(delay * 2, self.config.reconnect_max))
                delay = min(delay * 2, self.config.reconnect_max)
                continue
            self.reconnects += 1
            return

    def _link_failed(self, reason: str) -> None:
        if self._link is None or self._link.dead:
            return
        self._link.dead = True
        log.warning("CAPI connection lost: %s", reason)
        assert self._loop is not None
        self._loop.remove_reader(self._link.fd)
        self._lost_task = self._loop.create_task(self._lost(reason))

    # ================================================================ messages

    def _next_number(self) -> int:
        while True:
            self._number = (self._number + 1) & 0x7FFF or 1
            if self._number not in self._waiters:
                return self._number

    def _put(self, msg: m.CapiMessage) -> None:
        link = self._link
        if link is None or link.dead or self._lib is None:
            raise LinkDown("the CAPI connection is down")
        raw = m.encode(msg)
        try:
            self._lib.put_message(link.appl_id, raw)
        except CapiError as exc:
            self._link_failed(f"put_message: {exc}")
            raise LinkDown(f"the CAPI connection is down ({exc})") from exc
        self.messages_out += 1

    def _req(self, msg: m.CapiMessage, on_conf: Callable[[m.CapiMessage], None] | None = None
             ) -> None:
        if on_conf is not None:
            self._waiters[msg.number] = on_conf
        try:
            self._put(msg)
        except LinkDown:
            self._waiters.pop(msg.number, None)
            raise

    def _resp(self, ind: m.CapiMessage, **params: m.Value) -> None:
        layout = m.LAYOUTS[(ind.command, S.RESP)]
        values: dict[str, m.Value] = {layout[0][0]: ind.address}
        values.update(params)
        try:
            self._put(m.message(ind.command, S.RESP, ind.number, **values))
        except LinkDown:
            pass  # the new registration starts clean

    def _on_readable(self) -> None:
        link, lib = self._link, self._lib
        if link is None or link.dead or lib is None:
            return
        try:
            raw = lib.get_message(link.appl_id)
        except CapiError as exc:
            self._link_failed(f"get_message: {exc}")
            return
        if raw is None:
            # 0x1104 on a readable descriptor: EOF, or a frame cut inside its length
            # prefix (capi.md §3) — the next readiness brings the rest.
            if link.peer_closed():
                self._link_failed("the CAPI server closed the connection")
            return
        self.messages_in += 1
        try:
            msg = m.decode(raw)
        except CapiMessageError as exc:
            log.warning("undecodable CAPI message %s: %s", raw.hex(), exc)
            self.bad_input += 1
            return
        try:
            self._dispatch(msg)
        except (CapiMessageError, FacilityError) as exc:
            log.warning("bad %s from the controller: %s", msg.name, exc)
            self.bad_input += 1
        except LinkDown:
            pass

    def _dispatch(self, msg: m.CapiMessage) -> None:
        if msg.subcommand is S.CONF:
            waiter = self._waiters.pop(msg.number, None)
            if waiter is not None:
                waiter(msg)
            return
        if msg.subcommand is not S.IND:
            return
        handler = _IND_HANDLERS.get(msg.command)
        if handler is not None:
            handler(self, msg)
        elif msg.command is C.CONNECT_B3:
            # Media stays in the card/PBX (cross-connects): no B3 connection over CAPI.
            self._resp(msg, reject=2)
        elif msg.command is C.DATA_B3:
            self._resp(msg, data_handle=msg.get_int("data_handle"))
        else:
            self._resp(msg)  # every other IND is answered (capi.md §4.4)

    def _emit(self, ind: isdn.IsdnIndication) -> None:
        if self._on_indication is not None:
            try:
                self._on_indication(ind)
            except Exception:
                log.exception("indication handler failed on %r", ind)
        else:
            self.indications.put_nowait(ind)

    # ============================================================= commands

    def send(self, cmd: isdn.IsdnCommand) -> None:
        """Execute *cmd* (see the class docstring)."""
        handler = _COMMAND_HANDLERS.get(type(cmd))
        if handler is None:
            raise LocalError(f"the capi20 driver cannot execute {type(cmd).__name__}")
        ctrl = self._controllers.get(cmd.ctrl)
        if ctrl is None:
            raise LocalError(f"no controller {cmd.ctrl}")
        if not ctrl.up or not self.up:
            raise LinkDown(f"controller {cmd.ctrl} is down")
        handler(self, ctrl, cmd)

    # --------------------------------------------------------------- basic calls

    def _place_call(self, ctrl: _Controller, cmd: isdn.PlaceCall) -> None:
        if cmd.call_id in self._calls:
            raise LocalError(f"call id {cmd.call_id!r} is in use")
        bc, llc, hlc = _split_bearer(cmd.bearer)
        cip = m.cip_for_bearer(bc, hlc)
        call = _Call(cmd.call_id, ctrl.cfg.ctrl, True, cmd.called, cmd.calling, cmd.bearer,
                     recall=cmd.cc_reference is not None)
        self._calls[call.call_id] = call
        if cmd.cc_reference is not None and ctrl.route is CcRoute.SUPPLEMENTARY:
            param = m.SuppParam(t.FN_CCBS_CALL, {
                "ccbs_reference": cmd.cc_reference, "cip": cip, "reserved": 0,
                "b_protocol": m.VOICE.encode(), "bc": bc, "llc": llc, "hlc": hlc})
            msg = m.message(C.FACILITY, S.REQ, self._next_number(), address=ctrl.cfg.ctrl,
                            selector=t.SELECTOR_SUPPLEMENTARY,
                            parameter=m.encode_supp(S.REQ, param))
            self._send_call_req(call, msg, self._on_ccbs_call_conf)
            return
        facilities: list[bytes] = []
        if cmd.cc_reference is not None:
            call.recall_invoke = self._alloc_invoke(ctrl)
            facilities.append(rg.invoke(call.recall_invoke, "CCBSCall",
                                        rg.call_arg(cmd.cc_reference)))
        elif cmd.cc_t_handle is not None:
            facilities.append(rg.invoke(self._alloc_invoke(ctrl), "CCBS-T-Call"))
        ai = m.AdditionalInfo(facility_array=m.facility_array(facilities))
        msg = m.message(
            C.CONNECT, S.REQ, self._next_number(), controller=ctrl.cfg.ctrl, cip=cip,
            called_number=m.called_number(cmd.called),
            calling_number=m.calling_number(cmd.calling), b_protocol=m.VOICE.encode(),
            bc=bc, llc=llc, hlc=hlc, additional_info=ai.encode())
        self._send_call_req(call, msg, self._on_connect_conf)

    def _send_call_req(self, call: _Call, msg: m.CapiMessage,
                       on_conf: Callable[[_Call, m.CapiMessage], None]) -> None:
        try:
            self._req(msg, lambda conf: on_conf(call, conf))
        except LinkDown:
            self._calls.pop(call.call_id, None)
            raise

    def _on_connect_conf(self, call: _Call, conf: m.CapiMessage) -> None:
        self._call_confirmed(call, conf.address, conf.get_int("info"))

    def _on_ccbs_call_conf(self, call: _Call, conf: m.CapiMessage) -> None:
        # chan_capi treats this CONF like CONNECT_CONF: the address is the new PLCI.
        info = conf.get_int("info")
        if info == 0:
            info = m.decode_supp(S.CONF, conf.get_struct("parameter")).get_int("info")
        self._call_confirmed(call, conf.address, info)

    def _call_confirmed(self, call: _Call, plci: int, info: int) -> None:
        if info != 0:
            log.info("call %s refused by the controller: %s", call.call_id, t.info_name(info))
            self._calls.pop(call.call_id, None)
            if call.cct_handle is not None:
                self._cct.pop(call.cct_handle, None)
                error = "not-supported" if info in _NOT_SUPPORTED_INFOS else "reject"
                self._emit(isdn.CcRequestResult(call.ctrl, call.cct_handle, error=error))
            else:
                self._emit(isdn.CallEnded(call.ctrl, call.call_id, None))
            return
        call.plci = plci
        self._by_plci[plci] = call
        if call.hangup_cause is not None:
            self._disconnect(call, call.hangup_cause)

    def _answer(self, ctrl: _Controller, cmd: isdn.AnswerCall) -> None:
        call = self._call(cmd.call_id)
        if call.state != "offered" or call.plci is None:
            raise LocalError(f"call {cmd.call_id!r} is not ringing")
        call.state = "answering"
        self._put(m.message(C.CONNECT, S.RESP, self._offer_numbers.pop(call.call_id, 0),
                            plci=call.plci, reject=t.REJECT_ACCEPT,
                            b_protocol=m.VOICE.encode()))

    def _reject(self, ctrl: _Controller, cmd: isdn.RejectCall) -> None:
        call = self._call(cmd.call_id)
        if call.state != "offered" or call.plci is None:
            raise LocalError(f"call {cmd.call_id!r} is not ringing")
        self._reject_offer(call, cmd.cause)

    def _reject_offer(self, call: _Call, cause: int) -> None:
        assert call.plci is not None
        reject = t.REJECT_FOR_CAUSE.get(cause, t.cause_to_reason(cause))
        call.state = "clearing"
        call.cause = cause
        self._put(m.message(C.CONNECT, S.RESP, self._offer_numbers.pop(call.call_id, 0),
                            plci=call.plci, reject=reject))

    def _hang_up(self, ctrl: _Controller, cmd: isdn.HangUp) -> None:
        call = self._call(cmd.call_id)
        if call.state == "offered":
            self._reject_offer(call, cmd.cause)
        elif call.plci is None:
            call.hangup_cause = cmd.cause  # sent once CONNECT_CONF names the PLCI
        else:
            self._disconnect(call, cmd.cause)

    def _disconnect(self, call: _Call, cause: int, facilities: tuple[bytes, ...] = ()) -> None:
        if call.state == "clearing" or call.plci is None:
            return
        call.state = "clearing"
        # DISCONNECT_REQ has no cause parameter: a Cause IE in the Facility data array
        # asks the card for one (normal clearing #16 is what cards send by default).
        array = m.facility_array(facilities, cause=None if cause == 16 else cause)
        self._req(m.message(C.DISCONNECT, S.REQ, self._next_number(), plci=call.plci,
                            additional_info=m.AdditionalInfo(facility_array=array).encode()))

    def _call(self, call_id: str) -> _Call:
        call = self._calls.get(call_id)
        if call is None or call.cct_handle is not None:
            raise LocalError(f"no call {call_id!r}")
        return call

    def _forget_call(self, call: _Call) -> None:
        self._calls.pop(call.call_id, None)
        if call.plci is not None and self._by_plci.get(call.plci) is call:
            del self._by_plci[call.plci]
        if call.cct_handle is not None and self._cct.get(call.cct_handle) is call:
            del self._cct[call.cct_handle]
        self._offer_numbers.pop(call.call_id, None)

    # ---------------------------------------------------------------- indications

    def _connect_ind(self, msg: m.CapiMessage) -> None:
        ctrl = self._controllers.get(msg.controller)
        called = m.number_digits(msg.get_struct("called_number"))
        if ctrl is None or (ctrl.cfg.msns and called and called not in ctrl.cfg.msns):
            # Not one of our MSNs: leave it to the other terminals on the bus.
            self._put(m.message(C.CONNECT, S.RESP, msg.number, plci=msg.address,
                                reject=t.REJECT_IGNORE))
            return
        bearer = (m.join_bearer(msg.get_struct("bc"), msg.get_struct("llc"),
                                msg.get_struct("hlc"))
                  if msg.get_struct("bc") else m.bearer_for_cip(msg.get_int("cip")))
        call = _Call(f"in-{ctrl.cfg.ctrl}-{next(self._call_seq)}", ctrl.cfg.ctrl, False,
                     called, m.number_digits(msg.get_struct("calling_number")),
                     bearer or isdn.BEARER_SPEECH, plci=msg.address, state="offered")
        self._calls[call.call_id] = call
        self._by_plci[msg.address] = call
        self._offer_numbers[call.call_id] = msg.number
        self._emit(isdn.IncomingCall(call.ctrl, call.call_id, call.called, call.calling,
                                     call.bearer))

    def _connect_active_ind(self, msg: m.CapiMessage) -> None:
        self._resp(msg)
        call = self._by_plci.get(msg.address)
        if call is not None and call.cct_handle is None and call.state != "clearing":
            call.state = "active"
            self._emit(isdn.CallConnected(call.ctrl, call.call_id))

    def _disconnect_ind(self, msg: m.CapiMessage) -> None:
        self._resp(msg)
        call = self._by_plci.get(msg.address)
        if call is None:
            return
        self._forget_call(call)
        cause = call.cause if call.cause is not None else t.reason_to_cause(
            msg.get_int("reason"))
        if call.cct_handle is not None:
            if call.cct_deactivating:
                self._emit(isdn.CcDeactivateResult(call.ctrl, call.cct_handle))
            elif call.cct_accepted:
                self._emit(isdn.CcTConnectionCleared(call.ctrl, call.cct_handle, cause))
            elif not call.cct_answered:
                self._emit(isdn.CcRequestResult(call.ctrl, call.cct_handle,
                                                error=call.error or "reject"))
            return
        self._emit(isdn.CallEnded(call.ctrl, call.call_id, cause, call.error))

    def _info_ind(self, msg: m.CapiMessage) -> None:
        self._resp(msg)
        number, element = msg.get_int("info_number"), msg.get_struct("info_element")
        ctrl = self._controllers.get(msg.controller)
        if ctrl is None:
            return
        if msg.address & 0xFF00 == 0:
            if number == 0x0070:
                ctrl.last_msn = m.number_digits(element)
            elif number == t.INFO_NUMBER_FACILITY:
                msn, ctrl.last_msn = ctrl.last_msn, ""
                self._raw_independent(ctrl, element, msn)
            return
        call = self._by_plci.get(msg.address)
        if call is None:
            return
        if number == t.INFO_NUMBER_CAUSE:
            call.cause = m.decode_cause(element)
        elif number == t.INFO_NUMBER_ALERTING:
            if call.state == "dialing" and call.cct_handle is None:
                call.state = "alerting"
                self._emit(isdn.CallAlerting(call.ctrl, call.call_id))
        elif number == t.INFO_NUMBER_FACILITY:
            self._raw_call_facility(ctrl, call, element)

    def _facility_ind(self, msg: m.CapiMessage) -> None:
        if msg.get_int("selector") != t.SELECTOR_SUPPLEMENTARY:
            self._resp(msg, selector=msg.get_int("selector"))
            return
        param = m.decode_supp(S.IND, msg.get_struct("parameter"))
        ctrl = self._controllers.get(msg.controller)
        if param.function == t.FN_CCBS_STATUS and ctrl is not None:
            self._supp_status(ctrl, msg, param)  # answered later, by the owner
            return
        self._resp(msg, selector=t.SELECTOR_SUPPLEMENTARY,
                   parameter=m.encode_supp(S.RESP, m.SuppParam(param.function)))
        if ctrl is None:
            return
        handler = _SUPP_HANDLERS.get(param.function)
        if handler is not None:
            handler(self, ctrl, msg, param)

    # ====================================================== supplementary route

    def _supp_req(self, ctrl: _Controller, function: int, fields: dict[str, m.Value],
                  on_conf: Callable[[m.CapiMessage], None]) -> None:
        msg = m.message(C.FACILITY, S.REQ, self._next_number(), address=ctrl.cfg.ctrl,
                        selector=t.SELECTOR_SUPPLEMENTARY,
                        parameter=m.encode_supp(S.REQ, m.SuppParam(function, fields)))
        self._req(msg, on_conf)

    @staticmethod
    def _supp_conf_info(conf: m.CapiMessage) -> int:
        info = conf.get_int("info")
        if info == 0:
            info = m.decode_supp(S.CONF, conf.get_struct("parameter")).get_int("info")
        return info

    @staticmethod
    def _error_for(info: int) -> str:
        if info in _NOT_SUPPORTED_INFOS:
            return "not-supported"
        return t.SUPPLEMENTARY_REASON.get(info, t.info_name(info))

    def _cc_request(self, ctrl: _Controller, cmd: isdn.CcRequest) -> None:
        _check_handle(cmd.handle)
        if cmd.linkage_id is None and not ctrl.cfg.ptp:
            raise LocalError(f"controller {ctrl.cfg.ctrl} is point-to-multipoint: a CC "
                             "request needs the CallLinkageID of the failed call")
        if cmd.linkage_id is None or ctrl.cfg.ptp:
            self._cct_request(ctrl, cmd)
            return
        if ctrl.route is CcRoute.SUPPLEMENTARY:
            function = t.FN_CCNR_REQUEST if cmd.kind is CcKind.CCNR else t.FN_CCBS_REQUEST

            def conf(c: m.CapiMessage) -> None:
                info = self._supp_conf_info(c)
                if info != 0:
                    self._emit(isdn.CcRequestResult(ctrl.cfg.ctrl, cmd.handle,
                                                    error=self._error_for(info)))

            self._supp_req(ctrl, function, {"handle": cmd.handle & 0xFFFFFFFF,
                                            "call_linkage_id": cmd.linkage_id}, conf)
            return
        operation = "CCNRRequest" if cmd.kind is CcKind.CCNR else "CCBSRequest"
        self._raw_invoke(ctrl, _RawInvoke(operation, cmd.handle, cmd.kind),
                         rg.request_arg(cmd.linkage_id))

    def _cc_deactivate(self, ctrl: _Controller, cmd: isdn.CcDeactivate) -> None:
        _check_handle(cmd.handle)
        cct = self._cct.get(cmd.handle)
        if cct is not None:
            cct.cct_deactivating = True
            if cct.plci is None:
                cct.hangup_cause = 16
            else:
                self._disconnect(cct, 16)
            return
        if cmd.reference is None:
            self._emit(isdn.CcDeactivateResult(ctrl.cfg.ctrl, cmd.handle,
                                               error="invalidCCBSReference"))
            return
        if ctrl.route is CcRoute.SUPPLEMENTARY:
            def conf(c: m.CapiMessage) -> None:
                info = self._supp_conf_info(c)
                if info != 0:
                    self._emit(isdn.CcDeactivateResult(ctrl.cfg.ctrl, cmd.handle,
                                                       error=self._error_for(info)))

            self._supp_req(ctrl, t.FN_CCBS_DEACTIVATE, {
                "handle": cmd.handle & 0xFFFFFFFF, "ccbs_reference": cmd.reference}, conf)
            return
        self._raw_invoke(ctrl, _RawInvoke("CCBSDeactivate", cmd.handle, cmd.kind),
                         rg.deactivate_arg(cmd.reference))

    def _cc_interrogate(self, ctrl: _Controller, cmd: isdn.CcInterrogate) -> None:
        _check_handle(cmd.handle)
        if ctrl.cfg.ptp:
            # CCBS-T has no interrogation: the connections themselves are the state.
            self._emit(isdn.CcInterrogateResult(ctrl.cfg.ctrl, cmd.handle,
                                                error="not-supported"))
            return
        if ctrl.route is CcRoute.SUPPLEMENTARY:
            function = (t.FN_CCNR_INTERROGATE if cmd.kind is CcKind.CCNR
                        else t.FN_CCBS_INTERROGATE)

            def conf(c: m.CapiMessage) -> None:
                info = self._supp_conf_info(c)
                if info != 0:
                    self._emit(isdn.CcInterrogateResult(ctrl.cfg.ctrl, cmd.handle,
                                                        error=self._error_for(info)))

            self._supp_req(ctrl, function, {
                "handle": cmd.handle & 0xFFFFFFFF,
                "ccbs_reference": (t.CCBS_REFERENCE_ALL if cmd.reference is None
                                   else cmd.reference),
                "party_number": m.called_number(cmd.party_number_of_a or "")}, conf)
            return
        operation = "CCNRInterrogate" if cmd.kind is CcKind.CCNR else "CCBSInterrogate"
        self._raw_invoke(ctrl, _RawInvoke(operation, cmd.handle, cmd.kind),
                         rg.interrogate_arg(cmd.reference, cmd.party_number_of_a))

    def _supp_request_result(self, ctrl: _Controller, msg: m.CapiMessage,
                             param: m.SuppParam) -> None:
        reason, handle = param.get_int("reason"), param.get_int("handle")
        if reason != 0:
            self._emit(isdn.CcRequestResult(ctrl.cfg.ctrl, handle, error=self._error_for(reason)))
            return
        self._emit(isdn.CcRequestResult(
            ctrl.cfg.ctrl, handle, reference=param.get_int("ccbs_reference") & 0x7F,
            recall_mode=_recall_mode(param.get_int("recall_mode"))))

    def _supp_deactivate_result(self, ctrl: _Controller, msg: m.CapiMessage,
                                param: m.SuppParam) -> None:
        reason = param.get_int("reason")
        self._emit(isdn.CcDeactivateResult(ctrl.cfg.ctrl, param.get_int("handle"),
                                           error=self._error_for(reason) if reason else None))

    def _supp_interrogate_result(self, ctrl: _Controller, msg: m.CapiMessage,
                                 param: m.SuppParam) -> None:
        reason, handle = param.get_int("reason"), param.get_int("handle")
        if reason != 0:
            self._emit(isdn.CcInterrogateResult(ctrl.cfg.ctrl, handle,
                                                error=self._error_for(reason)))
            return
        instances = m.decode_interrogate_instances(param.get_struct("instances"))
        refs = tuple(int(i.get("ccbs_reference", 0)) & 0x7F for i in instances
                     if isinstance(i.get("ccbs_reference", 0), int))
        self._emit(isdn.CcInterrogateResult(
            ctrl.cfg.ctrl, handle, recall_mode=_recall_mode(param.get_int("recall_mode")),
            references=refs))

    def _supp_info_retain(self, ctrl: _Controller, msg: m.CapiMessage,
                          param: m.SuppParam) -> None:
        call = self._by_plci.get(msg.address)
        if call is None or call.cct_handle is not None:
            return
        kind = CcKind.CCNR if param.function == t.FN_CCNR_INFO_RETAIN else CcKind.CCBS
        self._emit(isdn.CcAvailable(call.ctrl, call.call_id, kind,
                                    param.get_int("call_linkage_id") & 0x7F, call.called,
                                    call.calling, call.bearer))

    def _supp_erase_linkage(self, ctrl: _Controller, msg: m.CapiMessage,
                            param: m.SuppParam) -> None:
        self._emit(isdn.CcEraseCallLinkage(ctrl.cfg.ctrl,
                                           param.get_int("call_linkage_id") & 0x7F))

    def _supp_status(self, ctrl: _Controller, msg: m.CapiMessage, param: m.SuppParam) -> None:
        token_id = next(self._token_seq)
        token = _Token(ctrl.cfg.ctrl, True, number=msg.number)
        assert self._loop is not None
        token.timer = self._loop.call_later(self.config.status_answer_timeout,
                                            self._status_unanswered, token_id)
        self._tokens[token_id] = token
        self._emit(isdn.CcStatusRequest(
            ctrl.cfg.ctrl, token_id, param.get_int("ccbs_reference") & 0x7F,
            _recall_mode(param.get_int("recall_mode")), _supp_bearer(param)))

    def _status_unanswered(self, token_id: int) -> None:
        token = self._tokens.pop(token_id, None)
        if token is not None and token.supplementary:
            # Every IND is answered; an empty RESP means "no answer from this terminal".
            self._status_resp(token, None)

    def _status_resp(self, token: _Token, free: bool | None) -> None:
        fields: dict[str, m.Value] = {} if free is None else {"free": int(free)}
        try:
            self._put(m.message(
                C.FACILITY, S.RESP, token.number, address=token.ctrl,
                selector=t.SELECTOR_SUPPLEMENTARY,
                parameter=m.encode_supp(S.RESP, m.SuppParam(t.FN_CCBS_STATUS, fields))))
        except LinkDown:
            pass

    def _supp_remote_user_free(self, ctrl: _Controller, msg: m.CapiMessage,
                               param: m.SuppParam) -> None:
        self._emit(isdn.CcRemoteUserFree(
            ctrl.cfg.ctrl, param.get_int("ccbs_reference") & 0x7F,
            _recall_mode(param.get_int("recall_mode")),
            m.number_digits(param.get_struct("b_number")), _supp_bearer(param)))

    def _supp_b_free(self, ctrl: _Controller, msg: m.CapiMessage, param: m.SuppParam) -> None:
        self._emit(isdn.CcBFree(ctrl.cfg.ctrl, param.get_int("ccbs_reference") & 0x7F,
                                _recall_mode(param.get_int("recall_mode")),
                                m.number_digits(param.get_struct("b_number"))))

    def _supp_erase(self, ctrl: _Controller, msg: m.CapiMessage, param: m.SuppParam) -> None:
        self._emit(isdn.CcErase(ctrl.cfg.ctrl, param.get_int("ccbs_reference") & 0x7F,
                                _erase_reason(param.get_int("erase_reason"))))

    def _supp_stop_alerting(self, ctrl: _Controller, msg: m.CapiMessage,
                            param: m.SuppParam) -> None:
        self._emit(isdn.CcStopAlerting(ctrl.cfg.ctrl, param.get_int("ccbs_reference") & 0x7F))

    # ================================================================== answers

    def _status_answer(self, ctrl: _Controller, cmd: isdn.CcStatusAnswer) -> None:
        token = self._tokens.pop(cmd.token, None)
        if token is None:
            raise LocalError(f"status request {cmd.token} is unknown or expired")
        if token.timer is not None:
            token.timer.cancel()
        if token.supplementary:
            self._status_resp(token, cmd.free)
        else:
            self._raw_send(ctrl, None, rg.result(token.invoke_id, "CCBSStatusRequest",
                                                 rg.status_res(cmd.free)))

    def _destination_answer(self, ctrl: _Controller, cmd: isdn.DestinationStatusAnswer) -> None:
        token = self._tokens.pop(cmd.token, None)
        if token is None:
            raise LocalError(f"status request {cmd.token} is unknown or expired")
        if token.timer is not None:
            token.timer.cancel()
        self._raw_send(ctrl, None, rg.result(token.invoke_id, "StatusRequest",
                                             rg.destination_status_res(cmd.status.value)))

    # ================================================================ raw route

    def _alloc_invoke(self, ctrl: _Controller) -> int:
        for _ in _RAW_INVOKE_IDS:
            ctrl.next_invoke = ctrl.next_invoke % _RAW_INVOKE_IDS.stop + 1
            if ctrl.next_invoke not in ctrl.invokes:
                return ctrl.next_invoke
        raise LocalError("no free invoke id")

    def _raw_send(self, ctrl: _Controller, call: _Call | None, contents: bytes) -> None:
        """One Facility IE on the dummy call reference (call None) or on a call."""
        address = ctrl.cfg.ctrl if call is None or call.plci is None else call.plci
        ai = m.AdditionalInfo(facility_array=m.facility_array([contents]))
        self._req(m.message(C.INFO, S.REQ, self._next_number(), address=address,
                            additional_info=ai.encode()))

    def _raw_invoke(self, ctrl: _Controller, pending: _RawInvoke,
                    argument: Any = None) -> None:
        invoke_id = self._alloc_invoke(ctrl)
        ctrl.invokes[invoke_id] = pending
        try:
            self._raw_send(ctrl, pending.call, rg.invoke(invoke_id, pending.operation, argument))
        except LinkDown:
            ctrl.invokes.pop(invoke_id, None)
            raise

    def _cct_request(self, ctrl: _Controller, cmd: isdn.CcRequest) -> None:
        """CCBS-T-Request / CCNR-T-Request in a REGISTER connection (etsi-ccbs.md §5.7)."""
        if cmd.handle in self._cct:
            raise LocalError(f"handle {cmd.handle} already names a CCBS-T connection")
        call = _Call(f"cct-{ctrl.cfg.ctrl}-{cmd.handle}", ctrl.cfg.ctrl, True, cmd.called,
                     cmd.calling, cmd.bearer, cct_handle=cmd.handle, cct_kind=cmd.kind)
        invoke_id = self._alloc_invoke(ctrl)
        operation = "CCNR-T-Request" if cmd.kind is CcKind.CCNR else "CCBS-T-Request"
        argument = rg.cct_request_arg(cmd.called, cmd.bearer, cmd.calling)
        ai = m.AdditionalInfo(
            b_channel_info=m.b_channel_info(t.B_CHANNEL_NONE),
            facility_array=m.facility_array([rg.invoke(invoke_id, operation, argument)]))
        bc, llc, hlc = _split_bearer(cmd.bearer)
        msg = m.message(
            C.CONNECT, S.REQ, self._next_number(), controller=ctrl.cfg.ctrl,
            cip=m.cip_for_bearer(bc, hlc), called_number=m.called_number(cmd.called),
            calling_number=m.calling_number(cmd.calling), bc=bc, llc=llc, hlc=hlc,
            additional_info=ai.encode())
        ctrl.invokes[invoke_id] = _RawInvoke(operation, cmd.handle, cmd.kind, call)
        self._calls[call.call_id] = call
        self._cct[cmd.handle] = call
        try:
            self._req(msg, lambda conf: self._on_connect_conf(call, conf))
        except LinkDown:
            ctrl.invokes.pop(invoke_id, None)
            self._forget_call(call)
            raise

    def _cct_suspend(self, ctrl: _Controller, cmd: isdn.CcTSuspend) -> None:
        self._cct_invoke(ctrl, cmd.handle, "CCBS-T-Suspend")

    def _cct_resume(self, ctrl: _Controller, cmd: isdn.CcTResume) -> None:
        self._cct_invoke(ctrl, cmd.handle, "CCBS-T-Resume")

    def _cct_invoke(self, ctrl: _Controller, handle: int, operation: str) -> None:
        call = self._cct.get(handle)
        if call is None or call.plci is None:
            raise LocalError(f"no CCBS-T connection for handle {handle}")
        self._raw_send(ctrl, call, rg.invoke(self._alloc_invoke(ctrl), operation))

    def _decode_facility(self, element: bytes) -> tuple[rg.Component, ...]:
        try:
            return rg.decode(element)
        except FacilityError as exc:
            # Broadcast or call-associated input we cannot read: log, never answer
            # (etsi-ccbs.md §7 — a reject only for malformed input addressed to us).
            log.info("undecodable Facility IE %s: %s", element.hex(), exc)
            self.bad_input += 1
            return ()

    def _raw_call_facility(self, ctrl: _Controller, call: _Call, element: bytes) -> None:
        for comp in self._decode_facility(element):
            if isinstance(comp, rg.InInvoke):
                op = str(comp.operation)
                if op == "CallInfoRetain" and ctrl.route is CcRoute.RAW_FACILITY:
                    kind = (CcKind.CCNR if call.state == "alerting" and call.cause is None
                            or call.cause in (18, 19) else CcKind.CCBS)
                    self._emit(isdn.CcAvailable(call.ctrl, call.call_id, kind,
                                                rg.linkage_of(comp), call.called,
                                                call.calling, call.bearer))
                elif op == "CCBS-T-Available":
                    kind = (CcKind.CCNR if call.state == "alerting" and call.cause is None
                            or call.cause in (18, 19) else CcKind.CCBS)
                    self._emit(isdn.CcAvailable(call.ctrl, call.call_id, kind, None,
                                                call.called, call.calling, call.bearer))
                elif op == "CCBS-T-RemoteUserFree" and call.cct_handle is not None:
                    self._emit(isdn.CcTRemoteUserFree(call.ctrl, call.cct_handle))
                continue
            pending = ctrl.invokes.get(comp.invoke_id) if comp.invoke_id is not None else None
            if pending is not None and pending.call is call and call.cct_handle is not None:
                del ctrl.invokes[comp.invoke_id]  # type: ignore[arg-type]
                self._cct_result(ctrl, call, comp)
            elif isinstance(comp, rg.InError | rg.InReject) and call.recall and (
                    call.recall_invoke is None or comp.invoke_id == call.recall_invoke):
                # CCBSCall refused in the clearing of the recall (etsi-ccbs.md §5.3). On
                # the supplementary route the card invoked it: any error on the recall.
                call.error = (rg.error_name(comp) if isinstance(comp, rg.InError)
                              else "reject")

    def _cct_result(self, ctrl: _Controller, call: _Call, comp: rg.Component) -> None:
        assert call.cct_handle is not None
        call.cct_answered = True
        if isinstance(comp, rg.InResult):
            call.cct_accepted = True
            retention = bool(getattr(comp.result, "retention_supported", False))
            self._emit(isdn.CcRequestResult(ctrl.cfg.ctrl, call.cct_handle, retention=retention))
        elif isinstance(comp, rg.InError):
            self._emit(isdn.CcRequestResult(ctrl.cfg.ctrl, call.cct_handle,
                                            error=rg.error_name(comp)))
        else:
            self._emit(isdn.CcRequestResult(ctrl.cfg.ctrl, call.cct_handle, error="reject"))

    def _raw_independent(self, ctrl: _Controller, element: bytes, msn: str) -> None:
        """A Facility IE on the dummy call reference (controller-addressed INFO_IND)."""
        for comp in self._decode_facility(element):
            if isinstance(comp, rg.InInvoke):
                if str(comp.operation) in _NOTIFY_OPERATIONS:
                    self._raw_notification(ctrl, comp, msn)
                continue
            if comp.invoke_id is None:
                continue
            pending = ctrl.invokes.pop(comp.invoke_id, None)
            if pending is None or pending.call is not None:
                continue
            self._raw_result(ctrl, pending, comp)

    def _raw_result(self, ctrl: _Controller, pending: _RawInvoke, comp: rg.Component) -> None:
        c = ctrl.cfg.ctrl
        error: str | None = None
        if isinstance(comp, rg.InError):
            error = rg.error_name(comp)
        elif isinstance(comp, rg.InReject):
            error = "reject"
        res = comp.result if isinstance(comp, rg.InResult) else None
        if pending.operation in ("CCBSRequest", "CCNRRequest"):
            if error is not None:
                self._emit(isdn.CcRequestResult(c, pending.handle, error=error))
            else:
                self._emit(isdn.CcRequestResult(
                    c, pending.handle, reference=int(getattr(res, "ccbs_reference", 0)) & 0x7F,
                    recall_mode=_recall_mode(int(getattr(res, "recall_mode", 0)))))
        elif pending.operation == "CCBSDeactivate":
            self._emit(isdn.CcDeactivateResult(c, pending.handle, error=error))
        else:
            if error is not None:
                self._emit(isdn.CcInterrogateResult(c, pending.handle, error=error))
                return
            details = getattr(res, "call_details", ()) or ()
            self._emit(isdn.CcInterrogateResult(
                c, pending.handle, recall_mode=_recall_mode(int(getattr(res, "recall_mode", 0))),
                references=tuple(int(d.ccbs_reference) & 0x7F for d in details)))

    def _raw_notification(self, ctrl: _Controller, comp: rg.InInvoke, msn: str) -> None:
        c, op, arg = ctrl.cfg.ctrl, str(comp.operation), comp.argument
        if op == "EraseCallLinkageID":
            self._emit(isdn.CcEraseCallLinkage(c, rg.linkage_of(comp)))
            return
        if op == "StatusRequest":
            token_id = self._new_raw_token(c, comp.invoke_id, op)
            self._emit(isdn.DestinationStatusRequest(
                c, token_id, msn, bytes(getattr(arg, "q931_information_element", b""))))
            return
        reference = rg.reference_of(comp)
        mode = _recall_mode(int(getattr(arg, "recall_mode", 0)))
        bearer = bytes(getattr(arg, "q931_info_element", b"") or b"")
        b_number = rg.address_digits(getattr(arg, "address_of_b", None))
        if op == "CCBSStatusRequest":
            token_id = self._new_raw_token(c, comp.invoke_id, op)
            self._emit(isdn.CcStatusRequest(c, token_id, reference, mode, bearer))
        elif op == "CCBSRemoteUserFree":
            self._emit(isdn.CcRemoteUserFree(c, reference, mode, b_number, bearer))
        elif op == "CCBSBFree":
            self._emit(isdn.CcBFree(c, reference, mode, b_number))
        elif op == "CCBSErase":
            self._emit(isdn.CcErase(c, reference,
                                    _erase_reason(int(getattr(arg, "erase_reason", 0)))))
        elif op == "CCBSStopAlerting":
            self._emit(isdn.CcStopAlerting(c, reference))

    def _new_raw_token(self, ctrl: int, invoke_id: int, operation: str) -> int:
        token_id = next(self._token_seq)
        token = _Token(ctrl, False, invoke_id=invoke_id, operation=operation)
        assert self._loop is not None
        # Answers after T-CCBS1 (+2 s, libpri) are useless: forget the token then.
        token.timer = self._loop.call_later(self.config.status_answer_timeout + 3.0,
                                            self._tokens.pop, token_id, None)
        self._tokens[token_id] = token
        return token_id


def _check_handle(handle: int) -> None:
    # The supplementary route carries the handle in a dword (capi.md §6.4).
    if not 0 <= handle <= 0xFFFFFFFF:
        raise LocalError(f"handle {handle} does not fit the 32-bit CAPI Handle")


class _LibraryThread(Executor):
    """One daemon thread for libcapi20's blocking calls. A daemon, unlike the threads of
    ThreadPoolExecutor, cannot keep the process from exiting when the library never
    returns from a request to a silent server (capi.md §3)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]
                                      | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="capi20", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # handed to the waiting coroutine
                    future.set_exception(exc)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if kwargs:
            raise TypeError("keyword arguments are not supported")
        future: Future[T] = Future()
        self._jobs.put((future, fn, args))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._jobs.put(None)
        if wait:
            self._thread.join()


def _split_bearer(bearer: bytes) -> tuple[bytes, bytes, bytes]:
    try:
        return m.split_bearer(bearer)
    except CapiMessageError as exc:
        raise LocalError(f"bearer {bearer.hex()} is not a list of Q.931 IEs: {exc}") from exc


def _supp_bearer(param: m.SuppParam) -> bytes:
    bc = param.get_struct("bc")
    if bc:
        return m.join_bearer(bc, param.get_struct("llc"), param.get_struct("hlc"))
    return m.bearer_for_cip(param.get_int("cip"))


def _recall_mode(value: int) -> RecallMode:
    return RecallMode.SPECIFIC if value == 1 else RecallMode.GLOBAL


def _erase_reason(value: int) -> isdn.EraseReason:
    try:
        return isdn.EraseReason(value)
    except ValueError:
        return isdn.EraseReason.NORMAL_UNSPECIFIED


_IND_HANDLERS: dict[C, Callable[[CapiDriver, m.CapiMessage], None]] = {
    C.CONNECT: CapiDriver._connect_ind,
    C.CONNECT_ACTIVE: CapiDriver._connect_active_ind,
    C.DISCONNECT: CapiDriver._disconnect_ind,
    C.INFO: CapiDriver._info_ind,
    C.FACILITY: CapiDriver._facility_ind,
}

_SUPP_HANDLERS: dict[int, Callable[[CapiDriver, _Controller, m.CapiMessage, m.SuppParam],
                                   None]] = {
    t.FN_CCBS_REQUEST: CapiDriver._supp_request_result,
    t.FN_CCNR_REQUEST: CapiDriver._supp_request_result,
    t.FN_CCBS_DEACTIVATE: CapiDriver._supp_deactivate_result,
    t.FN_CCBS_INTERROGATE: CapiDriver._supp_interrogate_result,
    t.FN_CCNR_INTERROGATE: CapiDriver._supp_interrogate_result,
    t.FN_CCBS_INFO_RETAIN: CapiDriver._supp_info_retain,
    t.FN_CCNR_INFO_RETAIN: CapiDriver._supp_info_retain,
    t.FN_CCBS_ERASE_CALL_LINKAGE_ID: CapiDriver._supp_erase_linkage,
    t.FN_CCBS_REMOTE_USER_FREE: CapiDriver._supp_remote_user_free,
    t.FN_CCBS_B_FREE: CapiDriver._supp_b_free,
    t.FN_CCBS_ERASE: CapiDriver._supp_erase,
    t.FN_CCBS_STOP_ALERTING: CapiDriver._supp_stop_alerting,
}

_COMMAND_HANDLERS: dict[type, Callable[[CapiDriver, _Controller, Any], None]] = {
    isdn.PlaceCall: CapiDriver._place_call,
    isdn.AnswerCall: CapiDriver._answer,
    isdn.RejectCall: CapiDriver._reject,
    isdn.HangUp: CapiDriver._hang_up,
    isdn.CcRequest: CapiDriver._cc_request,
    isdn.CcDeactivate: CapiDriver._cc_deactivate,
    isdn.CcInterrogate: CapiDriver._cc_interrogate,
    isdn.CcStatusAnswer: CapiDriver._status_answer,
    isdn.DestinationStatusAnswer: CapiDriver._destination_answer,
    isdn.CcTSuspend: CapiDriver._cct_suspend,
    isdn.CcTResume: CapiDriver._cct_resume,
}

__all__ = ["CapiConfig", "CapiDriver", "ControllerConfig", "INFO_MASK", "NOTIFICATION_MASK"]
