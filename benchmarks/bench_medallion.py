"""Medallion speed: the full UCI file through bronze, silver and gold, and synthetic scale runs.

    python benchmarks/bench_medallion.py                     # full UCI, 3 repeats
    python benchmarks/bench_medallion.py --scale 1000000,10000000

Prints a table and writes ``benchmarks/results/medallion.json``. Each run is a fresh
``readmit medallion`` process into an empty datamart, so times include start-up and all I/O.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import measure  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_UCI = REPO.parent / "shared" / "data" / "dataset_diabetes.zip"


def medallion_once(raw: Path, workdir: Path) -> dict:
    datamart = workdir / "datamart"
    shutil.rmtree(datamart, ignore_errors=True)
    result = measure(["readmit", "medallion", "--raw", str(raw), "--datamart", str(datamart), "--json"])
    summary = json.loads(result.pop("stdout"))
    layers = {layer["layer"]: layer for layer in summary["layers"]}
    result["partitions"] = layers["gold"]["partitions"]
    result["rows"] = layers["bronze"]["rows_in"]
    result["gold_rows"] = layers["gold"]["rows_out"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=Path(os.environ.get("READMIT_BENCH_RAW", DEFAULT_UCI)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", default="", help="comma-separated synthetic row counts, e.g. 1000000,10000000")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "medallion.json")
    args = parser.parse_args()

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="readmit-bench-") as tmp:
        work = Path(tmp)
        for i in range(args.repeats):
            r = medallion_once(args.raw, work)
            rows.append({"case": f"UCI full (run {i + 1})", **r})
        for n in [int(float(x)) for x in args.scale.split(",") if x]:
            csv = work / f"synth_{n}.csv"
            gen = measure(["readmit", "data", "synth", "--rows", str(n), "--seed", "7", "--out", str(csv)])
            r = medallion_once(csv, work)
            rows.append({"case": f"synthetic {n:,} rows", "synth_seconds": gen["seconds"], **r})
            csv.unlink()

    print(f"{'case':28s} {'rows':>12s} {'partitions':>10s} {'seconds':>8s} {'peak MiB':>9s} {'s / M rows':>10s}")
    for r in rows:
        per_m = r["seconds"] / (r["rows"] / 1e6)
        print(f"{r['case']:28s} {r['rows']:>12,} {r['partitions']:>10} {r['seconds']:>8.2f} "
              f"{r['peak_rss_mib']:>9.0f} {per_m:>10.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "medallion", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
