"""The test predictions of every benchmarked variant, exactly as it served them (batch 1, end to end).

The benchmark serves the test split (or its seeded ``max_served_texts`` subsample) with every variant; the
accuracy it reports for a variant is that of these predictions. They are saved per entry as
``data/served/<dataset>/<entry>.parquet``, one row per (device, variant, test row): ``device`` (``cpu``,
``cuda``, or ``remote`` for an LLM behind an endpoint), ``variant``, ``row`` (the prepared test split's row id),
``label``, ``pred`` and ``probs`` (the class probabilities). The recommendation's paired tests read them, so a
model served as ``onnx_int8`` is compared on its int8 predictions, not on eager fp32's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from textcls.errors import TextclsError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

COLUMNS = ("device", "variant", "row", "label", "pred", "probs")


@dataclass(frozen=True)
class ServedPredictions:
    """One variant's served test predictions on one device, in served order."""

    device: str  # the benchmark report's device key: "cpu" | "cuda" ("remote": an LLM endpoint)
    variant: str  # the benchmark variant (eager_fp32, onnx_int8, sklearn, fewshot, ...)
    rows: "np.ndarray"  # prepared test row ids
    labels: "np.ndarray"
    preds: "np.ndarray"  # the served class per row: argmax of the served logits
    probs: "np.ndarray"  # [n, classes] class probabilities

    def __post_init__(self):
        n = len(self.rows)
        if not (len(self.labels) == len(self.preds) == len(self.probs) == n):
            raise ValueError(f"{self.device}/{self.variant}: rows, labels, preds and probs differ in length "
                             f"({n}, {len(self.labels)}, {len(self.preds)}, {len(self.probs)})")

    @classmethod
    def from_logits(cls, device: str, variant: str, rows, labels, logits) -> "ServedPredictions":
        """The class is the argmax of the logits themselves (never of rounded probabilities)."""
        import numpy as np
        from scipy.special import softmax

        logits = np.asarray(logits, dtype=np.float64)
        return cls(device, variant, np.asarray(rows), np.asarray(labels), logits.argmax(axis=1),
                   softmax(logits, axis=1).astype(np.float32))

    @property
    def accuracy(self) -> float:
        """Rounded as the benchmark report rounds it (6 decimals)."""
        return round(float((self.preds == self.labels).mean()), 6)


def write(path: str | Path, served: Sequence[ServedPredictions]) -> None:
    """Write every variant's predictions to one parquet file (atomically: a temp file, then ``os.replace``)."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from textcls.io import write_bytes

    seen = [(s.device, s.variant) for s in served]
    if len(set(seen)) != len(seen):
        raise ValueError(f"served predictions listed twice for one (device, variant): {seen}")
    empty = np.empty(0)
    table = pa.table({
        "device": pa.array([s.device for s in served for _ in s.rows], pa.string()),
        "variant": pa.array([s.variant for s in served for _ in s.rows], pa.string()),
        "row": pa.array(np.concatenate([s.rows for s in served]) if served else empty, pa.int64()),
        "label": pa.array(np.concatenate([s.labels for s in served]) if served else empty, pa.int64()),
        "pred": pa.array(np.concatenate([s.preds for s in served]) if served else empty, pa.int64()),
        "probs": pa.array([list(map(float, p)) for s in served for p in s.probs], pa.list_(pa.float32())),
    })
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, buffer.getvalue())


def read(path: str | Path) -> "pd.DataFrame":
    """The saved predictions of one entry (every device and variant): the columns of :data:`COLUMNS`."""
    import pyarrow.parquet as pq

    path = Path(path)
    table = pq.read_table(path)
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise TextclsError(f"{path} has no column(s) {missing}: not served predictions this version wrote. "
                           "Fix: rerun its benchmark stage (`dvc repro benchmark`).")
    return table.to_pandas()


def correct(frame: "pd.DataFrame", device: str, variant: str) -> "pd.Series | None":
    """Per test row id (sorted): did ``variant`` on ``device`` serve the label? None: not in ``frame``."""
    rows = frame[(frame["device"] == device) & (frame["variant"] == variant)]
    if rows.empty:
        return None
    rows = rows.set_index("row").sort_index()
    return rows["label"] == rows["pred"]
