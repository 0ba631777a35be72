"""Loading gold and cutting it into train / test / oot windows."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from readmit.config import Window
from readmit.data.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from readmit.errors import ReadmitInputError
from readmit.training.split import (
    SAMPLE_RULE,
    FeatureSpec,
    describe_sample,
    load_gold,
    months_of,
    patient_hash,
    sample_patients,
)


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


# -- patient sample (training_config.max_rows) -----------------------------------------------------


@pytest.fixture(scope="module")
def uci_encounters(uci_zip) -> pl.DataFrame:
    """encounter_id and patient_nbr of all 101,766 real UCI encounters, in file order."""
    import zipfile

    with zipfile.ZipFile(uci_zip) as zf:
        member = next(n for n in zf.namelist() if n.endswith("diabetic_data.csv"))
        return pl.read_csv(zf.read(member), columns=["encounter_id", "patient_nbr"])


def test_no_sample_without_a_limit_or_under_it(uci_encounters):
    for limit in (None, uci_encounters.height):
        frame, info = sample_patients(uci_encounters, limit, seed=42)
        assert frame is uci_encounters and info is None
    assert "every row" in describe_sample(None)


def test_a_patient_sample_keeps_whole_patients_about_max_rows_and_records_itself(uci_encounters):
    frame, info = sample_patients(uci_encounters, 30_000, seed=42)
    per_patient = uci_encounters.group_by("patient_nbr").len()
    kept = frame.group_by("patient_nbr").len()
    # a patient is wholly in or out: every kept patient has all their encounters
    assert kept.join(per_patient, on="patient_nbr", suffix="_all").filter(pl.col("len") != pl.col("len_all")).height == 0
    assert frame["encounter_id"].to_list() == uci_encounters.filter(
        pl.col("patient_nbr").is_in(kept["patient_nbr"].implode()))["encounter_id"].to_list()  # order kept
    # about max_rows: the expected count is max_rows; the spread comes from patients of many encounters
    spread = 4 * (per_patient["len"].cast(pl.Float64).pow(2).sum() * info["fraction"] * (1 - info["fraction"])) ** 0.5
    assert abs(frame.height - 30_000) < spread
    assert info == {
        "max_rows": 30_000, "rows_before": uci_encounters.height, "rows_after": frame.height,
        "patients_before": per_patient.height, "patients_after": kept.height,
        "fraction": 30_000 / uci_encounters.height, "seed": 42, "rule": SAMPLE_RULE,
    }
    assert f"{frame.height:,} of {uci_encounters.height:,} rows" in describe_sample(info)


def test_the_sample_is_the_same_on_every_run_in_any_row_order_and_changes_with_the_seed(uci_encounters):
    first, _ = sample_patients(uci_encounters, 20_000, seed=42)
    shuffled, _ = sample_patients(uci_encounters.sample(fraction=1.0, shuffle=True, seed=3), 20_000, seed=42)
    assert set(shuffled["encounter_id"]) == set(first["encounter_id"])
    other, _ = sample_patients(uci_encounters, 20_000, seed=43)
    assert set(other["patient_nbr"]) != set(first["patient_nbr"])


def test_the_rule_recorded_is_what_another_engine_computes(uci_encounters):
    """DuckDB's sha256, following SAMPLE_RULE as written, picks the same patients."""
    import duckdb

    frame, info = sample_patients(uci_encounters, 25_000, seed=7)
    limit = int(info["fraction"] * 2**64)
    con = duckdb.connect()
    con.register("encounters", uci_encounters.to_arrow())
    picked = con.execute(
        "select distinct patient_nbr from encounters where "
        "('0x' || substr(sha256(? || ':' || patient_nbr::varchar), 1, 16))::ubigint < ?::ubigint",
        [str(info["seed"]), str(limit)],
    ).fetchall()
    assert {p for (p,) in picked} == set(frame["patient_nbr"])
    assert patient_hash(7, 123) == patient_hash(7, 123) != patient_hash(8, 123)


def test_max_rows_is_a_positive_integer_or_null():
    from readmit.config import parse_config
    from readmit.errors import ConfigError

    assert parse_config({"training_config": {"max_rows": 5000}}).training_config.max_rows == 5000
    assert parse_config({}).training_config.max_rows is None
    for bad in (0, True, "5000"):
        with pytest.raises(ConfigError, match="training_config.max_rows"):
            parse_config({"training_config": {"max_rows": bad}})


def test_training_uses_the_patient_sample_and_records_it(make_settings):
    from readmit.pipeline import train_algorithm

    settings = make_settings({"training_config": {"max_rows": 2000}})
    window = load_gold(settings, fingerprints=False).window("train")
    messages: list[str] = []
    meta = train_algorithm(settings, "logistic_regression", progress=messages.append)
    sample = meta["training_sample"]
    expected, info = sample_patients(window, 2000, settings.config.model.random_state)
    assert sample == info and sample["rows_before"] == window.height > 2000
    assert sample["rows_after"] == expected.height < window.height
    assert any("training on a patient sample" in m for m in messages)
    assert any(f"on {expected.height} rows" in m for m in messages)  # the search saw the sample only

    unlimited = train_algorithm(make_settings(), "logistic_regression")
    assert unlimited["training_sample"] is None
