"""Shared pytest fixtures for textcls-bench.

Everything here is offline and CPU-only: the Hugging Face Hub is switched to offline mode
before transformers is imported, and the only model is a tiny BERT built from a local vocab.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

# Never reach the network from the tests (set before anything imports huggingface_hub).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"

# A small WordPiece vocabulary: the special tokens BERT needs, then lower-cased words.
TINY_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "classify", ":", ".", ",", "!", "?", "'", '"', "-",
    "the", "a", "an", "this", "that", "it", "is", "was", "and", "or", "but", "not", "very", "so",
    "of", "to", "in", "on", "for", "with", "at", "by", "from",
    "good", "great", "fine", "nice", "bad", "awful", "poor", "boring", "fun",
    "movie", "film", "plot", "actor", "story", "scene", "music", "ending",
    "team", "game", "match", "win", "lost", "market", "stock", "price", "shares",
    "world", "war", "leader", "talks", "science", "space", "computer", "software",
    "one", "two", "three", "four", "five", "word", "words", "long", "short", "text",
]
TINY_MAX_LENGTH = 128  # the tiny tokenizer's model_max_length (= max_position_embeddings)


@pytest.fixture(scope="session")
def project_root() -> Path:
    """The repository root (the folder with params.yaml and dvc.yaml)."""
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def shared_datasets_dir() -> Path:
    """The offline data mirror (../shared/datasets); tests using it skip when it is absent."""
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def tiny_vocab() -> list[str]:
    """The vocabulary of the tiny BERT tokenizer, id = position."""
    return list(TINY_VOCAB)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A folder with a tiny BERT tokenizer + BertForSequenceClassification (2 labels), saved as safetensors.

    It holds config.json, model.safetensors, tokenizer.json and tokenizer_config.json, so it is a
    valid local `source` for both models.load_tokenizer and models.load_classifier.
    """
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny_bert")
    vocab_file = root / "vocab.txt"
    vocab_file.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    out = root / "model"
    # transformers 5 takes the vocabulary as `vocab` (a path or a dict); `vocab_file=` is ignored there.
    tokenizer = BertTokenizerFast(vocab=str(vocab_file), model_max_length=TINY_MAX_LENGTH)
    tokenizer.save_pretrained(out)
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        vocab_size=len(TINY_VOCAB), max_position_embeddings=TINY_MAX_LENGTH, num_labels=2)
    import torch

    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    model.save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture
def make_prepared_dir(tmp_path):
    """Factory: write a prepared data folder (train/validation/test parquet with text, label, row).

    Call as ``make_prepared_dir({"train": (texts, labels), ...}, name="prepared")``; splits not
    given get two default rows. Returns the folder.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    default = (["the movie is good", "the film was bad"], [1, 0])

    def make(splits: dict | None = None, name: str = "prepared") -> Path:
        folder = tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        splits = splits or {}
        for split in ("train", "validation", "test"):
            texts, labels = splits.get(split, default)
            table = pa.table({"text": pa.array(texts, pa.string()), "label": pa.array(labels, pa.int64()),
                              "row": pa.array(range(len(texts)), pa.int64())})
            pq.write_table(table, folder / f"{split}.parquet")
        return folder

    return make


# --------------------------------------------------------------------------- a model that ships its own code

CUSTOM_CODE = '''
import os
from pathlib import Path

Path(os.environ["TEXTCLS_TEST_SENTINEL"]).write_text("the model's own code ran")

from transformers import {config}, {model}


class SentinelConfig({config}):
    model_type = "sentinel_{kind}"


class Sentinel{auto}({model}):
    config_class = SentinelConfig
'''


def plant_custom_code(source: Path, folder: Path, config_class: str, model_class: str, auto_class: str) -> Path:
    """A copy of the model in ``source`` re-labelled as an architecture that only its own sentinel_model.py
    defines (``auto_map`` in config.json); importing that file writes the file named by
    TEXTCLS_TEST_SENTINEL (see the ``code_sentinel`` fixture)."""
    import json
    import shutil

    shutil.copytree(source, folder)
    kind = model_class.lower()
    (folder / "sentinel_model.py").write_text(
        CUSTOM_CODE.format(config=config_class, model=model_class, kind=kind, auto=auto_class))
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type=f"sentinel_{kind}", auto_map={
        "AutoConfig": "sentinel_model.SentinelConfig", f"Auto{auto_class}": f"sentinel_model.Sentinel{auto_class}"})
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def code_sentinel(tmp_path, monkeypatch) -> Path:
    """The file a planted model's code writes when it is imported; transformers' dynamic modules go to a
    temp cache for the test."""
    from transformers import dynamic_module_utils

    sentinel = tmp_path / "code-ran"
    monkeypatch.setenv("TEXTCLS_TEST_SENTINEL", str(sentinel))
    monkeypatch.setattr(dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path / "hf_modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    return sentinel


def write_tiny_llama(folder: Path) -> Path:
    """A random LlamaForCausalLM (2 layers, 32 wide) with a byte-level BPE tokenizer trained on a few
    prompt-like lines, saved as safetensors: a stand-in for a local LLM (SmolLM2 is a Llama too)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = ["Text: the team won the match\nLabel: Sports\n\n", "Text: stocks fell as markets slid\nLabel: Business",
              "Text: leaders met for peace talks\nLabel: World", "Text: new software for space science\nLabel: Sci/Tech",
              "Classify the text into one of these categories: World, Sports, Business, Sci/Tech."] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                        bos_token="<|endoftext|>", pad_token="<|endoftext|>")
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------- toy projects (dvc repro)

WORDS = {
    "sports": "goal match team coach league score season player cup win".split(),
    "politics": "vote senate law minister party election policy court bill govern".split(),
    "tech": "chip software cloud data robot phone code network startup laptop".split(),
}
SHARED = "the a today new big says after over with report".split()


def write_toy_data(folder: Path, rows_per_class: int, seed: int) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for split, n in (("train", rows_per_class), ("test", rows_per_class // 2)):
        lines = ["text,label"]
        for label, words in WORDS.items():
            for _ in range(n):
                text = " ".join(rng.choice(words) if rng.random() < 0.5 else rng.choice(SHARED) for _ in range(8))
                lines.append(f"{text},{label}")
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def toy_datasets(folder: Path) -> dict:
    """The params ``datasets`` section for the toy data of :func:`write_toy_data` in ``folder`` (entry ``toy``)."""
    return {"toy": {"format": "csv", "path": str(folder), "files": {"train": "train.csv", "test": "test.csv"},
                    "carve": {"validation": 0.2}}}


def write_tiny_bert(folder: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *SHARED, *sum(WORDS.values(), [])]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab=str(folder / "vocab.txt")).save_pretrained(folder)  # transformers 5: `vocab=`
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertForSequenceClassification(config).save_pretrained(folder)  # safetensors


def run_cmd(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a CLI (dvc, git, python) offline with this venv's tools first on PATH; fail the test on error."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def load_stage(name: str):
    """``stages/<name>.py`` imported as a module (stage scripts are not package modules)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"stage_{name}_under_test", PROJECT_ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def new_toy_project(root: Path, params: dict) -> Path:
    """A git+DVC repo at ``root/project`` holding this project's dvc.yaml, stages/ and src/ and the
    given params, committed (DVCLive needs a commit), not yet reproduced."""
    import shutil

    import yaml

    repo = root / "project"
    repo.mkdir()
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(PROJECT_ROOT / name, repo / name)
    for name in ("stages", "src"):
        shutil.copytree(PROJECT_ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        run_cmd(cmd, repo)
    return repo
