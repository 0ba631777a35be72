"""A registry nobody can walk out of: names from metadata stay inside, signatures catch tampering."""

from __future__ import annotations

import json
import os
import pickle

import pytest

from readmit.config import parse_config
from readmit.errors import ArtifactError, ConfigError, ReadmitInputError
from readmit.registry import Registry, sha256_hex
from readmit.training.compare import compare_models

ALG = "random_forest"
FOLDER = "models/readmission"
KEY = "correct horse battery staple 0123456789"


class _Payload:
    """Unpickling it creates a marker file: proof that an artifact was unpickled."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant_evil(reg: Registry, marker: str) -> tuple[bytes, str]:
    """An evil pickle at the registry root, outside the model folder: (bytes, its sha256)."""
    evil = pickle.dumps(_Payload(marker))
    reg.storage.write_bytes("evil.pkl", evil)
    return evil, sha256_hex(evil)


def _point_metadata_at(reg: Registry, name: str, file: str, digest: str, **extra) -> None:
    meta = reg.storage.read_json(f"{FOLDER}/{name}")
    meta["artifact"] = {**meta["artifact"], "file": file, "sha256": digest}
    meta.update(extra)
    reg.storage.write_json(f"{FOLDER}/{name}", meta)


def _escapes(reg: Registry) -> list[str]:
    bucket_path = reg.storage.path("evil.pkl")
    return ["../../evil.pkl", bucket_path if reg.storage.local else f"s3://{bucket_path}",
            "s3://other-bucket/evil.pkl", "/etc/passwd"]


def test_metadata_naming_a_file_outside_the_registry_is_refused(registry_uri, tmp_path):
    reg = Registry(registry_uri)
    saved = reg.save(ALG, {"tag": 1}, {"tag": 1})
    marker = str(tmp_path / "pwned")
    _evil, digest = _plant_evil(reg, marker)
    for escape in _escapes(reg):
        for name in (f"{ALG}_latest_metadata.json", f"{ALG}_v{saved['version']}_metadata.json"):
            _point_metadata_at(reg, name, escape, digest)
        # latest.pkl does not match the forged digest, so the old code fell back to artifact.file
        with pytest.raises(ArtifactError, match="refusing to read a file the metadata points at") as err:
            Registry(registry_uri).load(ALG)
        assert repr(escape) in str(err.value) and "Fix:" in str(err.value)
        with pytest.raises(ArtifactError, match="refusing"):
            Registry(registry_uri).load(ALG, saved["version"])
        with pytest.raises(ArtifactError, match="refusing"):
            Registry(registry_uri).verify(ALG)
    assert not os.path.exists(marker)  # nothing was unpickled


@pytest.mark.parametrize("version", ["../../evil", "/evil", "20240101_000000/../../evil", ""])
def test_versions_that_are_not_version_names_are_refused(tmp_path, version):
    reg = Registry(str(tmp_path))
    reg.save(ALG, {"tag": 1}, {"tag": 1})
    _point_metadata_at(reg, f"{ALG}_latest_metadata.json", f"{ALG}_v{version}.pkl",
                       sha256_hex(b"x"), version=version)
    with pytest.raises(ArtifactError, match="is not a model version"):
        reg.load(ALG)
    with pytest.raises(ArtifactError, match="is not a model version"):
        reg.load(ALG, version or "v")  # a version given by a caller is checked too


def test_a_symbolic_link_out_of_the_registry_is_refused(tmp_path):
    reg = Registry(str(tmp_path / "registry"))
    saved = reg.save(ALG, {"tag": 1}, {"tag": 1})
    outside = tmp_path / "outside.pkl"
    outside.write_bytes(pickle.dumps({"tag": "outside"}))
    for name in (f"{ALG}_latest.pkl", f"{ALG}_v{saved['version']}.pkl"):
        path = reg.storage.path(f"{FOLDER}/{name}")
        os.remove(path)
        os.symlink(outside, path)
    for name in (f"{ALG}_latest_metadata.json", f"{ALG}_v{saved['version']}_metadata.json"):
        _point_metadata_at(reg, name, f"{ALG}_v{saved['version']}.pkl", sha256_hex(outside.read_bytes()))
    with pytest.raises(ArtifactError, match="resolves outside the registry"):
        reg.load(ALG)


def test_compare_never_recommends_an_escaping_model(make_settings, tmp_path):
    settings = make_settings()
    reg = Registry(settings.registry_uri)
    perf = {"test": {"auc_roc": 0.66}, "oot": {"auc_roc": 0.65}}
    reg.save("logistic_regression", {"tag": 0}, {"performance": perf})
    rf = reg.save(ALG, {"tag": 1}, {"performance": perf})
    marker = str(tmp_path / "pwned")
    _evil, digest = _plant_evil(reg, marker)
    _point_metadata_at(reg, f"{ALG}_latest_metadata.json", "../../evil.pkl", digest,
                       performance={"test": {"auc_roc": 0.99}, "oot": {"auc_roc": 0.99}})
    result = compare_models(settings)
    candidate = next(c for c in result["candidates"] if c["algorithm"] == ALG)
    assert candidate["sha256"] == rf["artifact"]["sha256"] and candidate["oot"]["auc_roc"] == 0.65
    assert result["recommended"]["sha256"] != digest
    [fallback] = result["fallbacks"]
    assert fallback["algorithm"] == ALG and "refusing" in fallback["reason"]
    assert not os.path.exists(marker)


@pytest.mark.parametrize("name", [".", "..", "../x", "a/b", "", "x\\y"])
def test_model_names_that_are_not_one_folder_are_refused(tmp_path, name):
    with pytest.raises(ReadmitInputError, match="not a plain folder name"):
        Registry(str(tmp_path), name)
    with pytest.raises(ConfigError) as err:
        parse_config({"model_config": {"model_name": name}})
    assert err.value.problems[0].startswith("model_config.model_name:")


# -- signatures ------------------------------------------------------------------------------------


def _files(reg: Registry) -> dict[str, bytes]:
    return {n: reg.storage.read_bytes(f"{FOLDER}/{n}") for n in reg.storage.listdir(FOLDER)}


def test_signed_versions_load_and_never_show_the_key(registry_uri, monkeypatch):
    monkeypatch.setenv("READMIT_REGISTRY_KEY", KEY)
    reg = Registry(registry_uri, require_signature=True)
    saved = reg.save(ALG, {"tag": 1}, {"tag": 1})
    assert saved["signature"]["algorithm"] == "hmac-sha256" and len(saved["signature"]["value"]) == 64
    model, meta = Registry(registry_uri, require_signature=True).load(ALG)
    assert model == {"tag": 1} and meta["signature"] == saved["signature"]
    assert [r["signed"] for r in reg.list_models()] == [True]
    assert KEY not in repr(reg)
    for data in _files(reg).values():
        assert KEY.encode() not in data


@pytest.mark.parametrize("tamper", ["metadata", "artifact-and-digest"])
def test_tampering_is_refused_before_unpickling(registry_uri, monkeypatch, tmp_path, tamper):
    monkeypatch.setenv("READMIT_REGISTRY_KEY", KEY)
    reg = Registry(registry_uri)
    saved = reg.save(ALG, {"tag": 1}, {"tag": 1, "performance": {"oot": {"auc_roc": 0.6}}})
    names = [f"{ALG}_latest_metadata.json", f"{ALG}_v{saved['version']}_metadata.json"]
    if tamper == "metadata":
        for name in names:
            meta = reg.storage.read_json(f"{FOLDER}/{name}")
            meta["performance"]["oot"]["auc_roc"] = 0.9
            reg.storage.write_json(f"{FOLDER}/{name}", meta)
    else:  # whoever can write the pickle can write the digest beside it: the signature catches it
        marker = str(tmp_path / "pwned")
        evil = pickle.dumps(_Payload(marker))
        for name in (f"{ALG}_latest.pkl", f"{ALG}_v{saved['version']}.pkl"):
            reg.storage.write_bytes(f"{FOLDER}/{name}", evil)
        for name in names:
            _point_metadata_at(reg, name, f"{ALG}_v{saved['version']}.pkl", sha256_hex(evil))
    for version in ("latest", saved["version"]):
        with pytest.raises(ArtifactError, match="signature does not match") as err:
            reg.load(ALG, version)
        assert KEY not in str(err.value)
    if tamper != "metadata":
        assert not os.path.exists(marker)
    # without the key (and without requiring signatures) the tampering cannot be seen: documented
    monkeypatch.delenv("READMIT_REGISTRY_KEY")
    with pytest.raises(ArtifactError, match="no signing key is set"):
        Registry(registry_uri, require_signature=True).load(ALG)


def test_another_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("READMIT_REGISTRY_KEY", KEY)
    Registry(str(tmp_path)).save(ALG, {"tag": 1}, {"tag": 1})
    monkeypatch.setenv("READMIT_REGISTRY_KEY", "another key")
    with pytest.raises(ArtifactError, match="signature does not match.*or it was signed with another key"):
        Registry(str(tmp_path)).load(ALG)


def test_unsigned_versions_are_refused_only_when_signatures_are_required(tmp_path, monkeypatch):
    monkeypatch.delenv("READMIT_REGISTRY_KEY", raising=False)
    Registry(str(tmp_path)).save(ALG, {"tag": 1}, {"tag": 1})
    assert "signature" not in json.loads(Registry(str(tmp_path)).storage.read_bytes(
        f"{FOLDER}/{ALG}_latest_metadata.json"))
    monkeypatch.setenv("READMIT_REGISTRY_KEY", KEY)
    assert Registry(str(tmp_path)).load(ALG)[0] == {"tag": 1}  # accepted: not required
    with pytest.raises(ArtifactError, match="not signed and model_config.require_signature is true"):
        Registry(str(tmp_path), require_signature=True).load(ALG)


def test_require_signature_comes_from_the_config(make_settings, monkeypatch):
    monkeypatch.delenv("READMIT_REGISTRY_KEY", raising=False)
    settings = make_settings({"model_config": {"require_signature": True}})
    Registry(settings.registry_uri).save(ALG, {"tag": 1}, {"performance": {"oot": {"auc_roc": 0.6}}})
    monkeypatch.setenv("READMIT_REGISTRY_KEY", KEY)
    with pytest.raises(ArtifactError, match=f"{ALG} is trained but no version of it verifies.*not signed"):
        compare_models(settings)


@pytest.mark.parametrize("name", ["../evil.pkl", "/etc/passwd", "a/../../b", "", "a\\b", "a//b"])
def test_relative_names_never_leave_the_model_folder(tmp_path, name):
    with pytest.raises(ArtifactError, match="is not a file name inside the registry"):
        Registry(str(tmp_path)).rel(name)
    assert Registry(str(tmp_path)).rel("aliases/champion.json") == "models/readmission/aliases/champion.json"
