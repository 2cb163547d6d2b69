"""Stage `evaluate@<dataset>-<model>`: score a trained model on the test split from raw text.

Writes METRICS (accuracy and macro-F1 with 95 % bootstrap intervals, weighted F1, loss,
expected calibration error, Brier score, per-class scores keyed by class name),
CONFUSION (one actual/predicted row per example, for DVC's confusion plot), CALIBRATION
(reliability diagram bins) and PREDICTIONS (per-example labels and probabilities, parquet).

    python stages/evaluate.py DATASET MODEL MODEL_DIR PREPARED_DIR METRICS CONFUSION CALIBRATION \
        PREDICTIONS [--params params.yaml]
"""

import argparse
import logging
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from textcls.eval import evaluation

from textcls.serving import inference

from textcls.serving import runtime

from textcls.eval import statistics
from textcls.cli import run
from textcls.errors import TextclsError
from textcls.io import atomic_outputs, read_json, write_json, write_text
from textcls.config.params import load_params

logger = logging.getLogger("evaluate")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("dataset", "model", "model_dir", "prepared_dir", "metrics", "confusion", "calibration",
                 "predictions"):
        parser.add_argument(name)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    prepared = Path(args.prepared_dir)
    data_meta = read_json(prepared / "meta.json")
    test = pq.read_table(prepared / "test.parquet").to_pandas()
    model_dir = Path(args.model_dir)
    card = inference.load_card(model_dir)
    if card["label_names"] != data_meta["label_names"]:
        raise TextclsError(f"{args.model_dir} was trained on classes {card['label_names']}, "
                           f"but {prepared} has {data_meta['label_names']}. Fix: re-run `dvc repro`.")
    device = runtime.resolve_device(params.evaluate.device)
    backend, _ = inference.build_backend(None, model_dir, card, device, runtime.configure_threads(), None)
    encoder = inference.make_encoder(model_dir, card)
    start = time.perf_counter()
    with runtime.out_of_memory_hint(f"Evaluating {args.model} (evaluate.batch_size {params.evaluate.batch_size})",
                                    "lower evaluate.batch_size in params.yaml"):
        logits = inference.predict_logits(backend, encoder, test["text"].tolist(), params.evaluate.batch_size, True)
    probs = inference.softmax(logits)
    seconds = time.perf_counter() - start
    names = data_meta["label_names"]
    metrics = evaluation.classification_metrics(test["label"].to_numpy(), probs, names)
    metrics.update(dataset=args.dataset, model=args.model, eval_time_s=round(seconds, 3),
                   comparable_to_published=data_meta["comparable_to_published"])
    preds = probs.argmax(axis=1)
    labels, cfg = test["label"].to_numpy(), params.evaluate
    metrics.update(evaluation.uncertainty_metrics(labels, probs, cfg.bootstrap_resamples, cfg.calibration_bins,
                                                  params.base.seed))
    with atomic_outputs(args.metrics, args.confusion, args.calibration, args.predictions):
        write_json(args.metrics, metrics)
        rows = pd.DataFrame(evaluation.confusion_rows(test["label"].to_numpy(), preds, names))
        write_text(args.confusion, rows.to_csv(index=False))
        bins = pd.DataFrame(statistics.reliability_bins(labels, probs, cfg.calibration_bins))
        write_text(args.calibration, bins.to_csv(index=False))
        Path(args.predictions).parent.mkdir(parents=True, exist_ok=True)
        table = pa.table({"row": test["row"], "label": test["label"], "pred": preds, "probs": list(probs)})
        pq.write_table(table, args.predictions)
    logger.info("%s/%s: accuracy %.4f, macro-F1 %.4f on %d test rows",
                args.dataset, args.model, metrics["accuracy"], metrics["f1_macro"], metrics["n"])
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
