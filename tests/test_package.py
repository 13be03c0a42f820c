"""The package imports without any device library, and drivers map into ccbs_isdn."""

import subprocess
import sys

import pytest


def test_import_loads_no_device_library() -> None:
    code = (
        "import sys, ccbs_isdn, ccbs_isdn.errors, ccbs_isdn.isdn, ccbs_isdn.drivers;"
        "bad = [m for m in sys.modules if 'ctypes' in m or 'serial' in m];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_drivers_are_installed_as_subpackage() -> None:
    import ccbs_isdn.drivers

    assert ccbs_isdn.drivers.__name__ == "ccbs_isdn.drivers"
    assert ccbs_isdn.drivers.__file__.replace("\\", "/").endswith("drivers/__init__.py")


def test_unknown_driver_is_a_typed_error() -> None:
    from ccbs_isdn.drivers import load_driver

    from ccbs_isdn.errors import DriverNotAvailable

    with pytest.raises(DriverNotAvailable, match="unknown driver 'nope'"):
        load_driver("nope")


def test_config_error_names_file_key_and_expectation() -> None:
    from ccbs_isdn.errors import ConfigError

    err = ConfigError("is negative", file="/etc/ccbs-isdn/ccbsd.toml", key="limits.per_caller",
                      expected="an integer >= 1")
    assert str(err) == (
        "/etc/ccbs-isdn/ccbsd.toml: limits.per_caller: is negative (expected an integer >= 1)"
    )
