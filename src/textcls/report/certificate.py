"""The decision certificate: how sure is the recommendation? Per model, the probability that it is the best model
meeting every constraint, and its margin to each limit.

The recommendation (:mod:`textcls.report.recommend`) judges each model on a few measured numbers: its served test
accuracy, its batch-1 p95 latency (the 95 % upper bound), memory, cost and size. Two of them are estimates with
sampling noise: the accuracy (a finite test set) and the latency (a finite number of timing repeats). The
certificate redraws both together, ``B`` times (seeded), and decides the recommendation again in each draw:

- **test rows**: one bootstrap of the union of every model's scored test row ids per draw, the *same* drawn rows
  for every model (paired: two models that err on the same texts move together). A model scored on a subset (an
  LLM's seeded subsample) gets the mean over the drawn rows it has (with their multiplicity); in a draw that
  holds none of its rows its accuracy counts as not measured.
- **latency repeats**: independently per model (different models ran at different times, so their repeats are
  not paired), a bootstrap of its per-repeat p95s (``latency_ms.p95_repeats``). The draw's p95 is the value the
  recommendation judges (the pooled 95 % upper bound, ``p95_upper``) times the ratio of the resampled to the
  observed median per-repeat p95: re-measuring moves the bound by as much as the repeats spread, and the
  observed data give back exactly the recommendation's number.
- accuracy likewise: the draw's accuracy is the recommendation's accuracy plus the resampled change of the mean
  correctness; with the served predictions of the deployed variant (the normal case) that is the plain bootstrap
  mean. Where only the evaluate stage's predictions exist, their spread is used around the served accuracy, and
  the model's notes say so.
- memory, cost (price over measured throughput, not repeated) and parameter counts are fixed.

In each draw a model is *feasible* when it meets every set constraint (a limit on a value that was not measured
is not met, as in the recommendation; a model without a benchmark on the device never is), and the best feasible
model is chosen as :func:`textcls.report.recommend._ranked` ranks: highest accuracy, ties to the lower p95; or
lowest p95 / cost, ties to the higher accuracy. A tie on both (equal in every measured key) is not decided by the
model's name, which is arbitrary, but shares the draw equally among the tied models, so two identical models get
P(best) = 0.5 each; ``p_tie`` reports how often that happened. ``P(best)`` is the share of draws a model is best
(0 for a model never feasible); ``p_no_feasible`` the share of draws in which no model is.

Per model and set constraint, the **margin** compares the measured value (the recommendation's, not a draw's)
with the limit: ``slack`` = limit − value for a maximum (value − limit for a minimum), in the value's unit, and
``margin`` = slack / limit, so "p95 4.3 ms against 50 ms" is a margin of 0.914, "91 % under the limit"; a negative
margin is a violation by that share. ``p_met`` is the share of draws in which the constraint was met.

Each share is a Monte Carlo estimate over ``B`` draws: its standard error is at most 0.5 / sqrt(B) (0.016 at
B = 1000).

Pure numpy over typed records; :func:`textcls.report.leaderboard.deployed_certificate` reads the predictions and
benchmark reports into them.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

RESAMPLED = ("accuracy", "p95_ms")  # the measures whose sampling noise is redrawn; the others are fixed
OBJECTIVES = ("accuracy", "p95_ms", "cost_per_1k_texts_usd")
_CHUNK = 256  # draws whose row counts are held in memory at once
_DIGITS = 12  # keys are compared rounded, so equal accuracies from different row counts tie exactly


@dataclass(frozen=True)
class Constraint:
    """One set limit of ``recommend:``: ``key`` (e.g. ``max_p95_ms``) on ``measure`` (``p95_ms``)."""

    key: str
    measure: str
    kind: str  # "min" | "max"
    limit: float

    def __post_init__(self):
        if self.kind not in ("min", "max"):
            raise ValueError(f"constraint {self.key}: kind must be 'min' or 'max', got {self.kind!r}")
        if not math.isfinite(self.limit):
            raise ValueError(f"constraint {self.key}: the limit must be a finite number, got {self.limit!r}")


@dataclass(frozen=True)
class ModelEvidence:
    """What one model's certificate is computed from.

    ``values``: the measured values the recommendation judges, by measure name (``accuracy``, ``p95_ms``,
    ``memory_mb``, ``cost_per_1k_texts_usd``, ``params``; None: not measured). ``rows`` / ``correct``: per scored
    test row id, whether the deployed variant served the label (None: accuracy is not resampled).
    ``p95_repeats``: its per-repeat p95s in ms (None or fewer than 2: p95 is not resampled). ``benchmarked``:
    False for a model without a benchmark on the device (never feasible). ``notes``: what the certificate should
    say about its inputs (a fallback), passed through."""

    model: str
    values: dict
    rows: Optional[np.ndarray] = None
    correct: Optional[np.ndarray] = None
    p95_repeats: Optional[np.ndarray] = None
    benchmarked: bool = True
    notes: tuple = ()


@dataclass(frozen=True)
class ConstraintCheck:
    """One constraint of one model: the measured value against the limit, and how often the draws meet it."""

    key: str
    measure: str
    kind: str
    limit: float
    value: Optional[float]  # the recommendation's measured value (None: not measured)
    slack: Optional[float]  # limit - value (max) or value - limit (min): > = 0 meets it
    margin: Optional[float]  # slack / limit (None: not measured, or a limit of 0)
    p_met: float  # share of draws meeting it
    resampled: bool  # whether its value was redrawn (accuracy, p95) or is fixed


@dataclass(frozen=True)
class ModelCertificate:
    model: str
    p_best: float
    p_feasible: float  # share of draws meeting every constraint
    checks: tuple  # ConstraintCheck per set constraint, in the order given
    accuracy_resampled: bool
    latency_resampled: bool
    notes: tuple


@dataclass(frozen=True)
class Certificate:
    objective: str
    resamples: int
    seed: int
    test_rows: int  # rows in the union the row bootstrap draws from
    models: tuple  # ModelCertificate, highest P(best) first (ties: by name)
    p_no_feasible: float
    p_tie: float  # share of draws whose best was a tie on every measured key (shared equally)
    mc_standard_error: float  # the largest Monte Carlo standard error of a share: 0.5 / sqrt(resamples)

    def model(self, name: str) -> ModelCertificate:
        for cert in self.models:
            if cert.model == name:
                return cert
        raise KeyError(f"no model {name!r} in the certificate (models: {', '.join(c.model for c in self.models)})")

    def to_dict(self, digits: int = 4) -> dict:
        """JSON: shares and margins rounded to ``digits`` decimals; measured values and limits as given (costs
        are ~1e-4 USD); slack to ``digits`` significant digits; ``models`` keyed by name, highest P(best) first."""
        def share(value):
            return None if value is None else round(value, digits)

        def check(c: ConstraintCheck) -> dict:
            return {"key": c.key, "measure": c.measure, "kind": c.kind, "limit": c.limit, "value": c.value,
                    "slack": None if c.slack is None else float(f"{c.slack:.{digits}g}"), "margin": share(c.margin),
                    "p_met": share(c.p_met), "resampled": c.resampled}

        models = {m.model: {"p_best": share(m.p_best), "p_feasible": share(m.p_feasible),
                            "accuracy_resampled": m.accuracy_resampled, "latency_resampled": m.latency_resampled,
                            "constraints": {c.key: check(c) for c in m.checks}, "notes": list(m.notes)}
                  for m in self.models}
        return {"objective": self.objective, "resamples": self.resamples, "seed": self.seed,
                "test_rows": self.test_rows, "p_no_feasible": share(self.p_no_feasible), "p_tie": share(self.p_tie),
                "mc_standard_error": share(self.mc_standard_error), "models": models}


def _check_inputs(models: Sequence[ModelEvidence], constraints: Sequence[Constraint], objective: str,
                  resamples: int) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
        raise ValueError(f"resamples must be an integer >= 1, got {resamples!r} (aggregate.bootstrap_resamples)")
    if not models:
        raise ValueError("a decision certificate needs at least one model")
    names = [m.model for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be distinct, got {names}")
    keys = [c.key for c in constraints]
    if len(set(keys)) != len(keys):
        raise ValueError(f"each constraint may be given once, got {keys}")
    for m in models:
        if (m.rows is None) != (m.correct is None):
            raise ValueError(f"{m.model}: give both rows and correct, or neither")
        if m.rows is not None:
            rows, correct = np.asarray(m.rows), np.asarray(m.correct)
            if rows.ndim != 1 or rows.shape != correct.shape or rows.size == 0:
                raise ValueError(f"{m.model}: rows and correct must be non-empty 1-d arrays of one length, got "
                                 f"shapes {rows.shape} and {correct.shape}")
            if len(np.unique(rows)) != rows.size:
                raise ValueError(f"{m.model}: a test row id appears twice in its predictions")
            if not np.isin(correct, (0, 1)).all():
                raise ValueError(f"{m.model}: correct must be booleans (did the variant serve the label?)")
        if m.p95_repeats is not None:
            reps = np.asarray(m.p95_repeats, dtype=np.float64)
            if reps.ndim != 1 or not np.isfinite(reps).all() or (reps < 0).any():
                raise ValueError(f"{m.model}: p95_repeats must be a 1-d list of finite latencies >= 0 (ms)")


def _value(values: dict, measure: str) -> Optional[float]:
    value = values.get(measure)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _row_counts(rng: np.random.Generator, n_rows: int, draws: int) -> np.ndarray:
    """``[draws, n_rows]``: how often each row is in each bootstrap draw of ``n_rows`` rows."""
    picks = rng.integers(0, n_rows, size=(draws, n_rows))
    flat = picks + (np.arange(draws)[:, None] * n_rows)
    return np.bincount(flat.ravel(), minlength=draws * n_rows).reshape(draws, n_rows)


def _accuracy_draws(models: Sequence[ModelEvidence], resamples: int, seed: int) -> tuple[np.ndarray, int]:
    """``[resamples, models]`` accuracy per draw (NaN: not measured or none of its rows drawn), and the number
    of rows in the union the draws come from. Every model gets the same drawn rows."""
    out = np.full((resamples, len(models)), np.nan)
    scored = [i for i, m in enumerate(models) if m.rows is not None and _value(m.values, "accuracy") is not None]
    for i, m in enumerate(models):
        if i not in scored and _value(m.values, "accuracy") is not None:
            out[:, i] = _value(m.values, "accuracy")  # fixed: nothing to resample
    if not scored:
        return out, 0
    union = np.unique(np.concatenate([np.asarray(models[i].rows) for i in scored]))
    columns = []
    for i in scored:
        m = models[i]
        index = np.searchsorted(union, np.asarray(m.rows))
        correct = np.asarray(m.correct, dtype=np.float64)
        offset = _value(m.values, "accuracy") - float(correct.mean())
        columns.append((i, index, correct, offset if abs(offset) > 1e-6 else 0.0))  # 1e-6: the report's rounding
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    for start in range(0, resamples, _CHUNK):
        counts = _row_counts(rng, union.size, min(_CHUNK, resamples - start)).astype(np.float64)
        for i, index, correct, offset in columns:
            weights = counts[:, index]
            total = weights.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[start:start + len(counts), i] = weights @ correct / total + offset
    return out, int(union.size)


def _latency_draws(models: Sequence[ModelEvidence], resamples: int, seed: int,
                   notes: list) -> tuple[np.ndarray, list]:
    """``[resamples, models]`` p95 per draw (NaN: not measured), and whether each model's was resampled (adding to
    ``notes[i]`` why not where the caller could not know).
    Each model's repeats are drawn from its own stream (seeded by its name: the order of models is irrelevant)."""
    out = np.full((resamples, len(models)), np.nan)
    resampled = []
    for i, m in enumerate(models):
        value = _value(m.values, "p95_ms")
        reps = None if m.p95_repeats is None else np.asarray(m.p95_repeats, dtype=np.float64)
        if value is None:
            resampled.append(False)
            continue
        centre = float(np.median(reps)) if reps is not None and reps.size >= 2 else 0.0
        if centre <= 0.0:  # no repeats, one repeat, or a zero median: nothing to scale by
            out[:, i] = value
            resampled.append(False)
            if reps is not None and reps.size >= 2:
                notes[i] += ("p95 fixed at its measured value, not resampled: its median per-repeat p95 is 0 ms",)
            continue
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, zlib.crc32(m.model.encode())]))
        picks = rng.integers(0, reps.size, size=(resamples, reps.size))
        out[:, i] = value * np.median(reps[picks], axis=1) / centre
        resampled.append(True)
    return out, resampled


def _met(values: np.ndarray, constraint: Constraint) -> np.ndarray:
    """Per draw: is the constraint met? A value that was not measured (NaN) never meets it."""
    with np.errstate(invalid="ignore"):
        met = values >= constraint.limit if constraint.kind == "min" else values <= constraint.limit
    return met & ~np.isnan(values)


def _best_share(feasible: np.ndarray, primary: np.ndarray, secondary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per draw and model, its share of being best: the lowest ``primary`` among the feasible, ties to the lowest
    ``secondary``, a tie on both shared equally. Also, per draw, whether it was such a tie."""
    primary = np.where(feasible, np.round(primary, _DIGITS), np.inf)
    secondary = np.where(feasible, np.round(secondary, _DIGITS), np.inf)
    best = feasible & (primary == primary.min(axis=1, keepdims=True))
    secondary = np.where(best, secondary, np.inf)
    best &= secondary == secondary.min(axis=1, keepdims=True)
    count = best.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(count > 0, best / np.maximum(count, 1), 0.0)
    return share, count[:, 0] > 1


def certify(models: Sequence[ModelEvidence], constraints: Sequence[Constraint], objective: str, resamples: int,
            seed: int) -> Certificate:
    """The decision certificate of one data set (see the module docstring for the method)."""
    _check_inputs(models, constraints, objective, resamples)
    models = sorted(models, key=lambda m: m.model)  # the draws never depend on the order given
    accuracy, test_rows = _accuracy_draws(models, resamples, seed)
    notes = [tuple(m.notes) for m in models]
    p95, latency_resampled = _latency_draws(models, resamples, seed, notes)
    draws = {"accuracy": accuracy, "p95_ms": p95}

    def values_of(measure: str) -> np.ndarray:
        if measure in draws:
            return draws[measure]
        fixed = [_value(m.values, measure) for m in models]
        return np.broadcast_to(np.array([np.nan if v is None else v for v in fixed]), (resamples, len(models)))

    met = {c.key: _met(values_of(c.measure), c) for c in constraints}
    feasible = np.broadcast_to(np.array([m.benchmarked for m in models]), (resamples, len(models))).copy()
    for ok in met.values():
        feasible &= ok
    missing_accuracy = np.where(np.isnan(accuracy), np.inf, -accuracy)  # unmeasured ranks last, as in _ranked
    missing_p95 = np.where(np.isnan(p95), np.inf, p95)
    if objective == "accuracy":
        share, tie = _best_share(feasible, missing_accuracy, missing_p95)
    else:
        objective_values = values_of(objective)
        share, tie = _best_share(feasible, np.where(np.isnan(objective_values), np.inf, objective_values),
                                 missing_accuracy)

    certs = []
    for i, m in enumerate(models):
        checks = []
        for c in constraints:
            value = _value(m.values, c.measure)
            slack = None if value is None else (value - c.limit if c.kind == "min" else c.limit - value)
            margin = None if slack is None or c.limit == 0 else slack / abs(c.limit)
            resampled = (c.measure == "accuracy" and m.rows is not None) or \
                (c.measure == "p95_ms" and latency_resampled[i])
            checks.append(ConstraintCheck(c.key, c.measure, c.kind, float(c.limit), value, slack, margin,
                                          float(met[c.key][:, i].mean()), bool(resampled and value is not None)))
        certs.append(ModelCertificate(
            model=m.model, p_best=float(share[:, i].mean()), p_feasible=float(feasible[:, i].mean()),
            checks=tuple(checks),
            accuracy_resampled=m.rows is not None and _value(m.values, "accuracy") is not None,
            latency_resampled=latency_resampled[i], notes=notes[i]))
    certs.sort(key=lambda c: (-c.p_best, c.model))
    return Certificate(objective=objective, resamples=int(resamples), seed=int(seed), test_rows=test_rows,
                       models=tuple(certs), p_no_feasible=float((~feasible.any(axis=1)).mean()),
                       p_tie=float(tie.mean()), mc_standard_error=0.5 / math.sqrt(resamples))
