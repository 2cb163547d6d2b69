"""The pull-request report: Markdown assembly (exact, on fixed inputs), the CLI in a temporary git+DVC
repo, the `make report` target and the GitHub Actions workflow that posts the report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from textcls.report import pr as report

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "pr_report.py"
WORKFLOW = ROOT / ".github" / "workflows" / "pr-report.yml"

PARAMS_MD = """| Path        | Param    | main   | workspace   |
|-------------|----------|--------|-------------|
| params.yaml | train.lr | 0.1    | 0.15        |
"""
METRICS_MD = """| Path                     | Metric                  | main   | workspace   | Change   |
|--------------------------|-------------------------|--------|-------------|----------|
| metrics/leaderboard.json | ag_news.minilm.accuracy | 0.8954 | 0.9012      | 0.0058   |
"""
# What `dvc metrics diff --md` / `dvc params diff --md` print when nothing changed (DVC 3.67).
EMPTY_METRICS_MD = """| Path   | Metric   | main   | workspace   | Change   |
|--------|----------|--------|-------------|----------|
"""
EMPTY_PARAMS_MD = """| Path   | Param   | main   | workspace   |
|--------|---------|--------|-------------|
"""
LEADERBOARD_MD = "# Leaderboard\n\n## ag_news\n\n| model | accuracy |\n|:--|--:|\n| minilm | 0.9012 |\n"
RECOMMENDATION_MD = "# Recommendation\n\n## ag_news\n\nDeploy **minilm** (onnx_int8).\n"

EXPECTED = """\
# textcls-bench report: changes vs `main`

Params and metrics of this working tree compared with `main` (`dvc params diff main`, `dvc metrics diff main`).

## Params changed

| Path        | Param    | main   | workspace   |
|-------------|----------|--------|-------------|
| params.yaml | train.lr | 0.1    | 0.15        |

## Metrics changed

| Path                     | Metric                  | main   | workspace   | Change   |
|--------------------------|-------------------------|--------|-------------|----------|
| metrics/leaderboard.json | ag_news.minilm.accuracy | 0.8954 | 0.9012      | 0.0058   |

## Leaderboard

### ag_news

| model | accuracy |
|:--|--:|
| minilm | 0.9012 |

## Recommendation

### ag_news

Deploy **minilm** (onnx_int8).

## Plots changed

- `plots/pareto.png`
- `plots/train/ag_news/minilm/loss.tsv`

![plots/pareto.png](plots/pareto.png)

Compare them side by side with `dvc plots diff main`.
"""


def build(**overrides) -> str:
    """The report for the fixed inputs above, with some of them replaced."""
    inputs = dict(base_rev="main", params_diff_md=PARAMS_MD, metrics_diff_md=METRICS_MD,
                  leaderboard_md=LEADERBOARD_MD, recommendation_md=RECOMMENDATION_MD,
                  changed_plots=["plots/train/ag_news/minilm/loss.tsv", "plots/pareto.png"], stale_stages=[])
    inputs.update(overrides)
    return report.build_report(**inputs)


def headings(markdown: str) -> list[str]:
    """The heading lines, in order."""
    return [line for line in markdown.splitlines() if line.startswith("#")]


# --- build_report on fixed inputs -------------------------------------------------------------

def test_report_is_exactly_the_expected_markdown():
    """Check that the report for fixed inputs is exactly the expected Markdown (sections, order, links)."""
    assert build() == EXPECTED


def test_report_is_deterministic_whatever_the_input_order():
    """Check that shuffled plot and stage lists give the same report (sorted output)."""
    plots = ["plots/b.png", "plots/a.csv", "plots/c/x.png"]
    stages = ["train@b", "aggregate", "train@a"]
    first = build(changed_plots=plots, stale_stages=stages)
    assert first == build(changed_plots=plots[::-1], stale_stages=stages[::-1])
    assert first.index("`plots/a.csv`") < first.index("`plots/b.png`") < first.index("`plots/c/x.png`")
    assert "Stale: `aggregate`, `train@a`, `train@b`." in first


@pytest.mark.parametrize("metrics_md, says_none", [
    (EMPTY_METRICS_MD, True),
    ("", True),
    (METRICS_MD, False),
])
def test_metrics_section_says_plainly_when_nothing_changed(metrics_md, says_none):
    """Check that an empty `dvc metrics diff` table becomes "No metric changed." and a real one is kept."""
    text = build(metrics_diff_md=metrics_md)
    section = text.split("## Metrics changed\n\n")[1].split("\n\n## ")[0]
    assert (section == "No metric changed.") is says_none
    assert ("| metrics/leaderboard.json | ag_news.minilm.accuracy |" in section) is not says_none


def test_params_section_says_plainly_when_nothing_changed():
    """Check that an empty `dvc params diff` table becomes "No param changed."."""
    assert "## Params changed\n\nNo param changed.\n\n## Metrics changed" in build(params_diff_md=EMPTY_PARAMS_MD)


@pytest.mark.parametrize("recommendation, expected_headings", [
    (RECOMMENDATION_MD, ["## Leaderboard", "### ag_news", "## Recommendation", "### ag_news", "## Plots changed"]),
    (None, ["## Leaderboard", "### ag_news", "## Plots changed"]),
    ("Deploy **tfidf**.", ["## Leaderboard", "### ag_news", "## Recommendation", "## Plots changed"]),
])
def test_recommendation_section_only_when_the_file_exists(recommendation, expected_headings):
    """Check that the recommendation is nested under the leaderboard when given, and left out when missing."""
    text = build(recommendation_md=recommendation)
    assert headings(text)[-len(expected_headings):] == expected_headings
    assert ("Recommendation" in text) is (recommendation is not None)


def test_leaderboard_heading_is_demoted_so_it_nests():
    """Check that "# Leaderboard" becomes a level-2 section and its per-dataset headings level 3."""
    text = build()
    assert headings(text)[0] == "# textcls-bench report: changes vs `main`"
    assert headings(text).count("# Leaderboard") == 0
    assert "## Leaderboard\n\n### ag_news" in text


def test_missing_leaderboard_says_how_to_make_it():
    """Check that a missing metrics/leaderboard.md gives a section telling to run `make repro`."""
    assert "## Leaderboard\n\n`metrics/leaderboard.md` is missing: run `make repro`" in build(leaderboard_md=None)


@pytest.mark.parametrize("markdown, expected", [
    ("# A\n## B\ntext # not a heading", "## A\n### B\ntext # not a heading"),
    ("###### deepest", "###### deepest"),
    ("```\n# inside a fence\n```\n# after", "```\n# inside a fence\n```\n## after"),
    ("#hashtag", "#hashtag"),
])
def test_demote_headings(markdown, expected):
    """Check that headings go one level deeper, capped at 6, and code fences and non-headings are untouched."""
    assert report.demote_headings(markdown) == expected


def test_plots_are_listed_sorted_with_image_links_for_pngs_only():
    """Check that changed plots are listed sorted, PNGs shown as relative image links, deleted ones not linked."""
    text = build(changed_plots=["plots/pareto.png", "plots/confusion/ag_news/minilm.csv", "plots/old.png"],
                 deleted_plots=["plots/old.png"])
    section = text.split("## Plots changed\n\n")[1]
    assert section.splitlines()[:3] == ["- `plots/confusion/ag_news/minilm.csv`", "- `plots/old.png` (deleted)",
                                        "- `plots/pareto.png`"]
    assert re.findall(r"!\[[^\]]*\]\(([^)]*)\)", section) == ["plots/pareto.png"]


@pytest.mark.parametrize("plots, expected", [
    ([], "## Plots changed\n\nNo plot changed."),
    ([f"plots/train/m/{i:02d}.tsv" for i in range(20)], "<details><summary>20 changed plot files</summary>"),
])
def test_plots_section_when_none_or_many(plots, expected):
    """Check that no changed plot says so, and a long list is collapsed into a <details> block."""
    assert expected in build(changed_plots=plots)


@pytest.mark.parametrize("stages, warned", [([], False), (["train@ag_news-minilm", "aggregate"], True)])
def test_stale_pipeline_warning(stages, warned):
    """Check that a warning block lists stale stages (sorted) when the pipeline is not up to date, and only then."""
    text = build(stale_stages=stages)
    assert ("> [!WARNING]" in text) is warned
    assert ("Stale: `aggregate`, `train@ag_news-minilm`." in text) is warned
    if warned:
        assert text.index("> [!WARNING]") < text.index("## Params changed")


@pytest.mark.parametrize("status, expected", [
    ({}, []),
    ({"machine/dvc.yaml:hardware": ["always changed"]}, []),
    ({"machine/dvc.yaml:hardware": ["always changed"], "train@a": [{"changed deps": {"params.yaml": "modified"}}],
      "aggregate": [{"changed outs": {"metrics/leaderboard.json": "modified"}}]}, ["aggregate", "train@a"]),
])
def test_stale_stages_ignore_always_changed_hardware(status, expected):
    """Check that `dvc status --json` gives the sorted stale stages, without the always-changed `hardware`."""
    assert report.stale_stages(status) == expected


def test_hardware_note_and_dvc_warnings():
    """Check that another machine's measurements and DVC's load warnings are both called out."""
    text = build(hardware_changed=True, dvc_warnings=["WARNING: failed to load metrics in revision 'main'"])
    assert "`metrics/hardware.json` differs from `main`" in text
    assert "> [!CAUTION]" in text and "> - WARNING: failed to load metrics in revision 'main'" in text
    assert "> [!CAUTION]" not in build()


def test_huge_metrics_diff_is_cut_to_fit_a_github_comment():
    """Check that a metrics diff too big for one GitHub comment is cut, saying how many rows were left out."""
    header = EMPTY_METRICS_MD.strip()
    rows = [f"| metrics/benchmark/ag_news/minilm.json | cpu.variants.v{i}.latency_ms.p50 | 1.0 | 2.0 | 1.0 |"
            for i in range(2000)]
    text = build(metrics_diff_md="\n".join([header, *rows]))
    assert len(text) <= report.MAX_CHARS
    left_out = int(re.search(r"\.\.\. and (\d+) more rows", text).group(1))
    assert 0 < left_out < 2000 and text.count("cpu.variants.v") == 2000 - left_out
    assert "run `dvc metrics diff main --md --precision 4` for all of them." in text


def test_fit_table_never_turns_a_change_into_no_change():
    """Check that a table cut to nothing still says rows were left out, never "No metric changed"."""
    section = report.diff_section("Metrics changed", METRICS_MD, "No metric changed.", budget=0,
                                  full_command="dvc metrics diff main")
    assert "No metric changed." not in section and "... and 1 more rows" in section


# --- make report and the workflow -------------------------------------------------------------

def test_makefile_report_target():
    """Check that `make report` runs the script against $(BASE) (default main) into report.md."""
    makefile = (ROOT / "Makefile").read_text()
    assert "BASE ?= main" in makefile
    assert re.search(r"^\.PHONY:.*\breport\b", makefile, re.M)
    assert "report: setup\n\tpython scripts/pr_report.py --base $(BASE) --out report.md" in makefile


def test_workflow_runs_the_default_profile_and_posts_the_report():
    """Check that the PR workflow parses, runs on pull requests with full history, and posts `make report` with CML."""
    flow = yaml.safe_load(WORKFLOW.read_text())
    assert "pull_request" in flow[True]  # YAML 1.1 reads the key `on` as True
    steps = flow["jobs"]["report"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    uses = {step.get("uses", "").split("@")[0]: step for step in steps if "uses" in step}
    assert "make repro" in runs and 'make report BASE="$BASE_REF"' in runs
    assert flow["jobs"]["report"]["env"]["BASE_REF"] == "origin/${{ github.base_ref }}"
    assert 'cml comment update' in runs and '--watermark-title="textcls-bench report" report.md' in runs
    assert "iterative/setup-cml" in uses
    checkouts = [s for s in steps if s.get("uses", "").startswith("actions/checkout")]
    assert checkouts[0]["with"]["fetch-depth"] == 0
    assert checkouts[1]["with"] == {**checkouts[1]["with"], "repository": "${{ vars.TEXTCLS_MIRROR_REPO }}",
                                    "path": "shared/datasets"}
    assert "dvc.lock" in uses["actions/cache"]["with"]["key"] and uses["actions/cache"]["with"]["path"].endswith(
        ".dvc/cache")
    assert uses["actions/setup-python"]["with"]["python-version"] == "3.11"
    poster = next(s for s in steps if "cml comment update" in s.get("run", ""))
    assert poster["env"]["REPO_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"


# --- the CLI in a temporary git + DVC repository -----------------------------------------------

SCORE_PY = """import json, yaml
target = yaml.safe_load(open("params.yaml"))["model"]["target"]
json.dump({"accuracy": target, "loss": 0.25}, open("metrics/score.json", "w"))
"""
DVC_YAML = """stages:
  score:
    cmd: python score.py
    deps: [score.py]
    params: [model.target]
    metrics:
      - metrics/score.json:
          cache: false
  hardware:
    cmd: python -c "open('hw.txt', 'w').write('same machine')"
    always_changed: true
    outs:
      - hw.txt:
          cache: false
"""


def env() -> dict:
    """PYTHONPATH finds textcls, PATH finds this Python's dvc; no analytics."""
    return {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(ROOT / "src"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def sh(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a setup command in ``cwd``; it must succeed."""
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


def pr_report(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run scripts/pr_report.py in ``cwd`` as a user would (exit status not checked)."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env(), capture_output=True, text=True)


@pytest.fixture(scope="module")
def pr_repo(tmp_path_factory) -> Path:
    """A git+DVC repo whose branch main has accuracy 0.8125 and whose working tree has 0.875 and changed plots."""
    repo = tmp_path_factory.mktemp("pr") / "project"
    (repo / "metrics").mkdir(parents=True)
    (repo / "plots").mkdir()
    (repo / "score.py").write_text(SCORE_PY)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text("model:\n  target: 0.8125\n")
    (repo / "plots" / "pareto.png").write_bytes(b"\x89PNG\r\n\x1a\nbase")
    (repo / "plots" / "curve.csv").write_text("step,loss\n0,1.0\n")
    sh(["git", "init", "-q"], repo)
    sh(["git", "symbolic-ref", "HEAD", "refs/heads/main"], repo)
    sh(["dvc", "init", "-q"], repo)
    sh(["dvc", "repro", "-q"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"], repo)
    (repo / "params.yaml").write_text("model:\n  target: 0.875\n")
    sh(["dvc", "repro", "-q"], repo)
    (repo / "plots" / "pareto.png").write_bytes(b"\x89PNG\r\n\x1a\nnew")
    (repo / "plots" / "confusion.csv").write_text("a,b\n1,2\n")  # untracked: still a changed plot
    return repo


@pytest.mark.slow
def test_cli_reports_old_and_new_metric_and_changed_plots(pr_repo):
    """Check that `pr_report.py --base main` shows the metric's old and new value, the param and the plots."""
    out = pr_repo / "report.md"
    proc = pr_report(pr_repo, "--base", "main", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert proc.stdout == text
    row = next(line for line in text.splitlines() if "| accuracy" in line)
    assert [cell.strip() for cell in row.strip("|").split("|")] == ["metrics/score.json", "accuracy", "0.8125",
                                                                    "0.875", "0.0625"]
    assert re.search(r"\| params.yaml \| model.target \| 0.8125 +\| 0.875 ", text)
    assert "- `plots/confusion.csv`\n- `plots/pareto.png`\n\n![plots/pareto.png](plots/pareto.png)" in text
    assert "`plots/curve.csv`" not in text
    assert "> [!WARNING]" not in text  # up to date: `hardware` is always changed, by design
    assert "## Recommendation" not in text and "metrics/leaderboard.md` is missing" in text


@pytest.mark.slow
def test_cli_warns_when_the_pipeline_is_stale(pr_repo):
    """Check that an edited param without `dvc repro` puts the stale stage in a warning."""
    params = pr_repo / "params.yaml"
    original = params.read_text()
    params.write_text("model:\n  target: 0.5\n")
    try:
        proc = pr_report(pr_repo, "--base", "main")
    finally:
        params.write_text(original)
    assert proc.returncode == 0, proc.stderr
    assert "> [!WARNING]" in proc.stdout and "Stale: `score`." in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("where, base, message", [
    ("repo", "xyz", "error: base revision 'xyz' not found: fetch it (git fetch origin xyz) or pass --base"),
    ("repo", "origin/main",
     "error: base revision 'origin/main' not found: fetch it (git fetch origin main) or pass --base"),
    ("plain", "main", "is not a git repository. Fix: run it inside a clone of textcls-bench."),
    ("git-only", "main", "is not in a DVC repository (no .dvc/ folder"),
])
def test_cli_errors_are_one_line_and_write_no_file(pr_repo, tmp_path, where, base, message):
    """Check that a bad base revision, or no git/DVC repository, is one `error:` line, exit 1 and no report."""
    cwd = {"repo": pr_repo, "plain": tmp_path / "plain", "git-only": tmp_path / "git-only"}[where]
    cwd.mkdir(exist_ok=True)
    if where == "git-only":
        sh(["git", "init", "-q"], cwd)
    out = tmp_path / "report.md"
    proc = pr_report(cwd, "--base", base, "--out", str(out))
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(errors) == 1 and message in errors[0] and errors[0].startswith("error: ")
    assert not out.exists()


def test_changed_plots_of_undeclared_entries_never_reach_the_report(tmp_path):
    """Check that per-entry plot files of entries the leaderboard does not hold (left by a removed model or
    another profile) are dropped, whole-run plots stay, and without a leaderboard nothing is dropped."""
    board = tmp_path / "leaderboard.json"
    board.write_text(json.dumps({"ag_news": {"minilm": {"accuracy": 0.9}}, "sst2": {"tfidf": {"accuracy": 0.7}}}))
    entries = report.leaderboard_entries(board)
    assert entries == {("ag_news", "minilm"), ("sst2", "tfidf")}
    paths = ["plots/pareto.png", "plots/confusion/ag_news/minilm.csv", "plots/confusion/ag_news/bert.csv",
             "plots/calibration/sst2/tfidf.csv", "plots/calibration/sst2/minilm.csv",
             "plots/train/ag_news/minilm/plots/metrics/eval/accuracy.tsv",
             "plots/train/ag_news/minilm_l3/plots/metrics/eval/accuracy.tsv", "plots/confusion/imdb/minilm.csv"]
    assert report.declared_plots(paths, entries) == [
        "plots/pareto.png", "plots/confusion/ag_news/minilm.csv", "plots/calibration/sst2/tfidf.csv",
        "plots/train/ag_news/minilm/plots/metrics/eval/accuracy.tsv"]
    assert report.declared_plots(paths, report.leaderboard_entries(tmp_path / "missing.json")) == paths
