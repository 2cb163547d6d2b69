"""What a pull request changes that is signal, not noise: the part of the PR report that leads.

- **Quality**: per entry whose test accuracy, macro-F1 or AUROC moved, old -> new, and for accuracy the paired
  test on the same test rows (paired bootstrap interval of the difference and McNemar's exact p) when both runs'
  per-example predictions can be read (the working tree's files; the base's from the DVC cache).
- **Latency and cost**: a batch-1 p50 (best CPU variant) counts as changed only when the two runs' 95 %
  intervals do not overlap (the interval over interleaved repeats of the benchmark); so does its cost per 1,000
  texts (the interval over the throughput sweep's timed batches). A move inside them is run-to-run noise and is
  only counted.

:func:`compare` takes the two runs' metrics as dicts (:func:`read_run` reads them from a folder or a git
revision) and returns a :class:`Changes` record; :func:`to_markdown` renders it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

QUALITY_METRICS = ("accuracy", "f1_macro", "auroc")


@dataclass(frozen=True)
class QualityChange:
    entry: str  # "<dataset>/<name>"
    metric: str
    old: float | None  # None: the entry is new
    new: float | None  # None: the entry is gone
    paired: str = ""  # the paired test of the accuracy change, or why there is none


@dataclass(frozen=True)
class LatencyChange:
    entry: str
    variant: str
    old: float
    old_ci: list
    new: float
    new_ci: list


@dataclass
class Changes:
    quality: list[QualityChange] = field(default_factory=list)
    latency: list[LatencyChange] = field(default_factory=list)
    latency_within_noise: int = 0  # entries whose p50 moved inside the run-to-run interval
    latency_without_interval: list[str] = field(default_factory=list)  # moved, but one run has no interval
    cost: list[LatencyChange] = field(default_factory=list)  # cost per 1,000 texts (USD), same judgement
    cost_within_noise: int = 0
    cost_without_interval: list[str] = field(default_factory=list)


def _judge(old_ci, new_ci) -> str:
    """How two runs' values compare, from their 95 % intervals: ``changed`` (no overlap), ``noise`` (overlap) or
    ``missing`` (a run without an interval)."""
    if not old_ci or not new_ci:
        return "missing"
    return "changed" if old_ci[1] < new_ci[0] or new_ci[1] < old_ci[0] else "noise"


def _best_cpu(bench: dict) -> tuple[str, dict] | None:
    """(the best CPU variant, its benchmark row), or None when the CPU was not measured."""
    cpu = bench.get("cpu") or {}
    if cpu.get("status") != "measured":
        return None
    variant = cpu["best_variant"]
    return variant, cpu["variants"][variant]


def compare(base: dict, head: dict, paired: Callable[[str], str] | None = None) -> Changes:
    """``base`` / ``head``: ``{"eval": {entry: eval json}, "benchmark": {entry: benchmark json}}``.
    ``paired(entry)``: the text of the paired accuracy test for an entry in both runs."""
    out = Changes()
    for entry in sorted(set(base["eval"]) | set(head["eval"])):
        old, new = base["eval"].get(entry), head["eval"].get(entry)
        for metric in QUALITY_METRICS:
            a = None if old is None else old.get(metric)
            b = None if new is None else new.get(metric)
            if a == b or (old is not None and new is not None and (a is None or b is None)):
                continue  # unchanged, or a metric only one run has (e.g. AUROC added): not a model change
            text = paired(entry) if (paired and metric == "accuracy" and old is not None and new is not None) else ""
            out.quality.append(QualityChange(entry, metric, a, b, text))
    for entry in sorted(set(base["benchmark"]) & set(head["benchmark"])):
        a, b = _best_cpu(base["benchmark"][entry]), _best_cpu(head["benchmark"][entry])
        if a is None or b is None:
            continue
        variant = f"{a[0]} -> {b[0]}" if a[0] != b[0] else b[0]
        for kind, (old, old_ci), (new, new_ci) in (
                ("latency", (a[1]["latency_ms"]["p50"], a[1]["latency_ms"].get("p50_ci")),
                 (b[1]["latency_ms"]["p50"], b[1]["latency_ms"].get("p50_ci"))),
                ("cost", (a[1].get("cost_per_1k_texts_usd"), a[1].get("cost_per_1k_texts_usd_ci")),
                 (b[1].get("cost_per_1k_texts_usd"), b[1].get("cost_per_1k_texts_usd_ci")))):
            if old is None or new is None or old == new:
                continue
            verdict = _judge(old_ci, new_ci)
            if verdict == "changed":
                getattr(out, kind).append(LatencyChange(entry, variant, old, old_ci, new, new_ci))
            elif verdict == "noise":
                setattr(out, f"{kind}_within_noise", getattr(out, f"{kind}_within_noise") + 1)
            else:
                getattr(out, f"{kind}_without_interval").append(entry)
    return out


def paired_text(base_correct, head_correct, resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> str:
    """The paired accuracy test of two runs of one entry (``pandas`` Series of correctness by test row)."""
    from textcls.report.leaderboard import paired_comparison

    comp = paired_comparison(head_correct, base_correct, resamples, seed, alpha, "the two runs")
    verdict = "significant" if comp["significant"] else "not significant"
    return (f"{comp['diff'] * 100:+.1f} pt [{comp['low'] * 100:+.1f}, {comp['high'] * 100:+.1f}], "
            f"McNemar p={comp['p_value']:.2g} ({verdict}, {comp['n']} rows)")


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.4f}"


def to_markdown(changes: Changes, base_rev: str) -> str:
    lines = ["## Quality changes", ""]
    if changes.quality:
        lines += [f"Test metrics that moved against `{base_rev}`; an accuracy change comes with its paired test on the "
                  "same test rows.", "", "| entry | metric | base | this | change | paired test |",
                  "|---|---|---:|---:|---:|---|"]
        for q in changes.quality:
            delta = f"{(q.new - q.old) * 100:+.2f} pt" if q.old is not None and q.new is not None else \
                ("new entry" if q.old is None else "entry gone")
            lines.append(f"| {q.entry} | {q.metric} | {_fmt(q.old)} | {_fmt(q.new)} | {delta} | {q.paired} |")
    else:
        lines.append(f"No test accuracy, macro-F1 or AUROC moved against `{base_rev}`.")
    lines += _beyond_noise("Latency", "Batch-1 p50 of the best CPU variant", "p50 ms", "batch-1 p50", changes.latency,
                           changes.latency_within_noise, changes.latency_without_interval)
    lines += _beyond_noise("Cost", "Cost per 1,000 texts of the best CPU variant (the machine price over its "
                           "best-batch throughput)", "USD", "cost per 1,000 texts", changes.cost,
                           changes.cost_within_noise, changes.cost_without_interval)
    return "\n".join(lines)


def _beyond_noise(title: str, what: str, unit: str, name: str, changed: list[LatencyChange], within_noise: int,
                  without_interval: list[str]) -> list[str]:
    """One section of values judged against the two runs' intervals: the changes beyond them, then the counts."""
    lines = ["", f"## {title} changes beyond run-to-run noise", ""]
    if changed:
        lines += [f"{what}, where the two runs' 95 % intervals do not overlap:", "",
                  f"| entry | variant | base {unit} [95 % CI] | this {unit} [95 % CI] |", "|---|---|---:|---:|"]
        for c in changed:
            lines.append(f"| {c.entry} | {c.variant} | {c.old:.3g} [{c.old_ci[0]:.3g}, {c.old_ci[1]:.3g}] | "
                         f"{c.new:.3g} [{c.new_ci[0]:.3g}, {c.new_ci[1]:.3g}] |")
    else:
        lines.append(f"No {name} moved outside the two runs' 95 % intervals.")
    return lines + _notes(within_noise, without_interval)


def _notes(within_noise: int, without_interval: list[str]) -> list[str]:
    notes = []
    if within_noise:
        notes.append(f"{within_noise} entr{'y' if within_noise == 1 else 'ies'} moved within the run-to-run interval "
                     "(noise, not listed)")
    if without_interval:
        notes.append(f"no interval to judge for {', '.join(without_interval)}")
    return ["", "; ".join(notes).capitalize() + "."] if notes else []


def read_run(read: Callable[[str], str | None], paths: list[str]) -> dict:
    """``{"eval": {...}, "benchmark": {...}}`` from ``metrics/<kind>/<dataset>/<name>.json`` files, each read with
    ``read(path)`` (None: absent in that run)."""
    run: dict = {"eval": {}, "benchmark": {}}
    for path in paths:
        parts = Path(path).parts
        if len(parts) != 4 or parts[0] != "metrics" or parts[1] not in run or not path.endswith(".json"):
            continue
        text = read(path)
        if text is not None:
            run[parts[1]][f"{parts[2]}/{Path(parts[3]).stem}"] = json.loads(text)
    return run
