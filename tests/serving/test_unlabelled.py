"""Today's discharges: encounters whose outcome is not known yet are built, stored and scored.

The real UCI sample with the last three months' ``readmitted`` blanked goes through the
medallion into its own datamart, and the same sample fully labelled into another; the small
session registry's models (same features) score and monitor it.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import polars as pl

from readmit.config import load_settings
from readmit.data.layers import FEATURE_STORE, LABEL_STORE, PREDICTIONS
from readmit.data.medallion import run_medallion
from readmit.data.raw import read_raw
from readmit.monitoring.monitor import run_monitoring
from readmit.registry import Registry
from readmit.registry.aliases import set_alias
from readmit.serving.predict import predict
from readmit.storage import Storage
from readmit.training.gates import run_checks

BLANKED = ("2008-10", "2008-11", "2008-12")


def _blank_last_months(raw: str, out: Path) -> set[int]:
    """Copy ``raw`` with readmitted blanked for the encounters dated in BLANKED; their ids."""
    dated = read_raw(raw).frame  # every row is good: file order = frame order
    blank = (dated["snapshot_date"] >= dt.date(2008, 10, 1)).to_list()
    with open(raw, newline="") as src, open(out, "w", newline="") as dst:
        rows = csv.reader(src)
        writer = csv.writer(dst, lineterminator="\n")
        header = next(rows)
        writer.writerow(header)
        at = header.index("readmitted")
        for row, is_blank in zip(rows, blank, strict=True):
            writer.writerow([*row[:at], "" if is_blank else row[at], *row[at + 1:]])
    return set(dated.filter(pl.Series(blank))["encounter_id"].to_list())


def test_unlabelled_months_reach_the_feature_store_and_are_scored(uci_sample, small_models_copy,
                                                                  tmp_path: Path) -> None:
    blanked = _blank_last_months(str(uci_sample), tmp_path / "today.csv")
    assert len(blanked) > 300
    config = small_models_copy.config
    full = Storage(tmp_path / "labelled")  # the same sample, every outcome known
    run_medallion(load_settings(config, raw=str(uci_sample), datamart=str(tmp_path / "labelled")))
    served = type(small_models_copy)(config, small_models_copy.datamart + "_today", small_models_copy.registry,
                                     str(tmp_path / "today.csv"))
    settings = served.settings()
    results = run_medallion(settings)
    gold = next(r for r in results if r.layer == "gold")
    assert gold.rows_out == full.read_table(FEATURE_STORE).height  # every encounter, labelled or not
    assert any(note.startswith("2008-12: ") and "without a known outcome" in note for note in gold.notes)

    storage = Storage(settings.datamart_uri)
    # the feature store is the one of the fully labelled build, row for row
    assert storage.read_table(FEATURE_STORE).equals(full.read_table(FEATURE_STORE))
    # the label store lacks exactly the blanked encounters, and keeps the others' outcomes
    labels = storage.read_table(LABEL_STORE)
    all_labels = full.read_table(LABEL_STORE)
    assert set(all_labels["encounter_id"]) - set(labels["encounter_id"]) == blanked
    assert labels.drop("_source_sha256", "label_learned_at").equals(
        all_labels.filter(~pl.col("encounter_id").is_in(sorted(blanked))).drop("_source_sha256", "label_learned_at"))
    assert labels["label_learned_at"].null_count() == 0

    # the months without a single label are scored like any other
    version = served.models()["xgboost"]
    result = predict(settings, BLANKED[0], BLANKED[-1], version=version).as_dict()
    assert [m["month"] for m in result["months"]] == list(BLANKED)
    scored = storage.read_table(PREDICTIONS)
    features = storage.read_table(FEATURE_STORE, list(BLANKED)).filter(~pl.col("death_or_hospice"))
    assert scored.height == result["scored"] == features.height > 0
    assert set(scored["encounter_id"]) <= blanked

    # monitoring: the labelled mature months are observed, the blanked ones (mature by date) estimated
    set_alias(Registry(settings.registry_uri), "champion", "xgboost", version, reason="test", by="tests")
    predict(settings, "2008-07", "2008-09", version=version)
    record = run_monitoring(settings, start_month="2008-07", end_month="2008-12", as_of=dt.date(2009, 6, 30))
    months = {m.month: m for m in record.months}
    assert all(months[m].labels == "mature" for m in months)
    assert all(months[m].observed is not None and months[m].estimated is None for m in ("2008-07", "2008-08", "2008-09"))
    assert all(months[m].observed is None and months[m].estimated is not None for m in BLANKED)
    assert all(months[m].observed.labelled == months[m].rows > 0 for m in ("2008-07", "2008-08", "2008-09"))

    # the gates count labelled rows only and say how many they left out
    enough = next(r for r in run_checks(settings) if r.name == "sufficient_training_data")
    assert enough.details["windows"]["oot"]["unlabelled_left_out"] == len(blanked)
    assert enough.details["windows"]["train"]["unlabelled_left_out"] == 0
