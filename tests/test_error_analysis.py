"""Error analysis (textcls.report.errors): confident mistakes, confused pairs and accuracy by length, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from textcls.errors import TextclsError
from textcls.report import errors

NAMES = ["world", "sports", "business"]
TEXTS = pd.Series({10: "a b", 11: "a b c", 12: "a b c d e f", 13: "one two three four five six seven eight",
                   14: "x", 15: "p q r s"})


def _predictions(rows, labels, probs) -> pd.DataFrame:
    probs = np.asarray(probs, dtype=np.float32)
    return pd.DataFrame({"row": rows, "label": labels, "pred": probs.argmax(axis=1), "probs": list(probs)})


def test_length_edges_are_word_count_quartiles_with_ties_merged():
    """Check the buckets: 1..8 words -> quartile cuts at 2, 4, 6 (floored) -> 1-2, 3-4, 5-6, 7-8; all equal -> one."""
    assert errors.length_edges(np.arange(1, 9)) == [(1, 2), (3, 4), (5, 6), (7, 8)]
    assert errors.length_edges(np.array([5, 5, 5, 5])) == [(5, 5)]
    with pytest.raises(TextclsError, match="no texts"):
        errors.length_edges(np.array([], dtype=int))


def test_analyse_entry_known_answer():
    """Check one entry: 3 of 6 rows wrong; the mistakes most confident first (row 13 at .9, row 15 at .7, row 11 at
    .6); pairs world->sports 2 (2 of 3 world rows) before sports->business 1; accuracy per length bucket."""
    preds = _predictions(
        [10, 11, 12, 13, 14, 15], [0, 0, 1, 0, 2, 1],
        [[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.05, 0.9, 0.05], [0.1, 0.1, 0.8], [0.1, 0.2, 0.7]])
    edges = [(1, 2), (3, 4), (5, 8)]
    out = errors.analyse_entry("news", "m", preds, TEXTS, NAMES, edges, top_mistakes=2)
    assert (out.n, out.errors) == (6, 3)
    assert [(m.row, m.gold, m.predicted, m.confidence) for m in out.mistakes] == [
        (13, "world", "sports", 0.9), (15, "sports", "business", 0.7)]
    assert out.mistakes[0].text == "one two three four five six seven eight"
    assert [(p.gold, p.predicted, p.count, p.share_of_gold) for p in out.pairs] == [
        ("world", "sports", 2, round(2 / 3, 4)), ("sports", "business", 1, 0.5)]
    # 1-2 words: rows 10 (right), 14 (right); 3-4: rows 11 (wrong), 15 (wrong); 5-8: rows 12 (right), 13 (wrong)
    assert [(b.bucket, b.n, b.accuracy) for b in out.lengths] == [
        ("1-2 words", 2, 1.0), ("3-4 words", 2, 0.0), ("5-8 words", 2, 0.5)]


def test_analyse_entry_of_a_subsample_and_without_mistakes():
    """Check an entry scored on some rows only (an LLM): empty buckets say None, no mistakes, no pairs."""
    preds = _predictions([10, 14], [0, 2], [[0.9, 0.05, 0.05], [0.1, 0.1, 0.8]])
    out = errors.analyse_entry("news", "llm", preds, TEXTS, NAMES, [(1, 2), (3, 8)])
    assert (out.errors, out.mistakes, out.pairs) == (0, [], [])
    assert [(b.n, b.accuracy) for b in out.lengths] == [(2, 1.0), (0, None)]
    assert "| llm | 1.0000 (2) | – (0) |" in errors.to_markdown([out])
    rows = errors.length_rows(out)
    assert rows[["bucket", "words_low", "words_high", "n"]].values.tolist() == [["1-2 words", 1, 2, 2], ["3-8 words", 3, 8, 0]]
    assert rows["accuracy"].iloc[0] == 1.0 and pd.isna(rows["accuracy"].iloc[1])  # an empty cell in the CSV


@pytest.mark.bad_input
def test_predictions_for_rows_not_in_the_test_split_are_one_clear_error():
    """Check that predicted rows missing from the prepared test split fail naming the entry and a row."""
    preds = _predictions([10, 99], [0, 0], [[0.9, 0.05, 0.05], [0.9, 0.05, 0.05]])
    with pytest.raises(TextclsError, match=r"news/m: 1 predicted test row\(s\) .*row 99"):
        errors.analyse_entry("news", "m", preds, TEXTS, NAMES, [(1, 8)])


def test_markdown_report_lists_buckets_pairs_and_mistakes_with_pipes_escaped():
    """Check the report: a data set section with the by-length table, then per entry its pairs and mistakes."""
    texts = TEXTS.copy()
    texts[13] = "a | b"
    preds = _predictions([10, 13], [0, 0], [[0.8, 0.1, 0.1], [0.05, 0.9, 0.05]])
    md = errors.to_markdown([errors.analyse_entry("news", "m", preds, texts, NAMES, [(1, 2), (3, 8)])])
    assert "## news" in md and "| entry | 1-2 words | 3-8 words |" in md
    assert "| m | 1.0000 (1) | 0.0000 (1) |" in md
    assert "### news / m: 1 of 2 test rows wrong" in md and "| world | sports | 1 | 50.0% |" in md
    assert "| 13 | world | sports | 0.9000 | a \\| b |" in md
