"""Test-set metrics with scikit-learn, as flat-ish dicts that ``dvc metrics diff`` can diff."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_recall_fscore_support

from textcls.eval import statistics


def classification_metrics(labels: np.ndarray, probs: np.ndarray, label_names: list[str]) -> dict:
    """accuracy, macro/weighted F1, log loss and per-class precision/recall/F1 keyed by class name."""
    labels = np.asarray(labels)
    preds = probs.argmax(axis=1)
    ids = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, preds, labels=ids, zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(labels, preds)), 6),
        "f1_macro": round(float(f1_score(labels, preds, labels=ids, average="macro", zero_division=0)), 6),
        "f1_weighted": round(float(f1_score(labels, preds, labels=ids, average="weighted", zero_division=0)), 6),
        "loss": round(float(log_loss(labels, _clipped(probs), labels=ids)), 6),
        "n": int(len(labels)),
        "per_class": {
            name: {"precision": round(float(precision[i]), 6), "recall": round(float(recall[i]), 6),
                   "f1": round(float(f1[i]), 6), "support": int(support[i])}
            for i, name in enumerate(label_names)
        },
    }


def accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    """``sklearn.metrics.accuracy_score`` without its input validation (the bootstrap calls it 1,000 times)."""
    return float((np.asarray(labels) == np.asarray(preds)).mean())


def macro_f1_score(labels: np.ndarray, preds: np.ndarray, classes: int) -> float:
    """``f1_score(labels, preds, labels=range(classes), average="macro", zero_division=0)``, bit for bit (F1 per
    class as 2 tp / (true + predicted), sklearn's own formula), from three ``bincount``s: the bootstrap calls it
    1,000 times per model, where sklearn's input validation cost seconds."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    tp = np.bincount(labels[labels == preds], minlength=classes)[:classes]
    denom = np.bincount(labels, minlength=classes)[:classes] + np.bincount(preds, minlength=classes)[:classes]
    return float(np.where(denom > 0, 2.0 * tp / np.where(denom > 0, denom, 1), 0.0).mean())


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for the ``positive`` rows: the Mann-Whitney U statistic over
    n_pos * n_neg, ties counted one half (mid-ranks), as ``sklearn.metrics.roc_auc_score``. NaN without both."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((rankdata(score)[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _binary_average_precision(positive: np.ndarray, score: np.ndarray) -> float:
    """Average precision (sum over score thresholds of the recall gained times the precision there, tied
    scores one threshold), as ``sklearn.metrics.average_precision_score``. NaN without a positive."""
    order = np.argsort(-score, kind="mergesort")
    hits, ranked = positive[order], score[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # the last row of every distinct score
    tp = np.cumsum(hits)[last]
    if len(tp) == 0 or tp[-1] == 0:
        return float("nan")
    precision, recall = tp / (last + 1), tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _per_class(binary, labels: np.ndarray, probs: np.ndarray) -> float:
    """Two classes: the positive class's (label 1) value; more: the macro mean one-vs-rest over the classes
    present (a class absent from a bootstrap resample has no ROC curve)."""
    labels = np.asarray(labels)
    if probs.shape[1] == 2:
        return binary(labels == 1, probs[:, 1])
    values = [binary(labels == c, probs[:, c]) for c in range(probs.shape[1])]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def auroc(labels: np.ndarray, probs: np.ndarray) -> float:
    """ROC AUC: binary, of the positive class; more classes, macro one-vs-rest
    (``roc_auc_score(labels, probs, multi_class="ovr", average="macro")``)."""
    return _per_class(_binary_auc, labels, probs)


def average_precision(labels: np.ndarray, probs: np.ndarray) -> float:
    """Average precision (area under the precision-recall curve): binary, of the positive class; more classes,
    macro one-vs-rest (``average_precision_score(one_hot(labels), probs, average="macro")``)."""
    return _per_class(_binary_average_precision, labels, probs)


def uncertainty_metrics(labels: np.ndarray, probs: np.ndarray, resamples: int, bins: int, seed: int) -> dict:
    """95 % bootstrap intervals of accuracy and macro-F1, AUROC and average precision (with their intervals:
    the same resamples), expected calibration error and Brier score."""
    preds = probs.argmax(axis=1)
    classes = probs.shape[1]

    def macro_f1(y, p):
        return macro_f1_score(y, p, classes)

    def rounded(value: float):
        return None if np.isnan(value) else round(value, 6)

    ranking = {}
    for name, metric in (("auroc", auroc), ("average_precision", average_precision)):
        value = metric(labels, probs)
        ranking[name] = rounded(value)
        ranking[f"{name}_ci95"] = (None if np.isnan(value)
                                   else statistics.bootstrap_ci(labels, probs, metric, resamples, seed))
    return {
        "accuracy_ci95": statistics.bootstrap_ci(labels, preds, accuracy, resamples, seed),
        "f1_macro_ci95": statistics.bootstrap_ci(labels, preds, macro_f1, resamples, seed),
        **ranking,
        "ece": round(statistics.expected_calibration_error(labels, probs, bins), 6),
        "brier": round(statistics.brier_score(labels, probs), 6),
    }


def _clipped(probs: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Probabilities kept away from 0 (finite log loss) and renormalised to sum to 1."""
    probs = np.clip(probs, eps, 1.0)
    return probs / probs.sum(axis=1, keepdims=True)


def confusion_rows(labels: np.ndarray, preds: np.ndarray, label_names: list[str]) -> list[dict]:
    """One ``{actual, predicted}`` row per example: the input of DVC's ``confusion`` plot template."""
    return [{"actual": label_names[a], "predicted": label_names[p]} for a, p in zip(labels, preds)]
