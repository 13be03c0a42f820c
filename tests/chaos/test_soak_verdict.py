"""The soak's leak verdict (``soak.judge``) on made-up samples: flat passes, a slow
descriptor leak and growing memory are caught, noise of one descriptor is not."""

from __future__ import annotations

from .soak import Sample, judge


def samples(rss: list[int], fds: list[int]) -> list[Sample]:
    return [Sample(i * 50, i * 10.0, r, f, 0) for i, (r, f) in enumerate(zip(rss, fds,
                                                                            strict=True))]


def test_flat_with_noise_is_no_leak() -> None:
    n = 40
    verdict = judge(samples([40_000 + (i % 3) * 200 for i in range(n)],
                            [20 + (i % 3 == 0) for i in range(n)]))
    assert not verdict.leak, verdict.reasons


def test_a_descriptor_per_hundred_lifecycles_is_a_leak() -> None:
    n = 40
    verdict = judge(samples([40_000] * n, [20 + i // 2 for i in range(n)]))
    assert verdict.leak and "file descriptors" in verdict.reasons[0]


def test_growing_memory_is_a_leak() -> None:
    n = 40
    verdict = judge(samples([40_000 + i * 600 for i in range(n)], [20] * n))
    assert verdict.leak and "resident memory" in verdict.reasons[0]
    assert verdict.rss_growth_kib > 8 * 1024


def test_a_warm_up_that_settles_is_no_leak() -> None:
    n = 40
    rss = [30_000 + min(i, 6) * 2_000 for i in range(n)]  # grows, then stays
    assert not judge(samples(rss, [20] * n)).leak


def test_too_few_samples_are_not_judged() -> None:
    verdict = judge(samples([1, 2, 3], [1, 2, 3]))
    assert not verdict.leak and "too few" in verdict.reasons[0]
