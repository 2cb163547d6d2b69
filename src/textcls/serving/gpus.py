"""Many GPUs on one machine: one GPU per stage process, or one training on all of them (DDP).

``dvc queue start -j N`` runs N experiments at once, each a chain of stage processes. Without help, every
one of them would see all GPUs: evaluation and the benchmark would all land on GPU 0, and the Hugging Face
Trainer would wrap each training in ``nn.DataParallel`` over every GPU (one process driving all GPUs,
several such processes at once). :func:`assign_for_stage` (called by :func:`textcls.cli.run` before a
stage's ``main``) prevents both: a stage that computes on a GPU takes an exclusive lock on one GPU (an
``fcntl`` lock on ``<lock dir>/gpu<i>.lock``, held until the process exits, so a killed stage frees it)
and sets ``CUDA_VISIBLE_DEVICES`` to that GPU before CUDA is initialised. When every GPU is taken it waits,
saying so once. Nothing changes on a machine with fewer than two GPUs, when ``CUDA_VISIBLE_DEVICES`` is
already set (your choice wins), under a launcher (``LOCAL_RANK``/``RANK`` set) or with
``TEXTCLS_GPU_ASSIGN=off``.

``train.multi_gpu: ddp`` instead runs each training on all GPUs: the train stage takes every GPU's lock and
re-runs itself under ``accelerate launch --multi_gpu`` (:func:`run_ddp`), one process per GPU.

GPUs are counted with NVML (``nvidia-ml-py``), which does not initialise CUDA; indices are PCI bus order,
and ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` is set with them so CUDA numbers the GPUs the same way.
"""

from __future__ import annotations

import dataclasses
import fcntl
import glob
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, MutableMapping

logger = logging.getLogger(__name__)

# Stage scripts (stages/<name>.py) that compute on a GPU when there is one; the others never take a GPU.
GPU_STAGES = frozenset({"train", "distill", "evaluate", "benchmark", "teacher_logits", "fewshot"})
MULTI_GPU_MODES = ("one_per_job", "ddp")
DEFAULT_LOCK_DIR = "/tmp/textcls-gpu-locks"  # machine-local on purpose: GPUs belong to one machine
_HELD: list["GpuClaim"] = []  # claims of this process, kept (and locked) until it exits


def physical_gpu_count() -> int:
    """NVIDIA GPUs on this machine (NVML: does not initialise CUDA, ignores CUDA_VISIBLE_DEVICES); 0 without
    a driver or without nvidia-ml-py."""
    if not glob.glob("/dev/nvidia[0-9]*"):
        return 0
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no pynvml, or NVML cannot talk to the driver
        return 0


def lock_dir(environ: MutableMapping[str, str] = os.environ) -> Path:
    """``TEXTCLS_GPU_LOCK_DIR``, else /tmp/textcls-gpu-locks (shared by every clone and queue job on the machine)."""
    return Path(environ.get("TEXTCLS_GPU_LOCK_DIR") or DEFAULT_LOCK_DIR)


@dataclasses.dataclass
class GpuClaim:
    """GPUs this process holds (their lock files stay open, and locked, until :meth:`release` or exit)."""

    indices: tuple[int, ...]
    files: list = dataclasses.field(default_factory=list, repr=False)

    @property
    def visible_devices(self) -> str:
        return ",".join(str(i) for i in self.indices)

    def release(self) -> None:
        for f in self.files:
            f.close()  # closing the file drops its lock
        self.files.clear()


def _try_lock(path: Path):
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")  # who holds it, for a person looking at the folder
    f.flush()
    return f


def claim(wanted: int, total: int, folder: Path, poll_s: float = 2.0, timeout_s: float | None = None,
          sleep: Callable[[float], None] = time.sleep) -> GpuClaim:
    """Lock ``wanted`` of GPUs ``0..total-1`` (the lowest free ones), waiting while fewer are free; with
    ``wanted > 1`` nothing is held while waiting, so two all-GPU claims cannot deadlock each other."""
    if not 1 <= wanted <= total:
        raise ValueError(f"cannot claim {wanted} of {total} GPUs")
    folder.mkdir(parents=True, exist_ok=True)
    waited, started = False, time.monotonic()
    while True:
        got = []
        for i in range(total):
            f = _try_lock(folder / f"gpu{i}.lock")
            if f is not None:
                got.append((i, f))
                if len(got) == wanted:
                    return GpuClaim(tuple(i for i, _ in got), [f for _, f in got])
        for _, f in got:
            f.close()
        if timeout_s is not None and time.monotonic() - started >= timeout_s:
            raise TimeoutError(f"no {wanted} free GPU(s) of {total} within {timeout_s} s (locks in {folder})")
        if not waited:
            logger.info("waiting for %d free GPU(s): all %d are used by other textcls stages (locks in %s)",
                        wanted, total, folder)
            waited = True
        sleep(poll_s)


def _left_alone(environ: MutableMapping[str, str]) -> bool:
    return ("CUDA_VISIBLE_DEVICES" in environ or "LOCAL_RANK" in environ or "RANK" in environ
            or environ.get("TEXTCLS_GPU_ASSIGN", "auto") == "off")


def assign_for_stage(stage: str, environ: MutableMapping[str, str] = os.environ, count: int | None = None,
                     folder: Path | None = None, poll_s: float = 2.0) -> GpuClaim | None:
    """Give a GPU stage process one GPU of its own (see the module docstring); None where nothing was done."""
    if stage not in GPU_STAGES:
        return None
    return assign_one(f"stage {stage}", environ, count, folder, poll_s)


def assign_one(what: str, environ: MutableMapping[str, str] = os.environ, count: int | None = None,
               folder: Path | None = None, poll_s: float = 2.0) -> GpuClaim | None:
    """With several GPUs (and CUDA_VISIBLE_DEVICES, a launcher and TEXTCLS_GPU_ASSIGN=off all absent): lock one
    free GPU for this process's lifetime and make it the only one CUDA sees. None where nothing was done."""
    if _left_alone(environ):
        return None
    total = physical_gpu_count() if count is None else count
    if total <= 1:
        return None
    held = claim(1, total, folder or lock_dir(environ), poll_s=poll_s)
    environ["CUDA_VISIBLE_DEVICES"] = held.visible_devices
    environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    _HELD.append(held)
    logger.info("%s runs on GPU %s of %d (CUDA_VISIBLE_DEVICES; lock held until it exits)",
                what, held.visible_devices, total)
    return held


def ddp_command(script: str, argv: list[str], processes: int, python: str = sys.executable) -> list[str]:
    """The command that runs ``script argv`` once per GPU under accelerate's launcher (DDP)."""
    return [python, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", script, *argv]


def run_ddp(mode: str, script: str, argv: list[str], environ: MutableMapping[str, str] = os.environ,
            count: int | None = None, folder: Path | None = None,
            runner: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> int | None:
    """``train.multi_gpu: ddp`` on a machine with several GPUs: hold every GPU's lock, run the stage again
    under ``accelerate launch`` (one process per GPU; rank 0 writes the outputs) and return its exit status.
    None (train in this process, as usual) for ``one_per_job``, under a launcher already, or with < 2 GPUs."""
    if mode not in MULTI_GPU_MODES:
        raise ValueError(f"multi_gpu must be one of {MULTI_GPU_MODES}, got {mode!r}")
    if mode != "ddp" or "LOCAL_RANK" in environ or "RANK" in environ:
        return None
    if "CUDA_VISIBLE_DEVICES" in environ and not _HELD:  # chosen by the user: all of those, no locks
        chosen = [d for d in environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
        if len(chosen) <= 1:
            return None
        logger.info("multi_gpu: ddp: training on CUDA_VISIBLE_DEVICES=%s under accelerate launch",
                    environ["CUDA_VISIBLE_DEVICES"])
        return runner(ddp_command(script, argv, len(chosen)), env=dict(environ), check=False).returncode
    total = physical_gpu_count() if count is None else count
    if total <= 1:
        return None
    for held in _HELD:  # the one GPU cli.run gave this stage: all of them are needed now
        held.release()
    _HELD.clear()
    every = claim(total, total, folder or lock_dir(environ))
    try:
        env = {**environ, "CUDA_VISIBLE_DEVICES": every.visible_devices, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
        logger.info("multi_gpu: ddp: training on GPUs %s under accelerate launch", every.visible_devices)
        return runner(ddp_command(script, argv, total), env=env, check=False).returncode
    finally:
        every.release()
