"""The README's reference-study command, end to end, against a local stand-in for the Hugging Face Hub.

`dvc exp run -n reference -S profile=reference` (DVC's Hydra composition of conf/profile/reference.yaml)
runs in a temporary git+DVC copy of the project, with `HF_ENDPOINT` at a stand-in on 127.0.0.1 that
serves AG News laid out as the hub serves `fancyzhx/ag_news`, and tiny random-initialised models of
the five reference families under the hub ids and pinned commits the profile names: BERT (WordPiece),
RoBERTa (byte-level BPE), DistilBERT (WordPiece, loaded as transformers 5 loads the hub checkpoint: a
BertTokenizer that adds token_type_ids), ALBERT and T5 (SentencePiece Unigram). `download` runs through
the real `datasets.load_dataset`, the models through the real `from_pretrained`.

The command gets the overrides a CPU test needs (one data set, one epoch, short benchmark runs, CPU
instead of the profile's `train.device: cuda`); the models, their recipe keys and their pins are the
profile's own. Every CPU benchmark variant must give numbers: an error row fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import DVC_FILES, ONE_THREAD, run_cmd, warm_env
from hubstandin import HubStandIn, copy_model_repo, dataset_dir, hub_env, set_commit, write_ag_news_repo
from test_pipeline import ran_stages
from tiny_models import EXPECTED, FAMILIES, HUB_CHECKPOINTS, write_tiny_model

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

PROFILE = yaml.safe_load((ROOT / "conf/profile/reference.yaml").read_text())
ENTRY = {"bert": "bert", "roberta": "roberta", "distilbert": "distilbert", "albert": "albert", "t5": "t5_small"}
CPU_TEST = [  # what a CPU test changes; everything else is the reference profile's
    "train.device=auto", "train.epochs=1", "train.batch_size=8", "train.eval_batch_size=16",
    "train.dataloader_workers=0", "train.logging_steps=2",
    "~datasets.sst2", "~hub_datasets.sst2", "~models.tfidf", "datasets.ag_news.carve.validation=0.2",
    "evaluate.batch_size=16", "evaluate.bootstrap_resamples=100", "aggregate.bootstrap_resamples=100",
    "benchmark.warmup=1", "benchmark.repeats=6", "benchmark.max_served_texts=60", "benchmark.throughput_texts=4",
    "benchmark.batch_sizes=[1,4]", "benchmark.throughput_min_seconds=0", "recommend.min_accuracy=null",
]
CORPUS = [f"{a} {b} {c}" for a, b, c in zip(
    "leaders team stocks software talks match market computer war coach shares space".split() * 3,
    "peace season profit science election goal bank internet troops cup earnings chip".split() * 3,
    "minister league investors satellite embassy player prices robot treaty score economy network".split() * 3)]


def readme_reference_command() -> list[str]:
    """The reference-study command exactly as the README's 'Reference study' section gives it."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Reference study", 1)[1]
    block = section.split("```", 2)[1]
    line = next(line.split("#")[0].strip() for line in block.splitlines() if line.startswith("dvc exp run"))
    return line.split()


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """The reference profile run once through `dvc exp run` with the hub stand-in; returns (repo, proc, hub)."""
    root = tmp_path_factory.mktemp("reference")
    hub_root = root / "hub"
    served = write_ag_news_repo(hub_root, rows_per_class_train=16, rows_per_class_test=6, seed=0)
    set_commit(dataset_dir(hub_root, PROFILE["hub_datasets"]["ag_news"]["hub_id"]),
               PROFILE["hub_datasets"]["ag_news"]["revision"])
    for family in FAMILIES:
        folder = write_tiny_model(family, root / "tiny" / family, CORPUS, seed=1)
        if family == "distilbert":  # as the hub's tokenizer_config.json: no tokenizer_class -> BertTokenizer
            config = json.loads((folder / "tokenizer_config.json").read_text())
            config.pop("tokenizer_class", None)
            (folder / "tokenizer_config.json").write_text(json.dumps(config))
        repo_dir = copy_model_repo(hub_root, HUB_CHECKPOINTS[family], folder)
        set_commit(repo_dir, PROFILE["models"][ENTRY[family]]["revision"])

    repo = root / "project"
    repo.mkdir()
    for name in (*DVC_FILES, ".dvcignore", ".gitignore", "params.yaml"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, repo / name)
    for name in ("stages", "src", "conf"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "hydra.enabled", "True"],
                ["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        run_cmd(cmd, repo)

    command = readme_reference_command()
    assert command == ["dvc", "exp", "run", "-n", "reference", "-S", "profile=reference"]
    with HubStandIn(hub_root) as hub:
        env = warm_env(hub_env(hub.url, root / "hf-home", {**os.environ, **ONE_THREAD, "DVC_NO_ANALYTICS": "1", "PATH":
                               f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}))
        args = [*command, *(a for override in CPU_TEST for a in ("-S", override))]
        import subprocess

        proc = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
        yield repo, proc, hub, served


def test_reference_command_runs_download_to_aggregate_for_the_five_families(reference_run):
    """Check that the README's command composed the reference profile (the five hub models, pinned) and ran
    download -> prepare -> tokenize -> train -> evaluate -> benchmark -> aggregate for each of them, and that
    the leaderboard and recommendation hold exactly those five entries."""
    repo, proc, hub, _ = reference_run
    ran = ran_stages(proc.stdout)
    models = sorted(ENTRY.values())
    expected = {"download@ag_news", "prepare@ag_news", "hardware", "aggregate"} | {
        f"{stage}@ag_news-{m}" for stage in ("tokenize", "train", "evaluate", "benchmark") for m in models}
    assert ran == expected
    params = yaml.safe_load((repo / "params.yaml").read_text())  # what `dvc exp run` composed
    assert {name: (m["source"], m["revision"]) for name, m in params["models"].items()} == {
        ENTRY[f]: (HUB_CHECKPOINTS[f], PROFILE["models"][ENTRY[f]]["revision"]) for f in FAMILIES}
    board = json.loads((repo / "metrics/leaderboard.json").read_text())
    assert set(board) == {"ag_news"} and sorted(board["ag_news"]) == models
    rec = json.loads((repo / "metrics/recommendation.json").read_text())
    assert sorted(rec["ag_news"]["candidates"]) == models
    paths = [r["path"] for r in hub.requests]
    for family in FAMILIES:  # each model came from the stand-in, at its pinned commit
        pin = PROFILE["models"][ENTRY[family]]["revision"]
        assert f"/{HUB_CHECKPOINTS[family]}/resolve/{pin}/model.safetensors" in paths, family
    assert {r["host"] for r in hub.requests} == {hub.netloc} and not hub.unhandled


def test_every_cpu_variant_of_every_family_has_numbers(reference_run):
    """Check that eager fp32, dynamic int8, ONNX fp32 and ONNX int8 each measured every family (T5's ONNX
    export included): no error row, latency and accuracy present, the ONNX variants as accurate as eager
    fp32 up to quantisation."""
    repo, *_ = reference_run
    for family in FAMILIES:
        bench = json.loads((repo / f"metrics/benchmark/ag_news/{ENTRY[family]}.json").read_text())
        variants = bench["cpu"]["variants"]
        assert sorted(variants) == ["dynamic_int8", "eager_fp32", "onnx_fp32", "onnx_int8"], family
        for name, row in variants.items():
            assert "error" not in row, f"{family} {name}: {row.get('error')}"
            assert row["latency_ms"]["p50"] > 0 and 0 <= row["accuracy"] <= 1, (family, name)
        assert variants["onnx_fp32"]["accuracy"] == variants["eager_fp32"]["accuracy"], family


def test_each_family_keeps_its_tokenizer_kind_and_input_names(reference_run):
    """Check that each family was tokenized by a tokenizer of its hub checkpoint's kind, and that what the
    trained model is fed (tokenized columns kept for training, the saved tokenizer's outputs for serving)
    are exactly its inputs: no token_type_ids for RoBERTa, DistilBERT (although its hub tokenizer loads as
    a BertTokenizer that makes them), ALBERT under transformers 5, or T5."""
    from transformers import AutoTokenizer

    repo, *_ = reference_run
    for family in FAMILIES:
        name = ENTRY[family]
        meta = json.loads((repo / f"data/tokenized/ag_news/{name}/meta.json").read_text())
        tok = AutoTokenizer.from_pretrained(repo / f"models/ag_news/{name}")
        backend = type(tok.backend_tokenizer.model).__name__
        assert backend == EXPECTED[family]["tokenizer_model"], family
        served = list(tok(["classify: the team won"]).keys())
        assert sorted(served) == sorted(EXPECTED[family]["input_names"]), (family, served)
        config = json.loads((repo / f"models/ag_news/{name}/config.json").read_text())
        assert config["architectures"] == [EXPECTED[family]["model_class"]], family
        assert meta["tokenizer_source"] == HUB_CHECKPOINTS[family]
    distil = pq.read_schema(repo / "data/tokenized/ag_news/distilbert/train.parquet").names
    assert "token_type_ids" in distil  # the hub tokenizer made them; the model never sees them (above)


def test_pinned_commits_are_recorded(reference_run):
    """Check that the commit each hub repo resolved to is recorded: the data set's in data/raw/ag_news/source.json
    and data/prepared/ag_news/meta.json, each model's (and its tokenizer's) in its model card."""
    repo, *_ = reference_run
    pin = PROFILE["hub_datasets"]["ag_news"]["revision"]
    meta = json.loads((repo / "data/prepared/ag_news/meta.json").read_text())
    assert meta["source"]["hub"] == {"hub_id": "fancyzhx/ag_news", "config": None, "revision": pin, "commit": pin}
    for family in FAMILIES:
        card = json.loads((repo / f"models/ag_news/{ENTRY[family]}/textcls.json").read_text())
        pin = PROFILE["models"][ENTRY[family]]["revision"]
        assert (card["source_revision"], card["source_commit"], card["tokenizer_commit"]) == (pin, pin, pin), family


def test_downloaded_rows_are_the_served_ones(reference_run):
    """Check that download wrote exactly the rows the stand-in serves (known answer), with the class names."""
    repo, _, _, served = reference_run
    for split in ("train", "test"):
        table = pq.read_table(repo / f"data/raw/ag_news/{split}.parquet").to_pydict()
        assert table == {"text": served[split]["text"], "label": served[split]["label"]}, split
    assert (repo / "data/raw/ag_news/classes.txt").read_text().split("\n")[:4] == [
        "World", "Sports", "Business", "Sci/Tech"]
