"""The deployed variants' own predictions (issue 19, item 2): the benchmark saves every variant's served test
predictions, the recommendation compares the variants actually deployed on them (falling back, by name, to the
evaluate stage's predictions where they are missing), and the leaderboard and the recommendation say which variant
each accuracy is and why their orders differ.

Fast, CPU-only, deterministic: fake backends of known predictions, hand-written parquet files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_numbers import _IdEncoder  # texts -> one token id per text, no padding

from textcls.bench import benchmark, served
from textcls.bench.served import ServedPredictions
from textcls.config.params import BenchmarkParams, RecommendParams
from textcls.errors import TextclsError
from textcls.report import leaderboard, recommend

# --------------------------------------------------------------------------- the saved predictions


def test_from_logits_takes_the_argmax_of_the_logits_and_rounds_accuracy_like_the_report():
    """Check that the class is the argmax of the logits, the probabilities their softmax, and the accuracy is
    rounded to 6 decimals (2 of 3 right: 0.666667)."""
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 1.5]])
    s = ServedPredictions.from_logits("cpu", "onnx_int8", [7, 3, 9], [0, 1, 0], logits)
    assert s.preds.tolist() == [0, 1, 1] and s.accuracy == 0.666667
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(s.probs, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="differ in length"):
        ServedPredictions("cpu", "x", np.arange(2), np.arange(3), np.arange(2), np.zeros((2, 2)))


def test_write_and_read_round_trip_one_row_per_device_variant_and_test_row(tmp_path):
    """Check the file: columns device, variant, row, label, pred, probs; every (device, variant) once; a
    (device, variant) listed twice is refused; `correct` is indexed by sorted row id, None for an absent variant."""
    a = ServedPredictions.from_logits("cpu", "eager_fp32", [5, 2], [1, 0], [[0.0, 1.0], [1.0, 0.0]])
    b = ServedPredictions.from_logits("cpu", "onnx_int8", [5, 2], [1, 0], [[1.0, 0.0], [1.0, 0.0]])
    c = ServedPredictions.from_logits("cuda", "eager_fp32", [5, 2], [1, 0], [[1.0, 0.0], [0.0, 1.0]])
    path = tmp_path / "served" / "toy" / "m.parquet"
    served.write(path, [a, b, c])
    frame = served.read(path)
    assert list(frame.columns) == [*served.COLUMNS, *served.OPTIONAL_COLUMNS] and len(frame) == 6
    assert set(frame["split"]) == {"test"} and frame["latency_ms"].isna().all()  # untimed rows: NaN
    assert [p for p in path.parent.iterdir()] == [path]  # no temp file left
    assert served.correct(frame, "cpu", "onnx_int8").to_dict() == {2: True, 5: False}
    assert served.correct(frame, "cuda", "eager_fp32").to_dict() == {2: False, 5: False}
    assert served.correct(frame, "cuda", "onnx_int8") is None
    with pytest.raises(ValueError, match="listed twice"):
        served.write(path, [a, a])
    old = frame[list(served.COLUMNS)]  # a file from before splits and latencies were saved: test rows, untimed
    pq.write_table(pa.Table.from_pandas(old, preserve_index=False), path)
    again = served.read(path)
    assert set(again["split"]) == {"test"} and again["latency_ms"].isna().all()
    assert served.correct(again, "cpu", "onnx_int8").to_dict() == {2: True, 5: False}
    pq.write_table(pa.table({"row": [1], "pred": [0]}), path)
    with pytest.raises(TextclsError, match=r"no column\(s\) \['device', 'variant', 'label', 'probs'\].*Fix: rerun"):
        served.read(path)


def test_validation_rows_and_call_times_are_kept_apart_from_the_test_rows(tmp_path):
    """Check that the same (device, variant) may be saved once per split, that `correct` reads the test rows only
    (validation rows with the same ids never leak in), that `select` reads either split, and that each row's call
    time comes back in milliseconds."""
    test = ServedPredictions.from_logits("cpu", "m", [1, 2], [0, 1], [[1.0, 0.0], [1.0, 0.0]], "test", [0.002, 0.004])
    val = ServedPredictions.from_logits("cpu", "m", [1, 2], [1, 1], [[1.0, 0.0], [0.0, 1.0]], "validation",
                                        [0.001, 0.003])
    path = tmp_path / "m.parquet"
    served.write(path, [test, val])
    frame = served.read(path)
    assert served.correct(frame, "cpu", "m").to_dict() == {1: True, 2: False}
    assert served.correct(frame, "cpu", "m", "validation").to_dict() == {1: False, 2: True}
    np.testing.assert_allclose(served.select(frame, "cpu", "m", "validation")["latency_ms"], [1.0, 3.0])
    np.testing.assert_allclose(served.select(frame, "cpu", "m")["latency_ms"], [2.0, 4.0])
    with pytest.raises(ValueError, match="split must be one of"):
        ServedPredictions("cpu", "m", np.arange(1), np.arange(1), np.arange(1), np.zeros((1, 2)), "train")
    with pytest.raises(ValueError, match="1 latencies for 2 rows"):
        ServedPredictions("cpu", "m", np.arange(2), np.arange(2), np.arange(2), np.zeros((2, 2)), "test", [1.0])


TEST_ROWS = [100 + 7 * i for i in range(12)]  # the prepared test split's row ids: not 0..n-1
TEST_LABELS = [0, 1, 2] * 4
WRONG = {"eager_fp32": {1, 4}, "dynamic_int8": {0, 1, 2, 3, 4, 5}}  # test positions each variant gets wrong


def _model_run(monkeypatch, tmp_path, max_served: int | None):
    """benchmark_model (real benchmark_device) over fake backends: eager_fp32 and dynamic_int8 of known test
    predictions (as logits with a known margin), onnx_int8 failing to build; memory and probe stubbed."""
    import torch

    from textcls.serving import inference

    model_dir, prepared = tmp_path / "model", tmp_path / "prepared"
    model_dir.mkdir()
    prepared.mkdir()
    (model_dir / "textcls.json").write_text(json.dumps({"kind": "transformer", "label_names": ["a", "b", "c"]}))
    test = [f"test text {i}" for i in range(12)]
    validation = ["val 0", "val 1", "val 2"]
    for split, texts, labels, rows in (("test", test, TEST_LABELS, TEST_ROWS),
                                       ("validation", validation, [0, 1, 2], [0, 1, 2])):
        pq.write_table(pa.table({"text": texts, "label": pa.array(labels, pa.int64()),
                                 "row": pa.array(rows, pa.int64())}), prepared / f"{split}.parquet")
    (prepared / "meta.json").write_text(json.dumps({"label_names": ["a", "b", "c"]}))
    every = test + validation
    labels = np.array(TEST_LABELS + [0, 1, 2])

    def logits_of(variant):
        preds = np.array([(labels[i] + 1) % 3 if i in WRONG[variant] else labels[i] for i in range(len(every))])
        return np.eye(3, dtype=np.float32)[preds] * 2.0 + 0.25 * np.arange(3, dtype=np.float32)

    def build_backend(variant, model_dir_, card, device, threads, workdir):
        if variant == "onnx_int8":
            raise RuntimeError("exporter could not trace")
        table = logits_of(variant)
        return (lambda batch: table[batch["input_ids"][:, 0]]), 0.0

    class Probe:
        def __init__(self, model_dir_):
            pass

        def wait_ready(self):
            pass

        def close(self):
            pass

    monkeypatch.setattr(inference, "make_encoder", lambda model_dir_, card: _IdEncoder(every))
    monkeypatch.setattr(inference, "build_backend", build_backend)
    monkeypatch.setattr(benchmark, "memory", lambda model_dir_, variants, *a, probe=None: {v: {} for v in variants})
    monkeypatch.setattr(benchmark, "ProbeProcess", Probe)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    cfg = BenchmarkParams(warmup=0, repeats=6, batch_sizes=[1], throughput_min_seconds=0.0, threads=1,
                          max_served_texts=max_served, cpu_variants=["eager_fp32", "dynamic_int8", "onnx_int8"])
    saved = []
    result = benchmark.benchmark_model("toy", "m", model_dir, prepared, {"cpu": "test"},
                                       {"params": 1, "train_time_s": 0.0}, cfg, 3, served=saved)
    return result, saved, {v: logits_of(v)[:12] for v in WRONG}


@pytest.mark.parametrize("max_served", [None, 8])
def test_benchmark_saves_each_variants_served_predictions(monkeypatch, tmp_path, max_served):
    """Check that every measured variant's saved predictions are the argmax of its served logits, on the served
    test rows (their prepared row ids, also for a seeded subsample), with the accuracy the report gives it; the
    variant that failed to build has none; and the report names the variant evaluate scores."""
    result, saved, logits = _model_run(monkeypatch, tmp_path, max_served)
    assert [(s.device, s.variant, s.split) for s in saved] == [
        ("cpu", "eager_fp32", "test"), ("cpu", "eager_fp32", "validation"),
        ("cpu", "dynamic_int8", "test"), ("cpu", "dynamic_int8", "validation")]
    for s in saved:  # every call timed: milliseconds, finite, > 0
        assert s.latency_ms is not None and len(s.latency_ms) == len(s.rows) and (s.latency_ms > 0).all()
    validation = [s for s in saved if s.split == "validation"]
    saved = [s for s in saved if s.split == "test"]
    for s in validation:  # the validation split as served: its row ids, the variant's own classes
        assert s.rows.tolist() == [0, 1, 2] and s.labels.tolist() == [0, 1, 2]
        assert s.preds.tolist() == [0, 1, 2]  # WRONG holds test positions only: validation all right
        assert s.accuracy == result["cpu"]["variants"][s.variant]["validation_accuracy"]
    n = result["served_test_texts"]
    assert n == (max_served or 12)
    positions = (np.arange(12) if max_served is None
                 else np.sort(np.random.default_rng(3).choice(12, max_served, replace=False)))
    for s in saved:
        assert s.rows.tolist() == [TEST_ROWS[i] for i in positions]
        assert s.labels.tolist() == [TEST_LABELS[i] for i in positions]
        assert s.preds.tolist() == logits[s.variant][positions].argmax(axis=1).tolist()
        wrong = sum(i in WRONG[s.variant] for i in positions)
        assert s.accuracy == round(1 - wrong / n, 6) == result["cpu"]["variants"][s.variant]["accuracy"]
    assert result["evaluate_variant"] == "eager_fp32"
    assert "error" in result["cpu"]["variants"]["onnx_int8"]


def test_benchmark_outputs_are_written_together_or_not_at_all(monkeypatch, tmp_path):
    """Check write_outputs: the report and the served predictions both written (read back equal); a failure
    writing the predictions leaves neither file, not even an older report."""
    result, saved, _ = _model_run(monkeypatch, tmp_path, None)
    out, served_out = tmp_path / "bench" / "m.json", tmp_path / "served" / "toy" / "m.parquet"
    benchmark.write_outputs(out, served_out, result, saved)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    frame = served.read(served_out)
    assert served.correct(frame, "cpu", "dynamic_int8").mean() == result["cpu"]["variants"]["dynamic_int8"]["accuracy"]
    broken = [saved[0], saved[0]]  # the same variant twice: refused while writing
    with pytest.raises(ValueError):
        benchmark.write_outputs(out, served_out, result, broken)
    assert not out.exists() and not served_out.exists()


# --------------------------------------------------------------------------- the comparison of deployed variants

N = 40


def _eval_predictions(folder: Path, model: str, correct: np.ndarray) -> None:
    labels = np.zeros(N, dtype=int)
    path = folder / "toy" / f"{model}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"row": np.arange(N)[::-1], "label": labels[::-1],
                             "pred": np.where(correct, 0, 1)[::-1]}), path)


def _served_predictions(folder: Path, model: str, variants: dict[str, np.ndarray], rows=None) -> None:
    rows = np.arange(N) if rows is None else np.asarray(rows)
    out = [ServedPredictions.from_logits("cpu", v, rows, np.zeros(len(rows), dtype=int),
                                         np.where(ok[:, None], [[1.0, 0.0]], [[0.0, 1.0]])) for v, ok in variants.items()]
    served.write(folder / "toy" / f"{model}.parquet", out)


def _synthetic(tmp_path):
    """fp32 (evaluate): big right on all 40, small on 30 (so big − small = +25 pt, McNemar p = 0.002).
    Served as onnx_int8 both are right on the same 30 rows (so the deployed difference is 0, p = 1)."""
    preds, srv = tmp_path / "predictions", tmp_path / "served"
    ok30 = np.arange(N) >= 10
    _eval_predictions(preds, "big", np.ones(N, dtype=bool))
    _eval_predictions(preds, "small", ok30)
    _served_predictions(srv, "big", {"eager_fp32": np.ones(N, dtype=bool), "onnx_int8": ok30})
    _served_predictions(srv, "small", {"eager_fp32": ok30, "onnx_int8": ok30})
    return preds, srv


def _cand(model, variant="onnx_int8", accuracy=0.75):
    return {"model": model, "variant": variant, "accuracy": accuracy, "evaluate_variant": "eager_fp32"}


def _compare(preds, srv):
    """The comparison stages/aggregate.py hands to the recommendation."""
    return leaderboard.deployed_comparison(preds, srv, 1000, 0, 0.05)


def test_the_comparison_uses_the_deployed_variants_predictions_not_fp32(tmp_path):
    """Check the known answer: on fp32 predictions big − small is +25 pt and significant; on the onnx_int8
    predictions both are deployed as, it is 0 and not significant, and that is the one the comparison gives."""
    preds, srv = _synthetic(tmp_path)
    on_fp32 = leaderboard.paired_comparison(leaderboard.correct_predictions(preds, "toy", "big"),
                                            leaderboard.correct_predictions(preds, "toy", "small"), 1000, 0, 0.05)
    assert on_fp32["diff"] == 0.25 and on_fp32["significant"]
    comp = _compare(preds, srv)("toy", _cand("big"), _cand("small"), "cpu")
    assert (comp["diff"], comp["p_value"], comp["significant"], comp["n"]) == (0.0, 1.0, False, N)
    assert [(s["model"], s["variant"], s["predictions"], s["fallback_reason"]) for s in comp["compared"]] == [
        ("big", "onnx_int8", "served", None), ("small", "onnx_int8", "served", None)]
    fp32 = _compare(preds, srv)("toy", _cand("big", "eager_fp32", 1.0), _cand("small", "eager_fp32"), "cpu")
    assert fp32["diff"] == 0.25  # the variant asked for is the one read


def test_rows_are_paired_by_row_id_on_a_served_subsample(tmp_path):
    """Check that served predictions on a subsample (rows 0..19, written in reverse) are paired with the other
    model's on those row ids only."""
    preds, srv = _synthetic(tmp_path)
    rows = np.arange(20)[::-1]
    _served_predictions(srv, "small", {"onnx_int8": rows >= 10}, rows=rows)  # right on rows 10..19: 0.5
    comp = _compare(preds, srv)("toy", _cand("big"), _cand("small", accuracy=0.5), "cpu")
    # on rows 0..19 big (int8) is right on 10..19, small too
    assert (comp["n"], comp["diff"]) == (20, 0.0)


def test_missing_served_predictions_fall_back_by_name(tmp_path):
    """Check the fallbacks: no file (an old benchmark), no such variant in the file, no folder given; each uses the
    evaluate stage's predictions and says so, and the recommendation's text names it."""
    preds, srv = _synthetic(tmp_path)
    (srv / "toy" / "small.parquet").unlink()
    comp = _compare(preds, srv)("toy", _cand("big"), _cand("small"), "cpu")
    old = comp["compared"][1]
    assert old["predictions"] == "evaluate" and str(srv / "toy" / "small.parquet") in old["fallback_reason"]
    assert comp["diff"] == 0.0 and comp["n"] == N  # big's int8 (30 right) against small's fp32 (the same 30)
    _, source = leaderboard.deployed_correct(preds, srv, "toy", _cand("big", "dynamic_int8"), "cpu")
    assert source["predictions"] == "evaluate" and source["fallback_reason"].endswith(
        "has no cpu/dynamic_int8 predictions")
    _, source = leaderboard.deployed_correct(preds, None, "toy", _cand("big"), "cpu")
    assert source["fallback_reason"] == "no served predictions folder was given (aggregate --served-dir)"
    text = recommend.predictions_text(old)
    assert text.startswith("small on the evaluate stage's eager_fp32 predictions, not its deployed variant's, "
                           "because ")
    assert recommend.predictions_text(comp["compared"][0]) == "big as served (onnx_int8, CPU, batch 1)"


def test_served_predictions_from_another_run_are_an_error(tmp_path):
    """Check that served predictions whose accuracy is not the report's for that variant are refused."""
    preds, srv = _synthetic(tmp_path)
    with pytest.raises(TextclsError, match=r"cpu/onnx_int8 predictions score 0\.75, but the benchmark report of "
                                           r"toy/big says 0\.8.*Fix: rerun"):
        leaderboard.deployed_correct(preds, srv, "toy", _cand("big", accuracy=0.8), "cpu")


# --------------------------------------------------------------------------- the leaderboard says which variant


def test_leaderboard_names_the_variant_of_each_accuracy():
    """Check that the benchmark's evaluate variant becomes `accuracy_variant`, is shown in the Markdown beside the
    accuracy with the note on which predictions each accuracy is, and goes into the metrics JSON."""
    bench = {"size_mb": 1.0, "evaluate_variant": "eager_fp32", "cuda": {"status": "unavailable", "reason": "x"},
             "cpu": {"status": "measured", "best_variant": "onnx_int8", "variants": {"onnx_int8": {
                 "accuracy": 0.8783, "latency_ms": {"p50": 4.1, "p95": 6.0, "p95_upper": 6.8},
                 "speedup_p50": 2.5, "samples_per_s": 200.0, "cost_per_1k_texts_usd": 1e-4}}}}
    columns = leaderboard.benchmark_columns(bench)
    assert (columns["accuracy_variant"], columns["cpu_variant"], columns["cpu_accuracy"]) == (
        "eager_fp32", "onnx_int8", 0.8783)
    assert leaderboard.benchmark_columns({k: v for k, v in bench.items() if k != "evaluate_variant"})[
        "accuracy_variant"] is None  # an old report
    table = pd.DataFrame([{"dataset": "toy", "model": "m", "rank": 1, "accuracy": 0.8803, "params": 5, "train_time_s": 1.0,
                           "comparable_to_published": True, **columns}])
    md = leaderboard.to_markdown(table, "accuracy")
    assert leaderboard.ACCURACY_NOTE in md.split("\n")
    header = next(line for line in md.split("\n") if line.startswith("| model"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    row = [c.strip() for c in md.split("\n")[md.split("\n").index(header) + 2].strip("|").split("|")]
    assert cells.index("accuracy_variant") == cells.index("accuracy") + 1
    assert row[cells.index("accuracy_variant")] == "eager_fp32" and row[cells.index("cpu_variant")] == "onnx_int8"
    out = leaderboard.to_metrics_json(table, ["accuracy"])["toy"]["m"]
    assert (out["accuracy_variant"], out["cpu_variant"], out["cpu_accuracy"]) == ("eager_fp32", "onnx_int8", 0.8783)


# --------------------------------------------------------------------------- the recommendation explains the order


def _ranked_row(model, rank, fp32, served_acc, p95, variant="onnx_int8"):
    return {"dataset": "ag_news", "model": model, "rank": rank, "accuracy": fp32, "accuracy_variant": "eager_fp32",
            "cpu_variant": variant, "cpu_accuracy": served_acc, "cpu_p95_upper_ms": p95, "gpu_variant": "unavailable"}


def _leaderboard_table():
    """The committed AG News case: minilm_l3 first on fp32 accuracy, minilm higher as served (int8)."""
    return pd.DataFrame([_ranked_row("minilm_l3", 1, 0.8803, 0.8783, 6.8), _ranked_row("minilm", 2, 0.8801, 0.8993, 12.8),
                         _ranked_row("tfidf", 3, 0.8526, 0.8526, 2.7, "sklearn")], dtype=object)


def test_the_recommendation_says_why_it_is_not_the_leaderboards_first(tmp_path):
    """Check that when the leaderboard's first (fp32) is not recommended because its served accuracy is lower,
    the Markdown says so with both served accuracies, and compares the two on their served predictions."""
    calls = []

    def compare(dataset, a, b, device):
        calls.append((a["model"], a["variant"], b["model"], b["variant"], device))
        return {"diff": 0.021, "low": 0.01, "high": 0.03, "p_value": 0.004, "significant": True, "n": 1520,
                "compared": [{"model": c["model"], "device": device, "variant": c["variant"], "predictions": "served"}
                             for c in (a, b)]}

    table = _leaderboard_table()
    cfg = RecommendParams(max_p95_ms=50.0)
    rec = recommend.recommend(table, cfg, compare)["ag_news"]
    assert (rec["recommended"], rec["runner_up"]) == ("minilm", "minilm_l3")
    assert calls == [("minilm", "onnx_int8", "minilm_l3", "onnx_int8", "cpu")]  # the runner-up IS the first
    lines = recommend.to_markdown({"ag_news": rec}, cfg).split("\n")
    assert ("Why not the leaderboard's first: minilm_l3 ranks first on the leaderboard by accuracy 0.8803 "
            "(eager_fp32, evaluate stage); served as onnx_int8 on CPU its accuracy is 0.8783, below minilm's 0.8993 "
            "as served (onnx_int8).") in lines
    assert ("Accuracy difference minilm − minilm_l3: +2.1 pt [+1.0, +3.0], McNemar p=0.004 (significant on 1520 "
            "test rows: minilm as served (onnx_int8, CPU, batch 1); minilm_l3 as served (onnx_int8, CPU, batch 1)).") \
        in lines
    assert rec["leaderboard_first"]["model"] == "minilm_l3" and rec["leaderboard_first"]["comparison"] is None

    calls.clear()  # a tighter p95 limit: the first misses it, and the text says so
    rec = recommend.recommend(table, RecommendParams(max_p95_ms=6.0), compare)["ag_news"]
    assert rec["recommended"] == "tfidf"
    assert rec["leaderboard_first"]["reason"] == (
        "minilm_l3 ranks first on the leaderboard by accuracy 0.8803 (eager_fp32, evaluate stage), but as served on "
        f"CPU it misses a constraint: {recommend.LABELS['p95_ms']} 6.8 > 6 (max_p95_ms).")
    assert rec["leaderboard_first"]["comparison"] is None and calls == []


def test_the_first_is_compared_when_it_is_not_the_runner_up_and_agreement_says_nothing():
    """Check that a feasible leaderboard first that is neither recommended nor runner-up is compared with the
    recommended model (on the deployed variants), and that when the two orders agree nothing is added."""
    calls = []

    def compare(dataset, a, b, device):
        calls.append((a["model"], b["model"]))
        return {"diff": 0.0, "low": -0.01, "high": 0.01, "p_value": 1.0, "significant": False, "n": 10}

    table = pd.DataFrame([_ranked_row("first", 1, 0.90, 0.80, 5.0), _ranked_row("served_best", 2, 0.89, 0.88, 5.0),
                          _ranked_row("other", 3, 0.85, 0.85, 5.0)], dtype=object)
    rec = recommend.recommend(table, RecommendParams(), compare)["ag_news"]
    assert (rec["recommended"], rec["runner_up"]) == ("served_best", "other")
    assert calls == [("served_best", "other"), ("served_best", "first")]
    md = recommend.to_markdown({"ag_news": rec}, RecommendParams())
    assert "Accuracy difference served_best − first: +0.0 pt [-1.0, +1.0], McNemar p=1 (not significant on 10 " \
           "test rows)." in md.split("\n")
    agree = table.assign(accuracy=[0.80, 0.95, 0.85])
    agree["rank"] = [2, 1, 3]
    rec = recommend.recommend(agree, RecommendParams(), compare)["ag_news"]
    assert rec["leaderboard_first"] is None and "Why not the leaderboard" not in recommend.to_markdown(
        {"ag_news": rec}, RecommendParams())


def test_another_objective_is_named_as_the_reason():
    """Check that with objective p95_ms the leaderboard's first, feasible but slower, is explained by the
    objective with both values."""
    table = _leaderboard_table()
    rec = recommend.recommend(table, RecommendParams(objective="p95_ms"))["ag_news"]
    assert rec["recommended"] == "tfidf"
    assert rec["leaderboard_first"]["reason"] == (
        "minilm_l3 ranks first on the leaderboard by accuracy 0.8803 (eager_fp32, evaluate stage); it meets every "
        "constraint, but the objective is the lowest p95 latency: 6.8 ms p95 (upper bound) for minilm_l3 against "
        "2.7 ms p95 (upper bound) for tfidf.")


def test_the_generated_docs_block_says_what_was_compared(tmp_path):
    """Check the docs' recommendation block: with the sources in the JSON it says the variants were compared as
    served and lists a fallback by name; an older JSON without them keeps the eager fp32 sentence."""
    from types import SimpleNamespace

    from textcls.report import docs

    cand = {"model": "big", "variant": "onnx_int8", "accuracy": 0.9, "p95_ms": 5.0, "violations": []}
    small = {**cand, "model": "small", "accuracy": 0.8}
    fallback = {"model": "small", "device": "cpu", "variant": "onnx_int8", "predictions": "evaluate",
                "evaluate_variant": "eager_fp32", "fallback_reason": "data/served/toy/small.parquet not found"}
    comp = {"diff": 0.1, "low": 0.05, "high": 0.15, "p_value": 0.001, "significant": True, "n": 100,
            "compared": [{"model": "big", "device": "cpu", "variant": "onnx_int8", "predictions": "served"}, fallback]}
    rec = {"recommended": "big", "runner_up": "small", "candidates": {"big": cand, "small": small},
           "comparison": comp}
    inputs = SimpleNamespace(params=SimpleNamespace(recommend=RecommendParams()), recommendation={"toy": rec},
                             datasets=lambda: ["toy"], metrics=tmp_path)
    text = docs.render_recommendation(inputs)
    assert "The difference (recommended − runner-up) is on the test predictions of the variants compared, each " \
           "as served" in text
    assert ("- toy: small on the evaluate stage's eager_fp32 predictions, not its deployed variant's, because "
            "data/served/toy/small.parquet not found.") in text.split("\n")
    old = {**rec, "comparison": {k: v for k, v in comp.items() if k != "compared"}}
    text = docs.render_recommendation(SimpleNamespace(**{**vars(inputs), "recommendation": {"toy": old}}))
    assert "is on the eager fp32 test predictions." in text and "deployed variant's" not in text
