"""What the generated README/docs blocks are rendered from: params.yaml and the metrics of exactly the
declared entries (see :func:`textcls.config.params.declared_entries`), each file read once."""

from __future__ import annotations

import json
from pathlib import Path

from textcls.config.params import declared_entries, load_params


class RenderError(Exception):
    """Missing or malformed input: the message names the file and the fix."""


# ---------------------------------------------------------------- reading


def _read(path: Path, what: str, fix: str) -> dict:
    if not path.is_file():
        raise RenderError(f"{path} not found: {what}. Fix: {fix}.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RenderError(f"{path} is not valid JSON ({err}). Fix: {fix}.") from None


class Inputs:
    """params.yaml and the metrics of exactly the declared entries, read once per run."""

    def __init__(self, params_path: Path, metrics: Path):
        self.params = load_params(params_path)
        self.metrics = metrics
        self.entries = declared_entries(self.params)
        self.eval, self.train, self.bench = {}, {}, {}
        for e in self.entries:
            key = (e.dataset, e.name)
            who = f"params.yaml declares {e.dataset}/{e.name}"
            self.eval[key] = _read(metrics / "eval" / e.dataset / f"{e.name}.json", f"{who}, but it has no evaluation",
                                   f"run `dvc repro {e.eval_stage}`")
            self.train[key] = _read(metrics / "train" / e.dataset / f"{e.name}.json", f"{who}, but it has no training "
                                    "metrics", f"run `dvc repro {e.train_stage}`")
            self.bench[key] = _read(metrics / "benchmark" / e.dataset / f"{e.name}.json", f"{who}, but it has no "
                                    "benchmark", f"run `dvc repro {e.benchmark_stage}`")
        self._leaderboard = self._recommendation = self._hardware = None

    def _optional(self, name: str, what: str) -> dict:
        return _read(self.metrics / name, what, "run `dvc repro aggregate`")

    @property
    def leaderboard(self) -> dict:
        if self._leaderboard is None:
            self._leaderboard = self._optional("leaderboard.json", "the leaderboard is missing")
        return self._leaderboard

    @property
    def recommendation(self) -> dict:
        if self._recommendation is None:
            self._recommendation = self._optional("recommendation.json", "the recommendation is missing")
        return self._recommendation

    @property
    def hardware(self) -> dict:
        if self._hardware is None:
            self._hardware = _read(self.metrics / "hardware.json", "the machine fingerprint is missing",
                                   "run `dvc repro machine/dvc.yaml:hardware`")
        return self._hardware

    def datasets(self) -> list[str]:
        return list(dict.fromkeys(e.dataset for e in self.entries))

    def ordered(self, dataset: str) -> list:
        """The dataset's entries in leaderboard order (rank), else by accuracy, best first."""
        board = self.leaderboard.get(dataset, {}) if (self.metrics / "leaderboard.json").is_file() else {}
        entries = [e for e in self.entries if e.dataset == dataset]

        def key(e):
            rank = board.get(e.name, {}).get("rank")
            return (rank if rank is not None else float("inf"), -self.eval[(dataset, e.name)]["accuracy"])
        return sorted(entries, key=key)
