"""Known-answer tests of the inference backends (textcls.serving.backends) on stand-ins: a recording torch model,
a fake onnxruntime, a recording exporter and quantiser. They pin what each backend passes to the library (device,
dtype, threads, providers, opset, axes, file names) in milliseconds; tests/test_numbers.py runs the real ones.
"""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from textcls.serving import backends

# --------------------------------------------------------------------------- TorchBackend


class RecordingModel:
    """A stand-in for a transformers classifier: records .to / .eval and the inputs it is called with."""

    def __init__(self):
        self.calls = []

    def to(self, *args, **kwargs):
        self.calls.append(("to", args, kwargs))
        return self

    def eval(self):
        self.calls.append(("eval",))
        return self

    def __call__(self, **inputs):
        self.calls.append(("call", {k: (v.dtype, v.tolist()) for k, v in inputs.items()}))
        return types.SimpleNamespace(logits=torch.tensor([[1.5, -2.0]], dtype=torch.float64))


def test_torch_backend_moves_the_model_with_its_dtype_and_serves_float32_numpy():
    """Check that TorchBackend puts the model on the device (with the dtype when given) in eval mode, feeds every
    input as a tensor, and returns float32 numpy logits."""
    model = RecordingModel()
    backend = backends.TorchBackend(model, "cpu", torch.float16)
    assert model.calls == [("to", (), {"device": "cpu", "dtype": torch.float16}), ("eval",)]
    plain = RecordingModel()
    backends.TorchBackend(plain, "cpu")
    assert plain.calls == [("to", ("cpu",), {}), ("eval",)]
    assert backend.device == "cpu" and backend.model is model and backend.torch is torch
    out = backend({"input_ids": np.array([[3, 4]]), "attention_mask": np.array([[1, 0]])})
    assert model.calls[-1] == ("call", {"input_ids": (torch.int64, [[3, 4]]), "attention_mask": (torch.int64, [[1, 0]])})
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.tolist() == [[1.5, -2.0]]


def test_torch_backend_puts_the_inputs_on_its_device():
    """Check that every input tensor is moved to the backend's device (here the meta device)."""
    seen = {}

    class Model(RecordingModel):
        def __call__(self, **inputs):
            seen.update({k: v.device.type for k, v in inputs.items()})
            return types.SimpleNamespace(logits=torch.zeros((1, 2)))

    backend = backends.TorchBackend(Model(), "cpu")
    backend.device = "meta"
    backend({"input_ids": np.array([[1]]), "attention_mask": np.array([[1]])})
    assert seen == {"input_ids": "meta", "attention_mask": "meta"}


def test_torch_backend_runs_without_autograd():
    """Check that the forward pass runs in inference mode (no graph kept)."""
    seen = {}

    class Model(RecordingModel):
        def __call__(self, **inputs):
            seen["inference"] = torch.is_inference_mode_enabled()
            return super().__call__(**inputs)

    backends.TorchBackend(Model(), "cpu")({"input_ids": np.array([[1]])})
    assert seen == {"inference": True}


# --------------------------------------------------------------------------- OnnxBackend


def fake_onnxruntime(monkeypatch, providers=("CPUExecutionProvider",), inputs=("input_ids", "attention_mask")):
    """A stand-in onnxruntime module; returns the record of what the backend asked of it."""
    record = {}

    class SessionOptions:
        pass

    class Session:
        def __init__(self, path, options, providers):
            record.update(path=path, options=options, providers=providers)
            self._model_path = path

        def get_inputs(self):
            return [types.SimpleNamespace(name=n) for n in inputs]

        def run(self, outputs, feed):
            record.update(outputs=outputs, feed={k: (v.dtype, v.tolist()) for k, v in feed.items()})
            return [np.array([[0.25, 0.75]], dtype=np.float64)]

    module = types.SimpleNamespace(SessionOptions=SessionOptions, InferenceSession=Session,
                                   GraphOptimizationLevel=types.SimpleNamespace(ORT_ENABLE_ALL="all"),
                                   get_available_providers=lambda: list(providers))
    monkeypatch.setitem(sys.modules, "onnxruntime", module)
    return record


def test_onnx_backend_session_settings_and_feed(monkeypatch, tmp_path):
    """Check the ONNX Runtime session: every graph optimisation, `threads` intra-op threads and 1 inter-op, the CPU
    provider, the model path as a string; only the model's inputs are fed, as int64; float32 logits come back."""
    record = fake_onnxruntime(monkeypatch)
    backend = backends.OnnxBackend(tmp_path / "m.onnx", "cpu", 3)
    options = record["options"]
    assert (options.graph_optimization_level, options.intra_op_num_threads, options.inter_op_num_threads) == (
        "all", 3, 1)
    assert record["path"] == str(tmp_path / "m.onnx") and record["providers"] == ["CPUExecutionProvider"]
    assert backend.inputs == {"input_ids", "attention_mask"}
    out = backend({"input_ids": np.array([[5, 6]], dtype=np.int32), "attention_mask": np.array([[1, 1]]),
                   "token_type_ids": np.array([[0, 0]])})
    assert record["outputs"] == ["logits"]
    assert record["feed"] == {"input_ids": (np.int64, [[5, 6]]), "attention_mask": (np.int64, [[1, 1]])}
    assert out.dtype == np.float32 and out.tolist() == [[0.25, 0.75]]


def test_onnx_backend_uses_cuda_on_a_gpu_and_refuses_a_missing_provider(monkeypatch, tmp_path):
    """Check that cuda asks for the CUDA provider, and that without it the backend refuses (never CPU numbers as
    GPU ones), naming the provider and the package to install."""
    record = fake_onnxruntime(monkeypatch, providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    backends.OnnxBackend(tmp_path / "m.onnx", "cuda", 1)
    assert record["providers"] == ["CUDAExecutionProvider"]
    fake_onnxruntime(monkeypatch, providers=("CPUExecutionProvider",))
    with pytest.raises(RuntimeError) as info:
        backends.OnnxBackend(tmp_path / "m.onnx", "cuda", 1)
    assert str(info.value) == "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu for GPU rows)"
    fake_onnxruntime(monkeypatch, providers=("CUDAExecutionProvider",))
    with pytest.raises(RuntimeError, match="onnxruntime has no CPUExecutionProvider"):
        backends.OnnxBackend(tmp_path / "m.onnx", "cpu", 1)


# --------------------------------------------------------------------------- export / quantise


def test_export_onnx_arguments_and_the_logits_only_wrapper(monkeypatch, tmp_path):
    """Check export_onnx's call of torch.onnx.export: a wrapper returning the logits of the model called by input
    name (return_dict=True), dummy (2, 8) long inputs, dynamic batch/sequence axes, opset 17, the TorchScript
    exporter; use_cache switched off; the output path returned."""
    record = {}

    class Inner(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = types.SimpleNamespace(use_cache=True)
            self.evaluated = False

        def eval(self):
            self.evaluated = True
            return self

        def forward(self, **kwargs):
            record["inner"] = kwargs
            return types.SimpleNamespace(logits="the logits")

    inner = Inner()
    monkeypatch.setattr(backends.models, "load_trained", lambda model_dir: (record.update(model_dir=model_dir), inner))

    def export(module, args, path, **kwargs):
        record.update(module=module, args=args, path=path, kwargs=kwargs)

    monkeypatch.setattr(torch.onnx, "export", export)
    out = backends.export_onnx(tmp_path / "model", tmp_path / "m.onnx", ["input_ids", "attention_mask"])
    assert out == tmp_path / "m.onnx" and record["path"] == str(tmp_path / "m.onnx")
    assert record["model_dir"] == tmp_path / "model" and inner.evaluated and inner.config.use_cache is False
    assert [(a.shape, a.dtype, int(a.sum())) for a in record["args"]] == [((2, 8), torch.long, 16)] * 2
    assert record["kwargs"] == {"input_names": ["input_ids", "attention_mask"], "output_names": ["logits"],
                                "dynamic_axes": {"input_ids": {0: "batch", 1: "sequence"},
                                                 "attention_mask": {0: "batch", 1: "sequence"},
                                                 "logits": {0: "batch"}},
                                "opset_version": 17, "dynamo": False}
    assert record["module"].inner is inner
    assert record["module"](1, 2) == "the logits"
    assert record["inner"] == {"input_ids": 1, "attention_mask": 2, "return_dict": True}


def test_quantize_onnx_int8_per_channel_with_the_root_logger_quiet_meanwhile(monkeypatch, tmp_path):
    """Check quantize_onnx's call (paths as strings, QInt8 weights per channel), that the root logger is at WARNING
    while it runs and back at its level afterwards, also when the quantiser fails."""
    import onnxruntime.quantization as quantization

    seen = {}

    def quantize_dynamic(fp32, out, **kwargs):
        seen.update(fp32=fp32, out=out, kwargs=kwargs, level=logging.getLogger().level)

    monkeypatch.setattr(quantization, "quantize_dynamic", quantize_dynamic)
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", logging.DEBUG)
    assert backends.quantize_onnx(tmp_path / "a.onnx", tmp_path / "b.onnx") == tmp_path / "b.onnx"
    assert seen == {"fp32": str(tmp_path / "a.onnx"), "out": str(tmp_path / "b.onnx"),
                    "kwargs": {"weight_type": quantization.QuantType.QInt8, "per_channel": True},
                    "level": logging.WARNING}
    assert root.level == logging.DEBUG

    def failing(*args, **kwargs):
        raise RuntimeError("bad graph")

    monkeypatch.setattr(quantization, "quantize_dynamic", failing)
    with pytest.raises(RuntimeError, match="bad graph"):
        backends.quantize_onnx(tmp_path / "a.onnx", tmp_path / "b.onnx")
    assert root.level == logging.DEBUG


# --------------------------------------------------------------------------- the registry and the makers


def test_register_variant_refuses_a_name_twice(monkeypatch):
    """Check that a new variant is added and returned, and a second one of the same name is refused by name."""
    monkeypatch.setattr(backends, "VARIANTS", dict(backends.VARIANTS))
    variant = backends.Variant("eager_fp64", ("cpu",), lambda *a: None)
    assert backends.register_variant(variant) is variant and backends.VARIANTS["eager_fp64"] is variant
    assert "eager_fp64" in backends.variant_names("cpu") and "eager_fp64" not in backends.variant_names("cuda")
    with pytest.raises(ValueError) as info:
        backends.register_variant(backends.Variant("eager_fp64", ("cuda",), lambda *a: None))
    assert str(info.value) == "inference variant 'eager_fp64' is registered twice"


def test_variant_names_keep_registration_order():
    """Check the built-in variants per device, in the order they are registered."""
    assert backends.variant_names("cpu")[:4] == ("eager_fp32", "dynamic_int8", "onnx_fp32", "onnx_int8")
    assert backends.variant_names("cuda")[:4] == ("eager_fp32", "onnx_fp32", "eager_fp16", "eager_bf16")


def test_eager_makers_load_quantise_and_cast(monkeypatch, tmp_path):
    """Check the eager makers: the trained model loaded from model_dir; dynamic_int8 quantises its nn.Linear layers
    to qint8; eager_fp16 casts to float16; the backend is a TorchBackend on the device."""
    loaded, quantised = [], []
    model = RecordingModel()
    monkeypatch.setattr(backends.models, "load_trained", lambda model_dir: (loaded.append(model_dir), model))

    def quantize_dynamic(m, layers, dtype):
        quantised.append((m, layers, dtype))
        return m

    monkeypatch.setattr(torch.ao.quantization, "quantize_dynamic", quantize_dynamic)
    # the registered makers come from these factories (called at import); the factories themselves are tested
    plain = backends._eager()(tmp_path, "cpu", 2, tmp_path, ["input_ids"])
    assert isinstance(plain, backends.TorchBackend) and loaded == [tmp_path] and quantised == []
    assert plain.model is model and plain.device == "cpu"
    assert model.calls[-2:] == [("to", ("cpu",), {}), ("eval",)]
    int8 = backends._eager(quantize=True)(tmp_path, "cpu", 2, tmp_path, ["input_ids"])
    assert quantised == [(model, {torch.nn.Linear}, torch.qint8)] and int8.model is model
    assert model.calls[-2:] == [("to", ("cpu",), {}), ("eval",)]
    backends._eager("float16")(tmp_path, "cpu", 2, tmp_path, ["input_ids"])
    assert model.calls[-2:] == [("to", (), {"device": "cpu", "dtype": torch.float16}), ("eval",)]
    backends._eager("bfloat16")(tmp_path, "cpu", 2, tmp_path, ["input_ids"])
    assert model.calls[-2:] == [("to", (), {"device": "cpu", "dtype": torch.bfloat16}), ("eval",)]
    assert len(quantised) == 1 and loaded == [tmp_path] * 4
    registered = backends.VARIANTS
    assert registered["dynamic_int8"].devices == ("cpu",) and registered["eager_fp16"].devices == ("cuda",)


def test_onnx_makers_export_once_and_quantise_once_per_workdir(monkeypatch, tmp_path):
    """Check the ONNX makers: model.onnx is exported only when missing (shared by both variants), onnx_int8
    quantises it to model.int8.onnx only when missing, and each session gets the device and threads."""
    events = []

    def export(model_dir, out, input_names, load=None):
        events.append(("export", model_dir, out.name, input_names) + ((load,) if load else ()))
        out.write_bytes(b"fp32")

    def quantize(fp32, out):
        events.append(("quantize", fp32.name, out.name))
        out.write_bytes(b"int8")

    monkeypatch.setattr(backends, "export_onnx", export)
    monkeypatch.setattr(backends, "quantize_onnx", quantize)
    monkeypatch.setattr(backends, "OnnxBackend", lambda path, device, threads: ("session", path, device, threads))
    model_dir = tmp_path / "model"
    names = ["input_ids", "attention_mask"]
    fp32, int8 = backends._onnx(int8=False), backends._onnx(int8=True)
    assert fp32(model_dir, "cpu", 4, tmp_path, names) == ("session", tmp_path / "model.onnx", "cpu", 4)
    assert int8(model_dir, "cpu", 2, tmp_path, names) == ("session", tmp_path / "model.int8.onnx", "cpu", 2)
    assert int8(model_dir, "cpu", 2, tmp_path, names)[1] == tmp_path / "model.int8.onnx"
    assert fp32(model_dir, "cuda", 1, tmp_path, names)[1:] == (tmp_path / "model.onnx", "cuda", 1)
    assert events == [("export", model_dir, "model.onnx", names), ("quantize", "model.onnx", "model.int8.onnx")]
    assert (tmp_path / "model.onnx").read_bytes() == b"fp32" and (tmp_path / "model.int8.onnx").read_bytes() == b"int8"
    other = tmp_path / "other"
    other.mkdir()
    assert int8(model_dir, "cpu", 1, other, names)[1] == other / "model.int8.onnx"  # a fresh workdir: both again
    assert events[2:] == [("export", model_dir, "model.onnx", names), ("quantize", "model.onnx", "model.int8.onnx")]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    fp32(model_dir, "cpu", 1, fresh, names, load=len)  # a given loader reaches the export
    assert events[4:] == [("export", model_dir, "model.onnx", names, len)]


def test_makers_run_the_model_a_given_loader_returns(monkeypatch, tmp_path):
    """Check that with `load`, the eager makers and export_onnx run load(model_dir)'s module (quantised for int8)
    and never load a fine-tuned classifier; without it they load one (load_trained)."""
    monkeypatch.setattr(backends.models, "load_trained", lambda model_dir: pytest.fail("load_trained was called"))
    model, seen = RecordingModel(), []

    def load(model_dir):
        seen.append(model_dir)
        return model

    quantised, int8_of = RecordingModel(), []
    monkeypatch.setattr(torch.ao.quantization, "quantize_dynamic",
                        lambda m, layers, dtype: (int8_of.append(m), quantised)[1])
    assert backends._eager()(tmp_path, "cpu", 1, tmp_path, ["input_ids"], load=load).model is model
    assert backends._eager(quantize=True)(tmp_path, "cpu", 1, tmp_path, ["input_ids"], load=load).model is quantised
    assert int8_of == [model]
    record = {}
    monkeypatch.setattr(torch.onnx, "export", lambda module, *args, **kwargs: record.update(module=module))

    class Module(torch.nn.Module):
        config = types.SimpleNamespace()

    module = Module()
    backends.export_onnx(tmp_path, tmp_path / "m.onnx", ["input_ids"], load=lambda model_dir: module)
    assert record["module"].inner is module and seen == [tmp_path, tmp_path]


def test_takes_loader_and_build_pass_load_only_to_variants_that_take_it(monkeypatch, tmp_path):
    """Check Variant.takes_loader (a `load` parameter or **kwargs), that build passes `load` only when given, and
    that a variant without it is refused by name instead of serving a random classification head."""
    calls = []

    def plain(model_dir, device, threads, workdir, input_names):
        calls.append("plain")
        return "plain backend"

    def loader(model_dir, device, threads, workdir, input_names, load=None):
        calls.append(("loader", load))
        return "loader backend"

    def anything(*args, **kwargs):
        return "anything"

    assert all(backends.VARIANTS[v].takes_loader for v in ("eager_fp32", "dynamic_int8", "onnx_fp32", "onnx_int8",
                                                          "eager_fp16", "eager_bf16"))
    assert not backends.Variant("p", ("cpu",), plain).takes_loader
    assert backends.Variant("a", ("cpu",), anything).takes_loader
    monkeypatch.setitem(backends.VARIANTS, "plain", backends.Variant("plain", ("cpu",), plain))
    monkeypatch.setitem(backends.VARIANTS, "loader", backends.Variant("loader", ("cpu",), loader))
    assert backends.build("plain", tmp_path, "cpu", 1, tmp_path, ["input_ids"])[0] == "plain backend"
    assert backends.build("loader", tmp_path, "cpu", 1, tmp_path, ["input_ids"])[0] == "loader backend"
    assert backends.build("loader", tmp_path, "cpu", 1, tmp_path, ["input_ids"], load=len)[0] == "loader backend"
    assert calls == ["plain", ("loader", None), ("loader", len)]
    with pytest.raises(backends.TextclsError, match=r"variant 'plain' runs fine-tuned classifiers only"):
        backends.build("plain", tmp_path, "cpu", 1, tmp_path, ["input_ids"], load=len)
    assert calls == ["plain", ("loader", None), ("loader", len)]


def test_build_returns_the_backend_and_its_preparation_seconds(monkeypatch, tmp_path):
    """Check that build passes everything to the variant's maker and times it."""
    import time

    seen = []

    def make(model_dir, device, threads, workdir, input_names):
        seen.append((model_dir, device, threads, workdir, input_names))
        time.sleep(0.05)
        return "backend"

    monkeypatch.setitem(backends.VARIANTS, "slow_one", backends.Variant("slow_one", ("cpu",), make))
    backend, seconds = backends.build("slow_one", Path("m"), "cpu", 3, tmp_path, ["input_ids"])
    assert backend == "backend" and seen == [(Path("m"), "cpu", 3, tmp_path, ["input_ids"])]
    assert 0.05 <= seconds < 2.0
