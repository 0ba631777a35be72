"""Fixtures shared by the whole suite: the real UCI data and a real S3 endpoint (moto server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    return Path(os.environ.get("READMIT_TEST_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def uci_zip() -> Path:
    """The real UCI zip from ../shared/data (or READMIT_TEST_DATA_DIR)."""
    path = _data_dir() / "dataset_diabetes.zip"
    if not path.exists():
        pytest.fail(f"real UCI data not found at {path}; set READMIT_TEST_DATA_DIR")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_moto(port: int, log: Path) -> subprocess.Popen:
    """moto's S3 server in a process of its own (its work runs beside the tests, not under their GIL)."""
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"the moto S3 server did not start on port {port}: {log.read_text()[-2000:]}")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """A real S3 endpoint over HTTP: one moto server for the session, on 127.0.0.1.

    The standard AWS environment variables point at it for the whole session, so the code under
    test reaches it exactly as it would reach AWS or MinIO (s3fs / boto3, AWS_ENDPOINT_URL).
    """
    port = _free_port()
    server = _start_moto(port, tmp_path_factory.mktemp("moto") / "moto.log")
    url = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in (
        "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
    )}
    os.environ.update({
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    })
    try:
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def s3_uri(s3_endpoint) -> str:
    """A fresh bucket on the S3 endpoint; returns ``s3://bucket/prefix``."""
    import boto3

    bucket = f"readmit-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/prefix"


@pytest.fixture(scope="session")
def uci_zip_current_layout(uci_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real data repacked as the current UCI download: both CSVs at the top level."""
    import zipfile

    target = tmp_path_factory.mktemp("uci-current") / "diabetes_130_us_hospitals.zip"
    with zipfile.ZipFile(uci_zip) as src, zipfile.ZipFile(
        target, "w", zipfile.ZIP_DEFLATED, compresslevel=1
    ) as dst:
        dst.writestr("diabetic_data.csv", src.read("dataset_diabetes/diabetic_data.csv"))
        dst.writestr("IDS_mapping.csv", src.read("dataset_diabetes/IDs_mapping.csv"))
    return target


@pytest.fixture(scope="session")
def uci_sample(uci_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """15% of the real UCI encounters at random, as a CSV (raw strings kept as they are).

    encounter_order date derivation spreads the rows over 1999-2008 by encounter_id rank, so a
    random sample still fills every month and the train, test and out-of-time windows.
    """
    import zipfile

    import polars as pl

    with zipfile.ZipFile(uci_zip) as zf:
        member = next(n for n in zf.namelist() if n.endswith("diabetic_data.csv"))
        raw = pl.read_csv(zf.read(member), infer_schema=False)
    out = tmp_path_factory.mktemp("raw") / "diabetic_sample.csv"
    raw.sample(fraction=0.15, seed=7).write_csv(out)
    return out


# -- what makes a test slow ---------------------------------------------------------------------
# A test that works on the whole real UCI file (through one of the fixtures below, directly or
# through a fixture built on it), starts a Spark JVM, drives a browser, runs Airflow or talks to
# S3 is slow, whatever its own marks say: the marker follows the fixture, so such a test cannot
# land in the fast loop by forgetting `@pytest.mark.slow`. (S3 is moto over HTTP, 25-30 ms a
# call, so a test of a few hundred calls takes seconds; the same storage code runs on local
# folders in the fast loop. ``uci_zip`` alone is only a path: a test that reads a few lines of
# the real file stays fast; one that reads all of it carries the mark itself.) Process pools and
# fault injection under load carry the mark explicitly. `pytest -m "not slow"` is the fast loop;
# CI runs everything.
SLOW_FIXTURES: dict[str, str] = {
    "uci_sample": "15% of the real data (and the medallion built on it)",
    "served": "the real data through the medallion, two models and a year of predictions",
    "uci_bronze": "all real encounters as bronze",
    "uci_raw": "the whole real file read",
    "uci_zip_current_layout": "the whole real file repacked",
    "uci_encounters": "the whole real file read",
    "real_gold": "the medallion on the whole real file",
    "cyclic_features": "the medallion on the whole real file",
    "spark_session": "a local Spark session (a JVM)",
    "chromium": "a headless Chromium",
    "airflow_home": "Airflow itself (its metadata DB, DAG parsing, dag.test())",
    "s3_endpoint": "the moto S3 server (every call an HTTP round trip)",
    "own_moto": "a moto S3 server of the test's own",
    "frozen_endpoint": "an S3 endpoint that never answers (the test waits out the timeouts)",
}


# -- two workers (pytest-xdist, README: `pytest -n 2 --dist loadfile`) ----------------------------
# Each worker has its own session, but the expensive trees (the small registry, `small_served`, the
# service's `serve_models`) are built once per run: the first worker to need one builds it under
# a file lock in the run's shared temp folder and the others reuse it (tests/shared_build.py).
# The other session fixtures are built once per worker. `loadfile` keeps a module's tests
# on one worker, so a module-scoped fixture (a report rendered once, a CDS Hooks server) is built
# once. (`loadgroup` would not: pytest-xdist 3.8 groups by rewriting `item._nodeid`, which
# pytest 9 no longer reads, so its `xdist_group` marks are silently ignored.) No test may depend
# on another having run first.
#
# The files' order is the order `loadfile` hands them out, and the longest should go first (a
# 98-s file handed out last keeps one worker busy while the other idles): files holding a slow
# test first, then the rest, each group with its files of the most tests first (pytest-xdist's
# own reordering sorts by the number of tests alone, which put the one-test Airflow-server file,
# the longest of the full suite, near the end). A module's tests keep their order.


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist: keep the order set below
        config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(name in SLOW_FIXTURES for name in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    file_of = [item.nodeid.split("::", 1)[0] for item in items]  # loadfile's unit of work
    files: dict[str, list[int]] = {}  # file -> [has a slow test, tests, first position]
    for position, (name, item) in enumerate(zip(file_of, items, strict=True)):
        entry = files.setdefault(name, [0, 0, position])
        entry[0] |= item.get_closest_marker("slow") is not None
        entry[1] += 1

    def heaviest_first(i: int) -> tuple[int, int, int, int]:
        slow, tests, first = files[file_of[i]]
        return (-slow, -tests, first, i)

    items[:] = [items[i] for i in sorted(range(len(items)), key=heaviest_first)]


# -- a skip is a failure -----------------------------------------------------------------------
# Every test here runs everywhere (the data is in ../shared/data, S3 is a local moto server,
# Airflow is in the [airflow] extra), so a skip can only hide a broken set-up: the session fails.
# `-m "not slow"` deselects tests, which is not skipping them.

_SKIPPED: list[str] = []


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _SKIPPED.append(report.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SKIPPED and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _SKIPPED:
        terminalreporter.section("skipped tests fail this run", sep="=", red=True, bold=True)
        for nodeid in _SKIPPED:
            terminalreporter.line(f"SKIPPED (a failure here): {nodeid}")
        terminalreporter.line("Nothing in this suite may skip: fix the set-up (tests/conftest.py says why).")


# Synthetic gold tables and small-budget training configs, shared by the training, checks,
# registry, comparison and CLI tests (fixtures: synthetic_gold, write_config, make_settings);
# the small registry: synthetic gold with three models trained once and compared, no alias,
# read-only, for the serving, governance, report, inference and CLI tests (fixtures:
# small_models, small_models_copy, small_models_s3; the report's view: trained, registry_copy);
# predictions written by the real scoring path, for the monitoring, CLI and Airflow tests: on the
# small registry (fixtures: small_served, small_own_registry) and on the real data (fixtures:
# served, own_registry).
# A local Spark session and data_config per engine (fixtures: spark_session, engine_config).
# readmit serve: synthetic raw data from bronze to gold and three models, a real redis-server
# (fixtures: serve_models, redis_server).
pytest_plugins = ("training.gold_fixtures", "serving.model_fixtures", "report.report_fixtures",
                  "monitoring.served_fixtures", "data.spark_fixtures",
                  "service.live_server")
