"""TF-IDF baseline persistence, test metrics and the leaderboard."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from textcls.kinds import tfidf_model as baseline

from textcls.eval import evaluation

from textcls.report import leaderboard
from textcls.errors import TextclsError
from textcls.config.params import Entry, TfidfParams

# --------------------------------------------------------------------------- TF-IDF baseline

TOPICS = {
    0: ["world leader talks", "war talks world", "leader of the world", "world war leader"],
    1: ["team game win", "match lost team", "game match win", "team win match"],
    2: ["stock market price", "shares price market", "market shares stock", "price of stock"],
    3: ["space science computer", "software computer science", "science of space", "computer software space"],
}
TRAIN_TEXTS = [t for texts in TOPICS.values() for t in texts]
TRAIN_LABELS = np.array([label for label, texts in TOPICS.items() for _ in texts])
PROBE_TEXTS = ["world talks", "team match", "stock shares", "space software", "world market game science",
               "unseen words only", "price war"]


@pytest.fixture
def tfidf_cfg() -> TfidfParams:
    return TfidfParams(ngram_max=2, min_df=1, max_features=None, C=10.0, max_iter=1000)


@pytest.fixture
def fitted(tfidf_cfg) -> baseline.TfidfClassifier:
    """A 4-class TF-IDF model whose coef_ is Fortran-ordered (as lbfgs leaves it; forced so the test always covers it)."""
    model = baseline.TfidfClassifier.fit(TRAIN_TEXTS, TRAIN_LABELS, tfidf_cfg, seed=0)
    model.clf.coef_ = np.asfortranarray(model.clf.coef_)
    assert model.clf.coef_.shape[0] == 4 and model.clf.coef_.shape[1] > 4  # a transpose cannot go unnoticed
    assert not model.clf.coef_.flags.c_contiguous
    return model


def test_tfidf_round_trip(tmp_path, fitted, tfidf_cfg):
    """Check that a saved and reloaded TF-IDF model gives identical probabilities, coefficients and classes."""
    before = fitted.predict_proba(PROBE_TEXTS)
    fitted.save(tmp_path, tfidf_cfg)
    loaded = baseline.TfidfClassifier.load(tmp_path, tfidf_cfg)
    after = loaded.predict_proba(PROBE_TEXTS)
    assert after.shape == (len(PROBE_TEXTS), 4)
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(loaded.clf.coef_, fitted.clf.coef_)
    np.testing.assert_array_equal(loaded.clf.classes_, [0, 1, 2, 3])
    assert loaded.n_parameters == fitted.n_parameters
    assert loaded.predict_proba(TRAIN_TEXTS).argmax(axis=1).tolist() == TRAIN_LABELS.tolist()


def test_tfidf_round_trip_catches_transposed_coef(tmp_path, fitted, tfidf_cfg, monkeypatch):
    """Check that the round-trip test would catch the old bug (Fortran-ordered coef_ saved as raw, transposed bytes)."""

    class NumpyWithoutContiguous:  # numpy as baseline.py sees it, minus the fix
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def ascontiguousarray(a):
            return a

    monkeypatch.setattr(baseline, "np", NumpyWithoutContiguous())
    fitted.save(tmp_path, tfidf_cfg)
    loaded = baseline.TfidfClassifier.load(tmp_path, tfidf_cfg)
    assert not np.allclose(loaded.predict_proba(PROBE_TEXTS), fitted.predict_proba(PROBE_TEXTS))


def test_tfidf_saved_without_pickle(tmp_path, fitted, tfidf_cfg):
    """Check that the saved folder holds only vocabulary.json and tfidf.safetensors (no pickle/joblib files)."""
    fitted.save(tmp_path, tfidf_cfg)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["tfidf.safetensors", "vocabulary.json"]
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".joblib", ".bin", ".pt", ".npy", ".npz"))]
    vocab = json.loads((tmp_path / "vocabulary.json").read_text(encoding="utf-8"))
    assert vocab == {t: int(i) for t, i in fitted.vectorizer.vocabulary_.items()}


def test_train_tfidf_metrics(tfidf_cfg):
    """Check that train_tfidf returns the model and validation metrics with the train-metrics keys."""
    model, metrics = baseline.train_tfidf(TRAIN_TEXTS, TRAIN_LABELS, PROBE_TEXTS[:4], [0, 1, 2, 3], tfidf_cfg, 0)
    assert isinstance(model, baseline.TfidfClassifier)
    assert metrics["val_accuracy"] == 1.0
    assert metrics["train_rows"] == len(TRAIN_TEXTS)
    assert metrics["params"] == model.n_parameters
    assert {"train_time_s", "val_f1_macro", "val_loss", "vocabulary_size", "device", "precision"} <= set(metrics)


# --------------------------------------------------------------------------- evaluation

NAMES = ["a", "b", "c"]
LABELS = np.array([0, 0, 1, 1, 2])
PROBS = np.array([
    [0.7, 0.2, 0.1],  # pred a, true a
    [0.4, 0.5, 0.1],  # pred b, true a
    [0.1, 0.8, 0.1],  # pred b, true b
    [0.2, 0.6, 0.2],  # pred b, true b
    [0.5, 0.3, 0.2],  # pred a, true c
])


def test_classification_metrics_hand_computed():
    """Check that classification_metrics matches hand-computed accuracy, F1, log loss and per-class scores."""
    m = evaluation.classification_metrics(LABELS, PROBS, NAMES)
    # a: tp 1, fp 1, fn 1 -> P .5 R .5 F1 .5; b: tp 2, fp 1, fn 0 -> P 2/3 R 1 F1 .8; c: never predicted -> 0
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["f1_macro"] == pytest.approx((0.5 + 0.8 + 0.0) / 3, abs=1e-6)
    assert m["f1_weighted"] == pytest.approx((0.5 * 2 + 0.8 * 2 + 0.0 * 1) / 5, abs=1e-6)
    expected_loss = -(math.log(0.7) + math.log(0.4) + math.log(0.8) + math.log(0.6) + math.log(0.2)) / 5
    assert m["loss"] == pytest.approx(expected_loss, abs=1e-6)
    assert m["n"] == 5
    assert list(m["per_class"]) == NAMES
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_class"]["b"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2},
                                                abs=1e-6)
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    json.dumps(m)  # plain Python types only


def test_classification_metrics_class_absent_from_test():
    """Check that a class with no test rows still appears in per_class (support 0) and loss stays finite."""
    labels = np.array([0, 0, 1])
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1]])
    m = evaluation.classification_metrics(labels, probs, NAMES)
    assert m["per_class"]["c"]["support"] == 0
    assert m["accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert math.isfinite(m["loss"])


@pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")
def test_classification_metrics_zero_probability_clipped():
    """Check that a zero probability on the true class gives a finite, clipped loss (-log 1e-7)."""
    labels = np.array([0, 1])
    probs = np.array([[0.0, 1.0], [0.0, 1.0]])
    m = evaluation.classification_metrics(labels, probs, ["x", "y"])
    assert m["loss"] == pytest.approx(-math.log(1e-7) / 2, rel=1e-3)


def test_confusion_rows():
    """Check that confusion_rows gives one {actual, predicted} row of class names per example."""
    preds = PROBS.argmax(axis=1)
    assert evaluation.confusion_rows(LABELS, preds, NAMES) == [
        {"actual": "a", "predicted": "a"},
        {"actual": "a", "predicted": "b"},
        {"actual": "b", "predicted": "b"},
        {"actual": "b", "predicted": "b"},
        {"actual": "c", "predicted": "a"},
    ]


# --------------------------------------------------------------------------- leaderboard

METRICS = ["accuracy", "f1_macro", "loss"]


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def eval_metrics(acc: float, loss: float, comparable: bool = False) -> dict:
    return {"accuracy": acc, "f1_macro": acc - 0.01, "f1_weighted": acc - 0.02, "loss": loss, "n": 100,
            "per_class": {"x": {"f1": acc}}, "comparable_to_published": comparable}


@pytest.fixture
def metric_dirs(tmp_path) -> tuple[Path, Path]:
    """eval/<dataset>/<model>.json for two data sets, train metrics for some of them."""
    ev, tr = tmp_path / "eval", tmp_path / "train"
    write_json(ev / "ag_news" / "bert.json", eval_metrics(0.90, 0.30))
    write_json(ev / "ag_news" / "minilm.json", eval_metrics(0.92, 0.35))
    write_json(ev / "ag_news" / "tfidf.json", eval_metrics(0.85, 0.45))
    write_json(ev / "sst2" / "minilm.json", eval_metrics(0.80, 0.40, comparable=True))
    write_json(ev / "sst2" / "tfidf.json", eval_metrics(0.78, 0.50, comparable=True))
    for dataset, model, params in (("ag_news", "bert", 110), ("ag_news", "minilm", 22), ("ag_news", "tfidf", 5),
                                   ("sst2", "minilm", 22), ("sst2", "tfidf", 3)):
        write_json(tr / dataset / f"{model}.json", {"params": params, "train_time_s": 1.5, "device": "cpu",
                                                    "precision": "fp32", "train_samples_per_s": 10.0})
    return ev, tr


PAIRS = (("ag_news", "bert"), ("ag_news", "minilm"), ("ag_news", "tfidf"), ("sst2", "minilm"), ("sst2", "tfidf"))


def entries(pairs=PAIRS) -> list[Entry]:
    """Declared model entries, as textcls.config.params.declared_entries makes them."""
    return [Entry(ds, m, "model", f"evaluate@{ds}-{m}", f"train@{ds}-{m}", f"benchmark@{ds}-{m}") for ds, m in pairs]


def collect(ev, tr, metrics, bench=None, pairs=PAIRS):
    return leaderboard.collect(entries(pairs), ev, tr, metrics, bench)


def test_collect(metric_dirs):
    """Check that collect makes one row per declared entry with its metrics and train columns."""
    table = collect(*metric_dirs, METRICS)
    assert len(table) == 5
    assert table["entry"].tolist() == ["ag_news/bert", "ag_news/minilm", "ag_news/tfidf", "sst2/minilm", "sst2/tfidf"]
    row = table.set_index("entry").loc["ag_news/minilm"]
    assert row["accuracy"] == 0.92 and row["loss"] == 0.35 and row["params"] == 22 and row["device"] == "cpu"
    assert "per_class" not in table.columns and "f1_weighted" not in table.columns


def test_collect_without_train_file(metric_dirs):
    """Check that a model without train metrics still gets a row, with empty train columns."""
    ev, tr = metric_dirs
    (tr / "sst2" / "tfidf.json").unlink()
    table = collect(ev, tr, METRICS)
    row = table.set_index("entry").loc["sst2/tfidf"]
    assert pd.isna(row["train_time_s"])


def test_rank_per_dataset(metric_dirs):
    """Check that rank orders best first within each data set (accuracy descending) and numbers ranks from 1."""
    table = leaderboard.rank(collect(*metric_dirs, METRICS), "accuracy")
    assert table["entry"].tolist() == ["ag_news/minilm", "ag_news/bert", "ag_news/tfidf", "sst2/minilm", "sst2/tfidf"]
    assert table["rank"].tolist() == [1, 2, 3, 1, 2]
    assert list(table.columns[:4]) == ["entry", "dataset", "model", "rank"]


def test_rank_loss_ascending(metric_dirs):
    """Check that ranking by loss puts the lowest loss first."""
    table = leaderboard.rank(collect(*metric_dirs, METRICS), "loss")
    ag = table[table["dataset"] == "ag_news"]
    assert ag["model"].tolist() == ["bert", "minilm", "tfidf"]
    assert ag["loss"].is_monotonic_increasing


def test_rank_unknown_sort_by(metric_dirs):
    """Check that an unknown sort_by raises TextclsError listing the columns."""
    table = collect(*metric_dirs, METRICS)
    with pytest.raises(TextclsError, match=r"sort_by='bleu' is not a leaderboard column.*Fix"):
        leaderboard.rank(table, "bleu")


def test_collect_missing_metric(metric_dirs):
    """Check that a metric listed in aggregate.metrics but absent from an eval file raises TextclsError naming it."""
    with pytest.raises(TextclsError, match=r"has no 'mcc'.*Fix"):
        collect(*metric_dirs, [*METRICS, "mcc"])


def test_collect_reads_exactly_the_declared_entries(metric_dirs, tmp_path):
    """Check that result files of entries params no longer declares (a removed model, another profile's data
    set) never become rows, and that undeclared_files names exactly those files."""
    ev, tr = metric_dirs
    write_json(ev / "imdb" / "bert.json", eval_metrics(0.99, 0.01))  # another profile's data set
    declared = (("ag_news", "minilm"), ("sst2", "tfidf"))
    table = collect(ev, tr, METRICS, pairs=declared)
    assert table["entry"].tolist() == ["ag_news/minilm", "sst2/tfidf"]
    left = leaderboard.undeclared_files(entries(declared), ev, tr)
    assert [p.relative_to(tmp_path).as_posix() for p in left] == [
        "eval/ag_news/bert.json", "eval/ag_news/tfidf.json", "eval/imdb/bert.json", "eval/sst2/minilm.json",
        "train/ag_news/bert.json", "train/ag_news/tfidf.json", "train/sst2/minilm.json"]


@pytest.mark.bad_input
def test_declared_entry_without_results_names_the_stage_to_run(metric_dirs):
    """Check that a declared entry whose evaluation (or benchmark) is missing is one error naming the entry
    and the stage that makes it."""
    ev, tr = metric_dirs
    with pytest.raises(TextclsError, match=r"declares sst2/bert, but it has no evaluation metrics\. "
                                           r"Fix: run `dvc repro evaluate@sst2-bert`"):
        collect(ev, tr, METRICS, pairs=(("ag_news", "bert"), ("sst2", "bert")))
    with pytest.raises(TextclsError, match=r"declares ag_news/bert, but it has no benchmark results\. "
                                           r"Fix: run `dvc repro benchmark@ag_news-bert`"):
        collect(ev, tr, METRICS, ev.parent / "benchmark", pairs=(("ag_news", "bert"),))
    with pytest.raises(TextclsError, match="declares no leaderboard entry"):
        leaderboard.collect([], ev, tr, METRICS)


def test_to_metrics_json(metric_dirs):
    """Check that to_metrics_json nests {dataset: {model: metrics + rank + params + train time}}, JSON-serialisable."""
    table = leaderboard.rank(collect(*metric_dirs, METRICS), "accuracy")
    out = leaderboard.to_metrics_json(table, METRICS)
    assert set(out) == {"ag_news", "sst2"}
    assert set(out["ag_news"]) == {"bert", "minilm", "tfidf"}
    assert out["ag_news"]["minilm"] == {"accuracy": 0.92, "f1_macro": pytest.approx(0.91), "loss": 0.35, "rank": 1,
                                        "params": 22, "train_time_s": 1.5}
    assert out["sst2"]["tfidf"]["rank"] == 2
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_to_metrics_json_without_train_file(metric_dirs):
    """Check that a model without train metrics gets null params in valid JSON and the others keep integer params."""
    ev, tr = metric_dirs
    (tr / "sst2" / "tfidf.json").unlink()
    table = leaderboard.rank(collect(ev, tr, METRICS), "accuracy")
    out = leaderboard.to_metrics_json(table, METRICS)
    json.dumps(out, allow_nan=False)
    assert out["sst2"]["tfidf"]["params"] is None
    assert isinstance(out["ag_news"]["minilm"]["params"], int)


def test_to_markdown(metric_dirs):
    """Check that to_markdown has a section per data set, names the best model and flags non-comparable numbers."""
    table = leaderboard.rank(collect(*metric_dirs, METRICS), "accuracy")
    md = leaderboard.to_markdown(table, "accuracy")
    assert md.startswith("# Leaderboard")
    assert "## ag_news" in md and "## sst2" in md
    assert "Best by accuracy: **minilm** (0.9200)." in md
    assert "Best by accuracy: **minilm** (0.8000)." in md
    ag_section, sst2_section = md.split("## sst2")
    assert "not comparable to published numbers" in ag_section
    assert "not comparable to published numbers" not in sst2_section
    assert "| model" in md and "ag_news/minilm" not in md  # entry column dropped


# --------------------------------------------------------------------------- fast metrics of the bootstrap


@pytest.mark.parametrize("seed", range(40))
def test_macro_f1_score_is_sklearns_bit_for_bit(seed):
    """Check macro_f1_score against sklearn's f1_score(labels=range(k), average="macro", zero_division=0) on random
    cases, some with a class never predicted or never present; and accuracy against accuracy_score."""
    from sklearn.metrics import accuracy_score, f1_score

    from textcls.eval.evaluation import accuracy, macro_f1_score

    rng = np.random.default_rng(seed)
    k, n = int(rng.integers(2, 6)), int(rng.integers(1, 200))
    labels = rng.integers(0, k - (seed % 4 == 1), n)  # every 4th case: the last class absent from labels
    preds = np.where(rng.random(n) < 0.7, labels, rng.integers(0, k - (seed % 3 == 0), n))
    assert macro_f1_score(labels, preds, k) == f1_score(labels, preds, labels=list(range(k)), average="macro",
                                                        zero_division=0)
    assert accuracy(labels, preds) == accuracy_score(labels, preds)


def test_macro_f1_known_answer_with_an_unseen_class():
    """Check a hand-computed case: class 0 F1 = 2*1/(2+1), class 1 F1 = 2*1/(1+2), class 2 absent (0): mean 4/9."""
    from textcls.eval.evaluation import macro_f1_score

    assert macro_f1_score(np.array([0, 0, 1]), np.array([0, 1, 1]), 3) == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)


@pytest.mark.parametrize("seed", range(30))
def test_auroc_and_average_precision_are_sklearns(seed):
    """Check auroc / average_precision against sklearn on random cases (2-5 classes, every other case with tied
    scores): binary on the positive class, else macro one-vs-rest."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.preprocessing import label_binarize

    from textcls.eval.evaluation import auroc, average_precision

    rng = np.random.default_rng(seed)
    k, n = int(rng.integers(2, 6)), int(rng.integers(20, 300))
    labels = np.r_[np.arange(k), rng.integers(0, k, n - k)]  # every class present
    probs = rng.dirichlet(np.ones(k), n)
    if seed % 2:
        probs = np.round(probs, 1) + 1e-3
        probs /= probs.sum(axis=1, keepdims=True)
    if k == 2:
        want_auc, want_ap = roc_auc_score(labels, probs[:, 1]), average_precision_score(labels, probs[:, 1])
    else:
        want_auc = roc_auc_score(labels, probs, multi_class="ovr", average="macro")
        want_ap = average_precision_score(label_binarize(labels, classes=list(range(k))), probs, average="macro")
    assert auroc(labels, probs) == pytest.approx(want_auc, abs=1e-12)
    assert average_precision(labels, probs) == pytest.approx(want_ap, abs=1e-12)


def test_auroc_and_average_precision_known_answers():
    """Check hand-computed cases: positives at scores .9 and .4, negatives at .6 and .1 -> 3 of 4 pairs ordered
    (AUROC .75), AP = 1/2 * 1 + 1/2 * 2/3; a tie between a positive and a negative counts one half; a perfect
    3-class ranking is 1; a class absent from the labels is left out of the macro mean."""
    from textcls.eval.evaluation import auroc, average_precision

    two = np.array([[0.1, 0.9], [0.6, 0.4], [0.4, 0.6], [0.9, 0.1]])
    labels = np.array([1, 1, 0, 0])
    assert auroc(labels, two) == pytest.approx(0.75)
    assert average_precision(labels, two) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert auroc(np.array([1, 0]), np.array([[0.5, 0.5], [0.5, 0.5]])) == pytest.approx(0.5)
    three = np.eye(3)[[0, 1, 2, 0]] * 0.8 + 0.2 / 3
    assert auroc(np.array([0, 1, 2, 0]), three) == 1.0 and average_precision(np.array([0, 1, 2, 0]), three) == 1.0
    only_two = np.eye(3)[[0, 1, 1, 0]] * 0.8 + 0.2 / 3
    assert auroc(np.array([0, 1, 1, 0]), only_two) == 1.0  # class 2 absent: the mean over classes 0 and 1


def test_macro_curves_average_the_classes_and_match_auroc():
    """Check roc_points / pr_points: more than two classes, the mean of the one-vs-rest curves (a perfect ranking
    gives TPR 1 and precision 1 everywhere past 0); the area under the sampled ROC is the AUROC (to the grid's
    resolution); with every score tied the precision is the class prevalence at every recall."""
    from textcls.eval.curves import pr_points, roc_points
    from textcls.eval.evaluation import auroc

    labels = np.array([0, 1, 2, 0, 1, 2])
    perfect = np.eye(3)[labels] * 0.7 + 0.1
    assert all(p["tpr"] == 1.0 for p in roc_points(labels, perfect)[1:])
    assert all(p["precision"] == 1.0 for p in pr_points(labels, perfect))
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 600)
    probs = rng.dirichlet(np.ones(4), 600) * 0.9 + np.eye(4)[y] * 0.1
    roc = roc_points(y, probs)
    area = np.trapezoid([p["tpr"] for p in roc], [p["fpr"] for p in roc])
    assert area == pytest.approx(auroc(y, probs), abs=2e-3)
    binary = (rng.random(600) < 0.3).astype(int)
    tied = np.full((600, 2), 0.5)  # one threshold: every recall has the prevalence as its precision
    assert {p["precision"] for p in pr_points(binary, tied)[1:]} == {round(binary.mean(), 6)}  # recall 0: 1 by convention


def test_uncertainty_metrics_report_auroc_with_a_bootstrap_interval():
    """Check that uncertainty_metrics carries auroc / average_precision and their intervals (bootstrap_ci of the
    same functions, same seed), the value inside its interval."""
    from textcls.eval import statistics
    from textcls.eval.evaluation import auroc, average_precision, uncertainty_metrics

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 150)
    probs = rng.dirichlet(np.ones(3), 150) * 0.8 + np.eye(3)[labels] * 0.2
    out = uncertainty_metrics(labels, probs, 200, 10, seed=7)
    assert out["auroc"] == round(auroc(labels, probs), 6) and out["average_precision"] == round(
        average_precision(labels, probs), 6)
    assert out["auroc_ci95"] == statistics.bootstrap_ci(labels, probs, auroc, 200, 7)
    assert out["auroc_ci95"]["low"] <= out["auroc"] <= out["auroc_ci95"]["high"] < 1.0
    assert out["average_precision_ci95"]["low"] <= out["average_precision"] <= out["average_precision_ci95"]["high"]


def test_uncertainty_intervals_match_a_bootstrap_of_sklearns_metrics():
    """Check that the accuracy and macro-F1 intervals equal bootstrap_ci over sklearn's metrics, same seed."""
    from sklearn.metrics import accuracy_score, f1_score

    from textcls.eval import statistics
    from textcls.eval.evaluation import uncertainty_metrics

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 150)
    probs = rng.dirichlet(np.ones(3), 150)
    probs[np.arange(150)[:100], labels[:100]] += 2.0  # mostly right
    probs /= probs.sum(axis=1, keepdims=True)
    out = uncertainty_metrics(labels, probs, 200, 10, seed=5)
    preds = probs.argmax(axis=1)
    assert out["accuracy_ci95"] == statistics.bootstrap_ci(labels, preds, accuracy_score, 200, 5)
    assert out["f1_macro_ci95"] == statistics.bootstrap_ci(
        labels, preds, lambda y, p: f1_score(y, p, labels=[0, 1, 2], average="macro", zero_division=0), 200, 5)
