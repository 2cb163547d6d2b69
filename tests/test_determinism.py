"""Determinism: the same params and seed on the same machine give identical CPU results."""

from __future__ import annotations

import hashlib

from textcls.training import train
from textcls.config.params import TokenizeParams, parse_params
from textcls.data.tokenization import tokenize_dataset
from textcls.io import write_json

TEXTS = ["the movie is good", "great fun film", "the plot was bad", "awful boring story", "nice music",
         "poor ending", "a good actor", "bad scene"] * 6
LABELS = [1, 1, 0, 0, 1, 0, 1, 0] * 6


def _train_once(tiny_bert_dir, tokenized, tmp_path, name: str, seed: int) -> tuple[str, dict]:
    model = parse_params({
        "datasets": {"d": {"format": "csv", "path": "x", "files": {"train": "t.csv"}}},
        "models": {"m": {"kind": "transformer", "source": str(tiny_bert_dir), "tokenizer": {}, "lr": 5e-3,
                         "epochs": 2, "batch_size": 8, "logging_steps": 2}},
    }).models["m"]
    out = tmp_path / name
    out.mkdir()
    metrics = train.train_transformer(tokenized, model, seed, out, tmp_path / f"{name}-ckpt", tmp_path / f"{name}-live")
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    return digest, {k: v for k, v in metrics.items() if k not in ("train_time_s", "train_samples_per_s")}


def test_same_seed_gives_identical_weights_and_scores_on_cpu(tiny_bert_dir, make_prepared_dir, tmp_path):
    """Check that two CPU trainings with one seed give byte-identical weights and equal validation scores,
    and another seed gives other weights (so the check can fail)."""
    prepared = make_prepared_dir({"train": (TEXTS, LABELS), "validation": (TEXTS[:16], LABELS[:16]),
                                  "test": (TEXTS[:16], LABELS[:16])})
    write_json(prepared / "meta.json", {"label_names": ["neg", "pos"]})
    model = parse_params({
        "datasets": {"d": {"format": "csv", "path": "x", "files": {"train": "t.csv"}}},
        "models": {"m": {"kind": "transformer", "source": str(tiny_bert_dir), "tokenizer": {}}},
    }).models["m"]
    tokenized = tmp_path / "tokenized"
    tokenized.mkdir()
    meta = tokenize_dataset(prepared, model, TokenizeParams(max_length=16), tokenized)
    write_json(tokenized / "meta.json", {**meta, "label_names": ["neg", "pos"]})
    first = _train_once(tiny_bert_dir, tokenized, tmp_path, "a", seed=3)
    second = _train_once(tiny_bert_dir, tokenized, tmp_path, "b", seed=3)
    other = _train_once(tiny_bert_dir, tokenized, tmp_path, "c", seed=4)
    assert first == second
    assert other[0] != first[0]


def test_deterministic_switch_reaches_the_trainer(tmp_path):
    """Check that train.deterministic (default off) becomes the Trainer's full_determinism, and that a
    non-boolean value is refused naming the key."""
    import pytest

    from textcls.errors import ParamsError

    def model(**train):
        return parse_params({
            "datasets": {"d": {"format": "csv", "path": "x", "files": {"train": "t.csv"}}},
            "train": train,
            "models": {"m": {"kind": "transformer", "source": "src", "tokenizer": {}}},
        }).models["m"]

    assert not train._training_args(model(), 0, tmp_path, "cpu", "fp32").full_determinism
    assert train._training_args(model(deterministic=True), 0, tmp_path, "cpu", "fp32").full_determinism
    with pytest.raises(ParamsError, match=r"'train\.deterministic' parameter must be of type bool"):
        model(deterministic="yes")
