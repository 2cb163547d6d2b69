"""Collect per-(dataset, model) metrics into one leaderboard: JSON (for ``dvc metrics``), CSV and Markdown."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import pandas as pd
import pyarrow.parquet as pq

from textcls import records
from textcls.errors import TextclsError
from textcls.io import read_json
from textcls.config.params import Entry

logger = logging.getLogger(__name__)

TRAIN_COLUMNS = ("kind", "params", "train_time_s", "train_samples_per_s", "device", "precision", "distilled_from")
# The Markdown view; the CSV has every column.
MARKDOWN_COLUMNS = ("model", "rank", "n", "accuracy", "accuracy_95ci", "accuracy_variant", "vs_best", "f1_macro", "auroc", "loss", "ece", "params", "train_time_s", "cpu_variant",
                    "cpu_accuracy", "cpu_vs_reference", "cpu_p50_ms", "cpu_p95_upper_ms", "cpu_speedup", "cpu_samples_per_s",
                    "cpu_model_rss_mb", "size_mb", "cpu_cost_per_1k_texts_usd", "gpu_variant", "gpu_p50_ms",
                    "gpu_p95_upper_ms")


ACCURACY_NOTE = ("Which predictions each accuracy is: `accuracy` (its interval, `vs best` and the rank) scores the "
                 "evaluate stage's batched test predictions of the variant in `accuracy_variant` (eager_fp32 for a "
                 "transformer); `cpu_accuracy` is that of the variant in `cpu_variant`, the one the model would be "
                 "deployed as, served at batch 1 on the CPU. The recommendation (`metrics/recommendation.md`) "
                 "judges and compares the served variants, so it can rank models in another order.")


def benchmark_columns(bench: dict) -> dict:
    """The leaderboard's view of a benchmark: the best variant per device, its latency, speed, memory, cost; and
    ``accuracy_variant``, the variant whose (evaluate stage, batched) predictions the ``accuracy`` column scores
    (None for a report from before the benchmark recorded it)."""
    row = {"size_mb": bench.get("size_mb"), "accuracy_variant": bench.get("evaluate_variant")}
    for device, prefix in (("cpu", "cpu"), ("cuda", "gpu")):
        result = bench.get(device)
        if not records.is_measured(result):  # unavailable / not applicable: no numbers, never zeros
            row.update({f"{prefix}_variant": records.unmeasured_label(result), f"{prefix}_p50_ms": None,
                        f"{prefix}_p95_ms": None, f"{prefix}_p95_upper_ms": None})
            continue
        best = result["variants"][result["best_variant"]]
        lat = best["latency_ms"]
        row.update({f"{prefix}_variant": result["best_variant"], f"{prefix}_accuracy": best["accuracy"],
                    f"{prefix}_n": bench.get("served_test_texts"),
                    f"{prefix}_vs_reference": _vs_reference_text(best.get("vs_reference")),
                    f"{prefix}_p50_ms": lat["p50"], f"{prefix}_p50_ci": lat.get("p50_ci"),
                    f"{prefix}_p95_ms": lat["p95"], f"{prefix}_p95_upper_ms": lat.get("p95_upper"),
                    f"{prefix}_speedup": best["speedup_p50"], f"{prefix}_speedup_ci": best.get("speedup_p50_ci"),
                    f"{prefix}_samples_per_s": best["samples_per_s"],
                    f"{prefix}_cost_per_1k_texts_usd": best["cost_per_1k_texts_usd"]})
        if device == "cpu":
            row["cpu_model_rss_mb"] = best.get("model_rss_mb")
        else:
            row["gpu_memory_mb"] = best.get("gpu_memory_mb")
    return row


def _vs_reference_text(comp: dict | None) -> str:
    """The best variant's served accuracy against the reference variant's: difference, interval, McNemar p."""
    if not comp:
        return ""
    return (f"{comp['diff'] * 100:+.1f} pt [{comp['low'] * 100:+.1f}, {comp['high'] * 100:+.1f}], "
            f"p={comp['p_value']:.2g}")


def _require(path: Path, entry: Entry, stage: str, what: str) -> Path:
    if not path.is_file():
        raise TextclsError(f"{path} not found: params.yaml declares {entry.dataset}/{entry.name}, but it has no "
                           f"{what}. Fix: run `dvc repro {stage}` (or `dvc repro` for everything).")
    return path


def collect(entries: Sequence[Entry], eval_dir: Path, train_dir: Path, metrics: list[str],
            bench_dir: Path | None = None) -> pd.DataFrame:
    """One row per declared entry (see :func:`textcls.config.params.declared_entries`), read from
    ``<eval_dir>/<dataset>/<name>.json`` with its train (and benchmark) metrics beside it.

    Exactly the declared entries: a declared one without evaluation (or, with ``bench_dir``, benchmark)
    results is an error naming the stage to run; files of entries that are not declared are never read."""
    if not entries:
        raise TextclsError("params.yaml declares no leaderboard entry (models, distill.students, llms) on any "
                           "data set. Fix: add a model under `models:`.")
    rows = []
    for entry in entries:
        dataset, model = entry.dataset, entry.name
        path = _require(Path(eval_dir) / dataset / f"{model}.json", entry, entry.eval_stage, "evaluation metrics")
        ev = read_json(path)
        missing = [m for m in metrics if m not in ev]
        if missing:
            raise TextclsError(f"{path} has no {missing[0]!r}. Fix: aggregate.metrics lists only keys "
                               f"that evaluate writes ({', '.join(k for k in ev if k != 'per_class')}).")
        train_path = Path(train_dir) / dataset / f"{model}.json"
        train = read_json(train_path) if train_path.is_file() else {}
        row = {"entry": f"{dataset}/{model}", "dataset": dataset, "model": model, "n": ev.get("n"),
               **{m: ev[m] for m in metrics}}
        if "accuracy_ci95" in ev:
            row.update(accuracy_ci_low=ev["accuracy_ci95"]["low"], accuracy_ci_high=ev["accuracy_ci95"]["high"],
                       ece=ev.get("ece"), brier=ev.get("brier"))
        row.update({k: train.get(k) for k in TRAIN_COLUMNS})
        if bench_dir is not None:
            bench_path = _require(Path(bench_dir) / dataset / f"{model}.json", entry, entry.benchmark_stage,
                                  "benchmark results")
            row.update(benchmark_columns(read_json(bench_path)))
        row["comparable_to_published"] = ev.get("comparable_to_published")
        rows.append(row)
    table = pd.DataFrame(rows, dtype=object)  # object: a missing train value stays None, ints stay ints
    return table.astype({m: float for m in metrics})


def undeclared_files(entries: Sequence[Entry], *folders: Path) -> list[Path]:
    """Per-entry result files under ``folders`` (``<folder>/<dataset>/<name>.<ext>``) that belong to no declared
    entry: left behind by a model, data set or profile that params.yaml no longer lists. Sorted."""
    declared = {(e.dataset, e.name) for e in entries}
    found = []
    for folder in folders:
        for path in Path(folder).glob("*/*"):
            if path.is_file() and (path.parent.name, path.name.split(".")[0]) not in declared:
                found.append(path)
    return sorted(found)


def rank(table: pd.DataFrame, sort_by: str) -> pd.DataFrame:
    """Best first within each dataset (loss ascending, everything else descending)."""
    if sort_by not in table.columns:
        raise TextclsError(f"aggregate.sort_by={sort_by!r} is not a leaderboard column. "
                           f"Fix: use one of {', '.join(table.columns)}.")
    ascending = sort_by == "loss"
    table = table.sort_values(["dataset", sort_by], ascending=[True, ascending], kind="stable")
    table.insert(3, "rank", table.groupby("dataset").cumcount() + 1)
    return table.reset_index(drop=True)


def correct_predictions(predictions_dir: Path, dataset: str, model: str) -> pd.Series:
    """Per test example, indexed by its row id: did ``model`` predict the label? From the predictions."""
    path = Path(predictions_dir) / dataset / f"{model}.parquet"
    if not path.is_file():
        raise TextclsError(f"{path} not found. Fix: run `dvc repro evaluate` first.")
    frame = pq.read_table(path, columns=["row", "label", "pred"]).to_pandas().set_index("row").sort_index()
    return frame["label"] == frame["pred"]


def deployed_correct(predictions_dir: Path, served_dir: Path | None, dataset: str, cand: dict,
                     device: str) -> tuple[pd.Series, dict]:
    """Per test row id: did the model as deployed predict the label? ``cand`` is a recommendation candidate
    (``model``, ``variant``: its best variant on ``device`` (``cpu``/``gpu``), ``accuracy``: that variant's
    reported accuracy, ``evaluate_variant``). Read from the variant's served predictions
    (``<served_dir>/<dataset>/<model>.parquet``, :mod:`textcls.bench.served`); where they are missing (no such
    file, e.g. a benchmark from before they were saved, or no such variant in it), from the evaluate stage's
    predictions instead, and the returned source says so and why: ``{"model", "device", "variant",
    "predictions": "served" | "evaluate", "evaluate_variant", "fallback_reason", "n"}``.

    Served predictions whose accuracy is not the benchmark report's for that variant are an error (the two
    files come from different runs)."""
    from textcls.bench import served

    model, variant = cand["model"], cand.get("variant")
    bench_device = "cuda" if device == "gpu" else device
    source = {"model": model, "device": device, "variant": variant, "predictions": "served",
              "evaluate_variant": cand.get("evaluate_variant"), "fallback_reason": None}
    path = Path(served_dir) / dataset / f"{model}.parquet" if served_dir is not None else None
    if variant is None:
        reason = f"no {device.upper()} variant was measured"
    elif path is None:
        reason = "no served predictions folder was given (aggregate --served-dir)"
    elif not path.is_file():
        reason = (f"{path} not found: a benchmark from before served predictions were saved; rerun "
                  "`dvc repro` to compare the deployed variants")
    else:
        correct = served.correct(served.read(path), bench_device, variant)
        if correct is not None:
            accuracy = round(float(correct.mean()), 6)
            if cand.get("accuracy") is not None and abs(accuracy - cand["accuracy"]) > 1e-6:
                raise TextclsError(f"{path}: the {bench_device}/{variant} predictions score {accuracy}, but the "
                                   f"benchmark report of {dataset}/{model} says {cand['accuracy']}: the two files "
                                   "come from different runs. Fix: rerun its benchmark stage (`dvc repro`).")
            return correct, {**source, "n": int(len(correct))}
        reason = f"{path} has no {bench_device}/{variant} predictions"
    correct = correct_predictions(predictions_dir, dataset, model)
    return correct, {**source, "predictions": "evaluate", "fallback_reason": reason, "n": int(len(correct))}


def deployed_comparison(predictions_dir: Path, served_dir: Path | None, resamples: int, seed: int, alpha: float):
    """The recommendation's ``compare(dataset, candidate_a, candidate_b, device)``: A minus B on the test rows both
    were scored on, each model on its deployed variant's predictions (:func:`deployed_correct`); the result's
    ``compared`` says which predictions each side used."""
    def compare(dataset: str, a: dict, b: dict, device: str) -> dict:
        (correct_a, source_a), (correct_b, source_b) = (
            deployed_correct(predictions_dir, served_dir, dataset, c, device) for c in (a, b))
        comp = paired_comparison(correct_a, correct_b, resamples, seed, alpha,
                                 f"{dataset}: {a['model']} and {b['model']}")
        return {**comp, "compared": [source_a, source_b]}
    return compare


def p95_repeats(bench_dir: Path, dataset: str, model: str, variant: str, device: str) -> tuple[list | None, str]:
    """The per-repeat p95s (ms) of ``variant`` on ``device`` (``cpu``/``gpu``) from the model's benchmark report,
    or None and why not (a report from before they were saved)."""
    path = Path(bench_dir) / dataset / f"{model}.json"
    if not path.is_file():
        return None, f"{path} not found"
    result = read_json(path).get("cuda" if device == "gpu" else device)
    variants = result.get("variants", {}) if isinstance(result, dict) else {}
    repeats = variants.get(variant, {}).get("latency_ms", {}).get("p95_repeats")
    if repeats is None:
        return None, (f"{path} has no per-repeat p95s for {variant} (a benchmark from before they were saved; "
                      "rerun `dvc repro` to resample them)")
    return repeats, ""


def deployed_evidence(predictions_dir: Path, served_dir: Path | None, bench_dir: Path | None, dataset: str,
                      cand: dict, device: str):
    """What the decision certificate knows of one recommendation candidate (``textcls.report.certificate``):
    its measured values, its deployed variant's per-row correctness (:func:`deployed_correct`: the served
    predictions, or the evaluate stage's, noted) and its per-repeat p95s (or a note that the p95 stays fixed)."""
    from textcls.report import certificate

    values = {name: cand.get(name) for name in ("accuracy", "p95_ms", "memory_mb", "cost_per_1k_texts_usd",
                                                "params")}
    if cand.get("benchmark") != "measured":
        return certificate.ModelEvidence(cand["model"], values, benchmarked=False, notes=(
            f"no {device.upper()} benchmark ({cand.get('benchmark', 'not run')}): never meets the constraints",))
    notes = []
    correct, source = deployed_correct(predictions_dir, served_dir, dataset, cand, device)
    if source["predictions"] != "served":
        variant = source.get("evaluate_variant") or "reference-variant"
        notes.append(f"accuracy resampled from the evaluate stage's {variant} predictions (their spread around the "
                     f"served accuracy), not the deployed variant's, because {source['fallback_reason']}")
    repeats, why = (p95_repeats(bench_dir, dataset, cand["model"], cand["variant"], device) if bench_dir is not None
                    else (None, "no benchmark folder was given"))
    if cand.get("p95_ms") is not None and (repeats is None or len(repeats) < 2):
        reason = why or f"only {len(repeats)} latency repeat (benchmark.repeats)"
        notes.append(f"p95 fixed at its measured {cand['p95_ms']:.3g} ms, not resampled: {reason}")
    return certificate.ModelEvidence(cand["model"], values, rows=correct.index.to_numpy(),
                                     correct=correct.to_numpy(dtype=bool), p95_repeats=repeats, notes=tuple(notes))


def deployed_certificate(predictions_dir: Path, served_dir: Path | None, bench_dir: Path | None, resamples: int,
                         seed: int):
    """The recommendation's ``certify(dataset, candidates, constraints, objective, device)``: the decision
    certificate (:func:`textcls.report.certificate.certify`) of one data set's candidates, as JSON."""
    from textcls.report import certificate

    def certify(dataset: str, cands: list[dict], constraints: list, objective: str, device: str) -> dict:
        evidence = [deployed_evidence(predictions_dir, served_dir, bench_dir, dataset, c, device) for c in cands]
        return certificate.certify(evidence, constraints, objective, resamples, seed).to_dict()
    return certify


def curves(predictions_dir: Path, dataset: str, model: str) -> dict[str, pd.DataFrame]:
    """``{"roc": fpr/tpr rows, "pr": recall/precision rows}`` of one entry, from its saved test probabilities
    (:func:`textcls.eval.curves.roc_points` / ``pr_points``: binary, the positive class; more, macro)."""
    import numpy as np

    from textcls.eval import curves as curve_points

    path = Path(predictions_dir) / dataset / f"{model}.parquet"
    if not path.is_file():
        raise TextclsError(f"{path} not found. Fix: run `dvc repro evaluate` first.")
    table = pq.read_table(path, columns=["label", "probs"])
    labels = table.column("label").to_numpy()
    probs = np.stack(table.column("probs").to_numpy(zero_copy_only=False)).astype(np.float64)
    return {"roc": pd.DataFrame(curve_points.roc_points(labels, probs)),
            "pr": pd.DataFrame(curve_points.pr_points(labels, probs))}


def paired_comparison(correct_a: pd.Series, correct_b: pd.Series, resamples: int, seed: int, alpha: float,
                      what: str = "the two models") -> dict:
    """Accuracy of A minus B on the test examples both scored (e.g. an LLM's subsample): paired bootstrap
    interval and McNemar's exact test; ``n`` says on how many examples."""
    from textcls.eval import statistics

    shared = correct_a.index.intersection(correct_b.index)
    if shared.empty:
        raise TextclsError(f"{what} share no scored test examples. Fix: re-run `dvc repro`.")
    a, b = correct_a.loc[shared].to_numpy(), correct_b.loc[shared].to_numpy()
    diff = statistics.paired_bootstrap_diff(a, b, resamples, seed)
    p_value = statistics.mcnemar_exact(a, b)["p_value"]
    return {**diff, "p_value": p_value, "significant": bool(p_value < alpha), "n": int(len(shared))}


def compare_with_best(table: pd.DataFrame, predictions_dir: Path, resamples: int, seed: int,
                      alpha: float) -> pd.DataFrame:
    """Each model against its dataset's best (rank 1) on the same test examples.

    Adds ``vs_best_diff`` (accuracy of the model minus the best's) with a paired bootstrap 95 %
    interval, McNemar's exact ``vs_best_p_value`` and ``vs_best_significant`` (p < alpha).
    """
    table = table.copy()
    for col in ("vs_best_diff", "vs_best_low", "vs_best_high", "vs_best_p_value", "vs_best_significant",
                "vs_best_n"):
        table[col] = pd.Series([None] * len(table), dtype=object, index=table.index)
    for dataset, group in table.groupby("dataset", sort=True):
        best = group.iloc[0]["model"]
        best_correct = correct_predictions(predictions_dir, dataset, best)
        for i, row in group.iloc[1:].iterrows():
            comp = paired_comparison(correct_predictions(predictions_dir, dataset, row["model"]), best_correct,
                                     resamples, seed, alpha, f"{dataset}: {row['model']} and {best}")
            table.loc[i, ["vs_best_diff", "vs_best_low", "vs_best_high"]] = [comp["diff"], comp["low"], comp["high"]]
            table.at[i, "vs_best_p_value"] = comp["p_value"]
            table.at[i, "vs_best_significant"] = comp["significant"]
            table.at[i, "vs_best_n"] = comp["n"]
    return table


def _vs_best_text(row) -> str:
    if row.get("vs_best_diff") is None or row.get("vs_best_diff") != row.get("vs_best_diff"):
        return "best" if row["rank"] == 1 else ""
    verdict = "significant" if row["vs_best_significant"] else "not significant"
    shared, best_n = row.get("vs_best_n"), row.get("n_best")
    subset = f", on its {shared} rows" if shared is not None and best_n is not None and shared != best_n else ""
    return (f"{row['vs_best_diff'] * 100:+.1f} pt [{row['vs_best_low'] * 100:+.1f}, {row['vs_best_high'] * 100:+.1f}], "
            f"p={row['vs_best_p_value']:.2g} ({verdict}{subset})")


def _entry_label(row: dict) -> str:
    """The model name as shown: distilled students and prompted LLMs say what they are."""
    if row.get("distilled_from"):
        return f"{row['model']} (distilled from {row['distilled_from']})"
    if row.get("kind") == "llm":
        return f"{row['model']} (LLM, few-shot)"
    return row["model"]


def to_metrics_json(table: pd.DataFrame, metrics: list[str]) -> dict:
    """``{dataset: {model: {metric: value}}}`` (dicts, not lists, so ``dvc metrics diff`` can diff it)."""
    extra = [c for c in ("accuracy_ci_low", "accuracy_ci_high", "ece", "brier", "vs_best_diff", "vs_best_p_value",
                         "cpu_accuracy", "cpu_p50_ms", "cpu_p95_ms", "cpu_p95_upper_ms", "cpu_speedup",
                         "cpu_samples_per_s", "cpu_cost_per_1k_texts_usd", "cpu_model_rss_mb", "gpu_p50_ms",
                         "gpu_p95_ms", "gpu_p95_upper_ms", "size_mb", "accuracy_variant", "cpu_variant",
                         "gpu_variant") if c in table.columns]
    out: dict = {}
    for row in table.to_dict("records"):
        out.setdefault(row["dataset"], {})[row["model"]] = {
            **{m: row[m] for m in metrics}, "rank": int(row["rank"]),
            "params": row["params"], "train_time_s": row["train_time_s"],
            **{c: _finite(row[c]) for c in extra},
        }
    return out


def _finite(value):
    """None for missing numbers (pandas NaN), so the JSON stays valid."""
    return None if value is None or (isinstance(value, float) and value != value) else value


def to_markdown(table: pd.DataFrame, sort_by: str) -> str:
    lines = ["# Leaderboard", ""]
    for dataset, group in table.groupby("dataset", sort=True):
        best = group.iloc[0]
        lines += [f"## {dataset}", "", f"Best by {sort_by}: **{best['model']}** ({best[sort_by]:.4f}).", ""]
        lines += ["`vs best`: accuracy difference to the best model with a paired bootstrap 95 % interval and "
                  "McNemar's exact p-value on the same test examples.", ""]
        if "accuracy_variant" in group or "cpu_accuracy" in group:
            lines += [ACCURACY_NOTE, ""]
        if group["comparable_to_published"].eq(False).any():
            lines += ["Splits were carved and/or subsampled: not comparable to published numbers.", ""]
        if "gpu_variant" in group and group["gpu_variant"].eq("unavailable").any():
            lines += ["GPU: unavailable on the benchmark machine (no GPU rows measured).", ""]
        records = [{**r, "n_best": best.get("n")} for r in group.to_dict("records")]
        group = group.assign(vs_best=[_vs_best_text(r) for r in records], model=[_entry_label(r) for r in records])
        if "n" in group and group["n"].nunique() > 1:
            lines += ["`n`: test examples scored; a model scored on a subsample is compared with the best on "
                      "those examples only.", ""]
        if "accuracy_ci_low" in group:
            group = group.assign(accuracy_95ci=[f"[{lo:.4f}, {hi:.4f}]" for lo, hi in
                                                zip(group["accuracy_ci_low"], group["accuracy_ci_high"])])
        shown = group[[c for c in MARKDOWN_COLUMNS if c in group.columns]]
        lines += [shown.to_markdown(index=False, floatfmt=".4f"), ""]
        lines += pareto_markdown(pareto_points(table[table["dataset"] == dataset]))
    return "\n".join(lines)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of (latency, accuracy) points no other point beats on both (lower latency, higher accuracy)."""
    front = []
    for i, (lat, acc) in enumerate(points):
        dominated = any((l2 <= lat and a2 >= acc) and (l2 < lat or a2 > acc) for l2, a2 in points)
        if not dominated:
            front.append(i)
    return front


def accuracy_interval(accuracy: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of an accuracy measured on ``n`` test rows (statsmodels)."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(int(round(accuracy * n)), n, alpha=1 - confidence, method="wilson")
    return float(low), float(high)


def pareto_points(table: pd.DataFrame) -> pd.DataFrame:
    """The entries with a CPU latency, per data set numbered 1, 2, ... in leaderboard order: the best CPU
    variant's served accuracy with its Wilson 95 % interval (on the rows it was served: ``cpu_n``, else ``n``),
    its batch-1 p50 and p95, and whether it is on the Pareto front of (p95, served accuracy)."""
    columns = ["dataset", "number", "model", "cpu_variant", "params", "cpu_accuracy", "accuracy_low", "accuracy_high",
               "cpu_p50_ms", "cpu_p95_ms", "on_front"]
    needed = ["cpu_p95_ms", "cpu_p50_ms", "cpu_variant", "cpu_accuracy", "cpu_n", "n", "params"]
    data = table.reindex(columns=[*table.columns.difference(needed), *needed])
    data = data[pd.to_numeric(data["cpu_p95_ms"], errors="coerce").notna()
                & pd.to_numeric(data["cpu_accuracy"], errors="coerce").notna()]
    rows = []
    for dataset in sorted(data["dataset"].unique()):
        group = data[data["dataset"] == dataset]
        front = set(pareto_front([(float(p), float(a)) for p, a in zip(group["cpu_p95_ms"], group["cpu_accuracy"])]))
        for i, row in enumerate(group.to_dict("records")):
            n = row["cpu_n"] if pd.notna(row["cpu_n"]) else row["n"]
            low, high = accuracy_interval(float(row["cpu_accuracy"]), int(n)) if pd.notna(n) else (None, None)
            rows.append({"dataset": dataset, "number": i + 1, "model": _entry_label(row), "cpu_variant": row["cpu_variant"],
                         "params": row["params"], "cpu_accuracy": float(row["cpu_accuracy"]), "accuracy_low": low,
                         "accuracy_high": high, "cpu_p50_ms": float(row["cpu_p50_ms"]) if pd.notna(row["cpu_p50_ms"])
                         else None, "cpu_p95_ms": float(row["cpu_p95_ms"]), "on_front": i in front})
    return pd.DataFrame(rows, columns=columns)


def pareto_markdown(points: pd.DataFrame) -> list[str]:
    """The Pareto front of one data set as Markdown lines (fastest first); empty without points."""
    if points.empty:
        return []
    front = points[points["on_front"].astype(bool)].sort_values("cpu_p95_ms")
    lines = ["Pareto front, CPU batch 1 (no other entry is both faster at p95 and more accurate as served; "
             "`#`: its number in `plots/pareto.png`):", "",
             "| # | model | variant | served accuracy [95 % CI] | p50 ms | p95 ms |", "|---:|---|---|---:|---:|---:|"]
    for r in front.to_dict("records"):
        interval = f" [{r['accuracy_low']:.4f}, {r['accuracy_high']:.4f}]" if pd.notna(r["accuracy_low"]) else ""
        p50 = f"{r['cpu_p50_ms']:.3g}" if pd.notna(r["cpu_p50_ms"]) else ""
        lines.append(f"| {r['number']} | {r['model']} | {r['cpu_variant']} | {r['cpu_accuracy']:.4f}{interval} | "
                     f"{p50} | {r['cpu_p95_ms']:.3g} |")
    return [*lines, ""]


def pareto_png(table: pd.DataFrame) -> bytes:
    """Served accuracy vs CPU batch-1 latency per data set, each entry at its best CPU variant (an int8 model at
    its own accuracy): the marker at p95 with a line back to p50, the accuracy's 95 % interval as a vertical bar,
    a number per entry (legend beside the axes, so labels never overlap), the Pareto front filled and joined."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    points = pareto_points(table)
    datasets = sorted(points["dataset"].unique()) or ["(no benchmark)"]
    fig, axes = plt.subplots(1, len(datasets), figsize=(7.5 * len(datasets), 4.6), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        group = points[points["dataset"] == dataset]
        ax.set(title=dataset, xlabel="CPU batch-1 latency, ms (log): marker p95, line from p50",
               ylabel="served test accuracy, 95 % CI")
        ax.grid(True, alpha=0.3)
        if group.empty:
            continue
        handles = []
        for r in group.to_dict("records"):
            color = "C0" if r["on_front"] else "C7"
            if pd.notna(r["cpu_p50_ms"]):
                ax.plot([r["cpu_p50_ms"], r["cpu_p95_ms"]], [r["cpu_accuracy"]] * 2, color=color, linewidth=1.5,
                        alpha=0.7)
            if pd.notna(r["accuracy_low"]):
                ax.plot([r["cpu_p95_ms"]] * 2, [r["accuracy_low"], r["accuracy_high"]], color=color, linewidth=1,
                        alpha=0.7)
            ax.plot(r["cpu_p95_ms"], r["cpu_accuracy"], "o", markersize=13, color=color,
                    markerfacecolor=color if r["on_front"] else "white")
            ax.annotate(str(r["number"]), (r["cpu_p95_ms"], r["cpu_accuracy"]), ha="center", va="center", fontsize=7,
                        color="white" if r["on_front"] else "black")
            handles.append(Line2D([], [], linestyle="none", marker="o", color=color,
                                  markerfacecolor=color if r["on_front"] else "white",
                                  label=f"{r['number']}  {r['model']} ({r['cpu_variant']})"))
        front = group[group["on_front"].astype(bool)].sort_values("cpu_p95_ms")
        ax.plot(front["cpu_p95_ms"], front["cpu_accuracy"], "--", color="C0", linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.margins(x=0.2, y=0.1)
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False,
                  title="filled: Pareto front", title_fontsize=7)
    fig.suptitle("Accuracy vs latency, best CPU variant per entry")
    return figure_png(fig)


def figure_png(fig) -> bytes:
    """A pyplot figure as PNG bytes (tight layout, 110 dpi); the figure is closed."""
    import io

    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
