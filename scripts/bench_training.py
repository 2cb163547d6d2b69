"""Training speed: the reference recipe (every example padded to max_length, random order, fp32) vs this
pipeline's (`pipeline`: padding per batch, `train.sampling`, `train.precision` of the model's params, e.g. strict
length buckets + bf16 autocast), with per-batch padding alone, Trainer's length-grouped sampler and the pipeline's
sampling in fp32 in between; same machine, model, data, epochs and seed. Prints a table, the ratio of the
pipeline's recipe to the reference with the accuracy difference on the same test rows (and the ratio of its
sampling alone, in fp32), real tokens/s as a fraction of the machine's measured matmul peak in the recipe's
precision (6 N FLOPs per token, N = non-embedding parameters), and the tokenization throughput of a fast
tokenizer on the full SST-2 train file. The reference study trained in fp16 on a GPU; fp16 does not run on a
CPU, so its CPU stand-in here is fp32.

    python scripts/bench_training.py [--dataset ag_news] [--model minilm] [--epochs 2] [--rows N]
                                     [--recipes reference,bucket,pipeline]

Reads the pipeline's tokenized data (`dvc repro tokenize@<dataset>-<model>` first) and the model's
params (lr, batch size, seed, sampling, precision) from params.yaml. Each recipe trains in its own process, so its peak
memory is its own. A benchmark, not a test: the numbers depend on the machine and its load.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from textcls.sources import models

from textcls.serving import runtime
from textcls.cli import run
from textcls.errors import TextclsError
from textcls.io import read_json
from textcls.config.params import load_params, lookup, training_seed
from textcls.eval import statistics
from textcls.data.tokenization import effective_max_length, read_split, tokenize_texts
from textcls.gpucheck.models import measured_matmul_peak
from textcls.training import sampling
from textcls.training.train import cpu_bf16_attention

RECIPES = {"reference": "pad every example to max_length, random order, fp32",
           "dynamic": "pad each batch to its longest example, random order, fp32",
           "group_by_length": "pad each batch to its longest example, Trainer's length-grouped order, fp32",
           "bucket": "pad each batch to its longest example, strict length buckets in random order, fp32",
           "pipeline": "pad each batch to its longest example, the model's train.sampling and train.precision"}
SAMPLING = {"reference": "random", "dynamic": "random", "group_by_length": "group_by_length", "bucket": "bucket"}


def recipe_settings(recipe: str, train) -> tuple[str, str]:
    """(sampling, precision on CPU) of a recipe; ``pipeline``'s come from the model's train params."""
    if recipe == "pipeline":
        return train.sampling, runtime.resolve_precision(train.precision, "cpu")
    return SAMPLING[recipe], "fp32"


def train_once(args) -> dict:
    """One recipe, in this process: fine-tune, time it, score the test split."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    params = load_params(args.params)
    model = lookup(params.models, args.model, "models", args.params)
    folder = Path(f"data/tokenized/{args.dataset}/{args.model}")
    if not (folder / "meta.json").is_file():
        raise TextclsError(f"{folder} not found. Fix: `dvc repro tokenize@{args.dataset}-{args.model}` first.")
    meta = read_json(folder / "meta.json")
    threads = runtime.configure_threads()
    tokenizer = models.load_tokenizer(str(folder / "tokenizer"))
    train = read_split(folder, "train").to_pandas()
    train = train.sample(n=min(args.rows, len(train)), random_state=0) if args.rows else train
    test = Dataset.from_pandas(read_split(folder, "test").to_pandas(), preserve_index=False)
    set_seed(training_seed(params, model))
    clf = models.load_classifier(model.source, meta["label_names"])
    cfg = model.train
    order, precision = recipe_settings(args.recipe, cfg)
    padding = {"padding": "max_length", "max_length": meta["max_length"]} if args.recipe == "reference" else {}
    cpu_bf16_attention(clf, "cpu", precision)  # as the train stage does
    trainer_type = sampling.trainer_class(Trainer, order)
    trainer = trainer_type(model=clf, data_collator=DataCollatorWithPadding(tokenizer, **padding),
                      train_dataset=Dataset.from_pandas(train, preserve_index=False),
                      args=TrainingArguments(output_dir="/tmp/textcls-bench-training", learning_rate=cfg.lr,
                                             per_device_train_batch_size=cfg.batch_size, num_train_epochs=args.epochs,
                                             warmup_steps=cfg.warmup_ratio, weight_decay=cfg.weight_decay,
                                             seed=training_seed(params, model), save_strategy="no", report_to=[],
                                             use_cpu=True, disable_tqdm=True, logging_strategy="no",
                                             bf16=precision == "bf16",
                                             train_sampling_strategy=sampling.hf_strategy(order)))
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    trainer.data_collator = DataCollatorWithPadding(tokenizer)  # score both the same way
    # with group_by_length, Trainer also length-groups prediction order: compare with the returned label_ids
    scored = trainer.predict(test)
    correct = np.argmax(scored.predictions, axis=-1) == scored.label_ids
    # per test row, in the split's order (for the paired test across recipes): the predictions' order is the split's
    # unless Trainer length-grouped them; its seeded sampler gives that order again
    row_order = np.arange(len(test))
    if order == "group_by_length":
        row_order = np.asarray(list(trainer._get_eval_sampler(test)))  # noqa: SLF001 (the order Trainer predicted in)
    if not np.array_equal(scored.label_ids, np.asarray(test["label"])[row_order]):
        raise TextclsError("bench_training: could not match the predictions to the test rows")
    by_row = np.empty(len(test), dtype=bool)
    by_row[row_order] = correct
    real_tokens = int(sum(len(ids) for ids in train["input_ids"])) * args.epochs
    return {"recipe": args.recipe, "sampling": order, "precision": precision, "rows": len(train), "epochs": args.epochs, "threads": threads,
            "wall_s": round(seconds, 1), "samples_per_s": round(len(train) * args.epochs / seconds, 2),
            "real_tokens_per_s": round(real_tokens / seconds, 1),
            "non_embedding_params": int(clf.num_parameters(exclude_embeddings=True)),
            "test_accuracy": round(float(correct.mean()), 4), "test_correct": by_row.astype(int).tolist(),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def tokenization_throughput(args) -> dict:
    """Rows per second of the model's fast tokenizer over the SST-2 train file (truncation, no padding)."""
    params = load_params(args.params)
    spec = lookup(params.datasets, "sst2", "datasets", args.params)
    path = Path(spec.path) / spec.files["train"]
    texts = pd.read_csv(path, sep="\t", usecols=[spec.text_column], quoting=3)[spec.text_column].astype(str).tolist()
    tokenizer = models.load_tokenizer(str(Path(f"data/tokenized/{args.dataset}/{args.model}") / "tokenizer"))
    max_length = effective_max_length(tokenizer, params.tokenize.max_length)
    start = time.perf_counter()
    tokenize_texts(tokenizer, texts, max_length, params.tokenize.batch_size)  # the tokenize stage's own path
    seconds = time.perf_counter() - start
    return {"file": str(path), "rows": len(texts), "seconds": round(seconds, 2), "rows_per_s": round(len(texts) / seconds)}


def paired(a: np.ndarray, b: np.ndarray, seed: int = 0) -> str:
    """Accuracy of A minus B on the same rows: the difference with its paired-bootstrap 95 % interval and McNemar's
    exact p-value (whether the recipes' accuracies differ beyond what the test rows can tell apart)."""
    diff = statistics.paired_bootstrap_diff(a, b, 2000, seed)
    test = statistics.mcnemar_exact(a, b)
    return (f"{diff['diff'] * 100:+.2f} pt [{diff['low'] * 100:+.2f}, {diff['high'] * 100:+.2f}] (95 % paired "
            f"bootstrap), McNemar p = {test['p_value']:.3f} ({test['a_only']} rows right only with the first, "
            f"{test['b_only']} only with the second)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ag_news")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--rows", type=int, default=0, help="training rows (default: the whole train split)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--recipes", default=",".join(RECIPES),
                        help=f"comma-separated, of {', '.join(RECIPES)} (reference and pipeline always run)")
    parser.add_argument("--recipe", choices=RECIPES, help=argparse.SUPPRESS)  # internal: one recipe, JSON out
    args = parser.parse_args(argv)
    if args.recipe:
        print(json.dumps(train_once(args)))
        return 0

    unknown = sorted(set(args.recipes.split(",")) - set(RECIPES))
    if unknown:
        raise TextclsError(f"unknown recipe(s) {unknown}. Fix: --recipes takes {', '.join(RECIPES)}.")
    chosen = [r for r in RECIPES if r in args.recipes.split(",") or r in ("reference", "pipeline")]
    results = []
    for recipe in chosen:
        command = [sys.executable, __file__, "--recipe", recipe, "--dataset", args.dataset, "--model", args.model,
                   "--epochs", str(args.epochs), "--rows", str(args.rows), "--params", args.params]
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise TextclsError(f"the {recipe} recipe failed: {proc.stderr.strip()[-1500:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    correct = {r["recipe"]: np.asarray(r.pop("test_correct"), bool) for r in results}
    table = pd.DataFrame(results).set_index("recipe")
    print(f"{args.dataset}/{args.model}, {table['rows'].iloc[0]} training rows x {args.epochs:g} epochs, "
          f"{table['threads'].iloc[0]} threads, CPU")
    print(table.drop(columns=["rows", "epochs", "threads"]).to_markdown())
    ref, ours = table.loc["reference"], table.loc["pipeline"]
    print(f"\nsamples/s ratio (pipeline: train.sampling {ours['sampling']}, {ours['precision']} / reference): "
          f"{ours['samples_per_s'] / ref['samples_per_s']:.2f}x; "
          f"test accuracy {ours['test_accuracy']:.4f} vs {ref['test_accuracy']:.4f} "
          f"({(correct['pipeline'].mean() - correct['reference'].mean()) * 100:+.2f} pt, unrounded; "
          f"{len(table)} recipes on the same test rows)")
    print(f"  paired test, pipeline vs reference: {paired(correct['pipeline'], correct['reference'])}")
    same = [r for r in table.index if r not in ("reference", "pipeline") and table.loc[r, "sampling"] == ours["sampling"]]
    for recipe in same:  # the pipeline's sampling alone, in fp32: what the sequence handling buys by itself
        row = table.loc[recipe]
        print(f"  of which {recipe} alone (fp32): {row['samples_per_s'] / ref['samples_per_s']:.2f}x, "
              f"{(correct[recipe].mean() - correct['reference'].mean()) * 100:+.2f} pt")
    runtime.configure_threads()
    peaks = {p: measured_matmul_peak("cpu", 2048, 10, p) for p in sorted(set(table["precision"]))}  # same threads
    n = int(table["non_embedding_params"].iloc[0])
    for recipe, row in table.iterrows():
        achieved, peak = 6 * n * row["real_tokens_per_s"], peaks[row["precision"]]
        print(f"{recipe}: {row['real_tokens_per_s']:.0f} real tokens/s x 6 x {n / 1e6:.1f} M non-embedding params = "
              f"{achieved / 1e9:.1f} GFLOP/s, {achieved / peak:.1%} of the measured {row['precision']} matmul peak "
              f"({peak / 1e9:.0f} GFLOP/s, 2048^2)")
    tok = tokenization_throughput(args)
    print(f"tokenization: {tok['rows']} rows of {tok['file']} in {tok['seconds']} s = {tok['rows_per_s']} rows/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
