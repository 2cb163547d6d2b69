"""The predictions of every benchmarked variant, exactly as it served them (batch 1, end to end).

The benchmark serves the test split (or its seeded ``max_served_texts`` subsample) with every variant; the
accuracy it reports for a variant is that of these predictions. It also serves the validation split (the
split the best variant is chosen on). Both are saved per entry as ``data/served/<dataset>/<entry>.parquet``,
one row per (device, variant, split, row): ``device`` (``cpu``, ``cuda``, or ``remote`` for an LLM behind an
endpoint), ``variant``, ``split`` (``test`` or ``validation``), ``row`` (the prepared split's row id),
``label``, ``pred``, ``probs`` (the class probabilities) and ``latency_ms`` (that call's end-to-end time,
tokenization included; NaN where it was not timed). The recommendation's paired tests read the test rows,
so a model served as ``onnx_int8`` is compared on its int8 predictions, not on eager fp32's; the cascades
(:mod:`textcls.report.cascades`) choose their thresholds on the validation rows and sum the per-call
latencies of the models a text passes through.
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
# written since cascades need them; a file without them is read as test rows with untimed calls
OPTIONAL_COLUMNS = {"split": "test", "latency_ms": float("nan")}
SPLITS = ("test", "validation")


@dataclass(frozen=True)
class ServedPredictions:
    """One variant's served predictions of one split on one device, in served order."""

    device: str  # the benchmark report's device key: "cpu" | "cuda" ("remote": an LLM endpoint)
    variant: str  # the benchmark variant (eager_fp32, onnx_int8, sklearn, fewshot, ...)
    rows: "np.ndarray"  # prepared row ids of ``split``
    labels: "np.ndarray"
    preds: "np.ndarray"  # the served class per row: argmax of the served logits
    probs: "np.ndarray"  # [n, classes] class probabilities
    split: str = "test"  # "test" | "validation"
    latency_ms: "np.ndarray | None" = None  # per row: the call's end-to-end milliseconds (None: not timed)

    def __post_init__(self):
        n = len(self.rows)
        if not (len(self.labels) == len(self.preds) == len(self.probs) == n):
            raise ValueError(f"{self.device}/{self.variant}: rows, labels, preds and probs differ in length "
                             f"({n}, {len(self.labels)}, {len(self.preds)}, {len(self.probs)})")
        if self.split not in SPLITS:
            raise ValueError(f"{self.device}/{self.variant}: split must be one of {SPLITS}, not {self.split!r}")
        if self.latency_ms is not None and len(self.latency_ms) != n:
            raise ValueError(f"{self.device}/{self.variant}: {len(self.latency_ms)} latencies for {n} rows")

    @classmethod
    def from_logits(cls, device: str, variant: str, rows, labels, logits, split: str = "test",
                    seconds=None) -> "ServedPredictions":
        """The class is the argmax of the logits themselves (never of rounded probabilities); ``seconds``: each
        row's end-to-end call time."""
        import numpy as np
        from scipy.special import softmax

        logits = np.asarray(logits, dtype=np.float64)
        latency = None if seconds is None else np.asarray(seconds, dtype=np.float64) * 1000.0
        return cls(device, variant, np.asarray(rows), np.asarray(labels), logits.argmax(axis=1),
                   softmax(logits, axis=1).astype(np.float32), split, latency)

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

    seen = [(s.device, s.variant, s.split) for s in served]
    if len(set(seen)) != len(seen):
        raise ValueError(f"served predictions listed twice for one (device, variant, split): {seen}")
    empty = np.empty(0)
    table = pa.table({
        "device": pa.array([s.device for s in served for _ in s.rows], pa.string()),
        "variant": pa.array([s.variant for s in served for _ in s.rows], pa.string()),
        "row": pa.array(np.concatenate([s.rows for s in served]) if served else empty, pa.int64()),
        "label": pa.array(np.concatenate([s.labels for s in served]) if served else empty, pa.int64()),
        "pred": pa.array(np.concatenate([s.preds for s in served]) if served else empty, pa.int64()),
        "probs": pa.array([list(map(float, p)) for s in served for p in s.probs], pa.list_(pa.float32())),
        "split": pa.array([s.split for s in served for _ in s.rows], pa.string()),
        "latency_ms": pa.array(np.concatenate([np.full(len(s.rows), np.nan) if s.latency_ms is None else
                                               np.asarray(s.latency_ms, dtype=np.float64) for s in served])
                               if served else empty, pa.float64()),
    })
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, buffer.getvalue())


def read(path: str | Path) -> "pd.DataFrame":
    """The saved predictions of one entry (every device, variant and split): the columns of :data:`COLUMNS` and
    :data:`OPTIONAL_COLUMNS` (filled with their defaults in a file written before they were saved)."""
    import pyarrow.parquet as pq

    path = Path(path)
    table = pq.read_table(path)
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise TextclsError(f"{path} has no column(s) {missing}: not served predictions this version wrote. "
                           "Fix: rerun its benchmark stage (`dvc repro benchmark`).")
    frame = table.to_pandas()
    for column, default in OPTIONAL_COLUMNS.items():
        if column not in frame:
            frame[column] = default
    return frame


def select(frame: "pd.DataFrame", device: str, variant: str, split: str = "test") -> "pd.DataFrame":
    """The rows of one (device, variant, split), indexed by row id (sorted); empty when there are none."""
    rows = frame[(frame["device"] == device) & (frame["variant"] == variant) & (frame["split"] == split)]
    return rows.set_index("row").sort_index()


def correct(frame: "pd.DataFrame", device: str, variant: str, split: str = "test") -> "pd.Series | None":
    """Per row id of ``split`` (sorted): did ``variant`` on ``device`` serve the label? None: not in ``frame``."""
    rows = select(frame, device, variant, split)
    if rows.empty:
        return None
    return rows["label"] == rows["pred"]
