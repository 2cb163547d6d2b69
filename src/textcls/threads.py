"""How many threads this process computes with: the one thread setting of training, evaluation and the benchmark.

A top-level module of its own (no torch, no other textcls package): the always-run ``hardware`` stage records the
setting in the machine fingerprint, and every stage that computes applies it (``serving.runtime.configure_threads``).
"""

from __future__ import annotations

import os


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
