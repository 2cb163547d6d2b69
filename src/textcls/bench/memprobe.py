"""Peak memory of one backend variant, measured in a fresh process (``python -m textcls.bench.memprobe``).

Reads ``{"model_dir", "variant", "threads", "workdir", "texts", "batch_size"}`` as JSON on stdin,
loads the variant, predicts each text alone and then one batch, and prints one JSON line:
``baseline_rss_mb`` (resident memory after imports, before loading), ``rss_mb`` (resident
memory after loading and predicting), ``model_rss_mb`` (their difference: what the model
and its runtime added) and ``peak_rss_mb`` (the process's high-water mark, imports included).
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def main() -> int:
    job = json.loads(sys.stdin.read())
    import torch  # noqa: F401  (imports count in the baseline, not in the model)

    from textcls.records import ModelCard
    from textcls.serving import inference

    baseline = rss_mb()
    model_dir, workdir = Path(job["model_dir"]), Path(job["workdir"])
    card = ModelCard.read(model_dir)
    torch.set_num_threads(job["threads"])
    encoder = inference.make_encoder(model_dir, card)
    backend, _ = inference.build_backend(job["variant"], model_dir, card, "cpu", job["threads"], workdir)
    for text in job["texts"]:
        backend(encoder([text]))
    texts = job["texts"]
    backend(encoder([texts[i % len(texts)] for i in range(job["batch_size"])]))
    after = rss_mb()
    print(json.dumps({"baseline_rss_mb": round(baseline, 1), "rss_mb": round(after, 1),
                      "model_rss_mb": round(after - baseline, 1), "peak_rss_mb": round(max_rss_mb(), 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
