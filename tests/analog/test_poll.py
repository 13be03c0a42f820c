"""Hook poll policy (analog-bridge.md §5), fake clock."""

from __future__ import annotations

import pytest

from ccbs_isdn.analog.poll import PollPolicy
from ccbs_isdn.errors import ConfigError


def test_first_poll_is_immediate_then_every_30s_when_nothing_is_watched() -> None:
    policy = PollPolicy()
    assert policy.due(0.0)
    policy.polled(0.0)
    assert policy.next_poll(1.0) == 30.0
    assert not policy.due(29.9)
    assert policy.due(30.0)


def test_watched_ports_poll_every_5s() -> None:
    policy = PollPolicy()
    policy.polled(100.0)
    policy.set_watched({2, 3})
    assert policy.next_poll(101.0) == 105.0
    policy.polled(105.0)
    assert policy.next_poll(105.0) == 110.0
    policy.set_watched(())
    assert policy.next_poll(106.0) == 135.0


def test_watching_after_a_long_idle_makes_the_poll_due_at_once() -> None:
    policy = PollPolicy()
    policy.polled(0.0)
    policy.set_watched([1])
    assert policy.due(20.0)


@pytest.mark.parametrize("reason", ["ready", "reconnect", "before-recall"])
def test_urgent_poll_is_due_now_and_cleared_by_a_poll_started_after_it(reason: str) -> None:
    policy = PollPolicy()
    policy.polled(10.0)
    policy.poll_now(12.0, reason)
    assert policy.due(12.0) and policy.reasons == (reason,)
    policy.polled(11.5)  # answer of a poll sent before the request: does not count
    assert policy.due(12.1)
    policy.polled(12.1)
    assert not policy.due(12.2)
    assert policy.next_poll(12.2) == pytest.approx(42.1)
    assert policy.reasons == ()


def test_after_forget_the_next_poll_is_immediate() -> None:
    policy = PollPolicy()
    policy.polled(5.0)
    policy.forget()
    assert policy.due(5.1)


def test_bad_intervals_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        PollPolicy(active=0)
    with pytest.raises(ConfigError):
        PollPolicy(active=40, idle=30)
