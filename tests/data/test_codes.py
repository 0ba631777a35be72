"""Diagnosis code shapes: ICD-9 only, ICD-10-CM only, either, or neither."""

from __future__ import annotations

import polars as pl
import pytest

from readmit.data.codes import EITHER, ICD9, ICD10, INVALID, shape_counts


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
