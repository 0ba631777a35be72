"""The real UCI data as a hospital would send it: three extracts that add up to the one-shot build.

Extract 1 = 1999-2007; extract 2 = 2008, with the last three months' ``readmitted`` blank (not
known yet) and every diagnosis rewritten in ICD-10-CM (a test-only mapping of the codes present,
each to a code of its Strack group); extract 3 = those three months again, with their outcomes.
Each is loaded by ``readmit medallion --raw`` into the same datamart and compared with the
one-shot build of the UCI zip; the small session registry's models score and monitor both.
"""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest

from readmit.config import load_settings
from readmit.data.features import icd9_group
from readmit.data.layers import FEATURE_STORE, LABEL_STORE, PREDICTIONS
from readmit.data.medallion import run_medallion
from readmit.data.raw import read_raw
from readmit.monitoring.ab import ab_report
from readmit.monitoring.monitor import run_monitoring
from readmit.registry import Registry
from readmit.registry.aliases import set_alias
from readmit.serving.predict import predict
from readmit.storage import Storage
from readmit.training.gates import check_single_source

BLANKED = ("2008-10", "2008-11", "2008-12")
MONTHS_2008 = [f"2008-{m:02d}" for m in range(1, 13)]
LINEAGE = ["_source_sha256", "label_learned_at"]
AS_OF = dt.date(2009, 6, 30)  # every 2008 label mature
DIAG = ("diag_1", "diag_2", "diag_3")
# Test-only: an ICD-10-CM code of each Strack group (the ICD-9 symptom codes to their R block).
_ICD10_OF_GROUP = {
    "Diabetes": "E11.9", "Circulatory": "I50.9", "Respiratory": "J44.1", "Digestive": "K21.9", "Injury": "S72.001A",
    "Musculoskeletal": "M54.5", "Genitourinary": "N39.0", "Neoplasms": "C34.90", "Other": "Z99.89",
}
_ICD10_OF_SYMPTOM = {785: "R00.0", 786: "R06.02", 787: "R11.0", 788: "R39.9"}


def _icd10_mapping(codes: list[str]) -> dict[str, str]:
    """Each ICD-9 code present -> an ICD-10-CM code of the same group ('?' stays missing)."""
    frame = nw.from_native(pl.DataFrame({"c": codes}, schema={"c": pl.String}))
    groups = frame.select(icd9_group(nw.col("c")).alias("g")).to_native()["g"].to_list()
    out = {}
    for code, group in zip(codes, groups, strict=True):
        if code == "?":
            out[code] = code
        elif code[0].isdigit() and int(float(code)) in _ICD10_OF_SYMPTOM:
            out[code] = _ICD10_OF_SYMPTOM[int(float(code))]
        else:
            out[code] = _ICD10_OF_GROUP[group]
    return out


def _extracts(uci_zip: Path, out: Path) -> tuple[list[str], set[int]]:
    """The three extract files (dated from the one-shot build's own snapshot dates) and the blanked ids."""
    with zipfile.ZipFile(uci_zip) as zf:
        member = next(n for n in zf.namelist() if n.endswith("diabetic_data.csv"))
        text = pl.read_csv(zf.read(member), infer_schema=False)
    dates = read_raw(str(uci_zip)).frame["snapshot_date"]  # every row is good: file order = frame order
    text = text.with_columns(dates.dt.strftime("%Y-%m-%d").alias("snapshot_date"))
    recent = text.filter(pl.col("snapshot_date") >= "2008-01-01")
    codes = sorted({c for col in DIAG for c in recent[col].to_list()})
    mapping = _icd10_mapping(codes)
    recent = recent.with_columns(pl.col(c).replace_strict(mapping) for c in DIAG)
    late = pl.col("snapshot_date") >= "2008-10-01"
    paths = [str(out / name) for name in ("1999-2007.csv", "2008.csv", "2008-q4-outcomes.csv")]
    text.filter(pl.col("snapshot_date") < "2008-01-01").write_csv(paths[0])
    recent.with_columns(pl.when(late).then(pl.lit("")).otherwise(pl.col("readmitted")).alias("readmitted")) \
        .write_csv(paths[1])
    recent.filter(late).write_csv(paths[2])
    blanked = set(recent.filter(late)["encounter_id"].cast(pl.Int64).to_list())
    return paths, blanked


def _observed(settings, version: str) -> dict:
    """Monitoring of 2008 on ``settings``'s datamart after scoring it with ``version`` as champion."""
    set_alias(Registry(settings.registry_uri), "champion", "xgboost", version, reason="test", by="tests")
    record = run_monitoring(settings, start_month="2008-01", end_month="2008-12", as_of=AS_OF)
    return {m.month: m for m in record.months}


def _ab_counts(settings, models: dict[str, str]) -> dict:
    """Rescore 2008 with an A/B test (champion xgboost, challenger logistic regression); the
    labelled rows, patients and positives the A/B report counts in each arm."""
    registry = Registry(settings.registry_uri)
    set_alias(registry, "champion", "xgboost", models["xgboost"], reason="test", by="tests")
    set_alias(registry, "challenger", "logistic_regression", models["logistic_regression"], reason="test", by="tests")
    predict(settings, "2008-01", "2008-12")
    arms = ab_report(settings, as_of=AS_OF)["arms"]
    return {a: {k: arms[a][k] for k in ("rows", "patients", "positives")} for a in arms}


def _with_ab(settings, tmp_path: Path):
    config = json.loads(Path(settings.config_uri).read_text())
    config.setdefault("inference_config", {})["ab_test"] = {"enabled": True, "challenger_share": 0.5}
    path = tmp_path / f"ab-{Path(settings.datamart_uri).name}.json"
    path.write_text(json.dumps(config))
    return load_settings(str(path), datamart=settings.datamart_uri, registry=settings.registry_uri)


def _figures(month) -> dict:
    """A month's observed figures to 9 decimals (the sums run in another row order)."""
    return {k: round(v, 9) if isinstance(v, float) else v for k, v in month.observed.model_dump().items()}


@pytest.mark.slow  # the whole real UCI file through the medallion twice (one-shot and three extracts)
def test_three_extracts_add_up_to_the_one_shot_uci_build(uci_zip, small_models_copy, tmp_path: Path) -> None:
    (first, second, third), blanked = _extracts(uci_zip, tmp_path)
    config, registry = small_models_copy.config, small_models_copy.registry
    one_shot = load_settings(config, raw=str(uci_zip), datamart=str(tmp_path / "one-shot"), registry=registry)
    run_medallion(one_shot)
    monthly = load_settings(config, raw=first, datamart=str(tmp_path / "monthly"), registry=registry)
    run_medallion(monthly)
    results = run_medallion(load_settings(config, raw=second, datamart=monthly.datamart_uri, registry=registry))
    assert [r.partitions for r in results] == [MONTHS_2008] * 3  # only 2008 rebuilt
    assert "diagnosis codes read as icd10" in results[0].notes

    full, store = Storage(one_shot.datamart_uri), Storage(monthly.datamart_uri)
    assert store.read_table(FEATURE_STORE).equals(full.read_table(FEATURE_STORE))  # features, history, groups
    labels, all_labels = store.read_table(LABEL_STORE), full.read_table(LABEL_STORE)
    assert set(all_labels["encounter_id"]) - set(labels["encounter_id"]) == blanked
    assert labels.drop(LINEAGE).equals(all_labels.filter(~pl.col("encounter_id").is_in(sorted(blanked))).drop(LINEAGE))
    assert check_single_source(monthly).passed

    version = small_models_copy.models()["xgboost"]
    for settings in (one_shot, monthly):
        scored = predict(settings, "2008-01", "2008-12", version=version).as_dict()
        assert [m["month"] for m in scored["months"]] == MONTHS_2008
    scored = store.read_table(PREDICTIONS)
    assert scored.drop("scored_at", strict=False).equals(full.read_table(PREDICTIONS).drop("scored_at", strict=False))
    alive = store.read_table(FEATURE_STORE, MONTHS_2008).filter(~pl.col("death_or_hospice"))
    assert set(scored["encounter_id"]) == set(alive["encounter_id"])  # all of 2008 (death/hospice excluded)
    assert len(blanked & set(scored["encounter_id"])) > 0.9 * len(blanked)

    reference = _observed(one_shot, version)
    months = _observed(monthly, version)
    assert all(months[m].observed is None and months[m].estimated is not None for m in BLANKED)
    assert all(_figures(months[m]) == _figures(reference[m]) for m in MONTHS_2008 if m not in BLANKED)

    # the A/B report counts labelled rows only: the blanked months are not in it yet
    models = small_models_copy.models()
    ab_full = _ab_counts(_with_ab(one_shot, tmp_path), models)
    ab_before = _ab_counts(_with_ab(monthly, tmp_path), models)
    assert sum(a["rows"] for a in ab_full.values()) - sum(a["rows"] for a in ab_before.values()) == len(
        blanked & set(scored["encounter_id"]))

    # the outcomes arrive: only the three months are rebuilt, and they turn observed as in the one-shot build
    results = run_medallion(load_settings(config, raw=third, datamart=monthly.datamart_uri, registry=registry))
    assert [r.partitions for r in results] == [list(BLANKED)] * 3
    assert store.read_table(LABEL_STORE).drop(LINEAGE).equals(all_labels.drop(LINEAGE))
    learned = store.read_table(LABEL_STORE).filter(pl.col("encounter_id").is_in(sorted(blanked)))["label_learned_at"]
    assert learned.min() > labels["label_learned_at"].max()
    def rounded(arms: dict) -> dict:
        return {a: {k: round(v, 9) if isinstance(v, float) else v for k, v in arm.items()} for a, arm in arms.items()}

    assert rounded(ab_report(_with_ab(monthly, tmp_path), as_of=AS_OF)["arms"]) == rounded(ab_report(
        _with_ab(one_shot, tmp_path), as_of=AS_OF)["arms"])  # the A/B report counts them, as the one-shot build
    assert {a: {k: v[k] for k in ("rows", "patients", "positives")} for a, v in ab_report(
        _with_ab(monthly, tmp_path), as_of=AS_OF)["arms"].items()} == ab_full
    reference = _observed(one_shot, version)  # both datamarts now hold the A/B predictions
    months = _observed(monthly, version)
    assert all(months[m].observed is not None and _figures(months[m]) == _figures(reference[m]) for m in MONTHS_2008)
    assert check_single_source(monthly).passed
