"""Stage `download@<name>`: fetch a data set from the Hugging Face Hub into data/raw/<name>.

Only data sets listed under `hub_datasets` in params.yaml get this stage (the offline
default lists none and reads the mirror in ../shared/datasets instead).

    python stages/download.py NAME OUT_DIR [--params params.yaml]
"""

import argparse
import logging

from textcls.cli import run
from textcls.data import hub as hub_data
from textcls.io import atomic_dir, write_json
from textcls.config.params import load_params, lookup

logger = logging.getLogger("download")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="key under hub_datasets in params.yaml")
    parser.add_argument("out_dir", help="folder to write <split>.parquet and classes.txt to")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    spec = lookup(params.hub_datasets, args.name, "hub_datasets", args.params)
    with atomic_dir(args.out_dir) as tmp:
        summary = hub_data.download(spec, tmp)
        write_json(tmp / "source.json", summary)
    logger.info("downloaded %s: %s", args.name, summary["rows"])
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
