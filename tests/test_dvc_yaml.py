"""Static checks of dvc.yaml: exact caching needs every stage to declare exactly the code it runs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
sys.path.insert(0, str(ROOT / "scripts"))
from sync_dvc_deps import code_deps, import_closure, package_deps, synced  # noqa: E402


def stage_definitions():
    for name, stage in DVC_YAML["stages"].items():
        yield name, stage.get("do", stage)


@pytest.mark.parametrize("name, stage", list(stage_definitions()), ids=[n for n, _ in stage_definitions()])
def test_stage_deps_list_exactly_the_code_it_imports(name, stage):
    """Check that a stage's deps name its script and cover every textcls module it imports (a file, or the
    sub-package folder holding it), and name no package or module it does not import."""
    script = re.search(r"python (stages/\S+\.py)", stage["cmd"]).group(1)
    deps = set(stage["deps"])
    assert script in deps
    declared = {d for d in deps if d.startswith("src/")}
    assert declared == code_deps(script)
    imported = import_closure(script)
    for module in imported:
        assert module in declared or any(module.startswith(d + "/") for d in declared), module
    for dep in declared:
        assert dep in imported or any(m.startswith(dep + "/") for m in imported), dep


def test_package_deps_keep_top_level_modules_as_files():
    """Check the mapping: a module of a sub-package -> the package folder; a top-level module stays a file."""
    assert package_deps({"src/textcls/bench/latency.py", "src/textcls/bench/__init__.py", "src/textcls/io.py",
                         "src/textcls/report/leaderboard.py"}) == {"src/textcls/bench", "src/textcls/io.py",
                                                                   "src/textcls/report"}


def test_training_does_not_depend_on_the_benchmark_package():
    """Check that the stages that train or tokenize never list src/textcls/bench: a change to the benchmark method
    must rerun the benchmarks, not the training (the thread setting they share lives in textcls/threads.py)."""
    for script in ("stages/train.py", "stages/distill.py", "stages/tokenize_data.py", "stages/teacher_logits.py",
                   "stages/evaluate.py"):
        assert "src/textcls/bench" not in code_deps(script), script


def test_sync_script_rewrites_stale_deps(tmp_path):
    """Check that the sync script replaces a stage's stale src/ deps by its script's closure, keeps the rest."""
    stale = (ROOT / "dvc.yaml").read_text().replace("        - src/textcls/errors.py\n", "", 1)
    stale = stale.replace("- src/textcls/cli.py\n", "- src/textcls/cli.py\n        - src/textcls/nothing.py\n", 1)
    fixed, changed = synced(stale)
    assert changed and fixed == (ROOT / "dvc.yaml").read_text()
    assert synced(fixed)[1] == []


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
