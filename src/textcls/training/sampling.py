"""Strict length bucketing of training batches (``train.sampling: bucket``).

Every epoch the training rows are sorted by token count, each count first scaled by a random factor in
[1 - noise, 1 + noise] (AllenNLP's ``BucketBatchSampler`` ``padding_noise``), so that the batches differ
from epoch to epoch while each holds texts of nearly one length; the sorted rows are cut into batches and
the batches run in a random order, the one holding the longest text first (as Trainer's length-grouped
sampler does, so that running out of memory happens at once) and a short last batch last.

Against Trainer's ``group_by_length`` (sorting within mega-batches of at most 50 batches of a random
permutation) it pads less on small training sets, where those mega-batches hold a few hundred rows.
All randomness comes from torch's global generator, which Trainer seeds (``seed``) and restores on resume.
"""

from __future__ import annotations


import torch
from torch.utils.data import Sampler

BUCKET_NOISE = 0.1  # AllenNLP's default padding_noise


class BucketSampler(Sampler[int]):
    """Row indices of one epoch: batches of similar lengths, in a random order (see the module docstring)."""

    def __init__(self, lengths: list[int], batch_size: int, noise: float = BUCKET_NOISE,
                 generator: torch.Generator | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.lengths = torch.as_tensor(lengths, dtype=torch.float64)
        self.batch_size, self.noise, self.generator = batch_size, noise, generator

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self) -> list[torch.Tensor]:
        n = len(self.lengths)
        if n == 0:
            return []
        factor = 1 + self.noise * (2 * torch.rand(n, generator=self.generator, dtype=torch.float64) - 1)
        order = torch.argsort(self.lengths * factor, stable=True)
        batches = list(torch.split(order, self.batch_size))
        short = batches.pop() if len(batches[-1]) < self.batch_size else None
        batches = [batches[i] for i in torch.randperm(len(batches), generator=self.generator).tolist()]
        if batches:  # the batch with the longest text first
            longest = max(range(len(batches)), key=lambda i: float(self.lengths[batches[i]].max()))
            batches[0], batches[longest] = batches[longest], batches[0]
        return batches + ([short] if short is not None else [])

    def __iter__(self):
        for batch in self.batches():
            yield from batch.tolist()


def hf_strategy(sampling: str) -> str:
    """The ``train_sampling_strategy`` TrainingArguments gets: ``bucket`` is this module's sampler, installed
    by :func:`trainer_class` over Trainer's plain random one."""
    return "random" if sampling == "bucket" else sampling


def trainer_class(base, sampling: str):
    """``base`` (Trainer or a subclass) with :class:`BucketSampler` as its training sampler for ``bucket``."""
    if sampling != "bucket":
        return base

    class Bucketed(base):
        def _get_train_sampler(self, train_dataset=None):
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            lengths = [len(ids) for ids in dataset["input_ids"]]
            return BucketSampler(lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps)

    Bucketed.__name__ = Bucketed.__qualname__ = f"Bucketed{base.__name__}"
    return Bucketed
