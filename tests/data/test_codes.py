"""Diagnosis code shapes: ICD-9 only, ICD-10-CM only, either, or neither."""

from __future__ import annotations

import datetime as dt
import json
import re
import zipfile
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from readmit.config import load_settings
from readmit.data.codes import (
    EITHER,
    ICD9,
    ICD9_PATTERN,
    ICD10,
    ICD10_PATTERN,
    INVALID,
    decide_system,
    icd10_group,
    shape_counts,
)
from readmit.data.features import icd9_group
from readmit.data.layers import FEATURE_STORE, LABEL_STORE
from readmit.data.medallion import run_medallion
from readmit.data.raw import read_raw
from readmit.errors import ReadmitInputError
from readmit.storage import Storage


@pytest.mark.parametrize(
    ("code", "shape"),
    [
        ("428.0", ICD9), ("250.83", ICD9), ("38", ICD9), ("E885.9", ICD9), ("V57.1", EITHER),
        ("E11.9", ICD10), ("I50.9", ICD10), ("J44.1", ICD10), ("i509", ICD10), ("S72.001A", ICD10),
        ("V57", EITHER), ("E885", EITHER), (" e909 ", EITHER),
        ("ABC", INVALID), ("12345", INVALID), ("428.123", INVALID), ("E11..9", INVALID),
    ],
)
def test_a_code_has_the_shape_its_system_gives_it(code: str, shape: str) -> None:
    frame = pl.DataFrame({"diag_1": [code], "diag_2": [None], "diag_3": ["?"]})
    assert shape_counts(frame) == {ICD9: 0, ICD10: 0, EITHER: 0, INVALID: 0, shape: 1}


# -- groups ----------------------------------------------------------------------------------

def _groups(codes: list[str | None]) -> list[str]:
    frame = nw.from_native(pl.DataFrame({"c": codes}, schema={"c": pl.String}))
    return frame.select(icd9_group(nw.col("c")).alias("g")).to_native()["g"].to_list()


@pytest.mark.parametrize(
    ("code", "group"),
    [
        ("E11.9", "Diabetes"), ("E10.65", "Diabetes"), ("E119", "Diabetes"), ("E13.9", "Diabetes"),
        ("E03.9", "Other"), ("E87.1", "Other"), ("I50.9", "Circulatory"), ("I10", "Circulatory"),
        ("J44.1", "Respiratory"), ("J18.9", "Respiratory"), ("K21.9", "Digestive"), ("K95.01", "Digestive"),
        ("S72.001A", "Injury"), ("T84.50XA", "Injury"), ("T88.7", "Injury"), ("T91.0", "Other"),
        ("M54.5", "Musculoskeletal"), ("N39.0", "Genitourinary"), ("N18.6", "Genitourinary"),
        ("C34.90", "Neoplasms"), ("C4A.9", "Neoplasms"), ("D49.6", "Neoplasms"), ("D50.9", "Other"),
        ("R00.0", "Circulatory"), ("R57.0", "Circulatory"), ("R06.02", "Respiratory"), ("R07.9", "Respiratory"),
        ("R11.0", "Digestive"), ("R39.9", "Genitourinary"), ("R53.83", "Other"), ("Z99.89", "Other"),
        ("F32.9", "Other"), ("W19.XXXA", "Other"),
        # ICD-9, as before
        ("250.83", "Diabetes"), ("428", "Circulatory"), ("785", "Circulatory"), ("786.05", "Respiratory"),
        ("787", "Digestive"), ("788", "Genitourinary"), ("V57", "Other"), ("E885", "Other"), ("38", "Other"),
        (None, "Missing"),
    ],
)
def test_strack_groups_of_both_systems(code: str | None, group: str) -> None:
    assert _groups([code]) == [group]


# Codes come in lists (several hundred codes over the run, as many as one code per example gave),
# so the rules are built once per list rather than once per code; a failure shrinks to one code.
@settings(max_examples=50, deadline=None)
@given(st.lists(st.from_regex(ICD9_PATTERN, fullmatch=True).filter(lambda c: re.fullmatch(ICD10_PATTERN, c) is not None),
                min_size=1, max_size=30))
def test_a_code_of_both_shapes_groups_the_same_in_both_systems(codes: list[str]) -> None:
    frame = nw.from_native(pl.DataFrame({"c": codes}, schema={"c": pl.String}))
    icd10 = frame.select(icd10_group(nw.col("c")).alias("g")).to_native()["g"].to_list()
    assert _groups(codes) == icd10 == ["Other"] * len(codes)


def test_no_uci_code_takes_the_icd10_rule_so_uci_gold_is_unchanged(uci_zip: Path) -> None:
    frame = read_raw(str(uci_zip)).frame
    counts = shape_counts(frame)
    assert counts[ICD10] == 0 == counts[INVALID]  # every code is grouped by the ICD-9 rule, as before
    assert decide_system(lambda: [frame], "auto", "uci") == ICD9


def test_auto_refuses_a_file_of_both_systems_naming_rows_of_each() -> None:
    frame = pl.DataFrame({"diag_1": ["428", "E11.9", "V57", "I50.9"], "diag_2": ["?", "?", "250.01", "?"],
                          "diag_3": ["?"] * 4})
    with pytest.raises(ReadmitInputError, match=r"ICD-9-CM only codes in data rows 1, 3\.\.\. and ICD-10-CM "
                       r"only codes in data rows 2, 4\.\.\.") as err:
        decide_system(lambda: [frame.head(2), frame.tail(2)], "auto", "x.csv")
    assert "x.csv" in str(err.value) and "--diagnosis-codes" in str(err.value)
    assert decide_system(lambda: [frame], "icd10", "x.csv") == ICD10
    assert decide_system(lambda: [frame.tail(1)], "auto", "x.csv") == ICD10
    assert decide_system(lambda: [frame.slice(2, 1).with_columns(diag_2=pl.lit("?"))], "auto", "x.csv") == ICD9


# A test-only mapping: each ICD-9 code present -> an ICD-10-CM code of its Strack group (the
# symptom codes to their R block), so the ICD-10 extract says what the ICD-9 one says.
_ICD10_OF_GROUP = {
    "Diabetes": "E11.9", "Circulatory": "I50.9", "Respiratory": "J44.1", "Digestive": "K21.9", "Injury": "S72.001A",
    "Musculoskeletal": "M54.5", "Genitourinary": "N39.0", "Neoplasms": "C34.90", "Other": "Z99.89",
}
_ICD10_OF_SYMPTOM = {785: "R00.0", 786: "R06.02", 787: "R11.0", 788: "R39.9"}


def _icd10_mapping(codes: set[str]) -> dict[str, str]:
    """Each code -> its ICD-10-CM stand-in (the groups found in one pass over all the codes)."""
    ordered = sorted(codes)
    return {code: _to_icd10(code, group) for code, group in zip(ordered, _groups(ordered), strict=True)}


def _to_icd10(code: str, group: str) -> str:
    if code in ("?", ""):
        return code
    if code[0].isdigit() and int(float(code)) in _ICD10_OF_SYMPTOM:
        return _ICD10_OF_SYMPTOM[int(float(code))]
    return _ICD10_OF_GROUP[group]


def test_the_same_encounters_coded_in_icd9_and_icd10_get_the_same_features(uci_zip: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(uci_zip) as zf, zf.open("dataset_diabetes/diabetic_data.csv") as fh:
        lines = [next(fh).decode().rstrip("\r\n").split(",") for _ in range(3001)]
    header = lines[0]
    diag = [header.index(c) for c in ("diag_1", "diag_2", "diag_3")]
    codes = {line[i] for line in lines[1:] for i in diag}
    mapping = _icd10_mapping(codes)
    assert {mapping[c] for c in codes if c.startswith("78")} >= {"R00.0", "R06.02", "R11.0", "R39.9"}
    icd10_lines = [header] + [[mapping[v] if i in diag else v for i, v in enumerate(line)] for line in lines[1:]]
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data_config": {"date_derivation": {
        "start_date": "2001-01-01", "end_date": "2001-06-30"}}}))
    gold = {}
    for name, rows, system in (("icd9", lines, None), ("icd10", icd10_lines, None), ("declared", icd10_lines, "icd10")):
        raw = tmp_path / f"{name}.csv"
        raw.write_text("".join(",".join(r) + "\n" for r in rows))
        settings_ = load_settings(str(config), raw=str(raw), datamart=str(tmp_path / name))
        results = run_medallion(settings_, diagnosis_codes=system)
        assert f"diagnosis codes read as {'icd9' if name == 'icd9' else 'icd10'}" in results[0].notes
        storage = Storage(settings_.datamart_uri)
        gold[name] = storage.read_table(FEATURE_STORE), storage.read_table(LABEL_STORE).drop("_source_sha256",
                                                                                                "label_learned_at")
    assert gold["icd9"][0].height == 3000
    for name in ("icd10", "declared"):
        assert gold[name][0].equals(gold["icd9"][0]) and gold[name][1].equals(gold["icd9"][1])
    assert set(gold["icd9"][0]["diag_1_group"]) >= {"Diabetes", "Circulatory", "Respiratory", "Other"}
    assert dt.date(2001, 6, 30) >= gold["icd9"][0]["snapshot_date"].max()


def test_a_declared_system_refuses_or_quarantines_the_other_systems_codes(uci_zip: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(uci_zip) as zf, zf.open("dataset_diabetes/diabetic_data.csv") as fh:
        lines = [next(fh).decode().rstrip("\r\n").split(",") for _ in range(51)]
    lines[7][lines[0].index("diag_2")] = "E11.9"
    raw = tmp_path / "d.csv"
    raw.write_text("".join(",".join(r) + "\n" for r in lines))
    with pytest.raises(ReadmitInputError, match=r"data row 7 .*diag_2: 'E11.9' is an ICD-10-CM code in an "
                       r"ICD-9-CM extract") as err:
        read_raw(str(raw), diagnosis_codes="icd9")
    assert str(raw) in str(err.value) and "Fix:" in str(err.value)
    kept = read_raw(str(raw), diagnosis_codes="icd9", quarantine=True)
    assert kept.frame.height == 49 and kept.rejected["_row"].to_list() == [7]
    with pytest.raises(ReadmitInputError, match="mix two systems"):
        read_raw(str(raw))  # auto: row 7 is ICD-10 only, the others ICD-9 only


def test_a_per_row_system_column_lets_one_file_hold_both_systems(uci_zip: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(uci_zip) as zf, zf.open("dataset_diabetes/diabetic_data.csv") as fh:
        lines = [next(fh).decode().rstrip("\r\n").split(",") for _ in range(41)]
    diag = [lines[0].index(c) for c in ("diag_1", "diag_2", "diag_3")]
    rows = [[*lines[0], "diag_code_system"]]
    mapping = _icd10_mapping({line[i] for line in lines[21:] for i in diag})
    for n, line in enumerate(lines[1:], start=1):
        if n <= 20:
            rows.append([*line, "icd9"])
        else:
            rows.append([*[mapping[v] if i in diag else v for i, v in enumerate(line)], "ICD10"])
    raw = tmp_path / "both.csv"
    raw.write_text("".join(",".join(r) + "\n" for r in rows))
    both = read_raw(str(raw))
    icd9_only = read_raw(str(write_rows(tmp_path / "icd9.csv", lines)))
    assert both.frame.height == 40 and "diag_code_system" not in both.frame.columns
    groups = nw.from_native(both.frame).select(
        *[icd9_group(nw.col(c)).alias(c) for c in ("diag_1", "diag_2", "diag_3")]).to_native()
    expected = nw.from_native(icd9_only.frame).select(
        *[icd9_group(nw.col(c)).alias(c) for c in ("diag_1", "diag_2", "diag_3")]).to_native()
    assert groups.equals(expected)
    rows[3][diag[0]] = "I50.9"  # an ICD-10 code in a row that says icd9
    rows[30][-1] = "icd11"
    raw.write_text("".join(",".join(r) + "\n" for r in rows))
    kept = read_raw(str(raw), quarantine=True)
    assert kept.rejected["_row"].to_list() == [3, 30]
    reasons = kept.rejected["_reason"].to_list()
    assert "diag_1: 'I50.9' is an ICD-10-CM code in a row whose diag_code_system is icd9" in reasons[0]
    assert "diag_code_system: 'icd11' is not one of icd9, icd10" in reasons[1]


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("".join(",".join(r) + "\n" for r in rows))
    return path
