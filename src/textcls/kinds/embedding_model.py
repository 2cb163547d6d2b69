"""Frozen sentence embeddings + logistic regression: the ``embedding`` kind's model, saved without pickle.

The encoder (e.g. all-MiniLM-L6-v2) is never trained. A text's embedding is what sentence-transformers computes
for that model: the mean of the encoder's last hidden states over the tokens the attention mask keeps, L2-normalised.
A scikit-learn ``LogisticRegression`` is fitted on the train split's embeddings, as MTEB's classification tasks do
(lbfgs, ``max_iter`` 100, ``C`` 1.0, ``random_state`` = the seed).

The model folder holds the encoder and its tokenizer as transformers saves them (safetensors), ``head.safetensors``
(the regression's ``coef``, ``intercept`` and ``classes``) and the model card. Served, the whole is one torch module,
:class:`EmbeddingClassifier` (encoder -> pooling -> normalisation -> an ``nn.Linear`` holding the coefficients), whose
``.logits`` softmax to the regression's ``predict_proba``; so every inference variant of
:mod:`textcls.serving.backends` (dynamic int8, ONNX fp32/int8, CUDA fp16/bf16) runs it as it runs a fine-tuned
classifier.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

logger = logging.getLogger(__name__)

HEAD = "head.safetensors"  # beside the encoder's model.safetensors


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """sentence-transformers' mean pooling then ``Normalize``: the mean of the token states the mask keeps (padding
    left out), L2-normalised. ``hidden``: (batch, tokens, dim); returns (batch, dim)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)
    return nn.functional.normalize(summed / counts, p=2, dim=1)


class SentenceEmbedder(nn.Module):
    """A frozen encoder (``AutoModel``) -> sentence embeddings (:func:`mean_pool`)."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    @property
    def config(self):
        """The encoder's config (the ONNX export switches ``use_cache`` off on it)."""
        return self.encoder.config

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        return mean_pool(hidden, attention_mask)


def head_layer(coef: np.ndarray, intercept: np.ndarray) -> nn.Linear:
    """The logistic regression as a linear layer whose softmax is its ``predict_proba``: a multinomial regression's
    coefficients as they are (one row per class); a binary one's single row z becomes the two logits [0, z]
    (softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)], which is what predict_proba gives)."""
    coef, intercept = np.asarray(coef, np.float64), np.asarray(intercept, np.float64).reshape(-1)
    if coef.shape[0] == 1:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    layer = torch.nn.utils.skip_init(nn.Linear, coef.shape[1], coef.shape[0])  # no random init to overwrite
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(coef))
        layer.bias.copy_(torch.from_numpy(intercept))
    return layer


class EmbeddingClassifier(nn.Module):
    """Sentence embeddings -> the logistic regression's logits, as a transformers classifier's output (``.logits``)."""

    def __init__(self, embedder: SentenceEmbedder, head: nn.Linear):
        super().__init__()
        self.embedder, self.head = embedder, head

    @property
    def config(self):
        return self.embedder.config

    def forward(self, input_ids, attention_mask, token_type_ids=None, **kwargs):
        """``kwargs`` (the ONNX export's ``return_dict=True``) are accepted and ignored."""
        return SequenceClassifierOutput(logits=self.head(self.embedder(input_ids, attention_mask, token_type_ids)))


def embed(embedder: SentenceEmbedder, tokenizer, table, batch_size: int, device: str = "cpu",
          desc: str = "embed") -> np.ndarray:
    """Sentence embeddings (float32, one row per row of ``table``, in its order) of a tokenized split (unpadded
    token ids): batches of similar length (less padding), padded by the tokenizer as serving pads, no gradients."""
    from tqdm.auto import tqdm

    names = [n for n in tokenizer.model_input_names if n in table.column_names]
    columns = {n: table.column(n).to_pylist() for n in names}
    lengths = np.fromiter((len(ids) for ids in columns["input_ids"]), dtype=np.int64, count=table.num_rows)
    order = np.argsort(lengths, kind="stable")
    out = None
    embedder = embedder.to(device).eval()
    with torch.inference_mode():
        for start in tqdm(range(0, table.num_rows, batch_size), desc=desc, unit="batch", leave=False):
            idx = order[start:start + batch_size]
            batch = tokenizer.pad({n: [columns[n][i] for i in idx] for n in names}, return_tensors="np")
            vectors = embedder(**{k: torch.from_numpy(v).to(device) for k, v in batch.items()}).float().cpu().numpy()
            if out is None:
                out = np.empty((table.num_rows, vectors.shape[1]), dtype=np.float32)
            out[idx] = vectors
    return out


def fit_head(features: np.ndarray, labels: np.ndarray, C: float, max_iter: int, seed: int):
    """MTEB's classifier: ``LogisticRegression(max_iter=100, random_state=seed)``, here with ``C`` and ``max_iter``
    from params. Returns it and whether it converged (a run that hits ``max_iter`` is kept, as MTEB keeps it)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported once, in the train metrics and the log
        clf.fit(features, labels)
    return clf, bool(np.max(clf.n_iter_) < max_iter)


def save_head(clf, folder: Path) -> None:
    arrays = {"coef": clf.coef_, "intercept": clf.intercept_, "classes": clf.classes_.astype(np.int64)}
    # safetensors writes the raw buffer: a Fortran-ordered coef_ would be saved transposed
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(Path(folder) / HEAD))


def load_head(folder: Path) -> dict[str, np.ndarray]:
    """The saved regression's ``coef``, ``intercept`` and ``classes``."""
    return load_file(str(Path(folder) / HEAD))


def load_classifier(model_dir: Path) -> EmbeddingClassifier:
    """The served model of an embedding-kind folder: its saved encoder (safetensors only) + the regression head."""
    from textcls.sources import models

    _, encoder = models.load_trained(model_dir, encoder_only=True)
    arrays = load_head(model_dir)
    return EmbeddingClassifier(SentenceEmbedder(encoder), head_layer(arrays["coef"], arrays["intercept"])).eval()


def train_embedding(tokenized: Path, model, seed: int, out: Path, live_dir: Path) -> dict:
    """Embed train with the frozen encoder, fit the regression, score validation; save the folder (encoder,
    tokenizer, head, model card) into ``out``; return the train metrics (the keys of the other kinds)."""
    import dataclasses

    from textcls.data.tokenization import read_split
    from textcls.errors import TextclsError
    from textcls.eval import evaluation
    from textcls.io import read_json
    from textcls.records import ModelCard
    from textcls.serving import runtime
    from textcls.sources import models
    from textcls.training.live import open_live
    from textcls.training.train import check_vocabulary_fits, restrict_inputs

    cfg = model.embedding
    device = runtime.resolve_device(cfg.device)
    threads = runtime.configure_threads()
    meta = read_json(tokenized / "meta.json")
    label_names = meta["label_names"]
    tokenizer = models.load_tokenizer(str(tokenized / "tokenizer"))
    encoder = models.load_encoder(model.source, model.revision, model.trust_remote_code).eval()
    check_vocabulary_fits(tokenized, encoder, meta.get("tokenizer_source", "?"), model.source)
    restrict_inputs(tokenizer, encoder)  # the saved tokenizer feeds exactly what the encoder takes
    embedder = SentenceEmbedder(encoder)
    train_split, val_split = read_split(tokenized, "train"), read_split(tokenized, "validation")
    train_labels, val_labels = train_split.column("label").to_numpy(), val_split.column("label").to_numpy()
    missing = sorted(set(range(len(label_names))) - set(train_labels.tolist()))
    if missing:
        raise TextclsError(f"{model.name}: the train split has no rows of class {label_names[missing[0]]!r}, so the "
                           "logistic regression cannot score it. Fix: give every class train rows (n_per_class).")

    start = time.perf_counter()
    with runtime.out_of_memory_hint(f"Embedding with {model.name} (batch_size {cfg.batch_size})",
                                    "lower the model's `batch_size` (or tokenize.max_length)"):
        features = embed(embedder, tokenizer, train_split, cfg.batch_size, device, "embed train")
        embed_time = time.perf_counter() - start
        clf, converged = fit_head(features, train_labels, cfg.C, cfg.max_iter, seed)
        train_time = time.perf_counter() - start
        val_features = embed(embedder, tokenizer, val_split, cfg.batch_size, device, "embed validation")
    if not converged:
        logger.warning("%s: the logistic regression stopped at max_iter=%d before converging (kept, as MTEB keeps "
                       "it). Fix, if its scores matter more than the protocol: raise models.%s.max_iter.",
                       model.name, cfg.max_iter, model.name)
    scores = evaluation.classification_metrics(val_labels, clf.predict_proba(val_features), label_names)

    embedder.to("cpu")
    encoder.save_pretrained(str(out))  # model.safetensors + config.json
    tokenizer.save_pretrained(str(out))
    save_head(clf, out)
    ModelCard(kind="embedding", label_names=label_names, prefix=meta["prefix"], max_length=meta["max_length"],
              source=model.source, params=dataclasses.asdict(model), source_revision=model.revision,
              source_commit=models.resolved_commit(model.source, model.revision),
              tokenizer_source=meta.get("tokenizer_source"), tokenizer_commit=meta.get("tokenizer_commit"),
              seed=seed).write(out)
    with open_live(live_dir) as live:  # fitted in one step: its validation scores as step 0
        for name in ("accuracy", "f1_macro", "loss"):
            live.log_metric(f"eval/{name}", scores[name])
    rows = len(train_labels)
    return {
        "train_time_s": round(train_time, 2),  # embedding train + fitting the regression
        "train_samples_per_s": round(rows / max(train_time, 1e-9), 2),
        "train_rows": rows,
        "train_tokens": int(meta["splits"]["train"]["tokens"]),
        "truncated_rows": {split: int(stats.get("truncated", 0)) for split, stats in meta["splits"].items()},
        "embed_time_s": round(embed_time, 2),
        "fit_time_s": round(train_time - embed_time, 3),
        "lr_iterations": int(np.max(clf.n_iter_)),
        "converged": converged,
        "params": models.count_parameters(encoder) + int(clf.coef_.size + clf.intercept_.size),
        "embedding_dim": int(features.shape[1]),
        "val_accuracy": round(float(scores["accuracy"]), 6),
        "val_f1_macro": round(float(scores["f1_macro"]), 6),
        "val_loss": round(float(scores["loss"]), 6),
        "device": device,
        "precision": "fp32",
        "threads": threads,
    }
