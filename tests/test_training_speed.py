"""Training-speed settings of the train stage: per-batch padding, seeded length grouping, the NaN guard."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from textcls.sources import models

from textcls.training import sampling as train_sampling
from textcls.training import train
from textcls.errors import TextclsError
from textcls.config.params import ParamsError, parse_params

WORDS = ["good", "bad", "movie", "film", "plot", "fun", "story", "music", "ending", "scene"]


def _params(**train_overrides) -> object:
    raw = {"datasets": {"d": {"format": "csv", "path": "x", "files": {"train": "t.csv"}}},
           "models": {"m": {"kind": "transformer", "source": "x", "tokenizer": {}, **train_overrides}}}
    return parse_params(raw).models["m"]


@pytest.fixture
def varied_dataset(tiny_bert_dir):
    """200 examples of 1 to 40 words (seeded), tokenized without padding, as the tokenize stage stores them."""
    from datasets import Dataset

    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, rng.integers(1, 41))) for _ in range(200)]
    tokenizer = models.load_tokenizer(str(tiny_bert_dir))
    enc = tokenizer(texts, truncation=True, max_length=64)
    return tokenizer, Dataset.from_dict({**enc, "label": [i % 2 for i in range(200)]})


def _trainer(tiny_bert_dir, tokenizer, dataset, tmp_path, sampling="group_by_length"):
    from transformers import DataCollatorWithPadding, Trainer

    model = _params(sampling=sampling, batch_size=8)
    args = train._training_args(model, 7, tmp_path / "ckpt", "cpu", "fp32")
    clf = models.load_classifier(str(tiny_bert_dir), ["neg", "pos"])
    trainer_type = train_sampling.trainer_class(Trainer, sampling)
    return trainer_type(model=clf, args=args, train_dataset=dataset, eval_dataset=dataset,
                        data_collator=DataCollatorWithPadding(tokenizer))


def test_batches_are_padded_to_their_longest_example_not_max_length(tiny_bert_dir, varied_dataset, tmp_path):
    """Check that the train stage's collator pads each batch to its own longest example (dynamic padding)."""
    tokenizer, dataset = varied_dataset
    trainer = _trainer(tiny_bert_dir, tokenizer, dataset, tmp_path)
    widths, longest = [], []
    for batch in trainer.get_train_dataloader():
        widths.append(batch["input_ids"].shape[1])
        longest.append(int(batch["attention_mask"].sum(dim=1).max()))
    assert widths == longest  # no column of padding only
    assert max(widths) <= 64 and min(widths) < max(widths)  # per batch, not one global length


def _padding_share(loader, dataset):
    torch.manual_seed(42)
    pads = [float(1 - b["attention_mask"].float().mean()) * b["attention_mask"].numel() for b in loader]
    return sum(pads) / sum(len(dataset[i]["input_ids"]) for i in range(len(dataset)))


@pytest.mark.parametrize("strategy", ["bucket", "group_by_length"])
def test_length_grouping_is_deterministic_for_a_seed(tiny_bert_dir, varied_dataset, tmp_path, strategy):
    """Check that batches group similar lengths (less padding than random order) and the order repeats per seed."""
    tokenizer, dataset = varied_dataset
    grouped = _trainer(tiny_bert_dir, tokenizer, dataset, tmp_path, sampling=strategy).get_train_dataloader()
    plain = _trainer(tiny_bert_dir, tokenizer, dataset, tmp_path, sampling="random").get_train_dataloader()

    def order(loader, seed):
        torch.manual_seed(seed)  # what Trainer's set_seed(seed) does before building the epoch's order
        return [tuple(batch["input_ids"].shape) + (int(batch["input_ids"].sum()),) for batch in loader]

    assert order(grouped, 42) == order(grouped, 42)
    assert order(grouped, 42) != order(grouped, 43)
    assert _padding_share(grouped, dataset) < 0.5 * _padding_share(plain, dataset)


def test_bucket_is_the_default_and_pads_less_than_trainers_length_grouping(tiny_bert_dir, varied_dataset, tmp_path):
    """Check that the default sampling is strict bucketing, and that on a small train set (where Trainer's
    mega-batches hold a few batches each) it pads less than group_by_length."""
    tokenizer, dataset = varied_dataset
    assert _params().train.sampling == "bucket"
    loader = {s: _trainer(tiny_bert_dir, tokenizer, dataset, tmp_path, sampling=s).get_train_dataloader()
              for s in ("bucket", "group_by_length")}
    assert _padding_share(loader["bucket"], dataset) < 0.7 * _padding_share(loader["group_by_length"], dataset)


def test_bucket_sampler_without_noise_cuts_the_sorted_rows_into_shuffled_batches():
    """Check the known answer with noise 0: the batches are the sorted rows cut every batch_size, each index once,
    the batch with the longest row first, the short batch last, the middle in a seeded random order."""
    lengths = [7, 3, 9, 1, 5, 8, 2, 6, 4, 10, 11]  # 11 rows, batch 3: 3 full batches + 2 rows
    sampler = train_sampling.BucketSampler(lengths, 3, noise=0.0, generator=torch.Generator().manual_seed(0))
    batches = [sorted(lengths[i] for i in b.tolist()) for b in sampler.batches()]
    assert sorted(batches[:3]) == [[1, 2, 3], [4, 5, 6], [7, 8, 9]] and batches[3] == [10, 11]
    assert batches[0] == [7, 8, 9]  # the longest of the full batches first
    assert sorted(list(sampler)) == list(range(11)) and len(sampler) == 11
    orders = {tuple(tuple(b) for b in train_sampling.BucketSampler(
        lengths * 4, 3, noise=0.0, generator=torch.Generator().manual_seed(seed)).batches()) for seed in range(5)}
    assert len(orders) > 1  # the batch order is random


def test_bucket_sampler_noise_varies_the_batches_between_epochs_but_keeps_them_tight():
    """Check that with noise every epoch has other batches, which still pad far less than random ones."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 60, 400).tolist()
    sampler = train_sampling.BucketSampler(lengths, 16, generator=torch.Generator().manual_seed(1))
    first, second = ([frozenset(b.tolist()) for b in sampler.batches()] for _ in range(2))
    assert set(first) != set(second)

    def padding(batches):  # padded tokens per real token
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches) / sum(lengths)

    random_batches = torch.randperm(400, generator=torch.Generator().manual_seed(1)).split(16)
    assert padding(first) < 0.1 < 0.5 < padding(random_batches)  # tight batches, though not sorted ones
    exact = train_sampling.BucketSampler(lengths, 16, noise=0.0).batches()
    assert padding(exact) < padding(first)  # noise costs a little padding


def test_bucket_sampling_subclasses_the_distillation_trainer_with_its_arguments(tiny_bert_dir, varied_dataset, tmp_path):
    """Check that the distill stage's DistillationTrainer (temperature and alpha as its own keyword arguments,
    passed by train_transformer's ``trainer_kwargs``) gets the bucket sampler and keeps its arguments."""
    from textcls.training import distill

    made = train_sampling.trainer_class(distill.DistillationTrainer, "bucket")
    assert issubclass(made, distill.DistillationTrainer) and made is not distill.DistillationTrainer
    assert train_sampling.trainer_class(distill.DistillationTrainer, "group_by_length") is distill.DistillationTrainer
    from transformers import DataCollatorWithPadding

    tokenizer, dataset = varied_dataset
    args = train._training_args(_params(sampling="bucket", batch_size=8), 7, tmp_path / "ckpt", "cpu", "fp32")
    trainer = made(model=models.load_classifier(str(tiny_bert_dir), ["neg", "pos"]), args=args, train_dataset=dataset,
                   eval_dataset=dataset,
                   data_collator=DataCollatorWithPadding(tokenizer), temperature=3.0, alpha=0.25)
    assert (trainer.temperature, trainer.alpha) == (3.0, 0.25)
    assert isinstance(trainer._get_train_sampler(), train_sampling.BucketSampler)


def test_hf_strategy_maps_bucket_onto_trainers_random_sampler():
    """Check that TrainingArguments never sees the name 'bucket' (it accepts only its own strategies)."""
    assert train_sampling.hf_strategy("bucket") == "random"
    assert train_sampling.hf_strategy("group_by_length") == "group_by_length"


@pytest.mark.bad_input
def test_unknown_sampling_is_refused_naming_the_key():
    """Check that train.sampling accepts only the known strategies."""
    with pytest.raises(ParamsError, match="'models.m.sampling'"):
        _params(sampling="by_topic")


@pytest.mark.parametrize("loss", [float("nan"), float("inf"), "nan"])
def test_nan_or_inf_loss_stops_training_with_a_clear_message(loss):
    """Check that a non-finite logged loss raises an error naming the step, precision and the fixes."""
    args = types.SimpleNamespace(fp16=True, bf16=False, learning_rate=5e-5)
    state = types.SimpleNamespace(global_step=120)
    with pytest.raises(TextclsError, match=r"loss became (nan|inf) at step 120 \(fp16, lr 5e-05\).*lower"):
        train.FiniteLossGuard().on_log(args, state, None, logs={"loss": loss})


def test_finite_losses_and_other_logs_pass_the_guard():
    """Check that the guard ignores finite losses and logs without a loss (e.g. evaluation logs)."""
    args = types.SimpleNamespace(fp16=False, bf16=False, learning_rate=1e-4)
    state = types.SimpleNamespace(global_step=1)
    train.FiniteLossGuard().on_log(args, state, None, logs={"loss": 0.69, "grad_norm": 1.0})
    train.FiniteLossGuard().on_log(args, state, None, logs={"eval_accuracy": 0.5})


@pytest.mark.parametrize("name, processes", [("multi_gpu", 2), ("multi_node", 16)])
def test_accelerate_launch_configs_in_the_repo_load(project_root, name, processes):
    """Check that the shipped `accelerate launch` configs parse with accelerate's own loader."""
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(project_root / "configs/accelerate" / f"{name}.yaml"))
    assert config.distributed_type == "MULTI_GPU" and config.num_processes == processes
    assert config.mixed_precision == "no"  # precision is the train stage's (params), not the launcher's


def test_thread_count_follows_textcls_threads(monkeypatch):
    """Check that TEXTCLS_THREADS caps the threads of a stage (parallel queued experiments), and a bad value
    is a clear error."""
    from textcls.serving import runtime

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("TEXTCLS_THREADS", "1")
        assert runtime.configure_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("TEXTCLS_THREADS", "two")
        with pytest.raises(TextclsError, match="TEXTCLS_THREADS='two' is not a positive integer"):
            runtime.configure_threads()
    finally:
        torch.set_num_threads(before)


def test_bf16_on_a_gpu_without_bf16_is_refused_naming_the_fix(monkeypatch):
    """Check that an explicit bf16 on a GPU without bf16 support (e.g. a T4) fails before training, naming auto."""
    from textcls.serving import runtime

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(TextclsError, match="no bf16 support.*Fix: set precision: auto"):
        runtime.resolve_precision("bf16", "cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert runtime.resolve_precision("bf16", "cuda") == "bf16"


def test_cpu_bf16_training_uses_eager_attention_that_the_saved_model_does_not_keep(tiny_bert_dir, tmp_path):
    """Check that bf16 on CPU switches the model to the eager attention (CPU SDPA's bf16 backward is slow), fp32 and
    GPU runs keep SDPA, and the saved model loads with SDPA again: serving never inherits the training setting."""
    clf = models.load_classifier(str(tiny_bert_dir), ["neg", "pos"])
    assert clf.config._attn_implementation == "sdpa"
    train.cpu_bf16_attention(clf, "cpu", "fp32")
    train.cpu_bf16_attention(clf, "cuda", "bf16")
    assert clf.config._attn_implementation == "sdpa"
    train.cpu_bf16_attention(clf, "cpu", "bf16")
    assert clf.config._attn_implementation == "eager"
    assert all(layer.attention.self.config._attn_implementation == "eager" for layer in clf.bert.encoder.layer)
    clf.save_pretrained(tmp_path / "saved")
    assert models.load_trained(tmp_path / "saved")[1].config._attn_implementation == "sdpa"


def test_bf16_autocast_training_step_on_cpu_matches_fp32_closely(tiny_bert_dir, varied_dataset, tmp_path):
    """Check that precision bf16 on CPU gives the Trainer bf16 (not fp16), and that CPU autocast in bf16 is what that
    buys: logits rounded to bf16 (not fp32's, but within bf16 rounding of them) while the weights stay fp32."""
    tokenizer, dataset = varied_dataset
    args = train._training_args(_params(batch_size=8), 7, tmp_path / "ckpt", "cpu", "bf16")
    assert args.bf16 and not args.fp16
    clf = models.load_classifier(str(tiny_bert_dir), ["neg", "pos"])
    batch = tokenizer.pad(dataset[:8], return_tensors="pt")
    with torch.no_grad():
        full = clf(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = clf(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits
    assert half.dtype == torch.bfloat16 and next(clf.parameters()).dtype == torch.float32
    assert not torch.equal(half.float(), full) and torch.allclose(half.float(), full, atol=0.05)


def test_bench_training_recipes_and_paired_report():
    """Check scripts/bench_training.py: the pipeline recipe takes the model's sampling and precision, the others run
    fp32 with their own sampling; the paired report gives the known difference and McNemar's count of discordant
    rows (3 rows right only with A, 1 only with B: +20 pt of 10 rows, exact p = 0.625)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import bench_training

    cfg = _params(sampling="bucket", precision="bf16").train
    assert bench_training.recipe_settings("pipeline", cfg) == ("bucket", "bf16")
    assert bench_training.recipe_settings("reference", cfg) == ("random", "fp32")
    assert bench_training.recipe_settings("group_by_length", cfg) == ("group_by_length", "fp32")
    a = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0], bool)
    b = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 0], bool)
    text = bench_training.paired(a, b)
    assert text.startswith("+20.00 pt [") and "McNemar p = 0.625" in text
    assert "(3 rows right only with the first, 1 only with the second)" in text
