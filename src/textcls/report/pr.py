"""The pull-request report: what a change does to params, metrics, the leaderboard and the plots.

:func:`gather` asks git and DVC (``dvc params diff``, ``dvc metrics diff``, ``dvc status``,
``git diff`` of ``plots/``) and reads the leaderboard and recommendation; :func:`build_report`
turns those inputs into one deterministic Markdown comment. The PR workflow posts it with CML;
``make report`` writes the same file locally.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from textcls.errors import TextclsError

logger = logging.getLogger(__name__)

LEADERBOARD_MD = "metrics/leaderboard.md"
LEADERBOARD_JSON = "metrics/leaderboard.json"
RECOMMENDATION_MD = "metrics/recommendation.md"
CAPACITY_JSON = "metrics/capacity.json"
HARDWARE_JSON = "metrics/hardware.json"
PLOT_PATHS = ("plots",)
IMAGE_SUFFIXES = (".gif", ".jpeg", ".jpg", ".png", ".svg")
# GitHub refuses comments over 65,536 characters; CML adds a watermark and rewrites image URLs.
MAX_CHARS = 60_000
COLLAPSE_PLOTS_OVER = 15  # longer lists of changed plot files go into a <details> block


# --- Markdown helpers -------------------------------------------------------------------------

def table_rows(table_md: str) -> list[str]:
    """The data rows of a Markdown table (every ``|`` line after the header and its separator)."""
    lines = [line for line in table_md.splitlines() if line.startswith("|")]
    return lines[2:]


def demote_headings(markdown: str, levels: int = 1) -> str:
    """Every ATX heading ``levels`` deeper (at most ``######``), so a document nests in another one.

    Lines inside fenced code blocks are left alone.
    """
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        match = None if fenced else re.match(r"^(#{1,6})(\s.*)?$", line)
        if match:
            line = "#" * min(6, len(match.group(1)) + levels) + (match.group(2) or "")
        out.append(line)
    return "\n".join(out)


def nest(markdown: str, title: str) -> str:
    """A document as a ``##`` section: its headings demoted one level, ``## title`` added if it has none."""
    body = demote_headings(markdown.strip())
    return body if body.startswith("## ") else f"## {title}\n\n{body}"


def fit_table(table_md: str, budget: int, full_command: str) -> str:
    """The table cut to its first rows so that it (and a note saying what was left out) fits ``budget`` characters."""
    table_md = table_md.strip()
    if len(table_md) <= budget:
        return table_md
    lines = table_md.splitlines()
    header, rows = lines[:2], lines[2:]
    kept, size = [], len("\n".join(header)) + 200  # 200: room for the note
    for row in rows:
        if size + len(row) + 1 > budget:
            break
        kept.append(row)
        size += len(row) + 1
    note = (f"... and {len(rows) - len(kept)} more rows, left out to fit a GitHub comment: "
            f"run `{full_command}` for all of them.")
    return "\n".join([*header, *kept, "", note])


# --- Sections ---------------------------------------------------------------------------------

def stale_stages(status: dict) -> list[str]:
    """Stages ``dvc status --json`` reports changed, sorted; stages that are only ``always changed``
    (``hardware``: it re-reads the machine on every run, by design) do not count."""
    return sorted(name for name, changes in status.items() if changes != ["always changed"])


def _alert(kind: str, lines: list[str]) -> str:
    """A GitHub alert block (``> [!WARNING]``), one quoted line each."""
    return "\n".join([f"> [!{kind}]", *(f"> {line}" if line else ">" for line in lines)])


def stale_warning(stages: Sequence[str]) -> str:
    """The warning that the committed numbers do not come from the code under review ('' if up to date)."""
    if not stages:
        return ""
    names = ", ".join(f"`{name}`" for name in sorted(stages))
    return _alert("WARNING", [
        f"The pipeline is not up to date: `dvc status` lists {len(stages)} changed stage(s), so the numbers "
        "below do not match the code. Fix: run `make repro` and commit `dvc.lock`, `metrics/` and `plots/`.",
        "", f"Stale: {names}."])


def dvc_warnings_block(warnings: Sequence[str]) -> str:
    """DVC's own warnings (e.g. a revision whose dvc.yaml it could not read): the diffs may miss rows."""
    if not warnings:
        return ""
    return _alert("CAUTION", ["DVC could not read everything, so rows may be missing from the diffs below:",
                              "", *(f"- {line}" for line in sorted(set(warnings)))])


def diff_section(title: str, table_md: str, empty_text: str, note: str = "", budget: int | None = None,
                 full_command: str = "") -> str:
    """``## title``, an optional note, then DVC's Markdown table (cut to ``budget`` characters, see
    :func:`fit_table`) or ``empty_text`` when it has no rows."""
    if not table_rows(table_md):
        body = empty_text
    else:
        body = table_md.strip() if budget is None else fit_table(table_md, budget, full_command)
    return "\n\n".join(part for part in (f"## {title}", note, body) if part)


def declared_plots(paths: Sequence[str], entries: set[tuple[str, str]] | None) -> list[str]:
    """``paths`` less the per-entry plot files (``plots/<kind>/<dataset>/<entry>...``) of entries the leaderboard
    does not hold: files an earlier model set or profile left behind never reach the report. ``entries``
    None (no leaderboard yet) keeps every path; plots of the whole run (``plots/pareto.png``) always stay."""
    if entries is None:
        return list(paths)
    kept = []
    for path in paths:
        parts = Path(path).parts
        if len(parts) >= 4 and parts[0] == "plots" and (parts[2], parts[3].split(".")[0]) not in entries:
            continue
        kept.append(path)
    return kept


def leaderboard_entries(path: Path) -> set[tuple[str, str]] | None:
    """The (dataset, entry) pairs of ``metrics/leaderboard.json`` (what params declared when aggregate ran)."""
    if not path.is_file():
        return None
    board = json.loads(path.read_text(encoding="utf-8"))
    return {(dataset, name) for dataset, rows in board.items() if isinstance(rows, dict) for name in rows}


def plots_section(base_rev: str, changed: Sequence[str], deleted: Sequence[str] = ()) -> str:
    """The changed plot files (sorted), then every image among them that still exists, linked by relative path
    (CML uploads local images when it posts the comment)."""
    if not changed:
        return "## Plots changed\n\nNo plot changed."
    paths = sorted(set(changed))
    gone = set(deleted)
    items = [f"- `{p}`" + (" (deleted)" if p in gone else "") for p in paths]
    listing = "\n".join(items)
    if len(items) > COLLAPSE_PLOTS_OVER:
        listing = f"<details><summary>{len(items)} changed plot files</summary>\n\n{listing}\n\n</details>"
    images = [f"![{p}]({p})" for p in paths if p.lower().endswith(IMAGE_SUFFIXES) and p not in gone]
    tail = f"Compare them side by side with `dvc plots diff {base_rev}`."
    return "\n\n".join(["## Plots changed", listing, *images, tail])


def build_report(base_rev: str, params_diff_md: str, metrics_diff_md: str, leaderboard_md: str | None,
                 recommendation_md: str | None, changed_plots: Sequence[str], stale_stages: Sequence[str],
                 deleted_plots: Sequence[str] = (), hardware_changed: bool = False,
                 dvc_warnings: Sequence[str] = (), changes_md: str | None = None,
                 capacity_md: str | None = None) -> str:
    """The whole pull-request comment, deterministic for given inputs.

    ``leaderboard_md`` / ``recommendation_md`` are the files' text (None: missing; the recommendation
    section is then left out). ``hardware_changed``: metrics/hardware.json differs from the base, so
    latency changes come from the machine as much as from the code. ``changes_md``
    (:func:`textcls.report.pr_changes.to_markdown`): the quality changes with their paired tests and the latency
    changes beyond run-to-run noise; given, it leads the report and the full metrics diff is collapsed.
    ``capacity_md`` (:func:`textcls.report.capacity.pr_section`): the capacity and cost section, after the
    recommendation (None: left out).
    """
    head = "\n\n".join(part for part in (
        f"# textcls-bench report: changes vs `{base_rev}`",
        f"Params and metrics of this working tree compared with `{base_rev}` "
        f"(`dvc params diff {base_rev}`, `dvc metrics diff {base_rev}`).",
        stale_warning(stale_stages), dvc_warnings_block(dvc_warnings)) if part)
    params = diff_section("Params changed", params_diff_md, "No param changed.")
    board = (nest(leaderboard_md, "Leaderboard") if leaderboard_md is not None else
             f"## Leaderboard\n\n`{LEADERBOARD_MD}` is missing: run `make repro` to create it.")
    recommendation = nest(recommendation_md, "Recommendation") if recommendation_md is not None else ""
    plots = plots_section(base_rev, changed_plots, deleted_plots)
    note = (f"`{HARDWARE_JSON}` differs from `{base_rev}`: latency, throughput and cost were measured on "
            "another machine, so their changes reflect the hardware as much as the code."
            if hardware_changed else "")
    capacity = (capacity_md or "").strip()
    rest = len("\n\n".join([head, params, board, recommendation, capacity, plots])) + len(note) + 100
    metrics = diff_section("Metrics changed", metrics_diff_md, "No metric changed.", note, MAX_CHARS - rest,
                           f"dvc metrics diff {base_rev} --md --precision 4")
    if changes_md is not None:
        body = metrics.split("\n", 1)[1].strip() if "\n" in metrics else ""
        if note:  # the hardware note stays in sight, above the collapsed table
            body = body.replace(note, "").strip()
        metrics = "\n\n".join(part for part in (
            "## All metric changes", note, f"<details><summary>The full `dvc metrics diff {base_rev}` "
            f"(latency fields move run to run)</summary>\n\n{body}\n\n</details>") if part)
    sections = [head, changes_md or "", params, metrics, board, recommendation, capacity, plots]
    return "\n\n".join(s for s in sections if s) + "\n"


# --- Gathering the inputs (git and DVC) -------------------------------------------------------

def run_command(args: Sequence[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command; a missing program or a non-zero exit becomes a :class:`TextclsError`."""
    try:
        proc = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True)
    except FileNotFoundError:
        raise TextclsError(f"`{args[0]}` not found on PATH. Fix: run `make setup` (it installs dvc into .venv) "
                           "and make sure git is installed.") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()] or ["(no message)"]
        first = next((i for i, line in enumerate(lines) if line.startswith("ERROR")), len(lines) - 1)
        message = " ".join(lines[first:first + 3])
        raise TextclsError(f"`{' '.join(args)}` failed: {message} Fix: run it by hand to see why.")
    return proc


def _git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess:
    """``git ARGS`` whose exit status the caller interprets (no error on non-zero)."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise TextclsError("`git` not found on PATH. Fix: install git.") from None


def dvc_root(cwd: Path) -> Path:
    """The DVC repository containing ``cwd`` (inside a git work tree), or a clear error."""
    cwd = Path(cwd).resolve()
    proc = _git(["rev-parse", "--show-toplevel"], cwd)
    if proc.returncode != 0:
        raise TextclsError(f"{cwd} is not a git repository. Fix: run it inside a clone of textcls-bench.")
    top = Path(proc.stdout.strip()).resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / ".dvc").is_dir():
            return folder
        if folder == top:
            break
    raise TextclsError(f"{cwd} is not in a DVC repository (no .dvc/ folder up to {top}). "
                       "Fix: run it from the textcls-bench checkout (or `dvc init` a new project).")


def check_base(base: str, root: Path) -> None:
    """Fail with the fix when ``base`` names no commit here (e.g. a shallow CI clone)."""
    proc = _git(["rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], root)
    if proc.returncode != 0:
        branch = base.removeprefix("origin/")
        raise TextclsError(f"base revision {base!r} not found: fetch it (git fetch origin {branch}) or pass --base")


def changed_files(base: str, paths: Sequence[str], root: Path) -> list[str]:
    """Files under ``paths`` that differ between ``base`` and the working tree, untracked ones included, sorted."""
    diff = run_command(["git", "diff", "--name-only", "--relative", "--no-renames", "-z", base, "--", *paths],
                       root).stdout
    untracked = run_command(["git", "ls-files", "--others", "--exclude-standard", "-z", "--", *paths],
                            root).stdout
    return sorted({p for p in (diff + untracked).split("\0") if p})


def tool_env(root: Path) -> dict:
    """The environment for dvc: the working tree's .venv/bin (and this Python's) first on PATH."""
    first = [str(root / ".venv" / "bin"), str(Path(sys.executable).parent)]
    return {**os.environ, "PATH": os.pathsep.join([*first, os.environ.get("PATH", "")])}


def _read_optional(path: Path) -> str | None:
    """The file's text, or None when it does not exist."""
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _status(stdout: str) -> dict:
    """``dvc status --json`` output as a dict ({} when it prints nothing)."""
    try:
        return json.loads(stdout or "{}")
    except json.JSONDecodeError:
        raise TextclsError(f"`dvc status --json` printed no JSON: {stdout[:200]!r}. "
                           "Fix: run `dvc status` by hand and repair what it reports.") from None


def gather(base: str, cwd: Path | str = ".") -> dict:
    """Everything :func:`build_report` needs, from git and DVC in the repository around ``cwd``."""
    root = dvc_root(Path(cwd))
    check_base(base, root)
    env, warnings = tool_env(root), []

    def dvc(*args: str) -> str:
        """stdout of ``dvc ARGS``; its warnings are kept for the report."""
        proc = run_command(["dvc", *args], root, env)
        warnings.extend(line.strip() for line in proc.stderr.splitlines()
                        if line.startswith("WARNING:") or line.startswith("DVC failed"))
        return proc.stdout

    logger.info("comparing %s with %s", root, base)
    plots = declared_plots(changed_files(base, PLOT_PATHS, root), leaderboard_entries(root / LEADERBOARD_JSON))
    return {
        "base_rev": base,
        "params_diff_md": dvc("params", "diff", base, "--md"),
        "metrics_diff_md": dvc("metrics", "diff", base, "--md", "--precision", "4"),
        "leaderboard_md": _read_optional(root / LEADERBOARD_MD),
        "recommendation_md": _read_optional(root / RECOMMENDATION_MD),
        "changed_plots": plots,
        "deleted_plots": [p for p in plots if not (root / p).exists()],
        "stale_stages": stale_stages(_status(dvc("status", "--json"))),
        "hardware_changed": bool(changed_files(base, [HARDWARE_JSON], root)),
        "dvc_warnings": warnings,
        "changes_md": changes_markdown(base, root),
        "capacity_md": capacity_markdown(root),
    }


def capacity_markdown(root: Path) -> str:
    """The capacity and cost section from ``metrics/capacity.json`` (the aggregate stage writes it)."""
    from textcls.report import capacity

    path = root / CAPACITY_JSON
    return capacity.pr_section(json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None,
                               CAPACITY_JSON.replace(".json", ".md"))


def changes_markdown(base: str, root: Path) -> str:
    """The quality and latency changes against ``base`` (:mod:`textcls.report.pr_changes`): eval and benchmark
    JSONs of both runs, and for the paired tests the per-example predictions (the base's from the DVC cache)."""
    from textcls.report import pr_changes

    listed = _git(["ls-tree", "-r", "--name-only", base, "--", "metrics"], root)
    paths = set(listed.stdout.split()) if listed.returncode == 0 else set()
    paths |= {str(p.relative_to(root)) for p in (root / "metrics").glob("*/*/*.json")}

    def at_base(path: str) -> str | None:
        proc = _git(["show", f"{base}:{path}"], root)
        return proc.stdout if proc.returncode == 0 else None

    def here(path: str) -> str | None:
        return (root / path).read_text(encoding="utf-8") if (root / path).is_file() else None

    def paired(entry: str) -> str:
        import io

        import pandas as pd
        import pyarrow.parquet as pq

        path = f"data/predictions/{entry}.parquet"

        def correct(table) -> pd.Series:
            frame = table.to_pandas().set_index("row").sort_index()
            return frame["label"] == frame["pred"]

        if not (root / path).is_file():
            return f"no paired test: `{path}` is missing here (run `dvc repro`)"
        try:
            import dvc.api

            with dvc.api.open(path, repo=str(root), rev=base, mode="rb") as f:
                old = pq.read_table(io.BytesIO(f.read()), columns=["row", "label", "pred"])
        except Exception:  # noqa: BLE001 - not in the cache, no remote, not tracked at base: say so, go on
            return "no paired test: the base run's predictions are not in the DVC cache (`dvc pull`)"
        return pr_changes.paired_text(correct(old), correct(pq.read_table(root / path, columns=["row", "label", "pred"])))

    changes = pr_changes.compare(pr_changes.read_run(at_base, sorted(paths)), pr_changes.read_run(here, sorted(paths)),
                                 paired)
    return pr_changes.to_markdown(changes, base)
