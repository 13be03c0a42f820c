"""The simulated ISDN card firmware: one CAPI 2.0 controller on one BRI access.

``SimController`` owns the controller's CAPI state machine toward applications (PLCIs,
a CONF for every REQ, a RESP expected for every IND, LISTEN Info/CIP masks, INFO_INDs as
the Info mask asks, the supplementary-services Listen notification mask) and translates
between CAPI messages and the Q.931 messages of ``drivers/sim/q931.py`` toward the
simulated exchange. It must not decide CCBS (the exchange does) nor touch sockets or
asyncio (``rcapi.py`` carries its messages); it is deterministic.

CCBS is offered the two ways real cards offer it (shared/docs/capi.md §6, §8):

* **supplementary services** (``ControllerSpec.supplementary``; profile global option
  0x10, GetSupportedServices bits 0x80/0x200): the firmware speaks ROSE itself. FACILITY_REQ
  selector 3 CCBS request/deactivate/interrogate become invokes in FACILITY on the dummy
  call reference, CCBS call becomes a SETUP with CCBSCall; network invokes become
  FACILITY_IND 0x80xx to every application whose notification mask asks for CCBS/CCNR, and
  a CCBS status indication (0x800E) is answered by the application's FACILITY_RESP, which
  the firmware turns into the CCBSStatusRequest return result.
* **raw Facility IEs**: Facility IEs of a call arrive as INFO_IND 0x001C on its PLCI,
  dummy-call-reference FACILITY messages as INFO_IND 0x001C addressed to the controller
  (preceded by INFO_IND 0x0070 with the MSN the network named); the Facility data array
  of INFO_REQ (controller = dummy call reference, PLCI = that call), CONNECT_REQ,
  CONNECT_RESP, ALERT_REQ and DISCONNECT_REQ is sent as Facility IEs. A Cause IE in
  the array of DISCONNECT_REQ / the Reject of CONNECT_RESP choose the clearing cause.

Per application the firmware consumes a network CCBS operation only when that
application asked for CCBS notifications (supplementary Listen); otherwise it passes the
IE raw, so an application may use either route on the same controller.

Conventions of the simulator (documented, not CAPI folklore): a CONNECT_REQ whose B
channel information is 2 ("neither B nor D channel") opens a call-independent signalling
connection (Q.931 REGISTER) — the CCBS-T connection of a point-to-point access; the
firmware picks call references 0x01..0x3F (the exchange uses 0x40..0x7F); supplementary
Reasons 0x36xx carry the ETSI error value (``tables.SUPPLEMENTARY_REASON``).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ccbs_isdn.errors import CapiMessageError, FacilityError
from ccbs_isdn.isdn import BEARER_SPEECH

from ..capi20 import messages as m
from ..capi20 import rose_glue as rg
from ..capi20 import tables as t
from ..capi20.tables import Command as C
from ..capi20.tables import Subcommand as S
from .q931 import Q931, MsgType

log = logging.getLogger("ccbs_isdn.sim.controller")

#: Profile defaults (capi.md §5.5): internal controller, DTMF; B1 64k HDLC + transparent,
#: B2 X.75 + transparent, B3 transparent.
_GOPT_BASE = 0x0001 | 0x0008
_FIRST_FIRMWARE_INVOKE = 0x4000  # the application's raw invokes stay below (driver: 1..)
_USER_CR = range(0x01, 0x40)
_CCBS_NOTIFICATIONS = {
    "CCBSRemoteUserFree": t.FN_CCBS_REMOTE_USER_FREE,
    "CCBSBFree": t.FN_CCBS_B_FREE,
    "CCBSErase": t.FN_CCBS_ERASE,
    "CCBSStopAlerting": t.FN_CCBS_STOP_ALERTING,
    "EraseCallLinkageID": t.FN_CCBS_ERASE_CALL_LINKAGE_ID,
    "CCBSStatusRequest": t.FN_CCBS_STATUS,
}
_RESULT_FUNCTION = {
    "CCBSRequest": t.FN_CCBS_REQUEST,
    "CCNRRequest": t.FN_CCNR_REQUEST,
    "CCBSDeactivate": t.FN_CCBS_DEACTIVATE,
    "CCBSInterrogate": t.FN_CCBS_INTERROGATE,
    "CCNRInterrogate": t.FN_CCNR_INTERROGATE,
}
_SUPP_REQUEST_OPERATION = {v: k for k, v in _RESULT_FUNCTION.items()}


class AppPort(Protocol):
    """Where the firmware sends messages for one registered application."""

    name: str

    def send(self, msg: m.CapiMessage) -> None: ...


@dataclass(frozen=True, slots=True)
class ControllerSpec:
    """One simulated controller: its CAPI number and the exchange access behind it.
    ``supplementary`` False = a card without supplementary services (only the raw
    Facility route works: the "refuse CCBS" fault of the simulator)."""

    ctrl: int
    access_id: str
    msns: tuple[str, ...] = ()
    supplementary: bool = True
    ptp: bool = False
    nbchannels: int = 2


@dataclass(eq=False)
class _App:
    port: AppPort
    info_mask: int = 0
    cip_mask: int = 0
    listening: bool = False
    notification_mask: int = 0
    next_number: int = 0x4000
    pending: dict[int, str] = field(default_factory=dict)


@dataclass(eq=False)
class _Plci:
    """One PLCI: a call (outgoing or incoming) or a REGISTER signalling connection."""

    plci: int
    cr: int
    outgoing: bool
    register: bool = False
    owner: _App | None = None
    offered: list[_App] = field(default_factory=list)
    state: str = "setup"  # setup | offered | alerting | connecting | active | clearing
    cause: int | None = None
    disconnect_ind_sent: bool = False
    called: str = ""
    calling: str = ""
    bearer: bytes = b""
    alerted: bool = False


@dataclass(eq=False)
class _Invoke:
    """An invoke the firmware sent for an application's selector-3 request."""

    app: _App
    function: int
    handle: int
    operation: str
    linkage: int | None = None  # of a CCBS/CCNR request: the failed call it names


@dataclass(eq=False)
class _StatusPoll:
    """A CCBSStatusRequest waiting for the applications' FACILITY_RESPs."""

    invoke_id: int
    waiting: set[_App]
    answered: bool = False
    busy: bool = False


@dataclass(eq=False)
class _CcInfo:
    """What the firmware remembers to place a selector-3 CCBS call (which carries only
    the reference): B's number, A's number and the bearer of the original call."""

    called: str
    calling: str
    bearer: bytes


class SimController:
    """The firmware of one controller. ``uplink`` sends a Q.931 message to the network;
    ``from_network`` takes the network's messages; ``from_app`` the applications'."""

    def __init__(self, spec: ControllerSpec, uplink: Callable[[Q931], None]) -> None:
        self.spec = spec
        self._uplink = uplink
        self._apps: dict[int, _App] = {}
        self._plcis: dict[int, _Plci] = {}
        self._by_cr: dict[int, _Plci] = {}
        self._invokes: dict[int, _Invoke] = {}
        self._status: dict[int, _StatusPoll] = {}
        self._status_by_number: dict[tuple[int, int], _StatusPoll] = {}
        self._next_invoke = _FIRST_FIRMWARE_INVOKE
        self._linkages: dict[int, _CcInfo] = {}
        self._references: dict[int, _CcInfo] = {}
        #: protocol violations by applications (a RESP for no IND, a bad message ...)
        self.violations: list[str] = []

    # ================================================================== identity

    @property
    def ctrl(self) -> int:
        return self.spec.ctrl

    def profile(self) -> bytes:
        """The 64-octet profile (capi.md §5.5); byte 0-1 is filled by the server."""
        gopt = _GOPT_BASE | (t.GLOBAL_OPTION_SUPPLEMENTARY if self.spec.supplementary else 0)
        head = struct.pack("<HHIIII", 0, self.spec.nbchannels, gopt, 0x3, 0x3, 0x1)
        return head + bytes(64 - len(head))

    def supported_services(self) -> int:
        if not self.spec.supplementary or self.spec.ptp:
            return 0  # CAPI selector 3 has no CCBS-T functions
        return t.SERVICE_CCBS | t.SERVICE_CCNR

    # ============================================================ applications

    def attach_app(self, port: AppPort) -> None:
        self._apps[id(port)] = _App(port)

    def detach_app(self, port: AppPort) -> None:
        """The application's connection is gone: its calls are cleared toward the
        network, its pending status answers count as "no answer"."""
        app = self._apps.pop(id(port), None)
        if app is None:
            return
        for plci in list(self._plcis.values()):
            if app in plci.offered:
                plci.offered.remove(app)
            if plci.owner is app:
                self._clear_toward_network(plci, 16)
                self._free(plci)
            elif plci.owner is None and not plci.offered and plci.state == "offered":
                self._free(plci)  # nobody else was asked: ignore the call
        for poll in list(self._status.values()):
            if app in poll.waiting:
                poll.waiting.discard(app)
                self._status_settled(poll)
        for number, inv in list(self._invokes.items()):
            if inv.app is app:
                del self._invokes[number]

    def from_app(self, port: AppPort, msg: m.CapiMessage) -> None:
        app = self._apps.get(id(port))
        if app is None:
            self.attach_app(port)
            app = self._apps[id(port)]
        handler = _APP_HANDLERS.get((msg.command, msg.subcommand))
        if msg.subcommand is S.RESP:
            self._on_resp(app, msg)
        if handler is not None:
            handler(self, app, msg)
        elif msg.subcommand is S.REQ:
            # A REQ we do not implement (B3 data...): answered, never ignored.
            self._conf(app, msg, t.INFO_WRONG_STATE)
        elif msg.subcommand is not S.RESP:
            self._violation(app, f"{msg.name} is not sent by applications")

    # -------------------------------------------------------------- sending

    def _send(self, app: _App, msg: m.CapiMessage) -> None:
        if msg.subcommand is S.IND:
            app.pending[msg.number] = msg.name
        app.port.send(msg)

    def _ind(self, app: _App, command: C, **params: m.Value) -> None:
        app.next_number = (app.next_number + 1) & 0xFFFF
        self._send(app, m.message(command, S.IND, app.next_number, **params))

    def _conf(self, app: _App, req: m.CapiMessage, info: int, **params: m.Value) -> None:
        layout = m.LAYOUTS[(req.command, S.CONF)]
        values: dict[str, m.Value] = {layout[0][0]: params.pop("address", req.address)}
        if any(name == "info" for name, _ in layout):
            values["info"] = info
        if req.command is C.FACILITY:
            values["selector"] = req.get_int("selector")
        values.update(params)
        self._send(app, m.message(req.command, S.CONF, req.number, **values))

    def _violation(self, app: _App, text: str) -> None:
        self.violations.append(f"{app.port.name}: {text}")
        log.warning("controller %d: %s: %s", self.ctrl, app.port.name, text)

    def _on_resp(self, app: _App, msg: m.CapiMessage) -> None:
        name = app.pending.pop(msg.number, None)
        expected = f"{msg.command.name}_IND"
        if name is None:
            self._violation(app, f"{msg.name} #{msg.number} answers no indication")
        elif name != expected:
            self._violation(app, f"{msg.name} #{msg.number} answers {name}")

    # ------------------------------------------------------------------ LISTEN

    def _listen_req(self, app: _App, msg: m.CapiMessage) -> None:
        if msg.controller != self.ctrl:
            self._conf(app, msg, t.INFO_ILLEGAL_ADDRESS)
            return
        app.info_mask = msg.get_int("info_mask")
        app.cip_mask = msg.get_int("cip_mask")
        app.listening = True
        self._conf(app, msg, 0)

    # ------------------------------------------------------------ outgoing calls

    def _connect_req(self, app: _App, msg: m.CapiMessage) -> None:
        try:
            ai = m.AdditionalInfo.decode(msg.get_struct("additional_info"))
            facilities = m.facilities_in_array(ai.facility_array)
        except CapiMessageError as exc:
            self._violation(app, f"CONNECT_REQ: {exc}")
            self._conf(app, msg, t.INFO_ILLEGAL_PARAMETER)
            return
        register = ai.b_channel_mode == t.B_CHANNEL_NONE
        bearer = self._bearer_of(msg.get_int("cip"), msg.get_struct("bc"),
                                 msg.get_struct("llc"), msg.get_struct("hlc"))
        if bearer is None and not register:
            self._conf(app, msg, t.INFO_CIP_UNKNOWN)
            return
        called = m.number_digits(msg.get_struct("called_number"))
        calling = m.number_digits(msg.get_struct("calling_number")) or self._default_msn()
        plci = self._new_plci(app, outgoing=True, register=register)
        if plci is None:
            self._conf(app, msg, t.INFO_OUT_OF_PLCI)
            return
        plci.called, plci.calling, plci.bearer = called, calling, bearer or b""
        self._conf(app, msg, 0, address=plci.plci)
        self._up(Q931(MsgType.REGISTER if register else MsgType.SETUP, plci.cr, False,
                      called=called, calling=calling, bearer=bearer or b"",
                      facility=facilities))

    def _bearer_of(self, cip: int, bc: bytes, llc: bytes, hlc: bytes) -> bytes | None:
        if bc:
            return m.join_bearer(bc, llc, hlc)
        implied = m.bearer_for_cip(cip)
        if not implied:
            return None
        return implied + (m.build_ie(m.IE_LLC, llc) if llc else b"")

    def _default_msn(self) -> str:
        return self.spec.msns[0] if self.spec.msns else ""

    def _new_plci(self, app: _App | None, *, outgoing: bool, register: bool = False,
                  cr: int | None = None) -> _Plci | None:
        index = next((i for i in range(1, 256) if (self.ctrl | i << 8) not in self._plcis),
                     None)
        if cr is None:
            cr = next((c for c in _USER_CR if c not in self._by_cr), None)
        if index is None or cr is None:
            return None
        plci = _Plci(self.ctrl | index << 8, cr, outgoing, register, owner=app)
        self._plcis[plci.plci] = plci
        self._by_cr[cr] = plci
        return plci

    def _free(self, plci: _Plci) -> None:
        self._plcis.pop(plci.plci, None)
        if self._by_cr.get(plci.cr) is plci:
            del self._by_cr[plci.cr]

    def _up(self, msg: Q931) -> None:
        self._uplink(msg)

    # ------------------------------------------------------------ incoming calls

    def _incoming_setup(self, msg: Q931) -> None:
        assert msg.cr is not None
        bc, llc, hlc = self._split_bearer(msg.bearer)
        cip = m.cip_for_bearer(bc, hlc)
        apps = [a for a in self._apps.values() if a.listening and (
            a.cip_mask & 1 or a.cip_mask & (1 << cip))]
        if not apps:
            return  # nobody listens: another terminal on the bus may take the call
        plci = self._new_plci(None, outgoing=False, cr=msg.cr)
        if plci is None:
            self._up(Q931(MsgType.RELEASE_COMPLETE, msg.cr, False, cause=34))
            return
        plci.state, plci.offered = "offered", list(apps)
        plci.called, plci.calling, plci.bearer = msg.called, msg.calling, msg.bearer
        array = m.facility_array(msg.facility) if msg.facility else b""
        for app in apps:
            self._ind(app, C.CONNECT, plci=plci.plci, cip=cip,
                      called_number=m.called_number(msg.called),
                      calling_number=m.calling_number(msg.calling, presentation=0x83),
                      bc=bc, llc=llc, hlc=hlc,
                      additional_info=m.AdditionalInfo(facility_array=array).encode())

    @staticmethod
    def _split_bearer(bearer: bytes) -> tuple[bytes, bytes, bytes]:
        try:
            return m.split_bearer(bearer)
        except CapiMessageError:
            return m.split_bearer(BEARER_SPEECH)

    def _connect_resp(self, app: _App, msg: m.CapiMessage) -> None:
        plci = self._plcis.get(msg.address)
        if plci is None or plci.state != "offered" or app not in plci.offered:
            self._violation(app, f"CONNECT_RESP for PLCI 0x{msg.address:X} not offered to it")
            return
        reject = msg.get_int("reject")
        try:
            ai = m.AdditionalInfo.decode(msg.get_struct("additional_info"))
            facilities = m.facilities_in_array(ai.facility_array)
        except CapiMessageError as exc:
            self._violation(app, f"CONNECT_RESP: {exc}")
            facilities = ()
        if reject == t.REJECT_IGNORE:
            plci.offered.remove(app)
            if not plci.offered:
                self._free(plci)  # everybody ignored it: stay silent like an idle bus
            return
        plci.offered.remove(app)
        if reject == t.REJECT_ACCEPT:
            plci.owner, plci.state = app, "connecting"
            for other in plci.offered:
                self._ind(other, C.DISCONNECT, plci=plci.plci, reason=0x3304)
            plci.offered = []
            self._up(Q931(MsgType.CONNECT, plci.cr, False, facility=facilities))
            return
        if reject & 0xFF00 == 0x3400:
            cause = reject & 0x7F
        else:
            cause = t.CAUSE_FOR_REJECT.get(reject, 31)
        plci.owner, plci.state = app, "clearing"
        for other in plci.offered:
            self._ind(other, C.DISCONNECT, plci=plci.plci, reason=0x3304)
        plci.offered = []
        self._up(Q931(MsgType.RELEASE_COMPLETE, plci.cr, False, cause=cause,
                      facility=facilities))
        self._report_disconnect(plci, 0)

    def _alert_req(self, app: _App, msg: m.CapiMessage) -> None:
        plci = self._plcis.get(msg.address)
        if plci is None or plci.outgoing or plci.state not in ("offered", "connecting"):
            self._conf(app, msg, t.INFO_WRONG_STATE)
            return
        if plci.alerted:
            self._conf(app, msg, 0x0003)
            return
        facilities = self._facilities_of(app, msg)
        plci.alerted = True
        self._conf(app, msg, 0)
        self._up(Q931(MsgType.ALERTING, plci.cr, False, facility=facilities))

    def _facilities_of(self, app: _App, msg: m.CapiMessage) -> tuple[bytes, ...]:
        try:
            ai = m.AdditionalInfo.decode(msg.get_struct("additional_info"))
            return m.facilities_in_array(ai.facility_array)
        except CapiMessageError as exc:
            self._violation(app, f"{msg.name}: {exc}")
            return ()

    # ----------------------------------------------------------------- clearing

    def _disconnect_req(self, app: _App, msg: m.CapiMessage) -> None:
        plci = self._plcis.get(msg.address)
        if plci is None or (plci.owner is not app):
            self._conf(app, msg, t.INFO_ILLEGAL_ADDRESS)
            return
        try:
            ai = m.AdditionalInfo.decode(msg.get_struct("additional_info"))
            facilities = m.facilities_in_array(ai.facility_array)
            cause = m.cause_in_array(ai.facility_array)
        except CapiMessageError as exc:
            self._violation(app, f"DISCONNECT_REQ: {exc}")
            facilities, cause = (), None
        self._conf(app, msg, 0)
        if plci.state == "clearing":
            return
        plci.state = "clearing"
        self._up(Q931(MsgType.DISCONNECT, plci.cr, False,
                      cause=cause if cause is not None else 16, facility=facilities))

    def _disconnect_resp(self, app: _App, msg: m.CapiMessage) -> None:
        plci = self._plcis.get(msg.address)
        if plci is not None and plci.disconnect_ind_sent and plci.owner is app:
            self._free(plci)

    def _clear_toward_network(self, plci: _Plci, cause: int) -> None:
        if plci.state == "clearing":
            return
        unanswered = plci.state == "offered"
        plci.state = "clearing"
        kind = MsgType.RELEASE_COMPLETE if unanswered else MsgType.DISCONNECT
        self._up(Q931(kind, plci.cr, False, cause=cause))

    def _report_disconnect(self, plci: _Plci, reason: int) -> None:
        if plci.disconnect_ind_sent:
            return
        plci.disconnect_ind_sent = True
        if plci.owner is None:
            # An incoming call nobody took yet: every application it was offered to
            # (CONNECT_IND) learns that it is gone, e.g. the caller hung up while the
            # phone rang — otherwise the box would ring on until its own timeout.
            for other in plci.offered:
                self._ind(other, C.DISCONNECT, plci=plci.plci, reason=reason or t.cause_to_reason(16))
            plci.offered = []
            self._free(plci)
            return
        self._ind(plci.owner, C.DISCONNECT, plci=plci.plci, reason=reason)

    # -------------------------------------------------------------------- INFO

    def _info_req(self, app: _App, msg: m.CapiMessage) -> None:
        facilities = self._facilities_of(app, msg)
        if msg.address & 0xFF00 == 0:
            if msg.controller != self.ctrl:
                self._conf(app, msg, t.INFO_ILLEGAL_ADDRESS)
                return
            self._conf(app, msg, 0)
            for contents in facilities:  # call-independent: the dummy call reference
                self._up(Q931(MsgType.FACILITY, None, False, facility=(contents,)))
            return
        plci = self._plcis.get(msg.address)
        if plci is None or plci.owner is not app:
            self._conf(app, msg, t.INFO_ILLEGAL_ADDRESS)
            return
        self._conf(app, msg, 0)
        if facilities and plci.state != "clearing":
            self._up(Q931(MsgType.FACILITY, plci.cr, False, facility=facilities))

    def _info_ind(self, app: _App, address: int, number: int, element: bytes = b"") -> None:
        self._ind(app, C.INFO, address=address, info_number=number, info_element=element)

    def _message_event(self, plci: _Plci, msg_type: MsgType) -> None:
        """INFO_IND 0x80xx for a message received on a call (Info mask bit 4)."""
        app = plci.owner
        if app is not None and app.info_mask & t.INFO_MASK_PROGRESS:
            self._info_ind(app, plci.plci, t.INFO_NUMBER_MESSAGE_BASE | msg_type.value)

    # ================================================================ network side

    def from_network(self, msg: Q931) -> None:
        """A Q.931 message from the exchange toward this access (the ``deliver`` of it)."""
        if msg.cr is None:
            if msg.type is MsgType.FACILITY:
                self._dummy_facility(msg)
            return
        plci = self._by_cr.get(msg.cr)
        if plci is None:
            if msg.type is MsgType.SETUP:
                self._incoming_setup(msg)
            elif msg.type is MsgType.RELEASE:
                self._up(Q931(MsgType.RELEASE_COMPLETE, msg.cr, False))
            elif msg.type not in (MsgType.RELEASE_COMPLETE, MsgType.SETUP):
                self._up(Q931(MsgType.RELEASE_COMPLETE, msg.cr, False, cause=81))
            return
        handler = _NETWORK_HANDLERS.get(msg.type)
        if handler is not None:
            handler(self, plci, msg)

    def _net_call_proceeding(self, plci: _Plci, msg: Q931) -> None:
        self._message_event(plci, msg.type)

    def _net_alerting(self, plci: _Plci, msg: Q931) -> None:
        if plci.state == "setup":
            plci.state = "alerting"
        self._message_event(plci, msg.type)
        self._call_facilities(plci, msg, alerting=True)

    def _net_connect(self, plci: _Plci, msg: Q931) -> None:
        if plci.state not in ("setup", "alerting"):
            return
        plci.state = "active"
        self._up(Q931(MsgType.CONNECT_ACK, plci.cr, False))
        self._message_event(plci, msg.type)
        self._call_facilities(plci, msg)
        if plci.owner is not None:
            self._ind(plci.owner, C.CONNECT_ACTIVE, plci=plci.plci,
                      connected_number=m.calling_number(plci.called, presentation=0x83))

    def _net_connect_ack(self, plci: _Plci, msg: Q931) -> None:
        if plci.state != "connecting" or plci.owner is None:
            return
        plci.state = "active"
        self._ind(plci.owner, C.CONNECT_ACTIVE, plci=plci.plci)

    def _net_facility(self, plci: _Plci, msg: Q931) -> None:
        self._message_event(plci, msg.type)
        self._call_facilities(plci, msg)

    def _net_disconnect(self, plci: _Plci, msg: Q931) -> None:
        app = plci.owner
        plci.cause = msg.cause
        if app is not None and app.info_mask & t.INFO_MASK_EARLY_B3:
            self._info_ind(app, plci.plci, t.INFO_NUMBER_DISCONNECT)
        self._cause_info(plci, msg.cause)
        self._call_facilities(plci, msg, clearing_cause=msg.cause)
        # No B3 connection is ever up here, so the controller clears on its own
        # (capi.md §5.3, Info mask bit 9) and reports the network's cause.
        plci.state = "clearing"
        self._up(Q931(MsgType.RELEASE, plci.cr, False))
        self._report_disconnect(plci, t.cause_to_reason(msg.cause) if msg.cause else 0)

    def _net_release(self, plci: _Plci, msg: Q931) -> None:
        self._up(Q931(MsgType.RELEASE_COMPLETE, plci.cr, False))
        self._net_cleared(plci, msg)

    def _net_release_complete(self, plci: _Plci, msg: Q931) -> None:
        self._net_cleared(plci, msg)

    def _net_cleared(self, plci: _Plci, msg: Q931) -> None:
        if self._by_cr.get(plci.cr) is plci:
            del self._by_cr[plci.cr]  # the call reference is free again on the D channel
        if plci.disconnect_ind_sent:
            return
        if plci.cause is None and msg.cause is not None:
            plci.cause = msg.cause
            self._cause_info(plci, msg.cause)
        self._call_facilities(plci, msg, clearing_cause=plci.cause)
        cause = plci.cause
        plci.state = "clearing"
        for other in plci.offered:
            self._ind(other, C.DISCONNECT, plci=plci.plci, reason=t.cause_to_reason(cause or 16))
        plci.offered = []
        self._report_disconnect(plci, t.cause_to_reason(cause) if cause else 0)

    def _cause_info(self, plci: _Plci, cause: int | None) -> None:
        app = plci.owner
        if cause is not None and app is not None and app.info_mask & t.INFO_MASK_CAUSE:
            self._info_ind(app, plci.plci, t.INFO_NUMBER_CAUSE, m.cause_contents(cause))

    # ----------------------------------------------------- Facility IEs of a call

    def _call_facilities(self, plci: _Plci, msg: Q931, *, alerting: bool = False,
                         clearing_cause: int | None = None) -> None:
        app = plci.owner
        if app is None:
            return
        for contents in msg.facility:
            if app.info_mask & t.INFO_MASK_FACILITY:
                self._info_ind(app, plci.plci, t.INFO_NUMBER_FACILITY, contents)
            if not app.notification_mask & (t.SERVICE_CCBS | t.SERVICE_CCNR):
                continue
            try:
                components = rg.decode(contents)
            except FacilityError:
                continue
            for comp in components:
                if isinstance(comp, rg.InInvoke) and comp.operation == "CallInfoRetain":
                    linkage = rg.linkage_of(comp)
                    ccnr = alerting or clearing_cause in (18, 19)
                    self._linkages[linkage] = _CcInfo(plci.called, plci.calling, plci.bearer)
                    function = t.FN_CCNR_INFO_RETAIN if ccnr else t.FN_CCBS_INFO_RETAIN
                    want = t.SERVICE_CCNR if ccnr else t.SERVICE_CCBS
                    if app.notification_mask & want:
                        self._facility_ind(app, plci.plci, function,
                                           call_linkage_id=linkage)

    def _facility_ind(self, app: _App, address: int, function: int, **fields: m.Value) -> None:
        param = m.encode_supp(S.IND, m.SuppParam(function, fields))
        self._ind(app, C.FACILITY, address=address, selector=t.SELECTOR_SUPPLEMENTARY,
                  parameter=param)

    # ------------------------------------- FACILITY on the dummy call reference

    def _dummy_facility(self, msg: Q931) -> None:
        for contents in msg.facility:
            try:
                components = rg.decode(contents)
            except FacilityError as exc:
                log.info("controller %d: undecodable broadcast facility: %s", self.ctrl, exc)
                components = ()
            consumed_by: set[int] = set()
            for comp in components:
                consumed_by |= self._supp_component(comp, msg.called)
            for app in self._apps.values():
                if id(app) in consumed_by or not app.info_mask & t.INFO_MASK_FACILITY:
                    continue
                if msg.called:
                    self._info_ind(app, self.ctrl, 0x0070, m.called_number(msg.called))
                self._info_ind(app, self.ctrl, t.INFO_NUMBER_FACILITY, contents)

    def _supp_component(self, comp: rg.Component, msn: str) -> set[int]:
        """Handle one network component on the selector-3 route; returns the ids of the
        applications that consumed it (they get no raw copy)."""
        if not self.spec.supplementary:
            return set()
        if isinstance(comp, rg.InInvoke):
            function = _CCBS_NOTIFICATIONS.get(comp.operation)
            if function is None:
                return set()
            apps = [a for a in self._apps.values()
                    if a.notification_mask & (t.SERVICE_CCBS | t.SERVICE_CCNR)]
            if not apps:
                return set()
            fields = self._notification_fields(comp, msn)
            if function == t.FN_CCBS_STATUS:
                poll = _StatusPoll(comp.invoke_id, set())
                self._status[comp.invoke_id] = poll
                for app in apps:
                    self._facility_ind(app, self.ctrl, function, **fields)
                    poll.waiting.add(app)
                    self._status_by_number[(id(app), app.next_number)] = poll
            else:
                for app in apps:
                    self._facility_ind(app, self.ctrl, function, **fields)
            return {id(a) for a in apps}
        if comp.invoke_id is None:
            return set()
        invoke = self._invokes.pop(comp.invoke_id, None)
        if invoke is None:
            return set()
        self._supp_result(invoke, comp)
        return {id(invoke.app)}

    def _notification_fields(self, comp: rg.InInvoke, msn: str) -> dict[str, m.Value]:
        arg = comp.argument
        fields: dict[str, m.Value] = {"called_number": m.called_number(msn)}
        if comp.operation == "EraseCallLinkageID":
            linkage = rg.linkage_of(comp)
            self._linkages.pop(linkage, None)
            fields["call_linkage_id"] = linkage
            return fields
        reference = rg.reference_of(comp)
        fields["ccbs_reference"] = reference
        if comp.operation == "CCBSStopAlerting":
            return {"ccbs_reference": reference}
        fields["recall_mode"] = int(getattr(arg, "recall_mode", 0))
        q931 = getattr(arg, "q931_info_element", b"") or b""
        bc, llc, hlc = self._split_bearer(q931)
        fields.update(cip=m.cip_for_bearer(bc, hlc), bc=bc, llc=llc, hlc=hlc)
        if comp.operation == "CCBSStatusRequest":
            return fields
        b_number = rg.address_digits(getattr(arg, "address_of_b", None))
        fields["b_number"] = m.called_number(b_number)
        info = self._references.get(reference)
        if info is not None and b_number:
            info.called = b_number
        if comp.operation == "CCBSErase":
            fields["erase_reason"] = int(getattr(arg, "erase_reason", 0))
            self._references.pop(reference, None)
        return fields

    def _supp_result(self, invoke: _Invoke, comp: rg.Component) -> None:
        reason, extra = 0, {}
        if isinstance(comp, rg.InResult):
            extra = self._result_fields(invoke, comp)
        elif isinstance(comp, rg.InError):
            reason = t.SUPPLEMENTARY_REASON_BY_NAME.get(rg.error_name(comp), 0x36FE)
        else:
            reason = 0x36FE
        fields: dict[str, m.Value] = {"reason": reason, "handle": invoke.handle}
        if invoke.function in (t.FN_CCBS_REQUEST, t.FN_CCNR_REQUEST,
                               t.FN_CCBS_INTERROGATE, t.FN_CCNR_INTERROGATE):
            fields.setdefault("recall_mode", 0)
        if invoke.function in (t.FN_CCBS_REQUEST, t.FN_CCNR_REQUEST):
            fields.setdefault("ccbs_reference", 0)
        fields.update(extra)
        self._facility_ind(invoke.app, self.ctrl, invoke.function, **fields)

    def _result_fields(self, invoke: _Invoke, comp: rg.InResult) -> dict[str, m.Value]:
        res = comp.result
        if invoke.function in (t.FN_CCBS_REQUEST, t.FN_CCNR_REQUEST):
            reference = int(getattr(res, "ccbs_reference", 0))
            linkage_info = (self._linkages.pop(invoke.linkage, None)
                            if invoke.linkage is not None else None)
            if linkage_info is not None:
                self._references[reference] = linkage_info
            return {"recall_mode": int(getattr(res, "recall_mode", 0)),
                    "ccbs_reference": reference}
        if invoke.function in (t.FN_CCBS_INTERROGATE, t.FN_CCNR_INTERROGATE):
            details = getattr(res, "call_details", ()) or ()
            instances = []
            for info in details:
                bc, llc, hlc = self._split_bearer(info.q931_info_element)
                instances.append({
                    "ccbs_reference": info.ccbs_reference, "cip": m.cip_for_bearer(bc, hlc),
                    "bc": bc, "llc": llc, "hlc": hlc,
                    "b_number": m.called_number(rg.address_digits(info.address_of_b)),
                })
            return {"recall_mode": int(getattr(res, "recall_mode", 0)),
                    "instances": m.encode_interrogate_instances(instances)}
        return {}

    def _status_settled(self, poll: _StatusPoll) -> None:
        if poll.answered or poll.waiting:
            return
        self._status.pop(poll.invoke_id, None)

    # ------------------------------------------------------------ FACILITY_REQ

    def _facility_req(self, app: _App, msg: m.CapiMessage) -> None:
        selector = msg.get_int("selector")
        if selector != t.SELECTOR_SUPPLEMENTARY or not self.spec.supplementary:
            self._conf(app, msg, t.INFO_FACILITY_NOT_SUPPORTED)
            return
        try:
            param = m.decode_supp(S.REQ, msg.get_struct("parameter"))
        except CapiMessageError as exc:
            self._violation(app, f"FACILITY_REQ: {exc}")
            self._conf(app, msg, t.INFO_ILLEGAL_PARAMETER)
            return
        fn = param.function
        if fn == t.FN_GET_SUPPORTED:
            self._supp_conf(app, msg, fn, info=0, supported=self.supported_services())
        elif fn == t.FN_LISTEN:
            app.notification_mask = param.get_int("notification_mask")
            self._supp_conf(app, msg, fn, info=0)
        elif fn in _SUPP_REQUEST_OPERATION and not self.spec.ptp:
            if msg.address & 0xFF00:
                self._conf(app, msg, t.INFO_ILLEGAL_ADDRESS)
                return
            self._supp_conf(app, msg, fn, info=0)
            self._supp_request(app, fn, param)
        elif fn == t.FN_CCBS_CALL and not self.spec.ptp:
            self._ccbs_call(app, msg, param)
        else:
            self._supp_conf(app, msg, fn, info=t.INFO_FUNCTION_NOT_SUPPORTED)

    def _supp_conf(self, app: _App, msg: m.CapiMessage, function: int,
                   address: int | None = None, **fields: m.Value) -> None:
        param = m.encode_supp(S.CONF, m.SuppParam(function, fields))
        extra: dict[str, m.Value] = {"parameter": param}
        if address is not None:
            extra["address"] = address
        self._conf(app, msg, 0, **extra)

    def _supp_request(self, app: _App, function: int, param: m.SuppParam) -> None:
        operation = _SUPP_REQUEST_OPERATION[function]
        handle = param.get_int("handle")
        invoke_id = self._alloc_invoke()
        if function in (t.FN_CCBS_REQUEST, t.FN_CCNR_REQUEST):
            linkage = param.get_int("call_linkage_id")
            contents = rg.invoke(invoke_id, operation, rg.request_arg(linkage))
        elif function == t.FN_CCBS_DEACTIVATE:
            contents = rg.invoke(invoke_id, operation,
                                 rg.deactivate_arg(param.get_int("ccbs_reference")))
        else:
            reference = param.get_int("ccbs_reference")
            party = m.number_digits(param.get_struct("party_number"))
            contents = rg.invoke(invoke_id, operation, rg.interrogate_arg(
                None if reference == t.CCBS_REFERENCE_ALL else reference, party or None))
        inv = _Invoke(app, function, handle, operation)
        if function in (t.FN_CCBS_REQUEST, t.FN_CCNR_REQUEST):
            inv.linkage = param.get_int("call_linkage_id")
        self._invokes[invoke_id] = inv
        self._up(Q931(MsgType.FACILITY, None, False, facility=(contents,)))

    def _alloc_invoke(self) -> int:
        while True:
            self._next_invoke += 1
            if self._next_invoke > 0x7FFF:
                self._next_invoke = _FIRST_FIRMWARE_INVOKE
            if self._next_invoke not in self._invokes:
                return self._next_invoke

    def _ccbs_call(self, app: _App, msg: m.CapiMessage, param: m.SuppParam) -> None:
        reference = param.get_int("ccbs_reference")
        info = self._references.get(reference)
        bearer = self._bearer_of(param.get_int("cip"), param.get_struct("bc"),
                                 param.get_struct("llc"), param.get_struct("hlc"))
        if info is None:
            # The firmware never saw this request activated: it cannot name B.
            self._supp_conf(app, msg, t.FN_CCBS_CALL, info=t.INFO_ILLEGAL_PARAMETER)
            return
        plci = self._new_plci(app, outgoing=True)
        if plci is None:
            self._supp_conf(app, msg, t.FN_CCBS_CALL, info=t.INFO_OUT_OF_PLCI)
            return
        plci.called, plci.calling = info.called, info.calling or self._default_msn()
        plci.bearer = info.bearer or bearer or BEARER_SPEECH
        self._supp_conf(app, msg, t.FN_CCBS_CALL, address=plci.plci, info=0)
        contents = rg.invoke(self._alloc_invoke(), "CCBSCall", rg.call_arg(reference))
        self._up(Q931(MsgType.SETUP, plci.cr, False, called=plci.called,
                      calling=plci.calling, bearer=plci.bearer, facility=(contents,)))

    def _facility_resp(self, app: _App, msg: m.CapiMessage) -> None:
        raw = msg.get_struct("parameter")
        param: m.SuppParam | None = None
        if raw:  # chan_capi answers most FACILITY_INDs with an empty struct (capi.md §6.1)
            try:
                param = m.decode_supp(S.RESP, raw)
            except CapiMessageError as exc:
                self._violation(app, f"FACILITY_RESP: {exc}")
        poll = self._status_by_number.pop((id(app), msg.number), None)
        if poll is None:
            return
        poll.waiting.discard(app)
        if param is not None and param.function == t.FN_CCBS_STATUS and "free" in param.fields:
            free = param.get_int("free") != 0
            if free and not poll.answered:
                poll.answered = True
                self._up(Q931(MsgType.FACILITY, None, False, facility=(
                    rg.result(poll.invoke_id, "CCBSStatusRequest", rg.status_res(True)),)))
            elif not free:
                poll.busy = True
        if not poll.waiting and not poll.answered and poll.busy:
            poll.answered = True
            self._up(Q931(MsgType.FACILITY, None, False, facility=(
                rg.result(poll.invoke_id, "CCBSStatusRequest", rg.status_res(False)),)))
        self._status_settled(poll)


_APP_HANDLERS: dict[tuple[C, S], Callable[[SimController, _App, m.CapiMessage], None]] = {
    (C.LISTEN, S.REQ): SimController._listen_req,
    (C.CONNECT, S.REQ): SimController._connect_req,
    (C.CONNECT, S.RESP): SimController._connect_resp,
    (C.ALERT, S.REQ): SimController._alert_req,
    (C.DISCONNECT, S.REQ): SimController._disconnect_req,
    (C.DISCONNECT, S.RESP): SimController._disconnect_resp,
    (C.INFO, S.REQ): SimController._info_req,
    (C.FACILITY, S.REQ): SimController._facility_req,
    (C.FACILITY, S.RESP): SimController._facility_resp,
}

_NETWORK_HANDLERS: dict[MsgType, Callable[[SimController, _Plci, Q931], None]] = {
    MsgType.CALL_PROCEEDING: SimController._net_call_proceeding,
    MsgType.ALERTING: SimController._net_alerting,
    MsgType.CONNECT: SimController._net_connect,
    MsgType.CONNECT_ACK: SimController._net_connect_ack,
    MsgType.FACILITY: SimController._net_facility,
    MsgType.DISCONNECT: SimController._net_disconnect,
    MsgType.RELEASE: SimController._net_release,
    MsgType.RELEASE_COMPLETE: SimController._net_release_complete,
}

