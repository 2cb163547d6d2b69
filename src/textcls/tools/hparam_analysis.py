"""What do learning rate, batch size and epochs do to the scores? Polynomial response surfaces (OLS).

The DistilBERT variability study's method, for one (dataset, model): polynomials (main effects, squares, pairwise
interactions) of accuracy, macro-F1 and loss on the hyperparameters, absolute and as % change from a baseline
configuration. lr enters as ``log10_lr``; factors are centered at their mean over the experiments (``centers``), not
scaled: the intercept is the prediction at the centre, a main effect the slope there (per decade of lr, per sample,
per epoch). A fit is a JSON-serialisable dict; ``predict`` evaluates it on any configuration.
"""

from __future__ import annotations

import io
import itertools
import logging
import warnings
from collections import Counter
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from textcls.errors import TextclsError

logger = logging.getLogger(__name__)

FACTORS = ("lr", "batch_size", "epochs")
RESPONSES = ("accuracy", "f1_macro", "loss")
LOG10_FACTORS = {"lr": "log10_lr", "learning_rate": "log10_learning_rate"}
ALPHA = 0.05
PARAMETERISATION = ("OLS; lr enters as log10(lr); factors centered at their mean over the experiments (centers), "
                    "not scaled; x^2 and x:y are products of centered factors; intercept = prediction at the centers")


def _num(value) -> float | None:
    """A float for JSON: NaN and infinities (undefined statistics) become None."""
    return float(value) if np.isfinite(value) else None


def _term_powers(term: str) -> dict[str, int]:
    """``"log10_lr^2:epochs"`` -> ``{"log10_lr": 2, "epochs": 1}``."""
    return {factor: int(power or 1) for factor, _, power in (part.partition("^") for part in term.split(":"))}


def _config_text(config: Mapping) -> str:
    return ", ".join(f"{k}={float(v):g}" for k, v in config.items())


def design_terms(levels: Mapping[str, Sequence[float]], degree: int = 2, interactions: bool = True) -> dict:
    """The terms (intercept excluded): every monomial of the factors up to ``degree``, given their distinct values.

    Dropped, with the reason: factors with one value, and terms raising a factor to a power >= its number of
    levels (with 2 levels x^2 is a linear function of x). ``interactions=False`` keeps single-factor powers only.
    """
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 1:
        raise TextclsError(f"degree must be an integer >= 1, got {degree!r}. "
                           "Fix: pass degree=1 (main effects) or degree=2 (with squares and interactions).")
    kept = [f for f, values in levels.items() if len(values) > 1]
    dropped_factors = [{"factor": f, "reason": f"single value {float(v[0]):g} in the data: no effect to estimate"}
                       for f, v in levels.items() if len(v) == 1]
    terms, dropped_terms = [], []
    for d in range(1, degree + 1):
        combos = [Counter(c) for c in itertools.combinations_with_replacement(kept, d)]
        for powers in sorted((c for c in combos if interactions or len(c) == 1), key=len):  # powers, then products
            name = ":".join(f if p == 1 else f"{f}^{p}" for f, p in powers.items())
            short = [f for f, p in powers.items() if p >= len(levels[f])]
            if short:
                dropped_terms.append({"term": name, "reason": f"{short[0]} has only {len(levels[short[0]])} "
                                      f"distinct levels, too few to estimate power {powers[short[0]]}"})
            else:
                terms.append(name)
    return {"factors": kept, "terms": terms, "dropped_factors": dropped_factors, "dropped_terms": dropped_terms}


def _check_frame(frame: pd.DataFrame, factors: Sequence[str], responses: Sequence[str]) -> None:
    """Validate the experiments table once, at the public entry points."""
    missing = [c for c in (*factors, *responses) if c not in frame.columns]
    if missing:
        raise TextclsError(f"The experiments table has no column {missing[0]!r} (it has: {', '.join(map(str, frame))}"
                           "). Fix: add that column, or pass factors=/responses= naming existing columns.")
    names = frame["experiment"] if "experiment" in frame.columns else pd.Series(frame.index, index=frame.index)
    for col in (*factors, *responses):
        values = pd.to_numeric(frame[col], errors="coerce")
        bad, problem = values.isna(), "missing or non-numeric"
        if not bad.any() and col in LOG10_FACTORS:
            bad, problem = values <= 0, f"non-positive (it enters the model as log10({col}))"
        if bad.any():
            raise TextclsError(f"Column {col!r} has {int(bad.sum())} {problem} value(s), in experiments "
                               f"{', '.join(map(str, names[bad][:5]))}. Fix: correct, re-run or drop them.")


def _transformed(frame: pd.DataFrame, factors: Sequence[str]) -> dict[str, np.ndarray]:
    """Model factor name -> values: log10 for learning rates, unchanged otherwise."""
    values = {f: pd.to_numeric(frame[f]).to_numpy(float) for f in factors}
    return {LOG10_FACTORS.get(f, f): np.log10(v) if f in LOG10_FACTORS else v for f, v in values.items()}


def _design_matrix(terms: Sequence[str], x: Mapping[str, np.ndarray], centers: Mapping[str, float]) -> np.ndarray:
    """Intercept column, then one column per term (products of centered factors)."""
    products = [np.prod([(x[f] - centers[f]) ** p for f, p in _term_powers(t).items()], axis=0) for t in terms]
    return np.column_stack([np.ones(len(next(iter(x.values())))), *products])


def _identifiable(terms: list[str], x: Mapping[str, np.ndarray], centers: Mapping[str, float]) -> tuple[list, list]:
    """Drop terms whose column is (to 1e-9 of its natural scale) a combination of earlier ones: incomplete designs."""
    matrix, keep = _design_matrix(terms, x, centers), [0]
    for j, term in enumerate(terms, start=1):
        scale = np.sqrt(len(matrix)) * np.prod([np.ptp(x[f]) ** p for f, p in _term_powers(term).items()])
        residual = matrix[:, j] - matrix[:, keep] @ np.linalg.lstsq(matrix[:, keep], matrix[:, j], rcond=None)[0]
        keep += [j] if np.linalg.norm(residual) > 1e-9 * scale else []
    reason = "aliased with earlier terms in this design (not identifiable); run a fuller grid of configurations"
    return [terms[j - 1] for j in keep[1:]], [{"term": t, "reason": reason} for j, t in enumerate(terms, 1)
                                              if j not in keep]


def baseline_rows(frame: pd.DataFrame, baseline: Mapping | None, factors: Sequence[str] = FACTORS) -> np.ndarray:
    """Boolean mask of the experiments run at the ``baseline`` configuration (values equal to 1e-9 relative)."""
    if not baseline or set(baseline) != set(factors):
        raise TextclsError(f"The baseline (needed for relative fits) must give one value per factor {list(factors)}, "
                           f"got {baseline!r}. Fix: pass e.g. baseline={{'lr': 2e-05, 'batch_size': 16, 'epochs': 3}}.")
    mask = np.ones(len(frame), bool)
    for f in factors:
        mask &= np.isclose(frame[f].to_numpy(float), float(baseline[f]), rtol=1e-9, atol=0.0)
    if not mask.any():
        present = frame[list(factors)].drop_duplicates().sort_values(list(factors)).to_dict("records")
        listing = "; ".join(map(_config_text, present[:20])) + (" ..." if len(present) > 20 else "")
        raise TextclsError(f"The baseline configuration ({_config_text(baseline)}) matches no experiment. "
                           f"Fix: pass one of the configurations present: {listing}.")
    return mask


def _statistics(result, terms: list[str]) -> dict:
    """Per-term coefficients and the fit's summary statistics from a statsmodels OLS result."""
    ci = np.asarray(result.conf_int(ALPHA))
    keys, df_resid = ("coef", "std_err", "t", "p_value", "ci_low", "ci_high"), int(round(result.df_resid))
    rows = zip(result.params, result.bse, result.tvalues, result.pvalues, ci[:, 0], ci[:, 1])
    return {"terms": terms, "coefficients": {t: {k: _num(v) for k, v in zip(keys, row)} for t, row in zip(terms, rows)},
            "r2": _num(result.rsquared), "adj_r2": _num(result.rsquared_adj), "f_pvalue": _num(result.f_pvalue),
            "df_resid": df_resid, "saturated": df_resid == 0}


def fit_response(frame: pd.DataFrame, response: str, factors: Sequence[str] = FACTORS, degree: int = 2,
                 baseline: Mapping | None = None, relative: bool = False, interactions: bool = True) -> dict:
    """OLS polynomial of ``response`` on the ``factors`` as a JSON-serialisable dict (see the module docstring).

    ``relative``: fit ``(y - y_baseline) / |y_baseline| * 100``, y_baseline = mean response at ``baseline``.
    """
    import statsmodels.api as sm

    factors = list(factors)
    _check_frame(frame, factors, [response])
    x = _transformed(frame, factors)
    design = design_terms({f: np.unique(v) for f, v in x.items()}, degree, interactions)
    if not design["factors"]:
        raise TextclsError(f"No factor among {factors} takes more than one value, so there is nothing to fit. "
                           "Fix: pass experiments that vary at least one hyperparameter.")
    n_configs, n_coefs = len(frame[factors].drop_duplicates()), len(design["terms"]) + 1
    if n_configs < n_coefs:
        raise TextclsError(f"A degree-{degree} model of {response} has {n_coefs} coefficients but the data has only "
                           f"{n_configs} distinct configurations; it needs at least {n_coefs} (more to estimate the "
                           "error). Fix: run more configurations, or pass degree=1 or interactions=False.")
    y, y_base = frame[response].to_numpy(float), None
    if baseline is not None or relative:
        y_base = float(y[baseline_rows(frame, baseline, factors)].mean())
    if relative:
        if y_base == 0:
            raise TextclsError(f"The baseline's {response} is 0: a relative change is undefined. Fix: relative=False.")
        y = (y - y_base) / abs(y_base) * 100
    centers = {f: float(x[f].mean()) for f in design["factors"]}
    terms, aliased = _identifiable(design["terms"], x, centers)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # a saturated or exact fit has undefined standard errors: reported as None
        stats = _statistics(sm.OLS(y, _design_matrix(terms, x, centers)).fit(), ["Intercept", *terms])
    fit = {"response": response, "relative": bool(relative), "unit": "% change from baseline" if relative else response,
           "baseline": None if baseline is None else {f: float(baseline[f]) for f in factors}, "baseline_value": y_base,
           "n": len(frame), "n_configs": n_configs, "degree": int(degree), "interactions": bool(interactions),
           "parameterisation": PARAMETERISATION, "centers": centers, "alpha": ALPHA,
           "factor_columns": {LOG10_FACTORS.get(f, f): f for f in factors if LOG10_FACTORS.get(f, f) in centers},
           **stats, "dropped_factors": design["dropped_factors"], "dropped_terms": design["dropped_terms"] + aliased}
    if fit["dropped_factors"] or fit["dropped_terms"]:
        logger.info("%s: dropped %s", response, fit["dropped_factors"] + fit["dropped_terms"])
    if fit["saturated"]:
        logger.warning("%s: saturated fit (residual dof 0): no standard errors or p-values", response)
    return fit


def predict(fit: Mapping, frame: pd.DataFrame) -> np.ndarray:
    """The fitted response (in the fit's unit) at each row of ``frame`` (needs the fit's factor columns)."""
    columns = list(fit["factor_columns"].values())
    _check_frame(frame, columns, [])
    matrix = _design_matrix(fit["terms"][1:], _transformed(frame, columns), fit["centers"])
    return matrix @ np.array([fit["coefficients"][t]["coef"] for t in fit["terms"]])


def analyze(frame: pd.DataFrame, responses: Sequence[str] = RESPONSES, baseline: Mapping | None = None,
            degree: int = 2, factors: Sequence[str] = FACTORS, interactions: bool = True) -> dict:
    """Absolute and (given a ``baseline``) relative fits of every response: ``fits[response][kind]``."""
    fits = {r: {"absolute": fit_response(frame, r, factors, degree, baseline, False, interactions),
                "relative": None if baseline is None else fit_response(frame, r, factors, degree, baseline, True,
                                                                       interactions)} for r in responses}
    return {"factors": list(factors), "degree": int(degree), "baseline": None if baseline is None else dict(baseline),
            "relative_skipped": "no baseline configuration given, so only absolute fits" if baseline is None else None,
            "parameterisation": PARAMETERISATION, "fits": fits}


def _fmt(value: float | None, digits: int = 4) -> str:
    scientific = value is not None and value != 0 and not 1e-4 <= abs(value) < 1e5
    return "n/a" if value is None else f"{value:.2e}" if scientific else f"{value:.{digits}g}"


def _fit_markdown(fit: Mapping, alpha: float) -> list[str]:
    """One response's section: fit statistics, the coefficient table and plain-words verdicts."""
    kind = f"% change from baseline {_config_text(fit['baseline'])}" if fit["relative"] else "absolute"
    lines = [f"### {fit['response']} ({kind})", "",
             f"n = {fit['n']} experiments ({fit['n_configs']} configurations), R² = {_fmt(fit['r2'])}, adjusted "
             f"R² = {_fmt(fit['adj_r2'])}, F-test p = {_fmt(fit['f_pvalue'], 2)}, residual dof = {fit['df_resid']}.",
             "", f"| term | coef ± std err | p-value | p < {alpha:g} |", "|---|---:|---:|:---:|"]
    significant = []
    for term in fit["terms"]:
        c = fit["coefficients"][term]
        star = c["p_value"] is not None and c["p_value"] < alpha
        significant += [f"`{term}`"] if star and term != "Intercept" else []
        lines.append(f"| `{term}` | {_fmt(c['coef'])} ± {_fmt(c['std_err'], 2)} | {_fmt(c['p_value'], 2)} | "
                     f"{'*' if star else ''} |")
    verdict = ("**Saturated fit** (residual dof 0): as many coefficients as configurations, so no standard errors or "
               "p-values. Run more configurations or seeds, or use a smaller degree." if fit["saturated"] else
               f"Significant at p < {alpha:g}: {', '.join(significant)}." if significant else
               f"**Nothing is significant** at p < {alpha:g}: no detectable effect on {fit['response']}.")
    dropped = [f"- dropped `{item.get('factor', item.get('term'))}`: {item['reason']}"
               for item in fit["dropped_factors"] + fit["dropped_terms"]]
    return [*lines, "", verdict, *dropped, ""]


def to_markdown(results: Mapping, alpha: float = ALPHA) -> str:
    """A readable report of ``analyze``'s output (or of one ``fit_response`` result)."""
    fits = [results] if "coefficients" in results else [
        fit for kinds in results["fits"].values() for fit in kinds.values() if fit is not None]
    skipped = [f"Relative fits skipped: {results['relative_skipped']}.", ""] if results.get("relative_skipped") else []
    sections = [line for fit in fits for line in _fit_markdown(fit, alpha)]
    return "\n".join(["## Hyperparameter effects", "", f"Model: {PARAMETERISATION}. `*`: p < {alpha:g}.", "",
                      *skipped, *sections])


def _draw(fig, on_axes: list[str], grids: list, z: np.ndarray, frame: pd.DataFrame, fit: Mapping,
          on_slice: np.ndarray, label: str) -> None:
    """Contours (two axes) or a curve (one axis), with the experiments as points; off-slice points as rings."""
    ax = fig.add_subplot()
    y = frame[fit["response"]].to_numpy(float)
    observed = (y - fit["baseline_value"]) / abs(fit["baseline_value"]) * 100 if fit["relative"] else y
    xs, off = frame[on_axes[0]].to_numpy(float), ~on_slice
    ys = frame[on_axes[1]].to_numpy(float) if len(on_axes) == 2 else observed
    if off.any():  # a gray ring, drawn first: a point at the held values sits on top of it
        ax.scatter(xs[off], ys[off], facecolors="none", edgecolors="gray", s=110, clip_on=False, zorder=3,
                   label="observed at other held values")
    if len(on_axes) == 2:
        contour = ax.contourf(*np.meshgrid(*grids), z, levels=20, cmap="viridis")
        fig.colorbar(contour, ax=ax, label=f"predicted {label}")
        ax.scatter(xs[on_slice], ys[on_slice], c=observed[on_slice], cmap="viridis", norm=contour.norm, s=50,
                   edgecolors="white", clip_on=False, zorder=4, label="observed (same colour scale)")
    else:
        ax.plot(grids[0], z.ravel(), color="C0", label="predicted")
        ax.scatter(xs[on_slice], ys[on_slice], color="C1", s=50, clip_on=False, zorder=4, label="observed")
    log_x = on_axes[0] in LOG10_FACTORS
    ax.set(xscale="log" if log_x else "linear", xlabel=f"{on_axes[0]} (log scale)" if log_x else on_axes[0],
           ylabel=on_axes[1] if len(on_axes) == 2 else label)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)


def surface_png(frame: pd.DataFrame, fit: Mapping, fixed: Mapping | None = None,
                axes: Sequence[str] = ("lr", "epochs"), points: int = 60) -> bytes:
    """PNG of the fitted response over ``axes`` (contours; a curve if only one varies), experiments as points.

    Other factors are held at ``fixed``, else the baseline, else their middle level (named in the title).
    """
    from matplotlib.figure import Figure

    columns, fixed = list(fit["factor_columns"].values()), dict(fixed or {})
    on_axes = [c for c in axes if c in columns] or columns[:1]
    held_columns = [c for c in columns if c not in on_axes]
    if set(fixed) - set(held_columns):
        raise TextclsError(f"fixed names {sorted(set(fixed) - set(held_columns))}, which is not a factor held off "
                           f"the plot's axes {on_axes}. Fix: fix only these: {held_columns}.")
    _check_frame(frame, columns, [fit["response"]])
    middle = {c: float(np.sort(frame[c].unique())[(frame[c].nunique() - 1) // 2]) for c in held_columns}
    held = {c: (float(fixed[c]), "given") if c in fixed else (float(fit["baseline"][c]), "baseline")
            if fit.get("baseline") else (middle[c], "middle level") for c in held_columns}
    grids = [np.logspace(*np.log10([frame[c].min(), frame[c].max()]), points) if c in LOG10_FACTORS
             else np.linspace(frame[c].min(), frame[c].max(), points) for c in on_axes]
    mesh = np.meshgrid(*grids)
    grid = pd.DataFrame({**{c: m.ravel() for c, m in zip(on_axes, mesh)}, **{c: v for c, (v, _) in held.items()}})
    on_slice = np.ones(len(frame), bool)
    for column, (value, _) in held.items():
        on_slice &= np.isclose(frame[column].to_numpy(float), value, rtol=1e-9, atol=0.0)
    label = f"{fit['response']} ({fit['unit']})" if fit["relative"] else fit["response"]
    fig = Figure(figsize=(6.4, 4.8))
    _draw(fig, on_axes, grids, predict(fit, grid).reshape(mesh[0].shape), frame, fit, on_slice, label)
    held_text = ", ".join(f"{c}={v:g} ({how})" for c, (v, how) in held.items()) or "nothing held"
    fig.axes[0].set_title(f"{label}, degree-{fit['degree']} OLS fit\n{held_text}", fontsize=9)
    fig.tight_layout()
    fig.savefig(buffer := io.BytesIO(), format="png", dpi=100)
    return buffer.getvalue()
