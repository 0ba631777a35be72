"""serving/ab.py (named apart from tests/monitoring/test_ab.py): stable buckets, the configured share, arms on every prediction."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from readmit.config import ABTest
from readmit.data.layers import PREDICTIONS
from readmit.errors import ArtifactError, ReadmitInputError
from readmit.registry import Registry
from readmit.registry.aliases import set_alias
from readmit.serving.ab import BUCKETS, bucket_of, buckets, challenger_mask
from readmit.serving.predict import predict
from readmit.storage import Storage


def test_a_bucket_is_sha256_of_salt_and_patient_modulo_10000():
    digest = hashlib.sha256(b"exp-7:8222157").digest()
    assert bucket_of("exp-7", 8222157) == int.from_bytes(digest[:8], "big") % 10_000
    assert bucket_of("exp-7", 8222157) == bucket_of("exp-7", np.int64(8222157))
    patients = np.arange(1, 1001, dtype=np.int64)
    assert (buckets("exp-7", patients) != buckets("exp-8", patients)).mean() > 0.99  # a new salt reshuffles


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 10**9), min_size=1, max_size=200), st.randoms(use_true_random=False))
def test_buckets_do_not_depend_on_row_order_or_batching(patients, rnd):
    arr = np.array(patients, dtype=np.int64)
    expected = [bucket_of("s", p) for p in patients]
    assert buckets("s", arr).tolist() == expected
    order = list(range(len(patients)))
    rnd.shuffle(order)
    assert buckets("s", arr[order]).tolist() == [expected[i] for i in order]
    cut = len(patients) // 2
    assert np.concatenate([buckets("s", arr[:cut]), buckets("s", arr[cut:])]).tolist() == expected


def test_the_challenger_gets_its_share_of_patients():
    patients = np.arange(1, 200_001, dtype=np.int64)
    share = challenger_mask(ABTest(enabled=True, challenger_share=0.2, salt="x"), patients).mean()
    assert share == pytest.approx(0.2, abs=0.005)
    assert buckets("x", patients).max() < BUCKETS


def _ab_settings(small_models, tmp_path, **test):
    settings = small_models.settings({"inference_config": {"ab_test": {"enabled": True, **test}}}, tmp_path)
    registry = Registry(settings.registry_uri)
    models = small_models.models()
    set_alias(registry, "champion", "xgboost", models["xgboost"], reason="test", by="tests")
    set_alias(registry, "challenger", "logistic_regression", models["logistic_regression"], reason="test", by="tests")
    return settings


def test_scoring_splits_patients_between_arms_and_a_patient_keeps_its_arm(small_models_copy, tmp_path):
    settings = _ab_settings(small_models_copy, tmp_path, challenger_share=0.3, salt="trial-1")
    result = predict(settings, "2008-01", "2008-06").as_dict()
    assert [m["arm"] for m in result["models"]] == ["champion", "challenger"]
    assert result["ab_test"]["salt"] == "trial-1" and result["ab_test"]["challenger_share"] == 0.3
    out = Storage(settings.datamart_uri).read_table(PREDICTIONS)
    per_arm = out.group_by("arm").agg(pl.col("algorithm").unique(), pl.col("alias").unique(), pl.len())
    arms = {r["arm"]: r for r in per_arm.iter_rows(named=True)}
    assert arms["champion"]["algorithm"] == ["xgboost"] and arms["champion"]["alias"] == ["champion"]
    assert arms["challenger"]["algorithm"] == ["logistic_regression"]
    assert arms["challenger"]["len"] / out.height == pytest.approx(0.3, abs=0.05)
    assert result["arms"] == {"champion": arms["champion"]["len"], "challenger": arms["challenger"]["len"]}
    # every patient's rows sit in one arm, the arm its bucket says
    assert out.group_by("patient_nbr").agg(pl.col("arm").n_unique())["arm"].max() == 1
    expected = np.where(buckets("trial-1", out["patient_nbr"].to_numpy()) < 3000, "challenger", "champion")
    assert out["arm"].to_list() == expected.tolist()


def test_changing_the_share_mid_test_is_refused_unless_the_salt_changes(small_models_copy, tmp_path):
    predict(_ab_settings(small_models_copy, tmp_path, challenger_share=0.1, salt="trial-1"), "2008-01", "2008-01")
    with pytest.raises(ReadmitInputError) as exc:
        predict(_ab_settings(small_models_copy, tmp_path, challenger_share=0.5, salt="trial-1"), "2008-02", "2008-02")
    message = str(exc.value)
    assert "challenger_share changed from 0.1 to 0.5" in message and "salt" in message.split("Fix:")[1]
    assert "ab_test.json" in message
    assert Storage(small_models_copy.datamart).list_partitions(PREDICTIONS) == ["2008-01"]
    result = predict(_ab_settings(small_models_copy, tmp_path, challenger_share=0.5, salt="trial-2"), "2008-02", "2008-02")
    assert result.ab_test["salt"] == "trial-2"


def test_an_enabled_test_without_a_challenger_says_how_to_get_one(small_models_copy, tmp_path):
    settings = small_models_copy.settings({"inference_config": {"ab_test": {"enabled": True}}}, tmp_path)
    set_alias(Registry(settings.registry_uri), "champion", "xgboost", small_models_copy.models()["xgboost"],
              reason="test", by="tests")
    with pytest.raises(ArtifactError, match="no challenger") as exc:
        predict(settings, "2008-01", "2008-01")
    assert "readmit promote" in str(exc.value)
