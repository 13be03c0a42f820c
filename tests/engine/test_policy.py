"""Policy decisions and the directory, on their own (pure, fake clock)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ccbs_isdn.engine import (
    CallerPolicy,
    CallerRecallMode,
    Directory,
    Extension,
    Policy,
    QuietHours,
    Timers,
)
from ccbs_isdn.errors import ConfigError
from ccbs_isdn.isdn import CcKind


def at(hour: int, minute: int = 0, tz: dt.tzinfo = dt.UTC, day: int = 10) -> float:
    return dt.datetime(2024, 1, day, hour, minute, tzinfo=tz).timestamp()


def test_timer_defaults_are_libpri_and_product_values() -> None:
    t = Timers()
    assert (t.t_retention, t.t_activate, t.t_ccbs1, t.t_ccbs2, t.t_ccnr2, t.t_ccbs3) == (
        30, 10, 4, 2700, 10800, 20)
    assert (t.t_ccbs5, t.t_ccnr5, t.t_ccbs6, t.t_ccnr6) == (3600, 11700, 3600, 11700)
    assert (t.activation_window, t.guard, t.a_answer, t.lifetime_ccbs, t.lifetime_ccnr) == (
        20, 2, 20, 2700, 10800)


def test_timers_must_be_positive_and_can_be_scaled() -> None:
    with pytest.raises(ConfigError) as err:
        Timers(guard=0)
    assert err.value.key == "timers.guard"
    assert Timers().scaled(0.01).t_ccbs2 == pytest.approx(27.0)


def test_lifetime_and_supervision_per_kind_and_access() -> None:
    p = Policy()
    assert p.lifetime(CcKind.CCBS) == 2700 and p.lifetime(CcKind.CCNR) == 10800
    assert p.supervision(CcKind.CCBS, ptp=False) == 2700  # T-CCBS2
    assert p.supervision(CcKind.CCNR, ptp=False) == 10800  # T-CCNR2
    assert p.supervision(CcKind.CCBS, ptp=True) == 3600  # T-CCBS6
    assert p.supervision(CcKind.CCNR, ptp=True) == 11700  # T-CCNR6


def test_limits_in_order_caller_callee_global() -> None:
    p = Policy(max_per_caller=2, max_per_callee=3, max_global=4)
    assert p.check_limits("21", 1, "22", 2, 3) is None
    assert p.check_limits("21", 2, "22", 0, 0).reason == "caller-limit"  # type: ignore[union-attr]
    assert p.check_limits("21", 0, "22", 3, 0).reason == "callee-limit"  # type: ignore[union-attr]
    assert p.check_limits("21", 0, "22", 0, 4).reason == "global-limit"  # type: ignore[union-attr]


def test_bad_limits_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        Policy(max_global=0)
    with pytest.raises(ConfigError):
        Policy(recall_retries=-1)


def test_patterns_allow_and_deny() -> None:
    p = Policy(deny_targets=("0900*", "0137?"), allow_callers=("2?",))
    assert p.check_target("09001234") is not None
    assert p.check_target("01371") is not None
    assert p.check_target("030123") is None
    assert p.check_caller("21") is None
    assert p.check_caller("310") is not None


def test_recall_mode_per_caller_overrides_the_default() -> None:
    p = Policy(callers={"21": CallerPolicy(recall_mode=CallerRecallMode.NOTIFY)})
    assert p.recall_mode_for("21") is CallerRecallMode.NOTIFY
    assert p.recall_mode_for("22") is CallerRecallMode.AUTO


def test_quiet_hours_same_day_window() -> None:
    p = Policy(quiet_hours=(QuietHours(dt.time(12), dt.time(14)),))
    assert p.quiet_until("21", at(11, 59)) is None
    assert p.quiet_until("21", at(12)) == at(14)
    assert p.quiet_until("21", at(14)) is None


def test_quiet_hours_across_midnight() -> None:
    p = Policy(quiet_hours=(QuietHours(dt.time(22), dt.time(7)),))
    assert p.quiet_until("21", at(23)) == at(7, day=11)
    assert p.quiet_until("21", at(6, 30)) == at(7)
    assert p.quiet_until("21", at(7)) is None


def test_quiet_hours_in_local_time_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    p = Policy(quiet_hours=(QuietHours(dt.time(22), dt.time(7)),), tz=berlin)
    # night of 30/31 March 2024: clocks go 02:00 -> 03:00, the night is an hour shorter
    start = dt.datetime(2024, 3, 30, 23, 0, tzinfo=berlin).timestamp()
    end = p.quiet_until("21", start)
    assert end == dt.datetime(2024, 3, 31, 7, 0, tzinfo=berlin).timestamp()
    assert end - start == 7 * 3600


def test_caller_quiet_hours_override_and_empty_override() -> None:
    p = Policy(quiet_hours=(QuietHours(dt.time(12), dt.time(14)),),
               callers={"21": CallerPolicy(quiet_hours=())})
    assert p.quiet_until("21", at(13)) is None
    assert p.quiet_until("22", at(13)) == at(14)


def test_empty_quiet_window_never_matches() -> None:
    assert not QuietHours(dt.time(5), dt.time(5)).contains(dt.time(5))


def test_policy_callers_mapping_is_read_only() -> None:
    p = Policy(callers={"21": CallerPolicy()})
    with pytest.raises(TypeError):
        p.callers["22"] = CallerPolicy()  # type: ignore[index]


def test_directory_lookups() -> None:
    d = Directory([Extension("21", port="p1", msn="551", ctrl=1),
                   Extension("22", port="p2", msn="551"),
                   Extension("23", msn="553", ctrl=2)])
    assert d.port_of("21") == "p1" and d.port_of("23") is None and d.port_of("99") is None
    assert d.by_port("p2") is not None and d.by_port("p2").ext == "22"  # type: ignore[union-attr]
    assert [e.ext for e in d.by_msn(1, "551")] == ["21", "22"]  # no ctrl = any controller
    assert d.by_msn(2, "551")[0].ext == "22"
    assert d.ports() == ("p1", "p2") and len(d) == 3


@pytest.mark.parametrize("entries", [
    [Extension("21"), Extension("21")],
    [Extension("21", port="p1"), Extension("22", port="p1")],
    [Extension("")],
])
def test_directory_rejects_duplicates(entries: list[Extension]) -> None:
    with pytest.raises(ConfigError):
        Directory(entries)
