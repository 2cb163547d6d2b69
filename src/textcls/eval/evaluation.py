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


def uncertainty_metrics(labels: np.ndarray, probs: np.ndarray, resamples: int, bins: int, seed: int) -> dict:
    """95 % bootstrap intervals of accuracy and macro-F1, expected calibration error and Brier score."""
    preds = probs.argmax(axis=1)
    classes = probs.shape[1]

    def macro_f1(y, p):
        return macro_f1_score(y, p, classes)

    return {
        "accuracy_ci95": statistics.bootstrap_ci(labels, preds, accuracy, resamples, seed),
        "f1_macro_ci95": statistics.bootstrap_ci(labels, preds, macro_f1, resamples, seed),
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
