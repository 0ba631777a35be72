"""Feature definitions: code groupings, encounter features, point-in-time patient history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readmit.data import translate
from readmit.data.features import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    FEATURE_DEFINITIONS,
    FEATURE_DTYPES,
    FLAG_COLUMNS,
    HISTORY_FEATURES,
    HISTORY_INPUT_COLUMNS,
    KEY_COLUMNS,
    MED_FEATURES,
    NUMERIC_FEATURES,
    date_order_contradictions,
    empty_history,
    encounter_features,
    feature_frame,
    fold_history,
    history_features,
    icd9_group,
    payer_group,
    render_data_dictionary,
    specialty_group,
)
from readmit.data.schema import DRUG_COLUMNS
from readmit.data.silver import clean

DOC = Path(__file__).resolve().parents[2] / "docs" / "data_dictionary.md"


def _apply(expr_fn, values: list[str | None]) -> list[str]:
    frame = nw.from_native(pl.DataFrame({"v": values}, schema={"v": pl.String}))
    return frame.select(expr_fn(nw.col("v"))).to_native().to_series().to_list()


@pytest.mark.parametrize(
    ("code", "group"),
    [
        ("250.83", "Diabetes"), ("250", "Diabetes"), ("428", "Circulatory"), ("414.01", "Circulatory"),
        ("785", "Circulatory"), ("786", "Respiratory"), ("486", "Respiratory"), ("787", "Digestive"),
        ("540", "Digestive"), ("996", "Injury"), ("715", "Musculoskeletal"), ("599", "Genitourinary"),
        ("788", "Genitourinary"), ("174", "Neoplasms"), ("V57", "Other"), ("E909", "Other"),
        ("8", "Other"), ("251", "Other"), (" 250.01 ", "Diabetes"), (None, "Missing"),
        ("Missing", "Missing"), ("", "Missing"),
    ],
)
def test_icd9_group(code: str | None, group: str) -> None:
    assert _apply(icd9_group, [code]) == [group]


def test_specialty_and_payer_groups() -> None:
    specialties = ["InternalMedicine", "Surgery-Neuro", "Surgeon", "Orthopedics-Reconstructive",
                   "Family/GeneralPractice", "Emergency/Trauma", "Cardiology", "Nephrology",
                   "Psychiatry", "Missing", None]
    assert _apply(specialty_group, specialties) == [
        "InternalMedicine", "Surgery", "Surgery", "Orthopedics", "Family/GeneralPractice",
        "Emergency/Trauma", "Cardiology", "Nephrology", "Other", "Missing", "Missing",
    ]
    assert _apply(payer_group, ["MC", "md", "SP", "BC", "Missing", None]) == [
        "Medicare", "Medicaid", "SelfPay", "Private/Other", "Missing", "Missing",
    ]


def test_feature_columns_partition_into_numeric_and_categorical() -> None:
    assert len(set(FEATURE_COLUMNS)) == len(FEATURE_COLUMNS)
    assert set(FEATURE_DEFINITIONS) == set(FEATURE_COLUMNS) == set(FEATURE_DTYPES)
    assert all(FEATURE_DTYPES[c] == pl.String for c in CATEGORICAL_FEATURES)
    assert all(FEATURE_DTYPES[c].is_numeric() for c in NUMERIC_FEATURES)
    assert not set(FEATURE_COLUMNS) & {"readmitted", "label", *KEY_COLUMNS, *FLAG_COLUMNS}


def test_each_drug_moves_its_own_feature_and_nothing_else(bronze_rows) -> None:
    """One row per drug of the raw schema, that drug raised ("Up"), every other one "No"."""
    rows = [{"encounter_id": i + 1, "patient_nbr": i + 1, drug: "Up"} for i, drug in enumerate(DRUG_COLUMNS)]
    silver, _ = clean(bronze_rows(rows))
    meds = encounter_features(silver).sort("encounter_id").select(*MED_FEATURES)
    for drug, row in zip(DRUG_COLUMNS, meds.iter_rows(named=True), strict=True):
        moved = {MED_FEATURES[name] for name, value in row.items() if value}
        assert moved == {drug}, (drug, row)


def test_data_dictionary_lists_every_feature() -> None:
    doc = DOC.read_text()
    for name in (*FEATURE_COLUMNS, *FLAG_COLUMNS):
        assert f"| `{name}` |" in doc, f"{name} missing from {DOC}"
    assert render_data_dictionary() in doc, "regenerate the feature tables of the data dictionary"


def test_encounter_features_of_one_row(bronze_rows) -> None:
    silver, _ = clean(bronze_rows([{
        "age": "[70-80)", "admission_type_id": 7, "discharge_disposition_id": 13,
        "admission_source_id": 4, "time_in_hospital": 7, "number_outpatient": 2,
        "number_emergency": 1, "number_inpatient": 3, "max_glu_serum": ">300", "A1Cresult": ">7",
        "metformin": "Up", "insulin": "Down", "glipizide": "Steady", "change": "Ch",
        "diabetesMed": "Yes", "payer_code": "SP", "medical_specialty": "Cardiology",
        "diag_1": "250.83", "diag_2": None, "race": None,
    }]))
    row = encounter_features(silver).row(0, named=True)
    assert row["age_midpoint"] == 75
    assert (row["admission_severity"], row["discharge_severity"], row["admission_source_risk"]) == (3, 5, 2)
    assert (row["total_visits"], row["utilisation"]) == (6, 49)
    assert (row["glucose_ordinal"], row["a1c_ordinal"]) == (3, 2)
    assert (row["med_metformin"], row["med_insulin"], row["med_glipizide"], row["med_acarbose"]) == (3, 1, 2, 0)
    assert (row["num_medications_changed"], row["num_diabetes_drugs"]) == (2, 3)
    assert (row["medication_change"], row["diabetes_med"]) == (1, 1)
    assert (row["payer_group"], row["specialty_group"], row["race"]) == ("SelfPay", "Cardiology", "Missing")
    assert (row["diag_1_group"], row["diag_2_group"], row["diag_3_group"]) == ("Diabetes", "Missing", "Other")
    assert (row["admission_type"], row["discharge_disposition"], row["admission_source"]) == ("7", "13", "4")
    assert row["death_or_hospice"] is True


def test_history_counts_only_encounters_earlier_by_date_and_by_id(bronze_rows) -> None:
    jan = [dt.date(2001, 1, d) for d in (3, 3, 10, 1, 17, 31)]
    silver, _ = clean(bronze_rows([
        {"encounter_id": 20, "patient_nbr": 1, "time_in_hospital": 2, "admission_type_id": 1},
        {"encounter_id": 10, "patient_nbr": 1, "time_in_hospital": 5, "admission_type_id": 3},
        {"encounter_id": 30, "patient_nbr": 1, "time_in_hospital": 1, "admission_type_id": 1},
        {"encounter_id": 99, "patient_nbr": 2, "time_in_hospital": 4},
        {"encounter_id": 5, "patient_nbr": 1, "time_in_hospital": 6, "admission_type_id": 1},
        {"encounter_id": 40, "patient_nbr": 1, "time_in_hospital": 3},
    ], jan))
    got = {r["encounter_id"]: r for r in history_features(silver, empty_history()).to_dicts()}
    # Patient 1 by date: 10 (Jan 3), 20 (Jan 3), 30 (Jan 10), 5 (Jan 17), 40 (Jan 31). Encounter 5
    # has the lowest id but a later date: nobody before it by date counts it, and it counts
    # nobody (all of them come later by id).
    assert [got[e]["prior_encounters"] for e in (10, 20, 30, 5, 40)] == [0, 1, 2, 0, 4]
    assert [got[e]["prior_inpatient_days"] for e in (10, 20, 30, 5, 40)] == [0, 5, 7, 0, 14]
    assert [got[e]["prior_emergency_encounters"] for e in (10, 20, 30, 5, 40)] == [0, 0, 1, 0, 3]
    assert [got[e]["days_since_prior_encounter"] for e in (10, 20, 30, 5, 40)] == [None, 0, 7, None, 14]
    assert got[99]["prior_encounters"] == 0 and got[99]["days_since_prior_encounter"] is None


def test_date_order_contradictions_counts_patients() -> None:
    frame = pl.DataFrame({
        "patient_nbr": [1, 1, 2, 2, 3, 3, 3, 4],
        "encounter_id": [1, 2, 3, 4, 7, 5, 6, 8],
        "snapshot_date": [dt.date(2001, 1, d) for d in (1, 2, 5, 4, 9, 9, 8, 1)],
    })
    # Patient 1 agrees; 2: encounter 4 dated before 3; 3: encounter 6 dated before 5; 4: one stay.
    assert date_order_contradictions(frame) == 2
    assert date_order_contradictions(frame.filter(pl.col("patient_nbr") != 2)) == 1


def test_features_ignore_labels_and_later_encounters(bronze_rows) -> None:
    dates = [dt.date(2001, 1, d) for d in (2, 9, 16, 23)]
    rows = [{"encounter_id": i, "patient_nbr": 7, "readmitted": "<30"} for i in range(4)]
    silver, _ = clean(bronze_rows(rows, dates))
    base = feature_frame(silver, empty_history())
    relabelled = feature_frame(silver.with_columns(pl.lit("NO").alias("readmitted")), empty_history())
    assert base.equals(relabelled)
    without_later = feature_frame(silver.head(2), empty_history())
    assert base.head(2).equals(without_later)


# -- property: any split of the months gives the same features as a naive reference --------
MONTHS = [f"2001-{m:02d}" for m in range(1, 7)]
_row = st.fixed_dictionaries({
    "patient_nbr": st.integers(1, 5),
    "day": st.integers(0, 180),
    "time_in_hospital": st.one_of(st.none(), st.integers(1, 14)),
    "admission_type_id": st.one_of(st.none(), st.sampled_from([1, 2, 3, 7])),
})


def _naive_history(rows: list[dict]) -> dict[int, tuple]:
    """History features by brute force over all pairs of rows."""
    out = {}
    for row in rows:
        earlier = [o for o in rows if o["patient_nbr"] == row["patient_nbr"]
                   and o["encounter_id"] < row["encounter_id"] and o["date"] <= row["date"]]
        out[row["encounter_id"]] = (
            len(earlier),
            sum(o["time_in_hospital"] or 0 for o in earlier),
            sum(o["admission_type_id"] == 1 for o in earlier),
            (row["date"] - max(o["date"] for o in earlier)).days if earlier else None,
        )
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_row, min_size=1, max_size=30), cuts=st.sets(st.integers(1, len(MONTHS) - 1)))
def test_history_is_the_same_for_any_split_of_months(bronze_rows, rows: list[dict], cuts: set[int]) -> None:
    for i, row in enumerate(rows):
        row["encounter_id"] = 1000 - 7 * i  # unique, not in date order
        row["date"] = dt.date(2001, 1, 1) + dt.timedelta(days=row.pop("day"))
    silver, _ = clean(bronze_rows(rows, [r["date"] for r in rows]))
    silver = silver.with_columns(pl.col("snapshot_date").dt.strftime("%Y-%m").alias("_month"))

    def by_chunks(chunks: list[list[str]]) -> pl.DataFrame:
        state, parts = empty_history(), []
        for chunk in chunks:
            part = silver.filter(pl.col("_month").is_in(chunk))
            parts.append(feature_frame(part, state))
            state = fold_history(state, part)
        return pl.concat(parts)

    bounds = [0, *sorted(cuts), len(MONTHS)]
    whole = by_chunks([MONTHS])
    assert whole.equals(by_chunks([[m] for m in MONTHS]))
    assert whole.equals(by_chunks([MONTHS[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]))
    got = {r[0]: tuple(r[1:]) for r in whole.select("encounter_id", *HISTORY_FEATURES).iter_rows()}
    assert got == _naive_history(rows)


def test_day_number_is_the_days_since_1970_of_every_date() -> None:
    """History's day arithmetic (integer-only, so every engine agrees) matches the calendar."""
    from readmit.data.features import day_number

    dates = pl.DataFrame({"d": pl.date_range(dt.date(1899, 12, 25), dt.date(2101, 3, 5), "1d", eager=True)})
    got = nw.from_native(dates).select(day_number(nw.col("d")).alias("n")).to_native()["n"]
    assert got.to_list() == dates["d"].cast(pl.Int64).to_list()


def test_the_polars_translation_still_reaches_narwhals_internals_and_matches_narwhals(bronze_rows) -> None:
    """polars_exprs uses narwhals' private API; when narwhals changes it this fails (the code
    then falls back to the narwhals expressions, slower), and the translation must equal them."""
    from readmit.data import features
    from readmit.data import silver as silver_module

    assert features._polars_encounter_exprs() is not None, "narwhals changed: see features.polars_exprs"
    assert all(step is not None for step in silver_module._polars_cleaning())
    rows, _ = clean(bronze_rows([{"diag_1": "250.83", "payer_code": "SP", "metformin": "Up"},
                                 {"diag_1": None, "race": None, "medical_specialty": "?"}]))
    through_narwhals = (nw.from_native(rows).with_columns(*features._parsed_exprs())
                        .select(*features._encounter_exprs()).to_native())
    assert encounter_features(rows).equals(through_narwhals)
    for exprs in (silver_module._standard_exprs(), silver_module._fill_exprs()):
        translated = features.polars_exprs(exprs)
        assert translate.with_columns(rows, exprs, translated).equals(translate.with_columns(rows, exprs, None))


def test_history_and_code_shapes_translated_once_equal_narwhals(bronze_rows) -> None:
    """count_history / gold_features and the code shapes run their translated expressions on
    Polars; the same steps through narwhals give the same rows."""
    from readmit.data import codes, features

    assert features._polars_history_exprs() is not None, "narwhals changed: see translate.polars_exprs"
    assert codes._polars_shape_exprs() is not None
    rows, _ = clean(bronze_rows(
        [{"encounter_id": 1, "patient_nbr": 7, "admission_type_id": 1},
         {"encounter_id": 2, "patient_nbr": 7, "time_in_hospital": 4},
         {"encounter_id": 3, "patient_nbr": 7, "diag_1": "E11.9"},
         {"encounter_id": 4, "patient_nbr": 8, "diag_2": "bogus"}],
        [dt.date(2001, 3, 1), dt.date(2001, 5, 1), dt.date(2001, 4, 1), dt.date(2001, 4, 1)]))
    pool = rows.select(HISTORY_INPUT_COLUMNS)
    native = features.gold_features(nw.from_native(rows.lazy()), nw.from_native(pool.lazy())).collect().to_native()
    narwhals = (nw.from_native(rows.lazy()).pipe(lambda f: features._count(features._history_exprs(), f,
                                                                          nw.from_native(pool.lazy())))
                .collect().to_native())
    assert native.sort("encounter_id").select(narwhals.columns).equals(narwhals.sort("encounter_id"))
    assert native.sort("encounter_id")["prior_encounters"].to_list() == [0, 1, 1, 0]
    shaped = codes.shape_columns(rows.select(codes.DIAGNOSIS_COLUMNS))
    assert shaped.equals(nw.from_native(rows.select(codes.DIAGNOSIS_COLUMNS)).with_columns(
        *codes._shape_exprs()).to_native())
