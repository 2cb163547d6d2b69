"""The one-command GPU check (``make gpu-check``, ``scripts/gpu_check.py``): every GPU path of the project on the
machine it runs on, in about 10 minutes, written to one JSON + markdown report.

Runs outside the DAG and outside this project's venv: on a machine with a CUDA PyTorch stack of its own (no
network, no dvc/dvclive/datasets/pydantic), from the repository root. Sections, each row catching its own
error (a failed architecture or variant is an error row, the rest of the report stays):

- ``environment``: GPU, driver, library versions; ``peak``: the GPU's dense bf16 peak (table) and a measured
  bf16 matmul rate;
- ``train``: per reference architecture (real sizes, random init), a few hundred steps with the train stage's
  precision choice (bf16 where supported): samples/s, tokens/s, MFU, CUDA memory;
- ``inference``: every CUDA variant of the project's registry on the trained model: cold start, batch-1
  p50/p95 with the benchmark's interval method, throughput by batch size, CUDA memory (torch and NVML);
- ``determinism``: two same-seed runs, default kernels and ``train.deterministic``, against the README's
  tolerance (test accuracy within 0.5 pt).

A time budget (``--budget-s``) turns what no longer fits into ``skipped`` rows, so the report is always written.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

SECTIONS = ("environment", "peak", "train", "inference", "determinism")
LATE_VARIANTS = ("compiled_bf16",)  # compile for tens of seconds per model: measured last, after determinism
NO_CUDA = ("no CUDA device: torch {torch} sees no GPU (torch.cuda.is_available() is False). Fix: run it on a "
           "machine with an NVIDIA GPU and a CUDA build of torch, or try the CPU dry run: "
           "python3 scripts/gpu_check.py --device cpu --tiny")


@dataclasses.dataclass
class Row:
    """One measurement of one section (``name``: an architecture, ``<arch>/<variant>``, ...), or its error."""

    section: str
    name: str
    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


@dataclasses.dataclass
class Report:
    created: str
    machine: str
    settings: dict[str, Any]
    rows: list[Row] = dataclasses.field(default_factory=list)

    def errors(self) -> list[Row]:
        return [r for r in self.rows if r.error]

    def to_json(self) -> dict[str, Any]:
        sections = {s: [dataclasses.asdict(r) for r in self.rows if r.section == s] for s in SECTIONS}
        return {"created": self.created, "machine": self.machine, "settings": self.settings,
                "errors": len(self.errors()), "sections": sections}

    def markdown(self) -> str:
        lines = [f"# GPU check: {self.machine}, {self.created}", "",
                 f"{len(self.rows)} rows, {len(self.errors())} errors or skips. Settings: "
                 + ", ".join(f"{k}={v}" for k, v in self.settings.items()), ""]
        for section in SECTIONS:
            lines += [f"## {section}", "", "| name | values | error | s |", "|---|---|---|---:|"]
            for r in (r for r in self.rows if r.section == section):
                values = json.dumps(r.values, sort_keys=True).replace("|", "/")
                lines.append(f"| {r.name} | `{values}` | {r.error or ''} | {r.seconds:.1f} |")
            lines.append("")
        return "\n".join(lines)

    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", self.machine.lower()).strip("-") or "machine"
        stem = folder / f"{self.created[:10]}-{slug}"
        paths = stem.with_suffix(".json"), stem.with_suffix(".md")
        for path, text in zip(paths, (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n", self.markdown())):
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        return paths


class Runner:
    """Runs sections as rows: each catches its own exception, and nothing starts past the deadline."""

    def __init__(self, report: Report, budget_s: float):
        self.report, self.deadline = report, time.monotonic() + budget_s

    @contextlib.contextmanager
    def row(self, section: str, name: str) -> Iterator[dict | None]:
        """Yields the row's values dict to fill (None when the budget is spent: the body must skip)."""
        row = Row(section, name)
        self.report.rows.append(row)
        if time.monotonic() > self.deadline:
            row.error = "skipped: time budget spent (raise --budget-s or lower --steps)"
            yield None
            return
        start = time.perf_counter()
        try:
            yield row.values
        except Exception as err:  # noqa: BLE001 - one failed row must not lose the report
            first = (str(err).strip().splitlines() or [""])[0][:300]
            row.error = f"{type(err).__name__}: {first}"
            row.values["where"] = traceback.format_exc(limit=-2).strip().splitlines()[-3:]
            print(f"  {section}/{name}: {row.error}", file=sys.stderr, flush=True)
        finally:
            row.seconds = round(time.perf_counter() - start, 2)
        print(f"  {section}/{name}: done in {row.seconds:.1f} s", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None):
    from textcls.gpucheck.models import ARCHITECTURES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--tiny", action="store_true", help="tiny models and step counts (the CPU dry run)")
    p.add_argument("--out", default="reports/gpu", help="folder for <date>-<machine>.json/.md")
    p.add_argument("--architectures", default=",".join(ARCHITECTURES))
    p.add_argument("--steps", type=int, help="training steps per architecture (default 200; tiny 6)")
    p.add_argument("--batch-size", type=int, help="training batch size (default 32)")
    p.add_argument("--seq-len", type=int, help="tokens per training row (default 128)")
    p.add_argument("--variants", default="all", help="comma-separated inference variants (default: all registered)")
    p.add_argument("--budget-s", type=float, default=540.0, help="stop starting new rows after this many seconds")
    return p.parse_args(argv)


def settings_from(args):
    from textcls.gpucheck.sections import CheckSettings

    base = CheckSettings.tiny_cpu() if args.tiny else CheckSettings()
    over = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size), ("seq_len", args.seq_len))
            if v is not None}
    return dataclasses.replace(base, device=args.device, **over)


def environment(device: str) -> dict:
    import torch
    import transformers

    from textcls.bench import hardware

    out = {"host": platform.node(), "python": platform.python_version(), "torch": torch.__version__,
           "torch_cuda": torch.version.cuda, "transformers": transformers.__version__, "cpu": hardware.cpu_model(),
           "accelerate": hardware._version("accelerate"), "onnxruntime": hardware._version("onnxruntime"),
           "onnxruntime_gpu": hardware._version("onnxruntime-gpu"), "nvml": hardware.gpu_info(),
           "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        out.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   capability=f"{props.major}.{props.minor}", bf16=torch.cuda.is_bf16_supported(),
                   gpu_count=torch.cuda.device_count())
        with contextlib.suppress(Exception):
            import onnxruntime

            out["onnxruntime_providers"] = onnxruntime.get_available_providers()
    return out


def variant_list(device: str, wanted: str) -> list[str]:
    """The transformer kind's variants on ``device`` from the registry (bf16 ones dropped without bf16)."""
    from types import SimpleNamespace

    from textcls import kinds
    from textcls.serving import backends, compiled  # noqa: F401  (registers compiled_bf16)

    every = SimpleNamespace(cpu_variants=backends.variant_names("cpu"), cuda_variants=backends.variant_names("cuda"))
    names = kinds.get("transformer").variants(device, every)
    if wanted != "all":
        names = [v for v in names if v in wanted.split(",")]
    return list(names)


def precheck(variant: str, device: str) -> None:
    """ONNX variants on CUDA need onnxruntime-gpu: say so before spending a minute on the export."""
    if device == "cuda" and variant.startswith("onnx"):
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise RuntimeError("onnxruntime has no CUDAExecutionProvider (the CPU build is installed). Fix: "
                               "pip install -r requirements-gpu.txt (onnxruntime-gpu)")


def check(args, report: Report, runner: Runner, workdir: Path) -> None:
    from textcls.gpucheck import sections
    from textcls.gpucheck.models import REFERENCE, measured_matmul_peak, table_peak

    settings = settings_from(args)
    device = settings.device
    peaks: dict[str, float | None] = {}
    with runner.row("environment", device) as values:
        if values is not None:
            values.update(environment(device))
    with runner.row("peak", device) as values:
        if values is not None:
            peaks["table"] = table_peak(report.machine) if device == "cuda" else None
            size, iterations = (8192, 50) if device == "cuda" else (256, 5)
            peaks["measured"] = measured_matmul_peak(device, size, iterations)
            values.update(table_bf16_tflops=peaks["table"] and peaks["table"] / 1e12,
                          measured_matmul_tflops=round(peaks["measured"] / 1e12, 3),
                          measured_dtype="bf16" if device == "cuda" else "fp32", matmul_size=size)
    variants = variant_list(device, args.variants)
    late, folders = [], {}
    for name in args.architectures.split(","):
        arch = REFERENCE[name]
        with runner.row("train", name) as values:
            if values is None:
                continue
            if device == "cuda":
                import torch

                torch.cuda.reset_peak_memory_stats()
            model, trained, steps_per_s = sections.train(arch, settings, workdir / name)
            values.update(trained)
            values.update(sections.add_mfu(model, arch, settings, steps_per_s, peaks))
            if device == "cuda":
                values["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            values["eval_accuracy"] = round(sections.accuracy_and_logits(model, arch, settings)[0], 4)
            folders[name] = (sections.save_for_serving(model.cpu(), arch, workdir / name / "model", settings.seq_len),
                             model.config.vocab_size)
            del model
            sections._free(device)
        for variant in variants:
            if variant in LATE_VARIANTS:
                late.append((name, variant))
                continue
            _variant_row(runner, name, variant, folders, arch, settings, workdir)
    for deterministic in (False, True):
        arch = REFERENCE[settings.determinism_arch]
        with runner.row("determinism", f"{arch.name}/{'deterministic' if deterministic else 'default'}") as values:
            if values is not None:
                values.update(sections.determinism(arch, settings, workdir / "determinism", deterministic))
    for name, variant in late:
        _variant_row(runner, name, variant, folders, REFERENCE[name], settings, workdir)


def _variant_row(runner: Runner, name: str, variant: str, folders: dict, arch, settings, workdir: Path) -> None:
    from textcls.gpucheck import sections

    with runner.row("inference", f"{name}/{variant}") as values:
        if values is None:
            return
        precheck(variant, settings.device)
        if name not in folders:
            raise RuntimeError(f"no trained {name} model to serve (its train row failed)")
        model_dir, vocab = folders[name]
        work = workdir / name / "serve"
        work.mkdir(parents=True, exist_ok=True)
        values.update(sections.benchmark_variant(variant, model_dir, arch, settings, work, vocab))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts: train.deterministic needs it
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.tiny:  # tiny models gain nothing from more threads; on a busy machine more threads only spin
        os.environ.setdefault("TEXTCLS_THREADS", "1")
    if args.device == "cuda":
        from textcls.serving import gpus

        gpus.assign_one("gpu-check")  # several GPUs: one free GPU of its own (and no DataParallel)
    import torch

    from textcls.serving import runtime

    runtime.configure_threads()
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"error: {NO_CUDA.format(torch=torch.__version__)}", file=sys.stderr)
        return 2
    machine = torch.cuda.get_device_name(0) if args.device == "cuda" else f"cpu {platform.machine()}"
    settings = settings_from(args)
    report = Report(datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), machine,
                    {**dataclasses.asdict(settings), "architectures": args.architectures, "variants": args.variants,
                     "budget_s": args.budget_s})
    runner = Runner(report, args.budget_s)
    print(f"GPU check on {machine}: {args.architectures} ({'tiny' if args.tiny else 'real sizes'})",
          file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="textcls-gpu-check-") as tmp:
        try:
            check(args, report, runner, Path(tmp))
        finally:
            paths = report.write(Path(args.out))
            print(f"report: {paths[0]} and {paths[1]} ({len(report.errors())} error/skipped rows)", flush=True)
    return 0
