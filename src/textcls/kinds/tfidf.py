"""The ``tfidf`` kind: TF-IDF + logistic regression (scikit-learn), the leaderboard's floor. Its input is
the text itself; it has one inference variant, ``sklearn``, on the CPU."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from textcls.kinds.base import ModelKind, register


class TextEncoder:
    """TF-IDF's input is the text itself (with the model's prefix); its 'tokens' are whitespace words."""

    def __init__(self, card):
        self.prefix = card.prefix

    def __call__(self, texts: list[str]) -> list[str]:
        from textcls.data.tokenization import with_prefix

        return with_prefix(texts, self.prefix)

    @staticmethod
    def real_tokens(batch: list[str]) -> int:
        return sum(len(t.split()) for t in batch)

    padded_tokens = real_tokens  # a sparse vector has no padding


@register
class Tfidf(ModelKind):
    name = "tfidf"
    reference_variant = "sklearn"
    label = "TF-IDF"
    uses_torch = False

    def tokenize(self, prepared: Path, model, cfg, out: Path) -> dict:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from textcls.config.params import SPLITS
        from textcls.data.tokenization import read_split, with_prefix

        prefix, stats = model.tokenizer.prefix, {}
        for split in SPLITS:
            table = read_split(prepared, split)
            texts = with_prefix(table.column("text").to_pylist(), prefix)
            pq.write_table(pa.table({"text": texts, "label": table.column("label")}), out / f"{split}.parquet")
            stats[split] = {"rows": table.num_rows}
        return {"kind": self.name, "prefix": prefix, "splits": stats}

    def train(self, tokenized: Path, model, seed: int, out: Path, checkpoints: Path, live_dir: Path) -> dict:
        from textcls.kinds import tfidf_model as baseline
        from textcls.training.live import open_live
        from textcls.io import read_json
        from textcls.records import ModelCard
        from textcls.data.tokenization import read_split

        meta = read_json(tokenized / "meta.json")
        train_split, val_split = read_split(tokenized, "train"), read_split(tokenized, "validation")
        clf, metrics = baseline.train_tfidf(
            train_split.column("text").to_pylist(), train_split.column("label").to_numpy(),
            val_split.column("text").to_pylist(), val_split.column("label").to_numpy(), model.tfidf, seed)
        clf.save(out, model.tfidf)
        ModelCard(kind=self.name, label_names=meta["label_names"], prefix=meta["prefix"],
                  params=dataclasses.asdict(model), seed=seed).write(out)
        with open_live(live_dir) as live:  # fitted in one step: its validation scores as step 0
            for name in ("accuracy", "f1_macro", "loss"):
                live.log_metric(f"eval/{name}", metrics[f"val_{name}"])
        return metrics

    def hyperparameters(self, model) -> dict:
        return dataclasses.asdict(model.tfidf)

    def encoder(self, model_dir: Path, card):
        return TextEncoder(card)

    def variants(self, device: str, cfg):
        from textcls.records import Unmeasured

        return ["sklearn"] if device == "cpu" else Unmeasured("not_applicable", "CPU-only model")

    def backend(self, variant: str, model_dir: Path, card, device: str, threads: int, workdir: Path | None):
        import numpy as np

        from textcls.kinds.tfidf_model import TfidfClassifier
        from textcls.config.params import TfidfParams

        start = time.perf_counter()
        clf = TfidfClassifier.load(model_dir, TfidfParams(**card.params["tfidf"]))
        return (lambda texts: np.log(np.clip(clf.predict_proba(texts), 1e-12, 1.0))), time.perf_counter() - start
