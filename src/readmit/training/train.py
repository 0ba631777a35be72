"""Fit one algorithm end to end: gold -> purged temporal split -> tuned, calibrated model ->
evaluation -> metadata (registered by :mod:`readmit.pipeline.register`).

The steps, each a small function below:

1. :func:`make_folds` - the cross-validation folds of the training window (default ``group``:
   every patient's encounters in one fold, so no patient is in both the fitting and the
   validation part of a fold);
2. :func:`tune` - the hyperparameter search (``hyperparameter_tuning.method``) over the whole
   ``frame + prep + model`` pipeline, ranked by ``hyperparameter_tuning.scoring``: the category
   vocabulary and every preprocessing statistic are fitted inside each fold;
3. :func:`fit_final` - the tuned pipeline fitted on the whole training window, calibrated
   (``training_config.calibration``) on the cross-fitted scores of the same folds in the last
   months of the training window (:mod:`readmit.training.calibration`); test and out-of-time
   never take part;
4. :func:`evaluate_model` - the threshold chosen on test, metrics, calibration, patient-bootstrap
   intervals and the patients never seen in training, for test and out-of-time;
5. :func:`build_metadata`; :func:`fit_algorithm` runs the five and returns the model and its
   metadata, which :func:`readmit.pipeline.register.train_algorithm` registers.

The saved model scores raw gold feature frames by itself: ``predict_proba(model, frame)`` with
``frame`` a polars DataFrame (or pyarrow Table) holding the columns listed in the metadata's
``features`` (extra columns are ignored) returns calibrated P(readmitted < 30 days).

Heavy libraries (scikit-learn, xgboost) are imported inside functions: importing
``readmit.training`` stays light for Airflow's DAG parser.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from readmit.config import KNOWN_ALGORITHMS, HyperparameterTuning, Settings, TrainingSection
from readmit.data.layers import LABEL
from readmit.errors import ReadmitInputError
from readmit.jsonsafe import jsonable
from readmit.lineage import git_revision, library_versions
from readmit.runtime import Progress, resolve_n_jobs
from readmit.training.split import WINDOWS, GoldData, describe_sample, load_gold, sample_patients

MODEL_INPUT = (
    "a polars DataFrame (or pyarrow Table) of gold/feature_store rows holding every column in "
    "features.numeric and features.categorical (other columns are ignored); score it with "
    "readmit.training.predict_proba(model, frame), which returns the calibrated probability of "
    "readmission within 30 days"
)


# -- small helpers ------------------------------------------------------------------------------


def predict_proba(model: Any, frame: Any) -> np.ndarray:
    """P(readmitted within 30 days) for every row of a gold feature frame (see ``MODEL_INPUT``)."""
    return np.asarray(model.predict_proba(frame))[:, 1]


def fitted_pipelines(model: Any) -> list[Any]:
    """The fitted ``frame + prep + model`` pipeline inside a saved model, for feature importances
    and reasons: a calibrated model's one pipeline (:mod:`readmit.training.calibration`), or the
    model itself when it is not calibrated (``calibration: none``). A list, so that a caller sums
    over whatever a wrapper holds."""
    pipeline = getattr(model, "pipeline", None)
    if pipeline is not None and hasattr(model, "calibrator"):
        return [pipeline]
    return [model]


@contextmanager
def _quiet() -> Iterator[None]:
    """Fits in threads, no convergence chatter, no "space smaller than n_iter" warning."""
    from joblib import parallel_config
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*n_iter.*greater than the total space.*")
        # threads: the estimators release the GIL, and the frame is shared instead of pickled;
        # BLAS single-threaded inside them (the parallel fits already use the cores)
        with parallel_config(backend="threading"), threadpool_limits(limits=1, user_api="blas"):
            yield


# -- 1. folds -----------------------------------------------------------------------------------


def make_cv(strategy: str, folds: int, seed: int):
    """The splitter for ``cv_strategy``; ``group`` needs the patients as ``groups`` when splitting."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold, TimeSeriesSplit

    if strategy == "stratified":
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    if strategy == "group":
        # patients shuffled into folds of similar size; StratifiedGroupKFold balances the label
        # exactly but takes minutes on 50,000 patients, and ~8,000 positives balance themselves
        return GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    if strategy == "time":  # rows are sorted by (snapshot_date, encounter_id) in load_gold
        return TimeSeriesSplit(n_splits=folds)
    raise ReadmitInputError(f"unknown cv_strategy {strategy!r}", fix="use stratified, group or time")


def make_folds(train: pl.DataFrame, tuning: HyperparameterTuning, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fitting rows, validation rows) of each fold; the search and the calibration share them."""
    y = train[LABEL].to_numpy()
    groups = train["patient_nbr"].to_numpy() if tuning.cv_strategy == "group" else None
    splitter = make_cv(tuning.cv_strategy, tuning.cv_folds, seed)
    return list(splitter.split(np.zeros((len(y), 1)), y, groups))


def _check_trainable(data: GoldData, folds: int) -> None:
    counts = data.counts()
    for name in WINDOWS:
        rows, pos = counts[name]["rows"], counts[name]["positives"]
        if rows == 0 or pos == 0 or pos == rows:
            raise ReadmitInputError(
                f"the {name} window has {rows} labelled rows with {pos} positives: a model cannot "
                "be trained or evaluated on it",
                fix="build gold for the configured windows (`readmit medallion`) or correct "
                "temporal_splits; `readmit check` lists what is missing",
            )
    pos, neg = counts["train"]["positives"], counts["train"]["rows"] - counts["train"]["positives"]
    if min(pos, neg) < folds:
        raise ReadmitInputError(
            f"the train window has {pos} positives and {neg} negatives, fewer than cv_folds={folds}",
            fix="lower training_config.hyperparameter_tuning.cv_folds or widen the train window",
        )


# -- 2. the search ------------------------------------------------------------------------------


@dataclass
class Tuned:
    best_params: dict[str, Any]
    cv: dict[str, Any]  # metadata's "cv" block
    jobs: int
    seconds: float


def _candidates_summary(cv_results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for i, params in enumerate(cv_results["params"]):
        rows.append({
            "rank": int(cv_results["rank_test_score"][i]),
            "mean_score": jsonable(cv_results["mean_test_score"][i]),
            "std_score": jsonable(cv_results["std_test_score"][i]),
            "mean_fit_seconds": jsonable(cv_results["mean_fit_time"][i]),
            "params": jsonable({k.removeprefix("model__"): v for k, v in params.items()}),
        })
    return sorted(rows, key=lambda r: r["rank"])


def make_searcher(pipe: Any, space: dict[str, Any], folds: list, tuning: HyperparameterTuning, seed: int,
                  jobs: int) -> Any:
    """The searcher ``hyperparameter_tuning.method`` names, scoring with ``hyperparameter_tuning.scoring``."""
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    if tuning.method == "none":  # no search: the pipeline's own hyperparameters, scored over the folds
        return GridSearchCV(pipe, {}, scoring=tuning.scoring, cv=folds, n_jobs=jobs, refit=False,
                            error_score="raise", pre_dispatch="2*n_jobs")
    searchers = {"random_search": RandomizedSearchCV}
    return searchers[tuning.method](
        pipe, space, n_iter=tuning.n_iter, scoring=tuning.scoring, cv=folds, n_jobs=jobs,
        random_state=seed, refit=False, error_score="raise", pre_dispatch="2*n_jobs",
    )


def tune(pipe: Any, space: dict[str, Any], X: pl.DataFrame, y: np.ndarray, folds: list,
         tuning: HyperparameterTuning, seed: int, say: Progress) -> Tuned:
    """Search the space over the folds; the whole pipeline is refitted in every fold."""
    candidates = 1 if tuning.method == "none" else tuning.n_iter
    jobs = max(1, min(resolve_n_jobs(tuning.n_jobs), candidates * len(folds)))
    search = make_searcher(pipe, space, folds, tuning, seed, jobs)
    say(f"searching {candidates} candidate{'s' if candidates != 1 else ''} x {len(folds)} {tuning.cv_strategy} folds "
        f"on {X.height} rows ({jobs} parallel fits, scoring {tuning.scoring})")
    started = time.perf_counter()
    with _quiet():
        search.fit(X, y)
    best = int(search.best_index_)
    results = search.cv_results_
    fold_scores = [float(results[f"split{k}_test_score"][best]) for k in range(len(folds))]
    cv = {
        "strategy": tuning.cv_strategy,
        "folds": len(folds),
        "method": tuning.method,
        "n_iter": candidates,
        "scoring": tuning.scoring,
        "best_mean_score": float(search.best_score_),
        "best_std_score": float(results["std_test_score"][best]),
        "best_fold_scores": fold_scores,
        "candidates": _candidates_summary(results),
    }
    return Tuned(dict(search.best_params_), cv, jobs, time.perf_counter() - started)


# -- 3. the final, calibrated model ---------------------------------------------------------------


def recent_rows(train: pl.DataFrame, months: int) -> tuple[np.ndarray, list[str]]:
    """A mask of the training rows in the last ``months`` months present (0: every row), and those months."""
    month = train["snapshot_date"].dt.strftime("%Y-%m")
    present = sorted(month.unique().to_list())
    chosen = present[-months:] if months else present
    return month.is_in(chosen).to_numpy(), chosen


def fit_final(pipe: Any, tuned: Tuned, X: pl.DataFrame, y: np.ndarray, folds: list, method: str,
              threads_param: str | None, n_jobs: int, recent: np.ndarray | None = None) -> tuple[Any, dict[str, Any]]:
    """The tuned pipeline fitted on the whole training window, calibrated on the cross-fitted scores
    of the ``recent`` rows (default: all) - see :mod:`readmit.training.calibration`; returns the
    model and what its calibrator was fitted on (``{}`` for ``none``)."""
    from sklearn.base import clone

    from readmit.training.calibration import fit_calibrated

    best = clone(pipe).set_params(**tuned.best_params)
    with _quiet():
        if method == "none":
            if threads_param:  # the refit is alone: give it every core
                best.set_params(**{f"model__{threads_param}": n_jobs})
            model, info = best.fit(X, y), {}
        else:
            mask = np.ones(len(y), dtype=bool) if recent is None else recent
            model, info = fit_calibrated(best, X, y, folds, mask, method, n_jobs)
    for fitted in fitted_pipelines(model):  # scoring elsewhere (Airflow workers): one thread each
        if threads_param:
            fitted.set_params(**{f"model__{threads_param}": 1})
    return model, info


# -- 4. evaluation --------------------------------------------------------------------------------


def evaluate_model(model: Any, data: GoldData, tc: TrainingSection, seed: int) -> tuple[dict[str, Any], float]:
    """Every window's metrics with the threshold chosen on test; returns (performance, threshold)."""
    from readmit.training.evaluate import choose_threshold, evaluate_window

    train_patients = data.window("train")["patient_nbr"].unique()
    scored = {}
    for window in ("test", "oot"):
        frame = data.window(window)
        scored[window] = (frame, frame[LABEL].to_numpy().astype(int), predict_proba(model, frame))
    _, y_test, p_test = scored["test"]
    threshold = (tc.threshold.value if tc.threshold.rule == "fixed"
                 else choose_threshold(y_test, p_test, tc.threshold.rule, tc.threshold.target_recall))
    performance = {
        window: evaluate_window(frame, y, p, threshold, by_month=True, train_patients=train_patients,
                                resamples=tc.bootstrap.resamples, level=tc.bootstrap.level, seed=seed)
        for window, (frame, y, p) in scored.items()
    }
    return performance, threshold


# -- 5. metadata --------------------------------------------------------------------------------


def build_metadata(settings: Settings, algorithm: str, data: GoldData, tuned: Tuned, space: dict[str, Any],
                   performance: dict[str, Any], threshold: float, timings: dict[str, float],
                   n_jobs: int) -> dict[str, Any]:
    from readmit.training.algorithms import describe_space, get_algorithm
    from readmit.training.evaluate import leakage_warnings

    cfg = settings.config
    tc = cfg.training_config
    fs = data.spec
    counts = data.counts()
    return {
        "model_name": algorithm,  # the seed's contract; the registry's name is registered_model
        "registered_model": cfg.model.model_name,
        "algorithm": algorithm,
        "training_date": datetime.now(UTC).isoformat(),
        "temporal_window_mode": cfg.temporal_window_mode,
        "temporal_splits": cfg.temporal_splits.dates(),
        # relative windows: the rule and the as-of date they were resolved at (the dates are above)
        **({"relative_windows": cfg.relative_windows.model_dump(mode="json")}
           if cfg.temporal_window_mode == "relative" else {}),
        "label": {"target": cfg.model.target, "column": LABEL, "label_maturity_days": tc.label_maturity_days,
                  "exclude_death_hospice": tc.exclude_death_hospice},
        "features": {"numeric": list(fs.numeric), "categorical": list(fs.categorical)},
        "feature_count": len(fs.features),
        "model_input": MODEL_INPUT,
        "training_samples": counts["train"]["rows"],
        "test_samples": counts["test"]["rows"],
        "oot_samples": counts["oot"]["rows"],
        "positives": {w: counts[w]["positives"] for w in WINDOWS},
        "purged_by_label_horizon": {w: data.purged.get(w, 0) for w in WINDOWS},
        "exclude_death_hospice": tc.exclude_death_hospice,
        "excluded_death_hospice": data.excluded_death_hospice.get("total", 0),
        "excluded_death_hospice_by_window": {w: data.excluded_death_hospice.get(w, 0) for w in WINDOWS},
        "unlabelled_rows_dropped": data.unlabelled,
        "performance": performance,
        "threshold": {"value": threshold, "rule": tc.threshold.rule, "target_recall": tc.threshold.target_recall,
                      "chosen_on": "fixed" if tc.threshold.rule == "fixed" else "test"},
        "calibration": {"method": tc.calibration.method, "recent_months": tc.calibration.recent_months,
                        "fitted_on": "cross-fitted scores (grouped folds) of the last months of the training "
                        "window; the model itself is fitted on the whole training window"},
        "best_params": jsonable({k.removeprefix("model__"): v for k, v in tuned.best_params.items()}),
        "cv": tuned.cv,
        "search_space": describe_space(space),
        "preprocessing": get_algorithm(algorithm).preprocessing,
        "config": cfg.to_json_dict(),
        "config_uri": settings.config_uri,
        "datamart_uri": settings.datamart_uri,
        "gold_partitions": data.partitions,
        "versions": library_versions(),
        "git_revision": git_revision(),
        "seed": cfg.model.random_state,
        "n_jobs": {"search": tuned.jobs, "final": n_jobs},
        **{f"{k}_seconds": round(v, 3) for k, v in timings.items()},
        "warnings": leakage_warnings(performance),
    }


# -- training -------------------------------------------------------------------------------------


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in KNOWN_ALGORITHMS:
        raise ReadmitInputError(f"unknown algorithm {algorithm!r}", fix=f"use one of: {', '.join(KNOWN_ALGORITHMS)}")


def fit_algorithm(
    settings: Settings,
    algorithm: str,
    *,
    progress: Progress | None = None,
    data: GoldData | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Load gold, split, tune, calibrate and evaluate ``algorithm``; return the model and its metadata.

    Nothing is written: a model enters the registry only through
    :func:`readmit.pipeline.register.train_algorithm`, which also writes what monitoring and the
    report need beside it. ``data`` lets a caller training several algorithms read gold once.
    """
    from readmit.training.algorithms import build_search_space, get_algorithm, make_pipeline, release_caches

    def say(message: str) -> None:
        if progress is not None:
            progress(f"{algorithm}: {message}")

    _check_algorithm(algorithm)
    started = time.perf_counter()
    cfg = settings.config
    tc = cfg.training_config
    seed = cfg.model.random_state
    space = ({} if tc.hyperparameter_tuning.method == "none"
             else build_search_space(algorithm, tc.search_spaces.get(algorithm)))
    if data is None:
        say("loading gold")
        data = load_gold(settings, progress=say)
    _check_trainable(data, tc.hyperparameter_tuning.cv_folds)
    train, sample = sample_patients(data.window("train"), tc.max_rows, seed)  # training_config.max_rows
    say(describe_sample(sample))
    X, y = train.select(data.spec.features), train[LABEL].to_numpy().astype(np.int8)
    folds = make_folds(train, tc.hyperparameter_tuning, seed)
    pipe = make_pipeline(algorithm, data.spec.numeric, data.spec.categorical, seed)

    n_jobs = resolve_n_jobs(tc.hyperparameter_tuning.n_jobs)
    recent, recent_months = recent_rows(train, tc.calibration.recent_months)
    try:
        tuned = tune(pipe, space, X, y, folds, tc.hyperparameter_tuning, seed, say)
        say(f"best CV {tc.hyperparameter_tuning.scoring} {tuned.cv['best_mean_score']:.4f}; fitting the final "
            f"model (calibration: {tc.calibration.method})")
        t0 = time.perf_counter()
        model, calibrated_on = fit_final(pipe, tuned, X, y, folds, tc.calibration.method,
                                         get_algorithm(algorithm).threads_param, n_jobs, recent)
        final_seconds = time.perf_counter() - t0
    finally:
        release_caches()

    say("evaluating on test and out-of-time windows")
    t0 = time.perf_counter()
    performance, threshold = evaluate_model(model, data, tc, seed)
    timings = {"search": tuned.seconds, "final_fit": final_seconds, "evaluation": time.perf_counter() - t0}
    metadata = build_metadata(settings, algorithm, data, tuned, space, performance, threshold, timings, n_jobs)
    if calibrated_on:
        metadata["calibration"].update(calibrated_on, months=[recent_months[0], recent_months[-1]])
    metadata["training_sample"] = sample  # null: the whole training window
    if sample is not None:  # what the model was fitted on (the window's size stays in training_sample)
        metadata["training_samples"] = train.height
        metadata["positives"]["train"] = int(train[LABEL].sum())
    metadata["training_seconds"] = round(time.perf_counter() - started, 3)
    return model, jsonable(metadata)
