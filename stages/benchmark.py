"""Stage `benchmark@<dataset>-<model>`: inference latency, throughput, memory, accuracy and cost.

Runs every configured backend variant on the CPU and, when one is present, on a CUDA GPU
(without one the result says `"cuda": "unavailable"`, never zeros). Writes OUT, a JSON of
{device: {variants: {...}, best_variant, reference_variant}} plus model size, parameter
count, training time and the hardware fingerprint the numbers were measured on.

    python stages/benchmark.py DATASET MODEL MODEL_DIR PREPARED_DIR HARDWARE TRAIN_METRICS OUT \
        [--params params.yaml]
"""

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from textcls.bench import benchmark

from textcls.serving import inference

from textcls import kinds

from textcls.serving import runtime
from textcls.cli import run
from textcls.io import atomic_outputs, read_json, write_json
from textcls.config.params import load_params

logger = logging.getLogger("benchmark")


def device_variants(kind: str, device: str, cfg) -> list[str] | str:
    """The variants the model's kind runs on ``device``, or why there are none (e.g. "unavailable")."""
    return kinds.get(kind).variants(device, cfg)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("dataset", "model", "model_dir", "prepared_dir", "hardware", "train_metrics", "out"):
        parser.add_argument(name)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    params = load_params(args.params)
    cfg, model_dir = params.benchmark, Path(args.model_dir)
    card = inference.load_card(model_dir)
    table = pq.read_table(Path(args.prepared_dir) / "test.parquet")
    texts, labels = table.column("text").to_pylist(), table.column("label").to_numpy()
    rng = np.random.default_rng(params.base.seed)
    sample = [texts[i] for i in rng.choice(len(texts), min(cfg.latency_texts, len(texts)), replace=False)]
    threads = cfg.threads or runtime.configure_threads()
    import torch

    torch.set_num_threads(threads)
    train = read_json(args.train_metrics)
    result = {"dataset": args.dataset, "model": args.model, "kind": card["kind"], "params": train["params"],
              "train_time_s": train["train_time_s"], "threads": threads, "hardware": read_json(args.hardware),
              "size_mb": round(sum(p.stat().st_size for p in model_dir.glob("*.safetensors")) / 2**20, 3)}
    test = {"texts": texts, "labels": labels, "sample": sample}
    oom = runtime.out_of_memory_hint(f"Benchmarking {args.model} (benchmark.batch_sizes {cfg.batch_sizes})",
                                     "drop the largest of benchmark.batch_sizes in params.yaml")
    with tempfile.TemporaryDirectory(prefix="textcls-bench-") as workdir, oom:
        for device in ("cpu", "cuda"):
            variants = device_variants(card["kind"], device, cfg)
            if isinstance(variants, str):
                result[device] = variants
                continue
            rows = {}
            for variant in variants:
                logger.info("%s/%s: %s on %s", args.dataset, args.model, variant, device)
                try:
                    rows[variant] = benchmark.run_variant(variant, device, model_dir, card, test, cfg, threads,
                                                          Path(workdir))
                except Exception as err:  # e.g. an architecture the ONNX exporter cannot trace: say so, go on
                    if variant == variants[0]:
                        raise  # without the baseline there is nothing to compare with
                    logger.warning("%s failed on %s: %s", variant, device, err)
                    rows[variant] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}
            result[device] = benchmark.summarize(rows, cfg.price_per_hour[device],
                                                 cfg.llm_api_price_per_1m_tokens, cfg.max_accuracy_drop)
    result["benchmark_time_s"] = round(time.perf_counter() - started, 1)
    with atomic_outputs(args.out):
        write_json(args.out, result)
    cpu = result["cpu"]
    best = cpu["variants"][cpu["best_variant"]]
    logger.info("%s/%s: best CPU variant %s: p50 %.2f ms (%.2fx), accuracy %.4f", args.dataset, args.model,
                cpu["best_variant"], best["latency_ms"]["p50"], best["speedup_p50"], best["accuracy"])
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
