"""`dvc repro` with a per-stage timing summary (what `make repro` runs).

DVC runs the stages of one `dvc repro` one after another and prints ``Running stage 'NAME':`` as each
starts; a stage's time is from its line to the next stage line (or the end), so it includes DVC's own
hashing and caching of that stage's outputs. Skipped and run-cache-restored stages are counted apart.
The summary goes to stdout at the end, slowest first, with the total and the share per stage family
(``train@...`` -> ``train``), so the next regression is visible in the log of every run:

    python scripts/repro.py [dvc repro options ...] [--times-json FILE]
    python scripts/repro.py --from-log LOG --times-json FILE    # the JSON of a run from its printed summary

The stages run in forks of one warm interpreter that imported torch and transformers once
(:mod:`textcls.warm`; ``--cold``: each in a fresh one, as plain ``dvc repro`` runs them).

``--times-json`` (``make repro`` passes ``reports/run_times.json``) writes ``{"stages": {stage: seconds},
"total_s", "unchanged", "restored", "setup_s"}`` when at least one stage ran; a no-op run keeps the file of
the last run that did work. ``setup_s``: the seconds the last ``make setup`` took to build ``.venv``, read once
from ``.venv/.setup-seconds`` (so only the first run after a setup reports it; else null). The ``run_times``
block of the docs is generated from the file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict

from textcls import warm

STARTED = re.compile(r"^Running stage '([^']+)'")
SKIPPED = re.compile(r"^Stage '([^']+)' didn't change, skipping")
RESTORED = re.compile(r"^Stage '([^']+)' is cached - skipping run, checking out outputs|^Restored stage '([^']+)'")


def stage_name(raw: str) -> str:
    """A stage's name without the stage file DVC prefixes for one outside ./dvc.yaml
    (``machine/dvc.yaml:hardware`` -> ``hardware``)."""
    return raw.rsplit(":", 1)[1] if ".yaml:" in raw else raw


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
            current = (stage_name(started.group(1)), t)
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


SUMMARY = re.compile(r"^Per-stage times \(wall clock, (\d+) stages run, (\d+) unchanged, (\d+) restored from the "
                     r"run cache; total ([0-9.]+) s\):$")
ROW = re.compile(r"^  (\S+@\S+|\S+)\s+([0-9.]+) s\s+[0-9.]+ %$")


def record(times: dict[str, float], skipped: int, restored: int, total: float, setup: float | None = None) -> dict:
    """What ``--times-json`` writes."""
    return {"stages": {k: round(v, 2) for k, v in sorted(times.items(), key=lambda kv: -kv[1])},
            "total_s": round(total, 2), "unchanged": skipped, "restored": restored,
            "setup_s": None if setup is None else round(setup, 1)}


def take_setup_seconds(path: str) -> float | None:
    """The seconds ``make setup`` wrote to ``path`` (then removed: only the first run after a setup counts it)."""
    try:
        with open(path, encoding="utf-8") as f:
            value = float(f.read().strip())
    except (OSError, ValueError):
        return None
    try:
        os.remove(path)
    except OSError:
        pass
    return value


def parse_summary(text: str) -> dict:
    """:func:`record` of a run from the summary it printed (the last one in ``text``)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if SUMMARY.match(line)]
    if not starts:
        raise SystemExit("error: no 'Per-stage times' summary in the log. Fix: pass the output of make repro.")
    head = SUMMARY.match(lines[starts[-1]])
    times = {}
    for line in lines[starts[-1] + 1:]:
        row = ROW.match(line)
        if not row:
            break
        times[row.group(1)] = float(row.group(2))
    if len(times) != int(head.group(1)):
        raise SystemExit(f"error: the summary lists {len(times)} stages, its header says {head.group(1)}.")
    return record(times, int(head.group(2)), int(head.group(3)), float(head.group(4)))


def write_times(path: str, rec: dict) -> None:
    if rec["stages"]:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(rec, f, indent=2)
            f.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--times-json", help="also write the per-stage times here (JSON; only if a stage ran)")
    parser.add_argument("--cold", action="store_true",
                        help="every stage in a fresh interpreter (no warm server: textcls.warm)")
    parser.add_argument("--from-log", help="no dvc repro: read the summary a run printed from this log")
    parser.add_argument("--setup-seconds", default=".venv/.setup-seconds",
                        help="file make setup wrote its duration to (read once; default: %(default)s)")
    args, dvc_args = parser.parse_known_args(argv)
    if args.from_log:
        if not args.times_json:
            raise SystemExit("error: --from-log needs --times-json FILE")
        with open(args.from_log, encoding="utf-8") as f:
            rec = parse_summary(f.read())
        rec["setup_s"] = take_setup_seconds(args.setup_seconds)
        write_times(args.times_json, rec)
        return 0
    setup = take_setup_seconds(args.setup_seconds)
    start = time.monotonic()
    events: list[tuple[float, str]] = []
    skipped = restored = 0
    with contextlib.ExitStack() as stack:
        env = None if args.cold else stack.enter_context(warm.Server())
        proc = subprocess.Popen(["dvc", "repro", *dvc_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1, env=env)
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
    if args.times_json and rc == 0:
        write_times(args.times_json, record(times, skipped, restored, end - start, setup))
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
