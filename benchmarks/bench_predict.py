"""Benchmark batch inference: rows/s and peak memory of ``readmit predict`` as the row count grows.

Usage::

    python benchmarks/bench_predict.py SOURCE_DATAMART REGISTRY
        [--rows 1000000,3000000,10000000] [--rows-per-month 500000]
        [--algorithms xgboost,logistic_regression,random_forest] [--before-src SRC]
        [--work DIR] [--out benchmarks/results/predict.json]

SOURCE_DATAMART and REGISTRY come from ``readmit run`` on the full UCI data. The benchmark
writes gold-shaped months of ``--rows-per-month`` rows each into a scratch datamart, every row a
real gold row drawn at random (with a fresh encounter_id), then scores the first N rows' months
with the latest model of each algorithm, in a fresh ``readmit predict`` process per measurement
(wall time and peak RSS of that process). Memory should stay flat as N grows: scoring streams
one month at a time.

``--before-src SRC`` also scores every model with the ``readmit`` of another source tree (an
earlier version's ``src/``), right after the current one, so both see the same load.

The fixed workload measured in the same run is the I/O alone: reading every month's feature
partition and writing a parquet file of the same size (``io_seconds``); ``ratio`` = predict
seconds / io seconds, comparable across machines and loads. Each row also records the load
average before and after it and the CPU seconds of the ``readmit predict`` process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measure  # noqa: E402

FEATURE_STORE = "gold/feature_store"


def month_names(count: int, first_year: int = 2010) -> list[str]:
    return [f"{first_year + i // 12:04d}-{i % 12 + 1:02d}" for i in range(count)]


def write_months(source: str, target: Path, months: list[str], rows_per_month: int, seed: int = 7) -> None:
    """Gold-shaped partitions: real gold rows drawn at random, dated inside their month."""
    base = pl.read_parquet(f"{source}/{FEATURE_STORE}/snapshot_month=*/data.parquet")
    rng = np.random.default_rng(seed)
    next_id = 10**10
    for month in months:
        path = target / FEATURE_STORE / f"snapshot_month={month}" / "data.parquet"
        if path.exists() and pl.read_parquet_schema(path) and pl.scan_parquet(path).select(pl.len()).collect().item() \
                == rows_per_month:
            next_id += rows_per_month
            continue
        pick = base[rng.integers(0, base.height, rows_per_month).tolist()]
        first = date(int(month[:4]), int(month[5:]), 1)
        part = pick.with_columns(
            pl.Series("encounter_id", np.arange(next_id, next_id + rows_per_month, dtype=np.int64)),
            pl.lit(first).alias("snapshot_date")
            + pl.duration(days=pl.col("snapshot_date").dt.day().clip(1, 28) - 1),
        ).sort("snapshot_date", "encounter_id")
        next_id += rows_per_month
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_parquet(path, compression="zstd")


IO_SCRIPT = """
import io, sys, polars as pl
root, months = sys.argv[1], sys.argv[2].split(",")
for m in months:
    df = pl.read_parquet(f"{root}/gold/feature_store/snapshot_month={m}/data.parquet")
    buf = io.BytesIO(); df.select("encounter_id", "patient_nbr", "snapshot_date").write_parquet(buf)
print(len(months))
"""


def latest_versions(registry: str) -> dict[str, str]:
    folder = Path(registry) / "models" / "readmission"
    out = {}
    for meta in folder.glob("*_latest_metadata.json"):
        data = json.loads(meta.read_text())
        out[data["algorithm"]] = data["version"]
    return out


def load() -> list[float]:
    return [round(x, 1) for x in os.getloadavg()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source_datamart")
    parser.add_argument("registry")
    parser.add_argument("--rows", default="1000000,3000000,10000000")
    parser.add_argument("--rows-per-month", type=int, default=500_000)
    parser.add_argument("--algorithms", default="xgboost,logistic_regression,random_forest")
    parser.add_argument("--before-src", default=None, help="also score with the readmit of this src/ (an earlier version)")
    parser.add_argument("--work", default=None, help="scratch datamart (default: a temp folder, kept for reruns)")
    parser.add_argument("--out", default="benchmarks/results/predict.json")
    args = parser.parse_args()

    counts = [int(x) for x in args.rows.split(",")]
    per_month = args.rows_per_month
    work = Path(args.work or Path(tempfile.gettempdir()) / "readmit_bench_predict")
    all_months = month_names(-(-max(counts) // per_month))
    t0 = time.perf_counter()
    write_months(args.source_datamart, work, all_months, per_month)
    print(f"scratch gold: {len(all_months)} months x {per_month} rows in {work} "
          f"({time.perf_counter() - t0:.0f}s to prepare)", flush=True)
    versions = latest_versions(args.registry)
    algorithms = args.algorithms.split(",")
    models = [(a, a, versions[a], args.registry) for a in algorithms]  # (label, algorithm, version, registry)
    env = {**os.environ, "READMIT_ACTOR": "bench"}
    rows = []
    for count in counts:
        months = all_months[: -(-count // per_month)]
        io = measure([sys.executable, "-c", IO_SCRIPT, str(work), ",".join(months)], env=env)
        runs = [(label, m, env) for label, *m in models]
        if args.before_src:
            before_env = {**env, "PYTHONPATH": str(Path(args.before_src).resolve())}
            runs = [r for label, *m in models for r in ((label, m, env), (f"{label} before", m, before_env))]
        for label, (algorithm, version, registry), run_env in runs:
            load_before = load()
            got = measure(["readmit", "predict", "--start", months[0], "--end", months[-1], "--model",
                           f"{algorithm}_v{version}", "--datamart", str(work),
                           "--registry", registry, "--json"], env=run_env)
            summary = json.loads(got["stdout"])
            scored = summary["scored"] + summary["excluded_death_hospice"]
            row = {
                "model": label, "algorithm": algorithm, "version": version,
                "scoring": summary["models"][0].get("scoring"), "rows": scored, "months": len(months),
                "seconds": got["seconds"], "cpu_seconds": got.get("cpu_seconds"),
                "rows_per_second": round(scored / got["seconds"]), "rows_per_minute": round(60 * scored / got["seconds"]),
                "peak_rss_mib": got["peak_rss_mib"], "io_seconds": io["seconds"],
                "ratio_to_io": round(got["seconds"] / io["seconds"], 2),
                "load_before": load_before, "load_after": load(),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    header = (f"{'model':<39} {'rows':>11} {'seconds':>8} {'cpu s':>7} {'rows/s':>9} {'rows/min':>11} "
              f"{'peak MiB':>9} {'x io':>6} {'load 1m':>8}")
    print(header)
    for r in rows:
        print(f"{r['model']:<39} {r['rows']:>11,} {r['seconds']:>8.1f} {r['cpu_seconds'] or 0:>7.1f} "
              f"{r['rows_per_second']:>9,} {r['rows_per_minute']:>11,} {r['peak_rss_mib']:>9.0f} "
              f"{r['ratio_to_io']:>6.1f} {r['load_before'][0]:>8.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpus": os.cpu_count(), "rows_per_month": per_month,
                               "bytecode_cache": os.environ.get("PYTHONDONTWRITEBYTECODE") is None,
                               "results": rows}, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
