"""Silver: cleaning rules on synthetic rows, and the layer step on real partitions."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from readmit.data.layers import BRONZE_TABLE, SILVER_TABLE
from readmit.data.schema import DRUG_COLUMNS, RAW_SCHEMA
from readmit.data.silver import DOMAINS, MISSING, build_silver, clean
from readmit.errors import ReadmitInputError
from readmit.storage import Storage


def test_clean_makes_missing_explicit_and_standardises_values(bronze_rows) -> None:
    bronze = bronze_rows([
        {"encounter_id": 1, "race": None, "gender": " unknown/invalid ", "weight": None,
         "payer_code": None, "medical_specialty": "", "diag_1": None, "diag_2": " v57 ",
         "max_glu_serum": "none", "metformin": " steady", "A1Cresult": ">8"},
        {"encounter_id": 2, "race": " africanamerican", "gender": "MALE", "payer_code": " mc ",
         "medical_specialty": " Surgery-General ", "age": "[10-20)", "weight": "[75-100)",
         "change": "ch", "diabetesMed": "no", "readmitted": "<30"},
    ])
    silver, duplicates = clean(bronze)
    assert duplicates == 0
    first, second = silver.to_dicts()
    assert first["race"] == MISSING and first["gender"] == MISSING and first["weight"] == MISSING
    assert first["payer_code"] == MISSING and first["medical_specialty"] == MISSING
    assert first["diag_1"] is None and first["diag_2"] == "V57" and first["diag_3"] == "V57"
    assert first["max_glu_serum"] == "None" and first["metformin"] == "Steady"
    assert second["race"] == "AfricanAmerican" and second["gender"] == "Male"
    assert second["payer_code"] == "MC" and second["medical_specialty"] == "Surgery-General"
    assert (second["change"], second["diabetesMed"], second["readmitted"]) == ("Ch", "No", "<30")


def test_clean_keeps_types_lineage_and_sorts_by_date_then_encounter(bronze_rows) -> None:
    dates = [dt.date(2001, 1, 20), dt.date(2001, 1, 5), dt.date(2001, 1, 5)]
    silver, _ = clean(bronze_rows([{"encounter_id": 9}, {"encounter_id": 7}, {"encounter_id": 3}], dates))
    assert silver["encounter_id"].to_list() == [3, 7, 9]
    assert silver.columns == [*RAW_SCHEMA, "snapshot_date", "_source_sha256", "_ingested_at"]
    assert {c: silver.schema[c] for c in RAW_SCHEMA} == RAW_SCHEMA
    assert silver.schema["snapshot_date"] == pl.Date


def test_clean_removes_duplicate_encounters_keeping_the_first(bronze_rows) -> None:
    bronze = bronze_rows([
        {"encounter_id": 5, "num_medications": 1},
        {"encounter_id": 6},
        {"encounter_id": 5, "num_medications": 2},
        {"encounter_id": 5, "num_medications": 3},
    ])
    silver, duplicates = clean(bronze)
    assert duplicates == 2
    assert silver.sort("encounter_id")["num_medications"].to_list() == [1, 12]


@pytest.mark.parametrize(
    ("column", "value"),
    [("gender", "Robot"), ("metformin", "Sometimes"), ("readmitted", "maybe"), ("age", "old")],
)
def test_clean_rejects_values_outside_the_domain(bronze_rows, column: str, value: str) -> None:
    with pytest.raises(ReadmitInputError) as err:
        clean(bronze_rows([{column: value}]), source="bronze/2001-01")
    assert column in str(err.value) and value in str(err.value)
    assert "bronze/2001-01" in str(err.value) and "Fix:" in str(err.value)


def test_clean_rejects_stored_values_outside_the_schema_ranges(bronze_rows) -> None:
    # bronze written before the value rules (or by hand) is checked again
    with pytest.raises(ReadmitInputError, match=r"bronze/2001-01: column time_in_hospital has value\(s\) "
                       r"outside the allowed range 1\.\.14: \[-3, 20\]"):
        clean(bronze_rows([{"time_in_hospital": -3}, {"time_in_hospital": 20}, {}]), source="bronze/2001-01")
    with pytest.raises(ReadmitInputError, match=r"column num_procedures has value\(s\) outside the allowed range >= 0: \[-1\]"):
        clean(bronze_rows([{"num_procedures": -1}]))


def test_clean_keeps_an_unknown_outcome_and_rejects_a_missing_key_or_column(bronze_rows) -> None:
    silver, _ = clean(bronze_rows([{"readmitted": None}, {"encounter_id": 987654}]))  # an outcome not known yet
    assert silver.height == 2 and silver["readmitted"].null_count() == 1
    with pytest.raises(ReadmitInputError, match="without patient_nbr"):
        clean(bronze_rows([{"patient_nbr": None}]))
    with pytest.raises(ReadmitInputError, match="missing column.*A1Cresult"):
        clean(bronze_rows([{}]).drop("A1Cresult"))
    with pytest.raises(ReadmitInputError, match="time_in_hospital"):
        clean(bronze_rows([{}]).with_columns(pl.lit("three").alias("time_in_hospital")))


def test_clean_real_rows(uci_bronze_2y: pl.DataFrame) -> None:
    silver, duplicates = clean(uci_bronze_2y)
    assert duplicates == 0 and silver.height == uci_bronze_2y.height
    categorical = [c for c in DOMAINS if c != "readmitted"] + ["payer_code", "medical_specialty"]
    assert silver.select(pl.col(categorical).null_count()).sum_horizontal().item() == 0
    for column in ("race", "payer_code", "medical_specialty", "weight"):
        assert (silver[column] == MISSING).sum() == uci_bronze_2y[column].null_count()
    for drug in DRUG_COLUMNS:
        assert set(silver[drug].unique()) <= set(DOMAINS[drug])


def test_build_silver_writes_each_month_and_counts(
    tmp_path, uci_bronze_2y: pl.DataFrame, write_bronze
) -> None:
    storage = Storage(tmp_path)
    months = write_bronze(storage, uci_bronze_2y.head(3000))
    # One month gets a repeated encounter.
    jan = storage.read_partition(BRONZE_TABLE, months[0])
    storage.write_partition(BRONZE_TABLE, months[0], pl.concat([jan, jan.head(2)]))
    seen: list[str] = []
    result = build_silver(storage, on_partition=seen.append)
    assert result.partitions == months == seen == storage.list_partitions(SILVER_TABLE)
    assert result.duplicates_removed == 2
    assert result.rows_in == 3002 and result.rows_out == 3000
    assert storage.read_table(SILVER_TABLE)["encounter_id"].n_unique() == 3000

    again = build_silver(storage, start_month=months[1], end_month=months[1])
    assert again.partitions == [months[1]]


def test_build_silver_range_and_month_errors(tmp_path, bronze_rows) -> None:
    storage = Storage(tmp_path)
    with pytest.raises(ReadmitInputError, match="no partitions of bronze"):
        build_silver(storage)
    storage.write_partition(BRONZE_TABLE, "2001-02", bronze_rows([{}]))  # dated 2001-01-15
    with pytest.raises(ReadmitInputError, match="outside 2001-02") as err:
        build_silver(storage)
    assert "snapshot_month=2001-02" in str(err.value)
    with pytest.raises(ReadmitInputError, match="after end month"):
        build_silver(storage, start_month="2001-03", end_month="2001-01")
    with pytest.raises(ReadmitInputError, match="invalid month"):
        build_silver(storage, start_month="2001-3")
