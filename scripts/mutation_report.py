"""Mutation score per module from mutmut's results in mutants/ (what `make mutation` prints at the end).

mutmut 3 keeps one verdict per mutant in mutants/<source path>.meta (JSON, "exit_code_by_key"); its own
summary is one line for the whole run. This reads those files and prints, per module, killed / total
and the score in percent, and with --survivors the names of the mutants that survived (inspect one with
`.venv/bin/mutmut show NAME`).

A timeout counts as killed (the tests noticed: the mutant never finished), as mutmut's own badge does.
"no tests" are mutants whose function no selected test calls in-process (e.g. code that only runs in a
subprocess); they count in the total, so they lower the score.

    python scripts/mutation_report.py [--survivors] [--times FILE] [MODULE.py ...]

Without modules: every module that has results under mutants/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MUTANTS = Path("mutants")

# mutmut's exit code -> verdict (mutmut.stats.status_by_exit_code, the codes it writes for a run).
KILLED_CODES = {1, 3}
TIMEOUT_CODES = {36, -24, 24, 152, 255}
SURVIVED_CODES = {0}
NO_TESTS_CODES = {5, 33}
SKIPPED_CODES = {34}


def module_results(module: str, mutants_dir: Path = MUTANTS) -> dict | None:
    """Counts of one source file's mutants by verdict, or None when it has no results."""
    meta = mutants_dir / f"{module}.meta"
    if not meta.is_file():
        return None
    codes = json.loads(meta.read_text(encoding="utf-8")).get("exit_code_by_key", {})
    counts = {"killed": 0, "timeout": 0, "survived": 0, "no_tests": 0, "skipped": 0, "not_checked": 0, "other": 0}
    survivors = []
    for name, code in codes.items():
        if code is None:
            counts["not_checked"] += 1
        elif code in KILLED_CODES:
            counts["killed"] += 1
        elif code in TIMEOUT_CODES:
            counts["timeout"] += 1
        elif code in SURVIVED_CODES:
            counts["survived"] += 1
            survivors.append(name)
        elif code in NO_TESTS_CODES:
            counts["no_tests"] += 1
        elif code in SKIPPED_CODES:
            counts["skipped"] += 1
        else:  # suspicious, segfault, interrupted
            counts["other"] += 1
    counts["total"] = len(codes)
    counts["detected"] = counts["killed"] + counts["timeout"]
    counts["score"] = 100.0 * counts["detected"] / counts["total"] if counts["total"] else float("nan")
    counts["survivors"] = sorted(survivors, key=_natural)
    return counts


def _natural(name: str):
    head, _, number = name.rpartition("__mutmut_")
    return (head, int(number) if number.isdigit() else 0)


def all_modules(mutants_dir: Path = MUTANTS) -> list[str]:
    """Every source file with a .meta under mutants_dir, as its path relative to the repository root."""
    return sorted(str(p.relative_to(mutants_dir))[: -len(".meta")] for p in mutants_dir.rglob("*.py.meta"))


def render(modules: list[str], times: dict[str, float] | None = None, survivors: bool = False,
           mutants_dir: Path = MUTANTS) -> str:
    """The per-module table (and survivor names), as text."""
    times = times or {}
    header = f"{'module':<40} {'killed/total':>13} {'score':>7} {'survived':>8} {'timeout':>7} {'no tests':>8}"
    if times:
        header += f" {'wall s':>7}"
    lines = ["Mutation score per module (killed = killed + timeout):", header, "-" * len(header)]
    results = {}
    for module in modules:
        r = module_results(module, mutants_dir)
        results[module] = r
        if r is None:
            lines.append(f"{module:<40} {'no results':>13}")
            continue
        line = (f"{module:<40} {r['detected']:>6}/{r['total']:<6} {r['score']:>6.1f}% {r['survived']:>8} "
                f"{r['timeout']:>7} {r['no_tests']:>8}")
        if times:
            line += f" {times.get(module, float('nan')):>7.0f}"
        extra = {k: r[k] for k in ("skipped", "not_checked", "other") if r[k]}
        if extra:
            line += "  (" + ", ".join(f"{k}: {v}" for k, v in extra.items()) + ")"
        lines.append(line)
    done = [r for r in results.values() if r]
    if len(done) > 1:
        detected, total = sum(r["detected"] for r in done), sum(r["total"] for r in done)
        lines.append("-" * len(header))
        lines.append(f"{'all':<40} {detected:>6}/{total:<6} {100.0 * detected / total if total else 0:>6.1f}%")
    if survivors:
        for module, r in results.items():
            if r and r["survivors"]:
                lines.append("")
                lines.append(f"survived in {module} ({len(r['survivors'])}):")
                lines.extend(f"  {name}" for name in r["survivors"])
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help="source files, e.g. src/textcls/eval/statistics.py")
    parser.add_argument("--survivors", action="store_true", help="also list the surviving mutants")
    parser.add_argument("--times", type=Path, help="JSON {module: wall seconds} written by scripts/mutation.py")
    parser.add_argument("--mutants-dir", type=Path, default=MUTANTS)
    args = parser.parse_args(argv)
    modules = args.modules or all_modules(args.mutants_dir)
    if not modules:
        print(f"no mutation results under {args.mutants_dir}/: run `make mutation` first", file=sys.stderr)
        return 1
    times = json.loads(args.times.read_text(encoding="utf-8")) if args.times and args.times.is_file() else None
    print(render(modules, times, args.survivors, args.mutants_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
