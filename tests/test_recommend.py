"""The deployment recommendation: best model under constraints, runner-up, why, and the infeasible case."""

from __future__ import annotations

import pandas as pd
import pytest

from textcls.report import recommend
from textcls.errors import ParamsError
from textcls.config.params import RecommendParams, validate


# The measured names and leaderboard columns come from recommend.CONSTRAINTS, so the rows follow a renamed
# column (e.g. the cost unit, or p95 -> its upper bound) without editing every test.
COST = next(name for name, _, _ in recommend.CONSTRAINTS.values() if name.startswith("cost"))


def _columns(device: str, **values) -> dict:
    """Leaderboard columns of `device` for measured values given by name (accuracy=, p95_ms=, memory_mb=, ...)."""
    return {columns[device]: values[name] for name, columns, _ in recommend.CONSTRAINTS.values() if name in values}


def _row(model, acc, p95, rss, cost, params=1_000_000, dataset="ag_news", gpu="unavailable"):
    gpu_columns = {c: None for c in _columns("gpu", accuracy=0, p95_ms=0, memory_mb=0, **{COST: 0})}
    return {"dataset": dataset, "model": model, "accuracy": acc + 0.001, "params": params,
            "cpu_variant": "onnx_int8", "gpu_variant": gpu, **gpu_columns,
            **_columns("cpu", accuracy=acc, p95_ms=p95, memory_mb=rss, **{COST: cost})}


TABLE = pd.DataFrame([
    _row("bert", 0.94, 80.0, 420.0, 0.020, params=110_000_000),
    _row("minilm", 0.90, 3.3, 116.0, 0.001, params=22_700_000),
    _row("tfidf", 0.85, 0.6, 14.0, 0.0001, params=210_000),
], dtype=object)


def _source(cand: dict, device: str) -> dict:
    """Which predictions a comparison used for `cand`, as textcls.report.leaderboard.deployed_correct says it: its
    variant's served ones, or (no variant) the evaluate stage's, with the reason."""
    served = cand["variant"] is not None
    return {"model": cand["model"], "device": device, "variant": cand["variant"],
            "predictions": "served" if served else "evaluate", "evaluate_variant": cand.get("evaluate_variant"),
            "fallback_reason": None if served else f"no {device.upper()} variant was measured", "n": 200}


def _compare(significant: bool):
    def compare(dataset, a, b, device):
        return {"diff": 0.05, "low": 0.03, "high": 0.07, "p_value": 0.001 if significant else 0.3,
                "significant": significant, "n": 200, "compared": [_source(a, device), _source(b, device)]}
    return compare


def test_best_feasible_model_wins_and_the_excluded_are_explained():
    """Check that a model over the latency limit is excluded with its value, and the next best is chosen."""
    cfg = RecommendParams(max_p95_ms=50.0)
    rec = recommend.recommend(TABLE, cfg, _compare(True))["ag_news"]
    assert (rec["recommended"], rec["runner_up"]) == ("minilm", "tfidf")
    assert rec["candidates"]["bert"]["violations"] == [f"{recommend.LABELS['p95_ms']} 80 > 50 (max_p95_ms)"]
    markdown = recommend.to_markdown({"ag_news": rec}, cfg)
    assert "Recommended: **minilm** (onnx_int8): accuracy 0.9000, 3.30 ms p95" in markdown
    assert "Runner-up: **tfidf**" in markdown and "(significant on 200 test rows: minilm as served (onnx_int8, " in markdown
    assert f"- bert is excluded: {recommend.LABELS['p95_ms']} 80 > 50 (max_p95_ms)." in markdown


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


@pytest.mark.parametrize("objective, expected", [("p95_ms", "tfidf"), (COST, "tfidf"),
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


# --------------------------------------------------------------------------- known answers (mutation tests)
# Each test below pins one behaviour a small code change would break (`make mutation`, scripts/mutation.py).
# Rows are built from recommend.CONSTRAINTS (measured name -> leaderboard column of each device).


def _measured(model, dataset="ag_news", device="cpu", variant="onnx_int8", **values) -> dict:
    """A leaderboard row whose `device` benchmark measured `values` (by measured name: accuracy=, p95_ms=, ...)."""
    return {"dataset": dataset, "model": model, "accuracy": values.get("accuracy"), f"{device}_variant": variant,
            **_columns(device, **values)}


def _table(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows), dtype=object)


def _recording_compare(calls: list):
    def compare(dataset, a, b, device):
        calls.append((dataset, a["model"], b["model"]))
        return {"diff": 0.25, "low": 0.15, "high": 0.35, "p_value": 0.0123, "significant": True, "n": 200,
                "compared": [_source(a, device), _source(b, device)]}
    return compare


def test_the_gpu_memory_column_is_read_for_gpu_and_rss_for_cpu():
    """Check that device "gpu" reads gpu_memory_mb and "cpu" reads cpu_model_rss_mb, never the other one."""
    row = {"model": "m", "cpu_variant": "onnx_int8", "gpu_variant": "eager_fp16", "cpu_model_rss_mb": 111.0,
           "gpu_memory_mb": 222.0, **_columns("cpu", p95_ms=5.0), **_columns("gpu", p95_ms=1.0)}
    assert recommend.candidate(row, "cpu")["memory_mb"] == 111.0
    assert recommend.candidate(row, "gpu")["memory_mb"] == 222.0
    assert recommend.CONSTRAINTS["max_memory_mb"][1] == {"cpu": "cpu_model_rss_mb", "gpu": "gpu_memory_mb"}
    table = _table({**row, "dataset": "d"})
    assert recommend.recommend(table, RecommendParams(device="gpu", max_memory_mb=200))["d"]["recommended"] is None
    assert recommend.recommend(table, RecommendParams(device="gpu", max_memory_mb=250))["d"]["recommended"] == "m"
    assert recommend.recommend(table, RecommendParams(device="cpu", max_memory_mb=120))["d"]["recommended"] == "m"


@pytest.mark.parametrize("key", list(recommend.CONSTRAINTS))
def test_a_value_exactly_at_the_limit_meets_it(key):
    """Check every constraint at its limit: equal passes, just past it (either side, by kind) fails."""
    name, _, kind = recommend.CONSTRAINTS[key]
    limit = 200 if name == "params" else 0.5
    values = {"accuracy": 0.9, "p95_ms": 3.0, "memory_mb": 100.0, COST: 0.01, "params": 1000}
    over = {"min": -1, "max": +1}[kind] * (1 if name == "params" else 1e-9)
    cfg = RecommendParams(**{key: limit})
    for value, ok in ((limit, True), (limit + over, False)):
        cand = recommend.candidate(_measured("m", **{**values, name: value}), "cpu")
        assert cand[name] == value
        assert (recommend.violations(cand, cfg) == []) is ok, (key, value)


def test_violation_text_names_value_sign_limit_and_key():
    """Check the reason for a failed min and a failed max constraint."""
    cand = recommend.candidate(_measured("m", accuracy=0.8123, p95_ms=12.345, memory_mb=100.0), "cpu")
    cfg = RecommendParams(min_accuracy=0.9, max_p95_ms=10, max_memory_mb=100)
    assert recommend.violations(cand, cfg) == [f"{recommend.LABELS['accuracy']} 0.8123 < 0.9 (min_accuracy)",
                                               f"{recommend.LABELS['p95_ms']} 12.35 > 10 (max_p95_ms)"]


@pytest.mark.parametrize("missing", [None, float("nan"), float("inf"), "unavailable", "n/a"])
def test_none_nan_and_strings_never_count_as_measured(missing):
    """Check that None, NaN, inf or a reason string is 'not measured': it fails a limit set on it, and without a
    p95 the model has no benchmark at all."""
    row = _measured("m", accuracy=0.9, p95_ms=3.0, memory_mb=100.0)
    row[_columns("cpu", memory_mb=0).popitem()[0]] = missing
    cand = recommend.candidate(row, "cpu")
    assert cand["memory_mb"] is None and cand["benchmark"] == "measured"
    assert recommend.violations(cand, RecommendParams(max_memory_mb=1000)) == [
        f"{recommend.LABELS['memory_mb']} not measured (max_memory_mb=1000)"]
    assert recommend.violations(cand, RecommendParams()) == []
    row[_columns("cpu", p95_ms=0).popitem()[0]] = missing
    cand = recommend.candidate(row, "cpu")
    assert (cand["variant"], cand["benchmark"]) == (None, "onnx_int8")
    assert recommend.violations(cand, RecommendParams())[0].startswith("no CPU benchmark (onnx_int8)")


def test_a_model_never_benchmarked_says_not_run():
    """Check that without a variant on the device the reason is 'not run' (and never the raw NaN)."""
    for variant in (None, float("nan")):
        cand = recommend.candidate({"model": "m", "gpu_variant": variant}, "gpu")
        assert (cand["variant"], cand["benchmark"]) == (None, "not run")
        assert recommend.violations(cand, RecommendParams(device="gpu")) == [
            "no GPU benchmark (not run): run `dvc repro` on a machine with one, or set recommend.device"]


def test_equal_accuracy_ranks_lower_p95_first_then_model_name():
    """Check the tie-breaks for objective accuracy: same accuracy -> lower p95; same p95 too -> model name."""
    rows = [_measured("alpha", accuracy=0.9, p95_ms=2.0), _measured("zeta", accuracy=0.9, p95_ms=1.0),
            _measured("beta", accuracy=0.9, p95_ms=2.0), _measured("low", accuracy=0.8, p95_ms=0.1)]
    rec = recommend.recommend(_table(*rows), RecommendParams())["ag_news"]
    assert (rec["recommended"], rec["runner_up"]) == ("zeta", "alpha")
    rec = recommend.recommend(_table(*rows[::-1]), RecommendParams())["ag_news"]
    assert (rec["recommended"], rec["runner_up"]) == ("zeta", "alpha")
    rec = recommend.recommend(_table(rows[0], rows[2]), RecommendParams())["ag_news"]
    assert (rec["recommended"], rec["runner_up"]) == ("alpha", "beta")


@pytest.mark.parametrize("objective", ["p95_ms", COST])
def test_lowest_objective_wins_and_ties_go_to_higher_accuracy(objective):
    """Check the tie-breaks for a 'lowest' objective: same value -> higher accuracy, then model name."""
    other = "p95_ms" if objective == COST else COST
    rows = [_measured("b", accuracy=0.80, **{objective: 1.0, other: 0.5}),
            _measured("a", accuracy=0.85, **{objective: 1.0, other: 9.0}),
            _measured("c", accuracy=0.85, **{objective: 1.0, other: 9.0}),
            _measured("fast", accuracy=0.50, **{objective: 0.5, other: 9.0})]
    rec = recommend.recommend(_table(*rows), RecommendParams(objective=objective, min_accuracy=0.6))["ag_news"]
    assert (rec["recommended"], rec["runner_up"]) == ("a", "c")
    rec = recommend.recommend(_table(*rows), RecommendParams(objective=objective))["ag_news"]
    assert (rec["recommended"], rec["runner_up"]) == ("fast", "a")


def test_unmeasured_accuracy_or_cost_ranks_last_when_not_constrained():
    """Check that a feasible model without a measured accuracy (or cost) is ranked after every measured one."""
    rows = [_measured("unknown", p95_ms=0.1, **{COST: None}), _measured("known", accuracy=0.5, p95_ms=9.0,
                                                                        **{COST: 5.0})]
    rec = recommend.recommend(_table(*rows), RecommendParams())["ag_news"]
    assert (rec["recommended"], rec["runner_up"]) == ("known", "unknown")
    rec = recommend.recommend(_table(*rows), RecommendParams(objective=COST))["ag_news"]
    assert (rec["recommended"], rec["runner_up"]) == ("known", "unknown")
    rec = recommend.recommend(_table(*rows), RecommendParams(objective="p95_ms"))["ag_news"]
    assert rec["recommended"] == "unknown"


def test_comparison_is_recommended_minus_runner_up_of_that_data_set():
    """Check that compare gets (dataset, recommended, runner-up) in that order, and is not called for one model."""
    calls = []
    rows = [_measured("b", accuracy=0.9, p95_ms=1.0), _measured("a", accuracy=0.8, p95_ms=1.0),
            _measured("solo", dataset="sst2", accuracy=0.7, p95_ms=1.0)]
    recs = recommend.recommend(_table(*rows), RecommendParams(), _recording_compare(calls))
    assert calls == [("ag_news", "b", "a")]
    assert recs["ag_news"]["comparison"]["diff"] == 0.25
    assert recs["sst2"]["comparison"] is None and recs["sst2"]["runner_up"] is None
    assert recommend.recommend(_table(*rows), RecommendParams())["ag_news"]["comparison"] is None


def test_recommendations_are_keyed_and_ordered_by_data_set():
    """Check that the result is sorted by data set and each entry names its data set, device and objective."""
    rows = [_measured("m", dataset="sst2", accuracy=0.9, p95_ms=1.0),
            _measured("m", dataset="ag_news", accuracy=0.9, p95_ms=1.0)]
    recs = recommend.recommend(_table(*rows), RecommendParams(objective="p95_ms"))
    assert list(recs) == ["ag_news", "sst2"]
    for dataset, rec in recs.items():
        assert (rec["dataset"], rec["device"], rec["objective"], rec["recommended"]) == (dataset, "cpu", "p95_ms", "m")


def test_constraints_text_lists_each_limit_with_its_direction():
    """Check the constraints sentence: >= for min_accuracy, <= for max limits, in CONSTRAINTS order."""
    cfg = RecommendParams(min_accuracy=0.8, max_p95_ms=50, max_params=1_000_000)
    labels = recommend.LABELS
    assert recommend.constraints_text(cfg) == (f"{labels['accuracy']} ≥ 0.8, {labels['p95_ms']} ≤ 50, "
                                               f"{labels['params']} ≤ 1e+06")
    assert recommend.constraints_text(RecommendParams()) == "none (every model qualifies)"


def _golden_table():
    return _table(
        {**_measured("bert", accuracy=0.9412, p95_ms=80.0, memory_mb=420.4, params=110_000_000, **{COST: 0.02})},
        {**_measured("minilm", accuracy=0.9, p95_ms=3.333, memory_mb=116.6, params=22_700_000, **{COST: 0.00123})},
        {**_measured("tfidf", variant=None, accuracy=0.85, p95_ms=0.6, memory_mb=14.0, params=210_000,
                     **{COST: 0.00001})},
        {**_measured("nb", dataset="sst2", accuracy=0.71, p95_ms=0.4, memory_mb=2.5, params=1_000, **{COST: 0.0})},
    )


def test_markdown_document_by_hand():
    """Check the whole Markdown document for a small table: every number, sign, label and blank line."""
    cfg = RecommendParams(min_accuracy=0.8, max_p95_ms=50)
    calls = []
    recs = recommend.recommend(_golden_table(), cfg, _recording_compare(calls))
    labels = recommend.LABELS
    unit = "USD / 1k texts"
    expected = [
        "# Recommendation",
        "",
        "Serving on **CPU** with each model's best benchmark variant. Constraints (`recommend:` in params.yaml): "
        f"{labels['accuracy']} ≥ 0.8, {labels['p95_ms']} ≤ 50.",
        "",
        "## ag_news",
        "",
        f"Recommended: **minilm** (onnx_int8): accuracy 0.9000, 3.33 ms p95 (upper bound), 117 MB, 0.0012 {unit}.",
        "",
        "Why: the highest accuracy of the 2 model(s) that meet every constraint.",
        f"Runner-up: **tfidf**: accuracy 0.8500, 0.60 ms p95 (upper bound), 14 MB, 1e-05 {unit}.",
        "Accuracy difference minilm − tfidf: +25.0 pt [+15.0, +35.0], McNemar p=0.012 (significant on 200 test rows: "
        "minilm as served (onnx_int8, CPU, batch 1); tfidf on the evaluate stage's reference-variant predictions, not "
        "its deployed variant's, because no CPU variant was measured).",
        "",
        f"- bert is excluded: {labels['p95_ms']} 80 > 50 (max_p95_ms).",
        "",
        "## sst2",
        "",
        "**No model satisfies** the constraints on sst2. Relax a limit under `recommend:` or add a model that "
        "meets it.",
        "",
        f"- nb is excluded: {labels['accuracy']} 0.71 < 0.8 (min_accuracy).",
        "",
    ]
    assert recommend.to_markdown(recs, cfg).split("\n") == expected
    assert calls == [("ag_news", "minilm", "tfidf")]


@pytest.mark.parametrize("objective, goal", [("accuracy", "highest accuracy"), ("p95_ms", "lowest p95 latency"),
                                             (COST, "lowest cost")])
def test_why_names_the_objective_and_the_number_of_qualifying_models(objective, goal):
    """Check the 'Why' line per objective, and that only an accuracy pick that is not significant adds the
    'equally defensible' note."""
    cfg = RecommendParams(objective=objective, max_params=100_000_000)  # bert (110M) is out: 2 qualify
    for significant in (True, False):
        rec = recommend.recommend(_golden_table(), cfg, _compare(significant))["ag_news"]
        markdown = recommend.to_markdown({"ag_news": rec}, cfg)
        assert f"Why: the {goal} of the 2 model(s) that meet every constraint." in markdown.split("\n")
        verdict = "(significant on 200 test rows: " if significant else "(not significant on 200 test rows: "
        assert verdict in markdown
        note = (f"The difference is not significant: if speed or cost matter more, {rec['runner_up']} is an "
                "equally defensible choice.")
        assert (note in markdown.split("\n")) is (not significant and objective == "accuracy")


def test_single_qualifying_model_has_no_runner_up_line():
    """Check the text when exactly one model qualifies: no comparison, 'Runner-up: none (...)'."""
    cfg = RecommendParams(min_accuracy=0.92)
    calls = []
    recs = recommend.recommend(_golden_table().iloc[:3], cfg, _recording_compare(calls))
    lines = recommend.to_markdown(recs, cfg).split("\n")
    assert calls == [] and recs["ag_news"]["comparison"] is None
    start = lines.index("Why: the highest accuracy of the 1 model(s) that meet every constraint.")
    assert lines[start - 2].startswith("Recommended: **bert** (onnx_int8): accuracy 0.9412, 80.00 ms p95")
    assert lines[start + 1:start + 3] == ["Runner-up: none (no other model meets the constraints).", ""]


def test_describe_without_accuracy_or_variant():
    """Check the candidate text when accuracy was not measured and the row names no variant."""
    rows = [_measured("m", variant=None, p95_ms=2.0)]
    recs = recommend.recommend(_table(*rows), RecommendParams())
    assert "Recommended: **m**: accuracy not measured, 2.00 ms p95 (upper bound)." in \
        recommend.to_markdown(recs, RecommendParams()).split("\n")
