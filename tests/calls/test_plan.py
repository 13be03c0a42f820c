"""The dial plan: which digits reach which extension or go out over ISDN."""

from __future__ import annotations

import pytest

from ccbs_isdn.calls.plan import DialPlan, RouteKind, Station, codes_from_config
from ccbs_isdn.errors import ConfigError

STATIONS = (
    Station("21", "fxs0/1", "5551", 1, "Anna"),
    Station("22", "fxs0/2", "5552", None, "Bert"),
    Station("3", "fxs0/3"),
    Station("31", "fxs0/4"),
)


def plan(**kw: object) -> DialPlan:
    return DialPlan(stations=STATIONS, **kw)  # type: ignore[arg-type]


def test_an_extension_is_reached_as_soon_as_it_is_complete() -> None:
    route = plan().route("21", complete=False)
    assert route.kind is RouteKind.INTERNAL
    assert route.station is not None and route.station.port == "fxs0/1"


def test_an_extension_that_starts_a_longer_one_waits_for_the_end_of_dialling() -> None:
    assert plan().route("3", complete=False).kind is RouteKind.INCOMPLETE
    assert plan().route("3", complete=True).number == "3"
    assert plan().route("31", complete=False).station == STATIONS[3]


def test_the_outgoing_prefix_goes_out_once_dialling_is_complete() -> None:
    assert plan().route("0", complete=False).kind is RouteKind.INCOMPLETE
    assert plan().route("0221", complete=False).kind is RouteKind.INCOMPLETE
    route = plan().route("0221", complete=True)
    assert (route.kind, route.number) == (RouteKind.EXTERNAL, "221")
    assert plan().route("0", complete=True).kind is RouteKind.INVALID


def test_unknown_numbers_are_unobtainable() -> None:
    assert plan().route("9", complete=False).kind is RouteKind.INVALID
    assert plan().route("2", complete=True).kind is RouteKind.INVALID
    assert plan().route("2*1", complete=False).kind is RouteKind.INVALID


def test_without_a_prefix_everything_that_is_not_internal_goes_out() -> None:
    p = plan(outgoing_prefix="")
    assert p.route("21", complete=False).kind is RouteKind.INTERNAL
    assert p.route("22334", complete=False).kind is RouteKind.INCOMPLETE
    assert p.route("22334", complete=True).kind is RouteKind.EXTERNAL


def test_incoming_calls_find_stations_by_msn_and_controller() -> None:
    p = plan()
    assert p.stations_for_msn(1, "5551") == (STATIONS[0],)
    assert p.stations_for_msn(2, "5551") == ()
    assert p.stations_for_msn(7, "5552") == (STATIONS[1],)  # no controller: every one
    assert p.ctrl_of(STATIONS[1]) == p.default_ctrl


@pytest.mark.parametrize("stations, prefix, key", [
    ((Station("21", "a"), Station("21", "b")), "0", "fxs.ports.extension"),
    ((Station("21", "a"), Station("22", "a")), "0", "fxs.ports.port"),
    ((Station("01", "a"),), "0", "dialplan.outgoing_prefix"),
    ((Station("2x", "a"),), "0", "fxs.ports.extension"),
    ((), "0*", "dialplan.outgoing_prefix"),
])
def test_bad_plans_name_the_key(stations: tuple[Station, ...], prefix: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        DialPlan(stations=stations, outgoing_prefix=prefix)
    assert info.value.key == key


def test_codes_from_the_configuration_strings() -> None:
    codes = codes_from_config("*37#", "", "#37#", "#37*", "*#37#", "*37*", window=20,
                              inter_digit=4)
    assert codes.quick_digit is None
    assert codes.cancel_one == "#37*N#" and codes.book == "*37*N#"
    assert codes.inter_digit == 4
