"""The libcapi20 binding: lazy, typed, checked. Loading is refused with a clear error
where the library would kill the process or is absent (capi.md §1.1)."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest
from ccbs_isdn.drivers.capi20 import lib as capilib
from ccbs_isdn.drivers.capi20.tables import info_name

from ccbs_isdn.errors import CapiError, ConfigError, DriverNotAvailable


def real_library() -> capilib.CapiLib:
    try:
        capilib.check_shm()
        ctypes.CDLL(capilib.LIBRARY_NAME)
    except (DriverNotAvailable, OSError):
        pytest.skip("Debian package libcapi20-3 is missing or /dev/shm is not writable")
    return capilib.load()


def test_importing_the_driver_loads_no_library() -> None:
    code = ("import sys, ccbs_isdn.drivers.capi20.driver, ccbs_isdn.drivers.capi20.lib;"
            "print(any('capi20' in str(getattr(m, '_name', '')) for m in "
            "list(sys.modules.values())))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
    maps = subprocess.run(
        [sys.executable, "-c", "import ccbs_isdn.drivers.capi20.driver, os;"
         "print(open(f'/proc/{os.getpid()}/maps').read())"],
        capture_output=True, text=True, check=True)
    assert "libcapi20" not in maps.stdout


def test_unwritable_shm_is_refused_before_dlopen(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # root may write anywhere: pretend the access check failed as it would for ccbsd
    monkeypatch.setattr(capilib.os, "access", lambda path, mode: False)
    loaded: list[str] = []
    monkeypatch.setattr(capilib.ctypes, "CDLL", lambda name: loaded.append(name))
    with pytest.raises(DriverNotAvailable, match="not writable"):
        capilib.CapiLib(capilib.LIBRARY_NAME, shm_dir=str(tmp_path))
    assert loaded == []  # never dlopen'ed: the library would have exit()ed


def test_missing_shm_and_missing_library_are_driver_not_available(tmp_path: Path) -> None:
    with pytest.raises(DriverNotAvailable, match="does not exist"):
        capilib.check_shm(str(tmp_path / "nope"))
    with pytest.raises(DriverNotAvailable, match="libcapi20-3") as exc:
        capilib.CapiLib("libcapi20-not-installed.so.9", shm_dir=str(tmp_path))
    assert exc.value.code == "driver-not-available"


def test_capi20rc_line_ends_with_a_newline() -> None:
    # the library drops the last character of every line (capi.md §2.2)
    assert capilib.capi20rc_text("rcapi", "127.0.0.1", 45009) == "REMOTE rcapi 127.0.0.1 45009\n"
    with pytest.raises(ConfigError, match="not a remote CAPI module"):
        capilib.capi20rc_text("standard", "h", 1)


def test_profile_decoding() -> None:
    raw = bytes.fromhex("0100 0200 19000000 03000000 03000000 01000000".replace(" ", ""))
    raw = raw + bytes(24) + b"M" * 20
    profile = capilib.Profile.decode(raw)
    assert (profile.ncontrollers, profile.nbchannels, profile.global_options) == (1, 2, 0x19)
    assert (profile.b1_support, profile.b2_support, profile.b3_support) == (3, 3, 1)
    assert profile.manufacturer_specific == b"M" * 20


def test_errcheck_names_the_call_and_the_info() -> None:
    lib = real_library()
    # ApplID 1000 was never registered: "illegal application number", or "not installed"
    # while no transport is open in this process.
    with pytest.raises(CapiError) as exc:
        lib.put_message(1000, bytes.fromhex("0c00e8030580010001000000"))
    assert exc.value.info in (0x1101, 0x1009)
    assert str(exc.value) == f"capi20_put_message: {info_name(exc.value.info)}"
    with pytest.raises(CapiError) as exc:
        lib.get_message(1000)
    assert exc.value.info in (0x1101, 0x1009)
    with pytest.raises(CapiError, match="capi20_fileno"):
        lib.fileno(1000)
    with pytest.raises(CapiError, match="too long"):
        lib.put_message(1, b"\x00" * 3000)


def test_transport_selection_is_validated() -> None:
    lib = real_library()
    with pytest.raises(ConfigError, match="65535"):
        lib.configure("rcapi", "127.0.0.1", 65535)
    with pytest.raises(ConfigError, match="unknown libcapi20 driver"):
        lib.configure("isdn4bsd", "127.0.0.1", 2662)
    lib.configure("rcapi", "127.0.0.2", 2663)
    assert lib.transport() == ("rcapi", "127.0.0.2", 2663)
