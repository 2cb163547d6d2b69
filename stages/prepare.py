"""Stage `prepare@<dataset>`: raw files -> validated, carved, subsampled parquet splits.

Writes OUT_DIR/{train,validation,test}.parquet (columns text, label, row) and
OUT_DIR/meta.json (class names, row counts, which splits were carved or subsampled,
duplicates with test, and whether numbers are comparable to published ones).

    python stages/prepare.py DATASET OUT_DIR [--params params.yaml]
"""

import argparse
import logging

from textcls.cli import run
import pyarrow as pa
import pyarrow.parquet as pq

from textcls.data import prepare as data
from textcls.io import atomic_dir, write_json
from textcls.config.params import load_params, lookup

logger = logging.getLogger("prepare")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="key under datasets in params.yaml")
    parser.add_argument("out_dir")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    spec = lookup(params.datasets, args.dataset, "datasets", args.params)
    frames, meta = data.prepare(spec, params.base.seed)
    with atomic_dir(args.out_dir) as tmp:
        for split, df in frames.items():
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp / f"{split}.parquet")
        write_json(tmp / "meta.json", meta)
    logger.info("%s: %s", args.dataset, {s: v["rows"] for s, v in meta["splits"].items()})
    for note in meta["notes"]:
        logger.warning("%s: %s", args.dataset, note)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
