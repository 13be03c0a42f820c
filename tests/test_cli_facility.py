"""``ccbsctl facility decode/encode``: what an administrator sees, through click's runner
and through the installed ``ccbsctl`` entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ccbs_isdn.cli import cli
from tests.rose.vectors import ALTERNATES, BY_NAME, VECTORS

REMOTE_USER_FREE = (
    "1C 23 91 A1 20 02 01 46 06 06 04 00 82 67 01 06 "
    "30 13 0A 01 00 02 01 01 30 04 80 02 32 32 40 05 04 03 80 90 A3"
)


def run(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), input=stdin)


def test_decode_prints_the_components_readably() -> None:
    result = run("facility", "decode", *REMOTE_USER_FREE.split())
    assert result.exit_code == 0, result.output
    assert "invoke  invokeId=70  operation=CCBSRemoteUserFree (0.4.0.359.1.6)" in result.output
    assert "unknownPartyNumber: 22" in result.output
    assert "q931InfoElement: 04038090A3" in result.output


def test_decode_accepts_contents_without_the_header_and_one_quoted_argument() -> None:
    with_header = run("facility", "decode", "--json", REMOTE_USER_FREE)
    without = run("facility", "decode", "--json", REMOTE_USER_FREE[6:])
    assert with_header.exit_code == without.exit_code == 0
    assert json.loads(with_header.output) == json.loads(without.output)


def test_root_json_flag_gives_one_json_document() -> None:
    result = run(
        "--json", "facility", "decode", BY_NAME["CCBSRequest_result_global_ref1"]["ie_hex"]
    )
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document == {
        "profile": "rose",
        "components": [
            {
                "component": "returnResult",
                "invokeId": 30,
                "operation": "CCBSRequest",
                "result": {"recallMode": "globalRecall", "cCBSReference": 1},
            }
        ],
    }


@pytest.mark.parametrize(
    "vector", VECTORS + ALTERNATES, ids=[v["name"] for v in VECTORS + ALTERNATES]
)
def test_decode_then_encode_gives_the_libpri_bytes(vector: dict[str, str]) -> None:
    decoded = run("facility", "decode", "--json", vector["ie_hex"])
    assert decoded.exit_code == 0, decoded.output
    encoded = run("facility", "encode", stdin=decoded.output)
    assert encoded.exit_code == 0, encoded.output
    canonical = BY_NAME[vector.get("same_value_as", vector["name"])]["ie_hex"]
    assert encoded.output.strip() == canonical


def test_ccbs_t_error_keeps_its_module_through_json() -> None:
    # longTermDenial of CCBS-private-networks {0 4 0 359 2 20}, not {0 4 0 359 1 22}
    hex_ie = BY_NAME["CCBS_T_Request_error_longTermDenial"]["ie_hex"]
    decoded = json.loads(run("facility", "decode", "--json", hex_ie).output)
    assert decoded["components"][0]["errorValue"] == "0.4.0.359.2.20"
    assert run("facility", "encode", stdin=json.dumps(decoded)).output.strip() == hex_ie


def test_encode_resolves_an_error_name_through_its_operation() -> None:
    document = {
        "profile": "rose",
        "components": [
            {
                "component": "returnError",
                "invokeId": 120,
                "operation": "CCBS-T-Request",
                "error": "shortTermDenial",
            }
        ],
    }
    result = run("facility", "encode", "--contents", stdin=json.dumps(document))
    assert (
        result.output.strip() == BY_NAME["CCBS_T_Request_error_shortTermDenial"]["ie_contents_hex"]
    )


@pytest.mark.parametrize(
    ("hex_text", "needle"),
    [
        ("1C 23 91 A1 20 02", "offset 6: IE length says 35 octets, only 4 present"),
        (
            "91 A1 0E 02 01 0A 06 06 04 00 82 67 01 01 0A 01 00",
            "expected argument INTEGER callLinkageID",
        ),
        ("91A30B02017806060400826702zz", "offset 26: expected a hex digit, found 'z'"),
        ("91A", "expected an even number of hex digits"),
        ("1C 03 91 A5 00", "offset 3: expected a ROSE component (tag A1..A4), found A5"),
        ("92 A1 00", "expected protocol profile 91 (ROSE) or 9F"),
    ],
)
def test_bad_input_is_one_line_with_offset_and_exit_1(hex_text: str, needle: str) -> None:
    result = run("facility", "decode", hex_text)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("error: offset ")


@pytest.mark.parametrize(
    ("stdin", "needle"),
    [
        ("{not json", "offset 1 (line 1, column 2): expected JSON"),
        (
            '{"components": [{"component": "invoke", "invokeId": 1, "operation": "Nope"}]}',
            "$.components[0].operation: unknown operation 'Nope'",
        ),
        (
            '{"components": [{"component": "invoke", "invokeId": 1, "operation": "CCBSCall",'
            ' "argument": {"cCBSReference": 128}}]}',
            "$.components[0].argument.cCBSReference: 128 is outside 0..127",
        ),
    ],
)
def test_bad_json_is_one_line_naming_the_path(stdin: str, needle: str) -> None:
    result = run("facility", "encode", stdin=stdin)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


def test_installed_entry_point_has_no_traceback_on_garbage() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ccbs_isdn.cli import main; main()",
            "facility",
            "decode",
            "1C05 91 A1 03 02 81",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: offset ")
