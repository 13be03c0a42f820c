"""The shipped udev rules parse as udev rules and give every bridge what ccbsd needs:
a /dev/ccbs/fxsN name, the dialout group, ModemManager kept away, a systemd unit."""

from __future__ import annotations

import re
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "udev" / "77-ccbs-fxs.rules"

#: key, optional {attribute}, operator, "value" (udev(7) rule syntax)
_PAIR = re.compile(r'\s*([A-Z_]+)(\{[^}]+\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(,|$)')
_KEYS = {"ACTION", "SUBSYSTEM", "KERNEL", "DRIVER", "ATTRS", "ATTR", "ENV", "SYMLINK",
         "GROUP", "MODE", "TAG", "RUN"}


def rules() -> list[list[tuple[str, str, str, str]]]:
    out = []
    for number, line in enumerate(RULES.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs, pos = [], 0
        while pos < len(line):
            m = _PAIR.match(line, pos)
            assert m, f"line {number}: cannot parse at column {pos}: {line[pos:pos + 30]!r}"
            key, attr, op, value, _ = m.groups()
            assert key in _KEYS, f"line {number}: unknown key {key}"
            pairs.append((key, attr or "", op, value))
            pos = m.end()
        out.append(pairs)
    return out


def test_rules_parse() -> None:
    assert len(rules()) >= 3


def test_every_named_bridge_is_ready_for_ccbsd() -> None:
    named = [r for r in rules() if any(k == "SYMLINK" for k, *_ in r)]
    assert len(named) >= 3
    for rule in named:
        assigned = {(k, a, v) for k, a, op, v in rule if op in ("=", "+=")}
        link = next(v for k, a, v in assigned if k == "SYMLINK")
        assert re.fullmatch(r"ccbs/fxs\d+", link)
        assert ("GROUP", "", "dialout") in assigned
        assert ("ENV", "{ID_MM_DEVICE_IGNORE}", "1") in assigned
        assert ("TAG", "", "systemd") in assigned
        assert any(k == "SUBSYSTEM" and v == "tty" for k, _, op, v in rule if op == "==")


def test_examples_cover_ftdi_and_cdc_acm() -> None:
    text = RULES.read_text()
    assert 'ATTRS{idVendor}=="0403"' in text and 'KERNEL=="ttyACM*"' in text
    assert 'ATTR{latency_timer}="1"' in text
    # sorted before ModemManager's 80-mm-candidate.rules
    assert int(RULES.name.split("-")[0]) < 80
