"""params.yaml -> frozen dataclasses, validated once at the edge.

The schema is declarative (pydantic): each section is a dataclass in :mod:`textcls.config.schema` whose
fields are the only keys allowed (unknown keys fail, as in nanoGPT's configurator), with their types,
ranges and choices. A ``models:`` entry is dispatched on its ``kind`` to the settings class that kind
registered (:func:`register_kind_schema`). Every error is one line naming the key (see
:mod:`textcls.config.adapter`):

    The 'train.lr' parameter must be a number > 0. Got -1.0 instead.

Code below this module trusts what it receives.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Annotated, Any, Optional

import yaml
from pydantic import Strict, field_validator, model_validator

from textcls.config import plugins
from textcls.config.adapter import URL_CREDENTIALS, Invalid, validate
from textcls.config.fields import Bool, Expect, Field, Int, StageName, Str, distinct, empty_if_null, rule, schema
from textcls.config.schema import (CPU_VARIANTS, CUDA_VARIANTS, DATA_FORMATS, LABEL_SCORING, LLM_BACKENDS,
                                   OBJECTIVES, PRECISIONS, SAMPLING, SERVING_DEVICES, SPLITS, AggregateParams,
                                   ApiPriceParams, BaseParams, BenchmarkParams, CapacityParams, CascadeParams, DatasetParams,
                                   DistillParams, EmbeddingParams, EvaluateParams, HubDatasetParams, LLMParams,
                                   RecommendParams, TfidfParams, TokenizeParams, TokenizerParams, TrainParams)
from textcls.errors import ParamsError

__all__ = [  # what other modules import from here (the sections are declared in textcls.config.schema)
    "AggregateParams", "ApiPriceParams", "BaseParams", "BenchmarkParams", "CPU_VARIANTS", "CapacityParams",
    "CascadeParams",
    "CUDA_VARIANTS", "DATA_FORMATS",
    "DatasetParams", "DistillParams", "EmbeddingParams", "Entry", "EvaluateParams", "HubDatasetParams",
    "KIND_SCHEMAS", "KindSchema",
    "LABEL_SCORING", "LLMParams", "LLM_BACKENDS", "ModelParams", "OBJECTIVES", "PRECISIONS", "Params",
    "ParamsError", "RecommendParams", "SAMPLING", "SERVING_DEVICES", "SPLITS", "TfidfParams", "TokenizeParams",
    "TokenizerParams", "TrainParams", "URL_CREDENTIALS", "YamlLoader", "declared_entries", "load_params", "lookup",
    "parse_params", "register_kind_schema", "tokenizer_source", "training_seed", "validate",
]


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


@dataclasses.dataclass(frozen=True)
class KindSchema:
    """How a model kind is configured: the dataclass of its own keys and where :class:`ModelParams` keeps it."""

    settings: type  # a (pydantic) dataclass: its fields are the keys a models: entry of this kind may set
    field: str = "settings"  # the ModelParams field that holds them (built-ins: train, tfidf, embedding)
    inherits_train: bool = False  # start from the `train:` defaults, which the entry may override
    fine_tuned: bool = False  # a fine-tuned network: may keep `layers`, teach or be a distillation student


KIND_SCHEMAS: dict[str, KindSchema] = {}


def register_kind_schema(name: str, settings: type, field: str = "settings", inherits_train: bool = False,
                         fine_tuned: bool = False) -> None:
    """Let ``models.<name>.kind: <name>`` validate, with ``settings``' fields as the entry's own keys. ``settings``
    is a dataclass, best a pydantic one declared like :mod:`textcls.config.schema` (``@fields.schema``, the types
    of :mod:`textcls.config.fields`): its values are then checked and reported like the built-in kinds'. The
    kind's behaviour registers with :func:`textcls.kinds.register`; a plugin module does both (``TEXTCLS_PLUGINS``)."""
    if not dataclasses.is_dataclass(settings):
        raise TypeError(f"the settings schema of model kind {name!r} must be a dataclass, not {settings!r}")
    if name in KIND_SCHEMAS and KIND_SCHEMAS[name].settings is not settings:
        raise ValueError(f"model kind {name!r} already has a settings schema")
    KIND_SCHEMAS[name] = KindSchema(settings, field, inherits_train, fine_tuned)


register_kind_schema("transformer", TrainParams, "train", inherits_train=True, fine_tuned=True)
register_kind_schema("tfidf", TfidfParams, "tfidf")
register_kind_schema("embedding", EmbeddingParams, "embedding")  # frozen encoder + LR: no layers, never a student

_MODEL_KEYS = {"kind", "source", "tokenizer", "revision", "trust_remote_code", "layers"}
_LAYERS = "a list of distinct layer indices >= 0 (transformers only)"


@dataclasses.dataclass(frozen=True)
class _Entry:
    """A ``models:`` entry as written, with its name and the validated ``train:`` defaults it may inherit."""

    name: str
    raw: Any
    train: TrainParams


@schema
class ModelParams:
    """One leaderboard entry. ``source`` is a hub id, a local directory or ``package:<module>``."""

    name: Str
    kind: Str
    source: Annotated[Str, Field(min_length=1), Expect("a non-empty string")]
    tokenizer: Annotated[TokenizerParams, empty_if_null]
    train: Optional[TrainParams] = None  # resolved: train defaults + this model's overrides
    tfidf: Optional[TfidfParams] = None
    embedding: Optional[EmbeddingParams] = None
    revision: Optional[Str] = None  # hub revision (commit, tag or branch); dvc.yaml tracks it: keep the key (null)
    trust_remote_code: Bool = False
    layers: Optional[Annotated[list[Annotated[Int, Field(ge=0)]], Strict(), Field(min_length=1),
                               rule(distinct, "distinct"), Expect(_LAYERS)]] = None  # keep only these encoder layers
    settings: Optional[Any] = None  # a plugin kind's own settings (built-ins keep theirs in train / tfidf / embedding)

    @model_validator(mode="before")
    @classmethod
    def _dispatch(cls, data: Any) -> Any:
        """A raw entry: its own keys, and the rest validated as overrides by the settings class of its kind."""
        if not isinstance(data, _Entry):
            return data
        where, raw = f"models.{data.name}", data.raw
        if not isinstance(raw, dict):
            raise Invalid("a mapping with kind, source and tokenizer", got=raw)
        for key in ("kind", "source", "tokenizer"):
            if key not in raw:
                raise ParamsError(f"Missing key '{where}.{key}' in params.yaml: every model needs kind, source, "
                                  "tokenizer.")
        if not isinstance(raw["kind"], str) or raw["kind"] not in KIND_SCHEMAS:
            raise Invalid(f"one of {tuple(KIND_SCHEMAS)}", "kind", raw["kind"])
        kind = KIND_SCHEMAS[raw["kind"]]
        overrides = {k: v for k, v in raw.items() if k not in _MODEL_KEYS}
        valid = [f.name for f in dataclasses.fields(kind.settings)]
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ParamsError(f"Unknown key {where}.{unknown[0]!r} in params.yaml. A model entry takes "
                              f"{', '.join(sorted(_MODEL_KEYS))} and overrides of: {', '.join(sorted(valid))}.")
        merged = {**dataclasses.asdict(data.train), **overrides} if kind.inherits_train else overrides
        own = {k: v for k, v in raw.items() if k in _MODEL_KEYS}
        return {"name": data.name, **own, kind.field: validate(kind.settings, merged, where)}

    @field_validator("kind")
    @classmethod
    def _registered(cls, kind: str) -> str:
        if kind not in KIND_SCHEMAS:
            raise ValueError(f"one of {tuple(KIND_SCHEMAS)}")
        return kind

    @model_validator(mode="after")
    def _layers_of_a_network(self):
        if self.layers is not None and not KIND_SCHEMAS[self.kind].fine_tuned:
            raise Invalid(_LAYERS, "layers", self.layers)
        return self


_NAMED = ("datasets", "hub_datasets", "models", "llms")  # name -> entry: the names become stage names and paths


@schema
class Params:
    base: BaseParams
    datasets: dict[StageName, DatasetParams]
    hub_datasets: dict[StageName, HubDatasetParams]
    models: dict[StageName, ModelParams]
    llms: dict[StageName, LLMParams]
    distill: DistillParams
    tokenize: TokenizeParams
    train: TrainParams
    evaluate: EvaluateParams
    benchmark: BenchmarkParams
    aggregate: AggregateParams
    recommend: RecommendParams
    capacity: CapacityParams
    cascades: CascadeParams

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        """An absent or empty section takes its defaults; each entry gets its name (models: and the train defaults)."""
        if not isinstance(data, dict):
            return data
        data = {**{f.name: None for f in dataclasses.fields(cls)}, **data}
        data = {key: {} if value is None else value for key, value in data.items()}
        train = validate(TrainParams, data["train"], "train")
        if not isinstance(data["models"], dict) or not data["models"]:
            raise ParamsError("params.yaml needs a non-empty 'models' mapping (name -> kind, source, tokenizer).")
        for section in _NAMED:
            if not isinstance(data[section], dict):
                raise Invalid("a mapping name -> settings", section, data[section])
            data[section] = {name: _Entry(name, entry, train) if section == "models" else
                             {"name": name, **entry} if isinstance(entry, dict) else entry
                             for name, entry in data[section].items()}
        if not data["datasets"]:
            raise ParamsError("params.yaml needs a non-empty 'datasets' mapping (name -> format, path, files).")
        return data

    @model_validator(mode="after")
    def _cascade_members(self):
        """A cascade lists each entry once. (A member these params do not declare, e.g. after the model set changed,
        is not an error: the chain is skipped, and the cascades report says why: ``textcls.report.cascades``.)"""
        for i, chain in enumerate(self.cascades.chains):
            if len({m.split(":")[0] for m in chain}) != len(chain):
                raise ParamsError(f"cascades.chains[{i}] names one entry twice ({chain}). Fix: list each entry once.")
        return self

    @model_validator(mode="after")
    def _entry_names(self):
        """Leaderboard entries (models, llms, <student>_kd) must not collide; distillation names real transformers."""
        models, llms, distill = self.models, self.llms, self.distill
        clash = sorted(set(models) & set(llms))
        if clash:
            raise ParamsError(f"{clash[0]!r} is both a models: and an llms: entry. Fix: rename one (names are "
                              "leaderboard entries and output paths).")
        transformers = sorted(n for n, m in models.items() if KIND_SCHEMAS[m.kind].fine_tuned)
        if not distill.students:
            return self
        if distill.teacher not in transformers:
            raise Invalid(f"a transformer entry of models: ({', '.join(transformers) or 'none'})", "distill.teacher",
                          distill.teacher)
        for student in distill.students:
            if student not in transformers:
                raise Invalid(f"names of transformer entries of models: ({', '.join(transformers)})",
                              "distill.students", student)
            if student == distill.teacher:
                raise Invalid("models other than the teacher", "distill.students", student)
            if f"{student}_kd" in set(models) | set(llms):
                raise ParamsError(f"{student}_kd is already an entry; distilling {student!r} would overwrite it. "
                                  "Fix: rename that entry.")
        return self


def parse_params(raw: Any) -> Params:
    """Validate the content of params.yaml (already parsed YAML)."""
    if not isinstance(raw, dict):
        raise ParamsError(f"params.yaml must be a mapping of sections. Got {type(raw).__name__}.")
    plugins.load()  # kinds and variants from TEXTCLS_PLUGINS register before anything is checked against them
    return validate(Params, raw)


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
