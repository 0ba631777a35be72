"""Batch scoring on Spark (local mode) writes the predictions the local path writes, on real gold."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from readmit.data.layers import PREDICTIONS
from readmit.errors import ReadmitInputError
from readmit.registry import Registry
from readmit.registry.aliases import set_alias
from readmit.serving.batch import PREDICTION_SCHEMA
from readmit.serving.predict import predict
from readmit.storage import Storage

MONTHS = ("2008-01", "2008-04")


def _read_all(storage: Storage) -> dict[str, pl.DataFrame]:
    return {m: storage.read_partition(PREDICTIONS, m) for m in storage.list_partitions(PREDICTIONS)}


@pytest.mark.slow
def test_spark_scoring_equals_local_scoring_with_both_arms(small_models_copy, tmp_path, spark_session):
    """Champion XGBoost and challenger logistic regression under an A/B test: every row, arm,
    risk (to 1e-9), flag, band and reason the same; the summaries the same."""
    settings = small_models_copy.settings({"inference_config": {"ab_test": {"enabled": True, "challenger_share": 0.3}},
                                         "data_config": {"engine": "spark"}}, tmp_path)
    registry = Registry(settings.registry_uri)
    models = small_models_copy.models()
    set_alias(registry, "champion", "xgboost", models["xgboost"], reason="test", by="tests")
    set_alias(registry, "challenger", "logistic_regression", models["logistic_regression"], reason="test", by="tests")
    storage = Storage(settings.datamart_uri)

    local = predict(settings, *MONTHS, engine="polars").as_dict()
    want = _read_all(storage)
    storage.delete(PREDICTIONS, recursive=True)
    on_spark = predict(settings, *MONTHS).as_dict()  # data_config.engine: spark
    got = _read_all(storage)

    assert on_spark["engine"] == "spark" and local["engine"] == "polars"
    assert list(got) == list(want) == ["2008-01", "2008-02", "2008-03", "2008-04"]
    for month, frame in got.items():
        assert frame.schema == pl.Schema(PREDICTION_SCHEMA)
        assert frame["scored_at"].unique().to_list() == [datetime.fromisoformat(on_spark["scored_at"])]
        assert_frame_equal(frame.drop("scored_at"), want[month].drop("scored_at"),
                           check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
    both = pl.concat(got.values())
    assert set(both["arm"]) == {"champion", "challenger"}
    assert both["top_reasons"].list.len().max() == 3  # reasons from both algorithms
    for key in ("rows", "scored", "excluded_death_hospice", "flagged", "arms", "unseen_categories"):
        assert on_spark[key] == local[key], key
    assert on_spark["excluded_death_hospice"] > 0
    for a, b in zip(on_spark["months"], local["months"], strict=True):
        assert {k: v for k, v in a.items() if k != "mean_risk"} == {k: v for k, v in b.items() if k != "mean_risk"}
        assert a["mean_risk"] == pytest.approx(b["mean_risk"], rel=1e-9)
    assert not storage.exists("_scratch")  # Spark's intermediate result is gone


def test_an_unknown_engine_is_refused_before_anything_is_read(small_models_copy):
    with pytest.raises(ReadmitInputError, match="unknown engine 'pandas'") as caught:
        predict(small_models_copy.settings(), "2008-01", "2008-01", engine="pandas")
    assert "polars, duckdb, spark" in caught.value.fix
