"""One small real run of the inference benchmark: benchmark_model on the tiny BERT from conftest (two CPU
variants, six repeats over six texts, memory probed in this process), then its leaderboard view; and the
memory probe in a real fresh process (benchmark.memory -> python -m textcls.bench.memprobe).

Both runs are module fixtures (~13 s and ~8 s), so scripts/mutation.py leaves this file out of the per-mutant runs
(``mutation_skip_tests`` in [tool.mutmut]); the fast known-answer tests of the same code are in
tests/test_bench_method.py, tests/test_benchmark_units.py, tests/test_numbers.py and tests/test_memprobe.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from textcls.bench import benchmark, latency, memprobe
from textcls.config.params import BenchmarkParams
from textcls.records import ModelCard
from textcls.report import leaderboard

NO_GPU = {"status": "unavailable", "reason": "no CUDA GPU on this machine"}


TEXTS = ["the movie is good", "the film was bad", "a great story and fun music", "an awful plot",
         "the team lost the game", "nice ending", "so boring", "very good actor"]
LABELS = [1, 0, 1, 0, 0, 1, 0, 1]
VALIDATION = ["good fun", "bad plot", "great music", "boring film"]
VALIDATION_LABELS = [1, 0, 1, 0]
CARD = {"kind": "transformer", "label_names": ["neg", "pos"], "prefix": "", "max_length": 16, "params": {},
        "seed": 0}
TINY_CFG = dict(cpu_variants=["eager_fp32", "dynamic_int8"], warmup=0, repeats=6, max_served_texts=6,
                throughput_texts=4, batch_sizes=[1, 2], throughput_min_seconds=0.0)
SEED = 0


@pytest.fixture(scope="module")
def trained_tiny_dir(tiny_bert_dir, tmp_path_factory) -> Path:
    """The tiny BERT copied to a folder with a textcls.json model card, like the train stage writes."""
    folder = tmp_path_factory.mktemp("trained") / "tiny"
    shutil.copytree(tiny_bert_dir, folder)
    (folder / "textcls.json").write_text(json.dumps(CARD), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory) -> Path:
    """A prepared data folder (parquet splits + meta.json) with 8 test and 4 validation texts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("prepared")
    for split, (texts, labels) in {"train": (VALIDATION, VALIDATION_LABELS), "validation": (VALIDATION,
                                   VALIDATION_LABELS), "test": (TEXTS, LABELS)}.items():
        pq.write_table(pa.table({"text": pa.array(texts, pa.string()), "label": pa.array(labels, pa.int64()),
                                 "row": pa.array(range(len(texts)), pa.int64())}), folder / f"{split}.parquet")
    (folder / "meta.json").write_text(json.dumps({"label_names": ["neg", "pos"]}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def real_result(trained_tiny_dir, prepared_dir) -> dict:
    """benchmark_model of the tiny BERT on the CPU (module-scoped: run once); no GPU, memory probed in process."""
    import torch

    threads = torch.get_num_threads()
    cfg = BenchmarkParams(**TINY_CFG)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.cuda, "is_available", lambda: False)
        mp.setattr(benchmark, "memory", lambda model_dir, variants, device, threads, workdir, texts, batch_size, probe=None:
                   {v: memprobe.measure({"model_dir": str(model_dir), "variant": v, "device": device,
                                         "threads": threads, "workdir": str(workdir), "texts": texts,
                                         "batch_size": batch_size}) for v in variants})
        saved = []
        result = benchmark.benchmark_model("toy", "tiny", trained_tiny_dir, prepared_dir, {"cpu": "test"},
                                           {"params": 1234, "train_time_s": 5.0}, cfg, SEED, served=saved)
    torch.set_num_threads(threads)
    result["_served"] = saved  # not part of the report: what the stage writes beside it
    return result


def _served_accuracy(model_dir: Path, texts: list[str], labels: list[int]) -> float:
    """Accuracy of eager_fp32 serving each text alone, computed here independently of the benchmark."""
    from textcls.serving import inference

    card = ModelCard.read(model_dir)
    encoder = inference.make_encoder(model_dir, card)
    backend, _ = inference.build_backend("eager_fp32", model_dir, card, "cpu", 1, None)
    preds = [int(np.argmax(backend(encoder([t]))[0])) for t in texts]
    return round(float(np.mean(np.array(preds) == np.array(labels))), 6)


def test_benchmark_model_reports_the_run(real_result, trained_tiny_dir):
    """Check the report's frame: model facts, served texts, an unavailable GPU, the machine state, JSON."""
    result = real_result
    assert (result["dataset"], result["model"], result["kind"]) == ("toy", "tiny", "transformer")
    assert (result["params"], result["train_time_s"], result["hardware"]) == (1234, 5.0, {"cpu": "test"})
    assert result["served_test_texts"] == 6
    assert result["size_mb"] == round(sum(p.stat().st_size for p in trained_tiny_dir.glob("*.safetensors")) / 2**20, 3)
    assert result["cuda"] == NO_GPU
    cpu = result["cpu"]
    assert cpu["status"] == "measured" and cpu["reference_variant"] == "eager_fp32"
    assert list(cpu["variants"]) == ["eager_fp32", "dynamic_int8"] and cpu["best_variant"] in cpu["variants"]
    state = result["machine_state"]
    assert {"busy", "other_cpu_share", "seconds", "threads"} <= set(state)
    assert result["benchmark_time_s"] == state["seconds"] >= 0
    json.dumps({k: v for k, v in result.items() if k != "_served"})  # everything is JSON-serialisable


def test_benchmark_model_saves_the_served_predictions_of_every_variant(real_result, prepared_dir):
    """Check that each measured variant's saved predictions are on the served test rows (their prepared row ids)
    and score exactly the accuracy the report gives that variant; its validation rows score its validation
    accuracy; every call is timed, and the test latencies are the ones the report summarises."""
    import pyarrow.parquet as pq

    test = pq.read_table(Path(prepared_dir) / "test.parquet").to_pandas()
    every = real_result["_served"]
    assert [(s.device, s.variant, s.split) for s in every] == [
        ("cpu", v, split) for v in real_result["cpu"]["variants"] for split in ("test", "validation")]
    saved = [s for s in every if s.split == "test"]
    for s in every:
        row = real_result["cpu"]["variants"][s.variant]
        assert s.latency_ms is not None and (s.latency_ms > 0).all()
        if s.split == "validation":
            assert s.accuracy == row["validation_accuracy"]
        else:  # the same calls the latency summary is from
            assert len(s.latency_ms) == row["latency_ms"]["count"]
            assert s.latency_ms.min() == pytest.approx(row["latency_ms"]["min"], abs=1e-3)
            assert s.latency_ms.max() == pytest.approx(row["latency_ms"]["max"], abs=1e-3)
    for s in saved:
        assert set(s.rows) <= set(test["row"]) and len(s.rows) == real_result["served_test_texts"]
        assert s.labels.tolist() == test.set_index("row").loc[s.rows, "label"].tolist()
        assert s.accuracy == real_result["cpu"]["variants"][s.variant]["accuracy"]
        assert s.preds.tolist() == s.probs.argmax(axis=1).tolist()


@pytest.mark.parametrize("variant", ["eager_fp32", "dynamic_int8"])
def test_benchmark_model_reports_latency_throughput_accuracy_memory(real_result, variant):
    """Check each variant's row: latency over 6 repeats of the 6 served texts, model-only below end-to-end,
    the throughput sweep, cost from its speed, accuracy and memory."""
    row = real_result["cpu"]["variants"][variant]
    lat, model = row["latency_ms"], row["model_latency_ms"]
    assert (lat["count"], lat["repeats"]) == (6, 6)
    assert 0 < lat["min"] <= lat["p50"] <= lat["max"]
    assert lat["p50_ci"] is not None and lat["p50_ci"][0] <= lat["p50"] <= lat["p50_ci"][1]
    assert lat["p95_upper"] is None and lat["p99"] is None  # 6 calls are too few to bound a tail
    assert 0 < model["p50"] < lat["p50"] and model["max"] <= lat["max"]  # tokenization excluded
    assert set(row["throughput"]) == {"1", "2"} and row["best_batch_size"] in (1, 2)
    assert all(r["batches"] == {"1": 4, "2": 2}[b] for b, r in row["throughput"].items())  # 4 texts, one rotation
    best = row["throughput"][str(row["best_batch_size"])]
    assert row["samples_per_s"] == best["samples_per_s"] > 0 and row["tokens_per_s"] == best["tokens_per_s"] > 0
    assert best["tokens_per_s"] == max(r["tokens_per_s"] for r in row["throughput"].values())
    assert row["throughput"]["1"]["padding_share"] == 0.0
    assert row["cost_per_1k_texts_usd"] == round(latency.cost_per_1k_texts(row["samples_per_s"], 0.10), 8)
    assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["validation_accuracy"] <= 1.0
    assert row["batch_size"] == 1
    assert row["prepare_s"] >= 0 and row["cold_start_s"] >= row["prepare_s"]
    assert row["baseline_rss_mb"] > 0 and row["peak_rss_mb"] >= row["model_rss_mb"] - 2.0
    assert set(row["vs_reference"]) >= {"diff", "low", "high", "p_value", "agreement", "max_abs_logit_diff"}


def test_benchmark_model_accuracy_is_the_served_accuracy(real_result, trained_tiny_dir):
    """Check that eager_fp32's test and validation accuracy equal serving the same texts here, one at a time:
    the 6 test texts are the seeded subsample, all 4 validation texts count."""
    rng = np.random.default_rng(SEED)
    chosen = np.sort(rng.choice(len(TEXTS), 6, replace=False))
    row = real_result["cpu"]["variants"]["eager_fp32"]
    assert row["accuracy"] == _served_accuracy(trained_tiny_dir, [TEXTS[i] for i in chosen],
                                               [LABELS[i] for i in chosen])
    assert row["validation_accuracy"] == _served_accuracy(trained_tiny_dir, VALIDATION, VALIDATION_LABELS)


def test_benchmark_model_reference_against_itself(real_result):
    """Check that the reference's speed-up is exactly 1 with a [1, 1] interval and it agrees with itself."""
    ref = real_result["cpu"]["variants"]["eager_fp32"]
    assert ref["speedup_p50"] == 1.0 and ref["speedup_p50_ci"] == [1.0, 1.0]
    comp = ref["vs_reference"]
    assert (comp["diff"], comp["p_value"], comp["agreement"], comp["max_abs_logit_diff"]) == (0.0, 1.0, 1.0, 0.0)
    assert ref["accuracy_delta"] == 0.0 and ref["validation_accuracy_delta"] == 0.0
    int8 = real_result["cpu"]["variants"]["dynamic_int8"]
    assert int8["vs_reference"]["max_abs_logit_diff"] > 0  # quantised: not bit-identical
    assert int8["speedup_p50"] > 0


def test_real_result_goes_into_leaderboard_columns(real_result):
    """Check that a real benchmark goes through benchmark_columns without gaps: best variant's numbers, no GPU."""
    board = leaderboard.benchmark_columns(real_result)
    cpu = real_result["cpu"]
    best = cpu["variants"][cpu["best_variant"]]
    assert board["cpu_variant"] == cpu["best_variant"]
    assert board["cpu_p50_ms"] == best["latency_ms"]["p50"] > 0
    assert board["cpu_cost_per_1k_texts_usd"] == best["cost_per_1k_texts_usd"] > 0
    assert board["cpu_model_rss_mb"] == best["model_rss_mb"]
    assert board["cpu_p95_upper_ms"] is None  # too few calls for a bound: None, never 0
    assert board["gpu_p50_ms"] is None and board["gpu_variant"] == "unavailable"


# --------------------------------------------------------------------------- the memory probe in a fresh process


MiB = 2**20
PROBE_TEXTS = ["the movie is good", "the film was bad", "a great story and fun music"]


@pytest.fixture(scope="module")
def fresh_process_memory(trained_tiny_dir, tmp_path_factory) -> dict:
    """benchmark.memory of the tiny BERT's eager_fp32 and dynamic_int8, in a real probe process forking one child
    per variant (run once: ~5-10 s)."""
    return benchmark.memory(trained_tiny_dir, ["eager_fp32", "dynamic_int8"], "cpu", 1,
                            tmp_path_factory.mktemp("probe-work"), PROBE_TEXTS, 2)


def test_memory_in_a_fresh_process_on_the_tiny_model(fresh_process_memory):
    """Check the real subprocess path: baseline, model and peak memory of the tiny BERT per variant, peak >= model,
    and that each variant starts from the same baseline (a fresh child: nothing of the variant before it)."""
    assert list(fresh_process_memory) == ["eager_fp32", "dynamic_int8"]
    for out in fresh_process_memory.values():
        assert {"baseline_rss_mb", "model_rss_mb", "peak_rss_mb", "method"} <= set(out)
        assert out["baseline_rss_mb"] > 50
        assert out["model_rss_mb"] >= 0
        assert out["peak_rss_mb"] >= out["model_rss_mb"] - 2.0
        assert out["method"].startswith("fresh process per variant")
    first, second = (fresh_process_memory[v]["baseline_rss_mb"] for v in ("eager_fp32", "dynamic_int8"))
    assert abs(first - second) < 5.0


def test_fresh_process_memory_of_a_tiny_model_is_not_library_code(fresh_process_memory, trained_tiny_dir):
    """Check that the tiny BERT (< 1 MiB of weights) keeps well under 60 MiB: libraries belong to the baseline."""
    weights = sum(p.stat().st_size for p in trained_tiny_dir.glob("*.safetensors")) / MiB
    assert weights < 1
    assert fresh_process_memory["eager_fp32"]["model_rss_mb"] < 60


def test_probe_process_answers_several_jobs_then_closes(trained_tiny_dir, tmp_path):
    """Check the long-lived probe the benchmark starts ahead: ready after its imports, one answer per job (each
    variant in its own child, as the one-off probe measures), and a clear error once it has died."""
    probe = benchmark.ProbeProcess(trained_tiny_dir)
    try:
        probe.wait_ready()
        assert probe.ready
        first = benchmark.memory(trained_tiny_dir, ["eager_fp32"], "cpu", 1, tmp_path, PROBE_TEXTS, 2, probe=probe)
        second = benchmark.memory(trained_tiny_dir, ["dynamic_int8", "no_such_variant"], "cpu", 1, tmp_path,
                                  PROBE_TEXTS, 2, probe=probe)
        assert list(first) == ["eager_fp32"] and first["eager_fp32"]["model_rss_mb"] < 60
        assert second["dynamic_int8"]["method"].startswith("fresh process per variant")
        assert second["no_such_variant"]["error"].startswith("KeyError")
        probe.proc.kill()
        probe.proc.wait()
        with pytest.raises(RuntimeError, match="memory probe failed for eager_fp32"):
            benchmark.memory(trained_tiny_dir, ["eager_fp32"], "cpu", 1, tmp_path, PROBE_TEXTS, 2, probe=probe)
    finally:
        probe.close()
    assert probe.proc.poll() is not None
