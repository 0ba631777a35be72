"""The ``spark-submit`` application of ``READMIT_EXECUTOR=spark``: one pipeline step in the Spark driver.

::

    spark-submit .../readmit/orchestration/spark_app.py STEP_ID [--start YYYY-MM] [--end YYYY-MM]

Starts the Spark session ``spark-submit`` configured (master, deploy mode, properties), then
calls :func:`readmit.pipeline.run_step` like every task does; the step's engine
(``data_config.engine: spark``) finds that session active and runs on it. The settings come from
the environment (``READMIT_CONFIG``, ``READMIT_DATAMART_URI``, ...), which the operator passes
on. The step's result is printed as JSON (it ends up in the Airflow task log); a readmit error
prints its message and exits 2 (bad input) or 1.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    from readmit.config import load_settings
    from readmit.errors import ReadmitError, ReadmitInputError
    from readmit.pipeline import CLI_FLAGS, run_step, summarize

    parser = argparse.ArgumentParser(prog="spark_app.py", description="Run one readmit pipeline step on Spark.")
    parser.add_argument("step_id")
    for name, flag in CLI_FLAGS.items():
        parser.add_argument(flag, dest=name, default=None)
    args = vars(parser.parse_args(argv))
    step_id = args.pop("step_id")

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(f"readmit-{step_id}").getOrCreate()
    try:
        result = run_step(step_id, load_settings(), **{k: v or None for k, v in args.items()})
    except ReadmitError as exc:
        print(f"readmit step {step_id} failed: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ReadmitInputError) else 1
    finally:
        spark.stop()
    print(json.dumps(summarize(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
