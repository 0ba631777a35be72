"""Synthetic UCI-format data: exact schema, determinism, realistic marginals, honest signal."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from readmit.data.raw import read_raw
from readmit.data.schema import DEATH_OR_HOSPICE_DISPOSITIONS, RAW_SCHEMA
from readmit.data.synth import write_synthetic


@pytest.fixture(scope="module")
def synth_40k(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    path = write_synthetic(tmp_path_factory.mktemp("synth") / "d.csv", rows=40_000, seed=11)
    return read_raw(str(path)).frame


def test_header_is_the_uci_header_and_read_raw_accepts_it(tmp_path: Path) -> None:
    path = write_synthetic(tmp_path / "d.csv", rows=500, seed=1)
    assert path.read_text().splitlines()[0].split(",") == list(RAW_SCHEMA)
    result = read_raw(str(path))
    assert result.rows_in == result.frame.height == 500 and result.rejected.height == 0
    assert "?" in path.read_text()  # missing written the UCI way


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = write_synthetic(tmp_path / "a.csv", rows=3_000, seed=5).read_bytes()
    b = write_synthetic(tmp_path / "b.csv", rows=3_000, seed=5).read_bytes()
    c = write_synthetic(tmp_path / "c.csv", rows=3_000, seed=6).read_bytes()
    assert a == b and a != c


@pytest.mark.parametrize(("rows", "seed", "chunk_rows", "with_snapshot", "sha256"), [
    (3_000, 1, 1_000, False, "c015b5f3d66fd6b1"),
    (5_000, 42, 250_000, True, "5a7367074ac50117"),
    (777, 9, 100, True, "d4a779e4c788b16b"),
])
def test_output_is_pinned(tmp_path: Path, rows: int, seed: int, chunk_rows: int, with_snapshot: bool,
                          sha256: str) -> None:
    """The bytes a seed gives are a contract (benchmarks and demos rely on them): a change to
    the generator that moves them is deliberate, and updates these digests."""
    path = write_synthetic(tmp_path / "d.csv", rows=rows, seed=seed, chunk_rows=chunk_rows,
                           with_snapshot=with_snapshot)
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:16] == sha256


def test_with_snapshot_writes_iso_dates_read_as_input(tmp_path: Path) -> None:
    path = write_synthetic(tmp_path / "diabetic_data_with_snapshot.csv", rows=2_400, seed=2,
                           with_snapshot=True)
    result = read_raw(str(path))
    assert result.snapshot_source == "input"
    dates = result.frame["snapshot_date"]
    assert dates.is_sorted() and dates.dt.strftime("%Y-%m").n_unique() == 120


def test_a_date_span_spreads_the_snapshots_over_it_and_a_reversed_one_is_refused(tmp_path: Path) -> None:
    start, end = dt.date(2007, 7, 1), dt.date(2008, 12, 31)
    path = write_synthetic(tmp_path / "span.csv", rows=900, seed=3, with_snapshot=True, start=start, end=end,
                           chunk_rows=250)
    dates = pl.read_csv(path, infer_schema=False)["snapshot_date"].str.to_date()
    assert dates.min() == start and dates.max() == end and dates.is_sorted()
    assert dates.dt.strftime("%Y-%m").n_unique() == 18  # every month of the span, none outside it
    with pytest.raises(ValueError, match="before start"):
        write_synthetic(tmp_path / "bad.csv", rows=10, seed=3, with_snapshot=True, start=end, end=start)


def test_chunks_keep_ids_unique_and_increasing(tmp_path: Path) -> None:
    path = write_synthetic(tmp_path / "d.csv", rows=2_501, seed=4, chunk_rows=1_000)
    frame = read_raw(str(path)).frame
    assert frame.height == 2_501
    assert frame["encounter_id"].is_sorted() and frame["encounter_id"].is_unique().all()
    assert 0.65 < frame["patient_nbr"].n_unique() / frame.height < 0.75


def test_marginals_look_like_the_real_file(synth_40k: pl.DataFrame) -> None:
    f = synth_40k
    share = {k: v / f.height for k, v in f["readmitted"].value_counts().iter_rows()}
    assert share["<30"] == pytest.approx(0.112, abs=0.01)
    assert share[">30"] == pytest.approx(0.35, abs=0.02)
    assert share["NO"] == pytest.approx(0.54, abs=0.02)
    assert f["payer_code"].null_count() / f.height == pytest.approx(0.40, abs=0.02)
    assert f["medical_specialty"].null_count() / f.height == pytest.approx(0.49, abs=0.02)
    assert (f["A1Cresult"] == "None").mean() == pytest.approx(0.83, abs=0.02)
    assert (f["metformin"] == "No").mean() == pytest.approx(0.80, abs=0.02)
    assert (f["examide"] == "No").all()
    diag_1 = f["diag_1"].drop_nulls()
    assert {"428", "414", "V57", "250.8"} <= set(diag_1.unique().to_list())
    assert diag_1.str.contains(r"^\d+\.\d+$").any()
    assert f["diag_1"].str.starts_with("E").any() and f["diag_1"].str.starts_with("V").any()
    dead = f.filter(pl.col("discharge_disposition_id").is_in(list(DEATH_OR_HOSPICE_DISPOSITIONS)))
    assert dead.height > 0 and (dead["readmitted"] != "<30").all()


def test_signal_is_learnable_but_honest(synth_40k: pl.DataFrame) -> None:
    f = (
        synth_40k.filter(
            ~pl.col("discharge_disposition_id").is_in(list(DEATH_OR_HOSPICE_DISPOSITIONS))
        )
        .sort("encounter_id")
        .with_columns(prior=pl.int_range(pl.len()).over("patient_nbr"))
    )
    x = f.select(
        "number_inpatient", "number_emergency", "number_outpatient", "time_in_hospital",
        "number_diagnoses", "num_medications", "prior",
        snf=pl.col("discharge_disposition_id") == 3,
        age=pl.col("age").str.slice(1, 2).str.strip_chars("-").cast(pl.Int64),
    ).to_numpy().astype(float)
    y = (f["readmitted"] == "<30").to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.4, random_state=0)
    model = LogisticRegression(max_iter=1_000).fit(np.log1p(x_train), y_train)
    auc = roc_auc_score(y_test, model.predict_proba(np.log1p(x_test))[:, 1])
    assert 0.63 < auc < 0.73, auc
