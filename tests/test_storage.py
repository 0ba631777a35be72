import errno
import os
import socket
import threading

import polars as pl
import pytest

from readmit.errors import LocationError, ReadmitInputError, StorageError
from readmit.storage import Storage, s3_settings


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])  # S3 is slow: conftest.py
def storage(request, tmp_path):
    if request.param == "local":
        return Storage(tmp_path / "root")
    return Storage(request.getfixturevalue("s3_uri"))


def frame(n: int, tag: str) -> pl.DataFrame:
    return pl.DataFrame({"encounter_id": list(range(n)), "tag": [tag] * n})


def test_partitions_roundtrip_and_rerun_replaces_only_that_month(storage):
    storage.write_partition("bronze/encounters", "2001-01", frame(3, "a"))
    storage.write_partition("bronze/encounters", "2001-02", frame(2, "b"))
    assert storage.list_partitions("bronze/encounters") == ["2001-01", "2001-02"]

    storage.write_partition("bronze/encounters", "2001-01", frame(5, "c"))
    assert storage.read_partition("bronze/encounters", "2001-01")["tag"].to_list() == ["c"] * 5
    assert storage.read_partition("bronze/encounters", "2001-02")["tag"].to_list() == ["b"] * 2
    assert storage.read_table("bronze/encounters").height == 7


def test_a_folder_without_its_data_file_is_not_a_partition(storage):
    # What a crash mid-write leaves behind: a folder and a temporary object, never data.parquet.
    storage.write_bytes("gold/feature_store/snapshot_month=2003-04/.tmp-123-data.parquet", b"PAR1...")
    storage.write_partition("gold/feature_store", "2003-05", frame(1, "x"))
    assert storage.list_partitions("gold/feature_store") == ["2003-05"]


def test_json_and_listing(storage):
    storage.write_json("models/a.json", {"x": 1})
    storage.write_json("models/b.json", {"x": 2})
    assert storage.read_json("models/a.json") == {"x": 1}
    assert storage.listdir("models") == ["a.json", "b.json"]
    assert storage.listdir("nothing-here") == []
    storage.delete("models/a.json")
    assert not storage.exists("models/a.json")


def test_corrupt_partition_is_a_clear_error(storage):
    storage.write_bytes("silver/encounters/snapshot_month=2002-02/data.parquet", b"not parquet")
    with pytest.raises(ReadmitInputError) as exc:
        storage.read_partition("silver/encounters", "2002-02")
    assert "snapshot_month=2002-02" in str(exc.value) and "readmit medallion" in str(exc.value)


def test_missing_partition_and_bad_month(storage):
    with pytest.raises(ReadmitInputError, match="does not exist"):
        storage.read_partition("silver/encounters", "2002-03")
    with pytest.raises(ReadmitInputError, match="YYYY-MM"):
        storage.write_partition("silver/encounters", "2002-13", frame(1, "x"))


def test_local_write_leaves_no_temporary_files(tmp_path):
    s = Storage(tmp_path)
    for _ in range(3):
        s.write_partition("t", "2000-01", frame(10, "x"))
    assert os.listdir(tmp_path / "t" / "snapshot_month=2000-01") == ["data.parquet"]


def test_failed_local_write_keeps_the_old_partition(tmp_path):
    s = Storage(tmp_path)
    s.write_partition("t", "2000-01", frame(2, "old"))

    with pytest.raises(TypeError):
        s.write_bytes(s.partition_path("t", "2000-01"), object())  # type: ignore[arg-type]
    assert s.read_partition("t", "2000-01")["tag"].to_list() == ["old", "old"]
    assert os.listdir(tmp_path / "t" / "snapshot_month=2000-01") == ["data.parquet"]


def test_unsupported_scheme():
    with pytest.raises(ReadmitInputError, match="unsupported storage location"):
        Storage("gs://bucket/x")


# -- faults of the location: one readmit error naming the location, what failed and the fix -----


@pytest.fixture
def quick_s3(monkeypatch):
    """Short S3 waits, so a fault surfaces in seconds (the defaults are for real networks)."""
    monkeypatch.setenv("READMIT_S3_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("READMIT_S3_READ_TIMEOUT", "1")
    monkeypatch.setenv("READMIT_S3_MAX_ATTEMPTS", "2")


@pytest.fixture
def own_moto(monkeypatch):
    """A moto server of this test's own (so it can be stopped); env points at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    for key, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket="faults")
    stopped = []

    def stop():
        server.stop()
        stopped.append(True)

    yield url, stop
    if not stopped:
        server.stop()


@pytest.fixture
def frozen_endpoint(monkeypatch):
    """A TCP endpoint that accepts connections and never answers (a hung S3 gateway)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    yield
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_s3_endpoint_gone_mid_run_is_a_runtime_error_naming_the_location(own_moto, quick_s3):
    _, stop = own_moto
    store = Storage("s3://faults/dm")
    store.write_json("a.json", {"x": 1})  # reachable
    stop()
    with pytest.raises(StorageError) as exc:
        Storage("s3://faults/dm").write_json("b.json", {"x": 2})
    message = str(exc.value)
    assert exc.value.exit_code == 1
    assert message.startswith("s3://faults/dm/b.json: cannot write: the S3 endpoint http://127.0.0.1:")
    assert "did not answer" in message and "after 2 attempt(s)" in message
    assert "Fix: check that the endpoint is up and reachable" in message
    assert "READMIT_S3_MAX_ATTEMPTS=2" in message


def test_frozen_endpoint_gives_up_after_the_configured_timeouts(frozen_endpoint, quick_s3, caplog):
    with caplog.at_level("WARNING", logger="readmit.storage"), pytest.raises(StorageError) as exc:
        Storage("s3://frozen/dm").write_bytes("x.bin", b"x")
    assert "did not answer (ReadTimeoutError" in str(exc.value)
    assert "READMIT_S3_READ_TIMEOUT=1.0s" in str(exc.value)
    # the wait was reported while it lasted: what it waits for, which attempt
    assert any("waiting for S3 (PutObject at http://127.0.0.1:" in r.getMessage()
               and "attempt 1 of 2 failed" in r.getMessage() for r in caplog.records)


def test_missing_bucket_is_a_location_error(s3_endpoint, quick_s3):
    store = Storage("s3://no-such-bucket-readmit/dm")
    with pytest.raises(LocationError) as exc:
        store.write_json("x.json", {})
    assert exc.value.exit_code == 2
    assert str(exc.value) == (
        "s3://no-such-bucket-readmit/dm/x.json: cannot write: the bucket 'no-such-bucket-readmit' "
        "does not exist\nFix: create it (`aws s3 mb s3://no-such-bucket-readmit`), or correct the "
        "location's bucket name"
    )


def test_refused_credentials_are_a_location_error(own_moto, quick_s3, monkeypatch):
    # moto server mode checks credentials once told to (POST /moto-api/reset-auth with the number
    # of requests to let through); the setting is global to moto, so it is restored after.
    import requests

    url, _ = own_moto
    requests.post(f"{url}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
        with pytest.raises(LocationError) as exc:
            Storage("s3://faults/dm").write_json("x.json", {})
    finally:
        requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=10).raise_for_status()
    assert str(exc.value).startswith("s3://faults/dm/x.json: cannot write: access denied (")
    assert "Fix: check the AWS credentials" in str(exc.value)


def test_a_file_where_the_folder_should_be_is_a_location_error(tmp_path):
    (tmp_path / "registry").write_text("not a folder")
    with pytest.raises(LocationError, match="part of the path is a file, not a folder") as exc:
        Storage(tmp_path / "registry").check_writable()
    assert str(exc.value).startswith(str(tmp_path / "registry"))


def test_disk_full_is_a_runtime_error(tmp_path, monkeypatch):
    # A full disk cannot be made portably; the OS error it raises (ENOSPC, at fsync here) can.
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StorageError) as exc:
        Storage(tmp_path).write_bytes("a/b.bin", b"x")
    assert exc.value.exit_code == 1
    assert "a/b.bin: cannot write: no space left on the device" in str(exc.value)
    assert os.listdir(tmp_path / "a") == []  # the temporary file is gone


@pytest.mark.parametrize(("value", "problem"), [("0", "positive"), ("soon", "positive"), ("x", "standard")])
def test_bad_s3_wait_settings_are_input_errors(monkeypatch, value, problem):
    env = "READMIT_S3_RETRY_MODE" if problem == "standard" else "READMIT_S3_READ_TIMEOUT"
    monkeypatch.setenv(env, value)
    with pytest.raises(ReadmitInputError, match=f"(?s){env}: invalid value .*{problem}"):
        s3_settings()
