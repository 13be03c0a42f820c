"""``make bench``: run every bench/*.py, then print one table of the headline figures
(and draw bench/latency.png when matplotlib is there).

Each benchmark defines ``run() -> dict``, writes its own area of bench/results.json
(``_results.write_section``, headline figures under ``"headline"``) and is runnable
alone (``python bench/e2e.py``). This runner starts each in a process of its own, in
the order of ``AREAS`` (then any other), so that one benchmark's memory, threads or
event loop cannot colour another's figures (the engine's RSS, the daemon's CPU); a
benchmark that fails is reported and the others still run.

    python bench/run.py                 # everything, then the table
    python bench/run.py engine e2e      # only these
    python bench/run.py --table         # only print the table of bench/results.json

Owns the running and the presentation; the figures are the benchmarks'. Speed is
measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
PLOT = HERE / "latency.png"
#: the areas of results.json, in the order they run and are shown
AREAS = ("codec", "capi", "engine", "analog", "e2e")
#: one line per area in the table: what is measured there
ABOUT = {
    "codec": "ROSE/Facility codec (pure), per ETSI vector",
    "capi": "CapiDriver over the real libcapi20 and the rcapi simulator",
    "engine": "pure engine + SQLite store at 1k/10k/100k requests",
    "analog": "real ccbsd, FXS driver on a pty: hook polls, B on-hook -> recall ring",
    "e2e": "real ccbsd end to end: activations, B free -> ring, with 1k/10k pending",
}


def benchmarks(only: list[str]) -> list[Path]:
    found = {p.stem: p for p in HERE.glob("*.py")
             if not p.name.startswith("_") and p.name != "run.py"}
    unknown = [name for name in only if name not in found]
    if unknown:
        raise SystemExit(f"no benchmark {', '.join(unknown)}; there are {', '.join(found)}")
    order = [a for a in AREAS if a in found] + sorted(set(found) - set(AREAS))
    return [found[name] for name in order if not only or name in only]


def run_all(paths: list[Path]) -> dict[str, tuple[bool, float]]:
    outcome: dict[str, tuple[bool, float]] = {}
    for path in paths:
        print(f"== bench/{path.name}: {ABOUT.get(path.stem, '')}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(path)], cwd=HERE.parent)
        took = time.monotonic() - started
        ok = code == 0
        outcome[path.stem] = (ok, took)
        print(f"   {'done' if ok else f'FAILED (exit {code})'} in {took:.1f} s", flush=True)
    return outcome


def _value(value: Any) -> str:
    if isinstance(value, float):
        if value and abs(value) < 0.01:
            return f"{value:.5f}"
        return f"{value:,.3f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(results: dict[str, Any], outcome: dict[str, tuple[bool, float]]) -> str:
    """The headline figures of every area, as a fixed-width table."""
    rows: list[tuple[str, str, str]] = []
    areas = [a for a in AREAS if a in results or a in outcome]
    areas += sorted((set(results) | set(outcome)) - set(AREAS))
    for area in areas:
        ok, took = outcome.get(area, (True, -1.0))
        data = results.get(area)
        if data is None or not ok:
            rows.append((area, "(no figures: the benchmark failed)" if not ok else
                         "(not run yet)", ""))
            continue
        headline = data.get("headline", {})
        if not headline:
            rows.append((area, "(no headline figures)", ""))
        for key, value in sorted(headline.items()):
            rows.append((area, key, _value(value)))
    width = max([len(r[1]) for r in rows] + [6])
    vwidth = max([len(r[2]) for r in rows] + [5])
    lines = [f"{'area':<7} {'figure':<{width}} {'value':>{vwidth}}",
             f"{'-' * 7} {'-' * width} {'-' * vwidth}"]
    last = ""
    for area, key, value in rows:
        lines.append(f"{area if area != last else '':<7} {key:<{width}} {value:>{vwidth}}")
        last = area
    machine = next((d.get("machine") for d in results.values()
                    if isinstance(d, dict) and d.get("machine")), None)
    if machine:
        lines.append(f"(python {machine.get('python')}, {machine.get('cpus')} CPUs, "
                     f"{machine.get('machine')}; figures in {RESULTS.name})")
    return "\n".join(lines)


def latency_points(results: dict[str, Any]) -> list[tuple[int, float, float]]:
    """(pending requests, p50 ms, p99 ms) of B free -> recall ring, from the e2e area."""
    points = []
    for key, part in results.get("e2e", {}).items():
        if not key.startswith("with_") or not isinstance(part, dict):
            continue
        ring = part.get("b_free_to_ring_ms") or {}
        if "p99" in ring and "pending_requests" in part:
            points.append((int(part["pending_requests"]), float(ring["p50"]),
                           float(ring["p99"])))
    return sorted(points)


def plot(results: dict[str, Any]) -> str:
    """bench/latency.png: p50/p99 of B free -> recall ring over pending requests."""
    points = latency_points(results)
    if len(points) < 2:
        return "no plot: the e2e area has fewer than two load levels"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed (pip install '.[plot]')"
    pending = [p[0] for p in points]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    ax.plot(pending, [p[2] for p in points], "o-", label="p99")
    ax.plot(pending, [p[1] for p in points], "s--", label="p50")
    ax.set_xscale("log")
    ax.set_xlabel("pending requests in the daemon")
    ax.set_ylabel("B free at the exchange -> AT%RING (ms)")
    ax.set_title("ccbsd ISDN recall latency under load (bench/e2e.py)")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(PLOT)
    plt.close(fig)
    return f"plot: {PLOT.relative_to(HERE.parent)} ({len(points)} load levels)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("areas", nargs="*", help="run only these benchmarks")
    parser.add_argument("--table", action="store_true",
                        help="do not run anything, print the table of results.json")
    args = parser.parse_args(argv)
    outcome: dict[str, tuple[bool, float]] = {}
    if not args.table:
        outcome = run_all(benchmarks(args.areas))
    try:
        results = json.loads(RESULTS.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        results = {}
    print()
    print(table(results, outcome))
    print(plot(results))
    failed = [area for area, (ok, _) in outcome.items() if not ok]
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
