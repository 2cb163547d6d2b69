"""Memory of backend variants, each measured in a fresh process (``python -m textcls.bench.memprobe``).

Reads ``{"model_dir", "variants", "device", "threads", "workdir", "texts", "batch_size"}`` as JSON on stdin
and prints one JSON line, ``{variant: result}``. The probe imports the libraries once (torch, transformers'
model classes, ONNX Runtime, the serving code), then forks one child per variant, so each variant starts in
a fresh address space holding the libraries and nothing of another variant, without paying seconds of
imports per variant. The child collects garbage and hands freed heap back to the OS (``gc.collect`` +
glibc ``malloc_trim``) and takes that as its baseline. It then loads the variant and predicts each text
alone and then one batch, while a thread polls the resident set every millisecond. Reported, in MiB over
the baseline:

- ``model_rss_mb``: resident memory after loading and predicting, garbage collected and trimmed: what
  serving the model keeps (freed fp32 weights that the allocator kept no longer count);
- ``model_rss_anon_mb`` / ``model_rss_file_mb``: that memory split into the process's own heap and pages of
  the model's memory-mapped files (eager fp32 serves the safetensors weights in place, so only the pages it
  touched are resident, file-backed and shareable; a quantised copy lives on the heap). Pages of library
  files (torch's, ONNX Runtime's code) first touched while loading are ``library_pages_mb`` and count for
  neither number nor the peak: the model's files are told apart from the libraries' by their paths in
  ``/proc/self/smaps``;
- ``peak_rss_mb``: the highest resident memory polled during load and inference (e.g. ``dynamic_int8``
  holds the fp32 weights while it quantises them, so its peak can exceed fp32's);
- on ``cuda``: ``gpu_memory_mb`` / ``gpu_peak_mb``, this process's GPU memory from NVML, so ONNX Runtime's
  CUDA allocations count too (``gpu_memory_source`` says how it was read).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import threading
from pathlib import Path

METHOD = "fresh process per variant (forked from a probe holding only the libraries), gc + malloc_trim, RSS polled every 1 ms"
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    """Resident set size of this process (from /proc/self/statm: cheap enough to poll)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * PAGE / 2**20
    except OSError:  # not Linux
        import psutil

        return psutil.Process().memory_info().rss / 2**20


def rss_split_mb() -> dict:
    """Resident memory by kind (Linux): ``anon`` (the process's own heap: copied or computed weights) and
    ``file`` (pages of memory-mapped files, e.g. safetensors weights served in place: shareable, reclaimable)."""
    out = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(("RssAnon:", "RssFile:")):
                    key, value = line.split(":", 1)
                    out[key[3:].lower()] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def mapped_rss_mb(prefixes: list[str]) -> float | None:
    """Resident MiB of this process's file mappings whose path starts with one of ``prefixes`` (Linux
    ``/proc/self/smaps``; None elsewhere): the pages of the model's own files (safetensors, ONNX) in memory."""
    try:
        with open("/proc/self/smaps", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    total, current = 0, False
    for line in text.splitlines():
        fields = line.split(None, 5)
        if fields and not fields[0].endswith(":"):  # a mapping's header: range perms offset dev inode [path]
            current = len(fields) == 6 and fields[5].startswith(tuple(prefixes))
        elif current and fields[0] == "Rss:":
            total += int(fields[1])
    return total / 1024


def trim() -> None:
    """Collect garbage and return freed heap pages to the OS (glibc only; elsewhere gc alone)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class GpuMemory:
    """This process's GPU memory in MiB: NVML's per-process figure when pynvml is installed, else the
    device's used memory (which also counts other processes)."""

    def __init__(self):
        self.source, self._handle = "nvml_process", None
        try:
            import pynvml

            pynvml.nvmlInit()
            import torch

            self._nvml = pynvml
            handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
            # the CUDA context exists already: if NVML does not list our pid (a container's pid namespace),
            # per-process numbers are not readable here
            if any(p.pid == os.getpid() for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)):
                self._handle = handle
            else:
                self.source = "device_used_memory"
        except Exception:  # no pynvml or no driver access: device-wide used memory
            self.source = "device_used_memory"

    def __call__(self) -> float:
        if self._handle is not None:
            procs = self._nvml.nvmlDeviceGetComputeRunningProcesses(self._handle)
            return sum((p.usedGpuMemory or 0) for p in procs if p.pid == os.getpid()) / 2**20
        import torch

        free, total = torch.cuda.mem_get_info()
        return (total - free) / 2**20


class PeakPoller:
    """Polls ``read()`` every ``interval`` seconds in a thread; ``peak`` is the highest value seen."""

    def __init__(self, *reads, interval: float = 0.001):
        self.reads, self.interval = reads, interval
        self.peaks = [r() for r in reads]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _poll(self) -> None:
        self.peaks = [max(p, r()) for p, r in zip(self.peaks, self.reads)]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._poll()


def _preimport(model_type: str | None) -> None:
    """Import what any variant may need before the baseline, so libraries count for no variant: the serving
    code, ONNX Runtime, transformers' model base classes and the architecture's own modeling module."""
    from textcls.warm import import_each

    names = ["textcls.serving.backends", "onnxruntime", "transformers.modeling_utils",
             "transformers.models.auto.modeling_auto", "torch.ao.nn.quantized.dynamic"]
    if "torch" not in sys.modules:  # a kind that runs without torch (TF-IDF): none of these libraries
        names = []
    if model_type:
        module = model_type.replace("-", "_")
        names.append(f"transformers.models.{module}.modeling_{module}")
    import_each(names)


def _model_type(model_dir: Path) -> str | None:
    try:
        return json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return None  # not a transformers model (e.g. TF-IDF)


def _uses_torch(model_dir: Path) -> bool:
    """Whether the model's kind runs on torch (TF-IDF does not: its probe never imports it). A folder without a
    readable model card counts as torch: the variant's own load then reports what is wrong with it."""
    from textcls import kinds
    from textcls.errors import TextclsError
    from textcls.records import ModelCard

    try:
        return getattr(kinds.get(ModelCard.read(model_dir).kind), "uses_torch", True)
    except TextclsError:
        return True


def measure(job: dict) -> dict:
    from textcls.records import ModelCard
    from textcls.serving import inference

    device = job.get("device", "cpu")
    model_dir, workdir = Path(job["model_dir"]), Path(job["workdir"])
    card = ModelCard.read(model_dir)
    if _uses_torch(model_dir) or device == "cuda":
        import torch

        torch.set_num_threads(job["threads"])
    encoder = inference.make_encoder(model_dir, card)
    texts = job["texts"]
    encoder(texts[:1])  # the tokenizer's lazy state belongs to the baseline, not to the model
    _preimport(_model_type(model_dir))
    gpu = None
    if device == "cuda":
        import torch

        torch.cuda.init()
        torch.zeros(1, device="cuda")  # the CUDA context is the baseline too
        gpu = GpuMemory()
    trim()
    reads = (rss_mb,) if gpu is None else (rss_mb, gpu)
    baseline = [r() for r in reads]
    split_before = rss_split_mb()
    own_files = [str(model_dir.resolve()), str(workdir.resolve())]  # the model's files: weights, ONNX exports
    files_before = mapped_rss_mb(own_files)
    with PeakPoller(*reads) as poller:
        backend, _ = inference.build_backend(job["variant"], model_dir, card, device, job["threads"], workdir)
        for text in texts:
            backend(encoder([text]))
        backend(encoder([texts[i % len(texts)] for i in range(job["batch_size"])]))
    trim()
    after = [r() for r in reads]
    split_after = rss_split_mb()
    files_after = mapped_rss_mb(own_files)
    # pages of library files (torch's and ONNX Runtime's code and data) first touched while loading and predicting
    # are the libraries', not the model's: a forked child re-faults its parent's code pages, and how many get
    # mapped depends on the page cache. Only the model's own files count among file-backed pages.
    library = 0.0
    if "file" in split_before and "file" in split_after and files_before is not None and files_after is not None:
        library = max((split_after["file"] - split_before["file"]) - (files_after - files_before), 0.0)
    model = after[0] - baseline[0] - library
    out = {"baseline_rss_mb": round(baseline[0], 1), "model_rss_mb": round(model, 1),
           "peak_rss_mb": round(max(poller.peaks[0] - baseline[0] - library, model), 1),
           "library_pages_mb": round(library, 1), "method": METHOD}
    for kind in sorted(set(split_before) & set(split_after)):
        delta = split_after[kind] - split_before[kind]
        out[f"model_rss_{kind}_mb"] = round(delta - library if kind == "file" else delta, 1)
    if gpu is not None:
        out.update(gpu_memory_mb=round(after[1] - baseline[1], 1), gpu_peak_mb=round(poller.peaks[1] - baseline[1], 1),
                   gpu_memory_source=gpu.source)
    del backend
    return out


def error_row(err: BaseException) -> dict:
    """A failed variant's row: ``{"error": "Type: first line of the message"}`` (300 characters at most)."""
    return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"}


def _import_libraries(model_dir: str) -> None:
    """What every variant's child needs, imported in the probe before it forks (no torch op, thread pool or CUDA
    context is created by importing, so forking after it is safe). torch only for a kind that uses it."""
    if _uses_torch(Path(model_dir)):
        import torch  # noqa: F401

    import textcls.serving.inference  # noqa: F401
    _preimport(_model_type(Path(model_dir)))


def _in_child(job: dict) -> dict:
    """Fork, run ``measure(job)`` in the child, return its result (or ``{"error"}``) to the parent."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, write one JSON document, leave without running the parent's cleanup
        os.close(read_fd)
        code = 0
        try:
            out = measure(job)
        except BaseException as err:  # noqa: BLE001 - every failure goes back to the parent as a row
            out, code = error_row(err), 1
        try:
            with os.fdopen(write_fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(out))
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, encoding="utf-8") as f:
        text = f.read()
    _, status = os.waitpid(pid, 0)
    if not text:  # killed before it could answer (e.g. by the OOM killer or a crash in native code)
        return {"error": f"memory probe child died ({_exit_reason(status)})"}
    return json.loads(text)


def _exit_reason(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit code {os.WEXITSTATUS(status) if os.WIFEXITED(status) else status}"


def measure_all(job: dict) -> dict:
    """``{variant: measure(...)}`` for ``job["variants"]``, each in a child forked from this process after
    :func:`_import_libraries`.
    Without ``os.fork`` (not POSIX) each variant is measured in a process of its own."""
    variants = job["variants"]
    single = {k: v for k, v in job.items() if k != "variants"}
    if not hasattr(os, "fork"):
        import subprocess

        out = {}
        for variant in variants:
            proc = subprocess.run([sys.executable, "-m", __name__], input=json.dumps({**single, "variant": variant}),
                                  capture_output=True, text=True, check=False)
            lines = proc.stdout.strip().splitlines()
            out[variant] = json.loads(lines[-1]) if proc.returncode == 0 and lines else \
                {"error": (proc.stderr.strip().splitlines() or ["memory probe failed"])[-1]}
        return out
    _import_libraries(job["model_dir"])  # before the first fork, so no child pays for them
    return {variant: _in_child({**single, "variant": variant}) for variant in variants}


def serve(model_dir: str) -> int:
    """``--serve MODEL_DIR``: import the libraries (and the architecture's module), print ``ready``, then answer
    each JSON job line on stdin (``measure_all``) with one JSON line on stdout, until stdin closes. Started by
    the benchmark as the stage begins, so these imports overlap the stage's own (untimed) start-up."""
    _import_libraries(model_dir)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(measure_all(json.loads(line))), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        return serve(argv[1])
    job = json.loads(sys.stdin.read())
    print(json.dumps(measure_all(job) if "variants" in job else measure(job)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
