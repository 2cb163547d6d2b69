"""A fingerprint of the machine and software that measured a benchmark.

Written by the always-run `hardware` stage and listed as a dependency of every
`benchmark` stage: on the same machine it is byte-identical (benchmarks stay cached),
on another machine it differs (benchmarks rerun instead of reusing foreign numbers).
Only stable facts go in (no clock speeds, loads or free memory: those are recorded per run in each
benchmark's ``machine_state``), and the thread setting (``TEXTCLS_THREADS``) the benchmarks run with,
so the cache never restores numbers measured with other thread counts.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def total_memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def gpu_info() -> dict | str:
    """Name, memory, CUDA and driver of GPU 0, or ``"unavailable"``."""
    import torch

    if not torch.cuda.is_available():
        return "unavailable"
    props = torch.cuda.get_device_properties(0)
    info = {"name": props.name, "count": torch.cuda.device_count(),
            "memory_gib": round(props.total_memory / 2**30, 1), "cuda": torch.version.cuda,
            "capability": f"{props.major}.{props.minor}"}
    try:
        import pynvml

        pynvml.nvmlInit()
        info["driver"] = pynvml.nvmlSystemGetDriverVersion()
    except Exception:  # driver version is informative only
        info["driver"] = None
    return info


def usable_cores() -> int:
    """Cores this process may run on (respects taskset / cgroup CPU affinity)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def thread_setting() -> int:
    """``TEXTCLS_THREADS`` when set (at most the usable cores), else every usable core."""
    from textcls.errors import TextclsError

    usable = usable_cores()
    wanted = os.environ.get("TEXTCLS_THREADS", "").strip()
    if wanted and not (wanted.isdigit() and int(wanted) > 0):
        raise TextclsError(f"TEXTCLS_THREADS={wanted!r} is not a positive integer. Fix: unset it, or set e.g. "
                           "TEXTCLS_THREADS=1.")
    return min(int(wanted), usable) if wanted else usable


def fingerprint() -> dict:
    cores = usable_cores()
    return {
        "cpu": {"model": cpu_model(), "machine": platform.machine(), "logical_cores": os.cpu_count(),
                "usable_cores": cores, "memory_gib": total_memory_gib()},
        "gpu": gpu_info(),
        "threads": {"TEXTCLS_THREADS": os.environ.get("TEXTCLS_THREADS", "").strip() or None,
                    "resolved": thread_setting()},
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in ("torch", "transformers", "onnxruntime", "scikit-learn")},
    }
