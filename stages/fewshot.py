"""Stage `fewshot@<dataset>-<llm>`: a prompted LLM as a classifier, scored like every other model.

`shots_per_class` demonstrations per class come from the train split (seeded); each test text
(a seeded subsample of `max_test_rows`) is answered with one of the class names only
(local: label log-likelihoods; http: JSON-schema-constrained answers). No fine-tuning.

Writes the same files as train + evaluate + benchmark do for a trained model: METRICS (eval
schema, plus tokens, invalid answers and cost), TRAIN_METRICS (parameters; no training),
BENCH (batch-1 latency and cost, in the benchmark schema), CONFUSION, CALIBRATION, PREDICTIONS.
All or nothing: an unreachable endpoint leaves no partial metrics.

    python stages/fewshot.py DATASET LLM WEIGHTS_DIR PREPARED_DIR HARDWARE METRICS TRAIN_METRICS BENCH \
        CONFUSION CALIBRATION PREDICTIONS [--params params.yaml]
"""

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from textcls.eval import evaluation

from textcls.llm import fewshot

from textcls.llm import prompting

from textcls.serving import runtime

from textcls.eval import statistics
from textcls.cli import run
from textcls.io import atomic_outputs, read_json, remove, write_json, write_text
from textcls.bench.latency import Latency
from textcls.config.params import load_params, lookup

logger = logging.getLogger("fewshot")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("dataset", "llm", "weights_dir", "prepared_dir", "hardware", "metrics", "train_metrics", "bench", "confusion",
                 "calibration", "predictions"):
        parser.add_argument(name)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    cfg = lookup(params.llms, args.llm, "llms", args.params)
    outputs = (args.metrics, args.train_metrics, args.bench, args.confusion, args.calibration, args.predictions)
    for path in outputs:  # a failed run (e.g. endpoint down) must not leave an older run's files behind
        remove(path)
    prepared = Path(args.prepared_dir)
    names = read_json(prepared / "meta.json")["label_names"]
    train = pq.read_table(prepared / "train.parquet").to_pandas()
    test = pq.read_table(prepared / "test.parquet").to_pandas()
    test_rows_available = len(test)
    rng = np.random.default_rng(params.base.seed)
    if cfg.max_test_rows is not None and cfg.max_test_rows < len(test):
        test = test.iloc[np.sort(rng.choice(len(test), cfg.max_test_rows, replace=False))]
    shots = prompting.select_shots(train["label"].to_numpy(), len(names), cfg.shots_per_class, params.base.seed)
    demos = [(train["text"].iat[i], int(train["label"].iat[i])) for i in shots]
    texts, labels = test["text"].tolist(), test["label"].to_numpy()
    device = runtime.resolve_device(params.evaluate.device) if cfg.backend == "local" else "remote"
    if cfg.backend == "local":
        runtime.configure_threads()
        result = fewshot.run_local(cfg, Path(args.weights_dir), names, demos, texts, device)
    else:
        fallback = int(train["label"].value_counts().idxmax())
        result = fewshot.run_http(cfg, names, demos, texts, fallback)

    metrics = evaluation.classification_metrics(labels, result.probs, names)
    metrics.update(evaluation.uncertainty_metrics(labels, result.probs, params.evaluate.bootstrap_resamples,
                                                  params.evaluate.calibration_bins, params.base.seed))
    latency = Latency.from_values(result.seconds).to_dict()
    bench_device = "cuda" if device == "cuda" else "cpu"
    cost = fewshot.costs(result, cfg.price_per_1m_tokens, params.benchmark.price_per_hour[bench_device])
    total_s = float(sum(result.seconds))
    metrics.update(dataset=args.dataset, model=args.llm, kind="llm", backend=cfg.backend, device=device,
                   shots_per_class=cfg.shots_per_class, test_rows=len(texts), test_rows_available=test_rows_available,
                   invalid_answers=result.invalid_answers, probabilities=result.probabilities,
                   tokens_processed=result.tokens_processed,
                   prompt_tokens_per_example=round(result.prompt_tokens_per_example, 1),
                   latency_ms=latency, eval_time_s=round(total_s + result.prefix_s, 3), **cost,
                   comparable_to_published=False)
    train_metrics = {"dataset": args.dataset, "model": args.llm, "kind": "llm", "params": result.params,
                     "train_time_s": 0.0, "device": device, "precision": "fp32" if cfg.backend == "local" else None,
                     "seed": params.base.seed, "shots_per_class": cfg.shots_per_class,
                     "hyperparameters": {k: v for k, v in vars(cfg).items() if k != "name"}}
    variant = {"latency_ms": latency, "samples_per_s": round(len(texts) / total_s, 3),
               "tokens_per_s": round(result.tokens_processed / (total_s + result.prefix_s), 1),
               "accuracy": metrics["accuracy"], "speedup_p50": 1.0, "accuracy_delta": 0.0,
               "model_rss_mb": result.model_rss_mb, **cost}
    measured = {"reference_variant": "fewshot", "best_variant": "fewshot", "variants": {"fewshot": variant}}
    other = "not measured (the few-shot stage runs on one device)"
    bench = {"dataset": args.dataset, "model": args.llm, "kind": "llm", "params": result.params, "train_time_s": 0.0,
             "hardware": read_json(args.hardware),
             "size_mb": round(sum(p.stat().st_size for p in Path(args.weights_dir).glob("*.safetensors")) / 2**20, 3)
             if cfg.backend == "local" else None,
             "cpu": measured if bench_device == "cpu" and cfg.backend == "local" else other,
             "cuda": measured if bench_device == "cuda" else other}
    if cfg.backend == "http":
        bench["cpu"] = bench["cuda"] = "not applicable (remote endpoint; latency in the eval metrics)"
    preds = result.probs.argmax(axis=1)
    with atomic_outputs(*outputs):
        write_json(args.metrics, metrics)
        write_json(args.train_metrics, train_metrics)
        write_json(args.bench, bench)
        write_text(args.confusion, pd.DataFrame(evaluation.confusion_rows(labels, preds, names)).to_csv(index=False))
        bins = statistics.reliability_bins(labels, result.probs, params.evaluate.calibration_bins)
        write_text(args.calibration, pd.DataFrame(bins).to_csv(index=False))
        Path(args.predictions).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"row": test["row"], "label": labels, "pred": preds, "probs": list(result.probs)}),
                       args.predictions)
    logger.info("%s/%s: accuracy %.4f on %d test rows, p50 %.1f ms, %s", args.dataset, args.llm,
                metrics["accuracy"], len(texts), latency["p50"], cost)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
