"""The frame -> matrix step every saved model starts with (``frame`` in the tuned pipeline).

A module of its own so that what only reads a config or the algorithm table (``readmit check``,
the gates) does not import scikit-learn: this is the one class here that subclasses its
estimator API, and every model pickles it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin

from readmit.errors import ReadmitInputError

NULL_CATEGORY = "__null__"


# -- the frame -> matrix step ----------------------------------------------------------------


def as_polars(frame: Any) -> pl.DataFrame:
    """Accept a polars DataFrame, anything Arrow-compatible, or a mapping of columns."""
    if isinstance(frame, pl.DataFrame):
        return frame
    if isinstance(frame, pl.LazyFrame):
        return frame.collect()
    try:
        return pl.DataFrame(frame)
    except Exception as exc:  # pragma: no cover - depends on the caller's object
        raise ReadmitInputError(
            f"cannot read a {type(frame).__name__} as a feature frame ({exc})",
            fix="pass a polars DataFrame (or a pyarrow Table) with the gold feature columns",
        ) from exc


class FrameEncoder(TransformerMixin, BaseEstimator):
    """Turn a gold feature frame into a float32 matrix: numeric columns, then categorical codes.

    Input: a polars DataFrame (or pyarrow Table) holding at least ``numeric + categorical``
    columns; other columns (keys, flags, label) are ignored. Numeric columns are cast to float32
    (null -> NaN). Each categorical column becomes the integer code of its value in the training
    vocabulary, ordered by training frequency (most frequent = 0); a null is its own category and
    a value never seen in training gets the code ``len(vocabulary)``.
    """

    def __init__(self, numeric: Sequence[str] = (), categorical: Sequence[str] = ()):
        self.numeric = numeric
        self.categorical = categorical

    def _check(self, df: pl.DataFrame) -> None:
        missing = [c for c in (*self.numeric, *self.categorical) if c not in df.columns]
        if missing:
            raise ReadmitInputError(
                f"the feature frame lacks column(s) {', '.join(missing)}",
                fix="score frames read from gold/feature_store (built by the same readmit version "
                "as the model), or retrain the model on the current gold tables",
            )

    def fit(self, X: Any, y: Any = None) -> FrameEncoder:
        df = as_polars(X)
        self._check(df)
        vocab: dict[str, list[str]] = {}
        for col in self.categorical:
            values = df[col].cast(pl.String).fill_null(NULL_CATEGORY)
            counts = values.value_counts()
            counts = counts.sort(["count", col], descending=[True, False])
            vocab[col] = counts[col].to_list()
        self.vocabulary_ = vocab
        self.feature_names_out_ = np.array([*self.numeric, *self.categorical], dtype=object)
        self.n_numeric_ = len(self.numeric)
        return self

    def transform(self, X: Any) -> np.ndarray:
        df = as_polars(X)
        self._check(df)
        out = np.empty((df.height, len(self.numeric) + len(self.categorical)), dtype=np.float32)
        if self.numeric:
            try:
                block = df.select(pl.col(c).cast(pl.Float32) for c in self.numeric)
            except Exception as exc:
                bad = next(c for c in self.numeric if not df.schema[c].is_numeric())
                raise ReadmitInputError(
                    f"numeric feature {bad} has type {df.schema[bad]} and cannot be read as a number",
                    fix="score frames from gold/feature_store; rebuild gold if its schema changed",
                ) from exc
            out[:, : len(self.numeric)] = block.to_numpy().astype(np.float32, copy=False)
        if self.categorical:
            codes = df.select(
                pl.col(col).cast(pl.String).fill_null(NULL_CATEGORY).replace_strict(
                    self.vocabulary_[col], list(range(len(self.vocabulary_[col]))),
                    default=len(self.vocabulary_[col]), return_dtype=pl.Float32)
                for col in self.categorical
            )
            out[:, len(self.numeric):] = codes.to_numpy()
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.feature_names_out_
