"""The real Hugging Face Hub code paths (``textcls.data.hub.download``, ``textcls.sources.models.load_*``,
``HfApi().dataset_info/model_info``), run offline against the local stand-in hub in ``hubstandin.py``.

conftest.py switches the hub libraries offline at import, and they read HF_ENDPOINT and the offline
switches once, at import time; so the hub-using code runs in child processes (``run_python``) whose
environment points HF_ENDPOINT at the stand-in, turns the offline switches off and puts every cache in
a temp HF_HOME. Each child does all its loads once (module-scoped fixtures) and reports what happened
as JSON; the tests below check those reports against what the stand-in served.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hubstandin import (
    AG_NEWS_CLASSES,
    HubStandIn,
    copy_model_repo,
    dataset_dir,
    model_dir,
    repo_sha,
    run_python,
    write_ag_news_repo,
    write_glue_sst2_repo,
)

AG_ID, GLUE_ID, BERT_ID = "fancyzhx/ag_news", "nyu-mll/glue", "bert-base-uncased"
WRONG_SHA = "0" * 40
WRONG_BRANCH = "no-such-branch"
BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "team", "goal", "market", "chip",
              "good", "bad", "movie"]
WATCHED = ["bert.embeddings.word_embeddings.weight", "bert.encoder.layer.1.attention.self.query.weight",
           "classifier.weight"]

# The child processes: each step is tried, and its outcome (value or error) written to results.json.
PRELUDE = r'''
import json, sys, traceback
from pathlib import Path
out = Path(sys.argv[1])
results = {}
def attempt(key, fn):
    try:
        results[key] = {"ok": True, "value": fn()}
    except Exception as err:
        results[key] = {"ok": False, "type": type(err).__name__, "module": type(err).__module__,
                        "message": str(err), "traceback": traceback.format_exc()[-3000:]}
'''

DATASETS_SCRIPT = PRELUDE + r'''
from textcls.errors import DataError
from textcls.data.hub import download
from textcls.config.params import HubDatasetParams
ag_sha = sys.argv[2]

def dl(key, **spec):
    folder = out / key
    folder.mkdir()
    return download(HubDatasetParams(**spec), folder)

AG = dict(name="ag_news", hub_id="fancyzhx/ag_news", splits={"train": "train", "test": "test"})
attempt("pinned", lambda: dl("pinned", **AG, revision=ag_sha))  # first, while the cache is empty
attempt("ag_news", lambda: dl("ag_news", **AG))
attempt("sst2", lambda: dl("sst2", name="sst2", hub_id="nyu-mll/glue", config="sst2",
                           splits={"train": "train", "test": "validation"}, text_column="sentence"))
attempt("glue_without_config", lambda: dl("glue_without_config", name="glue", hub_id="nyu-mll/glue"))
attempt("wrong_sha", lambda: dl("wrong_sha", **AG, revision="0" * 40))
attempt("wrong_branch", lambda: dl("wrong_branch", **AG, revision="no-such-branch"))
attempt("missing_repo", lambda: dl("missing_repo", name="missing", hub_id="nobody/missing"))
for key in [k for k, r in results.items() if not r["ok"]]:
    results[key]["is_data_error"] = results[key]["type"] == "DataError"

from huggingface_hub import HfApi
api = HfApi()
attempt("info", lambda: {str(rev): api.dataset_info(repo, revision=rev).sha
                         for repo in ("fancyzhx/ag_news",) for rev in (None, "main", ag_sha)})
attempt("glue_info", lambda: api.dataset_info("nyu-mll/glue").sha)
attempt("info_wrong_revision", lambda: api.dataset_info("fancyzhx/ag_news", revision="no-such-branch").sha)
(out / "results.json").write_text(json.dumps(results))
'''

MODELS_SCRIPT = PRELUDE + r'''
from safetensors.torch import save_file
from textcls.sources.models import load_classifier, load_tokenizer
sha, watched = sys.argv[2], sys.argv[3].split(",")

def load(key, revision):
    tok = load_tokenizer("bert-base-uncased", revision)
    model = load_classifier("bert-base-uncased", ["a", "b"], revision)
    state = model.state_dict()
    save_file({k: state[k].contiguous() for k in watched}, str(out / f"{key}.safetensors"))
    return {"ids": tok("the team market")["input_ids"], "model": type(model).__name__,
            "id2label": model.config.id2label}

attempt("pinned", lambda: load("pinned", sha))  # first, while the cache is empty
attempt("main", lambda: load("main", None))
attempt("wrong_model", lambda: load_classifier("bert-base-uncased", ["a", "b"], "0" * 40))
attempt("wrong_tokenizer", lambda: load_tokenizer("bert-base-uncased", "no-such-branch"))
from huggingface_hub import HfApi
api = HfApi()
attempt("info", lambda: {str(rev): api.model_info("bert-base-uncased", revision=rev).sha
                         for rev in (None, "main", sha)})
import textcls.sources.models as models
attempt("resolved_commit", lambda: {str(rev): models.resolved_commit("bert-base-uncased", rev)
                                    for rev in (None, "main", sha)})  # the commit recorded in a model card
(out / "results.json").write_text(json.dumps(results))
'''


def write_random_bert(folder: Path) -> Path:
    """A tiny random BertForSequenceClassification (2 labels) + its WordPiece tokenizer, saved as safetensors."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True)
    vocab_file = folder.parent / "vocab.txt"
    vocab_file.write_text("\n".join(BERT_VOCAB) + "\n", encoding="utf-8")
    # transformers 5 takes the vocabulary as `vocab=`; `vocab_file=` is ignored there.
    BertTokenizerFast(vocab=str(vocab_file), model_max_length=64).save_pretrained(folder)
    config = BertConfig(vocab_size=len(BERT_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2)
    torch.manual_seed(1234)
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("hub")
    served = {"ag_news": write_ag_news_repo(root, rows_per_class_train=8, rows_per_class_test=3, seed=0),
              "glue": write_glue_sst2_repo(root, seed=0)}
    copy_model_repo(root, BERT_ID, write_random_bert(tmp_path_factory.mktemp("bert") / "model"))
    return root, served


@pytest.fixture(scope="module")
def hub(hub_root):
    with HubStandIn(hub_root[0]) as standin:
        yield standin


@pytest.fixture(scope="module")
def served(hub_root) -> dict:
    return hub_root[1]


def _run(script: str, hub: HubStandIn, work: Path, *args: str) -> tuple[dict, list]:
    work.mkdir()
    run = run_python(script, hub, work / "hf_home", args=[str(work), *args], timeout=300, cwd=work)
    assert run.returncode == 0, f"child failed:\n{run.proc.stdout[-3000:]}\n{run.proc.stderr[-5000:]}"
    return json.loads((work / "results.json").read_text()), run.blocked


@pytest.fixture(scope="module")
def datasets_run(hub, hub_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("datasets_run")
    results, blocked = _run(DATASETS_SCRIPT, hub, out / "work", repo_sha(dataset_dir(hub_root[0], AG_ID)))
    return out / "work", results, blocked


@pytest.fixture(scope="module")
def models_run(hub, hub_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("models_run")
    results, blocked = _run(MODELS_SCRIPT, hub, out / "work", repo_sha(model_dir(hub_root[0], BERT_ID)),
                            ",".join(WATCHED))
    return out / "work", results, blocked


def _ok(results: dict, key: str):
    result = results[key]
    assert result["ok"], f"{key}: {result.get('type')}: {result.get('message')}\n{result.get('traceback')}"
    return result["value"]


def _columns(path: Path) -> dict:
    return pq.read_table(path).to_pydict()


# --------------------------------------------------------------------------- the stand-in itself


def test_repo_sha_is_deterministic_and_content_based(tmp_path, hub_root):
    a, b = tmp_path / "a", tmp_path / "b"
    write_ag_news_repo(a, 2, 1, seed=5)
    write_ag_news_repo(b, 2, 1, seed=5)
    sha_a = repo_sha(dataset_dir(a, AG_ID))
    assert len(sha_a) == 40 and int(sha_a, 16) >= 0
    assert sha_a == repo_sha(dataset_dir(b, AG_ID))
    write_ag_news_repo(b, 2, 1, seed=6)
    assert repo_sha(dataset_dir(b, AG_ID)) != sha_a
    assert repo_sha(dataset_dir(hub_root[0], AG_ID)) != repo_sha(dataset_dir(hub_root[0], GLUE_ID))


def test_standin_answers_like_the_hub(hub, hub_root):
    """Raw HTTP: resolve headers, Range, revision/repo/entry 404s with the Hub's X-Error-Code, tree pages."""
    import urllib.error
    import urllib.request

    sha = repo_sha(dataset_dir(hub_root[0], AG_ID))

    def call(path, method="GET", headers=None):
        req = urllib.request.Request(hub.url + path, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    readme = (dataset_dir(hub_root[0], AG_ID) / "README.md").read_bytes()
    for rev in ("main", sha):
        status, headers, body = call(f"/datasets/{AG_ID}/resolve/{rev}/README.md", "HEAD")
        assert (status, headers["X-Repo-Commit"], int(headers["Content-Length"])) == (200, sha, len(readme))
        assert headers["ETag"] and not any(h.lower().startswith("x-xet") for h in headers)
    assert call(f"/datasets/{AG_ID}/resolve/main/README.md", headers={"Range": "bytes=0-2"})[2] == readme[:3]
    status, headers, _ = call(f"/datasets/{AG_ID}/resolve/{WRONG_BRANCH}/README.md", "HEAD")
    assert (status, headers["X-Error-Code"]) == (404, "RevisionNotFound")
    status, headers, _ = call(f"/datasets/{AG_ID}/resolve/main/nothing.txt", "HEAD")
    assert (status, headers["X-Error-Code"], headers["X-Repo-Commit"]) == (404, "EntryNotFound", sha)
    status, headers, _ = call("/api/datasets/nobody/missing/revision/main")
    assert (status, headers["X-Error-Code"]) == (404, "RepoNotFound")
    status, _, body = call(f"/api/datasets/{AG_ID}/tree/main/data")
    assert status == 200 and [e["path"] for e in json.loads(body)] == [
        "data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"]

    hub.page_size = 2  # pagination: follow the Link header to the end
    try:
        paths, url = [], f"{hub.url}/api/datasets/{AG_ID}/tree/{sha}?recursive=true"
        while url:
            with urllib.request.urlopen(url, timeout=10) as resp:
                paths += [e["path"] for e in json.loads(resp.read())]
                link = resp.headers.get("Link")
            url = link.split(";")[0].strip("<>") if link else None
    finally:
        hub.page_size = 1000
    assert paths == ["data", "README.md", "data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"]


# --------------------------------------------------------------------------- data sets


def test_ag_news_download_writes_exactly_the_served_rows(datasets_run, served):
    work, results, _ = datasets_run
    summary = _ok(results, "ag_news")
    assert summary["rows"] == {"train": 32, "test": 12}
    assert summary["label_names"] == AG_NEWS_CLASSES
    for split in ("train", "test"):
        got = _columns(work / "ag_news" / f"{split}.parquet")
        assert got == served["ag_news"][split], split
    train_labels = _columns(work / "ag_news" / "train.parquet")["label"]
    assert sorted(set(train_labels)) == [0, 1, 2, 3] and all(train_labels.count(k) == 8 for k in range(4))
    assert (work / "ag_news" / "classes.txt").read_text(encoding="utf-8") == "World\nSports\nBusiness\nSci/Tech\n"


def test_glue_sst2_config_is_the_one_downloaded(datasets_run, served):
    work, results, _ = datasets_run
    summary = _ok(results, "sst2")
    sst2, cola = served["glue"]["sst2"], served["glue"]["cola"]
    assert summary["label_names"] == ["negative", "positive"]
    assert summary["rows"] == {"train": len(sst2["train"]["sentence"]), "test": len(sst2["validation"]["sentence"])}
    for ours, theirs in (("train", "train"), ("test", "validation")):
        got = _columns(work / "sst2" / f"{ours}.parquet")
        assert got == {"text": sst2[theirs]["sentence"], "label": sst2[theirs]["label"]}, ours
        assert not set(got["text"]) & set(cola[theirs]["sentence"])
    assert (work / "sst2" / "classes.txt").read_text(encoding="utf-8") == "negative\npositive\n"
    # GLUE has several configs and no default one: without `config` the download fails clearly.
    failed = results["glue_without_config"]
    assert not failed["ok"] and failed["is_data_error"] and "nyu-mll/glue" in failed["message"]
    assert "Fix: set hub_datasets.glue.config" in failed["message"] and "sst2" in failed["message"]


def test_pinned_revision_downloads_that_commit(datasets_run, hub, hub_root):
    work, results, _ = datasets_run
    sha = repo_sha(dataset_dir(hub_root[0], AG_ID))
    assert _ok(results, "pinned")["revision"] == sha
    assert _columns(work / "pinned" / "train.parquet") == _columns(work / "ag_news" / "train.parquet")
    paths = [r["path"] for r in hub.requests]
    assert f"/datasets/{AG_ID}/resolve/{sha}/README.md" in paths
    assert f"/datasets/{AG_ID}/resolve/{sha}/data/train-00000-of-00001.parquet" in paths


@pytest.mark.parametrize("key, revision", [("wrong_sha", WRONG_SHA), ("wrong_branch", WRONG_BRANCH)])
def test_wrong_revision_is_one_clear_data_error(datasets_run, key, revision):
    _, results, _ = datasets_run
    failed = results[key]
    assert not failed["ok"] and failed["is_data_error"], failed
    first_line = failed["message"].splitlines()[0]
    assert AG_ID in first_line and revision in first_line and "Traceback" not in failed["message"]
    assert ".revision to a commit, tag or branch" in first_line  # the fix names the key, not "go offline"


def test_missing_dataset_repo_is_a_data_error(datasets_run):
    _, results, _ = datasets_run
    failed = results["missing_repo"]
    assert not failed["ok"] and failed["is_data_error"] and "nobody/missing" in failed["message"]


def test_dataset_info_reports_the_commit_sha(datasets_run, hub_root):
    _, results, _ = datasets_run
    sha = repo_sha(dataset_dir(hub_root[0], AG_ID))
    assert _ok(results, "info") == {"None": sha, "main": sha, sha: sha}
    assert _ok(results, "glue_info") == repo_sha(dataset_dir(hub_root[0], GLUE_ID))
    for key, expected in (("pinned", sha), ("ag_news", sha), ("sst2", repo_sha(dataset_dir(hub_root[0], GLUE_ID)))):
        assert _ok(results, key)["commit"] == expected, key  # download() records the commit it loaded
    failed = results["info_wrong_revision"]
    assert not failed["ok"] and failed["type"] == "RevisionNotFoundError", failed


# --------------------------------------------------------------------------- models


def test_model_loads_through_from_pretrained_with_the_served_weights(models_run, hub_root):
    from safetensors.numpy import load_file

    work, results, _ = models_run
    served = load_file(str(model_dir(hub_root[0], BERT_ID) / "model.safetensors"))
    expected_ids = [BERT_VOCAB.index(t) for t in ("[CLS]", "the", "team", "market", "[SEP]")]
    for key in ("pinned", "main"):
        value = _ok(results, key)
        assert value["model"] == "BertForSequenceClassification"
        assert value["id2label"] == {"0": "a", "1": "b"}
        assert value["ids"] == expected_ids
        loaded = load_file(str(work / f"{key}.safetensors"))
        for name in WATCHED:
            assert (loaded[name] == served[name]).all(), f"{key}: {name} differs from the served weights"


def test_model_info_reports_the_commit_sha(models_run, hub, hub_root):
    _, results, _ = models_run
    sha = repo_sha(model_dir(hub_root[0], BERT_ID))
    assert _ok(results, "info") == {"None": sha, "main": sha, sha: sha}
    assert _ok(results, "resolved_commit") == {"None": sha, "main": sha, sha: sha}
    assert f"/{BERT_ID}/resolve/{sha}/model.safetensors" in [r["path"] for r in hub.requests]


@pytest.mark.parametrize("key, revision", [("wrong_model", WRONG_SHA), ("wrong_tokenizer", WRONG_BRANCH)])
def test_wrong_model_revision_is_a_model_source_error(models_run, key, revision):
    _, results, _ = models_run
    failed = results[key]
    assert not failed["ok"] and failed["type"] == "ModelSourceError", failed
    assert BERT_ID in failed["message"] and revision in failed["message"]
    assert "Fix: set `revision`" in failed["message"]


# --------------------------------------------------------------------------- nothing but the stand-in


def test_the_standin_is_the_only_host_contacted(datasets_run, models_run, hub):
    assert hub.requests, "the stand-in saw no request"
    assert {r["host"] for r in hub.requests} == {hub.netloc}
    assert not hub.unhandled, f"routes the stand-in does not implement: {hub.unhandled}"
    # The children could reach nothing else (their sockets were guarded). The one other name tried is
    # datasets' dataset-viewer lookup (`datasets-server.<HF_ENDPOINT host>/info`, for revision None/main),
    # which datasets tolerates failing.
    blocked = datasets_run[2] + models_run[2]
    assert all(b == {"resolve": "datasets-server.127.0.0.1"} for b in blocked), blocked
