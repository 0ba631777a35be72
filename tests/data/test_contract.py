"""The input contract: the doc matches the schema, optional columns may be absent, integer ages read."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest

from readmit.data.contract import contract_columns, render_input_contract
from readmit.data.raw import open_raw, read_raw
from readmit.data.schema import OPTIONAL_COLUMNS, RAW_SCHEMA, REQUIRED_COLUMNS
from readmit.errors import ReadmitInputError

DOC = Path(__file__).resolve().parents[2] / "docs" / "input_contract.md"
MEMBER = "dataset_diabetes/diabetic_data.csv"


@pytest.fixture(scope="module")
def uci_lines(uci_zip: Path) -> list[list[str]]:
    """The header and the first 200 data rows of the real file, split into fields."""
    with zipfile.ZipFile(uci_zip) as zf, zf.open(MEMBER) as fh:
        return [next(fh).decode().rstrip("\r\n").split(",") for _ in range(201)]


def write_csv(path: Path, lines: list[list[str]]) -> Path:
    path.write_text("".join(",".join(line) + "\n" for line in lines))
    return path


def without(lines: list[list[str]], *columns: str) -> list[list[str]]:
    keep = [i for i, name in enumerate(lines[0]) if name not in columns]
    return [[line[i] for i in keep] for line in lines]


def test_the_doc_holds_the_contract_generated_from_the_schema() -> None:
    doc = DOC.read_text()
    table = doc.split("<!-- contract:start -->\n", 1)[1].split("<!-- contract:end -->", 1)[0]
    assert table == render_input_contract(), "regenerate the table in docs/input_contract.md"
    assert [c.name for c in contract_columns()] == list(RAW_SCHEMA)
    assert {c.name for c in contract_columns() if not c.required} == set(OPTIONAL_COLUMNS) == {
        "weight", "payer_code", "medical_specialty", "max_glu_serum", "A1Cresult"}
    assert set(REQUIRED_COLUMNS) == set(RAW_SCHEMA) - set(OPTIONAL_COLUMNS)


def test_absent_optional_columns_read_as_missing_and_the_rest_as_before(uci_lines, tmp_path: Path) -> None:
    full = read_raw(str(write_csv(tmp_path / "full.csv", uci_lines))).frame
    path = write_csv(tmp_path / "no_weight.csv", without(uci_lines, "weight", "A1Cresult"))
    reader = open_raw(str(path))
    assert reader.absent == ["weight", "A1Cresult"]
    lean = read_raw(str(path))
    assert lean.rejected.height == 0 and lean.frame.height == 200
    assert lean.frame.columns == full.columns
    assert lean.frame["weight"].null_count() == 200 and lean.frame["A1Cresult"].null_count() == 200
    assert full["A1Cresult"].null_count() == 0  # present, "None" is a category; absent, missing
    rest = [c for c in full.columns if c not in ("weight", "A1Cresult")]
    assert lean.frame.select(rest).equals(full.select(rest))


def test_integer_ages_map_to_their_uci_band(uci_lines, tmp_path: Path) -> None:
    lines = [list(line) for line in uci_lines]
    age = lines[0].index("age")
    for row, years in ((1, "67"), (2, "0"), (3, " 99 "), (4, "9")):
        lines[row][age] = years
    frame = read_raw(str(write_csv(tmp_path / "ages.csv", lines))).frame
    assert frame["age"].head(4).to_list() == ["[60-70)", "[0-10)", "[90-100)", "[0-10)"]
    assert frame["age"].slice(4).to_list() == [line[age] for line in uci_lines[5:]]


def test_an_age_of_100_is_refused_naming_the_row(uci_lines, tmp_path: Path) -> None:
    lines = [list(line) for line in uci_lines]
    lines[7][lines[0].index("age")] = "104"
    with pytest.raises(ReadmitInputError, match=r"data row 7 .*age: '104' is not one of") as err:
        read_raw(str(write_csv(tmp_path / "old.csv", lines)))
    assert "old.csv" in str(err.value) and "Fix:" in str(err.value)


def test_a_missing_required_column_names_itself_and_the_contract(uci_lines, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "short.csv", without(uci_lines, "num_procedures", "diag_2", "weight"))
    with pytest.raises(ReadmitInputError) as err:
        read_raw(str(path))
    message = str(err.value)
    assert "missing required columns (2): num_procedures, diag_2" in message
    assert "weight" not in message.split("Fix:")[0]
    assert str(path) in message and "docs/input_contract.md" in message


def test_a_snapshot_date_in_the_future_is_a_bad_row(uci_lines, tmp_path: Path) -> None:
    today = dt.date.today()
    lines = [[*uci_lines[0], "snapshot_date"]]
    lines += [[*line, "2008-06-01"] for line in uci_lines[1:]]
    lines[5][-1] = str(today)  # today is fine
    lines[9][-1] = str(today + dt.timedelta(days=1))
    path = write_csv(tmp_path / "dated.csv", lines)
    with pytest.raises(ReadmitInputError, match=rf"1 bad row; the first is data row 9 .*snapshot_date: "
                       rf"{today + dt.timedelta(days=1)} is in the future \(today is {today}\)") as err:
        read_raw(str(path))
    assert str(path) in str(err.value) and "Fix:" in str(err.value)
    assert read_raw(str(path), quarantine=True).frame.height == 199
