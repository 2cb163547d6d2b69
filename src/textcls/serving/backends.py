"""Inference backends: one trained model run several ways, behind one call.

Each backend takes a tokenized batch (numpy arrays: ``input_ids``, ``attention_mask``
[, ``token_type_ids``]) and returns logits as a float32 numpy array, finished (GPU work
synchronised), so a wall clock around the call measures the whole inference.

Variants
- ``eager_fp32`` (CPU) / ``eager_fp16`` / ``eager_bf16`` (CUDA): PyTorch, SDPA attention
  where the architecture supports it.
- ``dynamic_int8`` (CPU): ``torch.ao.quantization.quantize_dynamic`` on ``nn.Linear``.
- ``onnx_fp32``: ``torch.onnx.export`` (TorchScript exporter, opset 17) + ONNX Runtime with
  all graph optimisations (CUDA execution provider on a GPU).
- ``onnx_int8`` (CPU): the ONNX model with ``onnxruntime.quantization.quantize_dynamic``.

They live in one registry (``VARIANTS``): a new variant is one :func:`register_variant` call, here or in a
plugin module named by ``TEXTCLS_PLUGINS`` (see :mod:`textcls.config.plugins`); params accept every registered name.
The built-in variants run the fine-tuned classifier of a model folder by default; given ``load`` (model folder ->
a torch module whose output has ``.logits``) they run that module instead, as the embedding kind's frozen encoder +
logistic-regression head does.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from pathlib import Path
from typing import Callable

import numpy as np

from textcls.errors import TextclsError
from textcls.sources import models

ONNX_OPSET = 17


class TorchBackend:
    def __init__(self, model, device: str, dtype=None):
        import torch

        self.torch, self.device = torch, device
        self.model = model.to(device=device, dtype=dtype).eval() if dtype else model.to(device).eval()

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            inputs = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
            logits = self.model(**inputs).logits.float()
            out = logits.cpu().numpy()  # .cpu() waits for the GPU
        return out


class OnnxBackend:
    def __init__(self, path: Path, device: str, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
        if provider not in ort.get_available_providers():  # never report CPU numbers as GPU ones
            raise RuntimeError(f"onnxruntime has no {provider} (install onnxruntime-gpu for GPU rows)")
        self.session = ort.InferenceSession(str(path), options, providers=[provider])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {k: v.astype(np.int64, copy=False) for k, v in batch.items() if k in self.inputs}
        return self.session.run(["logits"], feed)[0].astype(np.float32, copy=False)


def trained_classifier(model_dir: Path):
    """The model a variant runs unless it is given another ``load``: the fine-tuned classifier of ``model_dir``."""
    return models.load_trained(model_dir)[1]


def export_onnx(model_dir: Path, out: Path, input_names: list[str], load: Callable | None = None) -> Path:
    """Export a trained classifier (``load(model_dir)``, default :func:`trained_classifier`) to ONNX with dynamic
    batch and sequence axes."""
    import torch

    model = (load or trained_classifier)(model_dir)
    model.eval()
    if hasattr(model.config, "use_cache"):
        model.config.use_cache = False  # encoder-decoder classifiers (T5): no past key/values in the graph

    class LogitsOnly(torch.nn.Module):
        """Positional inputs -> the logits tensor. The model keeps returning its output object (with
        ``return_dict=False`` T5ForSequenceClassification reads ``.past_key_values`` off a tuple)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(input_names, args)), return_dict=True).logits

    dummy = tuple(torch.ones((2, 8), dtype=torch.long) for _ in input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes["logits"] = {0: "batch"}
    torch.onnx.export(LogitsOnly(model), dummy, str(out), input_names=input_names, output_names=["logits"],
                      dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False)
    return out


def quantize_onnx(fp32: Path, out: Path) -> Path:
    """Dynamic int8 (weights per output channel, activations quantised at run time)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # the quantiser logs every skipped tensor at INFO on the root logger
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)
    return out


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way to run a trained transformer for inference (a row of the benchmark)."""

    name: str
    devices: tuple[str, ...]  # "cpu" and/or "cuda"
    make: Callable  # (model_dir, device, threads, workdir, input_names[, load]) -> backend (a callable batch -> logits)
    needs_bf16: bool = False  # a CUDA variant skipped on GPUs without bf16

    @property
    def takes_loader(self) -> bool:
        """Whether ``make`` takes ``load=`` (model folder -> torch module with ``.logits``), so it can run models
        other than a fine-tuned classifier (the embedding kind's); a plugin's ``make`` may leave it out."""
        params = inspect.signature(self.make).parameters.values()
        return any(p.name == "load" or p.kind is p.VAR_KEYWORD for p in params)


VARIANTS: dict[str, Variant] = {}


def register_variant(variant: Variant) -> Variant:
    """Add an inference variant: benchmark.cpu_variants / cuda_variants may then name it."""
    if variant.name in VARIANTS:
        raise ValueError(f"inference variant {variant.name!r} is registered twice")
    VARIANTS[variant.name] = variant
    return variant


def variant_names(device: str) -> tuple[str, ...]:
    """The registered variants that run on ``device`` (cpu or cuda), in registration order."""
    from textcls.config import plugins

    plugins.load()
    return tuple(name for name, v in VARIANTS.items() if device in v.devices)


def _eager(dtype: str | None = None, quantize: bool = False):
    def make(model_dir: Path, device: str, threads: int, workdir: Path, input_names: list[str],
             load: Callable | None = None):
        import torch

        model = (load or trained_classifier)(model_dir)
        if quantize:
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        return TorchBackend(model, device, getattr(torch, dtype) if dtype else None)
    return make


def _onnx(int8: bool):
    def make(model_dir: Path, device: str, threads: int, workdir: Path, input_names: list[str],
             load: Callable | None = None):
        fp32 = workdir / "model.onnx"  # exported once per benchmark run, shared by the ONNX variants
        if not fp32.is_file():
            export_onnx(model_dir, fp32, input_names, load)
        path = fp32
        if int8:
            path = workdir / "model.int8.onnx"
            if not path.is_file():
                quantize_onnx(fp32, path)
        return OnnxBackend(path, device, threads)
    return make


register_variant(Variant("eager_fp32", ("cpu", "cuda"), _eager()))
register_variant(Variant("dynamic_int8", ("cpu",), _eager(quantize=True)))
register_variant(Variant("onnx_fp32", ("cpu", "cuda"), _onnx(int8=False)))
register_variant(Variant("onnx_int8", ("cpu",), _onnx(int8=True)))
register_variant(Variant("eager_fp16", ("cuda",), _eager("float16")))
register_variant(Variant("eager_bf16", ("cuda",), _eager("bfloat16"), needs_bf16=True))


def build(variant: str, model_dir: Path, device: str, threads: int, workdir: Path, input_names: list[str],
          load: Callable | None = None):
    """The backend for ``variant``, plus seconds spent preparing it (loading, quantising, exporting). ``load``
    (model folder -> torch module with ``.logits``) replaces the fine-tuned classifier the variant would load;
    only variants that take it (:attr:`Variant.takes_loader`) are given it."""
    start = time.perf_counter()
    spec = VARIANTS[variant]
    if load is None:
        backend = spec.make(model_dir, device, threads, workdir, input_names)
    elif spec.takes_loader:
        backend = spec.make(model_dir, device, threads, workdir, input_names, load=load)
    else:
        raise TextclsError(f"The inference variant {variant!r} runs fine-tuned classifiers only (its make() takes no "
                           f"`load`), so it cannot serve {model_dir}. Fix: give its make() a `load=None` argument "
                           "(model folder -> torch module), or leave the variant out of benchmark.*_variants.")
    return backend, time.perf_counter() - start
