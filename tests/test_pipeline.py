"""End-to-end: `dvc repro` of the real dvc.yaml and stages on tiny data and tiny local models.

These tests copy the project's dvc.yaml, stages/ and src/ into a temporary git+DVC repo,
point params at a generated data set and two tiny random-initialised BERTs (built from a
config, no network), run the pipeline once, then check the caching contract.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import DVC_FILES, HARDWARE_STAGE, ONE_THREAD, WORDS, copy_project, stage_name
from conftest import run_cmd as run

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

MODELS = ("tiny", "tiny2", "t5", "tfidf")  # two BERTs sharing a tokenizer, a T5 with a prefix, the baseline


def ran_stages(output: str) -> set[str]:
    return {stage_name(line.split("'")[1]) for line in output.splitlines() if line.startswith("Running stage '")}


def changed_stages(repo: Path) -> set[str]:
    """Stages `dvc status` reports, less `hardware` (always_changed by design: it re-reads the machine)."""
    status = json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}")
    assert "always changed" in status.pop(HARDWARE_STAGE, ["always changed"])
    return set(status)


PER_MODEL = ("tokenize", "train", "evaluate", "benchmark")
# tiny distilled from tiny2 (entry tiny_kd), and a prompted tiny Llama (entry tinylm)
DISTILLED = {"teacher_logits@toy-tiny", "distill@toy-tiny", "evaluate_distilled@toy-tiny", "benchmark_distilled@toy-tiny"}
LLM_STAGES = {"llm_weights@tinylm", "fewshot@toy-tinylm"}
ENTRIES = (*MODELS, "tiny_kd", "tinylm")


def edit_params(repo: Path, edit) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    edit(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def repo(toy_pipeline, tmp_path_factory) -> Path:
    """This module's own copy of the reproduced toy pipeline (conftest.toy_pipeline: built once per test run)."""
    return copy_project(toy_pipeline, tmp_path_factory.mktemp("e2e"))


def test_repro_builds_every_stage_and_a_leaderboard(repo):
    """Check that one `dvc repro` runs every stage and writes metrics for every (dataset, model)."""
    ran = ran_stages(repo.joinpath("first_repro.log").read_text())
    expected = {"prepare@toy", "hardware", "aggregate"} | {f"{s}@toy-{m}" for s in PER_MODEL for m in MODELS}
    assert ran == expected | DISTILLED | LLM_STAGES
    board = json.loads((repo / "metrics/leaderboard.json").read_text())
    assert set(board["toy"]) == set(ENTRIES)
    for model in MODELS:
        ev = json.loads((repo / f"metrics/eval/toy/{model}.json").read_text())
        assert 0.0 <= ev["accuracy"] <= 1.0 and set(ev["per_class"]) == set(WORDS)
        assert (repo / f"models/toy/{model}/textcls.json").is_file()
    assert list((repo / "models/toy/tiny").glob("*.safetensors"))
    assert not list((repo / "models/toy/tiny").glob("*.bin"))
    # the toy classes are separable by vocabulary: the baseline must learn them
    assert board["toy"]["tfidf"]["accuracy"] > 0.9
    for curve, columns in (("roc", "fpr,tpr"), ("pr", "recall,precision")):  # one curve file per declared entry
        assert sorted(p.stem for p in (repo / "plots" / curve / "toy").glob("*.csv")) == sorted(ENTRIES)
        assert (repo / "plots" / curve / "toy" / "tiny.csv").read_text().splitlines()[0] == columns
    markdown = (repo / "metrics/leaderboard.md").read_text()
    assert "| tiny " in markdown and "tiny_kd (distilled from tiny2)" in markdown and "tinylm (LLM, few-shot)" in markdown


def test_llm_fewshot_is_scored_like_a_model_on_its_subsample(repo):
    """Check that the prompted LLM has eval/train/benchmark metrics and is compared with the best on its rows."""
    ev = json.loads((repo / "metrics/eval/toy/tinylm.json").read_text())
    assert ev["n"] == ev["test_rows"] == 10 and ev["kind"] == "llm" and ev["invalid_answers"] == 0
    assert ev["tokens_processed"] > 0 and ev["cost_per_1k_texts_usd"] > 0 and set(ev["per_class"]) == set(WORDS)
    assert list((repo / "models/pretrained/tinylm").glob("*.safetensors"))
    bench = json.loads((repo / "metrics/benchmark/toy/tinylm.json").read_text())
    assert bench["cpu"]["best_variant"] == "fewshot" and bench["cpu"]["variants"]["fewshot"]["latency_ms"]["count"] == 10
    row = next(r for r in csv.DictReader((repo / "metrics/leaderboard.csv").open()) if r["model"] == "tinylm")
    if row["rank"] != "1":
        assert row["vs_best_n"] == "10"  # paired test on the LLM's 10 rows only


def test_cascades_are_chosen_on_validation_and_scored_on_test(repo):
    """Check the cascades `aggregate` writes from the toy run's served predictions: both chains of the toy profile,
    thresholds from the served validation rows (every entry's, and the LLM's seeded subsample of them), scored on
    the test rows every member served (the LLM's 10), with the table in the leaderboard Markdown."""
    report = json.loads((repo / "metrics/cascades.json").read_text())
    chains = {c["name"]: c for c in report["datasets"]["toy"]["chains"]}
    two = next(c for n, c in chains.items() if n.startswith("tfidf:sklearn -> tiny:"))
    three = next(c for n, c in chains.items() if n.endswith("tinylm:fewshot"))
    validation = pq.read_table(repo / "data/served/toy/tiny.parquet").to_pandas()
    validation = validation[(validation["split"] == "validation") & (validation["variant"] == two["members"][1].split(":")[1])]
    assert two["validation"]["n"] == len(validation) > 0 and two["test"]["n"] == two["vs_last"]["n"]
    assert two["full_test_rows"] is True and sum(two["test"]["answered"]) == pytest.approx(1.0, abs=1e-3)
    llm = pq.read_table(repo / "data/served/toy/tinylm.parquet").to_pandas()
    assert three["test"]["n"] == (llm["split"] == "test").sum() == 10 and three["full_test_rows"] is False
    assert three["validation"]["n"] == (llm["split"] == "validation").sum() > 0
    assert "## Cascades" in (repo / "metrics/leaderboard.md").read_text()
    assert (repo / "metrics/cascades.md").read_text().startswith("# Cascades")


def test_distilled_student_records_its_teacher(repo):
    """Check that the distilled entry's train metrics and model card name the teacher and its loss settings."""
    train = json.loads((repo / "metrics/train/toy/tiny_kd.json").read_text())
    assert train["distilled_from"] == "tiny2" and train["student"] == "tiny"
    assert train["hyperparameters"]["temperature"] == 2.0 and train["hyperparameters"]["alpha"] == 0.5
    assert json.loads((repo / "models/toy/tiny_kd/textcls.json").read_text())["distilled_from"] == "tiny2"


def test_benchmark_reports_latency_per_variant_and_no_gpu_honestly(repo):
    """Check that benchmark JSON has per-variant latency stats, throughput, accuracy, memory and cost."""
    import torch

    bench = json.loads((repo / "metrics/benchmark/toy/tiny.json").read_text())
    variants = bench["cpu"]["variants"]
    assert list(variants) == ["eager_fp32", "onnx_int8"] and bench["cpu"]["reference_variant"] == "eager_fp32"
    for row in variants.values():
        lat = row["latency_ms"]
        assert lat["repeats"] == 6 and lat["p50_ci"][0] <= lat["p50"] <= lat["p50_ci"][1] <= lat["max"]
        assert set(row["throughput"]) == {"1", "4"} and row["tokens_per_s"] > 0
        assert 0 <= row["accuracy"] <= 1 and row["peak_rss_mb"] >= 0 and row["cost_per_1k_texts_usd"] > 0
        assert row["batch_size"] == 1 and "validation_accuracy" in row and "p_value" in row["vs_reference"]
    assert bench["cpu"]["best_variant"] in variants
    assert bench["hardware"] == json.loads((repo / "metrics/hardware.json").read_text())
    if not torch.cuda.is_available():
        assert bench["cuda"] == {"status": "unavailable", "reason": "no CUDA GPU on this machine"}
    assert json.loads((repo / "metrics/benchmark/toy/tfidf.json").read_text())["cpu"]["best_variant"] == "sklearn"
    board = (repo / "metrics/leaderboard.csv").read_text().splitlines()[0].split(",")
    assert {"cpu_p50_ms", "cpu_p95_upper_ms", "cpu_variant", "size_mb", "cpu_cost_per_1k_texts_usd"} <= set(board)
    assert (repo / "plots/pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_other_hardware_invalidates_benchmarks_only(repo):
    """Check that a different machine fingerprint marks every benchmark stage changed, and nothing else."""
    hw = repo / "metrics/hardware.json"
    original = hw.read_text()
    other = json.loads(original)
    other["cpu"]["model"] = "Another CPU"  # what another machine's `hardware` stage would write
    hw.write_text(json.dumps(other))
    try:
        expected = {f"benchmark@toy-{m}" for m in MODELS} | {"benchmark_distilled@toy-tiny", "fewshot@toy-tinylm"}
        assert changed_stages(repo) == expected
    finally:
        hw.write_text(original)


def test_noop_repro_runs_nothing(repo):
    """Check that a second `dvc repro` with nothing changed runs no stage."""
    assert changed_stages(repo) == set()
    assert ran_stages(run(["dvc", "repro"], repo).stdout) == {"hardware"}  # same machine: output unchanged


def test_metrics_show_lists_accuracy_and_f1_for_every_model(repo):
    """Check that `dvc metrics show --json` carries accuracy and macro-F1 for every (dataset, model)."""
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], repo).stdout)
    board = next(iter(shown.values()))["data"]["metrics/leaderboard.json"]["data"]
    for model in MODELS:
        assert {"accuracy", "f1_macro"} <= set(board["toy"][model])


def test_shared_tokenizer_output_is_stored_once(repo):
    """Check that two models with the same tokenizer produce byte-identical tokenized data (one DVC object)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    md5 = {m: lock[f"tokenize@toy-{m}"]["outs"][0]["md5"] for m in MODELS}
    assert md5["tiny"] == md5["tiny2"]
    assert len({md5["tiny"], md5["t5"], md5["tfidf"]}) == 3


def test_changing_one_models_lr_reruns_only_that_model(repo):
    """Check that editing models.tiny.lr invalidates only tiny's train and its distillation as a student
    (then their evaluate, benchmark and aggregate); the teacher's logits are not recomputed."""
    edit_params(repo, lambda p: p["models"]["tiny"].update(lr=4e-3))
    # aggregate reads `models` (which entries exist), so it is listed at once, not only after the training
    assert changed_stages(repo) == {"train@toy-tiny", "distill@toy-tiny", "aggregate"}
    ran = ran_stages(run(["dvc", "repro"], repo).stdout)
    assert ran == {"hardware", "train@toy-tiny", "evaluate@toy-tiny", "benchmark@toy-tiny", "aggregate",
                   "distill@toy-tiny", "evaluate_distilled@toy-tiny", "benchmark_distilled@toy-tiny"}
    assert changed_stages(repo) == set()


def test_retuning_distillation_does_not_rerun_the_teacher(repo):
    """Check that distill.temperature reruns only the student's distillation, never the teacher or its logits."""
    edit_params(repo, lambda p: p["distill"].update(temperature=4.0))
    assert changed_stages(repo) == {"distill@toy-tiny", "aggregate"}
    ran = ran_stages(run(["dvc", "repro"], repo).stdout)
    assert ran == {"hardware", "distill@toy-tiny", "evaluate_distilled@toy-tiny", "benchmark_distilled@toy-tiny",
                   "aggregate"}


def test_t5_inputs_carry_the_prefix_and_train_as_a_sequence_classifier(repo):
    """Check that the T5 entry tokenizes with its "classify: " prefix and saves a T5ForSequenceClassification."""
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    ids = pq.read_table(repo / "data/tokenized/toy/t5/train.parquet").column("input_ids")[0].as_py()
    tokenizer = AutoTokenizer.from_pretrained(repo / "data/tokenized/toy/t5/tokenizer")
    assert tokenizer.convert_ids_to_tokens(ids[:2]) == ["classify", ":"] and ids[-1] == tokenizer.eos_token_id
    card = json.loads((repo / "models/toy/t5/textcls.json").read_text())
    config = json.loads((repo / "models/toy/t5/config.json").read_text())
    assert card["prefix"] == "classify: " and config["architectures"] == ["T5ForSequenceClassification"]


def test_changing_max_length_reruns_tokenize_and_downstream(repo):
    """Check that tokenize.max_length invalidates every tokenize stage, and that it reruns a transformer's
    train and evaluate but not TF-IDF's train (its tokenized data does not depend on max_length).

    Reproduces two models' chains only (the whole DAG would take two minutes); going back to the old
    max_length then restores every output from DVC's run cache without training again."""
    edit_params(repo, lambda p: p["tokenize"].update(max_length=8))  # toy texts are 10 tokens long
    assert changed_stages(repo) == {f"tokenize@toy-{m}" for m in MODELS}
    ran = ran_stages(run(["dvc", "repro", "evaluate@toy-tiny", "evaluate@toy-tfidf"], repo).stdout)
    # TF-IDF's tokenized data is unchanged: DVC sees an identical output and stops there
    assert ran == {"tokenize@toy-tiny", "train@toy-tiny", "evaluate@toy-tiny", "tokenize@toy-tfidf"}
    edit_params(repo, lambda p: p["tokenize"].update(max_length=32))
    proc = run(["dvc", "repro"], repo)
    assert "is cached - skipping run" in proc.stdout and not {"train@toy-tiny", "train@toy-t5"} & ran_stages(proc.stdout)
    assert changed_stages(repo) == set()


def test_push_and_pull_through_a_shared_remote_restore_a_trained_model(repo, tmp_path):
    """Check that `dvc push` to a local-directory remote and `dvc pull` into an emptied cache restore
    a trained model byte for byte, and the pipeline is then up to date (a teammate's cached stages)."""
    import hashlib

    model = repo / "models/toy/tiny/model.safetensors"
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    run(["dvc", "remote", "add", "--local", "-f", "-d", "shared", str(tmp_path / "remote")], repo)
    run(["dvc", "push"], repo)
    shutil.rmtree(repo / "models/toy/tiny")
    shutil.rmtree(repo / ".dvc/cache")
    run(["dvc", "pull"], repo)
    assert hashlib.sha256(model.read_bytes()).hexdigest() == digest
    assert changed_stages(repo) == set()


def test_train_stage_runs_unchanged_under_accelerate_launch_with_two_processes(repo, tmp_path):
    """Check that `accelerate launch` with 2 processes (CPU, gloo) trains the stage as is, and only the
    first process writes the model and metrics (the other's go to a scratch folder, deleted)."""
    out = tmp_path / "ddp"
    cmd = ["accelerate", "launch", "--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "stages/train.py", "toy", "tiny", "data/tokenized/toy/tiny", str(out / "model"),
           str(out / "metrics.json"), str(out / "live"), "--checkpoints", str(out / "checkpoints")]
    proc = run(cmd, repo)
    assert (out / "model" / "model.safetensors").is_file() and (out / "model" / "textcls.json").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "tiny" and 0 <= metrics["val_accuracy"] <= 1
    assert not (out / "checkpoints").exists()
    assert "Traceback" not in proc.stderr


def test_invalid_params_fail_before_any_work(repo):
    """Check that a bad value fails the stage with one clear line naming the key, and leaves no output."""
    edit_params(repo, lambda p: p["models"]["tiny2"].update(batch_size=0))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["dvc", "repro", "train@toy-tiny2"], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "The 'models.tiny2.batch_size' parameter must be an integer > 0. Got 0 instead." in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (repo / "models/toy/tiny2").exists()


def test_reference_profile_builds_the_hub_dag(tmp_path):
    """Check that `dvc exp run -S profile=reference`'s composition (conf/profile/reference.yaml) yields
    download -> prepare -> ... stages for the five hub models."""
    for name in DVC_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    run([sys.executable, str(ROOT / "scripts/compose_params.py"), "--profile", "reference", "--out",
         str(tmp_path / "params.yaml")], ROOT)
    run(["git", "init", "-q"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path)
    stages = {line.split()[0] for line in run(["dvc", "stage", "list"], tmp_path).stdout.splitlines()}
    models = ("bert", "roberta", "distilbert", "albert", "t5_small", "tfidf")
    assert {"download@ag_news", "download@sst2", "prepare@ag_news", "aggregate"} <= stages
    assert {f"train@{d}-{m}" for d in ("ag_news", "sst2") for m in models} <= stages
    dag = run(["dvc", "dag", "--dot", "prepare@ag_news"], tmp_path).stdout
    assert "download@ag_news" in dag


IMPORT_AUDIT = '''
import atexit, os, sys
def _report():
    seen = sorted(m for m in ("torch", "transformers") if m in sys.modules)
    with open(os.path.join(os.environ["TEXTCLS_IMPORT_AUDIT"], f"{os.getpid()}.txt"), "w") as f:
        f.write(" ".join(sys.argv[:3]) + "\\t" + ",".join(seen))
atexit.register(_report)
'''


def test_tfidf_stages_never_import_torch_or_transformers(toy_pipeline, tmp_path):
    """Check that the TF-IDF baseline's train, evaluate and benchmark stages (memory probe included) run in
    processes that never import torch or transformers (seconds of import per stage), and still measure."""
    repo = copy_project(toy_pipeline, tmp_path)  # its own copy: the re-run benchmark leaves aggregate stale
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(IMPORT_AUDIT)  # every Python process started below reports at exit
    audit = tmp_path / "audit"
    audit.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DVC_NO_ANALYTICS": "1", **ONE_THREAD,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
           "TEXTCLS_IMPORT_AUDIT": str(audit)}
    stages = ["train@toy-tfidf", "evaluate@toy-tfidf", "benchmark@toy-tfidf"]
    proc = subprocess.run(["dvc", "repro", "-f", "-s", *stages], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert ran_stages(proc.stdout) == set(stages)
    reports = dict(p.read_text().split("\t") for p in audit.glob("*.txt"))
    started = {cmd for cmd in reports if "stages/" in cmd or "memprobe" in cmd}
    assert any("stages/train.py" in c for c in started) and any("memprobe" in c for c in started), reports
    assert {cmd: mods for cmd, mods in reports.items() if mods} == {}
    bench = json.loads((repo / "metrics/benchmark/toy/tfidf.json").read_text())
    assert bench["cpu"]["variants"]["sklearn"]["model_rss_mb"] is not None
