"""What a run has to work with: the cores it may use, and the callback that reports its progress."""

from __future__ import annotations

import os
from collections.abc import Callable

# A step's progress: one line of text at a time (a CLI spinner, a log line, a test's list).
Progress = Callable[[str], None]


def available_cpus() -> int:
    """The cores this process may run on (its CPU affinity, so a container's limit counts)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def resolve_n_jobs(n_jobs: int | None) -> int:
    """``-1`` (or 0, None) = every available core; ``-k`` = all but k - 1; otherwise at most the
    available cores."""
    cpus = available_cpus()
    if n_jobs is None or n_jobs <= 0:
        return cpus if n_jobs in (None, 0, -1) else max(1, cpus + 1 + n_jobs)
    return min(n_jobs, cpus)
