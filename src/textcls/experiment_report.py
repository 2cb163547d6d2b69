"""Summaries of an experiment workflow's results table (see ``textcls.experiments.results_table``).

- ``lr``: accuracy per (dataset, model) × learning rate, the reference study's table.
- ``data_efficiency``: accuracy against training rows per class (requested and actually available).
- ``seeds``: mean ± standard deviation over seeds (sample std, ddof=1) with min, max and n.

Plain functions from a DataFrame to a DataFrame, Markdown or PNG bytes.
"""

from __future__ import annotations

import pandas as pd

from textcls.errors import TextclsError
from textcls.leaderboard import figure_png

KEYS = ["dataset", "model"]


def workflow_rows(table: pd.DataFrame, workflow: str) -> pd.DataFrame:
    """The rows of experiments named ``<workflow>-...`` (the names scripts/experiments.py gives them), each
    configuration once: a model the workflow did not change appears in every experiment with one result."""
    prefix = workflow.replace("_", "-") + "-"
    rows = table[table["experiment"].astype(str).str.startswith(prefix)]
    if rows.empty:
        raise TextclsError(f"No finished experiment named {prefix}*. Fix: run "
                           f"`python scripts/experiments.py run {workflow}` (see `dvc exp show` and "
                           "`dvc queue status` for failed ones).")
    if "config" in rows:
        rows = rows.drop_duplicates(subset="config")
    return rows.reset_index(drop=True)


def _mean_std(values: pd.Series) -> str:
    values = values.dropna()
    if len(values) == 1:
        return f"{values.iloc[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"


def lr_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per (dataset, model) and learning rate (mean ± std where a setting has several seeds)."""
    table = rows.groupby([*KEYS, "lr"])["accuracy"].apply(_mean_std).unstack("lr")
    table.columns = [f"lr={lr:g}" for lr in table.columns]
    best = rows.loc[rows.groupby(KEYS)["accuracy"].idxmax(), [*KEYS, "lr"]].set_index(KEYS)["lr"]
    table["best lr"] = best.map(lambda lr: f"{lr:g}")
    return table.fillna("").reset_index()


def data_efficiency_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per (dataset, model) and requested rows per class, with the rows actually trained on."""
    out = rows[[*KEYS, "n_per_class", "train_rows", "num_labels", "accuracy", "f1_macro"]].copy()
    out["rows_per_class"] = out["train_rows"] / out["num_labels"]
    out["capped"] = out["rows_per_class"] < out["n_per_class"]
    return out.sort_values([*KEYS, "n_per_class"]).reset_index(drop=True)


def seed_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std, min and max of accuracy and macro-F1 over seeds, per (dataset, model)."""
    grouped = rows.groupby(KEYS)
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
    columns = [*KEYS, "n_per_class", "rows_per_class", "accuracy"]
    return [*lines, "", shown[columns].to_markdown(index=False)]


def _seed_markdown(summary: pd.DataFrame) -> list[str]:
    shown = summary.assign(
        accuracy=[f"{m:.4f} ± {s:.4f}" if n > 1 else f"{m:.4f} (1 seed: no spread)"
                  for m, s, n in zip(summary["accuracy_mean"], summary["accuracy_std"], summary["n_seeds"])],
        f1_macro=[f"{m:.4f} ± {s:.4f}" if n > 1 else f"{m:.4f}"
                  for m, s, n in zip(summary["f1_macro_mean"], summary["f1_macro_std"], summary["n_seeds"])],
        range=[f"[{lo:.4f}, {hi:.4f}]" for lo, hi in zip(summary["accuracy_min"], summary["accuracy_max"])])
    return ["Mean ± sample standard deviation over training seeds (same data split).", "",
            shown[[*KEYS, "n_seeds", "seeds", "accuracy", "range", "f1_macro"]].to_markdown(index=False)]


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
        for model, group in summary[summary["dataset"] == dataset].groupby("model"):
            group = group.sort_values("rows_per_class")
            ax.plot(group["rows_per_class"], group["accuracy"], marker="o", label=model)
        ax.set(title=dataset, xlabel="training rows per class (log)", ylabel="test accuracy", xscale="log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("Data efficiency")
    return figure_png(fig)


def hparam_report(rows: pd.DataFrame, baseline: dict | None) -> tuple[str, dict]:
    """Regression of accuracy, F1 and loss on lr × batch size × epochs per (dataset, model), and the
    accuracy response surface: ``(markdown, {png file name: bytes})``."""
    from textcls import hparam_analysis

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

