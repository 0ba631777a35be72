"""Gold speed on the full UCI file: a one-shot build, a backfill's cascade, an unchanged rebuild.

    python benchmarks/bench_gold.py                 # 3 repeats
    PYTHONPATH=/path/to/other/src python benchmarks/bench_gold.py --label other

Bronze and silver are built once (not timed); each gold case starts from the same silver.
Cases:

- ``one shot``: gold for all 120 months into an empty gold;
- ``backfill``: gold built for 2004-2008 while silver had only those months, then silver for
  1999-2003 appears and gold is built for 1999-2003 only: the time of that last build, which
  rebuilds the 60 later months (the cascade); a readmit without cascade builds only 60 months;
- ``unchanged``: gold rebuilt for one month (2003-06) when nothing changed: nothing later is rebuilt.

Every time is reported beside a fixed workload measured in the same process (numpy sorts of
5 million floats), so figures compare across machines and loads: ``ratio = seconds / fixed``.
Writes ``benchmarks/results/gold[_LABEL].json``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_UCI = REPO.parent / "shared" / "data" / "dataset_diabetes.zip"


def fixed_workload() -> float:
    """Seconds for a fixed single-threaded job: three numpy sorts of 5M floats."""
    data = np.random.default_rng(0).random(5_000_000)
    started = time.perf_counter()
    for _ in range(3):
        np.sort(data, kind="quicksort")
    return time.perf_counter() - started


def timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=DEFAULT_UCI)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--label", default="")
    args = parser.parse_args()

    import readmit
    from readmit.data.bronze import build_bronze
    from readmit.data.gold import build_gold
    from readmit.data.layers import FEATURE_STORE, LABEL_STORE, SILVER_TABLE
    from readmit.data.silver import build_silver
    from readmit.storage import Storage

    has_cascade = "cascade" in inspect.signature(build_gold).parameters
    runs: dict[str, list[dict]] = {"one shot": [], "backfill": [], "unchanged": []}
    fixed: list[float] = []
    with tempfile.TemporaryDirectory(prefix="readmit-bench-gold-") as tmp:
        full, part = Storage(Path(tmp) / "full"), Storage(Path(tmp) / "part")
        build_bronze(full, str(args.raw))
        build_silver(full)

        def drop_gold(storage: Storage) -> None:
            for table in (FEATURE_STORE, LABEL_STORE):
                storage.delete(table, recursive=True)

        for _ in range(args.repeats):
            fixed.append(fixed_workload())
            drop_gold(full)
            wall, cpu, result = timed(lambda: build_gold(full))
            runs["one shot"].append({"seconds": wall, "cpu_seconds": cpu, "partitions": len(result.partitions)})

            part.delete("", recursive=True)
            for month in full.list_partitions(SILVER_TABLE):
                if month >= "2004-01":
                    part.write_bytes(part.partition_path(SILVER_TABLE, month),
                                     full.read_bytes(full.partition_path(SILVER_TABLE, month)))
            build_gold(part)
            for month in full.list_partitions(SILVER_TABLE):
                if month < "2004-01":
                    part.write_bytes(part.partition_path(SILVER_TABLE, month),
                                     full.read_bytes(full.partition_path(SILVER_TABLE, month)))
            wall, cpu, result = timed(lambda: build_gold(part, end_month="2003-12"))
            runs["backfill"].append({"seconds": wall, "cpu_seconds": cpu, "partitions": len(result.partitions)})

            wall, cpu, result = timed(lambda: build_gold(full, start_month="2003-06", end_month="2003-06"))
            runs["unchanged"].append({"seconds": wall, "cpu_seconds": cpu, "partitions": len(result.partitions)})

    fixed_s = statistics.median(fixed)
    label = args.label or ("cascade" if has_cascade else "no-cascade")
    print(f"readmit from {Path(readmit.__file__).parent}  ({label}); fixed workload {fixed_s:.3f} s (median)")
    print(f"{'case':12s} {'partitions':>10s} {'seconds':>8s} {'cpu s':>7s} {'ratio':>7s}")
    summary = {}
    for case, rs in runs.items():
        wall = statistics.median(r["seconds"] for r in rs)
        cpu = statistics.median(r["cpu_seconds"] for r in rs)
        summary[case] = {"partitions": rs[0]["partitions"], "seconds": round(wall, 3),
                         "cpu_seconds": round(cpu, 3), "ratio_to_fixed": round(wall / fixed_s, 2), "runs": rs}
        print(f"{case:12s} {rs[0]['partitions']:>10} {wall:>8.2f} {cpu:>7.2f} {wall / fixed_s:>7.2f}")
    out = REPO / "benchmarks" / "results" / f"gold{'_' + args.label if args.label else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "gold", "label": label, "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "fixed_workload_seconds": round(fixed_s, 3), "cases": summary}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
