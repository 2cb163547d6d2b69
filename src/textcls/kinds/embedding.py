"""The ``embedding`` kind: a pretrained encoder kept frozen, its sentence embeddings (mean pooling, L2-normalised)
classified by a logistic regression, MTEB's classification protocol (:mod:`textcls.kinds.embedding_model`).

Between TF-IDF and fine-tuning: does the pretrained representation already separate the classes? It is tokenized
and served like a transformer (the source's own tokenizer, truncated to ``tokenize.max_length``; the transformer
kind's encoder and variants), and runs through every inference variant of :mod:`textcls.serving.backends` as one
torch module (encoder + pooling + a linear layer holding the regression's coefficients).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from textcls.kinds.base import register
from textcls.kinds.transformer import Transformer

logger = logging.getLogger(__name__)


@register
class Embedding(Transformer):
    """Tokenize, encoder and the variant list are the transformer kind's; train and the served model are its own."""

    name = "embedding"
    reference_variant = "eager_fp32"
    label = "frozen embeddings + LR"
    uses_torch = True

    def tokenize(self, prepared: Path, model, cfg, out: Path) -> dict:
        return {**super().tokenize(prepared, model, cfg, out), "kind": self.name}

    def train(self, tokenized: Path, model, seed: int, out: Path, checkpoints: Path, live_dir: Path) -> dict:
        from textcls.kinds import embedding_model

        return embedding_model.train_embedding(tokenized, model, seed, out, live_dir)

    def hyperparameters(self, model) -> dict:
        return dataclasses.asdict(model.embedding)

    def variants(self, device: str, cfg):
        """The transformer kind's variants on ``device``, less any (a plugin's) that can only load a fine-tuned
        classifier: their ``make`` takes no ``load``, so they would serve a random classification head."""
        from textcls.records import Unmeasured
        from textcls.serving.backends import VARIANTS

        variants = super().variants(device, cfg)
        if isinstance(variants, Unmeasured):
            return variants
        kept = [v for v in variants if VARIANTS[v].takes_loader]
        if len(kept) < len(variants):
            logger.info("embedding models skip %s (variants for fine-tuned classifiers only)",
                        ", ".join(v for v in variants if v not in kept))
        return kept or Unmeasured("not_applicable", "no listed variant can load an embedding model")

    def backend(self, variant: str, model_dir: Path, card, device: str, threads: int, workdir: Path | None):
        from textcls.kinds import embedding_model
        from textcls.serving import backends

        return backends.build(variant, model_dir, device, threads, workdir, self.encoder(model_dir, card).input_names,
                              load=embedding_model.load_classifier)
