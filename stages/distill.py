"""Stage `distill@<dataset>-<student>`: train a student on a fine-tuned teacher's soft targets.

The student is a `models:` entry (same source, layers and hyperparameters as its plain
`train@<dataset>-<student>` run); the teacher's logits come from `teacher_logits@<dataset>`.
The result is the leaderboard entry `<student>_kd` ("distilled from <teacher>"), evaluated
and benchmarked like any other model, so it can be compared with the same student trained
without a teacher.

    python stages/distill.py DATASET STUDENT TOKENIZED_DIR TEACHER_LOGITS_DIR MODEL_DIR METRICS LIVE_DIR \
        [--checkpoints DIR] [--params params.yaml]
"""

import argparse
import dataclasses
import logging
from pathlib import Path

from textcls.cli import run
from textcls.training import distill


from textcls.serving import runtime

from textcls.training import train
from textcls.records import ModelCard
from textcls.io import atomic_dir, atomic_outputs, read_json, write_json
from textcls.config.params import load_params, lookup, training_seed
from textcls.data.tokenization import read_split

logger = logging.getLogger("distill")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("dataset", "student", "tokenized_dir", "teacher_logits_dir", "model_dir", "metrics", "live_dir"):
        parser.add_argument(name)
    parser.add_argument("--checkpoints", default=None, help="scratch folder for Trainer checkpoints")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    runtime.redirect_other_ranks(args)  # `accelerate launch` with N processes: rank 0 writes the outputs

    params = load_params(args.params)
    cfg = params.distill
    student = lookup(params.models, args.student, "models", args.params)
    name = f"{args.student}_kd"
    seed = training_seed(params, student)
    tokenized = Path(args.tokenized_dir)
    labels = read_split(tokenized, "train").column("label").to_numpy()
    teacher_logits = distill.read_logits(Path(args.teacher_logits_dir), labels)
    checkpoints = Path(args.checkpoints or f"checkpoints/{args.dataset}/{name}")
    with atomic_outputs(args.metrics, args.live_dir), atomic_dir(args.model_dir) as out:
        metrics = train.train_transformer(tokenized, student, seed, out, checkpoints, Path(args.live_dir),
                                          teacher_logits, distill.DistillationTrainer,
                                          {"temperature": cfg.temperature, "alpha": cfg.alpha})
        dataclasses.replace(ModelCard.read(out), distilled_from=cfg.teacher).write(out)
        teacher_meta = read_json(Path(args.teacher_logits_dir) / "meta.json")
        hyperparameters = {**dataclasses.asdict(student.train), "teacher": cfg.teacher,
                           "temperature": cfg.temperature, "alpha": cfg.alpha}
        write_json(args.metrics, {"dataset": args.dataset, "model": name, "kind": student.kind, "seed": seed,
                                  "distilled_from": cfg.teacher, "student": args.student,
                                  "teacher_train_accuracy": teacher_meta["teacher_train_accuracy"],
                                  "hyperparameters": hyperparameters, **metrics})
    logger.info("%s/%s (distilled from %s): %s", args.dataset, name, cfg.teacher, metrics)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
