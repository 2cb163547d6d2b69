"""One command for the GPU check on any GPU machine: ``make gpu-check`` or, from the repository root,

    python3 scripts/gpu_check.py [--out reports/gpu] [--steps 200] [--budget-s 540]
    python3 scripts/gpu_check.py --device cpu --tiny     # the dry run (the test suite runs it)

It needs only a CUDA PyTorch stack (torch, transformers, accelerate, numpy, scipy; onnxruntime-gpu for the ONNX
rows), not this project's venv: no dvc, dvclive, datasets or pydantic. See docs/gpu.md and
textcls.gpucheck.run for what it measures. Exits 2 at once, saying "no CUDA device", without a GPU.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the repo's textcls, no install needed

from textcls.gpucheck.run import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
