"""Narwhals expressions translated to Polars once: the same definitions, without the per-call cost.

The medallion's rules are narwhals expressions, so one definition runs on every engine. On
Polars, translating them costs more than computing them on a small frame (a month of the
monthly build, one encounter scored online): :func:`polars_exprs` translates a tuple of them
once (the caller caches the result) and :func:`with_columns` applies the translation.
"""

from __future__ import annotations

import narwhals as nw
import polars as pl


def polars_exprs(exprs: tuple[nw.Expr, ...]) -> list[pl.Expr] | None:
    """The Polars expressions narwhals builds for ``exprs``, translated once (cache the result).

    Polars runs the medallion month by month on small frames, where translating ~80 expressions
    on every call costs as much as computing them; the definitions stay the narwhals ones.

    The translation goes through narwhals' private ``__narwhals_namespace__`` and
    ``_to_compliant_expr`` (narwhals 2.x; pyproject.toml bounds it ``<3``): the only place that
    does. None when they are gone or changed, and the caller runs the narwhals expressions
    themselves (:func:`with_columns`: the same result, slower on small frames);
    ``tests/data/test_features.py`` fails then, so the change is seen.
    """
    try:
        namespace = nw.from_native(pl.DataFrame()).__narwhals_namespace__()
        translated = [expr._to_compliant_expr(namespace).native for expr in exprs]
    except (AttributeError, TypeError):
        return None
    return translated if all(isinstance(e, pl.Expr) for e in translated) else None


def with_columns(frame: pl.DataFrame, exprs: tuple[nw.Expr, ...], translated: list[pl.Expr] | None) -> pl.DataFrame:
    """``frame`` with ``exprs`` added: their Polars translation (:func:`polars_exprs`) when there is one."""
    if translated is None:
        return nw.from_native(frame).with_columns(*exprs).to_native()
    return frame.with_columns(translated)
