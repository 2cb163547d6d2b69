"""Collect per-(dataset, model) metrics into one leaderboard: JSON (for ``dvc metrics``), CSV and Markdown."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from textcls.errors import TextclsError
from textcls.io import read_json

logger = logging.getLogger(__name__)

TRAIN_COLUMNS = ("params", "train_time_s", "train_samples_per_s", "device", "precision")


def collect(eval_dir: Path, train_dir: Path, metrics: list[str]) -> pd.DataFrame:
    """One row per ``<eval_dir>/<dataset>/<model>.json`` with its train metrics beside it."""
    rows = []
    for path in sorted(Path(eval_dir).glob("*/*.json")):
        dataset, model = path.parent.name, path.stem
        ev = read_json(path)
        missing = [m for m in metrics if m not in ev]
        if missing:
            raise TextclsError(f"{path} has no {missing[0]!r}. Fix: aggregate.metrics lists only keys "
                               f"that evaluate writes ({', '.join(k for k in ev if k != 'per_class')}).")
        train_path = Path(train_dir) / dataset / f"{model}.json"
        train = read_json(train_path) if train_path.is_file() else {}
        row = {"entry": f"{dataset}/{model}", "dataset": dataset, "model": model, **{m: ev[m] for m in metrics}}
        row.update({k: train.get(k) for k in TRAIN_COLUMNS})
        row["comparable_to_published"] = ev.get("comparable_to_published")
        rows.append(row)
    if not rows:
        raise TextclsError(f"No evaluation metrics under {eval_dir}. Fix: run `dvc repro evaluate` first.")
    table = pd.DataFrame(rows, dtype=object)  # object: a missing train value stays None, ints stay ints
    return table.astype({m: float for m in metrics})


def rank(table: pd.DataFrame, sort_by: str) -> pd.DataFrame:
    """Best first within each dataset (loss ascending, everything else descending)."""
    if sort_by not in table.columns:
        raise TextclsError(f"aggregate.sort_by={sort_by!r} is not a leaderboard column. "
                           f"Fix: use one of {', '.join(table.columns)}.")
    ascending = sort_by == "loss"
    table = table.sort_values(["dataset", sort_by], ascending=[True, ascending], kind="stable")
    table.insert(3, "rank", table.groupby("dataset").cumcount() + 1)
    return table.reset_index(drop=True)


def to_metrics_json(table: pd.DataFrame, metrics: list[str]) -> dict:
    """``{dataset: {model: {metric: value}}}`` (dicts, not lists, so ``dvc metrics diff`` can diff it)."""
    out: dict = {}
    for row in table.to_dict("records"):
        out.setdefault(row["dataset"], {})[row["model"]] = {
            **{m: row[m] for m in metrics}, "rank": int(row["rank"]),
            "params": row["params"], "train_time_s": row["train_time_s"],
        }
    return out


def to_markdown(table: pd.DataFrame, sort_by: str) -> str:
    lines = ["# Leaderboard", ""]
    for dataset, group in table.groupby("dataset", sort=True):
        best = group.iloc[0]
        lines += [f"## {dataset}", "", f"Best by {sort_by}: **{best['model']}** ({best[sort_by]:.4f}).", ""]
        if group["comparable_to_published"].eq(False).any():
            lines += ["Splits were carved and/or subsampled: not comparable to published numbers.", ""]
        shown = group.drop(columns=["entry", "dataset", "comparable_to_published"])
        lines += [shown.to_markdown(index=False, floatfmt=".4f"), ""]
    return "\n".join(lines)
