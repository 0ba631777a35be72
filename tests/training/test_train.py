"""Training end to end on synthetic gold (small budget), and on the real UCI data (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from readmit import pipeline
from readmit.errors import ConfigError, ReadmitInputError
from readmit.pipeline import train_algorithm
from readmit.registry import Registry, sha256_hex
from readmit.storage import Storage
from readmit.training import MODEL_INPUT, predict_proba
from readmit.training.algorithms import make_pipeline
from readmit.training.calibration import fit_with_out_of_fold_scores
from readmit.training.split import load_gold, purge_expr
from readmit.training.train import (
    Tuned,
    fit_final,
    fitted_pipelines,
    make_folds,
    recent_rows,
)
from training.gold_fixtures import synthetic_gold_frames, write_gold

REFERENCE = ("accuracy", "precision", "recall", "f1", "auc_roc")
EXTRA = ("pr_auc", "brier", "log_loss", "gini")


def test_importing_training_is_light():
    code = ("import sys, readmit.training, readmit.training.gates, readmit.registry, readmit.training.compare, readmit.pipeline, "
            "readmit.cli.training_cmd; heavy = [m for m in ('sklearn', 'xgboost', 'scipy', 'pandas') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("algorithm", ["logistic_regression", "random_forest", "xgboost"])
def test_train_algorithm_registers_a_complete_model(make_settings, algorithm):
    settings = make_settings()
    messages: list[str] = []
    meta = train_algorithm(settings, algorithm, progress=messages.append)
    assert any("searching 2 candidates x 2 group folds" in m and "scoring roc_auc" in m for m in messages)

    # metadata: everything the brief lists
    for key in ("model_name", "training_date", "temporal_splits", "feature_count", "training_samples",
                "test_samples", "oot_samples", "performance", "config", "best_params", "cv", "threshold",
                "gold_partitions", "versions", "git_revision", "seed", "training_seconds", "artifact",
                "version", "excluded_death_hospice", "paths", "purged_by_label_horizon", "calibration",
                "label", "temporal_window_mode"):
        assert key in meta, key
    for window in ("test", "oot"):
        perf = meta["performance"][window]
        for metric in (*REFERENCE, *EXTRA):
            assert isinstance(perf[metric], float), (window, metric)
        assert perf["threshold"] == meta["threshold"]["value"]  # chosen on test, applied to oot
        assert set(perf["auc_roc_by_group"]) == {"age_band", "gender", "race"}
        cal = perf["calibration"]
        assert set(cal) == {"brier", "brier_baseline", "brier_skill", "observed_expected", "slope", "intercept",
                            "ece", "reliability"}
        assert cal["brier"] == pytest.approx(perf["brier"], abs=1e-6)
        assert sum(r["count"] for r in cal["reliability"]) == perf["samples"]
        lo, hi = perf["ci"]["auc_roc"]
        assert lo < perf["auc_roc"] < hi and perf["ci"]["unit"] == "patient"
        unseen = perf["unseen_patients"]
        assert 0 < unseen["samples"] < perf["samples"] and unseen["auc_roc"] is not None
    assert set(meta["performance"]["oot"]["auc_roc_by_month"]) == {f"2008-{m:02d}" for m in range(1, 13)}
    assert meta["threshold"]["chosen_on"] == "test"
    assert meta["excluded_death_hospice"] > 0
    assert meta["feature_count"] == len(meta["features"]["numeric"]) + len(meta["features"]["categorical"])
    assert meta["cv"]["n_iter"] == 2 and len(meta["cv"]["candidates"]) == 2
    assert meta["cv"]["scoring"] == "roc_auc" and meta["cv"]["method"] == "random_search"
    assert len(meta["cv"]["best_fold_scores"]) == 2
    assert meta["cv"]["best_mean_score"] == pytest.approx(np.mean(meta["cv"]["best_fold_scores"]))
    assert meta["calibration"]["method"] == "isotonic"
    assert meta["calibration"]["months"] == ["2004-01", "2005-12"]  # the last 24 months of train
    assert 0 < meta["calibration"]["rows"] < meta["training_samples"]
    assert meta["purged_by_label_horizon"]["train"] > 0 and meta["purged_by_label_horizon"]["oot"] == 0
    assert meta["label"]["target"] == "readmitted_within_30_days"
    assert meta["seed"] == 42 and meta["versions"]["scikit-learn"]
    assert meta["gold_partitions"]["gold/feature_store"]["2000-01"].startswith("rows=")
    assert meta["model_input"] == MODEL_INPUT
    assert 0.55 <= meta["performance"]["test"]["auc_roc"] <= 0.9

    # the registry holds it; the model scores raw gold frames by itself
    registry = Registry(settings.registry_uri)
    model, loaded = registry.load(algorithm)
    assert loaded["version"] == meta["version"]
    raw = Storage(settings.datamart_uri).read_table("gold/feature_store", ["2008-03"])
    scores = predict_proba(model, raw)
    assert scores.shape == (raw.height,) and np.all((scores >= 0) & (scores <= 1))
    data = load_gold(settings, fingerprints=False)
    oot = data.window("oot")
    from readmit.training.evaluate import auc
    assert auc(oot["label"].to_numpy(), predict_proba(model, oot)) == pytest.approx(meta["performance"]["oot"]["auc_roc"])
    blob = Storage(settings.registry_uri).read_bytes(f"models/readmission/{algorithm}_v{meta['version']}.pkl")
    assert sha256_hex(blob) == meta["artifact"]["sha256"]


@pytest.mark.parametrize("strategy", ["stratified", "time"])
def test_cv_strategies(make_settings, strategy):
    settings = make_settings({"training_config": {"hyperparameter_tuning": {"cv_strategy": strategy}}})
    meta = train_algorithm(settings, "logistic_regression")
    assert meta["cv"]["strategy"] == strategy
    assert all(0.4 < s < 1 for s in meta["cv"]["best_fold_scores"])


def test_group_folds_keep_each_patient_on_one_side(make_settings):
    settings = make_settings({"training_config": {"hyperparameter_tuning": {"cv_folds": 5}}})
    assert settings.config.training_config.hyperparameter_tuning.cv_strategy == "group"  # the default
    train = load_gold(settings, fingerprints=False).window("train")
    patients = train["patient_nbr"].to_numpy()
    folds = make_folds(train, settings.config.training_config.hyperparameter_tuning, 0)
    assert len(folds) == 5
    assert sorted(np.concatenate([val for _, val in folds]).tolist()) == list(range(train.height))
    for fit_idx, val_idx in folds:
        assert not set(patients[fit_idx]) & set(patients[val_idx])


def test_scoring_is_what_the_search_ranks_by(make_settings):
    settings = make_settings({"training_config": {"hyperparameter_tuning": {"scoring": "neg_brier_score"}}})
    meta = train_algorithm(settings, "logistic_regression")
    assert meta["cv"]["scoring"] == "neg_brier_score"
    assert all(-0.3 < s < 0 for s in meta["cv"]["best_fold_scores"])  # a negated Brier score, not an AUC


def test_preprocessing_is_fitted_inside_each_fold_and_never_on_test(make_settings):
    """A category that only the validation part of fold 0 holds is unknown to fold 0's encoder;
    a category that only the test window holds is unknown to every encoder of the saved model."""
    settings = make_settings()
    data = load_gold(settings, fingerprints=False)
    tuning = settings.config.training_config.hyperparameter_tuning
    train = data.window("train")
    folds = make_folds(train, tuning, 0)
    marked = np.zeros(train.height, dtype=bool)
    marked[folds[0][1]] = True
    train = train.with_columns(pl.when(pl.Series(marked)).then(pl.lit("OnlyInFold0Validation"))
                               .otherwise(pl.col("race")).alias("race"))
    pipe = make_pipeline("logistic_regression", data.spec.numeric, data.spec.categorical, 0)
    # the calibrator's cross-fitted scores: fold 0's pipeline never saw fold 0's validation part
    _, scores, fold_pipes = fit_with_out_of_fold_scores(pipe, train, train["label"].to_numpy(), folds)
    vocabularies = [p.named_steps["frame"].vocabulary_["race"] for p in fold_pipes]
    assert "OnlyInFold0Validation" not in vocabularies[0]
    assert all("OnlyInFold0Validation" in v for v in vocabularies[1:])
    assert not np.isnan(scores).any()  # every training row is scored by a model that did not fit it

    features, labels = synthetic_gold_frames()
    test_only = features.with_columns(
        pl.when(pl.col("snapshot_date") >= date(2006, 1, 1)).then(pl.lit("OnlyInTest")).otherwise(pl.col("race"))
        .alias("race"))
    uri = str(Path(settings.registry_uri).parent / "dm_test_only")
    write_gold(uri, test_only, labels)
    meta = train_algorithm(make_settings(datamart=uri), "xgboost")
    model, _ = Registry(settings.registry_uri).load("xgboost", meta["version"])
    for fitted in fitted_pipelines(model):
        assert "OnlyInTest" not in fitted.named_steps["frame"].vocabulary_["race"]


def test_calibration_rows_are_the_last_months_of_the_training_window(make_settings):
    train = load_gold(make_settings(), fingerprints=False).window("train")
    mask, months = recent_rows(train, 3)
    assert months == ["2005-10", "2005-11", "2005-12"]
    assert train.filter(pl.Series(mask))["snapshot_date"].min() >= date(2005, 10, 1)
    assert train.filter(~pl.Series(mask))["snapshot_date"].max() < date(2005, 10, 1)
    everything, all_months = recent_rows(train, 0)
    assert everything.all() and len(all_months) == 84


def _known_probabilities(n: int, seed: int) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, c = rng.normal(size=n), rng.choice(["a", "b", "c"], n)
    p = 1 / (1 + np.exp(-(-2.4 + 1.0 * x + 0.7 * (c == "a"))))  # prevalence ~ 0.12, like the real data
    return pl.DataFrame({"x": x, "c": c}), (rng.random(n) < p).astype(int), p


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibration_recovers_known_probabilities(method):
    """Scores distorted by class weights are far from the true probabilities; calibrated on the
    folds' held-out parts they come back: Brier close to that of the true probabilities."""
    from readmit.training.evaluate import calibration_metrics
    from readmit.training.train import make_cv

    frame, y, _ = _known_probabilities(8000, 0)
    fresh, y_new, p_true = _known_probabilities(20000, 1)
    folds = list(make_cv("stratified", 5, 0).split(np.zeros((len(y), 1)), y))
    pipe = make_pipeline("random_forest", ["x"], ["c"], 0)
    tuned = Tuned({"model__class_weight": "balanced_subsample", "model__n_estimators": 40,
                   "model__min_samples_leaf": 50}, {}, 1, 0.0)
    distorted, _ = fit_final(pipe, tuned, frame, y, folds, "none", "n_jobs", 1)
    calibrated, info = fit_final(pipe, tuned, frame, y, folds, method, "n_jobs", 1)
    assert info["rows"] == len(y)  # no recent-months mask: every cross-fitted score
    truth = calibration_metrics(y_new, p_true)
    raw = calibration_metrics(y_new, predict_proba(distorted, fresh))
    cal = calibration_metrics(y_new, predict_proba(calibrated, fresh))
    assert raw["brier"] > truth["brier"] + 0.03 and raw["observed_expected"] < 0.5  # weights inflate scores
    assert cal["brier"] < truth["brier"] + 0.004
    assert 0.9 < cal["observed_expected"] < 1.1 and 0.8 < cal["slope"] < 1.2
    assert cal["brier_skill"] > 0


def test_purged_training_rows_leave_no_label_horizon_in_the_next_window(make_settings):
    settings = make_settings()
    splits = settings.config.temporal_splits
    data = load_gold(settings, fingerprints=False)
    train, test = data.window("train"), data.window("test")
    assert train["snapshot_date"].max() < date(2005, 12, 2)  # 2005-12-02 + 30 days = 2006-01-01 = test start
    assert test["snapshot_date"].max() < date(2007, 12, 2)
    assert data.purged["train"] > 0 and data.purged["test"] > 0 and data.purged["oot"] == 0
    assert data.frame.filter(purge_expr(splits, 30)).height == 0
    unpurged = load_gold(make_settings({"training_config": {"label_maturity_days": 0}}), fingerprints=False)
    assert unpurged.purged == {"train": 0, "test": 0, "oot": 0}
    assert unpurged.frame.height > data.frame.height
    assert unpurged.window("train")["snapshot_date"].max() > date(2005, 12, 2)


def test_configured_search_space_and_target_recall_rule(make_settings):
    settings = make_settings({"training_config": {
        "search_spaces": {"xgboost": {"max_depth": [2], "n_estimators": [30, 40]}},
        "threshold": {"rule": "target_recall", "target_recall": 0.7},
    }})
    meta = train_algorithm(settings, "xgboost")
    assert meta["best_params"]["max_depth"] == 2 and meta["best_params"]["n_estimators"] in (30, 40)
    assert meta["threshold"]["rule"] == "target_recall"
    assert meta["performance"]["test"]["recall"] >= 0.7


def test_invalid_search_space_is_a_config_error(make_settings):
    settings = make_settings({"training_config": {"search_spaces": {"random_forest": {"depth": [3]}}}})
    with pytest.raises(ConfigError, match="random_forest has no parameter 'depth'"):
        train_algorithm(settings, "random_forest")


def test_unknown_algorithm_and_empty_window(make_settings):
    with pytest.raises(ReadmitInputError, match="unknown algorithm"):
        train_algorithm(make_settings(), "svm")
    settings = make_settings({"temporal_splits": {
        "train": {"start_date": "1999-01-01", "end_date": "2005-12-31"},
        "test": {"start_date": "2006-01-01", "end_date": "2007-12-31"},
        "oot": {"start_date": "2010-01-01", "end_date": "2010-12-31"},
    }})
    with pytest.raises(ReadmitInputError, match="the oot window has 0 labelled rows"):
        train_algorithm(settings, "logistic_regression")


def test_training_several_algorithms_reads_gold_once_and_trains_each(make_settings, monkeypatch):
    import readmit.training.split as split

    calls = []
    real = split.load_gold
    monkeypatch.setattr(split, "load_gold", lambda *a, **k: calls.append(1) or real(*a, **k))
    metas = pipeline.train(make_settings({"training_config": {"algorithms": ["logistic_regression", "xgboost"]}}))
    assert [m["algorithm"] for m in metas] == ["logistic_regression", "xgboost"]
    assert len(calls) == 1


@pytest.mark.slow
def test_same_seed_same_model(make_settings, tmp_path):
    a = train_algorithm(make_settings(registry=str(tmp_path / "a")), "random_forest")
    b = train_algorithm(make_settings(registry=str(tmp_path / "b")), "random_forest")
    assert a["best_params"] == b["best_params"]
    assert a["performance"]["oot"]["auc_roc"] == b["performance"]["oot"]["auc_roc"]


@pytest.mark.slow
def test_train_with_datamart_and_registry_on_s3(s3_uri, make_settings, synthetic_gold):
    # 2005-2008 only: fewer partitions keep the S3 round trips (and the test) short
    write_gold(f"{s3_uri}/datamart", *synthetic_gold_frames(rows=3000, seed=3, first_day=date(2005, 1, 1)))
    settings = make_settings(datamart=f"{s3_uri}/datamart", registry=f"{s3_uri}/registry")
    meta = train_algorithm(settings, "logistic_regression")
    assert meta["paths"]["artifact"].startswith("s3://")
    model, loaded = Registry(settings.registry_uri).load("logistic_regression")
    assert loaded["artifact"]["sha256"] == meta["artifact"]["sha256"]


# -- the real data ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_gold(uci_zip, tmp_path_factory) -> str:
    """Full gold built from the real UCI zip by the medallion (bronze -> silver -> gold)."""
    from readmit.data.bronze import build_bronze
    from readmit.data.gold import build_gold
    from readmit.data.silver import build_silver

    uri = str(tmp_path_factory.mktemp("uci_datamart"))
    storage = Storage(uri)
    build_bronze(storage, str(uci_zip))
    build_silver(storage)
    build_gold(storage)
    return uri


@pytest.mark.slow
def test_real_uci_end_to_end_auc_is_honest(real_gold, write_config, tmp_path):
    """Every model on the real data: ROC-AUC in [0.6, 0.75] on test and oot (above 0.75 = leakage)."""
    from readmit.config import load_settings
    from readmit.training.compare import compare_models
    from readmit.training.gates import run_checks

    config = write_config({"training_config": {"hyperparameter_tuning": {"n_iter": 3, "cv_folds": 2,
                                                                          "n_jobs": -1}}})
    settings = load_settings(config, datamart=real_gold, registry=str(tmp_path / "registry"))
    results = run_checks(settings)
    assert all(r.passed for r in results), [r.as_dict() for r in results if not r.passed]
    started = time.perf_counter()
    metas = pipeline.train(settings)
    seconds = time.perf_counter() - started
    summary = {m["algorithm"]: (m["performance"]["test"]["auc_roc"], m["performance"]["oot"]["auc_roc"])
               for m in metas}
    print(json.dumps({"seconds": seconds, "auc": summary}))
    for algorithm, (test_auc, oot_auc) in summary.items():
        assert 0.6 <= test_auc <= 0.75, (algorithm, test_auc)
        assert 0.6 <= oot_auc <= 0.75, (algorithm, oot_auc)
    for m in metas:
        assert m["excluded_death_hospice"] > 2000  # ~2.4k death/hospice encounters in the file
        assert m["warnings"] == []
    for m in metas:  # scores are probabilities: calibrated to within 15% on the unseen window
        calibration = m["performance"]["oot"]["calibration"]
        assert 0.85 < calibration["observed_expected"] < 1.15, (m["algorithm"], calibration)
        assert calibration["brier"] < calibration["brier_baseline"], (m["algorithm"], calibration)
    comparison = compare_models(settings)
    assert comparison["recommended"]["test_auc_roc"] == max(t for t, _ in summary.values())  # chosen on test


def test_the_reference_keys_no_tuning_and_a_fixed_threshold_are_honoured(make_settings):
    # the reference project's "hyperparameter_tuning": false and "prediction_threshold": 0.3
    settings = make_settings({"training_config": {"hyperparameter_tuning": False},
                              "inference_config": {"prediction_threshold": 0.3}})
    messages: list[str] = []
    meta = train_algorithm(settings, "logistic_regression", progress=messages.append)
    assert any("searching 1 candidate x 5 group folds" in m for m in messages)
    assert meta["cv"]["method"] == "none" and len(meta["cv"]["candidates"]) == 1
    assert meta["best_params"] == {} and meta["search_space"] == {}
    assert meta["threshold"] == {**meta["threshold"], "value": 0.3, "rule": "fixed", "chosen_on": "fixed"}
    assert meta["performance"]["oot"]["threshold"] == 0.3
    # a window's description is a note: not part of the windows models are compared on
    assert meta["temporal_splits"]["train"] == {"start_date": "1999-01-01", "end_date": "2005-12-31"}
