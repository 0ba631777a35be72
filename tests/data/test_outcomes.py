"""Outcomes derived from admission and discharge dates, for an extract without ``readmitted``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from readmit.cli.main import app
from readmit.config import load_settings
from readmit.data.layers import FEATURE_STORE, LABEL_STORE
from readmit.data.medallion import run_medallion
from readmit.data.outcomes import derived_readmitted
from readmit.data.synth import write_synthetic
from readmit.errors import ReadmitInputError
from readmit.storage import Storage


def _stays(*rows: tuple[int, int, str, str]) -> pl.DataFrame:
    return pl.DataFrame([(str(e), str(p), a, d) for e, p, a, d in rows], orient="row",
                        schema=["encounter_id", "patient_nbr", "admission_date", "discharge_date"])


def test_the_next_admission_gives_the_outcome_and_maturity_is_as_of_the_files_latest_date() -> None:
    labels, as_of = derived_readmitted(_stays(
        (1, 10, "2020-01-01", "2020-01-05"),  # readmitted 15 days later: <30
        (2, 10, "2020-01-20", "2020-01-22"),  # no later stay, 30 days passed by the as-of date: NO
        (3, 20, "2020-01-01", "2020-01-02"),  # next stay 44 days after discharge: >30
        (4, 20, "2020-02-15", "2020-02-20"),  # discharged 19 days before the as-of date: not known yet
        (5, 30, "2020-03-01", "2020-03-10"),  # the file's latest date: not known yet
        (6, 40, "2020-03-05", "2020-03-05"),  # a day stay readmitted the same day: <30
        (7, 40, "2020-03-05", "2020-03-07"),  # (and that stay not mature)
        (8, 50, "2020-01-01", "bad"),  # unreadable: blank (its row check refuses it)
    ))
    assert as_of == dt.date(2020, 3, 10)
    assert labels.to_list() == ["<30", "NO", ">30", "", "", "<30", "", ""]


def _dated_extract(tmp_path: Path, rows: int = 3000) -> pl.DataFrame:
    """Synthetic encounters as an EHR extract: admission and discharge dates, no outcome column.

    Discharged over 18 months (2007-07..2008-12): the outcomes' relations between extracts need
    months on both sides of a split, not ten years of them (each month is a partition per layer).
    """
    path = write_synthetic(tmp_path / "synth.csv", rows=rows, seed=5, with_snapshot=True,
                           start=dt.date(2007, 7, 1), end=dt.date(2008, 12, 31))
    text = pl.read_csv(path, infer_schema=False)
    discharged = pl.col("snapshot_date").str.to_date()
    admitted = discharged - pl.duration(days=pl.col("time_in_hospital").cast(pl.Int64))
    return text.with_columns(admitted.cast(pl.String).alias("admission_date"),
                             pl.col("snapshot_date").alias("discharge_date")).drop("readmitted", "snapshot_date")


def test_an_extract_without_readmitted_gets_its_labels_from_its_dates(tmp_path: Path) -> None:
    extract = _dated_extract(tmp_path)
    extract.write_csv(tmp_path / "ehr.csv")
    settings = load_settings(raw=str(tmp_path / "ehr.csv"), datamart=str(tmp_path / "dm"))
    bronze = run_medallion(settings)[0]
    assert any("readmitted derived from each patient's next admission, as of 2008-12-31" in n for n in bronze.notes)
    storage = Storage(settings.datamart_uri)
    features, labels = storage.read_table(FEATURE_STORE), storage.read_table(LABEL_STORE)
    assert features.height == extract.height  # every encounter, in the month of its discharge
    assert features["snapshot_date"].cast(pl.String).to_list() == extract["discharge_date"].to_list()
    expected, _ = derived_readmitted(extract.select("encounter_id", "patient_nbr", "admission_date",
                                                    "discharge_date"))
    known = extract.with_columns(expected.alias("readmitted")).filter(pl.col("readmitted") != "")
    got = labels.sort("encounter_id").select(pl.col("encounter_id").cast(pl.String), "readmitted")
    assert got.equals(known.select("encounter_id", "readmitted").sort(pl.col("encounter_id").cast(pl.Int64)))
    unknown = features.filter(~pl.col("encounter_id").is_in(labels["encounter_id"].implode()))
    # the unknown outcomes are the discharges of the last 30 days not yet readmitted
    assert unknown.height > 0 and unknown["snapshot_date"].min() > dt.date(2008, 12, 31) - dt.timedelta(days=30)


@pytest.mark.parametrize(("column", "value", "says"), [
    ("discharge_date", "2999-01-01", "discharge_date: 2999-01-01 is in the future"),
    ("admission_date", "2009-12-31", "admission_date 2009-12-31 is after discharge_date"),
    ("admission_date", "31/12/2008", "admission_date: '31/12/2008' is not an ISO date (YYYY-MM-DD)"),
])
def test_a_bad_date_is_one_message_naming_file_row_and_fix_and_nothing_is_written(tmp_path: Path, column: str,
                                                                                   value: str, says: str) -> None:
    extract = _dated_extract(tmp_path, rows=200)
    bad = extract.with_columns(pl.when(pl.int_range(pl.len()) == 6).then(pl.lit(value))
                               .otherwise(pl.col(column)).alias(column))
    bad.write_csv(tmp_path / "bad.csv")
    with pytest.raises(ReadmitInputError) as caught:
        run_medallion(load_settings(raw=str(tmp_path / "bad.csv"), datamart=str(tmp_path / "dm")))
    assert "bad.csv: 1 bad row; the first is data row 7 (line 8): " in str(caught.value) and says in str(caught.value)
    assert "--quarantine" in str(caught.value)
    assert not (tmp_path / "dm").exists() or not any(p.is_file() for p in (tmp_path / "dm").rglob("*.parquet"))
    out = CliRunner().invoke(app, ["medallion", "--raw", str(tmp_path / "bad.csv"), "--datamart", str(tmp_path / "dm")])
    assert out.exit_code == 2 and says in out.output and "Traceback" not in out.output


def test_a_next_admission_in_the_next_extract_makes_the_previous_one_a_readmission(tmp_path: Path) -> None:
    """Two monthly EHR extracts (split by discharge date) give the outcomes of the one-shot build:
    derived over the stays of both, mature as of the second extract's latest date."""
    extract = _dated_extract(tmp_path)
    extract.write_csv(tmp_path / "all.csv")
    one_shot = Storage(tmp_path / "one")
    run_medallion(load_settings(raw=str(tmp_path / "all.csv"), datamart=str(tmp_path / "one")))
    first, second = extract.filter(pl.col("discharge_date") < "2008-06-01"), \
        extract.filter(pl.col("discharge_date") >= "2008-06-01")
    first.write_csv(tmp_path / "to-may.csv")
    second.write_csv(tmp_path / "from-june.csv")
    storage = Storage(tmp_path / "monthly")
    run_medallion(load_settings(raw=str(tmp_path / "to-may.csv"), datamart=str(tmp_path / "monthly")))
    alone = storage.read_table(LABEL_STORE).select("encounter_id", "readmitted")
    results = run_medallion(load_settings(raw=str(tmp_path / "from-june.csv"), datamart=str(tmp_path / "monthly")))

    got = storage.read_table(LABEL_STORE).select("encounter_id", "readmitted").sort("encounter_id")
    want = one_shot.read_table(LABEL_STORE).select("encounter_id", "readmitted").sort("encounter_id")
    assert got.equals(want)
    # the first extract's own view was not the whole story: some of its encounters changed
    changed = alone.join(got, on="encounter_id", how="full", suffix="_now", coalesce=True).filter(
        pl.col("readmitted").ne_missing(pl.col("readmitted_now")))
    assert changed.height > 0
    note = next(n for n in results[0].notes if n.startswith("outcomes derived again"))
    assert "as of 2008-12-31" in note
    # the months those encounters belong to (before June) were rebuilt in every layer
    earlier = {str(d)[:7] for d in one_shot.read_table(LABEL_STORE).filter(
        pl.col("encounter_id").is_in(changed["encounter_id"].implode()))["snapshot_date"].to_list()}
    assert earlier and all(m in r.partitions for r in results for m in earlier)
    assert any(m < "2008-06" for m in earlier)
    features = storage.read_table(FEATURE_STORE).sort("encounter_id")
    assert features.equals(one_shot.read_table(FEATURE_STORE).sort("encounter_id"))


def test_a_stay_resent_with_its_own_outcome_keeps_it_and_still_counts_as_the_next_admission(tmp_path: Path) -> None:
    extract = _dated_extract(tmp_path)
    dated = extract.with_columns(derived_readmitted(extract.select(
        "encounter_id", "patient_nbr", "admission_date", "discharge_date"))[0].alias("_label"))
    early = dated.filter(pl.col("discharge_date") < "2008-06-01")
    # e1 readmitted within 30 days by e2, both before June: e2 is e1's next admission
    pairs = early.sort("admission_date").with_columns(
        pl.col("encounter_id").shift(-1).over("patient_nbr").alias("_next"),
        pl.col("admission_date").shift(-1).over("patient_nbr").alias("_next_admitted"))
    e1, e2 = pairs.filter((pl.col("_label") == "<30") & pl.col("_next").is_not_null()
                          & (pl.col("_next_admitted") >= pl.col("discharge_date"))).select("encounter_id", "_next").row(0)
    early.drop("_label").write_csv(tmp_path / "to-may.csv")
    resent = extract.filter(pl.col("encounter_id") == e2).with_columns(
        pl.col("discharge_date").alias("snapshot_date"), pl.lit("NO").alias("readmitted")).drop(
        "admission_date", "discharge_date")
    resent.write_csv(tmp_path / "e2-labelled.csv")
    extract.filter(pl.col("discharge_date") >= "2008-06-01").write_csv(tmp_path / "from-june.csv")
    for name in ("to-may.csv", "e2-labelled.csv", "from-june.csv"):
        run_medallion(load_settings(raw=str(tmp_path / name), datamart=str(tmp_path / "dm")))
    labels = Storage(tmp_path / "dm").read_table(LABEL_STORE)
    outcome = dict(zip(labels["encounter_id"].cast(pl.String).to_list(), labels["readmitted"].to_list(), strict=True))
    assert outcome[e2] == "NO"  # its own extract's outcome, not derived again by the next dated extract
    assert outcome[e1] == "<30"  # e2's admission still counts
