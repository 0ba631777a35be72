"""One way to plain JSON: what readmit writes, signs and prints."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import numpy as np

from readmit.jsonsafe import dumps, jsonable


def test_numpy_tuples_keys_and_non_finite_values_become_plain_json():
    value = {
        1: np.float64(0.25), "n": np.int64(7), "ok": np.bool_(True), "arr": np.arange(3),
        "t": (1, 2.5), "nan": float("nan"), "inf": np.float64(np.inf), "day": date(2008, 1, 31),
        "path": Path("/x/y"), "none": None, "nested": [{"f": np.float32(0.5)}],
    }
    plain = jsonable(value)
    assert plain == {"1": 0.25, "n": 7, "ok": True, "arr": [0, 1, 2], "t": [1, 2.5], "nan": None, "inf": None,
                     "day": "2008-01-31", "path": "/x/y", "none": None, "nested": [{"f": 0.5}]}
    assert type(plain["1"]) is float and type(plain["n"]) is int and type(plain["ok"]) is bool
    assert json.loads(dumps(value)) == plain  # strict JSON (no NaN), and it reads back as written
    assert jsonable(plain) == plain


def test_a_finite_float_keeps_its_value_exactly():
    for x in (0.1, 1e-300, -2.5e10, math.pi):
        assert jsonable(np.float64(x)) == x and json.loads(dumps(x)) == x
