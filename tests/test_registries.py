"""The extension points: a model kind and an inference variant are added through the registries alone.

tests/toy_plugin.py registers a kind (``centroid``: naive Bayes in numpy) and a variant (``eager_fp64``)
without touching the package; ``TEXTCLS_PLUGINS=toy_plugin`` loads it in every stage of `dvc repro`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ONE_THREAD, new_toy_project, toy_datasets, warm_env, write_tiny_bert, write_toy_data

from textcls import kinds

from textcls.config import params
from textcls.errors import ParamsError, TextclsError

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def test_builtin_kinds_and_variants_are_registered():
    """Check that the registries hold the built-in kinds (with their settings schemas) and variants."""
    from textcls.serving import backends

    builtin = {"transformer", "tfidf", "embedding"}
    assert builtin <= set(kinds.REGISTRY) and builtin <= set(params.KIND_SCHEMAS)
    assert params.KIND_SCHEMAS["transformer"].settings is params.TrainParams
    assert params.KIND_SCHEMAS["embedding"].settings is params.EmbeddingParams
    assert set(backends.variant_names("cpu")) >= {"eager_fp32", "dynamic_int8", "onnx_fp32", "onnx_int8"}
    assert set(backends.variant_names("cuda")) >= {"eager_fp32", "eager_fp16", "eager_bf16", "onnx_fp32"}
    assert "eager_fp16" not in backends.variant_names("cpu")


@pytest.mark.bad_input
def test_unregistered_kind_and_variant_are_clear_errors():
    """Check that params name the registered kinds/variants when an unknown one is used."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["models"]["nb"] = {"kind": "naive_bayes", "source": "numpy", "revision": None, "tokenizer": {}}
    with pytest.raises(ParamsError, match=r"'models\.nb\.kind' parameter must be one of .*'transformer'"):
        params.parse_params(raw)
    raw["models"].pop("nb")
    raw["benchmark"]["cpu_variants"] = ["eager_fp32", "tensorrt"]
    with pytest.raises(ParamsError, match=r"'benchmark\.cpu_variants' parameter must be .*onnx_int8"):
        params.parse_params(raw)
    with pytest.raises(TextclsError, match="Unknown model kind 'naive_bayes'"):
        kinds.get("naive_bayes")


@pytest.mark.slow
def test_a_plugin_kind_and_variant_run_through_the_pipeline(tmp_path):
    """Check that with TEXTCLS_PLUGINS=toy_plugin, `dvc repro` tokenizes, trains, evaluates, benchmarks and
    ranks a `centroid` model beside a transformer, and benchmarks the transformer with `eager_fp64` too."""
    write_toy_data(tmp_path / "toy", rows_per_class=40, seed=0)
    write_tiny_bert(tmp_path / "tiny-bert")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["datasets"] = toy_datasets(tmp_path / "toy")
    raw["models"] = {"tiny": {"kind": "transformer", "source": str(tmp_path / "tiny-bert"), "revision": None,
                              "tokenizer": {}, "lr": 5e-3, "epochs": 1, "batch_size": 16},
                     "nb": {"kind": "centroid", "source": "numpy", "revision": None, "tokenizer": {},
                            "smoothing": 0.5}}
    raw["distill"] = {"teacher": None, "students": []}
    raw["llms"] = {}
    raw["tokenize"]["max_length"] = 32
    raw["benchmark"].update(warmup=1, repeats=6, throughput_texts=5, batch_sizes=[1, 4],
                            throughput_min_seconds=0.0, cpu_variants=["eager_fp32", "eager_fp64"])
    repo = new_toy_project(tmp_path, raw)
    env = {**os.environ, **ONE_THREAD, "TEXTCLS_PLUGINS": "toy_plugin", "PYTHONPATH": str(TESTS), "DVC_NO_ANALYTICS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["dvc", "repro"], cwd=repo, env=warm_env(env), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    board = json.loads((repo / "metrics/leaderboard.json").read_text())
    assert set(board["toy"]) == {"tiny", "nb"}
    card = json.loads((repo / "models/toy/nb/textcls.json").read_text())
    assert card["kind"] == "centroid" and card["params"]["settings"] == {"smoothing": 0.5}
    train = json.loads((repo / "metrics/train/toy/nb.json").read_text())
    assert train["hyperparameters"] == {"smoothing": 0.5} and train["kind"] == "centroid"
    ev = json.loads((repo / "metrics/eval/toy/nb.json").read_text())
    assert ev["accuracy"] > 0.9  # the toy classes are separable by vocabulary: naive Bayes learns them
    nb = json.loads((repo / "metrics/benchmark/toy/nb.json").read_text())
    assert nb["cpu"]["best_variant"] == "counts" and nb["cuda"] == {"status": "not_applicable", "reason": "CPU-only model"}
    assert nb["cpu"]["variants"]["counts"]["accuracy"] == ev["accuracy"]  # same predictions, served path
    tiny = json.loads((repo / "metrics/benchmark/toy/tiny.json").read_text())["cpu"]["variants"]
    assert set(tiny) == {"eager_fp32", "eager_fp64"} and "error" not in tiny["eager_fp64"]
    assert tiny["eager_fp64"]["accuracy"] == tiny["eager_fp32"]["accuracy"]

    bare = {k: v for k, v in env.items() if k != "TEXTCLS_PLUGINS"}  # without the plugin: one clear error
    proc = subprocess.run([sys.executable, "stages/train.py", "toy", "nb", "data/tokenized/toy/nb", str(tmp_path / "m"),
                           str(tmp_path / "m.json"), str(tmp_path / "live")], cwd=repo, env=bare,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "'models.nb.kind' parameter must be one of" in proc.stderr
    assert "Traceback" not in proc.stderr
