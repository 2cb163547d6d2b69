"""Typed records that stages write and read as JSON: the model card and a device's benchmark status.

Each record writes and reads its own JSON, so its keys are defined once. The JSON keeps the keys that
``dvc metrics diff``, the leaderboard and the model folders have always had.

- :class:`ModelCard` is ``textcls.json`` beside every trained model: its kind, classes, input prefix,
  where it came from and the params entry it was trained with. Every kind writes it through
  :meth:`ModelCard.write`; serving, evaluation and benchmarking read it through :meth:`ModelCard.read`.
- :class:`Unmeasured` is a device without numbers in a benchmark report (``"cuda"`` on a machine without a
  GPU, a CPU-only model's GPU): an explicit ``status`` with a ``reason``, never zeros and never a bare string.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from textcls.errors import ModelSourceError
from textcls.io import read_json, write_json

MODEL_CARD = "textcls.json"  # written beside a trained model


@dataclass(frozen=True)
class ModelCard:
    """How to use a trained model: what a model folder's ``textcls.json`` says."""

    kind: str  # a registered model kind (textcls.kinds): its encoder and backends serve the folder
    label_names: list[str]  # class names for ids 0..K-1
    prefix: str = ""  # prepended to every text (T5's "classify: ")
    params: dict[str, Any] = field(default_factory=dict)  # the params entry it was trained with
    seed: int | None = None
    max_length: int | None = None  # tokenizer truncation (transformers)
    source: str | None = None  # the model source it was fine-tuned from, and the revision/commit resolved
    source_revision: str | None = None
    source_commit: str | None = None
    tokenizer_source: str | None = None
    tokenizer_commit: str | None = None
    distilled_from: str | None = None  # the teacher, for a distilled student

    def to_json(self) -> dict[str, Any]:
        """The card as written: every field, ``None`` for what does not apply to the kind."""
        return dataclasses.asdict(self)

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / MODEL_CARD
        write_json(path, self.to_json())
        return path

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = MODEL_CARD) -> "ModelCard":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = sorted(set(data) - known), [k for k in ("kind", "label_names") if k not in data]
        if unknown or missing:
            problem = f"unknown keys {unknown}" if unknown else f"no {missing}"
            raise ModelSourceError(f"{where} has {problem}: not a model card this version wrote. "
                                   "Fix: re-train the model (`dvc repro train@<dataset>-<model>`).")
        return cls(**data)

    @classmethod
    def read(cls, folder: str | Path) -> "ModelCard":
        path = Path(folder) / MODEL_CARD
        if not path.is_file():
            raise ModelSourceError(f"{folder} has no {MODEL_CARD}: not a model saved by the train stage. "
                                   "Fix: run `dvc repro train` first, or check the path.")
        return cls.from_json(read_json(path), str(path))

    @property
    def trusts_remote_code(self) -> bool:
        """Whether the params entry it was trained from enabled ``trust_remote_code``."""
        return self.params.get("trust_remote_code") is True


Status = Literal["unavailable", "not_applicable", "not_measured"]


@dataclass(frozen=True)
class Unmeasured:
    """A device a benchmark report has no numbers for, and why."""

    status: Status
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"status": self.status, "reason": self.reason}

    @property
    def label(self) -> str:
        """What a table shows in place of the variant: ``unavailable``, ``not applicable (CPU-only model)``."""
        return self.status.replace("_", " ") + (f" ({self.reason})" if self.status != "unavailable" else "")


def is_measured(device_result: Any) -> bool:
    """Whether a benchmark report's device entry holds numbers (``status: measured``)."""
    return isinstance(device_result, dict) and device_result.get("status") == "measured"


def unmeasured_label(device_result: Any) -> str:
    """The table label of a device entry without numbers (absent: ``not measured``)."""
    if isinstance(device_result, dict) and "status" in device_result:
        return Unmeasured(device_result["status"], device_result.get("reason", "")).label
    return "not measured"
