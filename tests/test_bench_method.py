"""Known-answer tests of the benchmark method: order-statistic intervals, repeated latencies, interleaved serving,
throughput, the paired comparison, the choice of the best variant and the busy-machine flag.

Each test pins a number that a plausible one-line bug would change (an off-by-one order statistic, a pooled
instead of per-repeat median, unpaired repeats, padded instead of real tokens, the best variant chosen on test
accuracy, ...). Fast, CPU-only, deterministic: timings come from fake clocks, randomness from fixed seeds.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom, quantile_test

from textcls.bench import benchmark, latency, machine, stats
from textcls.eval import statistics

# --------------------------------------------------------------------------- helpers


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 100.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SequentialRng:
    """Stands in for a numpy Generator where only ``permutation`` is used: the identity order."""

    @staticmethod
    def permutation(n):
        return np.arange(n) if isinstance(n, (int, np.integer)) else np.asarray(n)


class WordEncoder:
    """Texts -> padded "token" arrays: one token per whitespace word; ``cost`` seconds per call on ``clock``."""

    def __init__(self, texts, clock: FakeClock | None = None, cost: float = 0.0):
        self.index = {t: i for i, t in enumerate(texts)}
        self.clock, self.cost = clock, cost

    def __call__(self, texts):
        if self.clock is not None:
            self.clock.advance(self.cost)
        width = max(len(t.split()) for t in texts)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, text in enumerate(texts):
            n = len(text.split())
            ids[row, :n] = self.index[text] + 1
            mask[row, :n] = 1
        return {"input_ids": ids, "attention_mask": mask}

    @staticmethod
    def real_tokens(batch):
        return int(batch["attention_mask"].sum())

    @staticmethod
    def padded_tokens(batch):
        return int(batch["input_ids"].size)


def text_index(batch) -> np.ndarray:
    """The text index per row that WordEncoder wrote into the first token."""
    return batch["input_ids"][:, 0] - 1


def exact_interval_coverage(n: int, q: float, low: int, high: int) -> float:
    """P(X(low) <= true q-quantile <= X(high)) = P(low <= count below it < high), count ~ Binomial(n, q)."""
    return float(binom.cdf(high - 1, n, q) - binom.cdf(low - 1, n, q))


# --------------------------------------------------------------------------- 1. stats: order-statistic intervals


def test_median_interval_of_1_to_10_is_the_2nd_and_9th_values():
    """Check that the 95 % interval of the median of 1..10 is (x(2), x(9)) = (2, 9), in any input order."""
    assert stats.quantile_interval(list(range(1, 11)), 0.5) == (2.0, 9.0)
    assert stats.quantile_interval([7, 3, 10, 1, 9, 2, 8, 4, 6, 5], 0.5, 0.95) == (2.0, 9.0)
    low, high = stats.quantile_interval(np.arange(1, 11), 0.5)
    assert isinstance(low, float) and isinstance(high, float)


@pytest.mark.parametrize("n", [6, 7, 10, 25, 50, 101, 300])
@pytest.mark.parametrize("q", [0.1, 0.5, 0.9, 0.95])
def test_quantile_interval_equals_scipy_quantile_test(n, q):
    """Check that quantile_interval equals scipy.stats.quantile_test's confidence interval (None where it is open)."""
    values = np.random.default_rng(n * 100 + int(q * 100)).exponential(size=n)
    for confidence in (0.95, 0.90):
        ci = quantile_test(values, p=q).confidence_interval(confidence)
        got = stats.quantile_interval(values, q, confidence)
        if math.isnan(ci.low) or math.isnan(ci.high):
            assert got is None
        else:
            assert got == (float(ci.low), float(ci.high))


@pytest.mark.parametrize("n", [1, 6, 20, 59, 100, 298, 299, 500])
@pytest.mark.parametrize("q", [0.1, 0.5, 0.95, 0.99])
def test_quantile_upper_bound_equals_scipy_one_sided_bound(n, q):
    """Check that quantile_upper_bound is scipy's one-sided (alternative='less') upper limit, None where that is nan."""
    values = np.random.default_rng(n + int(q * 1000)).lognormal(size=n)
    for confidence in (0.95, 0.80):
        high = quantile_test(values, p=q, alternative="less").confidence_interval(confidence).high
        got = stats.quantile_upper_bound(values, q, confidence)
        if math.isnan(high):
            assert got is None
        else:
            assert got == high


def test_median_interval_needs_six_values_at_95_percent():
    """Check that a 95 % median interval is None for 1..5 values and (min, max) for exactly 6."""
    for n in range(1, 6):
        assert stats.quantile_interval(np.arange(n, dtype=float), 0.5) is None
    assert stats.quantile_interval([5.0, 1.0, 4.0, 2.0, 6.0, 3.0], 0.5) == (1.0, 6.0)
    assert stats.quantile_interval(np.arange(5.0), 0.5, confidence=0.90) == (0.0, 4.0)  # 90 %: 5 values are enough


def test_p99_upper_bound_needs_299_calls_and_p95_needs_59():
    """Check the thresholds: no p99 bound from 298 calls, the maximum from 299; no p95 bound from 58, max of 59."""
    assert stats.calls_needed(0.99) == 299 and stats.calls_needed(0.95) == 59
    assert stats.calls_needed(0.99, 0.90) == 230  # 1 - 0.99**230 >= 0.90 > 1 - 0.99**229
    assert stats.calls_needed(0.5, 0.75) == 2  # exactly 1 - 0.5**2 = 0.75: two values suffice, not three
    assert stats.quantile_upper_bound(np.arange(298.0), 0.99) is None
    assert stats.quantile_upper_bound(np.arange(299.0), 0.99) == 298.0  # x(299), the largest
    assert stats.quantile_upper_bound(np.arange(58.0), 0.95) is None
    assert stats.quantile_upper_bound(np.arange(59.0), 0.95) == 58.0
    for q in (0.9, 0.95, 0.99):
        n = stats.calls_needed(q)
        assert 1 - q ** n >= 0.95 > 1 - q ** (n - 1)


def test_upper_bound_is_the_smallest_order_statistic_with_enough_coverage():
    """Check that the bound is X(k) for the smallest k with P(count <= k-1) >= 95 % (500 calls, p95: k = 484)."""
    n, q = 500, 0.95
    k = next(k for k in range(1, n + 1) if binom.cdf(k - 1, n, q) >= 0.95)
    assert binom.cdf(k - 2, n, q) < 0.95
    ranks = np.arange(1.0, n + 1)  # value i is x(i)
    assert stats.quantile_upper_bound(ranks[::-1], q) == float(k)
    assert stats.quantile_upper_bound(ranks, 0.5) == float(next(j for j in range(1, n + 1)
                                                                 if binom.cdf(j - 1, n, 0.5) >= 0.95))


def test_upper_bound_at_an_exact_binomial_boundary():
    """Check the bound where P(count <= k-1) equals the confidence exactly (counts as enough): 11/16 for k=3 of 4."""
    assert stats.quantile_upper_bound([4.0, 1.0, 3.0, 2.0], 0.5, 11 / 16) == 3.0
    assert stats.quantile_upper_bound([4.0, 1.0, 3.0, 2.0], 0.5, 11 / 16 + 1e-9) == 4.0
    assert stats.quantile_upper_bound([2.0, 1.0], 0.5, 0.75) == 2.0


@pytest.mark.parametrize("values, q, confidence", [([], 0.5, 0.95), ([1.0], 0.0, 0.95), ([1.0], 1.0, 0.95),
                                                   ([1.0], 0.5, 0.0), ([1.0], 0.5, 1.0), ([1.0], -0.5, 0.95)])
def test_intervals_reject_no_values_and_levels_outside_0_1(values, q, confidence):
    """Check that no values, or q / confidence outside (0, 1), raise ValueError in both interval functions."""
    with pytest.raises(ValueError):
        stats.quantile_interval(values, q, confidence)
    with pytest.raises(ValueError):
        stats.quantile_upper_bound(values, q, confidence)


@pytest.mark.parametrize("q, confidence", [(0.0, 0.95), (1.0, 0.95), (0.99, 0.0), (0.99, 1.0)])
def test_calls_needed_rejects_levels_outside_0_1(q, confidence):
    """Check that calls_needed refuses q or confidence outside (0, 1)."""
    with pytest.raises(ValueError):
        stats.calls_needed(q, confidence)


def test_median_interval_covers_the_true_median_95_percent_of_the_time():
    """Check by simulation (2000 exponential samples of 50) that the 95 % interval of the median covers ln 2 in
    >= 94 % of them, as the binomial says, and a 90 % interval covers less often."""
    samples = np.random.default_rng(12).exponential(size=(2000, 50))
    true_median = math.log(2)

    def coverage(confidence):
        hits = 0
        for row in samples:
            low, high = stats.quantile_interval(row, 0.5, confidence)
            hits += low <= true_median <= high
        return hits / len(samples)

    c95, c90 = coverage(0.95), coverage(0.90)
    low, high = stats.quantile_interval(np.arange(1.0, 51), 0.5)  # the ranks of the order statistics
    exact = exact_interval_coverage(50, 0.5, int(low), int(high))
    assert exact >= 0.95
    assert c95 >= 0.94 and abs(c95 - exact) < 0.015
    assert c90 < c95 and c90 >= 0.88


def test_p95_upper_bound_is_above_the_true_p95_95_percent_of_the_time():
    """Check by simulation (2000 exponential samples of 100) that the p95 upper bound is >= -ln 0.05 in >= 94 %."""
    samples = np.random.default_rng(5).exponential(size=(2000, 100))
    true_p95 = -math.log(0.05)
    hits = sum(stats.quantile_upper_bound(row, 0.95) >= true_p95 for row in samples) / len(samples)
    k = int(stats.quantile_upper_bound(np.arange(1.0, 101), 0.95))
    assert hits >= 0.94 and abs(hits - binom.cdf(k - 1, 100, 0.95)) < 0.015
    # an 80 % bound is a lower order statistic and is exceeded by the truth more often
    hits80 = sum(stats.quantile_upper_bound(row, 0.95, 0.80) >= true_p95 for row in samples) / len(samples)
    assert hits80 < hits and hits80 >= 0.78


def test_median_with_interval_known_answer():
    """Check median_with_interval: the median, and (x(1), x(6)) of six values; None bounds below six."""
    assert stats.median_with_interval([3.0, 1.0, 2.0, 6.0, 5.0, 4.0]) == {"median": 3.5, "low": 1.0, "high": 6.0}
    assert stats.median_with_interval([2.0, 4.0, 9.0]) == {"median": 4.0, "low": None, "high": None}


# --------------------------------------------------------------------------- 2. RepeatedLatency


def ms(values):
    return [v / 1000 for v in values]


# per repeat: p50s 2..7; pooled median 5.5 (not 4.5); per-repeat p95s 8.3..8.8
HAND_REPEATS = [ms([a, a + 1, 9]) for a in range(1, 7)]


def test_from_repeats_p50_is_the_median_of_per_repeat_p50s_in_ms():
    """Check p50 = median of the repeats' p50s (4.5 ms, not the pooled 5.5), its interval over repeats, ms units."""
    lat = latency.RepeatedLatency.from_repeats(HAND_REPEATS)
    assert lat.count == 18 and lat.repeats == 6
    assert lat.p50 == pytest.approx(4.5)
    assert lat.p50_ci == [pytest.approx(2.0), pytest.approx(7.0)]
    assert lat.p95 == pytest.approx(8.55)  # median of 0.1 (a+1) + 8.1 over a = 1..6
    assert lat.p95_ci == [pytest.approx(8.3), pytest.approx(8.8)]
    assert lat.p50_repeats == pytest.approx([2.0, 3.0, 4.0, 5.0, 6.0, 7.0])  # per repeat, in repeat order
    assert lat.p95_repeats == pytest.approx([8.3, 8.4, 8.5, 8.6, 8.7, 8.8])
    assert lat.mean == pytest.approx(np.mean(np.concatenate(HAND_REPEATS)) * 1000)
    assert lat.min == pytest.approx(1.0) and lat.max == pytest.approx(9.0)
    assert lat.p95_upper is None and lat.p99 is None and lat.p99_upper is None  # 18 calls: too few to bound
    assert lat.confidence == 0.95 and latency.LATENCY_UNIT == "ms"


def test_from_repeats_with_five_repeats_has_no_interval():
    """Check that five repeats give a median but no 95 % interval (None, not a made-up one)."""
    lat = latency.RepeatedLatency.from_repeats(HAND_REPEATS[:5])
    assert lat.repeats == 5 and lat.p50 == pytest.approx(4.0)
    assert lat.p50_ci is None and lat.p95_ci is None


def test_from_repeats_tail_bounds_come_from_the_pooled_calls():
    """Check p95_upper / p99 / p99_upper on 6 x 50 pooled calls against scipy and numpy on the pooled values."""
    rng = np.random.default_rng(3)
    repeats = [list(rng.lognormal(-6, 0.5, size=50)) for _ in range(6)]
    pooled_ms = np.concatenate(repeats) * 1000
    lat = latency.RepeatedLatency.from_repeats(repeats)
    assert lat.count == 300
    assert lat.p95_upper == pytest.approx(quantile_test(pooled_ms, p=0.95, alternative="less")
                                          .confidence_interval(0.95).high)
    assert lat.p99_upper == pytest.approx(quantile_test(pooled_ms, p=0.99, alternative="less")
                                          .confidence_interval(0.95).high)
    assert lat.p99 == pytest.approx(np.percentile(pooled_ms, 99))
    assert lat.p95_upper >= np.percentile(pooled_ms, 95) and lat.p99_upper >= lat.p99
    assert lat.p50 == pytest.approx(np.median([np.percentile(np.array(r) * 1000, 50) for r in repeats]))


def test_from_repeats_p95_upper_of_60_calls_1_to_60_ms():
    """Check that 60 pooled calls of 1..60 ms give p95_upper = x(60) = 60 ms and no p99 (fewer than 299 calls)."""
    repeats = [ms(range(r * 10 + 1, r * 10 + 11)) for r in range(6)]
    lat = latency.RepeatedLatency.from_repeats(repeats)
    assert lat.count == 60 and lat.p95_upper == pytest.approx(60.0)
    assert lat.p50 == pytest.approx(30.5) and lat.p50_ci == [pytest.approx(5.5), pytest.approx(55.5)]
    assert lat.p99 is None and lat.p99_upper is None


def test_from_sequence_cuts_consecutive_blocks():
    """Check that from_sequence splits calls into `repeats` consecutive blocks (not strided, not shuffled)."""
    seconds = ms(range(1, 13))  # 1..12 ms, drifting upwards
    lat = latency.RepeatedLatency.from_sequence(seconds, 6)
    expected = latency.RepeatedLatency.from_repeats([seconds[i:i + 2] for i in range(0, 12, 2)])
    assert lat == expected
    assert lat.p50_ci == [pytest.approx(1.5), pytest.approx(11.5)]  # strided blocks would all have p50 6.5 .. 7.5
    uneven = latency.RepeatedLatency.from_sequence(ms(range(1, 14)), 6)  # sizes 3, 2, 2, 2, 2, 2
    assert uneven.repeats == 6 and uneven.count == 13 and uneven.p50_ci == [pytest.approx(2.0), pytest.approx(12.5)]


def test_from_sequence_with_fewer_calls_than_repeats_uses_one_call_per_repeat():
    """Check that 3 calls asked for 6 repeats give 3 repeats of one call each."""
    lat = latency.RepeatedLatency.from_sequence(ms([4, 1, 7]), 6)
    assert lat.repeats == 3 and lat.count == 3 and lat.p50 == pytest.approx(4.0)


@pytest.mark.parametrize("repeats", [[], [[]], [ms([1, 2]), []], [ms([1, -2])], [[0.001, float("nan")]],
                                     [[0.001, float("inf")]]],
                         ids=["no-repeats", "empty-repeat", "one-empty", "negative", "nan", "inf"])
def test_from_repeats_rejects_missing_or_impossible_values(repeats):
    """Check that no repeats, an empty repeat, or a negative / non-finite time raise ValueError."""
    with pytest.raises(ValueError):
        latency.RepeatedLatency.from_repeats(repeats)


def test_to_dict_rounds_numbers_and_lists_keeps_none_and_ints():
    """Check to_dict: every float (and interval bound) rounded, count/repeats ints, None kept, all keys."""
    lat = latency.RepeatedLatency.from_repeats([ms([1.23456789, 2.3456789, 9.87654321])] * 6)
    d = lat.to_dict()
    assert set(d) == {"count", "repeats", "p50", "p50_ci", "p95", "p95_ci", "p95_upper", "p99", "p99_upper", "mean",
                      "min", "max", "p50_repeats", "p95_repeats", "confidence"}
    assert d["p50_repeats"] == [2.3457] * 6 and len(d["p95_repeats"]) == 6  # one per repeat, rounded like the rest
    assert d["count"] == 18 and d["repeats"] == 6 and isinstance(d["count"], int)
    assert d["p50"] == 2.3457 and d["p50_ci"] == [2.3457, 2.3457] and d["min"] == 1.2346
    assert d["p95_upper"] is None and d["p99"] is None
    assert lat.to_dict(digits=1)["max"] == 9.9


def test_ratio_per_repeat_pairs_repeat_r_with_repeat_r():
    """Check that each repeat's speed-up is reference p50 / variant p50 of the same repeat: a machine drifting
    10 -> 60 ms with a variant always twice as fast gives exactly 2 in every repeat ([2, 2] interval)."""
    reference = [ms([10 * r] * 3) for r in range(1, 7)]
    variant = [ms([5 * r] * 3) for r in range(1, 7)]
    assert latency.ratio_per_repeat(reference, variant) == {"median": 2.0, "low": 2.0, "high": 2.0}
    assert latency.ratio_per_repeat(variant, reference) == {"median": 0.5, "low": 0.5, "high": 0.5}
    shuffled = latency.ratio_per_repeat(reference, variant[::-1])  # what a mispairing would report
    assert shuffled["low"] < 1 < shuffled["high"]


def test_ratio_per_repeat_uses_each_repeats_p50():
    """Check that the per-repeat ratio is of the repeats' medians (one slow outlier call does not move it)."""
    reference = [ms([10, 10, 10, 1000])] * 6
    variant = [ms([4, 5, 5, 6])] * 6
    assert latency.ratio_per_repeat(reference, variant)["median"] == pytest.approx(2.0)


@pytest.mark.parametrize("reference, variant", [([ms([1])] * 6, [ms([1])] * 5), ([], [])],
                         ids=["6-vs-5", "none"])
def test_ratio_per_repeat_rejects_mismatched_repeats(reference, variant):
    """Check that different or zero repeat counts raise ValueError (repeats must pair)."""
    with pytest.raises(ValueError):
        latency.ratio_per_repeat(reference, variant)


# --------------------------------------------------------------------------- 3. cost / throughput


@pytest.mark.parametrize("samples_per_s, price, usd", [(1.0, 3.6, 1.0), (2.0, 3.6, 0.5), (1000.0, 3.6, 0.001),
                                                       (10.0, 0.10, 0.1 / 36), (5.0, 0.0, 0.0)])
def test_cost_per_1k_texts_known_answers(samples_per_s, price, usd):
    """Check that 1 text/s at 3.60 USD/h costs 1.00 USD per 1,000 texts (and scales as price / speed)."""
    assert latency.cost_per_1k_texts(samples_per_s, price) == pytest.approx(usd, rel=1e-12, abs=0)


@pytest.mark.parametrize("samples_per_s, price", [(0.0, 1.0), (-1.0, 1.0), (float("nan"), 1.0), (float("inf"), 1.0),
                                                  (1.0, -0.01), (1.0, float("nan")), (1.0, float("inf"))])
def test_cost_per_1k_texts_rejects_bad_inputs(samples_per_s, price):
    """Check that a non-positive or non-finite speed, or a negative or non-finite price, raise ValueError."""
    with pytest.raises(ValueError):
        latency.cost_per_1k_texts(samples_per_s, price)


# --------------------------------------------------------------------------- 4. serve / rounds / interleaving


def test_serve_end_to_end_includes_tokenization_and_model_time_excludes_it():
    """Check serve on a fake clock: per text, e2e = tokenize + model seconds, model = model seconds only."""
    texts = ["a", "b b", "c c c"]
    clock = FakeClock()
    encoder = WordEncoder(texts, clock, cost=0.002)

    def backend(batch):
        i = int(text_index(batch)[0])
        clock.advance(0.010 * (i + 1))
        return np.array([[float(i), -float(i)]])

    logits, e2e, model = benchmark.serve(backend, encoder, texts, clock)
    assert e2e == pytest.approx([0.012, 0.022, 0.032])
    assert model == pytest.approx([0.010, 0.020, 0.030])
    assert logits.dtype == np.float32 and logits.shape == (3, 2)
    np.testing.assert_array_equal(logits[:, 0], [0.0, 1.0, 2.0])


def test_rounds_cover_every_index_once_in_nearly_equal_seeded_slices():
    """Check that rounds() partitions 0..n-1 into min(repeats, n) slices of sizes differing by <= 1, seeded."""
    parts = benchmark.rounds(23, 6, np.random.default_rng(0))
    assert len(parts) == 6
    assert sorted(np.concatenate(parts).tolist()) == list(range(23))
    assert {len(p) for p in parts} == {3, 4}
    again = benchmark.rounds(23, 6, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = benchmark.rounds(23, 6, np.random.default_rng(1))
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other))
    assert np.concatenate(parts).tolist() != list(range(23))  # shuffled, not in input order
    few = benchmark.rounds(4, 6, np.random.default_rng(0))
    assert len(few) == 4 and all(len(p) == 1 for p in few)


def _interleaved(seed: int, n: int = 12, repeats: int = 6):
    texts = [f"text{i} " + "w " * (i % 3) for i in range(n)]
    clock = FakeClock()
    encoder = WordEncoder(texts)
    log = []

    def make(name):
        def backend(batch):
            i = int(text_index(batch)[0])
            log.append((name, i))
            clock.advance((i + 1) / 1000)  # the time says which text was served
            return np.array([[i, 10 * i + len(name)]], dtype=np.float32)
        return backend

    backends = {name: make(name) for name in ("eager_fp32", "dynamic_int8", "onnx_fp32")}
    out = benchmark.serve_interleaved(backends, encoder, texts, repeats, np.random.default_rng(seed), clock)
    return texts, out, log


def test_serve_interleaved_serves_the_same_texts_per_round_and_logits_in_input_order():
    """Check that round r holds the same texts for every variant, all texts once, and logits come back in input
    order although they were served shuffled."""
    texts, out, _ = _interleaved(seed=0)
    assert list(out) == ["eager_fp32", "dynamic_int8", "onnx_fp32"]
    served = {name: [[round(t * 1000) - 1 for t in r] for r in row["e2e"]] for name, row in out.items()}
    reference = served["eager_fp32"]
    assert len(reference) == 6
    assert all(served[name] == reference for name in served)
    assert sorted(sum(reference, [])) == list(range(len(texts)))
    assert sum(reference, []) != list(range(len(texts)))
    for name, row in out.items():
        assert row["logits"].shape == (12, 2)
        np.testing.assert_array_equal(row["logits"][:, 0], np.arange(12))
        np.testing.assert_array_equal(row["logits"][:, 1], 10 * np.arange(12) + len(name))
        assert [len(r) for r in row["model"]] == [len(r) for r in row["e2e"]]


def test_serve_interleaved_changes_the_variant_order_between_rounds_seeded():
    """Check that every round serves each variant once, in an order that changes between rounds, the same per seed."""
    _, out, log = _interleaved(seed=0)
    sizes = [len(r) for r in out["eager_fp32"]["e2e"]]
    orders, at = [], 0
    for size in sizes:
        block = log[at:at + 3 * size]
        order = [block[k * size][0] for k in range(3)]
        assert all(name == order[k] for k in range(3) for name, _ in block[k * size:(k + 1) * size])
        orders.append(tuple(order))
        at += 3 * size
    assert at == len(log) == 36
    assert all(sorted(o) == sorted(out) for o in orders)
    assert len(set(orders)) > 1
    assert _interleaved(seed=0)[2] == log
    assert _interleaved(seed=1)[2] != log


def test_length_buckets_group_texts_of_similar_length():
    """Check that length_buckets sorts indices by length (stable) and cuts every batch_size."""
    buckets = benchmark.length_buckets([5, 1, 3, 1, 4], 2)
    assert [b.tolist() for b in buckets] == [[1, 3], [2, 4], [0]]
    assert [b.tolist() for b in benchmark.length_buckets([2, 2, 2], 5)] == [[0, 1, 2]]
    assert [b.tolist() for b in benchmark.length_buckets([3, 1, 2], 1)] == [[1], [2], [0]]


# --------------------------------------------------------------------------- 5. throughput sweep


def test_best_batch_size_has_the_most_real_tokens_per_second_even_when_samples_per_s_disagree():
    """Check a sweep where batch 1 wins on samples/s (10 vs 8) and batch 2 on real tokens/s (40 vs 36.7):
    batch 2 is best; tokens are real (not padded) ones, and tokenization time counts."""
    texts = ["s", "l " * 9]  # 1 and 9 tokens
    clock = FakeClock()
    encoder = WordEncoder(texts, clock, cost=0.05)
    cost = {1: 0.05, 2: 0.20}  # + 0.05 of tokenization per call

    def backend(batch):
        clock.advance(cost[len(batch["input_ids"])])
        return np.zeros((len(batch["input_ids"]), 2), dtype=np.float32)

    result = benchmark.measure_throughput(backend, encoder, texts, [1, 2], 0.22, SequentialRng(), clock=clock)
    one, two = result["throughput"]["1"], result["throughput"]["2"]
    # batch 1: short, long (0.2 s < 0.22), short again -> 3 texts, 11 tokens in 0.3 s
    assert (one["batches"], one["samples_per_s"], one["tokens_per_s"]) == (3, pytest.approx(10.0), pytest.approx(36.7))
    # batch 2: one call of both texts -> 2 texts, 10 real tokens (18 with padding) in 0.25 s
    assert (two["batches"], two["samples_per_s"], two["tokens_per_s"]) == (1, pytest.approx(8.0), pytest.approx(40.0))
    assert one["padding_share"] == 0.0 and two["padding_share"] == pytest.approx(round(1 - 10 / 18, 4))
    assert result["best_batch_size"] == 2
    assert (result["samples_per_s"], result["tokens_per_s"], result["padding_share"]) == (
        two["samples_per_s"], two["tokens_per_s"], two["padding_share"])
    assert "flips_vs_batch1" not in one  # no served predictions given
    # batch 1's three calls took 0.1 s for one text each: resampling them cannot move the rate off 10/s
    assert one["samples_per_s_ci"] == [pytest.approx(10.0), pytest.approx(10.0)]
    assert two["samples_per_s_ci"] is None and result["samples_per_s_ci"] is None  # one call: no interval


def test_rate_interval_resamples_whole_calls():
    """Check the throughput interval: equal calls give a point (no spread); one slow call of ten widens it to
    between the rates with none and with all calls slow; it is seeded; mismatched inputs are refused."""
    assert latency.rate_interval([4] * 10, [0.5] * 10) == [pytest.approx(8.0), pytest.approx(8.0)]
    low, high = latency.rate_interval([4] * 10, [0.5] * 9 + [2.0])
    assert 4 * 10 / (0.5 * 10 + 1.5 * 10) <= low < 40 / 6.5 < high <= 8.0 + 1e-9
    assert latency.rate_interval([4] * 10, [0.5] * 9 + [2.0], seed=1) == latency.rate_interval(
        [4] * 10, [0.5] * 9 + [2.0], seed=1)
    assert latency.rate_interval([4], [0.5]) is None
    with pytest.raises(ValueError, match="2 sample counts for 1 call times"):
        latency.rate_interval([1, 2], [0.5])


def test_throughput_counts_flips_on_the_first_rotation_only_and_rotates_over_every_text():
    """Check flips_vs_batch1: texts whose class differs from the served one, counted once per text."""
    texts = ["a", "b b", "c c c", "d d d d"]
    clock = FakeClock()
    encoder = WordEncoder(texts)
    seen = {1: [], 2: []}

    def backend(batch):
        clock.advance(0.1)
        idx = text_index(batch)
        seen[len(idx)].extend(idx.tolist())
        padded = (batch["attention_mask"] == 0).any(axis=1)
        return np.stack([~padded, padded], axis=1).astype(np.float32)  # class 1 where the row is padded

    served = np.zeros(4, dtype=int)
    result = benchmark.measure_throughput(backend, encoder, texts, [1, 2], 0.55, np.random.default_rng(0),
                                          served_preds=served, clock=clock)
    one, two = result["throughput"]["1"], result["throughput"]["2"]
    assert one["flips_vs_batch1"] == 0
    # batch 2 pairs (a, b b) and (c c c, d d d d): a and c c c are padded -> 2 flips, though 6 batches ran
    assert two["batches"] == 6 and two["flips_vs_batch1"] == 2
    assert one["batches"] == 6 and sorted(seen[1][:4]) == [0, 1, 2, 3]
    assert two["padding_share"] == pytest.approx(round(1 - 10 / 12, 4))  # widths 2 and 4: 12 computed, 10 real
    assert result["best_batch_size"] in (1, 2)


def test_throughput_without_min_seconds_makes_exactly_one_rotation():
    """Check that min_seconds 0 serves every bucket exactly once per batch size."""
    texts = [f"t{i} " + "x " * i for i in range(5)]
    encoder = WordEncoder(texts)
    clock = FakeClock()
    calls = []

    def backend(batch):
        clock.advance(0.01)
        calls.append(sorted(text_index(batch).tolist()))
        return np.zeros((len(calls[-1]), 2), dtype=np.float32)

    result = benchmark.measure_throughput(backend, encoder, texts, [2], 0.0, np.random.default_rng(3), clock=clock)
    assert result["throughput"]["2"]["batches"] == 3
    assert sorted(calls) == [[0, 1], [2, 3], [4]]
    assert result["samples_per_s"] == pytest.approx(round(5 / 0.03, 2))
    assert result["tokens_per_s"] == pytest.approx(round(sum(i + 1 for i in range(5)) / 0.03, 1))


# --------------------------------------------------------------------------- 6. compare with the reference


def test_compare_is_variant_minus_reference_with_mcnemar_counts_and_agreement():
    """Check compare on 12 texts: the variant is right on 4 more (none fewer): diff +4/12, McNemar 4 vs 0
    (p = 2/16), agreement 7/12 (both wrong but different classes disagree), the largest logit difference."""
    labels = np.zeros(12, dtype=int)
    ref_pred = np.array([0] * 6 + [1] * 4 + [1, 1])
    var_pred = np.array([0] * 6 + [0] * 4 + [2, 1])
    ref = {"logits": np.eye(3, dtype=np.float32)[ref_pred]}
    row = {"logits": np.eye(3, dtype=np.float32)[var_pred] * 1.5}
    out = benchmark.compare(ref, row, labels, seed=7)
    assert out["diff"] == pytest.approx(round(4 / 12, 6))
    assert (out["variant_only_right"], out["reference_only_right"]) == (4, 0)
    assert out["p_value"] == pytest.approx(2 / 16)
    assert out["agreement"] == pytest.approx(round(7 / 12, 6))
    assert out["max_abs_logit_diff"] == pytest.approx(1.5)
    boot = statistics.paired_bootstrap_diff(var_pred == labels, ref_pred == labels, benchmark.BOOTSTRAP_RESAMPLES, 7)
    assert (out["low"], out["high"]) == (boot["low"], boot["high"])
    assert 0 < out["low"] <= out["diff"] <= out["high"]
    back = benchmark.compare(row, ref, labels, seed=7)  # roles swapped: the sign flips
    assert back["diff"] == pytest.approx(-out["diff"])
    assert (back["variant_only_right"], back["reference_only_right"]) == (0, 4)


def test_compare_of_the_reference_with_itself_is_zero():
    """Check that a variant identical to the reference gives diff 0, p 1, agreement 1 and no logit difference."""
    logits = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 2, 20)
    out = benchmark.compare({"logits": logits}, {"logits": logits.copy()}, labels, seed=0)
    assert (out["diff"], out["low"], out["high"], out["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    assert out["agreement"] == 1.0 and out["max_abs_logit_diff"] == 0.0


# --------------------------------------------------------------------------- 7. summarize: the best variant


def row(p50: float, validation: float, test: float) -> dict:
    return {"latency_ms": {"p50": p50}, "validation_accuracy": validation, "accuracy": test}


def variants() -> dict:
    return {
        "eager_fp32": row(10.0, validation=0.900, test=0.900),
        "dynamic_int8": row(3.0, validation=0.850, test=0.950),  # fastest, best on test, worst on validation
        "onnx_fp32": row(5.0, validation=0.897, test=0.800),  # -0.003 on validation: acceptable, bad on test
        "onnx_int8": {"error": "RuntimeError: exporter could not trace"},
    }


def test_summarize_chooses_on_validation_accuracy_never_on_test_accuracy():
    """Check that the best is the fastest within max_accuracy_drop on VALIDATION: onnx_fp32, not dynamic_int8
    (faster and better on test, 5 points worse on validation)."""
    out = benchmark.summarize(variants(), max_accuracy_drop=0.005)
    assert out["best_variant"] == "onnx_fp32"
    assert out["reference_variant"] == "eager_fp32" and out["status"] == "measured"
    assert "validation" in out["chosen_on"]
    rows = out["variants"]
    assert rows["dynamic_int8"]["validation_accuracy_delta"] == -0.05 and rows["dynamic_int8"]["accuracy_delta"] == 0.05
    assert rows["onnx_fp32"]["validation_accuracy_delta"] == -0.003 and rows["onnx_fp32"]["accuracy_delta"] == -0.1
    assert rows["eager_fp32"]["validation_accuracy_delta"] == 0.0 and rows["eager_fp32"]["accuracy_delta"] == 0.0
    assert benchmark.summarize(variants(), 0.06)["best_variant"] == "dynamic_int8"
    assert benchmark.summarize(variants(), 0.0)["best_variant"] == "eager_fp32"


def test_summarize_drop_exactly_at_the_limit_is_acceptable():
    """Check that a variant losing exactly max_accuracy_drop on validation (0.900 -> 0.895) may be best."""
    rows = {"eager_fp32": row(10.0, 0.900, 0.9), "onnx_int8": row(3.0, 0.895, 0.9)}
    assert benchmark.summarize(rows, 0.005)["best_variant"] == "onnx_int8"
    assert benchmark.summarize(copy.deepcopy(rows), 0.0049)["best_variant"] == "eager_fp32"


def test_summarize_better_validation_but_slower_loses_to_faster_acceptable():
    """Check that among acceptable variants the fastest median p50 wins, not the most accurate."""
    rows = {"eager_fp32": row(10.0, 0.90, 0.90), "onnx_fp32": row(6.0, 0.91, 0.91), "onnx_int8": row(4.0, 0.899, 0.89)}
    assert benchmark.summarize(rows, 0.005)["best_variant"] == "onnx_int8"


def test_summarize_never_chooses_a_failed_variant_and_keeps_it_unchanged():
    """Check that an {"error"} row (even the "fastest") is never chosen and gets no deltas."""
    for drop in (0.0, 0.005, 0.5):
        rows = variants()
        out = benchmark.summarize(rows, drop)
        assert out["variants"]["onnx_int8"] == {"error": "RuntimeError: exporter could not trace"}
        assert out["best_variant"] != "onnx_int8"
    assert list(out["variants"]) == ["eager_fp32", "dynamic_int8", "onnx_fp32", "onnx_int8"]


# --------------------------------------------------------------------------- 8. machine state: the busy flag


def _snapshots(other_share: float, own_share: float = 0.0, steal_share: float = 0.0, wall: float = 100.0):
    """Two snapshots ``wall`` seconds apart in which other processes used ``other_share`` of all CPUs, this
    process ``own_share`` and the hypervisor stole ``steal_share``."""
    tick = os.sysconf("SC_CLK_TCK")
    capacity = wall * os.cpu_count()
    own_s = own_share * capacity
    busy_ticks = round((other_share * capacity + own_s) * tick)
    steal_ticks = round(steal_share * capacity * tick)
    start = machine.Snapshot(wall=50.0, own_cpu_s=2.0, jiffies=(10_000, 500), load=(0.5, 0.4, 0.3), mhz=2000.0)
    end = machine.Snapshot(wall=50.0 + wall, own_cpu_s=2.0 + own_s, jiffies=(10_000 + busy_ticks, 500 + steal_ticks),
                           load=(1.5, 0.9, 0.4), mhz=2100.0)
    return start, end


@pytest.mark.parametrize("share, busy", [(0.2, False), (0.25, False), (0.26, True), (0.3, True), (0.9, True)])
def test_busy_flag_is_set_when_others_use_more_than_a_quarter_of_the_cpus(share, busy):
    """Check that other_cpu_share is measured from the snapshots and busy is set only above 0.25."""
    state = machine.during(*_snapshots(share), threads=2)
    assert state["other_cpu_share"] == pytest.approx(share, abs=1e-3)
    assert state["busy"] is busy
    assert bool(state["busy_reasons"]) is busy
    if busy:
        assert state["busy_reasons"] == [f"other processes used {share:.0%} of the CPUs"]


def test_busy_share_excludes_this_processs_own_cpu_time():
    """Check that this process's own CPU time is not counted as other processes' (0.5 busy - 0.3 own = 0.2)."""
    state = machine.during(*_snapshots(0.2, own_share=0.3), threads=2)
    assert state["other_cpu_share"] == pytest.approx(0.2, abs=1e-3) and state["busy"] is False


def test_steal_above_five_percent_is_busy():
    """Check that hypervisor steal above 5 % marks the run busy, 4 % does not."""
    stolen = machine.during(*_snapshots(0.0, steal_share=0.06), threads=1)
    assert stolen["steal_share"] == pytest.approx(0.06, abs=1e-3) and stolen["busy"] is True
    assert stolen["busy_reasons"] == ["the hypervisor stole 6% of the CPU time"]
    assert machine.during(*_snapshots(0.0, steal_share=0.04), threads=1)["busy"] is False


def test_during_reports_wall_time_load_and_clock_and_none_without_proc_stat():
    """Check the recorded fields, and that missing /proc/stat gives None shares and not busy."""
    start, end = _snapshots(0.1, wall=12.34)
    state = machine.during(start, end, threads=3)
    assert state["seconds"] == 12.3 and state["threads"] == 3
    assert state["load_average_start"] == (0.5, 0.4, 0.3) and state["load_average_end"] == (1.5, 0.9, 0.4)
    assert (state["cpu_mhz_start"], state["cpu_mhz_end"]) == (2000.0, 2100.0)
    blind = machine.during(machine.Snapshot(0.0, 0.0, None, None, None), machine.Snapshot(5.0, 1.0, None, None, None), 1)
    assert blind["other_cpu_share"] is None and blind["steal_share"] is None and blind["busy"] is False


def test_warn_if_busy_logs_only_for_a_busy_machine(caplog):
    """Check that warn_if_busy warns with the reasons on a busy machine and stays quiet otherwise."""
    with caplog.at_level(logging.WARNING, logger=machine.__name__):
        machine.warn_if_busy(machine.during(*_snapshots(0.1), threads=1), "quiet run")
        machine.warn_if_busy(machine.during(*_snapshots(0.5), threads=1), "noisy run")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "noisy run" in messages[0] and "50%" in messages[0]


def test_snapshot_reads_this_machine():
    """Check that a real snapshot has a monotonic wall clock and this process's CPU time."""
    first = machine.snapshot()
    sum(i * i for i in range(20000))
    second = machine.snapshot()
    assert second.wall >= first.wall and second.own_cpu_s >= first.own_cpu_s >= 0
    state = machine.during(first, second, threads=1)
    assert state["usable_cores"] >= 1 and isinstance(state["busy"], bool)


# --------------------------------------------------------------------------- 9. benchmark_model: the report frame


MODEL_CARD = {"kind": "transformer", "label_names": ["neg", "pos"], "prefix": "", "max_length": 16, "params": {},
              "seed": 0}
TEST_TEXTS = [f"test text {i}" for i in range(10)]
VALIDATION_TEXTS = ["val a", "val b", "val c"]


def _model_and_data(tmp_path):
    """A model folder (card + 0.75 MiB of .safetensors + 1 MiB that is not weights) and a prepared data folder
    with 10 test texts (labels 0..9 mod 2) and 3 validation texts."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    model_dir, prepared = tmp_path / "model", tmp_path / "prepared"
    model_dir.mkdir()
    prepared.mkdir()
    (model_dir / "textcls.json").write_text(json.dumps(MODEL_CARD), encoding="utf-8")
    (model_dir / "model.safetensors").write_bytes(b"\0" * (2**19 + 300))  # 0.750286 MiB in all: 0.75
    (model_dir / "extra.safetensors").write_bytes(b"\0" * 2**18)
    (model_dir / "optimizer.bin").write_bytes(b"\0" * 2**20)
    for split, texts in {"test": TEST_TEXTS, "validation": VALIDATION_TEXTS}.items():
        labels = [i % 2 for i in range(len(texts))]
        pq.write_table(pa.table({"text": pa.array(texts, pa.string()), "label": pa.array(labels, pa.int64()),
                                 "row": pa.array(range(len(texts)), pa.int64())}), prepared / f"{split}.parquet")
    (prepared / "meta.json").write_text(json.dumps({"label_names": ["neg", "pos"]}), encoding="utf-8")
    return model_dir, prepared


def _fake_model_run(monkeypatch, tmp_path, cfg, cuda: bool = False, failure: Exception | None = None):
    """benchmark_model with benchmark_device, the thread setting and the machine state replaced by recorders."""
    import torch

    from textcls.serving import runtime

    model_dir, prepared = _model_and_data(tmp_path)
    calls, threads_set, warned, during = [], [], [], []

    def device_run(device, variant_list, model_dir_, card, data, cfg_, threads, workdir, price, seed, probe=None,
                   served_logits=None):
        calls.append({"probe": probe, "device": device, "variants": variant_list, "model_dir": model_dir_, "card": card,
                      "data": data, "cfg": cfg_, "threads": threads, "workdir": workdir, "price": price, "seed": seed,
                      "workdir_exists": Path(workdir).is_dir()})
        if failure is not None:
            raise failure
        return {"status": "measured", "device": device}

    probes = []

    class FakeProbe:
        def __init__(self, model_dir_):
            self.model_dir, self.closed = model_dir_, False
            probes.append(self)

        def close(self):
            self.closed = True

    snapshots = iter(["start", "end"])
    monkeypatch.setattr(benchmark, "ProbeProcess", FakeProbe)
    monkeypatch.setattr(benchmark, "benchmark_device", device_run)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(runtime, "configure_threads", lambda uses_torch=True: 3)
    monkeypatch.setattr(torch, "set_num_threads", threads_set.append)
    monkeypatch.setattr(machine, "snapshot", lambda: next(snapshots))

    def fake_during(start, end, threads):
        during.append((start, end, threads))
        return {"seconds": 12.5, "busy": False, "busy_reasons": []}

    monkeypatch.setattr(machine, "during", fake_during)
    monkeypatch.setattr(machine, "warn_if_busy", lambda state, what: warned.append((state, what)))
    try:
        result = benchmark.benchmark_model("toy", "tiny", model_dir, prepared, {"cpu": "test"},
                                           {"params": 1234, "train_time_s": 5.0, "other": 1}, cfg, 7)
    finally:
        assert all(p.closed for p in probes)  # closed also when a device run fails
    return result, {"calls": calls, "threads_set": threads_set, "warned": warned, "during": during,
                    "model_dir": model_dir, "probes": probes}


def test_benchmark_model_reports_the_frame_and_serves_a_seeded_test_subsample(monkeypatch, tmp_path, caplog):
    """Check benchmark_model's report around benchmark_device: model facts, size of the .safetensors only (0.75 MiB),
    threads from the machine (cfg.threads 0), the seeded test subsample (4 of 10, in file order) and throughput
    sample (2 of those 4), an unavailable GPU, and the machine state and its time."""
    from textcls.config.params import BenchmarkParams

    cfg = BenchmarkParams(max_served_texts=4, throughput_texts=2, cpu_variants=["eager_fp32", "dynamic_int8"])
    with caplog.at_level(logging.INFO, logger=benchmark.__name__):
        result, seen = _fake_model_run(monkeypatch, tmp_path, cfg)
    rng = np.random.default_rng(7)
    chosen = np.sort(rng.choice(10, 4, replace=False))
    sample = np.sort(rng.choice(4, 2, replace=False))
    assert result == {"dataset": "toy", "model": "tiny", "kind": "transformer", "params": 1234, "train_time_s": 5.0,
                      "evaluate_variant": "eager_fp32",
                      "threads": 3, "hardware": {"cpu": "test"}, "served_test_texts": 4, "size_mb": 0.75,
                      "cpu": {"status": "measured", "device": "cpu"},
                      "cuda": {"status": "unavailable", "reason": "no CUDA GPU on this machine"},
                      "machine_state": {"seconds": 12.5, "busy": False, "busy_reasons": []},
                      "benchmark_time_s": 12.5}
    assert seen["threads_set"] == [3]
    assert seen["during"] == [("start", "end", 3)]
    assert seen["warned"] == [(result["machine_state"], "benchmark toy/tiny")]
    [call] = seen["calls"]
    assert (call["device"], call["variants"], call["threads"], call["price"], call["seed"]) == (
        "cpu", ["eager_fp32", "dynamic_int8"], 3, 0.10, 7)
    assert call["model_dir"] == seen["model_dir"] and isinstance(call["model_dir"], Path)
    assert call["card"].kind == "transformer" and call["cfg"] is cfg
    assert isinstance(call["workdir"], Path) and call["workdir"].name.startswith("textcls-bench-")
    assert call["workdir_exists"] and not call["workdir"].exists()  # a temporary folder, removed afterwards
    data = call["data"]
    assert set(data) == {"test", "test_labels", "validation", "validation_labels", "sample"}
    assert data["test"] == [TEST_TEXTS[i] for i in chosen]
    assert data["test_labels"].tolist() == [i % 2 for i in chosen]
    assert data["validation"] == VALIDATION_TEXTS and data["validation_labels"].tolist() == [0, 1, 0]
    assert data["sample"].tolist() == sample.tolist()
    assert "toy/tiny on cpu: eager_fp32, dynamic_int8" in [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("max_served", [None, 10, 11])
def test_benchmark_model_serves_every_test_text_unless_max_served_texts_is_smaller(monkeypatch, tmp_path,
                                                                                   max_served):
    """Check that max_served_texts None, equal to or above the test size serves all 10 texts in order, and that the
    throughput sample is then the first seeded draw (min(throughput_texts, 10) = 10: every text)."""
    from textcls.config.params import BenchmarkParams

    cfg = BenchmarkParams(max_served_texts=max_served, throughput_texts=50, threads=2)
    result, seen = _fake_model_run(monkeypatch, tmp_path, cfg)
    data = seen["calls"][0]["data"]
    assert data["test"] == TEST_TEXTS and result["served_test_texts"] == 10
    assert data["sample"].tolist() == list(range(10))
    assert result["threads"] == 2 and seen["threads_set"] == [2]  # cfg.threads wins over the machine's count


def test_benchmark_model_throughput_sample_is_seeded_after_the_subsample(monkeypatch, tmp_path):
    """Check that with all 10 texts served (max_served_texts 10) the throughput sample of 3 is the FIRST seeded
    draw: no subsample draw comes before it."""
    from textcls.config.params import BenchmarkParams

    cfg = BenchmarkParams(max_served_texts=10, throughput_texts=3)
    _, seen = _fake_model_run(monkeypatch, tmp_path, cfg)
    expected = np.sort(np.random.default_rng(7).choice(10, 3, replace=False))
    assert seen["calls"][0]["data"]["sample"].tolist() == expected.tolist()


def test_benchmark_model_runs_the_gpu_with_its_variants_and_price(monkeypatch, tmp_path):
    """Check that with a GPU both devices run, cuda with cfg.cuda_variants (no bf16 on this GPU) at its price."""
    from textcls.config.params import BenchmarkParams

    cfg = BenchmarkParams(cuda_variants=["eager_fp32", "eager_bf16", "eager_fp16"])
    result, seen = _fake_model_run(monkeypatch, tmp_path, cfg, cuda=True)
    assert [c["device"] for c in seen["calls"]] == ["cpu", "cuda"]
    [probe] = seen["probes"]  # one memory probe for the stage, started on the model, used by both devices
    assert probe.model_dir == seen["model_dir"] and all(c["probe"] is probe for c in seen["calls"])
    gpu = seen["calls"][1]
    assert gpu["variants"] == ["eager_fp32", "eager_fp16"] and gpu["price"] == 2.50
    assert result["cuda"] == {"status": "measured", "device": "cuda"}
    assert seen["calls"][0]["workdir"] == gpu["workdir"]  # one work folder: the ONNX export is shared


def test_benchmark_model_of_a_gpu_only_kind_still_runs_the_gpu(monkeypatch, tmp_path):
    """Check that a kind with nothing to run on the CPU still gets its GPU variants benchmarked."""
    from textcls import kinds
    from textcls.config.params import BenchmarkParams
    from textcls.records import Unmeasured

    class GpuOnly:
        @staticmethod
        def variants(device, cfg):
            return Unmeasured("not_applicable", "GPU-only model") if device == "cpu" else ["eager_fp16"]

    monkeypatch.setattr(kinds, "get", lambda kind: GpuOnly())
    result, seen = _fake_model_run(monkeypatch, tmp_path, BenchmarkParams(), cuda=True)
    assert result["cpu"] == {"status": "not_applicable", "reason": "GPU-only model"}
    assert [(c["device"], c["variants"]) for c in seen["calls"]] == [("cuda", ["eager_fp16"])]
    assert result["cuda"] == {"status": "measured", "device": "cuda"}
    assert len(seen["probes"]) == 1


def test_benchmark_model_of_a_kind_measured_nowhere_starts_no_probe(monkeypatch, tmp_path):
    """Check that a kind with no variant on any device gets both reasons and no memory probe process."""
    from textcls import kinds
    from textcls.config.params import BenchmarkParams
    from textcls.records import Unmeasured

    class Nowhere:
        @staticmethod
        def variants(device, cfg):
            return Unmeasured("not_applicable", f"nothing on {device}")

    monkeypatch.setattr(kinds, "get", lambda kind: Nowhere())
    result, seen = _fake_model_run(monkeypatch, tmp_path, BenchmarkParams(), cuda=True)
    assert result["cpu"]["reason"] == "nothing on cpu" and result["cuda"]["reason"] == "nothing on cuda"
    assert seen["calls"] == [] and seen["probes"] == []


def test_benchmark_model_out_of_memory_names_the_batch_sizes(monkeypatch, tmp_path):
    """Check that running out of memory inside a device run becomes one TextclsError naming the model, the
    batch sizes and the fix."""
    from textcls.config.params import BenchmarkParams
    from textcls.errors import TextclsError

    cfg = BenchmarkParams(batch_sizes=[1, 4])
    with pytest.raises(TextclsError) as info:
        _fake_model_run(monkeypatch, tmp_path, cfg, failure=MemoryError("no room"))
    message = str(info.value)
    assert message.startswith("Benchmarking tiny (benchmark.batch_sizes [1, 4]) ran out of memory")
    assert message.endswith("Fix: drop the largest of benchmark.batch_sizes in params.yaml.")


# --------------------------------------------------------------------------- 10. the error messages, word for word


def _message(fn, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_stats_error_messages_say_what_is_wrong():
    """Check the exact ValueError texts of the order-statistic functions (no values; q / confidence outside (0, 1))."""
    assert _message(stats.quantile_interval, [], 0.5) == "no values: measure at least one"
    assert _message(stats.quantile_upper_bound, [], 0.5) == "no values: measure at least one"
    assert _message(stats.quantile_interval, [1.0], 1.0, 0.9) == (
        "q and confidence must lie in (0, 1), got q=1.0, confidence=0.9")
    assert _message(stats.calls_needed, 0.5, 0.0) == "q and confidence must lie in (0, 1), got q=0.5, confidence=0.0"


def test_latency_error_messages_say_what_is_wrong():
    """Check the exact ValueError texts of the latency functions."""
    rep = latency.RepeatedLatency
    assert _message(rep.from_repeats, [[]]) == "no latency values: measure at least one call"
    assert _message(rep.from_repeats, [ms([1, -2])]) == "latencies must be finite and >= 0 (did the clock go backwards?)"
    assert _message(rep.from_repeats, []) == "no repeats: measure at least one"
    assert _message(latency.ratio_per_repeat, [], []) == (
        "speed-up needs the same, non-zero number of repeats for both variants")
    assert _message(latency.measure, lambda i: None, -1, 1, 0.0) == (
        "warmup >= 0, min_iterations >= 1 and min_seconds >= 0 are required")
    assert _message(latency.throughput, 1, 1, 0.0) == "seconds must be a positive finite number, got 0.0"
    assert _message(latency.cost_per_1k_texts, 0.0, 1.0) == "samples_per_s must be a finite number > 0, got 0.0"
    assert _message(latency.cost_per_1k_texts, 1.0, -1.0) == "price_per_hour must be >= 0, got -1.0"


# --------------------------------------------------------------------------- 11. latency edge cases


def test_from_repeats_accepts_a_zero_latency():
    """Check that a 0 s call (a clock too coarse to see it) is a valid latency: only negative times are refused."""
    lat = latency.RepeatedLatency.from_repeats([[0.0, 0.002]] * 6)
    assert lat.min == 0.0 and lat.max == pytest.approx(2.0) and lat.p50 == pytest.approx(1.0)


def test_from_sequence_of_one_call_is_one_repeat():
    """Check that a single call asked for 6 repeats is one repeat of one call (not an empty second repeat)."""
    lat = latency.RepeatedLatency.from_sequence([0.004], 6)
    assert (lat.repeats, lat.count, lat.p50, lat.p50_ci) == (1, 1, pytest.approx(4.0), None)
    exact = latency.RepeatedLatency.from_sequence(ms([1, 2, 3, 4, 5, 6]), 6)  # as many calls as repeats
    assert exact.repeats == 6 and exact.p50_ci == [pytest.approx(1.0), pytest.approx(6.0)]


def test_timer_overhead_defaults_time_10000_calls_after_an_untimed_warmup():
    """Check timer_overhead's defaults on a clock that moves 10 us per read: 10,000 timed calls (two reads each),
    one start read and one final read (min_seconds 0: no extra calls), mean 10 us per call."""
    reads = []

    def clock() -> float:
        reads.append(None)
        return len(reads) * 1e-5

    assert latency.timer_overhead(clock=clock) == pytest.approx(1e-5)
    assert len(reads) == 1 + 2 * 10_000 + 1


# --------------------------------------------------------------------------- 12. stats at float and binomial edges


def test_upper_bound_steps_to_the_exact_order_statistic_where_binom_ppf_is_off_by_one():
    """Check the two correction steps after scipy's float ppf search, at confidences one float away from a
    binomial cdf value: ppf overshoots (26 values, q 0.1: ppf says k 21, the exact k is 20) or undershoots
    (4 values, q 0.5, just above cdf(0) = 1/16: k 2, not 1; 1 value just above 1/2: no bound at all)."""
    assert stats.quantile_upper_bound(np.arange(1.0, 27), 0.1, 0.9999999999999987) == 20.0
    assert binom.cdf(19, 26, 0.1) >= 0.9999999999999987 > binom.cdf(18, 26, 0.1)
    just_above = float(np.nextafter(1 / 16, 1))
    assert stats.quantile_upper_bound([4.0, 1.0, 3.0, 2.0], 0.5, just_above) == 2.0
    assert stats.quantile_upper_bound([7.0], 0.5, float(np.nextafter(0.5, 1))) is None


def test_quantile_interval_tails_equal_to_the_binomial_cdf_count_as_covered():
    """Check equal tails exactly at a cdf value (confidence 0.875 on 4 values: each tail 1/16 = cdf(0) and
    1 - 1/16 = cdf(3)): the interval is [x(1), x(4)], not None; and the defaults are the median at 95 %."""
    assert stats.quantile_interval([4.0, 1.0, 3.0, 2.0], 0.5, 0.875) == (1.0, 4.0)
    assert stats.quantile_interval(list(range(1, 11))) == (2.0, 9.0)
    assert stats.quantile_interval(list(range(1, 6))) is None


def test_median_with_interval_uses_the_confidence_given():
    """Check that median_with_interval passes its confidence on: 5 values have a 90 % median interval."""
    assert stats.median_with_interval([4.0, 0.0, 3.0, 1.0, 2.0], 0.90) == {"median": 2.0, "low": 0.0, "high": 4.0}


@pytest.mark.parametrize("q, confidence", [(0.0, 0.95), (0.5, 1.0), (0.5, 1.5)])
def test_calls_needed_refuses_the_edges_with_its_own_message(q, confidence):
    """Check that q = 0 and confidence >= 1 are refused by the range check (not by a math domain error)."""
    assert _message(stats.calls_needed, q, confidence) == (
        f"q and confidence must lie in (0, 1), got q={q!r}, confidence={confidence!r}")


def test_ratio_per_repeat_is_the_ratio_of_the_interpolated_medians():
    """Check that each repeat's speed-up divides the medians (50th percentiles, interpolated: 15 ms of 10 and 20 ms,
    3 ms of 2 and 4 ms): exactly 5, and 1/5 the other way round."""
    reference, variant = [ms([10, 20])] * 6, [ms([2, 4])] * 6
    assert latency.ratio_per_repeat(reference, variant) == {"median": pytest.approx(5.0, rel=1e-12),
                                                            "low": pytest.approx(5.0, rel=1e-12),
                                                            "high": pytest.approx(5.0, rel=1e-12)}
    assert latency.ratio_per_repeat(variant, reference)["median"] == pytest.approx(0.2, rel=1e-12)


# --------------------------------------------------------------------------- 13. benchmark_device on recorders


def _recorded_device_run(monkeypatch, n_test: int, seed: int = 3, sample_size: int = 35):
    """benchmark_device over recording stand-ins: build_backend (prepare 1.23456 s), a clock for the cold start
    (the first call of a backend takes 0.5 s), memory; variants eager_fp32 (right on 2 of the test texts),
    onnx_int8 (fails to build, a 400-character message), onnx_fp32 (fails to build, no message) and
    dynamic_int8 (right on every text, fails when batched, i.e. in the throughput sweep)."""
    from types import SimpleNamespace

    from textcls.config.params import BenchmarkParams
    from textcls.serving import inference

    test = [f"test {i}" for i in range(n_test)]
    validation = ["val a", "val b", "val c"]
    labels = np.zeros(n_test, dtype=int)
    every = test + validation
    clock = FakeClock(10.0)
    log, built, memory_calls = [], [], []

    def make(name):
        state = {"cold": True}

        def backend(batch):
            if state.pop("cold", False):
                clock.advance(0.5)
            idx = text_index(batch)
            log.append((name, idx.tolist()))
            if name == "dynamic_int8" and len(idx) > 1:
                raise RuntimeError("batched inference is broken")
            wrong = (idx >= 2) & (idx < n_test) if name == "eager_fp32" else np.zeros(len(idx), dtype=bool)
            return np.stack([np.where(wrong, 0.0, 1.2345678), np.where(wrong, 1.0, 0.0)], axis=1)
        return backend

    def build_backend(variant, model_dir, card, device, threads, workdir):
        built.append((variant, model_dir, card, device, threads, workdir))
        if variant == "onnx_int8":
            raise RuntimeError("x" * 400 + "\nsecond line")
        if variant == "onnx_fp32":
            raise RuntimeError()
        return make(variant), 1.23456

    encoders = []

    def make_encoder(model_dir, card):
        encoders.append((model_dir, card))
        return WordEncoder(every)

    def memory(model_dir, variants, device, threads, workdir, texts, batch_size, probe=None):
        memory_calls.append((model_dir, variants, device, threads, workdir, texts, batch_size))
        return {v: {"model_rss_mb": 10.0} for v in variants}

    monkeypatch.setattr(inference, "make_encoder", make_encoder)
    monkeypatch.setattr(inference, "build_backend", build_backend)
    monkeypatch.setattr(benchmark, "memory", memory)
    monkeypatch.setattr(benchmark, "time", SimpleNamespace(perf_counter=clock))
    data = {"test": test, "test_labels": labels, "validation": validation, "validation_labels": np.array([0, 1, 0]),
            "sample": np.arange(sample_size) % n_test}
    cfg = BenchmarkParams(warmup=1, repeats=6, batch_sizes=[1, 2], throughput_min_seconds=0.0)
    card = object()
    out = benchmark.benchmark_device("cpu", ["eager_fp32", "onnx_int8", "onnx_fp32", "dynamic_int8"], Path("m"), card,
                                     data, cfg, 2, Path("w"), 3.6, seed=seed)
    return out, {"log": log, "built": built, "memory": memory_calls, "encoders": encoders, "card": card,
                 "test": test, "labels": labels}


def test_benchmark_device_passes_its_arguments_on_and_records_failures(monkeypatch, caplog):
    """Check what benchmark_device hands to the encoder, the backends and the memory probe, the prepare and cold
    start seconds (rounded to ms), the one-line error rows (300 characters at most; none for an empty message)
    with a warning each, and that a later failure (in the throughput sweep) also becomes an error row."""
    with caplog.at_level(logging.WARNING, logger=benchmark.__name__):
        out, seen = _recorded_device_run(monkeypatch, n_test=7)
    card = seen["card"]
    assert seen["encoders"] == [(Path("m"), card)]
    assert seen["built"] == [(v, Path("m"), card, "cpu", 2, Path("w"))
                             for v in ("eager_fp32", "onnx_int8", "onnx_fp32", "dynamic_int8")]
    rows = out["variants"]
    assert rows["onnx_int8"] == {"error": "RuntimeError: " + "x" * 300}
    assert rows["onnx_fp32"] == {"error": "RuntimeError: "}
    assert rows["dynamic_int8"] == {"error": "RuntimeError: batched inference is broken"}
    eager = rows["eager_fp32"]
    assert (eager["prepare_s"], eager["cold_start_s"]) == (1.235, 1.735)
    assert seen["log"][0] == ("eager_fp32", [7])  # the cold start predicts the first validation text alone
    assert eager["validation_accuracy"] == 0.666667  # 2 of 3, to 6 decimals
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["onnx_int8 failed on cpu: " + "x" * 400 + "\nsecond line", "onnx_fp32 failed on cpu: ",
                        "dynamic_int8 failed on cpu: batched inference is broken"]
    [probe] = seen["memory"]
    assert probe[:5] == (Path("m"), ["eager_fp32"], "cpu", 2, Path("w"))  # one probe, failed variants left out
    assert probe[5] == [seen["test"][i % 7] for i in range(32)] and probe[6] == 2  # the largest batch size


def test_benchmark_device_numbers_are_rounded_and_seeded(monkeypatch):
    """Check the reference row on 7 served texts (right on 2): accuracy 2/7 to 6 decimals, model-only latency
    beside end-to-end, the speed-up and its interval to 3 decimals, the comparison with the seed given; and that
    the same seed serves in the same order."""
    out, seen = _recorded_device_run(monkeypatch, n_test=7)
    eager = out["variants"]["eager_fp32"]
    assert eager["accuracy"] == 0.285714 and eager["batch_size"] == 1
    assert eager["model_latency_ms"]["count"] == 7 and eager["latency_ms"]["count"] == 7
    assert eager["model_latency_ms"]["p50"] <= eager["latency_ms"]["p50"]
    assert eager["speedup_p50"] == 1.0 and eager["speedup_p50_ci"] == [1.0, 1.0]
    assert isinstance(eager["speedup_p50"], float) and all(isinstance(v, float) for v in eager["speedup_p50_ci"])
    logits = np.stack([np.where(np.arange(7) >= 2, 0.0, 1.2345678), (np.arange(7) >= 2) * 1.0], axis=1)
    assert eager["vs_reference"] == benchmark.compare({"logits": logits}, {"logits": logits}, seen["labels"], 3)
    again, seen_again = _recorded_device_run(monkeypatch, n_test=7)
    assert seen_again["log"] == seen["log"]
    assert out["best_variant"] == "eager_fp32"


def test_benchmark_device_with_fewer_texts_than_six_rounds_has_no_speedup_interval(monkeypatch):
    """Check that 5 served texts (5 rounds, too few for a 95 % interval) give speedup_p50_ci None, not a list."""
    out, _ = _recorded_device_run(monkeypatch, n_test=5, sample_size=5)
    eager = out["variants"]["eager_fp32"]
    assert eager["speedup_p50"] == 1.0 and eager["speedup_p50_ci"] is None
    assert eager["latency_ms"]["repeats"] == 5


def test_speedup_is_rounded_to_three_decimals(monkeypatch):
    """Check that a variant's speed-up and interval have at most 3 decimals (a variant that is right on every text
    and never fails is served beside the reference; its real timings make the value itself vary)."""
    from textcls.config.params import BenchmarkParams
    from textcls.serving import inference
    import time as real_time

    texts = [f"t {i}" for i in range(8)]

    def make(delay):
        def backend(batch):
            real_time.sleep(delay)
            return np.zeros((len(batch["input_ids"]), 2))
        return backend

    monkeypatch.setattr(inference, "make_encoder", lambda model_dir, card: WordEncoder(texts))
    monkeypatch.setattr(inference, "build_backend", lambda variant, *a: (make(0.003 if variant == "eager_fp32"
                                                                              else 0.0011), 0.0))
    monkeypatch.setattr(benchmark, "memory", lambda model_dir, variants, *a, probe=None: {v: {} for v in variants})
    data = {"test": texts, "test_labels": np.zeros(8, dtype=int), "validation": texts[:2],
            "validation_labels": np.zeros(2, dtype=int), "sample": np.arange(8)}
    cfg = BenchmarkParams(warmup=0, repeats=6, batch_sizes=[1], throughput_min_seconds=0.0)
    out = benchmark.benchmark_device("cpu", ["eager_fp32", "dynamic_int8"], Path("m"), None, data, cfg, 1, Path("w"),
                                     3.6, seed=0)
    row = out["variants"]["dynamic_int8"]
    values = [row["speedup_p50"], *row["speedup_p50_ci"]]
    assert all(isinstance(v, float) and round(v, 3) == v for v in values)
    assert row["speedup_p50"] > 0


def test_compare_is_seeded_and_rounded_to_six_decimals():
    """Check that compare's bootstrap uses the seed given (200 texts where the interval depends on it) and that
    agreement and the largest logit difference are rounded to exactly 6 decimals."""
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 200)
    ref = {"logits": np.eye(2, dtype=np.float64)[np.where(rng.random(200) < 0.8, labels, 1 - labels)]}
    row = {"logits": np.eye(2, dtype=np.float64)[np.where(rng.random(200) < 0.7, labels, 1 - labels)] * 1.2345678}
    out = benchmark.compare(ref, row, labels, seed=11)
    ok, ref_ok = row["logits"].argmax(1) == labels, ref["logits"].argmax(1) == labels
    boot = statistics.paired_bootstrap_diff(ok, ref_ok, benchmark.BOOTSTRAP_RESAMPLES, 11)
    other = statistics.paired_bootstrap_diff(ok, ref_ok, benchmark.BOOTSTRAP_RESAMPLES, 12)
    assert (boot["low"], boot["high"]) != (other["low"], other["high"])  # the seed matters here
    assert (out["low"], out["high"]) == (boot["low"], boot["high"])
    agreement = float((row["logits"].argmax(1) == ref["logits"].argmax(1)).mean())
    assert out["agreement"] == round(agreement, 6)
    assert out["max_abs_logit_diff"] == 1.234568
    seven = np.zeros(7, dtype=int)
    few = benchmark.compare({"logits": np.eye(2)[seven]}, {"logits": np.eye(2)[[0, 0, 0, 1, 1, 1, 1]]}, seven, 0)
    assert few["agreement"] == 0.428571  # 3 of 7, to 6 decimals


def test_length_buckets_keep_ties_in_input_order_for_long_lists():
    """Check the stable sort on 100 texts of 3 lengths (a quicksort would reorder ties): ties stay in input order."""
    lengths = [(7 * i) % 3 for i in range(100)]
    buckets = benchmark.length_buckets(lengths, 10)
    expected = sorted(range(100), key=lambda i: (lengths[i], i))
    assert np.concatenate(buckets).tolist() == expected
    assert [len(b) for b in buckets] == [10] * 10


def test_throughput_stops_exactly_at_min_seconds_and_handles_no_tokens():
    """Check that the sweep stops once min_seconds is reached exactly (2 batches of 0.25 s for 0.5 s), that an
    encoder giving no tokens at all reports padding_share 0.0, and that the best batch size can be the smaller."""
    texts = ["a", "b"]
    clock = FakeClock()
    encoder = WordEncoder(texts)

    def backend(batch):
        clock.advance(0.25 if len(batch["input_ids"]) == 1 else 2.0)
        return np.zeros((len(batch["input_ids"]), 2))

    result = benchmark.measure_throughput(backend, encoder, texts, [1, 2], 0.5, SequentialRng(), clock=clock)
    assert result["throughput"]["1"]["batches"] == 2
    assert result["best_batch_size"] == 1 and result["samples_per_s"] == 4.0

    class NoTokens(WordEncoder):
        @staticmethod
        def real_tokens(batch):
            return 0

        @staticmethod
        def padded_tokens(batch):
            return 0

    empty = benchmark.measure_throughput(backend, NoTokens(texts), texts, [1], 0.0, SequentialRng(), clock=clock)
    assert empty["padding_share"] == 0.0 and empty["tokens_per_s"] == 0.0


def test_throughput_of_an_encoder_without_padded_tokens_counts_no_padding():
    """Check that an encoder without padded_tokens (inputs that are never padded) gives padding_share 0.0."""
    texts = ["a", "b b b"]
    clock = FakeClock()

    class Unpadded:
        """WordEncoder's batches and real_tokens, no padded_tokens."""

        def __init__(self):
            self.inner = WordEncoder(texts)
            self.real_tokens = self.inner.real_tokens

        def __call__(self, batch_texts):
            return self.inner(batch_texts)

    encoder = Unpadded()
    assert not hasattr(encoder, "padded_tokens")

    def backend(batch):
        clock.advance(0.5)
        return np.zeros((len(batch["input_ids"]), 2))

    result = benchmark.measure_throughput(backend, encoder, texts, [2], 0.0, SequentialRng(), clock=clock)
    assert result["padding_share"] == 0.0 and result["tokens_per_s"] == 8.0  # 4 real tokens in 0.5 s


def test_serve_interleaved_logits_are_float32():
    """Check that the interleaved logits table is float32 whatever the backends return."""
    _, out, _ = _interleaved(seed=0)
    assert all(row["logits"].dtype == np.float32 for row in out.values())


def test_summarize_deltas_are_rounded_to_six_decimals_and_say_what_chose():
    """Check the deltas to exactly 6 decimals (5/7 - 6/7) and the chosen_on text."""
    rows = {"eager_fp32": row(10.0, 6 / 7, 6 / 7), "onnx_int8": row(3.0, 5 / 7, 5 / 7)}
    out = benchmark.summarize(rows, 0.5)
    assert out["variants"]["onnx_int8"]["validation_accuracy_delta"] == -0.142857
    assert out["variants"]["onnx_int8"]["accuracy_delta"] == -0.142857
    assert out["chosen_on"] == "validation accuracy (batch 1), then median p50"
