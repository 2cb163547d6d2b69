"""Load a trained model folder (any kind) and predict class probabilities for raw texts.

This is the production path: raw text in, the model's own tokenizer and input prefix
applied per request batch, dynamic padding, probabilities out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from textcls import models, runtime
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


class TransformerPredictor:
    def __init__(self, folder: Path, card: dict, device: str):
        self.tokenizer, self.model = models.load_trained(folder)
        self.device = device
        self.model.to(device).eval()
        self.prefix, self.max_length = card["prefix"], card["max_length"]

    def predict_proba(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        texts = with_prefix(texts, self.prefix)
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths -> less padding
        probs = np.empty((len(texts), self.model.config.num_labels), dtype=np.float32)
        with torch.inference_mode():
            for start in tqdm(range(0, len(texts), batch_size), desc="predict", unit="batch", leave=False):
                idx = order[start:start + batch_size]
                batch = self.tokenizer([texts[i] for i in idx], truncation=True, max_length=self.max_length,
                                       padding=True, return_tensors="pt").to(self.device)
                logits = self.model(**batch).logits.float()
                probs[idx] = torch.softmax(logits, dim=-1).cpu().numpy()
        return probs


class TfidfPredictor:
    def __init__(self, folder: Path, card: dict):
        self.model = TfidfClassifier.load(folder, TfidfParams(**card["params"]["tfidf"]))
        self.prefix = card["prefix"]

    def predict_proba(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self.model.predict_proba(with_prefix(texts, self.prefix))


def load_predictor(folder: str | Path, device: str = "auto"):
    """A predictor with ``predict_proba(texts, batch_size)`` and the model card it was built from."""
    folder = Path(folder)
    card = load_card(folder)
    if card["kind"] == "tfidf":
        return TfidfPredictor(folder, card), card
    runtime.configure_threads()
    return TransformerPredictor(folder, card, runtime.resolve_device(device)), card
