"""``check_extract``: the summary of a real extract and of a broken one, with nothing written."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import polars as pl
import pytest

from readmit.data.extract import check_extract
from readmit.data.raw import read_raw
from readmit.errors import ReadmitInputError

MEMBER = "dataset_diabetes/diabetic_data.csv"


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_the_real_file_checks_clean_and_nothing_is_written(uci_zip: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = _tree(uci_zip.parent), os.listdir(tmp_path)
    found = check_extract(str(uci_zip))
    assert (_tree(uci_zip.parent), os.listdir(tmp_path)) == before
    assert found.ok and found.problems == [] and found.rows == found.rows_ok == 101_766
    assert len(found.months) == 120 and sum(found.months.values()) == 101_766
    assert list(found.months)[0] == "1999-01" and list(found.months)[-1] == "2008-12"
    assert (found.labelled, found.unlabelled) == (101_766, 0)
    assert found.code_systems == ["icd9"] and found.code_shapes["icd10"] == 0 == found.code_shapes["invalid"]
    assert found.code_shapes["icd9"] + found.code_shapes["either"] == 294_257 + 9_239
    assert found.absent_columns == {} and found.dates == "encounter_order"


def test_a_broken_extract_lists_its_problems_by_row(uci_zip: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(uci_zip) as zf, zf.open(MEMBER) as fh:
        lines = [next(fh).decode().rstrip("\r\n").split(",") for _ in range(101)]
    header = lines[0]
    lines[3][header.index("diag_1")] = "ABC"
    lines[8][header.index("num_procedures")] = "two"
    lines[9][header.index("diag_2")] = "V57"  # a shape both systems have: no problem
    keep = [i for i, name in enumerate(header) if name != "weight"]
    path = tmp_path / "extract.csv"
    path.write_text("".join(",".join(line[i] for i in keep) + "\n" for line in lines))
    found = check_extract(str(path))
    assert not found.ok and found.problem_count == found.rows_rejected == 2 and found.rows_ok == 98
    assert [p["row"] for p in found.problems] == [3, 8]
    assert "diag_1: 'ABC' is neither an ICD-9-CM nor an ICD-10-CM code" in found.problems[0]["reason"]
    assert "num_procedures: 'two' is not an integer" in found.problems[1]["reason"]
    # row 3's month: the one its encounter gets once the code is fixed (dates follow encounter_id rank)
    fixed = tmp_path / "fixed" / "extract.csv"
    fixed.parent.mkdir()
    fixed.write_text(path.read_text().replace(",ABC,", ",250,", 1))
    dated = read_raw(str(fixed), quarantine=True).frame
    month = dated.filter(pl.col("encounter_id") == int(lines[3][0]))["snapshot_date"].dt.strftime("%Y-%m").item()
    assert found.invalid_codes == 1 and found.invalid_codes_by_month == {month: 1}
    assert found.code_shapes["icd10"] == 0 and found.code_shapes["either"] >= 1
    assert found.code_systems == ["icd9"] and found.code_system == "icd9"
    assert list(found.absent_columns) == ["weight"]
    message = str(found.refusal())
    assert str(path) in message and "data rows 3, 8" in message and "Fix:" in message
    assert sorted(os.listdir(tmp_path)) == ["extract.csv", "fixed"]


def test_an_icd10_extract_is_read_as_icd10_and_a_mixed_one_refused(uci_zip: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(uci_zip) as zf, zf.open(MEMBER) as fh:
        lines = [next(fh).decode().rstrip("\r\n").split(",") for _ in range(21)]
    diag = [lines[0].index(c) for c in ("diag_1", "diag_2", "diag_3")]
    icd10 = [lines[0]] + [[("E11.9" if i in diag else v) for i, v in enumerate(line)] for line in lines[1:]]
    path = tmp_path / "icd10.csv"
    path.write_text("".join(",".join(line) + "\n" for line in icd10))
    found = check_extract(str(path))
    assert found.ok and found.code_system == "icd10" and found.code_shapes["icd10"] == 60
    mixed = icd10[:10] + lines[10:]
    path.write_text("".join(",".join(line) + "\n" for line in mixed))
    with pytest.raises(ReadmitInputError, match=r"ICD-9-CM only codes in data rows 10, 11, 12\.\.\. and "
                       r"ICD-10-CM only codes in data rows 1, 2, 3\.\.\."):
        check_extract(str(path))
    assert check_extract(str(path), diagnosis_codes="icd10").rows_rejected == 11
