"""Resumable training: checkpoints belong to one run (a fingerprint of data, params, seed and versions),
and only a run with the same fingerprint resumes from them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from textcls.errors import TextclsError
from textcls.io import read_json, write_json
from textcls.config.params import ModelParams

logger = logging.getLogger(__name__)


RUN_FILE = "textcls-run.json"  # in the checkpoints folder: which run its checkpoints belong to


def run_fingerprint(tokenized: Path, model: ModelParams, seed: int, device: str, precision: str,
                    teacher_logits: np.ndarray | None = None) -> str:
    """A hash of everything that decides the training trajectory: checkpoints are resumable only
    by a run with the same one."""
    import torch
    import transformers

    digest = hashlib.sha256(json.dumps({
        "params": dataclasses.asdict(model), "seed": seed, "device": device, "precision": precision,
        "world_size": os.environ.get("WORLD_SIZE", "1"), "torch": torch.__version__,
        "transformers": transformers.__version__}, sort_keys=True, default=str).encode())
    for path in sorted(p for p in Path(tokenized).rglob("*") if p.is_file()):
        digest.update(path.relative_to(tokenized).as_posix().encode())
        digest.update(path.read_bytes())
    if teacher_logits is not None:
        digest.update(np.ascontiguousarray(teacher_logits, dtype=np.float32).tobytes())
    return digest.hexdigest()


def is_complete_checkpoint(folder: Path) -> bool:
    """The Trainer writes trainer_state.json last, after weights, optimizer and RNG states."""
    try:
        json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any(folder.glob("*.safetensors")) and (folder / "optimizer.pt").is_file()


def resumable_checkpoint(checkpoints: Path, fingerprint: str) -> str | None:
    """The newest complete checkpoint written by a run with this fingerprint, else None."""
    try:
        recorded = read_json(checkpoints / RUN_FILE).get("fingerprint")
    except (OSError, ValueError, TextclsError):
        return None
    if recorded != fingerprint:
        return None
    steps = sorted((int(p.name.split("-")[1]), p) for p in checkpoints.glob("checkpoint-*")
                   if p.name.split("-")[1].isdigit())
    return next((str(p) for _, p in reversed(steps) if is_complete_checkpoint(p)), None)


def start_checkpoints(checkpoints: Path, fingerprint: str) -> str | None:
    """Resume point for this run, or None after clearing another run's checkpoints (rank 0 only)."""
    resume = resumable_checkpoint(checkpoints, fingerprint)
    if resume:
        logger.warning("Resuming from %s: an earlier run of this stage with the same data, params and seed "
                       "was interrupted. To start over instead, delete %s.", resume, checkpoints)
        return resume
    if checkpoints.exists():
        logger.info("Clearing %s: its checkpoints belong to a different run (data, params or seed changed).",
                    checkpoints)
    shutil.rmtree(checkpoints, ignore_errors=True)
    checkpoints.mkdir(parents=True)
    write_json(checkpoints / RUN_FILE, {"fingerprint": fingerprint})
    return None
