"""Capacity and cost (textcls.report.capacity): replicas, cost per month and the LLM API break-even, on cases
whose answers are worked out by hand in each test."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from textcls.config.params import ApiPriceParams, CapacityParams, Entry, parse_params
from textcls.errors import ParamsError
from textcls.report import capacity, pr
from textcls.report.capacity import Curve, Prompt

HOURS = 730


def cfg(**kw) -> CapacityParams:
    prices = kw.pop("prices", (None, None))
    base = dict(requests_per_s=10.0, p95_target_ms=50.0, hours_per_month=HOURS, max_utilisation=1.0,
                llm_api_price_per_1m_tokens=ApiPriceParams(*prices), llm_api_output_tokens_per_text=0)
    return CapacityParams(**{**base, **kw})


def variant(sweep: dict, p95: float = 10.0, mean: float = 8.0, accuracy: float = 0.9) -> dict:
    """A benchmark JSON variant: batch-1 latency and a throughput sweep {batch size: texts/s}."""
    return {"accuracy": accuracy, "batch_size": 1, "latency_ms": {"p95": p95 - 1, "p95_upper": p95, "mean": mean},
            "throughput": {str(b): {"samples_per_s": s} for b, s in sweep.items()}}


def bench(**variants) -> dict:
    return {"cpu": {"status": "measured", "variants": variants},
            "cuda": {"status": "unavailable", "reason": "no CUDA GPU on this machine"}}


def test_replicas_and_cost_per_month_by_hand():
    """150 req/s on replicas doing 100 texts/s, planned 50 % busy: 150 / 50 = 3 replicas; 3 x $0.10/h x 730 h =
    $219 a month; per 1,000 texts: 219 / (150 x 3,600 x 730) x 1,000."""
    rows = capacity.rows_for("ds", "m", bench(v=variant({1: 100.0})), [],
                             cfg(requests_per_s=150.0, max_utilisation=0.5), {"cpu": 0.10, "cuda": 2.5})
    assert len(rows) == 1  # cuda was not measured: no row
    row = rows[0]
    assert (row.status, row.batch_size, row.replicas) == ("planned", 1, 3)
    assert row.cost_per_month_usd == pytest.approx(219.0)
    assert row.cost_per_1k_texts_usd == pytest.approx(219.0 / (150 * 3600 * HOURS) * 1000)
    assert row.p95_ms == 10.0  # batch 1: the measured p95 bound


@pytest.mark.parametrize("rate, replicas", [(100.0, 2), (100.5, 3), (0.001, 1), (50.0, 1), (50.01, 2)])
def test_replicas_round_up_to_whole_replicas_and_at_least_one(rate, replicas):
    """50 texts/s per replica: exactly 100 req/s is 2 replicas (no float rounding up to 3), a hair more is 3,
    almost no traffic still needs 1."""
    p = capacity.plan(Curve({1: 50.0}, 10.0, 8.0), rate, 50.0, 1.0)
    assert p.chosen.replicas == replicas


def test_a_batch_size_whose_p95_misses_the_target_is_excluded():
    """400 req/s; batch 1 at 100/s -> 4 replicas, p95 10 ms. Batch 8 at 400/s -> 1 replica, which receives 400 req/s:
    the first text waits 7 / 400 s = 17.5 ms for its batch, which runs 8 / 400 s = 20 ms x tail 10/8 = 25 ms:
    p95 estimate 42.5 ms. A 40 ms target excludes batch 8; a 50 ms target takes it (1 replica instead of 4)."""
    curve = Curve({1: 100.0, 8: 400.0}, 10.0, 8.0)
    tight = capacity.plan(curve, 400.0, 40.0, 1.0)
    b8 = next(o for o in tight.options if o.batch_size == 8)
    assert (b8.replicas, b8.fill_ms, b8.batch_ms, b8.p95_ms) == (1, pytest.approx(17.5), pytest.approx(20.0),
                                                                 pytest.approx(42.5))
    assert not b8.fits
    assert (tight.chosen.batch_size, tight.chosen.replicas) == (1, 4)
    loose = capacity.plan(curve, 400.0, 50.0, 1.0)
    assert (loose.chosen.batch_size, loose.chosen.replicas) == (8, 1)


def test_low_traffic_cannot_fill_batches_in_time():
    """At 10 req/s a batch of 8 waits 700 ms to fill: batch 1 is the plan, whatever its throughput."""
    p = capacity.plan(Curve({1: 100.0, 8: 4000.0}, 10.0, 8.0), 10.0, 50.0, 1.0)
    assert p.chosen.batch_size == 1


def test_a_variant_missing_the_target_at_batch_1_gets_no_replica_count():
    rows = capacity.rows_for("ds", "llm", bench(slow=variant({1: 2.0, 8: 50.0}, p95=820.0, mean=630.0)), [],
                             cfg(p95_target_ms=50.0), {"cpu": 0.10, "cuda": 2.5})
    row = rows[0]
    assert row.status == "misses_p95_at_batch_1"
    assert row.replicas is None and row.cost_per_month_usd is None
    assert "820 ms" in row.reason and "50 ms" in row.reason
    assert "none: batch-1 p95" in capacity.to_markdown(capacity.build(
        [Entry("ds", "llm", "llm", "", "", "")], lambda ds, n: bench(slow=variant({1: 2.0}, p95=820.0, mean=630.0)),
        lambda ds, n: None, cfg(), {"cpu": 0.1, "cuda": 2.5}))


def test_break_even_by_hand():
    """A replica: $0.36/h, 100 texts/s. The API: 1,000 input tokens at $1 per 1M = $0.001 per text. The API's bill
    equals one replica's at 0.36 / (3,600 x 0.001) = 0.1 req/s, far below one replica's capacity: the API is
    cheaper below 0.1 req/s (262,800 texts a month), never above."""
    curve = Curve({1: 100.0}, 10.0, 8.0)
    c = cfg(requests_per_s=0.05, prices=(1.0, None))
    plan = capacity.plan(curve, c.requests_per_s, c.p95_target_ms, c.max_utilisation)
    api = capacity.compare_api(curve, plan.chosen, Prompt("llm", 1000.0, 100), c, 0.36)
    assert api.cost_per_1k_texts_usd == pytest.approx(1.0)
    assert api.break_even_requests_per_s == pytest.approx(0.1)
    assert api.break_even_texts_per_month == pytest.approx(0.1 * 3600 * HOURS)
    assert api.cheaper_at_profile  # 0.05 req/s: API $131.40 a month vs one replica's $262.80
    assert api.cost_per_month_usd == pytest.approx(0.05 * 3600 * HOURS * 0.001)
    busier = capacity.compare_api(curve, capacity.plan(curve, 0.2, 50.0, 1.0).chosen, Prompt("llm", 1000.0, 100),
                                  cfg(requests_per_s=0.2, prices=(1.0, None)), 0.36)
    assert not busier.cheaper_at_profile  # $525.60 vs $262.80


def test_break_even_counts_output_tokens():
    """700 input tokens at $1 and 30 output tokens at $10 per 1M: (700 + 300) / 1e6 = $0.001 per text."""
    per_text, why = capacity.api_cost_per_text(700.0, 30, 1.0, 10.0)
    assert per_text == pytest.approx(0.001) and why == ""


def brute_force(curve: Curve, q: float, target: float, u: float, top: float) -> float:
    """The largest traffic on a fine grid where the API (q: its bill equals one replica's at q req/s) is cheaper."""
    xs = np.linspace(top / 20000, top, 20000)
    cheaper = [x for x in xs if x < capacity.plan(curve, float(x), target, u).chosen.replicas * q]
    return max(cheaper)


def test_break_even_steps_with_whole_replicas():
    """q = 80 req/s, 100 per replica: with k replicas the API is cheaper below 80 k, inside ((k-1) 100, k 100] only
    while 80 k > 100 (k - 1), i.e. k <= 4: the API is cheaper up to 320 req/s, never above."""
    curve = Curve({1: 100.0}, 10.0, 8.0)
    x, always, _ = capacity.break_even(curve, 80.0, 50.0, 1.0)
    assert (x, always) == (pytest.approx(320.0), False)
    assert brute_force(curve, 80.0, 50.0, 1.0, 1000.0) == pytest.approx(320.0, abs=0.1)


def test_batching_lowers_the_break_even():
    """As above, but batches of 8 run at 400/s (p95 estimate 7000/x ms fill + 25 ms: within 100 ms from 93.3 req/s):
    one replica serves up to 400 req/s, so the API is cheaper only below 80 req/s (batch 1 alone: 320)."""
    curve = Curve({1: 100.0, 8: 400.0}, 10.0, 8.0)
    x, always, _ = capacity.break_even(curve, 80.0, 100.0, 1.0)
    assert (x, always) == (pytest.approx(80.0), False)
    assert brute_force(curve, 80.0, 100.0, 1.0, 1000.0) == pytest.approx(80.0, abs=0.1)


def test_an_api_cheaper_per_text_than_a_full_replica_is_cheaper_at_every_traffic():
    x, always, reason = capacity.break_even(Curve({1: 100.0}, 10.0, 8.0), 150.0, 50.0, 1.0)
    assert (x, always) == (None, True) and "every traffic" in reason


def test_null_prices_give_no_break_even_and_say_why():
    curve = Curve({1: 100.0}, 10.0, 8.0)
    chosen = capacity.plan(curve, 10.0, 50.0, 1.0).chosen
    none = capacity.compare_api(curve, chosen, Prompt("llm", 700.0, 100), cfg(prices=(None, None)), 0.1)
    assert none.cost_per_1k_texts_usd is None and none.break_even_requests_per_s is None
    assert "capacity.llm_api_price_per_1m_tokens.input is null" in none.reason
    no_out = capacity.compare_api(curve, chosen, Prompt("llm", 700.0, 100),
                                  cfg(prices=(1.0, None), llm_api_output_tokens_per_text=8), 0.1)
    assert no_out.break_even_requests_per_s is None
    assert "capacity.llm_api_price_per_1m_tokens.output is null" in no_out.reason
    report = capacity.build([Entry("ds", "m", "model", "", "", ""), Entry("ds", "llm", "llm", "", "", "")],
                            lambda ds, n: bench(v=variant({1: 100.0})) if n == "m" else None,
                            lambda ds, n: {"prompt_tokens_per_example": 700.0, "test_rows": 100} if n == "llm" else None,
                            cfg(), {"cpu": 0.1, "cuda": 2.5})
    md = capacity.to_markdown(report)
    assert "Prices are yours to set" in md and "input not set, output not set" in md
    assert "not computed" in md and "set your API's price" in md
    assert report["prices"]["llm_api_usd_per_1m_tokens"] == {"input": None, "output": None}


def test_build_uses_the_test_split_lengths_and_the_llm_prompt():
    """Words per test text (indexed by row) give the length profile; the LLM's scored rows its texts' mean length."""
    words = pd.Series([2, 4, 6, 8, 100], index=[10, 11, 12, 13, 14])
    report = capacity.build(
        [Entry("ds", "m", "model", "", "", ""), Entry("ds", "llm", "llm", "", "", "")],
        lambda ds, n: bench(v=variant({1: 100.0})) if n == "m" else None,
        lambda ds, n: {"prompt_tokens_per_example": 737.9, "test_rows": 2} if n == "llm" else None,
        cfg(requests_per_s=0.01, prices=(0.15, 0.6), llm_api_output_tokens_per_text=8), {"cpu": 0.1, "cuda": 2.5},
        words=lambda ds: words, llm_rows=lambda ds, n: np.array([10, 12]))
    block = report["datasets"]["ds"]
    assert block["text_lengths"] == {"texts": 5, "mean": 24.0, "p50": 6.0, "p95": pytest.approx(81.6), "max": 100}
    assert block["prompts"] == [{"llm": "llm", "tokens_per_text": 737.9, "texts": 2, "mean_words": 4.0}]
    api = block["rows"][0]["api"][0]
    per_text = (737.9 * 0.15 + 8 * 0.6) / 1e6
    assert api["cost_per_1k_texts_usd"] == pytest.approx(per_text * 1000)
    assert api["break_even_requests_per_s"] == pytest.approx(0.1 / (3600 * per_text))
    assert api["cheaper_at_profile"] is True
    assert "| ds | m | cpu · v (batch 1) | 1 |" in capacity.pr_section(report)


def test_the_fewshot_variant_without_a_sweep_plans_at_batch_1():
    curve = capacity.curve_of({"batch_size": 1, "samples_per_s": 1.5,
                               "latency_ms": {"p95": 700.0, "p95_upper": 820.0, "mean": 640.0}})
    assert curve == Curve({1: 1.5}, 820.0, 640.0)
    assert capacity.plan(curve, 3.0, 1000.0, 1.0).chosen.replicas == 2


def test_pr_report_has_the_capacity_section_after_the_recommendation():
    out = pr.build_report("main", "", "", "| a |\n|---|\n| 1 |\n", "Deploy x.", [], [],
                          capacity_md=capacity.pr_section(None))
    assert out.index("## Recommendation") < out.index("## Capacity and cost") < out.index("## Plots changed")
    assert "metrics/capacity.md` is missing" in out


@pytest.fixture(scope="module")
def raw_params(project_root) -> dict:
    return yaml.safe_load((project_root / "params.yaml").read_text(encoding="utf-8"))


@pytest.mark.bad_input
@pytest.mark.parametrize("key, value, match", [
    ("requests_per_s", -5.0, r"'capacity\.requests_per_s' parameter must be a number > 0 \(texts per second"),
    ("requests_per_s", 0, r"'capacity\.requests_per_s' parameter must be a number > 0"),
    ("p95_target_ms", 0.0, r"'capacity\.p95_target_ms' parameter must be a number > 0"),
    ("hours_per_month", 800, r"'capacity\.hours_per_month' parameter must be hours in \(0, 744\]"),
    ("max_utilisation", 1.5, r"'capacity\.max_utilisation' parameter must be a fraction in \(0, 1\]"),
    ("llm_api_output_tokens_per_text", -1, r"'capacity\.llm_api_output_tokens_per_text' parameter must be an integer"),
    ("llm_api_price_per_1m_tokens", {"input": -0.1, "output": None},
     r"'capacity\.llm_api_price_per_1m_tokens\.input' parameter must be a price >= 0"),
    ("llm_api_price_per_1m_tokens", {"inputs": 0.1}, r"Unknown key capacity\.llm_api_price_per_1m_tokens\.'inputs'"),
    ("rate", 5, r"Unknown key capacity\.'rate'.*Valid keys under 'capacity': hours_per_month"),
])
def test_bad_capacity_params_are_rejected_naming_the_key(raw_params, key, value, match):
    raw = copy.deepcopy(raw_params)
    raw["capacity"][key] = value
    with pytest.raises(ParamsError, match=match):
        parse_params(raw)


def test_default_params_declare_capacity_with_prices_unset(raw_params):
    params = parse_params(copy.deepcopy(raw_params))
    assert params.capacity.llm_api_price_per_1m_tokens == ApiPriceParams(None, None)
    assert math.isclose(params.capacity.hours_per_month, 730)
    raw = copy.deepcopy(raw_params)
    raw["capacity"]["llm_api_price_per_1m_tokens"] = None  # `llm_api_price_per_1m_tokens:` with nothing under it
    assert parse_params(raw).capacity.llm_api_price_per_1m_tokens == ApiPriceParams(None, None)


def test_only_aggregate_depends_on_capacity_and_writes_its_tables(project_root):
    stages = yaml.safe_load((project_root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    readers = sorted(name for name, stage in stages.items()
                     if any(str(p).split(".")[0] == "capacity" for p in (stage.get("do", stage).get("params") or [])))
    assert readers == ["aggregate"]
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in stages["aggregate"]["outs"]]
    assert {"metrics/capacity.json", "metrics/capacity.md"} <= set(outs)
    assert "--capacity-json metrics/capacity.json --capacity-md metrics/capacity.md" in stages["aggregate"]["cmd"]
