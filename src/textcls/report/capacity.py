"""Capacity and total cost: how many replicas of each benchmarked variant serve the ``capacity:`` traffic within
its p95 target, what they cost per month, and below which traffic an LLM API (billed for the full few-shot
prompt) would cost less. Every price comes from params (``benchmark.price_per_hour``,
``capacity.llm_api_price_per_1m_tokens``) and is the user's to set; nothing here invents one.

The serving model, per (dataset, entry, device, variant) and measured batch size ``b`` (the benchmark's
throughput sweep: ``samples_per_s`` of back-to-back batches of ``b`` test texts, tokenization included):

- one replica serves ``s_b`` texts/s flat out; it is planned at most ``max_utilisation`` busy, so
  ``replicas = max(1, ceil(requests_per_s / (max_utilisation * s_b)))``;
- a request waits for its batch to fill, then for the batch to run. Each replica receives
  ``requests_per_s / replicas`` requests/s, so the first request of a batch waits ``(b - 1)`` arrivals; the batch
  runs ``b / s_b`` seconds on average. The p95 estimate is ``fill + (b / s_b) * tail``, where ``tail`` is the
  batch-1 ratio of the p95 bound to the mean latency. At batch 1 there is no fill and the p95 is the measured one
  (its 95 % upper bound). Queueing delay is not modelled (``max_utilisation`` is the headroom for it), nor is a
  batching timeout (batches are assumed to fill);
- the plan is the batch size meeting ``p95_target_ms`` with the fewest replicas. A variant whose batch-1 p95
  bound misses the target gets no plan: no batch size can help it.

``cost_per_month = replicas * price_per_hour[device] * hours_per_month``. The API bills, per text, the few-shot
entry's measured ``prompt_tokens_per_example`` (its full prompt, as an API without prefix caching bills it: the
mean over that entry's seeded sample of the test split; per-text cost is linear in tokens, so the mean is what
counts) at the input price, plus ``llm_api_output_tokens_per_text`` at the output price. Self-hosting costs a
whole replica from the first request, so the API is cheaper at low traffic: the break-even is the traffic above
which self-hosting (under the same plan rule at that traffic) never costs more than the API.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd

from textcls.errors import TextclsError

SECONDS_PER_HOUR = 3600.0
MAX_STEPS = 10_000  # break-even search: breakpoints of the replica count per batch size, beyond which it stops
_EPS = 1e-9  # float slack for ceil (r / capacity exactly an integer)


@dataclass(frozen=True)
class Curve:
    """What the benchmark measured for one variant: per-replica throughput by batch size, batch-1 latency."""

    throughput: dict[int, float]  # batch size -> texts/s of one replica flat out
    p95_ms: float  # batch-1 end-to-end p95 (its 95 % upper bound where measured)
    mean_ms: float  # batch-1 end-to-end mean

    @property
    def tail(self) -> float:
        """p95 over mean at batch 1 (>= 1): how much slower than its mean a p95 batch is assumed to be."""
        return max(1.0, self.p95_ms / self.mean_ms) if self.mean_ms > 0 else 1.0


@dataclass(frozen=True)
class BatchOption:
    batch_size: int
    samples_per_s: float  # one replica, flat out (measured)
    batch_ms: float  # mean time of one batch: batch_size / samples_per_s
    replicas: int
    fill_ms: float  # the first request of a batch waits this long for the rest to arrive
    p95_ms: float  # estimated (batch 1: measured bound)
    fits: bool  # p95_ms <= the target


@dataclass(frozen=True)
class Plan:
    options: list[BatchOption]
    chosen: Optional[BatchOption]  # None: the batch-1 p95 misses the target


@dataclass(frozen=True)
class ApiComparison:
    """Self-hosting one variant vs an LLM API called with the few-shot entry ``llm``'s prompt."""

    llm: str
    input_tokens_per_text: Optional[float]
    output_tokens_per_text: int
    cost_per_1k_texts_usd: Optional[float] = None
    cost_per_month_usd: Optional[float] = None  # at the profile's traffic
    cheaper_at_profile: Optional[bool] = None
    break_even_requests_per_s: Optional[float] = None  # the API is cheaper below it, never above
    break_even_texts_per_month: Optional[float] = None
    cheaper_always: bool = False  # the API costs less at every traffic
    reason: str = ""  # why no number (or what it means)


@dataclass(frozen=True)
class CapacityRow:
    dataset: str
    entry: str
    device: str
    variant: str
    accuracy: Optional[float]  # served test accuracy of the variant
    status: str  # planned | misses_p95_at_batch_1 | not_measured
    reason: str = ""
    price_per_hour_usd: Optional[float] = None
    batch1_p95_ms: Optional[float] = None
    batch_size: Optional[int] = None
    samples_per_s: Optional[float] = None  # one replica at that batch size
    p95_ms: Optional[float] = None  # estimated at the profile's traffic
    replicas: Optional[int] = None
    cost_per_month_usd: Optional[float] = None
    cost_per_1k_texts_usd: Optional[float] = None  # at the profile's traffic (idle capacity included)
    options: list[BatchOption] = field(default_factory=list)
    api: list[ApiComparison] = field(default_factory=list)


@dataclass(frozen=True)
class Prompt:
    """A few-shot entry's billed prompt on one data set (from its eval metrics)."""

    llm: str
    tokens_per_text: float
    texts: int  # test texts it was measured on
    mean_words: Optional[float] = None  # mean length of those texts


@dataclass(frozen=True)
class TextLengths:
    """Words per text of a data set's test split: the traffic's text-length profile."""

    texts: int
    mean: float
    p50: float
    p95: float
    max: int


def _ceil(x: float) -> int:
    return max(1, math.ceil(x - _EPS))


def plan(curve: Curve, requests_per_s: float, p95_target_ms: float, max_utilisation: float) -> Plan:
    """Every measured batch size's replicas and estimated p95 at ``requests_per_s``, and the chosen one."""
    if not curve.throughput:
        raise TextclsError("no throughput measured. Fix: rerun the benchmark stage (its batch-size sweep).")
    options = []
    for b in sorted(curve.throughput):
        s = curve.throughput[b]
        if s <= 0:
            raise TextclsError(f"throughput {s} texts/s at batch size {b} is not positive. Fix: rerun the benchmark.")
        n = _ceil(requests_per_s / (max_utilisation * s))
        fill = 1000.0 * (b - 1) * n / requests_per_s
        batch_ms = 1000.0 * b / s
        p95 = curve.p95_ms if b == 1 else fill + batch_ms * curve.tail
        options.append(BatchOption(b, s, batch_ms, n, fill, p95, p95 <= p95_target_ms))
    one = next((o for o in options if o.batch_size == 1), None)
    if one is None or not one.fits:
        return Plan(options, None)
    chosen = min((o for o in options if o.fits), key=lambda o: (o.replicas, o.p95_ms, o.batch_size))
    return Plan(options, chosen)


def break_even(curve: Curve, q: float, p95_target_ms: float, max_utilisation: float,
               max_steps: int = MAX_STEPS) -> tuple[Optional[float], bool, str]:
    """The traffic (requests/s) above which self-hosting never costs more than the API: ``(x, always, reason)``.

    ``q`` = price_per_hour / (3600 * API cost per text): the traffic at which the API's bill equals one replica's.
    The API is cheaper at traffic ``x`` iff ``x < replicas(x) * q``. Serving at batch 1 (always possible when a
    plan exists) needs ``ceil(x / C1)`` replicas, ``C1 = max_utilisation * s_1``: the API is then cheaper below
    ``k * q``, ``k`` the largest integer with ``k * q > (k - 1) * C1`` (steps of whole replicas). Batching only
    lowers the replica count, so that is an upper bound; the exact value comes from the planner evaluated on every
    interval where its replica count is constant, up to that bound."""
    if q <= 0:
        return 0.0, False, "the machine is free (price_per_hour 0): the API is never cheaper"
    if math.isinf(q):
        return None, True, "the API is free (prices 0): it is cheaper at every traffic"
    full = {b: max_utilisation * s for b, s in curve.throughput.items()}
    c1 = full[1]
    if q >= max(full.values()):
        return None, True, ("the API costs less per text than a replica at its planned utilisation: it is cheaper "
                            "at every traffic")
    if q >= c1:
        return None, False, ("the API costs less per text than batch-1 serving, more than batched serving: no "
                             "single break-even (see cheaper_at_profile)")
    k = max(1, math.ceil(c1 / (c1 - q)) - 1)
    while k > 1 and not k * q > (k - 1) * c1:
        k -= 1
    while (k + 1) * q > k * c1:
        k += 1
    bound = k * q
    if sum(bound / c + 1 for c in full.values()) * 2 > max_steps:
        return bound, False, f"upper bound from batch-1 serving (exact search skipped: over {max_steps} steps)"
    points = {bound}
    for b, c in full.items():
        slack = p95_target_ms - 1000.0 * b / curve.throughput[b] * curve.tail
        for n in range(1, math.ceil(bound / c) + 2):
            points.add(n * c)
            if b > 1 and slack > 0:
                points.add(1000.0 * (b - 1) * n / slack)  # where batches of b start to fill in time with n replicas
    points = sorted(p for p in points if 0 < p <= bound)

    def replicas(x: float) -> int:
        return plan(curve, x, p95_target_ms, max_utilisation).chosen.replicas

    best, low = 0.0, 0.0
    for high in points:
        n = replicas((low + high) / 2)
        if low < n * q:
            best = max(best, min(high, n * q))
        if high < replicas(high) * q:
            best = max(best, high)
        low = high
    return best, False, "the API is cheaper below this traffic, never above it"


def api_cost_per_text(tokens_in: float, tokens_out: int, price_in: Optional[float],
                      price_out: Optional[float]) -> tuple[Optional[float], str]:
    """USD per text at the API's prices (USD per 1M tokens), or None and why."""
    if price_in is None:
        return None, ("capacity.llm_api_price_per_1m_tokens.input is null: set your API's price (USD per 1M input "
                      "tokens) to compare")
    if price_out is None and tokens_out > 0:
        return None, ("capacity.llm_api_price_per_1m_tokens.output is null: set your API's price (USD per 1M "
                      "output tokens), or llm_api_output_tokens_per_text to 0")
    return (tokens_in * price_in + tokens_out * (price_out or 0.0)) / 1e6, ""


def compare_api(curve: Curve, chosen: BatchOption, prompt: Prompt, cfg, price_per_hour: float) -> ApiComparison:
    """One variant's plan against the API called with ``prompt`` (``cfg``: the ``capacity:`` params)."""
    prices = cfg.llm_api_price_per_1m_tokens
    tokens_out = cfg.llm_api_output_tokens_per_text
    base = dict(llm=prompt.llm, input_tokens_per_text=prompt.tokens_per_text, output_tokens_per_text=tokens_out)
    per_text, why = api_cost_per_text(prompt.tokens_per_text, tokens_out, prices.input, prices.output)
    if per_text is None:
        return ApiComparison(**base, reason=why)
    texts_per_month = cfg.requests_per_s * SECONDS_PER_HOUR * cfg.hours_per_month
    api_month = per_text * texts_per_month
    self_month = chosen.replicas * price_per_hour * cfg.hours_per_month
    q = price_per_hour / (SECONDS_PER_HOUR * per_text) if per_text > 0 else math.inf
    x, always, reason = break_even(curve, q, cfg.p95_target_ms, cfg.max_utilisation)
    return ApiComparison(**base, cost_per_1k_texts_usd=per_text * 1000, cost_per_month_usd=api_month,
                         cheaper_at_profile=api_month < self_month, break_even_requests_per_s=x,
                         break_even_texts_per_month=None if x is None else x * SECONDS_PER_HOUR * cfg.hours_per_month,
                         cheaper_always=always, reason=reason)


def curve_of(variant: dict) -> Optional[Curve]:
    """The :class:`Curve` of one benchmark variant (benchmark JSON), None when it has no throughput or latency."""
    latency = variant.get("latency_ms") or {}
    p95 = latency.get("p95_upper") if latency.get("p95_upper") is not None else latency.get("p95")
    mean = latency.get("mean") if latency.get("mean") is not None else latency.get("p50")
    sweep = {int(b): float(v["samples_per_s"]) for b, v in (variant.get("throughput") or {}).items()
             if v.get("samples_per_s")}
    if not sweep and variant.get("batch_size") == 1 and variant.get("samples_per_s"):
        sweep = {1: float(variant["samples_per_s"])}  # e.g. the few-shot LLM: served one text at a time only
    if p95 is None or mean is None or 1 not in sweep:
        return None
    return Curve(sweep, float(p95), float(mean))


def rows_for(dataset: str, entry: str, bench: dict, prompts: list[Prompt], cfg, price_per_hour: dict) -> list[CapacityRow]:
    """Every measured (device, variant) of one entry's benchmark JSON, planned at the ``capacity:`` traffic."""
    rows = []
    for device in ("cpu", "cuda"):
        block = bench.get(device) or {}
        if block.get("status") != "measured":
            continue
        price = price_per_hour[device]
        for variant, measured in (block.get("variants") or {}).items():
            common = dict(dataset=dataset, entry=entry, device=device, variant=variant,
                          accuracy=measured.get("accuracy"), price_per_hour_usd=price)
            curve = curve_of(measured)
            if curve is None:
                rows.append(CapacityRow(**common, status="not_measured",
                                        reason="no batch-1 latency or throughput in the benchmark JSON"))
                continue
            p = plan(curve, cfg.requests_per_s, cfg.p95_target_ms, cfg.max_utilisation)
            if p.chosen is None:
                rows.append(CapacityRow(
                    **common, status="misses_p95_at_batch_1", batch1_p95_ms=curve.p95_ms, options=p.options,
                    reason=(f"batch-1 p95 ≤ {curve.p95_ms:.3g} ms is over the {cfg.p95_target_ms:g} ms target: "
                            "no batch size or replica count meets it")))
                continue
            c = p.chosen
            month = c.replicas * price * cfg.hours_per_month
            per_1k = month / (cfg.requests_per_s * SECONDS_PER_HOUR * cfg.hours_per_month) * 1000
            api = [compare_api(curve, c, prompt, cfg, price) for prompt in prompts]
            rows.append(CapacityRow(**common, status="planned", batch1_p95_ms=curve.p95_ms, batch_size=c.batch_size,
                                    samples_per_s=c.samples_per_s, p95_ms=c.p95_ms, replicas=c.replicas,
                                    cost_per_month_usd=month, cost_per_1k_texts_usd=per_1k, options=p.options,
                                    api=api))
    return rows


def text_lengths(words: np.ndarray) -> Optional[TextLengths]:
    if len(words) == 0:
        return None
    return TextLengths(int(len(words)), float(np.mean(words)), float(np.quantile(words, 0.5)),
                       float(np.quantile(words, 0.95)), int(np.max(words)))


def build(entries, read_bench: Callable[[str, str], Optional[dict]], read_eval: Callable[[str, str], Optional[dict]],
          cfg, price_per_hour: dict, words: Callable[[str], Optional[pd.Series]] = lambda ds: None,
          llm_rows: Callable[[str, str], Optional[np.ndarray]] = lambda ds, name: None) -> dict:
    """The capacity report (JSON-ready) of every declared entry (:func:`textcls.config.params.declared_entries`).

    ``read_bench`` / ``read_eval``: (dataset, entry) -> its benchmark / eval JSON (None: missing). ``words``:
    dataset -> words per test text indexed by row (None: unknown); ``llm_rows``: the test rows an LLM entry was
    scored on."""
    datasets: dict[str, dict] = {}
    for ds in dict.fromkeys(e.dataset for e in entries):
        counts = words(ds)
        prompts = []
        for e in (e for e in entries if e.dataset == ds and e.kind == "llm"):
            metrics = read_eval(ds, e.name) or {}
            tokens = metrics.get("prompt_tokens_per_example")
            if tokens is None:
                continue
            rows = llm_rows(ds, e.name)
            mean_words = (float(np.mean(counts.loc[rows])) if counts is not None and rows is not None and len(rows)
                          else None)
            prompts.append(Prompt(e.name, float(tokens), int(metrics.get("test_rows") or 0), mean_words))
        rows = []
        for e in (e for e in entries if e.dataset == ds):
            bench = read_bench(ds, e.name)
            if bench is not None:
                rows.extend(rows_for(ds, e.name, bench, prompts, cfg, price_per_hour))
        lengths = text_lengths(counts.to_numpy()) if counts is not None else None
        datasets[ds] = {"text_lengths": None if lengths is None else asdict(lengths),
                        "prompts": [asdict(p) for p in prompts],
                        "rows": [asdict(r) for r in rows]}
    prices = cfg.llm_api_price_per_1m_tokens
    return {
        "profile": {"requests_per_s": cfg.requests_per_s, "p95_target_ms": cfg.p95_target_ms,
                    "hours_per_month": cfg.hours_per_month, "max_utilisation": cfg.max_utilisation,
                    "texts_per_month": cfg.requests_per_s * SECONDS_PER_HOUR * cfg.hours_per_month,
                    "text_lengths": "the test split's (words per text under datasets.<name>.text_lengths)",
                    "llm_api_output_tokens_per_text": cfg.llm_api_output_tokens_per_text},
        "prices": {"note": "every price is yours to set in params.yaml; null = not set (nothing computed from it)",
                   "machine_usd_per_hour": dict(price_per_hour),
                   "machine_source": "benchmark.price_per_hour",
                   "llm_api_usd_per_1m_tokens": {"input": prices.input, "output": prices.output},
                   "llm_api_source": "capacity.llm_api_price_per_1m_tokens"},
        "datasets": datasets,
    }


# --- Markdown ---------------------------------------------------------------------------------

def _usd(x: Optional[float]) -> str:
    if x is None:
        return ""
    return f"${x:,.0f}" if x >= 100 else f"${x:,.2f}" if x >= 0.01 else f"${x:.2g}"


def _num(x: Optional[float], digits: int = 3) -> str:
    if x is None:
        return ""
    return f"{x:,.0f}" if abs(x) >= 10 ** digits else f"{x:.{digits}g}"


def _price(x: Optional[float]) -> str:
    return "not set" if x is None else f"${x:g}"


def to_markdown(report: dict) -> str:
    """``metrics/capacity.md``: the profile and prices, then per data set the plan of every variant and the API."""
    prof, prices = report["profile"], report["prices"]
    machine = ", ".join(f"{d} {_price(p)}/h" for d, p in prices["machine_usd_per_hour"].items())
    api = prices["llm_api_usd_per_1m_tokens"]
    lines = [
        "# Capacity and cost", "",
        f"Traffic (`capacity:` in params.yaml): {_num(prof['requests_per_s'])} requests/s "
        f"({prof['texts_per_month']:,.0f} texts a month of {prof['hours_per_month']:g} h), texts as long as the "
        f"test split's, p95 target {prof['p95_target_ms']:g} ms end to end, replicas planned at most "
        f"{prof['max_utilisation'] * 100:g} % busy.", "",
        f"**Prices are yours to set** (placeholders until you do): machines {machine} (`benchmark.price_per_hour`); "
        f"LLM API input {_price(api['input'])}, output {_price(api['output'])} per 1M tokens "
        f"(`capacity.llm_api_price_per_1m_tokens`), {prof['llm_api_output_tokens_per_text']} output tokens per text.",
        "",
        "Per variant: the measured batch size that meets the p95 target with the fewest replicas (p95 estimated as "
        "batch fill time + mean batch time × the batch-1 p95/mean ratio; batch 1: the measured p95 bound), the "
        "replicas, their cost per month and per 1,000 texts at this traffic. Method and limits: "
        "[docs/benchmark.md](../docs/benchmark.md#capacity-and-cost-per-month).",
    ]
    for ds, block in report["datasets"].items():
        lines += ["", f"## {ds}", ""]
        lengths = block["text_lengths"]
        if lengths:
            lines.append(f"Test split: {lengths['texts']} texts, words per text mean {lengths['mean']:.1f}, "
                         f"p50 {lengths['p50']:g}, p95 {lengths['p95']:g}, max {lengths['max']}.")
        else:
            lines.append("Test split text lengths: not available (no prepared data).")
        for p in block["prompts"]:
            seen = f", mean {p['mean_words']:.1f} words" if p["mean_words"] is not None else ""
            lines.append(f"LLM API prompt: `{p['llm']}`'s few-shot prompt, {p['tokens_per_text']:.1f} tokens per "
                         f"text (measured on {p['texts']} test texts{seen}).")
        if not block["prompts"]:
            lines.append("No few-shot `llms:` entry measured a prompt on this data set: no API comparison.")
        lines += ["", "| model | device | variant | served accuracy | batch size | texts/s per replica | "
                  "est. p95 (ms) | replicas | cost / month | cost / 1k texts |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in block["rows"]:
            acc = f"{r['accuracy']:.4f}" if r["accuracy"] is not None else ""
            if r["status"] != "planned":
                lines.append(f"| {r['entry']} | {r['device']} | {r['variant']} | {acc} | | | | none: {r['reason']} | | |")
                continue
            lines.append(f"| {r['entry']} | {r['device']} | {r['variant']} | {acc} | {r['batch_size']} | "
                         f"{_num(r['samples_per_s'])} | {_num(r['p95_ms'])} | {r['replicas']} | "
                         f"{_usd(r['cost_per_month_usd'])} | {_usd(r['cost_per_1k_texts_usd'])} |")
        api_rows = [(r, a) for r in block["rows"] for a in r["api"]]
        reasons = {a["reason"] for _, a in api_rows if a["cost_per_1k_texts_usd"] is None}
        if api_rows and len(reasons) == 1 and all(a["cost_per_1k_texts_usd"] is None for _, a in api_rows):
            lines += ["", f"LLM API vs self-hosting: not computed: {reasons.pop()}."]
        elif api_rows:
            lines += ["", "LLM API vs self-hosting (cost only: the API's accuracy is not measured here):", "",
                      "| model | device | variant | API prompt | API cost / 1k texts | API cost / month | "
                      "API cheaper now? | API cheaper below | i.e. texts / month |",
                      "|---|---|---|---|---:|---:|---|---:|---:|"]
            for r, a in api_rows:
                if a["cost_per_1k_texts_usd"] is None:
                    lines.append(f"| {r['entry']} | {r['device']} | {r['variant']} | {a['llm']} | not computed | | | "
                                 f"{a['reason']} | |")
                    continue
                now = "yes" if a["cheaper_at_profile"] else "no"
                if a["cheaper_always"]:
                    below, texts = "any traffic", ""
                elif a["break_even_requests_per_s"] is None:
                    below, texts = a["reason"], ""
                else:
                    below = f"{_num(a['break_even_requests_per_s'])} req/s"
                    texts = f"{a['break_even_texts_per_month']:,.0f}"
                lines.append(f"| {r['entry']} | {r['device']} | {r['variant']} | {a['llm']} | "
                             f"{_usd(a['cost_per_1k_texts_usd'])} | {_usd(a['cost_per_month_usd'])} | {now} | "
                             f"{below} | {texts} |")
    lines += ["", "Devices a benchmark did not measure on this machine are left out."]
    return "\n".join(lines) + "\n"


def _cheaper(row: dict, than: dict) -> bool:
    """Lower cost per month, then higher served accuracy."""
    return (row["cost_per_month_usd"], -(row["accuracy"] or 0)) < (than["cost_per_month_usd"], -(than["accuracy"] or 0))


def summary_rows(report: dict) -> str:
    """The cheapest planned variant per (dataset, entry), the most accurate among equally cheap ones, with its first
    API comparison: the key rows the PR report shows."""
    lines = ["| dataset | model | device · variant | replicas | cost / month | cost / 1k texts | API cheaper below |",
             "|---|---|---|---:|---:|---:|---|"]
    for ds, block in report["datasets"].items():
        by_entry: dict[str, Optional[dict]] = {}
        for r in block["rows"]:
            best = by_entry.setdefault(r["entry"], None)
            if r["status"] == "planned" and (best is None or _cheaper(r, best)):
                by_entry[r["entry"]] = r
        for entry, r in by_entry.items():
            if r is None:
                lines.append(f"| {ds} | {entry} | no variant meets the p95 target | — | | | |")
                continue
            lines.append(f"| {ds} | {entry} | {r['device']} · {r['variant']} (batch {r['batch_size']}) | "
                         f"{r['replicas']} | {_usd(r['cost_per_month_usd'])} | {_usd(r['cost_per_1k_texts_usd'])} | "
                         f"{_api_cell(r['api'][0]) if r['api'] else 'no LLM prompt measured'} |")
    return "\n".join(lines)


def _api_cell(a: dict) -> str:
    if a["cost_per_1k_texts_usd"] is None:
        return "not computed: API price not set"
    if a["cheaper_always"]:
        return "any traffic"
    if a["break_even_requests_per_s"] is None:
        return a["reason"]
    return f"{_num(a['break_even_requests_per_s'])} req/s ({a['break_even_texts_per_month']:,.0f} texts / month)"


def pr_section(report: Optional[dict], path: str = "metrics/capacity.md") -> str:
    """The PR report's ``## Capacity and cost``: the traffic, the prices (the user's), the key rows, a link."""
    if report is None:
        return f"## Capacity and cost\n\n`{path}` is missing: run `make repro` to create it."
    md = to_markdown(report).split("\n")
    intro = [line for line in md[2:6] if line]  # the traffic and the prices
    return "\n\n".join(["## Capacity and cost", *intro, summary_rows(report),
                         f"Every variant, with the LLM API comparison: `{path}`."])


def read_inputs(entries, bench_dir: str | Path, eval_dir: str | Path, prepared_dir: Optional[str | Path],
                predictions_dir: Optional[str | Path]) -> dict:
    """The readers :func:`build` takes, over the pipeline's folders (a missing file reads as None)."""
    from textcls.io import read_json

    def reader(folder):
        def read(ds: str, name: str):
            path = Path(folder) / ds / f"{name}.json"
            return read_json(path) if path.is_file() else None
        return read

    def words(ds: str):
        if prepared_dir is None or not (Path(prepared_dir) / ds / "meta.json").is_file():
            return None
        from textcls.data.prepared import Prepared
        from textcls.report.errors import word_counts

        test = Prepared(Path(prepared_dir) / ds).frame("test")
        return pd.Series(word_counts(test["text"]), index=test["row"].to_numpy())

    def llm_rows(ds: str, name: str):
        path = Path(predictions_dir or "") / ds / f"{name}.parquet"
        if predictions_dir is None or not path.is_file():
            return None
        import pyarrow.parquet as pq

        return pq.read_table(path, columns=["row"]).column("row").to_numpy()

    return dict(read_bench=reader(bench_dir), read_eval=reader(eval_dir), words=words, llm_rows=llm_rows)


__all__ = ["ApiComparison", "BatchOption", "CapacityRow", "Curve", "Plan", "Prompt", "TextLengths", "api_cost_per_text",
           "break_even", "build", "compare_api", "curve_of", "plan", "pr_section", "read_inputs", "rows_for",
           "summary_rows",
           "text_lengths", "to_markdown"]
