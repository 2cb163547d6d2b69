"""Timing: a warm-up-then-measure loop and latency statistics (in the spirit of optimum-benchmark).

The loop runs ``warmup`` untimed calls, then times calls until BOTH ``min_iterations``
calls and ``min_seconds`` seconds are reached. On a GPU the timed function must
synchronise itself (the backends do), so ``perf_counter`` brackets finished work.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import numpy as np

LATENCY_UNIT = "ms"


@dataclasses.dataclass(frozen=True)
class Latency:
    """Summary of per-call latencies, in milliseconds."""

    count: int
    mean: float
    stdev: float
    p50: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float

    @classmethod
    def from_values(cls, seconds: list[float] | np.ndarray) -> "Latency":
        """Statistics of ``seconds`` (one value per call), reported in ms."""
        values = np.asarray(seconds, dtype=np.float64) * 1000.0
        if values.size == 0:
            raise ValueError("no latency values: measure at least one call")
        if not np.isfinite(values).all() or (values < 0).any():
            raise ValueError("latencies must be finite and >= 0 (did the clock go backwards?)")
        p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
        stdev = float(values.std(ddof=1)) if values.size > 1 else 0.0
        return cls(count=int(values.size), mean=float(values.mean()), stdev=stdev, p50=float(p50),
                   p90=float(p90), p95=float(p95), p99=float(p99), min=float(values.min()),
                   max=float(values.max()))

    def to_dict(self, digits: int = 4) -> dict:
        return {k: (round(v, digits) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}


def measure(fn: Callable[[int], object], warmup: int, min_iterations: int, min_seconds: float,
            clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Seconds per call of ``fn(i)`` after ``warmup`` untimed calls.

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


def cost_per_million_tokens(tokens_per_s: float, price_per_hour: float) -> float:
    """USD per 1 M tokens for a machine costing ``price_per_hour`` processing ``tokens_per_s``."""
    if not math.isfinite(tokens_per_s) or tokens_per_s <= 0:
        raise ValueError(f"tokens_per_s must be a finite number > 0, got {tokens_per_s!r}")
    if not math.isfinite(price_per_hour) or price_per_hour < 0:
        raise ValueError(f"price_per_hour must be >= 0, got {price_per_hour!r}")
    return price_per_hour / (tokens_per_s * 3600.0) * 1e6
