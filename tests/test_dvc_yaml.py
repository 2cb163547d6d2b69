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
from sync_dvc_deps import STAGE_FILES, code_deps, import_closure, synced  # noqa: E402


def stage_definitions():
    for file in STAGE_FILES:
        for name, stage in yaml.safe_load((ROOT / file).read_text())["stages"].items():
            yield name, stage.get("do", stage)


def test_the_hardware_fingerprint_has_a_stage_file_of_its_own():
    """Check that the always-run `hardware` stage is in machine/dvc.yaml (it rewrites only that small lock file),
    runs from the project root, and is gone from dvc.yaml, whose benchmarks depend on its output."""
    machine = yaml.safe_load((ROOT / "machine/dvc.yaml").read_text())["stages"]
    assert set(machine) == {"hardware"} and machine["hardware"]["always_changed"] is True
    assert machine["hardware"]["wdir"] == ".." and machine["hardware"]["outs"] == [
        {"metrics/hardware.json": {"cache": False}}]
    assert "hardware" not in DVC_YAML["stages"]
    assert "metrics/hardware.json" in DVC_YAML["stages"]["benchmark"]["deps"]


def covered_by(module: str, deps: set[str]) -> bool:
    return module in deps or any(module.startswith(d + "/") for d in deps)


@pytest.mark.parametrize("name, stage", list(stage_definitions()), ids=[n for n, _ in stage_definitions()])
def test_stage_deps_cover_exactly_the_code_it_imports(name, stage):
    """Check that a stage's deps name its script and cover every textcls module it imports (its file, or the folder
    of its subpackage), and that no src/ dep covers only modules it never imports."""
    script = re.search(r"python (stages/\S+\.py)", stage["cmd"]).group(1)
    deps = set(stage["deps"])
    assert script in deps
    declared = {d for d in deps if d.startswith("src/")}
    assert declared == code_deps(script)
    closure = import_closure(script)
    assert all(covered_by(module, declared) for module in closure)
    assert all(any(covered_by(module, {dep}) for module in closure) for dep in declared)
    assert all((ROOT / dep).exists() for dep in declared)


def test_code_deps_are_subpackage_folders_and_top_level_modules(tmp_path):
    """Check on a toy package: a stage importing one module of a subpackage depends on the subpackage's folder,
    on a top-level module as that file, and on nothing it does not import."""
    pkg = tmp_path / "src/textcls"
    for rel, text in {"io.py": "", "unused.py": "", "kinds/__init__.py": "from textcls.kinds import a\n",
                      "kinds/a.py": "from textcls.io import write\n", "kinds/b.py": "",
                      "report/__init__.py": "", "report/x.py": ""}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages/s.py").write_text("from textcls import kinds\n")
    assert code_deps("stages/s.py", tmp_path) == {"src/textcls/kinds", "src/textcls/io.py"}
    assert import_closure("stages/s.py", tmp_path) == {"src/textcls/kinds/__init__.py", "src/textcls/kinds/a.py",
                                                       "src/textcls/io.py"}


def test_training_does_not_depend_on_the_benchmark_package():
    """Check that the stages that train or tokenize never list src/textcls/bench: a change to the benchmark method
    must rerun the benchmarks, not the training (the thread setting they share lives in textcls/threads.py)."""
    for script in ("stages/train.py", "stages/distill.py", "stages/tokenize_data.py", "stages/teacher_logits.py",
                   "stages/evaluate.py"):
        assert not {d for d in code_deps(script) if d == "src/textcls/bench" or d.startswith("src/textcls/bench/")}, script


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
