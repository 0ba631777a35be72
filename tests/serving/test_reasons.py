"""Reason codes come from the model's own contributions, and survive a wrapper around the model."""

from __future__ import annotations

import numpy as np
import polars as pl

from readmit.data.layers import FEATURE_STORE
from readmit.registry import Registry
from readmit.serving.reasons import base_pipelines, contributions, top_reasons
from readmit.storage import Storage
from readmit.training import predict_proba


def _load(small_models, algorithm):
    return Registry(small_models.registry).load(algorithm, small_models.models()[algorithm])[0]


def _month(small_models, month="2008-03"):
    return Storage(small_models.datamart).read_partition(FEATURE_STORE, month)


def test_xgboost_contributions_add_up_to_the_models_log_odds(small_models):
    model, frame = _load(small_models, "xgboost"), _month(small_models)
    values, names = contributions(model, frame)
    assert values.shape == (frame.height, len(names))
    import xgboost as xgb

    pipes = base_pipelines(model)
    bias, margin = np.zeros(frame.height), np.zeros(frame.height)
    for pipe in pipes:  # one pipeline (older calibrated models: one per fold, averaged)
        booster = pipe.named_steps["model"].get_booster()
        X = xgb.DMatrix(pipe.named_steps["frame"].transform(frame), missing=np.nan)
        bias += booster.predict(X, pred_contribs=True, approx_contribs=True)[:, -1] / len(pipes)
        margin += booster.predict(X, output_margin=True) / len(pipes)
    np.testing.assert_allclose(values.sum(axis=1) + bias, margin, rtol=1e-4, atol=1e-4)


def test_logistic_regression_contributions_explain_the_log_odds(small_models):
    model, frame = _load(small_models, "logistic_regression"), _month(small_models)
    values, names = contributions(model, frame)
    log_odds = np.zeros(frame.height)
    for pipe in base_pipelines(model):  # one pipeline (older calibrated models: one per fold, averaged)
        p = pipe.predict_proba(frame)[:, 1]
        log_odds += np.log(p / (1 - p))
    log_odds /= len(base_pipelines(model))
    # contributions differ from the log-odds by one constant per row set (intercept + category means)
    offset = log_odds - values.sum(axis=1)
    assert np.ptp(offset) < 1e-6


def test_top_reasons_are_the_largest_positive_contributions(small_models):
    model, frame = _load(small_models, "xgboost"), _month(small_models).head(300)
    values, names = contributions(model, frame)
    got = top_reasons(model, frame).to_list()
    for row, reasons in zip(values, got, strict=True):
        order = [names[i] for i in np.argsort(-row, kind="stable") if row[i] > 0][:3]
        assert reasons == order


class _Wrapped:
    """A model wrapped the way a calibration step might wrap it (an attribute holding the pipeline)."""

    def __init__(self, inner):
        self.calibrated = [{"estimator": None}, inner]
        self.inner = inner

    def predict_proba(self, frame):
        return self.inner.predict_proba(frame)


def test_reasons_are_found_inside_a_wrapped_model(small_models):
    model, frame = _load(small_models, "xgboost"), _month(small_models).head(50)
    wrapped = _Wrapped(model)
    assert base_pipelines(wrapped) == base_pipelines(model) and base_pipelines(model)
    assert top_reasons(wrapped, frame).to_list() == top_reasons(model, frame).to_list()
    np.testing.assert_allclose(predict_proba(wrapped, frame), predict_proba(model, frame))


def test_random_forest_says_unavailable(small_models):
    model, frame = _load(small_models, "random_forest"), _month(small_models).head(20)
    assert contributions(model, frame) is None
    assert top_reasons(model, frame).to_list() == [["unavailable"]] * 20
    assert top_reasons(model, frame.clear()).dtype == pl.List(pl.String)
