"""Known-answer tests of the memory probe (textcls.bench.memprobe) and of benchmark.memory, its subprocess.

The probe's numbers are checked against allocations of known size (a backend that keeps 100 MiB, a call that
holds 150 MiB for a moment), its peak poller against a transient 200 MiB buffer, its GPU reader against a
stand-in NVML; one real fresh-process run on the tiny BERT checks the whole path. CPU-only.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

from textcls.bench import benchmark, memprobe
from textcls.serving import inference

MiB = 2**20
CARD = {"kind": "transformer", "label_names": ["neg", "pos"], "prefix": "", "max_length": 16, "params": {},
        "seed": 0}
TEXTS = ["the movie is good", "the film was bad", "a great story and fun music"]


def touched(megabytes: int) -> bytearray:
    """A buffer whose every page is written (so it is resident, not just reserved)."""
    return bytearray(b"\x01") * (megabytes * MiB)


@pytest.fixture(scope="module")
def trained_tiny_dir(tiny_bert_dir, tmp_path_factory) -> Path:
    """The tiny BERT with a textcls.json model card, like the train stage writes."""
    folder = tmp_path_factory.mktemp("memprobe") / "tiny"
    shutil.copytree(tiny_bert_dir, folder)
    (folder / "textcls.json").write_text(json.dumps(CARD), encoding="utf-8")
    return folder


@pytest.fixture
def keep_torch_threads():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- rss / trim / PeakPoller


def test_rss_mb_is_this_processs_resident_memory():
    """Check that rss_mb agrees with psutil and grows by ~100 MiB when 100 MiB are written."""
    import psutil

    assert abs(memprobe.rss_mb() - psutil.Process().memory_info().rss / MiB) < 20
    before = memprobe.rss_mb()
    buffer = touched(100)
    grown = memprobe.rss_mb() - before
    del buffer
    assert 90 <= grown <= 115


def test_peak_poller_sees_a_transient_200_mb_peak_that_the_after_value_does_not():
    """Check that a 200 MiB buffer allocated and freed inside the poller raises the peak by ~200 MiB, while the
    resident memory after it (gc + malloc_trim) is back near the start."""
    memprobe.trim()
    before = memprobe.rss_mb()
    with memprobe.PeakPoller(memprobe.rss_mb) as poller:
        buffer = touched(200)
        time.sleep(0.05)  # ~50 polls at 1 ms
        del buffer
        time.sleep(0.01)
    memprobe.trim()
    after = memprobe.rss_mb()
    assert poller.peaks[0] - before >= 180
    assert poller.peaks[0] - before <= 260
    assert after - before < 30


class Gauge:
    """A read() for PeakPoller whose value the test sets."""

    def __init__(self, value: float):
        self.value = value
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.value


def test_peak_poller_keeps_the_highest_value_of_each_read():
    """Check that each read keeps its own maximum (start value included), polled while the block runs."""
    up, down = Gauge(1.0), Gauge(10.0)
    with memprobe.PeakPoller(up, down, interval=0.001) as poller:
        up.value, down.value = 5.0, 3.0
        time.sleep(0.05)
        up.value, down.value = 2.0, 1.0
        time.sleep(0.02)
    assert poller.peaks == [5.0, 10.0]
    assert up.reads > 3  # the thread polled, not only the first and last read
    assert not poller._thread.is_alive()


def test_peak_poller_reads_once_more_on_exit_and_stops_without_waiting_an_interval():
    """Check that a value set just before the block ends counts (a final poll on exit), and that leaving the
    block does not wait for the next polling interval."""
    gauge = Gauge(1.0)
    started = time.perf_counter()
    with memprobe.PeakPoller(gauge, interval=30.0) as poller:
        gauge.value = 9.0
    assert poller.peaks == [9.0]
    assert time.perf_counter() - started < 5.0
    assert not poller._thread.is_alive() and poller._thread.daemon


def test_trim_runs_and_keeps_memory_usable():
    """Check that trim() (gc + malloc_trim) runs and leaves the process working."""
    junk = [bytes(100) for _ in range(10_000)]
    del junk
    memprobe.trim()
    assert memprobe.rss_mb() > 0


# --------------------------------------------------------------------------- GpuMemory


def fake_nvml(monkeypatch, processes, fail: bool = False) -> dict:
    calls = {}

    def init():
        if fail:
            raise RuntimeError("NVML Shared Library Not Found")

    def handle(index):
        calls["index"] = index
        return f"handle{index}"

    def running(h):
        calls["handle"] = h
        calls.setdefault("handles", []).append(h)
        return processes

    module = types.SimpleNamespace(nvmlInit=init, nvmlDeviceGetHandleByIndex=handle,
                                   nvmlDeviceGetComputeRunningProcesses=running)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    return calls


def test_gpu_memory_counts_only_this_process_from_nvml(monkeypatch):
    """Check that the NVML reader sums this process's usedGpuMemory (None as 0) on the current device, in MiB."""
    import torch

    me, other = os.getpid(), os.getpid() + 1
    procs = [types.SimpleNamespace(pid=me, usedGpuMemory=300 * MiB), types.SimpleNamespace(pid=other,
                                                                                          usedGpuMemory=999 * MiB),
             types.SimpleNamespace(pid=me, usedGpuMemory=None), types.SimpleNamespace(pid=me, usedGpuMemory=12 * MiB)]
    calls = fake_nvml(monkeypatch, procs)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    gpu = memprobe.GpuMemory()
    assert gpu.source == "nvml_process"
    assert gpu() == 312.0  # exactly: a None counts as 0 bytes
    assert calls == {"index": 1, "handle": "handle1", "handles": ["handle1", "handle1"]}  # __init__, then the read


def test_gpu_memory_falls_back_to_device_used_memory(monkeypatch):
    """Check that without NVML the reader reports the device's used memory (total - free) and says so."""
    import torch

    fake_nvml(monkeypatch, [], fail=True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (1 * 1024 * MiB, 3 * 1024 * MiB))
    gpu = memprobe.GpuMemory()
    assert gpu.source == "device_used_memory"
    assert gpu() == pytest.approx(2048.0)


# --------------------------------------------------------------------------- measure (in process)


class ListEncoder:
    """Texts in, the same texts out (what the fake backends below receive)."""

    def __init__(self):
        self.calls = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return list(texts)


def test_measure_reports_what_the_backend_keeps_and_what_it_needed_for_a_moment(monkeypatch, tmp_path,
                                                                                trained_tiny_dir,
                                                                                keep_torch_threads):
    """Check measure() against known allocations: a backend that keeps 100 MiB and holds 150 MiB more during
    each call gives model_rss_mb ~100 and peak_rss_mb ~250, over a baseline taken before loading."""
    import torch

    built, batches = {}, []

    class Backend:
        def __init__(self):
            self.weights = touched(100)

        def __call__(self, batch):
            batches.append(list(batch))
            scratch = touched(150)
            time.sleep(0.02)
            del scratch
            return np.zeros((len(batch), 2), dtype=np.float32)

    def build_backend(variant, model_dir, card, device, threads, workdir):
        built.update(variant=variant, model_dir=Path(model_dir), device=device, threads=threads, workdir=workdir)
        return Backend(), 0.0

    encoder = ListEncoder()
    monkeypatch.setattr(inference, "make_encoder", lambda model_dir, card: encoder)
    monkeypatch.setattr(inference, "build_backend", build_backend)
    job = {"model_dir": str(trained_tiny_dir), "variant": "onnx_int8", "device": "cpu", "threads": 1,
           "workdir": str(tmp_path), "texts": TEXTS, "batch_size": 5}
    out = memprobe.measure(job)
    assert built == {"variant": "onnx_int8", "model_dir": trained_tiny_dir, "device": "cpu", "threads": 1,
                     "workdir": tmp_path}
    assert torch.get_num_threads() == 1
    # each text alone, then one batch of batch_size texts cycling over them
    assert batches == [[t] for t in TEXTS] + [[TEXTS[0], TEXTS[1], TEXTS[2], TEXTS[0], TEXTS[1]]]
    assert encoder.calls[0] == TEXTS[:1]  # the tokenizer warmed before the baseline
    assert 90 <= out["model_rss_mb"] <= 120
    assert 230 <= out["peak_rss_mb"] <= 290
    assert out["baseline_rss_mb"] > 0
    assert "gpu_memory_mb" not in out and "gpu_peak_mb" not in out
    assert "fresh process" in out["method"]
    json.dumps(out)


def test_measure_on_the_tiny_model_in_process(trained_tiny_dir, tmp_path, keep_torch_threads):
    """Check measure() on the real tiny BERT: its numbers are there, and the peak is not below what it keeps."""
    job = {"model_dir": str(trained_tiny_dir), "variant": "eager_fp32", "device": "cpu", "threads": 1,
           "workdir": str(tmp_path), "texts": TEXTS, "batch_size": 2}
    out = memprobe.measure(job)
    assert set(out) == {"baseline_rss_mb", "model_rss_mb", "peak_rss_mb", "method", "model_rss_anon_mb",
                        "model_rss_file_mb", "library_pages_mb"}
    assert out["library_pages_mb"] >= 0
    assert out["model_rss_anon_mb"] + out["model_rss_file_mb"] == pytest.approx(out["model_rss_mb"], abs=1.0)
    assert out["baseline_rss_mb"] > 50  # python + torch + transformers
    assert out["peak_rss_mb"] >= out["model_rss_mb"] - 2.0
    assert out["model_rss_mb"] > -5.0 and out["peak_rss_mb"] >= 0


def test_main_reads_a_job_on_stdin_and_prints_one_json_line(monkeypatch, capsys):
    """Check that main() passes the stdin JSON to measure() and prints its result as one JSON line."""
    seen = {}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"variant": "eager_fp32", "texts": ["x"]})))

    def measure(job):
        seen["job"] = job
        return {"model_rss_mb": 1.5}

    monkeypatch.setattr(memprobe, "measure", measure)
    assert memprobe.main() == 0
    assert seen["job"] == {"variant": "eager_fp32", "texts": ["x"]}
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == ['{"model_rss_mb": 1.5}']


def test_main_with_variants_measures_each_in_measure_all(monkeypatch, capsys):
    """Check that a job naming ``variants`` goes to measure_all and its {variant: result} is the one line out."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"variants": ["a", "b"], "texts": ["x"]})))
    monkeypatch.setattr(memprobe, "measure_all", lambda job: {v: {"seen": job["texts"]} for v in job["variants"]})
    assert memprobe.main() == 0
    assert capsys.readouterr().out.strip().splitlines() == ['{"a": {"seen": ["x"]}, "b": {"seen": ["x"]}}']


KEPT = []


def _measure_in_child(job):
    """A fake measure(): the variant's memory is what it allocates and keeps; 'boom' raises, 'dies' is killed."""
    if job["variant"] == "boom":
        raise ValueError("cannot load boom\nsecond line")
    if job["variant"] == "dies":
        os.kill(os.getpid(), 9)
    memprobe.trim()
    before = memprobe.rss_mb()
    KEPT.append(touched(job["keep_mb"][job["variant"]]))  # kept for the life of this (child) process
    return {"variant": job["variant"], "pid": os.getpid(), "baseline": before, "model": memprobe.rss_mb() - before}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_measure_all_runs_each_variant_in_a_fresh_child(monkeypatch, tmp_path):
    """Check that measure_all gives every variant its own forked process: 80 MiB kept by the first variant are
    neither in the second's baseline nor in the parent; a variant that raises or is killed becomes an error row
    and the ones after it are still measured."""
    monkeypatch.setattr(memprobe, "measure", _measure_in_child)
    monkeypatch.setattr(memprobe, "_preimport", lambda model_type: None)
    parent_before = memprobe.rss_mb()
    job = {"model_dir": str(tmp_path), "variants": ["big", "boom", "dies", "small"], "keep_mb": {"big": 80, "small": 5}}
    out = memprobe.measure_all(job)
    assert list(out) == job["variants"]
    big, small = out["big"], out["small"]
    assert 75 <= big["model"] <= 90 and 3 <= small["model"] <= 12
    assert abs(small["baseline"] - big["baseline"]) < 20  # the second child does not hold the first one's 80 MiB
    assert len({big["pid"], small["pid"], os.getpid()}) == 3
    assert out["boom"] == {"error": "ValueError: cannot load boom"}
    assert out["dies"] == {"error": "memory probe child died (signal 9)"}
    assert KEPT == [] and memprobe.rss_mb() - parent_before < 20  # nothing was kept in this process


# --------------------------------------------------------------------------- benchmark.memory (subprocess)


def test_memory_sends_the_job_to_a_fresh_python_and_reads_its_last_line(monkeypatch, tmp_path):
    """Check benchmark.memory's contract with the probe: `python -m textcls.bench.memprobe`, the job as JSON on
    stdin, the last stdout line parsed (earlier lines are library noise)."""
    seen = {}

    def run(cmd, input, capture_output, text, check):
        seen.update(cmd=cmd, job=json.loads(input), flags=(capture_output, text, check))
        return subprocess.CompletedProcess(cmd, 0, stdout='warning: noise\nmore noise\n'
                                           '{"dynamic_int8": {"model_rss_mb": 12.5}, "onnx_fp32": {"error": "x"}}\n',
                                           stderr="")

    monkeypatch.setattr(benchmark.subprocess, "run", run)
    out = benchmark.memory(tmp_path / "m", ["dynamic_int8", "onnx_fp32"], "cpu", 3, tmp_path, ["a", "b"], 8)
    assert out == {"dynamic_int8": {"model_rss_mb": 12.5}, "onnx_fp32": {"error": "x"}}
    assert seen["cmd"] == [sys.executable, "-m", "textcls.bench.memprobe"]
    assert seen["flags"] == (True, True, False)  # output captured as text; a failure is read, not raised
    assert seen["job"] == {"model_dir": str(tmp_path / "m"), "variants": ["dynamic_int8", "onnx_fp32"], "device": "cpu",
                           "threads": 3, "workdir": str(tmp_path), "texts": ["a", "b"], "batch_size": 8}


def test_memory_raises_naming_the_variant_and_the_probes_last_error(monkeypatch, tmp_path):
    """Check that a failing probe raises RuntimeError with the variant and the last line of its stderr."""
    def run(cmd, input, capture_output, text, check):
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="Traceback ...\n  File x\nKeyError: 'nope'\n")

    monkeypatch.setattr(benchmark.subprocess, "run", run)
    with pytest.raises(RuntimeError, match="nope") as info:
        benchmark.memory(tmp_path, ["onnx_int8", "onnx_fp32"], "cpu", 1, tmp_path, ["a"], 1)
    assert str(info.value) == "memory probe failed for onnx_int8, onnx_fp32: [\"KeyError: 'nope'\"]"


def test_poller_thread_is_not_left_running():
    """Check that no PeakPoller thread outlives its block (daemon threads named by the poller)."""
    with memprobe.PeakPoller(lambda: 1.0) as poller:
        pass
    assert poller._thread not in threading.enumerate()


# --------------------------------------------------------------------------- known answers on faked readings


def test_rss_mb_reads_resident_pages_of_proc_self_statm(monkeypatch):
    """Check that rss_mb is the second field of /proc/self/statm (resident pages) times the page size, in MiB,
    and that psutil is only the fallback where that file cannot be opened."""
    import psutil

    opened = []

    def fake_open(path, encoding=None):
        opened.append((path, encoding))
        return io.StringIO("9999 512 77 1 0 3 0\n")

    monkeypatch.setattr(memprobe, "open", fake_open, raising=False)
    monkeypatch.setattr(psutil.Process, "memory_info", lambda self: types.SimpleNamespace(rss=3 * MiB))
    assert memprobe.rss_mb() == 512 * memprobe.PAGE / MiB
    assert opened == [("/proc/self/statm", "ascii")]

    def no_proc(path, encoding=None):
        raise FileNotFoundError(path)

    monkeypatch.setattr(memprobe, "open", no_proc, raising=False)
    assert memprobe.rss_mb() == 3.0


def test_rss_split_mb_reads_rss_anon_and_rss_file_in_mib(monkeypatch):
    """Check that rss_split_mb takes RssAnon / RssFile (kB) from /proc/self/status as {"anon", "file"} in MiB,
    ignores the other lines, and gives {} where the file cannot be read."""
    status = "Name:\tpython\nVmRSS:\t  9999 kB\nRssAnon:\t    2560 kB\nRssFile:\t    1024 kB\nRssShmem:\t  512 kB\n"
    opened = []

    def fake_open(path, encoding=None):
        opened.append((path, encoding))
        return io.StringIO(status)

    monkeypatch.setattr(memprobe, "open", fake_open, raising=False)
    assert memprobe.rss_split_mb() == {"anon": 2.5, "file": 1.0}
    assert opened == [("/proc/self/status", "ascii")]

    def no_proc(path, encoding=None):
        raise PermissionError(path)

    monkeypatch.setattr(memprobe, "open", no_proc, raising=False)
    assert memprobe.rss_split_mb() == {}


def test_rss_split_mb_of_this_process_sums_to_its_rss():
    """Check the real /proc/self/status split: anon + file is this process's resident memory (within shmem)."""
    split = memprobe.rss_split_mb()
    assert set(split) == {"anon", "file"}
    assert abs(split["anon"] + split["file"] - memprobe.rss_mb()) < 20


def test_trim_collects_garbage_and_calls_glibc_malloc_trim_0(monkeypatch):
    """Check that trim() runs gc.collect and libc.so.6's malloc_trim(0), and survives a libc without it."""
    calls = []

    class Libc:
        def malloc_trim(self, pad):
            calls.append(("malloc_trim", pad))

    def cdll(name):
        calls.append(("CDLL", name))
        return Libc()

    monkeypatch.setattr(memprobe.gc, "collect", lambda: calls.append(("gc",)))
    monkeypatch.setattr(memprobe.ctypes, "CDLL", cdll)
    memprobe.trim()
    assert calls == [("gc",), ("CDLL", "libc.so.6"), ("malloc_trim", 0)]
    monkeypatch.setattr(memprobe.ctypes, "CDLL", lambda name: types.SimpleNamespace())  # no malloc_trim
    memprobe.trim()


def test_gpu_memory_without_this_pid_in_nvml_reads_device_used_memory(monkeypatch):
    """Check that when NVML does not list this process (a container's pid namespace) the reader says so and
    reads the device's used memory instead."""
    import torch

    fake_nvml(monkeypatch, [types.SimpleNamespace(pid=os.getpid() + 1, usedGpuMemory=999 * MiB)])
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (1 * MiB, 5 * MiB))
    gpu = memprobe.GpuMemory()
    assert gpu.source == "device_used_memory" and gpu._handle is None
    assert gpu() == 4.0


def test_peak_poller_polls_every_millisecond_by_default():
    """Check the default interval: ~1 ms, so a 50 ms block is read dozens of times (not once or twice)."""
    gauge = Gauge(1.0)
    with memprobe.PeakPoller(gauge):
        time.sleep(0.05)
    assert gauge.reads >= 10


def test_preimport_imports_the_serving_stack_and_the_architectures_module(monkeypatch):
    """Check the modules imported before the baseline, the architecture's own (dashes as underscores), and that
    a missing one is skipped."""
    import importlib

    names = []

    def fake_import(name):
        names.append(name)
        if name == "onnxruntime":
            raise ImportError(name)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    memprobe._preimport("xlm-roberta")
    base = ["textcls.serving.backends", "onnxruntime", "transformers.modeling_utils",
            "transformers.models.auto.modeling_auto", "torch.ao.nn.quantized.dynamic"]
    assert names == base + ["transformers.models.xlm_roberta.modeling_xlm_roberta"]
    names.clear()
    memprobe._preimport(None)
    assert names == base


def test_model_type_from_config_json_or_none(tmp_path):
    """Check _model_type: config.json's model_type; None without config.json, with bad JSON or without the key."""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "x": 1}), encoding="utf-8")
    assert memprobe._model_type(tmp_path) == "bert"
    assert memprobe._model_type(tmp_path / "missing") is None
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    assert memprobe._model_type(tmp_path) is None
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    assert memprobe._model_type(tmp_path) is None


def _faked_measure(monkeypatch, tmp_path, job_extra: dict, gpu_reader=None, mapped=(0.0, 0.6)):
    """measure() with the memory readings replaced by gauges the fake backend moves: RSS 1000.44 MiB at the
    baseline, 1100.56 after loading (1250.17 for a moment in each call); the anon/file split before and after."""
    import torch

    rss = Gauge(1000.44)
    splits = iter([{"anon": 10.0, "file": 5.0, "shmem": 1.0}, {"anon": 40.33, "file": 5.6}])
    built, events = {}, []

    class Backend:
        def __init__(self):
            rss.value = 1100.56
            if gpu_reader is not None:
                gpu_reader.value = 300.44

        def __call__(self, batch):
            rss.value = 1250.17
            if gpu_reader is not None:
                gpu_reader.value = 700.07
            time.sleep(0.02)
            rss.value = 1100.56
            if gpu_reader is not None:
                gpu_reader.value = 300.44
            return np.zeros((len(batch), 2), dtype=np.float32)

    def build_backend(variant, model_dir, card, device, threads, workdir):
        built.update(variant=variant, device=device)
        return Backend(), 0.0

    monkeypatch.setattr(memprobe, "rss_mb", rss)
    monkeypatch.setattr(memprobe, "rss_split_mb", lambda: next(splits))
    model_files = iter(mapped)  # resident pages of the model's own files, before and after
    monkeypatch.setattr(memprobe, "mapped_rss_mb", lambda prefixes: next(model_files))
    monkeypatch.setattr(memprobe, "trim", lambda: events.append("trim"))
    monkeypatch.setattr(memprobe, "_preimport", lambda model_type: events.append(("preimport", model_type)))
    monkeypatch.setattr(inference, "make_encoder", lambda model_dir, card: ListEncoder())
    monkeypatch.setattr(inference, "build_backend", build_backend)
    if gpu_reader is not None:
        monkeypatch.setattr(torch.cuda, "init", lambda: events.append("cuda init"))
        monkeypatch.setattr(torch, "zeros", lambda *a, **k: events.append(("zeros", a, k)))
        monkeypatch.setattr(memprobe, "GpuMemory", lambda: gpu_reader)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}), encoding="utf-8")
    (tmp_path / "textcls.json").write_text(json.dumps(CARD), encoding="utf-8")
    job = {"model_dir": str(tmp_path), "threads": 1, "workdir": str(tmp_path), "texts": TEXTS, "batch_size": 2,
           "variant": "dynamic_int8", **job_extra}
    return memprobe.measure(job), built, events


def test_measure_known_answer_on_faked_readings(monkeypatch, tmp_path, keep_torch_threads):
    """Check measure()'s report to 0.1 MiB: baseline 1000.4, model 100.1 (after - baseline), peak 249.7, the
    split of what it keeps (kinds read both times only), the method; the device defaults to cpu."""
    out, built, events = _faked_measure(monkeypatch, tmp_path, {})
    assert built == {"variant": "dynamic_int8", "device": "cpu"}
    assert out == {"baseline_rss_mb": 1000.4, "model_rss_mb": 100.1, "peak_rss_mb": 249.7,
                   "method": memprobe.METHOD, "library_pages_mb": 0.0,
                   "model_rss_anon_mb": 30.3, "model_rss_file_mb": 0.6}
    assert events == [("preimport", "bert"), "trim", "trim"]


def test_measure_leaves_library_pages_out_of_model_and_peak(monkeypatch, tmp_path, keep_torch_threads):
    """Check that file-backed pages outside the model's own files (0.6 MiB more RssFile, of which 0.2 MiB are
    the model's files) are reported as library_pages_mb = 0.4 and taken off model, file share and peak."""
    out, _, _ = _faked_measure(monkeypatch, tmp_path, {}, mapped=(0.0, 0.2))
    assert (out["library_pages_mb"], out["model_rss_mb"], out["model_rss_file_mb"], out["peak_rss_mb"]) == \
        (0.4, 99.7, 0.2, 249.3)


def test_measure_on_cuda_reports_this_processs_gpu_memory(monkeypatch, tmp_path, keep_torch_threads):
    """Check that on cuda the CUDA context is made before the baseline and the GPU reader gives gpu_memory_mb
    (kept: 300.44 - 100) and gpu_peak_mb (700.07 - 100) with its source."""
    gpu = Gauge(100.0)
    gpu.source = "nvml_process"
    out, built, events = _faked_measure(monkeypatch, tmp_path, {"device": "cuda"}, gpu_reader=gpu)
    assert built["device"] == "cuda"
    assert (out["gpu_memory_mb"], out["gpu_peak_mb"], out["gpu_memory_source"]) == (200.4, 600.1, "nvml_process")
    assert (out["model_rss_mb"], out["peak_rss_mb"]) == (100.1, 249.7)
    assert events[:3] == [("preimport", "bert"), "cuda init", ("zeros", (1,), {"device": "cuda"})]


def test_mapped_rss_counts_only_mappings_under_the_given_paths(tmp_path):
    """Check mapped_rss_mb against a file this process maps and touches: 8 MiB of it resident under its folder's
    prefix, nothing under another prefix (library mappings never count for the model)."""
    import mmap

    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x01" * (8 * MiB))
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        assert sum(mapped[i] for i in range(0, len(mapped), memprobe.PAGE)) == len(mapped) // memprobe.PAGE
        assert 7.5 <= memprobe.mapped_rss_mb([str(tmp_path)]) <= 8.5
        assert memprobe.mapped_rss_mb([str(tmp_path / "elsewhere")]) == 0.0
