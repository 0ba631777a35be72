"""An appended monthly extract vs rebuilding the months it changes, on a larger synthetic datamart.

    python benchmarks/bench_extracts.py                      # 1M rows 1999-2008 + 100k rows of 2009-01
    python benchmarks/bench_extracts.py --rows 10000000      # the issue's 10M (hours on 2 shared cores)

The datamart holds ``--rows`` synthetic encounters (with snapshot_date, 1999-2008, every layer
built, not timed). The next month arrives as its own extract of ``--month-rows`` encounters dated
2009-01 (new encounter ids; a fifth of them patients already in the datamart, so history counts).
Cases, each on a fresh copy of the datamart:

- ``append``: ``readmit medallion --raw month.csv``: the extract merges into bronze, only 2009-01
  is rebuilt in silver and gold (this branch);
- ``rebuild month``: what it took before: the whole file (history + month) read again, with
  ``--start 2009-01 --end 2009-01`` so only that month is written;
- ``full rebuild``: the whole file, every month.

Each time is given beside a fixed in-process workload (numpy sorts, ``ratio = seconds / fixed``)
and the load average. Writes ``benchmarks/results/extracts.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]


def fixed_workload() -> float:
    """Seconds for a fixed single-threaded job: three numpy sorts of 5M floats."""
    data = np.random.default_rng(0).random(5_000_000)
    started = time.perf_counter()
    for _ in range(3):
        np.sort(data, kind="quicksort")
    return time.perf_counter() - started


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def month_extract(base: Path, rows: int, out: Path) -> Path:
    """``rows`` encounters dated in 2009-01, ids after the base file's, a fifth of them returning patients."""
    from readmit.data.synth import write_synthetic

    fresh = pl.read_csv(write_synthetic(out.with_name("fresh.csv"), rows=rows, seed=99, with_snapshot=True),
                        infer_schema=False)
    ids = pl.scan_csv(base, infer_schema=False).select(pl.col("encounter_id").cast(pl.Int64).max(),
                                                        pl.col("patient_nbr").cast(pl.Int64)).collect()
    top = int(ids["encounter_id"][0])
    patients = ids["patient_nbr"].sample(rows // 5, seed=1, with_replacement=True)
    patient = pl.Series(np.where(np.arange(rows) < rows // 5,
                                 np.resize(patients.to_numpy(), rows), fresh["patient_nbr"].cast(pl.Int64) + 10**9))
    day = 1 + (np.arange(rows) * 31) // rows
    month = fresh.with_columns(
        pl.Series("encounter_id", np.arange(top + 1, top + 1 + rows)).cast(pl.String),
        patient.cast(pl.String).alias("patient_nbr"),
        pl.Series("snapshot_date", [f"2009-01-{d:02d}" for d in day]),
    )
    month.write_csv(out)
    return out


def run(settings_args: dict, **options) -> float:
    from readmit.config import load_settings
    from readmit.data.medallion import run_medallion

    started = time.perf_counter()
    run_medallion(load_settings(**settings_args), **options)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--month-rows", type=int, default=100_000)
    args = parser.parse_args()
    from readmit.data.synth import write_synthetic

    with tempfile.TemporaryDirectory(prefix="bench-extracts-") as tmp:
        root = Path(tmp)
        base = write_synthetic(root / "base.csv", rows=args.rows, seed=18, with_snapshot=True)
        month = month_extract(base, args.month_rows, root / "month.csv")
        whole = root / "whole.csv"
        pl.concat([pl.read_csv(base, infer_schema=False), pl.read_csv(month, infer_schema=False)]).write_csv(whole)
        built = root / "base-datamart"
        setup = run({"raw": str(base), "datamart": str(built)})
        cases = {}
        for name, raw, options in (("append", month, {}),
                                   ("rebuild month", whole, {"start_month": "2009-01", "end_month": "2009-01"}),
                                   ("full rebuild", whole, {})):
            target = root / name.replace(" ", "-")
            shutil.copytree(built, target)
            before = loadavg()
            floor = fixed_workload()
            seconds = run({"raw": str(raw), "datamart": str(target)}, **options)
            cases[name] = {"seconds": round(seconds, 2), "fixed_seconds": round(floor, 3),
                           "ratio": round(seconds / floor, 1), "load_before": before, "load_after": loadavg()}
            shutil.rmtree(target)
    result = {"rows": args.rows, "month_rows": args.month_rows, "setup_seconds": round(setup, 1),
              "machine": platform.platform(), "cases": cases,
              "append_vs_rebuild_month": round(cases["append"]["seconds"] / cases["rebuild month"]["seconds"], 3)}
    print(f"{'case':<15} {'seconds':>8} {'ratio':>7}  load before -> after")
    for name, c in cases.items():
        print(f"{name:<15} {c['seconds']:>8.2f} {c['ratio']:>7.1f}  {c['load_before']} -> {c['load_after']}")
    print(f"append / rebuild month = {result['append_vs_rebuild_month']}")
    out = REPO / "benchmarks" / "results" / "extracts.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
