"""The state of the machine while a benchmark ran: recorded beside the numbers, never in the cache key.

:func:`snapshot` reads what Linux exposes (``/proc/stat``, ``/proc/loadavg``, ``/proc/cpuinfo``, the
cpufreq governor) without privileges; :func:`during` turns two snapshots into what happened between
them: the share of the CPUs other processes used (all CPU time minus this process's and its
children's), the share stolen by the hypervisor, the load average and the clock speed. A run on a
busy machine is kept, with ``busy: true`` and a warning, so a reader knows to distrust it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

logger = logging.getLogger(__name__)

BUSY_OTHER_SHARE = 0.25  # other processes used more than a quarter of the CPUs
BUSY_STEAL_SHARE = 0.05  # the hypervisor took more than 5 % of them


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, steal) clock ticks of all CPUs since boot, from the first line of /proc/stat."""
    text = _read("/proc/stat")
    if not text:
        return None
    fields = [int(v) for v in text.splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq, steal


def _cpu_mhz() -> float | None:
    text = _read("/proc/cpuinfo") or ""
    values = [float(line.split(":", 1)[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    return round(sum(values) / len(values), 1) if values else None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    wall: float
    own_cpu_s: float  # this process and its finished children
    jiffies: tuple[int, int] | None
    load: tuple[float, float, float] | None
    mhz: float | None


def snapshot() -> Snapshot:
    times = os.times()
    try:
        load = tuple(round(v, 2) for v in os.getloadavg())
    except OSError:
        load = None
    return Snapshot(time.monotonic(), times.user + times.system + times.children_user + times.children_system,
                    _cpu_jiffies(), load, _cpu_mhz())


def during(start: Snapshot, end: Snapshot, threads: int) -> dict:
    """What the machine did between two snapshots, and whether it was too busy to trust timings."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    wall = max(end.wall - start.wall, 1e-9)
    state = {"threads": threads, "usable_cores": cores, "seconds": round(wall, 1),
             "load_average_start": start.load, "load_average_end": end.load,
             "cpu_mhz_start": start.mhz, "cpu_mhz_end": end.mhz,
             "governor": (_read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") or "").strip() or None,
             "other_cpu_share": None, "steal_share": None}
    if start.jiffies and end.jiffies:
        tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        busy_s = (end.jiffies[0] - start.jiffies[0]) / tick
        steal_s = (end.jiffies[1] - start.jiffies[1]) / tick
        capacity = wall * (os.cpu_count() or cores)
        own = end.own_cpu_s - start.own_cpu_s
        state["other_cpu_share"] = round(min(max(busy_s - own, 0.0) / capacity, 1.0), 3)
        state["steal_share"] = round(min(max(steal_s, 0.0) / capacity, 1.0), 3)
    reasons = []
    if state["other_cpu_share"] is not None and state["other_cpu_share"] > BUSY_OTHER_SHARE:
        reasons.append(f"other processes used {state['other_cpu_share']:.0%} of the CPUs")
    if state["steal_share"] is not None and state["steal_share"] > BUSY_STEAL_SHARE:
        reasons.append(f"the hypervisor stole {state['steal_share']:.0%} of the CPU time")
    state["busy"] = bool(reasons)
    state["busy_reasons"] = reasons
    return state


def warn_if_busy(state: dict, what: str) -> None:
    if state["busy"]:
        logger.warning("%s: the machine was busy (%s); its timings are less trustworthy: rerun it on a quiet "
                       "machine (`dvc repro -f <stage>`)", what, "; ".join(state["busy_reasons"]))
