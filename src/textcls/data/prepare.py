"""Validated ``text``/``label`` frames (from :mod:`textcls.data.readers`) carved into train/validation/test:
label names and ids, cell checks, stratified carving, per-class subsampling, cross-split duplicates."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from textcls.errors import DataError
from textcls.io import read_json
from textcls.config.params import SPLITS, DatasetParams
from textcls.data.readers import INVISIBLE, CLEANING_KEYS, read_split

logger = logging.getLogger(__name__)


def resolve_label_names(spec: DatasetParams, frames: dict[str, pd.DataFrame]) -> list[str]:
    """Class names: params, else ``classes.txt`` beside the data, else the labels themselves."""
    if spec.label_names:
        return list(spec.label_names)
    classes = Path(spec.path) / "classes.txt"  # one name per line for ids 0..K-1 (AG News, hub downloads)
    if classes.is_file():
        return [line.strip() for line in classes.read_text(encoding="utf-8").splitlines() if line.strip()]
    if spec.format == "ag_news_csv":
        raise DataError(f"{classes} not found. Fix: add it, or set datasets.{spec.name}.label_names.")
    values = pd.concat([f["label"] for f in frames.values()])
    as_int = pd.to_numeric(values, errors="coerce")
    if as_int.notna().all() and (as_int == as_int.round()).all():
        if as_int.min() != 0:
            raise DataError(f"datasets.{spec.name}: integer labels run {int(as_int.min())}..{int(as_int.max())}, "
                            "not 0..K-1. Fix: relabel them, use class names as labels, or set label_names.")
        return [str(i) for i in range(int(as_int.max()) + 1)]
    return sorted(values.astype(str).unique())  # sorted for determinism, as run_glue does


def encode_labels(df: pd.DataFrame, names: list[str], spec: DatasetParams) -> pd.DataFrame:
    """Map raw labels to ids 0..K-1; the first bad row is named in the error."""
    raw = df["label"]
    as_int = pd.to_numeric(raw, errors="coerce")
    if as_int.notna().all() and (as_int == as_int.round()).all():
        ids = as_int.astype(int) - df.attrs.get("label_offset", 0)
    else:
        ids = raw.astype(str).map({n: i for i, n in enumerate(names)})
    bad = ids.isna() | (ids < 0) | (ids >= len(names))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{df.attrs.get('file')}, row {df['row'].iloc[i]}: label {str(raw.iloc[i])!r} is not one of the "
            f"{len(names)} classes {names} (ids 0..{len(names) - 1}); {int(bad.sum())} such rows. "
            f"Fix: correct the labels or set datasets.{spec.name}.label_names."
        )
    return df.assign(label=ids.astype("int64").to_numpy())


def check_cells(df: pd.DataFrame, spec: DatasetParams) -> None:
    """Reject empty/NaN texts and labels, naming the first such row. A text of only whitespace and invisible
    format characters (zero-width space, BOM, word joiner: Unicode category Cf) is empty too."""
    for column, key in (("text", "text_column"), ("label", "label_column")):
        values = df[column]
        empty = values.isna() | (values.astype(str).str.replace(INVISIBLE.pattern, "", regex=True) == "")
        if empty.any():
            i = int(np.flatnonzero(empty.to_numpy())[0])
            raise DataError(
                f"{df.attrs.get('file')}, row {df['row'].iloc[i]}: empty {column} ({int(empty.sum())} such rows). "
                f"Fix: remove or fill those rows, or check datasets.{spec.name}.{key}."
            )


def carve_splits(frames: dict[str, pd.DataFrame], spec: DatasetParams, seed: int) -> tuple[dict, dict]:
    """Fill in missing validation/test splits with seeded, stratified carving.

    Returns the frames and ``{split: "carved from <split>"}`` for each carved split.
    """
    frames = dict(frames)
    carved = {}
    if "train" not in frames:
        if len(frames) != 1:
            raise DataError(f"datasets.{spec.name}: no train split and several others {sorted(frames)}. "
                            "Fix: add files.train, or give a single file to carve all splits from.")
        (only,) = frames
        frames["train"] = frames.pop(only)
        carved["train"] = f"carved from {only}"
    pool_split = carved.get("train", "train").replace("carved from ", "")
    missing = [s for s in ("test", "validation") if s not in frames]
    pool_size = len(frames["train"])
    for split in missing:
        if split not in spec.carve:
            raise DataError(f"datasets.{spec.name}: no {split} split to use or carve. "
                            f"Fix: add files.{split}, or set carve.{split} to a fraction such as 0.1.")
        frac = spec.carve[split] * pool_size / len(frames["train"])  # fractions are of the original pool
        frames["train"], frames[split] = _stratified_split(frames["train"], frac, seed, spec)
        carved[split] = f"carved from {pool_split}"
    return frames, carved


def _stratified_split(df: pd.DataFrame, frac: float, seed: int, spec: DatasetParams):
    if not 0 < frac < 1:
        raise DataError(f"datasets.{spec.name}.carve: fractions add up to >= 1. Fix: make them smaller.")
    try:
        keep, taken = train_test_split(df, test_size=frac, random_state=seed, stratify=df["label"])
    except ValueError as err:
        raise DataError(f"datasets.{spec.name}: cannot carve a stratified split ({err}). "
                        "Fix: every class needs at least 2 rows per split; add data or lower carve.") from None
    return keep.sort_index(), taken.sort_index()


def subsample_per_class(df: pd.DataFrame, n: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """Keep at most ``n`` rows per class (seeded); report what was available."""
    parts, available = [], {}
    for label, group in df.groupby("label", sort=True):
        available[int(label)] = len(group)
        parts.append(group.sample(n=min(n, len(group)), random_state=seed) if len(group) > n else group)
    return pd.concat(parts).sort_index(), available


def cross_split_duplicates(frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Number of rows of train/validation whose text also appears in test (leakage)."""
    test_texts = set(frames["test"]["text"])
    return {s: int(frames[s]["text"].isin(test_texts).sum()) for s in ("train", "validation")}


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare(spec: DatasetParams, seed: int) -> tuple[dict[str, pd.DataFrame], dict]:
    """Read, validate, carve and subsample one data set. Returns the splits and their metadata."""
    frames = {split: read_split(spec, split) for split in spec.files}
    for df in frames.values():
        check_cells(df, spec)
    cleaning = {split: {k: int(df.attrs[k]) for k in CLEANING_KEYS if df.attrs.get(k)} for split, df in frames.items()}
    names = resolve_label_names(spec, frames)
    for split, df in frames.items():
        frames[split] = encode_labels(df, names, spec)
    # file names and checksums, not absolute paths: the output must not depend on where the data lives
    files = {split: {"file": spec.files[split], "md5": file_md5(Path(df.attrs["file"]))} for split, df in frames.items()}
    classes = sorted(pd.concat([f["label"] for f in frames.values()]).unique())
    if len(classes) < 2:
        raise DataError(f"datasets.{spec.name}: every row has the same label ({names[classes[0]]!r}). "
                        "Fix: a classifier needs at least 2 classes; check label_column.")
    frames, carved = carve_splits(frames, spec, seed)
    duplicates = cross_split_duplicates(frames)
    if any(duplicates.values()):
        message = (f"datasets.{spec.name}: {duplicates} rows of train/validation have a text that is also in test")
        if spec.on_duplicates == "error":
            raise DataError(message + ". Fix: deduplicate the files, or set on_duplicates: drop.")
        if spec.on_duplicates == "drop":
            test_texts = set(frames["test"]["text"])
            frames = {s: (df if s == "test" else df[~df["text"].isin(test_texts)]) for s, df in frames.items()}
            logger.warning("%s; dropped them (on_duplicates: drop)", message)
        else:
            logger.warning("%s (on_duplicates: warn keeps them)", message)
    subsampled = {}
    for split, n in spec.n_per_class.items():
        if n is not None:
            frames[split], available = subsample_per_class(frames[split], n, seed)
            short = {names[k]: v for k, v in available.items() if v < n}
            if any(v > n for v in available.values()):  # rows were dropped
                subsampled[split] = {"n_per_class": n, "available": {names[k]: v for k, v in available.items()}}
            if short:
                logger.warning("datasets.%s: n_per_class.%s=%d but only %s available; using all of them",
                               spec.name, split, n, short)
    # Published numbers: the official test split, a model trained on the full train split.
    # A validation split carved from train (5-10 % fewer training rows) keeps them comparable.
    comparable = "test" not in carved and "train" not in carved and not subsampled
    notes = []
    if "test" in carved or "train" in carved:
        notes.append(f"Splits {sorted(carved)} were carved (seed {seed}): numbers are not comparable "
                     "to published results on this data set.")
    elif carved:
        notes.append(f"The validation split was carved from train (seed {seed}) for model selection.")
    if subsampled:
        notes.append(f"Splits {sorted(subsampled)} were subsampled per class: numbers are not comparable "
                     "to published results on the full data.")
    source = {"format": spec.format, "files": files}
    downloaded = Path(spec.path) / "source.json"  # written by download@<name>: the hub repo and its commit
    if downloaded.is_file():
        hub = read_json(downloaded)
        source["hub"] = {k: hub.get(k) for k in ("hub_id", "config", "revision", "commit")}
    meta = {
        "name": spec.name,
        "label_names": names,
        "num_labels": len(names),
        "source": source,
        "splits": {s: _split_summary(frames[s], names) for s in SPLITS},
        "carved": carved,
        "subsampled": subsampled,
        "duplicates_with_test": duplicates,
        "comparable_to_published": comparable,
        "notes": notes,
        "seed": seed,
    }
    if any(cleaning.values()):  # only when something was cleaned: clean files give the same meta.json as ever
        meta["cleaning"] = {split: counts for split, counts in cleaning.items() if counts}
    return {s: _without_attrs(frames[s].reset_index(drop=True)) for s in SPLITS}, meta


def _without_attrs(df: pd.DataFrame) -> pd.DataFrame:
    """pyarrow stores ``DataFrame.attrs`` (our file path) in parquet metadata: drop it, keep outputs path-free."""
    df.attrs = {}
    return df


def _split_summary(df: pd.DataFrame, names: list[str]) -> dict:
    counts = df["label"].value_counts()
    return {"rows": len(df), "per_class": {n: int(counts.get(i, 0)) for i, n in enumerate(names)}}
