"""Aliases and their append-only history, locally and on S3; loading by alias verifies first."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from readmit.errors import ArtifactError, ReadmitInputError
from readmit.registry import Registry
from readmit.registry.aliases import (
    alias_history,
    champion_lineage,
    get_alias,
    get_aliases,
    load_alias,
    set_alias,
)


class _Model:
    def __init__(self, name):
        self.name = name


def _registry(uri: str) -> tuple[Registry, list[str]]:
    registry = Registry(uri)
    versions = [registry.save("xgboost", _Model(i), {"note": i})["version"] for i in range(3)]
    return registry, versions


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])  # S3 is slow: conftest.py
def registry(request, tmp_path):
    uri = str(tmp_path / "registry") if request.param == "local" else request.getfixturevalue("s3_uri") + "/registry"
    return _registry(uri)


def test_set_get_and_the_history_of_every_change(registry):
    reg, (v1, v2, _) = registry
    assert get_aliases(reg) == {"champion": None, "challenger": None}
    first = set_alias(reg, "champion", "xgboost", v1, reason="first", by="ana")
    set_alias(reg, "champion", "xgboost", v2, reason="better", by="bo", event="promotion")
    set_alias(reg, "challenger", "xgboost", v1, reason="kept", by="bo")
    record = get_alias(reg, "champion")
    assert {k: record[k] for k in ("alias", "algorithm", "version", "by", "reason")} == {
        "alias": "champion", "algorithm": "xgboost", "version": v2, "by": "bo", "reason": "better"}
    history = alias_history(reg)
    assert [(e["event"], e["alias"], e["from"], e["to"]) for e in history] == [
        ("alias_set", "champion", None, {"algorithm": "xgboost", "version": v1}),
        ("promotion", "champion", {"algorithm": "xgboost", "version": v1}, {"algorithm": "xgboost", "version": v2}),
        ("alias_set", "challenger", None, {"algorithm": "xgboost", "version": v1}),
    ]
    assert [e["by"] for e in history] == ["ana", "bo", "bo"]
    assert first["path"].startswith(reg.storage.uri_of("models/readmission/events/"))
    assert record["set_at"] == history[1]["at"]


def test_events_are_separate_objects_never_rewritten(tmp_path):
    reg, (v1, v2, v3) = _registry(str(tmp_path / "registry"))
    folder = Path(tmp_path / "registry/models/readmission/events")
    set_alias(reg, "champion", "xgboost", v1, reason="a", by="t")
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    for version in (v2, v3, v1):
        set_alias(reg, "champion", "xgboost", version, reason="b", by="t")
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert len(after) == 4
    assert all(after[name] == data for name, data in first.items())
    assert sorted(after) == [e["id"] + ".json" for e in alias_history(reg)]


def test_an_alias_points_only_at_a_version_that_exists_and_verifies(tmp_path):
    reg, (v1, *_) = _registry(str(tmp_path / "registry"))
    with pytest.raises(ArtifactError, match="not found"):
        set_alias(reg, "champion", "xgboost", "20200101_000000", reason="x", by="t")
    with pytest.raises(ReadmitInputError, match="unknown alias"):
        set_alias(reg, "production", "xgboost", v1, reason="x", by="t")
    with pytest.raises(ReadmitInputError, match="fixed version"):
        set_alias(reg, "champion", "xgboost", "latest", reason="x", by="t")
    assert alias_history(reg) == []


def test_loading_by_alias_refuses_a_tampered_artifact_without_unpickling_it(registry, tmp_path):
    reg, (v1, *_) = registry
    set_alias(reg, "champion", "xgboost", v1, reason="x", by="t")
    model, meta, record = load_alias(reg, "champion")
    assert model.name == 0 and meta["version"] == v1 and record["version"] == v1

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    reg.storage.write_bytes(reg.rel(f"xgboost_v{v1}.pkl"), pickle.dumps(Evil()))
    with pytest.raises(ArtifactError, match="does not match its metadata") as exc:
        load_alias(reg, "champion")
    assert f"xgboost_v{v1}.pkl" in str(exc.value)
    assert not marker.exists()


def test_an_alias_that_points_outside_the_registry_is_refused(tmp_path):
    reg, (v1, *_) = _registry(str(tmp_path / "registry"))
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Evil()))
    alias_file = tmp_path / "registry/models/readmission/aliases/champion.json"
    alias_file.parent.mkdir(parents=True)
    alias_file.write_text(json.dumps({"alias": "champion", "algorithm": "xgboost", "version": "../../../evil"}))
    with pytest.raises(ArtifactError, match="is not a model version") as exc:
        load_alias(reg, "champion")
    assert "champion.json" in str(exc.value)
    assert not marker.exists()


def test_the_champion_lineage_is_a_stack_that_a_rollback_pops(tmp_path):
    reg, (v1, v2, v3) = _registry(str(tmp_path / "registry"))
    for version in (v1, v2, v3):
        set_alias(reg, "champion", "xgboost", version, reason="p", by="t", event="promotion")
    assert [p["version"] for p in champion_lineage(reg)] == [v1, v2, v3]
    set_alias(reg, "champion", "xgboost", v2, reason="r", by="t", event="rollback")
    assert [p["version"] for p in champion_lineage(reg)] == [v1, v2]
    set_alias(reg, "champion", "xgboost", v1, reason="r", by="t", event="rollback")
    assert [p["version"] for p in champion_lineage(reg)] == [v1]


def test_no_alias_yet_says_how_to_set_one(tmp_path):
    reg, _ = _registry(str(tmp_path / "registry"))
    with pytest.raises(ArtifactError, match="no champion model yet") as exc:
        load_alias(reg, "champion")
    assert "readmit promote" in str(exc.value)
