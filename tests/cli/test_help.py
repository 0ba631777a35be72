"""Help that helps (issue 21): choices shown, no ``<bool>`` on flags, the flag named in a bad
month, no empty folders and no stale progress line after a failure, known totals on the bars."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from readmit.cli import app

runner = CliRunner()
CLI = [sys.executable, "-c", "from readmit.cli import main; main()"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


def help_of(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


def test_options_with_choices_show_them_and_flags_show_no_type():
    medallion = help_of("medallion")
    assert "<bronze|silver|gold|all>" in medallion and "<polars|duckdb|spark>" in medallion
    assert "<champion|challenger>" in help_of("predict")
    for command in (("run",), ("medallion",), ("promote",), ("check",), ("config", "validate")):
        assert "<bool>" not in help_of(*command), command


@pytest.mark.parametrize("command", [["medallion", "--start", "2003-13"], ["run", "--end", "2008"],
                                     ["predict", "--month", "08-2008"]])
def test_an_invalid_month_names_the_flag(command):
    result = runner.invoke(app, command, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    flag = command[1]
    assert f"Invalid value for '{flag}': '{command[2]}' is not a month: write YYYY-MM" in result.output


def terminal_run(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    """readmit as a terminal shows it (rich draws its live bars only on a terminal)."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
                          env={**os.environ, "FORCE_COLOR": "1", "COLUMNS": "120"})


def last_frame(stderr: str) -> list[str]:
    """What is left on the screen: the last frame of each redrawn line, escapes removed."""
    return [line for line in (ANSI.sub("", part) for part in stderr.replace("\r", "\n").split("\n")) if line.strip()]


def test_a_failed_command_leaves_no_empty_folder_and_no_stale_bar(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    done = terminal_run("medallion", "--raw", str(bad), "--datamart", "new/datamart", cwd=tmp_path)
    assert done.returncode == 2
    assert "not the UCI encounters CSV" in done.stderr
    assert not (tmp_path / "new").exists()  # the location probe cleaned up after itself
    # the bar's line is erased before the error is printed
    assert re.search(r"\x1b\[1A\x1b\[2K\x1b\[1;31merror:", done.stderr), done.stderr[-400:]
    done = terminal_run("run", "--raw", "missing.csv", "--datamart", "a/dm", "--registry", "a/reg", cwd=tmp_path)
    assert done.returncode == 2 and "file not found" in done.stderr
    assert not (tmp_path / "a").exists()


def test_a_finished_layer_shows_its_count_over_its_count(tmp_path):
    from readmit.data.synth import write_synthetic

    raw = write_synthetic(tmp_path / "s.csv", rows=1500, seed=3)
    done = terminal_run("medallion", "--layer", "bronze", "--raw", str(raw), "--datamart", "dm", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    final = [line for line in last_frame(done.stderr) if "bronze 2008-12" in line][-1]
    assert "120/120" in final and "/?" not in final
