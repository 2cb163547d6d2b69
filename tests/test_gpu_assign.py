"""Many GPUs on one machine (textcls.serving.gpus): which GPU each stage process gets, tested without GPUs.

GPU counts are faked (``count=``); locks are real fcntl locks in a temp folder, taken by real concurrent
processes, so the assignment a `dvc queue start -j N` would see is what is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from textcls.serving import gpus

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(autouse=True)
def no_claims_left():
    """Each test starts and ends without claims of this process."""
    yield
    for held in gpus._HELD:
        held.release()
    gpus._HELD.clear()


@pytest.mark.parametrize("stage, env, count", [
    ("train", {}, 0),  # CPU-only machine
    ("train", {}, 1),  # one GPU: CUDA's default device is the only one
    ("prepare", {}, 4),  # not a GPU stage
    ("aggregate", {}, 4),
    ("train", {"CUDA_VISIBLE_DEVICES": "3"}, 4),  # the user's choice wins
    ("train", {"CUDA_VISIBLE_DEVICES": ""}, 4),  # "no GPU" chosen on purpose
    ("train", {"LOCAL_RANK": "0"}, 4),  # under accelerate launch / torchrun
    ("train", {"RANK": "1"}, 4),
    ("train", {"TEXTCLS_GPU_ASSIGN": "off"}, 4),
])
def test_nothing_changes_where_no_gpu_is_to_be_assigned(tmp_path, stage, env, count):
    """Check that CPU-only and 1-GPU machines, non-GPU stages, a set CUDA_VISIBLE_DEVICES, a launcher and
    the off switch leave the environment and the lock folder untouched."""
    environ = dict(env)
    assert gpus.assign_for_stage(stage, environ, count=count, folder=tmp_path / "locks") is None
    assert environ == env
    assert not (tmp_path / "locks").exists()


def test_each_stage_process_gets_its_own_gpu(tmp_path):
    """Check that successive claims in one machine get GPUs 0, 1, 2 and set CUDA_VISIBLE_DEVICES (PCI order)."""
    seen = []
    for _ in range(3):
        environ = {}
        held = gpus.assign_for_stage("train", environ, count=3, folder=tmp_path)
        seen.append(environ["CUDA_VISIBLE_DEVICES"])
        assert environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" and held.indices == (int(seen[-1]),)
    assert seen == ["0", "1", "2"]


def test_a_released_gpu_is_reused_and_a_full_machine_waits(tmp_path):
    """Check that a claim waits (polling) while every GPU is held, and takes the GPU freed meanwhile."""
    first = gpus.claim(1, 2, tmp_path)
    second = gpus.claim(1, 2, tmp_path)
    sleeps = []

    def sleep(seconds):  # the other stage finishes while this one waits
        sleeps.append(seconds)
        second.release()

    third = gpus.claim(1, 2, tmp_path, poll_s=0.5, sleep=sleep)
    assert (first.indices, second.indices, third.indices) == ((0,), (1,), (1,))
    assert sleeps == [0.5]
    with pytest.raises(TimeoutError, match="no 1 free GPU"):
        gpus.claim(1, 2, tmp_path, poll_s=0.01, timeout_s=0.05)


def test_an_all_gpu_claim_holds_nothing_while_it_waits(tmp_path):
    """Check that claiming every GPU (DDP) while one is busy takes none of the free ones in the meantime."""
    busy = gpus.claim(1, 3, tmp_path)
    with pytest.raises(TimeoutError):
        gpus.claim(3, 3, tmp_path, poll_s=0.01, timeout_s=0.05)
    assert gpus.claim(2, 3, tmp_path).indices == (1, 2)  # GPUs 1 and 2 were left free
    busy.release()
    with pytest.raises(ValueError, match="cannot claim 4 of 3"):
        gpus.claim(4, 3, tmp_path)


CHILD = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, {src!r})
    from textcls.serving import gpus
    environ = {{}}
    gpus.assign_for_stage("train", environ, count={count}, folder=__import__("pathlib").Path({folder!r}), poll_s=0.05)
    print(json.dumps({{"gpu": environ["CUDA_VISIBLE_DEVICES"], "at": time.monotonic()}}), flush=True)
    time.sleep({hold})
""")


def _start(folder: Path, count: int, hold: float) -> subprocess.Popen:
    code = CHILD.format(src=SRC, count=count, folder=str(folder), hold=hold)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})


def test_concurrent_processes_get_distinct_gpus_and_the_extra_one_waits(tmp_path):
    """Check that 3 processes started at once on a fake 3-GPU machine hold 3 different GPUs, and that a 4th
    gets a GPU only after one of them exits (its lock is freed by the OS)."""
    procs = [_start(tmp_path, 3, hold=1.5) for _ in range(3)]
    rows = [json.loads(p.stdout.readline()) for p in procs]
    assert sorted(r["gpu"] for r in rows) == ["0", "1", "2"]
    extra = _start(tmp_path, 3, hold=0.0)
    late = json.loads(extra.stdout.readline())
    ended = []
    for p in procs:
        p.wait(timeout=30)
        ended.append(time.monotonic())
    extra.wait(timeout=30)
    assert late["gpu"] in {"0", "1", "2"}
    assert late["at"] >= max(r["at"] for r in rows) + 1.0  # it waited for a holder to exit (held 1.5 s)
    assert all(p.returncode == 0 for p in [*procs, extra])


def test_ddp_runs_the_stage_under_accelerate_on_every_gpu(tmp_path):
    """Check that multi_gpu: ddp on 4 GPUs gives back the one GPU cli.run took, holds all four while the
    launch runs, launches one process per GPU with all of them visible, and returns the launch's status."""
    environ = {}
    gpus.assign_for_stage("train", environ, count=4, folder=tmp_path)
    calls = []

    def runner(cmd, env, check):
        calls.append((cmd, env["CUDA_VISIBLE_DEVICES"]))
        with pytest.raises(TimeoutError):  # every GPU is held during the launch
            gpus.claim(1, 4, tmp_path, poll_s=0.01, timeout_s=0.03)
        return subprocess.CompletedProcess(cmd, 3)

    assert gpus.run_ddp("ddp", "stages/train.py", ["ag_news", "bert"], environ, count=4, folder=tmp_path,
                        runner=runner) == 3
    (cmd, visible), = calls
    assert visible == "0,1,2,3"
    assert cmd[1:] == ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "4",
                       "--num_machines", "1", "stages/train.py", "ag_news", "bert"]
    assert gpus.claim(4, 4, tmp_path).indices == (0, 1, 2, 3)  # all released after the launch


@pytest.mark.parametrize("mode, env, count", [
    ("one_per_job", {}, 4), ("ddp", {}, 1), ("ddp", {}, 0), ("ddp", {"LOCAL_RANK": "2"}, 4),
    ("ddp", {"CUDA_VISIBLE_DEVICES": "5"}, 8),
])
def test_ddp_trains_in_process_where_there_is_nothing_to_spread(tmp_path, mode, env, count):
    """Check that one_per_job, a machine with < 2 GPUs, a process already launched and one chosen GPU
    train in the stage process itself (no launch)."""
    def runner(*args, **kwargs):
        raise AssertionError("no launch expected")

    assert gpus.run_ddp(mode, "stages/train.py", [], dict(env), count=count, folder=tmp_path, runner=runner) is None


def test_ddp_uses_the_gpus_the_user_chose(tmp_path):
    """Check that CUDA_VISIBLE_DEVICES=2,5 set by the user launches 2 processes on exactly those, without locks."""
    seen = []
    code = gpus.run_ddp("ddp", "s.py", [], {"CUDA_VISIBLE_DEVICES": "2,5"}, count=8, folder=tmp_path,
                        runner=lambda cmd, env, check: seen.append((cmd[5], env["CUDA_VISIBLE_DEVICES"]))
                        or subprocess.CompletedProcess(cmd, 0))
    assert code == 0 and seen == [("2", "2,5")]
    assert not tmp_path.joinpath("gpu0.lock").exists()
    with pytest.raises(ValueError, match="multi_gpu must be one of"):
        gpus.run_ddp("all", "s.py", [], {}, count=2, folder=tmp_path)


def test_multi_gpu_param_is_validated():
    """Check that train.multi_gpu defaults to one_per_job, a model entry may set ddp, and any other value is
    refused naming the key."""
    from textcls.config.params import parse_params
    from textcls.errors import ParamsError

    def model(**entry):
        return parse_params({
            "datasets": {"d": {"format": "csv", "path": "x", "files": {"train": "t.csv"}}},
            "models": {"m": {"kind": "transformer", "source": "src", "tokenizer": {}, **entry}},
        }).models["m"]

    assert model().train.multi_gpu == "one_per_job"
    assert model(multi_gpu="ddp").train.multi_gpu == "ddp"
    with pytest.raises(ParamsError, match=r"multi_gpu"):
        model(multi_gpu="data_parallel")
