"""What a person sees when things go wrong: one message, the right exit code, no traceback.

Each fault of issue 8 is run through the real command line (a subprocess, so stderr is exactly
what a terminal shows): S3 gone, bucket missing, read-only datamart, registry path that is a
file, a bug. The traceback appears only with ``--debug`` or in the log file the message names.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from readmit.cli import app
from readmit.cli.common import handle_errors

CLI = [sys.executable, "-c", "from readmit.cli import main; main()"]


def readmit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})})


def no_traceback(done: subprocess.CompletedProcess[str]) -> bool:
    return "Traceback" not in done.stderr + done.stdout


# -- the printer: handle_errors ------------------------------------------------------------


def test_an_unexpected_error_is_one_line_with_the_log_file_and_exit_1(tmp_path, monkeypatch):
    monkeypatch.setenv("READMIT_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("READMIT_DEBUG", raising=False)
    app = typer.Typer()

    @app.command()
    @handle_errors
    def broken() -> None:
        {}["missing"]  # noqa: B018 - a bug

    result = CliRunner().invoke(app, [])
    assert result.exit_code == 1
    logs = list((tmp_path / "logs").iterdir())
    assert len(logs) == 1 and "KeyError: 'missing'" in logs[0].read_text()
    assert "Traceback" not in result.output
    lines = result.output.replace("\n", " ")
    assert "error: unexpected KeyError: 'missing'" in lines
    assert f"Full traceback: {logs[0]}; rerun with --debug to see it here." in lines


def test_the_width_is_the_terminals_when_printing_not_when_the_cli_was_imported():
    """A test runner's worker (pytest-xdist sets COLUMNS=80) or a resized terminal: the width read
    at import time would cut a table that the terminal has room for."""
    script = ("import os\n"
              "from readmit.cli.common import console, err_console\n"
              "os.environ['COLUMNS'] = '160'\n"
              "console().print('o' * 150)\n"
              "err_console().print('e' * 150)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "40", "LINES": "24"})
    assert done.stdout == "o" * 150 + "\n" and done.stderr == "e" * 150 + "\n"


def test_debug_prints_the_traceback(tmp_path):
    (tmp_path / "registry").write_text("a file")
    done = readmit("--debug", "train", "--registry", str(tmp_path / "registry"),
                   env={"READMIT_LOG_DIR": str(tmp_path / "logs")})
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr
    assert "FileExistsError" in done.stderr  # the OS error under the message
    assert "part of the path is a file, not a folder" in done.stderr


# -- faults of the environment, each one message ---------------------------------------------


def test_registry_that_is_a_file_is_found_before_training(tmp_path):
    (tmp_path / "registry").write_text("a file")
    done = readmit("train", "--registry", str(tmp_path / "registry"), "--datamart", str(tmp_path / "dm"))
    assert done.returncode == 2, done.stderr
    assert no_traceback(done)
    message = " ".join(done.stderr.split())
    assert message.startswith(f"error: {tmp_path / 'registry'}")
    assert ("the registry is not usable (checked before starting; nothing was done): cannot write: "
            "part of the path is a file, not a folder") in message
    assert "Fix: move that file away, or point the location elsewhere" in message
    assert "Tuning" not in done.stderr  # no training started


@contextmanager
def unprivileged():
    """Run the block as an unprivileged user when the tests run as root (root ignores modes)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_read_only_datamart_is_found_before_the_medallion():
    base = Path(tempfile.mkdtemp(prefix="readmit-ro-"))  # under /tmp, which anyone may enter
    folder = base / "datamart"
    folder.mkdir()
    base.chmod(0o755)
    folder.chmod(0o555)
    try:
        with unprivileged():
            result = CliRunner().invoke(app, ["medallion", "--datamart", str(folder), "--raw", str(base / "x.csv")])
    finally:
        shutil.rmtree(base)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.output.split())
    assert f"error: {folder}" in message
    assert ("the datamart is not usable (checked before starting; nothing was done): cannot write: "
            "permission denied") in message
    assert "Fix: make this folder writable by this user" in message


def test_missing_bucket_exits_2_before_the_medallion(s3_endpoint, tmp_path):
    done = readmit("medallion", "--datamart", "s3://no-such-bucket-readmit/dm", "--raw", str(tmp_path / "x.csv"))
    assert done.returncode == 2, done.stderr
    assert no_traceback(done)
    message = " ".join(done.stderr.split())
    assert "the bucket 'no-such-bucket-readmit' does not exist" in message
    assert "Fix: create it (`aws s3 mb s3://no-such-bucket-readmit`)" in message


@pytest.mark.slow  # waits out the S3 connect timeouts
def test_s3_endpoint_down_exits_1_with_one_message_and_a_log(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: the endpoint is gone
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "READMIT_S3_MAX_ATTEMPTS": "2", "READMIT_S3_CONNECT_TIMEOUT": "1",
           "READMIT_LOG_DIR": str(tmp_path / "logs")}
    done = readmit("run", "--datamart", "s3://bucket/dm", "--registry", str(tmp_path / "reg"), env=env)
    assert done.returncode == 1, done.stderr
    assert no_traceback(done)
    message = " ".join(done.stderr.split())
    assert "error: s3://bucket/dm" in message
    assert f"the S3 endpoint http://127.0.0.1:{port} did not answer (EndpointConnectionError" in message
    assert "waiting for S3 (PutObject" in message  # the wait said what it waited for
    log = next((tmp_path / "logs").iterdir())
    assert f"(details: {log})" in message and "EndpointConnectionError" in log.read_text()


def test_bad_input_shows_no_traceback_either(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model_config": {"random_state": 1}, "model_config ": 2}))
    done = readmit("config", "validate", str(config))
    assert done.returncode == 2 and no_traceback(done)


@pytest.mark.slow
def test_ragged_csv_exits_2_every_time_even_two_at_once(tmp_path, uci_zip):
    """Was: the right message, then ``terminate called without an active exception`` (exit 134)
    about one run in ten (pyarrow's read-ahead thread on a Python file at exit)."""
    import zipfile

    with zipfile.ZipFile(uci_zip) as zf:
        lines = zf.read("dataset_diabetes/diabetic_data.csv").decode().splitlines()[:3001]
    lines[1500] = ",".join(lines[1500].split(",")[:20])
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("\n".join(lines) + "\n")
    zipped = tmp_path / "ragged.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(ragged, "dataset_diabetes/diabetic_data.csv")
    codes = []
    for i in range(15):
        pair = [subprocess.Popen([*CLI, "medallion", "--layer", "bronze", "--raw", str(raw),
                                  "--datamart", str(tmp_path / f"dm{i}{n}")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for n, raw in enumerate((ragged, zipped))]
        for proc in pair:
            _, err = proc.communicate(timeout=300)
            codes.append(proc.returncode)
            assert "Expected 50 columns, got 20" in err and "terminate called" not in err
    assert codes == [2] * 30
