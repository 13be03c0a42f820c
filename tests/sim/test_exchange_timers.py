"""NetworkTimers (libpri defaults, etsi-ccbs.md §4) and the exchange's timer queue."""

from __future__ import annotations

import pytest
from ccbs_isdn.drivers.sim.exchange import NetworkTimers, SimExchange
from ccbs_isdn.drivers.sim.network.timers import TimerQueue

from .test_exchange_support import Clock, Terminal, busy_call


def test_defaults_are_libpris() -> None:
    t = NetworkTimers()
    assert (t.t_retention, t.t_ccbs1, t.t_ccbs3, t.t_status) == (30.0, 4.0, 20.0, 4.0)
    assert (t.t_ccbs2, t.t_ccnr2) == (45 * 60.0, 180 * 60.0)
    assert (t.t_ccbs5, t.t_ccnr5) == (60 * 60.0, 195 * 60.0)


def test_scaled_multiplies_every_timer() -> None:
    t = NetworkTimers().scaled(0.001)
    assert t.t_ccbs2 == pytest.approx(2.7)
    assert t.t_retention == pytest.approx(0.03)
    assert t.t301 == pytest.approx(0.18)
    with pytest.raises(ValueError):
        NetworkTimers().scaled(0)
    with pytest.raises(ValueError, match="t_ccbs1"):
        NetworkTimers(t_ccbs1=0)


def test_queue_orders_by_deadline_then_start_order_and_cancels() -> None:
    q = TimerQueue()
    fired: list[str] = []
    q.start(5.0, "b", lambda now: fired.append("b"))
    q.start(1.0, "a", lambda now: fired.append("a"))
    q.start(5.0, "c", lambda now: fired.append("c"))
    gone = q.start(2.0, "gone", lambda now: fired.append("gone"))
    gone.cancel()
    assert q.next_deadline() == 1.0 and len(q) == 3
    while (timer := q.pop_due(10.0)) is not None:
        timer.callback(10.0)
    assert fired == ["a", "b", "c"]
    assert q.next_deadline() is None and q.pop_due(99.0) is None


def test_scaled_exchange_runs_a_whole_story_in_milliseconds() -> None:
    ex = SimExchange(NetworkTimers().scaled(0.001))
    ex.add_access("isdn1", ["3301"])
    ex.add_subscriber("0303333", busy=True)
    clock = Clock(ex)
    a = Terminal(ex, clock, "isdn1")
    _, linkage = busy_call(a, clock, "0303333", "3301")
    a.request(linkage)
    a.take()
    clock.advance(2.7)  # T-CCBS2 scaled from 45 min
    (erase,) = a.broadcasts("CCBSErase")
    assert erase.argument.erase_reason.asn1_name == "t-CCBS2-timeout"


def test_timers_fire_at_their_own_deadline_even_when_called_late() -> None:
    ex = SimExchange(NetworkTimers())
    ex.add_access("isdn1", ["3301"])
    ex.add_subscriber("0303333", busy=True)
    clock = Clock(ex)
    a = Terminal(ex, clock, "isdn1")
    busy_call(a, clock, "0303333", "3301")
    deadline = ex.next_deadline()
    assert deadline == pytest.approx(clock.now + ex.timers.t_retention)
    ex.on_timer(clock.now + 1000.0)  # one late call fires everything that was due
    (erase,) = a.broadcasts("EraseCallLinkageID")
    assert erase.argument.call_linkage_id == 1
    assert [e.time for e in ex.log if "T-RETENTION expired" in e.text] == [deadline]
    assert ex.next_deadline() is None
