"""``make fuzz``: coverage-guided fuzzing (atheris / libFuzzer) of every wire parser of
ccbs-isdn, outside CI. Each target feeds raw bytes to one parser and allows only that
parser's own error (errors.py); anything else — another exception, a hang, a crash —
is a finding: libFuzzer stops, prints the input and writes it to
``$TMPDIR/ccbs-fuzz-findings/<target>-crash-<sha1>``.

===========  ============================================================  ===================
target       parser                                                        allowed error
===========  ============================================================  ===================
rose         ``rose.facility.decode_each`` / ``decode_ie`` (Facility IE)    FacilityError
capi         ``capi20.messages.decode`` and the structs inside it:          CapiMessageError
             selector-3 parameter, Additional Info, IE lists, interrogate
             instances, Facility IEs of the arrays (then ROSE)              (+ FacilityError)
fxb          ``analog.fxb.LineFramer`` + ``parse_line`` (FXB/1 lines)      AtParseError
control      ``runtime.control.parse_request`` (control socket JSON)       ControlProtocolError
config       ``config.load_config`` of the bytes as ``ccbsd.toml``         ConfigError
===========  ============================================================  ===================

Usage::

    python -m tests.fuzz.atheris_main                    # every target, 30 s each
    python -m tests.fuzz.atheris_main --target capi --seconds 600
    python -m tests.fuzz.atheris_main --target rose -- -runs=1000000 -jobs=2

Seeds: the ETSI conformance vectors, messages the simulated card sends, the FXB/1
lines of the bridge simulator's answers, valid control requests and the shipped
example configuration (``seed_corpus``). Without atheris (no wheel for this Python)
the same targets run under a plain seeded mutation fuzzer (``--engine random``), so
``make fuzz`` still fuzzes — without coverage guidance. Exit code 0: nothing found.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: where findings (the crashing inputs) are written
FINDINGS = Path(tempfile.gettempdir()) / "ccbs-fuzz-findings"


# ------------------------------------------------------------------ the targets


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    allowed: tuple[type[BaseException], ...]


def _rose(data: bytes) -> None:
    from ccbs_isdn.rose import facility

    facility.decode_each(data)
    if data[:1] == b"\x1c":
        facility.decode_ie(data)


def _capi(data: bytes) -> None:
    from ccbs_isdn.drivers.capi20 import messages as m
    from ccbs_isdn.drivers.capi20.tables import Command, Subcommand

    from ccbs_isdn.rose import facility

    msg = m.decode(data)
    for name in ("additional_info",):
        if name in msg.params:
            info = m.AdditionalInfo.decode(msg.get_struct(name))
            m.parse_ies(info.facility_array)
            for contents in m.facilities_in_array(info.facility_array):
                facility.decode_each(contents)
    if msg.command is Command.FACILITY and msg.get_int("selector") == 3:
        param = m.decode_supp(msg.subcommand, msg.get_struct("parameter"))
        if "instances" in param.fields:
            m.decode_interrogate_instances(param.get_struct("instances"))
    if msg.command is Command.INFO and msg.subcommand is Subcommand.IND \
            and msg.get_int("info_number") == 0x1C:
        facility.decode_each(msg.get_struct("info_element"))


def _fxb(data: bytes) -> None:
    from ccbs_isdn.analog import fxb
    from ccbs_isdn.errors import AtParseError

    framer = fxb.LineFramer()
    for line in framer.feed(data):
        try:
            fxb.parse_line(line)
        except AtParseError:
            pass  # one bad line; the framer goes on with the next
    # and the same bytes as one line
    fxb.parse_line(data)


def _control(data: bytes) -> None:
    from ccbs_isdn.runtime.control import parse_request

    parse_request(data)


_CONFIG_DIR: list[Path] = []


def _config(data: bytes) -> None:
    from ccbs_isdn.config import load_config

    if not _CONFIG_DIR:
        _CONFIG_DIR.append(Path(tempfile.mkdtemp(prefix="ccbs-fuzz-config-")))
    path = _CONFIG_DIR[0] / "ccbsd.toml"
    path.write_bytes(data)
    load_config(path, conf_d=False)


def targets() -> dict[str, Target]:
    from ccbs_isdn.errors import (
        AtParseError,
        CapiMessageError,
        ConfigError,
        ControlProtocolError,
        FacilityError,
    )

    return {t.name: t for t in (
        Target("rose", _rose, (FacilityError,)),
        Target("capi", _capi, (CapiMessageError, FacilityError)),
        Target("fxb", _fxb, (AtParseError,)),
        Target("control", _control, (ControlProtocolError,)),
        Target("config", _config, (ConfigError,)),
    )}


# ------------------------------------------------------------------------ seeds


def seed_corpus(name: str) -> list[bytes]:
    """Valid inputs of each parser, the starting points of the fuzzing."""
    if name == "rose":
        from tests.fuzz.strategies import facility_vectors

        return list(facility_vectors())
    if name == "capi":
        return list(_capi_seeds())
    if name == "fxb":
        lines = ["OK", "ERROR", "%HOOK: 1,OFF,@1234", "%DTMF: 2,5,@99", "%RING: 1,TRIP,@7",
                 "%RING: 3,ENDED,TIMEOUT,@70", "%READY: FXB/1,4,1.0-sim", "%FAULT: 2,SHORT",
                 "%FLASH: 1,@5", "%STATE: 1,ON,IDLE", "%CME ERROR: 5", "ATE0"]
        return [b"\r\n" + line.encode() + b"\r\n" for line in lines] + \
            [b"\r\n".join(line.encode() for line in lines)]
    if name == "control":
        return [b'{"v": 1, "cmd": "status", "args": {}, "tag": 1}',
                b'{"v": 1, "cmd": "show", "args": {"id": "17"}}',
                b'{"v": 1, "cmd": "events", "args": {"follow": false, "last": 10}}',
                b'{"v": 1, "cmd": "cancel", "args": {"caller": "21", "all": true}}',
                b'{"v": 1, "cmd": "request", "args": {"caller": "21", "target": "22"}}',
                b'{"v": 1, "cmd": "trace", "args": {"action": "start", "file": "/tmp/t"}}']
    if name == "config":
        return [(REPO / "etc" / "ccbsd.toml.example").read_bytes(),
                b'[daemon]\nstate_dir = "/tmp/x"\n[timers]\nguard = 2\n']
    raise KeyError(name)


def _capi_seeds() -> Iterable[bytes]:
    from ccbs_isdn.drivers.capi20 import messages as m
    from ccbs_isdn.drivers.capi20.tables import Command as C
    from ccbs_isdn.drivers.capi20.tables import Subcommand as S

    from tests.fuzz.strategies import facility_vectors

    yield m.encode(m.message(C.CONNECT, S.IND, 1, plci=0x0101, cip=16,
                             called_number=m.called_number("31"),
                             calling_number=m.calling_number("22")))
    yield m.encode(m.message(C.DISCONNECT, S.IND, 2, plci=0x0101, reason=0x3490))
    for vector in facility_vectors()[:20]:
        yield m.encode(m.message(C.INFO, S.IND, 3, address=1, info_number=0x1C,
                                 info_element=vector))
        info = m.AdditionalInfo(facility_array=m.facility_array([vector])).encode()
        yield m.encode(m.message(C.CONNECT, S.IND, 4, plci=0x0101, cip=16,
                                 additional_info=info))
    for (function, sub), layout in m.SUPP_LAYOUTS.items():
        if sub is not S.IND:
            continue
        fields = {name: (b"" if kind.startswith("s") else 1) for name, kind in layout
                  if not kind.endswith("?")}
        yield m.encode(m.message(C.FACILITY, S.IND, 6, address=1, selector=3,
                                 parameter=m.encode_supp(S.IND, m.SuppParam(function,
                                                                            fields))))


# ------------------------------------------------------------------- engines


def check(target: Target, data: bytes) -> None:
    """One input: the target's own error is fine, anything else propagates."""
    try:
        target.run(data)
    except target.allowed:
        pass


def run_atheris(name: str, seconds: float, extra: list[str]) -> int:
    """Runs in a process of its own (``atheris.Fuzz()`` never returns)."""
    import atheris

    # one corpus per target that later runs build on
    corpus = FINDINGS.parent / f"ccbs-fuzz-corpus-{name}"
    corpus.mkdir(parents=True, exist_ok=True)
    with atheris.instrument_imports():
        import ccbs_isdn.drivers.capi20.messages  # noqa: F401

        import ccbs_isdn.analog.fxb  # noqa: F401
        import ccbs_isdn.config  # noqa: F401
        import ccbs_isdn.rose.facility  # noqa: F401
        import ccbs_isdn.runtime.control  # noqa: F401
    target = targets()[name]
    for data in seed_corpus(name):
        (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data)
    args = [sys.argv[0], f"-max_total_time={int(seconds)}", "-timeout=10",
            f"-artifact_prefix={FINDINGS}/{name}-", *extra, str(corpus)]
    print(f"== atheris: {name} for {seconds:g} s, corpus {corpus}", flush=True)
    atheris.Setup(args, lambda data: check(target, data))
    atheris.Fuzz()
    return 0


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    raw = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(6)
        if op == 0 and raw:
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        elif op == 1 and raw:
            del raw[rng.randrange(len(raw)):]
        elif op == 2:
            at = rng.randint(0, len(raw))
            raw[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 3 and raw:
            raw[rng.randrange(len(raw))] = rng.choice([0, 1, 0x7F, 0x80, 0x81, 0xFF])
        elif op == 4 and pool:  # splice with another input
            other = rng.choice(pool)
            raw = raw[:rng.randint(0, len(raw))] + other[rng.randint(0, len(other)):]
        elif raw:
            a = rng.randrange(len(raw))
            b = rng.randint(a, len(raw))
            raw[b:b] = raw[a:b]
    return bytes(raw)


def run_random(name: str, seconds: float, seed: int) -> int:
    """A seeded mutation fuzzer (no coverage guidance): the fallback without atheris."""
    target = targets()[name]
    rng = random.Random(f"{seed}:{name}")
    pool = seed_corpus(name)
    deadline = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < deadline:
        data = mutate(rng, rng.choice(pool), pool)
        runs += 1
        try:
            check(target, data)
        except Exception:
            path = FINDINGS / f"{name}-crash-{hashlib.sha1(data).hexdigest()}"
            path.write_bytes(data)
            print(f"== {name}: FINDING after {runs} runs, input {data.hex()} -> {path}")
            traceback.print_exc()
            return 1
        if len(pool) < 5000 and rng.random() < 0.01:
            pool.append(data)
    print(f"== {name}: {runs} runs in {seconds:g} s (seed {seed}), nothing found")
    return 0


def has_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.atheris_main",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", choices=sorted(targets()),
                        help="fuzz only this target (repeatable); default: all")
    parser.add_argument("--seconds", type=float, default=30.0, help="per target")
    parser.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    parser.add_argument("--seed", type=int, default=None, help="random engine only")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("libfuzzer", nargs="*", help="after --: libFuzzer flags")
    args = parser.parse_args(argv)
    names = args.target or sorted(targets())
    FINDINGS.mkdir(parents=True, exist_ok=True)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if has_atheris() else "random"
        if engine == "random":
            print("== atheris is not installed: plain mutation fuzzing instead "
                  "(pip install atheris for coverage guidance)")
    if engine == "atheris" and args.child:
        return run_atheris(names[0], args.seconds, args.libfuzzer)
    failed = []
    for name in names:
        if engine == "atheris":
            code = subprocess.call([sys.executable, "-m", "tests.fuzz.atheris_main",
                                    "--child", "--engine", "atheris", "--target", name,
                                    "--seconds", str(args.seconds), "--",
                                    *args.libfuzzer], cwd=REPO)
        else:
            seed = args.seed if args.seed is not None else random.randrange(1 << 32)
            code = run_random(name, args.seconds, seed)
        if code != 0:
            failed.append(name)
    print(f"== make fuzz: {len(names)} targets, findings in: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
