"""The model-kind registry: what a kind of model (transformer, tfidf, embedding, a plugin's) does at each stage.

A kind knows how its models are tokenized, trained, encoded for serving, which inference variants
apply on a device, and how one variant is built. Stages and the serving path ask the registry
(:func:`get`) instead of branching on the kind's name; params check ``models.<name>.kind`` against
the schemas registered with :func:`textcls.config.params.register_kind_schema`. Adding a kind is one module
that subclasses :class:`ModelKind`, calls :func:`register` and registers its settings schema: in this
package (imported by ``kinds/__init__.py``) or in a plugin module named by ``TEXTCLS_PLUGINS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from textcls.errors import TextclsError
from textcls.records import Unmeasured


class ModelKind:
    """The behaviour of one kind of model. Subclasses set ``name`` and implement every method."""

    name: str = ""
    reference_variant: str = ""  # the variant evaluation uses, and the benchmark's baseline when it is listed
    label: str = ""  # shown after an entry's name in generated tables ("TF-IDF"); empty: the name alone
    uses_torch: bool = True  # False: its stages never import torch (device "cpu", no torch thread setting)

    def tokenize(self, prepared: Path, model, cfg, out: Path) -> dict:
        """Write the model's inputs for every split of ``prepared`` into ``out``; return the metadata
        (``kind``, ``prefix`` and ``splits``: ``{split: {"rows": n, ...}}``; the stage adds ``label_names``)."""
        raise NotImplementedError

    def train(self, tokenized: Path, model, seed: int, out: Path, checkpoints: Path, live_dir: Path) -> dict:
        """Fit the model, save it with its model card (``textcls.json``, ``"kind": name``) in ``out``, log
        curves to ``live_dir``; return the train metrics."""
        raise NotImplementedError

    def hyperparameters(self, model) -> dict:
        """What the model was trained with (recorded in the train metrics)."""
        raise NotImplementedError

    def encoder(self, model_dir: Path, card) -> Callable[[list[str]], Any]:
        """Raw texts -> the inputs a backend takes, exactly as serving would; with ``real_tokens(batch)`` and,
        for padded inputs, ``padded_tokens(batch)`` (tokens computed on; without it the benchmark counts no
        padding)."""
        raise NotImplementedError

    def variants(self, device: str, cfg) -> list[str] | Unmeasured:
        """The inference variants benchmarked on ``device`` (``"cpu"``/``"cuda"``), or why there are none."""
        raise NotImplementedError

    def backend(self, variant: str, model_dir: Path, card, device: str, threads: int,
                workdir: Path | None) -> tuple[Callable[[Any], Any], float]:
        """(a callable inputs -> logits or log-probabilities, seconds spent preparing it)."""
        raise NotImplementedError


REGISTRY: dict[str, ModelKind] = {}


def register(kind: type[ModelKind]) -> type[ModelKind]:
    """Class decorator: add a kind to the registry under ``kind.name``."""
    if not kind.name or kind.name in REGISTRY:
        raise ValueError(f"model kind {kind.name!r} is unnamed or registered twice")
    REGISTRY[kind.name] = kind()
    return kind


def get(name: str) -> ModelKind:
    """The registered kind ``name`` (a trained model's card names its kind)."""
    if name not in REGISTRY:
        raise TextclsError(f"Unknown model kind {name!r}. Known: {', '.join(sorted(REGISTRY))}. Fix: use one of "
                           "them, or register the kind (a module in textcls/kinds/ or TEXTCLS_PLUGINS).")
    return REGISTRY[name]
