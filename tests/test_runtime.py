"""The cores a run may use."""

from __future__ import annotations

import os

from readmit.runtime import available_cpus, resolve_n_jobs


def test_n_jobs_never_asks_for_more_cores_than_the_process_has(monkeypatch):
    assert available_cpus() == len(os.sched_getaffinity(0))
    monkeypatch.setattr("readmit.runtime.available_cpus", lambda: 8)
    assert resolve_n_jobs(-1) == resolve_n_jobs(0) == resolve_n_jobs(None) == 8
    assert resolve_n_jobs(-2) == 7  # joblib's convention: all but one
    assert resolve_n_jobs(-20) == 1
    assert resolve_n_jobs(3) == 3 and resolve_n_jobs(10_000) == 8
