"""The pre-training gates: every pass and fail path."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from readmit.checks import CheckResult
from readmit.config import ReadmitConfig, Settings, load_settings
from readmit.data.layers import FEATURE_STORE
from readmit.storage import Storage
from readmit.training.gates import (
    GATES,
    check_gold_data_exists,
    check_model_config,
    check_single_source,
    check_sufficient_training_data,
    check_temporal_leakage,
    run_checks,
)
from training.gold_fixtures import synthetic_gold_frames, write_gold

CONFS = Path(__file__).resolve().parents[1] / "confs"
AS_OF = date(2024, 1, 1)


def test_gates_are_ordered_and_results_serialise(make_settings):
    assert [g.__name__ for g in GATES] == ["check_model_config", "check_gold_data_exists",
                                           "check_sufficient_training_data", "check_temporal_leakage",
                                           "check_single_source"]
    results = run_checks(make_settings(), as_of=AS_OF)
    assert [r.name for r in results] == ["model_config", "gold_data_exists", "sufficient_training_data",
                                         "temporal_leakage", "single_source"]
    assert all(r.passed for r in results), [r.reason for r in results]
    json.dumps([r.as_dict() for r in results])  # JSON-safe
    assert set(results[0].as_dict()) == {"name", "passed", "reason", "details"}


# -- model_config ------------------------------------------------------------------------------


def test_model_config_passes_for_a_valid_file_and_for_defaults(make_settings, synthetic_gold):
    assert check_model_config(make_settings()).passed
    defaults = Settings(ReadmitConfig(), None, None, synthetic_gold, "unused")
    result = check_model_config(defaults)
    assert result.passed and "built-in defaults" in result.reason


def test_model_config_revalidates_the_file_and_lists_every_problem(make_settings, write_config):
    settings = make_settings()
    # the file changed after the settings were loaded (as between an Airflow parse and the run)
    Path(settings.config_uri).write_text((CONFS / "invalid" / "many_problems.json").read_text())
    result = check_model_config(settings)
    assert not result.passed
    assert len(result.details["problems"]) >= 3
    assert "training_config.hyperparameter_tuning.n_iter" in result.reason
    assert "Fix:" in result.reason and "readmit config validate" in result.reason


def test_model_config_fails_on_overlapping_windows(make_settings):
    settings = make_settings()
    Path(settings.config_uri).write_text((CONFS / "invalid" / "overlapping_windows.json").read_text())
    result = check_model_config(settings)
    assert not result.passed and "must not overlap" in result.reason


def test_model_config_fails_on_a_bad_search_space(make_settings):
    result = check_model_config(make_settings({"training_config": {"search_spaces": {
        "xgboost": {"depth": [2]}, "random_forest": {"max_depth": {"distribution": "gauss"}}}}}))
    assert not result.passed
    assert len(result.details["problems"]) == 2
    assert "xgboost has no parameter 'depth'" in result.reason


def test_model_config_fails_when_the_file_is_gone(make_settings):
    settings = make_settings()
    Path(settings.config_uri).unlink()
    result = check_model_config(settings)
    assert not result.passed and "config file not found" in result.reason and "Fix:" in result.reason


# -- gold_data_exists ------------------------------------------------------------------------


def test_gold_exists_passes(make_settings):
    result = check_gold_data_exists(make_settings())
    assert result.passed and "120 monthly partitions" in result.reason
    assert result.details[FEATURE_STORE]["first"] == "1999-01"


def test_gold_exists_fails_on_an_empty_datamart(make_settings, tmp_path):
    result = check_gold_data_exists(make_settings(datamart=str(tmp_path / "nothing")))
    assert not result.passed
    assert "gold/feature_store" in result.reason and "gold/label_store" in result.reason
    assert "readmit medallion" in result.reason


def test_gold_exists_fails_when_labels_are_missing(make_settings, tmp_path):
    uri = str(tmp_path / "dm")
    write_gold(uri, *synthetic_gold_frames(rows=2000), tables=(FEATURE_STORE,))
    result = check_gold_data_exists(make_settings(datamart=uri))
    assert not result.passed and "gold/label_store" in result.reason


def test_gold_exists_fails_when_tables_disagree(make_settings, tmp_path):
    uri = str(tmp_path / "dm")
    write_gold(uri, *synthetic_gold_frames(rows=2000))
    Storage(uri).delete("gold/label_store/snapshot_month=2003-04", recursive=True)
    result = check_gold_data_exists(make_settings(datamart=uri))
    assert not result.passed
    assert result.details["months_without_labels"] == ["2003-04"]
    assert "--start 2003-04 --end 2003-04" in result.reason


# -- sufficient_training_data ----------------------------------------------------------------


def test_sufficient_passes_with_counts(make_settings):
    result = check_sufficient_training_data(make_settings())
    assert result.passed
    assert result.details["train_partitions"] == 84
    w = result.details["windows"]
    assert w["train"]["rows"] > w["test"]["rows"] > w["oot"]["rows"] > 0
    assert all(w[k]["positives"] > 0 for k in w)


def test_sufficient_fails_on_too_few_train_partitions(make_settings):
    result = check_sufficient_training_data(make_settings({"training_config": {"min_train_partitions": 100}}))
    assert not result.passed
    assert "84 monthly gold partition(s), fewer than training_config.min_train_partitions=100" in result.reason
    assert "Fix:" in result.reason


def test_sufficient_fails_on_rows_and_positives(make_settings):
    result = check_sufficient_training_data(make_settings({"training_config": {
        "min_rows_per_window": 1000, "min_positives_per_window": 150}}))
    assert not result.passed
    assert "the oot window has" in result.reason and "min_rows_per_window=1000" in result.reason
    assert "min_positives_per_window=150" in result.reason


def test_sufficient_counts_exclude_death_hospice(make_settings):
    excluded = check_sufficient_training_data(make_settings()).details["windows"]["train"]["rows"]
    kept = check_sufficient_training_data(
        make_settings({"training_config": {"exclude_death_hospice": False}})).details["windows"]["train"]["rows"]
    assert kept > excluded


def test_sufficient_fails_on_missing_partitions(make_settings, tmp_path):
    uri = str(tmp_path / "dm")
    features, labels = synthetic_gold_frames(rows=3000)
    keep = pl.col("snapshot_date") >= date(2005, 6, 1)
    write_gold(uri, features.filter(keep), labels.filter(keep))
    result = check_sufficient_training_data(make_settings(datamart=uri))
    assert not result.passed and "has 7 monthly gold partition(s)" in result.reason


# -- temporal_leakage ------------------------------------------------------------------------


def test_leakage_passes_and_reports_patient_overlap(make_settings):
    result = check_temporal_leakage(make_settings(), as_of=AS_OF)
    assert result.passed, result.reason
    overlap = result.details["patient_overlap"]
    for w in ("test", "oot"):
        assert 0 < overlap[w]["share_seen_in_train"] < 1
        assert overlap[w]["seen_in_train"] <= overlap[w]["patients"]
    assert "informational" in result.reason


def test_leakage_default_as_of_is_today(make_settings):
    result = check_temporal_leakage(make_settings())
    assert result.passed and result.details["as_of"] == date.today().isoformat()


def test_leakage_fails_on_overlapping_windows(make_settings):
    data = json.loads((CONFS / "invalid" / "overlapping_windows.json").read_text())
    cfg = ReadmitConfig.model_validate(data)  # types are fine; the overlap is semantic
    settings = replace(make_settings(), config=cfg)
    result = check_temporal_leakage(settings, as_of=AS_OF)
    assert not result.passed
    assert "temporal_splits.test.start_date" in result.reason and "must not overlap" in result.reason
    assert "Fix:" in result.reason


def test_leakage_fails_on_immature_labels(make_settings):
    result = check_temporal_leakage(make_settings(), as_of=date(2009, 1, 15))
    assert not result.passed
    assert "oot window ends 2008-12-31: its labels mature on 2009-01-30" in result.reason
    assert "end every window on or before 2008-12-16" in result.reason
    ok = check_temporal_leakage(make_settings({"training_config": {"label_maturity_days": 0}}),
                                as_of=date(2009, 1, 15))
    assert ok.passed


def test_leakage_fails_on_a_training_row_dated_in_test(make_settings, tmp_path):
    uri = str(tmp_path / "dm")
    write_gold(uri, *synthetic_gold_frames(rows=3000))
    storage = Storage(uri)
    part = storage.read_partition(FEATURE_STORE, "2005-12")
    moved = part.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(date(2006, 2, 1))).otherwise(pl.col("snapshot_date"))
        .alias("snapshot_date"))
    storage.write_partition(FEATURE_STORE, "2005-12", moved)
    result = check_temporal_leakage(make_settings(datamart=uri), as_of=AS_OF)
    assert not result.passed
    assert "stored in a partition of another month" in result.reason
    assert "training-window partitions are dated inside test/oot" in result.reason
    assert "label row(s) carry a snapshot_date different" in result.reason
    assert "readmit medallion --layer gold" in result.reason


def test_leakage_passes_when_windows_cut_through_a_month(make_settings):
    # 2005-12 belongs to train (to the 15th) and to test (from the 16th): its late rows are test rows
    settings = make_settings({"temporal_splits": {
        "train": {"start_date": "1999-01-01", "end_date": "2005-12-15"},
        "test": {"start_date": "2005-12-16", "end_date": "2007-12-31"},
        "oot": {"start_date": "2008-01-01", "end_date": "2008-12-31"},
    }})
    result = check_temporal_leakage(settings, as_of=AS_OF)
    assert result.passed, result.reason


def test_leakage_fails_on_an_encounter_in_two_windows(make_settings, tmp_path):
    uri = str(tmp_path / "dm")
    features, labels = synthetic_gold_frames(rows=3000)
    write_gold(uri, features, labels)
    storage = Storage(uri)
    train_id = storage.read_partition(FEATURE_STORE, "2004-01")["encounter_id"][0]
    part = storage.read_partition(FEATURE_STORE, "2008-05")
    storage.write_partition(FEATURE_STORE, "2008-05", part.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(train_id).otherwise(pl.col("encounter_id")).alias("encounter_id")))
    result = check_temporal_leakage(make_settings(datamart=uri), as_of=AS_OF)
    assert not result.passed and "1 encounter_id(s) appear in more than one window" in result.reason


def test_leakage_reports_purged_rows_and_date_order(make_settings):
    result = check_temporal_leakage(make_settings(), as_of=AS_OF)
    assert result.passed, result.reason
    purged = result.details["purged_by_label_horizon"]
    assert purged["train"] > 0 and purged["test"] > 0 and purged["oot"] == 0
    assert f"train {purged['train']}, test {purged['test']} rows" in result.reason
    assert result.details["date_order_contradictions"] == 0  # synthetic dates follow encounter order
    sufficient = check_sufficient_training_data(make_settings())
    unpurged = check_sufficient_training_data(make_settings({"training_config": {"label_maturity_days": 0}}))
    for w in ("train", "test"):  # the counts are those training will see
        assert (unpurged.details["windows"][w]["rows"] - sufficient.details["windows"][w]["rows"]) > 0


def test_leakage_fails_windows_that_the_label_horizon_would_swallow(make_settings):
    settings = make_settings({"temporal_splits": {
        "train": {"start_date": "1999-01-01", "end_date": "2005-12-31"},
        "test": {"start_date": "2006-01-01", "end_date": "2006-01-20"},
        "oot": {"start_date": "2006-01-21", "end_date": "2008-12-31"},
    }})
    result = check_temporal_leakage(settings, as_of=AS_OF)
    assert not result.passed
    assert "every test row's 30-day label horizon reaches the oot window" in result.reason
    assert "Fix:" in result.reason


def test_leakage_fails_without_gold(make_settings, tmp_path):
    result = check_temporal_leakage(make_settings(datamart=str(tmp_path / "none")), as_of=AS_OF)
    assert not result.passed and "readmit medallion" in result.reason


# -- run_checks --------------------------------------------------------------------------------


def test_run_checks_reports_expected_failures_without_raising(make_settings, tmp_path, monkeypatch):
    results = run_checks(make_settings(datamart=str(tmp_path / "none")), as_of=AS_OF)
    assert [r.passed for r in results] == [True, False, False, False, False]

    def unreachable(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr("readmit.training.gates.Storage.list_partitions", unreachable)
    results = run_checks(make_settings(), as_of=AS_OF)
    assert not results[1].passed
    assert "could not read its data (OSError: disk on fire)" in results[1].reason and "Fix:" in results[1].reason
    assert isinstance(results[1], CheckResult)


def test_a_bug_inside_a_gate_is_raised_not_reported_as_a_failed_gate(make_settings, monkeypatch):
    """A gate fails only on expected findings; a bug (here: a lower function returning the wrong
    type) is an exception that reaches the caller."""
    monkeypatch.setattr("readmit.training.gates.Storage.list_partitions", lambda self, table: 2005)
    with pytest.raises(TypeError):
        check_gold_data_exists(make_settings())
    with pytest.raises(TypeError):
        run_checks(make_settings(), as_of=AS_OF)


def test_readmit_check_exits_1_with_the_error_on_a_bug(make_settings, monkeypatch):
    from typer.testing import CliRunner

    from readmit.cli import app

    settings = make_settings()
    args = ["check", "--config", settings.config_uri, "--datamart", settings.datamart_uri, "--as-of", "2024-01-01"]
    ok = CliRunner().invoke(app, args)
    assert ok.exit_code == 0, ok.output
    monkeypatch.setattr("readmit.training.gates.Storage.list_partitions", lambda self, table: 2005)
    broken = CliRunner().invoke(app, args)
    assert broken.exit_code == 1
    assert "unexpected TypeError" in broken.stderr  # the error itself, not a "gate failed" line
    assert "gate gold_data_exists failed" not in broken.stderr


@pytest.mark.slow
def test_checks_on_an_s3_datamart(s3_uri, write_config):
    write_gold(f"{s3_uri}/dm", *synthetic_gold_frames(rows=1500, first_day=date(2005, 1, 1)))
    settings = load_settings(write_config(), datamart=f"{s3_uri}/dm", registry=f"{s3_uri}/reg")
    results = run_checks(settings, as_of=AS_OF)
    assert all(r.passed for r in results), [r.reason for r in results if not r.passed]


def test_a_gate_called_alone_reports_a_bad_location_as_a_failed_gate(make_settings):
    settings = make_settings(datamart="ftp://nowhere/datamart")
    for gate in GATES[1:]:
        result = gate(settings)
        assert isinstance(result, CheckResult) and not result.passed
        assert "unsupported storage location" in result.reason and "Fix:" in result.reason


# -- one raw source ------------------------------------------------------------------------------


def _gold_from_two_files(tmp_path) -> str:
    """Synthetic gold whose months up to 2004 come from one raw file and later ones from another
    (no encounter id shared: every other gate passes)."""
    features, labels = synthetic_gold_frames()
    sha = pl.when(pl.col("snapshot_date") < date(2005, 1, 1)).then(pl.lit("a" * 64)).otherwise(pl.lit("b" * 64))
    uri = str(tmp_path / "mixed")
    write_gold(uri, features, labels.with_columns(sha.alias("_source_sha256")))
    return uri


def test_windows_from_two_raw_files_fail_the_single_source_gate(make_settings, tmp_path):
    settings = make_settings(datamart=_gold_from_two_files(tmp_path))
    others = run_checks(settings, as_of=AS_OF)[:-1]
    assert all(r.passed for r in others), [r.reason for r in others]  # nothing else notices
    result = check_single_source(settings)
    assert not result.passed
    assert result.reason.startswith("the windows' gold months come from 2 different raw files (aaaaaaaaaaaa… in ")
    assert "Fix: rebuild every month from one raw file" in result.reason
    assert result.details["sources"]["b" * 64]["first"] == "2005-01"


def test_mixed_sources_only_warn_when_configured(make_settings, tmp_path):
    settings = make_settings({"data_config": {"mixed_sources": "warn"}}, datamart=_gold_from_two_files(tmp_path))
    result = check_single_source(settings)
    assert result.passed and result.reason.startswith("warning: the windows' gold months come from 2")


def test_one_raw_file_passes_and_unrecorded_sources_are_said(make_settings, tmp_path):
    features, labels = synthetic_gold_frames()
    uri = str(tmp_path / "one")
    write_gold(uri, features, labels.with_columns(pl.lit("c" * 64).alias("_source_sha256")))
    result = check_single_source(make_settings(datamart=uri))
    assert result.passed and "from one raw file (sha256 cccccccccccc…)" in result.reason
    older = check_single_source(make_settings())  # gold written before sources were recorded
    assert older.passed and "record no source" in older.reason
