"""Scoring a model on the test split, and the files every scored entry writes (trained models and LLMs alike).

:func:`evaluate_model` serves a trained model folder through the production path
(:mod:`textcls.serving.inference`) on raw test texts; :func:`write_outputs` writes the metrics JSON, the
confusion rows (for DVC's confusion plot), the reliability-diagram bins and per-example predictions,
all or nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from textcls.data.prepared import Prepared
from textcls.eval import evaluation, statistics
from textcls.io import atomic_outputs, write_json, write_text


@dataclass(frozen=True)
class OutputPaths:
    """Where a scored entry's files go (the stage's arguments)."""

    metrics: str
    confusion: str
    calibration: str
    predictions: str

    def all(self) -> tuple[str, ...]:
        return (self.metrics, self.confusion, self.calibration, self.predictions)


@dataclass(frozen=True)
class Scored:
    """Class probabilities for test rows: what :func:`write_outputs` needs besides the metrics."""

    rows: np.ndarray  # the prepared test split's ``row`` ids, in order
    labels: np.ndarray
    probs: np.ndarray
    label_names: list[str]
    seconds: np.ndarray | None = None  # per row: the call's end-to-end seconds, where each row was served alone


def score_metrics(scored: Scored, bootstrap_resamples: int, calibration_bins: int, seed: int) -> dict:
    """Accuracy, F1, loss, calibration and bootstrap intervals of ``scored`` (the eval metrics schema)."""
    metrics = evaluation.classification_metrics(scored.labels, scored.probs, scored.label_names)
    metrics.update(evaluation.uncertainty_metrics(scored.labels, scored.probs, bootstrap_resamples,
                                                  calibration_bins, seed))
    return metrics


def evaluate_model(dataset: str, name: str, model_dir: Path, prepared: Prepared, params) -> tuple[dict, Scored]:
    """Test-set metrics of a trained model folder, scored from raw text the way it is served."""
    from textcls import kinds
    from textcls.records import ModelCard
    from textcls.serving import inference, runtime

    test = prepared.frame("test")
    card = ModelCard.read(model_dir)
    prepared.check_classes(card.label_names, model_dir)
    cfg = params.evaluate
    uses_torch = getattr(kinds.get(card.kind), "uses_torch", True)
    device = runtime.resolve_device(cfg.device) if uses_torch else "cpu"
    backend, _ = inference.build_backend(None, model_dir, card, device, runtime.configure_threads(uses_torch), None)
    encoder = inference.make_encoder(model_dir, card)
    start = time.perf_counter()
    with runtime.out_of_memory_hint(f"Evaluating {name} (evaluate.batch_size {cfg.batch_size})",
                                    "lower evaluate.batch_size in params.yaml"):
        logits = inference.predict_logits(backend, encoder, test["text"].tolist(), cfg.batch_size, True)
    probs = inference.softmax(logits)
    seconds = time.perf_counter() - start
    scored = Scored(test["row"].to_numpy(), test["label"].to_numpy(), probs, prepared.label_names)
    metrics = evaluation.classification_metrics(scored.labels, probs, scored.label_names)
    metrics.update(dataset=dataset, model=name, eval_time_s=round(seconds, 3),
                   comparable_to_published=prepared.meta["comparable_to_published"])
    metrics.update(evaluation.uncertainty_metrics(scored.labels, probs, cfg.bootstrap_resamples,
                                                  cfg.calibration_bins, params.base.seed))
    return metrics, scored


def write_outputs(paths: OutputPaths, metrics: dict, scored: Scored, calibration_bins: int,
                  extra: dict[str, dict] | None = None) -> None:
    """Write the metrics (and ``extra`` JSON files, path -> content), confusion rows, reliability bins and
    predictions, all or nothing."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    extra = extra or {}
    preds = scored.probs.argmax(axis=1)
    with atomic_outputs(*paths.all(), *extra):
        write_json(paths.metrics, metrics)
        for path, content in extra.items():
            write_json(path, content)
        rows = pd.DataFrame(evaluation.confusion_rows(scored.labels, preds, scored.label_names))
        write_text(paths.confusion, rows.to_csv(index=False))
        bins = pd.DataFrame(statistics.reliability_bins(scored.labels, scored.probs, calibration_bins))
        write_text(paths.calibration, bins.to_csv(index=False))
        Path(paths.predictions).parent.mkdir(parents=True, exist_ok=True)
        table = pa.table({"row": scored.rows, "label": scored.labels, "pred": preds, "probs": list(scored.probs)})
        pq.write_table(table, paths.predictions)
