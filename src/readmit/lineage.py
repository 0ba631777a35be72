"""Where a result came from: the commit of the code and the versions of the libraries that made it.

Recorded in every model's metadata and compared by the report with what runs now.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

# The distributions whose versions change a model or its scores.
LIBRARIES = ("readmit", "scikit-learn", "xgboost", "numpy", "scipy", "polars", "pyarrow", "joblib")


def git_revision(start: Path | None = None) -> str | None:
    """The commit of the readmit checkout this code runs from (``git rev-parse HEAD``), or None.

    ``READMIT_GIT_REVISION`` wins (an image has no ``.git``); an installed wheel, or a checkout
    of another project around it, gives None. Never fails.
    """
    env = os.environ.get("READMIT_GIT_REVISION")
    if env:
        return env

    here = (start or Path(__file__)).resolve()
    folder = here if here.is_dir() else here.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                                  timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return (done.stdout.strip() or None) if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or not (Path(top) / "src" / "readmit").is_dir():
        return None
    return git("rev-parse", "HEAD")


def library_versions() -> dict[str, str | None]:
    """Python's version and each of :data:`LIBRARIES` (None: not installed)."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in LIBRARIES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out
