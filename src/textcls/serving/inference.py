"""Serving a trained model folder (any kind): raw texts in, class scores out.

This is the production path shared by the evaluate and benchmark stages: the model card
(``textcls.json``) names the model's kind (``textcls.kinds``), whose encoder turns raw texts into
inputs per request batch and whose backend returns logits (a transformer: the variants of
``textcls.serving.backends``) or log-probabilities (TF-IDF), so a softmax gives probabilities for every kind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from textcls.records import ModelCard
from textcls.data.tokenization import with_prefix


class Encoder:
    """Raw texts -> tokenizer inputs exactly as serving would (prefix, truncation, padding per batch)."""

    def __init__(self, model_dir: Path, card: ModelCard):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True,
                                                       trust_remote_code=card.trusts_remote_code)
        self.prefix, self.max_length = card.prefix, card.max_length

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        enc = self.tokenizer(with_prefix(texts, self.prefix), truncation=True, max_length=self.max_length,
                             padding=True, return_tensors="np")
        return dict(enc)

    @property
    def input_names(self) -> list[str]:
        return list(self(["a"]).keys())

    @staticmethod
    def real_tokens(batch: dict[str, np.ndarray]) -> int:
        return int(batch["attention_mask"].sum())

    @staticmethod
    def padded_tokens(batch: dict[str, np.ndarray]) -> int:
        """Tokens the model computes on, padding included (batch size x padded length)."""
        return int(batch["input_ids"].size)


def make_encoder(model_dir: Path, card: ModelCard):
    """Raw texts -> the inputs of the model's kind, as serving would encode them."""
    from textcls import kinds

    return kinds.get(card.kind).encoder(model_dir, card)


def build_backend(variant: str | None, model_dir: Path, card: ModelCard, device: str, threads: int,
                  workdir: Path | None):
    """(backend, seconds to prepare it) for one inference variant of the model's kind; None: the kind's
    reference way (``eager_fp32`` for transformers), as evaluation uses it."""
    from textcls import kinds

    kind = kinds.get(card.kind)
    return kind.backend(variant or kind.reference_variant, model_dir, card, device, threads, workdir)


def predict_logits(backend, encoder, texts: list[str], batch_size: int, progress: bool = False) -> np.ndarray:
    """Logits for every text, computed in batches of similar length (less padding), in input order."""
    from tqdm.auto import tqdm

    order = np.argsort([len(t) for t in texts], kind="stable")
    starts = range(0, len(texts), batch_size)
    logits = None
    for start in tqdm(starts, desc="predict", unit="batch", leave=False, disable=not progress):
        idx = order[start:start + batch_size]
        out = np.asarray(backend(encoder([texts[i] for i in idx])), dtype=np.float32)
        if logits is None:
            logits = np.empty((len(texts), out.shape[1]), dtype=np.float32)
        logits[idx] = out
    return logits


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities per row (scipy's softmax: max-shifted, as numerically stable as it gets)."""
    from scipy.special import softmax as scipy_softmax

    return scipy_softmax(logits, axis=1)
