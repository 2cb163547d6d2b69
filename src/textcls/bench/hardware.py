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

from textcls.threads import thread_setting, usable_cores


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
    """Name, count, memory, driver and driver CUDA version of GPU 0 from NVML, or ``"unavailable"``.

    NVML (nvidia-ml-py), not torch: this stage runs first and always, and importing torch would cost it
    seconds on every `dvc repro`. Whether the installed torch can use the GPU is in ``packages.torch``
    (a ``+cpu`` build cannot)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver or no GPU: the CPU-only case
        return "unavailable"
    try:
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            return "unavailable"
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(handle)
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
        return {"name": name.decode() if isinstance(name, bytes) else name, "count": count,
                "memory_gib": round(pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30, 1),
                "cuda_driver": f"{cuda // 1000}.{cuda % 1000 // 10}", "capability": f"{major}.{minor}",
                "driver": pynvml.nvmlSystemGetDriverVersion()}
    finally:
        pynvml.nvmlShutdown()


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
