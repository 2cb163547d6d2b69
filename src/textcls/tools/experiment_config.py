"""configs/experiments.yaml, declared: the grid of each experiment workflow (:mod:`textcls.tools.experiments`).

Validated by the same schema machinery as params.yaml (:mod:`textcls.config.adapter`), so every error is one
line naming the setting, e.g. ``The 'seeds.values' setting in configs/experiments.yaml must be a non-empty list
of distinct integers >= 0. Got [1, 1] instead.``
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import yaml
from pydantic import Strict, model_validator

from textcls.config.adapter import Invalid, Style, validate
from textcls.config.fields import Expect, Field, Int, Number, Str, distinct, rule, schema
from textcls.errors import ParamsError, TextclsError

WORKFLOWS = ("lr", "data_efficiency", "seeds", "hparams")
HPARAM_FACTORS = ("lr", "batch_size", "epochs")
_BASELINE = f"one point of the grid ({', '.join(HPARAM_FACTORS)} each from its list)"


def _grid(kind: str, lower: int, inclusive: bool) -> Any:
    """A non-empty list of distinct finite numbers (integers where ``kind`` says so) above its lower bound."""
    number = Int if kind == "integer" else Number
    item = Annotated[number, Field(ge=lower) if inclusive else Field(gt=lower), rule(math.isfinite, "finite")]
    return Annotated[list[item], Strict(), Field(min_length=1), rule(distinct, "distinct"),
                     Expect(f"a non-empty list of distinct {kind}s {'>=' if inclusive else '>'} {lower}")]


Rates, Counts, Seeds, Sizes = _grid("number", 0, False), _grid("integer", 1, True), _grid("integer", 0, True), \
    _grid("integer", 1, True)


@schema
class LrGrid:
    values: Rates
    per_model: Optional[Annotated[dict[Str, Rates], Expect("a mapping model -> list of rates")]] = None


@schema
class DataEfficiencyGrid:
    n_per_class: Counts


@schema
class SeedsGrid:
    values: Seeds


@schema
class HparamsGrid:
    lr: Rates
    batch_size: Sizes
    epochs: Rates
    baseline: Optional[Annotated[dict, Expect(_BASELINE)]] = None  # the point the "relative to baseline" fits use

    @model_validator(mode="after")
    def _on_the_grid(self):
        if self.baseline is not None and any(self.baseline.get(f) not in getattr(self, f) for f in HPARAM_FACTORS):
            raise Invalid(_BASELINE, "baseline", self.baseline)
        return self


@schema
class ExperimentsConfig:
    """configs/experiments.yaml: one mapping per workflow, each with its grid lists."""

    lr: Annotated[LrGrid, Expect("a mapping with values")]
    data_efficiency: Annotated[DataEfficiencyGrid, Expect("a mapping with n_per_class")]
    seeds: Annotated[SeedsGrid, Expect("a mapping with values")]
    hparams: Annotated[HparamsGrid, Expect(f"a mapping with {', '.join(HPARAM_FACTORS)}")]


GRIDS = {"lr": ("values", Rates), "data_efficiency": ("n_per_class", Counts), "seeds": ("values", Seeds)}  # --values


def _style(source: str) -> Style:
    return Style(subject=f"setting in {source}", source=source, missing_as_none=True,
                 root_unknown="Unknown workflow {name!r} in {source}. Valid: {fields}.")


def load_config(path: str | Path) -> dict:
    """Read and check configs/experiments.yaml (:class:`ExperimentsConfig`); the mapping as read."""
    from textcls.config.params import YamlLoader  # YAML 1.2 floats: 1e-5 is a number

    path = Path(path)
    if not path.is_file():
        raise TextclsError(f"{path} not found. Fix: run from the project root or pass --config.")
    try:
        cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=YamlLoader) or {}  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(cfg, dict):
        raise ParamsError(f"Unknown workflow '(not a mapping)' in {path}. Valid: {', '.join(WORKFLOWS)}.")
    validate(ExperimentsConfig, cfg, style=_style(str(path)))
    return cfg


def with_values(cfg: dict, workflow: str, values: Optional[list]) -> dict:
    """``cfg`` with the workflow's grid replaced by ``values`` (from the command line), if given."""
    if not values:
        return cfg
    if workflow not in GRIDS:
        raise ParamsError(f"--values replaces the grid of {', '.join(GRIDS)}; edit configs/experiments.yaml "
                          f"for the {workflow} grid.")
    key, grid = GRIDS[workflow]
    if grid is not Rates:  # integers: 100.0 from the command line is 100
        values = [int(v) if float(v).is_integer() else v for v in values]
    validate(grid, list(values), f"{workflow}.{key}", _style("--values"))
    return {**cfg, workflow: {**cfg[workflow], key: list(values)}}
