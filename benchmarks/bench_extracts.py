"""An appended monthly extract vs rebuilding the months it changes, on a larger synthetic datamart.

    python benchmarks/bench_extracts.py                      # 1M rows 1999-2008 + 100k rows of 2009-01
    python benchmarks/bench_extracts.py --rows 10000000      # the issue's 10M (about an hour on 2 shared cores)

The datamart holds ``--rows`` synthetic encounters (with snapshot_date, 1999-2008, every layer
built, not timed). The next month arrives as its own extract of ``--month-rows`` encounters dated
2009-01 (new encounter ids; a fifth of them patients already in the datamart, so history counts).
Cases, each on a fresh copy of the datamart:

- ``append``: ``readmit medallion --raw month.csv``: the extract merges into bronze, only 2009-01
  is rebuilt in silver and gold (this branch);
- ``rebuild month``: what it took before: the whole file (history + month) read again, with
  ``--start 2009-01 --end 2009-01`` so only that month is written;
- ``full rebuild``: the whole file, every month (left out above 1M rows unless ``--full``).

Also timed: ``readmit data check`` on the base file, and building the datamart once (``setup``).
Every case runs as its own ``readmit`` process, measured with ``wait4``: wall seconds, CPU
seconds (user + system) and peak RSS. Each time is given beside a fixed in-process workload
(numpy sorts, ``ratio = seconds / fixed``) and the load average. The files and datamarts live in
a temporary folder (``--tmp``, default the system's), outside the repository; the files are
written a chunk at a time (the whole file is the base file with the month's rows appended as
bytes), so memory stays that of readmit itself. Writes ``benchmarks/results/extracts.json``
(``extracts-<rows>.json`` for another ``--rows``).
"""

from __future__ import annotations

import argparse
import json
import os
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


def readmit(*args: str) -> dict:
    """Run ``readmit ARGS`` as a process of its own: wall and CPU seconds, peak RSS (MiB), exit status."""
    import os
    import subprocess
    import sys

    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "from readmit.cli import app; app()", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 2):  # 2: data check found problems (it still ran through the file)
        raise SystemExit(f"readmit {' '.join(args)} failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    return {"seconds": round(wall, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024), "exit": proc.returncode}


def timed(*args: str) -> dict:
    """``readmit(*args)`` beside the fixed workload and the load average before and after."""
    before = loadavg()
    floor = fixed_workload()
    out = readmit(*args)
    return {**out, "fixed_seconds": round(floor, 3), "ratio": round(out["seconds"] / floor, 1),
            "load_before": before, "load_after": loadavg()}


def append_file(base: Path, month: Path, out: Path) -> None:
    """``out`` = ``base`` then the data rows of ``month`` (same header), copied as bytes."""
    with open(out, "wb") as dst:
        with open(base, "rb") as src:
            shutil.copyfileobj(src, dst, 16 << 20)
        with open(month, "rb") as src:
            src.readline()  # the header
            shutil.copyfileobj(src, dst, 16 << 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--month-rows", type=int, default=100_000)
    parser.add_argument("--full", action="store_true", help="also the full rebuild above 1M rows")
    parser.add_argument("--tmp", default=None, help="where the files and datamarts go (outside the repository)")
    args = parser.parse_args()
    from readmit.data.synth import write_synthetic

    full = args.full or args.rows <= 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-extracts-", dir=args.tmp) as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        base = write_synthetic(root / "base.csv", rows=args.rows, seed=18, with_snapshot=True)
        month = month_extract(base, args.month_rows, root / "month.csv")
        whole = root / "whole.csv"
        append_file(base, month, whole)
        generate = time.perf_counter() - started
        print(f"generated {args.rows:,} + {args.month_rows:,} rows in {generate:.0f} s "
              f"({base.stat().st_size / 2**30:.2f} GiB)", flush=True)
        check = timed("data", "check", str(base), "--json")
        print(f"data check: {check}", flush=True)
        built = root / "base-datamart"
        setup = timed("medallion", "--raw", str(base), "--datamart", str(built))
        print(f"setup: {setup}", flush=True)
        cases = {}
        plan = [("append", month, []), ("rebuild month", whole, ["--start", "2009-01", "--end", "2009-01"])]
        plan += [("full rebuild", whole, [])] if full else []
        for name, raw, options in plan:
            target = root / name.replace(" ", "-")
            shutil.copytree(built, target)
            cases[name] = timed("medallion", "--raw", str(raw), "--datamart", str(target), *options)
            print(f"{name}: {cases[name]}", flush=True)
            shutil.rmtree(target)
    result = {"rows": args.rows, "month_rows": args.month_rows, "generate_seconds": round(generate, 1),
              "machine": platform.platform(), "cpus": os.cpu_count(), "data_check": check, "setup": setup,
              "cases": cases,
              "append_vs_rebuild_month": round(cases["append"]["seconds"] / cases["rebuild month"]["seconds"], 3),
              "append_vs_rebuild_month_cpu": round(cases["append"]["cpu_seconds"]
                                                   / cases["rebuild month"]["cpu_seconds"], 3)}
    print(f"{'case':<15} {'seconds':>8} {'cpu s':>8} {'peak MiB':>9} {'ratio':>7}  load before -> after")
    for name, c in {"data check": check, "setup": setup, **cases}.items():
        print(f"{name:<15} {c['seconds']:>8.2f} {c['cpu_seconds']:>8.2f} {c['peak_rss_mib']:>9} {c['ratio']:>7.1f}  "
              f"{c['load_before']} -> {c['load_after']}")
    print(f"append / rebuild month = {result['append_vs_rebuild_month']} (cpu {result['append_vs_rebuild_month_cpu']})")
    name = "extracts.json" if args.rows == 1_000_000 else f"extracts-{args.rows}.json"
    out = REPO / "benchmarks" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
