"""Plain JSON from whatever a step returns: the one conversion readmit writes and prints through.

numpy scalars and arrays become Python numbers and lists, tuples become lists, mapping keys
become strings, a NaN or an infinity becomes ``null`` (JSON has neither), and anything else that
JSON cannot hold (a date, a path) becomes its ``str``. The result survives ``json.dumps`` with
``allow_nan=False`` and reads back equal to itself.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (see the module doc)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None  # np.float64 is a float
    np = sys.modules.get("numpy")  # a numpy value exists only where numpy is loaded: never import it here
    if np is not None:
        if isinstance(value, np.generic):
            return jsonable(value.item())
        if isinstance(value, np.ndarray):
            return jsonable(value.tolist())
    return str(value)


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """JSON text of ``value`` made plain by :func:`jsonable`."""
    return json.dumps(jsonable(value), indent=indent, allow_nan=False)
