"""The candidate algorithms and the preprocessing the saved model carries.

Every algorithm is one small, self-contained :class:`AlgorithmSpec`: an estimator factory, the
preprocessing it needs and its default search space. The tuned pipeline (:func:`make_pipeline`) is::

    frame   FrameEncoder        raw gold feature frame (polars) -> float32 matrix (training/encoding.py)
    prep    ColumnTransformer   one-hot + scaling (logistic regression) | passthrough (trees)
    model   the estimator

The search clones and fits the whole pipeline in every cross-validation fold, so the category
vocabulary, one-hot columns and scaling statistics are learned from the fold's fitting part only
and never see its validation part (nor test or out-of-time rows). Both trees (random forest and
XGBoost) read ordinal category codes: XGBoost's native categorical splits were measured on the
full UCI data at twice the fit time for no gain (test ROC-AUC +0.002, out-of-time -0.005).

The names are :data:`readmit.config.KNOWN_ALGORITHMS` (the config validates
``training_config.algorithms`` against them); :data:`ALGORITHMS` holds one spec per name, in
that order, and adding an algorithm is one name there plus one spec here.

No class weights: the models are fitted on the data as it is and their scores are calibrated
afterwards (``training_config.calibration``), so a score is a probability. ROC-AUC, which the
search ranks by, does not depend on the weighting.

Search spaces are overridable per algorithm in ``training_config.search_spaces``. A key is an
estimator parameter (``"C"``, ``"max_depth"``) or a full pipeline path (``"prep__cat__min_frequency"``);
a value is a list of choices, a single fixed value, or a distribution::

    {"distribution": "loguniform", "low": 0.001, "high": 1.0}
    {"distribution": "uniform", "low": 0.5, "high": 1.0}
    {"distribution": "randint", "low": 2, "high": 8}          # both ends inclusive

Every value is tried before training: the pipeline is fitted with it on a tiny frame, and a value
the estimator refuses (``max_depth: [-5]`` for XGBoost, ``C: -1``) is a config problem.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from readmit.config import KNOWN_ALGORITHMS
from readmit.errors import ReadmitInputError

# -- preprocessing inside the folds -----------------------------------------------------------


def onehot_scaled(n_numeric: int, n_categorical: int):
    """Mean-impute (with missing indicators) + scale numeric columns, one-hot the category codes
    (rare ones pooled)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    num = list(range(n_numeric))
    cat = list(range(n_numeric, n_numeric + n_categorical))
    transformers = []
    if num:
        transformers.append(
            # mean + a missing indicator: np.nanmedian would cost more than the model fit itself
            ("num", Pipeline([("impute", SimpleImputer(strategy="mean", add_indicator=True)),
                              ("scale", StandardScaler())]), num)
        )
    if cat:
        transformers.append((
            "cat",
            OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20, dtype=np.float32),
            cat,
        ))
    # Dense output: ~150 columns, and the newton-cholesky solver is fastest on a dense matrix.
    return ColumnTransformer(transformers, sparse_threshold=0.0)


def passthrough(n_numeric: int, n_categorical: int):
    """Trees read the float32 matrix as is: NaN for missing, ordinal codes for categories."""
    return "passthrough"


# -- estimators ---------------------------------------------------------------------------------


def _logistic_regression(seed: int, n_jobs: int):
    from sklearn.linear_model import LogisticRegression

    # newton-cholesky: a few Newton steps on ~150 columns; 5-10x faster than lbfgs here. tol=1e-3
    # stops one Newton step earlier than 1e-4 (3 instead of 4 on a UCI fold, 25% less fit time)
    # with the validation ROC-AUC equal to the fourth decimal.
    return LogisticRegression(C=0.05, max_iter=200, tol=1e-3, solver="newton-cholesky", random_state=seed)


def _random_forest(seed: int, n_jobs: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=100,
        max_depth=12,
        min_samples_leaf=30,
        max_features="sqrt",
        max_samples=0.15,
        n_jobs=n_jobs,
        random_state=seed,
    )


def _xgboost(seed: int, n_jobs: int):
    from readmit.training.xgb import SketchReusingXGBClassifier

    return SketchReusingXGBClassifier(
        n_estimators=150,
        learning_rate=0.05,
        max_depth=4,
        min_child_weight=5,
        subsample=0.8,
        colsample_bytree=0.8,
        tree_method="hist",
        max_bin=64,
        eval_metric="auc",
        n_jobs=n_jobs,
        random_state=seed,
        verbosity=0,
    )


# -- the candidates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    make_estimator: Callable[[int, int], Any]  # (seed, n_jobs) -> unfitted estimator
    make_preprocessor: Callable[[int, int], Any]  # (n_numeric, n_categorical) -> transformer
    default_search_space: Mapping[str, Any]  # estimator parameter -> choices or distribution
    preprocessing: str  # human-readable, recorded in metadata
    threads_param: str | None = None  # the estimator's thread-count parameter, if it has one


ALGORITHMS: dict[str, AlgorithmSpec] = {
    "logistic_regression": AlgorithmSpec(
        name="logistic_regression",
        make_estimator=_logistic_regression,
        make_preprocessor=onehot_scaled,
        default_search_space={
            "C": {"distribution": "loguniform", "low": 1e-3, "high": 0.3},
        },
        preprocessing="mean-impute with missing indicators + standard-scale numeric; one-hot categories "
        "(min_frequency=20)",
    ),
    "random_forest": AlgorithmSpec(
        name="random_forest",
        make_estimator=_random_forest,
        make_preprocessor=passthrough,
        default_search_space={
            "n_estimators": {"distribution": "randint", "low": 40, "high": 100},
            "max_depth": {"distribution": "randint", "low": 8, "high": 14},
            "min_samples_leaf": {"distribution": "randint", "low": 20, "high": 80},
            "max_features": ["sqrt", 0.2],
            "max_samples": {"distribution": "uniform", "low": 0.05, "high": 0.12},
        },
        preprocessing="ordinal category codes (training frequency order), NaN kept for missing numbers",
        threads_param="n_jobs",
    ),
    "xgboost": AlgorithmSpec(
        name="xgboost",
        make_estimator=_xgboost,
        make_preprocessor=passthrough,
        default_search_space={
            "n_estimators": {"distribution": "randint", "low": 60, "high": 150},
            "learning_rate": {"distribution": "loguniform", "low": 0.04, "high": 0.15},
            "max_depth": {"distribution": "randint", "low": 3, "high": 5},
            "min_child_weight": {"distribution": "loguniform", "low": 5.0, "high": 60.0},
            "subsample": {"distribution": "uniform", "low": 0.5, "high": 0.9},
            "colsample_bytree": {"distribution": "uniform", "low": 0.3, "high": 0.8},
            "reg_lambda": {"distribution": "loguniform", "low": 0.1, "high": 20.0},
        },
        preprocessing="ordinal category codes (training frequency order), NaN kept for missing numbers; "
        "tree_method=hist, max_bin=64",
        threads_param="n_jobs",
    ),
}
if tuple(ALGORITHMS) != KNOWN_ALGORITHMS:  # a name added in one table and not the other
    raise RuntimeError(f"readmit.config.KNOWN_ALGORITHMS {KNOWN_ALGORITHMS} and the specs of "
                       f"readmit.training.algorithms {tuple(ALGORITHMS)} must name the same algorithms")


def release_caches() -> None:
    """Drop what fitting keeps between fits (XGBoost's binned training matrices)."""
    import sys

    if "readmit.training.xgb" in sys.modules:
        sys.modules["readmit.training.xgb"].forget_sketches()


def get_algorithm(name: str) -> AlgorithmSpec:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ReadmitInputError(
            f"unknown algorithm {name!r}",
            fix=f"use one of: {', '.join(ALGORITHMS)}",
        ) from None


# -- search spaces ----------------------------------------------------------------------------

_DISTRIBUTIONS = ("loguniform", "uniform", "randint")


def _distribution(spec: Mapping[str, Any], path: str, problems: list[str]) -> Any:
    from scipy import stats

    kind = spec.get("distribution")
    extra = set(spec) - {"distribution", "low", "high"}
    if kind not in _DISTRIBUTIONS:
        problems.append(f"{path}.distribution: must be one of {', '.join(_DISTRIBUTIONS)} (got {kind!r})")
        return None
    if extra:
        problems.append(f"{path}: unknown key(s) {', '.join(sorted(extra))} (allowed: distribution, low, high)")
    low, high = spec.get("low"), spec.get("high")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)):
        problems.append(f"{path}: low and high must be finite numbers (got low={low!r}, high={high!r})")
        return None
    if low > high or (kind != "randint" and low == high):
        problems.append(f"{path}: low must be below high (got low={low}, high={high})")
        return None
    if kind == "loguniform":
        if low <= 0:
            problems.append(f"{path}: loguniform needs low > 0 (got {low})")
            return None
        return stats.loguniform(low, high)
    if kind == "uniform":
        return stats.uniform(low, high - low)
    if int(low) != low or int(high) != high:
        problems.append(f"{path}: randint needs whole numbers (got low={low}, high={high})")
        return None
    return stats.randint(int(low), int(high) + 1)


def make_pipeline(algorithm: str, numeric: Sequence[str], categorical: Sequence[str], seed: int,
                  n_jobs: int = 1) -> Any:
    """The unfitted ``frame + prep + model`` pipeline of ``algorithm`` (what the search tunes)."""
    from sklearn.pipeline import Pipeline

    from readmit.training.encoding import FrameEncoder

    spec = get_algorithm(algorithm)
    return Pipeline([
        ("frame", FrameEncoder(numeric=list(numeric), categorical=list(categorical))),
        ("prep", spec.make_preprocessor(len(numeric), len(categorical))),
        ("model", spec.make_estimator(seed, n_jobs)),
    ])


def _tiny_frame() -> tuple[pl.DataFrame, np.ndarray]:
    """24 rows, one numeric and one categorical column, both classes: to try parameter values."""
    n = np.arange(24, dtype=float)
    frame = pl.DataFrame({"n": n, "c": [["a", "b", "c"][i % 3] for i in range(24)]})
    return frame, (n % 2).astype(int)


def _check_values(pipe: Any, full: str, values: Sequence[Any], path: str, problems: list[str]) -> None:
    """A problem for the first value the pipeline refuses when fitted with it (on a tiny frame)."""
    import warnings

    from sklearn.base import clone

    frame, y = _tiny_frame()
    cheap = {k: 2 for k in ("model__n_estimators",) if k in pipe.get_params() and k != full}
    for value in values:
        try:
            trial = clone(pipe).set_params(**cheap, **{full: value})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial.fit(frame, y)
        except (ValueError, TypeError) as exc:
            reason = " ".join(str(exc).split())
            problems.append(f"{path}: {value!r} is not allowed ({reason[:300]})")
            return


def build_search_space(
    algorithm: str, overrides: Mapping[str, Any] | None = None, *, path: str | None = None
) -> dict[str, Any]:
    """The ``param_distributions`` for RandomizedSearchCV (pipeline paths), or ConfigError.

    ``overrides`` replace or add entries of the default space; every problem is listed at once.
    """
    from readmit.errors import ConfigError

    spec = get_algorithm(algorithm)
    path = path or f"training_config.search_spaces.{algorithm}"
    merged: dict[str, Any] = {**spec.default_search_space, **(overrides or {})}
    pipe = make_pipeline(algorithm, ["n"], ["c"], 0)
    valid = set(pipe.named_steps["model"].get_params())
    valid_paths = set(pipe.get_params())
    problems: list[str] = []
    space: dict[str, Any] = {}
    for key, value in merged.items():
        p = f"{path}.{key}"
        if "__" in key:
            if key not in valid_paths:
                problems.append(f"{p}: the {spec.name} pipeline has no parameter {key!r}")
                continue
            full = key
        else:
            if key not in valid:
                problems.append(f"{p}: {spec.name} has no parameter {key!r}")
                continue
            full = f"model__{key}"
        if isinstance(value, Mapping):
            dist = _distribution(value, p, problems)
            if dist is not None:
                space[full] = dist
                low, high = value["low"], value["high"]
                ends = [int(low), int(high)] if value["distribution"] == "randint" else [float(low), float(high)]
                _check_values(pipe, full, ends, p, problems)
        elif isinstance(value, list):
            if not value:
                problems.append(f"{p}: the list of choices is empty")
            else:
                space[full] = value
                _check_values(pipe, full, value, p, problems)
        else:
            space[full] = [value]
            _check_values(pipe, full, [value], p, problems)
    if problems:
        raise ConfigError("training_config.search_spaces", problems)
    return space


def search_space_problems(training_config: Any) -> list[str]:
    """Every problem in the configured search spaces (used by the model-config gate)."""
    from readmit.errors import ConfigError

    problems: list[str] = []
    for algorithm, overrides in (training_config.search_spaces or {}).items():
        try:
            build_search_space(algorithm, overrides)
        except ConfigError as exc:
            problems.extend(exc.problems)
        except ReadmitInputError as exc:
            problems.append(f"training_config.search_spaces.{algorithm}: {exc}")
    return problems


def describe_space(space: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-able description of a search space (for metadata)."""
    out: dict[str, Any] = {}
    for key, value in space.items():
        if isinstance(value, list):
            out[key] = value
        else:
            dist = getattr(value, "dist", None)
            name = getattr(dist, "name", type(value).__name__)
            a, b = value.support()
            out[key] = {"distribution": name, "support": [float(a), float(b)]}
    return out


def __getattr__(name: str) -> Any:
    # Models saved before the encoder had a module of its own (readmit <= this commit's parent)
    # pickled it as readmit.training.algorithms.FrameEncoder; pickle finds it here. Importing it
    # lazily keeps sklearn out of the commands that only check a config (`readmit check`).
    if name == "FrameEncoder":
        from readmit.training.encoding import FrameEncoder

        return FrameEncoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
