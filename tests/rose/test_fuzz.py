"""Fuzzing the Facility decoder: random bytes and mutated reference vectors. Whatever
arrives on the D channel, only FacilityError may escape, with an offset inside the input;
whatever decodes is a value we can encode again and that decodes to itself."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccbs_isdn.errors import FacilityError
from ccbs_isdn.rose import (
    Facility,
    decode_any,
    decode_contents,
    decode_each,
    decode_ie,
    encode_contents,
    facility_from_json,
    facility_to_json,
    reject_for,
)
from tests.rose.ber_tools import with_indefinite_lengths
from tests.rose.vectors import ALTERNATES, VECTORS

SEEDS = [bytes.fromhex(v["ie_contents_hex"]) for v in VECTORS + ALTERNATES]
SEEDS += [with_indefinite_lengths(bytes.fromhex(v["ie_contents_hex"])) for v in VECTORS]

FUZZ = settings(
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def survive(data: bytes) -> Facility | None:
    """Decode like a receiver does; check the promises either way."""
    try:
        facility = decode_contents(data)
    except FacilityError as exc:
        assert exc.offset is not None and 0 <= exc.offset <= len(data), exc
        assert exc.message.startswith(f"offset {exc.offset}: ")
        reject = reject_for(exc)
        if reject is not None:
            encode_contents(Facility((reject,)))  # the answer is always encodable
        return None
    # what decoded re-encodes, and the re-encoding is a fixed point
    again = encode_contents(facility)
    assert decode_contents(again) == facility
    assert encode_contents(decode_contents(again)) == again
    assert facility_from_json(json.loads(json.dumps(facility_to_json(facility)))) == facility
    return facility


@st.composite
def mutated_vectors(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(
                st.sampled_from(
                    [
                        0x00,
                        0x01,
                        0x02,
                        0x05,
                        0x06,
                        0x0A,
                        0x1F,
                        0x30,
                        0x40,
                        0x7F,
                        0x80,
                        0x81,
                        0x82,
                        0x84,
                        0xA1,
                        0xFF,
                    ]
                )
            )
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 3))]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "dup" and data:
            end = min(len(data), pos + draw(st.integers(1, 8)))
            data[end:end] = data[pos:end]
    return bytes(data)


@FUZZ
@given(data=mutated_vectors())
def test_mutated_vectors_raise_only_facility_error(data: bytes) -> None:
    survive(data)
    try:
        facility, errors = decode_each(data)
    except FacilityError:
        return
    assert all(isinstance(e, FacilityError) and e.offset is not None for e in errors)
    if facility.components:
        encode_contents(facility)


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_raise_only_facility_error(data: bytes) -> None:
    survive(data)
    for decoder in (decode_ie, decode_any, decode_each):
        try:
            decoder(data)
        except FacilityError as exc:
            assert exc.offset is not None and 0 <= exc.offset <= len(data)


@settings(max_examples=1500, deadline=None)
@given(body=st.binary(max_size=120))
def test_random_components_behind_a_valid_profile(body: bytes) -> None:
    # most random bytes die at the profile octet; these get past it
    for profile in (b"\x91", b"\x9f"):
        survive(profile + body)
        survive(profile + b"\xa1" + bytes((len(body),)) + body)


def test_the_fuzzer_reaches_successful_decodes() -> None:
    # the mutation strategy is only useful if it also produces decodable input
    assert all(survive(seed) is not None for seed in SEEDS)
