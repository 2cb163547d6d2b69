"""What every stage script shares: logging set-up and turning TextclsError into one clear line."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from textcls import warm
from textcls.errors import TextclsError

# Under `make repro` a stage script runs in a fork of a warm interpreter that has imported torch and
# transformers once (textcls.warm); this is each stage's first import of the package, so it happens before
# any heavy import. Elsewhere (tests, plain `dvc repro`, imports from other modules) it does nothing.
warm.handoff()


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a stage's ``main``; a :class:`TextclsError` becomes ``error: ...`` on stderr and exit 1."""
    logging.basicConfig(level=os.environ.get("TEXTCLS_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        from textcls.serving import gpus  # several GPUs: this GPU stage gets one of its own (no-op otherwise)

        gpus.assign_for_stage(Path(sys.argv[0]).stem)
        return main(argv)
    except TextclsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
