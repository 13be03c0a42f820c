"""Fuzzing of ccbsd's inputs where they meet the real parts: garbage CAPI frames from
the simulated card through the real libcapi20 into the real driver, random TOML into
the configuration loader, and garbage on the control socket, from the bridge and from
the card into a running ccbsd. Only each parser's typed error may escape; the driver
and the daemon keep serving. ``CCBS_CHAOS_LONG=1`` runs many more examples; the seed
of hypothesis is printed on failure (``--hypothesis-seed`` repeats it)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass

import pytest

from tests.chaos.harness import long_mode

__all__ = ["FuzzCount", "examples", "long_mode"]
from tests.chaos.summary import report

# the real-libcapi20 fixtures of the integration tests
from tests.integration.conftest import capi_home, loop_errors  # noqa: F401


def examples(bounded: int, long: int | None = None) -> int:
    """Hypothesis examples per test: bounded in ``make test``, more with
    ``CCBS_CHAOS_LONG=1``."""
    return (long or bounded * 20) if long_mode() else bounded


@dataclass
class FuzzCount:
    test: str
    cases: int = 0
    rejected: int = 0  # inputs the parser refused with its own typed error
    accepted: int = 0

    def line(self) -> str:
        split = (f" ({self.rejected} refused with the parser's own error, "
                 f"{self.accepted} accepted)" if self.rejected or self.accepted else "")
        return f"fuzz {self.test}: {self.cases} cases{split}, 0 crashes"


@pytest.fixture
def fuzz_count(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzCount]:
    count = FuzzCount(request.node.nodeid.split("::", 1)[-1])
    yield count
    failed = request.node.stash.get(_FAILED, False)
    line = count.line() if not failed else count.line().replace("0 crashes", "FAILED")
    report(tmp_path_factory, request.node.nodeid, line,
           {"fuzz_cases": count.cases, "violations": ["failed"] if failed else []})


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    if rep.when == "call":
        item.stash[_FAILED] = rep.failed
    return rep
