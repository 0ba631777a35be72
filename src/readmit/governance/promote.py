"""Promotion by written rules: a challenger replaces the champion only when it is better, afresh.

The candidate (the comparison's recommended model, the latest version of one algorithm per
``inference_config.model_selection``, or a version given explicitly) and the current champion
are both loaded (sha256-verified) and scored on the same labelled rows: the evaluation window of
``governance_config`` (the out-of-time window, or the latest N gold months whose labels are
mature). The candidate is PROMOTED when every rule holds:

- ``floor_min_auc``: its ROC-AUC >= ``monitoring_config.min_auc`` (the floor of any model);
- ``floor_no_leakage``: its ROC-AUC <= 0.75 (higher means leakage on this data);
- ``auc_gain``: its ROC-AUC beats the champion's by >= ``governance_config.min_auc_gain``;
- ``brier``: its Brier score is not worse than the champion's by more than ``brier_tolerance``;
- ``subgroup_auc``: in no age band, gender or race (groups with enough positives in both) does
  its ROC-AUC fall below the champion's by more than ``subgroup_auc_tolerance``.

With no champion yet, the floors alone decide. A REJECTED candidate becomes the ``challenger``
(what an A/B test scores against the champion); :func:`name_challenger` makes any version the
challenger, rules aside, when a person says so. ``force`` promotes despite failed rules and is
recorded as forced, with its reason. Every decision, with each rule's value and verdict, is
written to ``models/{model_name}/decisions/promotion_{timestamp}.json``; every alias change is
an event (:mod:`readmit.registry.aliases`). :func:`rollback` restores the previous champion.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import polars as pl

from readmit.config import LatestMonths, Settings, resolve_windows
from readmit.data.features import DEATH_OR_HOSPICE, death_or_hospice
from readmit.data.layers import FEATURE_STORE, LABEL, LABEL_STORE
from readmit.errors import ArtifactError, ReadmitInputError
from readmit.months import first_day, is_mature, last_day, months_spanning
from readmit.registry import Registry
from readmit.registry.aliases import actor, champion_lineage, get_alias, set_alias, write_decision
from readmit.storage import Storage
from readmit.training import predict_proba
from readmit.training.evaluate import LEAKAGE_AUC, evaluate_window
from readmit.training.split import DATE

SUBGROUPS = ("age_band", "gender", "race")


# -- the evaluation window -----------------------------------------------------------------------


def evaluation_rows(settings: Settings, as_of: date | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The labelled gold rows both models are scored on, and a description of the window."""
    cfg = settings.config
    storage = Storage(settings.datamart_uri)
    window = cfg.governance_config.evaluation_window
    labelled = sorted(set(storage.list_partitions(FEATURE_STORE)) & set(storage.list_partitions(LABEL_STORE)))
    if isinstance(window, LatestMonths):
        as_of = as_of or datetime.now(UTC).date()
        mature = [m for m in labelled if is_mature(m, as_of, cfg.training_config.label_maturity_days)]
        months = mature[-window.latest_months:]
        if not months:
            raise ReadmitInputError(
                f"no gold month has mature labels as of {as_of} (label_maturity_days="
                f"{cfg.training_config.label_maturity_days})",
                source=storage.uri_of(LABEL_STORE),
                fix="build gold (`readmit medallion`), or use governance_config.evaluation_window \"oot\"",
            )
        start, end = first_day(months[0]), last_day(months[-1])
        description = {"kind": "latest_months", "latest_months": window.latest_months}
    else:
        oot = cfg.temporal_splits.oot
        start, end = oot.start_date, oot.end_date
        months = [m for m in months_spanning(start, end) if m in labelled]
        description = {"kind": "oot"}
        if not months:
            raise ReadmitInputError(
                f"no labelled gold in the out-of-time window {start}..{end}",
                source=storage.uri_of(LABEL_STORE),
                fix="build gold for it (`readmit medallion`), or set governance_config.evaluation_window",
            )
    features = storage.read_table(FEATURE_STORE, months)
    labels = storage.read_table(LABEL_STORE, months, columns=["encounter_id", LABEL]).unique("encounter_id")
    rows = features.join(labels, on="encounter_id", how="inner").filter(
        pl.col(LABEL).is_not_null() & pl.col(DATE).is_between(start, end))
    if cfg.training_config.exclude_death_hospice and DEATH_OR_HOSPICE in rows.columns:
        rows = rows.filter(~death_or_hospice())
    rows = rows.sort(DATE, "encounter_id")
    y = rows[LABEL].to_numpy().astype(int)
    if y.size == 0 or y.min() == y.max():
        raise ReadmitInputError(
            f"the evaluation window {start}..{end} has {y.size} labelled rows and {int(y.sum())} positives: "
            "ROC-AUC cannot be computed", source=storage.uri_of(LABEL_STORE),
            fix="widen governance_config.evaluation_window or build more gold")
    description.update({"start": str(start), "end": str(end), "months": months, "rows": int(y.size),
                        "positives": int(y.sum())})
    return rows, description


# -- scoring the two models ------------------------------------------------------------------------


def _evaluate(model: Any, meta: dict[str, Any], rows: pl.DataFrame) -> dict[str, Any]:
    y = rows[LABEL].to_numpy().astype(int)
    p = np.asarray(predict_proba(model, rows), dtype=np.float64)
    threshold = float((meta.get("threshold") or {}).get("value", 0.5))
    metrics = evaluate_window(rows, y, p, threshold)
    return {
        "algorithm": meta["algorithm"], "version": meta["version"], "sha256": meta["artifact"]["sha256"],
        "auc_roc": metrics["auc_roc"], "brier": metrics["brier"], "pr_auc": metrics["pr_auc"],
        "mean_risk": float(p.mean()), "observed_rate": float(y.mean()),
        "auc_roc_by_group": {g: {v: r["auc_roc"] for v, r in metrics["auc_roc_by_group"].get(g, {}).items()}
                             for g in SUBGROUPS},
    }


def _rule(name: str, value: float | None, limit: float, passed: bool, detail: str) -> dict[str, Any]:
    return {"rule": name, "value": value, "limit": limit, "passed": bool(passed), "detail": detail}


def apply_rules(settings: Settings, cand: dict[str, Any], champ: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every rule's value, limit and verdict (see the module's docstring)."""
    gov = settings.config.governance_config
    floor = settings.config.monitoring_config.min_auc
    auc = cand["auc_roc"]
    rules = [
        _rule("floor_min_auc", auc, floor, auc is not None and auc >= floor,
              f"candidate ROC-AUC {auc:.4f} vs monitoring_config.min_auc {floor}"),
        _rule("floor_no_leakage", auc, LEAKAGE_AUC, auc is not None and auc <= LEAKAGE_AUC,
              f"candidate ROC-AUC {auc:.4f} must not exceed {LEAKAGE_AUC} (above it means leakage on this data)"),
    ]
    if champ is None:
        return rules
    gain = auc - champ["auc_roc"]
    rules.append(_rule("auc_gain", gain, gov.min_auc_gain, gain >= gov.min_auc_gain,
                       f"ROC-AUC {auc:.4f} vs champion {champ['auc_roc']:.4f} (gain {gain:+.4f}, "
                       f"needs >= {gov.min_auc_gain})"))
    worse = cand["brier"] - champ["brier"]
    rules.append(_rule("brier", worse, gov.brier_tolerance, worse <= gov.brier_tolerance,
                       f"Brier {cand['brier']:.4f} vs champion {champ['brier']:.4f} (worse by {worse:+.4f}, "
                       f"allowed {gov.brier_tolerance})"))
    drops = []
    for group in SUBGROUPS:
        for value, c_auc in cand["auc_roc_by_group"].get(group, {}).items():
            k_auc = champ["auc_roc_by_group"].get(group, {}).get(value)
            if c_auc is not None and k_auc is not None:
                drops.append((k_auc - c_auc, f"{group}={value}"))
    worst, where = max(drops, default=(0.0, "no subgroup with enough positives"))
    rules.append(_rule("subgroup_auc", worst, gov.subgroup_auc_tolerance, worst <= gov.subgroup_auc_tolerance,
                       f"largest subgroup ROC-AUC drop {worst:+.4f} ({where}) over {len(drops)} subgroups, "
                       f"allowed {gov.subgroup_auc_tolerance}"))
    return rules


# -- the candidate ---------------------------------------------------------------------------------


def candidate_metadata(settings: Settings, registry: Registry, candidate: str | None) -> dict[str, Any]:
    """The metadata of the candidate version (explicit, recommended, or latest of an algorithm)."""
    if candidate:
        return registry.metadata(candidate)
    inference = settings.config.inference_config
    if inference.model_selection == "latest":
        return registry.verify(inference.algorithm)
    recommended = registry.read_comparison()["recommended"]
    return registry.metadata(f"{recommended['algorithm']}_v{recommended['version']}")


def promote(
    settings: Settings,
    *,
    candidate: str | None = None,
    force: bool = False,
    reason: str | None = None,
    by: str | None = None,
    as_of: date | None = None,
) -> dict[str, Any]:
    """Decide whether the candidate replaces the champion; record the decision; return it."""
    if force and not (reason and reason.strip()):
        raise ReadmitInputError("--force needs --reason", fix='say why: --force --reason "TEXT"')
    settings = resolve_windows(settings)  # the out-of-time window, with relative windows
    by = by or actor()
    registry = Registry.for_settings(settings)
    meta = candidate_metadata(settings, registry, candidate)
    champion = get_alias(registry, "champion")
    pointer = {"algorithm": meta["algorithm"], "version": meta["version"]}
    if champion is not None and (champion["algorithm"], champion["version"]) == (pointer["algorithm"], pointer["version"]):
        return {"decision": "UNCHANGED", "forced": False, "candidate": pointer, "champion": pointer,
                "reason": f"{meta['algorithm']} v{meta['version']} is already the champion", "rules": [],
                "path": None}
    rows, window = evaluation_rows(settings, as_of)
    model, meta = registry.load(meta["algorithm"], meta["version"])
    cand = _evaluate(model, meta, rows)
    champ = None
    if champion is not None:
        c_model, c_meta = registry.load(champion["algorithm"], champion["version"])
        champ = _evaluate(c_model, c_meta, rows)
    rules = apply_rules(settings, cand, champ)
    failed = [r["rule"] for r in rules if not r["passed"]]
    promoted = force or not failed
    if promoted and failed:
        why = f"forced by {by} despite {', '.join(failed)}: {reason}"
    elif promoted:
        why = ("first champion: passes the floors" if champ is None else "passes every rule") + (
            f"; {reason}" if reason else "")
    else:
        why = "fails " + "; ".join(r["detail"] for r in rules if not r["passed"])
    now = datetime.now(UTC)
    decision = {
        "decision": "PROMOTED" if promoted else "REJECTED",
        "forced": bool(force and failed),
        "reason": why,
        "by": by,
        "at": now.isoformat(),
        "candidate": cand,
        "champion": champ,
        "evaluation_window": window,
        "rules": rules,
        "governance_config": settings.config.governance_config.model_dump(mode="json"),
        "min_auc": settings.config.monitoring_config.min_auc,
    }
    decision["path"] = write_decision(registry, decision, now=now)
    extra = {"decision": decision["path"], "forced": decision["forced"]}
    if promoted:
        set_alias(registry, "champion", cand["algorithm"], cand["version"], reason=why, by=by,
                  event="promotion", extra=extra)
        challenger = get_alias(registry, "challenger")
        if challenger is not None and (challenger["algorithm"], challenger["version"]) == (
                cand["algorithm"], cand["version"]):
            set_alias(registry, "challenger", None, None, by=by, reason="promoted to champion", extra=extra)
    else:
        challenger = get_alias(registry, "challenger")
        if challenger is None or (challenger["algorithm"], challenger["version"]) != (
                cand["algorithm"], cand["version"]):
            set_alias(registry, "challenger", cand["algorithm"], cand["version"], by=by, extra=extra,
                      reason=f"rejected for champion ({', '.join(failed)}); kept as the challenger")
    return decision


NAMED_CHALLENGER_REASON = "named the challenger by hand (readmit promote --as challenger)"


def name_challenger(settings: Settings, candidate: str, *, reason: str | None = None,
                    by: str | None = None) -> dict[str, Any]:
    """Point the ``challenger`` alias at ``candidate``, as a person decides (no rules: MLflow's aliases
    are set explicitly too); the event records who and why (``reason`` defaults to
    :data:`NAMED_CHALLENGER_REASON`). The champion cannot also be the challenger: an A/B test would
    compare a model with itself."""
    registry = Registry.for_settings(settings)
    meta = registry.metadata(candidate)
    pointer = {"algorithm": meta["algorithm"], "version": meta["version"]}
    champion = get_alias(registry, "champion")
    if champion is not None and _pointer_of(champion) == pointer:
        raise ReadmitInputError(
            f"{meta['algorithm']} v{meta['version']} is the champion; it cannot also be the challenger",
            source=registry.location("aliases/champion.json"),
            fix="name another version (`readmit registry list`)")
    current = get_alias(registry, "challenger")
    if current is not None and _pointer_of(current) == pointer:
        return {"decision": "UNCHANGED", "alias": "challenger", "from": pointer, "to": pointer, "by": current.get("by"),
                "at": current.get("set_at"), "reason": f"{meta['algorithm']} v{meta['version']} is already the "
                                                        "challenger", "event": None, "warnings": []}
    event = set_alias(registry, "challenger", meta["algorithm"], meta["version"], by=by or actor(),
                      reason=(reason or "").strip() or NAMED_CHALLENGER_REASON, extra={"named": True})
    warnings = []
    running = _running_ab_test(registry)
    if current is not None and running is not None:
        warnings.append(
            f"the A/B test with salt {running.get('salt')!r} has run since {running.get('started_at')} with "
            f"{current['algorithm']} v{current['version']} as the challenger; months scored from now on use the new "
            "one under the same arm. Change inference_config.ab_test.salt to start a new test")
    return {"decision": "CHALLENGER_SET", "alias": "challenger", "from": event["from"], "to": event["to"],
            "by": event["by"], "at": event["at"], "reason": event["reason"], "event": event["path"],
            "warnings": warnings}


def _running_ab_test(registry: Registry) -> dict[str, Any] | None:
    from readmit.serving.ab import STATE_FILE

    try:
        return registry.storage.read_json(registry.rel(STATE_FILE))
    except (FileNotFoundError, ValueError):
        return None


def _pointer_of(record: dict[str, Any]) -> dict[str, str]:
    return {"algorithm": record["algorithm"], "version": record["version"]}


def rollback(settings: Settings, *, reason: str | None = None, by: str | None = None) -> dict[str, Any]:
    """Point the champion back at the previous champion (the one before the current promotion)."""
    registry = Registry.for_settings(settings)
    current = get_alias(registry, "champion")
    lineage = champion_lineage(registry)
    if current is None or len(lineage) < 2:
        raise ArtifactError(
            "there is no previous champion to roll back to"
            + ("" if current else " (there is no champion at all)"),
            source=registry.location("events"),
            fix="promote a version instead (`readmit promote --candidate VERSION`)",
        )
    target = lineage[-2]
    registry.verify(target["algorithm"], target["version"])
    event = set_alias(registry, "champion", target["algorithm"], target["version"], event="rollback",
                      by=by or actor(), reason=reason or "rollback requested")
    return {"decision": "ROLLED_BACK", "from": event["from"], "to": event["to"], "by": event["by"],
            "at": event["at"], "reason": event["reason"], "event": event["path"]}


def promote_step(settings: Settings, progress: Any = None) -> dict[str, Any]:
    """The ``promote`` step of the training graph: the rules decide; never forced."""
    if progress is not None:
        progress("scoring the candidate and the champion on the evaluation window")
    return promote(settings, by=f"{actor()} (training pipeline)")
