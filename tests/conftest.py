"""Shared pytest fixtures for textcls-bench.

Everything here is offline and CPU-only: the Hugging Face Hub is switched to offline mode
before transformers is imported, and the only model is a tiny BERT built from a local vocab.
"""

from __future__ import annotations

import os
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
