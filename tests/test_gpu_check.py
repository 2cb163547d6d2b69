"""The one-command GPU check (scripts/gpu_check.py, textcls.gpucheck): its CPU dry run end to end on a stack
without dvc, dvclive, datasets or pydantic (as on the GPU machine), the clear exit without a GPU, and the
arithmetic it reports (FLOPs, MFU, peaks) against known answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from textcls.gpucheck import models as gm
from textcls.gpucheck.run import SECTIONS, Report, Runner

ROOT = Path(__file__).resolve().parents[1]
ABSENT_ON_GPU_IMAGE = ("dvc", "dvclive", "datasets", "pydantic", "pydantic_core")
# the modules are made unimportable (sys.modules[name] = None: `import` fails, importlib.util.find_spec says None)
BLOCKED_RUN = ("import runpy, sys\n"
               "for name in {names!r}: sys.modules[name] = None\n"
               "sys.argv = ['scripts/gpu_check.py', *{args!r}]\n"
               "runpy.run_path('scripts/gpu_check.py', run_name='__main__')\n")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the script finds src/ itself
    return {**env, "HF_HUB_OFFLINE": "1", "TEXTCLS_THREADS": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gpu-report")
    code = BLOCKED_RUN.format(names=ABSENT_ON_GPU_IMAGE, args=["--device", "cpu", "--tiny", "--out", str(out)])
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (path,) = out.glob("*.json")
    assert path.with_suffix(".md").is_file()
    return json.loads(path.read_text())


def test_dry_run_writes_every_section_without_error_rows(dry_run):
    """Check that `--device cpu --tiny`, with dvc/dvclive/datasets/pydantic unimportable, writes a report with
    every section, a train row per architecture and a row per CPU variant of the registry, and no error row."""
    sections = dry_run["sections"]
    assert set(sections) == set(SECTIONS) and all(sections.values())
    assert dry_run["errors"] == 0 and not [r for rows in sections.values() for r in rows if r["error"]]
    assert [r["name"] for r in sections["train"]] == list(gm.ARCHITECTURES)
    names = {r["name"] for r in sections["inference"]}
    assert names == {f"{a}/{v}" for a in gm.ARCHITECTURES
                     for v in ("eager_fp32", "dynamic_int8", "onnx_fp32", "onnx_int8")}


def test_dry_run_numbers_are_sane(dry_run):
    """Check that training rows carry positive samples/s, tokens/s = samples/s x seq_len, FLOPs and MFU in (0, 1]
    against the measured peak, and inference rows the project's latency intervals and throughput per batch size."""
    for row in dry_run["sections"]["train"]:
        v = row["values"]
        assert v["precision"] == "fp32" and v["samples_per_s"] > 0 and v["train_flops_per_step"] > 0
        assert v["tokens_per_s"] == pytest.approx(v["samples_per_s"] * v["seq_len"], rel=1e-3)
        assert 0 < v["mfu_vs_measured_peak"] <= 1.5  # measured matmul rate, so a small model stays below it
    for row in dry_run["sections"]["inference"]:
        v = row["values"]
        assert v["batch1_ms"]["count"] == 8 and 0 < v["batch1_ms"]["p50"] <= v["batch1_ms"]["max"]
        assert set(v["throughput"]) == {"1", "4"} and v["throughput"]["4"]["samples_per_s"] > 0
        assert "rss_mb" in v["memory"] and "peak_rss_mb" in v["memory"]


def test_dry_run_same_seed_runs_are_bitwise_equal_on_cpu(dry_run):
    """Check that the determinism rows (default kernels and train.deterministic) find two same-seed CPU runs
    identical: zero weight and logit difference, full agreement, within the 0.5 pt tolerance."""
    rows = dry_run["sections"]["determinism"]
    assert [r["name"] for r in rows] == ["distilbert/default", "distilbert/deterministic"]
    for row in rows:
        v = row["values"]
        assert v["max_weight_diff"] == 0.0 and v["max_logit_diff"] == 0.0 and v["bitwise_equal"]
        assert v["prediction_agreement"] == 1.0 and v["within_tolerance"] and v["tolerance_pt"] == 0.5


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_make_gpu_check_without_cuda_exits_at_once_saying_so(tmp_path):
    """Check that `make gpu-check` on a CPU-only machine exits non-zero within seconds with "no CUDA device",
    writing no report, and does not create the venv (PYTHON= any python with torch)."""
    start = time.monotonic()
    proc = subprocess.run(["make", "-s", "gpu-check", f"PYTHON={sys.executable}", f"GPU_CHECK_ARGS=--out {tmp_path}",
                           "VENV=/nonexistent-venv"], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    assert "error: no CUDA device" in proc.stderr and "--device cpu --tiny" in proc.stderr
    assert time.monotonic() - start < 30 and not list(tmp_path.iterdir())
    assert not Path("/nonexistent-venv").exists()


def test_forward_flops_and_mfu_known_answers():
    """Check the FLOPs of a Linear layer (2 x batch x in x out), training = 3x forward, and MFU arithmetic."""
    import torch

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(64, 16)

        def forward(self, x):
            return self.linear(x)

    assert gm.forward_flops(Head(), {"x": torch.ones(8, 64)}) == 2 * 8 * 64 * 16
    assert gm.training_flops_per_step(16384) == 49152
    assert gm.mfu(3e12, 10.0, 100e12) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="peak_flops > 0"):
        gm.mfu(1.0, 1.0, 0.0)


def test_shared_albert_layer_counts_once_per_use():
    """Check that ALBERT's one shared layer, used 12 times, costs about what 12 BERT layers of the same width cost
    (counted per call, not per parameter)."""
    import torch

    ids = torch.full((2, 16), 20)
    flops = {}
    for name in ("bert", "albert"):
        arch = gm.REFERENCE[name]
        model = arch.build(tiny=True, num_labels=4, seed=0)
        flops[name] = gm.forward_flops(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    assert flops["albert"] == pytest.approx(flops["bert"], rel=0.1)


@pytest.mark.parametrize("name, peak", [
    ("NVIDIA H200", 989e12), ("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12),
    ("NVIDIA A100-SXM4-80GB", 312e12), ("NVIDIA L4", 121e12), ("NVIDIA L40S", 362e12), ("NVIDIA A10G", 70e12),
    ("NVIDIA A10", 125e12), ("Tesla T4", None),
])
def test_table_peak_matches_the_most_specific_name(name, peak):
    """Check that device names map to their dense bf16 peak (H100 PCIe is not an H100 SXM, L40S not an L4)."""
    assert gm.table_peak(name) == peak


def test_real_sizes_are_the_reference_models():
    """Check the configs behind the real sizes: widths, depths and vocabularies of the five reference models."""
    import transformers

    expected = {"bert": (768, 12, 30522), "roberta": (768, 12, 50265), "distilbert": (768, 6, 30522),
                "albert": (768, 12, 30000), "t5": (512, 6, 32128)}
    for name, (width, depth, vocab) in expected.items():
        arch = gm.REFERENCE[name]
        config = getattr(transformers, arch.config_class)(**arch.sizes)
        assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (width, depth, vocab), name
    assert transformers.AlbertConfig(**gm.REFERENCE["albert"].sizes).embedding_size == 128
    assert transformers.T5Config(**gm.REFERENCE["t5"].sizes).num_decoder_layers == 6


def test_synthetic_rows_plant_their_class_keywords():
    """Check that every synthetic row holds keywords of its own class only, ids stay in range, and T5 rows end
    with the one end-of-sequence token."""
    task = gm.SyntheticTask(vocab_size=500, seq_len=32, num_labels=4, keywords=6, seed=3)
    ids, labels = task.rows(50, split_seed=1, eos_id=1)
    keys = task.keyword_ids()
    assert ids.shape == (50, 32) and (ids[:, -1] == 1).all() and (ids[:, :-1] >= gm.CONTENT_START).all()
    assert ids.max() < 500 and set(labels) <= {0, 1, 2, 3}
    for row, label in zip(ids, labels):
        assert np.isin(row, keys[label]).sum() >= 1
    again, _ = task.rows(50, split_seed=1, eos_id=1)
    assert np.array_equal(ids, again)


def test_a_failing_row_is_an_error_row_and_the_budget_skips_the_rest():
    """Check that an exception becomes that row's error (the next row still runs) and a spent budget skips."""
    report = Report("2026-01-01T00:00:00Z", "NVIDIA H200", {})
    runner = Runner(report, budget_s=60)
    with runner.row("train", "bert") as values:
        values["a"] = 1
        raise RuntimeError("CUDA out of memory\nmore")
    with runner.row("train", "roberta") as values:
        values["b"] = 2
    runner.deadline = time.monotonic() - 1
    with runner.row("inference", "t5/eager_bf16") as values:
        assert values is None
    bert, roberta, t5 = report.rows
    assert bert.error == "RuntimeError: CUDA out of memory" and bert.values["a"] == 1
    assert roberta.error is None and roberta.values == {"b": 2}
    assert t5.error.startswith("skipped: time budget")
    assert report.to_json()["errors"] == 2


def test_report_files_are_named_by_date_and_machine(tmp_path):
    """Check the report's file names (<date>-<machine slug>) and that the markdown has a table per section."""
    report = Report("2026-03-04T05:06:07Z", "NVIDIA H200", {"steps": 200})
    json_path, md_path = report.write(tmp_path)
    assert json_path.name == "2026-03-04-nvidia-h200.json" and md_path.name == "2026-03-04-nvidia-h200.md"
    assert all(f"## {s}" in md_path.read_text() for s in SECTIONS)


def test_compiled_variant_serves_the_same_classes(tiny_bert_dir, tmp_path, monkeypatch):
    """Check that compiled_bf16 (torch.compile, here with the fast `eager` compiler backend on CPU) is registered
    for CUDA only and serves logits close to eager fp32's."""
    import torch

    from textcls.serving import backends, compiled  # noqa: F401

    monkeypatch.setenv("TEXTCLS_COMPILE_BACKEND", "eager")
    variant = backends.VARIANTS["compiled_bf16"]
    assert variant.devices == ("cuda",) and variant.needs_bf16
    batch = {"input_ids": np.array([[2, 14, 37, 46, 3]]), "attention_mask": np.ones((1, 5), dtype=np.int64),
             "token_type_ids": np.zeros((1, 5), dtype=np.int64)}
    names = list(batch)
    got = variant.make(tiny_bert_dir, "cpu", 1, tmp_path, names)(batch)
    want = backends.VARIANTS["eager_fp32"].make(tiny_bert_dir, "cpu", 1, tmp_path, names)(batch)
    torch._dynamo.reset()
    assert got.dtype == np.float32 and np.abs(got - want).max() < 0.05
