"""Cascades (issue 19, item 4): routing, latency summed per text, thresholds chosen on validation only, the
test scoring, the cost and memory of a chain, the Pareto front and what the recommendation says.

Fast, CPU-only: hand-written served predictions (parquet) and benchmark reports of known answers.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from textcls.bench import served
from textcls.bench.served import ServedPredictions
from textcls.config.params import CascadeParams, RecommendParams, parse_params
from textcls.errors import ParamsError, TextclsError
from textcls.report import cascades


def test_route_sends_each_text_to_the_first_member_confident_enough():
    """Check the routing rule: a member answers when its confidence >= its threshold; the last answers the rest."""
    conf = np.array([[0.9, 0.2, 0.0], [0.5, 0.8, 0.0], [0.5, 0.6, 0.0], [0.7, 0.1, 0.0]])
    assert cascades.route(conf, [0.7, 0.7]).tolist() == [0, 1, 2, 0]
    assert cascades.route(conf, [0.0, 0.0]).tolist() == [0, 0, 0, 0]  # 0: the first always answers
    assert cascades.route(conf, [math.inf, 0.0]).tolist() == [1, 1, 1, 1]  # inf: always passed on
    with pytest.raises(ValueError, match="3 members need 2 thresholds"):
        cascades.route(conf, [0.5])


def test_outcome_sums_the_latency_of_the_calls_each_text_went_through():
    """Check per-text latency (the sum of the members' own times up to where it stops), accuracy and shares."""
    correct = np.array([[True, False], [False, True], [False, False], [True, True]])
    latency = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    out = cascades.outcome(correct, latency, np.array([0, 1, 1, 0]))
    assert out.correct.tolist() == [True, True, False, True] and out.accuracy == 0.75
    assert out.mean_ms == pytest.approx((1 + 22 + 33 + 4) / 4)
    assert out.answered == [0.5, 0.5] and out.reached == [1.0, 0.5]
    assert out.p50_ms == pytest.approx(np.percentile([1, 22, 33, 4], 50))
    assert out.p95_upper_ms is None  # 4 calls: too few to bound a p95


def _chain_arrays(n: int, seed: int):
    """A cheap member whose prediction is right exactly when its confidence >= 0.8, and an expensive member that is
    always right: the best threshold is 0.8 (every confident text stays, every other one is passed on)."""
    rng = np.random.default_rng(seed)
    conf0 = rng.uniform(0.5, 1.0, n)
    conf = np.stack([conf0, np.ones(n)], axis=1)
    correct = np.stack([conf0 >= 0.8, np.ones(n, dtype=bool)], axis=1)
    latency = np.stack([np.full(n, 1.0), np.full(n, 10.0)], axis=1)
    return conf, correct, latency


def test_thresholds_keep_the_confident_texts_and_pass_the_others_on():
    """Check the known answer: with every observed confidence a candidate, the chosen threshold is the smallest
    confidence >= 0.8, so the cheap member keeps exactly its right texts (validation accuracy 1.0 at the lowest
    latency); with 20 candidates it keeps a few less, still at accuracy 1.0."""
    conf, correct, latency = _chain_arrays(400, 0)
    thresholds, result = cascades.choose_thresholds(conf, correct, latency, 400, 0.0)
    assert result.accuracy == 1.0
    assert thresholds[0] == conf[:, 0][conf[:, 0] >= 0.8].min()
    coarse, rough = cascades.choose_thresholds(conf, correct, latency, 20, 0.0)
    assert rough.accuracy == 1.0 and coarse[0] >= thresholds[0] and rough.mean_ms >= result.mean_ms
    assert result.answered[0] == pytest.approx((conf[:, 0] >= 0.8).mean())


def test_an_always_right_cheap_member_answers_everything_and_an_always_wrong_one_nothing():
    """Check the two ends: threshold 0 when the cheap member is always right, infinity when it is always wrong."""
    conf, _, latency = _chain_arrays(50, 1)
    right = np.ones((50, 2), dtype=bool)
    assert cascades.choose_thresholds(conf, right, latency, 10, 0.0)[0] == [cascades.NEVER_DEFER]
    wrong = right.copy()
    wrong[:, 0] = False
    assert cascades.choose_thresholds(conf, wrong, latency, 10, 0.0)[0] == [cascades.ALWAYS_DEFER]


def test_the_accuracy_tolerance_buys_a_cheaper_threshold():
    """Check max_accuracy_drop: with 0 the chain passes on every text the cheap member may get wrong; with a
    tolerance of 5 pt it keeps more texts at a lower expected latency, within 5 pt of the best accuracy."""
    conf, correct, latency = _chain_arrays(400, 2)
    correct[:, 0] = conf[:, 0] >= 0.7  # right from 0.7 on, but ...
    correct[(conf[:, 0] >= 0.7) & (conf[:, 0] < 0.8), 0] = np.arange(((conf[:, 0] >= 0.7) & (conf[:, 0] < 0.8)).sum()) % 2 == 0
    _, strict = cascades.choose_thresholds(conf, correct, latency, 100, 0.0)
    _, loose = cascades.choose_thresholds(conf, correct, latency, 100, 0.05)
    assert strict.accuracy == 1.0
    assert loose.mean_ms < strict.mean_ms and loose.accuracy >= 1.0 - 0.05 and loose.accuracy < 1.0


# --------------------------------------------------------------------------- from the saved files


ROWS_TEST = np.arange(100, 500, 2)  # 200 test rows (ids not 0..n-1)
ROWS_VAL = np.arange(0, 200)


def _probs(preds: np.ndarray, conf: np.ndarray, classes: int = 2) -> np.ndarray:
    probs = np.full((len(preds), classes), 0.0)
    probs[np.arange(len(preds)), preds] = conf
    probs[np.arange(len(preds)), 1 - preds] = 1 - conf
    return probs


def _write_entry(root, entry: str, variant: str, parts: dict, cost: float, memory: float, params: int = 10):
    """Served predictions and a benchmark report of one entry: ``parts[split] = (rows, labels, preds, conf, ms)``."""
    rows = []
    for split, (ids, labels, preds, conf, ms) in parts.items():
        probs = _probs(preds, conf)
        rows.append(ServedPredictions("cpu", variant, ids, labels, preds, probs.astype(np.float32), split,
                                      np.asarray(ms, dtype=float)))
    served.write(root / "served" / "toy" / f"{entry}.parquet", rows)
    bench = {"params": params, "cpu": {"status": "measured", "best_variant": variant,
                     "variants": {variant: {"cost_per_1k_texts_usd": cost, "model_rss_mb": memory}}}}
    (root / "bench" / "toy").mkdir(parents=True, exist_ok=True)
    (root / "bench" / "toy" / f"{entry}.json").write_text(json.dumps(bench))


def _toy_run(root, test_cheap_right=None, val_shift: float = 0.0, llm_rows: int | None = None):
    """Two entries on a binary task: ``cheap`` (right when conf >= 0.8 + val_shift on validation; on test right
    where ``test_cheap_right`` says, default the same rule) and ``big`` (always right, 10 ms); optionally an
    ``llm`` (always wrong, 100 ms) serving only ``llm_rows`` of the test rows and 50 validation rows."""
    out = {}
    for split, ids in (("validation", ROWS_VAL), ("test", ROWS_TEST)):
        rng = np.random.default_rng(len(ids) + (split == "test"))
        labels = rng.integers(0, 2, len(ids))
        conf = rng.uniform(0.55, 1.0, len(ids))
        right = conf >= 0.8 + (val_shift if split == "validation" else 0.0)
        if split == "test" and test_cheap_right is not None:
            right = test_cheap_right(conf)
        out[split] = (ids, labels, conf, right)
    _write_entry(root, "cheap", "sklearn", {s: (ids, y, np.where(r, y, 1 - y), c, np.full(len(ids), 1.0))
                                            for s, (ids, y, c, r) in out.items()}, cost=0.0001, memory=50.0)
    _write_entry(root, "big", "onnx_int8", {s: (ids, y, y, np.full(len(ids), 0.99), np.full(len(ids), 10.0))
                                            for s, (ids, y, c, r) in out.items()}, cost=0.001, memory=150.0,
                 params=100)
    if llm_rows:
        parts = {}
        for s, (ids, y, c, r) in out.items():
            keep = slice(0, 50) if s == "validation" else slice(0, llm_rows)
            parts[s] = (ids[keep], y[keep], 1 - y[keep], np.full(len(ids[keep]), 0.6), np.full(len(ids[keep]), 100.0))
        _write_entry(root, "llm", "fewshot", parts, cost=0.02, memory=500.0)
    return out


def _build(root, chains, **cfg):
    return cascades.build(["toy"], chains, root / "served", root / "bench", CascadeParams(**cfg), "cpu", 200, 0)


def test_a_chain_from_the_saved_files(tmp_path):
    """Check a two-entry chain end to end: thresholds keep the cheap entry's confident texts; on test the chain is
    as accurate as `big` alone at a lower expected latency (1 ms for every text + 10 ms for those passed on); the
    expected cost weighs each entry's cost by the share reaching it; memory is the sum."""
    data = _toy_run(tmp_path)
    report = _build(tmp_path, [["cheap", "big"]], thresholds=50).json
    chain = report["datasets"]["toy"]["chains"][0]
    assert chain["members"] == ["cheap:sklearn", "big:onnx_int8"] and chain["name"] == "cheap:sklearn -> big:onnx_int8"
    conf_test = data["test"][2]
    passed = (conf_test < chain["thresholds"][0]).mean()
    assert chain["test"]["reached"] == [1.0, pytest.approx(passed, abs=1e-4)]
    assert chain["mean_ms"] == pytest.approx(1.0 + 10.0 * passed, abs=1e-3)
    assert chain["accuracy"] == pytest.approx(1.0 - ((conf_test >= chain["thresholds"][0]) & (conf_test < 0.8)).mean(),
                                              abs=1e-6)
    assert chain["cost_per_1k_texts_usd"] == pytest.approx(0.0001 + 0.001 * passed, rel=1e-3)
    assert chain["memory_mb"] == 200.0
    assert chain["vs_last"]["n"] == len(ROWS_TEST) and chain["full_test_rows"] is True
    singles = {s["name"]: s for s in report["datasets"]["toy"]["singles"]}
    assert singles["big:onnx_int8"]["accuracy"] == 1.0 and singles["big:onnx_int8"]["mean_ms"] == 10.0
    # the thresholds keep only right texts here, so the chain is as accurate as big and faster: big drops off the
    # front; cheap is the fastest and stays on it
    assert chain["accuracy"] == 1.0
    fronts = {p["name"]: p["pareto"] for p in [chain, *singles.values()]}
    assert fronts == {chain["name"]: True, "big:onnx_int8": False, "cheap:sklearn": True}


def test_thresholds_never_look_at_test(tmp_path):
    """Check that the thresholds come from validation alone: a test split on which the cheap entry is always
    wrong leaves them unchanged (only the test score moves); moving the validation split moves them."""
    _toy_run(tmp_path / "a")
    _toy_run(tmp_path / "b", test_cheap_right=lambda conf: np.zeros(len(conf), dtype=bool))
    _toy_run(tmp_path / "c", val_shift=0.1)
    chains = [["cheap", "big"]]
    a, b, c = (_build(tmp_path / x, chains).json["datasets"]["toy"]["chains"][0] for x in "abc")
    assert a["thresholds"] == b["thresholds"] and a["validation"] == b["validation"]
    assert b["accuracy"] < a["accuracy"]
    assert c["thresholds"][0] > a["thresholds"][0]


def test_a_chain_ending_in_an_llm_is_scored_on_the_rows_the_llm_served(tmp_path):
    """Check an LLM member answering a test subsample: the chain is scored on those rows only, says so
    (`full_test_rows` false, no Pareto verdict), and its thresholds never send a text to an always-wrong LLM."""
    _toy_run(tmp_path, llm_rows=60)
    report = _build(tmp_path, [["cheap", "big", "llm"]]).json
    chain = report["datasets"]["toy"]["chains"][0]
    assert chain["test"]["n"] == 60 and chain["full_test_rows"] is False and chain["pareto"] is None
    assert chain["validation"]["n"] == 50
    assert chain["test"]["reached"][2] == 0.0  # the LLM is never reached
    assert chain["thresholds"][1] == 0.0  # big always answers


def test_missing_validation_rows_or_times_are_a_clear_error(tmp_path):
    """Check that an entry without served validation rows (an LLM with max_validation_rows 0, or a file from
    before they were saved) stops the chain with a message naming the fix; so do untimed calls."""
    _toy_run(tmp_path)
    ids, labels = ROWS_TEST, np.zeros(len(ROWS_TEST), dtype=int)
    served.write(tmp_path / "served" / "toy" / "big.parquet",
                 [ServedPredictions("cpu", "onnx_int8", ids, labels, labels, _probs(labels, np.full(len(ids), 0.9)))])
    with pytest.raises(TextclsError, match="no served validation predictions of cpu/onnx_int8.*Fix"):
        _build(tmp_path, [["cheap", "big"]])
    with pytest.raises(TextclsError, match="no measured CPU variant 'eager_fp32'"):
        _build(tmp_path, [["cheap", "big:eager_fp32"]])


def _recs(model: str, variant: str) -> dict:
    return {"toy": {"recommended": model, "candidates": {model: {"variant": variant}}}}


def test_the_recommendation_weighs_the_best_feasible_chain_against_the_recommended_model(tmp_path):
    """Check the verdicts: the chain is as accurate as `big` (no significant difference) and cheaper: `cheaper`;
    a memory limit under the chain's sum makes none feasible; against `cheap` (much less accurate) the chain is
    `better`."""
    _toy_run(tmp_path)
    report = _build(tmp_path, [["cheap", "big"]])
    cfg = RecommendParams(objective="accuracy")
    verdict = cascades.consider(report, _recs("big", "onnx_int8"), cfg, 0.05, 200, 0)["toy"]
    assert verdict["verdict"] == "cheaper" and verdict["comparison"]["n"] == len(ROWS_TEST)
    assert "as accurate within the noise and cheaper" in cascades.markdown_lines(verdict)[0]
    tight = RecommendParams(objective="accuracy", max_memory_mb=180)
    none = cascades.consider(report, _recs("big", "onnx_int8"), tight, 0.05, 200, 0)["toy"]
    assert none["verdict"] == "none feasible" and "model memory (MB) 200 > 180 (max_memory_mb)" in none["violations"][
        "cheap:sklearn -> big:onnx_int8"][0]
    small = RecommendParams(objective="accuracy", max_params=50)  # the chain holds both: 10 + 100 parameters
    assert cascades.consider(report, _recs("big", "onnx_int8"), small, 0.05, 200, 0)["toy"]["violations"][
        "cheap:sklearn -> big:onnx_int8"] == ["parameters 110 > 50 (max_params)"]
    better = cascades.consider(report, _recs("cheap", "sklearn"), cfg, 0.05, 200, 0)["toy"]
    assert better["verdict"] == "better" and better["comparison"]["diff"] > 0
    assert "deploy the cascade instead" in cascades.markdown_lines(better)[0]


def test_the_markdown_table_names_every_chain_and_single_entry(tmp_path):
    """Check the table: one row per chain and per single entry, thresholds and shares as computed."""
    _toy_run(tmp_path)
    report = _build(tmp_path, [["cheap", "big"]]).json
    text = cascades.to_markdown(report)
    chain = report["datasets"]["toy"]["chains"][0]
    assert f"| cascade | cheap:sklearn → big:onnx_int8 | {chain['thresholds'][0]:.3f} |" in text
    assert "| single | big:onnx_int8 |" in text and "| single | cheap:sklearn |" in text
    assert "validation" in text and cascades.to_markdown({"datasets": {}}).startswith("# Cascades\n\nNo chains")


# --------------------------------------------------------------------------- params


def _params(chains) -> dict:
    import yaml

    with open("params.yaml") as f:
        raw = yaml.safe_load(f)
    raw["cascades"] = {"chains": chains}
    return raw


def test_params_reject_one_entry_twice_or_a_one_member_chain():
    """Check the one-line errors: a repeat is refused, a one-member chain is not a chain, a bad threshold count
    is named; `entry:variant` is accepted, and so is a member these params do not declare (skipped later)."""
    assert parse_params(_params([["tfidf", "minilm:onnx_int8"]])).cascades.chains == [["tfidf", "minilm:onnx_int8"]]
    assert parse_params(_params([["tfidf", "bert"]])).cascades.chains == [["tfidf", "bert"]]
    with pytest.raises(ParamsError, match="names one entry twice"):
        parse_params(_params([["minilm", "minilm:onnx_int8"]]))
    with pytest.raises(ParamsError, match="cascades.chains"):
        parse_params(_params([["minilm"]]))
    with pytest.raises(ParamsError, match="cascades.thresholds"):
        raw = _params([])
        raw["cascades"]["thresholds"] = 0
        parse_params(raw)


def test_a_chain_naming_an_undeclared_entry_is_skipped_and_reported(tmp_path):
    """Check that after a model-set change a chain naming a removed entry is skipped with its reason (in the
    report and its Markdown), while the others are evaluated."""
    keep, skipped = cascades.declared([["cheap", "big"], ["cheap", "bert:onnx_int8"]], ["cheap", "big"])
    assert keep == [["cheap", "big"]]
    assert skipped[0]["chain"] == "cheap -> bert:onnx_int8" and "'bert' not an entry" in skipped[0]["reason"]
    _toy_run(tmp_path)
    report = cascades.build(["toy"], keep, tmp_path / "served", tmp_path / "bench", CascadeParams(), "cpu", 100, 0,
                            skipped).json
    assert report["skipped"] == skipped and len(report["datasets"]["toy"]["chains"]) == 1
    assert "- Skipped cheap -> bert:onnx_int8: 'bert' not an entry" in cascades.to_markdown(report)


def test_the_served_frame_gives_each_calls_confidence():
    """Check Calls: the top class probability of each served row, its label, prediction and time."""
    frame = pd.DataFrame({"label": [0, 1], "pred": [0, 0], "probs": [np.array([0.7, 0.3]), np.array([0.6, 0.4])],
                          "latency_ms": [1.5, 2.5]}, index=pd.Index([4, 9], name="row"))
    calls = cascades.Calls.from_served(frame).frame
    assert calls["conf"].tolist() == pytest.approx([0.7, 0.6]) and calls["latency_ms"].tolist() == [1.5, 2.5]
