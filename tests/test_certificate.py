"""The decision certificate (issue 19, item 3): per model, P(best meeting every constraint) from joint resamples of
the test rows (paired across models) and the latency repeats, and its margin to each limit.

Synthetic cases with a known answer; each is chosen so that a plausible bug (unpaired rows, a constraint's
direction reversed, the model name as tie-break, the order of the models mattering) gives another answer.
Fast, CPU-only, no files but tmp_path.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import binom

from textcls.bench import latency, served
from textcls.bench.served import ServedPredictions
from textcls.config.params import RecommendParams
from textcls.report import certificate, docs, leaderboard, recommend
from textcls.report.certificate import Constraint, ModelEvidence, certify

N = 1000
ROWS = np.arange(N)
MIN_ACC = Constraint("min_accuracy", "accuracy", "min", 0.75)
MAX_P95 = Constraint("max_p95_ms", "p95_ms", "max", 50.0)
MAX_MEM = Constraint("max_memory_mb", "memory_mb", "max", 1024.0)
REPEATS = np.linspace(4.0, 6.0, 10)  # per-repeat p95s, ms: spread, no two equal


def _model(name, correct, p95=5.0, repeats=REPEATS, rows=ROWS, memory=100.0, cost=1e-4, params=1e6, **kw):
    correct = np.asarray(correct, dtype=bool)
    values = {"accuracy": float(correct.mean()), "p95_ms": p95, "memory_mb": memory,
              "cost_per_1k_texts_usd": cost, "params": params}
    return ModelEvidence(name, values, rows=np.asarray(rows), correct=correct,
                         p95_repeats=None if repeats is None else np.asarray(repeats), **kw)


def _right(share: float, n: int = N, offset: int = 0) -> np.ndarray:
    """Right on the first ``share`` of the rows (rolled by ``offset``)."""
    return np.roll(np.arange(n) < round(share * n), offset)


def _sd(p: float, b: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / b)


# --------------------------------------------------------------------------- known answers


def test_a_clearly_best_model_has_p_best_one():
    """Check 95 % against 80 % accuracy on 1000 rows, both within every limit: P(best) = 1 and 0; every
    constraint is met in every draw; no draw without a feasible model."""
    cert = certify([_model("weak", _right(0.80)), _model("strong", _right(0.95))], [MIN_ACC, MAX_P95, MAX_MEM],
                   "accuracy", 1000, 0)
    assert cert.model("strong").p_best == 1.0 and cert.model("weak").p_best == 0.0
    assert [m.model for m in cert.models] == ["strong", "weak"]  # highest P(best) first
    assert cert.p_no_feasible == 0.0 and cert.p_tie == 0.0 and cert.test_rows == N
    assert all(c.p_met == 1.0 for m in cert.models for c in m.checks)


def test_two_identical_models_get_one_half_each():
    """Check that two models with identical predictions and identical latency repeats (drawn independently) get
    P(best) = 0.5 each within 5 Monte Carlo standard errors (B = 4000: 5 sd = 0.04), and the shares add to 1."""
    b = 4000
    same = _right(0.9, offset=17)
    cert = certify([_model("a", same), _model("b", same)], [MIN_ACC, MAX_P95], "accuracy", b, 1)
    pa_, pb = cert.model("a").p_best, cert.model("b").p_best
    assert pa_ == pytest.approx(0.5, abs=5 * _sd(0.5, b)) and pb == pytest.approx(0.5, abs=5 * _sd(0.5, b))
    assert pa_ + pb == pytest.approx(1.0) and cert.p_no_feasible == 0.0


def test_a_tie_on_every_measured_value_is_shared_not_given_to_the_first_name():
    """Check the full tie: same predictions, same fixed latency: every draw is a tie, split 0.5 / 0.5 exactly (the
    recommendation needs one name; the probability of being best does not favour "a" over "b")."""
    same = _right(0.9)
    cert = certify([_model("b", same, repeats=None), _model("a", same, repeats=None)], [MIN_ACC], "accuracy", 500, 2)
    assert (cert.model("a").p_best, cert.model("b").p_best, cert.p_tie) == (0.5, 0.5, 1.0)


def test_equal_models_by_accuracy_go_to_the_lower_p95():
    """Check the first tie-break under the accuracy objective: equal accuracy in every draw (the same predictions),
    B's repeats all above A's: A is best in every draw, like recommend._ranked (ties: lower latency)."""
    same = _right(0.9)
    fast = _model("b_fast", same, p95=5.0, repeats=REPEATS)
    slow = _model("a_slow", same, p95=9.0, repeats=REPEATS + 3.0)
    cert = certify([slow, fast], [MIN_ACC], "accuracy", 500, 3)
    assert cert.model("b_fast").p_best == 1.0 and cert.p_tie == 0.0


@pytest.mark.parametrize("objective", ["p95_ms", "cost_per_1k_texts_usd"])
def test_a_lower_objective_wins_and_its_ties_go_to_the_higher_accuracy(objective):
    """Check the other objectives: the lowest value wins whatever its accuracy; on an equal value (fixed), the
    higher accuracy wins, like recommend._ranked."""
    cheap_bad = _model("cheap", _right(0.8), p95=3.0, repeats=None, cost=1e-5)
    dear_good = _model("dear", _right(0.95), p95=8.0, repeats=None, cost=1e-3)
    cert = certify([dear_good, cheap_bad], [MIN_ACC], objective, 300, 4)
    assert cert.model("cheap").p_best == 1.0
    equal = _model("equal", _right(0.95), p95=3.0, repeats=None, cost=1e-5)
    cert = certify([cheap_bad, equal], [MIN_ACC], objective, 300, 4)
    assert cert.model("equal").p_best == 1.0


def test_the_test_rows_are_resampled_paired():
    """Check pairing: B is A except wrong on 20 of the rows A gets right. Drawing the same rows for both, A is never
    worse (P(best) = 1; a draw missing all 20 rows, a tie, has probability 0.98^1000 ~ 2e-9). Drawing each model's
    rows independently would give A about 0.93."""
    a = _right(0.9)
    b = a.copy()
    b[:20] = False
    cert = certify([_model("a", a, repeats=None), _model("b", b, repeats=None)], [], "accuracy", 2000, 5)
    assert cert.model("a").p_best == 1.0


def test_a_latency_limit_met_in_a_known_share_of_draws():
    """Check the latency resampling and the direction of a maximum. Repeats 1..11 ms (median 6), p95 bound 12 ms,
    limit 11 ms: a draw's p95 is 12 * median*/6, under 11 iff the resampled median is 5 or less, iff at least 6 of
    the 11 drawn repeats are <= 5: P = P(Binomial(11, 5/11) >= 6) = 0.37. Reversed (>=), it would be 0.63."""
    b = 4000
    model = _model("m", _right(0.9), p95=12.0, repeats=np.arange(1.0, 12.0))
    limit = Constraint("max_p95_ms", "p95_ms", "max", 11.0)
    cert = certify([model], [MIN_ACC, limit], "accuracy", b, 6)
    expected = float(binom.sf(5, 11, 5 / 11))
    assert 0.3 < expected < 0.45
    check = cert.model("m").checks[1]
    assert check.p_met == pytest.approx(expected, abs=5 * _sd(expected, b)) and check.resampled
    assert cert.model("m").p_best == check.p_met  # alone: best whenever feasible
    assert cert.p_no_feasible == pytest.approx(1 - check.p_met)
    assert check.margin == pytest.approx(-1 / 11)  # observed 12 > 11: 9 % over, yet met in 37 % of draws


def test_a_minimum_accuracy_met_in_a_known_share_of_draws():
    """Check the direction of a minimum: accuracy 0.75 on 1000 rows against a limit of 0.76 is met when at least
    760 of the 1000 drawn rows are right: P(Binomial(1000, 0.75) >= 760) = 0.24 (reversed, it would be 0.79)."""
    b = 4000
    limit = Constraint("min_accuracy", "accuracy", "min", 0.76)
    cert = certify([_model("m", _right(0.75), repeats=None)], [limit], "accuracy", b, 7)
    expected = float(binom.sf(759, N, 0.75))
    assert 0.2 < expected < 0.3
    assert cert.model("m").checks[0].p_met == pytest.approx(expected, abs=5 * _sd(expected, b))


def test_no_feasible_model():
    """Check that when every model misses a fixed limit, P(best) is 0 for all and every draw has no feasible
    model; the margins say by how much."""
    cert = certify([_model("a", _right(0.9), memory=2048.0), _model("b", _right(0.8), memory=1100.0)],
                   [MAX_MEM], "accuracy", 200, 8)
    assert all(m.p_best == 0.0 and m.p_feasible == 0.0 for m in cert.models) and cert.p_no_feasible == 1.0
    assert cert.model("b").checks[0].margin == pytest.approx((1024 - 1100) / 1024)
    assert cert.model("b").checks[0].p_met == 0.0 and not cert.model("b").checks[0].resampled


def test_a_model_without_a_benchmark_is_never_best():
    """Check that a model without a benchmark on the device never qualifies, however good its numbers."""
    unbenchmarked = ModelEvidence("gpu_only", {"accuracy": 0.99}, benchmarked=False, notes=("no GPU benchmark",))
    cert = certify([unbenchmarked, _model("m", _right(0.8))], [], "accuracy", 200, 9)
    assert cert.model("gpu_only").p_best == 0.0 and cert.model("m").p_best == 1.0
    assert cert.model("gpu_only").notes == ("no GPU benchmark",)


def test_a_model_scored_on_a_subsample_is_paired_on_its_rows():
    """Check an LLM-like model scored on rows 0..99 only, right on all of them, against a model scored on all 1000
    rows and right on the same 100 only: the union has 1000 rows, and in every draw the subsample model's accuracy
    is the mean over the drawn rows it has (1.0), so it is best every time."""
    full = np.arange(N) < 100
    sub = _model("llm", np.ones(100, dtype=bool), rows=np.arange(100), repeats=None)
    cert = certify([_model("full", full, repeats=None), sub], [], "accuracy", 300, 10)
    assert cert.test_rows == N and cert.model("llm").p_best == 1.0


# --------------------------------------------------------------------------- margins, determinism, order, input


def test_margins_by_hand():
    """Check value, slack, margin and their text on hand-computed numbers: accuracy 0.9 against >= 0.75 (slack 0.15,
    20 % above), p95 4.3 ms against <= 50 (slack 45.7, 91.4 % under: the issue's example), memory 1100 MB against
    <= 1024 (-7.4 %: over), and a fixed cost of 2e-4 against <= 2e-3 (90 % under)."""
    cost = Constraint("max_cost_per_1k_texts_usd", "cost_per_1k_texts_usd", "max", 0.002)
    m = _model("m", _right(0.9), p95=4.3, memory=1100.0, cost=2e-4)
    cert = certify([m], [MIN_ACC, MAX_P95, MAX_MEM, cost], "accuracy", 200, 11)
    acc, p95, mem, usd = cert.model("m").checks
    assert (acc.value, acc.slack, acc.margin) == (pytest.approx(0.9), pytest.approx(0.15), pytest.approx(0.2))
    assert (p95.value, p95.slack, p95.margin) == (4.3, pytest.approx(45.7), pytest.approx(0.914))
    assert mem.margin == pytest.approx(-76 / 1024) and mem.p_met == 0.0
    assert usd.margin == pytest.approx(0.9) and usd.p_met == 1.0 and not usd.resampled
    out = cert.to_dict()["models"]["m"]["constraints"]
    assert recommend.margin_text(out["max_p95_ms"]) == "4.3 ms, 91 % under the limit; P(met) 1.00"
    assert recommend.margin_text(out["min_accuracy"]) == "0.9000, 20 % above the limit; P(met) 1.00"
    assert recommend.margin_text(out["max_memory_mb"]) == "1100 MB, 7.4 % over the limit; P(met) 0.00"
    assert out["max_cost_per_1k_texts_usd"]["value"] == 2e-4 and out["max_cost_per_1k_texts_usd"]["slack"] == 0.0018
    zero = certify([m], [Constraint("min_accuracy", "accuracy", "min", 0.0)], "accuracy", 100, 11).to_dict()
    check = zero["models"]["m"]["constraints"]["min_accuracy"]  # a limit of 0: no relative margin, the slack
    assert check["margin"] is None and recommend.margin_text(check) == "0.9000, 0.9 inside the limit; P(met) 1.00"


def test_seeded_determinism_and_argument_order():
    """Check that one seed gives the same certificate, whatever the order the models come in, and another seed a
    different one (the draws are random, not fixed)."""
    models = [_model("a", _right(0.90, offset=3)), _model("b", _right(0.90, offset=500), p95=5.1),
              _model("c", _right(0.89), p95=4.9)]
    first = certify(models, [MIN_ACC, MAX_P95], "accuracy", 500, 12).to_dict()
    assert certify(models[::-1], [MIN_ACC, MAX_P95], "accuracy", 500, 12).to_dict() == first
    assert certify([models[1], models[2], models[0]], [MIN_ACC, MAX_P95], "accuracy", 500, 12).to_dict() == first
    other = certify(models, [MIN_ACC, MAX_P95], "accuracy", 500, 13).to_dict()
    assert other != first
    assert sum(m["p_best"] for m in first["models"].values()) + first["p_no_feasible"] == pytest.approx(1.0)
    json.dumps(first, allow_nan=False)


@pytest.mark.parametrize("change, message", [
    (lambda ms: ms + [ms[0]], "model names must be distinct"),
    (lambda ms: [ModelEvidence("x", {}, rows=np.arange(3), correct=np.ones(2, dtype=bool))], "one length"),
    (lambda ms: [ModelEvidence("x", {}, rows=np.array([1, 1]), correct=np.ones(2, dtype=bool))], "appears twice"),
    (lambda ms: [ModelEvidence("x", {}, rows=np.arange(2))], "both rows and correct"),
    (lambda ms: [ModelEvidence("x", {}, p95_repeats=np.array([1.0, np.nan]))], "p95_repeats"),
    (lambda ms: [], "at least one model"),
])
def test_bad_input_names_the_problem(change, message):
    """Check that malformed evidence is refused with a message naming what is wrong."""
    with pytest.raises(ValueError, match=message):
        certify(change([_model("a", _right(0.9))]), [], "accuracy", 100, 0)
    with pytest.raises(ValueError, match="resamples must be an integer >= 1"):
        certify([_model("a", _right(0.9))], [], "accuracy", 0, 0)
    with pytest.raises(ValueError, match="objective must be one of"):
        certify([_model("a", _right(0.9))], [], "f1", 100, 0)


# --------------------------------------------------------------------------- per-repeat latencies are saved


def test_repeated_latency_keeps_each_repeats_p50_and_p95():
    """Check that the benchmark JSON's latency has the per-repeat p50s and p95s the certificate resamples."""
    lat = latency.RepeatedLatency.from_repeats([[0.001 * (i + 1), 0.001 * (i + 2)] for i in range(6)]).to_dict()
    assert lat["p50_repeats"] == [1.5, 2.5, 3.5, 4.5, 5.5, 6.5]
    assert lat["p95_repeats"] == [1.95, 2.95, 3.95, 4.95, 5.95, 6.95]
    assert lat["p95"] == pytest.approx(float(np.median(lat["p95_repeats"])))


# --------------------------------------------------------------------------- wired into the recommendation

M = 200


def _files(tmp_path, with_served=True, with_repeats=True):
    """Predictions, served predictions and benchmark reports of two models on one data set "toy": big right on
    rows 0..179 (0.9), small on 0..149 (0.75)."""
    preds, srv, bench = tmp_path / "predictions", tmp_path / "served", tmp_path / "benchmark"
    rows = np.arange(M)
    for model, right in (("big", 180), ("small", 150)):
        ok = rows < right
        (preds / "toy").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"row": rows, "label": np.zeros(M, dtype=int), "pred": np.where(ok, 0, 1)}),
                       preds / "toy" / f"{model}.parquet")
        if with_served:
            served.write(srv / "toy" / f"{model}.parquet", [ServedPredictions.from_logits(
                "cpu", "onnx_int8", rows, np.zeros(M, dtype=int), np.where(ok[:, None], [[1.0, 0.0]], [[0.0, 1.0]]))])
        lat = {"p50": 2.0, "p95": 5.0, "p95_upper": 6.0}
        if with_repeats:
            lat["p95_repeats"] = [4.0, 4.5, 5.0, 5.5, 6.0]
        (bench / "toy").mkdir(parents=True, exist_ok=True)
        (bench / "toy" / f"{model}.json").write_text(json.dumps({"cpu": {"status": "measured", "best_variant":
                                                                         "onnx_int8", "variants": {"onnx_int8": {
                                                                             "latency_ms": lat}}}}))
    return preds, srv, bench


def _table():
    def row(model, acc):
        return {"dataset": "toy", "model": model, "rank": 1 if model == "big" else 2, "accuracy": acc,
                "accuracy_variant": "eager_fp32", "cpu_variant": "onnx_int8", "cpu_accuracy": acc,
                "cpu_p95_upper_ms": 6.0, "cpu_model_rss_mb": 100.0, "cpu_cost_per_1k_texts_usd": 1e-4,
                "params": 1000, "gpu_variant": "unavailable"}
    return pd.DataFrame([row("big", 0.9), row("small", 0.75)], dtype=object)


def test_the_recommendation_carries_the_certificate_and_its_table(tmp_path):
    """Check the aggregate wiring: recommendation.json gets a `certificate` per data set from the served
    predictions and the per-repeat p95s; the Markdown shows P(best), each limit's value, margin and P(met)."""
    preds, srv, bench = _files(tmp_path)
    cfg = RecommendParams(min_accuracy=0.75, max_p95_ms=50.0)
    certify_fn = leaderboard.deployed_certificate(preds, srv, bench, 1000, 0)
    rec = recommend.recommend(_table(), cfg, certify=certify_fn)["toy"]
    cert = rec["certificate"]
    assert list(cert["models"]) == ["big", "small"] and cert["models"]["big"]["p_best"] == 1.0
    assert cert["test_rows"] == M and cert["resamples"] == 1000
    small = cert["models"]["small"]["constraints"]["min_accuracy"]
    assert small["value"] == 0.75 and small["margin"] == 0.0 and 0.3 < small["p_met"] < 0.7  # at the limit
    assert all(m["latency_resampled"] and m["accuracy_resampled"] and not m["notes"] for m in cert["models"].values())
    json.dumps(rec, allow_nan=False)
    md = recommend.to_markdown({"toy": rec}, cfg).split("\n")
    assert "P(best) of the recommended big: 1.00." in md
    assert "| model | P(best) | accuracy ≥ 0.75 | p95 ≤ 50 ms |" in md
    row = next(line for line in md if line.startswith("| big |"))
    assert row == "| big | 1.00 | 0.9000, 20 % above the limit; P(met) 1.00 | 6 ms, 88 % under the limit; P(met) 1.00 |"
    small_row = next(line for line in md if line.startswith("| small |"))
    assert small_row.startswith("| small | 0.00 | 0.7500, at the limit; P(met) 0.")
    assert "No model meets every constraint in 0 % of draws; the best was a tie in 0 %." in md


def test_missing_served_predictions_and_repeats_are_said_not_silent(tmp_path):
    """Check the fallbacks: without served predictions the accuracy is resampled from the evaluate stage's and
    without per-repeat p95s the p95 stays fixed; both are named in the JSON and the Markdown."""
    preds, _, bench = _files(tmp_path, with_served=False, with_repeats=False)
    cfg = RecommendParams(min_accuracy=0.75, max_p95_ms=50.0)
    rec = recommend.recommend(_table(), cfg, certify=leaderboard.deployed_certificate(preds, None, bench, 500, 0))["toy"]
    big = rec["certificate"]["models"]["big"]
    assert not big["latency_resampled"] and big["accuracy_resampled"]
    assert big["constraints"]["max_p95_ms"]["resampled"] is False
    assert any("evaluate stage's eager_fp32 predictions" in n and "--served-dir" in n for n in big["notes"])
    assert any(n.startswith("p95 fixed at its measured 6 ms, not resampled: ") and "p95_repeats" not in n
               and "no per-repeat p95s" in n for n in big["notes"])
    md = recommend.to_markdown({"toy": rec}, cfg)
    assert "About the certificate's inputs:" in md and "- big: p95 fixed at its measured 6 ms" in md


def test_the_docs_block_shows_p_best_only_when_the_json_has_a_certificate(tmp_path):
    """Check the generated recommendation block: a P(best) column from the certificate; an older
    recommendation.json without one renders the table as before (no column)."""
    from types import SimpleNamespace

    preds, srv, bench = _files(tmp_path)
    cfg = RecommendParams(min_accuracy=0.75)
    rec = recommend.recommend(_table(), cfg, certify=leaderboard.deployed_certificate(preds, srv, bench, 200, 0))
    rec = json.loads(json.dumps(rec))
    inputs = SimpleNamespace(params=SimpleNamespace(recommend=cfg), recommendation=rec, datasets=lambda: ["toy"],
                             metrics=tmp_path)
    lines = docs.render_recommendation(inputs).split("\n")
    header = next(line for line in lines if line.startswith("| dataset"))
    assert header.startswith("| dataset | recommended | P(best) | served as |")
    assert next(line for line in lines if line.startswith("| toy")).startswith("| toy | **big** | 1.00 | ")
    old = {ds: {k: v for k, v in r.items() if k != "certificate"} for ds, r in rec.items()}
    text = docs.render_recommendation(SimpleNamespace(**{**vars(inputs), "recommendation": old}))
    assert "P(best)" not in text


def test_only_the_aggregate_stage_reads_the_recommend_params():
    """Check dvc.yaml: a constraint change (recommend.*) reruns the aggregate stage only, where the certificate is
    computed."""
    import yaml
    from pathlib import Path

    stages = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())["stages"]

    def names(stage):
        out = []
        for p in stage.get("params", []):
            out += list(p) if isinstance(p, dict) else [p]
        return out

    readers = sorted(s for s, stage in stages.items() if any(n == "recommend" or n.startswith("recommend.")
                                                             for n in names(stage)))
    assert readers == ["aggregate"]
    assert "src/textcls/report" in stages["aggregate"]["deps"]  # the folder holding certificate.py


def test_certificate_module_names_its_method():
    """Check that the documented statistic is the implemented one: the resampled measures are accuracy and p95."""
    assert certificate.RESAMPLED == ("accuracy", "p95_ms")
    assert "p95_upper" in certificate.__doc__ and "paired" in certificate.__doc__
