"""params.yaml -> frozen dataclasses, validated once at the edge.

Every section is a dataclass whose fields are the only keys allowed (unknown keys
fail, as in nanoGPT's configurator), with types checked from the annotations and
ranges checked in ``__post_init__``. Errors use one format, naming the key:

    The 'train.lr' parameter must be a number > 0. Got -1.0 instead.

Code below this module trusts what it receives.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Optional

import yaml

from textcls.config import plugins
from textcls.errors import ParamsError

SPLITS = ("train", "validation", "test")
DATA_FORMATS = ("ag_news_csv", "csv", "tsv", "jsonl", "parquet")
LLM_BACKENDS = ("local", "http")
LABEL_SCORING = ("sum", "mean")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
SAMPLING = ("group_by_length", "random")


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: ``5e-05`` is a number, not the string '5e-05'.

    ``dvc exp run -S models.x.lr=5e-5`` writes the value as ``5e-05`` (no dot), which YAML 1.1
    (PyYAML's default) reads as a string, while DVC itself reads it as a float.
    """


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?$"
               r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."))


URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")  # the user:password@ part of a URL


def _redact(value: Any) -> Any:
    """Params errors echo the offending value; credentials inside a URL are not echoed."""
    return URL_CREDENTIALS.sub("***@", value) if isinstance(value, str) else value


def _fail(key: str, expected: str, got: Any) -> None:
    raise ParamsError(f"The {key!r} parameter must be {expected}. Got {_redact(got)!r} instead.")


def _check(cond: bool, key: str, expected: str, got: Any) -> None:
    if not cond:
        _fail(key, expected, got)


def _type_ok(value: Any, annotation: Any) -> bool:
    """Is ``value`` an instance of a (simple) type annotation? ints pass for floats."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is Any:
        return True
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, dict):
        return isinstance(value, origin)
    return isinstance(value, annotation)


def _type_name(annotation: Any) -> str:
    args = typing.get_args(annotation)
    if args and typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def build(cls: type, raw: Any, where: str):
    """Build dataclass ``cls`` from mapping ``raw``; ``where`` is the dotted key for messages."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        _fail(where, "a mapping", raw)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(
            f"Unknown key {where}.{unknown[0]!r} in params.yaml. "
            f"Valid keys under {where!r}: {', '.join(sorted(fields))}."
        )
    kwargs = {}
    for name, field in fields.items():
        key = f"{where}.{name}"
        if name not in raw:
            no_default = field.default is dataclasses.MISSING
            if no_default and field.default_factory is dataclasses.MISSING:
                raise ParamsError(f"Missing key {key!r} in params.yaml: add it ({_type_name(hints[name])}).")
            continue
        value = raw[name]
        _check(_type_ok(value, hints[name]), key, f"of type {_type_name(hints[name])}", value)
        kwargs[name] = value
    return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class BaseParams:
    seed: int = 42


@dataclasses.dataclass(frozen=True)
class DatasetParams:
    """One data set: where its raw files are and how to read and split them."""

    name: str
    format: str
    path: str
    files: dict = dataclasses.field(default_factory=dict)  # split -> file name under path
    text_column: str = "text"
    label_column: str = "label"
    text_columns: Optional[list] = None  # several columns joined with a space (e.g. title + body)
    label_names: Optional[list] = None  # class names for integer labels 0..K-1
    carve: dict = dataclasses.field(default_factory=lambda: {"validation": 0.1, "test": 0.2})
    n_per_class: dict = dataclasses.field(default_factory=dict)  # split -> int cap per class
    on_duplicates: str = "warn"  # warn | drop | error (texts of test also in train/validation)

    def __post_init__(self):
        where = f"datasets.{self.name}"
        _check(self.format in DATA_FORMATS, f"{where}.format", f"one of {DATA_FORMATS}", self.format)
        _check(bool(self.files), f"{where}.files", "a non-empty mapping split -> file name", self.files)
        for split, fname in self.files.items():
            _check(split in SPLITS, f"{where}.files", f"keyed by splits {SPLITS}", split)
            _check(isinstance(fname, str) and fname, f"{where}.files.{split}", "a file name", fname)
            inside = not Path(fname).is_absolute() and ".." not in Path(fname).parts and "\\" not in fname
            _check(inside, f"{where}.files.{split}", f"a file name inside {where}.path (no '..', no absolute "
                   "path: change `path` to read another folder)", fname)
        for split, frac in self.carve.items():
            _check(split in ("validation", "test"), f"{where}.carve", "keyed by 'validation'/'test'", split)
            ok = isinstance(frac, (int, float)) and 0 < frac < 1
            _check(ok, f"{where}.carve.{split}", "a fraction in (0, 1)", frac)
        for split, cap in self.n_per_class.items():
            _check(split in SPLITS, f"{where}.n_per_class", f"keyed by splits {SPLITS}", split)
            ok = cap is None or (isinstance(cap, int) and not isinstance(cap, bool) and cap > 0)
            _check(ok, f"{where}.n_per_class.{split}", "a positive integer or null", cap)
        if self.label_names is not None:
            names = self.label_names
            ok = len(names) >= 2 and all(isinstance(n, str) and n for n in names) and len(set(names)) == len(names)
            _check(ok, f"{where}.label_names", "a list of >= 2 distinct non-empty strings", names)
        modes = ("warn", "drop", "error")
        _check(self.on_duplicates in modes, f"{where}.on_duplicates", f"one of {modes}", self.on_duplicates)


@dataclasses.dataclass(frozen=True)
class HubDatasetParams:
    """A data set on the Hugging Face Hub, downloaded by the ``download`` stage."""

    name: str
    hub_id: str
    config: Optional[str] = None
    revision: Optional[str] = None
    splits: dict = dataclasses.field(default_factory=lambda: {"train": "train", "test": "test"})
    text_column: str = "text"
    label_column: str = "label"

    def __post_init__(self):
        for ours, theirs in self.splits.items():
            _check(ours in SPLITS, f"hub_datasets.{self.name}.splits", f"keyed by {SPLITS}", ours)
            _check(isinstance(theirs, str), f"hub_datasets.{self.name}.splits.{ours}", "a split name", theirs)


@dataclasses.dataclass(frozen=True)
class TokenizeParams:
    max_length: int = 128
    batch_size: int = 1000  # rows per tokenizer call (datasets.map batched)

    def __post_init__(self):
        _check(self.max_length >= 8, "tokenize.max_length", "an integer >= 8", self.max_length)
        _check(self.batch_size > 0, "tokenize.batch_size", "an integer > 0", self.batch_size)


@dataclasses.dataclass(frozen=True)
class TrainParams:
    """Defaults for every transformer; a model entry may override any of them."""

    lr: float = 2e-5
    batch_size: int = 32
    eval_batch_size: int = 64
    epochs: float = 3
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    precision: str = "auto"  # auto: bf16/fp16 on a GPU that supports it, fp32 on CPU
    device: str = "auto"  # auto | cpu | cuda
    logging_steps: int = 10
    dataloader_workers: int = 0
    seed: Optional[int] = None  # training seed (head init, data order); null = base.seed. Vary it for seed variance
    sampling: str = "group_by_length"  # batches of similar lengths (less padding, seeded) | random
    deterministic: bool = False  # bitwise-repeatable GPU kernels (torch deterministic algorithms; slower)

    def __post_init__(self):
        _check(self.lr > 0, "train.lr", "a number > 0", self.lr)
        _check(self.batch_size > 0, "train.batch_size", "an integer > 0", self.batch_size)
        _check(self.eval_batch_size > 0, "train.eval_batch_size", "an integer > 0", self.eval_batch_size)
        _check(self.epochs > 0, "train.epochs", "a number > 0", self.epochs)
        _check(0 <= self.warmup_ratio < 1, "train.warmup_ratio", "a number in [0, 1)", self.warmup_ratio)
        _check(self.weight_decay >= 0, "train.weight_decay", "a number >= 0", self.weight_decay)
        _check(self.max_grad_norm > 0, "train.max_grad_norm", "a number > 0", self.max_grad_norm)
        _check(self.precision in PRECISIONS, "train.precision", f"one of {PRECISIONS}", self.precision)
        _check(self.device in ("auto", "cpu", "cuda"), "train.device", "one of auto, cpu, cuda", self.device)
        _check(self.logging_steps > 0, "train.logging_steps", "an integer > 0", self.logging_steps)
        _check(self.dataloader_workers >= 0, "train.dataloader_workers", "an integer >= 0", self.dataloader_workers)
        _check(self.seed is None or self.seed >= 0, "train.seed", "an integer >= 0 or null", self.seed)
        _check(self.sampling in SAMPLING, "train.sampling", f"one of {SAMPLING}", self.sampling)


@dataclasses.dataclass(frozen=True)
class TokenizerParams:
    source: Optional[str] = None  # defaults to the model's source
    revision: Optional[str] = None  # hub revision of `source`; unset: the model's revision (when source is unset)
    prefix: str = ""  # prepended to every text, e.g. "classify: " for T5


@dataclasses.dataclass(frozen=True)
class TfidfParams:
    ngram_max: int = 2
    min_df: int = 1
    max_features: Optional[int] = 200_000
    sublinear_tf: bool = True
    C: float = 10.0
    max_iter: int = 1000

    def __post_init__(self):
        _check(1 <= self.ngram_max <= 5, "tfidf.ngram_max", "an integer in [1, 5]", self.ngram_max)
        _check(self.min_df >= 1, "tfidf.min_df", "an integer >= 1", self.min_df)
        ok = self.max_features is None or self.max_features > 0
        _check(ok, "tfidf.max_features", "an integer > 0 or null", self.max_features)
        _check(self.C > 0, "tfidf.C", "a number > 0", self.C)
        _check(self.max_iter > 0, "tfidf.max_iter", "an integer > 0", self.max_iter)


@dataclasses.dataclass(frozen=True)
class KindSchema:
    """How a model kind is configured: the dataclass of its own keys and where :class:`ModelParams` keeps it."""

    settings: type  # a dataclass: its fields are the keys a models: entry of this kind may set
    field: str = "settings"  # the ModelParams field that holds them (built-ins: train, tfidf)
    inherits_train: bool = False  # start from the `train:` defaults, which the entry may override
    fine_tuned: bool = False  # a fine-tuned network: may keep `layers`, teach or be a distillation student


KIND_SCHEMAS: dict[str, KindSchema] = {}


def register_kind_schema(name: str, settings: type, field: str = "settings", inherits_train: bool = False,
                         fine_tuned: bool = False) -> None:
    """Let ``models.<name>.kind: <name>`` validate, with ``settings``' fields as the entry's own keys. The kind's
    behaviour registers with :func:`textcls.kinds.register`; a plugin module does both (``TEXTCLS_PLUGINS``)."""
    if name in KIND_SCHEMAS and KIND_SCHEMAS[name].settings is not settings:
        raise ValueError(f"model kind {name!r} already has a settings schema")
    KIND_SCHEMAS[name] = KindSchema(settings, field, inherits_train, fine_tuned)


register_kind_schema("transformer", TrainParams, "train", inherits_train=True, fine_tuned=True)
register_kind_schema("tfidf", TfidfParams, "tfidf")


@dataclasses.dataclass(frozen=True)
class ModelParams:
    """One leaderboard entry. ``source`` is a hub id, a local directory or ``package:<module>``."""

    name: str
    kind: str
    source: str
    tokenizer: TokenizerParams
    train: Optional[TrainParams] = None  # resolved: train defaults + this model's overrides
    tfidf: Optional[TfidfParams] = None
    revision: Optional[str] = None  # hub revision (commit, tag or branch); dvc.yaml tracks it: keep the key (null)
    trust_remote_code: bool = False
    layers: Optional[list] = None  # keep only these encoder layers of the pretrained model (a smaller student)
    settings: Optional[Any] = None  # a plugin kind's own settings (built-in kinds keep theirs in train / tfidf)

    def __post_init__(self):
        if self.layers is not None:
            ok = (KIND_SCHEMAS[self.kind].fine_tuned and bool(self.layers) and len(set(self.layers)) == len(self.layers)
                  and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in self.layers))
            _check(ok, f"models.{self.name}.layers", "a list of distinct layer indices >= 0 (transformers only)",
                   self.layers)


@dataclasses.dataclass(frozen=True)
class LLMParams:
    """A prompted LLM (no fine-tuning): few-shot demonstrations from train, label-constrained answers."""

    name: str
    backend: str  # local (a causal LM run by transformers) | http (an OpenAI-compatible chat endpoint)
    source: Optional[str] = None  # local: hub id, local folder or gguf:<package>
    revision: Optional[str] = None
    trust_remote_code: bool = False
    shots_per_class: int = 2  # 0 = zero-shot
    max_test_rows: Optional[int] = 200  # seeded subsample of the test split; null = all of it
    max_text_tokens: int = 96  # each demonstration and query text is cut to this many tokens
    instruction: str = "Classify the text into one of these categories: {labels}."
    label_scoring: str = "sum"  # local: sum | mean of the label tokens' log-probabilities
    price_per_1m_tokens: Optional[float] = None  # USD; null (local) = machine price / measured tokens per s
    url: Optional[str] = None  # http: base URL, e.g. http://127.0.0.1:8000/v1
    model: Optional[str] = None  # http: model name sent to the endpoint
    api_key_env: Optional[str] = None  # http: NAME of the environment variable holding the key (never the key)
    timeout_s: float = 60.0
    structured_output: bool = True  # http: ask for JSON restricted to the class names (response_format)

    def __post_init__(self):
        where = f"llms.{self.name}"
        _check(self.backend in LLM_BACKENDS, f"{where}.backend", f"one of {LLM_BACKENDS}", self.backend)
        if self.backend == "local":
            _check(bool(self.source), f"{where}.source", "a hub id, local folder or gguf:<package> (backend local)",
                   self.source)
        else:
            ok = isinstance(self.url, str) and self.url.startswith(("http://", "https://"))
            _check(ok, f"{where}.url", "an http(s):// URL (backend http)", self.url)
            _check(not URL_CREDENTIALS.search(self.url), f"{where}.url", "a URL without user:password@ (params "
                   "end up in git and dvc.lock: put the key in the environment variable named by api_key_env)",
                   self.url)
            _check(bool(self.model), f"{where}.model", "the model name the endpoint serves (backend http)",
                   self.model)
        ok = self.api_key_env is None or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env) is not None
        _check(ok, f"{where}.api_key_env", "the name of an environment variable (the key itself never goes in "
               "params.yaml)", "<not shown: it may be a secret>")
        _check(self.shots_per_class >= 0, f"{where}.shots_per_class", "an integer >= 0", self.shots_per_class)
        ok = self.max_test_rows is None or self.max_test_rows > 0
        _check(ok, f"{where}.max_test_rows", "an integer > 0 or null", self.max_test_rows)
        _check(self.max_text_tokens >= 8, f"{where}.max_text_tokens", "an integer >= 8", self.max_text_tokens)
        _check("{labels}" in self.instruction, f"{where}.instruction", "a text containing {labels}",
               self.instruction)
        _check(self.label_scoring in LABEL_SCORING, f"{where}.label_scoring", f"one of {LABEL_SCORING}",
               self.label_scoring)
        ok = self.price_per_1m_tokens is None or self.price_per_1m_tokens >= 0
        _check(ok, f"{where}.price_per_1m_tokens", "a number >= 0 or null", self.price_per_1m_tokens)
        _check(self.timeout_s > 0, f"{where}.timeout_s", "a number > 0", self.timeout_s)


@dataclasses.dataclass(frozen=True)
class DistillParams:
    """Knowledge distillation: each student (a ``models:`` entry) is trained again on the teacher's soft
    targets and appears as ``<student>_kd``. Loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE."""

    teacher: Optional[str] = None  # a models: entry (transformer); its fine-tuned model on each data set
    students: list = dataclasses.field(default_factory=list)
    temperature: float = 2.0
    alpha: float = 0.5

    def __post_init__(self):
        _check(self.temperature > 0, "distill.temperature", "a number > 0", self.temperature)
        _check(0 <= self.alpha <= 1, "distill.alpha", "a number in [0, 1]", self.alpha)
        ok = all(isinstance(s, str) and s for s in self.students) and len(set(self.students)) == len(self.students)
        _check(ok, "distill.students", "a list of distinct models: entry names", self.students)


@dataclasses.dataclass(frozen=True)
class EvaluateParams:
    batch_size: int = 64
    device: str = "auto"
    bootstrap_resamples: int = 1000  # for 95 % intervals of accuracy and macro-F1
    calibration_bins: int = 15  # reliability diagram / expected calibration error

    def __post_init__(self):
        _check(self.batch_size > 0, "evaluate.batch_size", "an integer > 0", self.batch_size)
        _check(self.bootstrap_resamples >= 100, "evaluate.bootstrap_resamples", "an integer >= 100",
               self.bootstrap_resamples)
        _check(self.calibration_bins >= 2, "evaluate.calibration_bins", "an integer >= 2", self.calibration_bins)
        _check(self.device in ("auto", "cpu", "cuda"), "evaluate.device", "one of auto, cpu, cuda", self.device)


CPU_VARIANTS = ("eager_fp32", "dynamic_int8", "onnx_fp32", "onnx_int8")  # the defaults; any registered variant goes
CUDA_VARIANTS = ("eager_fp32", "eager_fp16", "eager_bf16", "onnx_fp32")


@dataclasses.dataclass(frozen=True)
class BenchmarkParams:
    """Inference benchmark; the first variant of each device is the baseline the others are compared with."""

    cpu_variants: list = dataclasses.field(default_factory=lambda: list(CPU_VARIANTS))
    cuda_variants: list = dataclasses.field(default_factory=lambda: list(CUDA_VARIANTS))
    warmup: int = 10  # untimed calls before measuring
    min_iterations: int = 50  # batch-1 latency: at least this many calls ...
    min_seconds: float = 2.0  # ... and at least this long
    latency_texts: int = 100  # distinct test texts (seeded sample) cycled through
    batch_sizes: list = dataclasses.field(default_factory=lambda: [1, 8, 32])
    throughput_min_seconds: float = 1.0
    threads: int = 0  # 0: every core this process may use
    max_accuracy_drop: float = 0.005  # a variant may lose at most this much accuracy to be "best"
    price_per_hour: dict = dataclasses.field(default_factory=lambda: {"cpu": 0.10, "cuda": 2.50})  # USD
    llm_api_price_per_1m_tokens: float = 0.15  # USD, to compare against

    def __post_init__(self):
        from textcls.serving.backends import variant_names  # the inference-variant registry

        for device in ("cpu", "cuda"):
            allowed = variant_names(device)
            variants = getattr(self, f"{device}_variants")
            ok = bool(variants) and all(v in allowed for v in variants) and len(set(variants)) == len(variants)
            _check(ok, f"benchmark.{device}_variants", f"a non-empty list of distinct names from {allowed}", variants)
        _check(self.warmup >= 0, "benchmark.warmup", "an integer >= 0", self.warmup)
        _check(self.min_iterations >= 1, "benchmark.min_iterations", "an integer >= 1", self.min_iterations)
        _check(self.min_seconds >= 0, "benchmark.min_seconds", "a number >= 0", self.min_seconds)
        _check(self.latency_texts >= 1, "benchmark.latency_texts", "an integer >= 1", self.latency_texts)
        ok = bool(self.batch_sizes) and all(isinstance(b, int) and not isinstance(b, bool) and b > 0
                                            for b in self.batch_sizes)
        _check(ok, "benchmark.batch_sizes", "a non-empty list of integers > 0", self.batch_sizes)
        _check(self.throughput_min_seconds >= 0, "benchmark.throughput_min_seconds", "a number >= 0",
               self.throughput_min_seconds)
        _check(self.threads >= 0, "benchmark.threads", "an integer >= 0", self.threads)
        _check(0 <= self.max_accuracy_drop < 1, "benchmark.max_accuracy_drop", "a number in [0, 1)",
               self.max_accuracy_drop)
        ok = set(self.price_per_hour) == {"cpu", "cuda"} and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in self.price_per_hour.values())
        _check(ok, "benchmark.price_per_hour", "a mapping {cpu: USD, cuda: USD} of numbers >= 0",
               self.price_per_hour)
        _check(self.llm_api_price_per_1m_tokens >= 0, "benchmark.llm_api_price_per_1m_tokens", "a number >= 0",
               self.llm_api_price_per_1m_tokens)


@dataclasses.dataclass(frozen=True)
class AggregateParams:
    sort_by: str = "accuracy"
    metrics: list = dataclasses.field(default_factory=lambda: ["accuracy", "f1_macro", "f1_weighted", "loss"])
    significance_level: float = 0.05  # McNemar's exact test of each model against the best one
    bootstrap_resamples: int = 1000  # paired bootstrap of the accuracy difference

    def __post_init__(self):
        _check(0 < self.significance_level < 1, "aggregate.significance_level", "a number in (0, 1)",
               self.significance_level)
        _check(self.bootstrap_resamples >= 100, "aggregate.bootstrap_resamples", "an integer >= 100",
               self.bootstrap_resamples)


SERVING_DEVICES = ("cpu", "gpu")
OBJECTIVES = ("accuracy", "p95_ms", "cost_per_1m_tokens_usd")


@dataclasses.dataclass(frozen=True)
class RecommendParams:
    """Deployment constraints; the aggregate stage recommends the best model that meets all of them."""

    device: str = "cpu"  # cpu | gpu: the constraints apply to that device's best benchmark variant
    objective: str = "accuracy"  # best = highest accuracy, or lowest p95_ms / cost_per_1m_tokens_usd
    min_accuracy: Optional[float] = None  # null = no limit (same for every constraint)
    max_p95_ms: Optional[float] = None  # batch-1 p95 latency
    max_memory_mb: Optional[float] = None  # memory the loaded model adds (CPU RSS; GPU max allocated)
    max_cost_per_1m_tokens_usd: Optional[float] = None
    max_params: Optional[int] = None

    def __post_init__(self):
        _check(self.device in SERVING_DEVICES, "recommend.device", f"one of {SERVING_DEVICES}", self.device)
        _check(self.objective in OBJECTIVES, "recommend.objective", f"one of {OBJECTIVES}", self.objective)
        ok = self.min_accuracy is None or 0 <= self.min_accuracy <= 1
        _check(ok, "recommend.min_accuracy", "a number in [0, 1] or null", self.min_accuracy)
        for key in ("max_p95_ms", "max_memory_mb", "max_cost_per_1m_tokens_usd", "max_params"):
            value = getattr(self, key)
            _check(value is None or value > 0, f"recommend.{key}", "a number > 0 or null", value)


@dataclasses.dataclass(frozen=True)
class Params:
    base: BaseParams
    datasets: dict  # name -> DatasetParams
    hub_datasets: dict  # name -> HubDatasetParams
    models: dict  # name -> ModelParams
    llms: dict  # name -> LLMParams
    distill: DistillParams
    tokenize: TokenizeParams
    train: TrainParams
    evaluate: EvaluateParams
    benchmark: BenchmarkParams
    aggregate: AggregateParams
    recommend: RecommendParams


_MODEL_KEYS = {"kind", "source", "tokenizer", "revision", "trust_remote_code", "layers"}


def _build_model(name: str, raw: Any, train: TrainParams) -> ModelParams:
    where = f"models.{name}"
    if not isinstance(raw, dict):
        _fail(where, "a mapping with kind, source and tokenizer", raw)
    for key in ("kind", "source", "tokenizer"):
        if key not in raw:
            raise ParamsError(f"Missing key '{where}.{key}' in params.yaml: every model needs kind, source, tokenizer.")
    _check(raw["kind"] in KIND_SCHEMAS, f"{where}.kind", f"one of {tuple(KIND_SCHEMAS)}", raw["kind"])
    _check(isinstance(raw["source"], str) and raw["source"], f"{where}.source", "a non-empty string", raw["source"])
    own = {k: v for k, v in raw.items() if k in _MODEL_KEYS}
    own["tokenizer"] = build(TokenizerParams, raw["tokenizer"], f"{where}.tokenizer")
    overrides = {k: v for k, v in raw.items() if k not in _MODEL_KEYS}
    schema = KIND_SCHEMAS[raw["kind"]]
    merged = {**dataclasses.asdict(train), **overrides} if schema.inherits_train else overrides
    own[schema.field] = _overrides(schema.settings, merged, overrides, where)
    return build(ModelParams, {"name": name, **own}, where)


def _overrides(cls: type, merged: dict, overrides: dict, where: str):
    """Build ``cls`` from ``merged``; unknown keys are reported against the model entry."""
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ParamsError(
            f"Unknown key {where}.{unknown[0]!r} in params.yaml. A model entry takes "
            f"{', '.join(sorted(_MODEL_KEYS))} and overrides of: {', '.join(sorted(valid))}."
        )
    try:
        return build(cls, merged, where)
    except ParamsError as err:  # defaults were validated already: the bad value is this model's
        raise ParamsError(str(err).replace(f"'{cls.__name__.replace('Params', '').lower()}.", f"'{where}.")) from None


def _check_stage_name(name: Any, where: str) -> None:
    ok = isinstance(name, str) and bool(name) and not set(name) & set("-/@ .")
    _check(ok, where, "keyed by names without '-', '/', '@', '.' or spaces (they become DVC stage names)", name)


def _named(section: Any, cls: type, where: str) -> dict:
    if section is None:
        return {}
    if not isinstance(section, dict):
        _fail(where, "a mapping name -> settings", section)
    out = {}
    for name, raw in section.items():
        _check_stage_name(name, where)
        if not isinstance(raw, dict):
            _fail(f"{where}.{name}", "a mapping", raw)
        out[name] = build(cls, {"name": name, **raw}, f"{where}.{name}")
    return out


def parse_params(raw: Any) -> Params:
    """Validate the content of params.yaml (already parsed YAML)."""
    if not isinstance(raw, dict):
        raise ParamsError(f"params.yaml must be a mapping of sections. Got {type(raw).__name__}.")
    plugins.load()  # kinds and variants from TEXTCLS_PLUGINS register before anything is checked against them
    valid = {f.name for f in dataclasses.fields(Params)}
    unknown = sorted(set(raw) - valid)
    if unknown:
        raise ParamsError(f"Unknown section {unknown[0]!r} in params.yaml. Valid sections: {', '.join(sorted(valid))}.")
    train = build(TrainParams, raw.get("train"), "train")
    models_raw = raw.get("models") or {}
    if not isinstance(models_raw, dict) or not models_raw:
        raise ParamsError("params.yaml needs a non-empty 'models' mapping (name -> kind, source, tokenizer).")
    datasets = _named(raw.get("datasets"), DatasetParams, "datasets")
    if not datasets:
        raise ParamsError("params.yaml needs a non-empty 'datasets' mapping (name -> format, path, files).")
    models = {}
    for name, entry in models_raw.items():
        _check_stage_name(name, "models")
        models[name] = _build_model(name, entry, train)
    llms = _named(raw.get("llms"), LLMParams, "llms")
    distill = build(DistillParams, raw.get("distill"), "distill")
    _check_entry_names(models, llms, distill)
    return Params(
        base=build(BaseParams, raw.get("base"), "base"),
        datasets=datasets,
        hub_datasets=_named(raw.get("hub_datasets"), HubDatasetParams, "hub_datasets"),
        models=models,
        llms=llms,
        distill=distill,
        tokenize=build(TokenizeParams, raw.get("tokenize"), "tokenize"),
        train=train,
        evaluate=build(EvaluateParams, raw.get("evaluate"), "evaluate"),
        benchmark=build(BenchmarkParams, raw.get("benchmark"), "benchmark"),
        aggregate=build(AggregateParams, raw.get("aggregate"), "aggregate"),
        recommend=build(RecommendParams, raw.get("recommend"), "recommend"),
    )


def _check_entry_names(models: dict, llms: dict, distill: DistillParams) -> None:
    """Leaderboard entries (models, llms, <student>_kd) must not collide; distillation names real transformers."""
    clash = sorted(set(models) & set(llms))
    if clash:
        raise ParamsError(f"{clash[0]!r} is both a models: and an llms: entry. Fix: rename one (names are "
                          "leaderboard entries and output paths).")
    transformers = sorted(n for n, m in models.items() if KIND_SCHEMAS[m.kind].fine_tuned)
    if distill.students:
        if distill.teacher not in transformers:
            _fail("distill.teacher", f"a transformer entry of models: ({', '.join(transformers) or 'none'})",
                  distill.teacher)
        for student in distill.students:
            if student not in transformers:
                _fail("distill.students", f"names of transformer entries of models: ({', '.join(transformers)})",
                      student)
            if student == distill.teacher:
                _fail("distill.students", "models other than the teacher", student)
            if f"{student}_kd" in set(models) | set(llms):
                raise ParamsError(f"{student}_kd is already an entry; distilling {student!r} would overwrite it. "
                                  "Fix: rename that entry.")


def tokenizer_source(model: ModelParams) -> tuple[str, Optional[str]]:
    """(source, revision) of a model's tokenizer: ``tokenizer.source`` at ``tokenizer.revision``, else the
    model's own source at the model's revision."""
    if model.tokenizer.source:
        return model.tokenizer.source, model.tokenizer.revision
    return model.source, model.tokenizer.revision or model.revision


@dataclasses.dataclass(frozen=True)
class Entry:
    """One leaderboard entry the params declare: a (dataset, name) pair and the stages that produce it."""

    dataset: str
    name: str
    kind: str  # model | distilled | llm
    eval_stage: str  # writes metrics/eval/<dataset>/<name>.json (and the predictions)
    train_stage: str  # writes metrics/train/<dataset>/<name>.json
    benchmark_stage: str  # writes metrics/benchmark/<dataset>/<name>.json


def declared_entries(params: Params) -> list[Entry]:
    """Every (dataset, entry) the current params declare, in params order: each ``models:`` entry, each
    distilled student (``<student>_kd``) and each ``llms:`` entry, on every data set. Outputs of anything
    else (files left by entries no longer declared) must never reach a leaderboard or report."""
    out = []
    for ds in params.datasets:
        for name in params.models:
            out.append(Entry(ds, name, "model", f"evaluate@{ds}-{name}", f"train@{ds}-{name}",
                             f"benchmark@{ds}-{name}"))
        if params.distill.teacher is not None:
            for student in params.distill.students:
                out.append(Entry(ds, f"{student}_kd", "distilled", f"evaluate_distilled@{ds}-{student}",
                                 f"distill@{ds}-{student}", f"benchmark_distilled@{ds}-{student}"))
        for name in params.llms:
            stage = f"fewshot@{ds}-{name}"
            out.append(Entry(ds, name, "llm", stage, stage, stage))
    return out


def training_seed(params: Params, model: ModelParams) -> int:
    """The seed a model trains with: its (or train's) ``seed`` if set, else ``base.seed`` (which also carves data)."""
    own = model.train.seed if model.train is not None else params.train.seed
    return params.base.seed if own is None else own


def lookup(section: dict, name: str, where: str, params_path: str | Path = "params.yaml"):
    """``section[name]``, or a ParamsError naming the section and the known entries."""
    if name not in section:
        raise ParamsError(f"Unknown {where} entry {name!r}: add it under {where!r} in {params_path}. "
                          f"Known: {', '.join(sorted(section)) or 'none'}.")
    return section[name]


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; every error names the key and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found: run from the project root, or pass --params PATH.")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=YamlLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    return parse_params(raw)
