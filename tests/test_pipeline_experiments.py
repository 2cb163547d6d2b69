"""End-to-end experiment workflows on a copy of the reproduced toy pipeline (conftest.toy_pipeline): a variant
with `dvc exp run -S`, queued seeds run in parallel, and a changed model and data set.

Apart from tests/test_pipeline.py so that pytest-xdist can run the two modules on two workers (each module works
on its own copy of the one pipeline run).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from conftest import copy_project, write_toy_data
from conftest import run_cmd as run
from test_pipeline import PER_MODEL, changed_stages, edit_params, ran_stages

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(toy_pipeline, tmp_path_factory) -> Path:
    """This module's own copy of the reproduced toy pipeline."""
    return copy_project(toy_pipeline, tmp_path_factory.mktemp("e2e-exp"))


def test_exp_run_with_set_param_runs_a_variant(repo):
    """Check that `dvc exp run -S` runs a variant of one model and `dvc metrics diff` reports its change."""
    assert ran_stages(run(["dvc", "repro"], repo).stdout) == {"hardware"}
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline"], repo)
    proc = run(["dvc", "exp", "run", "-n", "weak-tfidf", "-S", "models.tfidf.C=0.001"], repo)
    assert ran_stages(proc.stdout) == {"hardware", "train@toy-tfidf", "evaluate@toy-tfidf", "benchmark@toy-tfidf",
                                       "aggregate"}
    exps = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    names = [e["name"] for baseline in exps for e in (baseline.get("experiments") or [])
             for e in e.get("revs", [e])]
    assert "weak-tfidf" in names
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], repo).stdout)
    changed = diff["metrics/leaderboard.json"]
    assert "toy.tfidf.loss" in changed and "toy.tiny.accuracy" not in changed


@pytest.mark.resume
def test_queued_seed_workflow_collects_mean_and_std(repo):
    """Check the README's one-command workflow: queue two seeds, run them in parallel
    (`dvc queue start -j 2`), collect mean ± std; and that the parallel runs stayed isolated: each
    experiment's outputs are its own, the shared cache is intact, the workspace untouched.

    Runs `scripts/experiments.py run seeds` (dvc exp run --queue, dvc queue start, wait, dvc exp show).
    """
    for name in ("scripts", "configs"):
        shutil.copytree(ROOT / name, repo / name, dirs_exist_ok=True)
    config = yaml.safe_load((ROOT / "configs/experiments.yaml").read_text())
    config["seeds"]["values"] = [1, 2]
    (repo / "configs/experiments.yaml").write_text(yaml.safe_dump(config))
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "workflow config"], repo)
    proc = run([sys.executable, "scripts/experiments.py", "run", "seeds", "--models", "tiny", "-j", "2"], repo)
    assert "queueing seeds-seed1" in proc.stdout and "queueing seeds-seed2" in proc.stdout
    import pandas as pd

    rows = pd.read_csv(repo / "reports/experiments/seeds.csv")
    assert sorted(rows["experiment"]) == ["seeds-seed1", "seeds-seed2"] and sorted(rows["seed"]) == [1, 2]
    assert set(rows["model"]) == {"tiny"}  # the other models were not rerun with these seeds
    report = (repo / "reports/experiments/seeds.md").read_text()
    assert re.search(r"\|\s*toy\s*\|\s*tiny\s*\|\s*2\s*\|\s*1, 2\s*\|", report), report

    from textcls.tools.experiments import exp_show_records

    shown = {r["name"]: r for r in exp_show_records(json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout))}
    for seed in (1, 2):  # each experiment's train metrics were written by its own run, with its own seed
        assert shown[f"seeds-seed{seed}"]["metrics"]["metrics/train/toy/tiny.json"]["seed"] == seed
    assert_cache_intact(repo / ".dvc" / "cache")
    assert run(["git", "status", "--porcelain", "--untracked-files=no"], repo).stdout == ""
    assert changed_stages(repo) == set()  # the parallel runs wrote nothing into the workspace
    run(["dvc", "exp", "apply", "seeds-seed2"], repo)  # the experiment's model restores from the shared cache
    # the workflow ran only tiny's train and evaluate: those match the experiment's lock file exactly
    assert run(["dvc", "status", "train@toy-tiny", "evaluate@toy-tiny"], repo).stdout.strip().endswith("up to date.")
    assert json.loads((repo / "metrics/train/toy/tiny.json").read_text())["seed"] == 2
    run(["git", "checkout", "--", "."], repo)
    run(["dvc", "checkout", "--force"], repo)


def assert_cache_intact(cache: Path) -> None:
    """Every file object in a DVC cache has the MD5 its path names (no half-written or mixed-up objects)."""
    import hashlib

    objects = [p for p in (cache / "files" / "md5").glob("*/*") if p.is_file() and not p.name.endswith(".dir")]
    assert objects
    for path in objects:
        assert hashlib.md5(path.read_bytes()).hexdigest() == path.parent.name + path.name, path


def test_changed_model_set_and_data_set_hold_exactly_the_declared_entries(repo):
    """Check that after removing models (t5, tiny2, the distilled student, the LLM) and adding a data set,
    `dvc repro` runs only the new data set's stages, and the leaderboard (JSON, CSV, Markdown), the
    recommendation and the PR report hold exactly the declared (dataset, entry) pairs, while the files the
    removed entries left behind stay on disk, ignored (with a warning naming them)."""
    import pandas as pd

    write_toy_data(repo.parent / "toy2", rows_per_class=30, seed=1)

    def edit(p):
        p["datasets"]["toy2"] = {**p["datasets"]["toy"], "path": str(repo.parent / "toy2")}
        p["models"] = {name: p["models"][name] for name in ("tiny", "tfidf")}
        p["distill"] = {"teacher": None, "students": [], "temperature": 2.0, "alpha": 0.5}
        p["llms"] = {}

    edit_params(repo, edit)
    proc = run(["dvc", "repro"], repo)
    new = {"prepare@toy2"} | {f"{s}@toy2-{m}" for s in PER_MODEL for m in ("tiny", "tfidf")}
    assert ran_stages(proc.stdout) == new | {"hardware", "aggregate"}  # toy's tiny and tfidf stay cached
    assert "ignoring" in proc.stderr and "data/predictions/toy/t5.parquet" in proc.stderr  # the first 10, sorted
    assert (repo / "metrics/eval/toy/t5.json").is_file()  # DVC deletes no output of a removed stage
    declared = {(d, m) for d in ("toy", "toy2") for m in ("tiny", "tfidf")}

    board = json.loads((repo / "metrics/leaderboard.json").read_text())
    assert {(d, m) for d, rows in board.items() for m in rows} == declared
    table = pd.read_csv(repo / "metrics/leaderboard.csv")
    assert set(zip(table["dataset"], table["model"])) == declared and len(table) == 4
    markdown = (repo / "metrics/leaderboard.md").read_text()
    rec = json.loads((repo / "metrics/recommendation.json").read_text())
    assert {(d, m) for d, r in rec.items() for m in r["candidates"]} == declared
    rec_md = (repo / "metrics/recommendation.md").read_text()
    for gone in ("tiny2", "t5", "tiny_kd", "tinylm"):
        assert not re.search(rf"\b{gone}\b", markdown + rec_md), gone
    assert "## toy2" in markdown and "## toy2" in rec_md

    run(["git", "add", "-A", "metrics/eval/toy2"], repo)  # leave the plots of toy2 untracked: "changed"
    (repo / "plots/confusion/toy/t5.csv").write_text("actual,predicted\nsports,tech\n")  # a stale file edited
    report = run([sys.executable, str(ROOT / "scripts/pr_report.py"), "--base", "HEAD"], repo).stdout
    board_md = report.split("## Leaderboard")[1].split("## Plots changed")[0]
    plots_md = report.split("## Plots changed")[1]
    assert not re.search(r"\b(tiny2|t5|tiny_kd|tinylm)\b", board_md + plots_md)
    assert "plots/confusion/toy2/tiny.csv" in plots_md
