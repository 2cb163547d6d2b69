"""TF-IDF + logistic regression: the leaderboard's floor, saved without pickle.

The fitted state (vocabulary, idf, coefficients) is stored as ``vocabulary.json`` and
``tfidf.safetensors``; loading rebuilds the scikit-learn objects from those arrays, so
no untrusted pickle is ever loaded.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from textcls.eval import evaluation
from textcls.io import read_json, write_json
from textcls.config.params import TfidfParams

WEIGHTS = "tfidf.safetensors"
VOCABULARY = "vocabulary.json"


def _vectorizer(cfg: TfidfParams, vocabulary: dict | None = None) -> TfidfVectorizer:
    return TfidfVectorizer(ngram_range=(1, cfg.ngram_max), min_df=1 if vocabulary else cfg.min_df,
                           max_features=None if vocabulary else cfg.max_features,
                           sublinear_tf=cfg.sublinear_tf, vocabulary=vocabulary, dtype=np.float32)


class TfidfClassifier:
    """A fitted vectorizer + logistic regression with a ``predict_proba(texts)``."""

    def __init__(self, vectorizer: TfidfVectorizer, clf: LogisticRegression):
        self.vectorizer, self.clf = vectorizer, clf

    @classmethod
    def fit(cls, texts: list[str], labels: np.ndarray, cfg: TfidfParams, seed: int) -> "TfidfClassifier":
        vectorizer = _vectorizer(cfg)
        features = vectorizer.fit_transform(texts)
        clf = LogisticRegression(C=cfg.C, max_iter=cfg.max_iter, random_state=seed)
        clf.fit(features, labels)
        return cls(vectorizer, clf)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.clf.predict_proba(self.vectorizer.transform(texts))

    @property
    def n_parameters(self) -> int:
        return int(self.clf.coef_.size + self.clf.intercept_.size)

    def save(self, folder: Path, cfg: TfidfParams) -> None:
        vocab = {term: int(i) for term, i in self.vectorizer.vocabulary_.items()}
        write_json(folder / VOCABULARY, vocab)
        arrays = {"idf": self.vectorizer.idf_.astype(np.float32), "coef": self.clf.coef_,
                  "intercept": self.clf.intercept_, "classes": self.clf.classes_.astype(np.int64)}
        # safetensors writes the raw buffer: a Fortran-ordered coef_ would be saved transposed
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(folder / WEIGHTS))

    @classmethod
    def load(cls, folder: Path, cfg: TfidfParams) -> "TfidfClassifier":
        arrays = load_file(str(folder / WEIGHTS))
        vectorizer = _vectorizer(cfg, vocabulary=read_json(folder / VOCABULARY))
        vectorizer.idf_ = arrays["idf"]
        clf = LogisticRegression()
        clf.coef_, clf.intercept_, clf.classes_ = arrays["coef"], arrays["intercept"], arrays["classes"]
        return cls(vectorizer, clf)


def train_tfidf(train_texts, train_labels, val_texts, val_labels, cfg: TfidfParams, seed: int):
    """Fit on train, score on validation; returns the model and train metrics (same keys as transformers)."""
    start = time.perf_counter()
    model = TfidfClassifier.fit(train_texts, np.asarray(train_labels), cfg, seed)
    train_time = time.perf_counter() - start
    names = [str(c) for c in model.clf.classes_]
    scores = evaluation.classification_metrics(np.asarray(val_labels), model.predict_proba(val_texts), names)
    metrics = {
        "train_time_s": round(train_time, 2),
        "train_samples_per_s": round(len(train_texts) / max(train_time, 1e-9), 2),
        "train_rows": len(train_texts),
        "params": model.n_parameters,
        "vocabulary_size": len(model.vectorizer.vocabulary_),
        "val_accuracy": scores["accuracy"],
        "val_f1_macro": scores["f1_macro"],
        "val_loss": scores["loss"],
        "device": "cpu",
        "precision": "fp32",
    }
    return model, metrics
