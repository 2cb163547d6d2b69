"""Known-answer tests of the leaderboard (textcls.report.leaderboard): the columns collect reads, the text of the
comparisons, the Markdown view, the metrics JSON and the Pareto plot, each pinned to exact values.

Fast, CPU-only, deterministic: tables are built by hand, predictions written as tiny parquet files.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from textcls.config.params import Entry
from textcls.errors import TextclsError
from textcls.eval import statistics
from textcls.report import leaderboard


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def _entry(dataset: str, name: str) -> Entry:
    return Entry(dataset, name, "model", f"evaluate@{dataset}-{name}", f"train@{dataset}-{name}",
                 f"benchmark@{dataset}-{name}")


def _predictions(folder: Path, dataset: str, model: str, labels, preds, rows=None) -> None:
    path = folder / dataset / f"{model}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.arange(len(labels)) if rows is None else np.asarray(rows)
    pq.write_table(pa.table({"row": rows, "label": np.asarray(labels), "pred": np.asarray(preds)}), path)


# --------------------------------------------------------------------------- collect


def test_collect_reads_n_the_interval_ece_brier_and_keeps_ints_and_none(tmp_path):
    """Check that collect copies n, the accuracy interval, ECE and Brier, comparable_to_published, the train
    columns as they are (an int stays an int, a missing one is None, not NaN) and the metrics as floats."""
    ev, tr = tmp_path / "eval", tmp_path / "train"
    _write(ev / "toy" / "a.json", {"accuracy": 0.9, "loss": 0.3, "n": 200, "comparable_to_published": False,
                                   "accuracy_ci95": {"low": 0.85, "high": 0.94}, "ece": 0.02, "brier": 0.11})
    _write(ev / "toy" / "b.json", {"accuracy": 1, "loss": 0.5, "n": 150})
    _write(tr / "toy" / "a.json", {"params": 110, "train_time_s": 2.5, "kind": "transformer"})
    table = leaderboard.collect([_entry("toy", "a"), _entry("toy", "b")], ev, tr, ["accuracy", "loss"])
    a, b = table.iloc[0], table.iloc[1]
    assert (a["entry"], a["dataset"], a["model"], a["n"]) == ("toy/a", "toy", "a", 200)
    assert (a["accuracy_ci_low"], a["accuracy_ci_high"], a["ece"], a["brier"]) == (0.85, 0.94, 0.02, 0.11)
    assert a["comparable_to_published"] is False and b["comparable_to_published"] is None
    assert a["params"] == 110 and isinstance(a["params"], int) and a["kind"] == "transformer"
    assert b["params"] is None and b["train_time_s"] is None
    assert b["n"] == 150 and b["accuracy"] == 1.0 and table["accuracy"].dtype == float
    assert pd.isna(b["accuracy_ci_low"])  # no interval in its file


def test_collect_error_messages_word_for_word(tmp_path):
    """Check the exact texts: no entry declared; a metric the eval file lacks (naming the keys it has)."""
    ev, tr = tmp_path / "eval", tmp_path / "train"
    _write(ev / "toy" / "a.json", {"accuracy": 0.9, "per_class": {}, "loss": 0.3})
    with pytest.raises(TextclsError) as info:
        leaderboard.collect([], ev, tr, ["accuracy"])
    assert str(info.value) == ("params.yaml declares no leaderboard entry (models, distill.students, llms) on any "
                               "data set. Fix: add a model under `models:`.")
    with pytest.raises(TextclsError) as info:
        leaderboard.collect([_entry("toy", "a")], ev, tr, ["accuracy", "mcc"])
    assert str(info.value) == (f"{ev / 'toy' / 'a.json'} has no 'mcc'. Fix: aggregate.metrics lists only keys "
                               "that evaluate writes (accuracy, loss).")


def test_undeclared_files_skips_folders_and_declared_files_of_any_extension(tmp_path):
    """Check that a declared entry's files of any extension are not listed, an undeclared one's are (sorted), and
    sub-folders never are."""
    folder = tmp_path / "plots"
    for name in ("a.json", "a.reliability.png", "old.png", "b.json"):
        _write(folder / "toy" / name, {})
    (folder / "toy" / "cache").mkdir()
    left = leaderboard.undeclared_files([_entry("toy", "a")], folder)
    assert [p.name for p in left] == ["b.json", "old.png"]


# --------------------------------------------------------------------------- comparisons


def test_vs_reference_text_is_points_interval_and_p():
    """Check the cpu_vs_reference text: points with sign, the interval, p to two significant digits; '' for none."""
    comp = {"diff": 0.012, "low": -0.0031, "high": 0.0256, "p_value": 0.04123}
    assert leaderboard._vs_reference_text(comp) == "+1.2 pt [-0.3, +2.6], p=0.041"
    assert leaderboard._vs_reference_text(None) == ""
    assert leaderboard._vs_reference_text({}) == ""


def test_paired_comparison_on_known_predictions(tmp_path):
    """Check paired_comparison on 10 shared rows where A is wrong on 4 that B gets right: diff -0.4, McNemar
    p = 2/16, the paired bootstrap interval, n; significant only for p < alpha (not at p == alpha)."""
    index = pd.Index(range(100, 110))
    a = pd.Series([True] * 6 + [False] * 4, index=index)
    b = pd.Series([True] * 10, index=index)
    extra = pd.concat([b, pd.Series([False], index=[999])])  # a row only B was scored on: not shared
    out = leaderboard.paired_comparison(a, extra, 200, 3, 0.125)
    boot = statistics.paired_bootstrap_diff(a.to_numpy(), b.to_numpy(), 200, 3)
    assert out == {**boot, "p_value": 0.125, "significant": False, "n": 10}
    assert out["diff"] == -0.4
    assert leaderboard.paired_comparison(a, b, 200, 3, 0.2)["significant"] is True
    with pytest.raises(TextclsError) as info:
        leaderboard.paired_comparison(a, pd.Series([True], index=[5]), 200, 3, 0.05)
    assert str(info.value) == "the two models share no scored test examples. Fix: re-run `dvc repro`."


def test_compare_with_best_fills_every_column_on_a_non_default_index(tmp_path):
    """Check compare_with_best's columns on a table whose index is not 0..n-1: the best gets None in each, the
    other its diff, interval, p-value, verdict and n, exactly as paired_comparison gives them; a second data
    set is compared with its own best."""
    labels = np.zeros(10, dtype=int)
    best = np.zeros(10, dtype=int)
    worse = np.array([0] * 6 + [1] * 4)
    _predictions(tmp_path, "toy", "best", labels, best)
    _predictions(tmp_path, "toy", "worse", labels, worse)
    _predictions(tmp_path, "news", "one", labels[:4], best[:4], rows=[3, 1, 2, 0])
    table = pd.DataFrame([{"dataset": "toy", "model": "best", "rank": 1}, {"dataset": "toy", "model": "worse", "rank": 2},
                          {"dataset": "news", "model": "one", "rank": 1}], index=[10, 20, 30])
    out = leaderboard.compare_with_best(table, tmp_path, 100, 0, 0.2)
    comp = leaderboard.paired_comparison(pd.Series(worse == labels), pd.Series(best == labels), 100, 0, 0.2)
    columns = ["vs_best_diff", "vs_best_low", "vs_best_high", "vs_best_p_value", "vs_best_significant", "vs_best_n"]
    assert list(out.columns) == ["dataset", "model", "rank", *columns]
    assert out.loc[20, columns].tolist() == [comp["diff"], comp["low"], comp["high"], 0.125, True, 10]
    assert out.loc[10, columns].tolist() == [None] * 6 and out.loc[30, columns].tolist() == [None] * 6
    assert "vs_best_diff" not in table.columns  # a copy: the input is unchanged
    correct = leaderboard.correct_predictions(tmp_path, "news", "one")
    assert correct.index.tolist() == [0, 1, 2, 3] and correct.tolist() == [True] * 4


def test_correct_predictions_missing_file_names_it(tmp_path):
    """Check that missing predictions raise TextclsError naming the file and the stage."""
    with pytest.raises(TextclsError) as info:
        leaderboard.correct_predictions(tmp_path, "toy", "m")
    assert str(info.value) == f"{tmp_path / 'toy' / 'm.parquet'} not found. Fix: run `dvc repro evaluate` first."


def test_vs_best_text_known_answers():
    """Check the `vs best` cell: the best says "best", others points, interval, p, the verdict and, when scored
    on fewer rows than the best, on how many."""
    row = {"rank": 2, "vs_best_diff": -0.4, "vs_best_low": -0.7, "vs_best_high": -0.1, "vs_best_p_value": 0.125,
           "vs_best_significant": False, "vs_best_n": 10, "n_best": 10}
    assert leaderboard._vs_best_text(row) == "-40.0 pt [-70.0, -10.0], p=0.12 (not significant)"
    assert leaderboard._vs_best_text({**row, "vs_best_significant": True, "vs_best_n": 6}) == (
        "-40.0 pt [-70.0, -10.0], p=0.12 (significant, on its 6 rows)")
    assert leaderboard._vs_best_text({**row, "n_best": None}).endswith("(not significant)")
    assert leaderboard._vs_best_text({**row, "vs_best_n": None}).endswith("(not significant)")
    assert leaderboard._vs_best_text({"rank": 1, "vs_best_diff": None}) == "best"
    assert leaderboard._vs_best_text({"rank": 1, "vs_best_diff": float("nan")}) == "best"
    assert leaderboard._vs_best_text({"rank": 3, "vs_best_diff": float("nan")}) == ""
    assert leaderboard._vs_best_text({"rank": 3}) == ""


def test_entry_label_says_distilled_and_llm():
    """Check the shown model name: a distilled student names its teacher, an LLM says so, others stay as they are."""
    assert leaderboard._entry_label({"model": "small", "distilled_from": "bert", "kind": "llm"}) == (
        "small (distilled from bert)")
    assert leaderboard._entry_label({"model": "gpt", "kind": "llm", "distilled_from": None}) == "gpt (LLM, few-shot)"
    assert leaderboard._entry_label({"model": "m", "kind": "transformer"}) == "m"


# --------------------------------------------------------------------------- metrics JSON


EXTRA = ("accuracy_ci_low", "accuracy_ci_high", "ece", "brier", "vs_best_diff", "vs_best_p_value", "cpu_accuracy",
         "cpu_p50_ms", "cpu_p95_ms", "cpu_p95_upper_ms", "cpu_speedup", "cpu_samples_per_s",
         "cpu_cost_per_1k_texts_usd", "cpu_model_rss_mb", "gpu_p50_ms", "gpu_p95_ms", "gpu_p95_upper_ms", "size_mb")


def test_to_metrics_json_copies_every_extra_column_and_nan_as_null():
    """Check that each of the 18 extra columns present is copied under its own name (value i + 0.5), NaN as None,
    an integer rank, and that columns the table lacks are left out."""
    row = {"dataset": "toy", "model": "m", "rank": 1.0, "params": 7, "train_time_s": 1.5, "accuracy": 0.9,
           "not_exported": 3.0, **{c: i + 0.5 for i, c in enumerate(EXTRA)}}
    row["gpu_p95_ms"] = float("nan")
    out = leaderboard.to_metrics_json(pd.DataFrame([row]), ["accuracy"])
    expected = {"accuracy": 0.9, "rank": 1, "params": 7, "train_time_s": 1.5,
                **{c: i + 0.5 for i, c in enumerate(EXTRA)}, "gpu_p95_ms": None}
    assert out == {"toy": {"m": expected}}
    assert isinstance(out["toy"]["m"]["rank"], int)
    short = leaderboard.to_metrics_json(pd.DataFrame([{k: row[k] for k in ("dataset", "model", "rank", "params",
                                                                           "train_time_s", "accuracy", "ece")}]),
                                        ["accuracy"])
    assert short == {"toy": {"m": {"accuracy": 0.9, "rank": 1, "params": 7, "train_time_s": 1.5, "ece": 2.5}}}


def test_finite_turns_only_missing_numbers_into_none():
    """Check _finite: None and NaN (also numpy's) become None; numbers, strings and bools stay."""
    assert leaderboard._finite(None) is None and leaderboard._finite(float("nan")) is None
    assert leaderboard._finite(np.float64("nan")) is None
    assert leaderboard._finite(1.5) == 1.5 and leaderboard._finite(0.0) == 0.0 and leaderboard._finite(3) == 3
    assert leaderboard._finite("x") == "x" and leaderboard._finite(False) is False


# --------------------------------------------------------------------------- Markdown


def _markdown_table() -> pd.DataFrame:
    rows = [
        {"entry": "toy/a", "dataset": "toy", "model": "a", "rank": 1, "n": 100, "accuracy": 0.9, "loss": 0.25,
         "accuracy_ci_low": 0.8512, "accuracy_ci_high": 0.93456, "comparable_to_published": False, "params": 10,
         "kind": "transformer", "distilled_from": None, "gpu_variant": "unavailable", "vs_best_diff": None},
        {"entry": "toy/b", "dataset": "toy", "model": "b", "rank": 2, "n": 40, "accuracy": 0.8, "loss": 0.5,
         "accuracy_ci_low": 0.7, "accuracy_ci_high": 0.88, "comparable_to_published": True, "params": 20,
         "kind": "llm", "distilled_from": None, "gpu_variant": "unavailable", "vs_best_diff": -0.05,
         "vs_best_low": -0.1, "vs_best_high": 0.0, "vs_best_p_value": 0.04, "vs_best_significant": True,
         "vs_best_n": 40},
        {"entry": "news/c", "dataset": "news", "model": "c", "rank": 1, "n": 50, "accuracy": 0.75, "loss": 0.6,
         "accuracy_ci_low": 0.6, "accuracy_ci_high": 0.85, "comparable_to_published": True, "params": 30,
         "kind": "transformer", "distilled_from": "a", "gpu_variant": "eager_fp16", "vs_best_diff": None},
    ]
    return pd.DataFrame(rows, dtype=object).astype({"accuracy": float, "loss": float})


MARKDOWN = "\n".join([
    '# Leaderboard',
    '',
    '## news',
    '',
    'Best by accuracy: **c** (0.7500).',
    '',
    "`vs best`: accuracy difference to the best model with a paired bootstrap 95 % interval and McNemar's exact p-value on the same test examples.",
    '',
    '| model                |   rank |   n |   accuracy | accuracy_95ci    | vs_best   |   loss |   params | gpu_variant   |',
    '|:---------------------|-------:|----:|-----------:|:-----------------|:----------|-------:|---------:|:--------------|',
    '| c (distilled from a) |      1 |  50 |     0.7500 | [0.6000, 0.8500] | best      | 0.6000 |       30 | eager_fp16    |',
    '',
    '## toy',
    '',
    'Best by accuracy: **a** (0.9000).',
    '',
    "`vs best`: accuracy difference to the best model with a paired bootstrap 95 % interval and McNemar's exact p-value on the same test examples.",
    '',
    'Splits were carved and/or subsampled: not comparable to published numbers.',
    '',
    'GPU: unavailable on the benchmark machine (no GPU rows measured).',
    '',
    '`n`: test examples scored; a model scored on a subsample is compared with the best on those examples only.',
    '',
    '| model             |   rank |   n |   accuracy | accuracy_95ci    | vs_best                                                     |   loss |   params | gpu_variant   |',
    '|:------------------|-------:|----:|-----------:|:-----------------|:------------------------------------------------------------|-------:|---------:|:--------------|',
    '| a                 |      1 | 100 |     0.9000 | [0.8512, 0.9346] | best                                                        | 0.2500 |       10 | unavailable   |',
    '| b (LLM, few-shot) |      2 |  40 |     0.8000 | [0.7000, 0.8800] | -5.0 pt [-10.0, +0.0], p=0.04 (significant, on its 40 rows) | 0.5000 |       20 | unavailable   |',
    '',
])


def test_to_markdown_known_answer():
    """Check the whole Markdown of a two-data-set leaderboard: sections sorted by name, the best model and its
    score, the notes (not comparable; no GPU; different n), the interval column, labels and the vs-best cell."""
    md = leaderboard.to_markdown(_markdown_table(), "accuracy")
    assert md == MARKDOWN


def test_to_markdown_notes_only_when_they_apply():
    """Check that a section of comparable splits, a measured GPU and one n has none of the three notes, and
    no interval column without interval bounds."""
    table = _markdown_table()
    news = table[table["dataset"] == "news"].drop(columns=["accuracy_ci_low", "accuracy_ci_high"])
    md = leaderboard.to_markdown(news, "loss")
    assert "Best by loss: **c** (0.6000)." in md and "| c (distilled from a) |" in md
    for note in ("not comparable", "GPU: unavailable", "`n`: test examples", "accuracy_95ci"):
        assert note not in md
    no_gpu_column = leaderboard.to_markdown(news.drop(columns=["gpu_variant"]), "loss")
    assert "GPU: unavailable" not in no_gpu_column and "gpu_variant" not in no_gpu_column


# --------------------------------------------------------------------------- Pareto plot


def _capture(monkeypatch) -> list:
    figures = []
    original = leaderboard.figure_png

    def capture(fig):
        figures.append(fig)
        return original(fig)

    monkeypatch.setattr(leaderboard, "figure_png", capture)
    return figures


def _png_size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])


def _wilson(p: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval, written out (independent of statsmodels)."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


PARETO_TABLE = [
    {"dataset": "toy", "model": "big", "params": 400, "cpu_p50_ms": 20.0, "cpu_p95_ms": 40.0, "cpu_accuracy": 0.95,
     "cpu_variant": "eager_fp32", "n": 100},
    {"dataset": "toy", "model": "tiny", "params": 100, "cpu_p50_ms": 1.0, "cpu_p95_ms": 2.0, "cpu_accuracy": 0.90,
     "cpu_variant": "onnx_int8", "n": 100, "cpu_n": 50},
    {"dataset": "toy", "model": "slow", "params": 25, "cpu_p50_ms": 30.0, "cpu_p95_ms": 50.0, "cpu_accuracy": 0.80,
     "cpu_variant": "eager_fp32", "n": 100, "kind": "llm"},
    {"dataset": "ag", "model": "one", "params": 0, "cpu_p50_ms": None, "cpu_p95_ms": 3.0, "cpu_accuracy": 0.5,
     "cpu_variant": "x", "n": 10},
    {"dataset": "zz", "model": "nobench", "params": 1, "cpu_p50_ms": None, "cpu_p95_ms": None, "cpu_accuracy": None,
     "cpu_variant": None, "n": 5},
]


def test_pareto_points_known_answer():
    """Check the plotted points: per data set numbered in leaderboard order, the served accuracy's Wilson interval
    on the rows it was served (cpu_n, else n), p50 / p95, the front on (p95, accuracy); rows without latency out."""
    points = leaderboard.pareto_points(pd.DataFrame(PARETO_TABLE))
    assert points[["dataset", "number", "model", "on_front"]].values.tolist() == [
        ["ag", 1, "one", True], ["toy", 1, "big", True], ["toy", 2, "tiny", True], ["toy", 3, "slow (LLM, few-shot)", False]]
    toy = points[points["dataset"] == "toy"]
    for (_, row), (p, n) in zip(toy.iterrows(), [(0.95, 100), (0.90, 50), (0.80, 100)]):
        assert (row["accuracy_low"], row["accuracy_high"]) == pytest.approx(_wilson(p, n), abs=1e-9)
    assert points["cpu_p50_ms"].tolist()[1:] == [20.0, 1.0, 30.0] and pd.isna(points["cpu_p50_ms"].iloc[0])


def test_pareto_png_known_figure(monkeypatch):
    """Check the plot: one panel per data set (sorted), 7.5 x 4.6 inches each at 110 dpi, titles and axis labels,
    per entry a numbered marker at (p95, served accuracy), a p50-p95 line and an interval bar, a legend beside the
    axes naming each number, front entries filled and joined (dashed, in latency order), a log x axis."""
    import matplotlib.ticker

    figures = _capture(monkeypatch)
    png = leaderboard.pareto_png(pd.DataFrame(PARETO_TABLE))
    [fig] = figures
    assert _png_size(png) == (round(2 * 7.5 * 110), round(4.6 * 110))
    assert fig._suptitle.get_text() == "Accuracy vs latency, best CPU variant per entry"
    ag, toy = fig.axes
    assert (ag.get_title(), toy.get_title()) == ("ag", "toy")
    for ax in (ag, toy):
        assert ax.get_xlabel() == "CPU batch-1 latency, ms (log): marker p95, line from p50"
        assert ax.get_ylabel() == "served test accuracy, 95 % CI"
        assert ax.get_xscale() == "log" and isinstance(ax.xaxis.get_major_formatter(), matplotlib.ticker.FormatStrFormatter)
    legend = [t.get_text() for t in toy.get_legend().get_texts()]
    assert legend == ["1  big (eager_fp32)", "2  tiny (onnx_int8)", "3  slow (LLM, few-shot) (eager_fp32)"]
    assert [(t.get_text(), t.xy) for t in toy.texts] == [("1", (40.0, 0.95)), ("2", (2.0, 0.90)), ("3", (50.0, 0.80))]
    lines = [(ln.get_xdata().tolist(), ln.get_ydata().tolist()) for ln in toy.lines]
    assert ([20.0, 40.0], [0.95, 0.95]) in lines and ([1.0, 2.0], [0.90, 0.90]) in lines  # p50 -> p95
    low, high = _wilson(0.80, 100)
    assert any(x == [50.0, 50.0] and y == pytest.approx([low, high]) for x, y in lines)  # the interval bar
    markers = {tuple(ln.get_xdata().tolist()): ln.get_markerfacecolor() for ln in toy.lines if ln.get_marker() == "o"}
    assert markers[(50.0,)] == "white" and markers[(2.0,)] != "white" and markers[(40.0,)] != "white"
    front = toy.lines[-1]
    assert front.get_xdata().tolist() == [2.0, 40.0] and front.get_linestyle() == "--"
    assert len([ln for ln in ag.lines if ln.get_marker() == "o"]) == 1  # no p50: no span line, still a point


def test_pareto_png_of_a_table_without_latency_is_one_empty_panel(monkeypatch):
    """Check that no benchmarked row (or no served accuracy) gives one panel titled "(no benchmark)", nothing drawn."""
    figures = _capture(monkeypatch)
    for table in (pd.DataFrame([{"dataset": "toy", "model": "m", "params": 1}]),
                  pd.DataFrame(PARETO_TABLE).drop(columns=["cpu_accuracy"])):
        png = leaderboard.pareto_png(table)
        [ax] = figures[-1].axes
        assert ax.get_title() == "(no benchmark)" and not ax.collections and not ax.lines
        assert _png_size(png) == (round(7.5 * 110), round(4.6 * 110))


def test_pareto_markdown_lists_the_front_fastest_first():
    """Check the front table under each data set's leaderboard: fastest first, numbers as in the plot, the served
    accuracy with its interval, p50 and p95; a dominated entry is left out."""
    points = leaderboard.pareto_points(pd.DataFrame(PARETO_TABLE))
    lines = leaderboard.pareto_markdown(points[points["dataset"] == "toy"])
    low_t, high_t = _wilson(0.90, 50)
    low_b, high_b = _wilson(0.95, 100)
    assert lines[2:6] == ["| # | model | variant | served accuracy [95 % CI] | p50 ms | p95 ms |",
                          "|---:|---|---|---:|---:|---:|",
                          f"| 2 | tiny | onnx_int8 | 0.9000 [{low_t:.4f}, {high_t:.4f}] | 1 | 2 |",
                          f"| 1 | big | eager_fp32 | 0.9500 [{low_b:.4f}, {high_b:.4f}] | 20 | 40 |"]
    assert len(lines) == 7 and leaderboard.pareto_markdown(points.iloc[0:0]) == []


# --------------------------------------------------------------------------- more known answers


def _measured_device(variant: str, p50: float) -> dict:
    return {"status": "measured", "best_variant": variant, "variants": {variant: {
        "latency_ms": {"p50": p50, "p95": 2 * p50, "p95_upper": 3 * p50}, "accuracy": 0.9, "speedup_p50": 1.0,
        "samples_per_s": 100.0, "cost_per_1k_texts_usd": 0.5, "gpu_memory_mb": 321.0, "model_rss_mb": 12.0}}}


def test_vs_reference_text_scales_every_number_by_exactly_100():
    """Check that diff, low and high are each shown in points (x 100): +50.0 [-30.0, +90.0]."""
    comp = {"diff": 0.5, "low": -0.3, "high": 0.9, "p_value": 0.5}
    assert leaderboard._vs_reference_text(comp) == "+50.0 pt [-30.0, +90.0], p=0.5"


def test_benchmark_columns_of_a_gpu_only_model_still_fill_the_gpu_columns():
    """Check that an unmeasured CPU does not stop the GPU columns from being filled."""
    row = leaderboard.benchmark_columns({"size_mb": 2.0, "cpu": {"status": "not_applicable", "reason": "GPU-only"},
                                         "cuda": _measured_device("eager_fp16", 1.5)})
    assert row["cpu_variant"] == "not applicable (GPU-only)" and row["cpu_p50_ms"] is None
    assert (row["gpu_variant"], row["gpu_p50_ms"], row["gpu_p95_upper_ms"], row["gpu_memory_mb"]) == (
        "eager_fp16", 1.5, 4.5, 321.0)


def test_collect_with_a_benchmark_folder_adds_the_benchmark_columns(tmp_path):
    """Check that with bench_dir, each row gets its benchmark's columns (best CPU variant, size)."""
    ev, tr, bench = tmp_path / "eval", tmp_path / "train", tmp_path / "bench"
    _write(ev / "toy" / "a.json", {"accuracy": 0.9})
    _write(bench / "toy" / "a.json", {"size_mb": 3.25, "cpu": _measured_device("onnx_int8", 2.0),
                                      "cuda": {"status": "unavailable", "reason": "no GPU"}})
    row = leaderboard.collect([_entry("toy", "a")], ev, tr, ["accuracy"], bench).iloc[0]
    assert (row["size_mb"], row["cpu_variant"], row["cpu_p50_ms"], row["cpu_model_rss_mb"]) == (
        3.25, "onnx_int8", 2.0, 12.0)
    assert row["gpu_variant"] == "unavailable"


def test_compare_with_best_without_shared_rows_names_the_models(tmp_path):
    """Check that a model scored on other rows than the best fails naming the data set and both models."""
    _predictions(tmp_path, "toy", "best", [0, 1], [0, 1], rows=[0, 1])
    _predictions(tmp_path, "toy", "other", [0, 1], [0, 1], rows=[5, 6])
    table = pd.DataFrame([{"dataset": "toy", "model": "best", "rank": 1}, {"dataset": "toy", "model": "other", "rank": 2}])
    with pytest.raises(TextclsError) as info:
        leaderboard.compare_with_best(table, tmp_path, 10, 0, 0.05)
    assert str(info.value) == "toy: other and best share no scored test examples. Fix: re-run `dvc repro`."


def test_rank_unknown_column_lists_the_columns():
    """Check the exact error of an unknown sort_by: the columns, comma-separated."""
    with pytest.raises(TextclsError) as info:
        leaderboard.rank(pd.DataFrame([{"dataset": "toy", "model": "m", "accuracy": 0.5}]), "bleu")
    assert str(info.value) == ("aggregate.sort_by='bleu' is not a leaderboard column. "
                               "Fix: use one of dataset, model, accuracy.")


def test_figure_png_closes_the_figure_it_was_given_not_the_current_one():
    """Check that figure_png closes its own figure, leaving another (current) figure open."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine, other = plt.figure(), plt.figure()
    try:
        png = leaderboard.figure_png(mine)
        assert png[:4] == b"\x89PNG"
        assert not plt.fignum_exists(mine.number) and plt.fignum_exists(other.number)
    finally:
        plt.close("all")


def test_to_markdown_formats_missing_numbers_in_lower_case():
    """Check the float format of the Markdown table: 4 decimals, a missing value as nan (not NAN)."""
    table = pd.DataFrame([{"dataset": "toy", "model": "a", "rank": 1, "accuracy": 0.9, "loss": float("nan"),
                           "comparable_to_published": True}])
    md = leaderboard.to_markdown(table, "accuracy")
    assert md.split("\n")[-2] == "| a       |      1 |     0.9000 | best      |    nan |"


def test_to_markdown_shows_auroc_next_to_the_other_quality_metrics():
    """Check that an auroc column (aggregate.metrics) is shown, after the vs-best cell and before the loss."""
    table = _markdown_table()
    assert len(table) == 3
    table["auroc"] = [0.9512, 0.8123, 0.7001]
    md = leaderboard.to_markdown(table, "accuracy")
    header = next(line for line in md.splitlines() if line.startswith("| model") and "vs_best" in line)
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells.index("vs_best") + 1 == cells.index("auroc") == cells.index("loss") - 1
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()
            if line.startswith("| ") and not line.startswith("| model")}
    assert {name.split(" ")[0]: row[cells.index("auroc")] for name, row in rows.items()} == \
        {"a": "0.9512", "b": "0.8123", "c": "0.7001"}


def test_curves_of_an_entry_are_its_roc_and_pr_from_the_saved_probabilities(tmp_path):
    """Check curves() against hand-computed points of a binary case (positives at .9 and .4, negatives at .6 and
    .1): interpolated precision 1 up to recall .5, then 2/3; TPR .5 at FPR .25 and 1 from FPR .75; 101 points
    each; a missing predictions file names the stage to run."""
    path = tmp_path / "toy" / "m.parquet"
    path.parent.mkdir(parents=True)
    probs = [[0.1, 0.9], [0.6, 0.4], [0.4, 0.6], [0.9, 0.1]]
    pq.write_table(pa.table({"row": [0, 1, 2, 3], "label": [1, 1, 0, 0], "pred": [1, 0, 1, 0], "probs": probs}), path)
    got = leaderboard.curves(tmp_path, "toy", "m")
    roc, pr = got["roc"], got["pr"]
    assert list(roc.columns) == ["fpr", "tpr"] and list(pr.columns) == ["recall", "precision"]
    assert len(roc) == len(pr) == 101
    at = roc.set_index("fpr")["tpr"]
    assert (at[0.25], at[0.75], at[1.0]) == (0.5, 1.0, 1.0)
    prec = pr.set_index("recall")["precision"]
    assert (prec[0.0], prec[0.5], prec[0.51], prec[1.0]) == (1.0, 1.0, round(2 / 3, 6), round(2 / 3, 6))
    with pytest.raises(TextclsError, match="dvc repro evaluate"):
        leaderboard.curves(tmp_path, "toy", "absent")
