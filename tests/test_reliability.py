"""Inputs that would otherwise fail late or silently: over-long texts, a tokenizer from another model,
running out of memory, a model that ships its own code. Each gets counted or named with its fix, and leaves
no output behind; atomic writes leave nothing half-written when a stage dies."""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import load_stage, plant_custom_code

from textcls import io

from textcls.serving import runtime

from textcls.training import train
from textcls.cli import run
from textcls.errors import TextclsError
from textcls.io import write_json
from textcls.config.params import ModelParams, TokenizeParams, TokenizerParams, TrainParams
from textcls.data.tokenization import tokenize_dataset

LABELS = ["neg", "pos"]


def tiny_model(source, **train_overrides) -> ModelParams:
    return ModelParams(name="tiny", kind="transformer", source=str(source), tokenizer=TokenizerParams(),
                       train=TrainParams(**{"epochs": 1, "batch_size": 4, **train_overrides}))


@pytest.fixture
def tokenized(make_prepared_dir, tiny_bert_dir, tmp_path):
    """The tiny BERT's tokens for a few movie reviews (max_length 16)."""
    texts = ["the movie is good", "the film was bad", "a great story", "an awful plot"] * 2
    prepared = make_prepared_dir({s: (texts, [1, 0, 1, 0] * 2) for s in ("train", "validation", "test")})
    out = tmp_path / "tokenized"
    out.mkdir()
    meta = tokenize_dataset(prepared, tiny_model(tiny_bert_dir), TokenizeParams(max_length=16), out)
    write_json(out / "meta.json", {**meta, "label_names": LABELS})
    return out


# --------------------------------------------------------------------------- long texts

@pytest.mark.bad_input
def test_long_texts_are_truncated_counted_and_reported(make_prepared_dir, tiny_bert_dir, tmp_path, caplog):
    """Check that texts longer than max_length are cut to max_length, counted per split (a text of exactly
    max_length tokens is not), and reported in a warning that names the fix."""
    exact = "the movie is good and fun"  # [CLS] + 6 words + [SEP] = 8 tokens
    longer = "the movie is good and very fun"  # 9 tokens
    huge = " ".join(["very"] * 50_000)
    prepared = make_prepared_dir({"train": ([exact, longer, huge, "fun"], [1, 1, 0, 0]),
                                  "validation": ([exact, "bad"], [1, 0]), "test": ([huge, "good"], [0, 1])})
    out = tmp_path / "tokenized"
    out.mkdir()
    model = ModelParams(name="tiny", kind="transformer", source=str(tiny_bert_dir),
                        tokenizer=TokenizerParams(prefix=""), train=TrainParams())
    with caplog.at_level(logging.WARNING, logger="textcls.data.tokenization"):
        meta = tokenize_dataset(prepared, model, TokenizeParams(max_length=8), out)
    assert {s: meta["splits"][s]["truncated"] for s in ("train", "validation", "test")} == \
        {"train": 2, "validation": 0, "test": 1}
    assert meta["splits"]["train"]["max_length"] == 8
    messages = [r.getMessage() for r in caplog.records]
    assert any("2 of 4 train texts (50.0%) are longer than max_length=8" in m and "raise tokenize.max_length" in m
               and "allows up to 128" in m for m in messages), messages
    assert not any("validation texts" in m for m in messages)


def test_truncated_rows_reach_the_train_metrics(tiny_bert_dir, tokenized, tmp_path):
    """Check that train metrics carry the truncation count of every split (none here) and no resume."""
    out = tmp_path / "model"
    out.mkdir()
    metrics = train.train_transformer(tokenized, tiny_model(tiny_bert_dir), 0, out, tmp_path / "ckpt",
                                      tmp_path / "live")
    assert metrics["truncated_rows"] == {"train": 0, "validation": 0, "test": 0}
    assert metrics["resumed_from_step"] == 0


# --------------------------------------------------------------------------- tokenizer / model mismatch

@pytest.fixture
def small_vocab_model(tmp_path):
    """A BERT whose embedding table (20 rows) is smaller than the tiny tokenizer's vocabulary."""
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path / "small-vocab"
    config = BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


@pytest.mark.bad_input
def test_tokenizer_from_another_model_is_named_before_training(small_vocab_model, tokenized, tmp_path):
    """Check that token ids beyond the model's embedding table fail before training, naming both sides and
    the fix, with no checkpoint or model written."""
    out = tmp_path / "model"
    out.mkdir()
    with pytest.raises(TextclsError, match=r"does not match the model .*only 20 embeddings.*tokenizer\.source"):
        train.train_transformer(tokenized, tiny_model(small_vocab_model), 0, out, tmp_path / "ckpt",
                                tmp_path / "live")
    assert not (tmp_path / "ckpt").exists() and not list(out.iterdir())


# --------------------------------------------------------------------------- out of memory

@pytest.mark.bad_input
@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried "
                 "to allocate 8589934592 bytes."),
    MemoryError(),
], ids=["cuda", "cpu-allocator", "python"])
def test_out_of_memory_becomes_one_message_with_the_fix(error):
    """Check that GPU and CPU out-of-memory errors become a TextclsError naming what ran out and the fix."""
    with pytest.raises(TextclsError, match=r"Training x \(batch_size 64\) ran out of memory.*Fix: lower batch_size"):
        with runtime.out_of_memory_hint("Training x (batch_size 64)", "lower batch_size"):
            raise error


def test_other_runtime_errors_pass_through_unchanged():
    """Check that the hint does not swallow or relabel unrelated errors."""
    with pytest.raises(RuntimeError, match="shape mismatch"):
        with runtime.out_of_memory_hint("Training x", "lower batch_size"):
            raise RuntimeError("shape mismatch")


@pytest.mark.bad_input
def test_train_stage_out_of_memory_suggests_a_smaller_batch_and_writes_nothing(tiny_bert_dir, tokenized, tmp_path,
                                                                                monkeypatch, capsys):
    """Check the train stage end to end: an OOM inside Trainer.train exits 1 with one line naming the
    batch sizes to lower, and leaves no model, metrics or curves."""
    from transformers import Trainer

    params = tmp_path / "params.yaml"
    params.write_text(f"""
datasets: {{d: {{format: csv, path: x, files: {{train: t.csv}}}}}}
models: {{tiny: {{kind: transformer, source: {tiny_bert_dir}, tokenizer: {{}}, batch_size: 256, epochs: 1}}}}
""")

    def out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")

    monkeypatch.setattr(Trainer, "train", out_of_memory)
    stage = load_stage("train")
    outputs = [tmp_path / "model", tmp_path / "metrics.json", tmp_path / "live"]
    code = run(stage.main, ["d", "tiny", str(tokenized), *map(str, outputs), "--checkpoints",
                            str(tmp_path / "ckpt"), "--params", str(params)])
    err = capsys.readouterr().err
    assert code == 1
    assert "ran out of memory" in err and "batch_size 256" in err and "lower the model's `batch_size`" in err
    assert "Traceback" not in err
    assert not any(p.exists() for p in outputs)


# --------------------------------------------------------------------------- atomic outputs

@pytest.mark.resume
def test_failed_block_leaves_no_output_and_no_temp(tmp_path):
    """Check that an exception inside atomic_dir / atomic_outputs leaves neither the output nor a temp
    sibling, and removes a stale output of an earlier run (all or nothing)."""
    out, metrics = tmp_path / "model", tmp_path / "metrics.json"
    out.mkdir()
    (out / "old.safetensors").write_bytes(b"old")
    metrics.write_text("{}")
    with pytest.raises(RuntimeError):
        with io.atomic_outputs(metrics), io.atomic_dir(out) as tmp:
            (tmp / "model.safetensors").write_bytes(b"half")
            raise RuntimeError("killed halfway")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.resume
def test_temp_left_by_a_killed_run_is_cleared_by_the_next_write(tmp_path):
    """Check that temp siblings a SIGKILLed run left behind (no cleanup ran) are removed by the next write
    of the same output, and that other outputs' temps are left alone."""
    (tmp_path / ".model.x1y2.tmp").mkdir()
    (tmp_path / ".model.x1y2.tmp" / "model.safetensors").write_bytes(b"partial")
    (tmp_path / ".metrics.json.k3.tmp").write_text("{")
    (tmp_path / ".other.z9.tmp").mkdir()
    with io.atomic_dir(tmp_path / "model") as tmp:
        (tmp / "model.safetensors").write_bytes(b"new")
    io.write_json(tmp_path / "metrics.json", {"accuracy": 1.0})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.z9.tmp", "metrics.json", "model"]
    assert (tmp_path / "model" / "model.safetensors").read_bytes() == b"new"


# --------------------------------------------------------------------------- code shipped with a model

@pytest.fixture
def custom_code_model(tiny_bert_dir, tmp_path):
    """The tiny BERT as an architecture that only its own (planted) Python file defines."""
    return plant_custom_code(tiny_bert_dir, tmp_path / "custom-code-model", "BertConfig",
                             "BertForSequenceClassification", "ModelForSequenceClassification")


@pytest.mark.security
def test_code_shipped_with_a_model_is_not_run_by_default(custom_code_model, code_sentinel):
    """Check that a model folder with its own Python code is refused unless trust_remote_code is set: the
    message names the param and what it means, and the code never ran."""
    from textcls.sources import models

    assert ModelParams(name="m", kind="transformer", source="x", tokenizer=TokenizerParams()).trust_remote_code is False
    with pytest.raises(TextclsError, match=r"ships its own Python code.*`trust_remote_code: true`.*runs their code"):
        models.load_classifier(str(custom_code_model), LABELS)
    assert not code_sentinel.exists()


@pytest.mark.security
def test_trust_remote_code_param_carries_from_train_to_evaluate(custom_code_model, code_sentinel, tokenized,
                                                                tmp_path):
    """Check that `trust_remote_code: true` runs the model's own code in training, that the trained model
    loads with it again (the model card records the choice), and that a card without it refuses to."""
    import json

    from textcls.sources import models

    out = tmp_path / "model"
    out.mkdir()
    params = tiny_model(custom_code_model)
    params = ModelParams(**{**params.__dict__, "trust_remote_code": True})
    train.train_transformer(tokenized, params, 0, out, tmp_path / "ckpt", tmp_path / "live")
    assert code_sentinel.exists()
    _, model = models.load_trained(out)
    assert type(model).__name__ == "SentinelModelForSequenceClassification"

    card = json.loads((out / "textcls.json").read_text())
    card["params"]["trust_remote_code"] = False
    (out / "textcls.json").write_text(json.dumps(card))
    with pytest.raises(TextclsError, match="ships its own Python code"):
        models.load_trained(out)
