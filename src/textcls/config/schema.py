"""The sections of params.yaml, declared: each is a frozen pydantic dataclass whose fields are the only keys
allowed, with their types, defaults, ranges and choices. Model entries and the whole file (which need the
kind registry) are in :mod:`textcls.config.params`; messages come from :mod:`textcls.config.adapter`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Optional, get_args

from pydantic import Strict, field_validator, model_validator

from textcls.config.adapter import URL_CREDENTIALS, Invalid
from textcls.config.fields import (Bool, Expect, Field, Int, List, NonEmptyStr, Number, Str, distinct,
                                   empty_if_null, rule, schema)

Split = Literal["train", "validation", "test"]
SPLITS = get_args(Split)
DataFormat = Literal["ag_news_csv", "csv", "tsv", "jsonl", "parquet"]
DATA_FORMATS = get_args(DataFormat)
LLMBackend = Literal["local", "http"]  # a causal LM run by transformers | an OpenAI-compatible chat endpoint
LLM_BACKENDS = get_args(LLMBackend)
LabelScoring = Literal["sum", "mean"]
LABEL_SCORING = get_args(LabelScoring)
Precision = Literal["auto", "fp32", "fp16", "bf16"]
PRECISIONS = get_args(Precision)
Sampling = Literal["bucket", "group_by_length", "random"]
SAMPLING = get_args(Sampling)
Device = Literal["auto", "cpu", "cuda"]
MultiGpu = Literal["one_per_job", "ddp"]  # several GPUs: one per stage process | one training on all (DDP)
ServingDevice = Literal["cpu", "gpu"]
SERVING_DEVICES = get_args(ServingDevice)
Objective = Literal["accuracy", "p95_ms", "cost_per_1k_texts_usd"]
OBJECTIVES = get_args(Objective)
CPU_VARIANTS = ("eager_fp32", "dynamic_int8", "onnx_fp32", "onnx_int8")  # the defaults; any registered variant goes
CUDA_VARIANTS = ("eager_fp32", "eager_fp16", "eager_bf16", "onnx_fp32")


@schema
class BaseParams:
    seed: Int = 42


@schema
class DatasetParams:
    """One data set: where its raw files are and how to read and split them."""

    name: Str
    format: DataFormat
    path: Str
    files: Annotated[dict[Split, Annotated[Str, Expect("a file name")]],  # split -> file name under path
                     rule(bool, "a non-empty mapping split -> file name")] = Field(default_factory=dict,
                                                                                  validate_default=True)
    text_column: Str = "text"
    label_column: Str = "label"
    text_columns: Optional[List] = None  # several columns joined with a space (e.g. title + body)
    label_names: Optional[Annotated[list[NonEmptyStr], Strict(), Field(min_length=2), rule(distinct, "distinct"),
                                    Expect("a list of >= 2 distinct non-empty strings")]] = None  # for labels 0..K-1
    carve: dict[Literal["validation", "test"], Annotated[Number, Field(gt=0, lt=1), Expect("a fraction in (0, 1)")]] \
        = Field(default_factory=lambda: {"validation": 0.1, "test": 0.2})
    n_per_class: dict[Split, Annotated[Optional[Annotated[Int, Field(gt=0)]], Expect("a positive integer or null")]] \
        = Field(default_factory=dict)  # split -> cap per class
    on_duplicates: Literal["warn", "drop", "error"] = "warn"  # texts of test also in train/validation

    @field_validator("files")
    @classmethod
    def _inside_path(cls, files: dict, info) -> dict:
        where = f"datasets.{info.data.get('name')}"
        for split, fname in files.items():
            if not fname:
                raise Invalid("a file name", field=split, got=fname)
            if Path(fname).is_absolute() or ".." in Path(fname).parts or "\\" in fname:
                raise Invalid(f"a file name inside {where}.path (no '..', no absolute path: change `path` to read "
                              "another folder)", field=split, got=fname)
        return files


@schema
class HubDatasetParams:
    """A data set on the Hugging Face Hub, downloaded by the ``download`` stage."""

    name: Str
    hub_id: Str
    config: Optional[Str] = None
    revision: Optional[Str] = None
    splits: dict[Split, Annotated[Str, Expect("a split name")]] = Field(
        default_factory=lambda: {"train": "train", "test": "test"})
    text_column: Str = "text"
    label_column: Str = "label"


@schema
class TokenizeParams:
    max_length: Int = Field(128, ge=8)
    batch_size: Int = Field(1000, gt=0)  # rows per tokenizer call (datasets.map batched)


@schema
class TrainParams:
    """Defaults for every transformer; a model entry may override any of them."""

    lr: Number = Field(2e-5, gt=0)
    batch_size: Int = Field(32, gt=0)
    eval_batch_size: Int = Field(64, gt=0)
    epochs: Number = Field(3, gt=0)
    warmup_ratio: Number = Field(0.06, ge=0, lt=1)
    weight_decay: Number = Field(0.01, ge=0)
    max_grad_norm: Number = Field(1.0, gt=0)
    precision: Precision = "auto"  # auto: bf16/fp16 on a GPU that supports it, fp32 on CPU
    device: Device = "auto"
    logging_steps: Int = Field(10, gt=0)
    dataloader_workers: Int = Field(0, ge=0)
    seed: Optional[Int] = Field(None, ge=0)  # training seed (head init, data order); null = base.seed
    sampling: Sampling = "bucket"  # strict length buckets in random order | Trainer's group_by_length | random
    deterministic: Bool = False  # bitwise-repeatable GPU kernels (torch deterministic algorithms; slower)
    multi_gpu: MultiGpu = "one_per_job"  # several GPUs: each stage process gets one | ddp: one training on all


@schema
class TokenizerParams:
    source: Optional[Str] = None  # defaults to the model's source
    revision: Optional[Str] = None  # hub revision of `source`; unset: the model's revision (when source is unset)
    prefix: Str = ""  # prepended to every text, e.g. "classify: " for T5


@schema
class TfidfParams:
    ngram_max: Int = Field(2, ge=1, le=5)
    min_df: Int = Field(1, ge=1)
    max_features: Optional[Int] = Field(200_000, gt=0)
    sublinear_tf: Bool = True
    C: Number = Field(10.0, gt=0)
    max_iter: Int = Field(1000, gt=0)


@schema
class EmbeddingParams:
    """A frozen encoder's sentence embeddings (mean pooling over the attention mask, L2-normalised) + logistic
    regression: MTEB's classification protocol. The encoder is never trained; only the regression is fitted."""

    C: Number = Field(1.0, gt=0)  # inverse L2 regularisation strength of the logistic regression (MTEB: 1.0)
    max_iter: Int = Field(100, gt=0)  # lbfgs iterations (MTEB: 100)
    batch_size: Int = Field(64, gt=0)  # texts per encoder forward pass while embedding train and validation
    device: Device = "auto"  # where train and validation are embedded (auto: cuda if present)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@schema
class LLMParams:
    """A prompted LLM (no fine-tuning): few-shot demonstrations from train, label-constrained answers."""

    name: Str
    backend: LLMBackend
    source: Optional[Str] = None  # local: hub id, local folder or gguf:<package>
    revision: Optional[Str] = None
    trust_remote_code: Bool = False
    shots_per_class: Int = Field(2, ge=0)  # 0 = zero-shot
    max_test_rows: Optional[Int] = Field(200, gt=0)  # seeded subsample of the test split; null = all of it
    # seeded subsample of the validation split also scored, for the cascades' thresholds (textcls.report.cascades);
    # 0 = none (chains ending in this LLM are then not evaluated), null = all of it
    max_validation_rows: Optional[Int] = Field(50, ge=0)
    max_text_tokens: Int = Field(96, ge=8)  # each demonstration and query text is cut to this many tokens
    instruction: Annotated[Str, rule(lambda s: "{labels}" in s, "a text containing {labels}")] = (
        "Classify the text into one of these categories: {labels}.")
    label_scoring: LabelScoring = "sum"  # local: sum | mean of the label tokens' log-probabilities
    precision: Literal["fp32", "bf16"] = "fp32"  # local: the weights' dtype (bf16 halves memory; fast with AMX/GPUs)
    price_per_1m_tokens: Optional[Number] = Field(None, ge=0)  # USD; null (local) = machine price / tokens per s
    url: Optional[Str] = None  # http: base URL, e.g. http://127.0.0.1:8000/v1
    model: Optional[Str] = None  # http: model name sent to the endpoint
    api_key_env: Optional[Annotated[  # http: NAME of the environment variable holding the key (never the key)
        Str, rule(_ENV_NAME.fullmatch, "an environment variable name"),
        Expect("the name of an environment variable (the key itself never goes in params.yaml)", secret=True)]] = None
    timeout_s: Number = Field(60.0, gt=0)
    structured_output: Bool = True  # http: ask for JSON restricted to the class names (response_format)

    @model_validator(mode="after")
    def _backend_needs(self):
        if self.backend == "local":
            if not self.source:
                raise Invalid("a hub id, local folder or gguf:<package> (backend local)", "source", self.source)
            return self
        if not (isinstance(self.url, str) and self.url.startswith(("http://", "https://"))):
            raise Invalid("an http(s):// URL (backend http)", "url", self.url)
        if URL_CREDENTIALS.search(self.url):
            raise Invalid("a URL without user:password@ (params end up in git and dvc.lock: put the key in the "
                          "environment variable named by api_key_env)", "url", self.url)
        if not self.model:
            raise Invalid("the model name the endpoint serves (backend http)", "model", self.model)
        return self


@schema
class DistillParams:
    """Knowledge distillation: each student (a ``models:`` entry) is trained again on the teacher's soft
    targets and appears as ``<student>_kd``. Loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE."""

    teacher: Optional[Str] = None  # a models: entry (transformer); its fine-tuned model on each data set
    students: Annotated[list[NonEmptyStr], Strict(), rule(distinct, "distinct"),
                        Expect("a list of distinct models: entry names")] = Field(default_factory=list)
    temperature: Number = Field(2.0, gt=0)
    alpha: Number = Field(0.5, ge=0, le=1)


@schema
class EvaluateParams:
    batch_size: Int = Field(64, gt=0)
    device: Device = "auto"
    bootstrap_resamples: Int = Field(1000, ge=100)  # for 95 % intervals of accuracy and macro-F1
    calibration_bins: Int = Field(15, ge=2)  # reliability diagram / expected calibration error


@schema
class BenchmarkParams:
    """Inference benchmark; the first variant of each device is the baseline the others are compared with."""

    cpu_variants: List = Field(default_factory=lambda: list(CPU_VARIANTS))
    cuda_variants: List = Field(default_factory=lambda: list(CUDA_VARIANTS))
    warmup: Int = Field(10, ge=0)  # untimed batch-1 calls per variant before the validation pass
    repeats: Int = Field(10, ge=6)  # interleaved rounds over the test split (>= 6: a 95 % interval of the median)
    max_served_texts: Optional[Int] = Field(None, gt=0)  # test texts served at batch 1 (null: all of them)
    throughput_texts: Int = Field(128, ge=1)  # seeded sample of test texts the batch-size sweep rotates over
    batch_sizes: Annotated[list[Annotated[Int, Field(gt=0)]], Strict(), Field(min_length=1),
                           Expect("a non-empty list of integers > 0")] = Field(default_factory=lambda: [1, 8, 32])
    throughput_min_seconds: Number = Field(0.5, ge=0)  # per batch size, after at least one full rotation
    threads: Int = Field(0, ge=0)  # 0: every core this process may use
    max_accuracy_drop: Number = Field(0.005, ge=0, lt=1)  # a variant may lose at most this much accuracy to be "best"
    price_per_hour: Annotated[dict[Literal["cpu", "cuda"], Annotated[Number, Field(ge=0)]],
                              rule(lambda prices: set(prices) == {"cpu", "cuda"}, "both devices"),
                              Expect("a mapping {cpu: USD, cuda: USD} of numbers >= 0")] = Field(
        default_factory=lambda: {"cpu": 0.10, "cuda": 2.50})  # USD

    @field_validator("cpu_variants", "cuda_variants")
    @classmethod
    def _registered(cls, variants: list, info) -> list:
        from textcls.serving.backends import variant_names  # the inference-variant registry

        allowed = variant_names(info.field_name.split("_")[0])
        if not (variants and all(isinstance(v, str) and v in allowed for v in variants) and distinct(variants)):
            raise ValueError(f"a non-empty list of distinct names from {allowed}")
        return variants


@schema
class AggregateParams:
    sort_by: Str = "accuracy"
    metrics: List = Field(default_factory=lambda: ["accuracy", "f1_macro", "f1_weighted", "auroc", "loss"])
    significance_level: Number = Field(0.05, gt=0, lt=1)  # McNemar's exact test of each model against the best one
    bootstrap_resamples: Int = Field(1000, ge=100)  # paired bootstrap of accuracy differences; decision certificate draws


@schema
class RecommendParams:
    """Deployment constraints; the aggregate stage recommends the best model that meets all of them."""

    device: ServingDevice = "cpu"  # cpu | gpu: the constraints apply to that device's best benchmark variant
    objective: Objective = "accuracy"  # best = highest accuracy, or lowest p95_ms / cost_per_1k_texts_usd
    min_accuracy: Optional[Number] = Field(None, ge=0, le=1)  # null = no limit (same for every constraint)
    max_p95_ms: Optional[Number] = Field(None, gt=0)  # batch-1 end-to-end p95 latency: its 95 % upper bound
    max_memory_mb: Optional[Number] = Field(None, gt=0)  # memory serving the model keeps (CPU RSS; GPU from NVML)
    max_cost_per_1k_texts_usd: Optional[Number] = Field(None, gt=0)
    max_params: Optional[Int] = Field(None, gt=0)


_CHAIN = "a list of >= 2 distinct entry names, each `name` or `name:variant` (e.g. [tfidf, minilm:onnx_int8])"


@schema
class CascadeParams:
    """Chains of leaderboard entries answering in turn (``textcls.report.cascades``, by ``aggregate`` only): a text
    goes on to the next entry when the previous one's confidence (its top class probability) is under that entry's
    threshold. Thresholds are chosen on the validation split's served predictions, never on test."""

    chains: list[Annotated[list[Annotated[Str, rule(re.compile(r"[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?").fullmatch,
                                                    "`name` or `name:variant`")]],
                           Strict(), Field(min_length=2), rule(distinct, "distinct"), Expect(_CHAIN)]] = Field(
        default_factory=list)
    # the cheapest thresholds (lowest expected validation latency) whose validation accuracy is at most this far
    # below the best thresholds' (the benchmark's max_accuracy_drop, for variants, is the same idea)
    max_accuracy_drop: Annotated[Number, Field(ge=0, le=1), Expect("a fraction in [0, 1]")] = 0.005
    # candidate thresholds per entry: quantiles of its validation confidence, plus never and always defer
    thresholds: Annotated[Int, Field(ge=1, le=200), Expect("an integer in [1, 200]")] = 20


@schema
class ApiPriceParams:
    """An LLM API's prices, USD per 1M tokens: the user's to set (null = not set: no API comparison)."""

    input: Optional[Annotated[Number, Field(ge=0), Expect("a price >= 0 (USD per 1M input tokens), or null")]] = None
    output: Optional[Annotated[Number, Field(ge=0), Expect("a price >= 0 (USD per 1M output tokens), or null")]] = None


@schema
class CapacityParams:
    """The traffic a deployment must serve; the aggregate stage plans replicas and cost per month from the
    measured throughput-by-batch-size curves (``textcls.report.capacity``). Prices are the user's to set."""

    requests_per_s: Annotated[Number, Field(gt=0), Expect("a number > 0 (texts per second to classify)")] = 10.0
    p95_target_ms: Annotated[Number, Field(gt=0), Expect("a number > 0 (milliseconds, end to end)")] = 100.0
    hours_per_month: Annotated[Number, Field(gt=0, le=744), Expect("hours in (0, 744] (730 = a mean month)")] = 730
    max_utilisation: Annotated[Number, Field(gt=0, le=1), Expect("a fraction in (0, 1] of a replica's measured "
                                                                 "throughput")] = 0.7
    llm_api_price_per_1m_tokens: Annotated[ApiPriceParams, empty_if_null] = Field(default_factory=ApiPriceParams)
    llm_api_output_tokens_per_text: Annotated[Int, Field(ge=0), Expect("an integer >= 0 (tokens the API answers "
                                                                       "with per text)")] = 8
