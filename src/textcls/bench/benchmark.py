"""Benchmark one trained model: latency, throughput, memory, accuracy and cost per backend variant.

For every variant on a device: cold start (prepare + first prediction), batch-1 latency on
real test texts tokenized per request (dynamic length; tokenization timed separately),
throughput over a batch-size sweep (real, non-padding tokens), accuracy on the whole test
split, peak memory (a separate process for CPU RSS, CUDA counters on GPU) and cost per
1 M tokens at the best batch size.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from textcls.serving import inference

from textcls.bench import latency

from textcls.bench import memprobe
from textcls.config.params import BenchmarkParams

logger = logging.getLogger(__name__)


def measure_latency(backend, encoder, texts: list[str], cfg: BenchmarkParams) -> dict:
    """Batch-1 latency on per-request inputs; tokenization is timed on its own."""
    requests = [encoder([t]) for t in texts]
    model_s = latency.measure(lambda i: backend(requests[i % len(requests)]), cfg.warmup, cfg.min_iterations,
                              cfg.min_seconds)
    tokenize_s = latency.measure(lambda i: encoder([texts[i % len(texts)]]), 5, len(texts), 0.0)
    return {"latency_ms": latency.Latency.from_values(model_s).to_dict(),
            "tokenize_ms": round(float(np.mean(tokenize_s)) * 1000, 4)}


def measure_throughput(backend, encoder, texts: list[str], cfg: BenchmarkParams) -> dict:
    """samples/s and tokens/s per batch size (inputs pre-tokenized and padded per batch)."""
    sweep = {}
    for bs in cfg.batch_sizes:
        batch = encoder([texts[i % len(texts)] for i in range(bs)])
        seconds = latency.measure(lambda i: backend(batch), 2, 3, cfg.throughput_min_seconds)
        rates = latency.throughput(bs, encoder.real_tokens(batch), float(np.mean(seconds)))
        sweep[str(bs)] = {k: round(v, 2) for k, v in rates.items()}
    best = max(sweep, key=lambda b: sweep[b]["samples_per_s"])
    return {"throughput": sweep, "best_batch_size": int(best), **sweep[best]}


def peak_memory_cpu(model_dir: Path, variant: str, threads: int, workdir: Path, texts: list[str],
                    batch_size: int) -> dict:
    """Peak RSS of a fresh process that loads the variant and predicts (so our own memory does not count)."""
    payload = json.dumps({"model_dir": str(model_dir), "variant": variant, "threads": threads,
                          "workdir": str(workdir), "texts": texts, "batch_size": batch_size})
    proc = subprocess.run([sys.executable, "-m", memprobe.__name__], input=payload, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe failed for {variant}: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_variant(variant: str, device: str, model_dir: Path, card, test: dict, cfg: BenchmarkParams,
                threads: int, workdir: Path) -> dict:
    import torch

    texts, labels = test["texts"], test["labels"]
    sample = test["sample"]
    encoder = inference.make_encoder(model_dir, card)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    backend, prepare_s = inference.build_backend(variant, model_dir, card, device, threads, workdir)
    start = time.perf_counter()
    backend(encoder(sample[:1]))
    result = {"prepare_s": round(prepare_s, 3), "cold_start_s": round(prepare_s + time.perf_counter() - start, 3)}
    result.update(measure_latency(backend, encoder, sample, cfg))
    result.update(measure_throughput(backend, encoder, sample, cfg))
    preds = inference.predict_logits(backend, encoder, texts, max(cfg.batch_sizes)).argmax(axis=1)
    result["accuracy"] = round(float((preds == labels).mean()), 6)
    if device == "cuda":
        result["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        result["cuda_max_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
    else:
        result.update(peak_memory_cpu(model_dir, variant, threads, workdir, sample[:32], result["best_batch_size"]))
    return result


def summarize(variants: dict, price_per_hour: float, llm_price: float, max_accuracy_drop: float) -> dict:
    """Add speed-up, accuracy delta and cost to each measured variant; pick the fastest acceptable one.

    The first variant is the baseline and must have been measured (the stage re-raises its failure);
    variants that failed later (``{"error": ...}``) are kept as they are and never chosen.
    """
    reference = next(iter(variants))  # the first listed variant is the baseline (eager)
    ref = variants[reference]
    measured = {v: row for v, row in variants.items() if "error" not in row}
    for row in measured.values():
        row["speedup_p50"] = round(ref["latency_ms"]["p50"] / row["latency_ms"]["p50"], 3)
        row["accuracy_delta"] = round(row["accuracy"] - ref["accuracy"], 6)
        row["cost_per_1m_tokens_usd"] = round(latency.cost_per_million_tokens(row["tokens_per_s"], price_per_hour), 6)
        row["llm_api_cost_ratio"] = round(llm_price / row["cost_per_1m_tokens_usd"], 1) if row[
            "cost_per_1m_tokens_usd"] > 0 else None
    acceptable = [v for v, r in measured.items() if r["accuracy_delta"] >= -max_accuracy_drop]
    best = min(acceptable, key=lambda v: variants[v]["latency_ms"]["p50"])
    return {"status": "measured", "reference_variant": reference, "best_variant": best, "variants": variants}


def benchmark_model(dataset: str, name: str, model_dir: Path, prepared: Path, hardware: dict, train_metrics: dict,
                    cfg: BenchmarkParams, seed: int) -> dict:
    """The benchmark report of one trained model: every variant its kind runs on each device (the kind says
    which, or why none: :class:`textcls.records.Unmeasured`), summarised per device, with its size,
    parameter count, training time and the hardware it was measured on."""
    import tempfile

    import pyarrow.parquet as pq
    import torch

    from textcls import kinds
    from textcls.records import ModelCard, Unmeasured
    from textcls.serving import runtime

    started = time.perf_counter()
    card = ModelCard.read(model_dir)
    table = pq.read_table(Path(prepared) / "test.parquet")
    texts, labels = table.column("text").to_pylist(), table.column("label").to_numpy()
    rng = np.random.default_rng(seed)
    sample = [texts[i] for i in rng.choice(len(texts), min(cfg.latency_texts, len(texts)), replace=False)]
    threads = cfg.threads or runtime.configure_threads()
    torch.set_num_threads(threads)
    result = {"dataset": dataset, "model": name, "kind": card.kind, "params": train_metrics["params"],
              "train_time_s": train_metrics["train_time_s"], "threads": threads, "hardware": hardware,
              "size_mb": round(sum(p.stat().st_size for p in Path(model_dir).glob("*.safetensors")) / 2**20, 3)}
    test = {"texts": texts, "labels": labels, "sample": sample}
    oom = runtime.out_of_memory_hint(f"Benchmarking {name} (benchmark.batch_sizes {cfg.batch_sizes})",
                                     "drop the largest of benchmark.batch_sizes in params.yaml")
    with tempfile.TemporaryDirectory(prefix="textcls-bench-") as workdir, oom:
        for device in ("cpu", "cuda"):
            variants = kinds.get(card.kind).variants(device, cfg)
            if isinstance(variants, Unmeasured):
                result[device] = variants.to_json()
                continue
            rows = {}
            for variant in variants:
                logger.info("%s/%s: %s on %s", dataset, name, variant, device)
                try:
                    rows[variant] = run_variant(variant, device, Path(model_dir), card, test, cfg, threads,
                                                Path(workdir))
                except Exception as err:  # e.g. an architecture the ONNX exporter cannot trace: say so, go on
                    if variant == variants[0]:
                        raise  # without the baseline there is nothing to compare with
                    logger.warning("%s failed on %s: %s", variant, device, err)
                    rows[variant] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}
            result[device] = summarize(rows, cfg.price_per_hour[device], cfg.llm_api_price_per_1m_tokens,
                                       cfg.max_accuracy_drop)
    result["benchmark_time_s"] = round(time.perf_counter() - started, 1)
    return result
