"""Benchmark one trained model: served accuracy, latency, throughput, memory and cost per backend variant.

The method, per device (``docs/benchmark.md`` has the reasoning):

1. Every variant is prepared (cold start: prepare + first prediction), then warmed up on the
   validation split, served at batch 1; those predictions give its validation accuracy, the only
   accuracy the best variant is chosen on.
2. The test split is served at batch 1, end to end (raw text in: tokenization included), in
   ``repeats`` rounds. Each round serves a seeded random slice of the test texts with every variant,
   in a fresh seeded random order, so drift hits all variants alike. The same calls give the test
   accuracy, exactly as served (int8 accuracy on the int8 latency path), the latency of each round
   and the paired speed-up per round: medians with distribution-free 95 % intervals
   (:mod:`textcls.bench.latency`). Each variant is paired-tested against the reference (McNemar's
   exact test + a paired bootstrap interval of the accuracy difference).
3. Throughput per batch size on length-bucketed batches rotating over a seeded sample of test texts,
   tokenization included; the padding share is reported and the best batch size is the one with the
   most real tokens/s. Cost per 1,000 texts is the machine's price over that speed; both come with a 95 %
   bootstrap interval over the sweep's timed batches (:func:`textcls.bench.latency.rate_interval`).
4. Memory in a fresh process per variant (:mod:`textcls.bench.memprobe`: one probe per device imports the
   libraries once and forks a child per variant): 32 test texts at batch 1, then one batch of the largest of
   ``batch_sizes`` (fixed, so the number does not move with the best batch size).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from textcls.bench import latency, machine, memprobe
from textcls.config.params import BenchmarkParams

logger = logging.getLogger(__name__)

BOOTSTRAP_RESAMPLES = 1000


def serve(backend, encoder, texts: list[str], clock=time.perf_counter):
    """Each text as its own request: (logits [n, classes], end-to-end seconds, model-only seconds)."""
    logits, e2e, model = [], [], []
    for text in texts:
        t0 = clock()
        batch = encoder([text])
        t1 = clock()
        logits.append(np.asarray(backend(batch), dtype=np.float32)[0])
        t2 = clock()
        e2e.append(t2 - t0)
        model.append(t2 - t1)
    return np.stack(logits), e2e, model


def rounds(n: int, repeats: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices 0..n-1 in a seeded random order, cut into ``repeats`` slices of (nearly) equal size."""
    return [part for part in np.array_split(rng.permutation(n), min(repeats, n)) if part.size]


def serve_interleaved(backends: dict, encoder, texts: list[str], repeats: int, rng: np.random.Generator,
                      clock=time.perf_counter) -> dict:
    """Serve ``texts`` with every backend in interleaved rounds: ``{variant: {"logits", "e2e", "model",
    "seconds"}}``, logits and each text's end-to-end seconds (``seconds``) in input order, timings per round in
    ``e2e``/``model`` (round r holds the same texts for every variant)."""
    n = len(texts)
    out = {name: {"logits": None, "e2e": [], "model": [], "seconds": np.empty(n)} for name in backends}
    for part in rounds(n, repeats, rng):
        for name in rng.permutation(list(backends)):
            logits, e2e, model = serve(backends[name], encoder, [texts[i] for i in part], clock)
            row = out[name]
            if row["logits"] is None:
                row["logits"] = np.empty((n, logits.shape[1]), dtype=np.float32)
            row["logits"][part] = logits
            row["seconds"][part] = e2e
            row["e2e"].append(e2e)
            row["model"].append(model)
    return out


def length_buckets(lengths: list[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar token length (sorted, then cut every ``batch_size``)."""
    order = np.argsort(lengths, kind="stable")
    return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]


def measure_throughput(backend, encoder, texts: list[str], batch_sizes: list[int], min_seconds: float,
                       rng: np.random.Generator, served_preds: np.ndarray | None = None,
                       clock=time.perf_counter) -> dict:
    """Per batch size: samples/s, real tokens/s and padding share over length-bucketed batches, rotating over
    all of ``texts`` (at least once, and for ``min_seconds``), tokenization included. ``flips_vs_batch1``:
    texts whose class at this batch size differs from the batch-1 (served) one. Best: most real tokens/s."""
    lengths = [encoder.real_tokens(encoder([t])) for t in texts]
    padded_tokens = getattr(encoder, "padded_tokens", encoder.real_tokens)  # optional: inputs without padding
    sweep = {}
    for bs in batch_sizes:
        batches = length_buckets(lengths, bs)
        order = rng.permutation(len(batches))
        samples = real = padded = calls = flips = 0
        seconds = 0.0
        per_call: list[tuple[int, float]] = []  # (texts, seconds) of each call: the rate's interval
        while calls < len(batches) or seconds < min_seconds:
            idx = batches[order[calls % len(batches)]]
            t0 = clock()
            enc = encoder([texts[i] for i in idx])
            out = backend(enc)
            took = clock() - t0
            seconds += took
            per_call.append((len(idx), took))
            if served_preds is not None and calls < len(batches):
                flips += int((np.asarray(out).argmax(axis=1) != served_preds[idx]).sum())
            samples, calls = samples + len(idx), calls + 1
            real, padded = real + encoder.real_tokens(enc), padded + padded_tokens(enc)
        rates = latency.throughput(samples, real, seconds)
        ci = latency.rate_interval([n for n, _ in per_call], [t for _, t in per_call])
        sweep[str(bs)] = {"samples_per_s": round(rates["samples_per_s"], 2),
                          "samples_per_s_ci": None if ci is None else [round(ci[0], 2), round(ci[1], 2)],
                          "tokens_per_s": round(rates["tokens_per_s"], 1),
                          "padding_share": round(1 - real / padded, 4) if padded else 0.0, "batches": calls,
                          **({"flips_vs_batch1": flips} if served_preds is not None else {})}
    best = max(sweep, key=lambda b: sweep[b]["tokens_per_s"])
    return {"throughput": sweep, "best_batch_size": int(best), "samples_per_s": sweep[best]["samples_per_s"],
            "samples_per_s_ci": sweep[best]["samples_per_s_ci"],
            "tokens_per_s": sweep[best]["tokens_per_s"], "padding_share": sweep[best]["padding_share"]}


class ProbeProcess:
    """The memory probe (``python -m textcls.bench.memprobe --serve``) started ahead of time: it imports the
    libraries while this process starts up, then waits, idle, for jobs. :meth:`wait_ready` blocks until its
    imports are done (call it before anything is timed, so they never overlap a measurement)."""

    def __init__(self, model_dir: Path):
        import tempfile

        self._stderr = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: library noise can never block it
        self.proc = subprocess.Popen([sys.executable, "-m", memprobe.__name__, "--serve", str(model_dir)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self.ready = False

    def _line(self, what: str) -> str:
        line = self.proc.stdout.readline()
        if not line:  # the probe died
            self.proc.wait()
            self._stderr.seek(0)
            last = self._stderr.read().strip().splitlines()[-1:]
            raise RuntimeError(f"memory probe failed for {what}: {last}")
        return line.strip()

    def wait_ready(self) -> None:
        while not self.ready:
            self.ready = self._line("its start-up") == "ready"

    def __call__(self, job: dict) -> dict:
        self.wait_ready()
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it died: reading its (empty) answer below raises with its last error line
        while True:  # skip what libraries print; the answer is the JSON object line
            line = self._line(", ".join(job["variants"]))
            if line.startswith("{"):
                return json.loads(line)

    def close(self) -> None:
        """End the probe (stdin closed: it exits; killed if it has not within 30 s)."""
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._stderr.close()


def memory(model_dir: Path, variants: list[str], device: str, threads: int, workdir: Path, texts: list[str],
           batch_size: int, probe: ProbeProcess | None = None) -> dict:
    """``{variant: memory}``, each variant loaded and run in a fresh process (forked by one probe process that
    imported the libraries once: ``probe``, or a one-off one), so our own memory and the other variants' do not
    count. A variant that failed in its process gets ``{"error": ...}``."""
    job = {"model_dir": str(model_dir), "variants": list(variants), "device": device, "threads": threads,
           "workdir": str(workdir), "texts": texts, "batch_size": batch_size}
    if probe is not None:
        return probe(job)
    payload = json.dumps(job)
    proc = subprocess.run([sys.executable, "-m", memprobe.__name__], input=payload, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe failed for {', '.join(variants)}: "
                           f"{proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(reference: dict, row: dict, labels: np.ndarray, seed: int) -> dict:
    """The variant against the reference on the same served test predictions (variant minus reference)."""
    from textcls.eval import statistics

    ref_pred, pred = reference["logits"].argmax(axis=1), row["logits"].argmax(axis=1)
    ref_ok, ok = ref_pred == labels, pred == labels
    diff = statistics.paired_bootstrap_diff(ok, ref_ok, BOOTSTRAP_RESAMPLES, seed)
    test = statistics.mcnemar_exact(ok, ref_ok)
    return {**diff, "p_value": test["p_value"], "variant_only_right": test["a_only"],
            "reference_only_right": test["b_only"], "agreement": round(float((pred == ref_pred).mean()), 6),
            "max_abs_logit_diff": round(float(np.abs(row["logits"] - reference["logits"]).max()), 6)}


def summarize(variants: dict, max_accuracy_drop: float) -> dict:
    """Pick the best variant: the fastest (median p50) of those whose VALIDATION accuracy is at most
    ``max_accuracy_drop`` below the reference's (the first variant). Test numbers never choose.

    The first variant must have been measured (the stage re-raises its failure); variants that failed
    later (``{"error": ...}``) are kept as they are and never chosen."""
    reference = next(iter(variants))
    ref = variants[reference]
    measured = {v: row for v, row in variants.items() if "error" not in row}
    for row in measured.values():
        row["accuracy_delta"] = round(row["accuracy"] - ref["accuracy"], 6)
        row["validation_accuracy_delta"] = round(row["validation_accuracy"] - ref["validation_accuracy"], 6)
    acceptable = [v for v, r in measured.items() if r["validation_accuracy_delta"] >= -max_accuracy_drop]
    best = min(acceptable, key=lambda v: variants[v]["latency_ms"]["p50"])
    return {"status": "measured", "reference_variant": reference, "best_variant": best,
            "chosen_on": "validation accuracy (batch 1), then median p50", "variants": variants}


def benchmark_device(device: str, variants: list[str], model_dir: Path, card, data: dict, cfg: BenchmarkParams,
                     threads: int, workdir: Path, price_per_hour: float, seed: int,
                     probe: ProbeProcess | None = None, served_logits: dict | None = None) -> dict:
    """Every variant on one device, by the method in this module's docstring. With ``served_logits`` (a dict),
    each variant that is measured in the end gets its served batch-1 calls there: ``{variant: {"test": logits
    [n, classes], "test_s": seconds per text, "validation": ..., "validation_s": ...}}``, in the order of
    ``data["test"]`` / ``data["validation"]``: the predictions its reported accuracies come from."""
    from textcls.serving import inference

    rng = np.random.default_rng(seed)
    encoder = inference.make_encoder(model_dir, card)
    rows, backends = {}, {}
    for variant in variants:
        try:
            backend, prepare_s = inference.build_backend(variant, model_dir, card, device, threads, workdir)
            start = time.perf_counter()
            backend(encoder(data["validation"][:1]))
            rows[variant] = {"prepare_s": round(prepare_s, 3),
                             "cold_start_s": round(prepare_s + time.perf_counter() - start, 3)}
            backends[variant] = backend
        except Exception as err:  # e.g. an architecture the ONNX exporter cannot trace: say so, go on
            if variant == variants[0]:
                raise  # without the reference there is nothing to compare with
            logger.warning("%s failed on %s: %s", variant, device, err)
            rows[variant] = memprobe.error_row(err)
    if probe is not None:
        probe.wait_ready()  # its imports are done: nothing else runs while we time
    validation = {}
    for name in rng.permutation(list(backends)):  # warm-up, then the validation split as served
        for i in range(cfg.warmup):
            backends[name](encoder([data["validation"][i % len(data["validation"])]]))
        logits, seconds, _ = serve(backends[name], encoder, data["validation"])
        validation[name] = (logits, seconds)
        rows[name]["validation_accuracy"] = round(float((logits.argmax(axis=1) == data["validation_labels"]).mean()), 6)
    served = serve_interleaved(backends, encoder, data["test"], cfg.repeats, rng)
    ref = served[variants[0]]
    labels = data["test_labels"]
    for name, row in served.items():
        preds = row["logits"].argmax(axis=1)
        rows[name].update(batch_size=1, accuracy=round(float((preds == labels).mean()), 6),
                          latency_ms=latency.RepeatedLatency.from_repeats(row["e2e"]).to_dict(),
                          model_latency_ms=latency.RepeatedLatency.from_repeats(row["model"]).to_dict())
        speedup = latency.ratio_per_repeat(ref["e2e"], row["e2e"])
        rows[name]["speedup_p50"] = round(speedup["median"], 3)
        rows[name]["speedup_p50_ci"] = None if speedup["low"] is None else [round(speedup["low"], 3),
                                                                            round(speedup["high"], 3)]
        rows[name]["vs_reference"] = compare(ref, row, labels, seed)
    sample = data["sample"]
    for name in list(backends):
        row = rows[name]
        try:
            row.update(measure_throughput(backends[name], encoder, [data["test"][i] for i in sample], cfg.batch_sizes,
                                          cfg.throughput_min_seconds, rng, served[name]["logits"][sample].argmax(axis=1)))
            row["cost_per_1k_texts_usd"] = round(latency.cost_per_1k_texts(row["samples_per_s"], price_per_hour), 8)
            ci = row["samples_per_s_ci"]  # the cost's interval: the machine price over the rate's
            row["cost_per_1k_texts_usd_ci"] = None if ci is None or ci[0] <= 0 else [
                round(latency.cost_per_1k_texts(ci[1], price_per_hour), 8),
                round(latency.cost_per_1k_texts(ci[0], price_per_hour), 8)]
        except Exception as err:
            if name == variants[0]:
                raise
            logger.warning("%s failed on %s: %s", name, device, err)
            rows[name] = memprobe.error_row(err)
            del backends[name]
    measured = list(backends)
    backends.clear()  # free them before their memory is measured in processes of their own
    probed = memory(model_dir, measured, device, threads, workdir, [data["test"][i] for i in sample[:32]],
                    max(cfg.batch_sizes), probe=probe)
    for name in measured:
        out = probed[name]
        if "error" in out:
            if name == variants[0]:
                raise RuntimeError(f"memory probe failed for {name}: {out['error']}")
            logger.warning("%s failed on %s: %s", name, device, out["error"])
            rows[name] = out
        else:
            rows[name].update(out)
    if served_logits is not None:
        served_logits.update({name: {"test": served[name]["logits"], "test_s": served[name]["seconds"],
                                     "validation": validation[name][0], "validation_s": validation[name][1]}
                              for name in measured if "error" not in rows[name]})
    return summarize(rows, cfg.max_accuracy_drop)


def write_outputs(out: str | Path, served_out: str | Path, result: dict, served: list) -> None:
    """The stage's two outputs, all or nothing: the report (JSON) and every variant's served test predictions
    (parquet, :mod:`textcls.bench.served`)."""
    from textcls.bench import served as served_predictions
    from textcls.io import atomic_outputs, write_json

    with atomic_outputs(out, served_out):
        write_json(out, result)
        served_predictions.write(served_out, served)


def benchmark_model(dataset: str, name: str, model_dir: Path, prepared: Path, hardware: dict, train_metrics: dict,
                    cfg: BenchmarkParams, seed: int, served: list | None = None) -> dict:
    """The benchmark report of one trained model: every variant its kind runs on each device (the kind says
    which, or why none: :class:`textcls.records.Unmeasured`), with its size, parameter count, training time,
    the hardware it was measured on and the state of the machine while it ran. The memory probe process is
    started first, so that its imports overlap this process's start-up instead of adding to it.

    With ``served`` (a list), every measured variant's served test and validation predictions are appended to it
    (:class:`textcls.bench.served.ServedPredictions`, keyed by the prepared splits' row ids, with each call's
    end-to-end time)."""
    import tempfile

    from textcls import kinds
    from textcls.bench.served import ServedPredictions
    from textcls.records import ModelCard, Unmeasured

    card = ModelCard.read(model_dir)
    plan = {device: kinds.get(card.kind).variants(device, cfg) for device in ("cpu", "cuda")}
    measured = any(not isinstance(v, Unmeasured) for v in plan.values())
    probe = ProbeProcess(Path(model_dir)) if measured else None
    started = machine.snapshot()
    try:
        from textcls.data.prepared import Prepared
        from textcls.serving import runtime

        data = Prepared(prepared)
        test, val = data.frame("test"), data.frame("validation")
        rng = np.random.default_rng(seed)
        if cfg.max_served_texts is not None and cfg.max_served_texts < len(test):
            test = test.iloc[np.sort(rng.choice(len(test), cfg.max_served_texts, replace=False))]
        texts = {"test": test["text"].tolist(), "test_labels": test["label"].to_numpy(),
                 "validation": val["text"].tolist(), "validation_labels": val["label"].to_numpy(),
                 "sample": np.sort(rng.choice(len(test), min(cfg.throughput_texts, len(test)), replace=False))}
        uses_torch = getattr(kinds.get(card.kind), "uses_torch", True)
        threads = cfg.threads or runtime.configure_threads(uses_torch)
        if uses_torch:
            import torch

            torch.set_num_threads(threads)
        result = {"dataset": dataset, "model": name, "kind": card.kind, "params": train_metrics["params"],
                  # the variant the evaluate stage scores (batched): the leaderboard's `accuracy` is its
                  "evaluate_variant": getattr(kinds.get(card.kind), "reference_variant", "") or None,
                  "train_time_s": train_metrics["train_time_s"], "threads": threads, "hardware": hardware,
                  "served_test_texts": len(test),
                  "size_mb": round(sum(p.stat().st_size for p in Path(model_dir).glob("*.safetensors")) / 2**20, 3)}
        oom = runtime.out_of_memory_hint(f"Benchmarking {name} (benchmark.batch_sizes {cfg.batch_sizes})",
                                         "drop the largest of benchmark.batch_sizes in params.yaml")
        with tempfile.TemporaryDirectory(prefix="textcls-bench-") as workdir, oom:
            for device, variants in plan.items():
                if isinstance(variants, Unmeasured):
                    result[device] = variants.to_json()
                    continue
                logger.info("%s/%s on %s: %s", dataset, name, device, ", ".join(variants))
                logits = {} if served is not None else None
                result[device] = benchmark_device(device, list(variants), Path(model_dir), card, texts, cfg,
                                                  threads, Path(workdir), cfg.price_per_hour[device], seed, probe,
                                                  served_logits=logits)
                for variant, calls in (logits or {}).items():
                    for split, frame in (("test", test), ("validation", val)):
                        served.append(ServedPredictions.from_logits(
                            device, variant, frame["row"].to_numpy(), frame["label"].to_numpy(), calls[split],
                            split, calls[f"{split}_s"]))
    finally:
        if probe is not None:
            probe.close()
    result["machine_state"] = machine.during(started, machine.snapshot(), threads)
    machine.warn_if_busy(result["machine_state"], f"benchmark {dataset}/{name}")
    result["benchmark_time_s"] = result["machine_state"]["seconds"]
    return result
