"""Serving a trained model folder (any kind): raw texts in, class scores out.

This is the production path shared by the evaluate and benchmark stages: the model card
(``textcls.json``) says how inputs are encoded (input prefix, max length), an encoder
turns raw texts into inputs per request batch with dynamic padding, and a backend
(``textcls.backends``) returns logits. TF-IDF's backend returns log-probabilities, so a
softmax gives probabilities for every kind.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from textcls import backends, models
from textcls.baseline import TfidfClassifier
from textcls.errors import ModelSourceError
from textcls.io import read_json
from textcls.params import TfidfParams
from textcls.tokenization import with_prefix


def load_card(folder: Path) -> dict:
    card = Path(folder) / models.MODEL_CARD
    if not card.is_file():
        raise ModelSourceError(f"{folder} has no {models.MODEL_CARD}: not a model saved by the train stage. "
                               "Fix: run `dvc repro train` first, or check the path.")
    return read_json(card)


class Encoder:
    """Raw texts -> tokenizer inputs exactly as serving would (prefix, truncation, padding per batch)."""

    def __init__(self, model_dir: Path, card: dict):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True,
                                                       trust_remote_code=models.trusts_remote_code(card))
        self.prefix, self.max_length = card["prefix"], card["max_length"]

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


class TextEncoder:
    """TF-IDF's input is the text itself; its 'tokens' are whitespace words."""

    def __init__(self, card: dict):
        self.prefix = card["prefix"]

    def __call__(self, texts: list[str]) -> list[str]:
        return with_prefix(texts, self.prefix)

    @staticmethod
    def real_tokens(batch: list[str]) -> int:
        return sum(len(t.split()) for t in batch)


def make_encoder(model_dir: Path, card: dict):
    return TextEncoder(card) if card["kind"] == "tfidf" else Encoder(model_dir, card)


def build_backend(variant: str, model_dir: Path, card: dict, device: str, threads: int, workdir: Path | None):
    """(backend, seconds to prepare it). TF-IDF has one variant (scikit-learn) whatever is asked."""
    if card["kind"] == "tfidf":
        start = time.perf_counter()
        clf = TfidfClassifier.load(model_dir, TfidfParams(**card["params"]["tfidf"]))
        return (lambda texts: np.log(np.clip(clf.predict_proba(texts), 1e-12, 1.0))), time.perf_counter() - start
    names = Encoder(model_dir, card).input_names
    return backends.build(variant, model_dir, device, threads, workdir, names)


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
