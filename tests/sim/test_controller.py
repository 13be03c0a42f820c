"""The simulated card firmware on its own: CAPI in, Q.931 out and back (no sockets).

Applications and the network are stand-ins that record what the firmware sends; every
REQ must be confirmed with its message number, every IND is tracked until its RESP."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from ccbs_isdn.drivers.capi20 import messages as m
from ccbs_isdn.drivers.capi20 import tables as t
from ccbs_isdn.drivers.capi20.tables import Command as C
from ccbs_isdn.drivers.capi20.tables import Subcommand as S
from ccbs_isdn.drivers.sim.controller import ControllerSpec, SimController
from ccbs_isdn.drivers.sim.q931 import Q931, MsgType

from ccbs_isdn import rose
from ccbs_isdn.isdn import BEARER_SPEECH

CALL_INFO_RETAIN_5 = bytes.fromhex("91A10E02010B0606040082670101020105")


@dataclass(eq=False)
class App:
    name: str = "app"
    got: list[m.CapiMessage] = field(default_factory=list)

    def send(self, msg: m.CapiMessage) -> None:
        self.got.append(m.decode(m.encode(msg)))  # every message must encode

    def take(self) -> list[m.CapiMessage]:
        out, self.got = self.got, []
        return out

    def names(self) -> list[str]:
        return [x.name for x in self.got]


class Firmware:
    def __init__(self, **spec: object) -> None:
        self.up: list[Q931] = []
        params = {"ctrl": 1, "access_id": "bri1", "msns": ("31", "32")} | spec
        self.ctrl = SimController(ControllerSpec(**params), self.up.append)  # type: ignore[arg-type]
        self.number = 0

    def req(self, app: App, command: C, **params: m.Value) -> m.CapiMessage:
        self.number += 1
        msg = m.message(command, S.REQ, self.number, **params)
        self.ctrl.from_app(app, msg)
        confs = [x for x in app.got if x.subcommand is S.CONF and x.number == self.number]
        assert len(confs) == 1, f"{msg.name} got {len(confs)} CONFs"
        return confs[0]

    def resp_all(self, app: App) -> None:
        """Answer every IND the app got, like a well-behaved application."""
        for ind in [x for x in app.take() if x.subcommand is S.IND]:
            layout = m.LAYOUTS[(ind.command, S.RESP)]
            params: dict[str, m.Value] = {layout[0][0]: ind.address}
            if ind.command is C.FACILITY:
                params["selector"] = ind.get_int("selector")
            self.ctrl.from_app(app, m.message(ind.command, S.RESP, ind.number, **params))

    def listen(self, app: App, info_mask: int = 0x2B1, cip_mask: int = t.CIP_MASK_ALL) -> None:
        conf = self.req(app, C.LISTEN, controller=1, info_mask=info_mask, cip_mask=cip_mask)
        assert conf.get_int("info") == 0
        app.take()

    def supp_listen(self, app: App, mask: int = 0x280) -> None:
        self.supp(app, t.FN_LISTEN, notification_mask=mask)
        app.take()

    def supp(self, app: App, function: int, address: int = 1, **fields: m.Value
             ) -> m.CapiMessage:
        return self.req(app, C.FACILITY, address=address, selector=3,
                        parameter=m.encode_supp(S.REQ, m.SuppParam(function, fields)))

    def dial(self, app: App, called: str = "22", **params: m.Value) -> int:
        conf = self.req(app, C.CONNECT, controller=1, cip=1,
                        called_number=m.called_number(called),
                        calling_number=m.calling_number("31"), **params)
        assert conf.get_int("info") == 0
        app.take()
        return conf.address


def inds(app: App, command: C) -> list[m.CapiMessage]:
    return [x for x in app.got if x.command is command and x.subcommand is S.IND]


def decode_up(msg: Q931) -> list[rose.Component]:
    return [c for ie in msg.facility for c in rose.decode_contents(ie).components]


# ----------------------------------------------------------------- every REQ is confirmed


@pytest.mark.parametrize(("command", "params", "info"), [
    (C.LISTEN, {"controller": 1}, 0),
    (C.LISTEN, {"controller": 2}, t.INFO_ILLEGAL_ADDRESS),
    (C.ALERT, {"plci": 0x0101}, t.INFO_WRONG_STATE),
    (C.DISCONNECT, {"plci": 0x0101}, t.INFO_ILLEGAL_ADDRESS),
    (C.INFO, {"address": 1}, 0),
    (C.INFO, {"address": 0x0901}, t.INFO_ILLEGAL_ADDRESS),
    (C.FACILITY, {"address": 1, "selector": 1}, t.INFO_FACILITY_NOT_SUPPORTED),
    (C.FACILITY, {"address": 1, "selector": 3, "parameter": b"\x0f"},
     t.INFO_ILLEGAL_PARAMETER),
    (C.SELECT_B_PROTOCOL, {"plci": 0x0101}, t.INFO_WRONG_STATE),
    (C.CONNECT_B3, {"plci": 0x0101}, t.INFO_WRONG_STATE),
    (C.DISCONNECT_B3, {"ncci": 0x010101}, t.INFO_WRONG_STATE),
    (C.RESET_B3, {"ncci": 0x010101}, t.INFO_WRONG_STATE),
    (C.CONNECT, {"controller": 1, "cip": 99}, t.INFO_CIP_UNKNOWN),
])
def test_every_request_is_confirmed(command: C, params: dict[str, m.Value], info: int) -> None:
    fw, app = Firmware(), App()
    conf = fw.req(app, command, **params)
    assert conf.get_int("info") == info


def test_profile_announces_supplementary_services_only_when_offered() -> None:
    with_supp = Firmware().ctrl.profile()
    without = Firmware(supplementary=False).ctrl.profile()
    assert len(with_supp) == 64
    assert int.from_bytes(with_supp[4:8], "little") & t.GLOBAL_OPTION_SUPPLEMENTARY
    assert not int.from_bytes(without[4:8], "little") & t.GLOBAL_OPTION_SUPPLEMENTARY


def test_supported_services_and_refusal_without_them() -> None:
    fw, app = Firmware(), App()
    conf = fw.supp(app, t.FN_GET_SUPPORTED)
    assert m.decode_supp(S.CONF, conf.get_struct("parameter")).get_int("supported") == 0x280
    plain = Firmware(supplementary=False)
    conf = plain.supp(App(), t.FN_GET_SUPPORTED)
    assert conf.get_int("info") == t.INFO_FACILITY_NOT_SUPPORTED
    ptp = Firmware(ptp=True)
    conf = ptp.supp(App(), t.FN_CCBS_REQUEST, handle=1, call_linkage_id=2)
    param = m.decode_supp(S.CONF, conf.get_struct("parameter"))
    assert param.get_int("info") == t.INFO_FUNCTION_NOT_SUPPORTED


# --------------------------------------------------------------------- outgoing calls


def test_connect_req_becomes_setup_with_a_user_call_reference() -> None:
    fw, app = Firmware(), App()
    plci = fw.dial(app)
    assert plci & 0x7F == 1 and plci >> 8 != 0
    (setup,) = fw.up
    assert (setup.type, setup.from_network, setup.called, setup.calling) == (
        MsgType.SETUP, False, "22", "31")
    assert setup.cr is not None and 1 <= setup.cr <= 0x3F
    assert setup.bearer == BEARER_SPEECH  # implied by CIP 1


def test_explicit_bc_llc_hlc_are_sent_in_q931_order() -> None:
    fw, app = Firmware(), App()
    fw.dial(app, bc=bytes.fromhex("8090A3"), llc=b"\x88", hlc=bytes.fromhex("9181"))
    assert fw.up[0].bearer == bytes.fromhex("04038090A3 7C0188 7D029181".replace(" ", ""))


def test_b_channel_none_opens_a_register_connection() -> None:
    fw, app = Firmware(ptp=True), App()
    ai = m.AdditionalInfo(b_channel_info=m.b_channel_info(t.B_CHANNEL_NONE),
                          facility_array=m.facility_array([CALL_INFO_RETAIN_5]))
    fw.dial(app, additional_info=ai.encode())
    assert fw.up[0].type is MsgType.REGISTER
    assert fw.up[0].facility == (CALL_INFO_RETAIN_5,)


def test_busy_disconnect_is_reported_per_the_info_mask_and_notification_mask() -> None:
    fw, app = Firmware(), App()
    fw.listen(app)
    fw.supp_listen(app)
    plci = fw.dial(app)
    cr = fw.up[0].cr
    fw.ctrl.from_network(Q931(MsgType.CALL_PROCEEDING, cr, True))
    fw.ctrl.from_network(Q931(MsgType.DISCONNECT, cr, True, cause=17,
                              facility=(CALL_INFO_RETAIN_5,)))
    got = app.got
    assert [(x.name, x.get_int("info_number") if x.command is C.INFO else None)
            for x in got] == [
        ("INFO_IND", 0x8002), ("INFO_IND", 0x8045), ("INFO_IND", 0x0008),
        ("INFO_IND", 0x001C), ("FACILITY_IND", None), ("DISCONNECT_IND", None)]
    assert all(x.address == plci for x in got)
    assert got[2].get_struct("info_element") == b"\x80\x91"
    assert got[3].get_struct("info_element") == CALL_INFO_RETAIN_5
    retain = m.decode_supp(S.IND, got[4].get_struct("parameter"))
    assert (retain.function, retain.get_int("call_linkage_id")) == (t.FN_CCBS_INFO_RETAIN, 5)
    assert got[5].get_int("reason") == 0x3491
    assert fw.up[-1].type is MsgType.RELEASE
    # The PLCI stays until DISCONNECT_RESP, then is reused.
    assert fw.dial(App()) != plci
    fw.resp_all(app)
    assert fw.ctrl.violations == []


def test_info_mask_zero_gets_no_info_ind() -> None:
    fw, app = Firmware(), App()
    fw.listen(app, info_mask=0)
    fw.dial(app)
    cr = fw.up[0].cr
    fw.ctrl.from_network(Q931(MsgType.ALERTING, cr, True))
    fw.ctrl.from_network(Q931(MsgType.DISCONNECT, cr, True, cause=17,
                              facility=(CALL_INFO_RETAIN_5,)))
    assert app.names() == ["DISCONNECT_IND"]


def test_connect_from_network_activates_and_acknowledges() -> None:
    fw, app = Firmware(), App()
    plci = fw.dial(app)
    cr = fw.up[0].cr
    fw.ctrl.from_network(Q931(MsgType.CONNECT, cr, True))
    assert fw.up[-1].type is MsgType.CONNECT_ACK
    (active,) = inds(app, C.CONNECT_ACTIVE)
    assert active.address == plci


def test_disconnect_req_sends_the_cause_from_the_facility_array() -> None:
    fw, app = Firmware(), App()
    plci = fw.dial(app)
    cr = fw.up[0].cr
    fw.ctrl.from_network(Q931(MsgType.CONNECT, cr, True))
    ai = m.AdditionalInfo(facility_array=m.facility_array([], cause=21))
    assert fw.req(app, C.DISCONNECT, plci=plci, additional_info=ai.encode()).get_int(
        "info") == 0
    assert (fw.up[-1].type, fw.up[-1].cause) == (MsgType.DISCONNECT, 21)
    fw.ctrl.from_network(Q931(MsgType.RELEASE, cr, True))
    assert fw.up[-1].type is MsgType.RELEASE_COMPLETE
    assert inds(app, C.DISCONNECT)[0].get_int("reason") == 0


def test_resp_without_ind_is_a_recorded_violation() -> None:
    fw, app = Firmware(), App()
    fw.ctrl.from_app(app, m.message(C.INFO, S.RESP, 4242, address=1))
    assert fw.ctrl.violations and "answers no indication" in fw.ctrl.violations[0]


def test_unknown_call_reference_is_answered_with_cause_81() -> None:
    fw = Firmware()
    fw.ctrl.from_network(Q931(MsgType.CONNECT, 0x55, True))
    assert (fw.up[-1].type, fw.up[-1].cause) == (MsgType.RELEASE_COMPLETE, 81)


def test_detached_application_has_its_calls_cleared() -> None:
    fw, app = Firmware(), App()
    fw.dial(app)
    fw.ctrl.detach_app(app)
    assert (fw.up[-1].type, fw.up[-1].cause) == (MsgType.DISCONNECT, 16)


# --------------------------------------------------------------------- incoming calls


def test_incoming_call_is_offered_to_listeners_and_taken_by_the_first() -> None:
    fw, a, b, deaf = Firmware(), App("a"), App("b"), App("deaf")
    fw.listen(a)
    fw.listen(b)
    fw.listen(deaf, cip_mask=1 << 2)  # only unrestricted digital calls
    fw.ctrl.from_network(Q931(MsgType.SETUP, 0x41, True, called="31", calling="23",
                              bearer=BEARER_SPEECH))
    (offer_a,), (offer_b,) = inds(a, C.CONNECT), inds(b, C.CONNECT)
    assert offer_b.address == offer_a.address  # one PLCI, offered to both
    assert deaf.got == []
    assert m.number_digits(offer_a.get_struct("called_number")) == "31"
    assert m.number_digits(offer_a.get_struct("calling_number")) == "23"
    assert offer_a.get_int("cip") == 1
    fw.ctrl.from_app(a, m.message(C.CONNECT, S.RESP, offer_a.number, plci=offer_a.address))
    assert fw.up[-1].type is MsgType.CONNECT and fw.up[-1].cr == 0x41
    assert inds(b, C.DISCONNECT)[0].get_int("reason") == 0x3304
    fw.ctrl.from_network(Q931(MsgType.CONNECT_ACK, 0x41, True))
    assert inds(a, C.CONNECT_ACTIVE)[0].address == offer_a.address


def test_incoming_call_ignored_by_everyone_stays_unanswered() -> None:
    fw, app = Firmware(), App()
    fw.listen(app)
    fw.ctrl.from_network(Q931(MsgType.SETUP, 0x41, True, called="39", bearer=BEARER_SPEECH))
    (offer,) = inds(app, C.CONNECT)
    fw.ctrl.from_app(app, m.message(C.CONNECT, S.RESP, offer.number, plci=offer.address,
                                    reject=t.REJECT_IGNORE))
    assert fw.up == []


@pytest.mark.parametrize(("reject", "cause"), [(3, 17), (2, 16), (0x3495, 21)])
def test_incoming_call_rejected_with_a_cause(reject: int, cause: int) -> None:
    fw, app = Firmware(), App()
    fw.listen(app)
    fw.ctrl.from_network(Q931(MsgType.SETUP, 0x41, True, called="31", bearer=BEARER_SPEECH))
    (offer,) = inds(app, C.CONNECT)
    fw.ctrl.from_app(app, m.message(C.CONNECT, S.RESP, offer.number, plci=offer.address,
                                    reject=reject))
    assert (fw.up[-1].type, fw.up[-1].cause) == (MsgType.RELEASE_COMPLETE, cause)
    assert inds(app, C.DISCONNECT)


def test_nobody_listening_means_no_answer() -> None:
    fw = Firmware()
    fw.ctrl.from_network(Q931(MsgType.SETUP, 0x41, True, called="31", bearer=BEARER_SPEECH))
    assert fw.up == []


# ---------------------------------------------------- CCBS: supplementary services


def network_answer(fw: Firmware, component: rose.Component) -> None:
    fw.ctrl.from_network(Q931(MsgType.FACILITY, None, True, called="31",
                              facility=(rose.encode_contents(rose.Facility((component,))),)))


def test_ccbs_request_goes_out_as_an_invoke_and_the_result_comes_back() -> None:
    fw, app = Firmware(), App()
    fw.listen(app)
    fw.supp_listen(app)
    conf = fw.supp(app, t.FN_CCBS_REQUEST, handle=0xABCD, call_linkage_id=5)
    assert m.decode_supp(S.CONF, conf.get_struct("parameter")).get_int("info") == 0
    (fac,) = fw.up
    assert (fac.type, fac.cr) == (MsgType.FACILITY, None)
    (invoke,) = decode_up(fac)
    assert isinstance(invoke, rose.Invoke) and invoke.operation == "CCBSRequest"
    assert invoke.argument == rose.CCBSRequestArg(5)
    app.take()
    network_answer(fw, rose.ReturnResult(invoke.invoke_id, rose.Operation.CCBSRequest,
                                         rose.CCBSRequestRes(rose.RecallMode.specificRecall, 9)))
    (ind,) = app.got
    result = m.decode_supp(S.IND, ind.get_struct("parameter"))
    assert (result.function, result.get_int("reason"), result.get_int("handle"),
            result.get_int("recall_mode"), result.get_int("ccbs_reference")) == (
        t.FN_CCBS_REQUEST, 0, 0xABCD, 1, 9)


def test_ccbs_request_error_becomes_a_0x36xx_reason() -> None:
    fw, app = Firmware(), App()
    fw.supp_listen(app)
    fw.supp(app, t.FN_CCBS_REQUEST, handle=1, call_linkage_id=5)
    (invoke,) = decode_up(fw.up[0])
    app.take()
    network_answer(fw, rose.ReturnError(invoke.invoke_id, rose.rose_error("shortTermDenial")))
    result = m.decode_supp(S.IND, app.got[0].get_struct("parameter"))
    assert result.get_int("reason") == 0x3617


@pytest.mark.parametrize(("free", "expected"), [(1, True), (0, False)])
def test_status_request_is_answered_from_the_application(free: int, expected: bool) -> None:
    fw, app = Firmware(), App()
    fw.supp_listen(app)
    status = rose.Invoke(7, rose.Operation.CCBSStatusRequest, rose.CCBSStatusRequestArg(
        rose.RecallMode.globalRecall, 9, BEARER_SPEECH))
    network_answer(fw, status)
    (ind,) = app.take()
    param = m.decode_supp(S.IND, ind.get_struct("parameter"))
    assert (param.function, param.get_int("ccbs_reference")) == (t.FN_CCBS_STATUS, 9)
    assert param.get_struct("bc") == bytes.fromhex("8090A3")
    fw.ctrl.from_app(app, m.message(C.FACILITY, S.RESP, ind.number, address=1, selector=3,
                                    parameter=m.encode_supp(S.RESP, m.SuppParam(
                                        t.FN_CCBS_STATUS, {"free": free}))))
    (answer,) = decode_up(fw.up[-1])
    assert isinstance(answer, rose.ReturnResult) and answer.invoke_id == 7
    assert answer.result == rose.CCBSStatusRequestRes(expected)


def test_status_request_with_an_empty_resp_stays_unanswered() -> None:
    fw, app = Firmware(), App()
    fw.supp_listen(app)
    network_answer(fw, rose.Invoke(7, rose.Operation.CCBSStatusRequest,
                                   rose.CCBSStatusRequestArg(rose.RecallMode.globalRecall, 9,
                                                             BEARER_SPEECH)))
    fw.resp_all(app)
    assert fw.up == []


def test_without_the_notification_mask_the_ie_is_passed_raw() -> None:
    fw, raw_app, supp_app = Firmware(), App("raw"), App("supp")
    fw.listen(raw_app)
    fw.supp_listen(supp_app)
    free = rose.Invoke(3, rose.Operation.CCBSRemoteUserFree, rose.CCBSRemoteUserFreeArg(
        rose.RecallMode.globalRecall, 9, rose.Address(rose.PartyNumber("22")), BEARER_SPEECH))
    network_answer(fw, free)
    assert [(x.get_int("info_number")) for x in raw_app.got] == [0x0070, 0x001C]
    assert m.number_digits(raw_app.got[0].get_struct("info_element")) == "31"
    (ind,) = supp_app.got
    param = m.decode_supp(S.IND, ind.get_struct("parameter"))
    assert (param.function, param.get_int("ccbs_reference")) == (t.FN_CCBS_REMOTE_USER_FREE, 9)
    assert m.number_digits(param.get_struct("b_number")) == "22"


def test_ccbs_call_needs_a_reference_the_firmware_saw_activated() -> None:
    fw, app = Firmware(), App()
    fw.listen(app)
    fw.supp_listen(app)
    conf = fw.supp(app, t.FN_CCBS_CALL, ccbs_reference=9, cip=1)
    assert m.decode_supp(S.CONF, conf.get_struct("parameter")).get_int("info") == (
        t.INFO_ILLEGAL_PARAMETER)
    # the failed call, the request and its result teach the firmware B's number
    fw.dial(app, called="22")
    cr = fw.up[-1].cr
    fw.ctrl.from_network(Q931(MsgType.DISCONNECT, cr, True, cause=17,
                              facility=(CALL_INFO_RETAIN_5,)))
    fw.resp_all(app)
    fw.supp(app, t.FN_CCBS_REQUEST, handle=1, call_linkage_id=5)
    (invoke,) = decode_up(fw.up[-1])
    network_answer(fw, rose.ReturnResult(invoke.invoke_id, rose.Operation.CCBSRequest,
                                         rose.CCBSRequestRes(rose.RecallMode.globalRecall, 9)))
    conf = fw.supp(app, t.FN_CCBS_CALL, ccbs_reference=9, cip=1)
    assert conf.address >> 8 != 0  # the new PLCI
    setup = fw.up[-1]
    assert (setup.type, setup.called, setup.calling) == (MsgType.SETUP, "22", "31")
    (call,) = decode_up(setup)
    assert isinstance(call, rose.Invoke) and call.argument == rose.CCBSCallArg(9)


def test_info_req_to_the_controller_is_a_dummy_call_reference_facility() -> None:
    fw, app = Firmware(), App()
    ai = m.AdditionalInfo(facility_array=m.facility_array([CALL_INFO_RETAIN_5]))
    assert fw.req(app, C.INFO, address=1, additional_info=ai.encode()).get_int("info") == 0
    assert (fw.up[-1].type, fw.up[-1].cr, fw.up[-1].facility) == (
        MsgType.FACILITY, None, (CALL_INFO_RETAIN_5,))
