"""Stage `hardware` (always runs): write this machine's fingerprint to OUT.

Every benchmark stage depends on OUT. On the same machine the file comes out
byte-identical, so DVC keeps the benchmarks cached; on another machine it differs, so
the benchmarks rerun there instead of reusing (or run-cache restoring) foreign latencies.

    python stages/hardware.py OUT
"""

import argparse
import logging

from textcls.cli import run
from textcls.bench import hardware
from textcls.io import write_json

logger = logging.getLogger("hardware")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    args = parser.parse_args(argv)
    info = hardware.fingerprint()
    write_json(args.out, info)
    gpu = info["gpu"] if isinstance(info["gpu"], str) else info["gpu"]["name"]
    logger.info("%s, %s usable cores, GPU: %s", info["cpu"]["model"], info["cpu"]["usable_cores"], gpu)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
