"""The PR report's signal-vs-noise part (textcls.report.pr_changes): known answers on fixed runs."""

from __future__ import annotations

import json

import pandas as pd

from textcls.report import pr as report
from textcls.report import pr_changes


def _bench(variant: str, p50: float, ci) -> dict:
    return {"cpu": {"status": "measured", "best_variant": variant,
                    "variants": {variant: {"latency_ms": {"p50": p50, "p50_ci": ci}}}}}


BASE = {"eval": {"ag/a": {"accuracy": 0.80, "f1_macro": 0.79}, "ag/b": {"accuracy": 0.70, "f1_macro": 0.70},
                 "ag/gone": {"accuracy": 0.5}},
        "benchmark": {"ag/a": _bench("onnx_int8", 3.0, [2.9, 3.1]), "ag/b": _bench("eager_fp32", 5.0, [4.0, 6.0]),
                      "ag/c": _bench("sklearn", 1.0, None), "ag/d": {"cpu": {"status": "unavailable"}}}}
HEAD = {"eval": {"ag/a": {"accuracy": 0.82, "f1_macro": 0.79, "auroc": 0.95}, "ag/b": {"accuracy": 0.70, "f1_macro": 0.70},
                 "ag/new": {"accuracy": 0.6}},
        "benchmark": {"ag/a": _bench("onnx_int8", 3.5, [3.3, 3.7]), "ag/b": _bench("eager_fp32", 5.5, [4.5, 6.5]),
                      "ag/c": _bench("sklearn", 1.2, [1.1, 1.3]), "ag/d": {"cpu": {"status": "unavailable"}}}}


def test_compare_keeps_real_changes_and_counts_the_noise():
    """Check: a's accuracy moved (with its paired text), its f1 did not, AUROC only in one run is no change; a new
    and a gone entry are listed; a's p50 intervals do not overlap (a change), b's do (noise), c has no base interval."""
    asked = []
    changes = pr_changes.compare(BASE, HEAD, lambda entry: asked.append(entry) or f"paired {entry}")
    assert [(q.entry, q.metric, q.old, q.new, q.paired) for q in changes.quality] == [
        ("ag/a", "accuracy", 0.80, 0.82, "paired ag/a"), ("ag/gone", "accuracy", 0.5, None, ""),
        ("ag/new", "accuracy", None, 0.6, "")]
    assert asked == ["ag/a"]
    assert [(c.entry, c.variant, c.old, c.new) for c in changes.latency] == [("ag/a", "onnx_int8", 3.0, 3.5)]
    assert changes.latency_within_noise == 1 and changes.latency_without_interval == ["ag/c"]


def test_markdown_leads_with_quality_and_lists_only_latency_beyond_noise():
    md = pr_changes.to_markdown(pr_changes.compare(BASE, HEAD, lambda e: "+2.0 pt [+0.5, +3.5], McNemar p=0.01"), "main")
    assert md.startswith("## Quality changes")
    assert "| ag/a | accuracy | 0.8000 | 0.8200 | +2.00 pt | +2.0 pt [+0.5, +3.5], McNemar p=0.01 |" in md
    assert "| ag/new | accuracy | – | 0.6000 | new entry |  |" in md and "| ag/gone | accuracy | 0.5000 | – | entry gone |" in md
    assert "| ag/a | onnx_int8 | 3 [2.9, 3.1] | 3.5 [3.3, 3.7] |" in md and "ag/b |" not in md.split("Latency")[1]
    assert "1 entry moved within the run-to-run interval (noise, not listed); no interval to judge for ag/c." in md
    quiet = pr_changes.to_markdown(pr_changes.compare(BASE, BASE), "main")
    assert "No test accuracy, macro-F1 or AUROC moved against `main`." in quiet
    assert "No batch-1 p50 moved outside the two runs' 95 % intervals." in quiet


def _costed(p50: float, cost: float, cost_ci) -> dict:
    bench = _bench("onnx_int8", p50, [p50 - 0.1, p50 + 0.1])
    bench["cpu"]["variants"]["onnx_int8"].update(cost_per_1k_texts_usd=cost, cost_per_1k_texts_usd_ci=cost_ci)
    return bench


def test_cost_changes_are_judged_against_their_intervals_like_latency():
    """Check the cost per 1,000 texts: x's intervals do not overlap (listed), y's do (noise, counted), z's base has
    no interval (a run from before it was saved: named), w's cost did not move (nothing); latency stays apart."""
    base = {"eval": {}, "benchmark": {"ag/x": _costed(3.0, 1.0e-4, [0.9e-4, 1.1e-4]),
                                      "ag/y": _costed(3.0, 1.0e-4, [0.8e-4, 1.2e-4]),
                                      "ag/z": _costed(3.0, 1.0e-4, None), "ag/w": _costed(3.0, 2.0e-4, [1e-4, 3e-4])}}
    head = {"eval": {}, "benchmark": {"ag/x": _costed(3.0, 1.5e-4, [1.3e-4, 1.7e-4]),
                                      "ag/y": _costed(3.0, 1.1e-4, [1.0e-4, 1.2e-4]),
                                      "ag/z": _costed(3.0, 1.2e-4, [1.1e-4, 1.3e-4]), "ag/w": _costed(3.0, 2.0e-4, None)}}
    changes = pr_changes.compare(base, head)
    assert [(c.entry, c.old, c.new) for c in changes.cost] == [("ag/x", 1.0e-4, 1.5e-4)]
    assert changes.cost_within_noise == 1 and changes.cost_without_interval == ["ag/z"]
    assert changes.latency == [] and changes.latency_within_noise == 0
    md = pr_changes.to_markdown(changes, "main")
    cost = md.split("## Cost changes beyond run-to-run noise")[1]
    assert "| ag/x | onnx_int8 | 0.0001 [9e-05, 0.00011] | 0.00015 [0.00013, 0.00017] |" in cost
    assert "ag/y |" not in cost and "1 entry moved within the run-to-run interval" in cost and "ag/z." in cost
    assert "No cost per 1,000 texts moved" in pr_changes.to_markdown(pr_changes.compare(base, base), "main")


def test_paired_text_tests_the_same_rows():
    """Check the paired accuracy test: head right on 2 rows the base got wrong, on 10 shared rows: +20 pt, McNemar
    p = 0.5 (2 discordant pairs, both one way), rows outside the intersection ignored."""
    base = pd.Series([True] * 6 + [False] * 4, index=range(10))
    head = pd.Series([True] * 8 + [False] * 2 + [True], index=range(11))
    text = pr_changes.paired_text(base, head, resamples=200, seed=0)
    assert text.startswith("+20.0 pt [") and "McNemar p=0.5 (not significant, 10 rows)" in text


def test_read_run_takes_eval_and_benchmark_files_only():
    files = {"metrics/eval/ag/a.json": json.dumps({"accuracy": 0.8}), "metrics/benchmark/ag/a.json": "{}",
             "metrics/train/ag/a.json": "{}", "metrics/leaderboard.json": "{}"}
    run = pr_changes.read_run(files.get, [*files, "metrics/eval/ag/absent.json"])
    assert run == {"eval": {"ag/a": {"accuracy": 0.8}}, "benchmark": {"ag/a": {}}}


def test_report_with_changes_leads_with_them_and_collapses_the_full_diff():
    metrics_md = ("| Path | Metric | main | workspace | Change |\n|---|---|---|---|---|\n"
                  "| metrics/benchmark/ag/a.json | cpu.p50 | 3.0 | 3.1 | 0.1 |\n")
    md = report.build_report("main", "", metrics_md, None, None, [], [], changes_md="## Quality changes\n\nX")
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads[:3] == ["## Quality changes", "## Params changed", "## All metric changes"]
    body = md.split("## All metric changes")[1]
    assert "<details><summary>The full `dvc metrics diff main`" in body and "| cpu.p50 | 3.0 | 3.1 |" in body
    assert body.index("<details>") < body.index("cpu.p50") < body.index("</details>")


def test_report_with_changes_keeps_the_hardware_note_in_sight():
    metrics_md = "| Path | Metric | main | workspace | Change |\n|---|---|---|---|---|\n| m.json | x | 1 | 2 | 1 |\n"
    md = report.build_report("main", "", metrics_md, None, None, [], [], hardware_changed=True, changes_md="## Q")
    body = md.split("## All metric changes")[1]
    assert body.index("`metrics/hardware.json` differs from `main`") < body.index("<details>")
    assert body.count("metrics/hardware.json") == 1
