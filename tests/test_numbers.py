"""Known-answer tests for the reported numbers (issue 17).

Each test pins one number a plausible bug would get wrong and the other tests would not notice: the
bootstrap interval's level, the pairing of the paired bootstrap, McNemar's exact p-value, that the int8
variants really are quantised, the accuracy and best batch size the benchmark reports, the memory column
a GPU constraint reads, ONNX vs eager agreement and the recommendation's JSON. Fast, CPU-only, seeded.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from textcls.records import ModelCard
from textcls.serving import backends

from textcls.bench import benchmark

from textcls.serving import inference

from textcls import io

from textcls.report import leaderboard

from textcls.report import recommend

from textcls.eval import statistics
from textcls.config.params import BenchmarkParams, RecommendParams

CARD = {"kind": "transformer", "label_names": ["neg", "pos"], "prefix": "", "max_length": 16, "params": {},
        "seed": 0}
# different lengths, so a batch of them is padded
TEXTS = ["good", "the movie is very good and the music is fun", "an awful plot", "the film was bad , so boring"]


def _accuracy(labels, preds):
    return float(np.mean(labels == preds))


@pytest.fixture(scope="module")
def trained_dir(tiny_bert_dir, tmp_path_factory) -> Path:
    """The tiny BERT (its tokenizer and shape) with a textcls.json model card, as the train stage saves a model.

    Its weights are drawn ten times wider than BERT's default (std 0.2, not 0.02): the default gives logits
    that differ between texts by < 1e-4, too little for a 1e-4 agreement or an int8 difference to mean anything.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("numbers") / "tiny"
    shutil.copytree(tiny_bert_dir, folder)
    config = BertConfig.from_pretrained(folder)
    config.initializer_range = 0.2
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    (folder / "textcls.json").write_text(json.dumps(CARD), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def built(trained_dir, tmp_path_factory) -> dict:
    """The four CPU variants of the tiny BERT, built once in one workdir (ONNX export shared), plus a padded batch."""
    workdir = tmp_path_factory.mktemp("numbers-work")
    encoder = inference.make_encoder(trained_dir, ModelCard.from_json(CARD))
    out = {"workdir": workdir, "encoder": encoder, "batch": encoder(TEXTS)}
    for variant in ("eager_fp32", "dynamic_int8", "onnx_fp32", "onnx_int8"):
        out[variant], _ = backends.build(variant, trained_dir, "cpu", 1, workdir, encoder.input_names)
    return out


# --------------------------------------------------------------------------- 1. bootstrap interval level


def test_bootstrap_ci_is_the_2_5_and_97_5_percentiles_of_the_seeded_resamples():
    """Check that the default 95 % interval is the 2.5/97.5 percentiles of the same seeded resamples (not 5/95)."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300)
    preds = np.where(rng.random(300) < 0.7, labels, 1 - labels)
    resamples, seed = 400, 11
    replay = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        idx = replay.integers(0, len(labels), len(labels))
        values.append(_accuracy(labels[idx], preds[idx]))
    p2_5, p97_5 = np.percentile(values, [2.5, 97.5])
    p5, p95 = np.percentile(values, [5, 95])
    assert p95 - p5 < p97_5 - p2_5 - 0.005  # the two levels are far enough apart to tell

    ci = statistics.bootstrap_ci(labels, preds, _accuracy, resamples, seed)
    assert ci["low"] == pytest.approx(p2_5, abs=1e-6) and ci["high"] == pytest.approx(p97_5, abs=1e-6)
    ci90 = statistics.bootstrap_ci(labels, preds, _accuracy, resamples, seed, level=0.90)
    assert ci90["low"] == pytest.approx(p5, abs=1e-6) and ci90["high"] == pytest.approx(p95, abs=1e-6)


def test_bootstrap_ci_covers_the_true_accuracy_about_95_percent_of_the_time():
    """Check that the 95 % interval covers the true accuracy in 90-99 % of seeded simulated test sets."""
    rng = np.random.default_rng(7)
    true_acc, n, trials, covered = 0.8, 200, 200, 0
    for trial in range(trials):
        labels = np.zeros(n, int)
        preds = (rng.random(n) >= true_acc).astype(int)  # right with probability 0.8
        ci = statistics.bootstrap_ci(labels, preds, _accuracy, 200, seed=trial)
        covered += ci["low"] <= true_acc <= ci["high"]
    assert 0.90 <= covered / trials <= 0.99  # a 90 % interval covers ~0.88 of the time, a 99 % one ~0.99


# --------------------------------------------------------------------------- 2. paired bootstrap


def test_paired_bootstrap_of_identical_models_is_exactly_zero():
    """Check that two models with the same correctness vector give diff 0 and interval [0, 0] (paired)."""
    rng = np.random.default_rng(0)
    same = rng.random(150) < 0.6
    result = statistics.paired_bootstrap_diff(same, same.copy(), 300, seed=5)
    assert result == {"diff": 0.0, "low": 0.0, "high": 0.0}


def test_paired_bootstrap_diff_is_k_over_n_and_resamples_pairs():
    """Check that models differing on exactly k=6 of n=120 examples (A right there) give diff 6/120 and low >= 0."""
    rng = np.random.default_rng(1)
    b = rng.random(120) < 0.5
    a = b.copy()
    flip = np.flatnonzero(~b)[:6]
    a[flip] = True  # A is right wherever B is, plus 6 more
    result = statistics.paired_bootstrap_diff(a, b, 500, seed=2)
    assert result["diff"] == pytest.approx(6 / 120, abs=1e-6)
    # resampled jointly, every resample's difference is >= 0; resampled apart, many would be < 0
    assert 0.0 <= result["low"] <= 6 / 120 <= result["high"]
    reversed_ = statistics.paired_bootstrap_diff(b, a, 500, seed=2)
    assert reversed_["diff"] == pytest.approx(-6 / 120, abs=1e-6)
    assert reversed_["low"] == pytest.approx(-result["high"]) and reversed_["high"] == pytest.approx(-result["low"])


def test_paired_bootstrap_matches_a_replay_of_joint_resampling():
    """Check that the paired interval equals the 2.5/97.5 percentiles of mean(a - b) over jointly resampled indices."""
    rng = np.random.default_rng(4)
    a, b = rng.random(80) < 0.7, rng.random(80) < 0.6
    replay = np.random.default_rng(9)
    diff = a.astype(float) - b.astype(float)
    means = [diff[replay.integers(0, 80, 80)].mean() for _ in range(300)]
    low, high = np.percentile(means, [2.5, 97.5])
    result = statistics.paired_bootstrap_diff(a, b, 300, seed=9)
    assert result["diff"] == pytest.approx(diff.mean(), abs=1e-6)
    assert result["low"] == pytest.approx(low, abs=1e-6) and result["high"] == pytest.approx(high, abs=1e-6)


# --------------------------------------------------------------------------- 3. McNemar


@pytest.mark.parametrize("k", [1, 3, 10])
def test_mcnemar_ties_give_p_one(k):
    """Check that equal discordant counts (a_only == b_only) give p = 1.0 exactly."""
    a = np.array([1] * k + [0] * k + [1] * 5 + [0] * 4, bool)
    b = np.array([0] * k + [1] * k + [1] * 5 + [0] * 4, bool)
    result = statistics.mcnemar_exact(a, b)
    assert (result["a_only"], result["b_only"]) == (k, k)
    assert result["p_value"] == 1.0


@pytest.mark.parametrize("a_only, b_only", [(1, 5), (5, 1), (0, 4), (2, 7)])
def test_mcnemar_small_table_matches_the_exact_binomial_by_hand(a_only, b_only):
    """Check that p = min(1, 2 * P(X <= min(a_only, b_only))) for X ~ Binomial(a_only + b_only, 1/2)."""
    n, k = a_only + b_only, min(a_only, b_only)
    expected = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)  # (1,5): 14/64, (0,4): 2/16
    a = np.array([1] * a_only + [0] * b_only + [1, 1, 0], bool)
    b = np.array([0] * a_only + [1] * b_only + [1, 1, 0], bool)
    result = statistics.mcnemar_exact(a, b)
    assert (result["a_only"], result["b_only"]) == (a_only, b_only)
    assert result["p_value"] == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------------- 4-5. the int8 variants are int8


def test_onnx_int8_runs_a_quantized_model_not_the_fp32_file(built):
    """Check that onnx_int8's session runs model.int8.onnx (integer ops) with logits near, not equal to, fp32's."""
    import onnx

    workdir = built["workdir"]
    fp32_file, int8_file = workdir / "model.onnx", workdir / "model.int8.onnx"
    assert fp32_file.is_file() and int8_file.is_file()
    assert fp32_file.read_bytes() != int8_file.read_bytes()
    assert Path(built["onnx_int8"].session._model_path).resolve() == int8_file.resolve()
    assert Path(built["onnx_fp32"].session._model_path).resolve() == fp32_file.resolve()
    int8_ops = {node.op_type for node in onnx.load(str(int8_file)).graph.node}
    fp32_ops = {node.op_type for node in onnx.load(str(fp32_file)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= int8_ops
    assert not {"DynamicQuantizeLinear", "MatMulInteger"} & fp32_ops
    fp32, int8 = built["onnx_fp32"](built["batch"]), built["onnx_int8"](built["batch"])
    assert fp32.shape == int8.shape == (len(TEXTS), 2)
    assert np.abs(int8 - fp32).max() > 1e-4  # quantisation changes the numbers ...
    np.testing.assert_allclose(int8, fp32, atol=0.2, rtol=0)  # ... a little (logits spread over ~0.7 here)


def test_dynamic_int8_quantizes_every_linear_layer(built):
    """Check that dynamic_int8's model has dynamic-quantised Linear modules, no plain nn.Linear in the encoder."""
    import torch

    model = built["dynamic_int8"].model
    quantized = torch.ao.nn.quantized.dynamic.Linear
    encoder_modules = list(model.bert.encoder.modules())
    assert sum(isinstance(m, quantized) for m in encoder_modules) == 2 * 6  # q, k, v, out, intermediate, output
    assert not [m for m in encoder_modules if type(m) is torch.nn.Linear]
    assert isinstance(model.classifier, quantized)
    eager = built["eager_fp32"].model
    assert sum(type(m) is torch.nn.Linear for m in eager.modules()) > 0  # the fp32 one is untouched
    fp32, int8 = built["eager_fp32"](built["batch"]), built["dynamic_int8"](built["batch"])
    assert np.abs(int8 - fp32).max() > 1e-4
    np.testing.assert_allclose(int8, fp32, atol=0.2, rtol=0)


# --------------------------------------------------------------------------- 6. accuracy in benchmark_device


class _IdEncoder:
    """Texts -> one token per text, its index in ``texts``; three real tokens per text, no padding."""

    def __init__(self, texts):
        self.index = {t: i for i, t in enumerate(texts)}

    def __call__(self, texts):
        ids = np.array([[self.index[t]] * 3 for t in texts], dtype=np.int64)
        return {"input_ids": ids, "attention_mask": np.ones((len(texts), 3), dtype=np.int64)}

    @staticmethod
    def real_tokens(batch):
        return int(batch["attention_mask"].sum())

    @staticmethod
    def padded_tokens(batch):
        return int(batch["input_ids"].size)


def _fake_device_run(monkeypatch, tmp_path, broken: str | None = None):
    """benchmark_device over fake backends of known accuracy: eager_fp32 (slow; right on 9 of 12 test texts and
    3 of 4 validation texts), dynamic_int8 (fast; 6 of 12 test, 4 of 4 validation), onnx_int8 (fails to build)."""
    test = [f"test text {i}" for i in range(12)]
    validation = [f"validation text {i}" for i in range(4)]
    test_labels = np.array([0, 1] * 6)
    validation_labels = np.array([1, 0, 1, 0])
    every = test + validation
    wrong = {"eager_fp32": {1, 4, 7} | {12}, "dynamic_int8": {0, 1, 2, 3, 4, 5}}  # indices into `every`
    labels = np.concatenate([test_labels, validation_labels])
    memory_calls = []

    def make(variant):
        preds = np.where([i in wrong[variant] for i in range(len(every))], 1 - labels, labels)
        logits = np.eye(2, dtype=np.float32)[preds] * 3.0

        def backend(batch):
            if variant == "eager_fp32":
                time.sleep(0.002)
            if variant == broken and len(batch["input_ids"]) > 1:
                raise RuntimeError("batched inference is broken")
            return logits[batch["input_ids"][:, 0]]
        return backend

    def build_backend(variant, model_dir, card, device, threads, workdir):
        if variant == "onnx_int8":
            raise RuntimeError("exporter could not trace\nsecond line")
        return make(variant), 0.0

    def memory(model_dir, variants, device, threads, workdir, texts, batch_size, probe=None):
        memory_calls.extend((variant, texts, batch_size) for variant in variants)  # one probe, every variant
        return {v: {"model_rss_mb": 10.0, "peak_rss_mb": 12.0, "baseline_rss_mb": 300.0} for v in variants}

    monkeypatch.setattr(inference, "make_encoder", lambda model_dir, card: _IdEncoder(every))
    monkeypatch.setattr(inference, "build_backend", build_backend)
    monkeypatch.setattr(benchmark, "memory", memory)
    data = {"test": test, "test_labels": test_labels, "validation": validation, "validation_labels": validation_labels,
            "sample": np.array([0, 2, 5, 9])}
    cfg = BenchmarkParams(warmup=2, repeats=6, batch_sizes=[1, 2], throughput_min_seconds=0.0,
                          max_accuracy_drop=0.005)
    out = benchmark.benchmark_device("cpu", ["eager_fp32", "dynamic_int8", "onnx_int8"], tmp_path,
                                     ModelCard.from_json(CARD), data, cfg, 1, tmp_path, 3.6, seed=0)
    return out, memory_calls, test


def test_benchmark_device_accuracy_is_the_fraction_served_right(monkeypatch, tmp_path):
    """Check that benchmark_device reports test accuracy 0.75 and validation 0.75 for a backend right on 9 of 12
    and 3 of 4 (not 0.25), dynamic_int8's 0.5 / 1.0, and the paired comparison variant minus reference."""
    out, _, _ = _fake_device_run(monkeypatch, tmp_path)
    eager, int8 = out["variants"]["eager_fp32"], out["variants"]["dynamic_int8"]
    assert (eager["accuracy"], eager["validation_accuracy"]) == (0.75, 0.75)
    assert (int8["accuracy"], int8["validation_accuracy"]) == (0.5, 1.0)
    assert (int8["accuracy_delta"], int8["validation_accuracy_delta"]) == (-0.25, 0.25)
    comp = int8["vs_reference"]
    assert comp["diff"] == -0.25
    # dynamic_int8 is wrong on 0..5, eager on 1, 4, 7: eager alone right on 0, 2, 3, 5; int8 alone on 7
    assert (comp["variant_only_right"], comp["reference_only_right"]) == (1, 4)
    assert comp["agreement"] == pytest.approx(round(7 / 12, 6))
    assert eager["latency_ms"]["count"] == 12 and eager["latency_ms"]["repeats"] == 6
    assert eager["batch_size"] == 1


def test_benchmark_device_chooses_on_validation_and_keeps_failures(monkeypatch, tmp_path):
    """Check that the faster dynamic_int8 is best (better on validation though worse on test), that onnx_int8's
    build failure is kept as a one-line error, and memory / cost are measured for the built variants only."""
    out, memory_calls, test = _fake_device_run(monkeypatch, tmp_path)
    assert out["best_variant"] == "dynamic_int8" and out["reference_variant"] == "eager_fp32"
    assert out["variants"]["onnx_int8"] == {"error": "RuntimeError: exporter could not trace"}
    assert [v for v, _, _ in memory_calls] == ["eager_fp32", "dynamic_int8"]
    sample_texts = [test[i] for i in (0, 2, 5, 9)]
    for variant, texts, batch_size in memory_calls:
        row = out["variants"][variant]
        assert texts == sample_texts and batch_size == 2  # the largest of batch_sizes, whatever is best
        assert row["model_rss_mb"] == 10.0
        assert row["cost_per_1k_texts_usd"] == round(3.6 / 3600 / row["samples_per_s"] * 1000, 8)
        assert row["throughput"]["1"]["flips_vs_batch1"] == 0 and row["throughput"]["2"]["flips_vs_batch1"] == 0
        assert row["throughput"]["2"]["padding_share"] == 0.0
    assert out["variants"]["eager_fp32"]["speedup_p50"] == 1.0
    assert out["variants"]["dynamic_int8"]["speedup_p50"] > 1.0  # eager sleeps 2 ms a call


def test_benchmark_device_variant_failing_later_is_an_error_row(monkeypatch, tmp_path):
    """Check that a variant failing in the throughput sweep becomes {"error"} and is never the best."""
    out, memory_calls, _ = _fake_device_run(monkeypatch, tmp_path, broken="dynamic_int8")
    assert out["variants"]["dynamic_int8"] == {"error": "RuntimeError: batched inference is broken"}
    assert out["best_variant"] == "eager_fp32"
    assert [v for v, _, _ in memory_calls] == ["eager_fp32"]


def test_benchmark_device_reference_failure_is_raised(monkeypatch, tmp_path):
    """Check that without the reference variant there is no benchmark: its failure propagates."""
    with pytest.raises(RuntimeError, match="batched inference is broken"):
        _fake_device_run(monkeypatch, tmp_path, broken="eager_fp32")


# --------------------------------------------------------------------------- 7. best batch size


def test_best_batch_size_is_the_one_with_most_tokens_per_second():
    """Check that with batch 8 fastest (400 texts/s vs 100 and 200) best_batch_size is 8, with its rates."""
    clock = {"now": 0.0}
    seconds_per_call = {1: 0.01, 8: 0.02, 32: 0.16}  # 100, 400 and 200 samples/s

    def backend(batch):
        clock["now"] += seconds_per_call[len(batch["input_ids"])]
        return np.zeros((len(batch["input_ids"]), 2), dtype=np.float32)

    texts = [f"text {i}" for i in range(32)]
    result = benchmark.measure_throughput(backend, _IdEncoder(texts), texts, [1, 8, 32], 0.0,
                                          np.random.default_rng(0), clock=lambda: clock["now"])
    assert {b: r["samples_per_s"] for b, r in result["throughput"].items()} == pytest.approx(
        {"1": 100.0, "8": 400.0, "32": 200.0})
    assert {b: r["batches"] for b, r in result["throughput"].items()} == {"1": 32, "8": 4, "32": 1}
    assert result["best_batch_size"] == 8
    assert result["samples_per_s"] == pytest.approx(400.0) and result["tokens_per_s"] == pytest.approx(1200.0)
    assert result["padding_share"] == 0.0


# --------------------------------------------------------------------------- 8. memory column per device


def _served_row(model, cpu_mb, gpu_mb, accuracy):
    return {"dataset": "toy", "model": model, "accuracy": accuracy, "params": 1000,
            "cpu_variant": "onnx_int8", "cpu_accuracy": accuracy, "cpu_p95_ms": 4.0, "cpu_p95_upper_ms": 5.0,
            "cpu_model_rss_mb": cpu_mb, "cpu_cost_per_1k_texts_usd": 0.01, "gpu_variant": "eager_fp16",
            "gpu_accuracy": accuracy, "gpu_p95_ms": 0.8, "gpu_p95_upper_ms": 1.0, "gpu_memory_mb": gpu_mb,
            "gpu_cost_per_1k_texts_usd": 0.02}


@pytest.mark.parametrize("device, fits, too_big", [("gpu", "small_on_gpu", "small_on_cpu"),
                                                   ("cpu", "small_on_cpu", "small_on_gpu")])
def test_memory_limit_reads_the_serving_devices_column(device, fits, too_big):
    """Check that max_memory_mb judges gpu_memory_mb when serving on a GPU and cpu_model_rss_mb on a CPU."""
    table = pd.DataFrame([_served_row("small_on_gpu", cpu_mb=500.0, gpu_mb=100.0, accuracy=0.9),
                          _served_row("small_on_cpu", cpu_mb=100.0, gpu_mb=500.0, accuracy=0.8)], dtype=object)
    rec = recommend.recommend(table, RecommendParams(device=device, max_memory_mb=300))["toy"]
    assert rec["candidates"][fits]["memory_mb"] == 100.0 and rec["candidates"][fits]["violations"] == []
    assert rec["candidates"][too_big]["memory_mb"] == 500.0
    assert rec["candidates"][too_big]["violations"] == ["model memory (MB) 500 > 300 (max_memory_mb)"]
    assert rec["recommended"] == fits and rec["runner_up"] is None


def test_latency_limit_reads_the_p95_upper_bound_not_the_point_estimate():
    """Check that max_p95_ms judges cpu_p95_upper_ms: p95 4 ms with upper bound 5 ms fails a 4.5 ms limit."""
    table = pd.DataFrame([_served_row("tiny", 10.0, 10.0, 0.9)], dtype=object)
    rec = recommend.recommend(table, RecommendParams(max_p95_ms=4.5))["toy"]
    assert rec["candidates"]["tiny"]["p95_ms"] == 5.0
    assert rec["candidates"]["tiny"]["violations"] == ["batch-1 p95 latency (ms, 95 % upper bound) 5 > 4.5 (max_p95_ms)"]
    assert recommend.recommend(table, RecommendParams(max_p95_ms=5.0))["toy"]["recommended"] == "tiny"


def _device(best: str, rows: dict) -> dict:
    return {"status": "measured", "reference_variant": next(iter(rows)), "best_variant": best, "variants": rows}


def _measured(p50, p95_upper, rss=None, gpu=None, samples_per_s=100.0):
    row = {"latency_ms": {"p50": p50, "p50_ci": [p50 - 1, p50 + 1], "p95": p50 * 2, "p95_upper": p95_upper},
           "accuracy": 0.9, "speedup_p50": 1.0, "speedup_p50_ci": None, "samples_per_s": samples_per_s,
           "cost_per_1k_texts_usd": 0.25,
           "vs_reference": {"diff": -0.012, "low": -0.031, "high": 0.004, "p_value": 0.2345}}
    if rss is not None:
        row["model_rss_mb"] = rss
    if gpu is not None:
        row.update(gpu_memory_mb=gpu, model_rss_mb=9999.0)  # host memory of a GPU variant: not the GPU column
    return row


def test_benchmark_columns_memory_comes_from_each_devices_best_variant():
    """Check that gpu_memory_mb is the cuda best variant's GPU memory, cpu_model_rss_mb the CPU best variant's
    RSS (not the reference's), and cpu_p95_upper_ms its latency's p95_upper."""
    cpu = _device("onnx_int8", {"eager_fp32": _measured(10.0, 14.0, rss=400.0),
                                "onnx_int8": _measured(3.0, 4.5, rss=120.0)})
    cuda = _device("eager_fp16", {"eager_fp32": _measured(2.0, 3.0, gpu=800.0),
                                  "eager_fp16": _measured(1.0, 1.5, gpu=350.0)})
    row = leaderboard.benchmark_columns({"size_mb": 80.0, "cpu": cpu, "cuda": cuda})
    assert row["cpu_model_rss_mb"] == 120.0 and row["gpu_memory_mb"] == 350.0
    assert row["cpu_p95_upper_ms"] == 4.5 and row["gpu_p95_upper_ms"] == 1.5
    assert row["cpu_p95_ms"] == 6.0 and row["gpu_p50_ms"] == 1.0 and row["gpu_variant"] == "eager_fp16"
    assert row["cpu_cost_per_1k_texts_usd"] == 0.25 and row["gpu_cost_per_1k_texts_usd"] == 0.25
    assert row["cpu_vs_reference"] == "-1.2 pt [-3.1, +0.4], p=0.23"
    assert "gpu_model_rss_mb" not in row and "cpu_memory_mb" not in row


@pytest.mark.parametrize("cuda", [{"status": "unavailable", "reason": "no CUDA GPU on this machine"},
                                  {"status": "not_applicable", "reason": "CPU-only model"}, None])
def test_benchmark_columns_unmeasured_device_gives_none_not_zero(cuda):
    """Check that an unmeasured (or absent) GPU gives None for every GPU number, never 0."""
    cpu = _device("eager_fp32", {"eager_fp32": _measured(10.0, None, rss=400.0)})
    bench = {"size_mb": 1.0, "cpu": cpu} if cuda is None else {"size_mb": 1.0, "cpu": cpu, "cuda": cuda}
    row = leaderboard.benchmark_columns(bench)
    for column in ("gpu_p50_ms", "gpu_p95_ms", "gpu_p95_upper_ms", "gpu_memory_mb", "gpu_cost_per_1k_texts_usd",
                   "gpu_samples_per_s", "gpu_accuracy"):
        assert row.get(column) is None, column
    assert row["cpu_p95_upper_ms"] is None  # too few calls for a bound: None, not 0
    assert row["gpu_variant"] == ("not measured" if cuda is None else
                                  {"unavailable": "unavailable", "not_applicable": "not applicable (CPU-only model)"}[
                                      cuda["status"]])


# --------------------------------------------------------------------------- 9. ONNX agrees with eager


def test_onnx_fp32_logits_match_eager_fp32_on_a_padded_batch(built):
    """Check that onnx_fp32 and eager_fp32 give the same logits (within 1e-4) on a padded batch of different lengths."""
    batch = built["batch"]
    assert (batch["attention_mask"] == 0).any()  # there is padding to get right
    eager, onnx_fp32 = built["eager_fp32"](batch), built["onnx_fp32"](batch)
    assert eager.shape == onnx_fp32.shape == (len(TEXTS), 2) and eager.dtype == onnx_fp32.dtype == np.float32
    np.testing.assert_allclose(onnx_fp32, eager, atol=1e-4, rtol=0)
    assert np.ptp(eager, axis=0).max() > 0.1  # the rows differ: agreement is not trivial
    unmasked = dict(batch, attention_mask=np.ones_like(batch["attention_mask"]))
    assert np.abs(built["eager_fp32"](unmasked) - eager).max() > 0.01  # padding handled wrongly would show
    encoder = built["encoder"]
    alone = np.concatenate([built["onnx_fp32"](encoder([text])) for text in TEXTS])
    np.testing.assert_allclose(onnx_fp32, alone, atol=1e-4, rtol=0)  # padded or not, the same logits


@pytest.mark.parametrize("variant, atol", [("eager_fp32", 0.0), ("onnx_fp32", 1e-4), ("dynamic_int8", 0.2),
                                           ("onnx_int8", 0.2)])
def test_every_cpu_variant_agrees_with_eager_fp32(built, variant, atol):
    """Check that each CPU variant's logits on a padded batch and on single texts stay within its tolerance of
    eager_fp32's (fp32 variants tight, int8 ones looser), as float32 of shape (texts, classes)."""
    eager = built["eager_fp32"](built["batch"])
    out = built[variant](built["batch"])
    assert out.shape == (len(TEXTS), 2) and out.dtype == np.float32
    np.testing.assert_allclose(out, eager, atol=atol, rtol=0)
    encoder = built["encoder"]
    alone = np.concatenate([built[variant](encoder([text])) for text in TEXTS])
    np.testing.assert_allclose(alone, eager, atol=max(atol, 1e-4), rtol=0)


def test_onnx_int8_file_is_smaller_with_int8_weights(built):
    """Check that the int8 ONNX file is a different, smaller model whose weights are stored as int8."""
    import onnx

    fp32_file, int8_file = built["workdir"] / "model.onnx", built["workdir"] / "model.int8.onnx"
    assert int8_file.stat().st_size < fp32_file.stat().st_size
    int8_types = {t.data_type for t in onnx.load(str(int8_file)).graph.initializer}
    fp32_types = {t.data_type for t in onnx.load(str(fp32_file)).graph.initializer}
    assert onnx.TensorProto.INT8 in int8_types and onnx.TensorProto.INT8 not in fp32_types


def test_variant_registry_has_the_cpu_variants_the_params_default_to():
    """Check that every default CPU variant is registered for the CPU, the int8 ones only there."""
    assert set(BenchmarkParams().cpu_variants) <= set(backends.variant_names("cpu"))
    assert "dynamic_int8" not in backends.variant_names("cuda") and "onnx_int8" not in backends.variant_names("cuda")
    assert backends.VARIANTS["eager_bf16"].needs_bf16 and not backends.VARIANTS["eager_fp16"].needs_bf16


# --------------------------------------------------------------------------- 10. recommendation.json


def test_recommendation_json_names_model_runner_up_and_a_real_comparison(tmp_path):
    """Check that recommend() on a small table gives the recommended model, runner-up, comparison and JSON keys."""
    n = 100
    best_right = np.arange(n) < 90  # 90 % right
    second_right = np.arange(n) < 80  # 80 %, a subset of the best's right answers
    correct = {"big": pd.Series(best_right), "mid": pd.Series(second_right),
               "small": pd.Series(np.arange(n) < 70), "least": pd.Series(np.arange(n) < 60)}
    calls = []

    def compare(dataset, a, b, device):
        calls.append((dataset, a["model"], b["model"], device))
        return leaderboard.paired_comparison(correct[a["model"]], correct[b["model"]], 200, seed=0, alpha=0.05)

    table = pd.DataFrame([_served_row("big", 400.0, None, 0.90), _served_row("mid", 200.0, None, 0.80),
                          _served_row("small", 50.0, None, 0.70), _served_row("least", 40.0, None, 0.60)],
                         dtype=object)
    table.loc[table["model"] == "big", "cpu_p95_upper_ms"] = 80.0
    cfg = RecommendParams(max_p95_ms=50.0)  # excludes big; mid, small and least qualify
    recs = recommend.recommend(table, cfg, compare)
    assert list(recs) == ["toy"]
    rec = recs["toy"]
    assert set(rec) == {"dataset", "device", "objective", "recommended", "runner_up", "candidates", "comparison",
                        "leaderboard_first"}
    assert rec["leaderboard_first"] is None  # no rank column: not a ranked leaderboard
    assert (rec["dataset"], rec["device"], rec["objective"]) == ("toy", "cpu", "accuracy")
    assert (rec["recommended"], rec["runner_up"]) == ("mid", "small")
    assert calls == [("toy", "mid", "small", "cpu")]  # recommended minus runner-up
    comp = rec["comparison"]
    assert set(comp) == {"diff", "low", "high", "p_value", "significant", "n"}
    assert comp["diff"] == pytest.approx(0.10) and 0.0 < comp["low"] <= 0.10 <= comp["high"]
    assert comp["p_value"] == pytest.approx(2 / 2**10)  # 10 discordant pairs, all for mid
    assert comp["significant"] is True and comp["n"] == n
    assert set(rec["candidates"]) == {"big", "mid", "small", "least"}
    mid = rec["candidates"]["mid"]
    assert set(mid) == {"model", "variant", "benchmark", "evaluate_variant", "accuracy", "p95_ms", "memory_mb",
                        "cost_per_1k_texts_usd", "params", "violations"}
    assert (mid["variant"], mid["benchmark"]) == ("onnx_int8", "measured")
    assert (mid["accuracy"], mid["memory_mb"]) == (0.8, 200.0)
    assert rec["candidates"]["big"]["violations"] == ["batch-1 p95 latency (ms, 95 % upper bound) 80 > 50 (max_p95_ms)"]
    text = json.dumps(recs, allow_nan=False)  # plain JSON, no NaN
    io.write_json(tmp_path / "recommendation.json", recs)  # as the aggregate stage writes it
    assert json.loads((tmp_path / "recommendation.json").read_text()) == json.loads(text)
