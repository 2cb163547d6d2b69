"""Summaries of an experiment workflow's results table (see ``textcls.tools.experiments.results_table``).

- ``lr``: accuracy per (dataset, model) × learning rate, the reference study's table.
- ``data_efficiency``: accuracy against training rows per class (requested and actually available).
- ``seeds``: mean ± standard deviation over seeds (sample std, ddof=1) with min, max and n.

Plain functions from a DataFrame to a DataFrame, Markdown or PNG bytes.
"""

from __future__ import annotations

import pandas as pd

from textcls.errors import TextclsError
from textcls.report.leaderboard import figure_png

KEYS = ["dataset", "model"]


FACTOR_COLUMNS = ("lr", "batch_size", "epochs", "n_per_class", "seed")
VARIED = {"lr": "lr", "data_efficiency": "n_per_class", "seeds": "seed"}


def workflow_rows(table: pd.DataFrame, workflow: str) -> pd.DataFrame:
    """The rows of experiments named ``<workflow>-...`` (the names scripts/experiments.py gives them) for the
    (dataset, model) pairs the workflow varied, each configuration once.

    A pair with a single configuration across the workflow's experiments was not varied by it (a model
    or data set outside ``--models``/``--datasets``): it is left out.
    """
    prefix = workflow.replace("_", "-") + "-"
    rows = table[table["experiment"].astype(str).str.startswith(prefix)]
    if rows.empty:
        raise TextclsError(f"No finished experiment named {prefix}*. Fix: run "
                           f"`python scripts/experiments.py run {workflow}` (see `dvc exp show` and "
                           "`dvc queue status` for failed ones).")
    if "config" in rows:
        rows = rows.drop_duplicates(subset="config")
        rows = rows[rows.groupby(KEYS)["config"].transform("nunique") > 1]
        if rows.empty:
            raise TextclsError(f"The {prefix}* experiments did not vary any model (one setting each). Fix: run "
                               "the workflow with at least two settings (see configs/experiments.yaml).")
    return rows.reset_index(drop=True)


def settings_keys(rows: pd.DataFrame, workflow: str) -> list[str]:
    """Factors other than the one a workflow varies (and the seed, a replicate) that still differ within a
    (dataset, model), e.g. experiments of two commits with other epochs: they split the summary."""
    skip = {VARIED.get(workflow), "seed"}
    others = [c for c in FACTOR_COLUMNS if c not in skip and c in rows]
    return [c for c in others if rows.groupby(KEYS)[c].nunique(dropna=False).gt(1).any()]


def _mean_std(values: pd.Series) -> str:
    values = values.dropna()
    if len(values) == 1:
        return f"{values.iloc[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"


def lr_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per (dataset, model) and learning rate (mean ± std where a rate has several seeds); the best
    rate is the one with the highest mean."""
    keys = [*KEYS, *settings_keys(rows, "lr")]
    table = rows.groupby([*keys, "lr"], dropna=False)["accuracy"].apply(_mean_std).unstack("lr")
    table.columns = [f"lr={lr:g}" for lr in table.columns]
    means = rows.groupby([*keys, "lr"], dropna=False)["accuracy"].mean().reset_index()
    best = means.loc[means.groupby(keys, dropna=False)["accuracy"].idxmax()].set_index(keys)["lr"]
    table["best lr"] = best.map(lambda lr: f"{lr:g}")
    return table.fillna("").reset_index()


def data_efficiency_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per (dataset, model) and requested rows per class (mean over seeds), with the rows actually
    trained on; ``capped`` where the source had fewer rows than requested."""
    keys = [*KEYS, *settings_keys(rows, "data_efficiency"), "n_per_class"]
    out = rows.groupby(keys, dropna=False).agg(train_rows=("train_rows", "first"), num_labels=("num_labels", "first"),
                                               accuracy=("accuracy", "mean"), f1_macro=("f1_macro", "mean"),
                                               runs=("accuracy", "size")).reset_index()
    out["rows_per_class"] = out["train_rows"] / out["num_labels"]
    out["capped"] = out["rows_per_class"] < out["n_per_class"]
    return out.sort_values(keys).reset_index(drop=True)


def seed_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std, min and max of accuracy and macro-F1 over seeds, per (dataset, model) and setting."""
    grouped = rows.groupby([*KEYS, *settings_keys(rows, "seeds")], dropna=False)
    out = grouped.agg(n_seeds=("seed", "nunique"), accuracy_mean=("accuracy", "mean"),
                      accuracy_std=("accuracy", lambda v: v.std(ddof=1)), accuracy_min=("accuracy", "min"),
                      accuracy_max=("accuracy", "max"), f1_macro_mean=("f1_macro", "mean"),
                      f1_macro_std=("f1_macro", lambda v: v.std(ddof=1)))
    out["seeds"] = grouped["seed"].apply(lambda s: ", ".join(str(int(x)) for x in sorted(set(s))))
    return out.round(6).reset_index()


def _data_markdown(summary: pd.DataFrame) -> list[str]:
    lines = []
    capped = summary[summary["capped"]]
    for _, row in capped.drop_duplicates(subset=["dataset", "n_per_class"]).iterrows():
        lines.append(f"- {row['dataset']}: {row['n_per_class']:g} rows per class requested, "
                     f"{row['rows_per_class']:.0f} available (capped by the source).")
    shown = summary.assign(accuracy=summary["accuracy"].map("{:.4f}".format),
                           rows_per_class=summary["rows_per_class"].map("{:.0f}".format))
    columns = [c for c in summary.columns if c not in ("train_rows", "num_labels", "f1_macro", "capped",
                                                      "rows_per_class", "accuracy", "runs")]
    columns += ["rows_per_class", "accuracy"]
    return [*lines, "", shown[columns].to_markdown(index=False)]


def _seed_markdown(summary: pd.DataFrame) -> list[str]:
    shown = summary.assign(
        accuracy=[f"{m:.4f} ± {s:.4f}" if n > 1 else f"{m:.4f} (1 seed: no spread)"
                  for m, s, n in zip(summary["accuracy_mean"], summary["accuracy_std"], summary["n_seeds"])],
        f1_macro=[f"{m:.4f} ± {s:.4f}" if n > 1 else f"{m:.4f}"
                  for m, s, n in zip(summary["f1_macro_mean"], summary["f1_macro_std"], summary["n_seeds"])],
        range=[f"[{lo:.4f}, {hi:.4f}]" for lo, hi in zip(summary["accuracy_min"], summary["accuracy_max"])])
    settings = [c for c in summary.columns if c in FACTOR_COLUMNS]
    columns = [*KEYS, *settings, "n_seeds", "seeds", "accuracy", "range", "f1_macro"]
    return ["Mean ± sample standard deviation over training seeds (same data split).", "",
            shown[columns].to_markdown(index=False)]


TITLES = {"lr": "Learning-rate sensitivity (test accuracy)", "data_efficiency": "Data efficiency (test accuracy)",
          "seeds": "Variance over seeds"}


def to_markdown(workflow: str, summary: pd.DataFrame, experiments: list[str]) -> str:
    lines = [f"# {TITLES[workflow]}", "",
             f"From {len(experiments)} experiment(s) ({', '.join(sorted(experiments))}), "
             "read with `dvc exp show --json`.", ""]
    if workflow == "lr":
        lines.append(summary.to_markdown(index=False))
    elif workflow == "data_efficiency":
        lines += _data_markdown(summary)
    else:
        lines += _seed_markdown(summary)
    return "\n".join(lines) + "\n"


def data_efficiency_png(summary: pd.DataFrame) -> bytes:
    """Test accuracy against training rows per class (log scale), one line per model, a panel per data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted(summary["dataset"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        settings = [c for c in summary.columns if c in FACTOR_COLUMNS and c != "n_per_class"]
        for key, group in summary[summary["dataset"] == dataset].groupby(["model", *settings], dropna=False):
            group = group.sort_values("rows_per_class")
            label = " ".join([key[0], *(f"{c}={v:g}" for c, v in zip(settings, key[1:]))])
            ax.plot(group["rows_per_class"], group["accuracy"], marker="o", label=label)
        ax.set(title=dataset, xlabel="training rows per class (log)", ylabel="test accuracy", xscale="log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("Data efficiency")
    return figure_png(fig)


def hparam_report(rows: pd.DataFrame, baseline: dict | None) -> tuple[str, dict]:
    """Regression of accuracy, F1 and loss on lr × batch size × epochs per (dataset, model), and the
    accuracy response surface: ``(markdown, {png file name: bytes})``."""
    from textcls.tools import hparam_analysis

    parts, plots = [], {}
    for (dataset, model), group in rows.groupby(KEYS):
        results = hparam_analysis.analyze(group, baseline=baseline)
        image = f"hparams_{dataset}-{model}.png"
        parts.append(f"# {dataset} / {model}: {len(group)} experiments\n\n{hparam_analysis.to_markdown(results)}\n"
                     f"![accuracy response surface]({image})\n")
        plots[image] = hparam_analysis.surface_png(group, results["fits"]["accuracy"]["absolute"])
    return "\n".join(parts), plots


def summarize(workflow: str, rows: pd.DataFrame) -> pd.DataFrame:
    if workflow == "lr":
        return lr_summary(rows)
    if workflow == "data_efficiency":
        return data_efficiency_summary(rows)
    if workflow == "seeds":
        return seed_summary(rows)
    raise TextclsError(f"No summary table for workflow {workflow!r}.")

