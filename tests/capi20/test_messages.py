"""CAPI 2.0 message codec: golden bytes, round trips of every layout, and fuzzing.

Only CapiMessageError may escape the decoder, whatever the input."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest
from ccbs_isdn.drivers.capi20 import messages as m
from ccbs_isdn.drivers.capi20 import tables as t
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccbs_isdn.errors import CapiMessageError, LocalError
from ccbs_isdn.isdn import BEARER_SPEECH

C, S = t.Command, t.Subcommand


# ----------------------------------------------------------------------- golden bytes


def test_listen_req_matches_the_proof_bytes() -> None:
    # capi-proof/capi_client.py built this LISTEN_REQ by hand and the real library
    # accepted it: 26 octets, controller 1, info mask 0x3FF, all CIPs.
    expected = struct.pack("<HHBBH", 26, 1, 0x05, 0x80, 1) + struct.pack(
        "<IIII", 1, 0x3FF, 0x1FFF03FF, 0
    ) + b"\x00\x00"
    msg = replace(m.message(C.LISTEN, S.REQ, 1, controller=1, info_mask=0x3FF,
                            cip_mask=0x1FFF03FF), appl_id=1)
    assert m.encode(msg) == expected
    back = m.decode(expected)
    assert back.name == "LISTEN_REQ"
    assert back.get_int("cip_mask") == 0x1FFF03FF
    assert back.get_struct("calling_number") == b""
    assert back.address == 1 and back.controller == 1


def test_disconnect_ind_user_busy() -> None:
    raw = bytes.fromhex("0e00 0300 0482 0700 01010000 9134".replace(" ", ""))
    msg = m.decode(raw)
    assert (msg.command, msg.subcommand, msg.number, msg.appl_id) == (C.DISCONNECT, S.IND, 7, 3)
    assert msg.get_int("plci") == 0x101
    assert msg.get_int("reason") == 0x3491
    assert t.reason_to_cause(msg.get_int("reason")) == 17
    assert m.encode(msg) == raw


def test_struct_long_form_from_255_octets() -> None:
    assert m.encode_struct(b"x" * 254)[:1] == b"\xfe"
    long = m.encode_struct(b"y" * 300)
    assert long[:3] == b"\xff\x2c\x01" and len(long) == 303
    msg = m.message(C.INFO, S.IND, 2, address=1, info_number=0x1C, info_element=b"z" * 300)
    assert m.decode(m.encode(msg)).get_struct("info_element") == b"z" * 300


def test_long_form_with_small_length_is_accepted() -> None:
    raw = m.encode(m.message(C.INFO, S.IND, 2, address=1, info_number=0x1C))
    # replace the empty struct 00 by FF 02 00 'ab'
    patched = raw[:-1] + b"\xff\x02\x00ab"
    patched = struct.pack("<H", len(patched)) + patched[2:]
    assert m.decode(patched).get_struct("info_element") == b"ab"


def test_optional_trailing_parameter_may_be_absent_or_present() -> None:
    without = m.message(C.CONNECT, S.IND, 1, plci=0x101, cip=1)
    assert "second_calling_number" not in m.decode(m.encode(without)).params
    with_it = m.message(C.CONNECT, S.IND, 1, plci=0x101, cip=1,
                        second_calling_number=b"\x01\x80123")
    assert m.decode(m.encode(with_it)).get_struct("second_calling_number") == b"\x01\x80123"


def test_unknown_trailing_octets_are_kept() -> None:
    raw = m.encode(m.message(C.DISCONNECT, S.RESP, 9, plci=0x201)) + b"\x01\x02"
    raw = struct.pack("<H", len(raw)) + raw[2:]
    msg = m.decode(raw)
    assert msg.extra == b"\x01\x02"
    assert m.encode(msg) == raw


# ------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("raw", "offset", "text"),
    [
        (b"\x08\x00\x01", 3, "8-octet header"),
        (bytes.fromhex("0a00 0100 0482 0100 0101".replace(" ", "")), 8,
         "4-octet DISCONNECT_IND.plci"),
        (bytes.fromhex("0e00 0100 0482 0100 01010000".replace(" ", "")), 0, "length word"),
        (bytes.fromhex("0800 0100 0682 0100".replace(" ", "")), 4, "command 0x06"),
        (bytes.fromhex("0800 0100 0484 0100".replace(" ", "")), 5, "subcommand 0x84"),
        (bytes.fromhex("0800 0100 0381 0100".replace(" ", "")), 4, "CONNECT_ACTIVE_CONF"),
        (bytes.fromhex("0f00 0100 0882 0100 01000000 1c00 05".replace(" ", "")), 14,
         "claims 5 octets"),
        (bytes.fromhex("0e00 0100 0882 0100 01000000 1c00".replace(" ", "")), 14,
         "length of struct"),
        (bytes.fromhex("1000 0100 0882 0100 01000000 1c00 ff05".replace(" ", "")), 14,
         "16-bit length"),
    ],
)
def test_malformed_messages_name_the_offset(raw: bytes, offset: int, text: str) -> None:
    if len(raw) >= 8 and text != "length word":
        raw = struct.pack("<H", len(raw)) + raw[2:]  # only that case has a wrong length word
    with pytest.raises(CapiMessageError) as exc:
        m.decode(raw)
    assert exc.value.offset == offset
    assert text in str(exc.value)


def test_encoding_misuse_is_a_local_error() -> None:
    with pytest.raises(LocalError, match="unknown parameter"):
        m.message(C.LISTEN, S.REQ, 1, controler=1)
    with pytest.raises(LocalError, match="does not fit"):
        m.encode(m.message(C.DISCONNECT, S.IND, 1, plci=1, reason=0x10000))
    with pytest.raises(LocalError, match="must be bytes"):
        m.encode(m.message(C.INFO, S.REQ, 1, address=1, called_number=5))
    with pytest.raises(LocalError, match="no such CAPI message"):
        m.message(C.CONNECT_ACTIVE, S.REQ, 1)


# ---------------------------------------------------------------- every layout round-trips


def _value_strategy(kind: str) -> st.SearchStrategy[m.Value]:
    kind = kind.rstrip("?")
    if kind == "s":
        return st.binary(max_size=300)
    octets = {"b": 1, "w": 2, "d": 4, "q": 8}[kind]
    return st.integers(min_value=0, max_value=(1 << (8 * octets)) - 1)


@st.composite
def any_message(draw: st.DrawFn) -> m.CapiMessage:
    key = draw(st.sampled_from(sorted(m.LAYOUTS, key=lambda k: (k[0].value, k[1].value))))
    params: dict[str, m.Value] = {}
    for name, kind in m.LAYOUTS[key]:
        if kind.endswith("?") and not draw(st.booleans()):
            break  # optional parameters are trailing: omit this one and the rest
        params[name] = draw(_value_strategy(kind))
    return m.CapiMessage(key[0], key[1], draw(st.integers(0, 0xFFFF)), params,
                         draw(st.integers(0, 1023)))


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(any_message())
def test_every_message_round_trips(msg: m.CapiMessage) -> None:
    raw = m.encode(msg)
    back = m.decode(raw)
    assert back == msg
    assert m.encode(back) == raw


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_capi_message_error(raw: bytes) -> None:
    for candidate in (raw, struct.pack("<H", len(raw) + 2) + raw):
        try:
            msg = m.decode(candidate)
        except CapiMessageError as exc:
            assert exc.offset is not None
        else:
            assert m.encode(msg)[:2] == candidate[:2]


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(any_message(), st.data())
def test_mutated_messages_raise_only_capi_message_error(
    msg: m.CapiMessage, data: st.DataObject
) -> None:
    raw = bytearray(m.encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip" and raw:
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= data.draw(st.integers(1, 255))
        elif op == "cut" and raw:
            del raw[data.draw(st.integers(0, len(raw) - 1)):]
        else:
            raw.insert(data.draw(st.integers(0, len(raw))), data.draw(st.integers(0, 255)))
    fixed = struct.pack("<H", len(raw)) + bytes(raw[2:]) if len(raw) >= 2 else bytes(raw)
    for candidate in (bytes(raw), fixed):
        try:
            back = m.decode(candidate)
        except CapiMessageError:
            continue
        for name, value in back.params.items():
            if isinstance(value, bytes) and name in ("additional_info",):
                try:
                    m.AdditionalInfo.decode(value)
                except CapiMessageError:
                    pass
            if name == "parameter" and isinstance(value, bytes):
                try:
                    m.decode_supp(back.subcommand, value)
                except CapiMessageError:
                    pass


# ------------------------------------------------------------------- sub-structures


def test_b_protocol_voice_and_defaults() -> None:
    assert m.VOICE.encode() == bytes.fromhex("010001000000000000")
    assert m.BProtocol.decode(m.VOICE.encode()) == m.VOICE
    assert m.BProtocol.decode(b"") == m.BProtocol(0, 0, 0)
    with_global = m.BProtocol(global_config=b"\x01\x00")
    assert m.BProtocol.decode(with_global.encode()) == with_global


def test_additional_info_with_facility_array_and_cause() -> None:
    fac = bytes.fromhex("91A10E02011E060604008267010202 0105".replace(" ", ""))
    array = m.facility_array([fac, fac], cause=17)
    assert array[:4] == bytes.fromhex("08028091")
    ai = m.AdditionalInfo(facility_array=array)
    content = ai.encode()
    # B channel info, keypad, UUS empty; array; sending complete empty
    assert content[:3] == b"\x00\x00\x00" and content[-1:] == b"\x00"
    back = m.AdditionalInfo.decode(content)
    assert m.facilities_in_array(back.facility_array) == (fac, fac)
    assert m.cause_in_array(back.facility_array) == 17
    assert m.AdditionalInfo().encode() == b""
    assert m.AdditionalInfo.decode(b"") == m.AdditionalInfo()


def test_b_channel_information_none_means_signalling_only() -> None:
    ai = m.AdditionalInfo(b_channel_info=m.b_channel_info(t.B_CHANNEL_NONE))
    assert m.AdditionalInfo.decode(ai.encode()).b_channel_mode == 2
    assert m.AdditionalInfo().b_channel_mode is None


def test_ie_parsing_handles_single_octet_ies_and_reports_truncation() -> None:
    assert m.parse_ies(bytes.fromhex("A1 0403 8090A3".replace(" ", ""))) == [
        (0xA1, b""), (0x04, bytes.fromhex("8090A3"))]
    with pytest.raises(CapiMessageError, match="claims 5 octets"):
        m.parse_ies(bytes.fromhex("1C05 9100"))
    with pytest.raises(CapiMessageError, match="no length octet"):
        m.parse_ies(b"\x1c")


def test_cause_and_numbers() -> None:
    assert m.cause_contents(17) == b"\x80\x91"
    assert m.decode_cause(b"\x80\x91") == 17
    assert m.decode_cause(b"\x02\x80\x90") == 16  # octet 3a present
    with pytest.raises(CapiMessageError):
        m.decode_cause(b"\x02\x80")
    assert m.called_number("22") == b"\x8122"
    assert m.number_digits(m.called_number("22")) == "22"
    assert m.calling_number("31") == b"\x01\x8031"
    assert m.number_digits(m.calling_number("31")) == "31"
    assert m.number_digits(b"") == ""


def test_bearer_and_cip() -> None:
    bc, llc, hlc = m.split_bearer(BEARER_SPEECH)
    assert (bc, llc, hlc) == (bytes.fromhex("8090A3"), b"", b"")
    assert m.cip_for_bearer(bc, hlc) == 1
    assert m.cip_for_bearer(bc, bytes.fromhex("9181")) == 16
    assert m.cip_for_bearer(bytes.fromhex("9090A3")) == 4
    assert m.cip_for_bearer(bytes.fromhex("8890")) == 2
    assert m.cip_for_bearer(b"") == 0
    assert m.bearer_for_cip(1) == BEARER_SPEECH
    assert m.bearer_for_cip(16) == BEARER_SPEECH + bytes.fromhex("7D029181")
    full = m.join_bearer(bc, b"\x88", bytes.fromhex("9181"))
    assert full == bytes.fromhex("04038090A3 7C0188 7D029181".replace(" ", ""))
    assert m.split_bearer(full) == (bc, b"\x88", bytes.fromhex("9181"))


# ------------------------------------------------------------------ selector 3


def test_ccbs_request_parameter_bytes() -> None:
    content = m.encode_supp(S.REQ, m.SuppParam(t.FN_CCBS_REQUEST,
                                               {"handle": 0x10000005, "call_linkage_id": 5}))
    assert content == bytes.fromhex("0F00 06 05000010 0500".replace(" ", ""))
    back = m.decode_supp(S.REQ, content)
    assert back.get_int("handle") == 0x10000005 and back.get_int("call_linkage_id") == 5


def test_conf_defaults_to_info_and_get_supported_has_services() -> None:
    conf = m.decode_supp(S.CONF, bytes.fromhex("0F00 02 0E30".replace(" ", "")))
    assert conf.get_int("info") == 0x300E
    sup = m.encode_supp(S.CONF, m.SuppParam(t.FN_GET_SUPPORTED,
                                            {"info": 0, "supported": 0x280}))
    assert m.decode_supp(S.CONF, sup).get_int("supported") == 0x280


def test_status_resp_accepts_empty_and_bare_function() -> None:
    assert m.decode_supp(S.RESP, bytes.fromhex("0E80 00")).fields == {}
    assert m.decode_supp(S.RESP, bytes.fromhex("0E80")).fields == {}
    answer = m.encode_supp(S.RESP, m.SuppParam(t.FN_CCBS_STATUS, {"free": 1}))
    assert m.decode_supp(S.RESP, answer).get_int("free") == 1


def test_an_empty_status_resp_stays_empty_it_is_no_answer() -> None:
    # "this terminal does not answer" must not become free=0 ("busy") on the wire
    empty = m.encode_supp(S.RESP, m.SuppParam(t.FN_CCBS_STATUS, {}))
    assert empty == bytes.fromhex("0E80 00".replace(" ", ""))
    busy = m.encode_supp(S.RESP, m.SuppParam(t.FN_CCBS_STATUS, {"free": 0}))
    assert busy == bytes.fromhex("0E80 02 0000".replace(" ", ""))


def test_unknown_function_keeps_raw_inner_struct() -> None:
    p = m.decode_supp(S.IND, bytes.fromhex("0080 03 010203".replace(" ", "")))
    assert p.function == 0x8000 and p.raw == b"\x01\x02\x03" and p.fields == {}
    assert m.encode_supp(S.IND, p) == bytes.fromhex("0080 03 010203".replace(" ", ""))


def test_interrogate_instances_round_trip() -> None:
    inst = [{"ccbs_reference": 3, "cip": 1, "bc": bytes.fromhex("8090A3"),
             "b_number": m.called_number("22")},
            {"ccbs_reference": 9, "cip": 1}]
    data = m.encode_interrogate_instances(inst)
    back = m.decode_interrogate_instances(data)
    assert [b["ccbs_reference"] for b in back] == [3, 9]
    assert back[0]["b_number"] == b"\x8122"
    param = m.SuppParam(t.FN_CCBS_INTERROGATE, {"reason": 0, "handle": 7, "recall_mode": 1,
                                                "instances": data})
    decoded = m.decode_supp(S.IND, m.encode_supp(S.IND, param))
    assert decoded.get_struct("instances") == data


@st.composite
def any_supp(draw: st.DrawFn) -> tuple[t.Subcommand, m.SuppParam]:
    key = draw(st.sampled_from(sorted(m.SUPP_LAYOUTS, key=lambda k: (k[0], k[1].value))))
    fields: dict[str, m.Value] = {}
    for name, kind in m.SUPP_LAYOUTS[key]:
        fields[name] = draw(_value_strategy(kind))
    return key[1], m.SuppParam(key[0], fields)


@settings(max_examples=400)
@given(any_supp())
def test_every_supplementary_layout_round_trips(case: tuple[t.Subcommand, m.SuppParam]) -> None:
    sub, param = case
    content = m.encode_supp(sub, param)
    back = m.decode_supp(sub, content)
    if param.fields or sub is not S.RESP:
        assert dict(back.fields) == dict(param.fields)
    assert back.function == param.function


@settings(max_examples=2000)
@given(st.sampled_from(list(S)), st.binary(max_size=60))
def test_supplementary_fuzz_raises_only_capi_message_error(sub: t.Subcommand, raw: bytes) -> None:
    try:
        m.decode_supp(sub, raw)
    except CapiMessageError as exc:
        assert exc.offset is not None


@settings(max_examples=2000)
@given(st.binary(max_size=60))
def test_substructure_fuzz_raises_only_capi_message_error(raw: bytes) -> None:
    for fn in (m.AdditionalInfo.decode, m.BProtocol.decode, m.parse_ies,
               m.decode_interrogate_instances, m.split_bearer):
        try:
            fn(raw)
        except CapiMessageError:
            pass


def test_names_of_codes() -> None:
    assert t.info_name(0x3491) == "network cause 17 (user busy)"
    assert t.info_name(0x300E) == "supplementary service not supported"
    assert t.info_name(0x3617) == "shortTermDenial"
    assert t.info_name(0x4242) == "unknown info 0x4242"
    assert t.cause_to_reason(17) == 0x3491
    assert t.reason_to_cause(0x3304) is None
