"""Promotion by written rules on the small registry (synthetic gold, three models): decisions, challenger, force, rollback."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from readmit.errors import ArtifactError, ReadmitInputError
from readmit.governance.promote import evaluation_rows, promote, promote_step, rollback
from readmit.registry import Registry
from readmit.registry.aliases import alias_history, get_alias, list_decisions
from readmit.training import predict_proba
from readmit.training.evaluate import auc


def _pointer(record):
    return None if record is None else (record["algorithm"], record["version"])


def test_the_first_eligible_model_becomes_champion_and_the_decision_is_recorded(small_models_copy):
    settings = small_models_copy.settings()
    models = small_models_copy.models()
    decision = promote(settings, candidate=models["xgboost"], by="tests")
    assert decision["decision"] == "PROMOTED" and decision["forced"] is False
    assert [r["rule"] for r in decision["rules"]] == ["floor_min_auc", "floor_no_leakage"]
    assert decision["champion"] is None and "first champion" in decision["reason"]
    registry = Registry(settings.registry_uri)
    assert _pointer(get_alias(registry, "champion")) == ("xgboost", models["xgboost"])
    stored = json.loads(Path(decision["path"]).read_text())
    assert stored["decision"] == "PROMOTED" and stored["path"] == decision["path"]
    assert Path(decision["path"]).parent.name == "decisions" and Path(decision["path"]).name.startswith("promotion_")
    (event,) = alias_history(registry)
    assert event["event"] == "promotion" and event["by"] == "tests" and event["decision"] == decision["path"]

    # the candidate's AUC in the record is the model scored afresh on the oot rows
    rows, window = evaluation_rows(settings)
    assert window["kind"] == "oot" and window["start"] == "2008-01-01" and window["rows"] == rows.height
    model, _ = registry.load("xgboost", models["xgboost"])
    expected = auc(rows["label"].to_numpy().astype(int), predict_proba(model, rows))
    assert decision["candidate"]["auc_roc"] == pytest.approx(expected)
    assert not rows["death_or_hospice"].any()


def test_a_candidate_that_fails_a_rule_is_rejected_and_becomes_challenger(small_models_copy, tmp_path):
    # min_auc_gain 0.5 cannot be met: the rejection names the rule with its value and limit
    settings = small_models_copy.settings({"governance_config": {"min_auc_gain": 0.5}}, tmp_path)
    models = small_models_copy.models()
    promote(settings, candidate=models["xgboost"], by="tests")
    decision = promote(settings, candidate=models["logistic_regression"], by="tests")
    assert decision["decision"] == "REJECTED"
    rules = {r["rule"]: r for r in decision["rules"]}
    assert set(rules) == {"floor_min_auc", "floor_no_leakage", "auc_gain", "brier", "subgroup_auc"}
    gain = decision["candidate"]["auc_roc"] - decision["champion"]["auc_roc"]
    assert rules["auc_gain"] == {**rules["auc_gain"], "value": pytest.approx(gain), "limit": 0.5, "passed": False}
    assert rules["brier"]["value"] == pytest.approx(decision["candidate"]["brier"] - decision["champion"]["brier"])
    assert "auc_gain" in decision["reason"] or "ROC-AUC" in decision["reason"]
    registry = Registry(settings.registry_uri)
    assert _pointer(get_alias(registry, "champion")) == ("xgboost", models["xgboost"])
    assert _pointer(get_alias(registry, "challenger")) == ("logistic_regression", models["logistic_regression"])
    assert [d["decision"] for d in list_decisions(registry)] == ["PROMOTED", "REJECTED"]


def test_subgroup_and_brier_rules_compare_the_same_rows(small_models_copy, tmp_path):
    settings = small_models_copy.settings({"governance_config": {"min_auc_gain": 0.0, "brier_tolerance": 0.0,
                                                           "subgroup_auc_tolerance": 0.0}}, tmp_path)
    models = small_models_copy.models()
    promote(settings, candidate=models["xgboost"], by="tests")
    decision = promote(settings, candidate=models["random_forest"], by="tests")
    rules = {r["rule"]: r for r in decision["rules"]}
    cand, champ = decision["candidate"]["auc_roc_by_group"], decision["champion"]["auc_roc_by_group"]
    drops = [champ[g][v] - c for g in cand for v, c in cand[g].items()
             if c is not None and champ[g].get(v) is not None]
    assert drops and rules["subgroup_auc"]["value"] == pytest.approx(max(drops))
    assert rules["subgroup_auc"]["passed"] == (max(drops) <= 0.0)
    assert decision["decision"] == ("PROMOTED" if all(r["passed"] for r in decision["rules"]) else "REJECTED")


def test_force_needs_a_reason_and_is_recorded_as_forced(small_models_copy, tmp_path):
    settings = small_models_copy.settings({"governance_config": {"min_auc_gain": 0.5}}, tmp_path)
    models = small_models_copy.models()
    promote(settings, candidate=models["xgboost"], by="tests")
    with pytest.raises(ReadmitInputError, match="--force needs --reason"):
        promote(settings, candidate=models["logistic_regression"], force=True)
    decision = promote(settings, candidate=models["logistic_regression"], force=True,
                       reason="clinical review asked for a linear model", by="ana")
    assert decision["decision"] == "PROMOTED" and decision["forced"] is True
    assert "clinical review" in decision["reason"] and "auc_gain" in decision["reason"]
    registry = Registry(settings.registry_uri)
    last = alias_history(registry, "champion")[-1]
    assert last["event"] == "promotion" and last["forced"] is True and last["by"] == "ana"


def test_rollback_restores_the_previous_champion(small_models_copy):
    settings = small_models_copy.settings()
    models = small_models_copy.models()
    with pytest.raises(ArtifactError, match="no previous champion"):
        rollback(settings)
    promote(settings, candidate=models["xgboost"], by="tests")
    with pytest.raises(ArtifactError, match="no previous champion"):
        rollback(settings)
    promote(settings, candidate=models["logistic_regression"], force=True, reason="try it", by="tests")
    result = rollback(settings, reason="bad calibration in production")
    assert result["to"] == {"algorithm": "xgboost", "version": models["xgboost"]}
    assert result["from"] == {"algorithm": "logistic_regression", "version": models["logistic_regression"]}
    registry = Registry(settings.registry_uri)
    assert _pointer(get_alias(registry, "champion")) == ("xgboost", models["xgboost"])
    assert alias_history(registry)[-1]["event"] == "rollback"


def test_the_pipeline_step_promotes_the_recommended_model_and_never_forces(small_models_copy, tmp_path):
    settings = small_models_copy.settings()
    recommended = Registry(settings.registry_uri).read_comparison()["recommended"]
    decision = promote_step(settings)
    assert decision["decision"] == "PROMOTED"
    assert (decision["candidate"]["algorithm"], decision["candidate"]["version"]) == (
        recommended["algorithm"], recommended["version"])
    assert promote_step(settings)["decision"] == "UNCHANGED"
    strict = small_models_copy.settings({"monitoring_config": {"min_auc": 0.99}}, tmp_path)
    other = next(a for a in small_models_copy.models() if a != recommended["algorithm"])
    decision = promote(strict, candidate=small_models_copy.models()[other], by="t")
    assert decision["decision"] == "REJECTED" and not decision["forced"]
    assert {r["rule"]: r["passed"] for r in decision["rules"]}["floor_min_auc"] is False


def test_the_latest_mature_months_window(small_models_copy, tmp_path):
    settings = small_models_copy.settings({"governance_config": {"evaluation_window": {"latest_months": 3}},
                                     "training_config": {"label_maturity_days": 30}}, tmp_path)
    rows, window = evaluation_rows(settings, as_of=date(2008, 12, 31))
    assert window["months"] == ["2008-09", "2008-10", "2008-11"]  # December's labels are not mature yet
    assert evaluation_rows(settings, as_of=date(2008, 12, 29))[1]["months"][-1] == "2008-10"
    assert rows["snapshot_date"].min() >= date(2008, 9, 1) and rows["snapshot_date"].max() <= date(2008, 11, 30)
    with pytest.raises(ReadmitInputError, match="no gold month has mature labels"):
        evaluation_rows(settings, as_of=date(1999, 1, 1))
    assert np.isin(rows["label"].to_numpy(), [0, 1]).all()


def test_promotion_on_s3(small_models_s3):
    settings = small_models_s3.settings()
    decision = promote(settings, candidate=small_models_s3.models()["xgboost"], by="tests")
    assert decision["decision"] == "PROMOTED" and decision["path"].startswith("s3://")
    assert _pointer(get_alias(Registry(settings.registry_uri), "champion"))[0] == "xgboost"
