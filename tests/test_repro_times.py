"""The per-stage timing summary `make repro` prints (scripts/repro.py), on known event streams."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("repro_script", ROOT / "scripts" / "repro.py")
repro = importlib.util.module_from_spec(spec)
spec.loader.exec_module(repro)


def test_each_stage_runs_until_the_next_stage_line():
    """Check that a stage's time ends at the next started, skipped or restored stage, the last one at the end."""
    events = [(0.0, "Running stage 'prepare@a':\n"), (0.5, "some output\n"),
              (2.0, "Stage 'prepare@b' didn't change, skipping\n"),
              (3.0, "Running stage 'train@a-m':\n"),
              (10.0, "Stage 'train@b-m' is cached - skipping run, checking out outputs\n"),
              (11.0, "Running stage 'aggregate':\n")]
    assert repro.stage_times(events, end=15.0) == {"prepare@a": 2.0, "train@a-m": 7.0, "aggregate": 4.0}


def test_a_stage_of_another_stage_file_is_named_without_it():
    """Check that `machine/dvc.yaml:hardware` (the fingerprint's own dvc.yaml) is timed as `hardware`."""
    events = [(0.0, "Running stage 'machine/dvc.yaml:hardware':\n"), (1.5, "Running stage 'prepare@a':\n")]
    assert repro.stage_times(events, end=2.0) == {"hardware": 1.5, "prepare@a": 0.5}


def test_nothing_ran_gives_no_stages():
    assert repro.stage_times([(0.0, "Stage 'x' didn't change, skipping\n")], end=1.0) == {}


def test_summary_lists_slowest_first_with_families_and_overhead():
    """Check the order, the per-family sums and the time outside stages in the printed table."""
    text = repro.summary({"train@a-m": 7.0, "train@b-m": 1.0, "prepare@a": 2.0}, skipped=1, restored=0, total=12.0)
    lines = text.splitlines()
    assert "3 stages run, 1 unchanged, 0 restored" in lines[1] and "total 12.0 s" in lines[1]
    assert [line.split()[0] for line in lines[2:5]] == ["train@a-m", "prepare@a", "train@b-m"]
    assert "58.3 %" in lines[2]
    family = lines[lines.index("By stage family:") + 1].split()
    assert family[:3] == ["train", "8.0", "s"] and "(2 stages)" in lines[lines.index("By stage family:") + 1]
    assert lines[-1].split()[-2:] == ["2.0", "s"]  # 12 s total, 10 s in stages


def test_the_printed_summary_parses_back_to_the_record_it_came_from():
    """Check that --from-log recovers every stage time, the counts and the total from the printed table (the
    last summary of the log), and that a truncated table is refused."""
    times = {"train@a-m": 7.04, "benchmark@a-m": 3.51, "aggregate": 0.4}
    text = "noise\n" + repro.summary({"x@y": 1.0}, 0, 0, 1.0) + "\nmore\n" + repro.summary(times, 3, 2, 12.3) + "\n"
    rec = repro.parse_summary(text)
    assert rec == {"stages": {"train@a-m": 7.0, "benchmark@a-m": 3.5, "aggregate": 0.4}, "total_s": 12.3,
                   "unchanged": 3, "restored": 2, "setup_s": None}
    assert list(rec["stages"]) == ["train@a-m", "benchmark@a-m", "aggregate"]  # slowest first
    cut = "\n".join(line for line in text.splitlines() if not line.startswith("  aggregate"))
    try:
        repro.parse_summary(cut)
    except SystemExit as err:
        assert "lists 2 stages, its header says 3" in str(err)
    else:
        raise AssertionError("a truncated summary was accepted")


def test_times_json_is_written_only_when_a_stage_ran(tmp_path):
    """Check that a no-op run keeps the file of the last run that did work."""
    path = tmp_path / "run_times.json"
    repro.write_times(str(path), repro.record({"train@a-m": 2.0}, 0, 0, 3.0))
    kept = path.read_text()
    repro.write_times(str(path), repro.record({}, 39, 0, 3.9))
    assert path.read_text() == kept and '"train@a-m": 2.0' in kept


def test_setup_seconds_are_taken_once(tmp_path):
    """Check that the setup time make setup left is read by the first run after it, then gone."""
    path = tmp_path / ".setup-seconds"
    path.write_text("44.63\n")
    assert repro.take_setup_seconds(str(path)) == 44.63 and not path.exists()
    assert repro.take_setup_seconds(str(path)) is None
    assert repro.record({"a": 1.0}, 0, 0, 2.0, 44.63)["setup_s"] == 44.6
