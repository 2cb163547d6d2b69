"""Which model should I deploy? The best one that meets the deployment constraints in ``recommend:``.

Each leaderboard row is a candidate served with its best benchmark variant on the chosen device
(``cpu`` or ``gpu``), so accuracy, latency, memory and cost are those of what would actually be
deployed (an int8 ONNX model at its own accuracy). A model without a benchmark on that device
(e.g. GPU on a machine without one) is never recommended, and a constraint that is set but was
not measured counts as not met: nothing is assumed.

The recommended model is compared with the runner-up on the same test rows, each on the predictions of the
variant it would be deployed as (its served predictions, :mod:`textcls.bench.served`; where those are missing
the comparison falls back to the evaluate stage's predictions and says so). Where the leaderboard's first (by
``aggregate.sort_by``, on the evaluate stage's predictions) is not the recommended model, the recommendation
says why: a constraint it misses, the objective, or its accuracy as served.

With a ``certify`` function (:func:`textcls.report.leaderboard.deployed_certificate`) each data set also gets its
decision certificate (:mod:`textcls.report.certificate`): per model, the probability that it is the best one
meeting every constraint, from joint resamples of the test rows and the latency repeats, and its margin to each
limit.

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

# compare(dataset, candidate_a, candidate_b, device) -> {"diff", "low", "high", "p_value", "significant", "n",
# "compared": [source of A, source of B]} (A minus B; a source says which predictions were used for a model:
# textcls.report.leaderboard.deployed_correct)
Comparison = Callable[[str, dict, dict, str], dict]
GOALS = {"accuracy": "highest accuracy", "p95_ms": "lowest p95 latency", "cost_per_1k_texts_usd": "lowest cost"}
# certify(dataset, candidates, constraints, objective, device) -> the data set's decision certificate as JSON
# (textcls.report.certificate.Certificate.to_dict)
Certify = Callable[[str, list, list, str, str], dict]


def finite_number(value) -> Optional[float]:
    """A finite float, or None for a missing measurement (None, NaN, a string like 'unavailable')."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def candidate(row: dict, device: str) -> dict:
    """What serving ``row``'s model on ``device`` looks like: its best variant and the measured values."""
    variant = row.get(f"{device}_variant")
    measured = {name: finite_number(row.get(columns[device])) for name, columns, _ in CONSTRAINTS.values()}
    benchmarked = measured["p95_ms"] is not None  # else variant is None or says why ("unavailable", ...)
    evaluate_variant = row.get("accuracy_variant")
    return {"model": row["model"], "variant": variant if benchmarked else None,
            "benchmark": "measured" if benchmarked else (variant if isinstance(variant, str) else "not run"),
            "evaluate_variant": evaluate_variant if isinstance(evaluate_variant, str) else None, **measured}


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


def certificate_constraints(cfg: RecommendParams) -> list:
    """The set limits of ``cfg`` as the decision certificate's records, in :data:`CONSTRAINTS` order."""
    from textcls.report.certificate import Constraint

    return [Constraint(key, name, kind, float(getattr(cfg, key)))
            for key, (name, _, kind) in CONSTRAINTS.items() if getattr(cfg, key) is not None]


def recommend_dataset(group: pd.DataFrame, dataset: str, cfg: RecommendParams,
                      compare: Optional[Comparison] = None, sort_by: str = "accuracy",
                      certify: Optional[Certify] = None) -> dict:
    """The recommendation for one data set: best feasible model, runner-up, and why; with a ``rank`` column (a
    ranked leaderboard), also why the leaderboard's first is not the recommended model where it is not; with
    ``certify``, its decision certificate (``certificate``; without, no such key)."""
    rows = group.to_dict("records")
    cands = [candidate(row, cfg.device) for row in rows]
    for cand in cands:
        cand["violations"] = violations(cand, cfg)
    feasible = _ranked([c for c in cands if not c["violations"]], cfg.objective)
    result = {"dataset": dataset, "device": cfg.device, "objective": cfg.objective,
              "recommended": feasible[0]["model"] if feasible else None,
              "runner_up": feasible[1]["model"] if len(feasible) > 1 else None,
              "candidates": {c["model"]: c for c in cands}, "comparison": None, "leaderboard_first": None}
    if len(feasible) > 1 and compare is not None:
        result["comparison"] = compare(dataset, feasible[0], feasible[1], cfg.device)
    first = next((row for row in rows if row.get("rank") == 1), None)
    if feasible and first is not None and first["model"] != feasible[0]["model"]:
        result["leaderboard_first"] = _leaderboard_first(first, sort_by, result, cfg, compare)
    if certify is not None:
        result["certificate"] = certify(dataset, cands, certificate_constraints(cfg), cfg.objective, cfg.device)
    return result


def _leaderboard_first(row: dict, sort_by: str, result: dict, cfg: RecommendParams,
                       compare: Optional[Comparison]) -> dict:
    """Why the leaderboard's first (by ``sort_by``) is not the recommended model: ``{"model", "sort_by", "value",
    "reason", "comparison"}`` (the comparison: recommended minus it, on the deployed variants' predictions, when
    it meets every constraint and is not the runner-up, whose comparison is already given)."""
    cands = result["candidates"]
    first, rec = cands[row["model"]], cands[result["recommended"]]
    value = finite_number(row.get(sort_by))
    on = f"{sort_by} {value:.4g}" if value is not None else sort_by
    variant_of = f" ({first['evaluate_variant']}, evaluate stage)" if first.get("evaluate_variant") else \
        " (evaluate stage)"
    lead = f"{first['model']} ranks first on the leaderboard by {on}{variant_of}"
    comparison = None
    device = cfg.device.upper()
    if first["violations"]:
        reason = f"{lead}, but as served on {device} it misses a constraint: {'; '.join(first['violations'])}."
    elif cfg.objective != "accuracy":
        goal = GOALS[cfg.objective]
        reason = (f"{lead}; it meets every constraint, but the objective is the {goal}: "
                  f"{_value(first, cfg.objective)} for {first['model']} against {_value(rec, cfg.objective)} for "
                  f"{rec['model']}.")
    else:
        served = f"served as {first['variant']} on {device}" if first["variant"] else f"served on {device}"
        if first["accuracy"] is None:
            reason = f"{lead}; {served} its accuracy was not measured, so it ranks after every measured one."
        elif rec["accuracy"] is not None and first["accuracy"] < rec["accuracy"]:
            reason = (f"{lead}; {served} its accuracy is {first['accuracy']:.4f}, below {rec['model']}'s "
                      f"{rec['accuracy']:.4f} as served ({rec['variant']}).")
        else:
            reason = (f"{lead}; {served} its accuracy ties with {rec['model']}'s ({rec['variant']}), and "
                      f"{rec['model']} is ranked first on the tie-break (lower p95 latency, then name).")
        if compare is not None and first["model"] != result["runner_up"]:
            comparison = compare(result["dataset"], rec, first, cfg.device)
    return {"model": first["model"], "sort_by": sort_by, "value": value, "reason": reason, "comparison": comparison}


def _value(cand: dict, name: str) -> str:
    value = cand[name]
    if value is None:
        return "not measured"
    return f"{value:.3g} ms p95 (upper bound)" if name == "p95_ms" else f"{value:.2g} USD / 1k texts"


def recommend(table: pd.DataFrame, cfg: RecommendParams, compare: Optional[Comparison] = None,
              sort_by: str = "accuracy", certify: Optional[Certify] = None) -> dict:
    """``{dataset: recommendation}`` for every data set in the leaderboard table (ranked by ``sort_by``)."""
    return {dataset: recommend_dataset(group, dataset, cfg, compare, sort_by, certify)
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
    goal = GOALS[rec["objective"]]
    lines = [f"Why: the {goal} of the {n_ok} model(s) that meet every constraint."]
    first = rec.get("leaderboard_first")
    if second is None:
        lines.append("Runner-up: none (no other model meets the constraints).")
    else:
        lines.append(f"Runner-up: {_describe(second)}.")
        comp = rec["comparison"]
        if comp is not None:
            lines.append(_difference_text(rec["recommended"], rec["runner_up"], comp))
            if not comp["significant"] and rec["objective"] == "accuracy":
                lines.append(f"The difference is not significant: if speed or cost matter more, {rec['runner_up']} "
                             "is an equally defensible choice.")
    if first is not None:
        lines.append(f"Why not the leaderboard's first: {first['reason']}")
        if first.get("comparison") is not None:
            lines.append(_difference_text(rec["recommended"], first["model"], first["comparison"]))
    return lines


def predictions_text(source: dict) -> str:
    """Which predictions a comparison used for one model (a source of
    :func:`textcls.report.leaderboard.deployed_correct`)."""
    if source["predictions"] == "served":
        device = "GPU" if source["device"] in ("gpu", "cuda") else source["device"].upper()
        return f"{source['model']} as served ({source['variant']}, {device}, batch 1)"
    variant = source.get("evaluate_variant") or "reference-variant"
    return (f"{source['model']} on the evaluate stage's {variant} predictions, not its deployed variant's, "
            f"because {source['fallback_reason']}")


def _difference_text(a: str, b: str, comp: dict) -> str:
    verdict = "significant" if comp["significant"] else "not significant"
    compared = comp.get("compared")
    rows = f" on {comp['n']} test rows" if comp.get("n") is not None else ""
    on = f"{rows}: {'; '.join(predictions_text(s) for s in compared)}" if compared else rows
    return (f"Accuracy difference {a} − {b}: {comp['diff'] * 100:+.1f} pt [{comp['low'] * 100:+.1f}, "
            f"{comp['high'] * 100:+.1f}], McNemar p={comp['p_value']:.2g} ({verdict}{on}).")


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
        if rec.get("certificate"):
            lines += [*certificate_markdown(rec["certificate"], rec["recommended"]), ""]
        if rec.get("cascades"):
            from textcls.report import cascades

            lines += [*cascades.markdown_lines(rec["cascades"]), ""]
    return "\n".join(lines)


SHORT = {"accuracy": "accuracy", "p95_ms": "p95", "memory_mb": "memory", "cost_per_1k_texts_usd": "cost",
         "params": "parameters"}
UNITS = {"p95_ms": " ms", "memory_mb": " MB", "cost_per_1k_texts_usd": " USD", "params": ""}


def _amount(measure: str, value: float) -> str:
    if measure == "accuracy":
        return f"{value:.4f}"
    if measure == "memory_mb":
        return f"{value:.0f} MB"
    return f"{value:.3g}{UNITS[measure]}"


def margin_text(check: dict) -> str:
    """One constraint of one model (a certificate check, :mod:`textcls.report.certificate`), e.g.
    ``4.3 ms, 91 % under the limit; P(met) 1.00``: the measured value, its margin (slack / limit: one decimal
    under 10 %) and the share of draws meeting it."""
    met = f"P(met) {check['p_met']:.2f}"
    if check["value"] is None:
        return f"not measured; {met}"
    amount = _amount(check["measure"], check["value"])
    margin, slack = check["margin"], check["slack"]
    if slack == 0 or margin == 0:
        return f"{amount}, at the limit; {met}"
    if margin is None:  # a limit of 0: no relative margin
        return f"{amount}, {abs(slack):.3g} {'inside' if slack > 0 else 'outside'} the limit; {met}"
    side = ("above" if margin > 0 else "below") if check["kind"] == "min" else ("under" if margin > 0 else "over")
    share = abs(margin) * 100
    return f"{amount}, {share:.1f} % {side} the limit; {met}" if share < 10 else \
        f"{amount}, {share:.0f} % {side} the limit; {met}"


def certificate_markdown(cert: dict, recommended: Optional[str]) -> list[str]:
    """The decision certificate of one data set (:mod:`textcls.report.certificate`) as a Markdown table: per
    model its P(best) and, per set constraint, the measured value, its margin and the share of draws meeting it."""
    models = cert["models"]
    rows = f"the {cert['test_rows']} test rows (the same rows for every model)" if cert["test_rows"] else \
        "no test rows (accuracy fixed)"
    lead = (f"**Decision certificate**: {cert['resamples']} draws (seed {cert['seed']}), each a bootstrap of {rows} "
            "and, per model, of its latency repeats; P(best) is the share of draws in which the model is the best "
            "one meeting every constraint (ties on every measured value shared equally); each constraint shows "
            "the measured value, its margin to the limit and P(met), the share of draws meeting it. Each share is "
            f"within ±{2 * cert['mc_standard_error']:.3f} (2 Monte Carlo standard errors).")
    lines = [lead, ""]
    if recommended is not None and recommended in models:
        lines += [f"P(best) of the recommended {recommended}: {models[recommended]['p_best']:.2f}.", ""]
    keys = list(next(iter(models.values()))["constraints"]) if models else []
    header = ["model", "P(best)"]
    for key in keys:
        check = next(iter(models.values()))["constraints"][key]
        sign = "≥" if check["kind"] == "min" else "≤"
        limit = _amount(check["measure"], check["limit"]) if check["measure"] != "accuracy" else f"{check['limit']:g}"
        per = " / 1k texts" if check["measure"] == "cost_per_1k_texts_usd" else ""
        header.append(f"{SHORT[check['measure']]} {sign} {limit}{per}")
    lines += ["| " + " | ".join(header) + " |", "|---|---:|" + "---|" * len(keys)]
    for model, entry in models.items():
        cells = [model, f"{entry['p_best']:.2f}", *(margin_text(entry["constraints"][k]) for k in keys)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"No model meets every constraint in {cert['p_no_feasible'] * 100:.0f} % of draws; the best was a "
              f"tie in {cert['p_tie'] * 100:.0f} %."]
    notes = [f"- {model}: {note}." for model, entry in models.items() for note in entry["notes"]]
    if notes:
        lines += ["", "About the certificate's inputs:", *notes]
    return lines
