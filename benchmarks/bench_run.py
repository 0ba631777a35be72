"""The whole job: ``readmit run`` on the full UCI data with the reference search budget.

    python benchmarks/bench_run.py [--raw ../shared/data/dataset_diabetes.zip] [--config conf/model_config.json]

Runs ``readmit run --json`` in a fresh process into an empty datamart and registry (3 algorithms x
20 candidates x 5 folds with the shipped config), samples the resident memory of the whole process
tree (search workers included) every 0.1 s, then prints a table of wall time, peak memory and each
model's figures, and writes ``benchmarks/results/run.json``.

Machines differ and shared machines are noisy, so every step is also given as a multiple of a
**fixed workload** measured in the same session, just before and just after the run: ten fits of
one fixed XGBoost model (200 trees, depth 4, 2 threads) on a fixed synthetic matrix (60,000 x 50).
Compare ``step seconds / workload seconds`` across machines, not seconds. The load average at
the start and the end is printed too.
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


def fixed_workload() -> float:
    """Seconds for ten fits of one fixed XGBoost model on a fixed matrix (fresh process)."""
    code = (
        "import time, numpy as np\n"
        "from xgboost import XGBClassifier\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(60000, 50)).astype(np.float32)\n"
        "y = (X[:, :5].sum(1) + rng.normal(size=60000) * 3 > 2).astype(int)\n"
        "t = time.perf_counter()\n"
        "for i in range(10):\n"
        "    XGBClassifier(n_estimators=200, max_depth=4, learning_rate=0.1, tree_method='hist', max_bin=64,\n"
        "                  n_jobs=2, random_state=i).fit(X, y)\n"
        "print(time.perf_counter() - t)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=Path(os.environ.get("READMIT_BENCH_RAW", DEFAULT_UCI)))
    parser.add_argument("--config", type=Path, default=REPO / "conf" / "model_config.json")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "run.json")
    args = parser.parse_args()

    load_before = os.getloadavg()
    workload_before = fixed_workload()
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
    workload_after = fixed_workload()
    load_after = os.getloadavg()
    workload = (workload_before + workload_after) / 2
    summary = json.loads(out)
    steps = {s["step"]: s for s in summary["steps"]}
    comparison = steps["compare_models"]["result"]
    models = comparison["candidates"]

    print(f"readmit run, full UCI: {wall:.1f} s wall, peak memory {peak / 2**30:.2f} GiB "
          f"(process tree), {os.cpu_count()} cores; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after")
    print(f"fixed workload (10 fits of one XGBoost model): {workload_before:.1f} s before, "
          f"{workload_after:.1f} s after; ratios below use their mean {workload:.1f} s")
    print(f"{'step':26s} {'seconds':>8s} {'x workload':>10s}")
    for s in summary["steps"]:
        secs = s.get("seconds", float("nan"))
        print(f"{s['step']:26s} {secs:>8.1f} {secs / workload:>10.2f}")
    print(f"{'whole run':26s} {wall:>8.1f} {wall / workload:>10.2f}")

    def fmt(value, ci=None, digits=4):
        if value is None:
            return "-"
        return f"{value:.{digits}f}" + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci else "")

    print(f"\n{'model':20s} {'test AUC (95% CI)':>24s} {'oot AUC (95% CI)':>24s} {'oot Brier':>9s} "
          f"{'baseline':>8s} {'O/E':>5s} {'slope':>5s} {'unseen':>6s}")
    for m in models:
        t, o = m["test"], m["oot"]
        print(f"{m['algorithm']:20s} {fmt(t['auc_roc'], (t.get('ci') or {}).get('auc_roc')):>24s} "
              f"{fmt(o['auc_roc'], (o.get('ci') or {}).get('auc_roc')):>24s} {fmt(o.get('brier')):>9s} "
              f"{fmt(o.get('brier_baseline')):>8s} {fmt(o.get('observed_expected'), digits=2):>5s} "
              f"{fmt(o.get('slope'), digits=2):>5s} {fmt((o.get('unseen_patients') or {}).get('auc_roc'), digits=3):>6s}")
    rec = comparison["recommended"]
    print(f"recommended: {rec['algorithm']} ({rec['reason']})")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "readmit run", "wall_seconds": round(wall, 2), "peak_rss_gib": round(peak / 2**30, 3),
        "fixed_workload_seconds": {"before": round(workload_before, 2), "after": round(workload_after, 2)},
        "run_over_workload": round(wall / workload, 2),
        "steps_over_workload": {s["step"]: round(s.get("seconds", 0) / workload, 2) for s in summary["steps"]},
        "load_average": {"before": load_before, "after": load_after},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "steps": summary["steps"], "models": models, "recommended": rec}, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
