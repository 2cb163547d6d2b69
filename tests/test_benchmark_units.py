"""Unit tests of the inference benchmark: timing, statistics, cost, summary, leaderboard view, params.

Fast, CPU-only and deterministic: timing loops run on fake clocks. The one real run (benchmark_model on the
tiny BERT from conftest) is in tests/test_benchmark_run.py.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from textcls import kinds
from textcls.records import Unmeasured
from textcls.bench import benchmark

from textcls.bench import hardware

from textcls.bench import latency

from textcls.report import leaderboard
from textcls.errors import ParamsError
from textcls.config.params import BenchmarkParams, parse_params

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

NO_GPU = {"status": "unavailable", "reason": "no CUDA GPU on this machine"}


# --------------------------------------------------------------------------- helpers


class FakeClock:
    """A clock that only moves when told to (``advance``); counts how often it is read."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def recorder(clock: FakeClock, warmup: int, warmup_cost: float, call_cost: float):
    """fn(i) for latency.measure: records i and advances the clock (warm-up calls cost more)."""
    calls: list[int] = []

    def fn(i: int) -> None:
        calls.append(i)
        clock.advance(warmup_cost if i < warmup else call_cost)

    return fn, calls


def variant_row(p50: float, accuracy: float, samples_per_s: float, validation_accuracy: float | None = None,
                p95: float | None = None, p95_upper: float | None = None, speedup: float = 1.0) -> dict:
    """A measured variant as benchmark_device reports it (the keys summarize and benchmark_columns read)."""
    return {"latency_ms": {"count": 60, "repeats": 6, "p50": p50, "p50_ci": [p50 * 0.9, p50 * 1.1],
                           "p95": p95 if p95 is not None else p50 * 1.5, "p95_ci": None,
                           "p95_upper": p95_upper if p95_upper is not None else p50 * 2.0},
            "accuracy": accuracy, "validation_accuracy": validation_accuracy if validation_accuracy is not None
            else accuracy, "samples_per_s": samples_per_s, "tokens_per_s": samples_per_s * 10,
            "speedup_p50": speedup, "speedup_p50_ci": [speedup * 0.9, speedup * 1.1],
            "cost_per_1k_texts_usd": round(latency.cost_per_1k_texts(samples_per_s, 3.60), 8),
            "model_rss_mb": 42.0, "peak_rss_mb": 300.0,
            "vs_reference": {"diff": 0.0, "low": 0.0, "high": 0.0, "p_value": 1.0}}


def hand_made_variants() -> dict:
    """Baseline first; a faster variant that loses too much accuracy; an acceptable one; a failure."""
    return {
        "eager_fp32": variant_row(p50=10.0, accuracy=0.90, samples_per_s=100.0),
        "dynamic_int8": variant_row(p50=4.0, accuracy=0.85, samples_per_s=250.0, speedup=2.5),  # fastest, -0.05
        "onnx_fp32": variant_row(p50=5.0, accuracy=0.898, samples_per_s=200.0, speedup=2.0,  # -0.002: acceptable
                                 p95_upper=9.25),
        "onnx_int8": {"error": "RuntimeError: exporter could not trace"},
    }


def walk_keys(node, prefix=""):
    """Every dotted key of a nested dict."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield f"{prefix}{k}"
            yield from walk_keys(v, f"{prefix}{k}.")


@pytest.fixture(scope="module")
def params_raw(project_root) -> dict:
    """The parsed real params.yaml (tests deep-copy before mutating)."""
    return yaml.safe_load((project_root / "params.yaml").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- 1. Latency statistics


def ms(values):
    return [v / 1000 for v in values]


def test_repeated_latency_from_repeats_hand_computed():
    """Check that from_repeats reports ms: median of the per-repeat p50s, pooled mean, min and max."""
    repeats = [ms([r, r + 1, r + 2]) for r in range(1, 7)]  # p50s 2..7 ms
    lat = latency.RepeatedLatency.from_repeats(repeats)
    assert (lat.count, lat.repeats) == (18, 6)
    assert lat.p50 == pytest.approx(4.5) and lat.p50_ci == [pytest.approx(2.0), pytest.approx(7.0)]
    assert lat.mean == pytest.approx(4.5) and lat.min == pytest.approx(1.0) and lat.max == pytest.approx(8.0)
    assert lat.p95_upper is None and lat.p99 is None  # 18 calls: too few to bound a tail percentile
    assert latency.LATENCY_UNIT == "ms"


def test_repeated_latency_accepts_numpy_arrays_and_unsorted_repeats():
    """Check that from_repeats gives the same statistics for numpy arrays shuffled within each repeat."""
    rng = np.random.default_rng(0)
    repeats = [sorted(rng.exponential(0.01, size=9).tolist()) for _ in range(6)]
    shuffled = [rng.permutation(np.array(r)) for r in repeats]
    got, want = latency.RepeatedLatency.from_repeats(shuffled), latency.RepeatedLatency.from_repeats(repeats)
    assert got.to_dict(digits=9) == want.to_dict(digits=9)  # equal up to the order of a float sum


def test_repeated_latency_single_call_per_repeat():
    """Check that one call per repeat gives p50 = p95 = the median call, and min/max of the calls."""
    lat = latency.RepeatedLatency.from_repeats([[0.0025]] * 6)
    assert lat.count == 6 and lat.p50 == lat.p95 == lat.min == lat.max == lat.mean == pytest.approx(2.5)


@pytest.mark.parametrize("repeats", [[], [[]], [np.array([])], [[0.001, -0.0001]], [[0.001, float("nan")]]],
                         ids=["no-repeats", "empty-list", "empty-array", "negative", "nan"])
def test_repeated_latency_rejects_empty_negative_and_nan(repeats):
    """Check that no values, a negative or a NaN value raise ValueError."""
    with pytest.raises(ValueError):
        latency.RepeatedLatency.from_repeats(repeats)


def test_repeated_latency_to_dict_rounds_floats_and_keeps_count():
    """Check that to_dict rounds every float to the requested digits, keeps count an int and is JSON."""
    lat = latency.RepeatedLatency.from_repeats([[0.0012345678, 0.0023456789]] * 6)
    d = lat.to_dict()
    assert d["count"] == 12 and isinstance(d["count"], int)
    assert d["min"] == 1.2346 and d["max"] == 2.3457
    assert lat.to_dict(digits=1)["min"] == 1.2
    assert all(v == round(v, 4) for k, v in d.items() if isinstance(v, float))
    json.dumps(d)  # plain Python numbers, JSON-serialisable


# --------------------------------------------------------------------------- 2. measure / timer_overhead


def test_measure_runs_untimed_warmup_first():
    """Check that warm-up calls get indices 0..warmup-1 first and are not part of the timings."""
    clock = FakeClock()
    fn, calls = recorder(clock, warmup=3, warmup_cost=100.0, call_cost=0.5)
    values = latency.measure(fn, warmup=3, min_iterations=4, min_seconds=0.0, clock=clock)
    assert calls == [0, 1, 2, 3, 4, 5, 6]  # warm-up 0..2, then timed calls go on counting
    assert values == [0.5] * 4  # the 100 s warm-up calls never show up


def test_measure_stops_when_iterations_bind():
    """Check that with min_seconds already met, measuring continues until min_iterations calls."""
    clock = FakeClock()
    fn, calls = recorder(clock, warmup=0, warmup_cost=0.0, call_cost=1.0)
    values = latency.measure(fn, warmup=0, min_iterations=5, min_seconds=2.0, clock=clock)
    assert len(values) == 5 and values == [1.0] * 5
    assert calls == [0, 1, 2, 3, 4]


def test_measure_stops_when_seconds_bind():
    """Check that with min_iterations already met, measuring continues until min_seconds of timed calls."""
    clock = FakeClock()
    fn, calls = recorder(clock, warmup=2, warmup_cost=50.0, call_cost=1.0)
    values = latency.measure(fn, warmup=2, min_iterations=2, min_seconds=10.0, clock=clock)
    # 50 s of warm-up does not count towards min_seconds: 10 timed calls of 1 s are needed.
    assert len(values) == 10 and sum(values) == pytest.approx(10.0)
    assert calls == list(range(12))


def test_measure_zero_warmup_and_one_iteration():
    """Check that warmup=0, min_iterations=1 and min_seconds=0 time exactly one call."""
    clock = FakeClock()
    fn, calls = recorder(clock, warmup=0, warmup_cost=0.0, call_cost=0.25)
    assert latency.measure(fn, warmup=0, min_iterations=1, min_seconds=0.0, clock=clock) == [0.25]
    assert calls == [0]


@pytest.mark.parametrize("kwargs", [
    {"warmup": -1, "min_iterations": 1, "min_seconds": 0.0},
    {"warmup": 0, "min_iterations": 0, "min_seconds": 0.0},
    {"warmup": 0, "min_iterations": -3, "min_seconds": 0.0},
    {"warmup": 0, "min_iterations": 1, "min_seconds": -0.1},
], ids=["negative-warmup", "zero-iterations", "negative-iterations", "negative-seconds"])
def test_measure_rejects_invalid_arguments(kwargs):
    """Check that invalid warm-up, iteration or duration settings raise ValueError before any call."""
    calls = []
    with pytest.raises(ValueError):
        latency.measure(calls.append, clock=FakeClock(), **kwargs)
    assert calls == []


def test_timer_overhead_is_small_and_non_negative():
    """Check that timer_overhead on the real clock returns a small non-negative float."""
    overhead = latency.timer_overhead(iterations=2000)
    assert isinstance(overhead, float)
    assert 0.0 <= overhead < 1e-3  # well under a millisecond per call


def test_timer_overhead_on_fake_clock_is_the_clock_step():
    """Check that timer_overhead averages what the clock advances between the two reads of each call."""
    clock = FakeClock()

    def ticking() -> float:
        clock.advance(1.0)
        return clock()

    assert latency.timer_overhead(iterations=10, clock=ticking) == pytest.approx(1.0)


# --------------------------------------------------------------------------- 3. throughput / cost


def test_throughput_hand_computed():
    """Check that throughput divides samples and tokens by seconds."""
    assert latency.throughput(10, 2000, 2.0) == {"samples_per_s": pytest.approx(5.0),
                                                 "tokens_per_s": pytest.approx(1000.0)}
    assert latency.throughput(0, 0, 0.5) == {"samples_per_s": 0.0, "tokens_per_s": 0.0}


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan"), float("inf"), float("-inf")])
def test_throughput_rejects_bad_seconds(seconds):
    """Check that non-positive or non-finite seconds raise ValueError."""
    with pytest.raises(ValueError):
        latency.throughput(1, 10, seconds)


def test_cost_per_1k_texts_hand_computed():
    """Check that 1 text/s at $3.60/h costs $1.00 per 1,000 texts (and scales as expected)."""
    assert latency.cost_per_1k_texts(1.0, 3.60) == pytest.approx(1.0)
    assert latency.cost_per_1k_texts(2.0, 3.60) == pytest.approx(0.5)
    assert latency.cost_per_1k_texts(1.0, 0.10) == pytest.approx(0.1 / 3.6)
    assert latency.cost_per_1k_texts(1000.0, 0.0) == 0.0


@pytest.mark.parametrize("samples_per_s, price", [(0.0, 1.0), (-5.0, 1.0), (1000.0, -0.01)],
                         ids=["zero-speed", "negative-speed", "negative-price"])
def test_cost_per_1k_texts_rejects_bad_inputs(samples_per_s, price):
    """Check that samples_per_s <= 0 or a negative price raise ValueError."""
    with pytest.raises(ValueError):
        latency.cost_per_1k_texts(samples_per_s, price)


@pytest.mark.parametrize("samples_per_s, price", [(float("nan"), 1.0), (1000.0, float("nan")), (float("inf"), 1.0)])
def test_cost_rejects_non_finite_inputs(samples_per_s, price):
    """Check that cost_per_1k_texts refuses NaN/inf instead of returning NaN or 0."""
    with pytest.raises(ValueError):
        latency.cost_per_1k_texts(samples_per_s, price)


# --------------------------------------------------------------------------- 4. summarize


def test_summarize_accuracy_deltas_relative_to_first_variant():
    """Check that summarize adds test and validation accuracy deltas against the first variant, order kept."""
    out = benchmark.summarize(hand_made_variants(), max_accuracy_drop=0.005)
    assert out["reference_variant"] == "eager_fp32" and out["status"] == "measured"
    rows = out["variants"]
    assert list(rows) == ["eager_fp32", "dynamic_int8", "onnx_fp32", "onnx_int8"]  # order kept
    assert rows["eager_fp32"]["accuracy_delta"] == 0.0 and rows["eager_fp32"]["validation_accuracy_delta"] == 0.0
    assert rows["dynamic_int8"]["accuracy_delta"] == -0.05 and rows["dynamic_int8"]["validation_accuracy_delta"] == -0.05
    assert rows["onnx_fp32"]["accuracy_delta"] == -0.002 and rows["onnx_fp32"]["validation_accuracy_delta"] == -0.002


def test_summarize_best_is_fastest_within_accuracy_budget():
    """Check that best_variant skips a faster variant that loses too much (validation) accuracy."""
    out = benchmark.summarize(hand_made_variants(), max_accuracy_drop=0.005)
    assert out["best_variant"] == "onnx_fp32"  # dynamic_int8 is faster but 5 points worse
    relaxed = benchmark.summarize(hand_made_variants(), max_accuracy_drop=0.1)
    assert relaxed["best_variant"] == "dynamic_int8"
    strict = benchmark.summarize(hand_made_variants(), max_accuracy_drop=0.0)
    assert strict["best_variant"] == "eager_fp32"  # only the baseline itself is within 0


def test_summarize_accuracy_drop_at_the_limit_is_acceptable():
    """Check that a variant losing exactly max_accuracy_drop still counts as acceptable."""
    variants = {"eager_fp32": variant_row(10.0, 0.900, 100.0), "onnx_int8": variant_row(3.0, 0.895, 300.0)}
    assert benchmark.summarize(variants, max_accuracy_drop=0.005)["best_variant"] == "onnx_int8"


def test_summarize_chooses_on_validation_not_test_accuracy():
    """Check that a faster variant better on test but too much worse on validation is not chosen."""
    variants = {"eager_fp32": variant_row(10.0, 0.90, 100.0, validation_accuracy=0.90),
                "onnx_int8": variant_row(3.0, 0.95, 300.0, validation_accuracy=0.88)}
    assert benchmark.summarize(variants, max_accuracy_drop=0.005)["best_variant"] == "eager_fp32"
    variants = {"eager_fp32": variant_row(10.0, 0.90, 100.0, validation_accuracy=0.90),
                "onnx_int8": variant_row(3.0, 0.80, 300.0, validation_accuracy=0.90)}
    assert benchmark.summarize(variants, max_accuracy_drop=0.005)["best_variant"] == "onnx_int8"


def test_summarize_keeps_failed_variant_unchanged_and_never_picks_it():
    """Check that an {"error": ...} variant is kept as it is and never chosen as best."""
    variants = hand_made_variants()
    failed = copy.deepcopy(variants["onnx_int8"])
    for drop in (0.0, 0.005, 0.5):
        out = benchmark.summarize(copy.deepcopy(variants), drop)
        assert out["variants"]["onnx_int8"] == failed
        assert out["best_variant"] != "onnx_int8"


def test_summarize_single_variant_is_its_own_best():
    """Check that a lone (reference) variant is the best one."""
    out = benchmark.summarize({"sklearn": variant_row(0.2, 0.8, 5000.0)}, 0.005)
    assert out["best_variant"] == out["reference_variant"] == "sklearn"


# --------------------------------------------------------------------------- 5. leaderboard


def test_pareto_front_excludes_dominated_points():
    """Check that pareto_front keeps only points no other point beats on latency and accuracy."""
    points = [(10.0, 0.90), (5.0, 0.85), (20.0, 0.80), (12.0, 0.90), (2.0, 0.70), (5.0, 0.84)]
    # (20, .80) and (12, .90) lose to (10, .90); (5, .84) loses to (5, .85) on accuracy alone.
    assert leaderboard.pareto_front(points) == [0, 1, 4]


def test_pareto_front_keeps_identical_points_and_handles_trivial_sets():
    """Check that identical points are both kept (neither beats the other) and empty/single sets work."""
    assert leaderboard.pareto_front([(5.0, 0.9), (5.0, 0.9), (6.0, 0.9)]) == [0, 1]
    assert leaderboard.pareto_front([]) == []
    assert leaderboard.pareto_front([(3.0, 0.5)]) == [0]
    # a strict trade-off curve: every point is on the front
    assert leaderboard.pareto_front([(1.0, 0.6), (2.0, 0.7), (3.0, 0.8)]) == [0, 1, 2]


def test_benchmark_columns_gpu_unavailable_gives_none_not_zero():
    """Check that an unavailable cuda device gives gpu_variant "unavailable" and None numbers (never 0)."""
    cpu = benchmark.summarize(hand_made_variants(), 0.005)
    row = leaderboard.benchmark_columns({"size_mb": 1.25, "cpu": cpu, "cuda": NO_GPU})
    assert row["gpu_variant"] == "unavailable"
    assert row["gpu_p50_ms"] is None and row["gpu_p95_ms"] is None and row["gpu_p95_upper_ms"] is None
    assert row.get("gpu_memory_mb") is None and row.get("gpu_cost_per_1k_texts_usd") is None
    assert row["size_mb"] == 1.25


def test_benchmark_columns_cpu_numbers_come_from_best_variant():
    """Check that the cpu_* columns are the best variant's latency, speed-up, throughput, memory and cost."""
    cpu = benchmark.summarize(hand_made_variants(), 0.005)
    row = leaderboard.benchmark_columns({"size_mb": 0.5, "cpu": cpu, "cuda": NO_GPU})
    best = cpu["variants"]["onnx_fp32"]
    assert row["cpu_variant"] == "onnx_fp32"
    assert row["cpu_p50_ms"] == 5.0 and row["cpu_p95_ms"] == 7.5 and row["cpu_p95_upper_ms"] == 9.25
    assert row["cpu_p50_ci"] == best["latency_ms"]["p50_ci"]
    assert row["cpu_speedup"] == 2.0 and row["cpu_speedup_ci"] == best["speedup_p50_ci"]
    assert row["cpu_accuracy"] == 0.898
    assert row["cpu_cost_per_1k_texts_usd"] == pytest.approx(3.60 / 3600 / 200 * 1000)
    assert row["cpu_samples_per_s"] == best["samples_per_s"]
    assert row["cpu_model_rss_mb"] == 42.0
    assert row["cpu_vs_reference"] == "+0.0 pt [+0.0, +0.0], p=1"


def test_benchmark_columns_tfidf_not_applicable_on_gpu():
    """Check that a not-applicable cuda result shows as "not applicable (<reason>)" with None latencies."""
    cpu = benchmark.summarize({"sklearn": variant_row(0.2, 0.8, 5000.0)}, 0.005)
    cuda = {"status": "not_applicable", "reason": "CPU-only model"}
    row = leaderboard.benchmark_columns({"size_mb": 0.1, "cpu": cpu, "cuda": cuda})
    assert row["cpu_variant"] == "sklearn" and row["cpu_speedup"] == 1.0
    assert row["gpu_variant"] == "not applicable (CPU-only model)" and row["gpu_p50_ms"] is None


def _pareto_table(dtype=None) -> pd.DataFrame:
    rows = [
        {"dataset": "toy", "model": "tiny", "accuracy": 0.90, "params": 120_000, "cpu_p95_ms": 3.5,
         "cpu_variant": "onnx_int8"},
        {"dataset": "toy", "model": "tfidf", "accuracy": 0.80, "params": 5_000, "cpu_p95_ms": 0.3,
         "cpu_variant": "sklearn"},
        {"dataset": "toy", "model": "big", "accuracy": 0.85, "params": 9_000_000, "cpu_p95_ms": 40.0,
         "cpu_variant": "eager_fp32"},
        {"dataset": "news", "model": "tiny", "accuracy": 0.70, "params": 120_000, "cpu_p95_ms": 2.0,
         "cpu_variant": "dynamic_int8"},
    ]
    for row in rows:
        row["cpu_accuracy"] = row["accuracy"] - 0.001  # the best variant's own accuracy
    return pd.DataFrame(rows, dtype=dtype)


def test_pareto_png_returns_png_bytes():
    """Check that pareto_png renders a small leaderboard table to PNG bytes."""
    png = leaderboard.pareto_png(_pareto_table())
    assert isinstance(png, bytes) and png[:8] == PNG_MAGIC and len(png) > 1000


def test_pareto_png_handles_object_columns_and_missing_latency():
    """Check that pareto_png works on an object-dtype table (as collect builds) with a row lacking latency."""
    table = _pareto_table(dtype=object)
    extra = pd.DataFrame([{"dataset": "toy", "model": "nobench", "accuracy": 0.5, "params": 10,
                           "cpu_p95_ms": None, "cpu_variant": None}], dtype=object)
    png = leaderboard.pareto_png(pd.concat([table, extra], ignore_index=True))
    assert png[:8] == PNG_MAGIC


def test_pareto_png_without_benchmark_columns_still_renders():
    """Check that a table with no cpu_p95_ms column gives an (empty) PNG instead of failing."""
    table = _pareto_table().drop(columns=["cpu_p95_ms", "cpu_variant"])
    assert leaderboard.pareto_png(table)[:8] == PNG_MAGIC


# --------------------------------------------------------------------------- 6. each kind's variants per device


def test_device_variants_cuda_unavailable_without_gpu(monkeypatch):
    """Check that without a GPU a transformer's cuda device is Unmeasured("unavailable"), not an empty list."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = kinds.get("transformer").variants("cuda", BenchmarkParams())
    assert isinstance(result, Unmeasured) and result.status == "unavailable"
    assert result.to_json() == {"status": "unavailable", "reason": "no CUDA GPU on this machine"}
    assert kinds.get("transformer").variants("cpu", BenchmarkParams()) == list(BenchmarkParams().cpu_variants)


def test_device_variants_tfidf_is_sklearn_on_cpu_only(monkeypatch):
    """Check that a TF-IDF model gets ["sklearn"] on cpu and "not applicable" on cuda, GPU or not."""
    import torch

    cfg = BenchmarkParams()
    assert kinds.get("tfidf").variants("cpu", cfg) == ["sklearn"]
    for available in (False, True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda a=available: a)
        result = kinds.get("tfidf").variants("cuda", cfg)
        assert isinstance(result, Unmeasured) and result.label == "not applicable (CPU-only model)"


def test_device_variants_cpu_uses_configured_list(monkeypatch):
    """Check that the cpu device gives the configured cpu_variants in their order."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = BenchmarkParams(cpu_variants=["onnx_int8", "eager_fp32"])
    assert kinds.get("transformer").variants("cpu", cfg) == ["onnx_int8", "eager_fp32"]
    assert kinds.get("transformer").variants("cpu", BenchmarkParams()) == list(BenchmarkParams().cpu_variants)


def test_device_variants_cuda_drops_bf16_when_unsupported(monkeypatch):
    """Check that with a GPU lacking bf16 the cuda list is the configured one without eager_bf16."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    cfg = BenchmarkParams()
    assert kinds.get("transformer").variants("cuda", cfg) == [
        v for v in cfg.cuda_variants if v != "eager_bf16"]
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert kinds.get("transformer").variants("cuda", cfg) == list(cfg.cuda_variants)


# --------------------------------------------------------------------------- 7. params


def test_real_params_yaml_benchmark_section_parses(params_raw):
    """Check that the real params.yaml benchmark section parses into BenchmarkParams with eager_fp32 first."""
    cfg = parse_params(copy.deepcopy(params_raw)).benchmark
    assert isinstance(cfg, BenchmarkParams)
    assert cfg.cpu_variants[0] == "eager_fp32" and cfg.cuda_variants[0] == "eager_fp32"
    assert set(cfg.price_per_hour) == {"cpu", "cuda"}
    assert 0 <= cfg.max_accuracy_drop < 1
    assert cfg.repeats >= 6 and cfg.throughput_texts >= 1


def test_benchmark_params_defaults_and_the_smallest_repeats():
    """Check the defaults and that 6 repeats (the fewest with a 95 % median interval) are accepted."""
    cfg = BenchmarkParams()
    assert (cfg.warmup, cfg.repeats, cfg.max_served_texts, cfg.throughput_texts) == (10, 10, None, 128)
    assert cfg.batch_sizes == [1, 8, 32] and cfg.price_per_hour == {"cpu": 0.10, "cuda": 2.50}
    assert BenchmarkParams(repeats=6).repeats == 6


def _set(key, value):
    def mutate(bench):
        bench[key] = value
    return mutate


def _del_price_cuda(bench):
    del bench["price_per_hour"]["cuda"]


def _negative_price(bench):
    bench["price_per_hour"]["cpu"] = -0.1


BAD_BENCHMARK = [
    ("unknown-variant", _set("cpu_variants", ["eager_fp32", "tensorrt_int4"]), "benchmark.cpu_variants"),
    ("duplicate-variant", _set("cpu_variants", ["eager_fp32", "onnx_fp32", "eager_fp32"]), "benchmark.cpu_variants"),
    ("empty-variants", _set("cpu_variants", []), "benchmark.cpu_variants"),
    ("cpu-only-variant-on-cuda", _set("cuda_variants", ["eager_fp32", "dynamic_int8"]), "benchmark.cuda_variants"),
    ("empty-batch-sizes", _set("batch_sizes", []), "benchmark.batch_sizes"),
    ("batch-size-zero", _set("batch_sizes", [1, 0]), "benchmark.batch_sizes"),
    ("batch-size-bool", _set("batch_sizes", [True]), "benchmark.batch_sizes"),
    ("negative-warmup", _set("warmup", -1), "benchmark.warmup"),
    ("repeats-5", _set("repeats", 5), "benchmark.repeats"),
    ("repeats-bool", _set("repeats", True), "benchmark.repeats"),
    ("zero-served-texts", _set("max_served_texts", 0), "benchmark.max_served_texts"),
    ("zero-throughput-texts", _set("throughput_texts", 0), "benchmark.throughput_texts"),
    ("negative-throughput-seconds", _set("throughput_min_seconds", -1.0), "benchmark.throughput_min_seconds"),
    ("negative-threads", _set("threads", -2), "benchmark.threads"),
    ("price-extra-device", _set("price_per_hour", {"cpu": 0.1, "cuda": 2.5, "tpu": 1.0}),
     "benchmark.price_per_hour"),
    ("price-missing-cuda", _del_price_cuda, "benchmark.price_per_hour"),
    ("price-negative", _negative_price, "benchmark.price_per_hour"),
    ("accuracy-drop-1.5", _set("max_accuracy_drop", 1.5), "benchmark.max_accuracy_drop"),
    ("accuracy-drop-negative", _set("max_accuracy_drop", -0.1), "benchmark.max_accuracy_drop"),
    ("unknown-key", _set("warmpu", 3), "benchmark"),
]


@pytest.mark.parametrize("mutate, key", [(m, k) for _, m, k in BAD_BENCHMARK], ids=[i for i, _, _ in BAD_BENCHMARK])
def test_bad_benchmark_params_raise_params_error_naming_the_key(params_raw, mutate, key):
    """Check that each invalid benchmark setting raises ParamsError naming the offending key."""
    raw = copy.deepcopy(params_raw)
    mutate(raw["benchmark"])
    with pytest.raises(ParamsError) as info:
        parse_params(raw)
    message = str(info.value)
    assert key in message
    if key == "benchmark":  # unknown key: the message names the section and the bad key
        assert "warmpu" in message and "Unknown key" in message


def test_repeats_below_six_is_rejected_saying_six():
    """Check that 'repeats: 5' is refused with a message naming benchmark.repeats and the minimum 6."""
    with pytest.raises(ParamsError, match=r"benchmark\.repeats.*>= 6"):
        parse_params({**yaml.safe_load(Path(__file__).resolve().parents[1].joinpath("params.yaml").read_text()),
                      "benchmark": {"repeats": 5}})


@pytest.mark.parametrize("old_key, value", [("min_iterations", 50), ("min_seconds", 1.0), ("latency_texts", 64),
                                            ("llm_api_price_per_1m_tokens", 15.0)])
def test_removed_benchmark_keys_are_unknown(params_raw, old_key, value):
    """Check that the keys of the old benchmark method are refused as unknown keys, naming them."""
    raw = copy.deepcopy(params_raw)
    raw["benchmark"][old_key] = value
    with pytest.raises(ParamsError) as info:
        parse_params(raw)
    message = str(info.value)
    assert "Unknown key" in message and old_key in message and "benchmark" in message


def test_params_error_does_not_leak_into_the_shared_raw_dict(params_raw):
    """Check that the module-level params fixture is still valid after the mutation tests (deep copies work)."""
    assert parse_params(copy.deepcopy(params_raw)).benchmark.warmup >= 0


# --------------------------------------------------------------------------- 8. hardware fingerprint


VOLATILE = ("mhz", "free", "load", "time")


def test_fingerprint_is_stable_and_has_no_volatile_fields(monkeypatch):
    """Check that fingerprint() is identical across calls, has cpu model/cores, gpu "unavailable", no volatile keys."""
    import torch

    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(fail_init=True))
    first, second = hardware.fingerprint(), hardware.fingerprint()
    assert first == second
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert isinstance(first["cpu"]["model"], str) and first["cpu"]["model"]
    assert isinstance(first["cpu"]["usable_cores"], int) and first["cpu"]["usable_cores"] >= 1
    assert first["gpu"] == "unavailable"
    # package names are distribution names (onnxruntime contains "time"), not measured values
    assert set(first["packages"]) == {"torch", "transformers", "onnxruntime", "scikit-learn"}
    facts = {k: v for k, v in first.items() if k != "packages"}
    volatile = [k for k in walk_keys(facts) if any(word in k.lower() for word in VOLATILE)]
    assert volatile == []
    assert first["packages"]["torch"] == torch.__version__



class FakeNvml(types.ModuleType):
    """pynvml with one GPU (or none: nvmlInit fails as without a driver)."""

    def __init__(self, fail_init=False):
        super().__init__("pynvml")
        self.fail_init, self.shutdown = fail_init, 0

    def nvmlInit(self):
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self):
        self.shutdown += 1

    nvmlDeviceGetCount = staticmethod(lambda: 2)
    nvmlDeviceGetHandleByIndex = staticmethod(lambda i: f"gpu{i}")
    nvmlDeviceGetName = staticmethod(lambda h: b"NVIDIA H200" if h == "gpu0" else b"other")
    nvmlSystemGetCudaDriverVersion = staticmethod(lambda: 12080)
    nvmlDeviceGetCudaComputeCapability = staticmethod(lambda h: (9, 0))
    nvmlDeviceGetMemoryInfo = staticmethod(lambda h: types.SimpleNamespace(total=143771 * 2**20))
    nvmlSystemGetDriverVersion = staticmethod(lambda: "570.86")


def test_gpu_fingerprint_comes_from_nvml_of_gpu_0(monkeypatch):
    """Check the GPU facts read from NVML (device 0, count, GiB, driver CUDA 12.8) and that NVML is shut down."""
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert hardware.gpu_info() == {"name": "NVIDIA H200", "count": 2, "memory_gib": 140.4, "cuda_driver": "12.8",
                                   "capability": "9.0", "driver": "570.86"}
    assert fake.shutdown == 1


def test_hardware_stage_never_imports_torch():
    """Check that the always-run fingerprint imports neither torch nor transformers (seconds on every repro)."""
    code = ("import sys; from textcls.bench import hardware; hardware.fingerprint(); "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
