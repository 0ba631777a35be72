import os

import polars as pl
import pytest

from readmit.errors import ReadmitInputError
from readmit.storage import Storage


@pytest.fixture(params=["local", "s3"])
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
