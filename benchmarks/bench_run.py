"""The whole job: ``readmit run`` on the full UCI data with the reference search budget.

    python benchmarks/bench_run.py [--raw ../shared/data/dataset_diabetes.zip] [--config conf/model_config.json]

Runs ``readmit run --json`` in a fresh process into an empty datamart and registry (3 algorithms x
20 candidates x 5 folds with the shipped config), samples the resident memory of the whole process
tree (search workers included) every 0.1 s, then prints a table of wall time, peak memory and each
model's test and out-of-time ROC-AUC, and writes ``benchmarks/results/run.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
DEFAULT_UCI = REPO.parent / "shared" / "data" / "dataset_diabetes.zip"


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=Path(os.environ.get("READMIT_BENCH_RAW", DEFAULT_UCI)))
    parser.add_argument("--config", type=Path, default=REPO / "conf" / "model_config.json")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "run.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="readmit-bench-run-") as tmp:
        cmd = ["readmit", "run", "--json", "--config", str(args.config), "--raw", str(args.raw),
               "--datamart", f"{tmp}/datamart", "--registry", f"{tmp}/registry"]
        # Output goes to files, not pipes: a full pipe would stall the child while we only sample.
        with open(f"{tmp}/stdout", "w+") as out_f, open(f"{tmp}/stderr", "w+") as err_f:
            started = time.perf_counter()
            child = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, text=True)
            proc, peak = psutil.Process(child.pid), 0
            while child.poll() is None:
                peak = max(peak, tree_rss(proc))
                time.sleep(0.1)
            wall = time.perf_counter() - started
            out_f.seek(0)
            err_f.seek(0)
            out, err = out_f.read(), err_f.read()
    if child.returncode != 0:
        sys.exit(f"readmit run failed ({child.returncode}):\n{err[-4000:]}")
    summary = json.loads(out)
    steps = {s["step"]: s for s in summary["steps"]}
    comparison = steps["compare_models"]["result"]
    models = comparison["candidates"]

    print(f"readmit run, full UCI: {wall:.1f} s wall, peak memory {peak / 2**30:.2f} GiB "
          f"(process tree), {os.cpu_count()} cores")
    print(f"{'step':26s} {'seconds':>8s}")
    for s in summary["steps"]:
        print(f"{s['step']:26s} {s.get('seconds', float('nan')):>8.1f}")
    print(f"\n{'model':22s} {'test AUC':>9s} {'oot AUC':>9s} {'oot PR-AUC':>10s}")
    for m in models:
        print(f"{m['algorithm']:22s} {m['test']['auc_roc']:>9.4f} {m['oot']['auc_roc']:>9.4f} "
              f"{m['oot'].get('pr_auc', float('nan')):>10.4f}")
    rec = comparison["recommended"]
    print(f"recommended: {rec['algorithm']} ({rec['reason']})")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "readmit run", "wall_seconds": round(wall, 2), "peak_rss_gib": round(peak / 2**30, 3),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "steps": summary["steps"], "models": models, "recommended": rec}, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
