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
                      "min", "max", "confidence"}
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
