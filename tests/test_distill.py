"""Knowledge distillation: the loss against hand-computed values, teacher logits, students with fewer layers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from textcls.training import distill

from textcls.sources import models
from textcls.errors import ModelSourceError, TextclsError
from textcls.config.params import ParamsError, parse_params


def test_distillation_loss_matches_a_hand_computed_value():
    """Check alpha*T^2*KL(teacher_T||student_T) + (1-alpha)*CE on one example worked out by hand.

    student logits [1, 0], teacher [0, 1], label 0, T = 2, alpha = 0.5:
    p_teacher = softmax([0, .5]) = [.377541, .622459], p_student = softmax([.5, 0]) = [.622459, .377541]
    KL = (.622459 - .377541) * 0.5 = .122459;  CE = ln(1 + e^-1) = .313262
    loss = 0.5 * 4 * .122459 + 0.5 * .313262 = .401549
    """
    loss = distill.distillation_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([0]),
                                     temperature=2.0, alpha=0.5)
    assert float(loss) == pytest.approx(0.401549, abs=1e-5)


def test_distillation_loss_limits_are_cross_entropy_and_kl():
    """Check that alpha=0 is plain cross-entropy and alpha=1, T=1 is the KL to the teacher (batch mean)."""
    student = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.3, -0.2]])
    teacher = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 2.0, 0.0]])
    labels = torch.tensor([0, 1])
    ce = distill.distillation_loss(student, teacher, labels, temperature=3.0, alpha=0.0)
    assert float(ce) == pytest.approx(float(torch.nn.functional.cross_entropy(student, labels)))
    kl = distill.distillation_loss(student, teacher, labels, temperature=1.0, alpha=1.0)
    p_t, p_s = teacher.softmax(-1), student.softmax(-1)
    assert float(kl) == pytest.approx(float((p_t * (p_t / p_s).log()).sum(-1).mean()), rel=1e-5)
    same = distill.distillation_loss(student, student, labels, temperature=2.0, alpha=1.0)
    assert float(same) == pytest.approx(0.0, abs=1e-6)  # nothing to learn from an identical teacher


def test_teacher_logits_round_trip_and_refuse_other_rows(tmp_path):
    """Check that stored teacher logits come back per row, and logits for other train rows are refused."""
    logits = np.array([[0.1, 0.9], [2.0, -1.0], [0.0, 0.0]], dtype=np.float32)
    labels = np.array([1, 0, 1])
    distill.write_logits(tmp_path, logits, labels)
    np.testing.assert_array_equal(distill.read_logits(tmp_path, labels), logits)
    with pytest.raises(TextclsError, match="other train rows"):
        distill.read_logits(tmp_path, np.array([1, 0]))
    with pytest.raises(TextclsError, match="other train rows"):
        distill.read_logits(tmp_path, np.array([1, 1, 1]))


def test_teacher_logits_come_back_in_row_order_from_length_sorted_batches(tiny_bert_dir, tmp_path):
    """Check that the teacher's logits, computed in batches sorted by length, are each row's own logits (the
    model run on that row alone, unpadded) in train-row order, whatever batch size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tokenizer, model = models.load_trained(tiny_bert_dir)
    model.eval()
    rows = [[2] + [14 + (i * 7 + j) % 20 for j in range(length)] + [3]
            for i, length in enumerate([9, 1, 5, 12, 2, 7, 3, 11, 1, 6])]  # lengths in no order
    labels = [i % 2 for i in range(len(rows))]
    pq.write_table(pa.table({"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows],
                             "token_type_ids": [[0] * len(r) for r in rows], "label": labels}),
                   tmp_path / "train.parquet")
    with torch.inference_mode():
        alone = np.concatenate([model(input_ids=torch.tensor([r])).logits.numpy() for r in rows])
    for batch_size in (3, 4, 64):
        logits, got_labels = distill.teacher_logits(tiny_bert_dir, tmp_path, batch_size, "cpu")
        np.testing.assert_allclose(logits, alone, atol=1e-5)
        np.testing.assert_array_equal(got_labels, labels)


def test_keep_layers_makes_a_smaller_student_that_reloads(tiny_bert_dir, tmp_path):
    """Check that `layers` keeps the chosen encoder layers with their weights, and the result saves and reloads."""
    full = models.load_classifier(str(tiny_bert_dir), ["neg", "pos"])
    student = models.load_classifier(str(tiny_bert_dir), ["neg", "pos"], layers=[1])
    assert len(student.bert.encoder.layer) == 1 and student.config.num_hidden_layers == 1
    kept, original = student.bert.encoder.layer[0], full.bert.encoder.layer[1]
    for a, b in zip(kept.parameters(), original.parameters()):
        torch.testing.assert_close(a, b)
    assert models.count_parameters(student) < models.count_parameters(full)
    student.save_pretrained(tmp_path / "student")
    reloaded = type(student).from_pretrained(tmp_path / "student", use_safetensors=True)
    assert reloaded.config.num_hidden_layers == 1
    x = torch.tensor([[2, 14, 38, 3]])
    torch.testing.assert_close(student.eval()(x).logits, reloaded.eval()(x).logits)


@pytest.mark.bad_input
def test_keep_layers_out_of_range_is_a_clear_error(tiny_bert_dir):
    """Check that asking for a layer the model does not have names the valid range."""
    with pytest.raises(ModelSourceError, match=r"has 2 \(0..1\)"):
        models.load_classifier(str(tiny_bert_dir), ["neg", "pos"], layers=[0, 5])


def test_distillation_trainer_trains_on_teacher_logits(tiny_bert_dir, tmp_path, make_prepared_dir):
    """Check that a student trains end to end with the distillation loss (finite, and pulled to the teacher)."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, TrainingArguments

    tokenizer = models.load_tokenizer(str(tiny_bert_dir))
    texts = ["the movie is good", "the film was bad", "great fun", "awful plot"] * 4
    enc = tokenizer(texts)
    teacher = np.array([[-3.0, 3.0], [3.0, -3.0], [-3.0, 3.0], [3.0, -3.0]] * 4, dtype=np.float32)
    data = Dataset.from_dict({**enc, "label": [1, 0, 1, 0] * 4, "teacher_logits": teacher.tolist()})
    student = models.load_classifier(str(tiny_bert_dir), ["neg", "pos"], layers=[0])
    args = TrainingArguments(output_dir=str(tmp_path / "ckpt"), per_device_train_batch_size=4, num_train_epochs=3,
                             learning_rate=5e-3, use_cpu=True, report_to=[], remove_unused_columns=False,
                             save_strategy="no", logging_steps=1, seed=0)
    trainer = distill.DistillationTrainer(model=student, args=args, train_dataset=data,
                                          data_collator=DataCollatorWithPadding(tokenizer), temperature=2.0,
                                          alpha=1.0)
    losses_before = _kd_loss(student, tokenizer, texts, teacher)
    trainer.train()
    losses_after = _kd_loss(student, tokenizer, texts, teacher)
    assert math.isfinite(losses_after) and losses_after < losses_before


def _kd_loss(model, tokenizer, texts, teacher) -> float:
    model.eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    model.train()
    return float(distill.distillation_loss(logits, torch.tensor(teacher), torch.zeros(len(texts), dtype=torch.long),
                                           temperature=2.0, alpha=1.0))


def _params(distill_section: dict) -> dict:
    return {"datasets": {"d": {"format": "csv", "path": "x", "files": {"train": "t.csv"}}},
            "models": {"big": {"kind": "transformer", "source": "x", "tokenizer": {}},
                       "small": {"kind": "transformer", "source": "x", "tokenizer": {}, "layers": [0]},
                       "tfidf": {"kind": "tfidf", "source": "scikit-learn", "tokenizer": {}}},
            "distill": distill_section}


@pytest.mark.bad_input
@pytest.mark.parametrize("section, message", [
    ({"teacher": "nope", "students": ["small"]}, "'distill.teacher'"),
    ({"teacher": "big", "students": ["tfidf"]}, "'distill.students'"),
    ({"teacher": "big", "students": ["big"]}, "models other than the teacher"),
    ({"teacher": "big", "students": ["small"], "alpha": 1.5}, "'distill.alpha'"),
    ({"teacher": "big", "students": ["small"], "temperature": 0}, "'distill.temperature'"),
])
def test_invalid_distill_params_name_the_key(section, message):
    """Check that a bad distill: section fails validation naming the key."""
    with pytest.raises(ParamsError, match=message):
        parse_params(_params(section))


@pytest.mark.bad_input
def test_layers_on_a_tfidf_model_is_refused():
    """Check that `layers` is only accepted for transformers, naming the key."""
    raw = _params({})
    raw["models"]["tfidf"]["layers"] = [0]
    with pytest.raises(ParamsError, match="'models.tfidf.layers'"):
        parse_params(raw)
