"""Write the pull-request report: params, metrics, leaderboard, recommendation and changed plots vs a base.

    python scripts/pr_report.py [--base main] [--out report.md]

Runs `dvc params diff`, `dvc metrics diff`, `dvc status` and `git diff -- plots/` against BASE,
reads metrics/leaderboard.md and metrics/recommendation.md, prints the Markdown and writes it to
OUT. The pull-request workflow (.github/workflows/pr-report.yml) posts that file with CML;
`make report` runs this script. An unknown base revision is an error and writes no file.
"""

import argparse
import logging
from pathlib import Path

from textcls.report import pr as report
from textcls.cli import run
from textcls.io import atomic_outputs, write_text

logger = logging.getLogger("pr_report")


def main(argv=None) -> int:
    """Gather, build, write (atomically) and print the report; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="main", help="git revision to compare with (default: main)")
    parser.add_argument("--out", help="also write the Markdown to this file (atomically)")
    args = parser.parse_args(argv)

    outputs = [args.out] if args.out else []
    with atomic_outputs(*outputs):  # a failed run leaves no (stale) report behind
        markdown = report.build_report(**report.gather(args.base, Path.cwd()))
        if args.out:
            write_text(args.out, markdown)
            logger.info("wrote %s", args.out)
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
