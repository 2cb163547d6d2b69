"""Knowledge distillation (Hinton et al., 2015): a student learns from a fine-tuned teacher's soft targets.

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, label)

The T^2 factor keeps the soft-target gradients on the same scale as the hard-label ones
when T changes. The teacher's logits on the train split are computed once
(``teacher_logits``, a DVC output), so re-tuning the student never reruns the teacher.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from transformers import Trainer

from textcls.errors import TextclsError

LOGITS_FILE = "train.parquet"  # columns: label, logits (one list of class logits per train row, in row order)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    """Mean over the batch of alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy."""
    soft_student = F.log_softmax(student_logits / temperature, dim=-1)
    soft_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    kl = F.kl_div(soft_student, soft_teacher, log_target=True, reduction="batchmean")
    return alpha * temperature ** 2 * kl + (1 - alpha) * F.cross_entropy(student_logits, labels)


class DistillationTrainer(Trainer):
    """The Hugging Face Trainer with the distillation loss; batches carry ``teacher_logits``."""

    def __init__(self, *args, temperature: float, alpha: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.temperature, self.alpha = temperature, alpha

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        teacher = inputs.pop("teacher_logits", None)
        outputs = model(**inputs)
        if teacher is None:  # evaluation batches: the plain cross-entropy the model computes
            return (outputs.loss, outputs) if return_outputs else outputs.loss
        loss = distillation_loss(outputs.logits, teacher.to(outputs.logits.dtype), inputs["labels"],
                                 self.temperature, self.alpha)
        return (loss, outputs) if return_outputs else loss


def teacher_logits(model_dir: Path, tokenized: Path, batch_size: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    """The fine-tuned teacher's logits on its own tokenization of the train split (eval mode, no dropout), in
    train-row order. Rows run in batches of similar length (sorted by token count), so a batch pads to little
    more than its own texts: about half the time of batches in row order on AG News."""
    from transformers import DataCollatorWithPadding

    from textcls.sources.models import load_trained
    from textcls.data.tokenization import read_split

    tokenizer, model = load_trained(model_dir)
    model.to(device).eval()
    table = read_split(tokenized, "train")
    features = [c for c in table.column_names if c in tokenizer.model_input_names]  # what the teacher takes
    rows = table.select(features).to_pylist()
    collate = DataCollatorWithPadding(tokenizer)
    order = np.argsort([len(row["input_ids"]) for row in rows], kind="stable")
    logits = np.zeros((len(rows), model.config.num_labels), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            idx = order[start:start + batch_size]
            batch = {k: v.to(device) for k, v in collate([rows[i] for i in idx]).items()}
            logits[idx] = model(**batch).logits.float().cpu().numpy()
    return logits, table.column("label").to_numpy()


def write_logits(folder: Path, logits: np.ndarray, labels: np.ndarray) -> None:
    pq.write_table(pa.table({"label": labels, "logits": list(logits.astype(np.float32))}), folder / LOGITS_FILE)


def read_logits(folder: Path, labels: np.ndarray) -> np.ndarray:
    """The teacher's logits, checked to be for the same train rows (same count, same labels) as the student's."""
    table = pq.read_table(Path(folder) / LOGITS_FILE)
    if table.num_rows != len(labels) or not np.array_equal(table.column("label").to_numpy(), labels):
        raise TextclsError(f"The teacher logits in {folder} are for other train rows than the student's "
                           f"({table.num_rows} vs {len(labels)} rows, or labels differ). "
                           "Fix: re-run `dvc repro` so both come from the same prepared data.")
    return np.stack(table.column("logits").to_numpy(zero_copy_only=False)).astype(np.float32)
