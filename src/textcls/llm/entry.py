"""A prompted LLM (``llms:`` entry) as a leaderboard entry: the same records a trained model gets.

:func:`score_llm` draws the demonstrations (seeded) from the train split, answers a seeded subsample of
the test split, and returns what train + evaluate + benchmark give a trained model: eval metrics (plus
tokens, invalid answers and cost), train metrics (parameters; no training), a benchmark report (batch-1
latency and cost) and the scored test rows. :func:`write_outputs` writes them all or nothing, with the scored rows
also as the served predictions of the benchmark's ``fewshot`` variant (the same calls are timed and scored).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from textcls.bench.latency import RepeatedLatency
from textcls.data.prepared import Prepared
from textcls.bench.served import ServedPredictions
from textcls.eval.run import OutputPaths, Scored, score_metrics
from textcls.llm import fewshot, prompting
from textcls.records import Unmeasured


def score_llm(dataset: str, name: str, weights_dir: Path, prepared: Prepared, hardware: dict, params):
    """(eval metrics, train metrics, benchmark report, scored test rows, scored validation rows or None) of the
    ``llms.<name>`` entry."""
    from textcls.config.params import lookup
    from textcls.serving import runtime

    cfg = lookup(params.llms, name, "llms")
    names = prepared.label_names
    train, test, val = prepared.frame("train"), prepared.frame("test"), prepared.frame("validation")
    test_rows_available = len(test)
    rng = np.random.default_rng(params.base.seed)
    if cfg.max_test_rows is not None and cfg.max_test_rows < len(test):
        test = test.iloc[np.sort(rng.choice(len(test), cfg.max_test_rows, replace=False))]
    if cfg.max_validation_rows is not None and cfg.max_validation_rows < len(val):
        val = val.iloc[np.sort(rng.choice(len(val), cfg.max_validation_rows, replace=False))]
    shots = prompting.select_shots(train["label"].to_numpy(), len(names), cfg.shots_per_class, params.base.seed)
    demos = [(train["text"].iat[i], int(train["label"].iat[i])) for i in shots]
    texts, labels = test["text"].tolist(), test["label"].to_numpy()
    local = cfg.backend == "local"
    device = runtime.resolve_device(params.evaluate.device) if local else "remote"
    if local:
        runtime.configure_threads()
        result, validation = fewshot.run_local(cfg, Path(weights_dir), names, demos, texts, device,
                                               val["text"].tolist())
    else:
        fallback = int(train["label"].value_counts().idxmax())
        result, validation = fewshot.run_http(cfg, names, demos, texts, fallback, val["text"].tolist())

    scored = Scored(test["row"].to_numpy(), labels, result.probs, names, seconds=np.asarray(result.seconds))
    scored_validation = None if validation is None else Scored(
        val["row"].to_numpy(), val["label"].to_numpy(), validation.probs, names, seconds=np.asarray(validation.seconds))
    metrics = score_metrics(scored, params.evaluate.bootstrap_resamples, params.evaluate.calibration_bins,
                            params.base.seed)
    latency = RepeatedLatency.from_sequence(result.seconds, params.benchmark.repeats).to_dict()
    bench_device = "cuda" if device == "cuda" else "cpu"
    cost = fewshot.costs(result, cfg.price_per_1m_tokens, params.benchmark.price_per_hour[bench_device])
    total_s = float(sum(result.seconds))
    metrics.update(dataset=dataset, model=name, kind="llm", backend=cfg.backend, device=device,
                   shots_per_class=cfg.shots_per_class, test_rows=len(texts), test_rows_available=test_rows_available,
                   validation_rows=0 if validation is None else len(validation.seconds),
                   invalid_answers=result.invalid_answers, probabilities=result.probabilities,
                   tokens_processed=result.tokens_processed,
                   prompt_tokens_per_example=round(result.prompt_tokens_per_example, 1),
                   latency_ms=latency, eval_time_s=round(total_s + result.prefix_s, 3), **cost,
                   comparable_to_published=False)
    train_metrics = {"dataset": dataset, "model": name, "kind": "llm", "params": result.params,
                     "train_time_s": 0.0, "device": device, "precision": cfg.precision if local else None,
                     "seed": params.base.seed, "shots_per_class": cfg.shots_per_class,
                     "hyperparameters": {k: v for k, v in vars(cfg).items() if k != "name"}}
    variant = {"batch_size": 1, "latency_ms": latency, "samples_per_s": round(len(texts) / total_s, 3),
               "tokens_per_s": round(result.tokens_processed / (total_s + result.prefix_s), 1),
               "accuracy": metrics["accuracy"], "speedup_p50": 1.0, "speedup_p50_ci": None, "accuracy_delta": 0.0,
               "model_rss_mb": result.model_rss_mb, **cost}
    measured = {"status": "measured", "reference_variant": "fewshot", "best_variant": "fewshot",
                "variants": {"fewshot": variant}}
    if local:
        other = Unmeasured("not_measured", "the few-shot stage runs on one device").to_json()
        devices = {d: measured if d == bench_device else other for d in ("cpu", "cuda")}
        size_mb = round(sum(p.stat().st_size for p in Path(weights_dir).glob("*.safetensors")) / 2**20, 3)
    else:
        remote = Unmeasured("not_applicable", "remote endpoint; latency in the eval metrics").to_json()
        devices, size_mb = {"cpu": remote, "cuda": remote}, None
    bench = {"dataset": dataset, "model": name, "kind": "llm", "params": result.params, "train_time_s": 0.0,
             "evaluate_variant": "fewshot",
             "hardware": hardware, "size_mb": size_mb, **devices}
    return metrics, train_metrics, bench, scored, scored_validation


def served_predictions(bench: dict, scored: Scored, split: str = "test") -> ServedPredictions:
    """The scored rows of ``split`` as the ``fewshot`` variant's served predictions, with each call's time: on the
    device the benchmark report measured it on, or ``remote`` (an endpoint; the report has no device numbers)."""
    device = next((d for d in ("cpu", "cuda") if isinstance(bench.get(d), dict)
                   and bench[d].get("status") == "measured"), "remote")
    latency = None if scored.seconds is None else np.asarray(scored.seconds, dtype=np.float64) * 1000.0
    return ServedPredictions(device, "fewshot", scored.rows, scored.labels, scored.probs.argmax(axis=1),
                             scored.probs.astype(np.float32), split, latency)


def write_outputs(paths: OutputPaths, served_path: str, train_metrics_path: str, bench_path: str, metrics: dict,
                  train_metrics: dict, bench: dict, scored: Scored, calibration_bins: int,
                  scored_validation: Scored | None = None) -> None:
    """Every file of the few-shot stage, all or nothing: the eval outputs (:func:`textcls.eval.run.write_outputs`)
    with the train metrics and benchmark report, and the served predictions (:mod:`textcls.bench.served`: the test
    rows and, when some were scored, the validation rows)."""
    from textcls.bench import served
    from textcls.eval import run
    from textcls.io import atomic_outputs

    rows = [served_predictions(bench, scored)]
    if scored_validation is not None:
        rows.append(served_predictions(bench, scored_validation, "validation"))
    with atomic_outputs(*paths.all(), train_metrics_path, bench_path, served_path):
        served.write(served_path, rows)
        run.write_outputs(paths, metrics, scored, calibration_bins,
                          extra={train_metrics_path: train_metrics, bench_path: bench})
