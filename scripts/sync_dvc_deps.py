"""Keep each stage's code deps (dvc.yaml, machine/dvc.yaml) equal to what its script imports.

A stage's ``src/`` deps are the code its script may run: the ``textcls`` modules it imports, directly or through
other modules, lazily or not (plus the ``__init__.py`` of every package on the way), each subpackage among them as
one folder dep (:func:`code_deps`). This script computes that import closure from the source (``ast``, nothing is
imported) and rewrites the ``- src/...`` lines of every stage in dvc.yaml, keeping everything else (comments,
order, other deps) as it is.

    python scripts/sync_dvc_deps.py          # rewrite dvc.yaml
    python scripts/sync_dvc_deps.py --check  # exit 1 (and name the stages) if dvc.yaml is out of date
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE_FILES = ("dvc.yaml", "machine/dvc.yaml")  # the pipeline's stage files (machine/: the hardware fingerprint)


def module_files(module: str, root: Path = ROOT) -> set[str]:
    """Repo-relative files that importing ``module`` runs: its file (or package ``__init__.py``) and the
    ``__init__.py`` of every package above it (``textcls`` itself is a namespace package)."""
    parts, found = module.split("."), set()
    for i in range(2, len(parts)):
        package = "src/" + "/".join(parts[:i])
        if (root / package / "__init__.py").is_file():
            found.add(f"{package}/__init__.py")
    rel = "src/" + module.replace(".", "/")
    if (root / rel).is_dir():
        found.add(f"{rel}/__init__.py")
    elif (root / f"{rel}.py").is_file():
        found.add(f"{rel}.py")
    return found


def textcls_imports(path: Path, root: Path = ROOT) -> set[str]:
    """Repo-relative paths of the ``textcls`` modules (and packages) a file imports, lazily or not."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "textcls":
            if node.module != "textcls":
                found |= module_files(node.module, root)
            for alias in node.names:  # `from textcls.serving import backends`, `from textcls.io import x`
                found |= module_files(f"{node.module}.{alias.name}", root)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("textcls."):
                    found |= module_files(alias.name, root)
    return found


def import_closure(script: str, root: Path = ROOT) -> set[str]:
    """Every ``src/`` file that running ``script`` (repo-relative) may import."""
    seen, todo = set(), [script]
    while todo:
        for module in textcls_imports(root / todo.pop(), root):
            if module not in seen:
                seen.add(module)
                todo.append(module)
    return seen


def code_deps(script: str, root: Path = ROOT) -> set[str]:
    """The ``src/`` deps of the stage running ``script``: every subpackage its import closure touches, as one
    folder dep each (``src/textcls/training``), and each top-level module it imports (``src/textcls/io.py``).

    Folders, not one dep per module: DVC rewrites all of dvc.lock (a round-trip YAML parse and dump) after every
    stage it runs, and with one entry per module (about 40 per stage, 2,000 in all) that took about 2 s per
    stage, 90 s of a default run. The price: an edit to any module of a subpackage reruns every stage importing
    another module of it (`eval/run.py` retrains the models, which import `eval/statistics.py`). Each stage still
    depends on nothing it cannot run: `bench/` edits never rerun training (tests/test_dvc_yaml.py)."""
    deps = set()
    for path in import_closure(script, root):
        parts = path.split("/")  # src/textcls/<module>.py or src/textcls/<subpackage>/...
        deps.add("/".join(parts[:3]) if len(parts) > 3 else path)
    return deps


_SCRIPT = re.compile(r"python (stages/\S+\.py)")
_SRC_DEP = re.compile(r"^(\s*)- src/\S+\s*$")


def synced(text: str, root: Path = ROOT) -> tuple[str, list[str]]:
    """dvc.yaml text with every stage's ``- src/`` deps replaced by its script's import closure (sorted,
    where the first old one stood), and the names of the scripts whose deps changed."""
    lines, out, changed, script = text.splitlines(keepends=True), [], [], None
    i = 0
    while i < len(lines):
        match = _SCRIPT.search(lines[i])
        if match:
            script = match.group(1)
        dep = _SRC_DEP.match(lines[i])
        if dep and script:
            old = []
            while i < len(lines) and _SRC_DEP.match(lines[i]):
                old.append(lines[i].strip()[2:])
                i += 1
            new = sorted(code_deps(script, root))
            if old != new:
                changed.append(script)
            out += [f"{dep.group(1)}- {path}\n" for path in new]
            continue
        out.append(lines[i])
        i += 1
    return "".join(out), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if dvc.yaml is out of date")
    args = parser.parse_args(argv)
    stale = 0
    for name in STAGE_FILES:
        path = ROOT / name
        text, changed = synced(path.read_text())
        if args.check:
            if changed:
                print(f"{name} deps are out of date for {sorted(set(changed))}. "
                      "Fix: run python scripts/sync_dvc_deps.py", file=sys.stderr)
                stale += 1
            continue
        if changed:
            path.write_text(text)
        print(f"{name}: updated deps of {len(changed)} stage(s)" if changed else f"{name} deps up to date")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
