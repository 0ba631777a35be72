"""The monitoring record: typed, written as JSON, read back, including records written before it was typed."""

from __future__ import annotations

import pytest

from readmit.errors import ArtifactError
from readmit.monitoring.record import MonitoringRecord

# A record as readmit wrote it before the record was typed (issue 17): the same keys, plain JSON.
WRITTEN_BEFORE = {
    "run_at": "2026-11-29T14:14:05+00:00", "as_of": "2008-10-15", "start": "2008-01", "end": "2008-12",
    "model": {"algorithm": "logistic_regression", "version": "20261129_141323_a1d29f", "alias": "champion"},
    "months": [
        {"month": "2008-08", "rows": 446, "score_psi": 0.04, "csi": {"payer_group": 0.822, "age": None},
         "missing_rate": {"payer_group": 0.1}, "new_category_rate": {},
         "bands": {"score_psi": "stable", "csi_max_feature": "payer_group", "csi_max": 0.822, "csi_max_band": "act"},
         "labels": "mature", "observed": {"auc_roc": 0.703, "pr_auc": 0.238, "brier": 0.084,
                                          "observed_expected": 0.94, "slope": 1.33, "positives": 44, "labelled": 446},
         "estimated": None},
        {"month": "2008-09", "rows": 433, "score_psi": 0.042, "csi": {"payer_group": 0.748}, "missing_rate": {},
         "new_category_rate": {}, "bands": {"score_psi": "stable", "csi_max_feature": "payer_group",
                                           "csi_max": 0.748, "csi_max_band": "act"},
         "labels": "immature", "observed": None, "estimated": {"auc_roc": 0.632, "positive_rate": 0.109}},
    ],
    "summary": {"mature_months": ["2008-08"], "immature_months": ["2008-09"], "observed": None, "estimated": None,
                "test_auc_roc": 0.649, "months_without_predictions": ["2008-12"],
                "months_scored_by_another_model": [], "profile_source": "training"},
    "decision": {"action": "retrain", "reasons": ["feature CSI in the act band (> 0.25): payer_group"]},
    "thresholds": {"psi_warning": 0.1, "psi_alert": 0.25, "bootstrap_samples": 1000},
}


def test_a_record_written_before_it_was_typed_reads_and_writes_back_unchanged():
    record = MonitoringRecord.read(WRITTEN_BEFORE, "latest_monitoring.json")
    assert record.months[0].observed.positive_rate == pytest.approx(44 / 446)
    assert record.months[1].estimated.auc_roc == 0.632 and record.months[1].observed is None
    assert record.decision.action == "retrain" and record.summary.months_without_predictions == ["2008-12"]
    assert record.file_content() == WRITTEN_BEFORE
    assert record.as_dict() == {**WRITTEN_BEFORE, "path": None}


def test_a_minimal_or_older_record_gets_defaults_and_unknown_keys_are_ignored():
    record = MonitoringRecord.read({"run_at": "2026-01-03T00:00:00", "as_of": "2009-06-30",
                                    "model": {"algorithm": "xgboost", "version": 20260101},
                                    "months": [{"month": "2008-01", "score_psi": 0.02, "retired_key": 1}],
                                    "decision": {"action": "watch"}}, "x.json")
    assert record.model.version == "20260101" and record.model.alias is None
    assert record.months[0].bands.csi_max is None and record.months[0].labels == "immature"
    assert record.summary.mature_months == [] and record.decision.reasons == []


@pytest.mark.parametrize("broken", [{}, {"run_at": "x", "as_of": "y", "model": {"algorithm": "a", "version": "1"},
                                         "decision": {"action": "panic"}}, [1, 2]])
def test_a_file_that_is_not_a_record_is_an_error_naming_it(broken):
    with pytest.raises(ArtifactError, match="registry/monitoring/r/latest_monitoring.json: not a monitoring record"):
        MonitoringRecord.read(broken, "registry/monitoring/r/latest_monitoring.json")
