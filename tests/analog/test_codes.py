"""Activation-code recogniser stories (analog-bridge.md §6.2), fake clock."""

from __future__ import annotations

import pytest

from ccbs_isdn.analog.codes import (
    ActivationCodes,
    AwaitingCode,
    CodeDialled,
    CodeKind,
    CodeRecogniser,
    Collecting,
    NotACode,
    Rejected,
)
from ccbs_isdn.errors import ConfigError


def dial(rec: CodeRecogniser, digits: str, now: float, gap: float = 0.3) -> list[object]:
    out = []
    for i, d in enumerate(digits):
        out.append(rec.digit(d, now + i * gap))
    return out


def busy_caller(now: float = 100.0, codes: ActivationCodes | None = None) -> CodeRecogniser:
    rec = CodeRecogniser(codes)
    rec.off_hook(now - 5)
    rec.busy(now)
    return rec


def test_r_star37_hash_while_busy_activates() -> None:
    rec = busy_caller()
    assert rec.flash(92, 104.0) == AwaitingCode()
    out = dial(rec, "*37#", 104.7)
    assert out[:3] == [Collecting("*"), Collecting("*3"), Collecting("*37")]
    assert out[3] == CodeDialled(CodeKind.ACTIVATE, "*37#")
    # after the code the port is no longer in a procedure: more keys mean nothing
    assert rec.digit("5", 106.0) is None
    assert rec.next_deadline() is None


def test_quick_digit_5_within_the_window_activates() -> None:
    rec = busy_caller()
    assert rec.digit("5", 119.9) == CodeDialled(CodeKind.ACTIVATE, "5")


def test_quick_digit_after_the_window_is_ignored() -> None:
    rec = busy_caller()
    assert rec.next_deadline() == 120.0
    assert rec.timeout(119.0) is None  # not yet
    assert rec.timeout(120.0) is None  # window closes silently
    assert rec.digit("5", 120.5) is None
    assert rec.flash(90, 121.0) is None


def test_other_keys_over_busy_tone_mean_nothing() -> None:
    rec = busy_caller()
    assert rec.digit("7", 101.0) is None
    assert rec.digit("5", 102.0) == CodeDialled(CodeKind.ACTIVATE, "5")


def test_quick_digit_can_be_disabled_or_changed() -> None:
    rec = busy_caller(codes=ActivationCodes(quick_digit=None))
    assert rec.digit("5", 101.0) is None
    rec = busy_caller(codes=ActivationCodes(quick_digit="2"))
    assert rec.digit("5", 101.0) is None
    assert rec.digit("2", 101.0) == CodeDialled(CodeKind.ACTIVATE, "2")


def test_code_after_flash_must_complete_inside_the_window() -> None:
    rec = busy_caller()
    assert rec.flash(100, 118.0) == AwaitingCode()
    assert rec.digit("*", 118.5) == Collecting("*")
    assert rec.digit("3", 119.5) == Collecting("*3")
    assert rec.next_deadline() == 120.0  # window before the inter-digit timeout
    assert rec.timeout(120.0) == Rejected("*3", "window-expired")
    assert rec.digit("7", 120.2) is None


def test_late_key_after_flash_is_rejected_even_without_a_timer_call() -> None:
    rec = busy_caller()
    rec.flash(100, 119.0)
    assert rec.digit("*", 120.1) == Rejected("*", "window-expired")


def test_inter_digit_timeout_after_flash_rejects() -> None:
    rec = busy_caller()
    rec.flash(100, 101.0)
    rec.digit("*", 102.0)
    assert rec.next_deadline() == pytest.approx(107.0)
    assert rec.timeout(106.9) is None
    assert rec.timeout(107.0) == Rejected("*", "incomplete")


def test_wrong_code_after_flash_is_rejected_at_once() -> None:
    rec = busy_caller()
    rec.flash(100, 101.0)
    assert rec.digit("*", 101.5) == Collecting("*")
    assert rec.digit("4", 101.8) == Rejected("*4", "unknown-code")


def test_second_flash_restarts_the_code() -> None:
    rec = busy_caller()
    rec.flash(100, 101.0)
    rec.digit("*", 101.5)
    assert rec.flash(90, 102.0) == AwaitingCode()
    assert dial(rec, "*37#", 102.5)[-1] == CodeDialled(CodeKind.ACTIVATE, "*37#")


def test_flash_outside_busy_is_not_ours() -> None:
    rec = CodeRecogniser()
    rec.off_hook(0.0)
    assert rec.flash(90, 1.0) is None


@pytest.mark.parametrize(
    ("digits", "kind", "number"),
    [
        ("#37#", CodeKind.CANCEL_ALL, None),
        ("#37*31#", CodeKind.CANCEL_ONE, "31"),
        ("*#37#", CodeKind.STATUS, None),
        ("*37*0301234567#", CodeKind.BOOK, "0301234567"),
    ],
)
def test_service_codes_from_dial_tone(digits: str, kind: CodeKind, number: str | None) -> None:
    rec = CodeRecogniser()
    rec.off_hook(0.0)
    out = dial(rec, digits, 1.0)
    assert all(isinstance(o, Collecting) for o in out[:-1])
    assert out[-1] == CodeDialled(kind, digits, number)


def test_activation_code_from_dial_tone_is_not_an_activation() -> None:
    rec = CodeRecogniser()
    rec.off_hook(0.0)
    assert dial(rec, "*37#", 1.0)[-1] == NotACode("*37#")


def test_ordinary_number_is_handed_back_at_the_first_digit() -> None:
    rec = CodeRecogniser()
    rec.off_hook(0.0)
    assert rec.digit("3", 1.0) == NotACode("3")
    assert rec.digit("1", 1.2) is None  # call control owns the rest of the dialling


def test_abandoned_prefix_from_dial_tone_times_out_as_not_a_code() -> None:
    rec = CodeRecogniser()
    rec.off_hook(0.0)
    rec.digit("*", 1.0)
    assert rec.next_deadline() == 6.0
    assert rec.timeout(6.0) == NotACode("*")


def test_number_codes_refuse_bad_numbers() -> None:
    rec = CodeRecogniser()
    rec.off_hook(0.0)
    assert dial(rec, "#37*#", 1.0)[-1] == NotACode("#37*#")
    rec.off_hook(2.0)
    assert dial(rec, "*37*12A", 3.0)[-1] == NotACode("*37*12A")
    rec = CodeRecogniser(ActivationCodes(max_number=3))
    rec.off_hook(0.0)
    assert dial(rec, "*37*1234", 1.0)[-1] == NotACode("*37*1234")


def test_book_and_cancel_work_after_flash_too() -> None:
    rec = busy_caller()
    rec.flash(90, 101.0)
    assert dial(rec, "#37#", 101.5)[-1] == CodeDialled(CodeKind.CANCEL_ALL, "#37#")


def test_on_hook_ends_everything() -> None:
    rec = busy_caller()
    rec.flash(90, 101.0)
    rec.digit("*", 101.5)
    rec.on_hook(102.0)
    assert rec.next_deadline() is None
    assert rec.digit("3", 103.0) is None
    assert rec.state == "on-hook"


def test_codes_are_configurable() -> None:
    codes = ActivationCodes(activate="*5#", cancel_all="#5#", cancel_one=None, status=None,
                            book="*6*N#")
    rec = busy_caller(codes=codes)
    rec.flash(90, 101.0)
    assert dial(rec, "*5#", 101.5)[-1] == CodeDialled(CodeKind.ACTIVATE, "*5#")
    rec.off_hook(200.0)
    assert dial(rec, "*6*7#", 201.0)[-1] == CodeDialled(CodeKind.BOOK, "*6*7#", "7")
    rec.off_hook(300.0)
    out = dial(rec, "*#37#", 301.0)
    assert out[:2] == [Collecting("*"), NotACode("*#")]
    assert out[2:] == [None, None, None]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"activate": "37#"},  # not a service code
        {"activate": "*3X#"},
        {"book": "*37*N"},  # N must be ended
        {"book": "*37*NN#"},
        {"quick_digit": "55"},
        {"status": "#37#"},  # same code as cancel_all
        {"cancel_all": "#3", "activate": "#37#"},  # fixed code is a prefix of another
        {"window": 0},
        {"max_number": 0},
    ],
)
def test_bad_code_configuration_is_a_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ActivationCodes(**kwargs)  # type: ignore[arg-type]
