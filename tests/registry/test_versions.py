"""Versions have the reference's names (YYYYMMDD_HHMMSS) and are created exclusively, locally and on S3."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

import pytest

from readmit.registry import Registry
from readmit.registry.versions import create_exclusive, new_version, next_version, parse_versioned
from readmit.storage import Storage

ALG = "random_forest"
SECOND = "20240501_120000"


def _freeze_clock(monkeypatch_or_none=None) -> None:
    """Every save starts from the same second, as saves racing within one second do."""
    if monkeypatch_or_none is not None:
        monkeypatch_or_none.setattr("readmit.registry.store.new_version", lambda: SECOND)
    else:  # in a child process
        import readmit.registry.store as store

        store.new_version = lambda: SECOND


def test_version_names_are_the_reference_format():
    assert new_version(datetime(2024, 5, 1, 12, 0, 7, 999_999, tzinfo=UTC)) == "20240501_120007"
    assert next_version("20240501_120059") == "20240501_120100"
    assert next_version("20241231_235959") == "20250101_000000"
    assert next_version("20240501_120000_ab12cd") == "20240501_120001"  # from a pre-0.2 version
    assert parse_versioned(f"{ALG}_v20240501_120000.pkl") == (ALG, "20240501_120000", "pkl")
    assert parse_versioned(f"{ALG}_v20240501_120000_ab12cd_metadata.json") == (ALG, "20240501_120000_ab12cd",
                                                                              "metadata")
    for bad in (f"{ALG}_v../../evil.pkl", f"{ALG}_v20240501_1200.pkl", f"{ALG}_latest.pkl", "/etc/passwd"):
        assert parse_versioned(bad) is None


def test_create_exclusive_never_overwrites(registry_uri):
    storage = Storage(registry_uri)
    create_exclusive(storage, "models/x/a.pkl", b"first")
    with pytest.raises(FileExistsError):
        create_exclusive(storage, "models/x/a.pkl", b"second")
    assert storage.read_bytes("models/x/a.pkl") == b"first"
    if storage.local:  # nothing left behind by the refused attempt
        assert os.listdir(storage.path("models/x")) == ["a.pkl"]


def _check_distinct(uri: str, results: list[tuple[int, str]]) -> None:
    versions = sorted(v for _, v in results)
    # one second each, from the shared one upwards: the reference's names, none shared
    assert versions == [f"20240501_1200{i:02d}" for i in range(len(results))]
    reg = Registry(uri)
    for tag, version in results:  # each version holds its own model: nothing was overwritten
        model, meta = reg.load(ALG, version)
        assert model["tag"] == tag == meta["tag"] and meta["version"] == version
    assert [r["version"] for r in reg.list_models()] == versions


def test_same_second_saves_from_threads_get_distinct_versions(registry_uri, monkeypatch):
    _freeze_clock(monkeypatch)
    n = 4
    barrier = threading.Barrier(n)
    results: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results.append((i, Registry(registry_uri).save(ALG, {"tag": i}, {"tag": i})["version"]))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _check_distinct(registry_uri, results)


def _save_same_second(uri: str, tag: int, start_at: float) -> tuple[int, str]:
    _freeze_clock()
    time.sleep(max(0.0, start_at - time.time()))
    return tag, Registry(uri).save(ALG, {"tag": tag, "blob": os.urandom(100_000)}, {"tag": tag})["version"]


@pytest.mark.slow  # spawns processes; the thread variant runs in the fast loop
def test_same_second_saves_from_processes_get_distinct_versions(registry_uri):
    n = 2
    start_at = time.time() + 3.0  # both processes save at the same moment
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        results = list(pool.map(_save_same_second, [registry_uri] * n, range(n), [start_at] * n))
    _check_distinct(registry_uri, results)


def test_a_second_taken_by_an_orphan_metadata_is_skipped(tmp_path, monkeypatch):
    _freeze_clock(monkeypatch)
    reg = Registry(str(tmp_path))
    reg.storage.write_bytes(f"models/readmission/{ALG}_v{SECOND}_metadata.json", b"{}")  # pkl lost
    meta = reg.save(ALG, {"tag": 1}, {"tag": 1})
    assert meta["version"] == "20240501_120001"
    assert reg.storage.read_bytes(f"models/readmission/{ALG}_v{SECOND}_metadata.json") == b"{}"


def test_versions_with_the_old_random_suffix_still_load(registry_uri):
    reg = Registry(registry_uri)
    saved = reg.save(ALG, {"tag": 1}, {"tag": 1, "training_date": "2024-01-01"})
    old = "20230101_090000_ab12cd"
    meta = json.loads(reg.storage.read_bytes(f"models/readmission/{ALG}_v{saved['version']}_metadata.json"))
    meta.update(version=old, artifact={**meta["artifact"], "file": f"{ALG}_v{old}.pkl"},
                paths={"artifact": f"/somewhere/else/{ALG}_v{old}.pkl"})  # pre-0.2 absolute paths
    reg.storage.write_bytes(f"models/readmission/{ALG}_v{old}.pkl",
                            reg.storage.read_bytes(f"models/readmission/{ALG}_v{saved['version']}.pkl"))
    reg.storage.write_json(f"models/readmission/{ALG}_v{old}_metadata.json", meta)
    model, loaded = reg.load(ALG, old)
    assert model["tag"] == 1 and loaded["version"] == old
    assert loaded["paths"]["artifact"] == reg.location(f"{ALG}_v{old}.pkl")  # computed, not the stored one
    assert old in [r["version"] for r in reg.list_models()]
    assert reg.metadata(old)["version"] == old


def test_without_hard_links_the_name_is_claimed_with_o_excl(tmp_path, monkeypatch):
    """Some filesystems (SMB, some FUSE mounts) refuse hard links: exclusive open is the fallback."""
    import errno

    def no_links(src, dst):
        raise OSError(errno.EPERM, "hard links not supported", dst)

    monkeypatch.setattr("readmit.storage.os.link", no_links)
    storage = Storage(str(tmp_path))
    create_exclusive(storage, "models/x/a.pkl", b"first")
    with pytest.raises(FileExistsError):
        create_exclusive(storage, "models/x/a.pkl", b"second")
    assert storage.read_bytes("models/x/a.pkl") == b"first"
    assert os.listdir(storage.path("models/x")) == ["a.pkl"]
