"""Preprocessing never sees test or out-of-time rows.

Every encoder and transformer inside the saved model (the frame encoder's category vocabulary,
the imputer's medians, the scaler's means, the one-hot categories) must be learned from the train
window alone. Checked on what ``train_algorithm`` saves, whatever wraps the preprocessing:
1. its learned state equals what fitting the same steps on the train window alone gives;
2. rewriting every test and out-of-time row (unseen categories, shifted numbers, flipped labels)
   leaves that state exactly as it was.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer

from readmit.data import features as F
from readmit.pipeline import train_algorithm
from readmit.registry import Registry
from readmit.training.encoding import FrameEncoder
from readmit.training.split import load_gold
from training.gold_fixtures import synthetic_gold_frames, write_gold

TEST_START = date(2006, 1, 1)  # the default windows: train 1999-2005, test 2006-2007, oot 2008
UNSEEN = "only_in_test_or_oot"


def _later_rows_rewritten(features: pl.DataFrame, labels: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every row from TEST_START on changed beyond recognition; train rows untouched."""
    later = pl.col("snapshot_date") >= TEST_START
    features = features.with_columns(
        *[pl.when(later).then(pl.col(c) * 50 + 1000).otherwise(pl.col(c)).alias(c) for c in F.NUMERIC_FEATURES],
        *[pl.when(later).then(pl.lit(UNSEEN)).otherwise(pl.col(c)).alias(c) for c in F.CATEGORICAL_FEATURES],
    )
    labels = labels.with_columns(
        pl.when(later).then(1 - pl.col("label")).otherwise(pl.col("label")).cast(pl.Int8).alias("label")
    )
    return features, labels


def _steps(obj: Any, seen: set[int] | None = None) -> list[Any]:
    """Every fitted FrameEncoder and ColumnTransformer reachable inside a saved model."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, FrameEncoder) and hasattr(obj, "vocabulary_"):
        return [obj]
    if isinstance(obj, ColumnTransformer) and hasattr(obj, "transformers_"):
        return [obj]
    found: list[Any] = []
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, list | tuple):
        children = list(obj)
    elif type(obj).__module__.split(".")[0] in ("sklearn", "readmit", "xgboost") and hasattr(obj, "__dict__"):
        children = list(vars(obj).values())
    else:
        children = []
    for child in children:
        found.extend(_steps(child, seen))
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and np.isnan(value):
        return "nan"
    if hasattr(value, "get_params"):  # a fitted sub-estimator (the imputer's missing indicator)
        return {k: _plain(v) for k, v in sorted(vars(value).items()) if k.endswith("_")}
    return value


def _learned(step: Any) -> dict[str, Any]:
    """The state a step learned from its input: vocabulary, medians, means, scales, categories."""
    if isinstance(step, FrameEncoder):
        return {"vocabulary": _plain(step.vocabulary_)}
    state: dict[str, Any] = {}
    for name, transformer, columns in step.transformers_:
        parts = transformer.steps if hasattr(transformer, "steps") else [(name, transformer)]
        for part_name, part in parts:
            if isinstance(part, str):  # "drop" / "passthrough"
                continue
            state[f"{name}/{part_name}"] = {k: _plain(v) for k, v in sorted(vars(part).items())
                                           if k.endswith("_") and not k.startswith("_")}
        state[f"{name}/columns"] = _plain(columns)
    return state


def _trained_steps(settings: Any) -> list[Any]:
    meta = train_algorithm(settings, "logistic_regression")
    model, _ = Registry(settings.registry_uri).load("logistic_regression", meta["version"])
    steps = _steps(model)
    assert any(isinstance(s, FrameEncoder) for s in steps), "no frame encoder found in the saved model"
    assert any(isinstance(s, ColumnTransformer) for s in steps), "no column transformer found in the saved model"
    return steps


@pytest.fixture(scope="module")
def two_datamarts(tmp_path_factory) -> tuple[str, str]:
    """The same synthetic gold twice: as generated, and with every test/oot row rewritten."""
    features, labels = synthetic_gold_frames(rows=4000, seed=11)
    original = str(tmp_path_factory.mktemp("gold_original"))
    rewritten = str(tmp_path_factory.mktemp("gold_rewritten"))
    write_gold(original, features, labels)
    write_gold(rewritten, *_later_rows_rewritten(features, labels))
    return original, rewritten


def test_preprocessing_learns_from_the_train_window_alone(make_settings, two_datamarts, tmp_path) -> None:
    original, rewritten = two_datamarts
    settings = make_settings(datamart=original, registry=str(tmp_path / "reg_original"))
    steps = _trained_steps(settings)

    # 1. the same steps fitted on the train window alone learn exactly what the saved model holds
    train = load_gold(settings, fingerprints=False).window("train")
    assert train["snapshot_date"].max() < TEST_START
    learned = [_learned(s) for s in steps]
    encoder = next(s for s in steps if isinstance(s, FrameEncoder))
    # a calibrated model holds one pipeline, fitted on the whole train window
    alone = clone(encoder).fit(train)
    assert _learned(alone) in learned
    for step in (s for s in steps if isinstance(s, ColumnTransformer)):
        assert _learned(clone(step).fit(alone.transform(train))) in learned

    # 2. nothing about the later rows reaches them: rewrite every test/oot row, train again
    again = make_settings(datamart=rewritten, registry=str(tmp_path / "reg_rewritten"))
    later = load_gold(again, fingerprints=False).frame.filter(pl.col("window") != "train")
    assert later.height > 0 and (later["race"] == UNSEEN).all()  # the rewrite reached training's input
    assert [_learned(s) for s in _trained_steps(again)] == learned
    assert all(UNSEEN not in values for values in encoder.vocabulary_.values())
