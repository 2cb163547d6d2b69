"""Experiment workflows over the pipeline: learning-rate sweeps, data efficiency, seeds, hyperparameter grids.

A workflow is a grid from ``configs/experiments.yaml`` turned into ``dvc exp run --queue`` commands
(one experiment per setting, named ``<workflow>-<setting>``, targeting the ``evaluate`` stages of
the selected data sets and models, so no latency is measured on a machine busy with other jobs).
``dvc queue start -j N`` runs them. Results are read back from ``dvc exp show --json`` into one tidy
table, one row per (experiment, dataset, model), with the hyperparameters each model actually
resolved to (model entry over ``train:`` defaults) beside its test metrics: nothing is hand-copied.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from textcls import kinds
from textcls.errors import ParamsError, TextclsError
from textcls.config.params import KIND_SCHEMAS, Params, parse_params, training_seed
from textcls.tools.experiment_config import HPARAM_FACTORS, WORKFLOWS, load_config, with_values

__all__ = ["HPARAM_FACTORS", "WORKFLOWS", "Experiment", "exp_show_records", "load_config", "parse_queue_status",
           "plan", "results_table", "with_values"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    overrides: tuple  # "key=value" for `dvc exp run -S`
    targets: tuple  # stages to reproduce

    def queue_command(self) -> list[str]:
        """``-S ++key=value`` sets the key whether or not params.yaml has it (a model entry may inherit lr)."""
        command = ["dvc", "exp", "run", "--queue", "-n", self.name]
        for override in self.overrides:
            command += ["-S", f"++{override}"]
        return command + list(self.targets)


def _select(names: Optional[Iterable[str]], known: dict, what: str) -> list[str]:
    if not names:
        return list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ParamsError(f"Unknown {what} {unknown[0]!r}. Known in params.yaml: {', '.join(known)}.")
    return list(names)


def _num(value) -> str:
    return f"{value:g}"


def _mirror_overrides(params: Params, datasets: list[str], root: Path) -> list[str]:
    """Queued experiments run in a copy of the repo: make relative data paths absolute."""
    out = []
    for name in datasets:
        path = Path(params.datasets[name].path)
        if not path.is_absolute():
            out.append(f"datasets.{name}.path={(root / path).resolve()}")
    return out


def plan(workflow: str, cfg: dict, params: Params, root: Path, datasets: Optional[list] = None,
         models: Optional[list] = None) -> list[Experiment]:
    """The experiments of ``workflow`` for the selected data sets and models (default: all)."""
    if workflow not in WORKFLOWS:
        raise ParamsError(f"Unknown workflow {workflow!r}. Valid: {', '.join(WORKFLOWS)}.")
    datasets = _select(datasets, params.datasets, "data set")
    transformers = [n for n, m in params.models.items() if KIND_SCHEMAS[m.kind].fine_tuned]
    if workflow == "data_efficiency":  # a data change affects every model of the data set: run them all
        if models and set(models) != set(params.models):
            raise ParamsError("The data_efficiency workflow reruns every model of the selected data sets (their "
                              "training data change). Fix: drop --models (or remove models from params.yaml).")
        models = list(params.models)
    elif workflow == "seeds":
        models = _select(models, params.models, "model")
    else:
        models = _select(models, params.models, "model") if models else transformers
        others = [m for m in models if m not in transformers]
        if others or not models:
            raise ParamsError(f"The {workflow} workflow varies transformer training hyperparameters, and "
                              f"{(others or ['no model'])[0]!r} is not a transformer. Fix: pass --models with "
                              f"some of: {', '.join(transformers) or '(none in params.yaml)'}.")
    base = _mirror_overrides(params, datasets, root)
    targets = tuple(f"evaluate@{d}-{m}" for d in datasets for m in models)
    settings = _settings(workflow, cfg[workflow], datasets, models)
    return [Experiment(f"{workflow.replace('_', '-')}-{name}", tuple(base + over), targets)
            for name, over in settings]


def _settings(workflow: str, cfg: dict, datasets: list[str], models: list[str]) -> list[tuple[str, list[str]]]:
    """(name suffix, overrides) of each experiment of a workflow."""
    if workflow == "lr":
        per_model = {m: rates for m, rates in (cfg.get("per_model") or {}).items() if m in models}
        for model, rates in per_model.items():
            if len(rates) != len(cfg["values"]):
                raise ParamsError(f"lr.per_model.{model} has {len(rates)} rates but the lr grid has "
                                  f"{len(cfg['values'])}: give one rate per grid position (in configs/experiments.yaml), "
                                  f"or leave {model} out with --models.")
        out = []
        for i, value in enumerate(cfg["values"]):
            rates = {m: (per_model[m][i] if m in per_model else value) for m in models}
            out.append((_num(value), [f"models.{m}.lr={_num(r)}" for m, r in rates.items()]))
        return out
    if workflow == "data_efficiency":
        return [(f"n{n}", [f"datasets.{d}.n_per_class.train={n}" for d in datasets]) for n in cfg["n_per_class"]]
    if workflow == "seeds":
        return [(f"seed{s}", [f"train.seed={s}"]) for s in cfg["values"]]
    if len(models) != 1:
        raise ParamsError("The hparams workflow fits one model's response surface: pass exactly one --models.")
    (model,) = models
    grid = itertools.product(*(cfg[f] for f in HPARAM_FACTORS))
    return [(f"lr{_num(lr)}-bs{bs}-ep{_num(ep)}",
             [f"models.{model}.lr={_num(lr)}", f"models.{model}.batch_size={bs}", f"models.{model}.epochs={ep}"])
            for lr, bs, ep in grid]


def parse_queue_status(text: str) -> list[dict]:
    """Rows of ``dvc queue status`` (``Task  Name  Created  Status``; Created may be two words)."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] != "Task" and not line.startswith("Worker"):
            rows.append({"task": fields[0], "name": fields[1], "status": fields[-1]})
    return rows


def exp_show_records(shown: list) -> list[dict]:
    """Flatten ``dvc exp show --json``: commits and their finished experiments (not the workspace, not
    queued/running/failed ones), each as ``{name, rev, timestamp, params, metrics: {path: data}}``.

    An experiment name run again (on a later commit, or after ``dvc exp remove``) keeps only its newest run.
    """
    records = {}
    for baseline in shown:
        entries = [] if baseline.get("rev") == "workspace" else [baseline]
        for exp in baseline.get("experiments") or []:
            state = (exp.get("executor") or {}).get("state")
            if state in (None, "success"):
                entries += exp.get("revs") or []
        for entry in entries:
            data = entry.get("data") or {}
            if entry.get("error") or not data:
                continue
            params = (data.get("params") or {}).get("params.yaml", {}).get("data")
            metrics = {path: m.get("data") for path, m in (data.get("metrics") or {}).items() if m.get("data")}
            record = {"name": entry.get("name") or entry["rev"][:7], "rev": entry["rev"],
                      "timestamp": data.get("timestamp") or "", "params": params, "metrics": metrics}
            older = records.get(record["name"])
            if params and (older is None or record["timestamp"] > older["timestamp"]):
                records[record["name"]] = record
    return list(records.values())


def results_table(records: list[dict]) -> pd.DataFrame:
    """One row per (experiment, dataset, model) whose metrics were produced with that experiment's params.

    ``config`` identifies what was trained (data, model entry, seeds), so that a model an experiment did
    not change, repeated in every experiment, can be counted once (see ``experiment_report.workflow_rows``).
    """
    rows = []
    for record in records:
        try:
            params = parse_params(record["params"])
        except ParamsError as err:  # e.g. an old commit's params.yaml under today's schema
            logger.debug("skipping %s: its params do not validate (%s)", record["name"], err)
            continue
        for path, ev in sorted(record["metrics"].items()):
            parts = Path(path).parts
            if parts[:2] != ("metrics", "eval") or len(parts) != 4:
                continue
            dataset, model = parts[2], Path(parts[3]).stem
            row = _row(record, params, dataset, model, ev)
            if row is not None:
                rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        raise TextclsError("No finished experiment has evaluation metrics. Fix: run the workflow first "
                           "(`python scripts/experiments.py run <workflow>`), then `dvc exp show` to check.")
    return table


def _without_seed(hyper: Optional[dict]) -> Optional[dict]:
    """Hyperparameters less ``seed`` (null = base.seed): the effective seed is compared on its own."""
    return None if hyper is None else {k: v for k, v in hyper.items() if k != "seed"}


def _row(record: dict, params: Params, dataset: str, model: str, ev: dict) -> Optional[dict]:
    if dataset not in params.datasets or model not in params.models:
        return None
    spec, entry = params.datasets[dataset], params.models[model]
    train = record["metrics"].get(f"metrics/train/{dataset}/{model}.json") or {}
    seed = training_seed(params, entry)
    hyper = dataclasses.asdict(entry.train) if entry.train else {}
    expected = _without_seed(kinds.get(entry.kind).hyperparameters(entry))  # what its train stage recorded
    if train.get("seed") != seed or _without_seed(train.get("hyperparameters")) != expected:
        # not trained with this experiment's settings: a stage the experiment did not rerun (e.g. a model's
        # lr changed but only one data set was targeted), or a run from before provenance was recorded
        logger.debug("%s: %s/%s is stale, skipped", record["name"], dataset, model)
        return None
    where = {**dataclasses.asdict(spec), "path": None}  # queued runs use an absolute path to the same files
    config = json.dumps([where, dataclasses.asdict(entry), params.base.seed, seed,
                         params.tokenize.max_length], sort_keys=True, default=str)
    return {
        "experiment": record["name"], "rev": record["rev"][:7], "dataset": dataset, "model": model,
        "lr": hyper.get("lr"), "batch_size": hyper.get("batch_size"), "epochs": hyper.get("epochs"),
        "seed": seed, "n_per_class": spec.n_per_class.get("train"), "train_rows": train.get("train_rows"),
        "num_labels": len(ev.get("per_class") or {}) or None,
        "accuracy": ev.get("accuracy"), "f1_macro": ev.get("f1_macro"), "loss": ev.get("loss"),
        "config": config,
    }
