"""The HTTP few-shot backend against a stub OpenAI-compatible server on 127.0.0.1 (no network).

Covers the request ChatClassifier sends, the API key's path (header only, never in errors,
outputs or logs), endpoint failures, fewshot.run_http, the fewshot stage end to end and the
validation of http `llms:` entries.
"""

from __future__ import annotations

import copy
import json
import logging
import socket
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import load_stage

from textcls.llm import fewshot

from textcls.llm import prompting
from textcls.cli import run
from textcls.errors import ParamsError, TextclsError
from textcls.llm.http import ChatClassifier
from textcls.config.params import LLMParams, YamlLoader, parse_params

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["World", "Sports", "Business"]
PLANTED_KEY = "sk-test-PLANTED-0123456789"
KEY_ENV = "TEXTCLS_TEST_KEY"
USAGE = {"prompt_tokens": 100, "completion_tokens": 5}  # 105 tokens billed per request
OUTPUTS = ("metrics", "train_metrics", "bench", "confusion", "calibration", "predictions", "served")


def label_in_last_user_message(body: dict) -> tuple[int, object]:
    """The stub's default answer: the class named in the last user message, else text naming no class."""
    last = [m["content"] for m in body["messages"] if m["role"] == "user"][-1].casefold()
    found = [n for n in NAMES if n.casefold() in last]
    return 200, json.dumps({"label": found[0]}) if found else "I am not sure."


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server API)
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.loads(raw)
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, content = (404, "no such route") if self.path != "/v1/chat/completions" else self.server.answer(body)
        if isinstance(content, bytes):  # raw bytes: sent as they are (e.g. not JSON)
            data = content
        elif status == 200:
            data = json.dumps({"choices": [{"message": {"content": content}}], "usage": USAGE}).encode()
        else:
            data = json.dumps({"error": {"message": content}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def stub():
    """A stub chat-completions server: `.url` (base URL ending in /v1), `.requests` (path, headers, body
    of each request) and `.answer` (body -> (status, content str | raw bytes)), settable per test."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handle = types.SimpleNamespace(url=f"http://127.0.0.1:{server.server_address[1]}/v1", requests=server.requests)
    server.answer = lambda body: handle.answer(body)
    handle.answer = label_in_last_user_message
    yield handle
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def closed_url() -> str:
    """The base URL of a port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module")
def fewshot_stage():
    """stages/fewshot.py imported as a module."""
    return load_stage("fewshot")


@pytest.fixture(scope="module")
def params_raw() -> dict:
    """The project's params.yaml, parsed (tests deep-copy it before changing it)."""
    return yaml.load((ROOT / "params.yaml").read_text(encoding="utf-8"), Loader=YamlLoader)  # noqa: S506


def http_entry(url: str, **extra) -> dict:
    return {"backend": "http", "url": url, "model": "stub-model", "api_key_env": KEY_ENV, "shots_per_class": 1,
            "max_test_rows": None, "timeout_s": 5.0, **extra}


@pytest.fixture
def stage_setup(tmp_path, make_prepared_dir, params_raw, monkeypatch):
    """Factory: prepared data, params.yaml, hardware.json and weights dir for the stage; returns its argv
    and the output paths (under tmp_path/out). The key is planted in the environment."""
    monkeypatch.setenv(KEY_ENV, PLANTED_KEY)
    train = (["world leaders meet", "sports: the team won", "business: shares rise", "world talks end",
              "sports match lost", "business market falls", "world war"], [0, 1, 2, 0, 1, 2, 0])
    test = (["world news today", "the sports game", "business and the stock price", "a text about nothing"],
            [0, 1, 2, 1])

    def make(url: str) -> tuple[list[str], dict]:
        prepared = make_prepared_dir({"train": train, "validation": train, "test": test})
        (prepared / "meta.json").write_text(json.dumps({"label_names": NAMES}), encoding="utf-8")
        raw = copy.deepcopy(params_raw)
        raw["datasets"] = {"toy": {"format": "parquet", "path": str(prepared), "files": {"test": "test.parquet"}}}
        raw["llms"] = {"stub": http_entry(url)}
        params = tmp_path / "params.yaml"
        params.write_text(yaml.safe_dump(raw), encoding="utf-8")
        (tmp_path / "hardware.json").write_text(json.dumps({"cpu": "test"}), encoding="utf-8")
        (tmp_path / "weights").mkdir(exist_ok=True)
        out = tmp_path / "out"
        paths = dict(zip(OUTPUTS, (out / "metrics.json", out / "train.json", out / "bench.json",
                                   out / "confusion.csv", out / "calibration.csv", out / "preds" / "p.parquet",
                                   out / "served" / "s.parquet")))
        argv = ["toy", "stub", str(tmp_path / "weights"), str(prepared), str(tmp_path / "hardware.json"),
                *map(str, paths.values()), "--params", str(params)]
        return argv, paths

    return make


def client(url: str, structured: bool = True, api_key_env: str | None = None) -> ChatClassifier:
    return ChatClassifier(url, "stub-model", api_key_env, timeout_s=5.0, structured_output=structured)


MESSAGES = prompting.chat_messages("Classify: {labels}.", NAMES, [("sports match", "Sports")], "world talks")


# --------------------------------------------------------------------------- 1. the request


@pytest.mark.parametrize("structured", [True, False])
def test_request_body_carries_model_messages_temperature_and_schema(stub, structured):
    """Check that the request has model, messages, temperature 0, and a label-enum schema only if structured."""
    answer, tokens = client(stub.url, structured).complete(MESSAGES, NAMES)
    assert (answer, tokens) == ('{"label": "World"}', 105)
    (request,) = stub.requests
    body = request["body"]
    assert request["path"] == "/v1/chat/completions"
    assert body["model"] == "stub-model" and body["temperature"] == 0 and body["messages"] == MESSAGES
    if structured:
        assert body["response_format"]["type"] == "json_schema"
        schema = body["response_format"]["json_schema"]["schema"]
        assert schema["properties"]["label"]["enum"] == NAMES and schema["required"] == ["label"]
    else:
        assert "response_format" not in body


# --------------------------------------------------------------------------- 2. the API key


@pytest.mark.security
def test_api_key_goes_only_into_the_authorization_header(stub, monkeypatch):
    """Check that the key from the api_key_env variable is sent as a Bearer token and nowhere else in the request."""
    monkeypatch.setenv(KEY_ENV, PLANTED_KEY)
    client(stub.url, api_key_env=KEY_ENV).complete(MESSAGES, NAMES)
    (request,) = stub.requests
    assert request["headers"]["Authorization"] == f"Bearer {PLANTED_KEY}"
    assert PLANTED_KEY not in json.dumps(request["body"])


@pytest.mark.security
def test_unset_api_key_variable_is_named_without_any_key(monkeypatch):
    """Check that an unset api_key_env variable raises TextclsError naming the variable and containing no key."""
    monkeypatch.setenv(KEY_ENV, PLANTED_KEY)  # another variable holds a key: it must not leak into the message
    monkeypatch.delenv("TEXTCLS_TEST_UNSET_KEY", raising=False)
    with pytest.raises(TextclsError, match="TEXTCLS_TEST_UNSET_KEY") as err:
        client("http://127.0.0.1:9/v1", api_key_env="TEXTCLS_TEST_UNSET_KEY")
    assert PLANTED_KEY not in str(err.value) and "sk-" not in str(err.value)


# --------------------------------------------------------------------------- 3. endpoint failures


@pytest.mark.bad_input
def test_unreachable_endpoint_is_a_clear_error(closed_url):
    """Check that a closed port gives a TextclsError saying the endpoint cannot be reached."""
    with pytest.raises(TextclsError, match="Cannot reach"):
        client(closed_url).complete(MESSAGES, NAMES)


@pytest.mark.bad_input
@pytest.mark.parametrize("status, content, expected", [
    (401, "invalid api key", "HTTP 401"),
    (200, b"<html>not json</html>", "did not answer with JSON"),
    (200, b'{"object": "list", "data": []}', "without choices"),
])
def test_bad_endpoint_answers_are_clear_errors(stub, status, content, expected):
    """Check that HTTP 401, a non-JSON body and JSON without choices each raise a TextclsError saying so."""
    stub.answer = lambda body: (status, content)
    with pytest.raises(TextclsError, match=expected):
        client(stub.url).complete(MESSAGES, NAMES)


# --------------------------------------------------------------------------- 4. fewshot.run_http


def test_run_http_predicts_valid_labels_and_counts_invalid_answers(stub):
    """Check that run_http gives one-hot valid labels, sums usage tokens and maps invalid answers to fallback."""
    cfg = LLMParams(**{"name": "stub", **http_entry(stub.url, api_key_env=None)})
    demos = [("world leaders", 0), ("sports team", 1), ("business shares", 2)]
    texts = ["sports today", "world news", "no class named here", "business deal", "more sports"]
    result, none = fewshot.run_http(cfg, NAMES, demos, texts, fallback=2)
    assert none is None
    assert result.probs.shape == (5, 3) and set(np.unique(result.probs)) <= {0.0, 1.0}
    assert (result.probs.sum(axis=1) == 1).all()
    assert result.probs.argmax(axis=1).tolist() == [1, 0, 2, 2, 1]
    assert result.invalid_answers == 1
    assert result.tokens_processed == 5 * 105 and result.prompt_tokens_per_example == 105
    assert len(result.seconds) == 5 and len(stub.requests) == 5
    cost = fewshot.costs(result, price_per_1m_tokens=0.15, price_per_hour=0.10)
    assert cost["cost_per_1k_texts_usd"] == pytest.approx(0.15 * 105 * 1000 / 1e6)


def test_costs_of_an_endpoint_without_usage(stub):
    """Check that an endpoint answering without `usage` still gets a cost (price_per_1m_tokens null)."""
    stub.answer = lambda body: (200, b'{"choices": [{"message": {"content": "{\\"label\\": \\"World\\"}"}}]}')
    cfg = LLMParams(**{"name": "stub", **http_entry(stub.url, api_key_env=None)})
    result, _ = fewshot.run_http(cfg, NAMES, [("a", 0), ("b", 1), ("c", 2)], ["world"], fallback=0)
    assert result.tokens_processed == 0
    cost = fewshot.costs(result, price_per_1m_tokens=None, price_per_hour=0.10)
    assert cost["cost_per_1k_texts_usd"] > 0  # from the measured time, with no token usage reported


# --------------------------------------------------------------------------- 5-6. the stage


@pytest.mark.security
def test_stage_end_to_end_writes_metrics_and_never_the_key(stub, stage_setup, fewshot_stage, caplog, capsys):
    """Check that the fewshot stage scores every test text through the endpoint and writes the key nowhere."""
    caplog.set_level(logging.DEBUG)
    argv, paths = stage_setup(stub.url)
    assert fewshot_stage.main(argv) == 0

    metrics = json.loads(paths["metrics"].read_text(encoding="utf-8"))
    for key in ("accuracy", "n", "tokens_processed", "cost_per_1k_texts_usd", "invalid_answers"):
        assert key in metrics, key
    assert metrics["kind"] == "llm" and metrics["n"] == 4 and metrics["invalid_answers"] == 1
    assert metrics["tokens_processed"] == 4 * 105
    assert metrics["accuracy"] == 0.75  # the text naming no class -> World (most frequent in train)
    assert pq.read_table(paths["predictions"]).num_rows == 4
    every = pq.read_table(paths["served"]).to_pandas()  # the same answers, as the `fewshot` variant served them
    predictions = pq.read_table(paths["predictions"]).to_pandas()
    assert set(every["device"]) == {"remote"} and set(every["variant"]) == {"fewshot"}
    served, validation = every[every["split"] == "test"], every[every["split"] == "validation"]
    assert len(validation) == metrics["validation_rows"] > 0 and validation["latency_ms"].notna().all()
    assert served["row"].tolist() == predictions["row"].tolist()
    assert served["pred"].tolist() == predictions["pred"].tolist() and (served["pred"] == served["label"]).mean() == 0.75

    assert len(stub.requests) == 4 + len(validation)  # the test rows, then the validation rows
    for request in stub.requests:
        messages = request["body"]["messages"]
        assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
        shown = sorted(json.loads(m["content"])["label"] for m in messages if m["role"] == "assistant")
        assert shown == sorted(NAMES)  # one demonstration per class
        assert request["headers"]["Authorization"] == f"Bearer {PLANTED_KEY}"

    captured = capsys.readouterr()
    written = [p for p in paths["metrics"].parent.rglob("*") if p.is_file()]
    assert {p.name for p in written} == {p.name for p in paths.values()}  # no temp files left
    for path in written:
        assert PLANTED_KEY.encode() not in path.read_bytes(), path
    assert PLANTED_KEY not in caplog.text + captured.out + captured.err


@pytest.mark.bad_input
def test_stage_with_unreachable_endpoint_writes_nothing(closed_url, stage_setup, fewshot_stage, capsys):
    """Check that the stage run through cli.run fails with exit 1 and a clear message, leaving no output file."""
    argv, paths = stage_setup(closed_url)
    assert run(fewshot_stage.main, argv) == 1
    assert "Cannot reach" in capsys.readouterr().err
    assert not any(p.exists() for p in paths.values())


@pytest.mark.bad_input
def test_stage_with_unreachable_endpoint_removes_stale_outputs(closed_url, stage_setup, fewshot_stage):
    """Check that a failed stage run also removes a stale metrics file from an earlier run."""
    argv, paths = stage_setup(closed_url)
    paths["metrics"].parent.mkdir(parents=True)
    paths["metrics"].write_text('{"accuracy": 0.99}', encoding="utf-8")
    with pytest.raises(TextclsError, match="Cannot reach"):
        fewshot_stage.main(argv)
    assert not any(p.exists() for p in paths.values())


@pytest.mark.security
def test_api_key_with_a_trailing_newline_is_stripped_and_control_characters_refused(stub, monkeypatch):
    """Check that a key read from a .env file with a newline still works, and inner control characters are
    refused with a message naming the variable but not the key."""
    monkeypatch.setenv("TEXTCLS_TEST_KEY", PLANTED_KEY + "\n")
    client = ChatClassifier(stub.url, "stub-model", "TEXTCLS_TEST_KEY", 5.0, True)
    client.complete([{"role": "user", "content": "world"}], NAMES)
    assert stub.requests[-1]["headers"]["Authorization"] == f"Bearer {PLANTED_KEY}"
    monkeypatch.setenv("TEXTCLS_TEST_KEY", "sk-a\x01b")
    with pytest.raises(TextclsError, match="TEXTCLS_TEST_KEY.*control characters") as err:
        ChatClassifier(stub.url, "stub-model", "TEXTCLS_TEST_KEY", 5.0, True)
    assert "sk-a" not in str(err.value)


# --------------------------------------------------------------------------- 7. params validation


def parse_with_llm(params_raw: dict, entry: dict):
    raw = copy.deepcopy(params_raw)
    raw["llms"] = {"remote": entry}
    return parse_params(raw)


def test_http_entry_from_params_validates(params_raw):
    """Check that a complete http llms: entry passes validation and keeps the variable's name, not a key."""
    cfg = parse_with_llm(params_raw, http_entry("http://127.0.0.1:8000/v1")).llms["remote"]
    assert (cfg.backend, cfg.api_key_env, cfg.structured_output) == ("http", KEY_ENV, True)


@pytest.mark.bad_input
def test_http_entry_without_url_names_the_key(params_raw):
    """Check that an http llms: entry without url raises ParamsError naming 'llms.<name>.url'."""
    entry = http_entry("x")
    del entry["url"]
    with pytest.raises(ParamsError, match=r"llms\.remote\.url"):
        parse_with_llm(params_raw, entry)


@pytest.mark.bad_input
@pytest.mark.security
@pytest.mark.parametrize("change, named", [
    ({"api_key_env": "sk-abc-123"}, "llms.remote.api_key_env"),
    ({"api_key": "sk-abc-123"}, "'api_key'"),
])
def test_key_shaped_values_are_rejected_without_echoing_them(params_raw, change, named):
    """Check that a key in api_key_env or an unknown api_key: fails naming the key, never echoing the value."""
    with pytest.raises(ParamsError) as err:
        parse_with_llm(params_raw, http_entry("http://127.0.0.1:8000/v1", **change))
    assert named in str(err.value)
    assert "sk-abc-123" not in str(err.value)


@pytest.mark.security
def test_url_with_credentials_is_refused_without_echoing_them(params_raw):
    """Check that `https://user:secret@host` is refused (params go to git and dvc.lock) and the error
    message does not repeat the password."""
    with pytest.raises(ParamsError, match=r"llms\.remote\.url.*without user:password@") as err:
        parse_with_llm(params_raw, http_entry("https://alice:s3cr3t-pass@api.example.com/v1"))
    assert "s3cr3t-pass" not in str(err.value) and "alice" not in str(err.value)
    assert "https://***@api.example.com/v1" in str(err.value)


@pytest.mark.security
def test_invalid_url_is_echoed_without_credentials(params_raw):
    """Check that a malformed URL that carries credentials is named in the error with them masked."""
    with pytest.raises(ParamsError, match=r"llms\.remote\.url") as err:
        parse_with_llm(params_raw, http_entry("ftp://bob:hunter2@files.example.com"))
    assert "hunter2" not in str(err.value) and "ftp://***@files.example.com" in str(err.value)
