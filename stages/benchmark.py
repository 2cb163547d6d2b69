"""Stage `benchmark@<dataset>-<model>`: inference latency, throughput, memory, accuracy and cost.

Runs every configured backend variant on the CPU and, when one is present, on a CUDA GPU
(without one the result says `"cuda": {"status": "unavailable", ...}`, never zeros). Writes OUT, a JSON
of {device: {status, variants: {...}, best_variant, reference_variant}} plus model size, parameter
count, training time and the hardware fingerprint the numbers were measured on; and SERVED, every measured
variant's served test and validation predictions (parquet: device, variant, split, row, label, pred,
probs, latency_ms; textcls.bench.served).

    python stages/benchmark.py DATASET MODEL MODEL_DIR PREPARED_DIR HARDWARE TRAIN_METRICS OUT SERVED \
        [--params params.yaml]
"""

import argparse
import logging
from pathlib import Path

from textcls.cli import run
from textcls.bench import benchmark
from textcls.config.params import load_params
from textcls.io import read_json

logger = logging.getLogger("benchmark")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("dataset", "model", "model_dir", "prepared_dir", "hardware", "train_metrics", "out", "served"):
        parser.add_argument(name)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    served = []
    result = benchmark.benchmark_model(args.dataset, args.model, Path(args.model_dir), Path(args.prepared_dir),
                                       read_json(args.hardware), read_json(args.train_metrics), params.benchmark,
                                       params.base.seed, served=served)
    benchmark.write_outputs(args.out, args.served, result, served)
    cpu = result["cpu"]
    best = cpu["variants"][cpu["best_variant"]]
    logger.info("%s/%s: best CPU variant %s: p50 %.2f ms (%.2fx), accuracy %.4f", args.dataset, args.model,
                cpu["best_variant"], best["latency_ms"]["p50"], best["speedup_p50"], best["accuracy"])
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
