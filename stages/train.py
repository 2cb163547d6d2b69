"""Stage `train@<dataset>-<model>`: fit one model on one data set.

The model's kind (textcls.kinds) trains it: transformers are fine-tuned with the Hugging Face
Trainer (curves logged with DVCLive to LIVE_DIR), the TF-IDF baseline and the frozen-embedding
kind's logistic regression are fitted with scikit-learn. Either way MODEL_DIR gets the model
(safetensors) plus textcls.json, and
METRICS gets training time, parameter count and validation scores.

    python stages/train.py DATASET MODEL TOKENIZED_DIR MODEL_DIR METRICS LIVE_DIR \
        [--checkpoints DIR] [--params params.yaml]
"""

import argparse
import logging
import sys
from pathlib import Path

from textcls.cli import run
from textcls import kinds

from textcls.serving import gpus, runtime
from textcls.io import atomic_dir, atomic_outputs, write_json
from textcls.config.params import load_params, lookup, training_seed

logger = logging.getLogger("train")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("model", help="key under models in params.yaml")
    parser.add_argument("tokenized_dir")
    parser.add_argument("model_dir")
    parser.add_argument("metrics", help="JSON file for training metrics")
    parser.add_argument("live_dir", help="DVCLive folder for training curves")
    parser.add_argument("--checkpoints", default=None, help="scratch folder for Trainer checkpoints")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    runtime.redirect_other_ranks(args)  # `accelerate launch` with N processes: rank 0 writes the outputs

    params = load_params(args.params)
    model = lookup(params.models, args.model, "models", args.params)
    seed = training_seed(params, model)
    tokenized = Path(args.tokenized_dir)
    checkpoints = Path(args.checkpoints or f"checkpoints/{args.dataset}/{args.model}")
    kind = kinds.get(model.kind)
    # train.multi_gpu: ddp on several GPUs: this stage again, once per GPU, under accelerate (kinds without
    # train params, e.g. a plugin's, train in this process)
    if kind.uses_torch and model.train is not None:
        code = gpus.run_ddp(model.train.multi_gpu, __file__, list(sys.argv[1:] if argv is None else argv))
        if code is not None:
            return code
    with atomic_outputs(args.metrics, args.live_dir), atomic_dir(args.model_dir) as out:
        metrics = kind.train(tokenized, model, seed, out, checkpoints, Path(args.live_dir))
        # what this model was trained with, so experiment summaries can tell fresh results from stale ones
        hyperparameters = kind.hyperparameters(model)
        write_json(args.metrics, {"dataset": args.dataset, "model": args.model, "kind": model.kind, "seed": seed,
                                  "hyperparameters": hyperparameters, **metrics})
    logger.info("%s/%s: %s", args.dataset, args.model, metrics)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
