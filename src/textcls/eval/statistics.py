"""How sure are the numbers? Bootstrap intervals, paired tests between models, and calibration.

Plain functions over per-example arrays (``labels``, predicted ``preds`` or class ``probs``);
every resampling takes a seed, so results are reproducible.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def bootstrap_ci(labels: np.ndarray, preds: np.ndarray, metric: Callable[[np.ndarray, np.ndarray], float],
                 resamples: int, seed: int, level: float = 0.95) -> dict:
    """Percentile bootstrap interval of ``metric(labels, preds)`` over resampled test examples."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    if len(labels) == 0 or len(labels) != len(preds):
        raise ValueError("labels and preds must be non-empty and of equal length")
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, len(labels), len(labels))
        values[i] = metric(labels[idx], preds[idx])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return {"low": round(float(low), 6), "high": round(float(high), 6)}


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """McNemar's exact test on paired correctness: a two-sided binomial test on the discordant pairs.

    ``a_only``: examples A gets right and B wrong; ``b_only``: the reverse.
    """
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if correct_a.shape != correct_b.shape:
        raise ValueError("both models must be scored on the same examples")
    a_only = int((correct_a & ~correct_b).sum())
    b_only = int((~correct_a & correct_b).sum())
    n = a_only + b_only
    from statsmodels.stats.contingency_tables import mcnemar

    table = [[int((correct_a & correct_b).sum()), a_only], [b_only, int((~correct_a & ~correct_b).sum())]]
    p_value = 1.0 if n == 0 else float(mcnemar(table, exact=True).pvalue)  # binomial test on the discordant pairs
    return {"a_only": a_only, "b_only": b_only, "p_value": p_value}


def paired_bootstrap_diff(correct_a: np.ndarray, correct_b: np.ndarray, resamples: int, seed: int,
                          level: float = 0.95) -> dict:
    """Accuracy of A minus accuracy of B, with a percentile interval from resampling examples jointly."""
    diff = np.asarray(correct_a, float) - np.asarray(correct_b, float)
    rng = np.random.default_rng(seed)
    means = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(resamples)])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return {"diff": round(float(diff.mean()), 6), "low": round(float(low), 6), "high": round(float(high), 6)}


def reliability_bins(labels: np.ndarray, probs: np.ndarray, bins: int) -> list[dict]:
    """Per confidence bin (equal width over [0, 1]): mean confidence, accuracy and count (empty bins skipped)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            rows.append({"bin": b, "confidence": round(float(confidence[mask].mean()), 6),
                         "accuracy": round(float(correct[mask].mean()), 6), "count": int(mask.sum())})
    return rows


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int) -> float:
    """Count-weighted mean |accuracy - confidence| over the reliability bins."""
    rows = reliability_bins(labels, probs, bins)
    total = sum(r["count"] for r in rows)
    return float(sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / total)


def brier_score(labels: np.ndarray, probs: np.ndarray) -> float:
    """Multi-class Brier score: mean over examples of the squared distance to the one-hot label."""
    onehot = np.eye(probs.shape[1])[np.asarray(labels)]
    return float(((probs - onehot) ** 2).sum(axis=1).mean())
