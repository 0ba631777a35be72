"""``readmit data synth`` and ``readmit medallion`` through the command line."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from readmit.cli import app
from readmit.data.layers import FEATURE_STORE, LABEL_STORE
from readmit.storage import Storage

runner = CliRunner()


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"data_config": {"date_derivation": {
        "start_date": "2001-01-01", "end_date": "2001-03-31"}}}))
    return path


def test_synth_then_medallion_builds_gold_and_reports_json(tmp_path: Path) -> None:
    raw = tmp_path / "d.csv"
    result = runner.invoke(app, ["data", "synth", "--rows", "300", "--seed", "3", "--out", str(raw)])
    assert result.exit_code == 0, result.output
    datamart = tmp_path / "dm"
    result = runner.invoke(app, ["medallion", "--config", str(_config(tmp_path)), "--raw", str(raw),
                                 "--datamart", str(datamart), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [layer["layer"] for layer in summary["layers"]] == ["bronze", "silver", "gold"]
    assert all(layer["rows_out"] == 300 and layer["partitions"] == 3 for layer in summary["layers"])
    storage = Storage(datamart)
    assert storage.list_partitions(FEATURE_STORE) == ["2001-01", "2001-02", "2001-03"]
    assert storage.read_table(LABEL_STORE).height == 300


def test_medallion_bad_input_exits_2_naming_the_zip_member(tmp_path: Path) -> None:
    raw = tmp_path / "uci.zip"
    with zipfile.ZipFile(raw, "w") as zf:
        zf.writestr("dataset_diabetes/diabetic_data.csv", "a,b\n1,2\n")
    result = runner.invoke(app, ["medallion", "--config", str(_config(tmp_path)), "--raw", str(raw),
                                 "--datamart", str(tmp_path / "dm"), "--json"])
    assert result.exit_code == 2
    output = result.output.replace("\n", "")
    assert f"{raw} [dataset_diabetes/diabetic_data.csv]: not the UCI encounters CSV" in output
    assert "Fix:" in output


def test_backfill_through_the_cli_equals_one_shot_and_no_cascade_refuses(tmp_path: Path, uci_sample: Path) -> None:
    """Real UCI rows: gold for 2004-2008 first, then a backfill of 1999-2003."""
    config = tmp_path / "defaults.json"
    config.write_text("{}")

    def medallion(datamart: Path, *args: str) -> object:
        return runner.invoke(app, ["medallion", "--config", str(config), "--raw", str(uci_sample),
                                   "--datamart", str(datamart), "--json", *args])

    one_shot, backfilled = tmp_path / "one_shot", tmp_path / "backfilled"
    assert medallion(one_shot).exit_code == 0
    assert medallion(backfilled, "--start", "2004-01", "--end", "2008-12").exit_code == 0

    refused = medallion(backfilled, "--start", "1999-01", "--end", "2003-12", "--no-cascade")
    assert refused.exit_code == 2
    message = refused.output.replace("\n", "")
    assert "60 later gold month(s) (2004-01..2008-12)" in message and "Fix:" in message
    assert Storage(backfilled).list_partitions(FEATURE_STORE)[0] == "2004-01"  # no gold written

    result = medallion(backfilled, "--start", "1999-01", "--end", "2003-12")
    assert result.exit_code == 0, result.output
    gold = json.loads(result.stdout)["layers"][-1]
    assert gold["partitions"] == 120 and "rebuilt 60 later gold month(s) (2004-01..2008-12)" in gold["notes"][0]
    for table in (FEATURE_STORE, LABEL_STORE):  # label_learned_at: when each build read the file
        got, want = (Storage(root).read_table(table).drop("label_learned_at", strict=False)
                     for root in (backfilled, one_shot))
        assert got.equals(want)

    again = medallion(backfilled, "--layer", "gold", "--start", "2003-06", "--end", "2003-06")
    assert again.exit_code == 0 and json.loads(again.stdout)["layers"][0]["partitions"] == 1


def test_medallion_engine_flag_runs_gold_on_duckdb_and_refuses_an_unknown_engine(tmp_path: Path) -> None:
    raw = tmp_path / "d.csv"
    assert runner.invoke(app, ["data", "synth", "--rows", "300", "--seed", "3", "--out", str(raw)]).exit_code == 0
    built = {}
    for engine in ("polars", "duckdb"):
        datamart = tmp_path / engine
        result = runner.invoke(app, ["medallion", "--config", str(_config(tmp_path)), "--raw", str(raw),
                                     "--datamart", str(datamart), "--engine", engine, "--json"])
        assert result.exit_code == 0, result.output
        built[engine] = Storage(datamart).read_table(FEATURE_STORE)
    assert built["duckdb"].equals(built["polars"]) and built["polars"].height == 300
    result = runner.invoke(app, ["medallion", "--config", str(_config(tmp_path)), "--raw", str(raw),
                                 "--datamart", str(tmp_path / "x"), "--engine", "pandas"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "Invalid value for '--engine': Value error, 'pandas' is not one of 'polars', 'duckdb', 'spark'" \
        in result.output


def test_data_check_prints_the_summary_and_exits_2_on_a_bad_row(uci_zip: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(uci_zip) as zf, zf.open("dataset_diabetes/diabetic_data.csv") as fh:
        lines = [next(fh).decode() for _ in range(51)]
    good = tmp_path / "good.csv"
    good.write_text("".join(lines))
    result = runner.invoke(app, ["data", "check", str(good), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["rows"] == 50 and summary["code_systems"] == ["icd9"]
    bad = tmp_path / "bad.csv"
    fields = lines[20].split(",")
    fields[2] = "Martian"  # race
    bad.write_text("".join(lines[:20]) + ",".join(fields) + "".join(lines[21:]))
    result = runner.invoke(app, ["data", "check", str(bad)])
    assert result.exit_code == 2
    assert "row 20: race: 'Martian' is not one of" in result.stdout
    assert str(bad) in result.stderr and "data rows 20" in result.stderr and "Fix:" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "good.csv"]


def _uci_head(uci_zip: Path, n: int) -> list[list[str]]:
    with zipfile.ZipFile(uci_zip) as zf, zf.open("dataset_diabetes/diabetic_data.csv") as fh:
        return [next(fh).decode().rstrip("\r\n").split(",") for _ in range(n + 1)]


def test_medallion_refuses_blank_labels_in_an_extract_declared_labelled(uci_zip: Path, tmp_path: Path) -> None:
    lines = _uci_head(uci_zip, 60)
    for row in (12, 40):
        lines[row][lines[0].index("readmitted")] = ""
    raw = tmp_path / "history.csv"
    raw.write_text("".join(",".join(line) + "\n" for line in lines))
    datamart = tmp_path / "dm"
    base = ["medallion", "--config", str(_config(tmp_path)), "--raw", str(raw), "--datamart", str(datamart)]
    refused = runner.invoke(app, [*base, "--require-labels"])
    assert refused.exit_code == 2
    message = refused.stderr.replace("\n", "")
    assert str(raw) in message and "2 bad rows; the first is data row 12" in message
    assert "readmitted is blank, but the extract is declared labelled" in message and "Fix:" in message
    assert not datamart.exists() or not any(p.is_file() for p in datamart.rglob("*"))  # nothing written
    checked = runner.invoke(app, ["data", "check", str(raw), "--require-labels", "--json"])
    assert checked.exit_code == 2 and [p["row"] for p in json.loads(checked.stdout)["problems"]] == [12, 40]
    # by default they are encounters whose outcome is not known yet
    built = runner.invoke(app, [*base, "--json"])
    assert built.exit_code == 0, built.output
    assert Storage(datamart).read_table(FEATURE_STORE).height == 60
    assert Storage(datamart).read_table(LABEL_STORE).height == 58


def test_medallion_diagnosis_codes_option_reads_an_icd10_extract(uci_zip: Path, tmp_path: Path) -> None:
    lines = _uci_head(uci_zip, 30)
    diag = [lines[0].index(c) for c in ("diag_1", "diag_2", "diag_3")]
    lines = [lines[0]] + [[("I50.9" if i in diag else v) for i, v in enumerate(line)] for line in lines[1:]]
    lines[5][diag[0]] = "428.0"  # an ICD-9 code in an ICD-10 extract
    lines[9][diag[1]] = "12345"  # a code of neither system
    raw = tmp_path / "icd10.csv"
    raw.write_text("".join(",".join(line) + "\n" for line in lines))
    base = ["medallion", "--config", str(_config(tmp_path)), "--raw", str(raw), "--datamart", str(tmp_path / "dm")]
    mixed = runner.invoke(app, base)
    assert mixed.exit_code == 2 and "mix two systems" in mixed.stderr and "data rows 5..." in mixed.stderr
    declared = runner.invoke(app, [*base, "--diagnosis-codes", "icd10", "--quarantine", "--json"])
    assert declared.exit_code == 0, declared.output
    bronze = json.loads(declared.stdout)["layers"][0]
    assert bronze["rows_rejected"] == 2 and "diagnosis codes read as icd10" in bronze["notes"]
    by_month = [n for n in bronze["notes"] if n.startswith("rows rejected for a diagnosis code of neither")]
    assert len(by_month) == 1 and by_month[0].endswith(": 1") and "2001-0" in by_month[0]
    groups = Storage(tmp_path / "dm").read_table(FEATURE_STORE)["diag_1_group"]
    assert groups.to_list() == ["Circulatory"] * 28
    bad = runner.invoke(app, [*base, "--diagnosis-codes", "icd11"])
    assert bad.exit_code == 2 and "Invalid value for '--diagnosis-codes'" in bad.output
