"""The frame encoder, the algorithm definitions and the search-space parser."""

from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

from readmit.errors import ConfigError, ReadmitInputError
from readmit.training.algorithms import (
    ALGORITHMS,
    build_search_space,
    describe_space,
    get_algorithm,
    make_pipeline,
    search_space_problems,
)
from readmit.training.encoding import FrameEncoder


def test_the_config_accepts_exactly_the_algorithms_there_are_specs_for():
    from typing import get_args

    from readmit.config import KNOWN_ALGORITHMS, Algorithm, ReadmitConfig, TrainingSection

    assert tuple(ALGORITHMS) == KNOWN_ALGORITHMS == get_args(Algorithm)
    assert all(spec.name == name for name, spec in ALGORITHMS.items())
    assert TrainingSection().algorithms == list(ALGORITHMS)
    schema = ReadmitConfig.model_json_schema()
    assert schema["$defs"]["TrainingSection"]["properties"]["algorithms"]["items"]["enum"] == list(ALGORITHMS)


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


def test_a_model_pickled_when_the_encoder_lived_in_algorithms_still_loads():
    enc = FrameEncoder(numeric=["a", "b"], categorical=["c"]).fit(_frame())
    old = pickle.dumps(enc, protocol=0).replace(b"readmit.training.encoding", b"readmit.training.algorithms")
    assert b"readmit.training.algorithms\nFrameEncoder" in old  # the path such a pickle names
    loaded = pickle.loads(old)
    assert type(loaded) is FrameEncoder and loaded.vocabulary_ == enc.vocabulary_


def test_checking_a_config_imports_no_scikit_learn(tmp_path):
    """`readmit check` (the config and the algorithm table) starts without scikit-learn (~1.5 s)."""
    import subprocess
    import sys

    code = ("import sys\nfrom readmit.cli import main\nsys.argv = ['readmit', 'check', '--datamart', sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit as done:\n    print('exit', done.code)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "dm")], capture_output=True, text=True,
                          check=False, cwd=tmp_path, timeout=120)
    assert done.stdout.rstrip().endswith("exit 1\n[]"), done
    assert "gold_data_exists" in done.stderr, done.stderr


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_each_algorithm_fits_as_a_frame_pipeline_and_pickles(name):
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({
        "a": rng.normal(size=300), "b": rng.normal(size=300),
        "c": rng.choice(["x", "y", "z", "w"], 300).tolist(),
    }).with_columns(pl.when(pl.int_range(pl.len()) % 17 == 0).then(None).otherwise(pl.col("a")).alias("a"))
    y = (frame["b"].to_numpy() + rng.normal(size=300) > 1).astype(int)
    pipe = make_pipeline(name, ["a", "b"], ["c"], seed=0)
    assert [step for step, _ in pipe.steps] == ["frame", "prep", "model"]
    space = build_search_space(name)
    assert all(k.startswith("model__") for k in space)
    pipe.fit(frame, y)
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_allclose(again.predict_proba(frame), pipe.predict_proba(frame))
    assert clone(pipe).get_params()["model"].__class__ is pipe.named_steps["model"].__class__


def test_no_class_weights_scores_are_calibrated_afterwards():
    lr = make_pipeline("logistic_regression", ["a"], ["c"], 0).named_steps["model"]
    rf = make_pipeline("random_forest", ["a"], ["c"], 0).named_steps["model"]
    assert lr.class_weight is None and rf.class_weight is None  # scores are calibrated afterwards
    xgb = make_pipeline("xgboost", ["a", "b"], ["c"], 0).named_steps["model"]
    assert xgb.scale_pos_weight is None


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


def test_xgboost_values_it_would_refuse_in_training_are_config_problems():
    with pytest.raises(ConfigError) as err:
        build_search_space("xgboost", {"max_depth": [-5], "subsample": [1.5], "learning_rate": 0.1})
    joined = "\n".join(err.value.problems)
    assert len(err.value.problems) == 2, joined
    assert "xgboost.max_depth: -5 is not allowed" in joined and "max_depth" in joined
    assert "xgboost.subsample: 1.5 is not allowed" in joined


def test_search_space_checks_use_no_private_sklearn_module():
    import inspect

    from readmit.training import algorithms

    assert "sklearn.utils._" not in inspect.getsource(algorithms)


def test_search_space_problems_from_a_training_config():
    from readmit.config import TrainingSection

    tc = TrainingSection(search_spaces={"xgboost": {"depth": [1]}, "logistic_regression": {"C": [0.1]}})
    problems = search_space_problems(tc)
    assert problems == ["training_config.search_spaces.xgboost.depth: xgboost has no parameter 'depth'"]


def test_unknown_algorithm():
    with pytest.raises(ReadmitInputError, match="unknown algorithm 'svm'"):
        get_algorithm("svm")


def test_xgboost_reusing_the_sketch_equals_plain_xgboost():
    """The kept binned matrix gives the very model a plain XGBClassifier fits, fit after fit,
    through clone and pickle; another matrix or other labels get their own bins."""
    from xgboost import XGBClassifier

    from readmit.training.xgb import _SKETCHES, SketchReusingXGBClassifier, forget_sketches, private_hook_fits

    # the reuse hooks XGBoost's private _create_dmatrix: when XGBoost changes it, this fails first
    assert private_hook_fits(), "XGBoost changed _create_dmatrix: see readmit.training.xgb"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 12)).astype(np.float32)
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (np.nan_to_num(X[:, 0]) + rng.normal(size=5000) > 1).astype(int)
    params = dict(n_estimators=30, max_depth=3, tree_method="hist", max_bin=32, subsample=0.7, n_jobs=1,
                  random_state=3)
    forget_sketches()
    reusing = SketchReusingXGBClassifier(**params)
    plain = XGBClassifier(**params).fit(X, y).predict_proba(X)[:, 1]
    first = reusing.fit(X, y).predict_proba(X)[:, 1]
    assert len(_SKETCHES) == 1
    again = clone(reusing).set_params(max_depth=4)
    second = again.fit(X, y).predict_proba(X)[:, 1]
    assert len(_SKETCHES) == 1  # the same matrix: its bins were reused
    np.testing.assert_array_equal(first, plain)
    np.testing.assert_array_equal(second, XGBClassifier(**{**params, "max_depth": 4}).fit(X, y).predict_proba(X)[:, 1])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reusing)).predict_proba(X)[:, 1], first)

    flipped = 1 - y
    other = clone(reusing).fit(X, flipped).predict_proba(X)[:, 1]
    np.testing.assert_array_equal(other, XGBClassifier(**params).fit(X, flipped).predict_proba(X)[:, 1])
    clone(reusing).fit(X[:4000], y[:4000])
    assert len(_SKETCHES) == 3
    forget_sketches()
