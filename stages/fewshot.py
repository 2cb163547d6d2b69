"""Stage `fewshot@<dataset>-<llm>`: a prompted LLM as a classifier, scored like every other model.

`shots_per_class` demonstrations per class come from the train split (seeded); each test text
(a seeded subsample of `max_test_rows`) is answered with one of the class names only
(local: label log-likelihoods; http: JSON-schema-constrained answers). No fine-tuning.

Writes the same files as train + evaluate + benchmark do for a trained model: METRICS (eval
schema, plus tokens, invalid answers and cost), TRAIN_METRICS (parameters; no training),
BENCH (batch-1 latency and cost, in the benchmark schema), CONFUSION, CALIBRATION, PREDICTIONS, and SERVED (the
same predictions as the benchmark's `fewshot` variant served them, like a benchmark stage's, plus a seeded
`max_validation_rows` subsample of the validation split for the cascades' thresholds; textcls.bench.served).
All or nothing: an unreachable endpoint leaves no partial metrics.

    python stages/fewshot.py DATASET LLM WEIGHTS_DIR PREPARED_DIR HARDWARE METRICS TRAIN_METRICS BENCH \
        CONFUSION CALIBRATION PREDICTIONS SERVED [--params params.yaml]
"""

import argparse
import logging
from pathlib import Path

from textcls.cli import run
from textcls.config.params import load_params, lookup
from textcls.data.prepared import Prepared
from textcls.eval.run import OutputPaths
from textcls.io import read_json, remove
from textcls.llm.entry import score_llm, write_outputs

logger = logging.getLogger("fewshot")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("dataset", "llm", "weights_dir", "prepared_dir", "hardware", "metrics", "train_metrics", "bench",
                 "confusion", "calibration", "predictions", "served"):
        parser.add_argument(name)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    lookup(params.llms, args.llm, "llms", args.params)
    paths = OutputPaths(args.metrics, args.confusion, args.calibration, args.predictions)
    for path in (*paths.all(), args.train_metrics, args.bench, args.served):  # a failed run (e.g. endpoint down)
        remove(path)                                                          # must not leave older files behind
    metrics, train_metrics, bench, scored, validation = score_llm(
        args.dataset, args.llm, Path(args.weights_dir), Prepared(args.prepared_dir), read_json(args.hardware), params)
    write_outputs(paths, args.served, args.train_metrics, args.bench, metrics, train_metrics, bench, scored,
                  params.evaluate.calibration_bins, validation)
    logger.info("%s/%s: accuracy %.4f on %d test rows, p50 %.1f ms", args.dataset, args.llm, metrics["accuracy"],
                metrics["test_rows"], metrics["latency_ms"]["p50"])
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
