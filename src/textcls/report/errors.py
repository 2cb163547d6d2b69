"""Error analysis of every declared entry, from its saved test predictions and the prepared test texts.

Per entry: the most confident mistakes (text, gold, predicted, confidence), the most confused class pairs
(gold -> predicted, with their share of the gold class), and accuracy by text length. Length buckets are
the word-count quartiles of the data set's whole test split, the same for every entry of the data set, so
the rows of a bucket compare across entries (an LLM scored on a subsample has fewer rows per bucket).
:func:`analyse` returns typed records; :func:`to_markdown` renders the report, :func:`length_rows` the
rows of the accuracy-by-length plot.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from textcls.errors import TextclsError

TOP_MISTAKES = 5
TOP_PAIRS = 5
LENGTH_BUCKETS = 4
TEXT_CHARS = 160  # a mistake's text is cut to this many characters in the report


@dataclass(frozen=True)
class Mistake:
    row: int
    text: str
    gold: str
    predicted: str
    confidence: float


@dataclass(frozen=True)
class ConfusedPair:
    gold: str
    predicted: str
    count: int
    share_of_gold: float  # of the gold class's test rows, the share predicted as ``predicted``


@dataclass(frozen=True)
class LengthBucket:
    bucket: str  # "12-25 words"
    low: int
    high: int
    n: int
    accuracy: float | None  # None: no row of this entry in the bucket


@dataclass(frozen=True)
class EntryErrors:
    dataset: str
    entry: str
    n: int
    errors: int
    mistakes: list[Mistake]
    pairs: list[ConfusedPair]
    lengths: list[LengthBucket]

    def to_json(self) -> dict:
        return asdict(self)


def word_counts(texts: pd.Series) -> np.ndarray:
    return texts.astype(str).str.split().str.len().to_numpy()


def length_edges(counts: np.ndarray, buckets: int = LENGTH_BUCKETS) -> list[tuple[int, int]]:
    """Inclusive word-count ranges of (up to) ``buckets`` quantile buckets of ``counts``; ties can merge some."""
    if len(counts) == 0:
        raise TextclsError("the test split has no texts to bucket by length. Fix: check the prepared data.")
    cuts = np.unique(np.floor(np.quantile(counts, np.linspace(0, 1, buckets + 1)[1:-1])).astype(int))
    lows = [int(counts.min()), *[int(c) + 1 for c in cuts]]
    highs = [*[int(c) for c in cuts], int(counts.max())]
    return [(lo, hi) for lo, hi in zip(lows, highs) if lo <= hi]


def analyse_entry(dataset: str, entry: str, predictions: pd.DataFrame, texts: pd.Series, label_names: list[str],
                  edges: list[tuple[int, int]], top_mistakes: int = TOP_MISTAKES,
                  top_pairs: int = TOP_PAIRS) -> EntryErrors:
    """``predictions``: ``row, label, pred, probs`` (as evaluate writes them); ``texts``: test text by row id."""
    missing = set(predictions["row"]) - set(texts.index)
    if missing:
        raise TextclsError(f"{dataset}/{entry}: {len(missing)} predicted test row(s) are not in the prepared test split "
                           f"(e.g. row {min(missing)}). Fix: re-run `dvc repro` so both come from the same data.")
    labels, preds = predictions["label"].to_numpy(), predictions["pred"].to_numpy()
    probs = np.stack(predictions["probs"].to_numpy()).astype(np.float64)
    confidence = probs[np.arange(len(preds)), preds]
    wrong = np.flatnonzero(labels != preds)
    order = wrong[np.lexsort((predictions["row"].to_numpy()[wrong], -confidence[wrong]))][:top_mistakes]
    mistakes = [Mistake(int(predictions["row"].iloc[i]), _cut(str(texts.loc[predictions["row"].iloc[i]])),
                        label_names[labels[i]], label_names[preds[i]], round(float(confidence[i]), 4)) for i in order]
    pairs = []
    if len(wrong):
        counts = pd.Series(list(zip(labels[wrong], preds[wrong]))).value_counts()
        gold_n = np.bincount(labels, minlength=len(label_names))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_pairs]
        pairs = [ConfusedPair(label_names[g], label_names[p], int(c), round(float(c / gold_n[g]), 4))
                 for (g, p), c in ranked]
    words = word_counts(texts.loc[predictions["row"]].reset_index(drop=True))
    correct = labels == preds
    lengths = []
    for lo, hi in edges:
        inside = (words >= lo) & (words <= hi)
        n = int(inside.sum())
        lengths.append(LengthBucket(f"{lo}-{hi} words", lo, hi, n,
                                    round(float(correct[inside].mean()), 4) if n else None))
    return EntryErrors(dataset, entry, int(len(labels)), int(len(wrong)), mistakes, pairs, lengths)


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS - 1] + "…"


def read_predictions(predictions_dir: Path, dataset: str, entry: str) -> pd.DataFrame:
    path = Path(predictions_dir) / dataset / f"{entry}.parquet"
    if not path.is_file():
        raise TextclsError(f"{path} not found. Fix: run `dvc repro` (the entry's evaluation writes it).")
    return pq.read_table(path, columns=["row", "label", "pred", "probs"]).to_pandas()


def analyse(entries, predictions_dir: Path, prepared_dir: Path) -> list[EntryErrors]:
    """Every entry's :class:`EntryErrors`, in params order (``entries``: :func:`textcls.config.params.declared_entries`)."""
    from textcls.data.prepared import Prepared

    out, by_dataset = [], {}
    for e in entries:
        if e.dataset not in by_dataset:
            prepared = Prepared(Path(prepared_dir) / e.dataset)
            test = prepared.frame("test").set_index("row")
            by_dataset[e.dataset] = (test["text"], prepared.label_names, length_edges(word_counts(test["text"])))
        texts, names, edges = by_dataset[e.dataset]
        out.append(analyse_entry(e.dataset, e.name, read_predictions(predictions_dir, e.dataset, e.name), texts, names,
                                 edges))
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(results: list[EntryErrors]) -> str:
    lines = ["# Error analysis", "",
             "Per entry, from its test predictions: the most confident mistakes, the most confused class pairs "
             "(gold -> predicted, share of the gold class's rows) and accuracy by text length (word-count quartiles "
             "of the data set's test split, the same buckets for every entry).", ""]
    for dataset in dict.fromkeys(r.dataset for r in results):
        lines += [f"## {dataset}", ""]
        group = [r for r in results if r.dataset == dataset]
        buckets = [b.bucket for b in group[0].lengths]
        lines += ["Accuracy by text length (rows in the bucket):", "",
                  "| entry | " + " | ".join(buckets) + " |", "|---|" + "---:|" * len(buckets)]
        for r in group:
            cells = [f"{b.accuracy:.4f} ({b.n})" if b.accuracy is not None else f"– ({b.n})" for b in r.lengths]
            lines.append(f"| {r.entry} | " + " | ".join(cells) + " |")
        lines.append("")
        for r in group:
            lines += [f"### {dataset} / {r.entry}: {r.errors} of {r.n} test rows wrong", ""]
            if r.pairs:
                lines += ["| gold | predicted | rows | share of gold |", "|---|---|---:|---:|"]
                lines += [f"| {p.gold} | {p.predicted} | {p.count} | {p.share_of_gold:.1%} |" for p in r.pairs]
                lines.append("")
            if r.mistakes:
                lines += ["Most confident mistakes:", "", "| row | gold | predicted | confidence | text |",
                          "|---:|---|---|---:|---|"]
                lines += [f"| {m.row} | {m.gold} | {m.predicted} | {m.confidence:.4f} | {_cell(m.text)} |"
                          for m in r.mistakes]
                lines.append("")
    return "\n".join(lines)


def length_rows(result: EntryErrors) -> pd.DataFrame:
    """The accuracy-by-length plot of one entry: ``bucket, words_low, words_high, n, accuracy``."""
    return pd.DataFrame([{"bucket": b.bucket, "words_low": b.low, "words_high": b.high, "n": b.n,
                          "accuracy": b.accuracy} for b in result.lengths])
