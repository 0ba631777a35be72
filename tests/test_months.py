"""Months: checked, counted, turned into dates, and judged mature."""

from __future__ import annotations

from datetime import date

import pytest

from readmit.errors import ReadmitInputError
from readmit.months import (
    check_month,
    check_month_range,
    first_day,
    is_mature,
    last_day,
    month_number,
    month_of,
    months_between,
    months_spanning,
)


@pytest.mark.parametrize("bad", ["2005-13", "2005-00", "2005-3", "05-03", "2005/03", "", None, 200503])
def test_a_month_that_is_not_yyyy_mm_is_refused_with_the_fix(bad):
    with pytest.raises(ReadmitInputError, match="invalid month") as caught:
        check_month(bad)
    assert "YYYY-MM" in str(caught.value)


def test_a_range_is_closed_at_both_ends_and_crosses_years():
    assert months_between("2005-11", "2006-02") == ["2005-11", "2005-12", "2006-01", "2006-02"]
    assert months_between("2008-03", "2008-03") == ["2008-03"]
    assert check_month_range(None, "2008-03") == (None, "2008-03")
    with pytest.raises(ReadmitInputError, match="start month 2008-04 is after end month 2008-03"):
        months_between("2008-04", "2008-03")


def test_dates_and_months():
    assert month_of(date(2008, 2, 29)) == "2008-02"
    assert months_spanning(date(2007, 12, 31), date(2008, 1, 1)) == ["2007-12", "2008-01"]
    assert first_day("2008-02") == date(2008, 2, 1)
    assert last_day("2008-02") == date(2008, 2, 29) and last_day("2007-02") == date(2007, 2, 28)
    assert last_day("2008-12") == date(2008, 12, 31)
    assert month_number("2005-03") == 200503


def test_a_month_is_mature_label_maturity_days_after_its_last_day():
    assert is_mature("2008-08", date(2008, 9, 30), 30)
    assert not is_mature("2008-08", date(2008, 9, 29), 30)
    assert is_mature("2008-08", date(2008, 8, 31), 0)
    assert not is_mature("2008-12", date(2008, 12, 15), 0)
