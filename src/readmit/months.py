"""Calendar months, the grain of every partition: ``YYYY-MM`` text, checked, counted and turned
into dates in one place.

A month is written ``YYYY-MM`` (:data:`MONTH_FORMAT` for ``strftime``); a range of months is
closed at both ends. The datamart stores a month as ``snapshot_month=YYYY-MM``; an engine's
scratch tables key it as the integer ``YYYYMM`` (:func:`month_number`).
"""

from __future__ import annotations

import calendar
import re
from datetime import date

from readmit.errors import ReadmitInputError

MONTH_FORMAT = "%Y-%m"
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def check_month(month: str) -> str:
    """``month`` unchanged when it is a ``YYYY-MM`` month; otherwise a message with the fix."""
    if not isinstance(month, str) or not _MONTH.match(month):
        raise ReadmitInputError(
            f"invalid month {month!r}", fix="write months as YYYY-MM, for example 2005-03"
        )
    return month


def check_month_range(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    """Check a month range (``YYYY-MM`` or None = open): each month valid, start not after end."""
    start = check_month(start) if start else None
    end = check_month(end) if end else None
    if start and end and start > end:
        raise ReadmitInputError(
            f"start month {start} is after end month {end}",
            fix="give the start month before the end month",
        )
    return start, end


def months_between(start: str, end: str) -> list[str]:
    """Every month ``YYYY-MM`` from ``start`` to ``end``, both included (checked as
    :func:`check_month_range` does)."""
    start, end = check_month_range(start, end)
    months, (y, m) = [], (int(start[:4]), int(start[5:]))
    while f"{y:04d}-{m:02d}" <= end:
        months.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def month_of(day: date) -> str:
    """The month ``YYYY-MM`` a date falls in."""
    return day.strftime(MONTH_FORMAT)


def months_spanning(start: date, end: date) -> list[str]:
    """Every month that overlaps the dates ``start`` .. ``end``."""
    return months_between(month_of(start), month_of(end))


def first_day(month: str) -> date:
    year, mon = int(check_month(month)[:4]), int(month[5:])
    return date(year, mon, 1)


def last_day(month: str) -> date:
    year, mon = int(check_month(month)[:4]), int(month[5:])
    return date(year, mon, calendar.monthrange(year, mon)[1])


def month_number(month: str) -> int:
    """``"2005-03"`` -> ``200503``: the integer key an engine partitions its scratch tables by."""
    return int(check_month(month).replace("-", ""))


def is_mature(month: str, as_of: date, maturity_days: int) -> bool:
    """Whether every label of ``month`` is known on ``as_of``: ``maturity_days`` have passed since
    its last day (a 30-day readmission label needs the 30 days after discharge)."""
    return (as_of - last_day(month)).days >= maturity_days
