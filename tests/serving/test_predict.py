"""Batch inference on the small registry (synthetic gold, three models): the predictions table, its contract, and bad input."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from read_only import own_copy
from readmit import pipeline
from readmit.data.layers import FEATURE_STORE, LABEL_STORE, PREDICTIONS
from readmit.errors import ArtifactError, ReadmitInputError
from readmit.registry import Registry
from readmit.registry.aliases import set_alias
from readmit.serving.batch import PREDICTION_COLUMNS
from readmit.serving.predict import predict
from readmit.storage import Storage
from readmit.training import predict_proba

OOT = ("2008-01", "2008-03")


def champion(small_models, algorithm: str = "xgboost") -> dict:
    settings = small_models.settings()
    registry = Registry(settings.registry_uri)
    set_alias(registry, "champion", algorithm, small_models.models()[algorithm], reason="test", by="tests")
    return settings


def test_predictions_follow_the_contract_and_equal_the_model_scores(small_models_copy):
    settings = champion(small_models_copy)
    result = predict(settings, *OOT).as_dict()
    storage = Storage(settings.datamart_uri)
    assert storage.list_partitions(PREDICTIONS) == ["2008-01", "2008-02", "2008-03"]
    out = storage.read_partition(PREDICTIONS, "2008-02")
    assert tuple(out.columns) == PREDICTION_COLUMNS
    assert out.schema["risk"] == pl.Float64 and out.schema["flag"] == pl.Boolean
    assert out.schema["top_reasons"] == pl.List(pl.String)
    assert set(out["arm"]) == {"champion"} and set(out["alias"]) == {"champion"}
    assert set(out["algorithm"]) == {"xgboost"} and set(out["version"]) == {small_models_copy.models()["xgboost"]}

    # the stored risk is the registered model's probability for the same gold rows
    gold = storage.read_partition(FEATURE_STORE, "2008-02").filter(~pl.col("death_or_hospice"))
    model, meta = Registry(settings.registry_uri).load("xgboost", small_models_copy.models()["xgboost"])
    assert out["encounter_id"].to_list() == gold["encounter_id"].to_list()
    np.testing.assert_allclose(out["risk"].to_numpy(), predict_proba(model, gold), rtol=1e-6)
    assert (out["flag"] == (out["risk"] >= meta["threshold"]["value"])).all()
    cut = settings.config.inference_config.risk_bands
    expected_band = [cut.labels[int(np.searchsorted(cut.cut_points, r, side="right"))] for r in out["risk"]]
    assert out["risk_band"].to_list() == expected_band
    lengths = out["top_reasons"].list.len()
    assert lengths.max() == 3 and lengths.min() >= 0
    assert set(out["top_reasons"].explode().drop_nulls()) <= set(meta["features"]["numeric"]) | set(
        meta["features"]["categorical"])

    month = next(m for m in result["months"] if m["month"] == "2008-02")
    died = storage.read_partition(FEATURE_STORE, "2008-02")["death_or_hospice"].sum()
    assert month["excluded_death_hospice"] == died > 0
    assert month["scored"] == out.height and month["flagged"] == int(out["flag"].sum())
    assert month["mean_risk"] == pytest.approx(out["risk"].mean())
    assert result["scored"] == sum(m["scored"] for m in result["months"])


def test_a_rerun_replaces_its_month_and_nothing_else(small_models_copy):
    settings = champion(small_models_copy)
    predict(settings, *OOT)
    storage = Storage(settings.datamart_uri)
    before = {m: storage.read_partition(PREDICTIONS, m) for m in ("2008-01", "2008-03")}
    set_alias(Registry(settings.registry_uri), "champion", "logistic_regression",
              small_models_copy.models()["logistic_regression"], reason="test", by="tests")
    predict(settings, "2008-02", "2008-02")
    assert set(storage.read_partition(PREDICTIONS, "2008-02")["algorithm"]) == {"logistic_regression"}
    for month, frame in before.items():
        assert storage.read_partition(PREDICTIONS, month).equals(frame)
    assert storage.list_partitions(PREDICTIONS) == ["2008-01", "2008-02", "2008-03"]


def test_reason_codes_per_algorithm(small_models_copy):
    settings = champion(small_models_copy, "random_forest")
    result = predict(settings, "2008-01", "2008-01").as_dict()
    out = Storage(settings.datamart_uri).read_partition(PREDICTIONS, "2008-01")
    assert out["top_reasons"].to_list() == [["unavailable"]] * out.height
    assert result["models"][0]["reasons"] == "unavailable"

    set_alias(Registry(settings.registry_uri), "champion", "logistic_regression",
              small_models_copy.models()["logistic_regression"], reason="test", by="tests")
    predict(settings, "2008-01", "2008-01")
    out = Storage(settings.datamart_uri).read_partition(PREDICTIONS, "2008-01")
    assert out["top_reasons"].list.len().max() == 3


def test_no_gold_for_a_month_names_it_and_the_command_that_builds_it(small_models_copy):
    settings = champion(small_models_copy)
    with pytest.raises(ReadmitInputError) as exc:
        predict(settings, "2008-11", "2009-02")
    message = str(exc.value)
    assert exc.value.exit_code == 2
    assert "2009-01, 2009-02" in message and "2008-11" not in message.split("Fix")[0]
    assert "readmit medallion --start 2009-01 --end 2009-02" in message
    assert not Storage(settings.datamart_uri).list_partitions(PREDICTIONS)  # nothing half-done


def test_feature_columns_or_types_that_do_not_match_are_named(small_models_copy):
    settings = champion(small_models_copy)
    storage = Storage(settings.datamart_uri)
    own_copy(storage.path(FEATURE_STORE))  # the gold tables are links to the shared build's: this test changes one
    gold = storage.read_partition(FEATURE_STORE, "2008-04")
    broken = gold.drop("number_inpatient").with_columns(pl.col("age_midpoint").cast(pl.String),
                                                         pl.col("race").cast(pl.Categorical).to_physical())
    storage.write_partition(FEATURE_STORE, "2008-04", broken)
    with pytest.raises(ReadmitInputError) as exc:
        predict(settings, "2008-04", "2008-04")
    message = str(exc.value)
    assert "missing column(s) number_inpatient" in message
    assert "age_midpoint (String, expected a number)" in message and "race (UInt32, expected text)" in message
    assert "snapshot_month=2008-04" in message
    assert "2008-04" not in storage.list_partitions(PREDICTIONS)


def test_categories_never_seen_in_training_are_scored_and_counted(small_models_copy):
    settings = champion(small_models_copy, "logistic_regression")
    storage = Storage(settings.datamart_uri)
    own_copy(storage.path(FEATURE_STORE))  # the gold tables are links to the shared build's: this test changes one
    gold = storage.read_partition(FEATURE_STORE, "2008-05")
    alive = int((~gold["death_or_hospice"]).sum())
    odd = gold.with_columns(pl.when(pl.int_range(pl.len()) < 7).then(pl.lit("Martian")).otherwise(pl.col("race"))
                            .alias("race"))
    storage.write_partition(FEATURE_STORE, "2008-05", odd)
    result = predict(settings, "2008-05", "2008-05").as_dict()
    dead_among_first = int(gold.head(7)["death_or_hospice"].sum())
    assert result["unseen_categories"]["race"] == 7 - dead_among_first
    assert result["scored"] == alive
    assert Storage(settings.datamart_uri).read_partition(PREDICTIONS, "2008-05")["risk"].is_not_nan().all()


def test_scoring_by_version_and_without_a_champion(small_models_copy):
    settings = small_models_copy.settings()
    with pytest.raises(ArtifactError, match="no champion model yet") as exc:
        predict(settings, "2008-01", "2008-01")
    assert "readmit promote" in str(exc.value)
    version = small_models_copy.models()["logistic_regression"]
    result = predict(settings, "2008-01", "2008-01", version=version).as_dict()
    assert result["models"] == [{"arm": "challenger", "alias": None, "algorithm": "logistic_regression",
                                 "version": version, "threshold": pytest.approx(result["models"][0]["threshold"]),
                                 "reasons": "native", "scoring": "straightforward"}]
    out = Storage(settings.datamart_uri).read_partition(PREDICTIONS, "2008-01")
    assert out["alias"].null_count() == out.height


def test_the_default_month_is_the_latest_gold_month(small_models_copy):
    settings = champion(small_models_copy)
    result = pipeline.predict(settings).as_dict()
    assert [m["month"] for m in result["months"]] == ["2008-12"]


def test_predict_on_s3(small_models_s3):
    settings = champion(small_models_s3)
    result = predict(settings, "2008-01", "2008-02").as_dict()
    storage = Storage(settings.datamart_uri)
    assert storage.list_partitions(PREDICTIONS) == ["2008-01", "2008-02"]
    assert result["table"].startswith("s3://")
    assert storage.read_partition(PREDICTIONS, "2008-02").height == result["months"][1]["scored"]
    assert storage.list_partitions(LABEL_STORE)  # gold untouched
