"""The one-pass scoring path gives the numbers of the straightforward one: the model's
``predict_proba`` and the reasons from its own contributions."""

from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest

from readmit.data.layers import FEATURE_STORE
from readmit.registry import Registry
from readmit.serving.reasons import contributions, reason_lists, top_reasons
from readmit.serving.scoring import Scorer, one_pass_parts
from readmit.storage import Storage
from readmit.training import fitted_pipelines, predict_proba


def _load(small_models, algorithm):
    return Registry(small_models.registry).load(algorithm, small_models.models()[algorithm])[0]


def _month(small_models, month="2008-03"):
    return Storage(small_models.datamart).read_partition(FEATURE_STORE, month)


@pytest.fixture(scope="module")
def shapes(small_models):
    """The trained model and the other shapes a served XGBoost model can take, fitted on the
    sample's training window: a sigmoid-calibrated one and the bare pipeline."""
    from readmit.training.calibration import CalibratedModel, fit_calibrator
    from readmit.training.split import LABEL, load_gold

    trained = _load(small_models, "xgboost")
    (pipe,) = fitted_pipelines(trained)
    data = load_gold(small_models.settings(), fingerprints=False)
    train = data.window("train")
    X, y = train.select(data.spec.features), train[LABEL].to_numpy().astype(int)
    sigmoid = CalibratedModel(pipe, fit_calibrator(pipe.predict_proba(X)[:, 1], y, "sigmoid"), "sigmoid")
    return {"as_trained": (trained, 1), "sigmoid": (sigmoid, 1), "bare_pipeline": (pipe, 1)}


def _reference_reasons(model, frame):
    values, names = contributions(model, frame)
    return [[names[i] for i in np.argsort(-row, kind="stable") if row[i] > 0][:3] for row in values]


@pytest.mark.parametrize("shape", ["as_trained", "sigmoid", "bare_pipeline"])
def test_one_pass_risk_is_predict_proba_and_reasons_are_the_straightforward_ones(small_models, shapes, shape):
    model, pipelines = shapes[shape]
    frame = _month(small_models)
    assert len(one_pass_parts(model)) == pipelines == len(fitted_pipelines(model))

    scorer = pickle.loads(pickle.dumps(Scorer(model)))  # Spark ships scorers to its executors
    risk, found = scorer.score(frame)
    assert scorer.method == "one-pass" and scorer.checked
    np.testing.assert_allclose(risk, predict_proba(model, frame), rtol=0, atol=1e-9)
    values, names = contributions(model, frame)
    np.testing.assert_array_equal(found[0], values)
    assert found[1] == names
    assert reason_lists(found, frame.height).to_list() == _reference_reasons(model, frame)


class _Wrapped:
    """A wrapper the one-pass path does not know: its probability is whatever it says."""

    def __init__(self, inner):
        self.inner = inner

    def predict_proba(self, frame):
        return self.inner.predict_proba(frame)


@pytest.mark.parametrize("which", ["logistic_regression", "random_forest", "wrapped_xgboost"])
def test_other_models_are_scored_the_straightforward_way(small_models, which):
    frame = _month(small_models).head(200)
    model = _Wrapped(_load(small_models, "xgboost")) if which == "wrapped_xgboost" else _load(small_models, which)
    scorer = Scorer(model)
    risk, found = scorer.score(frame)
    assert scorer.method == "straightforward"
    np.testing.assert_array_equal(risk, predict_proba(model, frame))
    assert reason_lists(found, frame.height).to_list() == top_reasons(model, frame).to_list()
    if which == "random_forest":
        assert found is None and reason_lists(found, 2).to_list() == [["unavailable"]] * 2


@pytest.mark.parametrize("shape", ["as_trained", "sigmoid"])
def test_a_one_pass_shape_that_disagrees_with_predict_proba_is_dropped(small_models, shapes, shape):
    model, frame = shapes[shape][0], _month(small_models)
    scorer = Scorer(model)
    # calibrate the pipelines' probabilities twice: the one-pass risk is no longer the model's
    scorer.parts = [type(p)(p.pipeline, lambda proba, f=p.calibrate: f(f(proba))) for p in scorer.parts]
    risk, _ = scorer.score(frame)
    assert scorer.method == "straightforward"
    np.testing.assert_array_equal(risk, predict_proba(model, frame))


def test_reason_lists_order_ties_and_non_positive_contributions():
    names = ["a", "b", "c", "d"]
    values = np.array([
        [0.1, 0.5, 0.3, 0.2],     # largest first
        [0.2, 0.2, 0.0, 0.2],     # ties in column order; 0 is not a reason
        [-1.0, -0.5, 0.0, -2.0],  # nothing pushes the risk up
        [0.0, 0.0, 0.0, 0.7],
    ], dtype=np.float32)
    got = reason_lists((values, names), 4)
    assert got.dtype == pl.List(pl.String) and got.name == "top_reasons"
    assert got.to_list() == [["b", "c", "d"], ["a", "b", "d"], [], ["d"]]
    assert reason_lists((values[:, :2], names[:2]), 4, top=3).to_list() == [["b", "a"], ["a", "b"], [], []]
    assert reason_lists((values[:0], names), 0).to_list() == []


def test_the_iteration_range_is_xgboosts_own_and_its_public_rule_agrees():
    """scoring.iteration_range calls XGBoost's private _get_iteration_range: this fails when
    XGBoost drops or changes it, and checks the public fallback gives the same trees."""
    from xgboost import XGBClassifier

    from readmit.serving.scoring import iteration_range, public_iteration_range

    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] + rng.normal(size=600) > 0.5).astype(int)
    plain = XGBClassifier(n_estimators=12, max_depth=2, n_jobs=1).fit(X, y)
    stopped = XGBClassifier(n_estimators=200, max_depth=2, learning_rate=0.5, early_stopping_rounds=2,
                            n_jobs=1).fit(X[:400], y[:400], eval_set=[(X[400:], 1 - y[400:])], verbose=False)
    assert hasattr(plain, "_get_iteration_range"), "XGBoost dropped _get_iteration_range: see serving.scoring"
    assert iteration_range(plain) == public_iteration_range(plain) == (0, 0)
    best = stopped.best_iteration
    assert best < 199
    assert iteration_range(stopped) == public_iteration_range(stopped) == (0, best + 1)
