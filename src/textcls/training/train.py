"""Fine-tune a transformer classifier with the Hugging Face Trainer.

The best epoch (by validation accuracy) is saved as safetensors + tokenizer, with
``textcls.json`` describing how to use it (kind, input prefix, max length, labels) and
the resolved params it was trained with. Training curves go to DVCLive.

Checkpoints (one per epoch) live in a scratch folder outside DVC's outputs together with a
fingerprint of the run (tokenized data, model params, seed, device, precision, library versions).
A run that was killed resumes from its last complete checkpoint when it is started again with the
same fingerprint; anything else starts from scratch.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasets import Dataset
from transformers import TrainerCallback

from textcls.sources import models

from textcls.serving import runtime
from textcls.errors import TextclsError
from textcls.io import read_json
from textcls.records import ModelCard
from textcls.training import sampling
from textcls.training.checkpoints import resumable_checkpoint, run_fingerprint, start_checkpoints
from textcls.config.params import ModelParams
from textcls.data.tokenization import read_split
from textcls.training.live import open_live  # noqa: F401  (plugins' kinds call train.open_live)

logger = logging.getLogger(__name__)


def accuracy_metrics(eval_pred) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    logits, labels = eval_pred
    logits = logits[0] if isinstance(logits, tuple) else logits
    preds = np.argmax(logits, axis=-1)
    return {"accuracy": float(accuracy_score(labels, preds)),
            "f1_macro": float(f1_score(labels, preds, average="macro"))}


def _training_args(model: ModelParams, seed: int, checkpoints: Path, device: str, precision: str,
                   remove_unused_columns: bool = True):
    from transformers import TrainingArguments

    cfg = model.train
    return TrainingArguments(
        output_dir=str(checkpoints),
        learning_rate=cfg.lr,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        num_train_epochs=cfg.epochs,
        warmup_steps=cfg.warmup_ratio if cfg.warmup_ratio > 0 else 0,  # a float < 1 is a ratio of all steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        logging_steps=cfg.logging_steps,
        seed=seed,
        data_seed=seed,
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        use_cpu=device == "cpu",
        dataloader_num_workers=cfg.dataloader_workers,
        report_to=[],  # DVCLive is added explicitly, so nothing else reports
        remove_unused_columns=remove_unused_columns,  # False keeps distillation's teacher_logits in the batches
        train_sampling_strategy=sampling.hf_strategy(cfg.sampling),  # bucket / group_by_length: similar lengths
        full_determinism=cfg.deterministic,  # deterministic cuDNN/cuBLAS kernels (CUBLAS_WORKSPACE_CONFIG)
    )  # transformers 5 always saves checkpoints as safetensors


class FiniteLossGuard(TrainerCallback):
    """Stops training with a clear message when the logged loss is NaN or inf (the classic fp16
    overflow, or a learning rate far too high), instead of saving a broken model."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        check_finite_loss(logs or {}, state.global_step, args)


def check_finite_loss(logs: dict, step: int, args) -> None:
    loss = logs.get("loss")
    if loss is not None and not np.isfinite(float(loss)):
        precision = "fp16" if getattr(args, "fp16", False) else "bf16" if getattr(args, "bf16", False) else "fp32"
        raise TextclsError(
            f"The training loss became {float(loss)} at step {step} ({precision}, lr {args.learning_rate:g}). "
            "Nothing was saved. Fix: lower the model's `lr`, keep `max_grad_norm` set, or use precision bf16 "
            "(or fp32) instead of fp16.")


class ReplayHistoryToLive(TrainerCallback):
    """On resume, re-log the restored history (losses, eval scores) to DVCLive before training goes on,
    so the curves of a resumed run are those of an uninterrupted one."""

    def __init__(self, live_callback):
        self.live_callback = live_callback

    def on_train_begin(self, args, state, control, **kwargs):
        for logs in state.log_history:  # empty unless the Trainer restored a checkpoint
            # the history adds "step" to what was logged; DVCLive keeps its own step count
            self.live_callback.on_log(args, state, control, logs={k: v for k, v in logs.items() if k != "step"})


def check_vocabulary_fits(tokenized: Path, clf, tokenizer_source: str, model_source: str) -> None:
    """Token ids must index the model's embedding table; a tokenizer from another model would
    otherwise fail mid-training with an IndexError (or silently read the wrong embeddings)."""
    import pyarrow.compute as pc

    size = clf.get_input_embeddings().num_embeddings
    for split in ("train", "validation"):
        largest = pc.max(pc.list_flatten(read_split(tokenized, split).column("input_ids"))).as_py()
        if largest is not None and largest >= size:
            raise TextclsError(
                f"The tokenizer ({tokenizer_source}) does not match the model ({model_source}): its {split} token "
                f"ids go up to {largest}, but the model has only {size} embeddings. Fix: remove `tokenizer.source` "
                "from this model's params (use the model's own tokenizer), or point it at a tokenizer of the "
                "same model family.")


def cpu_bf16_attention(clf, device: str, precision: str) -> None:
    """bf16 autocast on CPU trains with the eager attention: torch's CPU flash-attention kernel (SDPA) runs its
    bf16 backward pass about 9x slower than fp32's, more than the bf16 matrix products save (torch 2.13, AMX; MiniLM,
    batch 32 x 50 tokens: 56 samples/s fp32, 56 bf16 + SDPA, 108 bf16 + eager). The same arithmetic either way; the
    attention is not saved with the model, so evaluation and serving load it with their own (SDPA)."""
    if device != "cpu" or precision != "bf16":
        return
    if not runtime.cpu_has_native_bf16():
        logger.warning("precision bf16 on a CPU without AMX/AVX512-BF16: bf16 is emulated and slower than fp32. "
                       "Fix: set train.precision: fp32 (or auto) on this machine.")
    try:
        clf.set_attn_implementation("eager")
    except (ValueError, AttributeError, NotImplementedError) as err:  # a remote-code model may not offer it
        logger.info("%s keeps its attention implementation under bf16 (%s)", type(clf).__name__, err)


INPUT_COLUMNS = ("input_ids", "attention_mask", "token_type_ids")


def restrict_inputs(tokenizer, clf) -> list[str]:
    """The tokenizer outputs that ``clf.forward`` takes, set as the tokenizer's ``model_input_names`` (saved
    with it, so evaluation, the benchmark and ONNX export feed exactly these). Some hub tokenizers return more
    than their model takes: distilbert-base-uncased loads as a BertTokenizer that adds ``token_type_ids``."""
    import inspect

    accepted = set(inspect.signature(clf.forward).parameters)
    names = [n for n in tokenizer.model_input_names if n in accepted]
    if names != list(tokenizer.model_input_names):
        logger.info("%s takes no %s: the saved tokenizer leaves them out", type(clf).__name__,
                    sorted(set(tokenizer.model_input_names) - set(names)))
        tokenizer.model_input_names = names
        tokenizer.init_kwargs["model_input_names"] = names
    return names


def _model_columns(table: pa.Table, inputs: list[str]) -> pa.Table:
    """``table`` without the tokenizer columns the model does not take (label, teacher logits stay)."""
    return table.drop_columns([c for c in INPUT_COLUMNS if c in table.column_names and c not in inputs])


def train_transformer(tokenized: Path, model: ModelParams, seed: int, out: Path, checkpoints: Path,
                      live_dir: Path, teacher_logits: np.ndarray | None = None, trainer_cls=None,
                      trainer_kwargs: dict | None = None) -> dict:
    """Fine-tune ``model`` on ``tokenized`` data; write the best model to ``out``; return train metrics.

    Distillation (stage ``distill``) passes the teacher's logits per train row, which every batch
    then carries as ``teacher_logits``, and a Trainer subclass whose loss uses them (``trainer_cls``), with
    the arguments that subclass takes beyond Trainer's (``trainer_kwargs``, e.g. temperature and alpha).
    """
    from transformers import DataCollatorWithPadding, Trainer, set_seed
    from transformers.integrations import DVCLiveCallback

    device = runtime.resolve_device(model.train.device)
    precision = runtime.resolve_precision(model.train.precision, device)
    threads = runtime.configure_threads()
    set_seed(seed)  # before the classification head is initialised
    meta = read_json(tokenized / "meta.json")
    label_names = meta["label_names"]
    tokenizer = models.load_tokenizer(str(tokenized / "tokenizer"))
    clf = models.load_classifier(model.source, label_names, model.revision, model.trust_remote_code, model.layers)
    if clf.config.pad_token_id is None:
        clf.config.pad_token_id = tokenizer.pad_token_id
    check_vocabulary_fits(tokenized, clf, meta.get("tokenizer_source", "?"), model.source)
    cpu_bf16_attention(clf, device, precision)
    inputs = restrict_inputs(tokenizer, clf)
    train_table = _model_columns(read_split(tokenized, "train"), inputs)
    if teacher_logits is not None:
        train_table = train_table.append_column("teacher_logits", pa.array(list(teacher_logits)))
    train_ds = Dataset(train_table)
    val_ds = Dataset(_model_columns(read_split(tokenized, "validation"), inputs))
    fingerprint = run_fingerprint(tokenized, model, seed, device, precision, teacher_logits)
    if runtime.process_rank() == 0:  # under `accelerate launch` the first process owns the checkpoints
        resume = start_checkpoints(checkpoints, fingerprint)
    else:  # read-only: rank 0 clears the folder only when no checkpoint of this run is in it
        resume = resumable_checkpoint(checkpoints, fingerprint)
    args = _training_args(model, seed, checkpoints, device, precision,
                          remove_unused_columns=teacher_logits is None)
    with open_live(live_dir) as live:
        live_callback = DVCLiveCallback(live=live)
        trainer_type = sampling.trainer_class(trainer_cls or Trainer, model.train.sampling)
        trainer = trainer_type(model=clf, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                               data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=accuracy_metrics,
                               callbacks=[live_callback, ReplayHistoryToLive(live_callback), FiniteLossGuard()],
                               **(trainer_kwargs or {}))
        start = time.perf_counter()
        with runtime.out_of_memory_hint(f"Training {model.name} (batch_size {model.train.batch_size}, "
                                        f"eval_batch_size {model.train.eval_batch_size}, {precision})",
                                        "lower the model's `batch_size` / `eval_batch_size` (or "
                                        "tokenize.max_length), or use precision bf16/fp16 on a GPU"):
            result = trainer.train(resume_from_checkpoint=resume)
        trainer.accelerator.wait_for_everyone()  # every process has reloaded the best checkpoint
        train_time = time.perf_counter() - start
    # the best checkpoint was reloaded at the end; its scores are in the log (first best wins, as in Trainer)
    best = max((h for h in trainer.state.log_history if "eval_accuracy" in h), key=lambda h: h["eval_accuracy"])
    trainer.model.save_pretrained(str(out))  # not trainer.save_model: it adds a pickled training_args.bin
    tokenizer.save_pretrained(str(out))
    ModelCard(kind="transformer", label_names=label_names, prefix=meta["prefix"], max_length=meta["max_length"],
              source=model.source, params=dataclasses.asdict(model), source_revision=model.revision,
              source_commit=models.resolved_commit(model.source, model.revision),
              tokenizer_source=meta.get("tokenizer_source"), tokenizer_commit=meta.get("tokenizer_commit"),
              seed=seed).write(out)
    if trainer.is_world_process_zero():
        shutil.rmtree(checkpoints, ignore_errors=True)
    train_rows = len(train_ds)
    return {
        "train_time_s": round(train_time, 2),
        "train_samples_per_s": round(result.metrics.get("train_samples_per_second", 0.0), 2),
        "train_rows": train_rows,
        "train_tokens": int(meta["splits"]["train"]["tokens"]),
        "truncated_rows": {split: int(stats.get("truncated", 0)) for split, stats in meta["splits"].items()},
        "resumed_from_step": int(resume.rsplit("-", 1)[1]) if resume else 0,
        "epochs": model.train.epochs,
        "params": models.count_parameters(clf),
        "val_accuracy": round(best["eval_accuracy"], 6),
        "val_f1_macro": round(best["eval_f1_macro"], 6),
        "val_loss": round(best["eval_loss"], 6),
        "device": device,
        "precision": precision,
        "threads": threads,
    }
