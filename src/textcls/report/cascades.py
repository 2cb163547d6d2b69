"""Cascades: chains of leaderboard entries that answer in turn, cheapest first.

A text goes to the chain's first entry; when that entry's confidence (its top class probability, as served) is
under the entry's threshold, the text goes on to the next one, and so on; the last entry always answers. Everything
comes from the served predictions the benchmark and few-shot stages save (:mod:`textcls.bench.served`): each
entry's deployed variant, batch 1, with every call's end-to-end time.

- **Thresholds are chosen on the validation split, never on test.** Candidates per entry are quantiles of its
  validation confidence, plus 0 (always answer) and infinity (always pass on). Of every combination, the
  chosen one is the cheapest (lowest expected validation latency) whose validation accuracy is at most
  ``cascades.max_accuracy_drop`` below the best combination's.
- **Test**, on the test rows every member served (an LLM answers a seeded subsample: its chains are scored on
  those rows, and say so): accuracy with a 95 % bootstrap interval, the share of texts each entry answers, the
  chain against its last entry alone on the same rows (paired bootstrap interval, McNemar's exact test).
- **Latency per text** is the sum of the measured end-to-end times of the calls that text went through (each
  entry's own call on that text), so the expected latency is their mean and the p95 their 95th percentile, with
  an order-statistic 95 % upper bound (:func:`textcls.bench.stats.quantile_upper_bound`).
- **Cost per 1,000 texts** is each entry's own cost per 1,000 texts (its benchmark report: the machine price over
  its measured speed, or for an LLM its full prompt tokens at ``price_per_1m_tokens``) times the share of texts
  that reach it. **Memory** is the members' sum (every member stays loaded).

:func:`evaluate` returns typed records (:class:`ChainResult`); :func:`build` the JSON of ``metrics/cascades.json``,
with a Pareto front per data set over (expected latency, accuracy) of the chains and the single entries scored
on the same (full) test rows; :func:`to_markdown` its table; :func:`consider` what the recommendation says of them.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from textcls.errors import TextclsError
from textcls.io import read_json
from textcls.report.recommend import finite_number

NEVER_DEFER = 0.0  # a threshold every confidence meets: the entry always answers
ALWAYS_DEFER = math.inf  # a threshold no confidence meets: the entry always passes the text on


@dataclasses.dataclass(frozen=True)
class Calls:
    """One entry's served calls on one split, indexed by row id: ``label``, ``pred``, ``conf`` (top class
    probability) and ``latency_ms`` (the call's end-to-end time)."""

    frame: pd.DataFrame

    @classmethod
    def from_served(cls, rows: pd.DataFrame) -> "Calls":
        probs = np.stack(rows["probs"].to_numpy()).astype(np.float64)
        return cls(pd.DataFrame({"label": rows["label"].to_numpy(), "pred": rows["pred"].to_numpy(),
                                 "conf": probs.max(axis=1), "latency_ms": rows["latency_ms"].to_numpy(float)},
                                index=rows.index))


@dataclasses.dataclass(frozen=True)
class Member:
    """One entry of a chain as deployed: its variant, its served validation and test calls, cost and memory."""

    entry: str
    variant: str
    validation: Calls
    test: Calls
    cost_per_1k_texts_usd: Optional[float]
    memory_mb: Optional[float]
    params: Optional[float] = None  # its parameter count (the benchmark report's)

    @property
    def label(self) -> str:
        return f"{self.entry}:{self.variant}"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A chain with fixed thresholds on one set of rows."""

    n: int
    accuracy: float
    answered: list  # share of texts each member answers
    reached: list  # share of texts each member sees
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p95_upper_ms: Optional[float]
    correct: np.ndarray  # per row


@dataclasses.dataclass(frozen=True)
class ChainResult:
    """A chain, its thresholds (chosen on validation) and how it did on test."""

    dataset: str
    members: list  # "entry:variant"
    thresholds: list  # one per member but the last
    validation: Outcome
    test: Outcome
    test_accuracy_ci95: dict
    cost_per_1k_texts_usd: Optional[float]
    memory_mb: Optional[float]
    params: Optional[float]  # the members' sum
    vs_last: dict  # chain minus its last member alone, same test rows
    last_alone_mean_ms: float
    full_test_rows: bool  # scored on every served test row (else: an LLM's subsample)
    rows: pd.Index  # the test row ids scored (``test.correct`` is in this order)

    def to_dict(self) -> dict:
        def outcome(o: Outcome) -> dict:
            return {"n": o.n, "accuracy": round(o.accuracy, 6), "answered": [round(x, 4) for x in o.answered],
                    "reached": [round(x, 4) for x in o.reached], "mean_ms": round(o.mean_ms, 4),
                    "p50_ms": round(o.p50_ms, 4), "p95_ms": round(o.p95_ms, 4),
                    "p95_upper_ms": None if o.p95_upper_ms is None else round(o.p95_upper_ms, 4)}
        return {"name": " -> ".join(self.members), "members": self.members,
                "thresholds": [None if math.isinf(t) else round(float(t), 6) for t in self.thresholds],
                "threshold_meaning": "answer when confidence >= threshold; null = always pass on",
                "validation": outcome(self.validation), "test": outcome(self.test),
                "accuracy": round(self.test.accuracy, 6), "accuracy_ci95": self.test_accuracy_ci95,
                "mean_ms": round(self.test.mean_ms, 4), "p95_ms": round(self.test.p95_ms, 4),
                "p95_upper_ms": outcome(self.test)["p95_upper_ms"],
                "cost_per_1k_texts_usd": None if self.cost_per_1k_texts_usd is None
                else round(self.cost_per_1k_texts_usd, 8),
                "memory_mb": None if self.memory_mb is None else round(self.memory_mb, 1),
                "params": None if self.params is None else int(self.params), "vs_last": self.vs_last, "last_alone_mean_ms": round(self.last_alone_mean_ms, 4),
                "full_test_rows": self.full_test_rows}


def route(conf: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Per row, the index of the member that answers: the first whose confidence (``conf[:, i]``) meets its
    threshold; the last member answers the rest. ``conf`` is [rows, members]; ``thresholds`` has one fewer."""
    members = conf.shape[1]
    if len(thresholds) != members - 1:
        raise ValueError(f"{members} members need {members - 1} thresholds, got {len(thresholds)}")
    stop = np.full(conf.shape[0], members - 1)
    for i in reversed(range(members - 1)):
        stop = np.where(conf[:, i] >= thresholds[i], i, stop)
    return stop


def outcome(correct: np.ndarray, latency_ms: np.ndarray, stop: np.ndarray) -> Outcome:
    """The chain's result when row r stops at member ``stop[r]``: ``correct`` and ``latency_ms`` are
    [rows, members] (each member's own call on that row); a row's latency is the sum up to where it stops."""
    from textcls.bench import stats

    n, members = correct.shape
    rows = np.arange(n)
    per_row = np.cumsum(latency_ms, axis=1)[rows, stop]
    ok = correct[rows, stop]
    return Outcome(n=n, accuracy=float(ok.mean()),
                   answered=[float((stop == i).mean()) for i in range(members)],
                   reached=[float((stop >= i).mean()) for i in range(members)],
                   mean_ms=float(per_row.mean()), p50_ms=float(np.percentile(per_row, 50)),
                   p95_ms=float(np.percentile(per_row, 95)), p95_upper_ms=stats.quantile_upper_bound(per_row, 0.95),
                   correct=ok)


def candidates(conf: np.ndarray, count: int) -> np.ndarray:
    """Thresholds worth trying for one member: 0 (always answer), ``count + 1`` of its observed confidences at evenly
    spaced quantiles (all of them when ``count`` >= rows - 1), infinity (always pass on)."""
    quantiles = np.quantile(conf, np.linspace(0, 1, count + 1), method="higher") if len(conf) else np.empty(0)
    return np.unique(np.concatenate([[NEVER_DEFER], quantiles, [ALWAYS_DEFER]]))


def choose_thresholds(conf: np.ndarray, correct: np.ndarray, latency_ms: np.ndarray, count: int,
                      max_accuracy_drop: float) -> tuple[list, Outcome]:
    """The thresholds for one chain from VALIDATION arrays ([rows, members] each): of every combination of
    :func:`candidates`, the lowest expected latency among those within ``max_accuracy_drop`` of the best
    accuracy (ties: the higher accuracy, then the first combination in candidate order)."""
    grids = [candidates(conf[:, i], count) for i in range(conf.shape[1] - 1)]
    scored = []
    for combo in itertools.product(*grids):
        result = outcome(correct, latency_ms, route(conf, combo))
        scored.append((combo, result))
    best = max(r.accuracy for _, r in scored)
    eligible = [(c, r) for c, r in scored if r.accuracy >= best - max_accuracy_drop - 1e-12]
    combo, result = min(eligible, key=lambda cr: (cr[1].mean_ms, -cr[1].accuracy))
    return list(combo), result


def _arrays(members: Sequence[Member], split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Index]:
    """[rows, members] confidence, correctness and latency on the rows of ``split`` every member served."""
    frames = [getattr(m, split).frame for m in members]
    shared = frames[0].index
    for frame in frames[1:]:
        shared = shared.intersection(frame.index)
    if shared.empty:
        names = ", ".join(m.label for m in members)
        raise TextclsError(f"cascade {names}: its entries share no served {split} rows. Fix: rerun `dvc repro` "
                           f"(an LLM member needs llms.<name>.max_validation_rows > 0 for validation rows).")
    frames = [f.loc[shared] for f in frames]
    labels = frames[0]["label"].to_numpy()
    if any((f["label"].to_numpy() != labels).any() for f in frames[1:]):
        raise TextclsError(f"cascade {', '.join(m.label for m in members)}: its entries' served {split} labels "
                           "differ on the same rows: their files come from different data. Fix: rerun `dvc repro`.")
    conf = np.stack([f["conf"].to_numpy() for f in frames], axis=1)
    correct = np.stack([(f["pred"] == f["label"]).to_numpy() for f in frames], axis=1)
    latency = np.stack([f["latency_ms"].to_numpy(float) for f in frames], axis=1)
    if not np.isfinite(latency).all():
        raise TextclsError(f"cascade {', '.join(m.label for m in members)}: served {split} calls without their "
                           "times (files from before they were saved). Fix: rerun `dvc repro`.")
    return conf, correct, latency, shared


def evaluate(dataset: str, members: Sequence[Member], count: int, max_accuracy_drop: float, resamples: int,
             seed: int, full_test_rows: int) -> ChainResult:
    """Choose the chain's thresholds on validation (:func:`choose_thresholds`), then score it on test."""
    from textcls.eval import statistics

    conf_v, correct_v, latency_v, _ = _arrays(members, "validation")
    thresholds, on_validation = choose_thresholds(conf_v, correct_v, latency_v, count, max_accuracy_drop)
    conf, correct, latency, shared = _arrays(members, "test")
    on_test = outcome(correct, latency, route(conf, thresholds))
    ones = np.ones(on_test.n, dtype=bool)
    ci = statistics.bootstrap_ci(ones, on_test.correct, lambda y, ok: float(ok.mean()), resamples, seed)
    last = correct[:, -1]
    diff = statistics.paired_bootstrap_diff(on_test.correct, last, resamples, seed)
    test = statistics.mcnemar_exact(on_test.correct, last)
    costs = [m.cost_per_1k_texts_usd for m in members]
    cost = (None if any(c is None for c in costs)
            else float(sum(r * c for r, c in zip(on_test.reached, costs))))
    def total(values):
        return None if any(x is None for x in values) else float(sum(values))

    return ChainResult(dataset=dataset, members=[m.label for m in members], thresholds=thresholds,
                       validation=on_validation, test=on_test, test_accuracy_ci95=ci, cost_per_1k_texts_usd=cost,
                       memory_mb=total([m.memory_mb for m in members]), params=total([m.params for m in members]),
                       vs_last={**diff, "p_value": test["p_value"], "chain_only_right": test["a_only"],
                                "last_only_right": test["b_only"], "n": on_test.n},
                       last_alone_mean_ms=float(latency[:, -1].mean()), full_test_rows=on_test.n == full_test_rows,
                       rows=shared)


# ------------------------------------------------------------------------------------------- reading the runs

def member(dataset: str, spec: str, served_dir: Path, bench_dir: Path, device: str) -> Member:
    """The chain member ``spec`` (``entry`` or ``entry:variant``) on ``device`` (``cpu``/``gpu``): its variant
    (default: the benchmark's best on that device), served calls, cost and memory."""
    from textcls.bench import served

    entry, _, variant = spec.partition(":")
    bench_device = "cuda" if device == "gpu" else device
    bench_path = Path(bench_dir) / dataset / f"{entry}.json"
    if not bench_path.is_file():
        raise TextclsError(f"{bench_path} not found (cascade member {spec}). Fix: run `dvc repro` first.")
    bench = read_json(bench_path)
    result = bench.get(bench_device)
    if not isinstance(result, dict) or result.get("status") != "measured":
        raise TextclsError(f"cascade member {dataset}/{entry}: not benchmarked on {device.upper()} "
                           f"({(result or {}).get('status', 'not run')}). Fix: drop it from cascades.chains, or run "
                           "on a machine with that device.")
    variant = variant or result["best_variant"]
    if variant not in result["variants"] or "error" in result["variants"][variant]:
        raise TextclsError(f"cascade member {spec}: {dataset}/{entry} has no measured {device.upper()} variant "
                           f"{variant!r} (measured: {', '.join(result['variants'])}). Fix: name one of them.")
    row = result["variants"][variant]
    path = Path(served_dir) / dataset / f"{entry}.parquet"
    if not path.is_file():
        raise TextclsError(f"{path} not found (cascade member {spec}). Fix: run `dvc repro` first.")
    frame = served.read(path)
    calls = {split: served.select(frame, bench_device, variant, split) for split in ("validation", "test")}
    for split, rows in calls.items():
        if rows.empty:
            raise TextclsError(f"{path} has no served {split} predictions of {bench_device}/{variant} (a file from "
                               "before they were saved, or an LLM with max_validation_rows 0). Fix: rerun `dvc "
                               "repro`, or drop the chain.")
    memory = row.get("model_rss_mb") if bench_device == "cpu" else row.get("gpu_memory_mb")
    return Member(entry, variant, Calls.from_served(calls["validation"]), Calls.from_served(calls["test"]),
                  finite_number(row.get("cost_per_1k_texts_usd")), finite_number(memory), finite_number(bench.get("params")))


def single(dataset: str, m: Member, resamples: int, seed: int, full_test_rows: int) -> tuple[dict, pd.Series]:
    """One entry alone, on its served test rows (the Pareto table's other points), and its per-row correctness."""
    from textcls.eval import statistics

    frame = m.test.frame
    if not np.isfinite(frame["latency_ms"].to_numpy(float)).all():
        raise TextclsError(f"{dataset}/{m.entry}: served test calls without their times. Fix: rerun `dvc repro`.")
    correct = (frame["pred"] == frame["label"]).to_numpy()[:, None]
    result = outcome(correct, frame["latency_ms"].to_numpy(float)[:, None], np.zeros(len(frame), dtype=int))
    ci = statistics.bootstrap_ci(np.ones(result.n, dtype=bool), result.correct, lambda y, ok: float(ok.mean()),
                                 resamples, seed)
    return {"name": m.label, "members": [m.label], "n": result.n, "accuracy": round(result.accuracy, 6),
            "accuracy_ci95": ci, "mean_ms": round(result.mean_ms, 4), "p95_ms": round(result.p95_ms, 4),
            "p95_upper_ms": None if result.p95_upper_ms is None else round(result.p95_upper_ms, 4),
            "cost_per_1k_texts_usd": m.cost_per_1k_texts_usd, "memory_mb": m.memory_mb,
            "params": None if m.params is None else int(m.params), "full_test_rows": result.n == full_test_rows}, pd.Series(result.correct, index=frame.index)


def pareto(points: list[dict]) -> list[bool | None]:
    """Per point: on the front of (lower ``mean_ms``, higher ``accuracy``) among the points scored on the full
    test rows; None for the others (scored on fewer rows: not comparable)."""
    full = [i for i, p in enumerate(points) if p["full_test_rows"]]
    out: list[bool | None] = [None] * len(points)
    for i in full:
        a = points[i]
        out[i] = not any(points[j]["mean_ms"] <= a["mean_ms"] and points[j]["accuracy"] >= a["accuracy"]
                         and (points[j]["mean_ms"] < a["mean_ms"] or points[j]["accuracy"] > a["accuracy"])
                         for j in full if j != i)
    return out


@dataclasses.dataclass(frozen=True)
class Report:
    """What :func:`build` computed: the JSON of ``metrics/cascades.json`` and, per data set and point name, the
    per-test-row correctness behind it (for :func:`consider`'s paired comparisons; never written)."""

    json: dict
    correct: dict  # {dataset: {name: pd.Series of bool indexed by test row id}}


def declared(chains: Sequence[Sequence[str]], entries: Sequence[str]) -> tuple[list, list]:
    """(the chains whose every member is a declared entry, ``{"chain", "reason"}`` for the others): a chain naming
    an entry the params no longer declare (the model set changed) is skipped, and the report says so."""
    keep, skipped = [], []
    for chain in chains:
        missing = [m.split(":")[0] for m in chain if m.split(":")[0] not in entries]
        if missing:
            skipped.append({"chain": " -> ".join(chain),
                            "reason": f"{', '.join(map(repr, missing))} not an entry of these params (entries: "
                                      f"{', '.join(entries)}); fix the name under cascades.chains or drop the chain"})
        else:
            keep.append(list(chain))
    return keep, skipped


def build(datasets: Sequence[str], chains: Sequence[Sequence[str]], served_dir: Path, bench_dir: Path, cfg,
          device: str, resamples: int, seed: int, skipped: Sequence[dict] = ()) -> Report:
    """Per data set, every chain (:class:`ChainResult`) and every member alone, with the Pareto front. ``cfg`` is
    the ``cascades:`` section; ``skipped``: the chains :func:`declared` left out, listed in the report."""
    report = {"method": {"thresholds_chosen_on": "validation (served predictions)",
                         "rule": f"cheapest (lowest expected validation latency) thresholds within "
                                 f"{cfg.max_accuracy_drop:g} of the best validation accuracy",
                         "candidates_per_entry": cfg.thresholds, "device": device,
                         "latency": "per text, the sum of the end-to-end times of the calls it went through",
                         "cost": "each entry's cost per 1,000 texts times the share of texts reaching it",
                         "memory": "sum of the members' memory (all stay loaded)"},
              "skipped": list(skipped), "datasets": {}}
    correct = {}
    for dataset in datasets:
        members = {spec: member(dataset, spec, served_dir, bench_dir, device) for chain in chains for spec in chain}
        full = max(len(m.test.frame) for m in members.values()) if members else 0
        results = [evaluate(dataset, [members[s] for s in chain], cfg.thresholds, cfg.max_accuracy_drop, resamples,
                            seed, full) for chain in chains]
        rows = {" -> ".join(r.members): pd.Series(r.test.correct, index=r.rows) for r in results}
        singles = []
        for m in {m.label: m for m in members.values()}.values():
            point, rows[m.label] = single(dataset, m, resamples, seed, full)
            singles.append(point)
        points = [{**r.to_dict(), "type": "cascade"} for r in results] + [{**s, "type": "single"} for s in singles]
        for point, front in zip(points, pareto(points)):
            point["pareto"] = front
        report["datasets"][dataset] = {"full_test_rows": full, "chains": points[:len(results)],
                                       "singles": points[len(results):]}
        correct[dataset] = rows
    return Report(report, correct)


# --------------------------------------------------------------------------------------------------- output

def _pt(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x * 100:+.1f}"


def _usd(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.6f}"


def _ms(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def table_rows(data: dict) -> list[str]:
    """One data set's cascades and single entries as Markdown table rows (header included)."""
    lines = ["| | chain | thresholds | answered by each | test n | accuracy [95 % CI] | vs last alone | "
             "mean ms | p95 ms (upper) | USD / 1k texts | memory MB | Pareto |",
             "|---|---|---|---|---:|---|---|---:|---:|---:|---:|---|"]
    for kind, points in (("cascade", data["chains"]), ("single", data["singles"])):
        for p in points:
            ci = p["accuracy_ci95"]
            if kind == "cascade":
                thresholds = ", ".join("never" if t is None else f"{t:.3f}" for t in p["thresholds"])
                answered = " / ".join(f"{x * 100:.0f} %" for x in p["test"]["answered"])
                vs = p["vs_last"]
                vs_last = f"{_pt(vs['diff'])} pt [{_pt(vs['low'])}, {_pt(vs['high'])}], p={vs['p_value']:.2g}"
                n = p["test"]["n"]
            else:
                thresholds, answered, vs_last, n = "", "100 %", "", p["n"]
            front = {True: "front", False: "", None: "other rows"}[p["pareto"]]
            upper = "" if p["p95_upper_ms"] is None else f" ({_ms(p['p95_upper_ms'])})"
            memory = "n/a" if p["memory_mb"] is None else f"{p['memory_mb']:.0f}"
            lines.append(f"| {kind} | {p['name'].replace(' -> ', ' → ')} | {thresholds} | {answered} | {n} | "
                         f"{p['accuracy']:.4f} [{ci['low']:.4f}, {ci['high']:.4f}] | {vs_last} | {_ms(p['mean_ms'])} | "
                         f"{_ms(p['p95_ms'])}{upper} | {_usd(p['cost_per_1k_texts_usd'])} | {memory} | {front} |")
    return lines


def _intro(method: dict) -> str:
    return ("A text goes on to the chain's next entry when the previous one's confidence (top class probability, as "
            "served) is under its threshold. Thresholds are chosen on the **validation** split's served predictions "
            f"({method['rule']}), never on test; the table scores them on test. Latency per text is the sum of its "
            f"calls' measured end-to-end times on the {method['device'].upper()}; cost is each entry's cost per 1,000 "
            "texts times the share reaching it; memory is the members' sum. `vs last alone`: the chain minus its last "
            "entry alone on the same test rows (paired bootstrap 95 % interval, McNemar p). Pareto: lower mean "
            "latency and higher accuracy, among the rows scored on the full test split (an LLM answers a "
            "subsample: `other rows`).")


def _sections(report: dict, level: str) -> list[str]:
    lines = []
    for dataset, data in report["datasets"].items():
        lines += [f"{level} {dataset}", "", *table_rows(data), ""]
    return lines


def _skipped(report: dict) -> list[str]:
    return [f"- Skipped {s['chain']}: {s['reason']}." for s in report.get("skipped", [])]


def to_markdown(report: dict) -> str:
    """``metrics/cascades.md``."""
    skipped = _skipped(report)
    if not report.get("datasets"):
        return "\n".join(["# Cascades", "", "No chains to evaluate under `cascades:` in params.yaml.", "",
                          *skipped, ""])
    return "\n".join(["# Cascades", "", _intro(report["method"]), "", *skipped, *([""] if skipped else []),
                      *_sections(report, "##")])


def leaderboard_section(report: dict) -> str:
    """The cascades' Pareto table, for the leaderboard Markdown."""
    if not report.get("datasets"):
        return ""
    return "\n".join(["## Cascades", "", _intro(report["method"]), "", *_sections(report, "###")])


# --------------------------------------------------------------------------------- the recommendation's view

def _violations(chain: dict, cfg) -> list[str]:
    """The ``recommend:`` limits a chain misses (:func:`textcls.report.recommend.violations` on its accuracy, p95
    upper bound, memory sum, expected cost and parameter sum)."""
    from textcls.report.recommend import violations

    return violations({"benchmark": "measured", "accuracy": chain["accuracy"], "p95_ms": chain["p95_upper_ms"],
                       "memory_mb": chain["memory_mb"], "cost_per_1k_texts_usd": chain["cost_per_1k_texts_usd"],
                       "params": chain.get("params")}, cfg)


def consider(report: Report, recs: dict, cfg, alpha: float, resamples: int, seed: int) -> dict:
    """Per data set, what the recommendation says of the cascades: the best chain meeting every ``recommend:``
    limit (by ``cfg.objective``, on the full test rows), compared with the recommended model as served on the
    same rows, and a verdict: ``better`` (significantly more accurate, or for a latency/cost objective lower at
    no significant accuracy loss), ``cheaper`` (lower expected latency and cost at no significant accuracy
    loss), or ``not better``. ``recs`` is :func:`textcls.report.recommend.recommend`'s result."""
    from textcls.eval import statistics

    out = {}
    for dataset, data in report.json["datasets"].items():
        rec = recs.get(dataset, {})
        misses = {c["name"]: _violations(c, cfg) for c in data["chains"]}
        feasible = [c for c in data["chains"] if c["full_test_rows"] and not misses[c["name"]]]
        def value(c, name):
            return math.inf if c[name] is None else c[name]

        key = {"accuracy": lambda c: (-c["accuracy"], c["mean_ms"]),
               "p95_ms": lambda c: (value(c, "p95_upper_ms"), -c["accuracy"]),
               "cost_per_1k_texts_usd": lambda c: (value(c, "cost_per_1k_texts_usd"), -c["accuracy"])}[cfg.objective]
        infeasible = {name: reasons for name, reasons in misses.items() if reasons}
        if not feasible:
            out[dataset] = {"best_chain": None, "verdict": "none feasible", "violations": infeasible}
            continue
        best = sorted(feasible, key=key)[0]
        model = rec.get("recommended")
        cand = rec.get("candidates", {}).get(model) if model else None
        single = next((s for s in data["singles"] if cand and s["name"] == f"{model}:{cand.get('variant')}"), None)
        entry = {"best_chain": best["name"], "accuracy": best["accuracy"], "mean_ms": best["mean_ms"],
                 "p95_upper_ms": best["p95_upper_ms"], "cost_per_1k_texts_usd": best["cost_per_1k_texts_usd"],
                 "recommended_model": model, "violations": infeasible}
        if single is None:
            entry.update(verdict="not compared", why="the recommended model is not a chain member, or none is "
                                                     "recommended: its per-row served calls are not loaded here")
            out[dataset] = entry
            continue
        entry["comparison"] = comparison = _compare(report, dataset, best, single, resamples, seed, statistics)
        significant = comparison["p_value"] < alpha
        lower_cost = (best["cost_per_1k_texts_usd"] is not None and single["cost_per_1k_texts_usd"] is not None
                      and best["cost_per_1k_texts_usd"] < single["cost_per_1k_texts_usd"])
        not_worse = not (significant and comparison["diff"] < 0)
        if cfg.objective == "accuracy":
            better = significant and comparison["diff"] > 0
        else:
            better = not_worse and key(best) < key(single)
        if better:
            verdict = "better"
        elif not_worse and best["mean_ms"] < single["mean_ms"] and lower_cost:
            verdict = "cheaper"
        else:
            verdict = "not better"
        entry.update(verdict=verdict, model_mean_ms=single["mean_ms"],
                     model_cost_per_1k_texts_usd=single["cost_per_1k_texts_usd"])
        out[dataset] = entry
    return out


def _compare(report: Report, dataset: str, chain: dict, single: dict, resamples: int, seed: int, statistics) -> dict:
    """The chain minus the single entry on the same test rows, from the per-row results kept in ``report``."""
    rows = report.correct[dataset]
    a, b = rows[chain["name"]], rows[single["name"]]
    shared = a.index.intersection(b.index)
    ok_a, ok_b = a.loc[shared].to_numpy(), b.loc[shared].to_numpy()
    diff = statistics.paired_bootstrap_diff(ok_a, ok_b, resamples, seed)
    return {**diff, "p_value": statistics.mcnemar_exact(ok_a, ok_b)["p_value"], "n": int(len(shared))}


def markdown_lines(entry: dict) -> list[str]:
    """The recommendation's paragraph on one data set's cascades."""
    if entry["best_chain"] is None:
        return ["Cascades: no chain meets every constraint (`metrics/cascades.md`)."]
    head = (f"Cascades: the best chain meeting every constraint is **{entry['best_chain']}**: accuracy "
            f"{entry['accuracy']:.4f}, mean {entry['mean_ms']:.3g} ms, p95 upper bound {_ms(entry['p95_upper_ms'])} ms, "
            f"{_usd(entry['cost_per_1k_texts_usd'])} USD / 1k texts")
    if entry["verdict"] == "not compared":
        return [f"{head} ({entry['why']})."]
    comp = entry["comparison"]
    versus = (f"against {entry['recommended_model']} as served, on the same {comp['n']} test rows: "
              f"{_pt(comp['diff'])} pt [{_pt(comp['low'])}, {_pt(comp['high'])}], McNemar p = {comp['p_value']:.2g}; "
              f"mean {entry['model_mean_ms']:.3g} ms and {_usd(entry['model_cost_per_1k_texts_usd'])} USD / 1k alone")
    verdict = {"better": "deploy the cascade instead of the single model",
               "cheaper": "as accurate within the noise and cheaper: an alternative to the single model",
               "not better": "the single model stays the recommendation"}[entry["verdict"]]
    return [f"{head}; {versus}: {verdict}."]
