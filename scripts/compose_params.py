"""Compose params.yaml from conf/ the way `dvc exp run` does (DVC's Hydra composition), for `dvc repro`.

    python scripts/compose_params.py [--profile default] [OVERRIDE ...]     # e.g. models.minilm.lr=5e-5

`dvc exp run -S profile=<name>` composes conf/config.yaml with that profile into params.yaml before
it runs; `dvc repro` reads params.yaml as it is. This script writes the same file (same DVC function,
same Hydra overrides) so that `make params PROFILE=reference && dvc repro` runs that profile too. The
result is validated before it replaces params.yaml: a bad override leaves the old file untouched.
"""

import argparse
import logging
import tempfile
from pathlib import Path

from textcls.cli import run
from textcls.errors import ParamsError
from textcls.io import write_text
from textcls.config.params import load_params

logger = logging.getLogger("compose_params")
ROOT = Path(__file__).resolve().parents[1]


def compose(profile: str, overrides: list[str], conf_dir: Path = ROOT / "conf") -> str:
    """The params.yaml text for ``profile`` with Hydra ``overrides`` (validated)."""
    from dvc.utils.hydra import compose_and_dump

    if not (conf_dir / "profile" / f"{profile}.yaml").is_file():
        known = sorted(p.stem for p in (conf_dir / "profile").glob("*.yaml"))
        raise ParamsError(f"No profile {profile!r} in {conf_dir / 'profile'}. Fix: use one of {', '.join(known)}, "
                          f"or add conf/profile/{profile}.yaml.")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "params.yaml"
        try:
            compose_and_dump(out, str(conf_dir.resolve()), None, "config", str(conf_dir.parent),
                             [f"profile={profile}", *overrides])
        except Exception as err:  # hydra's composition/override errors
            raise ParamsError(f"Cannot compose profile {profile!r} with {overrides}: {err}") from None
        load_params(out)  # every key validated before params.yaml changes
        return out.read_text(encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default", help="a file of conf/profile/ (without .yaml)")
    parser.add_argument("--out", default=str(ROOT / "params.yaml"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as `dvc exp run -S` takes them")
    args = parser.parse_args(argv)
    text = compose(args.profile, args.overrides)
    write_text(args.out, text)  # atomic: readers see the old file or the new one
    logger.info("wrote %s (profile %s%s)", args.out, args.profile,
                f", overrides {' '.join(args.overrides)}" if args.overrides else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
