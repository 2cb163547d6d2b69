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
from pathlib import Path

from textcls.cli import run
from textcls.config.params import load_params
from textcls.data.prepared import Prepared
from textcls.eval.run import OutputPaths, evaluate_model, write_outputs

logger = logging.getLogger("evaluate")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("dataset", "model", "model_dir", "prepared_dir", "metrics", "confusion", "calibration",
                 "predictions"):
        parser.add_argument(name)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    metrics, scored = evaluate_model(args.dataset, args.model, Path(args.model_dir), Prepared(args.prepared_dir),
                                     params)
    write_outputs(OutputPaths(args.metrics, args.confusion, args.calibration, args.predictions), metrics, scored,
                  params.evaluate.calibration_bins)
    logger.info("%s/%s: accuracy %.4f, macro-F1 %.4f on %d test rows",
                args.dataset, args.model, metrics["accuracy"], metrics["f1_macro"], metrics["n"])
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
