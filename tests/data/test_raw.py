"""Raw reader: the real UCI file in every accepted form, each error path, and quarantine."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import polars as pl
import pytest

from readmit.data.raw import ROW_COLUMN, RawResult, open_raw, read_raw
from readmit.data.schema import RAW_SCHEMA, REQUIRED_COLUMNS
from readmit.errors import ReadmitInputError

MEMBER = "dataset_diabetes/diabetic_data.csv"
UCI_SHA256 = "3a17a3b55b6dd4a1926703185c0ad8e2ed30bc8e2f9b927cdd1000b733d1de8e"


@pytest.fixture(scope="module")
def uci_raw(uci_zip: Path) -> RawResult:
    return read_raw(str(uci_zip))


@pytest.fixture(scope="module")
def uci_lines(uci_zip: Path) -> list[list[str]]:
    """The header and the first 300 data rows of the real file, split into fields."""
    with zipfile.ZipFile(uci_zip) as zf, zf.open(MEMBER) as fh:
        lines = [next(fh).decode().rstrip("\r\n").split(",") for _ in range(301)]
    return lines


def write_csv(path: Path, lines: list[list[str]]) -> Path:
    path.write_text("".join(",".join(line) + "\n" for line in lines))
    return path


def with_value(lines: list[list[str]], row: int, column: str, value: str) -> list[list[str]]:
    """A copy of ``lines`` with data row ``row`` (1-based) of ``column`` set to ``value``."""
    out = [list(line) for line in lines]
    out[row][lines[0].index(column)] = value
    return out


# -- the real file -------------------------------------------------------------------------


def test_real_zip_is_read_whole_with_types_and_categories(uci_raw: RawResult) -> None:
    frame = uci_raw.frame
    assert frame.height == uci_raw.rows_in == 101_766
    assert uci_raw.rejected.height == 0
    assert frame.schema == pl.Schema({**RAW_SCHEMA, "snapshot_date": pl.Date()})
    assert (frame["readmitted"] == "<30").sum() == 11_357
    assert frame["patient_nbr"].n_unique() == 71_518
    assert (frame["A1Cresult"] == "None").sum() == 84_748
    assert frame["A1Cresult"].null_count() == 0 and frame["max_glu_serum"].null_count() == 0
    assert frame["race"].null_count() == 2_273  # '?' is null
    assert frame.schema["diag_1"] == pl.String
    assert {"250.83", "V57"} <= set(frame["diag_1"].unique().to_list())
    assert uci_raw.source_sha256 == UCI_SHA256
    assert uci_raw.source.endswith(f"[{MEMBER}]")


def test_real_zip_encounter_order_covers_120_months_in_id_order(uci_raw: RawResult) -> None:
    frame = uci_raw.frame
    assert uci_raw.snapshot_source == "encounter_order"
    assert frame["snapshot_date"].min() == dt.date(1999, 1, 1)
    assert frame["snapshot_date"].max() == dt.date(2008, 12, 31)
    months = frame["snapshot_date"].dt.strftime("%Y-%m").unique()
    assert months.len() == 120
    by_id = frame.sort("encounter_id")["snapshot_date"]
    assert by_id.is_sorted()
    # Evenly spread: every month holds 1/120 of the rows, give or take a day's worth.
    per_month = frame.group_by(frame["snapshot_date"].dt.strftime("%Y-%m")).len()["len"]
    assert per_month.min() > 101_766 / 120 * 0.9 and per_month.max() < 101_766 / 120 * 1.1


def test_current_uci_layout_and_plain_csv_read_the_same(
    uci_raw: RawResult, uci_zip_current_layout: Path, uci_zip: Path, tmp_path: Path
) -> None:
    current = read_raw(str(uci_zip_current_layout))
    assert current.source.endswith("[diabetic_data.csv]")
    assert current.frame.equals(uci_raw.frame)
    plain = tmp_path / "diabetic_data.csv"
    with zipfile.ZipFile(uci_zip) as zf:
        plain.write_bytes(zf.read(MEMBER))
    from_csv = read_raw(str(plain))
    assert from_csv.source == str(plain)
    assert from_csv.frame.equals(uci_raw.frame)


@pytest.mark.slow  # the whole real file
def test_cyclic_derivation_repeats_daily_dates_in_file_order(uci_zip: Path) -> None:
    start, end = dt.date(2001, 1, 1), dt.date(2001, 1, 10)
    result = read_raw(str(uci_zip), derivation="cyclic", start=start, end=end)
    assert result.snapshot_source == "cyclic"
    dates = result.frame["snapshot_date"]
    assert dates[:10].to_list() == [start + dt.timedelta(days=i) for i in range(10)]
    assert dates[10] == start and dates[101_765] == start + dt.timedelta(days=101_765 % 10)


def test_with_snapshot_csv_uses_its_dates(uci_lines: list[list[str]], tmp_path: Path) -> None:
    dates = [(dt.date(2004, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(300)]
    lines = [uci_lines[0] + ["snapshot_date"]] + [
        line + [d] for line, d in zip(uci_lines[1:], dates, strict=True)
    ]
    lines[2][-1] = dates[1] + " 00:00:00"  # pandas-style midnight timestamps are fine too
    result = read_raw(str(write_csv(tmp_path / "diabetic_data_with_snapshot.csv", lines)))
    assert result.snapshot_source == "input"
    assert result.frame.columns == [*RAW_SCHEMA, "snapshot_date"]
    assert [d.isoformat() for d in result.frame["snapshot_date"]] == dates


def test_header_with_spaces_after_commas_reads_the_same(
    uci_lines: list[list[str]], tmp_path: Path
) -> None:
    plain = read_raw(str(write_csv(tmp_path / "a.csv", uci_lines))).frame
    spaced = [[f" {name}" if i else name for i, name in enumerate(uci_lines[0])], *uci_lines[1:]]
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xef\xbb\xbf" + write_csv(path, spaced).read_bytes())  # and a UTF-8 BOM
    assert read_raw(str(path)).frame.equals(plain)


def test_empty_max_glu_serum_reads_as_none_category(
    uci_lines: list[list[str]], tmp_path: Path
) -> None:
    lines = with_value(with_value(uci_lines, 1, "max_glu_serum", ""), 2, "A1Cresult", "?")
    frame = read_raw(str(write_csv(tmp_path / "d.csv", lines))).frame
    assert frame["max_glu_serum"][0] == "None" and frame["A1Cresult"][1] is None


def test_reads_from_s3(uci_lines: list[list[str]], tmp_path: Path, s3_uri: str) -> None:
    from readmit.storage import Storage

    local = write_csv(tmp_path / "diabetic_data.csv", uci_lines)
    Storage(s3_uri).write_bytes("in/diabetic_data.csv", local.read_bytes())
    result = read_raw(f"{s3_uri}/in/diabetic_data.csv")
    assert result.frame.equals(read_raw(str(local)).frame)
    assert result.source == f"{s3_uri}/in/diabetic_data.csv"


# -- structural errors ---------------------------------------------------------------------


def test_missing_columns_are_all_named(uci_lines: list[list[str]], tmp_path: Path) -> None:
    drop = {uci_lines[0].index("time_in_hospital"), uci_lines[0].index("readmitted")}
    lines = [[v for i, v in enumerate(line) if i not in drop] for line in uci_lines]
    path = write_csv(tmp_path / "d.csv", lines)
    with pytest.raises(ReadmitInputError) as err:
        read_raw(str(path))
    message = str(err.value)
    assert str(path) in message
    assert "missing required columns (2): time_in_hospital, readmitted" in message
    assert "Fix:" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty (no header row)"),
        (b"\n\n", "the file is empty (no header row)"),
        (None, "has a header but no data rows"),
        (bytes(range(256)) * 64, "not a CSV text file"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00\xff" * 5000, "not a CSV text file"),
    ],
)
def test_empty_or_binary_files_are_refused(
    content: bytes | None, expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(content if content is not None else (",".join(REQUIRED_COLUMNS) + "\n").encode())
    with pytest.raises(ReadmitInputError, match="Fix:") as err:
        read_raw(str(path))
    assert expected in str(err.value) and str(path) in str(err.value)


def test_text_that_is_not_the_uci_csv_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "page.csv"
    path.write_text("<html>,<body>,maintenance\n1,2,3\n")
    with pytest.raises(ReadmitInputError, match="not the UCI encounters CSV: none of its 50 columns"):
        read_raw(str(path))


def test_zip_without_the_csv_names_its_members(tmp_path: Path) -> None:
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("notes/readme.txt", "hello")
    with pytest.raises(ReadmitInputError, match=r"has no diabetic_data.csv \(members: notes/readme.txt\)"):
        read_raw(str(path))


def test_corrupt_zip_and_missing_file_are_input_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(ReadmitInputError, match="not a readable zip"):
        read_raw(str(bad))
    with pytest.raises(ReadmitInputError, match="file not found"):
        read_raw(str(tmp_path / "nope.csv"))


def test_ragged_row_is_a_parse_error(uci_lines: list[list[str]], tmp_path: Path) -> None:
    lines = [list(line) for line in uci_lines]
    lines[5] = lines[5][:-3]
    with pytest.raises(ReadmitInputError, match="cannot parse the CSV"):
        read_raw(str(write_csv(tmp_path / "d.csv", lines)))


def test_zip_with_two_data_files_is_refused_not_guessed(
    uci_lines: list[list[str]], tmp_path: Path
) -> None:
    text = "".join(",".join(line) + "\n" for line in uci_lines)
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("dataset_diabetes/diabetic_data.csv", text)
        zf.writestr("old/diabetic_data.csv", text)
    with pytest.raises(ReadmitInputError) as err:
        read_raw(str(path))
    assert str(err.value) == (
        f"{path}: the zip holds 2 files named diabetic_data.csv (dataset_diabetes/diabetic_data.csv, "
        "old/diabetic_data.csv): cannot tell which one is the data\n"
        "Fix: keep one diabetic_data.csv in the zip, or give that CSV file itself"
    )


def test_empty_zip_and_cr_only_csv_each_get_their_own_message(
    uci_lines: list[list[str]], tmp_path: Path
) -> None:
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(ReadmitInputError, match=r"the zip is empty \(it holds no file\)") as err:
        read_raw(str(empty))
    assert "binary" not in str(err.value)

    for rows in (3, 300):  # shorter and longer than the sniffed block
        cr_only = tmp_path / f"mac{rows}.csv"
        cr_only.write_bytes("".join(",".join(line) + "\r" for line in uci_lines[:rows]).encode())
        with pytest.raises(ReadmitInputError, match="carriage return only") as err:
            read_raw(str(cr_only))
        assert "binary" not in str(err.value) and "tr '\\r' '\\n'" in str(err.value)


def test_bad_arguments_are_input_errors(uci_lines: list[list[str]], tmp_path: Path) -> None:
    path = str(write_csv(tmp_path / "d.csv", uci_lines))
    with pytest.raises(ReadmitInputError, match="unknown snapshot derivation 'weekly'"):
        read_raw(path, derivation="weekly")
    with pytest.raises(ReadmitInputError, match="is after end"):
        read_raw(path, start=dt.date(2005, 1, 1), end=dt.date(2004, 1, 1))


# -- row-level errors ----------------------------------------------------------------------

BAD_VALUES = [
    ("num_lab_procedures", "abc", "num_lab_procedures: 'abc' is not an integer"),
    ("number_inpatient", "2.5", "number_inpatient: '2.5' is not an integer"),
    ("encounter_id", "?", "encounter_id is missing"),
    ("patient_nbr", "", "patient_nbr is missing"),
    ("readmitted", "YES", "readmitted: 'YES' is not one of <30, >30, NO"),
    # value rules of readmit.data.schema: plausible types, impossible values
    ("time_in_hospital", "-3", "time_in_hospital: -3 is outside the allowed range 1..14"),
    ("time_in_hospital", "15", "time_in_hospital: 15 is outside the allowed range 1..14"),
    ("number_emergency", "-1", "number_emergency: -1 is outside the allowed range >= 0"),
    ("age", "[100-110)", "age: '[100-110)' is not one of [0-10), [10-20)"),
    ("metformin", "Sometimes", "metformin: 'Sometimes' is not one of No, Steady, Up, Down"),
]


@pytest.mark.parametrize(("column", "value", "reason"), BAD_VALUES)
def test_bad_value_is_refused_naming_row_column_and_fix(
    uci_lines: list[list[str]], tmp_path: Path, column: str, value: str, reason: str
) -> None:
    path = write_csv(tmp_path / "d.csv", with_value(uci_lines, 7, column, value))
    with pytest.raises(ReadmitInputError) as err:
        read_raw(str(path))
    message = str(err.value)
    assert f"{path}: 1 bad row; the first is data row 7 (line 8): {reason}" in message
    assert "--quarantine" in message


def test_refusal_counts_every_bad_row_across_batches(
    uci_lines: list[list[str]], tmp_path: Path
) -> None:
    lines = with_value(uci_lines, 250, "time_in_hospital", "x")
    lines = with_value(lines, 40, "num_medications", "many")
    lines = with_value(lines, 280, "readmitted", "maybe")
    path = write_csv(tmp_path / "d.csv", lines)
    with pytest.raises(ReadmitInputError, match=r"3 bad rows; the first is data row 40 \(line 41\)"):
        read_raw(str(path), batch_rows=16)


def test_duplicate_encounter_id_is_refused(uci_lines: list[list[str]], tmp_path: Path) -> None:
    lines = with_value(uci_lines, 9, "encounter_id", uci_lines[3][0])
    with pytest.raises(ReadmitInputError) as err:
        read_raw(str(write_csv(tmp_path / "d.csv", lines)))
    assert (
        f"data row 9 (line 10): encounter_id: {uci_lines[3][0]} repeats an earlier row's encounter_id"
        in str(err.value)
    )


def test_invalid_snapshot_date_is_refused(uci_lines: list[list[str]], tmp_path: Path) -> None:
    lines = [uci_lines[0] + ["snapshot_date"]] + [line + ["2003-05-01"] for line in uci_lines[1:]]
    lines[12][-1] = "2003-02-30"
    with pytest.raises(ReadmitInputError, match=r"data row 12 .*snapshot_date: '2003-02-30' is not an ISO date"):
        read_raw(str(write_csv(tmp_path / "d.csv", lines)))


# -- quarantine ------------------------------------------------------------------------------


def test_quarantine_sets_bad_rows_aside_with_reasons(
    uci_lines: list[list[str]], tmp_path: Path
) -> None:
    lines = uci_lines
    for row, (column, value, _) in zip((2, 50, 120, 199, 300), BAD_VALUES[:5], strict=True):
        lines = with_value(lines, row, column, value)
    lines = with_value(lines, 260, "encounter_id", uci_lines[10][0])  # duplicate of row 10
    lines = with_value(lines, 261, "num_procedures", "one")  # two problems on one row:
    lines = with_value(lines, 261, "readmitted", "maybe")
    path = write_csv(tmp_path / "d.csv", lines)
    result = read_raw(str(path), quarantine=True, batch_rows=64)
    rejected = result.rejected
    assert result.rows_in == 300 == result.frame.height + rejected.height
    assert rejected[ROW_COLUMN].to_list() == [2, 50, 120, 199, 260, 261, 300]
    assert rejected.columns == [*RAW_SCHEMA, "_row", "_reason"]
    assert all(rejected.schema[c] == pl.String for c in RAW_SCHEMA)
    assert rejected["num_lab_procedures"][0] == "abc"  # original text kept
    assert rejected["encounter_id"][2] == "?" and rejected["patient_nbr"][3] == ""
    reasons = rejected["_reason"].to_list()
    assert reasons[4].endswith("repeats an earlier row's encounter_id")
    assert reasons[5] == (
        "num_procedures: 'one' is not an integer; readmitted: 'maybe' is not one of <30, >30, NO (or blank: outcome not known yet)"
    )
    kept_ids = result.frame["encounter_id"].to_list()
    assert int(uci_lines[10][0]) in kept_ids  # the first occurrence stays
    assert result.frame["encounter_id"].is_unique().all()


def test_batches_stream_the_same_rows_as_one_read(
    uci_lines: list[list[str]], tmp_path: Path
) -> None:
    path = str(write_csv(tmp_path / "d.csv", with_value(uci_lines, 33, "gender", "?")))
    reader = open_raw(path, batch_rows=7)
    batches = list(reader.batches())
    assert [b.frame.height for b in batches] == [7] * 42 + [6]
    assert pl.concat([b.frame for b in batches]).equals(read_raw(path).frame)
