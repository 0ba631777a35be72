"""Session trees built once per test run, however many pytest-xdist workers share the run.

``pytest -n 2`` gives every worker its own session, so a plain session fixture (a registry
trained once, a datamart built once) is built once per worker. :func:`built_once` builds it once
for the run instead: the workers' temp folders share a parent (``getbasetemp().parent``, the
run's own ``pytest-N``); there, under an exclusive ``fcntl.flock`` on ``<name>.lock``, the first
worker to ask builds ``<name>/`` and the others wait for the lock and reuse it. Without xdist the
folder is the session's own basetemp, so a plain ``pytest`` builds it once as before.

The tree is built where it stays (the fixtures write absolute paths into configs and registries,
which a rename would break); what the build returned is pickled to ``<name>.value``, written
last through a rename, so a tree without its ``.value`` is a build that died half-way and the
next worker removes and rebuilds it. The tree is read-only while any worker uses it and
fingerprinted once; every worker checks the fingerprint when its session ends
(tests/read_only.py: root ignores the write bits), and the last one out gives the write bits
back so pytest can remove old temp folders.
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from read_only import fingerprint, make_read_only, make_writable

T = TypeVar("T")


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that every worker of this run shares (and no other run)."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared-builds"
    shared.mkdir(exist_ok=True)
    return shared


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _users(shared: Path, name: str, change: int) -> int:
    count = shared / f"{name}.users"
    users = (int(count.read_text()) if count.exists() else 0) + change
    count.write_text(str(users))
    return users


@contextmanager
def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], T],
               copy_with: str) -> Iterator[T]:
    """Around a session fixture's ``yield``: ``build(root)`` once per run; yields what it returned.

    ``root`` is read-only on disk while the run uses it; ``copy_with`` names the fixture a test
    that writes must take instead.
    """
    shared = run_folder(tmp_path_factory)
    root, value, prints = shared / name, shared / f"{name}.value", shared / f"{name}.fingerprint"
    with _locked(shared / f"{name}.lock"):
        if not value.exists():
            if root.exists():  # a build that failed half-way
                make_writable(root)
                shutil.rmtree(root)
            root.mkdir()
            result = build(root)
            prints.write_text(json.dumps(fingerprint(root)))
            partial = shared / f"{name}.value.partial"
            partial.write_bytes(pickle.dumps(result))
            partial.rename(value)
        else:
            result = pickle.loads(value.read_bytes())
        if _users(shared, name, +1) == 1:
            make_read_only(root)
    try:
        yield result
    finally:
        with _locked(shared / f"{name}.lock"):
            if _users(shared, name, -1) == 0:
                make_writable(root)  # pytest removes old temp folders later
            before, after = json.loads(prints.read_text()), fingerprint(root)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        if changed:
            pytest.fail(f"tests wrote into the shared, read-only {name} ({root}): {', '.join(changed[:10])}"
                        f"{' ...' if len(changed) > 10 else ''}; a test that writes takes {copy_with}", pytrace=False)
