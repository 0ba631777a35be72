"""Trees that the whole session shares are read-only on disk, and checked when the session ends.

:func:`shared_read_only` takes the write bits off every file and folder of a tree; because root
ignores those bits (CI containers often run as root), it also fingerprints the files and, when the
fixture is torn down, fails the session if any changed, naming them. A test that needs to change
such a tree works on :func:`writable_copy` of it; one that only adds to a folder of it (a new table
beside the shared ones) takes :func:`linked_copy`: nothing copied, and a write through one of its
links into the shared tree is caught the same way.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def _tree(root: Path) -> list[Path]:
    return [root, *sorted(root.rglob("*"))]


def make_read_only(root: Path) -> None:
    for path in _tree(root):
        path.chmod(path.stat().st_mode & ~_WRITE)


def make_writable(root: Path) -> None:
    for path in _tree(root):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def fingerprint(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``root`` ("dir" for a folder)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in _tree(root)[1:]}


def writable_copy(source: str | Path, target: str | Path) -> Path:
    """A copy of (a part of) a read-only tree that is the test's own: writable, permissions not copied."""
    shutil.copytree(source, target, copy_function=shutil.copyfile)
    make_writable(Path(target))
    return Path(target)


def linked_copy(source: str | Path, target: str | Path) -> Path:
    """A folder of the test's own whose entries are links to those of the read-only ``source``:
    new entries are the test's, the shared ones are read through the links (hundreds of
    partition files a test neither writes nor removes)."""
    target = Path(target)
    target.mkdir(parents=True)
    for entry in Path(source).resolve().iterdir():
        (target / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return target


def own_copy(link: str | Path) -> Path:
    """Turn one entry of a :func:`linked_copy` into a writable copy of the test's own (to change it)."""
    link = Path(link)
    shared = link.readlink()
    link.unlink()
    return writable_copy(shared, link)


@contextmanager
def shared_read_only(root: Path, name: str, copy_with: str) -> Iterator[None]:
    """Around a session fixture's ``yield``: ``root`` read-only while the session runs, checked after."""
    before = fingerprint(root)
    make_read_only(root)
    try:
        yield
    finally:
        make_writable(root)  # pytest removes old temp folders later
        after = fingerprint(root)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        if changed:
            pytest.fail(f"tests wrote into the shared, read-only {name} ({root}): {', '.join(changed[:10])}"
                        f"{' ...' if len(changed) > 10 else ''}; a test that writes takes {copy_with}", pytrace=False)
