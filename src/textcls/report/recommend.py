"""Which model should I deploy? The best one that meets the deployment constraints in ``recommend:``.

Each leaderboard row is a candidate served with its best benchmark variant on the chosen device
(``cpu`` or ``gpu``), so accuracy, latency, memory and cost are those of what would actually be
deployed (an int8 ONNX model at its own accuracy). A model without a benchmark on that device
(e.g. GPU on a machine without one) is never recommended, and a constraint that is set but was
not measured counts as not met: nothing is assumed.

Plain functions over the leaderboard table; the aggregate stage writes the result as Markdown
(for people) and JSON (for tools).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import pandas as pd

from textcls.config.params import RecommendParams

# constraint key -> (what is measured, leaderboard column for device "cpu"/"gpu", "min" or "max")
CONSTRAINTS = {
    "min_accuracy": ("accuracy", {"cpu": "cpu_accuracy", "gpu": "gpu_accuracy"}, "min"),
    "max_p95_ms": ("p95_ms", {"cpu": "cpu_p95_upper_ms", "gpu": "gpu_p95_upper_ms"}, "max"),
    "max_memory_mb": ("memory_mb", {"cpu": "cpu_model_rss_mb", "gpu": "gpu_memory_mb"}, "max"),
    "max_cost_per_1k_texts_usd": ("cost_per_1k_texts_usd",
                                  {"cpu": "cpu_cost_per_1k_texts_usd", "gpu": "gpu_cost_per_1k_texts_usd"}, "max"),
    "max_params": ("params", {"cpu": "params", "gpu": "params"}, "max"),
}
LABELS = {"accuracy": "accuracy", "p95_ms": "batch-1 p95 latency (ms, 95 % upper bound)",
          "memory_mb": "model memory (MB)", "cost_per_1k_texts_usd": "cost (USD / 1k texts)", "params": "parameters"}

# compare(dataset, model_a, model_b) -> {"diff", "low", "high", "p_value", "significant"} (A minus B)
Comparison = Callable[[str, str, str], dict]


def _number(value) -> Optional[float]:
    """A finite float, or None for a missing measurement (None, NaN, a string like 'unavailable')."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def candidate(row: dict, device: str) -> dict:
    """What serving ``row``'s model on ``device`` looks like: its best variant and the measured values."""
    variant = row.get(f"{device}_variant")
    measured = {name: _number(row.get(columns[device])) for name, columns, _ in CONSTRAINTS.values()}
    benchmarked = measured["p95_ms"] is not None  # else variant is None or says why ("unavailable", ...)
    return {"model": row["model"], "variant": variant if benchmarked else None,
            "benchmark": "measured" if benchmarked else (variant if isinstance(variant, str) else "not run"),
            **measured}


def violations(cand: dict, cfg: RecommendParams) -> list[str]:
    """The constraints ``cand`` does not meet, as readable reasons (empty: it meets all of them)."""
    if cand["benchmark"] != "measured":  # nothing to judge it by on that device: never assumed to qualify
        return [f"no {cfg.device.upper()} benchmark ({cand['benchmark']}): run `dvc repro` on a machine with "
                f"one, or set recommend.device"]
    out = []
    for key, (name, _, kind) in CONSTRAINTS.items():
        limit = getattr(cfg, key)
        if limit is None:
            continue
        value = cand[name]
        if value is None:
            out.append(f"{LABELS[name]} not measured ({key}={limit:g})")
        elif (kind == "min" and value < limit) or (kind == "max" and value > limit):
            sign = "<" if kind == "min" else ">"
            out.append(f"{LABELS[name]} {value:.4g} {sign} {limit:g} ({key})")
    return out


def _ranked(cands: list[dict], objective: str) -> list[dict]:
    """Best first: highest accuracy (ties: lower latency), or lowest latency/cost (ties: higher accuracy)."""
    def key(c):
        acc = -(c["accuracy"] if c["accuracy"] is not None else -math.inf)
        lat = c["p95_ms"] if c["p95_ms"] is not None else math.inf
        if objective == "accuracy":
            return (acc, lat, c["model"])
        value = c[objective] if c[objective] is not None else math.inf
        return (value, acc, c["model"])
    return sorted(cands, key=key)


def recommend_dataset(group: pd.DataFrame, dataset: str, cfg: RecommendParams,
                      compare: Optional[Comparison] = None) -> dict:
    """The recommendation for one data set: best feasible model, runner-up, and why."""
    cands = [candidate(row, cfg.device) for row in group.to_dict("records")]
    for cand in cands:
        cand["violations"] = violations(cand, cfg)
    feasible = _ranked([c for c in cands if not c["violations"]], cfg.objective)
    result = {"dataset": dataset, "device": cfg.device, "objective": cfg.objective,
              "recommended": feasible[0]["model"] if feasible else None,
              "runner_up": feasible[1]["model"] if len(feasible) > 1 else None,
              "candidates": {c["model"]: c for c in cands}, "comparison": None}
    if len(feasible) > 1 and compare is not None:
        result["comparison"] = compare(dataset, feasible[0]["model"], feasible[1]["model"])
    return result


def recommend(table: pd.DataFrame, cfg: RecommendParams, compare: Optional[Comparison] = None) -> dict:
    """``{dataset: recommendation}`` for every data set in the leaderboard table."""
    return {dataset: recommend_dataset(group, dataset, cfg, compare)
            for dataset, group in table.groupby("dataset", sort=True)}


def constraints_text(cfg: RecommendParams) -> str:
    parts = []
    for key, (name, _, kind) in CONSTRAINTS.items():
        limit = getattr(cfg, key)
        if limit is not None:
            parts.append(f"{LABELS[name]} {'≥' if kind == 'min' else '≤'} {limit:g}")
    return ", ".join(parts) or "none (every model qualifies)"


def _describe(cand: dict) -> str:
    fields = [f"accuracy {cand['accuracy']:.4f}" if cand["accuracy"] is not None else "accuracy not measured"]
    for name, fmt, unit in (("p95_ms", "{:.2f}", " ms p95 (upper bound)"), ("memory_mb", "{:.0f}", " MB"),
                            ("cost_per_1k_texts_usd", "{:.2g}", " USD / 1k texts")):
        if cand[name] is not None:
            fields.append(fmt.format(cand[name]) + unit)
    variant = f" ({cand['variant']})" if cand["variant"] else ""
    return f"**{cand['model']}**{variant}: " + ", ".join(fields)


def _why(rec: dict) -> list[str]:
    second = rec["candidates"].get(rec["runner_up"])
    n_ok = sum(1 for c in rec["candidates"].values() if not c["violations"])
    goal = {"accuracy": "highest accuracy", "p95_ms": "lowest p95 latency",
            "cost_per_1k_texts_usd": "lowest cost"}[rec["objective"]]
    lines = [f"Why: the {goal} of the {n_ok} model(s) that meet every constraint."]
    if second is None:
        return lines + ["Runner-up: none (no other model meets the constraints)."]
    lines.append(f"Runner-up: {_describe(second)}.")
    comp = rec["comparison"]
    if comp is not None:
        verdict = "significant" if comp["significant"] else "not significant"
        lines.append(f"Accuracy difference {rec['recommended']} − {rec['runner_up']}: {comp['diff'] * 100:+.1f} pt "
                     f"[{comp['low'] * 100:+.1f}, {comp['high'] * 100:+.1f}], McNemar p={comp['p_value']:.2g} "
                     f"({verdict}, on the test predictions of eager fp32).")
        if not comp["significant"] and rec["objective"] == "accuracy":
            lines.append(f"The difference is not significant: if speed or cost matter more, {rec['runner_up']} "
                         "is an equally defensible choice.")
    return lines


def to_markdown(recs: dict, cfg: RecommendParams) -> str:
    lines = ["# Recommendation", "",
             f"Serving on **{cfg.device.upper()}** with each model's best benchmark variant. "
             f"Constraints (`recommend:` in params.yaml): {constraints_text(cfg)}.", ""]
    for dataset, rec in recs.items():
        lines += [f"## {dataset}", ""]
        if rec["recommended"] is None:
            lines += [f"**No model satisfies** the constraints on {dataset}. Relax a limit under `recommend:` "
                      "or add a model that meets it.", ""]
        else:
            lines += [f"Recommended: {_describe(rec['candidates'][rec['recommended']])}.", "", *_why(rec), ""]
        rejected = {m: c["violations"] for m, c in rec["candidates"].items() if c["violations"]}
        for model, reasons in sorted(rejected.items()):
            lines.append(f"- {model} is excluded: {'; '.join(reasons)}.")
        if rejected:
            lines.append("")
    return "\n".join(lines)
