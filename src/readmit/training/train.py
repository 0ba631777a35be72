"""Train one algorithm end to end: gold -> temporal split -> tuned model -> evaluation -> registry.

The cost is dominated by the hyperparameter search (``n_iter`` candidates x ``cv_folds`` fits),
so each fit is made cheap:

- the gold frame is turned into a float32 matrix once (:class:`FrameEncoder`, fitted on the
  training window only); the search then fits ``prep + model`` on that matrix in every fold;
- trees read ordinal category codes (no one-hot), logistic regression one-hot + scaling;
- the search runs ``n_jobs`` fits in parallel with single-threaded estimators (no
  oversubscription); the final refit on the whole training window uses every core instead.

The saved model is a ``Pipeline(frame, prep, model)`` that scores raw gold feature frames by
itself: ``predict_proba(model, frame)`` with ``frame`` a polars DataFrame (or pyarrow Table)
holding the columns listed in the metadata's ``features`` (extra columns are ignored).

Heavy libraries (scikit-learn, xgboost) are imported inside functions: importing
``readmit.training`` stays light for Airflow's DAG parser.
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from readmit.config import KNOWN_ALGORITHMS, Settings
from readmit.errors import ReadmitInputError
from readmit.training.split import LABEL, WINDOWS, GoldData, load_gold

Progress = Callable[[str], None]

MODEL_INPUT = (
    "a polars DataFrame (or pyarrow Table) of gold/feature_store rows holding every column in "
    "features.numeric and features.categorical (other columns are ignored); score it with "
    "readmit.training.predict_proba(model, frame), which returns P(readmitted < 30 days)"
)


# -- small helpers ------------------------------------------------------------------------------


def available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def resolve_n_jobs(n_jobs: int) -> int:
    """``-1`` (or 0) = every available core; otherwise at most the available cores."""
    cpus = available_cpus()
    if n_jobs is None or n_jobs <= 0:
        return cpus if n_jobs in (None, 0, -1) else max(1, cpus + 1 + n_jobs)
    return min(n_jobs, cpus)


def jsonable(value: Any) -> Any:
    """numpy scalars / arrays and other odd values -> plain JSON types."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def git_revision(start: Path | None = None) -> str | None:
    """The commit of the readmit checkout this code runs from (``git rev-parse HEAD``), or None.

    ``READMIT_GIT_REVISION`` wins (an image has no ``.git``); an installed wheel, or a checkout
    of another project around it, gives None. Never fails.
    """
    env = os.environ.get("READMIT_GIT_REVISION")
    if env:
        return env
    import subprocess

    here = (start or Path(__file__)).resolve()
    folder = here if here.is_dir() else here.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                                  timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return (done.stdout.strip() or None) if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or not (Path(top) / "src" / "readmit").is_dir():
        return None
    return git("rev-parse", "HEAD")


def library_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("readmit", "scikit-learn", "xgboost", "numpy", "scipy", "polars", "pyarrow", "joblib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def predict_proba(model: Any, frame: Any) -> np.ndarray:
    """P(readmitted within 30 days) for every row of a gold feature frame (see ``MODEL_INPUT``)."""
    return np.asarray(model.predict_proba(frame))[:, 1]


# -- cross-validation -------------------------------------------------------------------------


def make_cv(strategy: str, folds: int, seed: int, y: np.ndarray, groups: np.ndarray | None):
    """The splitter for the search; ``groups`` is only used by the ``group`` strategy."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, TimeSeriesSplit

    if strategy == "stratified":
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    if strategy == "group":
        return StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    if strategy == "time":  # rows are sorted by (snapshot_date, encounter_id) in load_gold
        return TimeSeriesSplit(n_splits=folds)
    raise ReadmitInputError(f"unknown cv_strategy {strategy!r}", fix="use stratified, group or time")


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


def _candidates_summary(cv_results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for i, params in enumerate(cv_results["params"]):
        rows.append({
            "rank": int(cv_results["rank_test_score"][i]),
            "mean_auc_roc": jsonable(cv_results["mean_test_score"][i]),
            "std_auc_roc": jsonable(cv_results["std_test_score"][i]),
            "mean_fit_seconds": jsonable(cv_results["mean_fit_time"][i]),
            "params": jsonable({k.removeprefix("model__"): v for k, v in params.items()}),
        })
    return sorted(rows, key=lambda r: r["rank"])


# -- training ---------------------------------------------------------------------------------


def train_algorithm(
    settings: Settings,
    algorithm: str,
    *,
    progress: Progress | None = None,
    data: GoldData | None = None,
) -> dict[str, Any]:
    """Load gold, split, tune, evaluate and register ``algorithm``; return the metadata written.

    ``data`` lets a caller training several algorithms read gold once (:func:`train_algorithms`).
    """
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.pipeline import Pipeline

    from readmit.registry import Registry
    from readmit.training.algorithms import (
        FrameEncoder,
        build_search_space,
        describe_space,
        get_algorithm,
    )
    from readmit.training.evaluate import choose_threshold, evaluate_window, leakage_warnings

    def say(message: str) -> None:
        if progress is not None:
            progress(f"{algorithm}: {message}")

    if algorithm not in KNOWN_ALGORITHMS:
        raise ReadmitInputError(f"unknown algorithm {algorithm!r}", fix=f"use one of: {', '.join(KNOWN_ALGORITHMS)}")
    started = time.perf_counter()
    cfg = settings.config
    tc = cfg.training_config
    tuning = tc.hyperparameter_tuning
    seed = cfg.model.random_state
    spec = get_algorithm(algorithm)
    space = build_search_space(algorithm, tc.search_spaces.get(algorithm))

    if data is None:
        say("loading gold")
        data = load_gold(settings, progress=say)
    _check_trainable(data, tuning.cv_folds)
    train, test, oot = (data.window(w) for w in WINDOWS)
    fs = data.spec

    encoder = FrameEncoder(numeric=list(fs.numeric), categorical=list(fs.categorical)).fit(train)
    X = encoder.transform(train)
    y = train[LABEL].to_numpy().astype(np.int8)
    groups = train["patient_nbr"].to_numpy() if tuning.cv_strategy == "group" else None

    cpus = resolve_n_jobs(tuning.n_jobs)
    fits = tuning.n_iter * tuning.cv_folds
    search_jobs = max(1, min(cpus, fits))
    pipe = Pipeline([
        ("prep", spec.make_preprocessor(len(fs.numeric), len(fs.categorical))),
        ("model", spec.make_estimator(seed, 1)),
    ])
    search = RandomizedSearchCV(
        pipe,
        space,
        n_iter=tuning.n_iter,
        scoring="roc_auc",  # ranks predict_proba, not hard labels
        cv=make_cv(tuning.cv_strategy, tuning.cv_folds, seed, y, groups),
        n_jobs=search_jobs,
        random_state=seed,
        refit=False,
        error_score="raise",
        pre_dispatch="2*n_jobs",
    )
    say(f"searching {tuning.n_iter} candidates x {tuning.cv_folds} {tuning.cv_strategy} folds "
        f"on {X.shape[0]} rows x {X.shape[1]} features ({search_jobs} parallel fits)")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*n_iter.*greater than the total space.*")
        search.fit(X, y, groups=groups)
    search_seconds = time.perf_counter() - t0
    best_i = int(search.best_index_)
    fold_scores = [float(search.cv_results_[f"split{k}_test_score"][best_i]) for k in range(tuning.cv_folds)]

    say(f"best CV ROC-AUC {search.best_score_:.4f}; refitting on the whole train window")
    t0 = time.perf_counter()
    best = clone(pipe).set_params(**search.best_params_)
    if spec.threads_param:  # the refit is alone: give it every core
        best.set_params(**{f"model__{spec.threads_param}": cpus})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        best.fit(X, y)
    if spec.threads_param:  # scoring elsewhere (Airflow workers): stay single-threaded
        best.set_params(**{f"model__{spec.threads_param}": 1})
    refit_seconds = time.perf_counter() - t0
    model = Pipeline([("frame", encoder), ("prep", best.named_steps["prep"]), ("model", best.named_steps["model"])])

    say("evaluating on test and out-of-time windows")
    y_test, p_test = test[LABEL].to_numpy().astype(int), predict_proba(model, test)
    y_oot, p_oot = oot[LABEL].to_numpy().astype(int), predict_proba(model, oot)
    rule = tc.threshold.rule
    threshold = choose_threshold(y_test, p_test, rule, tc.threshold.target_recall)
    performance = {
        "test": evaluate_window(test, y_test, p_test, threshold, by_month=True),
        "oot": evaluate_window(oot, y_oot, p_oot, threshold, by_month=True),
    }
    counts = data.counts()
    metadata: dict[str, Any] = {
        "model_name": cfg.model.model_name,
        "algorithm": algorithm,
        "training_date": datetime.now(UTC).isoformat(),
        "temporal_splits": cfg.temporal_splits.model_dump(mode="json"),
        "features": {"numeric": list(fs.numeric), "categorical": list(fs.categorical)},
        "feature_count": len(fs.features),
        "model_input": MODEL_INPUT,
        "training_samples": counts["train"]["rows"],
        "test_samples": counts["test"]["rows"],
        "oot_samples": counts["oot"]["rows"],
        "positives": {w: counts[w]["positives"] for w in WINDOWS},
        "exclude_death_hospice": tc.exclude_death_hospice,
        "excluded_death_hospice": data.excluded_death_hospice.get("total", 0),
        "excluded_death_hospice_by_window": {w: data.excluded_death_hospice.get(w, 0) for w in WINDOWS},
        "unlabelled_rows_dropped": data.unlabelled,
        "performance": performance,
        "threshold": {"value": threshold, "rule": rule, "target_recall": tc.threshold.target_recall,
                      "chosen_on": "test"},
        "best_params": jsonable({k.removeprefix("model__"): v for k, v in search.best_params_.items()}),
        "cv": {
            "strategy": tuning.cv_strategy,
            "folds": tuning.cv_folds,
            "n_iter": tuning.n_iter,
            "scoring": "roc_auc",
            "best_mean_auc_roc": float(search.best_score_),
            "best_std_auc_roc": float(search.cv_results_["std_test_score"][best_i]),
            "best_fold_auc_roc": fold_scores,
            "candidates": _candidates_summary(search.cv_results_),
        },
        "search_space": describe_space(space),
        "preprocessing": spec.preprocessing,
        "config": cfg.to_json_dict(),
        "config_uri": settings.config_uri,
        "datamart_uri": settings.datamart_uri,
        "gold_partitions": data.partitions,
        "versions": library_versions(),
        "git_revision": git_revision(),
        "seed": seed,
        "n_jobs": {"search": search_jobs, "refit": cpus},
        "search_seconds": round(search_seconds, 3),
        "refit_seconds": round(refit_seconds, 3),
        "warnings": leakage_warnings(performance),
    }
    metadata["training_seconds"] = round(time.perf_counter() - started, 3)
    say("saving to the registry")
    saved = Registry.for_settings(settings).save(algorithm, model, jsonable(metadata))
    say(f"saved version {saved['version']} (test ROC-AUC {performance['test']['auc_roc']:.4f}, "
        f"oot ROC-AUC {performance['oot']['auc_roc']:.4f}, {metadata['training_seconds']:.1f}s)")
    return saved


def train_algorithms(
    settings: Settings,
    algorithms: Sequence[str] | None = None,
    *,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Train several algorithms one after the other (default: every configured one), reading gold once."""
    chosen = list(algorithms or settings.config.training_config.algorithms)
    for name in chosen:
        if name not in KNOWN_ALGORITHMS:
            raise ReadmitInputError(f"unknown algorithm {name!r}", fix=f"use one of: {', '.join(KNOWN_ALGORITHMS)}")
    if progress:
        progress("loading gold")
    data = load_gold(settings, progress=progress)
    return [train_algorithm(settings, name, progress=progress, data=data) for name in chosen]
