"""ccbsd.toml loading: defaults, the shipped example, conf.d overrides, and every bad
config naming its file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ccbs_isdn.config import (
    SCHEMA,
    TimeRange,
    dataclass_fields_match_schema,
    default_config,
    load_config,
    number_matches,
    schema_keys,
)
from ccbs_isdn.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "etc" / "ccbsd.toml.example"
_EXAMPLE_LINE = re.compile(r"^#(\[|[a-z_0-9]+ = )")


def uncomment_examples(text: str) -> str:
    return "\n".join(line[1:] if _EXAMPLE_LINE.match(line) else line for line in text.splitlines())


def keys_in_example(text: str) -> set[str]:
    """Dotted keys set in the example, commented examples included (a.b[].c for arrays)."""
    keys: set[str] = set()
    section = ""
    for raw in uncomment_examples(text).splitlines():
        line = raw.strip()
        if m := re.fullmatch(r"\[\[([a-z_.]+)\]\]", line):
            section = m.group(1) + "[]"
        elif m := re.fullmatch(r"\[([a-z_.]+)\]", line):
            section = m.group(1)
        elif m := re.match(r"([a-z_0-9]+) = ", line):
            keys.add(f"{section}.{m.group(1)}")
    return keys


def write(tmp_path: Path, text: str, name: str = "ccbsd.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_schema_and_dataclasses_agree() -> None:
    assert dataclass_fields_match_schema() == []


def test_example_parses_to_the_defaults() -> None:
    assert load_config(EXAMPLE, conf_d=False).limits == default_config().limits
    loaded = load_config(EXAMPLE, conf_d=False)
    assert {k: v for k, v in vars_of(loaded).items() if k != "sources"} == {
        k: v for k, v in vars_of(default_config()).items() if k != "sources"
    }


def vars_of(config: object) -> dict[str, object]:
    return {name: getattr(config, name) for name in config.__slots__}  # type: ignore[attr-defined]


def test_every_known_key_is_documented_in_the_example() -> None:
    documented = keys_in_example(EXAMPLE.read_text())
    missing = set(schema_keys()) - documented
    unknown = documented - set(schema_keys())
    assert missing == set(), f"keys missing from etc/ccbsd.toml.example: {sorted(missing)}"
    assert unknown == set(), f"example documents unknown keys: {sorted(unknown)}"


def test_example_with_its_commented_examples_enabled_is_valid(tmp_path: Path) -> None:
    path = write(tmp_path, uncomment_examples(EXAMPLE.read_text()))
    config = load_config(path)
    assert config.capi.controllers[0].msns == ("5551", "5552")
    assert config.fxs.ports[0].extension == "21"
    assert config.policy.for_caller("21").recall_mode == "notify"
    assert config.policy.for_caller("22").recall_mode == "auto"
    assert config.policy.for_caller("21").quiet_hours[0] == TimeRange(22 * 60, 7 * 60)
    assert config.notify.callers[0].email == ("anna@example.org",)


def test_conf_d_overrides_single_keys_and_replaces_arrays(tmp_path: Path) -> None:
    main = write(tmp_path, "[limits]\nper_caller = 3\nper_callee = 4\n"
                 "[[fxs.ports]]\nport = 1\nextension = \"21\"\n")
    write(tmp_path, "[limits]\nper_caller = 7\n", "conf.d/10-site.toml")
    write(tmp_path, "[[fxs.ports]]\nport = 2\nextension = \"22\"\n", "conf.d/20-ports.toml")
    write(tmp_path, "not toml at all [", "conf.d/ignored.toml.bak")
    config = load_config(main)
    assert config.limits.per_caller == 7
    assert config.limits.per_callee == 4
    assert [p.extension for p in config.fxs.ports] == ["22"]
    assert config.sources == (str(main), str(tmp_path / "conf.d/10-site.toml"),
                              str(tmp_path / "conf.d/20-ports.toml"))


def test_error_in_conf_d_names_that_file(tmp_path: Path) -> None:
    main = write(tmp_path, "[limits]\nper_caller = 3\n")
    bad = write(tmp_path, "[limits]\nper_callee = 0\n", "conf.d/50-bad.toml")
    with pytest.raises(ConfigError) as info:
        load_config(main)
    assert info.value.file == str(bad)
    assert info.value.key == "limits.per_callee"


BAD_CONFIGS = [
    # (toml text, key named, words the expectation must contain)
    ("[limits]\nper_caller = 0\n", "limits.per_caller", "integer"),
    ("[limits]\nper_caller = \"5\"\n", "limits.per_caller", "integer"),
    ("[limits]\nglobal = 1.5\n", "limits.global", "integer"),
    ("[daemon]\nlog_level = \"loud\"\n", "daemon.log_level", "'debug'"),
    ("[daemon]\nsocket = \"relative.sock\"\n", "daemon.socket", "absolute path"),
    ("[nope]\nx = 1\n", "nope", "one of"),
    ("limits = 5\n", "limits", "[limits] table"),
    ("[capi]\nbogus = 1\n", "capi.bogus", "one of"),
    ("[capi]\nenabled = \"yes\"\n", "capi.enabled", "true or false"),
    ("[capi]\nenabled = true\ndriver = \"rcapi\"\n", "capi.host", "remote CAPI host"),
    ("[[capi.controllers]]\nmsns = [\"1\"]\n", "capi.controllers[0].ctrl", "integer"),
    ("[[capi.controllers]]\nctrl = 1\nroute = \"fast\"\n", "capi.controllers[0].route", "'raw'"),
    ("[[capi.controllers]]\nctrl = 1\nmsns = [\"55x\"]\n", "capi.controllers[0].msns", "digit"),
    ("[[capi.controllers]]\nctrl = 1\n[[capi.controllers]]\nctrl = 1\n", "capi.controllers",
     "unique"),
    ("[[fxs.ports]]\nport = 1\nextension = \"2a\"\n", "fxs.ports[0].extension", "digits"),
    ("[[fxs.ports]]\nport = 1\nextension = \"21\"\n[[fxs.ports]]\nport = 1\nextension = \"22\"\n",
     "fxs.ports", "unique port"),
    ("[[capi.controllers]]\nctrl = 1\nmsns = [\"5551\"]\n"
     "[[fxs.ports]]\nport = 1\nextension = \"21\"\nmsn = \"9999\"\n", "fxs.ports[0].msn",
     "5551"),
    ("[fxs.hook]\nflash_min_ms = 600\nflash_max_ms = 500\n", "fxs.hook.flash_max_ms", "600"),
    ("[fxs.codes]\ncancel = \"\"\n", "fxs.codes.cancel", "DTMF"),
    ("[fxs.codes]\nactivate = \"*37A\"\n", "fxs.codes.activate", "DTMF"),
    ("[policy]\nquiet_hours = [\"25:00-07:00\"]\n", "policy.quiet_hours", "22:00-07:00"),
    ("[policy]\ndeny_targets = [\"09x\"]\n", "policy.deny_targets", "pattern"),
    ("[[policy.callers]]\nextension = \"21\"\nrecall_mode = \"shout\"\n",
     "policy.callers[0].recall_mode", "'notify'"),
    ("[metrics]\naddress = \"0.0.0.0\"\n", "metrics.address", "loopback"),
    ("[metrics]\nmode = \"push\"\n", "metrics.mode", "'http'"),
    ("[notify]\nwebhook = \"ftp://example.org\"\n", "notify.webhook", "URL"),
    ("[notify]\nevents = [\"exploded\"]\n", "notify.events", "activated"),
    ("[notify]\ncommand = \"/bin/true\"\n", "notify.command", "argv"),
    ("[timers]\nguard = -1\n", "timers.guard", "seconds"),
    ("[timers]\nt_ccbs2 = \"45min\"\n", "timers.t_ccbs2", "seconds"),
    ("[sim]\nenabled = true\nfxs_ports = 2\n[[fxs.ports]]\nport = 3\nextension = \"23\"\n",
     "fxs.ports[0].port", "sim.fxs_ports"),
]


@pytest.mark.parametrize(("text", "key", "expected"), BAD_CONFIGS,
                         ids=[case[1] for case in BAD_CONFIGS])
def test_bad_config_names_file_key_and_expectation(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.file == str(path)
    assert err.key == key
    assert err.expected is not None and expected in err.expected
    assert str(err).startswith(f"{path}: {key}: ")


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[limits]\nper_caller = \n")
    with pytest.raises(ConfigError, match=r"TOML syntax error.*line 2") as info:
        load_config(path)
    assert info.value.file == str(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")


def test_every_section_is_a_table_of_the_schema() -> None:
    assert all(key.kind == "section" for key in SCHEMA.values())


@pytest.mark.parametrize(
    ("pattern", "number", "matches"),
    [("0900*", "09001234", True), ("0900*", "0180123", False), ("2?", "21", True),
     ("2?", "211", False), ("*", "", True), ("+49*", "+4930", True)],
)
def test_number_patterns(pattern: str, number: str, matches: bool) -> None:
    assert number_matches(pattern, number) is matches


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [("22:00-07:00", [22 * 60, 23 * 60 + 59, 0, 6 * 60 + 59], [7 * 60, 12 * 60, 21 * 60 + 59]),
     ("12:30-13:30", [12 * 60 + 30, 13 * 60], [12 * 60 + 29, 13 * 60 + 30])],
)
def test_quiet_hours_wrap_midnight(text: str, inside: list[int], outside: list[int]) -> None:
    from ccbs_isdn.config import parse_time_range

    tr = parse_time_range(text)
    assert str(tr) == text
    assert all(tr.contains(m) for m in inside)
    assert not any(tr.contains(m) for m in outside)


def test_unknown_time_zone_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[policy]\ntimezone = \"Mars/Olympus\"\n")
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'") as info:
        load_config(path)
    assert info.value.key == "policy.timezone"
