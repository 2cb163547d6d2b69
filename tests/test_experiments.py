"""Experiment workflows: planning `dvc exp run --queue` grids, reading `dvc exp show --json`, summaries."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from textcls.tools import experiment_report

from textcls.tools import experiments
from textcls.errors import ParamsError, TextclsError
from textcls.config.params import parse_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def raw_params() -> dict:
    """The project's params with one transformer (minilm) and the baseline: the distillation student, the
    frozen-embedding entry and the prompted LLM are left out, so the expected experiment plans stay short."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["models"].pop("minilm_l3")
    raw["models"].pop("minilm_embed")
    raw.pop("distill")
    raw.pop("llms")
    return raw


@pytest.fixture
def params(raw_params):
    raw = copy.deepcopy(raw_params)
    raw["models"]["t5_small"] = {"kind": "transformer", "source": "t5-small", "tokenizer": {"prefix": "classify: "},
                                 "lr": 3e-4}
    return parse_params(raw)


@pytest.fixture
def cfg() -> dict:
    return experiments.load_config(ROOT / "configs/experiments.yaml")


def test_lr_plan_sets_every_transformer_and_keeps_t5_on_its_own_scale(params, cfg):
    """Check that each lr experiment sets all selected transformers, T5 from its own grid at the same position."""
    planned = experiments.plan("lr", cfg, params, ROOT)
    assert [e.name for e in planned] == ["lr-2e-05", "lr-5e-05", "lr-0.0001", "lr-0.0002", "lr-0.0005"]
    assert "models.minilm.lr=0.0001" in planned[2].overrides and "models.t5_small.lr=0.0003" in planned[2].overrides
    assert "models.minilm.lr=2e-05" in planned[0].overrides and "models.t5_small.lr=3e-05" in planned[0].overrides
    assert not any("tfidf" in o for o in planned[1].overrides)
    assert planned[0].targets == ("evaluate@ag_news-minilm", "evaluate@ag_news-t5_small",
                                  "evaluate@sst2-minilm", "evaluate@sst2-t5_small")


def test_relative_mirror_paths_become_absolute_for_queued_runs(params, cfg):
    """Check that relative data paths are passed as absolute ones (queued runs work in a copy of the repo)."""
    exp = experiments.plan("seeds", cfg, params, ROOT, datasets=["sst2"])[0]
    path_override = [o for o in exp.overrides if o.startswith("datasets.sst2.path=")]
    assert path_override == [f"datasets.sst2.path={(ROOT / '../shared/datasets/sst2').resolve()}"]
    assert exp.queue_command()[:8] == ["dvc", "exp", "run", "--queue", "-n", "seeds-seed42", "-S",
                                       f"++datasets.sst2.path={(ROOT / '../shared/datasets/sst2').resolve()}"]
    assert exp.queue_command()[-3:] == ["evaluate@sst2-minilm", "evaluate@sst2-tfidf", "evaluate@sst2-t5_small"]


def test_data_efficiency_reruns_every_model_of_the_data_set(params, cfg):
    """Check that a data change targets every model of the selected data set (no stale neighbour)."""
    planned = experiments.plan("data_efficiency", cfg, params, ROOT, datasets=["ag_news"])
    assert [e.name for e in planned] == [f"data-efficiency-n{n}" for n in (500, 2000, 10000, 30000)]
    assert "datasets.ag_news.n_per_class.train=2000" in planned[1].overrides
    assert set(planned[1].targets) == {f"evaluate@ag_news-{m}" for m in ("minilm", "tfidf", "t5_small")}


def test_hparams_plan_is_the_full_grid_of_one_model(params, cfg):
    """Check that the hparams workflow queues lr × batch_size × epochs for exactly one model."""
    planned = experiments.plan("hparams", cfg, params, ROOT, datasets=["sst2"], models=["minilm"])
    assert len(planned) == 3 * 2 * 3
    assert planned[0].name == "hparams-lr2e-05-bs16-ep1"
    assert {"models.minilm.lr=2e-05", "models.minilm.batch_size=16", "models.minilm.epochs=1"} <= set(
        planned[0].overrides)
    with pytest.raises(ParamsError, match="exactly one --models"):
        experiments.plan("hparams", cfg, params, ROOT)


@pytest.mark.parametrize("workflow, kwargs, match", [
    ("lr", {"models": ["tfidf"]}, "'tfidf' is not a transformer"),
    ("lr", {"models": ["bogus"]}, "Unknown model 'bogus'"),
    ("seeds", {"datasets": ["imdb"]}, "Unknown data set 'imdb'"),
    ("sweep", {}, "Unknown workflow 'sweep'"),
])
def test_bad_selections_fail_with_the_fix(params, cfg, workflow, kwargs, match):
    """Check that unknown workflows, data sets, models and non-transformers are refused by name."""
    with pytest.raises(ParamsError, match=match):
        experiments.plan(workflow, cfg, params, ROOT, **kwargs)


@pytest.mark.parametrize("text, match", [
    ("lr: {values: []}\n", "'lr.values'"),
    ("seeds: {values: [1, -2]}\n", "'seeds.values'"),
    ("seeds: {values: [1, 1]}\n", "list of distinct integers >= 0"),
    ("data_efficiency: {n_per_class: [500, 2.5]}\n", "'data_efficiency.n_per_class'"),
    ("hparams: {lr: [1.0e-5], batch_size: [16.5], epochs: [1]}\n", "'hparams.batch_size'"),
    ("lr: [1.0e-5]\n", "The 'lr' setting in .* must be a mapping"),
    ("lr: {values: [1.0e-5], per_model: {t5: 3.0e-4}}\n", "'lr.per_model.t5'"),
    ("hparams: {lr: [1.0e-5], batch_size: [16], epochs: [1], baseline: {lr: 2.0e-5, batch_size: 16, epochs: 1}}\n",
     "'hparams.baseline' setting .* must be one point of the grid"),
    ("grid: {}\n", "Unknown workflow 'grid'"),
])
def test_config_is_validated(tmp_path, text, match):
    """Check that configs/experiments.yaml errors name the setting."""
    full = yaml.safe_load((ROOT / "configs/experiments.yaml").read_text())
    full.update(yaml.safe_load(text))
    path = tmp_path / "experiments.yaml"
    path.write_text(yaml.safe_dump(full))
    with pytest.raises(ParamsError, match=match):
        experiments.load_config(path)


def test_config_reads_exponents_and_accepts_seed_zero(tmp_path):
    """Check that an unquoted 1e-5 is a number (YAML 1.2) and seed 0 is a valid seed; bad YAML is one error."""
    text = (ROOT / "configs/experiments.yaml").read_text()
    path = tmp_path / "experiments.yaml"
    path.write_text(text.replace("values: [2.0e-5, 5.0e-5, 1.0e-4, 2.0e-4, 5.0e-4]", "values: [1e-5, 2e-5]")
                    .replace("t5_small: [3.0e-5, 1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3]", "t5_small: [1e-4, 3e-4]")
                    .replace("values: [42, 43, 44, 45, 46]", "values: [0, 1]"))
    cfg = experiments.load_config(path)
    assert cfg["lr"]["values"] == [1e-5, 2e-5] and cfg["seeds"]["values"] == [0, 1]
    path.write_text("lr: {values: [1e-5\n")
    with pytest.raises(ParamsError, match="is not valid YAML"):
        experiments.load_config(path)


@pytest.mark.parametrize("workflow, values, match", [
    ("seeds", [2.5], "'seeds.values' setting in --values must be a non-empty list of distinct integers"),
    ("lr", [float("nan")], "'lr.values' setting in --values"),
    ("data_efficiency", [100.0, 100.0], "distinct"),
])
def test_bad_values_are_refused_before_queueing(cfg, workflow, values, match):
    """Check that --values must fit the workflow's grid (integers for seeds and rows, distinct, finite)."""
    with pytest.raises(ParamsError, match=match):
        experiments.with_values(cfg, workflow, values)


def test_queue_status_rows_are_parsed_with_their_task_ids():
    """Check the parsing of `dvc queue status`, where an old task may carry the same name as a new one."""
    text = """Task     Name          Created    Status
a1b2c3d  seeds-seed42  09:12 AM   Running
e4f5a6b  seeds-seed43  09:12 AM   Queued
863d2ea  seeds-seed42  08:52 AM   Success

Worker status: 1 active, 0 idle
"""
    rows = experiments.parse_queue_status(text)
    assert rows == [{"task": "a1b2c3d", "name": "seeds-seed42", "status": "Running"},
                    {"task": "e4f5a6b", "name": "seeds-seed43", "status": "Queued"},
                    {"task": "863d2ea", "name": "seeds-seed42", "status": "Success"}]


def _entry(rev: str, name: str | None, params: dict, metrics: dict, error=None) -> dict:
    return {"rev": rev, "name": name, "error": error,
            "data": {"rev": rev, "params": {"params.yaml": {"data": params}},
                     "metrics": {path: {"data": data} for path, data in metrics.items()}}}


def _trained_with(raw: dict, model: str) -> dict:
    """The hyperparameters the train stage records for ``model`` under params ``raw``."""
    import dataclasses

    entry = parse_params(raw).models[model]
    settings = {"transformer": entry.train, "tfidf": entry.tfidf, "embedding": entry.embedding}[entry.kind]
    return dataclasses.asdict(settings)


def _metrics(acc: float, seed: int, rows: int = 1200, model: str = "minilm", raw: dict | None = None) -> dict:
    """Metrics files of one model on sst2, as the train stage writes them when run with params ``raw``."""
    raw = raw or yaml.safe_load((ROOT / "params.yaml").read_text())
    train = {"seed": seed, "train_rows": rows, "hyperparameters": _trained_with(raw, model)}
    return {f"metrics/eval/sst2/{model}.json": {"accuracy": acc, "f1_macro": acc - 0.01, "loss": 0.5,
                                                "per_class": {"negative": {}, "positive": {}}},
            f"metrics/train/sst2/{model}.json": train}


def _with(raw: dict, **changes) -> dict:
    raw = copy.deepcopy(raw)
    for key, value in changes.items():
        *path, last = key.split("__")
        node = raw
        for part in path:
            node = node[part]
        node[last] = value
    return raw


def _exp_show(raw: dict) -> list:
    """The shape of `dvc exp show --json` (DVC 3.67): workspace, then a commit with its experiments."""
    ok = {"state": "success"}
    return [
        _entry("workspace", None, raw, _metrics(0.80, 42, raw=raw)),
        {**_entry("a" * 40, "main", raw, _metrics(0.80, 42, raw=raw)), "experiments": [
            {"name": "seeds-seed43", "executor": ok,
             "revs": [_entry("b" * 40, "seeds-seed43", _with(raw, train__seed=43), _metrics(0.82, 43, raw=_with(raw, train__seed=43)))]},
            {"name": "seeds-seed44", "executor": ok,
             "revs": [_entry("c" * 40, "seeds-seed44", _with(raw, train__seed=44), _metrics(0.78, 44, raw=_with(raw, train__seed=44)))]},
            {"name": "seeds-stale", "executor": ok,  # seed changed but the model was not rerun
             "revs": [_entry("d" * 40, "seeds-stale", _with(raw, train__seed=45), _metrics(0.80, 42, raw=raw))]},
            {"name": "seeds-broken", "executor": {"state": "failed"},
             "revs": [_entry("e" * 40, "seeds-broken", raw, {}, error={"msg": "Experiment run failed"})]},
            {"name": "lr-5e-05", "executor": ok,
             "revs": [_entry("f" * 40, "lr-5e-05", _with(raw, models__minilm__lr=5e-5),
                             _metrics(0.81, 42, raw=_with(raw, models__minilm__lr=5e-5)))]},
            {"name": "lr-stale", "executor": ok,  # lr changed, but this data set's stage was not targeted
             "revs": [_entry("9" * 40, "lr-stale", _with(raw, models__minilm__lr=1e-5), _metrics(0.80, 42, raw=raw))]},
        ]},
    ]


def test_exp_show_records_skip_the_workspace_and_failed_runs(raw_params):
    """Check that only commits and finished experiments become records."""
    names = [r["name"] for r in experiments.exp_show_records(_exp_show(raw_params))]
    assert names == ["main", "seeds-seed43", "seeds-seed44", "seeds-stale", "lr-5e-05", "lr-stale"]


def test_results_table_resolves_hyperparameters_and_drops_stale_rows(raw_params):
    """Check that rows carry each model's resolved lr/batch/epochs/seed, and that a model not rerun with the
    experiment's seed or hyperparameters (its metrics are the baseline's) is dropped."""
    table = experiments.results_table(experiments.exp_show_records(_exp_show(raw_params)))
    assert list(table["experiment"]) == ["main", "seeds-seed43", "seeds-seed44", "lr-5e-05"]
    main = table.iloc[0]
    assert (main["lr"], main["batch_size"], main["epochs"], main["seed"]) == (1e-4, 32, 2, 42)
    assert main["n_per_class"] == 600 and main["train_rows"] == 1200 and main["num_labels"] == 2
    assert table.set_index("experiment").loc["lr-5e-05", "lr"] == 5e-5


def test_results_table_reads_a_frozen_embedding_entry(raw_params):
    """Check that a frozen-embedding entry (no train section, like TF-IDF) gets its rows, checked against the
    embedding settings its train stage records, with no lr.

    Non-regression: rows of a model without train params were checked against its `tfidf` settings, which an
    embedding entry has none of (the whole table failed)."""
    embed = yaml.safe_load((ROOT / "params.yaml").read_text())["models"]["minilm_embed"]
    raw = _with(raw_params, models__minilm_embed=embed)
    metrics = {**_metrics(0.80, 42, raw=raw), **_metrics(0.77, 42, model="minilm_embed", raw=raw)}
    table = experiments.results_table(experiments.exp_show_records([_entry("a" * 40, "main", raw, metrics)]))
    row = table.set_index("model").loc["minilm_embed"]
    assert row["accuracy"] == 0.77 and row["seed"] == 42 and pd.isna(row["lr"])
    stale = {**metrics, "metrics/train/sst2/minilm_embed.json": {
        "seed": 42, "train_rows": 1200, "hyperparameters": {"C": 10.0, "max_iter": 100, "batch_size": 64}}}
    table = experiments.results_table(experiments.exp_show_records([_entry("a" * 40, "main", raw, stale)]))
    assert list(table["model"]) == ["minilm"]  # trained with other settings: dropped


def test_workflow_rows_count_an_unchanged_model_once(raw_params):
    """Check that a configuration repeated across a workflow's experiments counts once (and a model the
    workflow did not vary is left out), and that the baseline commit's identical configuration does not
    displace the workflow's own row.

    Non-regression: a TF-IDF seed-42 run (TF-IDF has no train section, so its configuration equals the
    baseline's) was deduplicated against the baseline commit and vanished from the seeds summary.
    """
    ok = {"state": "success"}

    def exp(name, raw, metrics):
        return {"name": name, "executor": ok, "revs": [_entry(name.ljust(40, "0"), name, raw, metrics)]}

    def both(raw, seed=42, acc=0.80):
        return {**_metrics(acc, seed, raw=raw), **_metrics(0.71, seed, model="tfidf", raw=raw)}

    lr5, lr1 = _with(raw_params, models__minilm__lr=5e-5), _with(raw_params, models__minilm__lr=1e-5)
    seed42, seed43 = _with(raw_params, train__seed=42), _with(raw_params, train__seed=43)
    shown = [{**_entry("a" * 40, "main", raw_params, both(raw_params)), "experiments": [
        exp("seeds-seed42", seed42, both(seed42)),
        exp("seeds-seed43", seed43, both(seed43, 43, 0.82)),
        exp("lr-5e-05", lr5, both(lr5, acc=0.81)),
        exp("lr-1e-05", lr1, both(lr1, acc=0.79)),
    ]}]
    table = experiments.results_table(experiments.exp_show_records(shown))
    seeds = experiment_report.workflow_rows(table, "seeds")
    assert sorted(seeds[seeds["model"] == "tfidf"]["seed"]) == [42, 43]
    lr = experiment_report.workflow_rows(table, "lr")
    assert set(lr["model"]) == {"minilm"} and len(lr) == 2  # TF-IDF was not varied by the lr experiments


def test_a_rerun_experiment_name_keeps_its_newest_run(raw_params):
    """Check that an experiment name seen on two baselines (a workflow rerun) counts once: the newest run."""
    seed43 = _with(raw_params, train__seed=43)
    old = _entry("1" * 40, "seeds-seed43", seed43, _metrics(0.70, 43, raw=seed43))
    new = _entry("2" * 40, "seeds-seed43", seed43, _metrics(0.82, 43, raw=seed43))
    old["data"]["timestamp"], new["data"]["timestamp"] = "2026-11-24T10:00:00", "2026-11-25T09:00:00"
    def commit(rev, name, run):
        return {**_entry(rev * 40, name, raw_params, {}), "experiments": [
            {"name": "seeds-seed43", "executor": {"state": "success"}, "revs": [run]}]}

    for shown in ([commit("a", "v1", old), commit("b", "v2", new)], [commit("b", "v2", new), commit("a", "v1", old)]):
        records = [r for r in experiments.exp_show_records(shown) if r["name"] == "seeds-seed43"]
        assert [r["rev"] for r in records] == ["2" * 40]
        assert experiments.results_table(records)["accuracy"].tolist() == [0.82]


def test_results_table_without_results_says_how_to_get_them():
    """Check that an empty `dvc exp show` gives a clear error."""
    with pytest.raises(TextclsError, match="scripts/experiments.py run"):
        experiments.results_table([])


def _rows(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"experiment": ["x-1"] * n, "dataset": ["sst2"] * n, "model": ["minilm"] * n, "lr": [2e-5] * n,
            "seed": [42] * n, "n_per_class": [500] * n, "train_rows": [1000] * n, "num_labels": [2] * n,
            "accuracy": [0.8] * n, "f1_macro": [0.79] * n}
    return pd.DataFrame({**base, **columns})


def test_seed_summary_is_mean_and_sample_std():
    """Check mean ± sample std (ddof=1), min, max and n over seeds against hand-computed values."""
    rows = _rows(seed=[42, 43, 44], accuracy=[0.80, 0.82, 0.78], f1_macro=[0.7, 0.7, 0.7])
    out = experiment_report.seed_summary(rows).iloc[0]
    assert out["n_seeds"] == 3 and out["accuracy_mean"] == pytest.approx(0.80)
    assert out["accuracy_std"] == pytest.approx(0.02)  # sqrt(((.02)^2 + 0 + (.02)^2) / 2)
    assert (out["accuracy_min"], out["accuracy_max"]) == (0.78, 0.82) and out["f1_macro_std"] == 0
    markdown = experiment_report.to_markdown("seeds", experiment_report.seed_summary(rows), ["x-1"])
    assert "0.8000 ± 0.0200" in markdown and "[0.7800, 0.8200]" in markdown


def test_lr_summary_pivots_rates_and_names_the_best():
    """Check that the lr table has one column per rate and the best rate per model."""
    rows = _rows(lr=[1e-5, 2e-5, 5e-5, 2e-5], seed=[42, 42, 42, 43], accuracy=[0.70, 0.80, 0.75, 0.84])
    out = experiment_report.lr_summary(rows).iloc[0]
    assert out["lr=1e-05"] == "0.7000" and out["lr=2e-05"] == "0.8200 ± 0.0283" and out["best lr"] == "2e-05"


def test_data_efficiency_reports_what_the_source_capped():
    """Check that rows per class come from the rows trained on, and requests above them are marked capped."""
    rows = _rows(n_per_class=[500, 2000], train_rows=[2000, 2720], num_labels=[4, 4], accuracy=[0.85, 0.88])
    summary = experiment_report.data_efficiency_summary(rows)
    assert list(summary["rows_per_class"]) == [500, 680] and list(summary["capped"]) == [False, True]
    markdown = experiment_report.to_markdown("data_efficiency", summary, ["x-1"])
    assert "2000 rows per class requested, 680 available" in markdown
    assert experiment_report.data_efficiency_png(summary)[:8] == b"\x89PNG\r\n\x1a\n"


def test_workflow_rows_need_a_finished_experiment_of_that_workflow():
    """Check that summarising a workflow that never ran says how to run it."""
    with pytest.raises(TextclsError, match="scripts/experiments.py run seeds"):
        experiment_report.workflow_rows(_rows(accuracy=[0.8]), "seeds")


def test_hparam_rows_leave_out_models_the_grid_did_not_vary():
    """Check that a model repeated unchanged in every hparams experiment (TF-IDF: no lr) is left out, so
    the regression sees only the varied model (non-regression: its NaN lr crashed the fit)."""
    grid = _rows(experiment=["hparams-a", "hparams-b"], lr=[2e-5, 5e-5], accuracy=[0.7, 0.8])
    tfidf = _rows(experiment=["hparams-a", "hparams-b"], model=["tfidf"] * 2, lr=[None, None], accuracy=[0.71] * 2)
    table = pd.concat([grid.assign(config=["m1", "m2"]), tfidf.assign(config=["t", "t"])], ignore_index=True)
    rows = experiment_report.workflow_rows(table, "hparams")
    assert list(rows["model"]) == ["minilm", "minilm"]


def test_hparam_report_fits_the_grid_and_draws_the_surface():
    """Check that the hparams summary regresses the experiments' metrics and returns a surface per model."""
    import itertools

    grid = list(itertools.product([2e-5, 5e-5, 1e-4], [16, 32], [1, 2, 3]))
    acc = [0.80 + 0.03 * (lr > 3e-5) + 0.01 * ep + 0.002 * (bs == 16) + 0.001 * i % 3 / 1000
           for i, (lr, bs, ep) in enumerate(grid)]
    rows = _rows(lr=[g[0] for g in grid], batch_size=[g[1] for g in grid], epochs=[g[2] for g in grid],
                 accuracy=acc, f1_macro=[a - 0.01 for a in acc], loss=[1 - a for a in acc])
    markdown, plots = experiment_report.hparam_report(rows, {"lr": 5e-5, "batch_size": 32, "epochs": 2})
    assert markdown.startswith("# sst2 / minilm: 18 experiments")
    assert "log10_lr" in markdown and "R²" in markdown and "% change from baseline" in markdown
    assert list(plots) == ["hparams_sst2-minilm.png"] and plots["hparams_sst2-minilm.png"][:4] == b"\x89PNG"


def test_values_replace_the_grid_from_the_command_line(params, cfg):
    """Check that --values replaces a grid (ints stay ints), and mismatched per-model rates are refused."""
    planned = experiments.plan("data_efficiency", experiments.with_values(cfg, "data_efficiency", [100.0, 300.0]),
                               params, ROOT, datasets=["sst2"])
    assert [e.name for e in planned] == ["data-efficiency-n100", "data-efficiency-n300"]
    with pytest.raises(ParamsError, match="lr.per_model.t5_small has 5 rates but the lr grid has 2"):
        experiments.plan("lr", experiments.with_values(cfg, "lr", [1e-5, 3e-5]), params, ROOT)
    with pytest.raises(ParamsError, match="edit configs/experiments.yaml"):
        experiments.with_values(cfg, "hparams", [1.0])
