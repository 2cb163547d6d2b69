"""Run a prompted LLM (``llms:`` entry) over test texts: class probabilities, latency, tokens, cost.

Both backends return the same ``FewShotRun``; the stage turns it into the metrics schema every
other model has (``evaluation``), a benchmark-shaped JSON and predictions.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from textcls.llm import prompting
from textcls.config.params import LLMParams

logger = logging.getLogger(__name__)

WARMUP_CALLS = 2  # untimed queries (demonstration texts) before the timed test texts


@dataclasses.dataclass
class FewShotRun:
    probs: np.ndarray  # [n, classes]; one-hot when the backend returns labels only
    seconds: list  # wall time of each test example (batch 1), tokenization included
    tokens_processed: int  # tokens the model actually ran (local: the cached prefix counted once)
    prompt_tokens_per_example: float  # what an API without prefix caching bills per example (mean)
    invalid_answers: int = 0  # answers that named no class (http): mapped to the most frequent train class
    prefix_s: float = 0.0  # local: time to run the shared few-shot prefix once
    params: int | None = None  # local: model parameters
    model_rss_mb: float | None = None  # local: resident memory the loaded model added
    probabilities: str = "softmax over the class names' log-likelihoods"


def truncate_words(text: str, max_words: int) -> str:
    words = prompting.one_line(text).split(" ")
    return " ".join(words[:max_words])


def run_local(cfg: LLMParams, weights: Path, label_names: list[str], demos: list[tuple[str, int]],
              texts: list[str], device: str, validation_texts: list[str] = ()) -> tuple[FewShotRun, FewShotRun | None]:
    """Score every class name after prefix + query with a local causal LM (prefix cached once): the run over
    ``texts`` (the test rows: every number of the entry) and, when there are ``validation_texts``, the same scoring
    of those (their class probabilities and call times; for the cascades' thresholds)."""
    import psutil
    from tqdm.auto import tqdm

    from textcls.llm.local import LabelScorer

    rss_before = psutil.Process().memory_info().rss
    scorer = LabelScorer(weights, device, cfg.trust_remote_code, cfg.precision)
    shots = [(scorer.truncate(prompting.one_line(t), cfg.max_text_tokens), label_names[y]) for t, y in demos]
    start = time.perf_counter()
    scorer.set_prefix(prompting.build_prefix(cfg.instruction, label_names, shots))
    prefix_s = time.perf_counter() - start
    rss_mb = (psutil.Process().memory_info().rss - rss_before) / 2**20
    continuations = [prompting.label_continuation(n) for n in label_names]
    label_tokens = np.array([len(scorer.encode(c)) for c in continuations])
    for text, _ in demos[:WARMUP_CALLS]:  # warm-up (untimed), as every other kind gets
        scorer.score(prompting.build_query(scorer.truncate(prompting.one_line(text), cfg.max_text_tokens)), continuations)

    def score(batch: list[str], desc: str) -> FewShotRun:
        scores, seconds, tokens, billed = np.empty((len(batch), len(label_names))), [], scorer.prefix_tokens, 0
        for i, text in enumerate(tqdm(batch, desc=desc, unit="text", leave=False)):
            begin = time.perf_counter()
            query = prompting.build_query(scorer.truncate(prompting.one_line(text), cfg.max_text_tokens))
            row, ran = scorer.score(query, continuations)
            seconds.append(time.perf_counter() - begin)
            scores[i] = row / label_tokens if cfg.label_scoring == "mean" else row
            tokens += ran
            billed += scorer.prefix_tokens + len(scorer.encode(query)) + int(label_tokens.max())
        return FewShotRun(probs=_softmax(scores), seconds=seconds, tokens_processed=int(tokens),
                          prompt_tokens_per_example=billed / max(len(batch), 1), prefix_s=prefix_s,
                          params=scorer.model.num_parameters(), model_rss_mb=round(rss_mb, 1))

    test = score(texts, "few-shot")
    return test, (score(list(validation_texts), "few-shot (validation)") if len(validation_texts) else None)


def run_http(cfg: LLMParams, label_names: list[str], demos: list[tuple[str, int]], texts: list[str],
             fallback: int, validation_texts: list[str] = ()) -> tuple[FewShotRun, FewShotRun | None]:
    """One chat request per text; answers outside the class names count as invalid (-> ``fallback``). Returns the
    run over ``texts`` and, when there are ``validation_texts``, over those."""
    from tqdm.auto import tqdm

    from textcls.llm.http import ChatClassifier

    client = ChatClassifier(cfg.url, cfg.model, cfg.api_key_env, cfg.timeout_s, cfg.structured_output)
    shots = [(truncate_words(t, cfg.max_text_tokens), label_names[y]) for t, y in demos]

    def score(batch: list[str], desc: str) -> FewShotRun:
        probs = np.zeros((len(batch), len(label_names)))
        seconds, tokens, invalid = [], 0, 0
        for i, text in enumerate(tqdm(batch, desc=desc, unit="text", leave=False)):
            messages = prompting.chat_messages(cfg.instruction, label_names, shots,
                                               truncate_words(text, cfg.max_text_tokens))
            begin = time.perf_counter()
            answer, used = client.complete(messages, label_names)
            seconds.append(time.perf_counter() - begin)
            label = prompting.parse_label(answer, label_names)
            if label is None:
                invalid += 1
                label = fallback
            probs[i, label] = 1.0
            tokens += used
        return FewShotRun(probs=probs, seconds=seconds, tokens_processed=tokens,
                          prompt_tokens_per_example=tokens / max(len(batch), 1), invalid_answers=invalid,
                          probabilities="one-hot (the endpoint returns labels, not likelihoods)")

    test = score(texts, "few-shot (http)")
    return test, (score(list(validation_texts), "few-shot (http, validation)") if len(validation_texts) else None)


def costs(run: FewShotRun, price_per_1m_tokens: float | None, price_per_hour: float) -> dict:
    """Cost per 1,000 classified texts (the unit every kind shares): the params' price per billed token
    (an API's) times the tokens billed per text, else the machine's hourly price over the measured speed."""
    total_s = float(sum(run.seconds)) + run.prefix_s
    n = len(run.seconds)
    if price_per_1m_tokens is not None:  # an API's price per billed token
        per_1k = price_per_1m_tokens * run.prompt_tokens_per_example * 1000 / 1e6
        return {"cost_per_1k_texts_usd": round(per_1k, 8), "cost_basis": "llms.*.price_per_1m_tokens"}
    return {"cost_per_1k_texts_usd": round(price_per_hour * total_s / n * 1000 / 3600, 8),
            "cost_basis": "benchmark.price_per_hour over measured speed"}


def _softmax(scores: np.ndarray) -> np.ndarray:
    from scipy.special import softmax

    return softmax(scores, axis=1)
