"""XGBoost's classifier, reusing the quantile sketch of a training matrix it has already seen.

XGBoost's ``hist`` method first sketches every column's quantiles into bins: on a fold of the UCI
training window that costs 0.36 of the ~0.9 CPU-seconds of a whole fit, and a search fits 20
candidates on each of the same 5 fold matrices (then the calibration fits them once more). The
sketch depends only on the matrix, the labels, ``max_bin`` and ``missing``, so the binned matrix
(XGBoost's ``QuantileDMatrix``, read-only during training) is kept for the last few matrices,
keyed by their content: a fit on the same bytes gets the same bins, so the model equals a plain
``XGBClassifier``'s (``tests/training/test_algorithms.py``). Anything unusual (weights, categorical
data, a non-numpy input) takes XGBoost's own path.

The hook is XGBoost's private ``XGBModel._create_dmatrix(self, ref, **kwargs)`` (xgboost 2.1-3.x;
pyproject.toml bounds xgboost ``<4``). Every saved XGBoost model is an instance of this class, so
its pickle names ``readmit.training.xgb.SketchReusingXGBClassifier``; only the class is pickled,
not the hook. When XGBoost changes the method (:func:`private_hook_fits` is False) every call
goes to XGBoost's own, unchanged (the public behaviour, without the reuse), and
``tests/training/test_algorithms.py`` fails so the change is seen.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from xgboost import XGBClassifier

KEPT = 8  # a search's 5 folds, the full training window and a spare: ~3 MB each on the UCI data
_SKETCHES: OrderedDict[tuple, Any] = OrderedDict()
_LOCK = threading.Lock()
_PLAIN_ONLY = ("weight", "base_margin", "group", "qid", "feature_weights", "feature_types")


def _digest(array: Any) -> str:
    return hashlib.blake2b(np.ascontiguousarray(array).view(np.uint8), digest_size=16).hexdigest()


@functools.cache
def private_hook_fits() -> bool:
    """Whether the installed XGBoost still builds training matrices through
    ``_create_dmatrix(self, ref, **kwargs)``, the private method the class below overrides."""
    method = getattr(XGBClassifier, "_create_dmatrix", None)
    if method is None:
        return False
    params = list(inspect.signature(method).parameters.values())
    return [p.name for p in params[:2]] == ["self", "ref"] and params[-1].kind is inspect.Parameter.VAR_KEYWORD


class SketchReusingXGBClassifier(XGBClassifier):
    """``XGBClassifier`` whose training matrix is binned once per distinct matrix."""

    def _create_dmatrix(self, *args: Any, **kwargs: Any) -> Any:
        if not private_hook_fits() or len(args) > 1:  # XGBoost changed: its own path, as it calls it
            return super()._create_dmatrix(*args, **kwargs)
        ref = args[0] if args else kwargs.pop("ref", None)
        data, label = kwargs.get("data"), kwargs.get("label")
        if (ref is not None or not isinstance(data, np.ndarray) or label is None
                or kwargs.get("enable_categorical") or any(kwargs.get(k) is not None for k in _PLAIN_ONLY)):
            return super()._create_dmatrix(ref, **kwargs)
        key = (_digest(data), data.shape, _digest(np.asarray(label)), self.max_bin, repr(kwargs.get("missing")))
        with _LOCK:
            found = _SKETCHES.get(key)
            if found is not None:
                _SKETCHES.move_to_end(key)
                return found
        built = super()._create_dmatrix(ref, **kwargs)
        with _LOCK:
            _SKETCHES[key] = built
            while len(_SKETCHES) > KEPT:
                _SKETCHES.popitem(last=False)
        return built


def forget_sketches() -> None:
    """Drop every kept matrix (after training: the memory goes back)."""
    with _LOCK:
        _SKETCHES.clear()
