"""A ``torch.compile`` inference variant, ``compiled_bf16`` (CUDA, bf16, dynamic shapes), as a plugin.

It registers itself when imported: the GPU check (``make gpu-check``) imports it, and the pipeline takes it with
``TEXTCLS_PLUGINS=textcls.serving.compiled`` plus ``compiled_bf16`` in ``benchmark.cuda_variants``. torch.compile
ships with torch (nothing to install); its first calls compile (tens of seconds, counted in the cold start).
``TEXTCLS_COMPILE_BACKEND`` picks the compiler backend (default ``inductor``; ``eager`` checks the wiring fast).
"""

from __future__ import annotations

import os
from pathlib import Path

from textcls.serving.backends import VARIANTS, TorchBackend, Variant, register_variant
from textcls.sources import models


def _compiled(dtype: str):
    def make(model_dir: Path, device: str, threads: int, workdir: Path, input_names: list[str]):
        import torch

        _, model = models.load_trained(model_dir)
        backend = TorchBackend(model, device, getattr(torch, dtype))
        backend.model = torch.compile(backend.model, dynamic=True,
                                      backend=os.environ.get("TEXTCLS_COMPILE_BACKEND", "inductor"))
        return backend
    return make


if "compiled_bf16" not in VARIANTS:  # imported twice (plugin and direct): registered once
    register_variant(Variant("compiled_bf16", ("cuda",), _compiled("bfloat16"), needs_bf16=True))
