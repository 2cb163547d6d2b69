"""requirements.lock (the constraints `make setup` installs with, uv or pip) agrees with the pins it locks."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line.strip())
        if match:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()  # PEP 503 normalised
            assert name not in out, f"{path.name} pins {name} twice"
            out[name] = match.group(2)
    return out


def test_lock_pins_every_direct_requirement_at_the_same_version():
    lock = pins(ROOT / "requirements.lock")
    for file in ("requirements.txt", "requirements-nodeps.txt"):
        direct = pins(ROOT / file)
        assert direct, f"{file} has no pins"
        mismatched = {n: (v, lock.get(n)) for n, v in direct.items() if lock.get(n) != v}
        assert not mismatched, f"requirements.lock disagrees with {file} (pin, lock): {mismatched}; regenerate it"


def test_lock_leaves_torch_without_a_local_build_label():
    # `torch==2.13.0+cpu` would refuse the CUDA build GPU users install first; `torch==2.13.0` accepts both
    assert pins(ROOT / "requirements.lock")["torch"] == pins(ROOT / "requirements.txt")["torch"] == "2.13.0"


def test_lock_holds_no_installer_or_project_package():
    lock = pins(ROOT / "requirements.lock")
    assert not {"pip", "setuptools", "wheel", "uv", "textcls"} & set(lock)
