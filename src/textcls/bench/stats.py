"""Distribution-free intervals for timings: order statistics, no normality assumed.

Timings are skewed and heavy-tailed, so every interval here comes from order statistics and the
binomial distribution (the count of values below the true q-quantile of ``n`` independent draws
is Binomial(n, q)); the same construction as :func:`scipy.stats.quantile_test`'s
``confidence_interval``.

- :func:`quantile_interval`: a two-sided interval for the q-quantile (e.g. the median of the
  per-repeat p50s, with its 95 % interval over the repeats).
- :func:`quantile_upper_bound`: a one-sided upper confidence bound for a tail percentile (p95, p99)
  of the pooled calls; ``None`` when there are too few calls to claim it at all
  (:func:`calls_needed`: 299 calls for a p99 bound at 95 %, 59 for p95).
"""

from __future__ import annotations

import math

import numpy as np

CONFIDENCE = 0.95


def _check(values, q: float, confidence: float) -> np.ndarray:
    x = np.sort(np.asarray(values, dtype=np.float64))
    if x.size == 0:
        raise ValueError("no values: measure at least one")
    if not 0 < q < 1 or not 0 < confidence < 1:
        raise ValueError(f"q and confidence must lie in (0, 1), got q={q!r}, confidence={confidence!r}")
    return x


def calls_needed(q: float, confidence: float = CONFIDENCE) -> int:
    """The fewest values whose maximum is a ``confidence`` upper bound of the q-quantile: the n with
    ``1 - q**n >= confidence``."""
    if not 0 < q < 1 or not 0 < confidence < 1:
        raise ValueError(f"q and confidence must lie in (0, 1), got q={q!r}, confidence={confidence!r}")
    return math.ceil(math.log(1 - confidence) / math.log(q) - 1e-12)


def quantile_upper_bound(values, q: float, confidence: float = CONFIDENCE) -> float | None:
    """The smallest order statistic X(k) with P(X(k) >= true q-quantile) >= ``confidence``; None when even
    the maximum is not (fewer than :func:`calls_needed` values)."""
    from scipy.stats import binom

    x = _check(values, q, confidence)
    n = x.size
    # X(k) >= x_q  <=>  at most k-1 values fall below x_q;  that count ~ Binomial(n, q)
    k = int(binom.ppf(confidence, n, q)) + 1
    while k > 1 and binom.cdf(k - 2, n, q) >= confidence:  # ppf is a float search: step to the exact k
        k -= 1
    while k <= n and binom.cdf(k - 1, n, q) < confidence:
        k += 1
    return float(x[k - 1]) if k <= n else None


def quantile_interval(values, q: float = 0.5, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """[X(l), X(u)] covering the true q-quantile with probability >= ``confidence`` (equal tails); None when
    ``values`` are too few for that confidence (e.g. a median from fewer than 6 values at 95 %)."""
    from scipy.stats import binom

    x = _check(values, q, confidence)
    n = x.size
    tail = (1 - confidence) / 2
    cdf = binom.cdf(np.arange(n + 1), n, q)  # cdf[j] = P(count <= j)
    # lower: the largest l with P(X(l) > x_q) = P(count <= l-1) <= tail
    lows = np.flatnonzero(cdf[:n] <= tail)
    # upper: the smallest u with P(X(u) >= x_q) = P(count <= u-1) >= 1 - tail
    highs = np.flatnonzero(cdf[:n] >= 1 - tail)
    if lows.size == 0 or highs.size == 0:
        return None
    low, high = int(lows[-1]) + 1, int(highs[0]) + 1
    return float(x[low - 1]), float(x[high - 1])


def median_with_interval(values, confidence: float = CONFIDENCE) -> dict:
    """``{"median", "low", "high"}`` over ``values`` (one per repeat); low/high None when too few repeats."""
    x = np.asarray(values, dtype=np.float64)
    interval = quantile_interval(x, 0.5, confidence)
    low, high = interval if interval is not None else (None, None)
    return {"median": float(np.median(x)), "low": low, "high": high}
