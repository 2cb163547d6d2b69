"""Device, precision and thread settings, resolved once from params."""

from __future__ import annotations

import logging
import os

import torch

from textcls.errors import TextclsError

logger = logging.getLogger(__name__)


def resolve_device(setting: str) -> str:
    """``auto`` -> cuda if present else cpu; ``cuda`` without a GPU is an error, not a silent CPU run."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise TextclsError("device 'cuda' was requested but no CUDA GPU is visible to torch. "
                           "Fix: set device: auto (or cpu), or install a CUDA build of torch (see README).")
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def resolve_precision(setting: str, device: str) -> str:
    """``auto`` -> bf16 on GPUs that support it, else fp16 on GPU, fp32 on CPU."""
    if setting == "auto":
        if device != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if setting in ("fp16", "bf16") and device != "cuda":
        raise TextclsError(f"precision {setting!r} needs a CUDA GPU; this run is on {device}. "
                           "Fix: set precision: auto or fp32.")
    return setting


def configure_threads() -> int:
    """Use every core the process may run on (respects taskset / cgroup CPU affinity)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n
