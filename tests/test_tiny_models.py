"""The tiny stand-ins for the five reference architectures (tests/tiny_models.py): each reloads offline
with the family's own model and tokenizer classes and behaves like the real checkpoint's tokenizer."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from tiny_models import EXPECTED, FAMILIES, write_tiny_model

MAX_POSITIONS = 32
NUM_LABELS = 2
CORPUS = [
    f"The {noun} was {adj} and {adv} {verb}, {num} times!"
    for noun, adj, adv, verb, num in itertools.product(
        ["movie", "film", "plot", "story", "team", "market"],
        ["good", "great", "bad", "boring"],
        ["very", "not"],
        ["fun", "slow", "lost"],
        ["one", "two", "3"],
    )
]
TEXTS = ["Great fun!", "A boring plot, Zebra 42 times."]  # the first is padded; both fit in MAX_POSITIONS


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_models")
    return {f: write_tiny_model(f, root / f, CORPUS, num_labels=NUM_LABELS, max_positions=MAX_POSITIONS)
            for f in FAMILIES}


@pytest.fixture(scope="module")
def loaded(tiny_dirs):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return {f: (AutoTokenizer.from_pretrained(d), AutoModelForSequenceClassification.from_pretrained(d).eval())
            for f, d in tiny_dirs.items()}


def test_expected_covers_every_family():
    """Check that EXPECTED describes exactly the five families, with the fields the tests assert on."""
    assert FAMILIES == ("bert", "roberta", "distilbert", "albert", "t5")
    assert set(EXPECTED) == set(FAMILIES)
    for spec in EXPECTED.values():
        assert {"model_class", "tokenizer_model", "input_names"} <= set(spec)
        assert spec["tokenizer_model"] in ("WordPiece", "BPE", "Unigram")


@pytest.mark.parametrize("family", FAMILIES)
def test_reloads_with_family_classes(family, loaded):
    """Check that AutoTokenizer / AutoModelForSequenceClassification give back the family's own classes and
    the tokenizer's backend model is the kind the hub checkpoint uses (WordPiece / BPE / Unigram)."""
    tok, model = loaded[family]
    assert type(model).__name__ == EXPECTED[family]["model_class"]
    assert type(tok).__name__.removesuffix("Fast") == EXPECTED[family]["tokenizer_class"]
    assert type(tok.backend_tokenizer.model).__name__ == EXPECTED[family]["tokenizer_model"]


@pytest.mark.parametrize("family", FAMILIES)
def test_input_names(family, loaded):
    """Check that model_input_names and the keys the tokenizer returns match EXPECTED (no token_type_ids for
    roberta, distilbert and t5)."""
    tok, _ = loaded[family]
    expected = EXPECTED[family]["input_names"]
    assert list(tok.model_input_names) == expected
    assert sorted(tok(TEXTS[0]).keys()) == sorted(expected)
    assert sorted(tok(TEXTS, padding=True, return_tensors="pt").keys()) == sorted(expected)
    if family in ("roberta", "distilbert", "t5"):
        assert "token_type_ids" not in tok(TEXTS[0])


@pytest.mark.parametrize("family", FAMILIES)
def test_special_tokens_like_the_hub_checkpoint(family, loaded):
    """Check the special-token layout: [CLS] .. [SEP] for BERT/DistilBERT/ALBERT, <s>=0 .. </s>=2 for RoBERTa,
    text .. </s>=1 for T5 (pad 0, unk 2)."""
    tok, _ = loaded[family]
    ids = tok(TEXTS[0])["input_ids"]
    if family == "t5":
        assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
        assert ids[-1] == 1 and ids.count(1) == 1
    elif family == "roberta":
        assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
        assert ids[0] == 0 and ids[-1] == 2
        assert tok.mask_token == "<mask>" and tok.mask_token_id == len(tok) - 1
    else:
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        specials = ("[CLS]", "[SEP]", "<pad>", "<unk>", "[MASK]") if family == "albert" else \
                   ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]")
        assert (tok.cls_token, tok.sep_token, tok.pad_token, tok.unk_token, tok.mask_token) == specials
        assert tok.pad_token_id == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_tokenizer_behaviour(family, loaded):
    """Check lower-casing (uncased BERT/DistilBERT, ALBERT), byte-level BPE without a prefix space (RoBERTa),
    the ▁ metaspace (ALBERT, T5), a small vocabulary, and model_max_length = max_positions."""
    tok, _ = loaded[family]
    assert tok.model_max_length == MAX_POSITIONS
    assert 20 < len(tok) <= 400
    lowered = tok("THE MOVIE")["input_ids"] == tok("the movie")["input_ids"]
    assert lowered == (family in ("bert", "distilbert", "albert"))
    tokens = tok.tokenize("the movie")
    if family in ("albert", "t5"):
        assert tokens[0].startswith("\u2581")
    if family == "roberta":
        assert tok.add_prefix_space is False
        assert not tokens[0].startswith("\u0120") and any(t.startswith("\u0120") for t in tokens)
        assert tok.convert_tokens_to_string(tok.tokenize("Zebra 42!")) == "Zebra 42!"  # bytes: nothing is unknown


@pytest.mark.parametrize("family", FAMILIES)
def test_folder_is_safetensors_only(family, tiny_dirs):
    """Check that the folder holds config.json, tokenizer files and *.safetensors weights, no *.bin."""
    folder = tiny_dirs[family]
    assert (folder / "config.json").is_file() and (folder / "tokenizer_config.json").is_file()
    assert list(folder.glob("*.safetensors")) and not list(folder.glob("*.bin"))
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == [EXPECTED[family]["model_class"]]


@pytest.mark.parametrize("family", FAMILIES)
def test_config_sizes(family, loaded):
    """Check the tiny sizes, the position table (RoBERTa: max_positions + 2) and T5's special ids."""
    tok, model = loaded[family]
    cfg = model.config
    assert cfg.vocab_size >= len(tok)
    if family == "t5":
        assert (cfg.d_model, cfg.num_layers, cfg.num_decoder_layers, cfg.num_heads, cfg.d_ff) == (32, 1, 1, 2, 64)
        assert (cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id) == (0, 0, 1)
    elif family == "distilbert":
        assert (cfg.dim, cfg.n_layers, cfg.n_heads, cfg.hidden_dim) == (32, 2, 2, 64)
        assert cfg.max_position_embeddings == MAX_POSITIONS
    else:
        assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size) == \
               (32, 2, 2, 64)
        extra = 2 if family == "roberta" else 0
        assert cfg.max_position_embeddings == MAX_POSITIONS + extra
    assert cfg.pad_token_id == tok.pad_token_id


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_padded_batch(family, loaded):
    """Check that a padded batch of two texts, and a batch truncated to model_max_length, give
    (2, num_labels) logits."""
    tok, model = loaded[family]
    with torch.inference_mode():
        batch = tok(TEXTS, padding=True, return_tensors="pt")
        assert batch["attention_mask"][0].sum() < batch["attention_mask"].shape[1] <= MAX_POSITIONS
        assert model(**batch).logits.shape == (2, NUM_LABELS)
        long = tok([TEXTS[1] * 10, TEXTS[0]], padding=True, truncation=True, max_length=tok.model_max_length,
                   return_tensors="pt")
        assert long["input_ids"].shape[1] == MAX_POSITIONS
        assert torch.isfinite(model(**long).logits).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_project_loaders_accept_the_folder(family, tiny_dirs):
    """Check that the folder is a valid local `source` for textcls.sources.models.load_tokenizer / load_classifier,
    with a fresh head sized for other label names."""
    from textcls.sources import models

    labels = ["neg", "neutral", "pos"]
    tok = models.load_tokenizer(str(tiny_dirs[family]))
    model = models.load_classifier(str(tiny_dirs[family]), labels).eval()
    assert type(model).__name__ == EXPECTED[family]["model_class"]
    assert model.config.id2label == dict(enumerate(labels))
    with torch.inference_mode():
        assert model(**tok(TEXTS, padding=True, return_tensors="pt")).logits.shape == (2, len(labels))


@pytest.mark.parametrize("family", FAMILIES)
def test_seeded_and_deterministic(family, tmp_path):
    """Check that the same seed gives identical tokenizer and weights, and another seed other weights."""
    from safetensors.torch import load_file

    a, b, c = (write_tiny_model(family, tmp_path / name, CORPUS, seed=seed)
               for name, seed in (("a", 0), ("b", 0), ("c", 1)))
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()
    wa, wb, wc = (load_file(next(d.glob("*.safetensors"))) for d in (a, b, c))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


@pytest.mark.bad_input
def test_unknown_family_and_empty_corpus(tmp_path):
    """Check that an unknown family or an empty corpus raises ValueError naming the problem."""
    with pytest.raises(ValueError, match="unknown family"):
        write_tiny_model("gpt2", tmp_path / "x", CORPUS)
    with pytest.raises(ValueError, match="corpus is empty"):
        write_tiny_model("bert", tmp_path / "y", [])
