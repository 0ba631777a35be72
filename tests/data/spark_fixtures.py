"""Spark and DuckDB for the tests: a local Spark session and ``data_config`` per engine.

Loaded for the whole suite through ``pytest_plugins`` in tests/conftest.py: the engine tests
(tests/data) and Spark batch scoring (tests/serving) share one Spark session.
"""

from __future__ import annotations

import pytest

# -- engines -------------------------------------------------------------------------------
# Spark for the tests: local mode on 2 cores, few shuffle partitions, no UI or progress bars.
SPARK_TEST_CONFIG: dict[str, str] = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
}


@pytest.fixture(scope="session")
def spark_session():
    """One local Spark session for the whole test session (fails, never skips, without pyspark)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.fail("pyspark is not installed: pip install -e '.[dev,spark]' (Spark also needs Java 17+)")
    builder = SparkSession.builder.master("local[2]").appName("readmit-tests")
    for key, value in SPARK_TEST_CONFIG.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def engine_config(request):
    """data_config for an engine name: ``engine_config("spark")`` (starts the Spark session)."""
    from readmit.config import DataSection, SparkSection

    def make(engine: str) -> DataSection:
        if engine == "spark":
            request.getfixturevalue("spark_session")
            return DataSection(engine="spark", spark=SparkSection(master="local[2]", config=SPARK_TEST_CONFIG))
        if engine == "duckdb":
            try:
                import duckdb  # noqa: F401
            except ImportError:
                pytest.fail("duckdb is not installed: pip install -e '.[dev]' (or pip install 'duckdb>=1.1')")
        return DataSection(engine=engine)

    return make
