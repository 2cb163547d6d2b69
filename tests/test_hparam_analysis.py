"""Polynomial response surfaces of scores over learning rate, batch size and epochs (textcls.tools.hparam_analysis)."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from textcls.tools import hparam_analysis as ha
from textcls.errors import TextclsError

BASELINE = {"lr": 3e-5, "batch_size": 32, "epochs": 3}
# The known polynomial, in the module's parameterisation (factors centered at their mean over the rows).
TRUE = {"Intercept": 0.9, "log10_lr": 0.02, "log10_lr^2": -0.01, "epochs": 0.005, "log10_lr:epochs": 0.003}


def grid(lrs=(1e-5, 3e-5, 1e-4), batch_sizes=(16, 32, 64), epochs=(2, 3, 4), noise=0.0, seed=0) -> pd.DataFrame:
    """A full factorial of experiments whose accuracy follows TRUE (plus Gaussian noise), loss a line in log10 lr."""
    rows = [{"experiment": f"e{i}", "lr": lr, "batch_size": bs, "epochs": ep}
            for i, (lr, bs, ep) in enumerate(itertools.product(lrs, batch_sizes, epochs))]
    frame = pd.DataFrame(rows)
    x = np.log10(frame["lr"]) - np.log10(frame["lr"]).mean()
    e = frame["epochs"] - frame["epochs"].mean()
    noise = np.random.default_rng(seed).normal(0.0, noise, len(frame))
    frame["accuracy"] = 0.9 + 0.02 * x - 0.01 * x ** 2 + 0.005 * e + 0.003 * x * e + noise
    frame["f1_macro"] = frame["accuracy"] - 0.01
    frame["loss"] = 0.4 - 0.05 * x + noise
    return frame


def test_recovers_a_known_polynomial_from_noisy_data():
    """Check that coefficients come back within 4 standard errors, true terms are significant, zero terms are not."""
    fit = ha.fit_response(grid(noise=0.0005, seed=3), "accuracy")
    coefs = fit["coefficients"]
    assert fit["terms"][0] == "Intercept" and set(TRUE) <= set(fit["terms"])
    for term, stats in coefs.items():
        assert abs(stats["coef"] - TRUE.get(term, 0.0)) < 4 * stats["std_err"], term
        assert stats["ci_low"] < stats["coef"] < stats["ci_high"]
    assert all(coefs[t]["p_value"] < 1e-6 for t in TRUE)
    assert coefs["batch_size"]["p_value"] > 0.05 and coefs["batch_size^2"]["p_value"] > 0.05
    assert fit["r2"] > 0.99 and fit["adj_r2"] <= fit["r2"]
    assert (fit["n"], fit["n_configs"], fit["df_resid"]) == (27, 27, 27 - 10)
    assert fit["f_pvalue"] < 1e-10 and not fit["saturated"]


def test_noise_free_data_fit_exactly_and_the_result_is_strict_json():
    """Check that noise-free data give R² = 1, the true coefficients, and a dict json.dumps accepts (no NaN)."""
    fit = ha.fit_response(grid(), "accuracy")
    assert fit["r2"] == pytest.approx(1.0, abs=1e-10)
    for term, stats in fit["coefficients"].items():
        assert stats["coef"] == pytest.approx(TRUE.get(term, 0.0), abs=1e-10), term
    json.loads(json.dumps(fit, allow_nan=False))
    frame = grid()
    assert ha.predict(fit, frame) == pytest.approx(frame["accuracy"].to_numpy(), abs=1e-12)


def test_relative_fit_is_a_percent_change_from_the_baseline():
    """Check that the relative fit is 0 at the baseline and the absolute fit scaled by 100 / |y_baseline|."""
    frame = pd.concat([grid(), grid()[grid()["lr"] == 3e-5]], ignore_index=True)  # replicated baseline rows
    absolute = ha.fit_response(frame, "accuracy", baseline=BASELINE)
    relative = ha.fit_response(frame, "accuracy", baseline=BASELINE, relative=True)
    at_baseline = frame[(frame["lr"] == 3e-5) & (frame["batch_size"] == 32) & (frame["epochs"] == 3)]
    y_base = at_baseline["accuracy"].mean()
    assert relative["baseline_value"] == pytest.approx(y_base) and relative["relative"] is True
    assert ha.predict(relative, at_baseline) == pytest.approx(0.0, abs=1e-9)
    for term in absolute["terms"][1:]:
        expected = absolute["coefficients"][term]["coef"] * 100 / abs(y_base)
        assert relative["coefficients"][term]["coef"] == pytest.approx(expected, abs=1e-9), term


@pytest.mark.parametrize("levels, degree, interactions, terms, dropped_factors, dropped_terms", [
    ({"a": [1, 2, 3], "b": [1, 2, 3]}, 2, True, ["a", "b", "a^2", "b^2", "a:b"], [], []),
    ({"a": [1, 2, 3], "b": [1, 2, 3]}, 2, False, ["a", "b", "a^2", "b^2"], [], []),
    ({"a": [1, 2, 3], "b": [1, 2, 3]}, 1, True, ["a", "b"], [], []),
    ({"a": [1, 2, 3], "b": [16, 32]}, 2, True, ["a", "b", "a^2", "a:b"], [], ["b^2"]),
    ({"a": [1, 2, 3], "b": [5]}, 2, True, ["a", "a^2"], ["b"], []),
    ({"a": [1, 2, 3, 4], "b": [1, 2]}, 3, True, ["a", "b", "a^2", "a:b", "a^3", "a^2:b"], [], ["b^2", "a:b^2", "b^3"]),
])
def test_design_terms(levels, degree, interactions, terms, dropped_factors, dropped_terms):
    """Check that terms are every monomial up to the degree, less single-valued factors and unidentifiable powers."""
    design = ha.design_terms(levels, degree, interactions)
    assert design["terms"] == terms
    assert [d["factor"] for d in design["dropped_factors"]] == dropped_factors
    assert sorted(d["term"] for d in design["dropped_terms"]) == sorted(dropped_terms)


def test_fit_records_dropped_factors_and_terms():
    """Check that a constant factor and the square of a 2-level factor are dropped, with reasons, not silently."""
    fit = ha.fit_response(grid(batch_sizes=(16, 32), epochs=(3,)), "accuracy")
    assert fit["dropped_factors"] == [{"factor": "epochs", "reason": fit["dropped_factors"][0]["reason"]}]
    assert "single value 3" in fit["dropped_factors"][0]["reason"]
    assert [d["term"] for d in fit["dropped_terms"]] == ["batch_size^2"]
    assert "only 2 distinct levels" in fit["dropped_terms"][0]["reason"]
    assert fit["terms"] == ["Intercept", "log10_lr", "batch_size", "log10_lr^2", "log10_lr:batch_size"]
    assert "dropped `epochs`" in ha.to_markdown(fit) and "dropped `batch_size^2`" in ha.to_markdown(fit)


def test_aliased_interaction_in_a_one_factor_at_a_time_design_is_dropped():
    """Check that a plus-shaped design (vary lr, then epochs, around a centre) drops the aliased lr:epochs term."""
    lrs, epochs = 10.0 ** np.array([-5, -4.5, -4, -3.5, -3]), [1, 2, 3, 4, 5]
    rows = [(lr, 3) for lr in lrs] + [(1e-4, ep) for ep in epochs if ep != 3]
    frame = pd.DataFrame(rows, columns=["lr", "epochs"]).assign(batch_size=32)
    frame["accuracy"] = 0.8 + 0.01 * np.log10(frame["lr"]) + 0.002 * frame["epochs"] ** 2
    fit = ha.fit_response(frame, "accuracy")
    assert [d["term"] for d in fit["dropped_terms"]] == ["log10_lr:epochs"]
    assert "aliased" in fit["dropped_terms"][0]["reason"]
    assert fit["coefficients"]["epochs^2"]["coef"] == pytest.approx(0.002)


def _without(column):
    return grid().drop(columns=column)


@pytest.mark.parametrize("frame, kwargs, match", [
    (_without("loss"), {"response": "loss"}, r"no column 'loss'.*Fix"),
    (grid().assign(accuracy=[np.nan] + [0.9] * 26), {}, r"1 missing or non-numeric.*e0.*Fix"),
    (grid().assign(lr=0.0), {}, r"non-positive.*log10\(lr\).*Fix"),
    (grid(batch_sizes=(32,), epochs=(2, 3)).iloc[[0, 1, 2, 4]], {},  # 3 lr x 2 epochs, 2 corners missing
     r"only 4 distinct configurations.*at least 5.*degree=1"),
    (grid(), {"baseline": {"lr": 5e-5, "batch_size": 32, "epochs": 3}, "relative": True},
     r"baseline configuration \(lr=5e-05.*matches no experiment.*lr=1e-05, batch_size=16, epochs=2"),
    (grid(), {"baseline": {"lr": 3e-5}, "relative": True}, r"one value per factor"),
    (grid(), {"relative": True}, r"baseline \(needed for relative fits\) must give one value per factor.*Fix"),
    (grid(), {"degree": 0}, r"degree must be an integer >= 1"),
    (grid(lrs=(1e-5,), epochs=(3,), batch_sizes=(32,)), {}, r"nothing to fit"),
])
def test_invalid_inputs_raise_with_the_fix(frame, kwargs, match):
    """Check that each invalid input raises TextclsError naming the problem and the fix."""
    kwargs = {"response": "accuracy", **kwargs}
    with pytest.raises(TextclsError, match=match):
        ha.fit_response(frame, **kwargs)


def test_markdown_report_shows_terms_fit_statistics_and_verdicts():
    """Check that the report lists terms, R², the significance marker, and says so when nothing is significant."""
    frame = grid(noise=0.0005, seed=3)
    frame["loss"] = 0.4 + np.random.default_rng(4).normal(0, 0.01, len(frame))  # pure noise: smallest p 0.11
    results = ha.analyze(frame, baseline=BASELINE)
    assert set(results["fits"]) == {"accuracy", "f1_macro", "loss"}
    assert all(kinds["relative"]["relative"] for kinds in results["fits"].values())
    json.dumps(results, allow_nan=False)
    text = ha.to_markdown(results)
    assert "### accuracy (absolute)" in text and "### loss (% change from baseline lr=3e-05" in text
    assert "| `log10_lr:epochs` |" in text and "R² = " in text and "adjusted R² = " in text
    accuracy_section = text.split("### accuracy (absolute)")[1].split("###")[0]
    assert "| `log10_lr` |" in accuracy_section and accuracy_section.count(" | * |") >= 5
    loss_section = text.split("### loss (absolute)")[1].split("###")[0]
    assert "Nothing is significant" in loss_section and " | * |" not in loss_section.split("| `log10_lr` |")[1]
    assert "Significant at p < 0.05: `log10_lr`" in accuracy_section
    assert "relative fits skipped" in ha.to_markdown(ha.analyze(frame, responses=["loss"])).lower()


def test_saturated_fit_is_reported_not_hidden():
    """Check that as many configurations as coefficients give residual dof 0, None p-values and a plain warning."""
    fit = ha.fit_response(grid(batch_sizes=(32,), epochs=(3,)), "accuracy")
    assert fit["saturated"] and fit["df_resid"] == 0
    assert fit["coefficients"]["log10_lr"]["p_value"] is None and fit["adj_r2"] is None
    json.dumps(fit, allow_nan=False)
    assert "Saturated fit" in ha.to_markdown(fit) and "n/a" in ha.to_markdown(fit)


@pytest.mark.parametrize("frame, kwargs", [
    (grid(noise=0.0005), {}),
    (grid(noise=0.0005), {"fixed": {"batch_size": 64}}),
    (grid(epochs=(3,), noise=0.0005), {}),  # epochs constant: a 1-D curve over lr
])
def test_surface_png_returns_png_bytes(frame, kwargs):
    """Check that the response surface (or 1-D curve) renders to PNG bytes."""
    fit = ha.fit_response(frame, "accuracy", baseline=BASELINE if frame["epochs"].nunique() > 1 else None)
    png = ha.surface_png(frame, fit, **kwargs)
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_surface_png_rejects_fixing_an_axis_factor():
    """Check that holding a factor that is on the plot's axes is an error naming the factors that can be held."""
    frame = grid()
    with pytest.raises(TextclsError, match=r"fixed names \['lr'\].*fix only these: \['batch_size'\]"):
        ha.surface_png(frame, ha.fit_response(frame, "accuracy"), fixed={"lr": 1e-5})
