"""The reference study's five architectures, built from their configs (random weights, no files), synthetic
token data for them, and the arithmetic of model-FLOPs utilisation (MFU).

Real sizes are those of bert-base-uncased, roberta-base, distilbert-base-uncased, albert-base-v2 and t5-small;
``tiny`` sizes (2 layers, width 32) are for the CPU dry run. The data is a learnable task made of token ids
(each class has its own keyword ids, planted among random ones), so no tokenizer or data file is needed and
accuracy on held-out rows means something.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

ARCHITECTURES = ("bert", "roberta", "distilbert", "albert", "t5")
CONTENT_START = 10  # token ids below this are left to special tokens (pad, eos, cls, ...)

# Dense bf16 tensor-core peaks (FLOP/s, no sparsity) by device name; the first matching key wins, so the more
# specific names come first. Sources: NVIDIA data sheets (H100/H200 SXM 989.4 TFLOPS, PCIe 756, A100 312, ...).
BF16_PEAK_FLOPS = (
    ("GH200", 989e12), ("H200", 989e12), ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12),
    ("H800", 989e12), ("B200", 2250e12), ("B100", 1750e12), ("A100", 312e12), ("A800", 312e12),
    ("L40S", 362e12), ("L40", 181e12), ("L4", 121e12), ("A10G", 70e12), ("A10", 125e12),
    ("RTX 4090", 165e12), ("RTX 6000 Ada", 364e12), ("A6000", 155e12), ("RTX 3090", 71e12),
)


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One reference architecture: its config class and sizes, and what it takes as inputs."""

    name: str
    config_class: str  # a transformers config class
    model_class: str  # its sequence-classification class
    sizes: dict[str, Any]
    tiny_sizes: dict[str, Any]
    input_names: tuple[str, ...] = ("input_ids", "attention_mask")
    eos_id: int | None = None  # T5 classifies from the hidden state at the (one) end-of-sequence token

    @property
    def vocab_size(self) -> int:
        return int(self.sizes["vocab_size"])

    def build(self, tiny: bool, num_labels: int, seed: int):
        """The classifier, random-initialised (seeded) from its config."""
        import torch
        import transformers

        sizes = {**self.sizes, **self.tiny_sizes} if tiny else self.sizes
        config = getattr(transformers, self.config_class)(**sizes, num_labels=num_labels)
        torch.manual_seed(seed)
        return getattr(transformers, self.model_class)(config)


_BERT_TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=1000)
REFERENCE = {
    "bert": Architecture("bert", "BertConfig", "BertForSequenceClassification",
                         dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                              intermediate_size=3072, max_position_embeddings=512),
                         _BERT_TINY, ("input_ids", "attention_mask", "token_type_ids")),
    "roberta": Architecture("roberta", "RobertaConfig", "RobertaForSequenceClassification",
                            dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                 intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1,
                                 pad_token_id=1, bos_token_id=0, eos_token_id=2),
                            _BERT_TINY),
    "distilbert": Architecture("distilbert", "DistilBertConfig", "DistilBertForSequenceClassification",
                               dict(vocab_size=30522, dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
                                    max_position_embeddings=512),
                               dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64, vocab_size=1000)),
    "albert": Architecture("albert", "AlbertConfig", "AlbertForSequenceClassification",
                           dict(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
                                num_attention_heads=12, intermediate_size=3072, num_hidden_groups=1,
                                max_position_embeddings=512, hidden_act="gelu_new", classifier_dropout_prob=0.1),
                           dict(embedding_size=16, **_BERT_TINY), ("input_ids", "attention_mask", "token_type_ids")),
    "t5": Architecture("t5", "T5Config", "T5ForSequenceClassification",
                       dict(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6,
                            num_heads=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1),
                       dict(d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
                            vocab_size=1000),
                       eos_id=1),
}


@dataclasses.dataclass(frozen=True)
class SyntheticTask:
    """Rows of token ids of length ``seq_len`` in ``num_labels`` classes: each row holds ``keywords`` ids of
    its class's keyword set among uniform random ids (ids >= CONTENT_START, below ``vocab_size``)."""

    vocab_size: int
    seq_len: int
    num_labels: int = 4
    keywords: int = 6
    seed: int = 0

    def keyword_ids(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        pool = rng.choice(np.arange(CONTENT_START, self.vocab_size), size=self.num_labels * 8, replace=False)
        return pool.reshape(self.num_labels, 8)

    def rows(self, n: int, split_seed: int, eos_id: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(input_ids [n, seq_len] int64, labels [n] int64)``; with ``eos_id`` the last position is that id."""
        rng = np.random.default_rng([self.seed, split_seed])
        keys = self.keyword_ids()
        labels = rng.integers(0, self.num_labels, size=n)
        ids = rng.integers(CONTENT_START, self.vocab_size, size=(n, self.seq_len))
        body = self.seq_len - (1 if eos_id is not None else 0)
        for row, label in enumerate(labels):
            where = rng.choice(body, size=min(self.keywords, body), replace=False)
            ids[row, where] = rng.choice(keys[label], size=where.size)
        if eos_id is not None:
            ids[:, -1] = eos_id
        return ids.astype(np.int64), labels.astype(np.int64)


def batch_inputs(arch: Architecture, ids: np.ndarray) -> dict[str, np.ndarray]:
    """The model's inputs for token ids ``ids`` (no padding: every position is a real token)."""
    out = {"input_ids": ids.astype(np.int64), "attention_mask": np.ones_like(ids, dtype=np.int64)}
    if "token_type_ids" in arch.input_names:
        out["token_type_ids"] = np.zeros_like(ids, dtype=np.int64)
    return out


def forward_flops(model, inputs: dict) -> int:
    """FLOPs of one forward pass on ``inputs`` (torch tensors), counted by torch's FlopCounterMode (matmuls,
    attention, convolutions: what MFU counts). A shared layer (ALBERT) counts once per use."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(**inputs)
    return int(counter.get_total_flops())


def training_flops_per_step(forward: int) -> int:
    """Forward + backward FLOPs of one optimiser step: the backward pass costs twice the forward (grads of
    activations and of weights), so 3x the forward."""
    return 3 * forward


def mfu(flops_per_step: float, steps_per_s: float, peak_flops: float) -> float:
    """Model-FLOPs utilisation: achieved model FLOP/s over the device's peak FLOP/s."""
    if peak_flops <= 0 or flops_per_step < 0 or steps_per_s < 0:
        raise ValueError(f"need peak_flops > 0 and non-negative flops and steps/s, got {peak_flops!r}, "
                         f"{flops_per_step!r}, {steps_per_s!r}")
    return flops_per_step * steps_per_s / peak_flops


def table_peak(device_name: str) -> float | None:
    """The dense bf16 peak of a known GPU (``BF16_PEAK_FLOPS``), None for an unknown one."""
    for key, peak in BF16_PEAK_FLOPS:
        if key.lower() in device_name.lower():
            return peak
    return None


def measured_matmul_peak(device: str, size: int, iterations: int, precision: str | None = None) -> float:
    """FLOP/s of a square matmul in ``precision`` (fp32, bf16, fp16; default bf16 on cuda, fp32 on cpu): the
    fallback peak where the table has no entry."""
    import time

    import torch

    precision = precision or ("bf16" if device == "cuda" else "fp32")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iterations):
        a @ b
    synchronize(device)
    return 2.0 * size**3 * iterations / (time.perf_counter() - start)


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work (no-op on CPU), so a clock brackets finished work."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
