"""Download a labelled data set from the Hugging Face Hub into the local raw layout.

Output (read by the prepare stage with ``format: parquet``): one ``<split>.parquet``
per split with ``text`` and ``label`` columns, and ``classes.txt`` naming labels 0..K-1.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from textcls.errors import DataError
from textcls.params import HubDatasetParams

logger = logging.getLogger(__name__)

OFFLINE_HINT = (
    "If this machine is offline, use the offline profile instead: `git checkout params.yaml` (the default "
    "params.yaml lists no hub_datasets and reads ../shared/datasets/<name>), or point datasets.<name>.path "
    "at your own copy of the mirror; see README 'Offline mirror'."
)


def download(spec: HubDatasetParams, out_dir: Path) -> dict:
    """Write ``spec``'s splits to ``out_dir``; returns a summary (rows per split, class names)."""
    from datasets import load_dataset

    try:
        ds = load_dataset(spec.hub_id, spec.config, revision=spec.revision)
    except Exception as err:  # the hub raises many types (ConnectionError, OSError, HfHubHTTPError, ...)
        first = (str(err).strip().splitlines() or [""])[0]
        raise DataError(f"Cannot download {spec.hub_id!r} from the Hugging Face Hub "
                        f"({type(err).__name__}: {first}). {OFFLINE_HINT}") from None
    summary = {"hub_id": spec.hub_id, "config": spec.config, "revision": spec.revision, "rows": {}}
    names = None
    for ours, theirs in spec.splits.items():
        if theirs not in ds:
            raise DataError(f"{spec.hub_id} has no split {theirs!r} (it has {sorted(ds)}). "
                            f"Fix: set hub_datasets.{spec.name}.splits.{ours}.")
        split = ds[theirs]
        for col in (spec.text_column, spec.label_column):
            if col not in split.column_names:
                raise DataError(f"{spec.hub_id}[{theirs}] has no column {col!r} (columns: {split.column_names}). "
                                f"Fix: set hub_datasets.{spec.name}.text_column / label_column.")
        feature = split.features[spec.label_column]
        names = names or getattr(feature, "names", None)
        table = pa.table({"text": split[spec.text_column], "label": split[spec.label_column]})
        pq.write_table(table, out_dir / f"{ours}.parquet")
        summary["rows"][ours] = table.num_rows
    if names:
        (out_dir / "classes.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    summary["label_names"] = names
    return summary
