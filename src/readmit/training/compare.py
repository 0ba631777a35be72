"""Compare the latest model of every configured algorithm and recommend one.

The recommendation is made on ``training_config.selection.window``:

- ``test`` (default): the highest test ROC-AUC; candidates within ``TIE_TOLERANCE`` of it tie, and
  a tie goes to the lower test Brier score, then to the smaller absolute test -> oot drop. The
  out-of-time window is reported beside it but does not choose (it stays a holdout).
- ``oot``: the reference project's rule, the highest out-of-time ROC-AUC; a tie goes to the smaller
  absolute test -> oot drop, then to the lower out-of-time Brier. The output says that the
  out-of-time window was used to choose, so it is no longer an unseen estimate.

Only comparable candidates are ranked: trained on the same temporal splits, the same gold
partitions (fingerprints), the same label definition and the same features as the most recently
trained candidate. The others are listed under ``not_comparable`` with the reason. The result is
written to ``{registry_uri}/models/{model_name}/latest_model_comparison.json``.

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
CALIBRATION = ("brier_baseline", "brier_skill", "observed_expected", "slope", "intercept", "ece")
# what must be equal for two models' figures to be comparable: metadata key -> words
COMPARABLE_ON = {
    "temporal_splits": "temporal splits",
    "gold_partitions": "gold partitions (fingerprints)",
    "label": "label definition",
    "features": "features",
}
WINDOW_NAMES = {"test": "test", "oot": "out-of-time"}


def _window(perf: dict[str, Any]) -> dict[str, Any]:
    """The metrics of one window, its calibration summary, intervals and unseen-patient line."""
    out = {k: perf.get(k) for k in METRICS}
    calibration = perf.get("calibration") or {}
    out.update({k: calibration.get(k) for k in CALIBRATION})
    out["ci"] = perf.get("ci")
    out["unseen_patients"] = perf.get("unseen_patients")
    return out


def candidate(algorithm: str, meta: dict[str, Any]) -> dict[str, Any]:
    """One row of the comparison, from a model's metadata (older metadata lacks some figures)."""
    perf = meta.get("performance", {})
    test, oot = _window(perf.get("test", {})), _window(perf.get("oot", {}))
    drop = None
    if test.get("auc_roc") is not None and oot.get("auc_roc") is not None:
        drop = test["auc_roc"] - oot["auc_roc"]
    return {
        "algorithm": algorithm,
        "version": meta.get("version"),
        "training_date": meta.get("training_date"),
        "sha256": meta["artifact"]["sha256"],
        "test": test,
        "oot": oot,
        "auc_drop": drop,
        "threshold": (meta.get("threshold") or {}).get("value"),
        "calibration_method": (meta.get("calibration") or {}).get("method"),
        "cv_best_mean_score": (meta.get("cv") or {}).get("best_mean_score"),
        "training_seconds": meta.get("training_seconds"),
        "comparable_on": {key: meta.get(key) for key in COMPARABLE_ON},
    }


def split_comparable(candidates: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(comparable candidates, the others with the reason): the reference is the latest trained one."""
    if not candidates:
        return [], []
    reference = max(candidates, key=lambda c: c.get("training_date") or "")
    same, other = [], []
    for c in candidates:
        differs = [words for key, words in COMPARABLE_ON.items()
                   if c["comparable_on"].get(key) != reference["comparable_on"].get(key)]
        if differs:
            other.append({"algorithm": c["algorithm"], "version": c["version"],
                          "reason": f"trained on other {', '.join(differs)} than {reference['algorithm']} "
                                    f"{reference['version']} (the latest trained); retrain it to compare"})
        else:
            same.append(c)
    return same, other


def _abs_drop(c: dict[str, Any]) -> float:
    return abs(c["auc_drop"]) if c.get("auc_drop") is not None else float("inf")


def _brier(c: dict[str, Any], window: str) -> float:
    value = c[window].get("brier")
    return value if value is not None else float("inf")


def _auc_text(c: dict[str, Any], window: str) -> str:
    text = f"{c[window]['auc_roc']:.4f}"
    ci = (c[window].get("ci") or {}).get("auc_roc")
    return text + (f", 95% CI {ci[0]:.3f}-{ci[1]:.3f}" if ci else "")


def recommend(candidates: list[dict[str, Any]], window: str = "test") -> tuple[dict[str, Any], str]:
    """The recommended candidate and the reason, in words (see the module doc for the rule)."""
    ranked = [c for c in candidates if c[window].get("auc_roc") is not None]
    name = WINDOW_NAMES[window]
    if not ranked:
        raise ArtifactError(f"no candidate has a {name} ROC-AUC",
                            fix="retrain (`readmit train`) on gold whose test and oot windows have both classes")
    best_auc = max(c[window]["auc_roc"] for c in ranked)
    tied = [c for c in ranked if best_auc - c[window]["auc_roc"] <= TIE_TOLERANCE]
    if window == "test":
        tied.sort(key=lambda c: (_brier(c, "test"), _abs_drop(c)))
        tie_rule = "the lower test Brier score, then the smaller absolute test -> oot drop"
    else:
        tied.sort(key=lambda c: (_abs_drop(c), _brier(c, "oot")))
        tie_rule = "the smaller absolute test -> oot drop, then the lower out-of-time Brier score"
    winner = tied[0]
    others = [c for c in ranked if c is not winner]
    reason = f"{winner['algorithm']} has the highest {name} ROC-AUC ({_auc_text(winner, window)}"
    if others:
        runner = max(others, key=lambda c: c[window]["auc_roc"])
        reason += f"; next {runner['algorithm']} {runner[window]['auc_roc']:.4f}"
    reason += ")"
    if len(tied) > 1:
        rivals = ", ".join(c["algorithm"] for c in tied[1:])
        reason += f"; tied with {rivals} within {TIE_TOLERANCE:g}, and chosen for {tie_rule}"
    if winner.get("auc_drop") is not None:
        reason += f"; its test -> oot ROC-AUC drop is {winner['auc_drop']:+.4f}"
    if window == "test":
        reason += "; chosen on the test window, the out-of-time figures are an unseen estimate"
    else:
        reason += ("; chosen on the OUT-OF-TIME window (selection.window=oot, the reference project's rule): "
                   "its out-of-time figures are no longer an unseen estimate")
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
    window = settings.config.training_config.selection.window
    candidates, skipped, fallbacks = [], [], []
    for algorithm in settings.config.training_config.algorithms:
        meta = _verified_candidate(registry, algorithm, skipped, fallbacks)
        if meta is None:
            continue
        candidates.append(candidate(algorithm, meta))
    if not candidates:
        raise ArtifactError(
            "no trained model to compare"
            + (f" ({'; '.join(s['reason'] for s in skipped)})" if skipped else ""),
            source=registry.location(""),
            fix="train first (`readmit train`), or check --registry and model_config.model_name",
        )
    comparable, not_comparable = split_comparable(candidates)
    winner, reason = recommend(comparable, window)
    for c in candidates:
        c.pop("comparable_on")
    comparison = {
        "model_name": registry.model_name,
        "compared_at": datetime.now(UTC).isoformat(),
        "selection_window": window,
        "criterion": (f"highest {WINDOW_NAMES[window]} auc_roc among comparable candidates; ties (within "
                      f"{TIE_TOLERANCE:g}) go to "
                      + ("the lower test Brier, then the smaller absolute test->oot drop" if window == "test"
                         else "the smaller absolute test->oot drop, then the lower oot Brier")),
        "recommended": {
            "algorithm": winner["algorithm"],
            "version": winner["version"],
            "sha256": winner["sha256"],
            "selection_window": window,
            "test_auc_roc": winner["test"]["auc_roc"],
            "oot_auc_roc": winner["oot"]["auc_roc"],
            "test_brier": winner["test"].get("brier"),
            "oot_brier": winner["oot"].get("brier"),
            "reason": reason,
        },
        "candidates": comparable,
        "not_comparable": not_comparable,
        "skipped": skipped,
        "fallbacks": fallbacks,
        "path": registry.location(COMPARISON_FILE),
    }
    registry.write_comparison(comparison)
    return comparison
