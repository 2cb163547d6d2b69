"""ROC and precision-recall curves from test probabilities, sampled on an even grid for `dvc plots` (the same
class conventions as :func:`textcls.eval.evaluation.auroc`: binary, the positive class; more classes, the macro
mean of the one-vs-rest curves). Only ``aggregate`` uses them, so a change here reruns nothing else."""

from __future__ import annotations

import numpy as np

CURVE_POINTS = 101  # curves are sampled on this many evenly spaced points of their x axis (FPR, recall)


def _macro_curve(labels: np.ndarray, probs: np.ndarray, curve, points: int) -> tuple[np.ndarray, np.ndarray]:
    """(grid, mean over classes of ``curve(positive, score)`` interpolated at the grid); two classes: the
    positive class's curve alone (the same convention as :func:`auroc`)."""
    grid = np.linspace(0.0, 1.0, points)
    labels = np.asarray(labels)
    classes = [1] if probs.shape[1] == 2 else [c for c in range(probs.shape[1]) if (labels == c).any()]
    curves = [curve(labels == c, probs[:, c], grid) for c in classes if 0 < (labels == c).sum() < len(labels)]
    if not curves:
        return grid, np.full(points, np.nan)
    return grid, np.mean(curves, axis=0)


def _roc_at(positive: np.ndarray, score: np.ndarray, grid: np.ndarray) -> np.ndarray:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(positive, score)
    return np.interp(grid, fpr, tpr)


def _pr_at(positive: np.ndarray, score: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Interpolated precision (the best precision at this recall or more) at each recall of ``grid``."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(positive, score)  # recall decreasing
    best = np.maximum.accumulate(precision)  # over recall from high to low: max precision at recall >= r
    return np.array([best[recall >= r][-1] if (recall >= r).any() else 0.0 for r in grid])


def roc_points(labels: np.ndarray, probs: np.ndarray, points: int = CURVE_POINTS) -> list[dict]:
    """The ROC curve (binary: positive class; more classes: the macro mean of one-vs-rest curves) as
    ``[{"fpr", "tpr"}]`` rows on an even FPR grid, for a DVC ``linear`` plot."""
    grid, tpr = _macro_curve(labels, probs, _roc_at, points)
    return [{"fpr": round(float(f), 6), "tpr": round(float(t), 6)} for f, t in zip(grid, tpr)]


def pr_points(labels: np.ndarray, probs: np.ndarray, points: int = CURVE_POINTS) -> list[dict]:
    """The precision-recall curve (interpolated precision; binary: positive class; more: macro mean) as
    ``[{"recall", "precision"}]`` rows on an even recall grid."""
    grid, precision = _macro_curve(labels, probs, _pr_at, points)
    return [{"recall": round(float(r), 6), "precision": round(float(p), 6)} for r, p in zip(grid, precision)]
