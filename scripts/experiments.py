"""Experiment workflows in one command each: queue a grid of `dvc exp run`s, run it, collect the results.

    python scripts/experiments.py run lr               # learning-rate sensitivity table
    python scripts/experiments.py run data_efficiency  # accuracy vs training rows per class (+ plot)
    python scripts/experiments.py run seeds            # mean ± std over training seeds
    python scripts/experiments.py run hparams --models minilm   # lr × batch × epochs grid + regression

`run` = `queue` (one `dvc exp run --queue -n <workflow>-<setting> -S ...` per setting of the grid in
configs/experiments.yaml), `dvc queue start -j JOBS`, wait, then `collect` (reads `dvc exp show
--json --all-commits`, keeping the newest experiment of each name, and writes
reports/experiments/<workflow>.{md,csv} and a plot where there is one).
`--datasets` / `--models` restrict the grid; `--dry-run` prints the commands without running them.
"""

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from textcls.tools import experiment_report

from textcls.tools import experiments

from textcls.report import pr as report
from textcls.cli import run
from textcls.errors import TextclsError
from textcls.io import write_bytes, write_text
from textcls.config.params import load_params

logger = logging.getLogger("experiments")


def dvc(*args: str) -> str:
    """``dvc ARGS`` with the project's .venv first on PATH; a failure is one TextclsError."""
    root = Path.cwd()
    return report.run_command(["dvc", *args], root, report.tool_env(root)).stdout


def queue(args) -> list[str]:
    params = load_params(args.params)
    cfg = experiments.with_values(experiments.load_config(args.config), args.workflow, args.values)
    planned = experiments.plan(args.workflow, cfg, params, Path.cwd(), args.datasets, args.models)
    names = [exp.name for exp in planned]
    existing = sorted(set(names) & set(dvc("exp", "list", "--all-commits", "--name-only").split()))
    if existing and not args.dry_run:
        if not args.force:
            raise TextclsError(f"Experiments named {', '.join(existing)} already exist. Fix: pass --force to "
                               f"replace them, or `dvc exp remove {' '.join(existing)}`.")
        dvc("exp", "remove", "--all-commits", *existing)
    for exp in planned:
        command = exp.queue_command()
        print(" ".join(command) if args.dry_run else f"queueing {exp.name}")
        if not args.dry_run:
            dvc(*command[1:])
    return names


def start_queue(jobs: int) -> None:
    """`dvc queue start` detaches a worker that inherits our pipes: give it none, or we would wait for it."""
    try:
        subprocess.run(["dvc", "queue", "start", "-j", str(jobs)], env=report.tool_env(Path.cwd()),
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    except (FileNotFoundError, subprocess.CalledProcessError) as err:
        raise TextclsError(f"`dvc queue start` failed ({err}). Fix: check `dvc queue status`.") from None


def wait_for_queue(names: list[str], known_tasks: set[str], poll_s: float = 10.0) -> list[str]:
    """Block until none of our tasks (not in ``known_tasks``, named in ``names``) is queued or running;
    return the names of those that failed."""
    while True:
        tasks = [t for t in experiments.parse_queue_status(dvc("queue", "status"))
                 if t["task"] not in known_tasks and t["name"] in names]
        active = sorted(t["name"] for t in tasks if t["status"] in ("Queued", "Running"))
        if not active:
            return sorted(t["name"] for t in tasks if t["status"] == "Failed")
        shown = ", ".join(active[:3]) + (", ..." if len(active) > 3 else "")
        logger.info("waiting for %d experiment(s): %s", len(active), shown)
        time.sleep(poll_s)


def collect(args) -> None:
    shown = json.loads(dvc("exp", "show", "--json", "--all-commits"))  # experiments of earlier commits too
    table = experiments.results_table(experiments.exp_show_records(shown))
    table = table[table["dataset"].isin(args.datasets or table["dataset"])
                  & table["model"].isin(args.models or table["model"])]
    rows = experiment_report.workflow_rows(table, args.workflow)
    out = Path(args.out)
    names = sorted(rows["experiment"].unique())
    if args.workflow == "hparams":
        baseline = experiments.load_config(args.config)["hparams"].get("baseline")
        markdown, plots = experiment_report.hparam_report(rows, baseline)
        for name, png in plots.items():
            write_bytes(out / name, png)
    else:
        summary = experiment_report.summarize(args.workflow, rows)
        markdown = experiment_report.to_markdown(args.workflow, summary, names)
        if args.workflow == "data_efficiency":
            write_bytes(out / "data_efficiency.png", experiment_report.data_efficiency_png(summary))
    write_text(out / f"{args.workflow}.csv", rows.drop(columns="config").to_csv(index=False))
    write_text(out / f"{args.workflow}.md", markdown)
    print(markdown)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("queue", "run", "collect"))
    parser.add_argument("workflow", choices=experiments.WORKFLOWS)
    parser.add_argument("--datasets", nargs="+", help="data sets of params.yaml (default: all)")
    parser.add_argument("--models", nargs="+", help="models of params.yaml (default: all that apply)")
    parser.add_argument("--values", type=float, nargs="+",
                        help="replace the workflow's grid in the config (lr, data_efficiency, seeds)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="experiments run at once (default 1)")
    parser.add_argument("--config", default="configs/experiments.yaml")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="reports/experiments")
    parser.add_argument("--dry-run", action="store_true", help="print the dvc commands, run nothing")
    parser.add_argument("--force", action="store_true", help="replace existing experiments of the same names")
    args = parser.parse_args(argv)

    if args.action in ("queue", "run"):
        known_tasks = {t["task"] for t in experiments.parse_queue_status(dvc("queue", "status"))}
        names = queue(args)
        if args.action == "queue" or args.dry_run:
            return 0
        start_queue(args.jobs)
        failed = wait_for_queue(names, known_tasks)
        if failed:
            print(f"warning: {len(failed)} experiment(s) failed: {', '.join(failed)} "
                  f"(see `dvc queue logs <name>`)", file=sys.stderr)
    collect(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
