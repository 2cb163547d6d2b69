"""scripts/render_results.py: the generated blocks of README.md and docs/ come from params.yaml and metrics/,
for exactly the declared entries, and the committed blocks match the committed metrics (so they cannot go stale)."""

import copy
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = ("results", "recommendation", "significance")


@pytest.fixture(scope="module")
def render():
    spec = importlib.util.spec_from_file_location("render_results_under_test", ROOT / "scripts/render_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def _variant(accuracy, p50, p95, speedup):
    return {"accuracy": accuracy, "latency_ms": {"p50": p50, "p95": p95}, "speedup_p50": speedup}


HARDWARE = {"cpu": {"model": "Test CPU 9000", "machine": "x86_64", "usable_cores": 4, "logical_cores": 8,
                    "memory_gib": 15.5}, "gpu": "unavailable", "os": "Linux test", "python": "3.11.7",
            "packages": {"torch": "2.13.0+cpu"}}
NO_GPU = {"status": "unavailable", "reason": "no CUDA GPU on this machine"}


def _entry(metrics: Path, ds, name, *, accuracy, low, high, f1, n, train_time, kind, cpu, extra_train=None,
           auroc=None):
    extra_eval = {} if auroc is None else {"auroc": auroc[0], "auroc_ci95": {"low": auroc[1], "high": auroc[2]}}
    _write(metrics / "eval" / ds / f"{name}.json", {"accuracy": accuracy, "accuracy_ci95": {"low": low, "high": high},
                                                    "f1_macro": f1, "n": n, "comparable_to_published": False,
                                                    **extra_eval})
    _write(metrics / "train" / ds / f"{name}.json", {"train_time_s": train_time, "kind": kind, **(extra_train or {})})
    _write(metrics / "benchmark" / ds / f"{name}.json", {"cpu": cpu, "cuda": NO_GPU, "hardware": HARDWARE})


@pytest.fixture
def project(tmp_path):
    """A project folder with params.yaml (one data set: two models, a distilled student, an LLM) and known
    metrics for those entries, plus the files of an entry and a data set params no longer declare."""
    params = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    params["datasets"] = {"toy": {**params["datasets"]["sst2"], "n_per_class": {"train": 300}}}
    params["models"] = {"big": params["models"]["minilm"], "small": {**params["models"]["minilm_l3"], "layers": [0, 2]},
                        "tfidf": params["models"]["tfidf"]}
    params["distill"] = {**params["distill"], "teacher": "big", "students": ["small"]}
    params["llms"] = {"tiny": params["llms"]["smollm2"]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    m = tmp_path / "metrics"
    eager = _variant(0.8908, 6.9, 12.0, 1.0)
    _entry(m, "toy", "small", accuracy=0.890789, low=0.874342, high=0.905921, f1=0.890558, n=1520, train_time=58.07,
           auroc=(0.961234, 0.950049, 0.970551), kind="transformer", cpu={"status": "measured", "reference_variant": "eager_fp32", "best_variant": "onnx_int8", "variants": {
               "eager_fp32": eager, "onnx_int8": _variant(0.889474, 2.991, 5.5925, 2.32)}})
    _entry(m, "toy", "big", accuracy=0.889474, low=0.874342, high=0.905263, f1=0.889367, n=1520, train_time=108.79,
           kind="transformer", cpu={"status": "measured", "reference_variant": "eager_fp32", "best_variant": "onnx_int8", "variants": {
               "eager_fp32": eager, "onnx_int8": _variant(0.891447, 3.4257, 6.1462, 3.876)}})
    _entry(m, "toy", "small_kd", accuracy=0.878289, low=0.861842, high=0.894079, f1=0.878071, n=1520, train_time=54.38,
           kind="transformer", extra_train={"distilled_from": "big"},
           cpu={"status": "measured", "reference_variant": "eager_fp32", "best_variant": "eager_fp32", "variants": {"eager_fp32": eager}})
    _entry(m, "toy", "tfidf", accuracy=0.852632, low=0.834868, high=0.871053, f1=0.851602, n=1520, train_time=0.87,
           kind="tfidf", cpu={"status": "measured", "reference_variant": "sklearn", "best_variant": "sklearn",
                              "variants": {"sklearn": _variant(0.852632, 0.8223, 0.9075, 1.0)}})
    _entry(m, "toy", "tiny", accuracy=0.505, low=0.435, high=0.575, f1=0.329089, n=200, train_time=0.0, kind="llm",
           extra_train={"shots_per_class": 2}, cpu={"status": "measured", "reference_variant": "fewshot", "best_variant": "fewshot",
                                                     "variants": {"fewshot": _variant(0.505, 393.0863, 497.3416, 1.0)}})
    for ds, name in (("toy", "ghost"), ("old_ds", "small")):  # leftovers: must never be rendered
        _entry(m, ds, name, accuracy=0.111111, low=0.1, high=0.2, f1=0.111111, n=1520, train_time=7777.0,
               kind="transformer", cpu=NO_GPU)
    _write(m / "hardware.json", HARDWARE)
    board = {"toy": {"small": {"rank": 1, "vs_best_diff": None, "vs_best_p_value": None},
                     "big": {"rank": 2, "vs_best_diff": -0.001316, "vs_best_p_value": 0.8974},
                     "small_kd": {"rank": 3, "vs_best_diff": -0.0125, "vs_best_p_value": 0.009399},
                     "tfidf": {"rank": 4, "vs_best_diff": -0.038158, "vs_best_p_value": 1.4677e-05},
                     "tiny": {"rank": 5, "vs_best_diff": -0.375, "vs_best_p_value": 7.58e-17}},
             "old_ds": {"small": {"rank": 1, "vs_best_diff": None, "vs_best_p_value": None}}}
    _write(m / "leaderboard.json", board)
    cand = {"accuracy": 0.889474, "p95_ms": 5.5925, "variant": "onnx_int8", "violations": []}
    _write(m / "recommendation.json", {"toy": {
        "recommended": "small", "runner_up": "small_kd", "objective": "accuracy", "device": "cpu",
        "comparison": {"diff": 0.0125, "low": 0.0033, "high": 0.0211, "p_value": 0.009399, "significant": True},
        "candidates": {"small": {"model": "small", **cand},
                       "small_kd": {"model": "small_kd", **cand, "variant": "eager_fp32", "accuracy": 0.8783},
                       "tiny": {"model": "tiny", **cand, "accuracy": 0.505, "violations": ["accuracy 0.505 < 0.75"]}}}})
    markers = "\n".join(f"<!-- BEGIN generated:{b} -->\n<!-- END generated:{b} -->" for b in BLOCKS)
    (tmp_path / "README.md").write_text(f"# Toy\n\nBefore.\n\n{markers}\n\nAfter.\n")
    return tmp_path


def _rows(text: str) -> dict:
    """Table rows of the results block, keyed by the model cell's entry name: {name: [cells]}."""
    block = text.split("<!-- BEGIN generated:results -->", 1)[1].split("<!-- END generated:results -->", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines() if line.startswith("| toy")]
    return {row[1].split()[0]: row for row in rows}


def test_results_table_renders_known_metrics_exactly(render, project):
    assert render.main(["--root", str(project)]) == 0
    text = (project / "README.md").read_text()
    rows = _rows(text)
    assert list(rows) == ["small", "big", "small_kd", "tfidf", "tiny"]  # leaderboard rank order
    assert rows["small"] == ["toy", "small (layers 0, 2)", "0.8908 [0.874, 0.906]", "0.8906",
                             "0.9612 [0.950, 0.971]", "58 s", "ONNX Runtime int8", "0.8895", "2.99 / 5.59 ms", "2.3×"]
    assert rows["big"][1:] == ["big", "0.8895 [0.874, 0.905]", "0.8894", "", "109 s", "ONNX Runtime int8", "0.8914",
                               "3.43 / 6.15 ms", "3.9×"]
    assert rows["small_kd"][1:6] == ["small_kd (distilled from big)", "0.8783 [0.862, 0.894]", "0.8781", "", "54 s"]
    assert rows["small_kd"][6:] == ["eager fp32", "0.8908", "6.90 / 12.0 ms", ""]  # best is the reference: no speed-up
    assert rows["tfidf"][1:] == ["tfidf (TF-IDF)", "0.8526 [0.835, 0.871]", "0.8516", "", "0.87 s", "scikit-learn",
                                 "0.8526", "0.82 / 0.91 ms", ""]
    # the LLM was scored on fewer rows than the data set's other entries: its count is shown
    assert rows["tiny"][1:6] == ["tiny (LLM, 2-shot)", "0.5050 [0.435, 0.575] (200 rows)", "0.3291", "",
                                 "none (prompted)"]
    assert rows["tiny"][8] == "393 / 497 ms"
    assert "(1520 rows)" not in text.split("<!-- END generated:results -->")[0]
    assert "- toy: 1520 test rows; **not comparable** to published numbers (`carve` validation 0.02; " \
           "`n_per_class` train 300)." in text
    assert "Benchmarks measured on: Test CPU 9000 (x86_64), 4 usable of 8 logical cores, 15.5 GiB RAM; " \
           "GPU: unavailable; Linux test, Python 3.11.7, torch 2.13.0+cpu." in text
    assert text.startswith("# Toy\n\nBefore.\n\n") and text.endswith("\n\nAfter.\n")  # outside the markers: untouched


def test_recommendation_and_significance_blocks(render, project):
    assert render.main(["--root", str(project)]) == 0
    text = (project / "README.md").read_text()
    assert ("| toy | **small** | ONNX Runtime int8 | 0.8895 | 5.59 ms | small_kd | +1.2 pt [+0.3, +2.1] | "
            "0.0094 (significant) |") in text
    assert "- toy/tiny is excluded: accuracy 0.505 < 0.75." in text
    assert "| toy | big | -0.1 pt | 0.90 | not significant |" in text
    assert "| toy | small_kd (distilled from big) | -1.2 pt | 0.0094 | significant |" in text
    assert "| toy | tiny (LLM, 2-shot) | -37.5 pt | 7.6e-17 | significant, on its 200 rows |" in text


def test_undeclared_entries_are_never_rendered(render, project):
    assert render.main(["--root", str(project)]) == 0
    text = (project / "README.md").read_text()
    for leftover in ("ghost", "old_ds", "0.1111", "7777", "2.2 h"):
        assert leftover not in text


def test_check_reports_a_stale_block_and_rewrite_fixes_it(render, project, capsys):
    assert render.main(["--root", str(project), "--check"]) == 1  # the markers are still empty
    out = capsys.readouterr().out
    for block in BLOCKS:
        assert f"README.md: generated block '{block}' differs" in out
    assert render.main(["--root", str(project)]) == 0
    assert render.main(["--root", str(project), "--check"]) == 0
    docs = project / "docs"
    docs.mkdir()
    readme = (project / "README.md").read_text()
    (docs / "page.md").write_text(readme.replace("0.8908 [0.874, 0.906]", "0.9999 [0.874, 0.906]"))
    capsys.readouterr()
    assert render.main(["--root", str(project), "--check"]) == 1  # a hand edit inside a docs page's block
    out = capsys.readouterr().out
    assert "docs/page.md: generated block 'results' differs" in out and "README.md" not in out.split("\n")[0]


def test_missing_metrics_and_unknown_blocks_are_errors(render, project, capsys):
    saved = (project / "metrics/eval/toy/tfidf.json").read_text()
    (project / "metrics/eval/toy/tfidf.json").unlink()
    assert render.main(["--root", str(project), "--check"]) == 2
    assert "dvc repro evaluate@toy-tfidf" in capsys.readouterr().err
    (project / "metrics/eval/toy/tfidf.json").write_text(saved)
    (project / "README.md").write_text("<!-- BEGIN generated:nonsense -->\n<!-- END generated:nonsense -->\n")
    assert render.main(["--root", str(project)]) == 2
    assert "README.md: unknown generated block 'nonsense'" in capsys.readouterr().err


def test_committed_blocks_match_the_committed_metrics(render, capsys):
    """README.md's (and docs/'s) generated blocks are what the committed params.yaml and metrics/ give."""
    readme = (ROOT / "README.md").read_text()
    assert "<!-- BEGIN generated:results -->" in readme and "<!-- END generated:results -->" in readme
    status = render.main(["--root", str(ROOT), "--check"])
    assert status == 0, capsys.readouterr().out + "\nRun `make docs` and commit README.md / docs/."


def test_experiments_block_comes_from_the_experiment_reports(render, project, capsys):
    """Check that the experiments block copies each workflow's summary table and names its experiments,
    commits and recipe from the .csv; a missing report is one error naming the command that writes it."""
    folder = project / "reports" / "experiments"
    folder.mkdir(parents=True)
    header = "| dataset | model | lr=1e-04 | best lr |\n|:--|:--|--:|--:|\n"
    (folder / "lr.md").write_text("# Learning rate\n\nFrom 2 experiment(s).\n\n" + header
                                  + "| toy | tiny | 0.9123 | 0.0001 |\n")
    (folder / "lr.csv").write_text("experiment,rev,dataset,model,lr,batch_size,epochs,seed,accuracy\n"
                                   "lr-1e-04,abc1234,toy,tiny,1e-4,32.0,2.0,42,0.9123\n"
                                   "lr-2e-04,def5678,toy,tiny,2e-4,32.0,2.0,42,0.8\n")
    page = project / "exp.md"
    page.write_text("x\n<!-- BEGIN generated:experiments -->\n<!-- END generated:experiments -->\n")
    assert render.main(["--root", str(project), str(page)]) == 2  # no seeds report yet
    err = capsys.readouterr().err
    assert "reports/experiments/seeds.md" in err and "experiments.py run seeds" in err
    (folder / "seeds.md").write_text("# Seeds\n\n| dataset | model | accuracy |\n|:--|:--|:--|\n| toy | tiny | 0.9 ± 0.01 |\n")
    (folder / "seeds.csv").write_text("experiment,rev,dataset,model,epochs,accuracy\ns-42,aaa0001,toy,tiny,3.0,0.9\n")
    assert render.main(["--root", str(project), str(page)]) == 0
    text = page.read_text()
    assert "**Learning rate** (2 experiments on commit(s) abc1234, def5678; epochs 2, batch_size 32;" in text
    assert "| toy | tiny | 0.9123 | 0.0001 |" in text and "# Learning rate" not in text
    assert "**Seeds** (1 experiments on commit(s) aaa0001; epochs 3;" in text and "| toy | tiny | 0.9 ± 0.01 |" in text


def test_run_times_block_comes_from_the_run_times_report(render, project, capsys):
    """Check the run-times block against a known report: total in s and min, families summed slowest first
    with their shares, the time outside stages, the five slowest stages, the machine; a missing report is one
    error naming what writes it."""
    page = project / "times.md"
    page.write_text("x\n<!-- BEGIN generated:run_times -->\n<!-- END generated:run_times -->\n")
    assert render.main(["--root", str(project), str(page)]) == 2
    assert "reports/run_times.json is missing. Fix: `make repro` writes it." in capsys.readouterr().err
    (project / "reports").mkdir(exist_ok=True)
    stages = {"train@a-m": 300.0, "benchmark@a-m": 150.0, "train@b-m": 100.0, "benchmark@b-m": 50.0,
              "prepare@a": 20.0, "aggregate": 10.0}
    (project / "reports" / "run_times.json").write_text(json.dumps(
        {"stages": stages, "total_s": 640.0, "unchanged": 1, "restored": 2, "setup_s": None}))
    assert render.main(["--root", str(project), str(page)]) == 0
    text = page.read_text()
    assert "**640 s (10 min 40 s)**" in text and "6 stages run, 1 unchanged, 2 restored" in text
    assert "(building `.venv` not included)" in text
    assert "| train | 2 | 400 s | 62 % |" in text and "| benchmark | 2 | 200 s | 31 % |" in text
    assert text.index("| train |") < text.index("| benchmark |") < text.index("| prepare |")
    assert "| outside stages (DVC itself) |  | 10 s | 2 % |" in text
    assert ("Slowest stages: `train@a-m` 300 s, `benchmark@a-m` 150 s, `train@b-m` 100 s, `benchmark@b-m` 50 s, "
            "`prepare@a` 20 s.") in text
    assert "usable of" in text  # the machine of metrics/hardware.json

    (project / "reports" / "run_times.json").write_text(json.dumps(
        {"stages": stages, "total_s": 640.0, "unchanged": 0, "restored": 0, "setup_s": 44.6}))
    assert render.main(["--root", str(project), str(page)]) == 0
    assert ("building `.venv` before it (`make setup`) took 45 s, so `make repro` on a fresh clone took 685 s "
            "(11 min 25 s).") in page.read_text()
