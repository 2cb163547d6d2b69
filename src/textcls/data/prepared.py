"""The prepared folder (``data/prepared/<dataset>``), read one way by every stage that reads it.

It holds ``<split>.parquet`` (``text``, ``label``, ``row``) for train/validation/test and ``meta.json``
(class names, row counts, provenance), as :mod:`textcls.data.prepare` writes them.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from textcls.errors import DataError
from textcls.io import read_json


class Prepared:
    """One data set's prepared splits and metadata."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / "meta.json").is_file():
            raise DataError(f"{self.folder} is not a prepared data folder (no meta.json). "
                            "Fix: run `dvc repro prepare@<dataset>`, or check the path.")

    @functools.cached_property
    def meta(self) -> dict:
        return read_json(self.folder / "meta.json")

    @property
    def label_names(self) -> list[str]:
        return list(self.meta["label_names"])

    def table(self, split: str) -> pa.Table:
        return pq.read_table(self.folder / f"{split}.parquet")

    def frame(self, split: str) -> pd.DataFrame:
        return self.table(split).to_pandas()

    def check_classes(self, label_names: list[str], model_dir: str | Path) -> None:
        """A model trained on other classes than these cannot be scored on them."""
        if list(label_names) != self.label_names:
            raise DataError(f"{model_dir} was trained on classes {list(label_names)}, but {self.folder} has "
                            f"{self.label_names}. Fix: re-run `dvc repro` (the model is older than the data).")
