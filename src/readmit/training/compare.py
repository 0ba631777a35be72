"""Compare the latest model of every configured algorithm and recommend one.

The recommendation is the highest out-of-time ROC-AUC (the window most like tomorrow's data).
Candidates within ``TIE_TOLERANCE`` of it tie; a tie goes to the smaller test -> oot drop (the more
stable model), then to the higher test ROC-AUC. The result is written to
``{registry_uri}/models/{model_name}/latest_model_comparison.json``.

Each candidate is the algorithm's latest version, verified (signature, names, sha256) without
unpickling. When the latest pointer is unusable (truncated, corrupt, tampered with) the newest
versioned metadata that verifies stands in, and the comparison says so under ``fallbacks``; when no
version of a trained algorithm verifies, the comparison fails rather than quietly dropping it.
An algorithm with no file at all in the registry (never trained) is listed under ``skipped``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from readmit.config import Settings
from readmit.errors import ArtifactError
from readmit.registry import COMPARISON_FILE, Registry

TIE_TOLERANCE = 1e-4
METRICS = ("accuracy", "precision", "recall", "f1", "auc_roc", "pr_auc", "brier", "log_loss", "gini")


def _metrics(perf: dict[str, Any]) -> dict[str, Any]:
    return {k: perf.get(k) for k in METRICS}


def recommend(candidates: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The recommended candidate and the reason, in words."""
    ranked = [c for c in candidates if c["oot"].get("auc_roc") is not None]
    if not ranked:
        raise ArtifactError("no candidate has an out-of-time ROC-AUC",
                            fix="retrain (`readmit train`) on gold with an oot window that has both classes")
    best_auc = max(c["oot"]["auc_roc"] for c in ranked)
    tied = [c for c in ranked if best_auc - c["oot"]["auc_roc"] <= TIE_TOLERANCE]
    tied.sort(key=lambda c: (c["auc_drop"], -(c["test"].get("auc_roc") or 0.0)))
    winner = tied[0]
    others = [c for c in ranked if c is not winner]
    reason = (f"{winner['algorithm']} has the highest out-of-time ROC-AUC "
              f"({winner['oot']['auc_roc']:.4f}")
    if others:
        runner = max(others, key=lambda c: c["oot"]["auc_roc"])
        reason += f"; next {runner['algorithm']} {runner['oot']['auc_roc']:.4f}"
    reason += ")"
    if len(tied) > 1:
        rivals = ", ".join(c["algorithm"] for c in tied[1:])
        reason += (f"; tied with {rivals} within {TIE_TOLERANCE}, and chosen for the smaller test -> oot drop "
                   f"({winner['auc_drop']:+.4f})")
    else:
        reason += f"; its test -> oot ROC-AUC drop is {winner['auc_drop']:+.4f}"
    return winner, reason


def _verified_candidate(registry: Registry, algorithm: str, skipped: list[dict[str, Any]],
                        fallbacks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The latest verified metadata of ``algorithm``, else its newest verified version (noted)."""
    try:
        return registry.verify(algorithm)  # signature, names, sha256; never unpickles
    except ArtifactError as exc:
        latest_problem = str(exc).replace("\n", " ")
    if not registry.has_files(algorithm):
        skipped.append({"algorithm": algorithm, "reason": latest_problem})
        return None
    meta, problems = registry.newest_valid(algorithm)
    if meta is None:
        raise ArtifactError(
            f"{algorithm} is trained but no version of it verifies, so it cannot be compared: "
            + "; ".join(dict.fromkeys([latest_problem, *problems])),
            source=registry.location_root(),
            fix=f"retrain it (`readmit train --algorithm {algorithm}`), or remove it from "
            "training_config.algorithms to compare the others",
        )
    fallbacks.append({"algorithm": algorithm, "version": meta["version"],
                      "reason": f"latest is unusable ({latest_problem}); compared its newest valid "
                                f"version {meta['version']} instead"})
    return meta


def compare_models(settings: Settings) -> dict[str, Any]:
    """Compare the latest model of each configured algorithm; write and return the comparison."""
    registry = Registry.for_settings(settings)
    candidates, skipped, fallbacks = [], [], []
    for algorithm in settings.config.training_config.algorithms:
        meta = _verified_candidate(registry, algorithm, skipped, fallbacks)
        if meta is None:
            continue
        perf = meta.get("performance", {})
        test, oot = _metrics(perf.get("test", {})), _metrics(perf.get("oot", {}))
        drop = None
        if test.get("auc_roc") is not None and oot.get("auc_roc") is not None:
            drop = test["auc_roc"] - oot["auc_roc"]
        candidates.append({
            "algorithm": algorithm,
            "version": meta.get("version"),
            "training_date": meta.get("training_date"),
            "sha256": meta["artifact"]["sha256"],
            "test": test,
            "oot": oot,
            "auc_drop": drop if drop is not None else float("inf"),
            "threshold": (meta.get("threshold") or {}).get("value"),
            "cv_best_mean_auc_roc": (meta.get("cv") or {}).get("best_mean_auc_roc"),
            "training_seconds": meta.get("training_seconds"),
        })
    if not candidates:
        raise ArtifactError(
            "no trained model to compare"
            + (f" ({'; '.join(s['reason'] for s in skipped)})" if skipped else ""),
            source=registry.location(""),
            fix="train first (`readmit train`), or check --registry and model_config.model_name",
        )
    winner, reason = recommend(candidates)
    for c in candidates:
        if c["auc_drop"] == float("inf"):
            c["auc_drop"] = None
    comparison = {
        "model_name": registry.model_name,
        "compared_at": datetime.now(UTC).isoformat(),
        "criterion": f"highest oot auc_roc; ties (within {TIE_TOLERANCE:g}) go to the smaller test->oot drop",
        "recommended": {
            "algorithm": winner["algorithm"],
            "version": winner["version"],
            "sha256": winner["sha256"],
            "oot_auc_roc": winner["oot"]["auc_roc"],
            "test_auc_roc": winner["test"]["auc_roc"],
            "reason": reason,
        },
        "candidates": candidates,
        "skipped": skipped,
        "fallbacks": fallbacks,
        "path": registry.location(COMPARISON_FILE),
    }
    registry.write_comparison(comparison)
    return comparison
