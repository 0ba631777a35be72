"""Loading gold and cutting it into train / test / oot windows."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from readmit.config import Window
from readmit.data.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from readmit.errors import ReadmitInputError
from readmit.training.split import FeatureSpec, load_gold, months_of


def test_months_of_a_window():
    assert months_of(Window(start_date=date(2005, 11, 15), end_date=date(2006, 2, 1))) == [
        "2005-11", "2005-12", "2006-01", "2006-02"]


def test_feature_spec_comes_from_the_feature_definitions():
    spec = FeatureSpec.default()
    assert spec.numeric == NUMERIC_FEATURES and spec.categorical == CATEGORICAL_FEATURES
    assert spec.keys == ("encounter_id", "patient_nbr", "snapshot_date")


def test_load_gold_windows_labels_and_death_hospice(make_settings):
    data = load_gold(make_settings())
    frame = data.frame
    splits = make_settings().config.temporal_splits
    for name in ("train", "test", "oot"):
        w = getattr(splits, name)
        part = data.window(name)
        assert part.height > 0
        assert part["snapshot_date"].min() >= w.start_date and part["snapshot_date"].max() <= w.end_date
    assert frame["death_or_hospice"].sum() == 0  # left out
    assert data.excluded_death_hospice["total"] > 0
    assert data.excluded_death_hospice["total"] == sum(data.excluded_death_hospice[w] for w in ("train", "test", "oot"))
    assert frame["label"].dtype == pl.Int8
    assert frame.select(pl.col("snapshot_date").is_sorted()).item()
    assert set(data.partitions) == {"gold/feature_store", "gold/label_store"}
    assert all(v.startswith("rows=") for v in data.partitions["gold/feature_store"].values())


def test_keeping_death_hospice_when_configured(make_settings):
    kept = load_gold(make_settings({"training_config": {"exclude_death_hospice": False}}), fingerprints=False)
    dropped = load_gold(make_settings(), fingerprints=False)
    assert kept.excluded_death_hospice == {}
    assert kept.frame.height == dropped.frame.height + dropped.excluded_death_hospice["total"]


def test_windows_may_cut_through_a_month(make_settings):
    data = load_gold(make_settings({"temporal_splits": {
        "train": {"start_date": "1999-01-01", "end_date": "2005-12-15"},
        "test": {"start_date": "2005-12-16", "end_date": "2007-12-31"},
        "oot": {"start_date": "2008-01-01", "end_date": "2008-12-31"},
    }}), fingerprints=False)
    assert data.window("train")["snapshot_date"].max() <= date(2005, 12, 15)
    assert data.window("test")["snapshot_date"].min() >= date(2005, 12, 16)


def test_no_gold_is_a_clear_error(make_settings, tmp_path):
    with pytest.raises(ReadmitInputError, match="no gold partitions") as err:
        load_gold(make_settings(datamart=str(tmp_path / "empty")))
    assert "readmit medallion" in str(err.value)
