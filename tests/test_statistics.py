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
