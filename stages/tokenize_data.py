"""Stage `tokenize@<dataset>-<model>`: prepared splits -> unpadded token ids for one model.

(Named tokenize_data.py: a script called tokenize.py would shadow the standard library module.)

    python stages/tokenize_data.py DATASET MODEL PREPARED_DIR OUT_DIR [--params params.yaml]
"""

import argparse
import logging
from pathlib import Path

from textcls.cli import run
from textcls.data import tokenization
from textcls.io import atomic_dir, read_json, write_json
from textcls.config.params import load_params, lookup

logger = logging.getLogger("tokenize")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("model", help="key under models in params.yaml")
    parser.add_argument("prepared_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    model = lookup(params.models, args.model, "models", args.params)
    prepared = Path(args.prepared_dir)
    label_names = read_json(prepared / "meta.json")["label_names"]
    with atomic_dir(args.out_dir) as tmp:
        meta = tokenization.tokenize_dataset(prepared, model, params.tokenize, tmp)
        meta["label_names"] = label_names
        write_json(tmp / "meta.json", meta)
    logger.info("%s/%s: %s", args.dataset, args.model, meta["splits"])
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
