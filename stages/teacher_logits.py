"""Stage `teacher_logits@<dataset>`: the distillation teacher's logits on the train split, computed once.

The teacher is `distill.teacher` (a fine-tuned model of this pipeline). Its logits are a
cached DVC output, so re-tuning a student (`distill@<dataset>-<student>`) never reruns it.
Writes OUT_DIR/train.parquet (label, logits per train row, in row order) and OUT_DIR/meta.json.

    python stages/teacher_logits.py DATASET TEACHER_DIR TOKENIZED_DIR OUT_DIR [--params params.yaml]
"""

import argparse
import logging
import time
from pathlib import Path

from textcls.cli import run
import numpy as np
from scipy.special import softmax

from textcls.training import distill

from textcls.serving import runtime
from textcls.io import atomic_dir, write_json
from textcls.config.params import load_params

logger = logging.getLogger("teacher_logits")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("dataset", "teacher_dir", "tokenized_dir", "out_dir"):
        parser.add_argument(name)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    device = runtime.resolve_device(params.evaluate.device)
    runtime.configure_threads()
    start = time.perf_counter()
    logits, labels = distill.teacher_logits(Path(args.teacher_dir), Path(args.tokenized_dir),
                                            params.evaluate.batch_size, device)
    accuracy = float((logits.argmax(axis=1) == labels).mean()) if len(labels) else float("nan")
    with atomic_dir(args.out_dir) as out:
        distill.write_logits(out, logits, labels)
        write_json(out / "meta.json", {"dataset": args.dataset, "teacher": params.distill.teacher,
                                       "rows": int(len(labels)), "teacher_train_accuracy": round(accuracy, 6),
                                       "mean_max_probability": round(float(np.mean(softmax(logits, axis=1).max(axis=1))),
                                                                     6)})
    # the time goes to the log, not meta.json: the same logits must give byte-identical files (distill stays cached)
    logger.info("%s: teacher %s logits on %d train rows (train accuracy %.4f) in %.1f s", args.dataset,
                params.distill.teacher, len(labels), accuracy, time.perf_counter() - start)
    return 0



if __name__ == "__main__":
    raise SystemExit(run(main))
