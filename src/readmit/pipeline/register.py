"""Registering a model: the one way a trained model enters the registry.

A registered version is three things, written together by :func:`train_algorithm`:

1. the artifact and its metadata (:mod:`readmit.registry`), from the fitted model
   (:func:`readmit.training.fit_algorithm`);
2. the reference profile that monitoring compares new months with
   (:mod:`readmit.monitoring.profile`), from the same gold training window;
3. the model card (:mod:`readmit.report.cards`), from the metadata.

Why here and not in ``training``: the profile belongs to the monitoring floor and the card to the
report floor, both above training, and a lower floor never imports a higher one
(``tests/test_layers.py``). The pipeline is the one floor above all three, so the registration
lives here and training stops at the fitted model: nothing below this module writes a model into
the registry, so no caller gets a version without its profile and card. (A version registered
before profiles and cards existed still gets them on first use: ``monitoring.profile.ensure_profile``
and ``report.model_card``.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from readmit.config import Settings, resolve_windows
from readmit.runtime import Progress


def train_algorithm(
    settings: Settings,
    algorithm: str,
    *,
    progress: Progress | None = None,
    data: Any = None,
) -> dict[str, Any]:
    """The ``train`` step: fit ``algorithm`` and register it with its reference profile and model card.

    Returns the metadata written (with its ``version`` and ``paths``). ``data`` (the gold tables,
    :func:`readmit.training.split.load_gold`) lets a caller training several algorithms read gold
    once; the profile is computed on the same rows the model was trained on. Relative windows
    are resolved here unless the settings already carry them (and recorded in the metadata).
    """
    settings = resolve_windows(settings)
    from readmit.monitoring.profile import store_training_profiles
    from readmit.registry import Registry
    from readmit.report import write_cards
    from readmit.training import fit_algorithm
    from readmit.training.split import load_gold

    def say(message: str) -> None:
        if progress is not None:
            progress(f"{algorithm}: {message}")

    if data is None:
        data = load_gold(settings, progress=progress)
    model, metadata = fit_algorithm(settings, algorithm, progress=progress, data=data)
    say("saving to the registry")
    saved = Registry.for_settings(settings).save(algorithm, model, metadata)
    performance = metadata["performance"]
    say(f"saved version {saved['version']} (test ROC-AUC {performance['test']['auc_roc']:.4f}, "
        f"oot ROC-AUC {performance['oot']['auc_roc']:.4f}, {metadata['training_seconds']:.1f}s)")
    store_training_profiles(settings, [saved], data)
    write_cards(settings, [saved])
    return saved


def train(settings: Settings, algorithms: Iterable[str] | None = None, *,
          progress: Progress | None = None) -> list[dict[str, Any]]:
    """Register the given (default: every configured) algorithms one after the other, reading gold once
    (on windows resolved once for them all)."""
    settings = resolve_windows(settings)
    from readmit.training.split import load_gold

    data = load_gold(settings, progress=progress)
    chosen = list(algorithms or settings.config.training_config.algorithms)
    return [train_algorithm(settings, name, progress=progress, data=data) for name in chosen]
