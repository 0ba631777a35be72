"""The HTML report, parsed: every section and plot present, numbers equal to the metadata, nothing external."""

from __future__ import annotations

import json
import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from readmit import pipeline
from readmit.data.extracts import record_extract
from readmit.data.layers import PREDICTIONS
from readmit.errors import ArtifactError
from readmit.report.html import SECTIONS
from readmit.storage import Storage


def model_dir(settings) -> Path:
    return Path(settings.registry_uri) / "models" / settings.config.model.model_name


ALWAYS_PLOTS = {"data-timeline", "roc", "pr", "reliability", "score-distributions", "decision-curve",
                "importance", "fairness", "auc-over-time"}
WITH_INPUTS_PLOTS = ALWAYS_PLOTS | {"reason-codes", "drift"}


class Page(HTMLParser):
    """What the tests look at: sections, figures, model-table cells, every URL-bearing attribute."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.plots: dict[str, int] = {}  # plot id -> number of <svg> inside
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.cells: list[tuple[dict, str]] = []  # (attrs of td with data-metric + its row, text)
        self._section: str | None = None
        self._plot: str | None = None
        self._row: dict = {}
        self._cell: dict | None = None
        self._text: list[str] = []
        self._in: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "poster", "data", "srcset") and value is not None:
                self.urls.append(value)
        if tag == "section":
            self._section = a.get("data-section")
            self.sections[self._section] = {"h2": "", "guide": "", "missing": [], "text": []}
        if tag == "figure":
            self._plot = a["data-plot"]
            self.plots[self._plot] = 0
        if tag == "svg" and self._plot:
            self.plots[self._plot] += 1
        if tag == "tr":
            self._row = a
        if tag == "td" and "data-metric" in a:
            self._cell = {**self._row, **a}
            self._text = []
        self._in.append(f"{tag}.{a.get('class', '')}")

    def handle_endtag(self, tag):
        if tag == "figure":
            self._plot = None
        if tag == "td" and self._cell is not None:
            self.cells.append((self._cell, "".join(self._text).strip()))
            self._cell = None
        if self._in:
            self._in.pop()

    def handle_data(self, data):
        if self._cell is not None:
            self._text.append(data)
        if self._section and self._in:
            sec = self.sections[self._section]
            top = self._in[-1]
            if top.startswith("h2"):
                sec["h2"] += data
            elif top == "p.guide":
                sec["guide"] += data
            elif top == "p.missing":
                sec["missing"].append(data)
            sec["text"].append(data)


def _report(settings) -> tuple[dict, str, Page]:
    result = pipeline.build_report(settings)
    text = Path(result["path"]).read_text()
    return result, text, Page(text)


@pytest.fixture(scope="module")
def first_report(trained, tmp_path_factory):
    """(settings, result, text, page) of the report on a private copy of the trained registry,
    rendered once: the tests that read it without changing anything share it (a render is seconds)."""
    from read_only import writable_copy
    from readmit.config import load_settings

    target = writable_copy(trained["registry"], tmp_path_factory.mktemp("first_report") / "registry")
    settings = load_settings(str(trained["config"]), datamart=str(trained["datamart"]), registry=str(target))
    return (settings, *_report(settings))


def test_report_on_a_registry_with_trained_models_only(first_report):
    registry_copy, result, text, page = first_report
    # every section, in order, numbered, with its reading guide
    assert list(page.sections) == [sid for sid, _ in SECTIONS]
    for number, (sid, title) in enumerate(SECTIONS, start=1):
        assert page.sections[sid]["h2"] == f"{number} {title}"
        assert len(page.sections[sid]["guide"]) > 30
    # every plot whose inputs exist, each one inline SVG
    assert set(page.plots) == ALWAYS_PLOTS
    assert all(n == 1 for n in page.plots.values()), page.plots
    # inputs that do not exist yet are one line each, not a failure
    missing = {sid: " ".join(s["missing"]) for sid, s in page.sections.items()}
    assert "No predictions yet" in missing["why"]
    assert "No monitoring record yet" in missing["over-time"]
    assert "No alias set yet" in missing["governance"] and "No A/B report yet" in missing["governance"]
    assert result["sections"]["data"] == result["sections"]["models"] == "shown"
    assert result["sections"]["why"] == result["sections"]["over-time"] == "partial"
    # the latest copy is the same page
    assert Path(result["latest"]).read_bytes() == Path(result["path"]).read_bytes()
    assert re.fullmatch(r"readmit_report_\d{8}T\d{6}\.html", Path(result["path"]).name)
    assert Path(result["path"]).parent == Path(registry_copy.registry_uri) / "reports"


def test_model_table_numbers_are_the_metadata(first_report, trained):
    _, _, _, page = first_report
    # a version is per algorithm (the reference's names): two algorithms may share a second
    metas = {(m["algorithm"], m["version"]): m for m in trained["metadata"]}
    seen = set()
    for attrs, text in page.cells:
        key = (attrs["data-algorithm"], attrs["data-version"])
        meta = metas[key]
        seen.add(key)
        perf, metric = meta["performance"], attrs["data-metric"]
        expected = {
            "test_auc_roc": f"{perf['test']['auc_roc']:.3f}", "oot_auc_roc": f"{perf['oot']['auc_roc']:.3f}",
            "test_pr_auc": f"{perf['test']['pr_auc']:.3f}", "oot_pr_auc": f"{perf['oot']['pr_auc']:.3f}",
            "oot_brier": f"{perf['oot']['brier']:.3f}", "threshold": f"{meta['threshold']['value']:.4f}",
            "version": meta["version"],
        }.get(metric)
        if expected is not None:
            assert text.startswith(expected), (metric, text, expected)
    assert seen == set(metas)


def test_usefulness_and_fairness_match_the_champions_metadata(first_report, trained):
    registry_copy, result, text, page = first_report
    comparison = json.loads((model_dir(registry_copy) / "latest_model_comparison.json").read_text())
    champion = next(m for m in trained["metadata"] if m["version"] == comparison["recommended"]["version"])
    assert result["champion"] == champion["algorithm"]
    oot = champion["performance"]["oot"]
    # flagged per 100 and readmissions per 100 flagged are the oot predicted-positive rate and precision
    usefulness = "".join(page.sections["usefulness"]["text"])
    assert f"{100 * oot['predicted_positive_rate']:.1f} are flagged" in usefulness
    assert f"{100 * oot['precision']:.1f} are readmitted" in usefulness
    # group counts add up to the window, group ROC-AUCs are the metadata's auc_roc_by_group
    fairness = " ".join(page.sections["fairness"]["text"])
    for groups in oot["auc_roc_by_group"].values():
        assert sum(g["samples"] for g in groups.values()) == champion["oot_samples"]
        for name, g in groups.items():
            if g["auc_roc"] is not None:
                assert f"{name}" in fairness and f"{g['auc_roc']:.3f}" in fairness
    assert "Too small to judge" in fairness  # the synthetic data has tiny race groups


def test_no_external_url_anywhere(first_report):
    _, _, text, page = first_report
    assert not re.search(r"https?://|ftp://|//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I)
    assert all(u.startswith("#") for u in page.urls), [u for u in page.urls if not u.startswith("#")][:5]
    for forbidden in ("@import", "@font-face", "<script", "<link", "<iframe", "<img", "<object", "<embed"):
        assert forbidden not in text.lower(), forbidden
    # url(...) only points inside the page (SVG clip paths: url(#id))
    assert re.findall(r"url\(\s*['\"]?([^)'\"]*)", text) and all(
        u.startswith("#") for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", text))
    assert {"script", "link", "img", "iframe"}.isdisjoint(page.tags)


def _write_contract_inputs(settings) -> dict:
    """Predictions, a monitoring record, an A/B report, an alias and events, shaped as the contracts say."""
    reg = Storage(settings.registry_uri)
    mdir = f"models/{settings.config.model.model_name}"
    comparison = reg.read_json(f"{mdir}/latest_model_comparison.json")
    champ = comparison["recommended"]
    reg.write_json(f"{mdir}/aliases/champion.json", {"alias": "champion", "algorithm": champ["algorithm"],
                   "version": champ["version"], "set_at": "2026-01-02T03:04:05+00:00", "by": "ana",
                   "reason": "best oot ROC-AUC"})
    reg.write_json(f"{mdir}/events/20260102T030405000000_ab12cd34.json", {
        "event": "promotion", "alias": "champion", "from": None,
        "to": {"algorithm": champ["algorithm"], "version": champ["version"]},
        "at": "2026-01-02T03:04:05+00:00", "by": "ana", "reason": "first champion"})
    months = [f"2008-{m:02d}" for m in range(1, 13)]
    reg.write_json(f"monitoring/{settings.config.model.model_name}/latest_monitoring.json", {
        "run_at": "2026-01-03T00:00:00", "as_of": "2009-06-30", "start": "2008-01", "end": "2008-12",
        "model": {"algorithm": champ["algorithm"], "version": champ["version"]},
        "months": [{"month": m, "rows": 50, "score_psi": 0.02 * i, "csi": {"age_midpoint": 0.01 * i,
                    "number_inpatient": 0.03 * i}, "missing_rate": {}, "new_category_rate": {},
                    "labels": "mature" if i < 10 else "immature",
                    "observed": {"auc_roc": 0.66 - 0.005 * i} if i < 10 else None,
                    "estimated": {"auc_roc": 0.65, "positive_rate": 0.2} if i >= 10 else None}
                   for i, m in enumerate(months)],
        "decision": {"action": "watch", "reasons": ["score PSI 0.22 above psi_alert 0.2 in 2008-12"]}})
    reg.write_json(f"monitoring/{settings.config.model.model_name}/latest_ab_report.json",
                   {"run_at": "2026-01-04T00:00:00", "champion": champ, "winner": "champion",
                    "summary": {"champion_auc_roc": 0.66, "challenger_auc_roc": 0.64}})
    reasons = [["number_inpatient high", "age 70-80"], ["number_inpatient high"], ["discharge to facility"]]
    rows = 30
    frame = pl.DataFrame({
        "encounter_id": np.arange(rows), "patient_nbr": np.arange(rows),
        "snapshot_date": [date(2009, 1, 1)] * rows, "risk": np.linspace(0.01, 0.6, rows),
        "flag": [i % 3 == 0 for i in range(rows)], "risk_band": ["low"] * rows,
        "top_reasons": [reasons[i % 3] for i in range(rows)], "algorithm": [champ["algorithm"]] * rows,
        "version": [champ["version"]] * rows, "alias": ["champion"] * rows, "arm": ["champion"] * rows,
        "scored_at": ["2026-01-03T00:00:00"] * rows,
    })
    return {"predictions": frame, "champion": champ}


def test_report_with_predictions_monitoring_aliases_and_ab(registry_copy, tmp_path):
    # a private datamart: the shared one's gold plus predictions
    import shutil

    datamart = tmp_path / "datamart"
    shutil.copytree(registry_copy.datamart_uri, datamart)
    from dataclasses import replace

    settings = replace(registry_copy, datamart_uri=str(datamart))
    inputs = _write_contract_inputs(settings)
    Storage(str(datamart)).write_partition(PREDICTIONS, "2009-01", inputs["predictions"])
    for stamp, rows in (("20260101T000000", 5), ("20260102T000000", 3)):  # two bronze runs quarantined rows
        Storage(str(datamart)).write_parquet(f"rejected/bronze/{stamp}-abcdef12.parquet",
                                             pl.DataFrame({"_row": list(range(rows)), "_reason": ["bad"] * rows}))
    record_extract(Storage(str(datamart)), {"sha256": "ab" * 32, "months_written": ["2008-02", "2008-05"],
                                            "invalid_codes": {"2008-02": 3, "2008-05": 2}})
    record_extract(Storage(str(datamart)), {"sha256": "cd" * 32, "months_written": ["2008-05", "2008-09"],
                                            "invalid_codes": {"2008-05": 4, "2008-09": 1}})
    result, text, page = _report(settings)
    data = "".join(page.sections["data"]["text"])
    assert "6,000encounters in gold" in data and "120months" in data  # every synthetic gold row
    # rows quarantined for a code of neither ICD system, summed by month over the extracts applied
    assert "neither ICD-9-CM nor ICD-10-CM" in data
    assert "2008-023" in data and "2008-056" in data and "2008-091" in data
    assert "3raw rows rejected (latest bronze run)" in data
    assert "20260101T000000-abcdef12.parquet5" in data and "20260102T000000-abcdef12.parquet3" in data
    assert set(page.plots) == WITH_INPUTS_PLOTS
    for sid in ("why", "over-time", "governance"):
        assert result["sections"][sid] == "shown", (sid, page.sections[sid]["missing"])
    why = " ".join(page.sections["why"]["text"])
    assert "month 2009-01, 30 encounters" in why and "33.3% flagged" in why
    assert 'data-decision="watch"' in text and "score PSI 0.22 above psi_alert" in text
    governance = " ".join(page.sections["governance"]["text"])
    assert "ana" in governance and "promotion" in governance and "challenger_auc_roc" in governance
    assert "(alias champion)" in " ".join(page.sections["models"]["text"])


def test_a_corrupt_monitoring_record_names_the_file(registry_copy):
    path = Path(registry_copy.registry_uri) / "monitoring" / "readmission" / "latest_monitoring.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"months": [')
    with pytest.raises(ArtifactError, match="latest_monitoring.json"):
        pipeline.build_report(registry_copy)


def test_report_before_anything_exists(tmp_path, write_config):
    from readmit.config import load_settings

    settings = load_settings(write_config(), datamart=str(tmp_path / "dm"), registry=str(tmp_path / "reg"))
    result, _, page = _report(settings)
    for sid in ("data", "models", "usefulness", "fairness", "over-time"):
        assert result["sections"][sid] == "missing", sid
    assert "No gold tables" in " ".join(page.sections["data"]["missing"])
    assert page.plots == {}


@pytest.mark.slow  # the report reads every gold partition over S3: ~1,100 round trips to moto
def test_report_on_s3(trained, s3_uri):
    """Registry and datamart on S3 (moto server): the same report, written to S3."""
    from readmit.config import load_settings
    from serving.model_fixtures import upload

    for name in ("registry", "datamart"):
        upload(trained[name], f"{s3_uri.removeprefix('s3://')}/{name}")  # one bulk put, not a file at a time
    settings = load_settings(str(trained["config"]), datamart=f"{s3_uri}/datamart", registry=f"{s3_uri}/registry")
    result = pipeline.build_report(settings)
    assert result["path"].startswith(f"{s3_uri}/registry/reports/readmit_report_")
    text = Storage(f"{s3_uri}/registry").read_bytes("reports/readmit_report_latest.html").decode()
    page = Page(text)
    assert set(page.plots) == ALWAYS_PLOTS
    assert result["sections"]["models"] == "shown"


def test_confidence_intervals_and_calibration_from_the_metadata_are_shown(registry_copy, trained):
    """Versions trained with issue 9's metadata (CIs, calibration) show those numbers, not recomputed ones."""
    folder = model_dir(registry_copy)
    for meta in trained["metadata"]:
        path = folder / f"{meta['algorithm']}_v{meta['version']}_metadata.json"
        stored = json.loads(path.read_text())
        auc = stored["performance"]["oot"]["auc_roc"]
        stored["performance"]["oot"]["ci"] = {"auc_roc": [auc - 0.0123, auc + 0.0123], "brier": [0.1, 0.2]}
        stored["performance"]["oot"]["calibration"] = {"observed_expected": 0.987, "slope": 1.012}
        path.write_text(json.dumps(stored))
    _, _, page = _report(registry_copy)
    metas = {(m["algorithm"], m["version"]): m for m in trained["metadata"]}
    checked = 0
    for attrs, text in page.cells:
        auc = metas[(attrs["data-algorithm"], attrs["data-version"])]["performance"]["oot"]["auc_roc"]
        if attrs["data-metric"] == "oot_auc_roc":
            assert text == f"{auc:.3f} ({auc - 0.0123:.3f}–{auc + 0.0123:.3f})"
            checked += 1
        elif attrs["data-metric"] == "oot_observed_expected":
            assert text == "0.987"  # no dagger: read from the metadata
        elif attrs["data-metric"] == "oot_calibration_slope":
            assert text == "1.012"
    assert checked == len(metas)
