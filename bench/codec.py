"""Facility codec speed: µs per decode and per encode of every reference vector, and the
same as a fraction of the time the IE occupies a 16 kbit/s BRI D channel.

Target (issue 2): median decode+encode ≤ 25 µs per IE on the 2-core build machine.
For comparison the asn1tools BER codec compiled from the same etsi_ccbs.asn is timed on
the component envelope + argument/result (without building our dataclasses).
Writes the "codec" area of bench/results.json. Run: python bench/codec.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from _results import write_section  # noqa: E402

from ccbs_isdn.rose import decode_ie, encode_ie  # noqa: E402

VECTORS = ROOT / "tests" / "rose" / "vectors" / "etsi-ccbs-vectors.json"
D_CHANNEL_BPS = 16_000  # BRI D channel (I.430)
REPEATS = 7  # timing rounds per vector; the median round is reported


def _per_call_us(func: Any, arg: Any, budget_s: float = 0.02) -> float:
    """Median over REPEATS rounds of the mean call time, each round ≈ budget_s long."""
    loops = 1
    while True:
        started = time.perf_counter()
        for _ in range(loops):
            func(arg)
        elapsed = time.perf_counter() - started
        if elapsed >= budget_s / 4:
            break
        loops *= 4
    rounds = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(loops):
            func(arg)
        rounds.append((time.perf_counter() - started) / loops * 1e6)
    return statistics.median(rounds)


def _asn1tools_us(vectors: list[dict[str, Any]]) -> float | None:
    try:
        import asn1tools
    except ImportError:
        return None
    spec = asn1tools.compile_files(str(ROOT / "ccbs_isdn" / "rose" / "etsi_ccbs.asn"), "ber")
    sample = next(v for v in vectors if v["name"].startswith("CCBSRemoteUserFree_invoke_global"))
    contents = bytes.fromhex(sample["ie_contents_hex"])[1:]

    def roundtrip(data: bytes) -> bytes:
        kind, comp = spec.decode("Component", data)
        arg = spec.decode("CCBSRemoteUserFreeArg", comp["argument"])
        comp["argument"] = spec.encode("CCBSRemoteUserFreeArg", arg)
        return bytes(spec.encode("Component", (kind, comp)))

    return _per_call_us(roundtrip, contents)


def run() -> dict[str, Any]:
    vectors = json.loads(VECTORS.read_text())["vectors"]
    rows = []
    for vector in vectors:
        ie = bytes.fromhex(vector["ie_hex"])
        facility = decode_ie(ie)
        assert encode_ie(facility) == ie
        decode_us = _per_call_us(decode_ie, ie)
        encode_us = _per_call_us(encode_ie, facility)
        wire_us = len(ie) * 8 / D_CHANNEL_BPS * 1e6
        rows.append(
            {
                "name": vector["name"],
                "ie_octets": len(ie),
                "decode_us": round(decode_us, 2),
                "encode_us": round(encode_us, 2),
                "decode_plus_encode_us": round(decode_us + encode_us, 2),
                "fraction_of_d_channel_time": round((decode_us + encode_us) / wire_us, 5),
            }
        )
    both = [r["decode_plus_encode_us"] for r in rows]
    fractions = [r["fraction_of_d_channel_time"] for r in rows]
    asn1tools_us = _asn1tools_us(vectors)
    headline = {
        "median_decode_plus_encode_us": round(statistics.median(both), 2),
        "max_decode_plus_encode_us": round(max(both), 2),
        "median_decode_us": round(statistics.median(r["decode_us"] for r in rows), 2),
        "median_encode_us": round(statistics.median(r["encode_us"] for r in rows), 2),
        "median_fraction_of_d_channel_time": round(statistics.median(fractions), 5),
        "target_median_us": 25,
    }
    data: dict[str, Any] = {
        "headline": headline,
        "vectors": rows,
        "asn1tools_remote_user_free_roundtrip_us": (
            round(asn1tools_us, 2) if asn1tools_us is not None else None
        ),
        "d_channel_bps": D_CHANNEL_BPS,
    }
    write_section("codec", data)
    return data


if __name__ == "__main__":
    result = run()
    for key, value in result["headline"].items():
        print(f"{key:<40} {value}")
    print(
        f"{'asn1tools RemoteUserFree round trip us':<40} "
        f"{result['asn1tools_remote_user_free_roundtrip_us']}"
    )
