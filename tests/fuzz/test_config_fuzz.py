"""Random configuration files (built from the schema: right and wrong types, values
out of range, unknown keys, the shipped example mutated, invalid UTF-8, noise): the
loader returns a ``Config`` or raises ``ConfigError`` naming the file — nothing else;
``ccbsd --check-config`` exits 0 or 78, never with a traceback."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccbs_isdn.config import Config, load_config
from ccbs_isdn.errors import ConfigError

from .conftest import FuzzCount, examples, long_mode
from .strategies import config_document

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, text: str) -> None:
    # text may hold lone surrogates: they become invalid UTF-8, which is fuzz too
    path.write_bytes(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=examples(400), deadline=None, database=None,
          derandomize=not long_mode(),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(main=config_document(), drop_in=st.none() | config_document())
def test_random_toml_gives_a_config_or_a_config_error(
        fuzz_count: FuzzCount, main: str, drop_in: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ccbsd.toml"
        _write(path, main)
        if drop_in is not None:
            (Path(tmp) / "conf.d").mkdir()
            _write(Path(tmp) / "conf.d" / "50-fuzz.toml", drop_in)
        fuzz_count.cases += 1
        try:
            config = load_config(path)
        except ConfigError as exc:
            fuzz_count.rejected += 1
            assert exc.file and str(exc).startswith(exc.file), str(exc)
            assert tmp in exc.file
        else:
            fuzz_count.accepted += 1
            assert isinstance(config, Config)


@settings(max_examples=examples(6, 60), deadline=None, database=None,
          derandomize=not long_mode(),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(main=config_document())
def test_check_config_exits_0_or_78(fuzz_count: FuzzCount, main: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ccbsd.toml"
        _write(path, main)
        done = subprocess.run(
            [sys.executable, "-m", "ccbs_isdn.runtime.daemon", "--check-config",
             "--config", str(path)], cwd=REPO, capture_output=True, text=True, timeout=60,
            errors="replace")
    fuzz_count.cases += 1
    assert done.returncode in (0, 78), done.stderr
    assert "Traceback" not in done.stderr
    if done.returncode == 78:
        fuzz_count.rejected += 1
        assert "ccbsd:" in done.stderr
    else:
        fuzz_count.accepted += 1
