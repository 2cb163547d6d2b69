"""Timing: a warm-up-then-measure loop, latency statistics over interleaved repeats, speed and cost.

A benchmark times every variant in several repeats (rounds), interleaved with the other variants in a
seeded random order, so drift in the machine (clock speed, a noisy neighbour) lands on all variants
alike. :class:`RepeatedLatency` summarises one variant's calls:

- ``p50`` / ``p95``: the median over the repeats of each repeat's percentile, with a distribution-free
  95 % interval over the repeats (:func:`textcls.bench.stats.quantile_interval`);
- ``p95_upper`` / ``p99_upper``: order-statistic 95 % upper confidence bounds from all calls pooled; a
  percentile is only claimed when there are enough calls for its bound (``p99`` needs 299 calls);
- ``p50_repeats`` / ``p95_repeats``: each repeat's own p50 and p95, in repeat order, so a later stage can
  resample the repeats (the recommendation's decision certificate, :mod:`textcls.report.certificate`).

On a GPU the timed function must synchronise itself (the backends do), so ``perf_counter`` brackets
finished work.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, Sequence

import numpy as np

from textcls.bench import stats

LATENCY_UNIT = "ms"


def _ms(seconds) -> np.ndarray:
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    if values.size == 0:
        raise ValueError("no latency values: measure at least one call")
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("latencies must be finite and >= 0 (did the clock go backwards?)")
    return values


def _interval(values: Sequence[float]) -> list | None:
    interval = stats.quantile_interval(values, 0.5, stats.CONFIDENCE)
    return None if interval is None else [interval[0], interval[1]]


@dataclasses.dataclass(frozen=True)
class RepeatedLatency:
    """Per-call latencies of one variant, measured in ``repeats`` interleaved rounds, in milliseconds."""

    count: int  # calls, all repeats together
    repeats: int
    p50: float  # median over the repeats of the repeat's p50
    p50_ci: list | None  # its 95 % interval over the repeats (None: too few repeats)
    p95: float
    p95_ci: list | None
    p95_upper: float | None  # 95 % upper confidence bound of p95, all calls pooled (None: too few calls)
    p99: float | None  # pooled p99, only when there are calls enough to bound it
    p99_upper: float | None
    mean: float
    min: float
    max: float
    p50_repeats: list  # each repeat's p50, in repeat order
    p95_repeats: list  # each repeat's p95
    confidence: float = stats.CONFIDENCE

    @classmethod
    def from_repeats(cls, repeats: Sequence[Sequence[float]]) -> "RepeatedLatency":
        """Statistics of per-call ``seconds``, one sequence per repeat, reported in ms."""
        rounds = [_ms(r) for r in repeats]
        if not rounds:
            raise ValueError("no repeats: measure at least one")
        pooled = np.concatenate(rounds)
        p50s = [float(np.percentile(r, 50)) for r in rounds]
        p95s = [float(np.percentile(r, 95)) for r in rounds]
        p99_upper = stats.quantile_upper_bound(pooled, 0.99)
        return cls(count=int(pooled.size), repeats=len(rounds), p50=float(np.median(p50s)), p50_ci=_interval(p50s),
                   p95=float(np.median(p95s)), p95_ci=_interval(p95s),
                   p95_upper=stats.quantile_upper_bound(pooled, 0.95),
                   p99=float(np.percentile(pooled, 99)) if p99_upper is not None else None, p99_upper=p99_upper,
                   mean=float(pooled.mean()), min=float(pooled.min()), max=float(pooled.max()),
                   p50_repeats=p50s, p95_repeats=p95s)

    @classmethod
    def from_sequence(cls, seconds: Sequence[float], repeats: int) -> "RepeatedLatency":
        """Calls timed one after another (no other variant to interleave with), cut into ``repeats``
        consecutive blocks."""
        values = list(seconds)
        if len(values) < repeats:
            repeats = max(1, len(values))
        return cls.from_repeats([list(block) for block in np.array_split(np.asarray(values), repeats)])

    def to_dict(self, digits: int = 4) -> dict:
        def rounded(v):
            if isinstance(v, float):
                return round(v, digits)
            if isinstance(v, list):
                return [round(x, digits) for x in v]
            return v
        return {k: rounded(v) for k, v in dataclasses.asdict(self).items()}


def ratio_per_repeat(reference: Sequence[Sequence[float]], variant: Sequence[Sequence[float]]) -> dict:
    """Speed-up of ``variant`` over ``reference`` (p50 of the reference / p50 of the variant), per repeat;
    repeats are paired (the same texts, the same round): ``{"median", "low", "high"}``."""
    if len(reference) != len(variant) or not reference:
        raise ValueError("speed-up needs the same, non-zero number of repeats for both variants")
    ratios = [float(np.percentile(_ms(r), 50) / np.percentile(_ms(v), 50)) for r, v in zip(reference, variant)]
    return stats.median_with_interval(ratios)


def measure(fn: Callable[[int], object], warmup: int, min_iterations: int, min_seconds: float,
            clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Seconds per call of ``fn(i)`` after ``warmup`` untimed calls, until BOTH ``min_iterations`` calls
    and ``min_seconds`` seconds of timed calls are reached.

    ``i`` counts calls from 0 (warm-up included), so ``fn`` can cycle through inputs.
    """
    if warmup < 0 or min_iterations < 1 or min_seconds < 0:
        raise ValueError("warmup >= 0, min_iterations >= 1 and min_seconds >= 0 are required")
    for i in range(warmup):
        fn(i)
    values: list[float] = []
    started = clock()
    i = warmup
    while len(values) < min_iterations or clock() - started < min_seconds:
        t0 = clock()
        fn(i)
        values.append(clock() - t0)
        i += 1
    return values


def timer_overhead(iterations: int = 10_000, clock: Callable[[], float] = time.perf_counter) -> float:
    """Mean seconds the timing itself adds per call (an empty function through :func:`measure`)."""
    values = measure(lambda i: None, warmup=100, min_iterations=iterations, min_seconds=0.0, clock=clock)
    return float(np.mean(values))


def throughput(samples: int, tokens: int, seconds: float) -> dict:
    """samples/s and (real, non-padding) tokens/s for ``samples`` processed in ``seconds``."""
    if seconds <= 0 or not math.isfinite(seconds):
        raise ValueError(f"seconds must be a positive finite number, got {seconds!r}")
    return {"samples_per_s": samples / seconds, "tokens_per_s": tokens / seconds}


def rate_interval(samples: Sequence[float], seconds: Sequence[float], resamples: int = 1000, seed: int = 0,
                  confidence: float = stats.CONFIDENCE) -> list | None:
    """95 % percentile-bootstrap interval of a throughput (sum of ``samples`` over sum of ``seconds``) from its
    calls (one batch each), resampled with replacement; None for fewer than 2 calls. It says how much the rate
    depends on which batches were timed (their lengths, the machine during each); the batches of one sweep."""
    x, t = np.asarray(samples, dtype=np.float64), np.asarray(seconds, dtype=np.float64)
    if x.size != t.size:
        raise ValueError(f"{x.size} sample counts for {t.size} call times")
    if x.size < 2:
        return None
    idx = np.random.default_rng(seed).integers(0, x.size, size=(resamples, x.size))
    rates = x[idx].sum(axis=1) / np.maximum(t[idx].sum(axis=1), 1e-12)
    tail = (1 - confidence) / 2
    low, high = np.quantile(rates, [tail, 1 - tail])
    return [float(low), float(high)]


def cost_per_1k_texts(samples_per_s: float, price_per_hour: float) -> float:
    """USD per 1,000 classified texts for a machine costing ``price_per_hour`` that classifies
    ``samples_per_s`` texts per second (the one cost unit every kind shares)."""
    if not math.isfinite(samples_per_s) or samples_per_s <= 0:
        raise ValueError(f"samples_per_s must be a finite number > 0, got {samples_per_s!r}")
    if not math.isfinite(price_per_hour) or price_per_hour < 0:
        raise ValueError(f"price_per_hour must be >= 0, got {price_per_hour!r}")
    return price_per_hour / 3600.0 / samples_per_s * 1000.0
