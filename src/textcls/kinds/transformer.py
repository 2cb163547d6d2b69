"""The ``transformer`` kind: any ``AutoModelForSequenceClassification`` architecture, fine-tuned with the
Hugging Face Trainer and served through the inference variants of :mod:`textcls.serving.backends`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from textcls.kinds.base import ModelKind, register


@register
class Transformer(ModelKind):
    name = "transformer"
    reference_variant = "eager_fp32"

    def tokenize(self, prepared: Path, model, cfg, out: Path) -> dict:
        from textcls.data import tokenization

        return tokenization.tokenize_transformer(prepared, model, cfg, out)

    def train(self, tokenized: Path, model, seed: int, out: Path, checkpoints: Path, live_dir: Path) -> dict:
        from textcls.training import train

        return train.train_transformer(tokenized, model, seed, out, checkpoints, live_dir)

    def hyperparameters(self, model) -> dict:
        return dataclasses.asdict(model.train)

    def encoder(self, model_dir: Path, card):
        from textcls.serving.inference import Encoder

        return Encoder(model_dir, card)

    def variants(self, device: str, cfg):
        import torch

        from textcls.records import Unmeasured

        if device == "cuda" and not torch.cuda.is_available():
            return Unmeasured("unavailable", "no CUDA GPU on this machine")
        variants = cfg.cpu_variants if device == "cpu" else cfg.cuda_variants
        if device == "cuda" and not torch.cuda.is_bf16_supported():
            from textcls.serving.backends import VARIANTS

            variants = [v for v in variants if not VARIANTS[v].needs_bf16]
        return list(variants)

    def backend(self, variant: str, model_dir: Path, card, device: str, threads: int, workdir: Path | None):
        from textcls.serving import backends

        return backends.build(variant, model_dir, device, threads, workdir, self.encoder(model_dir, card).input_names)
