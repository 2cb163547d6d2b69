"""Mutation testing with mutmut, one module at a time, then the score per module (`make mutation`).

    python scripts/mutation.py [MODULE.py ...] [--tests TEST.py ...] [--keep] [--max-children N]

MODULE.py: source files to mutate (default: `only_mutate` of [tool.mutmut] in pyproject.toml; listed
files that do not exist yet are skipped). Each module gets its own mutmut run (a fresh process) over
the relevant fast tests only: the test files under tests/ that import that module (or, if none does,
those that import a module that imports it), less those in ``mutation_skip_tests`` of [tool.mutmut]
(files whose slow module fixture would run again for every mutant; other tests cover the same code
with known answers), or the files ``mutation_tests`` of [tool.mutmut] names for the module, or the
--tests given; pytest runs them with the
arguments of `pytest_add_cli_args` ("-m 'not slow'"), and mutmut then runs, for each mutant, only the
tests that called the mutated function. Every run starts from an empty mutants/ (results never come
from an older run of other tests), unless --keep. At the end: killed / total per module
(scripts/mutation_report.py) and each module's wall time.

mutmut reads its settings only from pyproject.toml; the module list and the test files of a run are
set here by replacing those two fields of mutmut's loaded configuration (mutmut is pinned in
requirements-dev.txt, so this private hook does not move).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import mutation_report  # noqa: E402

TESTS = Path("tests")
TIMES = Path("mutants") / "mutation-times.json"


def _settings() -> dict:
    """[tool.mutmut] of pyproject.toml."""
    config = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))
    return config.get("tool", {}).get("mutmut", {})


def default_modules() -> list[str]:
    """[tool.mutmut] only_mutate of pyproject.toml."""
    return list(_settings().get("only_mutate", []))


def module_tests() -> dict[str, list[str]]:
    """[tool.mutmut] mutation_tests: {module: test files} for modules whose default files would re-run a slow
    module fixture per mutant (mutmut itself ignores the key)."""
    return {str(Path(m)): list(t) for m, t in _settings().get("mutation_tests", {}).items()}


def skipped_tests() -> set[str]:
    """[tool.mutmut] mutation_skip_tests: test files never run per mutant (mutmut itself ignores the key)."""
    return {str(Path(t)) for t in _settings().get("mutation_skip_tests", [])}


def module_name(path: str) -> str:
    """src/textcls/eval/statistics.py -> textcls.eval.statistics"""
    parts = Path(path).with_suffix("").parts
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Dotted names a Python file imports (`from a.b import c` counts as both a.b and a.b.c)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def relevant_tests(module: str, tests_dir: Path = TESTS, src_dir: Path = Path("src"),
                   skip: set[str] = frozenset()) -> list[str]:
    """Test files that import `module` (a dotted name); if none, those importing a module that imports it.
    Files in `skip` (paths as `tests/test_x.py`) are left out."""
    test_files = [f for f in sorted(tests_dir.glob("test_*.py")) if str(f) not in skip]
    direct = [str(f) for f in test_files if module in imported_modules(f)]
    if direct:
        return direct
    importers = {module_name(str(p)) for p in src_dir.rglob("*.py") if module in imported_modules(p)}
    return [str(f) for f in test_files if imported_modules(f) & importers]


def run_one(module: str, tests: list[str], max_children: int | None) -> int:
    """Worker: one mutmut run over `module` with `tests` (called in a fresh process by main)."""
    import dataclasses

    import mutmut.__main__ as mutmut_main
    import mutmut.configuration as mutmut_config

    mutmut_config._config = dataclasses.replace(mutmut_config._load_config(), only_mutate=[module],
                                                pytest_add_cli_args_test_selection=list(tests))
    args = ["run"] + (["--max-children", str(max_children)] if max_children else [])
    try:
        mutmut_main.cli(args, standalone_mode=False)
    except SystemExit as stop:  # mutmut exits on a failed clean run / stats collection
        return stop.code if isinstance(stop.code, int) else 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help="source files to mutate (default: pyproject's only_mutate)")
    parser.add_argument("--tests", nargs="+", help="test files to run (default: those importing the module)")
    parser.add_argument("--keep", action="store_true", help="keep mutants/ and its cached results")
    parser.add_argument("--max-children", type=int, help="parallel mutant runs (default: number of CPUs)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    if args.worker:
        return run_one(args.worker, args.tests or [], args.max_children)

    listed = args.modules or default_modules()
    modules = [m for m in listed if Path(m).is_file()]
    for m in sorted(set(listed) - set(modules)):
        print(f"mutation: skipping {m} (no such file)")
    if not modules:
        print("mutation: no module to mutate", file=sys.stderr)
        return 2
    if not args.keep:
        shutil.rmtree("mutants", ignore_errors=True)
    Path("mutants").mkdir(exist_ok=True)
    times, failed = {}, []
    skip, chosen = skipped_tests(), module_tests()
    for module in modules:
        tests = args.tests or chosen.get(str(Path(module))) or relevant_tests(module_name(module), skip=skip)
        print(f"\n=== mutation: {module} with {' '.join(tests) or '(no test file imports it)'}", flush=True)
        if not tests:
            failed.append(module)
            continue
        # an earlier module's run left a plain copy of this one, newer than the source: mutmut would take it
        # for its mutated file and find nothing to test (its cached verdicts, in the .meta, stay)
        (Path("mutants") / module).unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--worker", module, "--tests", *tests]
        if args.max_children:
            cmd += ["--max-children", str(args.max_children)]
        start = time.monotonic()
        rc = subprocess.call(cmd)
        times[module] = round(time.monotonic() - start, 1)
        print(f"=== mutation: {module} done in {times[module]:.0f} s (mutmut exit code {rc})", flush=True)
        if rc != 0:
            failed.append(module)
    TIMES.write_text(json.dumps(times, indent=2) + "\n", encoding="utf-8")
    print()
    print(mutation_report.render(modules, times))
    print("\nSurvivors: python scripts/mutation_report.py --survivors; one mutant: .venv/bin/mutmut show NAME")
    if failed:
        print(f"mutation: no result for {', '.join(failed)} (no tests, or their clean run failed: see above)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
