"""Prepared splits -> token ids per model, stored unpadded in parquet (padding happens per batch).

Output folder: ``<split>.parquet`` (``input_ids`` [+ ``attention_mask``, ``token_type_ids``]
as lists, ``label``), the tokenizer files under ``tokenizer/``, and ``meta.json``.
For the TF-IDF kind the text itself is the input (the vectorizer tokenizes while fitting).
The output is a pure function of its inputs, so identical tokenizations (e.g. BERT and
DistilBERT) are byte-identical and DVC stores them once.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from textcls.sources import models
from textcls.config.params import SPLITS, ModelParams, TokenizeParams, tokenizer_source

logger = logging.getLogger(__name__)


def read_split(folder: Path, split: str) -> pa.Table:
    return pq.read_table(Path(folder) / f"{split}.parquet")


def with_prefix(texts: list[str], prefix: str) -> list[str]:
    return [prefix + t for t in texts] if prefix else list(texts)


def tokenize_texts(tokenizer, texts: list[str], max_length: int, batch_size: int) -> dict[str, list]:
    """Fast-tokenizer batches with truncation and no padding; tqdm shows progress."""
    from tqdm.auto import tqdm

    out: dict[str, list] = {}
    for start in tqdm(range(0, len(texts), batch_size), desc="tokenize", unit="batch", leave=False):
        enc = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length)
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            if key in enc:
                out.setdefault(key, []).extend(enc[key])
    return out


def count_truncated(tokenizer, texts: list[str], lengths: np.ndarray, max_length: int) -> int:
    """How many ``texts`` are longer than ``max_length`` tokens, i.e. lost their end to truncation.

    Only texts whose truncated ids reached the limit can have been cut; just those are tokenized again
    in full (``verbose=False`` keeps the tokenizer's own "sequence too long" warning out of the log).
    """
    at_limit = [text for text, n in zip(texts, lengths) if n >= max_length]
    if not at_limit:
        return 0
    full = tokenizer(at_limit, truncation=False, verbose=False)["input_ids"]
    return sum(len(ids) > max_length for ids in full)


def warn_truncated(where: str, split: str, truncated: int, rows: int, max_length: int, limit: int) -> None:
    if truncated:
        room = f" (this tokenizer allows up to {limit})" if max_length < limit < 1_000_000 else ""
        logger.warning("%s: %d of %d %s texts (%.1f%%) are longer than max_length=%d tokens and were truncated; "
                       "the model sees only their first %d tokens. Fix, if their ends matter: raise "
                       "tokenize.max_length%s.", where, truncated, rows, split, 100 * truncated / rows, max_length,
                       max_length, room)


def effective_max_length(tokenizer, wanted: int) -> int:
    """``min(params, model limit)``; tokenizers without a real limit report a huge number."""
    limit = getattr(tokenizer, "model_max_length", None) or wanted
    return min(wanted, int(limit)) if limit < 1_000_000 else wanted


def tokenize_dataset(prepared: Path, model: ModelParams, cfg: TokenizeParams, out: Path) -> dict:
    """Tokenize every split of ``prepared`` for ``model`` into ``out`` the way its kind does; returns the metadata."""
    from textcls import kinds

    return kinds.get(model.kind).tokenize(prepared, model, cfg, out)


def tokenize_transformer(prepared: Path, model: ModelParams, cfg: TokenizeParams, out: Path) -> dict:
    """Token ids of every split with the model's tokenizer (truncated, unpadded), the tokenizer saved beside."""
    prefix = model.tokenizer.prefix
    stats = {}
    source, revision = tokenizer_source(model)
    tokenizer = models.load_tokenizer(source, revision, model.trust_remote_code)
    max_length = effective_max_length(tokenizer, cfg.max_length)
    for split in SPLITS:
        table = read_split(prepared, split)
        texts = with_prefix(table.column("text").to_pylist(), prefix)
        enc = tokenize_texts(tokenizer, texts, max_length, cfg.batch_size)
        columns = {k: pa.array(v, type=pa.list_(pa.int32())) for k, v in enc.items()}
        columns["label"] = table.column("label")
        pq.write_table(pa.table(columns), out / f"{split}.parquet")
        lengths = np.fromiter((len(ids) for ids in enc["input_ids"]), dtype=np.int64, count=len(texts))
        stats[split] = {
            "rows": len(texts),
            "tokens": int(lengths.sum()),
            "mean_length": round(float(lengths.mean()), 2) if len(texts) else 0.0,
            "max_length": int(lengths.max()) if len(texts) else 0,
            "truncated": count_truncated(tokenizer, texts, lengths, max_length),
        }
        warn_truncated(model.name, split, stats[split]["truncated"], len(texts), max_length,
                       int(getattr(tokenizer, "model_max_length", 0) or 0))
    tokenizer.save_pretrained(out / "tokenizer")
    return {"kind": "transformer", "tokenizer_source": source, "tokenizer_revision": revision,
            "tokenizer_commit": models.resolved_commit(source, revision, "tokenizer_config.json"), "tokenizer_class": type(tokenizer).__name__,
            "prefix": prefix, "max_length": max_length, "splits": stats}
