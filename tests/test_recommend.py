"""The deployment recommendation: best model under constraints, runner-up, why, and the infeasible case."""

from __future__ import annotations

import pandas as pd
import pytest

from textcls.report import recommend
from textcls.errors import ParamsError
from textcls.config.params import RecommendParams, validate


def _row(model, acc, p95, rss, cost, params=1_000_000, dataset="ag_news", gpu="unavailable"):
    return {"dataset": dataset, "model": model, "accuracy": acc + 0.001, "params": params,
            "cpu_variant": "onnx_int8", "cpu_accuracy": acc, "cpu_p95_ms": p95, "cpu_model_rss_mb": rss,
            "cpu_cost_per_1m_tokens_usd": cost, "gpu_variant": gpu, "gpu_p95_ms": None}


TABLE = pd.DataFrame([
    _row("bert", 0.94, 80.0, 420.0, 0.020, params=110_000_000),
    _row("minilm", 0.90, 3.3, 116.0, 0.001, params=22_700_000),
    _row("tfidf", 0.85, 0.6, 14.0, 0.0001, params=210_000),
], dtype=object)


def _compare(significant: bool):
    def compare(dataset, a, b):
        return {"diff": 0.05, "low": 0.03, "high": 0.07, "p_value": 0.001 if significant else 0.3,
                "significant": significant}
    return compare


def test_best_feasible_model_wins_and_the_excluded_are_explained():
    """Check that a model over the latency limit is excluded with its value, and the next best is chosen."""
    cfg = RecommendParams(max_p95_ms=50.0)
    rec = recommend.recommend(TABLE, cfg, _compare(True))["ag_news"]
    assert (rec["recommended"], rec["runner_up"]) == ("minilm", "tfidf")
    assert rec["candidates"]["bert"]["violations"] == ["batch-1 p95 latency (ms) 80 > 50 (max_p95_ms)"]
    markdown = recommend.to_markdown({"ag_news": rec}, cfg)
    assert "Recommended: **minilm** (onnx_int8): accuracy 0.9000, 3.30 ms p95" in markdown
    assert "Runner-up: **tfidf**" in markdown and "(significant," in markdown
    assert "- bert is excluded: batch-1 p95 latency (ms) 80 > 50 (max_p95_ms)." in markdown


def test_accuracy_is_that_of_the_deployed_variant():
    """Check that min_accuracy is judged on the best CPU variant's own accuracy, not eager fp32's."""
    rec = recommend.recommend(TABLE, RecommendParams(min_accuracy=0.9005))["ag_news"]
    assert rec["recommended"] == "bert"
    assert "accuracy 0.9 < 0.9005 (min_accuracy)" in rec["candidates"]["minilm"]["violations"]


def test_no_feasible_model_says_so_and_names_every_violation():
    """Check the infeasible case: no recommendation, a plain statement and the reason for each model."""
    cfg = RecommendParams(min_accuracy=0.95, max_memory_mb=100)
    recs = recommend.recommend(TABLE, cfg)
    assert recs["ag_news"]["recommended"] is None and recs["ag_news"]["runner_up"] is None
    markdown = recommend.to_markdown(recs, cfg)
    assert "**No model satisfies** the constraints on ag_news" in markdown
    assert "- tfidf is excluded: accuracy 0.85 < 0.95 (min_accuracy)." in markdown
    assert "- bert is excluded: accuracy 0.94 < 0.95 (min_accuracy); model memory (MB) 420 > 100 " \
           "(max_memory_mb)." in markdown


@pytest.mark.parametrize("limits", [{}, {"max_p95_ms": 10.0}])
def test_a_device_without_benchmark_is_never_recommended(limits):
    """Check that serving on a GPU the benchmark machine did not have excludes every model, limits or not."""
    cfg = RecommendParams(device="gpu", **limits)
    rec = recommend.recommend(TABLE, cfg, _compare(True))["ag_news"]
    assert rec["recommended"] is None and rec["comparison"] is None
    assert rec["candidates"]["minilm"]["violations"] == [
        "no GPU benchmark (unavailable): run `dvc repro` on a machine with one, or set recommend.device"]
    assert "**No model satisfies**" in recommend.to_markdown({"ag_news": rec}, cfg)


def test_an_unmeasured_value_never_counts_as_meeting_a_limit():
    """Check that a limit on a value the benchmark did not record (memory here) excludes the model."""
    table = TABLE.copy()
    table.loc[table["model"] == "minilm", "cpu_model_rss_mb"] = None
    rec = recommend.recommend(table, RecommendParams(max_memory_mb=500))["ag_news"]
    assert rec["candidates"]["minilm"]["violations"] == ["model memory (MB) not measured (max_memory_mb=500)"]
    assert rec["recommended"] == "bert"


def test_no_constraints_recommends_the_most_accurate():
    """Check that without limits every model qualifies and accuracy decides."""
    cfg = RecommendParams()
    recs = recommend.recommend(TABLE, cfg, _compare(False))
    assert recs["ag_news"]["recommended"] == "bert"
    markdown = recommend.to_markdown(recs, cfg)
    assert "none (every model qualifies)" in markdown and "equally defensible choice" in markdown


@pytest.mark.parametrize("objective, expected", [("p95_ms", "tfidf"), ("cost_per_1m_tokens_usd", "tfidf"),
                                                 ("accuracy", "minilm")])
def test_objective_picks_among_feasible_models(objective, expected):
    """Check that the objective decides among models that meet min_accuracy."""
    cfg = RecommendParams(objective=objective, min_accuracy=0.85, max_params=50_000_000)
    assert recommend.recommend(TABLE, cfg)["ag_news"]["recommended"] == expected


def test_each_data_set_gets_its_own_recommendation():
    """Check that recommendations are per data set."""
    table = pd.concat([TABLE, pd.DataFrame([_row("tfidf", 0.71, 0.4, 2.5, 0.0, dataset="sst2")], dtype=object)])
    recs = recommend.recommend(table, RecommendParams(min_accuracy=0.8))
    assert recs["sst2"]["recommended"] is None and recs["ag_news"]["recommended"] == "bert"


@pytest.mark.parametrize("raw, match", [
    ({"device": "tpu"}, "'recommend.device' parameter must be one of"),
    ({"min_accuracy": 1.5}, "'recommend.min_accuracy' parameter must be a number in \\[0, 1\\]"),
    ({"max_p95_ms": -1}, "'recommend.max_p95_ms' parameter must be a number > 0 or null"),
    ({"max_latency": 3}, "Unknown key recommend.'max_latency'"),
])
def test_bad_constraints_name_the_key(raw, match):
    """Check that recommend params are validated with the key in the message."""
    with pytest.raises(ParamsError, match=match):
        validate(RecommendParams, raw, "recommend")
