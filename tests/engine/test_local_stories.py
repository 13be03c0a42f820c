"""Local CCBS stories: A (21, port p21) and B (22, port p22) are phones of the box.

Each test reads like the user procedure of product.md and asserts what the phones
and the administrator would observe (rings, tones, notifications, request states).
"""

from __future__ import annotations

import datetime as dt

import pytest

from ccbs_isdn.engine import (
    Activate,
    Book,
    Cadence,
    CallerPolicy,
    CallerRecallMode,
    CallFailed,
    Cancel,
    CancelDone,
    ClaimCall,
    ConnectPorts,
    Dialled,
    DisconnectPort,
    Extension,
    Notify,
    NotifyKind,
    PlayTone,
    Policy,
    PollPorts,
    PortsAvailable,
    PortSource,
    PortState,
    PortsUnavailable,
    QuietHours,
    RequestAccepted,
    RequestRefused,
    Ring,
    StatusQuery,
    StatusReply,
    StopRing,
    StoreState,
    Timers,
    Tone,
)
from ccbs_isdn.isdn import CcKind
from tests.engine.harness import T0, Box, only


def busy_b(box: Box, *busy: str) -> Box:
    for port in busy or ("p22",):
        box.lines.hook[port] = True
    box.start()
    return box


def activated(box: Box, caller: str = "21", target: str = "22", cause: int = 17) -> int:
    box.send(CallFailed(caller, target, cause))
    reply = only(box.of(RequestAccepted, box.send(Activate(caller, tag=f"port-{caller}"))))
    return reply.request_id


@pytest.fixture
def box() -> Box:
    return busy_b(Box())


def test_busy_activate_b_frees_guard_recheck_recall_a_then_b_connected(box: Box) -> None:
    box.send(CallFailed("21", "22", 17))
    out = box.send(Activate("21", tag="port-21"))
    assert only(box.of(RequestAccepted, out)) == RequestAccepted("port-21", 1, "21", "22")
    assert only(box.of(Notify, out)).kind is NotifyKind.ACTIVATED
    assert box.state() == "Waiting"

    box.hang_up("p22")  # B hangs up: the guard time starts
    assert box.state() == "Guard"
    assert box.advance(1.9) == []  # nothing happens during the guard time
    out = box.advance(0.2)
    assert out[0] == PollPorts(("p21", "p22"))  # re-check before ringing A
    ring = only(box.of(Ring, out))
    assert ring == Ring("p21", Cadence.RECALL, 20.0, "22", "Bernd", "1.1")
    assert box.state() == "RecallA"

    out = box.lift("p21")  # A answers the recall
    assert PlayTone("p21", Tone.RINGBACK) in out
    ring_b = only(box.of(Ring, out))
    assert (ring_b.port, ring_b.cadence, ring_b.clip_number, ring_b.clip_name) == (
        "p22", Cadence.INTERNAL, "21", "Anna")
    assert ConnectPorts("p21", "p22", ring_b.key) in out
    out = box.lift("p22")  # B answers: connected, request completed
    done = only(box.of(Notify, out))
    assert (done.kind, done.request.state, done.request.reason) == (
        NotifyKind.COMPLETED, "Completed", "recalled")
    assert frozenset({"p21", "p22"}) in box.lines.connected
    assert box.trail() == ["Waiting", "Guard", "Recheck", "RecallA", "RecallB", "Completed"]
    assert box.engine.get(1) is None and len(box.engine) == 0


def test_b_lifting_again_during_the_guard_time_keeps_the_request_waiting(box: Box) -> None:
    activated(box)
    box.hang_up("p22")
    box.advance(1.0)
    box.lift("p22")  # B makes another call right away
    assert box.state() == "Waiting"
    assert box.advance(10) == []
    assert box.of(Ring) == []
    box.hang_up("p22")
    box.advance(2.0)
    assert box.state() == "RecallA"


def test_recheck_poll_that_finds_b_busy_puts_the_request_back(box: Box) -> None:
    activated(box)
    # a spurious on-hook report; the line is really still busy, as the poll shows
    box.send(PortState("p22", False))
    out = box.advance(2.0)
    assert box.of(PollPorts, out) and box.of(Ring, out) == []
    assert box.state() == "Waiting"


def test_a_busy_when_b_frees_suspends_and_resumes_when_a_hangs_up(box: Box) -> None:
    activated(box)
    box.lift("p21")  # A is on another call
    box.hang_up("p22")
    box.advance(2.0)
    assert box.state() == "Suspended"
    assert box.record().reason == "a-busy"
    assert box.of(Ring) == []
    box.hang_up("p21")  # A free again: resume, B has been free long enough
    box.advance(0)
    assert box.state() == "RecallA"
    assert only(box.of(Ring)).port == "p21"


def test_missed_recall_is_retried_then_fails_after_the_configured_retries() -> None:
    box = busy_b(Box(policy=Policy(recall_retries=1)))
    activated(box)
    box.hang_up("p22")
    box.advance(2.0)
    box.ring_times_out("p21")  # A did not answer (bridge reports the ring timeout)
    assert box.state() == "RetryWait" and box.record().missed == 1
    assert box.advance(59.0) == []
    out = box.advance(1.0)  # recall_retry (60 s) later: re-check, ring again
    second = only(box.of(Ring, out))
    assert second.key == "1.2"
    out = box.advance(20.0)  # unanswered again, this time the engine's own A-answer timer
    assert StopRing("p21", "1.2") in out
    failed = only(box.of(Notify, out))
    assert (failed.kind, failed.request.reason) == (NotifyKind.FAILED, "recall-not-answered")
    assert [r.key for r in box.of(Ring)] == ["1.1", "1.2"]


def test_request_expires_after_its_lifetime_with_a_notification(box: Box) -> None:
    activated(box)
    assert box.record().expires_at == pytest.approx(T0 + 45 * 60)
    box.advance(45 * 60 - 1)
    assert box.state() == "Waiting"
    out = box.advance(1)
    expired = only(box.of(Notify, out))
    assert (expired.kind, expired.request.state, expired.request.reason) == (
        NotifyKind.EXPIRED, "Expired", "lifetime")


def test_expiry_while_a_is_being_rung_stops_the_ring() -> None:
    box = busy_b(Box(policy=Policy(timers=Timers(lifetime_ccbs=30.0))))
    activated(box)
    box.advance(20)
    box.hang_up("p22")
    box.advance(2)
    assert box.state() == "RecallA"
    out = box.advance(8)
    assert StopRing("p21", "1.1") in out
    assert box.state() == "Expired"


def test_cancel_by_id_by_caller_by_target_and_all(box: Box) -> None:
    box.lines.hook.update({"p23": True, "p24": True})
    box.start()
    one = activated(box, "21", "22")
    two = activated(box, "21", "23")
    three = activated(box, "25", "24")
    out = box.send(Cancel(caller="21", target="23", tag="t1"))  # #37*23#
    assert only(box.of(CancelDone, out)) == CancelDone("t1", (two,))
    out = box.send(Cancel(request_id=one, tag="t2"))
    assert only(box.of(CancelDone, out)).request_ids == (one,)
    out = box.send(Cancel(caller="21", tag="t3"))  # #37#: nothing left for 21
    assert only(box.of(RequestRefused, out)).reason == "no-such-request"
    out = box.send(Cancel(all_requests=True, tag="t4"))
    assert only(box.of(CancelDone, out)).request_ids == (three,)
    assert [n.kind for n in box.of(Notify) if n.kind is NotifyKind.CANCELLED] == [
        NotifyKind.CANCELLED] * 3
    assert len(box.engine) == 0


def test_cancel_while_a_is_being_rung_stops_the_ring(box: Box) -> None:
    activated(box)
    box.hang_up("p22")
    box.advance(2)
    out = box.send(Cancel(caller="21"))
    assert StopRing("p21", "1.1") in out
    assert "p21" not in box.lines.ringing


@pytest.mark.parametrize(
    ("policy", "requests", "reason"),
    [
        (Policy(max_per_caller=2), [("21", "22"), ("21", "23"), ("21", "24")], "caller-limit"),
        (Policy(callers={"21": CallerPolicy(max_requests=1)}), [("21", "22"), ("21", "23")],
         "caller-limit"),
        (Policy(max_per_callee=2), [("21", "22"), ("23", "22"), ("24", "22")], "callee-limit"),
        (Policy(max_global=2), [("21", "22"), ("23", "24"), ("25", "26")], "global-limit"),
        (Policy(deny_callers=("2[1]",)), [("21", "22")], "denied-caller"),
        (Policy(allow_callers=("23",)), [("21", "22")], "denied-caller"),
        (Policy(deny_targets=("22",)), [("21", "22")], "denied-target"),
        (Policy(allow_targets=("9*",)), [("21", "22")], "denied-target"),
        (Policy(opt_out=frozenset({"22"})), [("21", "22")], "callee-opt-out"),
    ],
)
def test_every_limit_and_rule_refuses_with_a_reason(
        policy: Policy, requests: list[tuple[str, str]], reason: str) -> None:
    box = busy_b(Box(policy=policy), "p22", "p23", "p24", "p26")
    *allowed, refused = requests
    for caller, target in allowed:
        activated(box, caller, target)
    caller, target = refused
    box.send(CallFailed(caller, target, 17))
    refusal = only(box.of(RequestRefused, box.send(Activate(caller, tag="x"))))
    assert refusal.reason == reason and refusal.tag == "x" and refusal.text
    assert len(box.engine) == len(allowed)


def test_default_limits_five_per_caller() -> None:
    extensions = [*Box().directory.extensions]
    extensions += [Extension(str(n), port=f"p{n}") for n in range(30, 37)]
    box = Box(extensions)
    for n in range(30, 37):
        box.lines.hook[f"p{n}"] = True
    box.start()
    for n in range(30, 35):
        activated(box, "21", str(n))
    box.send(CallFailed("21", "35", 17))
    assert only(box.of(RequestRefused, box.send(Activate("21")))).reason == "caller-limit"


def test_repeat_for_the_same_pair_refreshes_instead_of_duplicating(box: Box) -> None:
    rid = activated(box)
    box.advance(600)
    box.send(CallFailed("21", "22", 17))
    out = box.send(Activate("21", tag="again"))
    reply = only(box.of(RequestAccepted, out))
    assert (reply.request_id, reply.refreshed) == (rid, True)
    assert len(box.engine) == 1
    assert box.record().expires_at == pytest.approx(T0 + 600 + 45 * 60)
    assert box.history[-1].event == "refresh"


def test_quiet_hours_hold_the_recall_until_they_end() -> None:
    quiet = QuietHours(dt.time(12, 0), dt.time(12, 30))  # T0 is 12:00 UTC
    box = busy_b(Box(policy=Policy(callers={"21": CallerPolicy(quiet_hours=(quiet,))})))
    activated(box)
    box.hang_up("p22")
    box.advance(2)
    assert box.state() == "Suspended" and box.record().reason == "quiet-hours"
    assert box.of(Ring) == []
    assert box.advance(1800 - 3) == []
    out = box.advance(1)  # 12:30: quiet hours over
    assert box.of(Ring, out) and box.state() == "RecallA"


def test_quiet_hours_longer_than_the_lifetime_let_the_request_expire() -> None:
    quiet = QuietHours(dt.time(11, 0), dt.time(14, 0))
    box = busy_b(Box(policy=Policy(quiet_hours=(quiet,))))
    activated(box)
    box.hang_up("p22")
    box.advance(45 * 60)
    assert box.of(Ring) == [] and box.state() == "Expired"


def test_quiet_hours_across_midnight_hold_the_recall_until_the_morning() -> None:
    quiet = QuietHours(dt.time(22, 0), dt.time(7, 0))
    start = dt.datetime(2024, 1, 10, 23, 30, tzinfo=dt.UTC).timestamp()
    box = busy_b(Box(policy=Policy(quiet_hours=(quiet,)), now=start))
    activated(box)
    box.hang_up("p22")
    box.advance(2)
    assert box.state() == "Suspended"
    assert box.record().deadline == dt.datetime(2024, 1, 11, 7, 0, tzinfo=dt.UTC).timestamp()


def test_notify_mode_tells_a_and_a_own_call_to_b_completes_the_request() -> None:
    policy = Policy(callers={"21": CallerPolicy(recall_mode=CallerRecallMode.NOTIFY)})
    box = busy_b(Box(policy=policy))
    activated(box)
    box.hang_up("p22")
    out = box.advance(2)
    assert box.of(Ring, out) == []
    recall = only(box.of(Notify, out))
    assert recall.kind is NotifyKind.RECALL and box.state() == "Notified"
    out = box.send(Dialled("21", "22", call_id="c7"))  # A calls B himself
    assert ClaimCall("c7", 1) in out
    assert only(box.of(Notify, out)).kind is NotifyKind.COMPLETED
    assert box.record().reason == "own-call"


def test_notify_mode_b_busy_again_waits_for_the_next_free(box: Box) -> None:
    box.engine.reconfigure(policy=Policy(recall_mode=CallerRecallMode.NOTIFY))
    activated(box)
    box.hang_up("p22")
    box.advance(2)
    box.lift("p22")
    assert box.state() == "Waiting"
    box.send(Dialled("21", "22", call_id="c8"))  # B busy: not a recall
    assert box.state() == "Waiting"


def test_fifo_per_callee_second_caller_is_served_after_the_first() -> None:
    box = busy_b(Box())
    first = activated(box, "21", "22")
    second = activated(box, "23", "22")
    box.hang_up("p22")
    box.advance(2)
    assert box.state(first) == "RecallA" and box.state(second) == "Waiting"
    box.lift("p21")
    box.lift("p22")  # 21 and 22 talk: request 1 completed, 22 busy
    assert box.state(first) == "Completed" and box.state(second) == "Waiting"
    box.hang_up("p21")
    box.hang_up("p22")
    out = box.advance(2)
    assert only(box.of(Ring, out)).port == "p23"
    assert box.state(second) == "RecallA"


def test_fifo_skips_a_caller_who_is_busy_and_serves_the_next(box: Box) -> None:
    first = activated(box, "21", "22")
    second = activated(box, "23", "22")
    box.lift("p21")
    box.hang_up("p22")
    box.advance(2)
    assert box.state(first) == "Suspended"
    box.advance(0)
    box.advance(2)
    assert box.state(second) == "RecallA"
    assert only(box.of(Ring)).port == "p23"


def test_b_not_answering_the_recall_counts_as_missed(box: Box) -> None:
    activated(box)
    box.hang_up("p22")
    box.advance(2)
    box.lift("p21")
    out = box.advance(30)  # B does not answer within b_answer
    assert StopRing("p22", "1.2") in out
    assert DisconnectPort("p21") in out and PlayTone("p21", Tone.BUSY) in out
    assert box.state() == "RetryWait"


def test_a_hanging_up_while_b_rings_cancels_the_request(box: Box) -> None:
    activated(box)
    box.hang_up("p22")
    box.advance(2)
    box.lift("p21")
    out = box.hang_up("p21")
    assert StopRing("p22", "1.2") in out
    assert box.state() == "Cancelled" and box.record().reason == "abandoned"


def test_b_busy_again_when_a_answers_gives_a_busy_tone_and_requeues(box: Box) -> None:
    activated(box)
    box.hang_up("p22")
    box.advance(2)
    box.lift("p22")  # B is faster
    out = box.lift("p21")
    assert PlayTone("p21", Tone.BUSY) in out
    assert box.state() == "Waiting" and box.of(Ring, out) == []


def test_bridge_away_suspends_never_cancels_and_resumes_after_a_poll(box: Box) -> None:
    activated(box)
    box.send(PortsUnavailable(("p21", "p22")))
    assert box.state() == "Suspended"
    assert box.record().reason == "bridge-unavailable"
    box.advance(600)
    assert box.state() == "Suspended"
    box.lines.hook["p22"] = False  # B hung up while the bridge was away
    out = box.send(PortsAvailable(("p21", "p22")))
    assert out[0] == PollPorts(("p21", "p22"))
    box.advance(2)
    assert box.state() == "RecallA"


def test_bridge_away_while_ringing_a_stops_the_ring_and_suspends(box: Box) -> None:
    activated(box)
    box.hang_up("p22")
    box.advance(2)
    out = box.send(PortsUnavailable(("p21", "p22")))
    assert StopRing("p21", "1.1") in out and box.state() == "Suspended"


def test_book_without_a_prior_call_to_a_free_phone_recalls_at_once() -> None:
    box = Box()
    box.start()
    out = box.send(Book("21", "22", tag="ctl"))
    assert only(box.of(RequestAccepted, out)).tag == "ctl"
    out = box.advance(2)
    assert only(box.of(Ring, out)).port == "p21"


def test_book_of_an_external_number_needs_the_redial_fallback() -> None:
    box = Box()
    box.start()
    refusal = only(box.of(RequestRefused, box.send(Book("21", "0301234567"))))
    assert refusal.reason == "external-book"


def test_activate_needs_a_recent_failed_call(box: Box) -> None:
    assert only(box.of(RequestRefused, box.send(Activate("21")))).reason == "no-failed-call"
    box.send(CallFailed("21", "22", 17))
    box.advance(21)  # the activation window (20 s) is over
    assert only(box.of(RequestRefused, box.send(Activate("21")))).reason == "no-failed-call"
    box.send(CallFailed("21", "22", 16))  # normal clearing is no reason for CC
    assert only(box.of(RequestRefused, box.send(Activate("21")))).reason == "no-failed-call"


def test_status_query_says_whether_a_request_is_pending(box: Box) -> None:
    reply = only(box.of(StatusReply, box.send(StatusQuery("21", tag="q"))))
    assert reply == StatusReply("q", "21", False, ())
    activated(box)
    reply = only(box.of(StatusReply, box.send(StatusQuery("21", tag="q"))))
    assert reply == StatusReply("q", "21", True, (1,))


def test_store_not_writable_refuses_new_requests_and_keeps_old_ones(box: Box) -> None:
    activated(box)
    box.send(StoreState(writable=False))
    box.lines.hook["p23"] = True
    box.send(PortState("p23", True))
    box.send(CallFailed("24", "23", 17))
    assert only(box.of(RequestRefused, box.send(Activate("24")))).reason == "store-unavailable"
    box.hang_up("p22")
    box.advance(2)
    assert box.state() == "RecallA"  # the old request carries on
    box.send(StoreState(writable=True))
    box.send(CallFailed("24", "23", 17))
    assert box.of(RequestAccepted, box.send(Activate("24")))


def test_ccnr_local_waits_for_b_to_use_the_phone_first() -> None:
    box = Box()
    box.start()  # B idle, did not answer
    activated(box, cause=19)
    assert box.record().kind is CcKind.CCNR
    assert box.record().expires_at == pytest.approx(T0 + 180 * 60)
    assert box.advance(300) == []  # B free all along, but unused: no recall yet
    box.lift("p22")
    box.hang_up("p22")  # B used the phone: now he is back
    out = box.advance(2)
    assert only(box.of(Ring, out)).port == "p21"


@pytest.mark.parametrize(
    ("caller", "target", "reason"),
    [("99", "22", "unknown-caller"), ("21", "21", "own-number")],
)
def test_requests_that_make_no_sense_are_refused(caller: str, target: str, reason: str) -> None:
    box = Box()
    box.start()
    assert only(box.of(RequestRefused, box.send(Book(caller, target)))).reason == reason


def test_watched_ports_and_port_state_queries(box: Box) -> None:
    assert box.engine.watched_ports() == frozenset()
    activated(box)
    assert box.engine.watched_ports() == frozenset({"p21", "p22"})
    assert box.engine.port_busy("p22") is True and box.engine.port_busy("nope") is None


def test_poll_answers_without_change_are_harmless(box: Box) -> None:
    activated(box)
    before = len(box.history)
    box.send(PortState("p22", True, PortSource.POLL))
    box.send(PortState("p21", False))  # no change: nothing to do
    assert len(box.history) == before and box.state() == "Waiting"


def test_lifetime_passing_during_the_recall_does_not_cut_the_call() -> None:
    box = busy_b(Box(policy=Policy(timers=Timers(lifetime_ccbs=30.0))))
    activated(box)
    box.advance(25)
    box.hang_up("p22")
    box.advance(2)
    box.lift("p21")
    box.advance(5)  # lifetime over while B rings: keep going
    assert box.state() == "RecallB"
    box.lift("p22")
    assert box.state() == "Completed"
