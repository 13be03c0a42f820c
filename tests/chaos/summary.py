"""The proof suites' summary lines: each chaos / fuzz test writes what it did (kills
survived, fuzz cases, invariant violations, seed) as JSON under the session's pytest
temporary directory and emits one ``ProofSummary`` warning with the line, so that
``make test`` (pytest-xdist: the workers' output is not shown) prints it in the
warnings summary. Without xdist ``tests/chaos/conftest.py`` also prints the totals.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest


class ProofSummary(UserWarning):
    """Not a problem: the summary line of a chaos or fuzz test."""


def summary_dir(factory: pytest.TempPathFactory) -> Path:
    """One directory per session, shared by the xdist workers (their base temporary
    directories are ``popen-gwN`` below the controller's)."""
    base = factory.getbasetemp()
    if base.name.startswith("popen-gw"):
        base = base.parent
    path = base / "proof-summary"
    path.mkdir(parents=True, exist_ok=True)
    return path


def report(factory: pytest.TempPathFactory, name: str, line: str,
           data: dict[str, Any]) -> Path:
    path = summary_dir(factory) / (name.replace("/", "_").replace(":", "_") + ".json")
    path.write_text(json.dumps({"line": line, **data}, indent=1))
    warnings.warn(ProofSummary(line), stacklevel=2)
    return path


def totals(directory: Path) -> dict[str, int]:
    """Sums over every summary file of the session."""
    out = {"tests": 0, "kills_survived": 0, "fuzz_cases": 0, "violations": 0, "rounds": 0}
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        out["tests"] += 1
        out["kills_survived"] += int(data.get("kills_survived", 0))
        out["fuzz_cases"] += int(data.get("fuzz_cases", 0))
        out["rounds"] += int(data.get("rounds", 0))
        out["violations"] += len(data.get("violations", []))
    return out


__all__ = ["ProofSummary", "report", "summary_dir", "totals"]
