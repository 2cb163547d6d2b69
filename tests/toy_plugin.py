"""A plugin for tests/test_registries.py: one new model kind and one new inference variant, added through
the registries alone (``TEXTCLS_PLUGINS=toy_plugin``), with no change to the package.

- kind ``centroid``: multinomial naive Bayes over lower-cased words (numpy), saved as safetensors;
- variant ``eager_fp64``: a trained transformer run by PyTorch in float64 on the CPU.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path

import numpy as np

from textcls.serving.backends import TorchBackend, Variant, register_variant
from textcls.kinds import ModelKind, register
from textcls.config.fields import Field, Number, schema
from textcls.config.params import register_kind_schema
from textcls.records import ModelCard, Unmeasured


@schema
class CentroidParams:
    """The keys a `kind: centroid` entry may set, declared like the built-in kinds' (messages name the key)."""

    smoothing: Number = Field(1.0, gt=0)  # additive (Laplace) smoothing of the word counts


register_kind_schema("centroid", CentroidParams)


def _words(text: str) -> list[str]:
    return text.lower().split()


class _Texts:
    def __call__(self, texts: list[str]) -> list[str]:
        return list(texts)

    @staticmethod
    def real_tokens(batch: list[str]) -> int:
        return sum(len(_words(t)) for t in batch)


@register
class Centroid(ModelKind):
    name = "centroid"
    reference_variant = "counts"

    def tokenize(self, prepared: Path, model, cfg, out: Path) -> dict:
        import pyarrow.parquet as pq

        splits = {}
        for split in ("train", "validation", "test"):
            table = pq.read_table(prepared / f"{split}.parquet").select(["text", "label"])
            pq.write_table(table, out / f"{split}.parquet")
            splits[split] = {"rows": table.num_rows}
        return {"kind": self.name, "prefix": "", "splits": splits}

    def train(self, tokenized: Path, model, seed: int, out: Path, checkpoints: Path, live_dir: Path) -> dict:
        import pyarrow.parquet as pq
        from safetensors.numpy import save_file

        from textcls.training import train
        from textcls.io import read_json, write_json

        start = time.perf_counter()
        table = pq.read_table(tokenized / "train.parquet").to_pydict()
        names = read_json(tokenized / "meta.json")["label_names"]
        vocab = sorted({w for t in table["text"] for w in _words(t)})
        index = {w: i for i, w in enumerate(vocab)}
        counts = np.zeros((len(names), len(vocab)))
        for text, label in zip(table["text"], table["label"]):
            for word, n in Counter(_words(text)).items():
                counts[label, index[word]] += n
        smoothed = counts + model.settings.smoothing
        log_likelihood = np.log(smoothed / smoothed.sum(axis=1, keepdims=True))
        prior = np.bincount(table["label"], minlength=len(names)) + 1.0
        save_file({"log_likelihood": log_likelihood, "log_prior": np.log(prior / prior.sum())},
                  str(out / "centroid.safetensors"))
        write_json(out / "vocabulary.json", vocab)
        ModelCard(kind=self.name, label_names=names, params=dataclasses.asdict(model), seed=seed).write(out)
        val = pq.read_table(tokenized / "validation.parquet").to_pydict()
        scores = self.backend("counts", out, None, "cpu", 1, None)[0](val["text"])
        accuracy = float((scores.argmax(axis=1) == np.asarray(val["label"])).mean())
        with train.open_live(live_dir) as live:
            live.log_metric("eval/accuracy", accuracy)
        return {"train_time_s": round(time.perf_counter() - start, 3), "train_rows": len(table["text"]),
                "params": int(log_likelihood.size + len(names)), "val_accuracy": accuracy, "device": "cpu",
                "precision": "fp64"}

    def hyperparameters(self, model) -> dict:
        return dataclasses.asdict(model.settings)

    def encoder(self, model_dir: Path, card):
        return _Texts()

    def variants(self, device: str, cfg):
        return ["counts"] if device == "cpu" else Unmeasured("not_applicable", "CPU-only model")

    def backend(self, variant: str, model_dir: Path, card, device: str, threads: int, workdir):
        from safetensors.numpy import load_file

        from textcls.io import read_json

        start = time.perf_counter()
        arrays = load_file(str(Path(model_dir) / "centroid.safetensors"))
        index = {w: i for i, w in enumerate(read_json(Path(model_dir) / "vocabulary.json"))}

        def predict(texts: list[str]) -> np.ndarray:
            bags = np.zeros((len(texts), len(index)))
            for row, text in enumerate(texts):
                for word in _words(text):
                    if word in index:
                        bags[row, index[word]] += 1
            joint = bags @ arrays["log_likelihood"].T + arrays["log_prior"]
            return joint - np.logaddexp.reduce(joint, axis=1, keepdims=True)  # log-probabilities

        return predict, time.perf_counter() - start


def _eager_fp64(model_dir: Path, device: str, threads: int, workdir: Path, input_names: list[str]):
    import torch

    from textcls.sources.models import load_trained

    _, model = load_trained(model_dir)
    return TorchBackend(model, device, torch.float64)


register_variant(Variant("eager_fp64", ("cpu",), _eager_fp64))
