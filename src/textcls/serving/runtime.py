"""Device, precision and thread settings, resolved once from params.

torch is imported only by the functions that need it, so a stage of a kind that never uses torch (TF-IDF:
``ModelKind.uses_torch``) does not pay its import (seconds per stage process)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from textcls.errors import TextclsError

logger = logging.getLogger(__name__)


def resolve_device(setting: str) -> str:
    """``auto`` -> cuda if present else cpu; ``cuda`` without a GPU is an error, not a silent CPU run."""
    import torch

    if setting == "cuda" and not torch.cuda.is_available():
        raise TextclsError("device 'cuda' was requested but no CUDA GPU is visible to torch. "
                           "Fix: set device: auto (or cpu), or install a CUDA build of torch (see README).")
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def resolve_precision(setting: str, device: str) -> str:
    """``auto`` -> bf16 on GPUs that support it, else fp16 on GPU, fp32 on CPU. ``bf16`` also runs on CPU
    (autocast: weights and optimizer stay fp32, matrix products in bf16; fast where the CPU has AMX or
    AVX512-BF16 units, emulated and slower elsewhere); fp16 needs a GPU."""
    if setting == "auto":
        if device != "cuda":
            return "fp32"
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if setting == "fp16" and device != "cuda":
        raise TextclsError(f"precision 'fp16' needs a CUDA GPU; this run is on {device}. "
                           "Fix: set precision: bf16 (CPU autocast), auto or fp32.")
    if setting == "bf16" and device == "cuda":
        import torch

        if not torch.cuda.is_bf16_supported():
            raise TextclsError("precision 'bf16' was requested but this GPU has no bf16 support. "
                               "Fix: set precision: auto (fp16 on this GPU) or fp32.")
    return setting


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX or AVX512-BF16; Linux /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def configure_threads(uses_torch: bool = True) -> int:
    """Every core the process may run on (respects taskset / cgroup CPU affinity), or ``TEXTCLS_THREADS``
    when set: e.g. ``TEXTCLS_THREADS=1 dvc queue start -j 2`` so parallel experiments do not oversubscribe.
    Applied to torch unless ``uses_torch`` is false (then torch is not imported at all)."""
    from textcls.threads import thread_setting

    n = thread_setting()
    if uses_torch:
        import torch

        torch.set_num_threads(n)
    return n


def process_rank() -> int:
    """This process's rank under `accelerate launch` / torchrun (``RANK``); 0 when run alone."""
    return int(os.environ.get("RANK", "0"))


def redirect_other_ranks(args, names=("model_dir", "metrics", "live_dir")) -> None:
    """Under `accelerate launch` with several processes only rank 0 writes a stage's outputs; the
    others train along (DDP) and write theirs into a scratch folder deleted at exit, so no two
    processes ever replace the same output."""
    rank = process_rank()
    if rank == 0:
        return
    import atexit
    import shutil
    import tempfile

    scratch = tempfile.mkdtemp(prefix=f"textcls-rank{rank}-")
    atexit.register(shutil.rmtree, scratch, True)
    for name in names:
        setattr(args, name, os.path.join(scratch, name))


@contextlib.contextmanager
def out_of_memory_hint(what: str, fix: str):
    """Turn an out-of-memory error (GPU, or a CPU allocation that failed) into one clear message that
    names the batch settings to lower, instead of a long traceback."""
    try:
        yield
    except (MemoryError, RuntimeError) as err:  # torch.OutOfMemoryError is a RuntimeError
        text = str(err)
        torch = sys.modules.get("torch")  # only a process that imported torch can have raised its error
        torch_oom = (torch.OutOfMemoryError,) if torch is not None else ()
        if isinstance(err, RuntimeError) and not isinstance(err, torch_oom) \
                and "out of memory" not in text.lower() and "can't allocate memory" not in text.lower():
            raise
        first = (text.strip().splitlines() or [type(err).__name__])[0][:200]
        raise TextclsError(f"{what} ran out of memory ({type(err).__name__}: {first}). Nothing was saved. "
                           f"Fix: {fix}.") from None
