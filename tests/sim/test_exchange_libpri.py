"""Every Facility IE the exchange emits, decoded by Debian's libpri (the test oracle).

A tour through the CC stories (PTMP, CCBS-T, destination side, refusals, rejects) records
every network→user Facility IE; libpri must decode each completely and report the same
component kinds, invoke ids, operation/error values and argument values as our codec.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import pytest
from ccbs_isdn.drivers.sim.exchange import NetworkTimers, SimExchange
from ccbs_isdn.drivers.sim.q931 import Q931, MsgType

from ccbs_isdn.rose import types as rt
from ccbs_isdn.rose.codec import Component, Invoke, Reject, ReturnError, ReturnResult
from ccbs_isdn.rose.facility import decode_contents
from ccbs_isdn.rose.operations import OPERATIONS, Operation
from tests.oracle.libpri import libpri_decode, require_libpri

from .test_exchange_support import BC_UDI, Clock, Terminal, address, ie, invokes

B = "0303333"

# our dataclass field -> the name libpri's dump uses for it
_LIBPRI_NAMES = {
    "ccbs_reference": "ccbsReference",
    "call_linkage_id": "callLinkageId",
    "recall_mode": "recallMode",
    "erase_reason": "eraseReason",
    "q931_info_element": "q931ie",
    "q931_information_element": "q931ie",
    "compatibility_mode": "compatibilityMode",
    "retention_supported": "retentionSupported",
    "digits": "unknownPartyNumber",
}


def _flatten(value: object) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(value, tuple):
        for item in value:
            out.extend(_flatten(item))
        return out
    if not dataclasses.is_dataclass(value):
        return out
    for f in dataclasses.fields(value):
        item = getattr(value, f.name)
        if f.name in _LIBPRI_NAMES and item is not None:
            if isinstance(item, bool):
                item = int(item)
            elif isinstance(item, enum.Enum):
                item = int(item.value)
            out.append((_LIBPRI_NAMES[f.name], item))
        else:
            out.extend(_flatten(item))
    return out


def _dotted(code: object) -> object:
    if isinstance(code, tuple):
        return ".".join(str(arc) for arc in code[1:])  # libpri prints 0.4.0.x as 4.0.x
    return code


def tour() -> list[bytes]:
    """Run the stories; return every Facility IE sent toward our accesses."""
    ex = SimExchange(NetworkTimers())
    ex.add_access("isdn1", ["3301"])
    ex.add_access("isdn2", ["4401"])
    ex.add_access("pbx", ["5550"], ptp=True)
    ex.add_subscriber(B, busy=True)
    ex.add_subscriber("0304444", answers=False)
    ex.add_subscriber("0301111")
    clock = Clock(ex)
    a = Terminal(ex, clock, "isdn1")
    b = Terminal(ex, clock, "isdn2", auto_release=False)
    pbx = Terminal(ex, clock, "pbx")

    def linkage_of(msg: Q931) -> int:
        (retain,) = invokes(msg, "CallInfoRetain")
        assert isinstance(retain.argument, rt.CallInfoRetainArg)
        return retain.argument.call_linkage_id

    def poll_of(term: Terminal, op: str) -> Invoke:
        found = term.broadcasts(op)
        assert found, op
        return found[-1]

    def busy_request(ccnr: bool = False) -> None:
        cr = a.setup(B, "3301")
        a.request(linkage_of(a.expect(MsgType.DISCONNECT, cr=cr)), ccnr=ccnr)

    # 5.1 / 5.6: busy, request, interrogations
    busy_request()
    a.interrogate()
    a.interrogate(ccnr=True)
    a.interrogate(99)
    a.request(99)  # invalidCallLinkageID
    # 5.4 then 5.3: A busy (BFree), A free again, recall accepted twice, unknown R
    ex.update_subscriber(B, answer_delay=5.0)
    ex.set_busy(B, False, clock.now)
    a.answer_status(poll_of(a, "CCBSStatusRequest").invoke_id, False)
    clock.advance(ex.timers.t_ccbs1)
    a.answer_status(poll_of(a, "CCBSStatusRequest").invoke_id, True)
    a.recall(B, "3301", 1)  # accepted: CCBSStopAlerting
    a.recall(B, "3301", 1)  # alreadyAccepted
    a.recall(B, "3301", 77)  # invalidCCBSReference
    clock.advance(5.0)  # answered: CCBSErase(normal-unspecified)
    ex.hang_up(B, clock.now)
    # CCNR with bearer UDI: refused as CCBS, accepted as CCNR, deactivated
    cr = a.setup("0304444", "3301", bearer=BC_UDI)
    ccnr_linkage = linkage_of(a.expect(MsgType.ALERTING, cr=cr))
    a.request(ccnr_linkage)  # callFailureReasonNotBusy
    a.request(ccnr_linkage, ccnr=True)
    a.interrogate(ccnr=True)
    a.deactivate(2)
    a.deactivate(2)  # invalidCCBSReference
    a.disconnect(cr)
    a.release_complete(cr)
    # 5.5: T-CCBS3; 5.6: T-CCBS2; 5.2: T-RETENTION and a refusal hook
    ex.set_busy(B, True, clock.now)
    busy_request()
    ex.set_busy(B, False, clock.now)
    a.answer_status(poll_of(a, "CCBSStatusRequest").invoke_id, True)
    clock.advance(ex.timers.t_ccbs3)
    ex.set_busy(B, True, clock.now)
    busy_request()
    clock.advance(ex.timers.t_ccbs2)
    ex.refuse_requests("isdn1", "supplementaryServiceInteractionNotAllowed")
    busy_request()
    ex.refuse_requests("isdn1", None)
    clock.advance(ex.timers.t_retention + 1)
    # rejects: malformed component, network-only operation, result for nothing
    a.send(Q931(MsgType.FACILITY, None, False, facility=(bytes.fromhex("91a1030201"),)))
    a.facility(Invoke(a.invoke_id(), Operation.CCBSErase, _erase_arg()))
    a.answer_status(4242, True)
    # 5.7: CCBS-T on the PBX
    cr = pbx.setup(B, "5550")
    pbx.expect(MsgType.DISCONNECT, cr=cr)
    arg = rt.CCBS_T_RequestArg(address(B), bytes.fromhex("04038090A3"))
    fac = ie(Invoke(pbx.invoke_id(), Operation.CCBS_T_Request, arg))
    pbx.send(Q931(MsgType.REGISTER, 0x10, False, facility=(fac,)))
    ex.set_busy(B, False, clock.now)  # CCBS-T-RemoteUserFree
    ex.refuse_requests_to("0301111", "shortTermDenial")
    arg = rt.CCBS_T_RequestArg(address("0301111"), bytes.fromhex("04038090A3"))
    fac = ie(Invoke(pbx.invoke_id(), Operation.CCNR_T_Request, arg))
    pbx.send(Q931(MsgType.REGISTER, 0x11, False, facility=(fac,)))
    cr = pbx.setup("0304444", "5550")
    pbx.expect(MsgType.ALERTING, cr=cr)
    # 5.8: an external caller waits for our MSN: StatusRequest
    ex.refuse_requests_to("0301111", None)
    ex.call_from("0301111", "4401", clock.now)
    setup = b.expect(MsgType.SETUP)
    b.release_complete(setup.cr or 0, cause=17)
    clock.advance(ex.timers.t_destination_poll)
    sent = [*a.seen, *b.seen, *pbx.seen]
    return [contents for msg in sent for contents in msg.facility]


def _erase_arg() -> rt.CCBSEraseArg:
    return rt.CCBSEraseArg(
        rt.RecallMode.globalRecall,
        1,
        address("22"),
        bytes.fromhex("04038090A3"),
        rt.CCBSEraseReason.normal_unspecified,
    )


@pytest.fixture(scope="module")
def emitted() -> list[bytes]:
    return tour()


def test_the_tour_covers_every_network_operation(emitted: list[bytes]) -> None:
    kinds: set[str] = set()
    for contents in emitted:
        for comp in decode_contents(contents).components:
            if isinstance(comp, Invoke | ReturnResult):
                kinds.add(f"{type(comp).__name__}:{comp.operation}")
            elif isinstance(comp, ReturnError):
                kinds.add(f"error:{comp.error.name}")
            else:
                kinds.add(f"reject:{comp.problem[0]}")
    network_invokes = {
        "CallInfoRetain",
        "EraseCallLinkageID",
        "CCBSErase",
        "CCBSRemoteUserFree",
        "CCBSStatusRequest",
        "CCBSBFree",
        "CCBSStopAlerting",
        "StatusRequest",
        "CCBS-T-Available",
        "CCBS-T-RemoteUserFree",
    }
    results = {
        "CCBSRequest",
        "CCNRRequest",
        "CCBSInterrogate",
        "CCNRInterrogate",
        "CCBS-T-Request",
        "None",
    }
    errors = {
        "invalidCallLinkageID",
        "invalidCCBSReference",
        "alreadyAccepted",
        "callFailureReasonNotBusy",
        "supplementaryServiceInteractionNotAllowed",
        "shortTermDenial",
    }
    missing = (
        {f"Invoke:{op}" for op in network_invokes}
        | {f"ReturnResult:{op}" for op in results}
        | {f"error:{e}" for e in errors}
        | {"reject:general", "reject:invoke", "reject:returnResult"}
    ) - kinds
    assert not missing
    assert all(op in OPERATIONS for op in network_invokes)


def test_libpri_decodes_every_emitted_ie_identically(emitted: list[bytes]) -> None:
    require_libpri()
    assert len(emitted) > 40
    for contents in emitted:
        ours = decode_contents(contents).components
        dump = libpri_decode(contents)
        assert dump.complete, (contents.hex(), dump.text)
        assert len(dump.components) == len(ours)
        for mine, theirs in zip(ours, dump.components, strict=True):
            _compare(mine, theirs, contents)


def _compare(mine: Component, theirs: Any, contents: bytes) -> None:
    where = contents.hex()
    kind = {
        Invoke: "invoke",
        ReturnResult: "returnResult",
        ReturnError: "returnError",
        Reject: "reject",
    }[type(mine)]
    assert theirs.kind == kind, where
    if mine.invoke_id is not None:
        assert theirs.get("invokeId") == mine.invoke_id, where
    values = [(n, v) for n, _t, v in theirs.fields if v is not None]
    if isinstance(mine, Invoke | ReturnResult) and mine.operation is not None:
        spec = OPERATIONS[Operation(mine.operation)]
        assert theirs.get("operationValue") == _dotted(spec.code), where
        assert theirs.get("operationName") == "ROSE_ETSI_" + str(mine.operation).replace(
            "-", "_"
        ), where
        payload = mine.argument if isinstance(mine, Invoke) else mine.result
        expected = _flatten(payload)
        reported = [(n, v) for n, v in values if n in set(_LIBPRI_NAMES.values())]
        assert reported == expected, where
    elif isinstance(mine, ReturnError):
        assert theirs.get("errorValue") == _dotted(mine.error.value), where
    elif isinstance(mine, Reject):
        key = {
            "general": "problemGeneral",
            "invoke": "problemInvoke",
            "returnResult": "problemResult",
            "returnError": "problemError",
        }[mine.problem[0]]
        assert theirs.get(key) == mine.problem[1], where
