"""`dvc repro` with a per-stage timing summary (what `make repro` runs).

DVC runs the stages of one `dvc repro` one after another and prints ``Running stage 'NAME':`` as each
starts; a stage's time is from its line to the next stage line (or the end), so it includes DVC's own
hashing and caching of that stage's outputs. Skipped and run-cache-restored stages are counted apart.
The summary goes to stdout at the end, slowest first, with the total and the share per stage family
(``train@...`` -> ``train``), so the next regression is visible in the log of every run:

    python scripts/repro.py [dvc repro options ...] [--times-json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import defaultdict

STARTED = re.compile(r"^Running stage '([^']+)'")
SKIPPED = re.compile(r"^Stage '([^']+)' didn't change, skipping")
RESTORED = re.compile(r"^Stage '([^']+)' is cached - skipping run, checking out outputs|^Restored stage '([^']+)'")


def stage_times(events: list[tuple[float, str]], end: float) -> dict[str, float]:
    """Seconds per started stage from ``(monotonic time, line)`` events: each stage runs until the next
    stage line (started, skipped or restored) or ``end``."""
    times: dict[str, float] = {}
    current: tuple[str, float] | None = None
    for t, line in events:
        started, other = STARTED.match(line), SKIPPED.match(line) or RESTORED.match(line)
        if (started or other) and current is not None:
            times[current[0]] = times.get(current[0], 0.0) + t - current[1]
            current = None
        if started:
            current = (started.group(1), t)
    if current is not None:
        times[current[0]] = times.get(current[0], 0.0) + end - current[1]
    return times


def summary(times: dict[str, float], skipped: int, restored: int, total: float) -> str:
    """The table `make repro` prints: stages slowest first, then the time per stage family."""
    lines = ["", f"Per-stage times (wall clock, {len(times)} stages run, {skipped} unchanged, "
                 f"{restored} restored from the run cache; total {total:.1f} s):"]
    width = max((len(name) for name in times), default=5)
    for name, seconds in sorted(times.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name:<{width}}  {seconds:8.1f} s  {100 * seconds / total if total else 0:5.1f} %")
    families: dict[str, list[float]] = defaultdict(list)
    for name, seconds in times.items():
        families[name.split("@")[0]].append(seconds)
    lines.append("By stage family:")
    for family, values in sorted(families.items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"  {family:<{width}}  {sum(values):8.1f} s  ({len(values)} stage{'s' * (len(values) > 1)})")
    lines.append(f"  {'outside stages (dvc start-up, status, lock)':<{width}}  "
                 f"{max(total - sum(times.values()), 0.0):8.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--times-json", help="also write {stage: seconds} here")
    args, dvc_args = parser.parse_known_args(argv)
    start = time.monotonic()
    events: list[tuple[float, str]] = []
    skipped = restored = 0
    proc = subprocess.Popen(["dvc", "repro", *dvc_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        events.append((time.monotonic(), line))
        skipped += bool(SKIPPED.match(line))
        restored += bool(RESTORED.match(line))
    rc = proc.wait()
    end = time.monotonic()
    times = stage_times(events, end)
    print(summary(times, skipped, restored, end - start))
    if args.times_json:
        with open(args.times_json, "w", encoding="utf-8") as f:
            json.dump({k: round(v, 2) for k, v in times.items()}, f, indent=2)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
