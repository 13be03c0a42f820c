"""Conformance: every reference vector (libpri 1.6 encodings) decodes to its values and
re-encodes byte-identically; the mISDNuser long-form alternates decode to the same values."""

from __future__ import annotations

import json

import pytest

from ccbs_isdn.rose import (
    Facility,
    decode_contents,
    decode_ie,
    encode_contents,
    encode_ie,
    facility_from_json,
    facility_to_json,
)
from tests.rose.vectors import ALTERNATES, BY_NAME, VECTORS, expected_component

NAMES = [v["name"] for v in VECTORS]


def test_the_vector_file_is_complete() -> None:
    assert len(VECTORS) == 75
    operations = {v["operation"] for v in VECTORS}
    assert {"StatusRequest", "CCBSRequest", "CCBS-T-Request", "CCNR-T-Request"} <= operations


@pytest.mark.parametrize("name", NAMES)
def test_vector_decodes_to_its_values(name: str) -> None:
    vector = BY_NAME[name]
    facility = decode_ie(bytes.fromhex(vector["ie_hex"]))
    assert facility.profile == 0x91
    assert len(facility.components) == 1
    assert facility_to_json(facility)["components"][0] == expected_component(vector)


@pytest.mark.parametrize("name", NAMES)
def test_vector_reencodes_byte_identically(name: str) -> None:
    vector = BY_NAME[name]
    ie = bytes.fromhex(vector["ie_hex"])
    contents = bytes.fromhex(vector["ie_contents_hex"])
    facility = decode_ie(ie)
    assert encode_ie(facility) == ie
    assert encode_contents(facility) == contents
    assert decode_contents(contents) == facility


@pytest.mark.parametrize("name", NAMES)
def test_vector_survives_the_json_form(name: str) -> None:
    ie = bytes.fromhex(BY_NAME[name]["ie_hex"])
    document = json.loads(json.dumps(facility_to_json(decode_ie(ie))))
    rebuilt = facility_from_json(document)
    assert isinstance(rebuilt, Facility)
    assert encode_ie(rebuilt) == ie


@pytest.mark.parametrize("alternate", ALTERNATES, ids=[a["name"] for a in ALTERNATES])
def test_long_form_alternates_decode_to_the_same_values(alternate: dict[str, object]) -> None:
    same = BY_NAME[str(alternate["same_value_as"])]
    long_form = decode_ie(bytes.fromhex(str(alternate["ie_hex"])))
    assert long_form == decode_ie(bytes.fromhex(same["ie_hex"]))
    # and re-encoding normalises to libpri's minimal lengths
    assert encode_ie(long_form).hex().upper() == same["ie_hex"]
