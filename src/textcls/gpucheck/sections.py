"""The measurements of the GPU check, one function per section: training (samples/s, MFU), inference variants
(batch-1 latency, throughput by batch size, memory) and determinism (two same-seed runs).

Everything goes through the project's own code where the GPU machine's stack can import it: the precision
choice (:func:`textcls.serving.runtime.resolve_precision`), the inference variants of the transformer kind
(:mod:`textcls.serving.backends`, the registry the benchmark stage uses), the latency statistics
(:class:`textcls.bench.latency.RepeatedLatency`) and the memory readers of :mod:`textcls.bench.memprobe`.
Training uses the Hugging Face Trainer with the train stage's precision flags, on a torch dataset (no
``datasets``). Nothing here imports dvc, dvclive, datasets or pydantic.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from pathlib import Path

import numpy as np

from textcls.gpucheck.models import (Architecture, SyntheticTask, batch_inputs, forward_flops, mfu, synchronize,
                                     training_flops_per_step)


@dataclasses.dataclass(frozen=True)
class CheckSettings:
    """What the check runs: sizes, step counts, batch sizes (defaults fit ~10 min on one large GPU)."""

    device: str = "cuda"
    tiny: bool = False
    steps: int = 200
    warmup_steps: int = 20  # steps left out of samples/s (CUDA kernels, allocator, autotuning)
    batch_size: int = 32
    seq_len: int = 128
    lr: float = 1e-4  # random init: higher than fine-tuning's 2e-5, so 200 steps learn the synthetic task
    seed: int = 42
    eval_rows: int = 1024
    latency_calls: int = 200
    latency_repeats: int = 10
    latency_warmup: int = 10
    batch_sizes: tuple[int, ...] = (1, 8, 32, 128)
    throughput_calls: int = 10
    determinism_arch: str = "distilbert"
    determinism_steps: int = 60
    tolerance_pt: float = 0.5  # the README's tolerance for two same-seed GPU runs (test accuracy)

    @classmethod
    def tiny_cpu(cls) -> "CheckSettings":
        return cls(device="cpu", tiny=True, steps=4, warmup_steps=1, batch_size=4, seq_len=16, eval_rows=32,
                   latency_calls=8, latency_repeats=2, latency_warmup=1, batch_sizes=(1, 4), throughput_calls=2,
                   determinism_steps=3)


class _Rows:
    """A torch dataset of synthetic rows, as the Trainer's default collator stacks them."""

    def __init__(self, arch: Architecture, ids: np.ndarray, labels: np.ndarray):
        import torch

        self.items = {k: torch.from_numpy(v) for k, v in batch_inputs(arch, ids).items()}
        self.items["labels"] = torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.items["labels"])

    def __getitem__(self, i: int) -> dict:
        return {k: v[i] for k, v in self.items.items()}


def _step_timer(device: str, skip: int):
    """A Trainer callback timing the steps after the first ``skip`` (GPU synchronised at both ends)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        started = ended = None
        timed = 0

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == skip:
                synchronize(device)
                self.started = time.perf_counter()
            elif state.global_step > skip:
                self.timed = state.global_step - skip

        def on_train_end(self, args, state, control, **kwargs):
            synchronize(device)
            self.ended = time.perf_counter()

    return StepTimer()


def train(arch: Architecture, settings: CheckSettings, workdir: Path, steps: int | None = None,
          deterministic: bool = False):
    """Train ``arch`` from random init for ``steps`` on the synthetic task with the precision the train stage
    would choose; returns ``(model, values, steps per second after the warm-up steps)``."""
    import torch
    from transformers import Trainer, TrainingArguments

    from textcls.serving import runtime

    steps = steps or settings.steps
    precision = runtime.resolve_precision("auto", settings.device)
    model = arch.build(settings.tiny, num_labels=4, seed=settings.seed)
    task = SyntheticTask(model.config.vocab_size, settings.seq_len, seed=settings.seed)
    ids, labels = task.rows(steps * settings.batch_size, split_seed=1, eos_id=arch.eos_id)
    args = TrainingArguments(
        output_dir=str(workdir / "trainer"), max_steps=steps, per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.lr, warmup_steps=max(1, steps // 10), weight_decay=0.01, max_grad_norm=1.0,
        seed=settings.seed, data_seed=settings.seed, bf16=precision == "bf16", fp16=precision == "fp16",
        use_cpu=settings.device == "cpu", save_strategy="no", logging_strategy="no", report_to=[],
        disable_tqdm=True, dataloader_num_workers=0, full_determinism=deterministic)
    skip = min(settings.warmup_steps, steps - 1)
    timer = _step_timer(settings.device, skip)
    trainer = Trainer(model=model, args=args, train_dataset=_Rows(arch, ids, labels), callbacks=[timer])
    result = trainer.train()
    if deterministic:  # full_determinism switched torch to deterministic kernels process-wide: switch back
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    model = trainer.model.eval()
    seconds = timer.ended - timer.started
    steps_per_s = timer.timed / seconds
    values = {"precision": precision, "steps": steps, "timed_steps": timer.timed, "batch_size": settings.batch_size,
              "seq_len": settings.seq_len, "train_loss": round(float(result.training_loss), 4),
              "samples_per_s": round(steps_per_s * settings.batch_size, 2),
              "tokens_per_s": round(steps_per_s * settings.batch_size * settings.seq_len, 1),
              "params": int(model.num_parameters()), "deterministic": deterministic}
    return model, values, steps_per_s


def add_mfu(model, arch: Architecture, settings: CheckSettings, steps_per_s: float, peaks: dict) -> dict:
    """FLOPs per step (3x a counted forward pass) and MFU against each known peak (``{"table": .., ...}``)."""
    import torch

    ids, _ = SyntheticTask(model.config.vocab_size, settings.seq_len, seed=settings.seed).rows(
        settings.batch_size, split_seed=2, eos_id=arch.eos_id)
    inputs = {k: torch.from_numpy(v).to(settings.device) for k, v in batch_inputs(arch, ids).items()}
    per_step = training_flops_per_step(forward_flops(model, inputs))
    out = {"train_flops_per_step": per_step, "model_tflops_per_s": round(per_step * steps_per_s / 1e12, 3)}
    for source, peak in peaks.items():
        if peak:
            out[f"mfu_vs_{source}_peak"] = round(mfu(per_step, steps_per_s, peak), 4)
    return out


def accuracy_and_logits(model, arch: Architecture, settings: CheckSettings) -> tuple[float, np.ndarray]:
    """Accuracy and fp32 logits on held-out synthetic rows (the same rows for every run)."""
    import torch

    task = SyntheticTask(model.config.vocab_size, settings.seq_len, seed=settings.seed)
    ids, labels = task.rows(settings.eval_rows, split_seed=3, eos_id=arch.eos_id)
    model = model.float().eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(ids), 64):
            inputs = {k: torch.from_numpy(v).to(settings.device)
                      for k, v in batch_inputs(arch, ids[start:start + 64]).items()}
            out.append(model(**inputs).logits.float().cpu().numpy())
    logits = np.concatenate(out)
    return float((logits.argmax(1) == labels).mean()), logits


def save_for_serving(model, arch: Architecture, folder: Path, max_length: int) -> Path:
    """The trained model as a model folder the serving code loads (safetensors, a stand-in tokenizer that
    names the model's inputs, the model card)."""
    from tokenizers import Tokenizer, models as tok_models
    from transformers import PreTrainedTokenizerFast

    from textcls.records import ModelCard

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(tok_models.WordLevel({"<pad>": 0, "<unk>": 1}, "<unk>")),
                                  pad_token="<pad>", unk_token="<unk>", model_input_names=list(arch.input_names))
    tok.save_pretrained(str(folder))
    ModelCard(kind="transformer", label_names=[f"class{i}" for i in range(model.config.num_labels)],
              max_length=max_length, source=f"random-init:{arch.name}").write(folder)
    return folder


class MemoryMeter:
    """Memory while a variant is built and serves: torch's CUDA allocator counters (max allocated, reserved),
    NVML per-process GPU memory (memprobe.GpuMemory, which also sees ONNX Runtime's CUDA memory) polled every
    ms, and on the CPU the resident set (memprobe.rss_mb)."""

    def __init__(self, device: str):
        from textcls.bench import memprobe

        self.device, self.memprobe = device, memprobe
        if device == "cuda":
            import torch

            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self.torch, self.gpu = torch, memprobe.GpuMemory()
            self.reads = (memprobe.rss_mb, self.gpu)
        else:
            self.reads = (memprobe.rss_mb,)
        self.baseline = [r() for r in self.reads]
        self.poller = memprobe.PeakPoller(*self.reads)

    def __enter__(self):
        self.poller.__enter__()
        return self

    def __exit__(self, *exc):
        self.poller.__exit__(*exc)

    def values(self) -> dict:
        now = [r() for r in self.reads]
        out = {"rss_mb": round(now[0] - self.baseline[0], 1),
               "peak_rss_mb": round(self.poller.peaks[0] - self.baseline[0], 1)}
        if self.device == "cuda":
            torch = self.torch
            out.update(cuda_max_allocated_mb=round(torch.cuda.max_memory_allocated() / 2**20, 1),
                       cuda_allocated_mb=round(torch.cuda.memory_allocated() / 2**20, 1),
                       cuda_max_reserved_mb=round(torch.cuda.max_memory_reserved() / 2**20, 1),
                       gpu_memory_mb=round(now[1] - self.baseline[1], 1),
                       gpu_peak_mb=round(self.poller.peaks[1] - self.baseline[1], 1),
                       gpu_memory_source=self.gpu.source)
        return out


def benchmark_variant(variant: str, model_dir: Path, arch: Architecture, settings: CheckSettings, workdir: Path,
                      vocab_size: int) -> dict:
    """One inference variant of the project's registry: cold start, batch-1 p50/p95 with the project's interval
    method, throughput by batch size, memory."""
    from textcls.bench import latency
    from textcls.serving import backends
    from textcls.threads import thread_setting

    rng = np.random.default_rng(settings.seed)
    def random_batch(rows: int, length: int) -> dict:
        ids = rng.integers(10, vocab_size, size=(rows, length))
        if arch.eos_id is not None:
            ids[:, -1] = arch.eos_id
        return batch_inputs(arch, ids)

    lengths = rng.integers(max(2, settings.seq_len // 8), settings.seq_len + 1, size=64)
    singles = [random_batch(1, int(n)) for n in lengths]  # batch-1 requests of realistic, varying lengths
    with MemoryMeter(settings.device) as meter:
        backend, prepare_s = backends.build(variant, model_dir, settings.device, thread_setting(), workdir,
                                            list(arch.input_names))
        seconds = latency.measure(lambda i: backend(singles[i % len(singles)]), settings.latency_warmup,
                                  settings.latency_calls, 0.0)
        stats = latency.RepeatedLatency.from_sequence(seconds, settings.latency_repeats)
        throughput = {}
        for size in settings.batch_sizes:
            batch = random_batch(size, settings.seq_len)
            backend(batch)  # warm-up at this shape
            start = time.perf_counter()
            for _ in range(settings.throughput_calls):
                backend(batch)
            took = time.perf_counter() - start
            speed = latency.throughput(size * settings.throughput_calls,
                                       size * settings.seq_len * settings.throughput_calls, took)
            throughput[str(size)] = {k: round(v, 1) for k, v in speed.items()}
    memory = meter.values()
    backend = None  # noqa: F841  (free the model before the next variant)
    _free(settings.device)
    return {"prepare_s": round(prepare_s, 3), "batch1_ms": stats.to_dict(), "throughput": throughput,
            "memory": memory}


def _free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def state_diff(a: dict, b: dict) -> float:
    """Largest absolute difference between two state dicts' tensors (same keys)."""
    return max(float((a[k].float() - b[k].float()).abs().max()) if a[k].numel() else 0.0 for k in a)


def determinism(arch: Architecture, settings: CheckSettings, workdir: Path, deterministic: bool) -> dict:
    """Two runs with the same seed and data: largest weight and logit differences, accuracies and their gap in
    points, against the README's tolerance."""
    runs = []
    for i in range(2):
        model, values, _ = train(arch, settings, workdir / f"det{i}", steps=settings.determinism_steps,
                                 deterministic=deterministic)
        acc, logits = accuracy_and_logits(model, arch, settings)
        runs.append(({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, logits, acc))
        del model
        _free(settings.device)
    (w0, l0, a0), (w1, l1, a1) = runs
    gap = abs(a0 - a1) * 100
    return {"architecture": arch.name, "deterministic": deterministic, "steps": settings.determinism_steps,
            "precision": values["precision"], "max_weight_diff": state_diff(w0, w1),
            "max_logit_diff": float(np.abs(l0 - l1).max()), "prediction_agreement": float((l0.argmax(1) == l1.argmax(1)).mean()),
            "accuracy": [round(a0, 4), round(a1, 4)], "accuracy_gap_pt": round(gap, 3),
            "tolerance_pt": settings.tolerance_pt, "within_tolerance": gap <= settings.tolerance_pt,
            "bitwise_equal": bool(state_diff(w0, w1) == 0.0 and np.array_equal(l0, l1))}
