"""Fault injection and bad input: the exchange answers like a network and never raises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ccbs_isdn.drivers.sim.exchange import NetworkTimers, SimExchange
from ccbs_isdn.drivers.sim.q931 import Q931, MsgType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccbs_isdn.rose import types as rt
from ccbs_isdn.rose.codec import Invoke, Reject
from ccbs_isdn.rose.facility import decode_contents
from ccbs_isdn.rose.operations import Operation

from .test_exchange_support import Clock, Terminal, busy_call, components, ie

B = "0303333"
VECTORS = Path("/work/shared/vectors/etsi-ccbs-vectors.json")


def make() -> tuple[SimExchange, Clock, Terminal]:
    ex = SimExchange(NetworkTimers())
    ex.add_access("isdn1", ["3301"])
    ex.add_access("pbx", ["5550"], ptp=True)
    ex.add_subscriber(B, busy=True)
    clock = Clock(ex)
    return ex, clock, Terminal(ex, clock, "isdn1")


def activate(a: Terminal, clock: Clock) -> int:
    _, linkage = busy_call(a, clock, B, "3301")
    a.request(linkage)
    (result,) = a.results()
    a.take()
    return result.result.ccbs_reference  # type: ignore[union-attr]


# ----------------------------------------------------------------- fault hooks


def test_lost_messages_are_logged_and_not_delivered() -> None:
    ex, clock, a = make()
    ex.lose_messages("isdn1", 1)
    cr = a.setup(B, "3301")
    assert [m.type for m in a.take()] == [MsgType.DISCONNECT, MsgType.RELEASE_COMPLETE]
    assert any("lost (fault injection)" in line for line in ex.log_lines())
    assert cr == 1


def test_lost_remote_user_free_runs_into_t_ccbs3() -> None:
    ex, clock, a = make()
    ref = activate(a, clock)
    ex.set_busy(B, False, clock.now)
    (poll,) = a.broadcasts("CCBSStatusRequest")
    ex.lose_messages("isdn1", 1)
    a.answer_status(poll.invoke_id, True)
    assert a.broadcasts("CCBSRemoteUserFree") == []  # lost on the way
    clock.advance(ex.timers.t_ccbs3)
    (erase,) = a.broadcasts("CCBSErase")
    assert (erase.argument.ccbs_reference, erase.argument.erase_reason) == (
        ref,
        rt.CCBSEraseReason.t_CCBS3_timeout,
    )


def test_detached_controller_gets_its_request_erased_after_three_silences() -> None:
    ex, clock, a = make()
    activate(a, clock)
    ex.detach("isdn1")
    ex.set_busy(B, False, clock.now)
    clock.advance(3 * ex.timers.t_ccbs1)
    assert ex.cc_records() == []
    lines = ex.log_lines()
    assert sum("dropped (no controller attached)" in line for line in lines) >= 4
    assert any("A does not answer" in line for line in lines)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("contents", "problem", "invoke_id"),
    [
        ("91A1030201", ("general", 2), None),  # truncated invoke: badlyStructured
        ("91A10B020105060604008267017F", ("invoke", 1), 5),  # unknown operation
        ("91A10E020106060604008267010201010A", ("invoke", 2), 6),  # mistyped argument
        ("91B0020500", ("general", 0), None),  # not a component
    ],
)
def test_malformed_invokes_are_rejected(
    contents: str, problem: tuple[str, int], invoke_id: int | None
) -> None:
    ex, clock, a = make()
    a.send(Q931(MsgType.FACILITY, None, False, facility=(bytes.fromhex(contents),)))
    (answer,) = a.results()
    assert isinstance(answer, Reject)
    assert answer.problem[0] == problem[0]
    if problem == ("invoke", 1) or problem == ("general", 0):
        assert answer.problem == problem
    assert answer.invoke_id == invoke_id


def test_wrong_profile_is_ignored_without_answer() -> None:
    ex, clock, a = make()
    a.send(Q931(MsgType.FACILITY, None, False, facility=(bytes.fromhex("80A1030201"),)))
    assert a.inbox == []
    assert any("malformed facility" in line for line in ex.log_lines())


def test_network_only_operation_from_a_user_is_rejected() -> None:
    ex, clock, a = make()
    a.facility(Invoke(9, Operation.CCBSStopAlerting, rt.CCBSStopAlertingArg(1)))
    (answer,) = a.results()
    assert isinstance(answer, Reject) and answer.problem == ("invoke", 1)
    assert answer.invoke_id == 9


def test_malformed_register_is_rejected_in_its_release_complete() -> None:
    ex, clock, _ = make()
    pbx = Terminal(ex, clock, "pbx")
    pbx.send(Q931(MsgType.REGISTER, 0x12, False, facility=(bytes.fromhex("91A1030201"),)))
    rc = pbx.expect(MsgType.RELEASE_COMPLETE, cr=0x12)
    (reject,) = components(rc)
    assert isinstance(reject, Reject) and reject.problem == ("general", 2)
    pbx.send(Q931(MsgType.REGISTER, 0x13, False))  # nothing in it at all
    assert pbx.expect(MsgType.RELEASE_COMPLETE, cr=0x13).cause == 31


def test_malformed_facility_in_setup_is_rejected_and_the_call_goes_on() -> None:
    ex, clock, a = make()
    cr = a.setup(B, "3301", facility=(bytes.fromhex("91A1030201"),))
    (reject,) = a.results()
    assert isinstance(reject, Reject)
    assert a.expect(MsgType.DISCONNECT, cr=cr).cause == 17


def test_cct_operations_out_of_place() -> None:
    ex, clock, a = make()
    a.facility(Invoke(3, Operation.CCBS_T_Suspend))
    assert a.inbox == []
    a.facility(Invoke(4, Operation.CCBSCall, rt.CCBSCallArg(1)))
    (answer,) = a.results()
    assert answer.error.name == "notReadyForCall"  # type: ignore[union-attr]


def test_mistyped_status_answer_is_rejected() -> None:
    ex, clock, a = make()
    activate(a, clock)
    ex.set_busy(B, False, clock.now)
    (poll,) = a.broadcasts("CCBSStatusRequest")
    from ccbs_isdn.rose.codec import ReturnResult

    a.facility(
        ReturnResult(
            poll.invoke_id,
            Operation.StatusRequest,
            rt.StatusRequestRes(rt.StatusResult.compatibleAndFree),
        )
    )
    (reject,) = a.results()
    assert isinstance(reject, Reject) and reject.problem == ("returnResult", 2)


# --------------------------------------------------------------------- fuzzing


def _vector_contents() -> list[bytes]:
    data = json.loads(VECTORS.read_text())
    return [bytes.fromhex(v["ie_contents_hex"]) for v in data["vectors"]]


_SEEDS = _vector_contents() if VECTORS.exists() else [ie(Invoke(1, Operation.CCBS_T_Call))]


@st.composite
def facility_bytes(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=40))
    seed = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        if not seed:
            break
        pos = draw(st.integers(0, len(seed) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            seed[pos] = draw(st.integers(0, 255))
        elif action == "cut":
            del seed[pos:]
        else:
            seed.insert(pos, draw(st.integers(0, 255)))
    return bytes(seed)


messages = st.builds(
    Q931,
    type=st.sampled_from(list(MsgType)),
    cr=st.one_of(st.none(), st.integers(0, 0x7F)),
    from_network=st.just(False),
    called=st.sampled_from(["", B, "3301", "5550", "0999", "*#"]),
    calling=st.sampled_from(["", "3301", "5550", "x"]),
    bearer=st.sampled_from([b"", bytes.fromhex("04038090A3"), b"\x00"]),
    cause=st.one_of(st.none(), st.integers(-5, 300)),
    facility=st.lists(facility_bytes(), max_size=3).map(tuple),
)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["isdn1", "pbx"]), messages, st.floats(0, 50, allow_nan=False)),
        max_size=12,
    )
)
def test_random_user_input_never_raises_and_answers_are_well_formed(
    steps: list[tuple[str, Q931, float]],
) -> None:
    ex = SimExchange(NetworkTimers())
    ex.add_access("isdn1", ["3301"])
    ex.add_access("pbx", ["5550"], ptp=True)
    ex.add_subscriber(B, busy=True)
    out: list[Q931] = []
    ex.attach("isdn1", out.append)
    ex.attach("pbx", out.append)
    now = 0.0
    for access, msg, dt in steps:
        now += dt
        ex.from_user(access, msg, now)
        ex.set_busy(B, not ex.is_busy(B), now)
    ex.on_timer(now + 24 * 3600)  # every timer runs out
    for msg in out:
        assert msg.from_network
        for contents in msg.facility:
            decode_contents(contents)  # everything the network sends is well-formed
    # nothing leaks: every request, retained call and clearing has run its course
    assert ex.cc_records() == [] and ex.linkages() == []
    assert ex.next_deadline() is None
