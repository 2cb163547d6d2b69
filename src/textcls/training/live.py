"""DVCLive for training curves, shared by every kind (importing it pulls in neither torch nor transformers)."""

from __future__ import annotations

from pathlib import Path

from textcls.errors import TextclsError


def open_live(live_dir: Path):
    """A DVCLive logger writing curves to ``live_dir`` only (no dvc.yaml, report or experiment of its own)."""
    from dvclive import Live
    from scmrepo.exceptions import SCMError

    try:
        return Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None)
    except SCMError as err:  # dvclive reads HEAD, which a git repo without commits lacks
        raise TextclsError(f"DVCLive cannot start ({err}). Fix: commit once (`git add -A && git commit`) "
                           "before `dvc repro`.") from None
