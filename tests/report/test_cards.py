"""Model cards: written at registration, TRIPOD+AI items from the metadata, printed by the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from readmit.cli import app
from readmit.report.cards import card_names

runner = CliRunner()
HEADINGS = ("## Intended use", "## Source of data and dates", "## Eligibility", "## Outcome", "## Predictors",
            "## Missing data", "## Sample sizes and events", "## Tuning and calibration",
            "## Discrimination and calibration", "## Subgroups", "## Limitations")


def _args(settings) -> list[str]:
    return ["--config", settings.config_uri, "--registry", settings.registry_uri, "--datamart",
            settings.datamart_uri]


def test_every_registered_version_has_a_card_with_the_tripod_items(trained):
    folder = Path(trained["registry"]) / "models" / "readmission"
    for meta in trained["metadata"]:
        md_name, json_name = card_names(meta["algorithm"], meta["version"])
        text = (folder / md_name).read_text()
        card = json.loads((folder / json_name).read_text())
        for heading in HEADINGS:
            assert heading in text, heading
        assert f"{meta['algorithm']} v{meta['version']}" in text
        assert "never be used to deny" in text and "prioritise follow-up" in text
        assert ("records no calibration" in text) == (not meta["performance"]["oot"].get("calibration"))
        assert "Dates are derived" in text and "Class prevalence" in text and "One data source" in text
        # sample sizes and events per window are the metadata's
        for window, rows in (("train", meta["training_samples"]), ("test", meta["test_samples"]),
                             ("oot", meta["oot_samples"])):
            assert card["sample_sizes"][window]["rows"] == rows
            assert card["sample_sizes"][window]["events"] == meta["positives"][window]
        assert card["performance"]["oot"]["auc_roc"] == meta["performance"]["oot"]["auc_roc"]
        assert f"{meta['performance']['oot']['auc_roc']:.3f}" in text
        assert card["predictors"]["count"] == meta["feature_count"]
        assert card["model"]["artifact_sha256"] == meta["artifact"]["sha256"]


def test_registry_show_card_prints_it(trained, registry_copy):
    meta = trained["metadata"][0]
    # ALGORITHM_vVERSION: a bare version is ambiguous when two algorithms saved in the same second
    result = runner.invoke(app, ["registry", "show", f"{meta['algorithm']}_v{meta['version']}", "--card",
                                 *_args(registry_copy)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"# Model card: readmission / {meta['algorithm']} v{meta['version']}")
    assert "model card:" in result.stderr


def test_a_version_without_a_card_gets_one_on_first_show(trained, registry_copy):
    meta = trained["metadata"][-1]
    folder = Path(registry_copy.registry_uri) / "models" / "readmission"
    md_name, json_name = card_names(meta["algorithm"], meta["version"])
    (folder / md_name).unlink()
    (folder / json_name).unlink()
    result = runner.invoke(app, ["registry", "show", f"{meta['algorithm']}_v{meta['version']}", "--card", "--json",
                                 *_args(registry_copy)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["location"].endswith(md_name) and (folder / md_name).exists() and (folder / json_name).exists()
    assert "## Discrimination and calibration" in data["markdown"]


def test_card_of_an_unknown_version_is_an_input_error(registry_copy):
    result = runner.invoke(app, ["registry", "show", "19990101_000000", "--card", *_args(registry_copy)])
    assert result.exit_code == 2 and "readmit registry list" in result.stderr


def test_a_card_says_what_the_metadata_says_about_tuning_and_imbalance(trained):
    from readmit.report.cards import build_card, render_markdown

    meta = json.loads(json.dumps(trained["metadata"][0]))
    text = render_markdown(build_card(meta))
    cv = meta["cv"]
    assert f"{cv['n_iter']} candidates x {cv['folds']} {cv['strategy']} folds" in text
    assert "scored by ROC-AUC" in text and "no class weights and no resampling" in text
    assert "class weights inside each fit" not in text
    meta["cv"] = {**cv, "method": "none", "scoring": "average_precision"}
    meta["best_params"] = {**(meta["best_params"] or {}), "class_weight": "balanced"}
    meta["threshold"] = {**meta["threshold"], "rule": "fixed", "value": 0.5, "chosen_on": "fixed"}
    text = render_markdown(build_card(meta))
    assert "no search: the algorithm's own hyperparameters" in text and "scored by PR-AUC" in text
    assert "best cross-validated PR-AUC" in text and "ROC-AUC 0." not in text.split("## Tuning")[1].split("\n")[1]
    assert 'class weights {"class_weight": "balanced"}' in text
    assert "Threshold: 0.5000 (fixed by training_config.threshold)" in text
