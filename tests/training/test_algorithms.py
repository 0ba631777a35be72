"""The frame encoder, the algorithm definitions and the search-space parser."""

from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from readmit.errors import ConfigError, ReadmitInputError
from readmit.training.algorithms import (
    ALGORITHMS,
    FrameEncoder,
    balanced_xgb_class,
    build_search_space,
    describe_space,
    get_algorithm,
    search_space_problems,
)


def _frame() -> pl.DataFrame:
    return pl.DataFrame({
        "a": [1, 2, None, 4, 5, 6],
        "b": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5],
        "c": ["x", "y", "x", None, "x", "y"],
        "extra": ["ignored"] * 6,
    })


def test_frame_encoder_codes_by_frequency_nan_and_unknown():
    enc = FrameEncoder(numeric=["a", "b"], categorical=["c"]).fit(_frame())
    assert enc.vocabulary_["c"] == ["x", "y", "__null__"]  # most frequent first, null is a category
    out = enc.transform(pl.DataFrame({"a": [None, 3], "b": [1.0, 2.0], "c": ["y", "never-seen"]}))
    assert out.dtype == np.float32 and out.shape == (2, 3)
    assert np.isnan(out[0, 0]) and out[1, 0] == 3
    assert out[0, 2] == 1 and out[1, 2] == 3  # unknown -> len(vocabulary)
    assert list(enc.get_feature_names_out()) == ["a", "b", "c"]


def test_frame_encoder_accepts_arrow_and_names_missing_columns():
    enc = FrameEncoder(numeric=["a", "b"], categorical=["c"]).fit(_frame())
    assert enc.transform(_frame().to_arrow()).shape == (6, 3)
    with pytest.raises(ReadmitInputError, match="lacks column\\(s\\) b, c"):
        enc.transform(pl.DataFrame({"a": [1]}))


def test_frame_encoder_rejects_text_in_a_numeric_column():
    enc = FrameEncoder(numeric=["a"], categorical=[]).fit(pl.DataFrame({"a": [1, 2]}))
    with pytest.raises(ReadmitInputError, match="numeric feature a"):
        enc.transform(pl.DataFrame({"a": ["one", "two"]}))


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_each_algorithm_fits_inside_a_pipeline_and_pickles(name):
    spec = get_algorithm(name)
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=300), rng.normal(size=300), rng.integers(0, 4, 300)]).astype(np.float32)
    X[::17, 0] = np.nan
    y = (X[:, 1] + rng.normal(size=300) > 1).astype(int)
    pipe = Pipeline([("prep", spec.make_preprocessor(2, 1)), ("model", spec.make_estimator(0, 1))])
    space = build_search_space(name)
    assert all(k.startswith("model__") for k in space)
    pipe.fit(X, y)
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_allclose(again.predict_proba(X), pipe.predict_proba(X))
    assert clone(pipe).get_params()["model"].__class__ is pipe.named_steps["model"].__class__


def test_class_imbalance_is_handled_inside_each_fit():
    lr = get_algorithm("logistic_regression").make_estimator(0, 1)
    rf = get_algorithm("random_forest").make_estimator(0, 1)
    assert lr.class_weight == "balanced" and rf.class_weight == "balanced_subsample"
    xgb = balanced_xgb_class()(n_estimators=5, max_depth=2, n_jobs=1, scale_pos_weight=None)
    X = np.random.default_rng(1).normal(size=(200, 2)).astype(np.float32)
    y = np.r_[np.ones(20), np.zeros(180)].astype(int)
    xgb.fit(X, y)
    assert xgb.fitted_scale_pos_weight_ == pytest.approx(9.0)
    assert xgb.scale_pos_weight is None  # recomputed on the next fit (each CV fold)
    xgb.fit(X[:100], np.r_[np.ones(50), np.zeros(50)].astype(int))
    assert xgb.fitted_scale_pos_weight_ == pytest.approx(1.0)


def test_search_space_overrides_lists_scalars_and_distributions():
    space = build_search_space("xgboost", {
        "max_depth": [3, 4],
        "n_estimators": 50,
        "learning_rate": {"distribution": "loguniform", "low": 0.01, "high": 0.1},
    })
    assert space["model__max_depth"] == [3, 4]
    assert space["model__n_estimators"] == [50]
    draws = space["model__learning_rate"].rvs(200, random_state=0)
    assert draws.min() >= 0.01 and draws.max() <= 0.1
    assert "model__subsample" in space  # defaults kept
    described = describe_space(space)
    assert described["model__max_depth"] == [3, 4]
    assert described["model__learning_rate"]["distribution"] == "loguniform"
    lr = build_search_space("logistic_regression", {"prep__cat__min_frequency": [5, 50]})
    assert lr["prep__cat__min_frequency"] == [5, 50]
    rand = build_search_space("random_forest", {"max_depth": {"distribution": "randint", "low": 3, "high": 5}})
    assert set(rand["model__max_depth"].rvs(100, random_state=0)) == {3, 4, 5}  # both ends inclusive


def test_search_space_problems_are_all_listed():
    with pytest.raises(ConfigError) as err:
        build_search_space("random_forest", {
            "max_dpth": [3],
            "n_estimators": {"distribution": "normal", "low": 1, "high": 2},
            "max_samples": {"distribution": "uniform", "low": 0.5, "high": 0.1},
            "min_samples_leaf": [],
            "max_features": {"distribution": "loguniform", "low": 0, "high": 1},
        })
    problems = err.value.problems
    assert len(problems) == 5
    joined = "\n".join(problems)
    assert "training_config.search_spaces.random_forest.max_dpth" in joined
    assert "distribution: must be one of" in joined
    assert "low must be below high" in joined
    assert "list of choices is empty" in joined
    assert "loguniform needs low > 0" in joined


def test_search_space_values_the_estimator_rejects_are_problems_not_a_crash_in_training():
    with pytest.raises(ConfigError) as err:
        build_search_space("random_forest", {
            "max_depth": ["deep"],
            "n_estimators": {"distribution": "uniform", "low": 10, "high": 20},  # floats for an int
            "prep__scale": [True],  # trees have no preprocessing step parameters
        })
    joined = "\n".join(err.value.problems)
    assert len(err.value.problems) == 3, joined
    assert "random_forest.max_depth: 'deep' is not allowed" in joined
    assert "random_forest.n_estimators: 10.0 is not allowed" in joined
    assert "random_forest pipeline has no parameter 'prep__scale'" in joined
    with pytest.raises(ConfigError, match=r"logistic_regression.C: -1 is not allowed"):
        build_search_space("logistic_regression", {"C": -1})
    with pytest.raises(ConfigError, match=r"prep__cat__min_frequency: 'many' is not allowed"):
        build_search_space("logistic_regression", {"prep__cat__min_frequency": [5, "many"]})


def test_search_space_problems_from_a_training_config():
    from readmit.config import TrainingSection

    tc = TrainingSection(search_spaces={"xgboost": {"depth": [1]}, "logistic_regression": {"C": [0.1]}})
    problems = search_space_problems(tc)
    assert problems == ["training_config.search_spaces.xgboost.depth: xgboost has no parameter 'depth'"]


def test_unknown_algorithm():
    with pytest.raises(ReadmitInputError, match="unknown algorithm 'svm'"):
        get_algorithm("svm")
