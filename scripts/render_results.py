"""Write the results blocks of README.md and docs/ from params.yaml and metrics/, so no number is copied by hand.

A generated block sits between two markers in a Markdown file:

    <!-- BEGIN generated:<name> -->
    ... (rewritten by this script; do not edit by hand)
    <!-- END generated:<name> -->

Blocks (each for exactly the (dataset, entry) pairs params.yaml declares; files of other entries are never read):

- ``results``: per entry test accuracy [95 % CI], macro-F1, train time, best CPU variant with its accuracy,
  batch-1 p50 / p95 and speed-up over eager fp32 (GPU columns when a GPU was measured), a note per data set,
  and the machine the benchmarks ran on (metrics/hardware.json).
- ``recommendation``: the recommended model per data set and its runner-up (metrics/recommendation.json).
- ``significance``: each entry against its data set's best on the same test rows (metrics/leaderboard.json).

    python scripts/render_results.py            # rewrite every block in README.md and docs/**/*.md
    python scripts/render_results.py --check    # exit 1, naming file and block, if a block is stale

``make docs`` runs the first. Options: ``--root`` (project folder, default: this script's parent's parent),
``--params`` and ``--metrics`` (relative to the root unless absolute), and explicit files to process.
Exit status: 0 up to date / rewritten, 1 stale (``--check``), 2 an error (missing metrics, unknown block).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

from textcls.errors import TextclsError
from textcls.report.docs import RENDERERS
from textcls.report.docs_inputs import Inputs, RenderError

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- BEGIN generated:(?P<name>[a-z0-9_-]+) -->\n)(?P<body>.*?)(<!-- END generated:(?P=name) -->)",
                   re.S)


# ---------------------------------------------------------------- files


def default_files(root: Path) -> list[Path]:
    files = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    return [f for f in files if f.is_file()]


def rewrite(text: str, inputs: Inputs, where: str, cache: dict) -> tuple[str, list[str]]:
    """``text`` with every generated block re-rendered, and the names of the blocks that changed."""
    changed = []

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in RENDERERS:
            raise RenderError(f"{where}: unknown generated block {name!r} (known: {', '.join(RENDERERS)}).")
        if name not in cache:
            cache[name] = RENDERERS[name](inputs)
        if match["body"] != cache[name]:
            changed.append(name)
        return match.group(1) + cache[name] + match.group(4)

    return BLOCK.sub(replace, text), changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path, help="Markdown files (default: README.md and docs/**/*.md)")
    parser.add_argument("--root", type=Path, default=ROOT, help="project folder (default: %(default)s)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics"))
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is stale")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    files = [f if f.is_absolute() else root / f for f in args.files] or default_files(root)
    cache: dict = {}
    stale = 0
    try:
        inputs = Inputs(root / args.params, root / args.metrics)
        for path in files:
            where = path.relative_to(root) if path.is_relative_to(root) else path
            old = path.read_text(encoding="utf-8")
            new, changed = rewrite(old, inputs, str(where), cache)
            if not changed:
                continue
            if args.check:
                stale += len(changed)
                for name in changed:
                    print(f"{where}: generated block '{name}' differs from what metrics/ give. "
                          "Fix: run `make docs` (python scripts/render_results.py) and commit the result.")
                sys.stdout.writelines(list(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                                str(where), f"{where} (rendered)", n=0))[:40])
            else:
                path.write_text(new, encoding="utf-8")
                print(f"{where}: rewrote {', '.join(changed)}")
    except (RenderError, TextclsError) as err:  # TextclsError: params.yaml invalid (names the key)
        print(err, file=sys.stderr)
        return 2
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
