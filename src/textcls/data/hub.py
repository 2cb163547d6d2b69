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
from textcls.config.params import HubDatasetParams

logger = logging.getLogger(__name__)

OFFLINE_HINT = (
    "If this machine is offline, use the offline profile instead: `dvc exp run -S profile=default` (or "
    "`make params`; it lists no hub_datasets and reads ../shared/datasets/<name>), or point datasets.<name>.path "
    "at your own copy of the mirror; see README 'Offline mirror'."
)


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [""])[0]


def _hub_failure(spec: HubDatasetParams, err: Exception) -> DataError:
    """One message per cause: a revision or repo that does not exist, a missing config, or no hub at all."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    where = f"hub_datasets.{spec.name}"
    if isinstance(err, RevisionNotFoundError):
        return DataError(f"{spec.hub_id!r} has no revision {spec.revision!r} on the Hugging Face Hub. Fix: set "
                         f"{where}.revision to a commit, tag or branch of that repo (or null for main).")
    if isinstance(err, RepositoryNotFoundError):
        return DataError(f"No data set {spec.hub_id!r} on the Hugging Face Hub (or it is private). Fix: check "
                         f"{where}.hub_id.")
    text = str(err)
    if "config" in text.lower() and ("missing" in text.lower() or "not found" in text.lower()):
        detail = " ".join(line.strip() for line in text.strip().splitlines()[:3])
        return DataError(f"{spec.hub_id!r}: {detail} Fix: set {where}.config.")
    return DataError(f"Cannot download {spec.hub_id!r} from the Hugging Face Hub "
                     f"({type(err).__name__}: {_first_line(err)}). {OFFLINE_HINT}")


def resolve_commit(spec: HubDatasetParams) -> str:
    """The commit ``spec.revision`` (None = main) names on the hub now. The data are then loaded at exactly
    that commit, and it is recorded, so a branch that moves later shows in ``source.json`` and ``meta.json``."""
    from huggingface_hub import HfApi

    try:
        return HfApi().dataset_info(spec.hub_id, revision=spec.revision).sha
    except Exception as err:  # the hub raises many types (ConnectionError, OSError, HfHubHTTPError, ...)
        raise _hub_failure(spec, err) from None


def download(spec: HubDatasetParams, out_dir: Path) -> dict:
    """Write ``spec``'s splits to ``out_dir``; returns a summary (rows per split, class names, the commit)."""
    from datasets import load_dataset

    commit = resolve_commit(spec)
    try:
        ds = load_dataset(spec.hub_id, spec.config, revision=commit)
    except Exception as err:
        raise _hub_failure(spec, err) from None
    summary = {"hub_id": spec.hub_id, "config": spec.config, "revision": spec.revision, "commit": commit,
               "rows": {}}
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
