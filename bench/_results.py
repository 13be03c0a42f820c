"""Shared helpers for benchmarks: write one area into bench/results.json, machine facts."""

from __future__ import annotations

import json
import os
import platform
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results.json")


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile of *samples* (pct in 0..100)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def summary_us(samples_s: list[float]) -> dict[str, float]:
    """p50/p99/mean of durations given in seconds, reported in microseconds."""
    return {
        "p50_us": round(percentile(samples_s, 50) * 1e6, 3),
        "p99_us": round(percentile(samples_s, 99) * 1e6, 3),
        "mean_us": round(statistics.fmean(samples_s) * 1e6, 3),
    }


def write_section(area: str, data: dict[str, Any]) -> None:
    """Replace the ``area`` object in bench/results.json, keeping the other areas."""
    try:
        current = json.loads(RESULTS.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        current = {}
    current[area] = {**data, "machine": machine()}
    RESULTS.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
