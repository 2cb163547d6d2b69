"""GPU tests (marker ``gpu``): skipped without a CUDA GPU, so `make test` on a CPU machine reports them as skipped.

Precision selection, the CUDA variant set, the memory counters and, with 2 GPUs, that only rank 0 writes a
stage's outputs under `accelerate launch --multi_gpu`. The whole GPU path at real sizes is `make gpu-check`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
ROOT = Path(__file__).resolve().parents[1]


def test_auto_precision_is_bf16_where_the_gpu_has_it():
    """Check that precision auto is bf16 on a bf16 GPU (fp16 otherwise) and fp32 on the CPU of the same machine."""
    from textcls.serving import runtime

    assert runtime.resolve_device("auto") == "cuda"
    assert runtime.resolve_precision("auto", "cuda") == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    assert runtime.resolve_precision("auto", "cpu") == "fp32"


def test_cuda_variant_set_of_the_transformer_kind():
    """Check that the transformer kind benchmarks the default CUDA variants (eager_bf16 only on bf16 GPUs)."""
    from types import SimpleNamespace

    from textcls import kinds
    from textcls.config.schema import CUDA_VARIANTS

    names = kinds.get("transformer").variants("cuda", SimpleNamespace(cpu_variants=[], cuda_variants=CUDA_VARIANTS))
    expected = [v for v in CUDA_VARIANTS if v != "eager_bf16" or torch.cuda.is_bf16_supported()]
    assert names == expected


@pytest.mark.parametrize("variant", ["eager_fp32", "eager_fp16", "eager_bf16"])
def test_eager_cuda_variants_agree_with_cpu_and_count_memory(variant, tiny_bert_dir, tmp_path):
    """Check that each eager CUDA variant serves the classes eager fp32 on CPU serves, and that the check's memory
    meter sees its CUDA allocations (torch's counters and NVML or device memory)."""
    from textcls.gpucheck.sections import MemoryMeter
    from textcls.serving import backends

    if variant == "eager_bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")
    batch = {"input_ids": np.array([[2, 14, 37, 46, 3], [2, 41, 42, 3, 0]]),
             "attention_mask": np.array([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]),
             "token_type_ids": np.zeros((2, 5), dtype=np.int64)}
    cpu, _ = backends.build("eager_fp32", tiny_bert_dir, "cpu", 1, tmp_path, list(batch))
    with MemoryMeter("cuda") as meter:
        gpu, _ = backends.build(variant, tiny_bert_dir, "cuda", 1, tmp_path, list(batch))
        got = gpu(batch)
    memory = meter.values()
    assert np.abs(got - cpu(batch)).max() < (1e-4 if variant == "eager_fp32" else 5e-2)
    assert memory["cuda_max_allocated_mb"] > 0 and memory["gpu_peak_mb"] >= 0
    assert memory["gpu_memory_source"] in ("nvml_process", "device_used_memory")


def test_gpu_check_runs_tiny_on_the_gpu(tmp_path):
    """Check that the GPU check runs end to end on the GPU with tiny models (every section, train in bf16/fp16)."""
    proc = subprocess.run([sys.executable, "scripts/gpu_check.py", "--tiny", "--out", str(tmp_path),
                           "--architectures", "bert,t5", "--variants", "eager_fp32,eager_bf16"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (path,) = tmp_path.glob("*.json")
    report = json.loads(path.read_text())
    train = report["sections"]["train"]
    assert [r["error"] for r in train] == [None, None]
    assert train[0]["values"]["precision"] in ("bf16", "fp16") and train[0]["values"]["cuda_max_allocated_mb"] > 0


RANK_SCRIPT = textwrap.dedent("""
    import argparse, json, os, sys
    sys.path.insert(0, {src!r})
    import torch, torch.distributed as dist
    from textcls.serving import runtime
    args = argparse.Namespace(model_dir={out!r} + "/model", metrics={out!r} + "/metrics.json", live_dir={out!r} + "/live")
    runtime.redirect_other_ranks(args)
    dist.init_process_group("nccl")
    rank = dist.get_rank()
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    t = torch.ones(1, device="cuda")
    dist.all_reduce(t)
    os.makedirs(os.path.dirname(args.metrics), exist_ok=True)
    with open(args.metrics, "w") as f:
        json.dump({{"rank": rank, "sum": t.item()}}, f)
    dist.destroy_process_group()
""")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_only_rank_0_writes_outputs_with_two_gpus(tmp_path):
    """Check that under `accelerate launch --multi_gpu --num_processes 2` both processes run on their own GPU
    (NCCL all-reduce sums to 2) and only rank 0's file lands at the stage's output path."""
    script = tmp_path / "ranked.py"
    script.write_text(RANK_SCRIPT.format(src=str(ROOT / "src"), out=str(tmp_path / "out")))
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "RANK", "LOCAL_RANK")}
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                           "2", "--num_machines", "1", str(script)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == {"rank": 0, "sum": 2.0}
