"""Where a result came from: the code's commit and the libraries' versions."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from readmit.lineage import LIBRARIES, git_revision, library_versions


def test_git_revision_is_the_checkouts_commit_or_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("READMIT_GIT_REVISION", raising=False)
    repo = Path(__file__).resolve().parents[1]
    # A source tarball (what a packager tests) has no .git: there the revision is unknown.
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=False)
        top = subprocess.run(["git", "-C", str(repo), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, check=False)
        in_checkout = head.returncode == 0 and Path(top.stdout.strip()).resolve() == repo
    except OSError:  # no git at all (a packager's build root): no checkout either
        in_checkout = False
    assert git_revision(repo) == (head.stdout.strip() if in_checkout else None)
    assert git_revision(tmp_path) is None  # not a checkout (an installed wheel, a container)
    monkeypatch.setenv("READMIT_GIT_REVISION", "0123abc")  # set by whoever builds the image
    assert git_revision(tmp_path) == "0123abc"


def test_library_versions_name_python_and_every_library_that_shapes_a_model():
    versions = library_versions()
    assert versions["python"] == platform.python_version()
    assert set(versions) == {"python", *LIBRARIES}
    assert versions["polars"] and versions["scikit-learn"]  # installed here, so known
