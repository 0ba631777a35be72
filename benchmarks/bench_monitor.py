"""Monitoring speed: PSI of the score and CSI of every feature over millions of scored rows.

    python benchmarks/bench_monitor.py                       # 1M and 10M rows
    python benchmarks/bench_monitor.py --rows 1000000,10000000 --threads 2

The reference profile is built from the real UCI gold training window (1999-2005; gold is built
into a temporary datamart first). The monitored rows are drawn with replacement from the real gold
rows (gold-shaped: every numeric and categorical feature, a risk score, 12 months), so their value
distributions are realistic. Only :func:`readmit.monitoring.drift.drift_by_month` is timed: every
feature's CSI, its missing and new-category rates and the score's PSI, per month.

The machine is shared, so the run also times a fixed workload (numpy sorting 10 million float64)
and reports each drift time as a multiple of it, with the load average before and after. Prints a
table and writes ``benchmarks/results/monitor.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_UCI = REPO.parent / "shared" / "data" / "dataset_diabetes.zip"


def fixed_workload() -> float:
    import numpy as np

    values = np.random.default_rng(0).random(10_000_000)
    started = time.perf_counter()
    np.sort(values)
    return time.perf_counter() - started


def synthetic_risk(frame):
    """A deterministic, gold-driven score in (0, 1) (no model needed to time drift)."""
    import polars as pl

    logit = (-2.6 + 0.25 * pl.col("number_inpatient").fill_null(0) + 0.03 * pl.col("time_in_hospital").fill_null(0)
             + 0.1 * pl.col("prior_encounters").fill_null(0).clip(0, 5))
    return frame.with_columns((1 / (1 + (-logit).exp())).alias("risk"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=Path(os.environ.get("READMIT_BENCH_RAW", DEFAULT_UCI)))
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--threads", type=int, default=2, help="POLARS_MAX_THREADS (set before polars loads)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "monitor.json")
    args = parser.parse_args()
    os.environ["POLARS_MAX_THREADS"] = str(args.threads)

    import polars as pl

    from readmit.config import load_settings
    from readmit.data.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES
    from readmit.data.medallion import run_medallion
    from readmit.monitoring.drift import drift_by_month
    from readmit.monitoring.profile import build_profile
    from readmit.training.split import load_gold

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="readmit-bench-") as tmp:
        settings = load_settings(None, raw=str(args.raw), datamart=f"{tmp}/datamart", registry=f"{tmp}/registry")
        run_medallion(settings)
        gold = synthetic_risk(load_gold(settings, fingerprints=False).frame)
    train = gold.filter(pl.col("window") == "train")
    started = time.perf_counter()
    profile = build_profile(train, train["risk"].to_numpy(), NUMERIC_FEATURES, CATEGORICAL_FEATURES, bins=10)
    profile_seconds = time.perf_counter() - started
    pool = gold.select(*NUMERIC_FEATURES, *CATEGORICAL_FEATURES, "risk").with_columns(
        pl.col(NUMERIC_FEATURES).cast(pl.Int32), pl.col(CATEGORICAL_FEATURES).cast(pl.Categorical))

    reference = fixed_workload()
    results = []
    for n in [int(float(x)) for x in args.rows.split(",") if x]:
        rows = pool.sample(n, with_replacement=True, seed=7).with_columns(
            pl.format("2008-{}", (pl.int_range(pl.len()) % 12 + 1).cast(pl.String).str.zfill(2)).alias("month"))
        started = time.perf_counter()
        drift = drift_by_month(rows, profile)
        seconds = time.perf_counter() - started
        results.append({
            "rows": n, "features": len(NUMERIC_FEATURES) + len(CATEGORICAL_FEATURES), "months": len(drift),
            "seconds": round(seconds, 2), "rows_per_second": round(n / seconds),
            "x_fixed_workload": round(seconds / reference, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        })
        del rows
    load_after = os.getloadavg()

    print(f"profile of the training window ({train.height:,} rows): {profile_seconds:.2f} s")
    print(f"fixed workload (numpy sort of 10M float64): {reference:.2f} s; load average before "
          f"{load_before[0]:.1f}, after {load_after[0]:.1f} ({os.cpu_count()} cores, POLARS_MAX_THREADS={args.threads})")
    print(f"{'rows':>12} {'features':>8} {'months':>6} {'seconds':>8} {'rows/s':>12} {'x fixed':>8} {'peak MiB':>9}")
    for r in results:
        print(f"{r['rows']:>12,} {r['features']:>8} {r['months']:>6} {r['seconds']:>8.2f} {r['rows_per_second']:>12,} "
              f"{r['x_fixed_workload']:>8} {r['peak_rss_mib']:>9,}")
    report = {
        "benchmark": "monitoring drift (PSI + CSI per feature per month)",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "polars_threads": args.threads,
                    "load_average_before": load_before, "load_average_after": load_after},
        "profile_seconds": round(profile_seconds, 3),
        "fixed_workload_seconds": round(reference, 3),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
