"""Extracts that add up: a hospital's monthly files merge into one datamart.

Synthetic encounters with dates (2004-2008) are cut into extracts and loaded one after the
other; the result is compared with the one-shot build of the whole file, and the runs are read
back from the real files they write.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from read_only import shared_read_only, writable_copy
from readmit.cli.main import app
from readmit.config import load_settings
from readmit.data.extracts import LEDGER
from readmit.data.layers import BRONZE_TABLE, FEATURE_STORE, LABEL_STORE
from readmit.data.medallion import run_medallion
from readmit.data.synth import write_synthetic
from readmit.errors import ReadmitInputError
from readmit.storage import Storage
from readmit.training.gates import check_single_source

LINEAGE = ["_source_sha256", "label_learned_at"]
MONTHS_2008 = [f"2008-{m:02d}" for m in range(1, 13)]


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> pl.DataFrame:
    """6,000 synthetic encounters with snapshot_date over 2004-2008, as the text the file holds.

    Five years (60 months) rather than the generator's ten: every relation these tests check
    (extracts before, across and after a cut; a version applied from a month on) needs months on
    both sides, and each month is a partition per layer in every build.
    """
    path = write_synthetic(tmp_path_factory.mktemp("synth") / "all.csv", rows=6000, seed=18, with_snapshot=True,
                           start=dt.date(2004, 1, 1), end=dt.date(2008, 12, 31))
    return pl.read_csv(path, infer_schema=False)


@pytest.fixture(scope="module")
def one_shot(whole, tmp_path_factory) -> Path:
    """The one-shot build of the whole file (``all.csv``), once for the module, read-only: tests
    compare with it or start from a :func:`writable_copy` of it."""
    root = tmp_path_factory.mktemp("one_shot")
    datamart = root / "dm"
    run_medallion(load_settings(raw=_write(whole, root / "all.csv"), datamart=str(datamart)))
    with shared_read_only(datamart, "one-shot datamart", "writable_copy(one_shot, ...)"):
        yield datamart


def _write(frame: pl.DataFrame, path: Path) -> str:
    frame.write_csv(path)
    return str(path)


def _before(frame: pl.DataFrame, day: str) -> pl.DataFrame:
    return frame.filter(pl.col("snapshot_date") < day)


def _from(frame: pl.DataFrame, day: str) -> pl.DataFrame:
    return frame.filter(pl.col("snapshot_date") >= day)


def _build(tmp_path: Path, name: str, *raws: str, **options) -> tuple[Storage, list]:
    datamart = tmp_path / name
    results = []
    for raw in raws:
        results.append(run_medallion(load_settings(raw=raw, datamart=str(datamart)), **options))
    return Storage(datamart), results


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_consecutive_extracts_equal_the_one_shot_build_and_rebuild_only_their_months(whole, one_shot,
                                                                                     tmp_path) -> None:
    one_shot = Storage(one_shot)
    first = _write(_before(whole, "2008-01-01"), tmp_path / "2004-2007.csv")
    second = _write(_from(whole, "2008-01-01"), tmp_path / "2008.csv")
    monthly, (_, results) = _build(tmp_path, "monthly", first, second)

    # the second extract rebuilt its own twelve months in every layer, nothing earlier
    assert [r.partitions for r in results] == [MONTHS_2008] * 3
    assert monthly.read_table(FEATURE_STORE).equals(one_shot.read_table(FEATURE_STORE))
    assert monthly.read_table(LABEL_STORE).drop(LINEAGE).equals(one_shot.read_table(LABEL_STORE).drop(LINEAGE))
    ledger = monthly.read_json(LEDGER)["extracts"]
    assert [Path(e["source"]).name for e in ledger] == ["2004-2007.csv", "2008.csv"]
    assert ledger[1]["months_written"] == MONTHS_2008 and ledger[1]["overlaps"] == []

    # consecutive extracts are one source for the training gate
    settings = load_settings(datamart=str(tmp_path / "monthly"))
    gate = check_single_source(settings)
    assert gate.passed and "from 2 consecutive extracts of one source" in gate.reason


def test_several_raw_flags_in_one_run_give_the_same_datamart(whole, one_shot, tmp_path) -> None:
    one_shot = Storage(one_shot)
    first = _write(_before(whole, "2005-01-01"), tmp_path / "a.csv")
    second = _write(_from(whole, "2005-01-01"), tmp_path / "b.csv")
    out = CliRunner().invoke(app, ["medallion", "--raw", first, "--raw", second, "--datamart",
                                   str(tmp_path / "both"), "--json"])
    assert out.exit_code == 0, out.output
    layers = json.loads(out.stdout)["layers"]
    assert layers[0]["partitions"] == 60 and any(n.startswith(f"{second}: ") for n in layers[0]["notes"])
    assert Storage(tmp_path / "both").read_table(FEATURE_STORE).equals(one_shot.read_table(FEATURE_STORE))


def test_a_newer_extract_wins_by_encounter_and_later_labels_fill_the_label_store(whole, tmp_path) -> None:
    june = whole.filter(pl.col("snapshot_date").str.starts_with("2008-06"))
    blank = whole.with_columns(pl.when(pl.col("snapshot_date").str.starts_with("2008-06")).then(pl.lit(""))
                               .otherwise(pl.col("readmitted")).alias("readmitted"))
    storage, _ = _build(tmp_path, "dm", _write(blank, tmp_path / "today.csv"))
    assert storage.read_partition(LABEL_STORE, "2008-06").height == 0
    features = storage.read_table(FEATURE_STORE)

    # the outcomes of June arrive with a later extract of June's encounters
    (results,) = _build(tmp_path, "dm", _write(june, tmp_path / "june-outcomes.csv"))[1]
    bronze = results[0]
    assert [r.partitions for r in results] == [["2008-06"]] * 3
    assert any(f"{june.height} encounter(s) in 2008-06..2008-06 replaced by this newer extract" in n
               for n in bronze.notes)
    labels = storage.read_partition(LABEL_STORE, "2008-06")
    assert sorted(labels["encounter_id"].to_list()) == sorted(int(i) for i in june["encounter_id"])
    may = storage.read_partition(LABEL_STORE, "2008-05")
    assert labels["label_learned_at"].min() > may["label_learned_at"].max()  # learned with the later file
    assert storage.read_table(FEATURE_STORE).equals(features)  # same encounters, same features
    assert storage.read_partition(BRONZE_TABLE, "2008-06").height == june.height  # one row per encounter
    ledger = storage.read_json(LEDGER)["extracts"]
    assert ledger[1]["overlaps"][0]["encounters"] == june.height


def test_a_blank_outcome_in_a_newer_extract_keeps_the_known_one_and_a_new_outcome_replaces_it(
        whole, one_shot, tmp_path) -> None:
    storage = Storage(writable_copy(one_shot, tmp_path / "dm"))  # the whole file, built in one run
    before = storage.read_partition(LABEL_STORE, "2008-06").select("encounter_id", "readmitted")
    june = whole.filter(pl.col("snapshot_date").str.starts_with("2008-06")).with_row_index("_n")
    flip = {"NO": "<30", ">30": "<30", "<30": "NO"}
    # a resend of June: the first half without outcomes (a later EHR pull), ten rows with another outcome
    resent = june.with_columns(
        pl.when(pl.col("_n") < june.height // 2).then(pl.lit(""))
        .when(pl.col("_n") >= june.height - 10).then(pl.col("readmitted").replace_strict(flip))
        .otherwise(pl.col("readmitted")).alias("readmitted")).drop("_n")
    (results,) = _build(tmp_path, "dm", _write(resent, tmp_path / "june-again.csv"))[1]
    notes = results[0].notes
    assert any(f"{june.height // 2} encounter(s) repeated with a blank readmitted keep the outcome already known "
               "(2008-06..2008-06)" in n for n in notes), notes
    assert any("10 known outcome(s) replaced by this newer extract (2008-06..2008-06;" in n for n in notes), notes

    changed = {int(i): r for i, r in resent.tail(10).select("encounter_id", "readmitted").iter_rows()}
    expected = before.with_columns(
        pl.col("encounter_id").replace_strict(list(changed), list(changed.values()), default=None,
                                              return_dtype=pl.String).fill_null(pl.col("readmitted"))
        .alias("readmitted"))
    after = storage.read_partition(LABEL_STORE, "2008-06").select("encounter_id", "readmitted")
    assert after.height == june.height  # no outcome lost: every June encounter is still labelled
    assert after.sort("encounter_id").equals(expected.sort("encounter_id"))
    # silver (what the feature store and monitor read beside the labels) agrees with the label store
    silver = storage.read_partition("silver/encounters", "2008-06").select("encounter_id", "readmitted")
    assert silver.sort("encounter_id").equals(after.sort("encounter_id"))


def test_an_encounter_dated_anew_leaves_its_old_month(whole, one_shot, tmp_path) -> None:
    storage = Storage(writable_copy(one_shot, tmp_path / "dm"))  # the whole file, built in one run
    moved = whole.filter(pl.col("snapshot_date").str.starts_with("2008-03")).head(1).with_columns(
        pl.lit("2008-04-15").alias("snapshot_date"))
    (results,) = _build(tmp_path, "dm", _write(moved, tmp_path / "moved.csv"))[1]
    assert results[0].partitions == ["2008-03", "2008-04"]  # both months rebuilt
    ids = storage.read_table(BRONZE_TABLE, columns=["encounter_id"])["encounter_id"]
    assert ids.is_duplicated().sum() == 0 and ids.len() == whole.height
    assert int(moved["encounter_id"][0]) in storage.read_partition(FEATURE_STORE, "2008-04")["encounter_id"]


def test_no_replace_refuses_a_repeated_encounter_naming_file_and_rows_and_writes_nothing(whole, tmp_path) -> None:
    storage, _ = _build(tmp_path, "dm", _write(_before(whole, "2008-07-01"), tmp_path / "a.csv"))
    later = _write(_from(whole, "2008-06-25"), tmp_path / "b.csv")  # repeats the last days of June
    before = _files(tmp_path / "dm")
    with pytest.raises(ReadmitInputError) as caught:
        run_medallion(load_settings(raw=later, datamart=str(tmp_path / "dm")), no_replace=True)
    message = str(caught.value)
    repeated = _from(whole, "2008-06-25").filter(pl.col("snapshot_date") < "2008-07-01").height
    assert message.startswith(f"{later}: {repeated} encounter(s) of this extract are already in the datamart")
    assert "months 2008-06" in message and "data rows 1, 2, 3, 4, 5, ..." in message
    assert "drop --no-replace" in message
    assert _files(tmp_path / "dm") == before
    out = CliRunner().invoke(app, ["medallion", "--raw", later, "--datamart", str(tmp_path / "dm"), "--no-replace"])
    assert out.exit_code == 2 and "already in the datamart" in out.output and "Traceback" not in out.output
    assert _files(tmp_path / "dm") == before
    # rerunning an extract under --no-replace is no conflict with itself: safe to rerun
    run_medallion(load_settings(raw=str(tmp_path / "a.csv"), datamart=str(tmp_path / "dm")), no_replace=True)
    assert len(storage.read_json(LEDGER)["extracts"]) == 1


def test_a_bad_second_file_writes_nothing_of_the_first(whole, tmp_path) -> None:
    storage, _ = _build(tmp_path, "dm", _write(_before(whole, "2005-01-01"), tmp_path / "a.csv"))
    before = _files(tmp_path / "dm")
    good = _write(_from(whole, "2005-01-01").filter(pl.col("snapshot_date") < "2007-01-01"), tmp_path / "b.csv")
    bad = _write(_from(whole, "2007-01-01").with_columns(pl.lit("sometimes").alias("change")), tmp_path / "c.csv")
    with pytest.raises(ReadmitInputError, match="c.csv: .*bad row"):
        run_medallion(load_settings(raw=good, datamart=str(tmp_path / "dm")), raw_paths=[good, bad])
    assert _files(tmp_path / "dm") == before


def test_a_window_mixing_two_versions_of_the_same_months_fails_the_gate(whole, one_shot, tmp_path) -> None:
    writable_copy(one_shot, tmp_path / "dm")  # version 1: the whole file, built in one run
    v2 = whole.with_columns(pl.col("num_medications").cast(pl.Int64).add(1).cast(pl.String))
    # the re-sent file holds every month but is applied from 2005 only: 2004 stays at version 1
    run_medallion(load_settings(raw=_write(v2, tmp_path / "v2.csv"), datamart=str(tmp_path / "dm")),
                  start_month="2005-01")
    gate = check_single_source(load_settings(datamart=str(tmp_path / "dm")))
    assert not gate.passed
    assert gate.reason.startswith("the windows mix two versions of the same months: ")
    assert "12 month(s) 2004-01..2004-12" in gate.reason and "Fix: apply it to every month" in gate.reason
    # applied to every month it holds, the newer version is the only one: the gate passes
    run_medallion(load_settings(raw=str(tmp_path / "v2.csv"), datamart=str(tmp_path / "dm")))
    assert check_single_source(load_settings(datamart=str(tmp_path / "dm"))).passed


def test_rerunning_an_extract_changes_nothing_but_its_ingestion_time(whole, tmp_path) -> None:
    raw = _write(_before(whole, "2005-01-01"), tmp_path / "a.csv")
    storage, _ = _build(tmp_path, "dm", raw)
    features, labels = storage.read_table(FEATURE_STORE), storage.read_table(LABEL_STORE)
    _build(tmp_path, "dm", raw)
    assert storage.read_table(FEATURE_STORE).equals(features)
    assert storage.read_table(LABEL_STORE).drop("label_learned_at").equals(labels.drop("label_learned_at"))
    (entry,) = storage.read_json(LEDGER)["extracts"]
    assert entry["overlaps"] == [] and entry["rows"] == _before(whole, "2005-01-01").height
    assert dt.datetime.fromisoformat(entry["ingested_at"]) > labels["label_learned_at"].max()


@pytest.mark.parametrize(("change", "flags", "says"), [
    (pl.col("readmitted").str.replace(r".*", ""), ["--require-labels"],
     "readmitted is blank, but the extract is declared labelled"),
    (pl.lit("2999-01-01"), [], "snapshot_date: 2999-01-01 is in the future"),
])
def test_a_bad_next_extract_is_one_message_exit_2_and_the_datamart_is_untouched(whole, tmp_path, change, flags,
                                                                                   says) -> None:
    _build(tmp_path, "dm", _write(_before(whole, "2008-01-01"), tmp_path / "a.csv"))
    before = _files(tmp_path / "dm")
    column = "readmitted" if "require" in "".join(flags) else "snapshot_date"
    month = _from(whole, "2008-01-01")
    bad = month.with_columns(pl.when(pl.int_range(pl.len()).is_in([3, 9])).then(change)
                             .otherwise(pl.col(column)).alias(column))
    raw = _write(bad, tmp_path / "2008.csv")
    out = CliRunner().invoke(app, ["medallion", "--raw", raw, "--datamart", str(tmp_path / "dm"), *flags])
    message = out.output.replace("\n", "")
    assert out.exit_code == 2 and raw in message and "2 bad rows; the first is data row 4" in message
    assert says in message and "Fix:" in message and "Traceback" not in message
    assert _files(tmp_path / "dm") == before


def test_rows_quarantined_for_an_invalid_code_are_counted_by_month_in_the_ledger_for_the_report(whole, tmp_path) -> None:
    from readmit.data.extract import check_extract
    from readmit.data.extracts import invalid_codes_by_month
    from readmit.report.inputs import invalid_codes

    def spoil(frame: pl.DataFrame, months: dict[str, int]) -> pl.DataFrame:
        rank = pl.int_range(pl.len()).over(pl.col("snapshot_date").str.slice(0, 7))
        bad = pl.any_horizontal([(pl.col("snapshot_date").str.starts_with(m) & (rank < n)) for m, n in months.items()])
        return frame.with_columns(pl.when(bad).then(pl.lit("ABC")).otherwise(pl.col("diag_1")).alias("diag_1"))

    first = _write(spoil(_before(whole, "2008-07-01"), {"2008-02": 3, "2008-05": 2}), tmp_path / "a.csv")
    second = _write(spoil(_from(whole, "2008-07-01"), {"2008-05": 0, "2008-09": 1}), tmp_path / "b.csv")
    storage, (one, two) = _build(tmp_path, "dm", first, second, quarantine=True)
    ledger = storage.read_json(LEDGER)["extracts"]
    assert ledger[0]["invalid_codes"] == {"2008-02": 3, "2008-05": 2} == check_extract(first).invalid_codes_by_month
    assert ledger[1]["invalid_codes"] == {"2008-09": 1}
    assert invalid_codes(storage) == invalid_codes_by_month(ledger) == {"2008-02": 3, "2008-05": 2, "2008-09": 1}
    assert any("2008-02: 3, 2008-05: 2" in n for n in one[0].notes)
