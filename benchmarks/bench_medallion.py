"""Medallion speed: the full UCI file through bronze, silver and gold, and synthetic scale runs per engine.

    python benchmarks/bench_medallion.py                     # full UCI, 3 repeats, polars
    python benchmarks/bench_medallion.py --repeats 1 --engine polars,duckdb,spark
    python benchmarks/bench_medallion.py --repeats 0 --scale 1000000,10000000 --engine polars,duckdb,spark

Each run is a fresh ``readmit medallion`` process, so times include start-up (a JVM for Spark)
and all I/O. UCI cases run the whole medallion with ``--engine``. Synthetic cases build bronze once
(Polars: reading the CSV), then silver and gold on each engine into empty silver and gold folders.
``--keep DIR`` keeps each synthetic CSV and its bronze in DIR and reuses them in later runs (so the
big cases can run one engine at a time: ``--repeats 0 --scale 30000000 --engine duckdb --keep DIR``).
``seconds`` is wall time; ``peak tree MiB`` the peak RSS summed over the process tree (the Spark
JVM included). A fixed workload (numpy sorts) runs at the start and the end: on a shared machine
compare ``x ref`` (seconds / the reference's seconds), not seconds.
Prints a table and writes ``benchmarks/results/medallion.json``.
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
REFERENCE = "import numpy as np; a = np.random.default_rng(0).random(20_000_000); [np.sort(a) for _ in range(3)]"
# Engine settings for this 2-core machine: DuckDB bounded to 3 GB (it spills past that), Spark in
# local mode with its executors inside a 3 GB driver JVM.
ENGINE_CONFIG = {
    "duckdb": {"config": {"memory_limit": "3GB", "threads": "2"}},
    "spark": {"master": "local[2]", "config": {
        "spark.driver.memory": "3g", "spark.sql.shuffle.partitions": "16", "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false"}},
}


def medallion(raw: Path, datamart: Path, config: Path, layer: str = "all", engine: str = "polars",
              src: Path | None = None) -> dict:
    """One ``readmit medallion`` process; ``src``: run that source tree instead (a version before)."""
    cmd = ["readmit", "medallion", "--raw", str(raw), "--datamart", str(datamart), "--layer", layer, "--json"]
    env = None
    if src is not None:  # the earlier version knows no engines: its own defaults
        env = {**os.environ, "PYTHONPATH": str(src)}
        config = config.with_name("defaults.json")
        config.write_text("{}")
        cmd += ["--config", str(config)]
    else:
        cmd += ["--config", str(config), "--engine", engine]
    result = measure(cmd, env=env)
    summary = json.loads(result.pop("stdout"))
    layers = {entry["layer"]: entry for entry in summary["layers"]}
    first = layers.get("bronze") or layers.get("silver") or layers["gold"]
    last = layers.get("gold") or layers.get("silver") or first
    return {**result, "partitions": last["partitions"], "rows": first["rows_in"], "gold_rows": last["rows_out"]}


def synthetic(n: int, engines: list[str], config: Path, keep: Path) -> list[dict]:
    """``n`` synthetic rows: bronze once (made and timed only if not kept from an earlier run),
    then silver and gold on each engine, each from empty folders."""
    folder = keep / f"synth_{n}"
    csv, datamart = folder / "raw.csv", folder / "datamart"
    rows = []
    if not (folder / "bronze.done").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        gen = measure(["readmit", "data", "synth", "--rows", str(n), "--seed", "7", "--out", str(csv)])
        r = medallion(csv, datamart, config, layer="bronze")
        rows.append({"case": f"synthetic {n:,}", "engine": "polars", "stage": "bronze",
                     "synth_seconds": gen["seconds"], **r})
        (folder / "bronze.done").write_text(json.dumps(rows[-1]))
        print(f"  {n:,} rows bronze: {r['seconds']:.1f}s, {r['peak_tree_mib']:.0f} MiB", flush=True)
    else:  # measured by the run that made it
        rows.append({**json.loads((folder / "bronze.done").read_text()), "measured_earlier": True})
    for engine in engines:
        for layer in ("silver", "gold"):
            shutil.rmtree(datamart / layer, ignore_errors=True)
        for layer in ("silver", "gold"):
            r = medallion(csv, datamart, config, layer=layer, engine=engine)
            rows.append({"case": f"synthetic {n:,}", "engine": engine, "stage": layer, **r})
            print(f"  {n:,} rows {layer} on {engine}: {r['seconds']:.1f}s, {r['peak_tree_mib']:.0f} MiB", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=Path(os.environ.get("READMIT_BENCH_RAW", DEFAULT_UCI)))
    parser.add_argument("--repeats", type=int, default=3, help="full-UCI runs per engine (0: none)")
    parser.add_argument("--scale", default="", help="comma-separated synthetic row counts, e.g. 1000000,10000000")
    parser.add_argument("--engine", default="polars", help="comma-separated: polars,duckdb,spark")
    parser.add_argument("--before-src", type=Path, default=None,
                        help="also run the full-UCI polars case from this src/ (an earlier version), alternating")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep (and reuse) the synthetic CSVs and their bronze in this folder")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "medallion.json")
    args = parser.parse_args()
    engines = [e for e in args.engine.split(",") if e]

    rows: list[dict] = []
    reference = [measure([sys.executable, "-c", REFERENCE])]
    with tempfile.TemporaryDirectory(prefix="readmit-bench-") as tmp:
        work = Path(tmp)
        config = work / "config.json"
        engine_config = json.loads(json.dumps(ENGINE_CONFIG))  # DuckDB spills into this run's folder
        engine_config["duckdb"]["config"]["temp_directory"] = str(work / "duckdb_spill")
        config.write_text(json.dumps({"data_config": engine_config}))
        datamart = work / "datamart"
        for i in range(args.repeats):
            for engine in engines:
                shutil.rmtree(datamart, ignore_errors=True)
                r = medallion(args.raw, datamart, config, engine=engine)
                rows.append({"case": f"UCI full (run {i + 1})", "engine": engine, "stage": "all", **r})
            if args.before_src:
                shutil.rmtree(datamart, ignore_errors=True)
                r = medallion(args.raw, datamart, config, src=args.before_src)
                rows.append({"case": f"UCI full (run {i + 1})", "engine": "before", "stage": "all", **r})
        for n in [int(float(x)) for x in args.scale.split(",") if x]:
            rows += synthetic(n, engines, config, args.keep or work)
            if args.keep is None:
                shutil.rmtree(work / f"synth_{n}", ignore_errors=True)
    reference.append(measure([sys.executable, "-c", REFERENCE]))
    ref_seconds = sum(r["seconds"] for r in reference) / len(reference)

    print("reference workload:", ", ".join(f"{r['seconds']:.2f}s" for r in reference))
    print(f"{'case':24s} {'engine':7s} {'stage':7s} {'rows':>12s} {'seconds':>8s} {'x ref':>7s} "
          f"{'peak tree MiB':>13s} {'s / M rows':>10s}")
    for r in rows:
        r["x_reference"] = round(r["seconds"] / ref_seconds, 2)
        per_m = r["seconds"] / (r["rows"] / 1e6)
        print(f"{r['case']:24s} {r['engine']:7s} {r['stage']:7s} {r['rows']:>12,} {r['seconds']:>8.2f} "
              f"{r['x_reference']:>7.2f} {r['peak_tree_mib']:>13.0f} {per_m:>10.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "medallion", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "engine_config": ENGINE_CONFIG, "reference_seconds": [r["seconds"] for r in reference],
        "runs": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
