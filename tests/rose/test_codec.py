"""The codec's promises, told as what a peer sends and what we make of it: tolerant where
the field differs (digest §7), strict where it matters, and always byte-identical to
libpri on the way out."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings

from ccbs_isdn.errors import FacilityError
from ccbs_isdn.rose import (
    Address,
    CallInformation,
    CCBS_T_RequestArg,
    CCBSCallArg,
    CCBSEraseArg,
    CCBSEraseReason,
    CCBSInterrogateArg,
    CCBSInterrogateRes,
    CCBSRemoteUserFreeArg,
    CCBSRequestArg,
    CCBSRequestRes,
    CCBSStatusRequestRes,
    Facility,
    Invoke,
    NumberingPlan,
    Operation,
    PartyNumber,
    Presentation,
    PresentedNumberUnscreened,
    PublicTypeOfNumber,
    RecallMode,
    Reject,
    ReturnError,
    ReturnResult,
    decode_contents,
    decode_each,
    decode_ie,
    encode_contents,
    encode_ie,
    facility_from_json,
    facility_to_json,
    reject_for,
    rose_error,
)
from ccbs_isdn.rose.ber import read_tlv, tlv
from ccbs_isdn.rose.schema import PRESENTED_NUMBER_UNSCREENED
from tests.rose import strategies as S
from tests.rose.ber_tools import with_indefinite_lengths, with_long_form_lengths
from tests.rose.vectors import BY_NAME, VECTORS

BC_SPEECH = bytes.fromhex("04038090A3")


def contents_of(name: str) -> bytes:
    return bytes.fromhex(BY_NAME[name]["ie_contents_hex"])


def decode_hex(text: str) -> Facility:
    return decode_contents(bytes.fromhex(text.replace(" ", "")))


def error_of(text: str) -> FacilityError:
    with pytest.raises(FacilityError) as info:
        decode_hex(text)
    return info.value


# ----------------------------------------------------------------------- round trips


@settings(max_examples=400, deadline=None)
@given(facility=S.facilities)
def test_any_valid_facility_round_trips_through_bytes_and_json(facility: Facility) -> None:
    try:
        contents = encode_contents(facility)
    except FacilityError as exc:
        assume("at most 255" not in exc.message)
        raise
    decoded = decode_contents(contents)
    # decode gives operation None for returnError (not on the wire); the rest is equal
    assert encode_contents(decoded) == contents
    assert decoded.components == tuple(
        ReturnError(c.invoke_id, c.error, None, c.parameter) if isinstance(c, ReturnError) else c
        for c in facility.components
    )
    assert facility_from_json(facility_to_json(decoded)) == decoded
    assert decoded.to_json() == facility_to_json(decoded)
    assert decode_ie(encode_ie(decoded)) == decoded


def test_remote_user_free_from_the_digest_is_built_byte_for_byte() -> None:
    # EN 300 359-1 §3.1 example as written in the digest
    invoke = Invoke(
        70,
        Operation.CCBSRemoteUserFree,
        CCBSRemoteUserFreeArg(RecallMode.globalRecall, 1, Address(PartyNumber("22")), BC_SPEECH),
    )
    assert encode_ie(Facility((invoke,))).hex(" ").upper() == (
        "1C 23 91 A1 20 02 01 46 06 06 04 00 82 67 01 06 30 13 0A 01 00 02 01 01 "
        "30 04 80 02 32 32 40 05 04 03 80 90 A3"
    )


def test_invoke_id_130_needs_two_octets_like_libpri() -> None:
    ie = encode_ie(Facility((Invoke(130, Operation.CCBS_T_Call),)))
    assert ie.hex().upper() == BY_NAME["CCBS_T_Call_invoke"]["ie_hex"]


def test_linked_id_is_carried_and_returned() -> None:
    invoke = Invoke(7, Operation.CCBSCall, CCBSCallArg(3), linked_id=-2)
    contents = encode_contents(Facility((invoke,)))
    assert contents.hex().upper().startswith("91A111020107" + "8001FE")
    assert decode_contents(contents).components == (invoke,)


def test_error_names_keep_their_module() -> None:
    ccbs = rose_error("longTermDenial")
    ccbs_t = rose_error("longTermDenial", Operation.CCBS_T_Request)
    assert ccbs.value == (0, 4, 0, 359, 1, 22) and ccbs.module == "CCBS-Operations-and-Errors"
    assert ccbs_t.value == (0, 4, 0, 359, 2, 20)
    assert ccbs != ccbs_t and ccbs.name == ccbs_t.name
    assert rose_error("notSubscribed", Operation.CCBS_T_Request).value == 0
    assert rose_error("0.4.0.359.2.21").name == "shortTermDenial"
    with pytest.raises(KeyError):
        rose_error("noSuchError")
    raw = contents_of("CCBS_T_Request_error_longTermDenial")
    (decoded,) = decode_contents(raw).components
    assert (
        isinstance(decoded, ReturnError) and decoded.error == ccbs_t and decoded.operation is None
    )
    assert encode_contents(Facility((decoded,))) == raw


def test_unknown_error_values_decode_and_reencode_identically() -> None:
    facility = decode_hex("91 A3 0B 02 01 05 06 06 04 00 82 67 01 63")
    (error,) = facility.components
    assert isinstance(error, ReturnError)
    assert error.error.name is None and error.error.dotted == "0.4.0.359.1.99"
    assert str(error.error) == "error 0.4.0.359.1.99"
    assert encode_contents(facility).hex().upper() == "91A30B0201050606040082670163"


def test_error_parameter_is_kept_verbatim() -> None:
    facility = decode_hex("91 A3 09 02 01 05 02 01 00 04 01 AA")
    (error,) = facility.components
    assert isinstance(error, ReturnError) and error.parameter == bytes.fromhex("0401AA")
    assert encode_contents(facility).hex().upper() == "91A30902010502010004" + "01AA"


def test_presented_number_unscreened_all_alternatives() -> None:
    number = PartyNumber("4930", NumberingPlan.public, PublicTypeOfNumber.internationalNumber)
    for value, hex_text in [
        (PresentedNumberUnscreened(Presentation.allowed, number), "A00BA1090A0101120434393330"),
        (PresentedNumberUnscreened(Presentation.restricted), "8100"),
        (PresentedNumberUnscreened(Presentation.not_available), "8200"),
        (
            PresentedNumberUnscreened(Presentation.restricted_number, PartyNumber("5")),
            "A303800135",
        ),
    ]:
        raw = PRESENTED_NUMBER_UNSCREENED.encode(value)
        assert raw.hex().upper() == hex_text
        tag, start, end, _ = read_tlv(raw, 0, len(raw))
        assert PRESENTED_NUMBER_UNSCREENED.decode(raw, tag, start, end) == value
        json_form = PRESENTED_NUMBER_UNSCREENED.to_json(value)
        assert PRESENTED_NUMBER_UNSCREENED.from_json(json_form, "$") == value


# ----------------------------------------------------------------- tolerant decoding


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_indefinite_and_long_form_lengths_decode_to_the_same_values(vector: dict[str, str]) -> None:
    contents = bytes.fromhex(vector["ie_contents_hex"])
    expected = decode_contents(contents)
    assert decode_contents(with_indefinite_lengths(contents)) == expected
    assert decode_contents(with_long_form_lengths(contents, octets=1)) == expected
    assert decode_contents(with_long_form_lengths(contents, octets=2)) == expected
    # and what we send back is libpri's minimal form again
    assert encode_contents(decode_contents(with_indefinite_lengths(contents))) == contents


@pytest.mark.parametrize("true_octet", ["01", "FF", "7F", "80"])
def test_any_non_zero_boolean_is_true_and_we_send_01(true_octet: str) -> None:
    facility = decode_hex(f"91 A2 10 02 01 64 30 0B 06 06 04 00 82 67 01 08 01 01 {true_octet}")
    (result,) = facility.components
    assert isinstance(result, ReturnResult) and result.result == CCBSStatusRequestRes(True)
    assert encode_contents(facility).hex().upper().endswith("010101")


def test_unknown_trailing_elements_are_skipped_everywhere() -> None:
    # CCBSErase with an extension element inside the argument, one after the argument in
    # the invoke and a high-tag-number element: all ignored, the values are intact
    facility = decode_contents(contents_of("CCBSErase_invoke_global_normal_unknownNumber"))
    argument = bytes.fromhex("0A0100 020101 300480023232 40050403 8090A3 0A0100")
    extension = bytes.fromhex("85021234")  # [5] inside the argument SEQUENCE
    high_tag = bytes.fromhex("9F812301" + "00")  # [163] after the argument
    opcode = bytes.fromhex("0606040082670105")
    component = tlv(
        0xA1, bytes.fromhex("02013C") + opcode + tlv(0x30, argument + extension) + high_tag
    )
    assert decode_contents(b"\x91" + component) == facility


def test_optional_items_are_matched_by_tag_not_position() -> None:
    # CCBSInterrogate argument with partyNumberOfA before cCBSReference
    facility = decode_hex("91 A1 13 02 01 35 06 06 04 00 82 67 01 04 30 06 80 01 35 02 01 07")
    (invoke,) = facility.components
    assert isinstance(invoke, Invoke)
    assert invoke.argument == CCBSInterrogateArg(7, PartyNumber("5"))


def test_references_and_linkage_ids_are_masked_to_seven_bits() -> None:
    # libpri masks with 0x7F (digest §7): 0x81 → 1, 200 → 72
    (call,) = decode_hex("91 A1 0F 02 01 5A 06 06 04 00 82 67 01 07 02 02 00 81").components
    assert isinstance(call, Invoke) and call.argument == CCBSCallArg(1)
    (req,) = decode_hex("91 A1 0F 02 01 1E 06 06 04 00 82 67 01 02 02 02 00 C8").components
    assert isinstance(req, Invoke) and req.argument == CCBSRequestArg(72)


def test_networking_extension_header_is_skipped_and_kept() -> None:
    # profile 9F, NetworkFacilityExtension [10], NetworkProtocolProfile [18],
    # InterpretationAPDU [11], then a CCBSRequest invoke
    header = "AA 06 80 01 00 82 01 00 92 01 14 8B 01 02"
    component = BY_NAME["CCBSRequest_invoke_linkage5"]["ie_contents_hex"][2:]
    facility = decode_hex("9F " + header + component)
    assert facility.profile == 0x9F and facility.header == bytes.fromhex(header)
    assert (
        facility.components
        == decode_contents(contents_of("CCBSRequest_invoke_linkage5")).components
    )
    assert encode_contents(facility).hex().upper() == ("9F" + header + component).replace(" ", "")
    assert facility_from_json(facility_to_json(facility)) == facility


def test_profile_without_extension_bit_skips_octet_3a() -> None:
    component = BY_NAME["CCBSRequest_invoke_linkage5"]["ie_contents_hex"][2:]
    facility = decode_hex("11 BE " + component)
    assert facility.profile == 0x11 and facility.header == b"\xbe"
    assert encode_contents(facility).hex().upper() == "11BE" + component


def test_several_components_in_one_ie() -> None:
    first = BY_NAME["CCBSRequest_result_global_ref1"]["ie_contents_hex"][2:]
    second = BY_NAME["EraseCallLinkageID_invoke_linkage5"]["ie_contents_hex"][2:]
    facility = decode_hex("91" + first + second)
    assert [type(c) for c in facility.components] == [ReturnResult, Invoke]
    assert facility.components[0] == ReturnResult(
        30, Operation.CCBSRequest, CCBSRequestRes(RecallMode.globalRecall, 1)
    )
    assert encode_contents(facility).hex().upper() == "91" + first + second


def test_deactivate_result_with_opcode_only_is_accepted() -> None:
    # mISDNuser's form of an empty result: the operation SEQUENCE without a result
    facility = decode_hex("91 A2 0D 02 01 28 30 08 06 06 04 00 82 67 01 03")
    assert facility.components == (ReturnResult(40, Operation.CCBSDeactivate),)
    assert encode_contents(facility).hex().upper() == "91A20D020128300806060400826701" + "03"
    # libpri's form leaves the operation out entirely
    assert decode_contents(contents_of("CCBSDeactivate_result_empty")).components == (
        ReturnResult(40),
    )


def test_empty_call_details_mean_no_request() -> None:
    facility = decode_hex("91 A2 14 02 01 32 30 0F 06 06 04 00 82 67 01 04 30 05 0A 01 00 30 00")
    (result,) = facility.components
    assert isinstance(result, ReturnResult)
    assert result.result == CCBSInterrogateRes(RecallMode.globalRecall, ())


# -------------------------------------------------------------------- strict decoding


def test_garbage_after_the_ie_is_refused_with_its_offset() -> None:
    ie = bytes.fromhex(BY_NAME["CCBSCall_invoke_ref1"]["ie_hex"])
    with pytest.raises(FacilityError) as info:
        decode_ie(ie + b"\x00")
    assert info.value.offset == len(ie) and "garbage" in info.value.message


def test_garbage_after_the_last_component_is_refused() -> None:
    exc = error_of(BY_NAME["CCBSCall_invoke_ref1"]["ie_contents_hex"] + "0000")
    assert exc.offset == 17 and exc.problem == ("general", 0)
    assert "expected a ROSE component (tag A1..A4), found 00" in exc.message


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_every_truncation_is_a_facility_error_with_an_offset(vector: dict[str, str]) -> None:
    ie = bytes.fromhex(vector["ie_hex"])
    for cut in range(len(ie)):
        with pytest.raises(FacilityError) as info:
            decode_ie(ie[:cut])
        assert info.value.offset is not None and 0 <= info.value.offset <= len(ie)
    contents = bytes.fromhex(vector["ie_contents_hex"])
    for cut in range(len(contents)):
        with pytest.raises(FacilityError):
            decode_contents(contents[:cut])


@pytest.mark.parametrize(
    ("hex_text", "problem", "invoke_id", "needle"),
    [
        # recallMode sent as INTEGER: mistyped argument, answer with the invoke id
        (
            "91 A1 20 02 01 46 06 06 04 00 82 67 01 06 30 13 02 01 00 02 01 01 "
            "30 04 80 02 32 32 40 05 04 03 80 90 A3",
            ("invoke", 2),
            70,
            "CCBSRemoteUserFreeArg: repeated element 02 (INTEGER)",
        ),
        # unknown operation {0 4 0 359 1 99}
        (
            "91 A1 0E 02 01 0B 06 06 04 00 82 67 01 63 02 01 01",
            ("invoke", 1),
            11,
            "unknown operation 0.4.0.359.1.99",
        ),
        # CCBSRequest without its argument
        ("91 A1 0B 02 01 1E 06 06 04 00 82 67 01 02", ("invoke", 2), 30, "missing argument"),
        # recallMode 5 is no RecallMode
        (
            "91 A2 15 02 01 1E 30 10 06 06 04 00 82 67 01 02 30 06 0A 01 05 02 01 01",
            ("returnResult", 2),
            30,
            "recallMode: 5 is not one of globalRecall(0), specificRecall(1)",
        ),
        # result of an unknown operation
        (
            "91 A2 10 02 01 1E 30 0B 06 06 04 00 82 67 01 63 01 01 00",
            ("returnResult", 2),
            30,
            "unknown operation",
        ),
        # duplicate recallMode
        (
            "91 A2 18 02 01 1E 30 13 06 06 04 00 82 67 01 02 30 09 0A 01 00 0A 01 00 02 01 01",
            ("returnResult", 2),
            30,
            "repeated element 0A",
        ),
        # component tag A5 does not exist
        ("91 A5 03 02 01 01", ("general", 0), None, "expected a ROSE component"),
        # invoke id missing: mistyped component, the reject goes out with NULL
        ("91 A1 08 06 06 04 00 82 67 01 01", ("general", 1), None, "expected INTEGER invokeId"),
        # the component's length runs past the end
        ("91 A1 20 02 01 46", ("general", 2), None, "needs 32 content octets, only 3 left"),
        # a digit that is not a digit
        (
            "91 A1 10 02 01 34 06 06 04 00 82 67 01 04 30 03 80 01 41",
            ("invoke", 2),
            52,
            "41 is not a digit",
        ),
        # indefinite length on a primitive element
        (
            "91 A1 0E 02 80 0A 06 06 04 00 82 67 01 01 02 01 01",
            ("general", 2),
            None,
            "indefinite length on primitive",
        ),
    ],
)
def test_malformed_components_say_what_to_answer(
    hex_text: str, problem: tuple[str, int], invoke_id: int | None, needle: str
) -> None:
    exc = error_of(hex_text)
    assert exc.problem == problem
    assert exc.invoke_id == invoke_id
    assert needle in exc.message
    assert exc.message.startswith(f"offset {exc.offset}: ")
    reject = reject_for(exc)
    assert reject == Reject(invoke_id, problem)
    # the reject itself is a valid component a peer (and libpri) can read
    assert decode_contents(encode_contents(Facility((reject,)))).components == (reject,)


def test_bad_profile_and_identifier_need_no_answer() -> None:
    assert error_of("92 A1 03 02 01 01").problem is None
    with pytest.raises(FacilityError) as info:
        decode_ie(bytes.fromhex("1D0391A100"))
    assert info.value.problem is None and info.value.offset == 0


def test_deeply_nested_indefinite_lengths_are_refused_not_recursed() -> None:
    exc = error_of("91 A1 80 02 01 0B 06 06 04 00 82 67 01 01 " + "30 80 " * 100)
    assert "nested too deeply" in exc.message


# ---------------------------------------------------------------------- encode errors


@pytest.mark.parametrize(
    ("component", "needle"),
    [
        (Invoke(1, Operation.CCBSCall, CCBSCallArg(128)), "128 is outside 0..127"),
        (Invoke(1, Operation.CCBSCall, CCBSRequestArg(1)), "expected CCBSCallArg"),
        (Invoke(1, Operation.CCBSCall), "needs an argument"),
        (Invoke(1, Operation.CCBS_T_Call, CCBSCallArg(1)), "has no argument"),
        (Invoke(1, "NoSuchOperation", None), "unknown operation"),  # type: ignore[arg-type]
        (Invoke(2**31, Operation.CCBS_T_Call), "outside"),
        (ReturnResult(1, None, CCBSRequestRes(RecallMode.globalRecall, 1)), "needs its operation"),
        (ReturnResult(1, Operation.CCBSRequest), "needs a value"),
        (
            Invoke(
                1,
                Operation.CCBSErase,
                CCBSEraseArg(
                    RecallMode.globalRecall,
                    1,
                    Address(PartyNumber("1" * 21)),
                    BC_SPEECH,
                    CCBSEraseReason.normal_unspecified,
                ),
            ),
            "addressOfB.partyNumber.unknownPartyNumber",
        ),
        (
            Invoke(
                1,
                Operation.CCBS_T_Request,
                CCBS_T_RequestArg(Address(PartyNumber("12a")), BC_SPEECH),
            ),
            "0-9, space, * or #",
        ),
        (Reject(1, ("nonsense", 1)), "unknown problem class"),
    ],
)
def test_invalid_values_are_refused_by_the_encoder(component: object, needle: str) -> None:
    with pytest.raises(FacilityError) as info:
        encode_contents(Facility((component,)))  # type: ignore[arg-type]
    assert needle in info.value.message
    assert info.value.problem is None  # a local mistake: nothing to answer on the wire


def test_an_ie_longer_than_255_octets_is_refused() -> None:
    detail = CallInformation(Address(PartyNumber("1" * 20)), BC_SPEECH * 7, 1)
    too_big = ReturnResult(
        1, Operation.CCBSInterrogate, CCBSInterrogateRes(RecallMode.globalRecall, (detail,) * 5)
    )
    with pytest.raises(FacilityError, match="at most 255"):
        encode_ie(Facility((too_big,)))


# ----------------------------------------------------------- component by component


def test_one_bad_component_does_not_hide_the_others() -> None:
    # a broadcast FACILITY with an unknown operation between two we understand
    good_a = BY_NAME["CCBSStopAlerting_invoke_ref1"]["ie_contents_hex"][2:]
    unknown = "A10E02010B0606040082670163020101"
    good_b = BY_NAME["EraseCallLinkageID_invoke_linkage5"]["ie_contents_hex"][2:]
    contents = bytes.fromhex("91" + good_a + unknown + good_b)
    with pytest.raises(FacilityError):
        decode_contents(contents)
    facility, errors = decode_each(contents)
    assert [c.operation for c in facility.components] == [  # type: ignore[union-attr]
        Operation.CCBSStopAlerting,
        Operation.EraseCallLinkageID,
    ]
    (error,) = errors
    assert error.problem == ("invoke", 1) and error.invoke_id == 11
    ie = bytes((0x1C, len(contents))) + contents
    facility_ie, errors_ie = decode_each(ie, ie=True)
    assert facility_ie == facility
    assert [(e.offset - 2, e.problem) for e in errors_ie] == [(e.offset, e.problem) for e in errors]  # type: ignore[operator]


def test_framing_damage_still_raises_in_decode_each() -> None:
    with pytest.raises(FacilityError, match="needs 32 content octets"):
        decode_each(bytes.fromhex("91A120020146"))
    with pytest.raises(FacilityError, match="garbage"):
        decode_each(bytes.fromhex("1C0391A10000"), ie=True)


def test_the_encoder_only_writes_what_it_could_read_back() -> None:
    invoke = Invoke(1, Operation.CCBS_T_Call)
    with pytest.raises(FacilityError, match="at least one component"):
        encode_contents(Facility(()))
    with pytest.raises(FacilityError, match="header"):
        encode_contents(Facility((invoke,), header=b"\x02\x01\x00"))
    with pytest.raises(FacilityError, match="header"):
        encode_contents(Facility((invoke,), profile=0x11))  # octet 3a missing
    with pytest.raises(FacilityError, match="profile"):
        encode_contents(Facility((invoke,), profile=0x92))
    with pytest.raises(FacilityError, match="exactly one BER element"):
        encode_contents(Facility((ReturnError(1, rose_error("notAvailable"), parameter=b"\x04"),)))
    with pytest.raises(FacilityError, match="not one of"):
        encode_contents(
            Facility((ReturnResult(1, Operation.CCBSRequest, CCBSRequestRes(True, 1)),))  # type: ignore[arg-type]
        )


def test_the_package_docstring_examples_run() -> None:
    import doctest

    import ccbs_isdn.rose

    result = doctest.testmod(ccbs_isdn.rose)
    assert result.attempted >= 6 and result.failed == 0
