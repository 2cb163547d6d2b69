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
import re
import subprocess
import sys
import time
from pathlib import Path

from textcls import experiment_report, experiments
from textcls.cli import run
from textcls.errors import TextclsError
from textcls.io import write_bytes, write_text
from textcls.params import load_params

logger = logging.getLogger("experiments")


def dvc(*args: str) -> str:
    proc = subprocess.run(["dvc", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise TextclsError(f"`dvc {' '.join(args)}` failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc.stdout


def queue(args) -> list[str]:
    params = load_params(args.params)
    cfg = experiments.with_values(experiments.load_config(args.config), args.workflow, args.values)
    planned = experiments.plan(args.workflow, cfg, params, Path.cwd(), args.datasets, args.models)
    for exp in planned:
        command = exp.queue_command()
        print(" ".join(command) if args.dry_run else f"queueing {exp.name}")
        if not args.dry_run:
            dvc(*command[1:])
    return [exp.name for exp in planned]


def wait_for_queue(names: list[str], poll_s: float = 10.0) -> list[str]:
    """Block until none of ``names`` is queued or running; return those that failed."""
    while True:
        status = {}
        for line in dvc("queue", "status").splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[1] in names:
                status[fields[1]] = fields[-1]
        active = [n for n, s in status.items() if s in ("Queued", "Running")]
        if not active:
            return sorted(n for n, s in status.items() if re.match("Fail", s))
        logger.info("waiting for %d experiment(s): %s", len(active), ", ".join(sorted(active)))
        time.sleep(poll_s)


def collect(args) -> None:
    shown = json.loads(dvc("exp", "show", "--json", "--all-commits"))  # experiments of earlier commits too
    table = experiments.results_table(experiments.exp_show_records(shown))
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
    args = parser.parse_args(argv)

    if args.action in ("queue", "run"):
        names = queue(args)
        if args.action == "queue" or args.dry_run:
            return 0
        dvc("queue", "start", "-j", str(args.jobs))
        failed = wait_for_queue(names)
        if failed:
            print(f"warning: {len(failed)} experiment(s) failed: {', '.join(failed)} "
                  f"(see `dvc queue logs <name>`)", file=sys.stderr)
    collect(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
