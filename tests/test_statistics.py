"""Bootstrap intervals, McNemar's exact test, calibration and the leaderboard's paired comparisons."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import accuracy_score

from textcls.report import leaderboard

from textcls.eval import statistics


def test_mcnemar_exact_matches_the_binomial_tail_by_hand():
    """Check that 10 vs 2 discordant pairs give p = 2 * (C(12,10)+C(12,11)+C(12,12)) / 2^12."""
    a = np.array([1] * 10 + [0] * 2 + [1] * 5, bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 5, bool)
    result = statistics.mcnemar_exact(a, b)
    assert (result["a_only"], result["b_only"]) == (10, 2)
    assert result["p_value"] == pytest.approx(2 * (66 + 12 + 1) / 4096)


def test_mcnemar_without_discordant_pairs_is_not_significant():
    """Check that identical correctness gives p = 1, and mismatched shapes raise."""
    same = np.array([1, 0, 1], bool)
    assert statistics.mcnemar_exact(same, same)["p_value"] == 1.0
    with pytest.raises(ValueError):
        statistics.mcnemar_exact(same, same[:2])


def test_bootstrap_ci_brackets_the_estimate_and_is_seeded():
    """Check that the accuracy interval contains the point estimate, narrows with n and repeats for a seed."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    preds = np.where(rng.random(2000) < 0.8, labels, 1 - labels)
    ci = statistics.bootstrap_ci(labels, preds, accuracy_score, 500, seed=1)
    acc = accuracy_score(labels, preds)
    assert ci["low"] < acc < ci["high"] and ci["high"] - ci["low"] < 0.05
    assert ci == statistics.bootstrap_ci(labels, preds, accuracy_score, 500, seed=1)
    small = statistics.bootstrap_ci(labels[:100], preds[:100], accuracy_score, 500, seed=1)
    assert small["high"] - small["low"] > ci["high"] - ci["low"]
    with pytest.raises(ValueError):
        statistics.bootstrap_ci(labels[:0], preds[:0], accuracy_score, 100, seed=1)


def test_paired_bootstrap_diff_is_the_mean_difference():
    """Check that the paired difference is acc(A) - acc(B) and its interval contains it."""
    a = np.array([1, 1, 1, 1, 0] * 40, bool)
    b = np.array([1, 0, 1, 0, 0] * 40, bool)
    result = statistics.paired_bootstrap_diff(a, b, 500, seed=0)
    assert result["diff"] == pytest.approx(0.4)
    assert result["low"] <= 0.4 <= result["high"] and result["low"] > 0


def test_calibration_metrics_by_hand():
    """Check ECE and Brier on a tiny example computed by hand."""
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 1])
    # bins of width 0.1 (10 bins): confidence 0.9 -> bin 9 (acc 0.5), 0.6 -> bin 6 (acc 1.0)
    rows = statistics.reliability_bins(labels, probs, 10)
    assert [(r["bin"], r["count"]) for r in rows] == [(6, 2), (9, 2)]
    assert statistics.expected_calibration_error(labels, probs, 10) == pytest.approx((2 * 0.4 + 2 * 0.4) / 4)
    brier = ((0.1**2 + 0.1**2) + (0.9**2 + 0.9**2) + (0.4**2 + 0.4**2) + (0.4**2 + 0.4**2)) / 4
    assert statistics.brier_score(labels, probs) == pytest.approx(brier)


def test_perfectly_confident_and_right_is_perfectly_calibrated():
    """Check that one-hot correct predictions have ECE 0 and Brier 0."""
    labels = np.array([0, 1, 2])
    probs = np.eye(3)
    assert statistics.expected_calibration_error(labels, probs, 15) == 0
    assert statistics.brier_score(labels, probs) == 0


def _predictions(folder, dataset, model, labels, preds):
    path = folder / dataset / f"{model}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"row": np.arange(len(labels)), "label": labels, "pred": preds}), path)


def test_compare_with_best_marks_significance(tmp_path):
    """Check that a clearly worse model is significant vs the best and a near-identical one is not."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 1000)
    best = np.where(rng.random(1000) < 0.95, labels, 1 - labels)
    close = best.copy()
    close[:3] = 1 - close[:3]  # 3 flips: not a real difference
    worse = np.where(rng.random(1000) < 0.75, labels, 1 - labels)
    for model, preds in (("best", best), ("close", close), ("worse", worse)):
        _predictions(tmp_path, "toy", model, labels, preds)
    table = pd.DataFrame([{"dataset": "toy", "model": m, "rank": r, "accuracy": float((p == labels).mean()),
                           "params": 1, "train_time_s": 0.1}
                          for r, (m, p) in enumerate((("best", best), ("close", close), ("worse", worse)), 1)])
    out = leaderboard.compare_with_best(table, tmp_path, 300, seed=0, alpha=0.05).set_index("model")
    assert out.loc["best", "vs_best_diff"] is None
    assert out.loc["worse", "vs_best_significant"] is True and out.loc["worse", "vs_best_diff"] < -0.1
    assert out.loc["close", "vs_best_significant"] is False
    md = leaderboard.to_markdown(out.reset_index().assign(entry="", comparable_to_published=True), "accuracy")
    assert "(not significant)" in md and "(significant)" in md
    json.dumps(leaderboard.to_metrics_json(out.reset_index(), ["accuracy"]), allow_nan=False)


# --------------------------------------------------------------------------- known answers (mutation tests)
# Each test below pins one behaviour a small code change would break (`make mutation`, scripts/mutation.py).


def _accuracy(labels, preds):
    """Accuracy without sklearn's overhead (the simulations call it ~10^5 times)."""
    return float((labels == preds).mean())


def _counter_metric(offset=0.0):
    """A 'metric' that returns offset + 0, 1, 2, ... on successive calls: the resampled values are known."""
    calls = {"n": 0}

    def metric(labels, preds):
        value = calls["n"] + offset
        calls["n"] += 1
        return value

    return metric


@pytest.mark.parametrize("level, low, high", [(0.95, 25.0, 975.0), (0.90, 50.0, 950.0), (0.50, 250.0, 750.0)])
def test_bootstrap_ci_is_the_central_percentile_interval_of_the_resampled_values(level, low, high):
    """Check that with resampled values 0..1000 the interval is their (1-level)/2 and (1+level)/2 percentiles."""
    labels = np.zeros(5)
    ci = statistics.bootstrap_ci(labels, labels, _counter_metric(), 1001, seed=0, level=level)
    assert ci == {"low": low, "high": high}


def test_bootstrap_ci_rounds_to_six_decimals():
    """Check that both ends are rounded to 6 decimals (values 0.12345678 + 0..1000 -> 25.123457, 975.123457)."""
    labels = np.zeros(5)
    ci = statistics.bootstrap_ci(labels, labels, _counter_metric(0.12345678), 1001, seed=0)
    assert ci == {"low": 25.123457, "high": 975.123457}


def test_bootstrap_ci_resamples_every_example():
    """Check that example 0 is drawn too: for [wrong, right] the 95% interval of accuracy is [0, 1].

    Each resample of 2 is both-wrong (1/4), one of each (1/2) or both-right (1/4), so with 400 resamples
    the 2.5th percentile is 0 and the 97.5th is 1; never drawing example 0 would give [1, 1].
    """
    ci = statistics.bootstrap_ci(np.array([0, 1]), np.array([1, 1]), _accuracy, 400, seed=0)
    assert ci == {"low": 0.0, "high": 1.0}


def test_bootstrap_ci_of_one_example_and_bad_lengths():
    """Check that one example gives a zero-width interval, and empty or unequal inputs raise with the reason."""
    assert statistics.bootstrap_ci(np.array([1]), np.array([1]), _accuracy, 50, seed=0) == {"low": 1.0, "high": 1.0}
    message = r"^labels and preds must be non-empty and of equal length$"
    with pytest.raises(ValueError, match=message):
        statistics.bootstrap_ci(np.array([0, 1, 1]), np.array([0, 1]), _accuracy, 50, seed=0)
    with pytest.raises(ValueError, match=message):
        statistics.bootstrap_ci(np.array([]), np.array([]), _accuracy, 50, seed=0)


def _coverage(level: float, simulations: int = 200, n: int = 200, true_accuracy: float = 0.8) -> float:
    """Share of simulated test sets (each of n examples, right with probability true_accuracy) whose
    bootstrap interval at `level` contains true_accuracy."""
    rng = np.random.default_rng(17)
    covered = 0
    for i in range(simulations):
        labels = rng.integers(0, 2, n)
        preds = np.where(rng.random(n) < true_accuracy, labels, 1 - labels)
        ci = statistics.bootstrap_ci(labels, preds, _accuracy, 400, seed=i, level=level)
        covered += ci["low"] <= true_accuracy <= ci["high"]
    return covered / simulations


def test_bootstrap_ci_covers_the_true_accuracy_at_its_level():
    """Check by simulation that the 95% interval covers a known true accuracy (0.8) in 93-97% of 200 test sets,
    and that a 90% interval covers it less often: it would fail that 95% check.

    Binomial noise on 200 simulations is about 1.5 points; the percentile bootstrap of a proportion at
    n=200 is close to nominal.
    """
    coverage_95 = _coverage(0.95)
    coverage_90 = _coverage(0.90)
    assert 0.93 <= coverage_95 <= 0.97
    assert coverage_90 < 0.93 and coverage_90 < coverage_95


def test_bootstrap_ci_narrower_at_a_lower_level_and_nested():
    """Check that the 90% interval lies inside the 95% one and the 99% one around it (same seed)."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 300)
    preds = np.where(rng.random(300) < 0.7, labels, (labels + 1) % 3)
    ci = {level: statistics.bootstrap_ci(labels, preds, _accuracy, 500, seed=5, level=level)
          for level in (0.90, 0.95, 0.99)}
    assert ci[0.99]["low"] < ci[0.95]["low"] < ci[0.90]["low"] < ci[0.90]["high"] < ci[0.95]["high"] < ci[0.99]["high"]


@pytest.mark.parametrize("a_only, b_only", [(0, 6), (6, 0), (7, 2), (5, 20), (1, 0), (3, 3), (12, 12)])
def test_mcnemar_exact_is_the_two_sided_binomial_test_on_discordant_pairs(a_only, b_only):
    """Check the counts and p against scipy's exact binomial test (p = 0.5), whatever the concordant pairs."""
    from scipy.stats import binomtest

    both, neither = 4, 3
    correct_a = np.array([1] * a_only + [0] * b_only + [1] * both + [0] * neither, bool)
    correct_b = np.array([0] * a_only + [1] * b_only + [1] * both + [0] * neither, bool)
    result = statistics.mcnemar_exact(correct_a, correct_b)
    assert (result["a_only"], result["b_only"]) == (a_only, b_only)
    assert result["p_value"] == pytest.approx(binomtest(a_only, a_only + b_only, 0.5).pvalue, rel=1e-12)


def test_mcnemar_exact_known_values():
    """Check p = 2 * 0.5**6 = 0.03125 for 0 vs 6 discordant pairs, and p = 1 for ties and for no discordance."""
    a, b = np.zeros(10, bool), np.zeros(10, bool)
    b[:6] = True
    assert statistics.mcnemar_exact(a, b) == {"a_only": 0, "b_only": 6, "p_value": 0.03125}
    tie_a = np.array([1, 1, 0, 0, 1], bool)
    tie_b = np.array([0, 0, 1, 1, 1], bool)
    assert statistics.mcnemar_exact(tie_a, tie_b) == {"a_only": 2, "b_only": 2, "p_value": 1.0}
    assert statistics.mcnemar_exact(tie_a, tie_a) == {"a_only": 0, "b_only": 0, "p_value": 1.0}


def test_mcnemar_exact_accepts_0_1_numbers_and_lists():
    """Check that correctness given as 0/1 floats or plain lists counts the same as booleans."""
    a = [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    b = [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    expected = statistics.mcnemar_exact(np.array(a, bool), np.array(b, bool))
    assert (expected["a_only"], expected["b_only"]) == (3, 1)
    assert statistics.mcnemar_exact(np.array(a), np.array(b)) == expected
    assert statistics.mcnemar_exact([int(x) for x in a], [int(x) for x in b]) == expected


def test_mcnemar_exact_shape_mismatch_names_the_problem():
    """Check the error message when the two models were scored on different examples."""
    with pytest.raises(ValueError, match=r"^both models must be scored on the same examples$"):
        statistics.mcnemar_exact(np.ones(3, bool), np.ones(4, bool))


def test_paired_bootstrap_diff_is_a_minus_b():
    """Check the sign: A better than B gives a positive difference and interval; swapping negates both."""
    a = np.array([1, 1, 1, 0] * 25, bool)  # accuracy 0.75
    b = np.array([1, 0, 0, 0] * 25, bool)  # accuracy 0.25
    ab = statistics.paired_bootstrap_diff(a, b, 300, seed=0)
    ba = statistics.paired_bootstrap_diff(b, a, 300, seed=0)
    assert ab["diff"] == 0.5 and ba["diff"] == -0.5
    assert 0 < ab["low"] < 0.5 < ab["high"]
    assert (ba["low"], ba["high"]) == pytest.approx((-ab["high"], -ab["low"]), abs=1e-6)


def test_paired_bootstrap_diff_resamples_pairs():
    """Check that pairs are resampled jointly: identical correctness gives a zero-width interval at 0, and a
    constant per-example gap of 0.25 gives exactly [0.25, 0.25]; resampling A and B independently would not."""
    rng = np.random.default_rng(1)
    same = rng.random(200) < 0.6
    assert statistics.paired_bootstrap_diff(same, same, 300, seed=0) == {"diff": 0.0, "low": 0.0, "high": 0.0}
    scores_b = rng.random(200)
    gap = statistics.paired_bootstrap_diff(scores_b + 0.25, scores_b, 300, seed=0)
    assert gap == {"diff": 0.25, "low": 0.25, "high": 0.25}
    # the same data resampled unpaired has a clearly non-zero spread: the test above can tell the two apart
    draw = np.random.default_rng(0)
    unpaired = [same[draw.integers(0, 200, 200)].mean() - same[draw.integers(0, 200, 200)].mean() for _ in range(300)]
    assert np.percentile(unpaired, 97.5) - np.percentile(unpaired, 2.5) > 0.1


def test_paired_bootstrap_diff_draws_every_pair_and_rounds():
    """Check that pair 0 is drawn (2 pairs with differences [1, 0]: the 95% interval is [0, 1]), and that the
    difference is rounded to 6 decimals (1/3 -> 0.333333)."""
    assert statistics.paired_bootstrap_diff([1, 0], [0, 0], 400, seed=0) == {"diff": 0.5, "low": 0.0, "high": 1.0}
    assert statistics.paired_bootstrap_diff([1, 0, 0], [0, 0, 0], 50, seed=0)["diff"] == 0.333333


@pytest.mark.parametrize("level", [0.95, 0.80])
def test_paired_bootstrap_diff_is_the_bootstrap_interval_of_the_differences(level):
    """Check that the paired interval is the percentile bootstrap (bootstrap_ci, same seed and level) of the
    mean per-example difference: same resampling, same percentiles, same rounding."""
    rng = np.random.default_rng(2)
    a, b = rng.random(60), rng.random(60)
    diff = a - b
    paired = statistics.paired_bootstrap_diff(a, b, 400, seed=9, level=level)
    reference = statistics.bootstrap_ci(diff, diff, lambda d, _: float(d.mean()), 400, seed=9, level=level)
    assert (paired["low"], paired["high"]) == (reference["low"], reference["high"])
    assert paired["low"] != round(paired["low"], 5) or paired["high"] != round(paired["high"], 5)  # 6 real digits
    assert paired["diff"] == round(float(diff.mean()), 6)


def test_paired_bootstrap_diff_honours_seed_and_level():
    """Check that a seed repeats exactly, another seed differs, and a lower level gives a nested, narrower interval."""
    rng = np.random.default_rng(4)
    a, b = rng.random(300) < 0.8, rng.random(300) < 0.7
    first = statistics.paired_bootstrap_diff(a, b, 300, seed=11)
    assert statistics.paired_bootstrap_diff(a, b, 300, seed=11) == first
    assert statistics.paired_bootstrap_diff(a, b, 300, seed=12) != first
    narrow = statistics.paired_bootstrap_diff(a, b, 300, seed=11, level=0.8)
    assert first["low"] < narrow["low"] < narrow["high"] < first["high"]


def test_reliability_bin_edges():
    """Check the bin of boundary confidences: 1.0 goes to the last bin, 0.5 with 2 bins to bin 1, 0.75 with
    2 bins to bin 1 and 0.55 with 10 bins to bin 5 (each bin is [b/bins, (b+1)/bins), the last one closed)."""
    def bins_of(confidence: float, bins: int) -> list[int]:
        probs = np.array([[confidence, (1 - confidence) / 2, (1 - confidence) / 2]])  # max is `confidence`
        return [r["bin"] for r in statistics.reliability_bins(np.array([0]), probs, bins)]

    assert bins_of(1.0, 10) == [9]
    assert bins_of(1.0, 2) == [1]
    assert bins_of(0.5, 2) == [1]
    assert bins_of(0.4999, 2) == [0]
    assert bins_of(0.75, 2) == [1]
    assert bins_of(0.55, 10) == [5]
    assert bins_of(0.95, 10) == [9]


def test_reliability_bins_rows_by_hand():
    """Check each row's mean confidence, accuracy (argmax == label) and count, rounded to 6 decimals."""
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.8, 0.2], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 1])
    rows = statistics.reliability_bins(labels, probs, 4)
    # confidences 0.9, 0.8, 0.8, 0.7 -> bin 3 ([0.75, 1]) gets the first three (2 right), bin 2 the last (right)
    assert rows == [{"bin": 2, "confidence": 0.7, "accuracy": 1.0, "count": 1},
                    {"bin": 3, "confidence": 0.833333, "accuracy": 0.666667, "count": 3}]


def test_ece_and_brier_by_hand_three_classes():
    """Check ECE and the multi-class Brier score on 3 examples of 3 classes, computed by hand."""
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.5, 0.25]])
    labels = np.array([0, 1, 1])
    # confidences 0.7 (right), 0.6 (wrong), 0.5 (right); 2 bins: all in bin 1 ([0.5, 1]):
    # mean confidence 0.6, accuracy 2/3 -> ECE = |0.666667 - 0.6| = 0.066667 (the rows are rounded)
    assert statistics.expected_calibration_error(labels, probs, 2) == pytest.approx(0.666667 - 0.6, abs=1e-9)
    # 10 bins: one example per bin: |1 - 0.7| + |0 - 0.6| + |1 - 0.5| over 3
    assert statistics.expected_calibration_error(labels, probs, 10) == pytest.approx((0.3 + 0.6 + 0.5) / 3)
    brier = ((0.3**2 + 0.2**2 + 0.1**2) + (0.1**2 + 0.7**2 + 0.6**2) + (0.25**2 + 0.5**2 + 0.25**2)) / 3
    assert statistics.brier_score(labels, probs) == pytest.approx(brier)


def test_ece_is_count_weighted():
    """Check that ECE weights each bin by its count: 3 examples at gap 0.1 and 1 at gap 0.5 -> 0.2, not 0.3."""
    probs = np.array([[0.9, 0.1]] * 3 + [[0.5, 0.5]])
    labels = np.array([0, 0, 0, 1])  # bin 9: conf 0.9, acc 1 (gap 0.1); bin 5: conf 0.5, acc 0 (argmax 0 != 1)
    assert statistics.expected_calibration_error(labels, probs, 10) == pytest.approx((3 * 0.1 + 1 * 0.5) / 4)


def test_brier_score_of_a_confident_mistake_is_two():
    """Check that a one-hot wrong prediction scores 2 (two classes each off by 1) and a uniform one 1 - 1/k."""
    assert statistics.brier_score(np.array([1]), np.array([[1.0, 0.0]])) == 2.0
    assert statistics.brier_score(np.array([2]), np.full((1, 4), 0.25)) == pytest.approx(0.75)
