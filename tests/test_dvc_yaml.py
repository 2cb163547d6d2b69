"""Static checks of dvc.yaml: exact caching needs every stage to declare exactly the code it runs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())


def module_files(module: str) -> set[str]:
    """Repo-relative files that importing ``module`` runs: its file (or package ``__init__.py``) and the
    ``__init__.py`` of every package above it (``textcls`` itself is a namespace package)."""
    parts, found = module.split("."), set()
    for i in range(2, len(parts)):
        package = "src/" + "/".join(parts[:i])
        if (ROOT / package / "__init__.py").is_file():
            found.add(f"{package}/__init__.py")
    rel = "src/" + module.replace(".", "/")
    if (ROOT / rel).is_dir():
        found.add(f"{rel}/__init__.py")
    elif (ROOT / f"{rel}.py").is_file():
        found.add(f"{rel}.py")
    return found


def textcls_imports(path: Path) -> set[str]:
    """Repo-relative paths of the ``textcls`` modules (and packages) a file imports, lazily or not."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "textcls":
            if node.module != "textcls":
                found |= module_files(node.module)
            for alias in node.names:  # `from textcls import train`, `from textcls.kinds import base`
                found |= module_files(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("textcls."):
                    found |= module_files(alias.name)
    return found


def import_closure(script: str) -> set[str]:
    seen, todo = set(), [script]
    while todo:
        for module in textcls_imports(ROOT / todo.pop()):
            if module not in seen:
                seen.add(module)
                todo.append(module)
    return seen


def stage_definitions():
    for name, stage in DVC_YAML["stages"].items():
        yield name, stage.get("do", stage)


@pytest.mark.parametrize("name, stage", list(stage_definitions()), ids=[n for n, _ in stage_definitions()])
def test_stage_deps_list_exactly_the_code_it_imports(name, stage):
    """Check that a stage's deps name its script and every textcls module it imports, and no other module."""
    script = re.search(r"python (stages/\S+\.py)", stage["cmd"]).group(1)
    deps = set(stage["deps"])
    assert script in deps
    declared = {d for d in deps if d.startswith("src/")}
    assert declared == import_closure(script)


def test_stage_scripts_do_not_shadow_the_standard_library():
    """Check that no stage script is named like a stdlib module (stages/ is first on sys.path)."""
    import sys

    for script in (ROOT / "stages").glob("*.py"):
        assert script.stem not in sys.stdlib_module_names, script


def test_per_model_stages_track_only_their_models_params():
    """Check that tokenize/train read one model's entry (not all `models`), so edits stay local."""
    stages = DVC_YAML["stages"]
    assert "models.${item.model}" in stages["train"]["params"]
    assert "models" not in stages["train"]["params"]
    tokenize_params = set(stages["tokenize"]["params"])
    assert "models.${item.model}" not in tokenize_params  # an lr change must not retokenize
    assert {"models.${item.model}.source", "models.${item.model}.tokenizer"} <= tokenize_params


def test_metrics_outputs_are_kept_in_git():
    """Check that metrics and plots are `cache: false` (in git, so `dvc metrics diff` works across commits)."""
    for name, stage in stage_definitions():
        for key in ("metrics", "plots"):
            for entry in stage.get(key, []):
                (path, opts), = entry.items()
                assert opts.get("cache") is False, f"{name}: {path}"
    assert "metrics/leaderboard.json" in DVC_YAML["metrics"]
