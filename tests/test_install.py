"""The pins stay in step with pyproject.toml: every dependency of every extra is pinned in
constraints.txt (exported from uv.lock by scripts/lock) at a version its bounds accept."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, list[Version]]:
    pins: dict[str, list[Version]] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"constraints.txt: {line!r} is not an exact pin"
        pins.setdefault(canonicalize_name(requirement.name), []).append(Version(spec.version))
    return pins


def test_every_dependency_is_pinned_within_its_bounds() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        declared += extra
    pins = _pins()
    stale = []
    for text in declared:
        requirement = Requirement(text)
        versions = pins.get(canonicalize_name(requirement.name), [])
        if not versions or not all(requirement.specifier.contains(v, prereleases=True) for v in versions):
            stale.append(f"{text} (pinned: {', '.join(map(str, versions)) or 'nothing'})")
    assert stale == [], "run scripts/lock and commit uv.lock and constraints.txt: " + "; ".join(stale)


def test_no_extra_brings_cuda_libraries() -> None:
    cuda = sorted(name for name in _pins() if name.startswith("nvidia-"))
    assert cuda == [], f"{cuda} come in through a dependency: keep xgboost-cpu (see pyproject.toml)"
