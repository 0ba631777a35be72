"""The model registry: layout, checksums, crash ordering and concurrent saves (local and S3)."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import re
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest

from readmit.errors import ArtifactError, ReadmitInputError
from readmit.registry import Registry, sha256_hex

ALG = "xgboost"
REFERENCE_VERSION = re.compile(r"\d{8}_\d{6}")


def _model(tag: int, size: int = 50_000) -> dict:
    return {"tag": tag, "blob": os.urandom(size)}


def _assert_consistent(reg: Registry, algorithm: str = ALG) -> tuple[dict, dict]:
    """Loading latest gives a pair whose metadata matches the model (and the bytes' sha256)."""
    model, meta = reg.load(algorithm)
    assert model["tag"] == meta["tag"]
    assert sha256_hex(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) == meta["artifact"]["sha256"]
    return model, meta


def test_save_layout_and_roundtrip(registry_uri):
    reg = Registry(registry_uri)
    meta = reg.save(ALG, _model(1), {"tag": 1, "performance": {"test": {"auc_roc": 0.66}, "oot": {"auc_roc": 0.67}},
                                     "training_date": "2024-01-01T00:00:00"})
    v = meta["version"]
    assert REFERENCE_VERSION.fullmatch(v)  # the reference's YYYYMMDD_HHMMSS, no suffix
    names = reg.storage.listdir("models/readmission")
    assert names == sorted([f"{ALG}_latest.pkl", f"{ALG}_latest_metadata.json", f"{ALG}_v{v}.pkl",
                            f"{ALG}_v{v}_metadata.json"])
    assert meta["artifact"]["file"] == f"{ALG}_v{v}.pkl"
    assert meta["paths"]["artifact"].endswith(f"models/readmission/{ALG}_v{v}.pkl")
    assert (registry_uri.startswith("s3://")) == meta["paths"]["artifact"].startswith("s3://")
    model, loaded = reg.load(ALG)
    assert model["tag"] == 1 and loaded == meta
    model_v, _ = reg.load(ALG, v)
    assert model_v["tag"] == 1
    assert reg.load(ALG, f"v{v}")[1]["version"] == v
    latest = json.loads(reg.storage.read_bytes(f"models/readmission/{ALG}_latest_metadata.json"))
    assert latest["version"] == v and latest["artifact"]["sha256"] == meta["artifact"]["sha256"]


def test_list_models_and_metadata_lookup(tmp_path, monkeypatch):
    monkeypatch.setattr("readmit.registry.store.new_version", lambda: "20240101_000000")
    reg = Registry(str(tmp_path))
    a1 = reg.save("random_forest", _model(1), {"tag": 1, "training_date": "2024-01-01T00:00:00"})
    a2 = reg.save("random_forest", _model(2), {"tag": 2, "training_date": "2024-01-02T00:00:00"})
    b1 = reg.save("logistic_regression", _model(3), {"tag": 3, "training_date": "2024-01-03T00:00:00"})
    # a second another algorithm used is taken too: a bare version names one model
    assert (a1["version"], a2["version"], b1["version"]) == ("20240101_000000", "20240101_000001", "20240101_000002")
    rows = reg.list_models()
    assert [(r["algorithm"], r["version"], r["latest"]) for r in rows] == [
        ("random_forest", a1["version"], False), ("random_forest", a2["version"], True),
        ("logistic_regression", b1["version"], True)]
    assert reg.algorithms() == ["logistic_regression", "random_forest"]
    assert reg.metadata("random_forest")["version"] == a2["version"]
    assert reg.metadata("random_forest_latest")["version"] == a2["version"]
    assert reg.metadata(a2["version"])["tag"] == 2  # a bare version, unique across algorithms
    assert reg.metadata(f"v{a2['version']}")["tag"] == 2
    assert reg.metadata(f"random_forest_v{a1['version']}")["tag"] == 1
    assert reg.metadata(a1["version"])["tag"] == 1 and reg.metadata(b1["version"])["tag"] == 3
    with pytest.raises(ArtifactError, match="no model or version 'nope'") as err:
        reg.metadata("nope")
    assert "readmit registry list" in str(err.value)
    assert Registry(str(tmp_path / "empty")).list_models() == []


def test_missing_model_names_the_fix(tmp_path):
    with pytest.raises(ArtifactError, match="model metadata not found") as err:
        Registry(str(tmp_path)).load("random_forest")
    assert "readmit train --algorithm random_forest" in str(err.value)


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "missing"])
def test_damaged_versioned_artifact_is_refused_before_unpickling(tmp_path, monkeypatch, damage):
    reg = Registry(str(tmp_path))
    meta = reg.save(ALG, _model(1), {"tag": 1})
    rel = f"models/readmission/{ALG}_v{meta['version']}.pkl"
    data = reg.storage.read_bytes(rel)
    if damage == "corrupt":
        reg.storage.write_bytes(rel, data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    elif damage == "truncated":
        reg.storage.write_bytes(rel, data[: len(data) // 2])
    else:
        reg.storage.delete(rel)
    calls = []
    monkeypatch.setattr("readmit.registry.store.pickle.loads", lambda *a, **k: calls.append(1))
    with pytest.raises(ArtifactError) as err:
        reg.load(ALG, meta["version"])
    assert calls == []  # never unpickled
    msg = str(err.value)
    assert f"{ALG}_v{meta['version']}.pkl" in msg and "Fix:" in msg
    assert ("not found" if damage == "missing" else "does not match its metadata") in msg


def test_corrupt_latest_artifact_falls_back_to_the_verified_version(tmp_path):
    reg = Registry(str(tmp_path))
    reg.save(ALG, _model(1), {"tag": 1})
    meta = reg.save(ALG, _model(2), {"tag": 2})
    reg.storage.write_bytes(f"models/readmission/{ALG}_latest.pkl", b"garbage")
    model, loaded = _assert_consistent(reg)
    assert model["tag"] == 2 and loaded["version"] == meta["version"]
    # both copies damaged -> a clear error, not a pickle crash
    reg.storage.write_bytes(f"models/readmission/{ALG}_v{meta['version']}.pkl", b"garbage")
    with pytest.raises(ArtifactError, match="does not match its metadata"):
        reg.load(ALG)


def test_corrupt_metadata_is_an_artifact_error(tmp_path):
    reg = Registry(str(tmp_path))
    reg.save(ALG, _model(1), {"tag": 1})
    reg.storage.write_bytes(f"models/readmission/{ALG}_latest_metadata.json", b'{"version": "x", "artif')
    with pytest.raises(ArtifactError, match="corrupt or truncated") as err:
        reg.load(ALG)
    assert f"{ALG}_latest_metadata.json" in str(err.value)


def test_unpicklable_artifact_with_valid_checksum_names_versions(tmp_path):
    reg = Registry(str(tmp_path))
    meta = reg.save(ALG, _model(1), {"tag": 1, "versions": {"python": "3.11", "scikit-learn": "1.9"}})
    bad = b"\x80\x05not really a pickle"
    for name in (f"{ALG}_latest.pkl", f"{ALG}_v{meta['version']}.pkl"):
        reg.storage.write_bytes(f"models/readmission/{name}", bad)
    for name in (f"{ALG}_latest_metadata.json", f"{ALG}_v{meta['version']}_metadata.json"):
        m = reg.storage.read_json(f"models/readmission/{name}")
        m["artifact"]["sha256"] = sha256_hex(bad)
        reg.storage.write_json(f"models/readmission/{name}", m)
    with pytest.raises(ArtifactError, match="cannot unpickle the model.*scikit-learn 1.9"):
        reg.load(ALG)


# -- crash ordering ------------------------------------------------------------------------


class Crash(Exception):
    pass


@pytest.mark.parametrize("crash_after", [0, 1, 2], ids=["after-version-pkl", "after-version-meta", "after-latest-pkl"])
def test_a_crash_between_writes_leaves_a_consistent_latest(registry_uri, crash_after):
    """A save writes 4 files; crash after the 1st, 2nd or 3rd: latest still loads the previous pair."""
    reg = Registry(registry_uri)
    first = reg.save(ALG, _model(1), {"tag": 1})
    written: list[str] = []

    def hook(name: str) -> None:
        written.append(name)
        if len(written) == crash_after + 1:
            raise Crash(name)

    reg._after_write = hook
    with pytest.raises(Crash):
        reg.save(ALG, _model(2), {"tag": 2})
    reg._after_write = None
    model, meta = _assert_consistent(Registry(registry_uri))
    # until the latest metadata is written (the 4th write), latest is the first model
    assert meta["version"] == first["version"] and model["tag"] == 1
    if crash_after >= 1:  # the new version itself is complete and loadable
        new_version = written[0].removeprefix(f"{ALG}_v").removesuffix(".pkl")
        assert Registry(registry_uri).load(ALG, new_version)[0]["tag"] == 2


def test_a_crash_after_the_last_write_has_the_new_model(registry_uri):
    reg = Registry(registry_uri)
    reg.save(ALG, _model(1), {"tag": 1})
    written: list[str] = []

    def hook(name: str) -> None:
        written.append(name)
        if name.endswith("_latest_metadata.json"):
            raise Crash(name)

    reg._after_write = hook
    with pytest.raises(Crash):
        reg.save(ALG, _model(2), {"tag": 2})
    assert _assert_consistent(Registry(registry_uri))[0]["tag"] == 2


def test_interleaved_saves_are_repaired(registry_uri):
    """A writes latest.pkl, then B saves completely, then A writes latest metadata: A's repair fixes latest.pkl."""
    reg_a, reg_b = Registry(registry_uri), Registry(registry_uri)
    state = {"done": False}

    def hook(name: str) -> None:
        if name == f"{ALG}_latest.pkl" and not state["done"]:
            state["done"] = True
            reg_b.save(ALG, _model(2), {"tag": 2})

    reg_a._after_write = hook
    meta_a = reg_a.save(ALG, _model(1), {"tag": 1})
    model, meta = _assert_consistent(Registry(registry_uri))
    assert meta["version"] == meta_a["version"] and model["tag"] == 1  # last writer of the metadata wins
    latest_bytes = reg_a.storage.read_bytes(f"models/readmission/{ALG}_latest.pkl")
    assert sha256_hex(latest_bytes) == meta["artifact"]["sha256"]  # the file itself, not only the fallback


# -- concurrency ---------------------------------------------------------------------------


def _check_after_race(uri: str, tags: set[int], versions: list[str]) -> None:
    reg = Registry(uri)
    assert len(set(versions)) == len(versions)  # unique even within the same second
    assert all(REFERENCE_VERSION.fullmatch(v) for v in versions)
    model, meta = _assert_consistent(reg)
    assert meta["tag"] in tags and meta["version"] in versions
    latest_bytes = reg.storage.read_bytes(f"models/readmission/{ALG}_latest.pkl")
    assert sha256_hex(latest_bytes) == meta["artifact"]["sha256"]
    for v in versions:  # every version is complete and self-consistent
        m, md = reg.load(ALG, v)
        assert m["tag"] == md["tag"]


def test_concurrent_saves_from_threads(registry_uri):
    n = 6
    barrier = threading.Barrier(n)
    versions: list[str] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            versions.append(Registry(registry_uri).save(ALG, _model(i), {"tag": i})["version"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _check_after_race(registry_uri, set(range(n)), versions)


def _save_in_process(uri: str, tag: int, start_at: float) -> str:
    import time

    time.sleep(max(0.0, start_at - time.time()))
    return Registry(uri).save(ALG, _model(tag, 200_000), {"tag": tag})["version"]


@pytest.mark.slow  # spawns processes; the thread variant runs in the fast loop
def test_concurrent_saves_from_processes(registry_uri):
    import time

    n = 4
    start_at = time.time() + 3.0  # all processes start saving at the same moment
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        versions = list(pool.map(_save_in_process, [registry_uri] * n, range(n), [start_at] * n))
    _check_after_race(registry_uri, set(range(n)), versions)


def test_a_registry_that_is_a_file_is_an_input_error(tmp_path):
    plain = tmp_path / "registry"
    plain.write_text("not a folder")
    for action in (lambda r: r.list_models(), lambda r: r.save(ALG, _model(1), {"tag": 1})):
        with pytest.raises(ReadmitInputError, match="the registry location is a file, not a folder") as err:
            action(Registry(str(plain)))
        assert str(plain) in str(err.value)


def test_saving_into_a_missing_bucket_names_it(s3_endpoint):
    with pytest.raises(ReadmitInputError, match="bucket 'no-such-bucket-readmit' does not exist"):
        Registry("s3://no-such-bucket-readmit/reg").save(ALG, _model(1), {"tag": 1})


def test_a_copied_registry_shows_and_loads_its_own_files(registry_uri):
    original, copy = Registry(f"{registry_uri}/original"), Registry(f"{registry_uri}/copy")
    saved = original.save(ALG, _model(1), {"tag": 1})
    for name in original.storage.listdir("models/readmission"):
        data = original.storage.read_bytes(f"models/readmission/{name}")
        assert original.storage.uri_of("").encode() not in data  # no absolute location is stored
        copy.storage.write_bytes(f"models/readmission/{name}", data)
        original.storage.delete(f"models/readmission/{name}")
    meta = copy.metadata(ALG)
    assert meta["paths"]["artifact"] == copy.location(f"{ALG}_v{saved['version']}.pkl")
    assert meta["paths"]["registry"] == copy.storage.uri_of("")
    assert copy.load(ALG)[0]["tag"] == 1


def test_metadata_follows_the_seeds_contract_and_old_metadata_still_reads(tmp_path):
    reg = Registry(str(tmp_path))
    meta = reg.save(ALG, _model(1), {"tag": 1, "training_date": "2024-01-01T00:00:00"})
    assert meta["model_name"] == ALG and meta["registered_model"] == "readmission"  # seed: "model_name": "xgboost"
    # metadata written before issue 21: model_name held the registry's name, no registered_model
    for name in (f"{ALG}_v{meta['version']}_metadata.json", f"{ALG}_latest_metadata.json"):
        path = tmp_path / "models" / "readmission" / name
        old = json.loads(path.read_text())
        old["model_name"] = "readmission"
        del old["registered_model"]
        path.write_text(json.dumps(old))
    model, loaded = reg.load(ALG)
    assert model["tag"] == 1
    assert loaded["model_name"] == ALG and loaded["registered_model"] == "readmission"
    assert reg.metadata(meta["version"])["registered_model"] == "readmission"
