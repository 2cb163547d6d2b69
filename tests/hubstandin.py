"""A local stand-in for the Hugging Face Hub's HTTP API, for offline tests of the real hub code paths.

Point a *child process* at it with ``HF_ENDPOINT=<standin.url>`` (huggingface_hub, datasets and
transformers read HF_ENDPOINT and the offline switches once, at import time; see ``hub_env`` and
``run_python``) and ``datasets.load_dataset``, ``AutoTokenizer/AutoModel*.from_pretrained`` and
``HfApi().dataset_info/model_info`` talk to it as they would to huggingface.co.

Repos are plain folders under one root::

    <root>/models/<repo_id>/<files...>      e.g. models/bert-base-uncased/config.json
    <root>/datasets/<repo_id>/<files...>    e.g. datasets/fancyzhx/ag_news/README.md

``repo_id`` has one ``/`` or none: a folder right under ``models/`` or ``datasets/`` that holds a
file is a repo; otherwise each of its sub-folders is one (``<owner>/<name>``). Each repo has one
commit, whose sha (``repo_sha``) is computed from its files' paths and contents; it answers for
the revisions ``main``, ``refs/heads/main`` and that sha, and with the Hub's 404 +
``X-Error-Code: RevisionNotFound`` for any other, so huggingface_hub raises its real errors.

Served (the Hub's routes, as huggingface_hub 2.x calls them):

- ``HEAD|GET /{repo}/resolve/{rev}/{path}`` and ``/datasets/{repo}/resolve/{rev}/{path}``:
  ``X-Repo-Commit``, ``ETag`` (git blob sha1, or sha256 for LFS-like binaries), ``Content-Length``,
  ``Accept-Ranges`` (``Range: bytes=a-b`` answers 206); never any Xet header, so plain HTTP is used.
- ``GET /api/{models|datasets}/{repo}[/revision/{rev}]``: ``id``, ``sha``, ``siblings``
  (with ``size``/``blobId``/``lfs`` when ``blobs=true``), ``cardData`` (README front matter) ...
- ``GET /api/{type}s/{repo}/tree/{rev}[/{path}]`` (``recursive``, ``expand``, cursor pagination
  with a ``Link: <...>; rel="next"`` header, ``page_size`` entries a page).
- ``POST /api/{type}s/{repo}/paths-info/{rev}`` (form or JSON ``paths``).
- ``GET /api/{type}s/{repo}/refs`` and ``GET /api/{type}s/{repo}/commits/{rev}``.

Anything else answers 404 and is marked ``handled: False`` in ``requests`` (see ``unhandled``), so a
test can notice a library calling an endpoint the stand-in does not know.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

REPO_TYPES = {"models": "model", "datasets": "dataset"}
MAIN_REVISIONS = ("main", "refs/heads/main")
# Files the Hub would store in git-LFS (their ETag is the sha256 of the content, as on the Hub).
LFS_SUFFIXES = (".parquet", ".arrow", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack",
                ".onnx", ".gguf", ".zip", ".gz", ".tar", ".npy", ".npz", ".model")
COMMIT_DATE = "2024-01-01T00:00:00.000Z"  # one fixed date: everything served is deterministic
COMMIT_TITLE = "Stand-in commit"


# --------------------------------------------------------------------------- repos on disk


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


COMMIT_FILE = ".standin-commit"  # optional, not served: the repo's commit sha (e.g. a real hub commit to pin)


def _repo_files(folder: Path) -> list[str]:
    """Repo-relative POSIX paths of the files under ``folder`` (hidden ``.git``/``.cache`` folders skipped)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", ".cache", "__pycache__"))
        for name in filenames:
            rel = Path(dirpath, name).relative_to(folder).as_posix()
            if rel != COMMIT_FILE:
                out.append(rel)
    return sorted(out)


def set_commit(folder: str | Path, sha: str) -> None:
    """Serve the repo in ``folder`` as commit ``sha`` (a 40-hex id, e.g. the one a profile pins)."""
    assert len(sha) == 40 and all(c in "0123456789abcdef" for c in sha), sha
    (Path(folder) / COMMIT_FILE).write_text(sha)


def repo_sha(folder: str | Path) -> str:
    """The deterministic 40-hex commit sha of the repo in ``folder``: the one set with :func:`set_commit`,
    else a sha1 over its files' paths and contents."""
    folder = Path(folder)
    if (folder / COMMIT_FILE).is_file():
        return (folder / COMMIT_FILE).read_text().strip()
    h = hashlib.sha1(b"hubstandin-commit-v1\n")
    for rel in _repo_files(folder):
        h.update(rel.encode("utf-8") + b"\0" + hashlib.sha256((folder / rel).read_bytes()).digest())
    return h.hexdigest()


@dataclass
class _File:
    path: str
    size: int
    blob_id: str  # git blob sha1 (of the LFS pointer for LFS files, as on the Hub)
    sha256: str | None  # set for LFS files
    pointer_size: int | None

    @property
    def etag(self) -> str:
        return self.sha256 or self.blob_id


@dataclass
class _Repo:
    kind: str  # "models" | "datasets"
    repo_id: str
    folder: Path
    sha: str
    files: dict[str, _File] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)

    @property
    def repo_type(self) -> str:
        return REPO_TYPES[self.kind]

    def resolve_revision(self, revision: str) -> bool:
        return revision in MAIN_REVISIONS or revision == self.sha

    def card_data(self) -> dict | None:
        readme = self.folder / "README.md"
        if not readme.is_file():
            return None
        text = readme.read_text(encoding="utf-8")
        if not text.startswith("---"):
            return None
        end = text.find("\n---", 3)
        if end < 0:
            return None
        import yaml

        data = yaml.safe_load(text[3:end])
        return data if isinstance(data, dict) else None

    def dir_oid(self, path: str) -> str:
        prefix = f"{path}/" if path else ""
        h = hashlib.sha1(b"tree\0")
        for p in sorted(self.files):
            if p.startswith(prefix):
                h.update(p.encode() + b"\0" + self.files[p].blob_id.encode())
        return h.hexdigest()


def _load_repo(kind: str, repo_id: str, folder: Path) -> _Repo:
    files = {}
    for rel in _repo_files(folder):
        data = (folder / rel).read_bytes()
        if rel.endswith(LFS_SUFFIXES):
            sha256 = hashlib.sha256(data).hexdigest()
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n".encode()
            files[rel] = _File(rel, len(data), _git_blob_sha1(pointer), sha256, len(pointer))
        else:
            files[rel] = _File(rel, len(data), _git_blob_sha1(data), None, None)
    dirs = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
    return _Repo(kind, repo_id, folder, repo_sha(folder), files, dirs)


def dataset_dir(root: str | Path, repo_id: str) -> Path:
    return Path(root) / "datasets" / repo_id


def model_dir(root: str | Path, repo_id: str) -> Path:
    return Path(root) / "models" / repo_id


# --------------------------------------------------------------------------- the server


class HubStandIn:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port) that answers like the Hugging Face Hub.

    Use as a context manager (or ``start()``/``stop()``)::

        with HubStandIn(root) as hub:
            env = hub_env(hub.url, hf_home)   # HF_ENDPOINT=hub.url, online, ...
            ...
            hub.requests  # [{"method", "path", "host", "status", "handled"}, ...]

    Repos are read from ``root`` on each request (a repo's sha is recomputed only when its files
    change), so repos may be written before or after the server starts.
    """

    def __init__(self, root: str | Path, *, page_size: int = 1000, host: str = "127.0.0.1"):
        self.root = Path(root)
        self.page_size = page_size
        self.host = host
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[tuple, _Repo]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> HubStandIn:
        if self._server is not None:
            return self
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer((self.host, 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hubstandin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> HubStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("HubStandIn is not started")
        return self._server.server_address[1]

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"

    @property
    def unhandled(self) -> list[dict]:
        """Requests for routes the stand-in does not implement."""
        return [r for r in self.requests if not r["handled"]]

    # ----------------------------------------------------------------- repos
    def repo_ids(self, kind: str) -> list[str]:
        """The repo ids found under ``<root>/<kind>`` (kind: ``models`` or ``datasets``)."""
        base = self.root / kind
        if not base.is_dir():
            return []
        out = []
        for first in sorted(p for p in base.iterdir() if p.is_dir()):
            if any(p.is_file() for p in first.iterdir()):
                out.append(first.name)
            else:
                out.extend(f"{first.name}/{second.name}" for second in sorted(first.iterdir()) if second.is_dir())
        return out

    def repo(self, kind: str, repo_id: str) -> _Repo | None:
        """The repo ``repo_id`` of ``kind``, or None if there is none."""
        parts = repo_id.split("/")
        if not 1 <= len(parts) <= 2 or any(p in ("", ".", "..") for p in parts):
            return None
        folder = self.root / kind / repo_id
        if not folder.is_dir() or repo_id not in self.repo_ids(kind):
            return None
        key = tuple((rel, (folder / rel).stat().st_size, (folder / rel).stat().st_mtime_ns)
                    for rel in _repo_files(folder))
        with self._lock:
            cached = self._cache.get((kind, repo_id))
            if cached and cached[0] == key:
                return cached[1]
        repo = _load_repo(kind, repo_id, folder)
        with self._lock:
            self._cache[(kind, repo_id)] = (key, repo)
        return repo

    def sha(self, kind: str, repo_id: str) -> str:
        repo = self.repo(kind, repo_id)
        if repo is None:
            raise KeyError(f"no {kind} repo {repo_id!r} under {self.root}")
        return repo.sha

    def _log(self, entry: dict) -> None:
        with self._lock:
            self.requests.append(entry)


class _Reply(Exception):
    """An HTTP answer raised from deep inside a route."""

    def __init__(self, status: int, body: bytes = b"", headers: dict | None = None, handled: bool = True):
        self.status, self.body, self.headers, self.handled = status, body, headers or {}, handled


def _json_reply(status: int, obj, headers: dict | None = None) -> _Reply:
    return _Reply(status, json.dumps(obj).encode(), {"Content-Type": "application/json; charset=utf-8",
                                                    **(headers or {})})


def _error(status: int, code: str | None, message: str, handled: bool = True, **headers) -> _Reply:
    hdrs = {"X-Error-Message": message, **headers}
    if code:
        hdrs["X-Error-Code"] = code
    reply = _json_reply(status, {"error": message}, hdrs)
    reply.handled = handled
    return reply


def _truthy(params: dict, name: str) -> bool:
    values = params.get(name) or params.get(f"{name}[]") or []
    return any(v.lower() in ("1", "true", "yes") for v in values)


class _Handler(BaseHTTPRequestHandler):
    hub: HubStandIn  # set on the subclass made in HubStandIn.start
    protocol_version = "HTTP/1.1"
    server_version = "hubstandin/1"

    def log_message(self, format, *args):  # noqa: A002 - quiet: requests go to hub.requests instead
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    # ----------------------------------------------------------------- plumbing
    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length) if length else b""
        entry = {"method": method, "path": self.path, "host": self.headers.get("Host"), "status": None,
                 "handled": True}
        try:
            try:
                self._route(method)
            except _Reply:
                raise
            except Exception as err:  # a bug in the stand-in: answer 500 rather than hang the client
                raise _error(500, None, f"hubstandin: {type(err).__name__}: {err}", handled=False) from err
            raise _error(404, None, "hubstandin: route not implemented", handled=False)
        except _Reply as reply:
            entry["status"], entry["handled"] = reply.status, reply.handled
            self.hub._log(entry)
            self._send(method, reply)

    def _send(self, method: str, reply: _Reply) -> None:
        body = reply.body
        self.send_response(reply.status)
        headers = {"Content-Length": str(len(body)), "Date": email.utils.formatdate(usegmt=True), **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD" and body:
            self.wfile.write(body)

    # ----------------------------------------------------------------- routes
    def _route(self, method: str) -> None:
        split = urlsplit(self.path)
        params = parse_qs(split.query, keep_blank_values=True)
        segs = split.path.strip("/").split("/")  # still %-encoded: revisions are quoted with safe=""
        if segs and segs[0] == "api" and len(segs) >= 3 and segs[1] in REPO_TYPES:
            self._api(method, segs[1], segs[2:], params)
        kind = "models"
        if segs and segs[0] in ("datasets", "spaces"):
            kind, segs = segs[0], segs[1:]
        if method in ("GET", "HEAD") and "resolve" in segs[1:3]:
            i = segs.index("resolve", 1)
            if kind not in REPO_TYPES:
                raise _error(404, "RepoNotFound", "Repository not found")
            self._resolve(method, kind, "/".join(unquote(s) for s in segs[:i]), segs[i + 1:])

    def _repo_or_404(self, kind: str, repo_id: str, revision: str | None) -> _Repo:
        repo = self.hub.repo(kind, repo_id)
        if repo is None:
            raise _error(404, "RepoNotFound", "Repository not found")
        if revision is not None and not repo.resolve_revision(revision):
            raise _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return repo

    def _resolve(self, method: str, kind: str, repo_id: str, rest: list[str]) -> None:
        if not rest:
            raise _error(404, "RepoNotFound", "Repository not found")
        revision, path = unquote(rest[0]), unquote("/".join(rest[1:]))
        repo = self._repo_or_404(kind, repo_id, revision)
        entry = repo.files.get(path)
        commit = {"X-Repo-Commit": repo.sha}
        if entry is None:
            raise _error(404, "EntryNotFound", "Entry not found", **commit)
        data = (repo.folder / path).read_bytes()
        headers = {**commit, "ETag": f'"{entry.etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream", "Content-Disposition": f'inline; filename="{Path(path).name}"'}
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            first, _, last = rng[len("bytes="):].split(",")[0].partition("-")
            size = len(data)
            if first == "":  # suffix range: the last N bytes
                start, end = max(size - int(last), 0), size - 1
            else:
                start, end = int(first), (min(int(last), size - 1) if last else size - 1)
            if start >= size or start > end:
                raise _Reply(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
            raise _Reply(206, data[start:end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{size}"})
        raise _Reply(200, data, headers)

    def _api(self, method: str, kind: str, segs: list[str], params: dict) -> None:
        # segs: <repo_id (1 or 2 parts)>[/<action>/...]; the repo id's parts are never action names
        actions = ("revision", "tree", "paths-info", "refs", "commits")
        n = 1 if len(segs) == 1 or segs[1] in actions else 2
        repo_id, rest = "/".join(unquote(s) for s in segs[:n]), segs[n:]
        action = rest[0] if rest else None
        if method == "GET" and action is None:
            self._info(kind, repo_id, "main", params)
        if method == "GET" and action == "revision" and len(rest) == 2:
            self._info(kind, repo_id, unquote(rest[1]), params)
        if method == "GET" and action == "tree" and len(rest) >= 2:
            self._tree(kind, repo_id, unquote(rest[1]), unquote("/".join(rest[2:])), params)
        if method == "POST" and action == "paths-info" and len(rest) == 2:
            self._paths_info(kind, repo_id, unquote(rest[1]))
        if method == "GET" and action == "refs" and len(rest) == 1:
            repo = self._repo_or_404(kind, repo_id, None)
            raise _json_reply(200, {"branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": repo.sha}],
                                    "tags": [], "converts": []})
        if method == "GET" and action == "commits" and len(rest) == 2:
            repo = self._repo_or_404(kind, repo_id, unquote(rest[1]))
            raise _json_reply(200, [{"id": repo.sha, "title": COMMIT_TITLE, "message": "", "date": COMMIT_DATE,
                                     "authors": [{"user": "hubstandin"}]}])

    def _info(self, kind: str, repo_id: str, revision: str, params: dict) -> None:
        repo = self._repo_or_404(kind, repo_id, revision)
        blobs = _truthy(params, "blobs")
        siblings = []
        for f in repo.files.values():
            sib = {"rfilename": f.path}
            if blobs:
                sib.update(size=f.size, blobId=f.blob_id)
                if f.sha256:
                    sib["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": f.pointer_size}
            siblings.append(sib)
        author = repo_id.split("/")[0] if "/" in repo_id else None
        info = {"_id": repo.sha[:24], "id": repo_id, "author": author, "sha": repo.sha, "lastModified": COMMIT_DATE,
                "createdAt": COMMIT_DATE, "private": False, "gated": False, "disabled": False, "downloads": 0,
                "likes": 0, "tags": [], "siblings": siblings,
                "usedStorage": sum(f.size for f in repo.files.values())}
        card = repo.card_data()
        if card is not None:
            info["cardData"] = card
        if kind == "models":
            info.update(modelId=repo_id, library_name="transformers")
            config = repo.folder / "config.json"
            if config.is_file():
                try:
                    cfg = json.loads(config.read_text(encoding="utf-8"))
                    info["config"] = {k: cfg[k] for k in ("architectures", "model_type") if k in cfg}
                except ValueError:
                    pass
        else:
            info["description"] = ""
        raise _json_reply(200, info)

    def _entry(self, repo: _Repo, path: str, expand: bool) -> dict:
        if path in repo.files:
            f = repo.files[path]
            out = {"type": "file", "oid": f.blob_id, "size": f.size, "path": path}
            if f.sha256:
                out["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
        else:
            out = {"type": "directory", "oid": repo.dir_oid(path), "size": 0, "path": path}
        if expand:
            out["lastCommit"] = {"id": repo.sha, "title": COMMIT_TITLE, "date": COMMIT_DATE}
        return out

    def _tree(self, kind: str, repo_id: str, revision: str, path: str, params: dict) -> None:
        repo = self._repo_or_404(kind, repo_id, revision)
        path = path.strip("/")
        if path and path not in repo.dirs:
            raise _error(404, "EntryNotFound", f"{path} does not exist on {revision}", **{"X-Repo-Commit": repo.sha})
        recursive, expand = _truthy(params, "recursive"), _truthy(params, "expand")
        prefix = f"{path}/" if path else ""
        depth = prefix.count("/")

        def wanted(p: str) -> bool:
            return p.startswith(prefix) and (recursive or p.count("/") == depth)

        dirs = sorted(d for d in repo.dirs if wanted(d))
        files = sorted(f for f in repo.files if wanted(f))
        entries = dirs + files
        start = int((params.get("cursor") or ["0"])[0] or 0)
        page = entries[start:start + self.hub.page_size]
        headers = {}
        if start + self.hub.page_size < len(entries):
            query = "&".join(f"{k}={quote(v[0])}" for k, v in params.items() if k != "cursor")
            nxt = f"{self.hub.url}{urlsplit(self.path).path}?{query}{'&' if query else ''}cursor={start + len(page)}"
            headers["Link"] = f'<{nxt}>; rel="next"'
        raise _json_reply(200, [self._entry(repo, p, expand) for p in page], headers)

    def _paths_info(self, kind: str, repo_id: str, revision: str) -> None:
        repo = self._repo_or_404(kind, repo_id, revision)
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            body = json.loads(self._body or b"{}")
            paths, expand = body.get("paths", []), bool(body.get("expand"))
        else:
            form = parse_qs(self._body.decode("utf-8"), keep_blank_values=True)
            paths, expand = form.get("paths", []), _truthy(form, "expand")
        if isinstance(paths, str):
            paths = [paths]
        out = [self._entry(repo, p.strip("/"), expand) for p in paths
               if p.strip("/") in repo.files or p.strip("/") in repo.dirs]
        raise _json_reply(200, out)


# --------------------------------------------------------------------------- child processes

_GUARD = r'''
import json as _j, os as _o, socket as _s
_allow_host, _allow_port = _o.environ["HUBSTANDIN_ALLOW"].rsplit(":", 1)
_log = _o.environ["HUBSTANDIN_BLOCKED_LOG"]
def _blocked(what):
    with open(_log, "a", encoding="utf-8") as f:
        f.write(_j.dumps(what) + "\n")
_real_gai, _real_connect, _real_connect_ex = _s.getaddrinfo, _s.socket.connect, _s.socket.connect_ex
def _gai(host, *a, **k):
    h = host.decode() if isinstance(host, bytes) else host
    if h not in (None, _allow_host):
        _blocked({"resolve": h})
        raise _s.gaierror(_s.EAI_NONAME, f"hubstandin guard: {h} is not the stand-in hub")
    return _real_gai(host, *a, **k)
def _check(sock, address):
    if sock.family in (_s.AF_INET, _s.AF_INET6) and (address[0], str(address[1])) != (_allow_host, _allow_port):
        _blocked({"connect": f"{address[0]}:{address[1]}"})
        raise ConnectionRefusedError(f"hubstandin guard: {address[0]}:{address[1]} is not the stand-in hub")
def _connect(self, address):
    _check(self, address)
    return _real_connect(self, address)
def _connect_ex(self, address):
    _check(self, address)
    return _real_connect_ex(self, address)
_s.getaddrinfo, _s.socket.connect, _s.socket.connect_ex = _gai, _connect, _connect_ex
del _gai, _connect, _connect_ex
'''

_CLEARED_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
                "HF_DATASETS_CACHE", "HF_ASSETS_CACHE", "HF_XET_CACHE", "TRANSFORMERS_CACHE", "HF_MODULES_CACHE",
                "HUGGINGFACE_CO_STAGING", "HF_HUB_ENABLE_HF_TRANSFER", "HF_XET_HIGH_PERFORMANCE",
                "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def hub_env(url: str, hf_home: str | Path, base: dict | None = None) -> dict:
    """An environment for a child process whose hub is ``url``: online, caches under ``hf_home``, no token,
    no telemetry, no Xet, no proxies."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _CLEARED_ENV}
    env.update(HF_ENDPOINT=url, HF_HOME=str(hf_home), HF_HUB_OFFLINE="0", HF_DATASETS_OFFLINE="0",
               TRANSFORMERS_OFFLINE="0", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1",
               HF_HUB_DISABLE_IMPLICIT_TOKEN="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1",
               HF_HUB_DISABLE_SYMLINKS_WARNING="1", HF_UPDATE_DOWNLOAD_COUNTS="0",
               DO_NOT_TRACK="1", TOKENIZERS_PARALLELISM="false",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    return env


@dataclass
class HubRun:
    """What ``run_python`` saw: the process and every connection it tried to anything but the stand-in."""

    proc: subprocess.CompletedProcess
    blocked: list[dict]

    @property
    def returncode(self) -> int:
        return self.proc.returncode


def run_python(code: str, hub: HubStandIn, hf_home: str | Path, args: list[str] = (), timeout: float = 300,
               env: dict | None = None, cwd: str | Path | None = None) -> HubRun:
    """Run ``code`` with this interpreter in a child process whose only reachable host is ``hub``.

    Before ``code`` runs, name lookups of any other host and connections to any other address fail
    (and are recorded in ``HubRun.blocked``). ``args`` become ``sys.argv[1:]``.
    """
    fd, blocked_log = tempfile.mkstemp(prefix="hubstandin-blocked-", suffix=".jsonl")
    os.close(fd)
    try:
        child_env = hub_env(hub.url, hf_home, env)
        child_env.update(HUBSTANDIN_ALLOW=hub.netloc, HUBSTANDIN_BLOCKED_LOG=blocked_log)
        proc = subprocess.run([sys.executable, "-c", _GUARD + "\n" + code, *map(str, args)], env=child_env,
                              capture_output=True, text=True, timeout=timeout, cwd=cwd)
        blocked = [json.loads(line) for line in Path(blocked_log).read_text().splitlines() if line.strip()]
    finally:
        os.unlink(blocked_log)
    return HubRun(proc, blocked)


# --------------------------------------------------------------------------- repos to serve

AG_NEWS_CLASSES = ["World", "Sports", "Business", "Sci/Tech"]
AG_NEWS_WORDS = [
    "leaders talks war peace minister election troops embassy treaty rebels".split(),
    "team match coach season league goal cup player score championship".split(),
    "stocks market shares profit bank earnings investors prices economy merger".split(),
    "software computer space science internet chip researchers satellite robot network".split(),
]
SST2_WORDS = [  # negative, positive
    "dull boring awful bad tedious flat lifeless mess weak poor".split(),
    "charming great moving good brilliant funny warm lovely fresh wonderful".split(),
]
COLA_WORDS = [  # unacceptable, acceptable: a different vocabulary, so sst2 rows are never cola rows
    "himself sneezed the book to quickly seems every they".split(),
    "mary john gave kim a letter yesterday bill saw".split(),
]
FILLER = "the a this that of in and with it is".split()


def _sentences(rng: random.Random, words: list[str], n: int, length: int = 8) -> list[str]:
    return [" ".join(rng.choice(words) if rng.random() < 0.6 else rng.choice(FILLER) for _ in range(length))
            for _ in range(n)]


def _rows(rng: random.Random, word_lists: list[list[str]], per_class: int) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for label, words in enumerate(word_lists):
        texts += _sentences(rng, words, per_class)
        labels += [label] * per_class
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order]


def _write_card(folder: Path, card: dict, body: str) -> None:
    import yaml

    front = yaml.safe_dump(card, sort_keys=False, allow_unicode=True)
    (folder / "README.md").write_text(f"---\n{front}---\n\n{body}\n", encoding="utf-8")


def _class_label(names: list[str]) -> dict:
    return {"class_label": {"names": {str(i): n for i, n in enumerate(names)}}}


def _write_table(path: Path, table) -> tuple[int, int]:
    """Write ``table`` as parquet; returns (in-memory bytes, file bytes) for the card's sizes."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return table.nbytes, path.stat().st_size


def write_ag_news_repo(root: str | Path, rows_per_class_train: int = 8, rows_per_class_test: int = 3,
                       seed: int = 0) -> dict[str, dict[str, list]]:
    """Write ``<root>/datasets/fancyzhx/ag_news`` laid out as on the Hub (``data/{train,test}-00000-of-00001.parquet``
    with ``text: string, label: int64``, README with ``dataset_info`` and ``configs``).

    Texts are synthetic 8-word sentences whose words depend on the class. Returns the rows served,
    ``{split: {"text": [...], "label": [...]}}``, in file order.
    """
    import pyarrow as pa

    folder = dataset_dir(root, "fancyzhx/ag_news")
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows, splits, download_size = {}, [], 0
    for split, per_class in (("train", rows_per_class_train), ("test", rows_per_class_test)):
        texts, labels = _rows(rng, AG_NEWS_WORDS, per_class)
        table = pa.table({"text": pa.array(texts, pa.string()), "label": pa.array(labels, pa.int64())})
        nbytes, fbytes = _write_table(folder / "data" / f"{split}-00000-of-00001.parquet", table)
        rows[split] = {"text": texts, "label": labels}
        splits.append({"name": split, "num_bytes": nbytes, "num_examples": len(texts)})
        download_size += fbytes
    card = {
        "language": ["en"], "license": "unknown", "pretty_name": "AG's News Corpus (stand-in)",
        "task_categories": ["text-classification"], "task_ids": ["topic-classification"],
        "dataset_info": {
            "features": [{"name": "text", "dtype": "string"},
                         {"name": "label", "dtype": _class_label(AG_NEWS_CLASSES)}],
            "splits": splits, "download_size": download_size,
            "dataset_size": sum(s["num_bytes"] for s in splits),
        },
        "configs": [{"config_name": "default",
                     "data_files": [{"split": "train", "path": "data/train-*"},
                                    {"split": "test", "path": "data/test-*"}]}],
    }
    _write_card(folder, card, "# AG News (synthetic stand-in)\n\nSynthetic rows for offline tests.")
    return rows


def write_glue_sst2_repo(root: str | Path, rows_per_class_train: int = 6, rows_per_class_validation: int = 3,
                         rows_test: int = 4, seed: int = 0) -> dict[str, dict[str, dict[str, list]]]:
    """Write ``<root>/datasets/nyu-mll/glue`` laid out as GLUE is on the Hub: one folder per config
    (``sst2/`` and ``cola/``), each with ``{train,validation,test}-00000-of-00001.parquet``
    (``sentence: string, label: int64`` (-1 in test), ``idx: int32``), and a README whose ``configs``
    and ``dataset_info`` list both configs.

    Returns ``{config: {split: {"sentence": [...], "label": [...], "idx": [...]}}}`` in file order.
    """
    import pyarrow as pa

    folder = dataset_dir(root, "nyu-mll/glue")
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    served, configs, infos = {}, [], []
    for config, words, names in (("cola", COLA_WORDS, ["unacceptable", "acceptable"]),
                                 ("sst2", SST2_WORDS, ["negative", "positive"])):
        served[config], splits, download_size = {}, [], 0
        for split in ("train", "validation", "test"):
            if split == "test":
                texts = _sentences(rng, sum(words, []), rows_test)
                labels = [-1] * rows_test
            else:
                texts, labels = _rows(rng, words, rows_per_class_train if split == "train"
                                      else rows_per_class_validation)
            idx = list(range(len(texts)))
            table = pa.table({"sentence": pa.array(texts, pa.string()), "label": pa.array(labels, pa.int64()),
                              "idx": pa.array(idx, pa.int32())})
            nbytes, fbytes = _write_table(folder / config / f"{split}-00000-of-00001.parquet", table)
            served[config][split] = {"sentence": texts, "label": labels, "idx": idx}
            splits.append({"name": split, "num_bytes": nbytes, "num_examples": len(texts)})
            download_size += fbytes
        configs.append({"config_name": config,
                        "data_files": [{"split": s, "path": f"{config}/{s}-*"} for s in ("train", "validation", "test")]})
        infos.append({"config_name": config,
                      "features": [{"name": "sentence", "dtype": "string"},
                                   {"name": "label", "dtype": _class_label(names)},
                                   {"name": "idx", "dtype": "int32"}],
                      "splits": splits, "download_size": download_size,
                      "dataset_size": sum(s["num_bytes"] for s in splits)})
    card = {"annotations_creators": ["other"], "language": ["en"], "license": "other",
            "pretty_name": "GLUE (General Language Understanding Evaluation benchmark, stand-in)",
            "task_categories": ["text-classification"], "configs": configs, "dataset_info": infos}
    _write_card(folder, card, "# GLUE (synthetic stand-in)\n\nSynthetic rows for offline tests.")
    return served


def copy_model_repo(root: str | Path, repo_id: str, folder: str | Path) -> Path:
    """Copy a saved model folder (config.json, *.safetensors, tokenizer files) to ``<root>/models/<repo_id>``."""
    dest = model_dir(root, repo_id)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns(".git", ".cache", "__pycache__"))
    return dest
