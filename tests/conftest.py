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
sys.path.insert(0, str(PROJECT_ROOT / "scripts"))  # the pipeline's stage files and stage names come from there
from repro import stage_name  # noqa: E402,F401  (machine/dvc.yaml:hardware -> hardware)
from sync_dvc_deps import STAGE_FILES as DVC_FILES  # noqa: E402  (dvc.yaml and machine/dvc.yaml)

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


# Test files that run `dvc repro` end to end, slowest first: run first, so that under pytest-xdist (make test:
# -n auto --dist loadfile --no-loadscope-reorder) they start at once on different workers and the quick files
# fill the gaps. test_pipeline_experiments.py waits for the toy pipeline test_pipeline.py builds, so it comes
# after a file the other worker is busy with.
HEAVY_FIRST = ("test_pipeline.py", "test_reference_profile.py", "test_registries.py", "test_pipeline_experiments.py",
               "test_resume.py", "test_report.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order otherwise kept


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


# For the stage processes of end-to-end runs: tiny models gain nothing from a second thread, and with one
# pytest-xdist worker per core, two threads per stage process would oversubscribe the cores (OpenMP threads
# spin while they wait). In-process tests keep torch's default.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "TEXTCLS_THREADS": "1"}


# Warm stage interpreters (textcls.warm), as `make repro` uses them: the toy pipelines' stages do milliseconds of
# work after seconds of importing torch and transformers, so end-to-end tests pass their stage processes the
# socket of a warm server started with the same environment. A stage whose environment or interpreter differs
# from its server's is refused and runs cold, so no result a test checks can depend on this (tests/test_warm.py
# checks that a handed-off stage behaves as a cold one). TEXTCLS_TEST_COLD=1 runs every stage cold.
PER_TEST_ENV = ("PYTEST_CURRENT_TEST",)  # pytest changes it for every test; stage processes never need it
MAX_WARM_SERVERS = 4  # per test process (each holds torch and transformers); further environments run cold
_WARM_SERVERS: dict[str, tuple] = {}


def warm_env(env: dict) -> dict:
    """``env`` for stage processes: without pytest's per-test variable, plus the socket of a warm server started
    with exactly that environment (one per distinct environment and test process, ended with the session)."""
    import json

    from textcls import warm

    env = {k: v for k, v in env.items() if k not in PER_TEST_ENV and k != warm.SOCKET_ENV}
    if os.environ.get("TEXTCLS_TEST_COLD"):
        return env
    key = json.dumps(warm.comparable_env(env), sort_keys=True)
    if key not in _WARM_SERVERS:
        if len(_WARM_SERVERS) >= MAX_WARM_SERVERS:
            return env
        server = warm.Server(env)
        _WARM_SERVERS[key] = (server, server.__enter__())
    return _WARM_SERVERS[key][1]


def cli_env() -> dict:
    """What :func:`run_cmd` runs CLIs with: offline, one compute thread, this venv's tools first on PATH."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1", **ONE_THREAD,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture(scope="session", autouse=True)
def warm_stage_servers():
    """End every warm server this test process started (each on first use: a run of quick tests starts none)."""
    yield
    while _WARM_SERVERS:
        server, _ = _WARM_SERVERS.popitem()[1]
        server.__exit__(None, None, None)


def run_cmd(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a CLI (dvc, git, python) with :func:`cli_env` (stages in a warm interpreter: :func:`warm_env`); fail
    the test on error."""
    proc = subprocess.run(cmd, cwd=cwd, env=warm_env(cli_env()), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def load_stage(name: str):
    """``stages/<name>.py`` imported as a module (stage scripts are not package modules)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"stage_{name}_under_test", PROJECT_ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HARDWARE_STAGE = "machine/dvc.yaml:hardware"  # how `dvc repro` / `dvc status` name it


def new_toy_project(root: Path, params: dict) -> Path:
    """A git+DVC repo at ``root/project`` holding this project's dvc.yaml, stages/ and src/ and the
    given params, committed (DVCLive needs a commit), not yet reproduced."""
    import shutil

    import yaml

    repo = root / "project"
    repo.mkdir()
    for name in (*DVC_FILES, ".dvcignore", ".gitignore"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / name, repo / name)
    for name in ("stages", "src"):
        shutil.copytree(PROJECT_ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        run_cmd(cmd, repo)
    return repo

# --------------------------------------------------------------------------- the toy pipeline, reproduced once


def write_tiny_t5(folder: Path) -> None:
    """A random T5 classifier with a word-level tokenizer that appends </s> (as T5's does)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForSequenceClassification

    vocab = {w: i for i, w in enumerate(["<pad>", "</s>", "<unk>", "classify", ":", *SHARED,
                                         *sum(WORDS.values(), [])])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)
    config = T5Config(vocab_size=len(vocab), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1,
                      num_heads=2, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    T5ForSequenceClassification(config).save_pretrained(folder)


def build_toy_pipeline(root: Path) -> Path:
    """A git+DVC repo at ``root/project`` with the project's pipeline, reproduced once on tiny data: two tiny
    BERTs sharing a tokenizer (one the teacher of the other), a T5 with a prefix, TF-IDF and a prompted tiny
    Llama; ``first_repro.log`` holds that `dvc repro`'s output."""
    import yaml

    write_toy_data(root / "toy", rows_per_class=60, seed=0)
    write_tiny_bert(root / "tiny-bert")
    write_tiny_t5(root / "tiny-t5")
    write_tiny_llama(root / "tiny-llama")
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["datasets"] = toy_datasets(root / "toy")
    tiny = {"kind": "transformer", "source": str(root / "tiny-bert"), "revision": None, "tokenizer": {},
            "lr": 5e-3, "epochs": 2, "batch_size": 16, "logging_steps": 2}
    t5 = {**tiny, "source": str(root / "tiny-t5"), "tokenizer": {"prefix": "classify: "}}
    params["models"] = {"tiny": tiny, "tiny2": {**tiny, "lr": 1e-3}, "t5": t5, "tfidf": params["models"]["tfidf"]}
    params["distill"] = {"teacher": "tiny2", "students": ["tiny"], "temperature": 2.0, "alpha": 0.5}
    params["llms"] = {"tinylm": {"backend": "local", "source": str(root / "tiny-llama"), "shots_per_class": 1,
                                 "max_test_rows": 10, "max_text_tokens": 16}}
    params["cascades"]["chains"] = [["tfidf", "tiny"], ["tfidf", "tiny_kd", "tinylm"]]
    params["tokenize"]["max_length"] = 32
    params["benchmark"].update(warmup=1, repeats=6, throughput_texts=5, batch_sizes=[1, 4],
                               throughput_min_seconds=0.0, cpu_variants=["eager_fp32", "onnx_int8"])
    repo = new_toy_project(root, params)
    proc = run_cmd(["dvc", "repro"], repo)
    repo.joinpath("first_repro.log").write_text(proc.stdout)  # written last: marks the build complete
    return repo


@pytest.fixture(scope="session")
def toy_pipeline(tmp_path_factory) -> Path:
    """The reproduced toy pipeline (:func:`build_toy_pipeline`), built once per test run and shared by every
    module that needs it, also across pytest-xdist workers (a file lock in the run's common temp folder: the
    first worker builds, the others wait for it). Read-only: modules work on :func:`copy_project` copies."""
    import fcntl
    import shutil

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "toy-pipeline"
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "project" / "first_repro.log").is_file():
            shutil.rmtree(root, ignore_errors=True)  # what a failed build of another worker left
            root.mkdir()
            build_toy_pipeline(root)
    return root / "project"


def copy_project(project: Path, dest: Path) -> Path:
    """A copy of a git+DVC project (workspace, git history, DVC cache) at ``dest/project``; its params keep
    pointing at the original's data and models (read only), files a test adds go to ``dest``."""
    import shutil

    shutil.copytree(project, dest / "project", symlinks=True)
    return dest / "project"

