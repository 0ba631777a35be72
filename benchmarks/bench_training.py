"""Benchmark training: wall time, peak memory and ROC-AUC per algorithm, with the reference budget.

Usage::

    python benchmarks/bench_training.py DATAMART [--config conf/model_config.json]
        [--algorithms xgboost,random_forest] [--registry DIR] [--out benchmarks/results/training.json]
        [--raw path/to/dataset_diabetes.zip]   # build gold into DATAMART first (timed too)

Trains every configured algorithm one after another (as ``readmit train`` does), then runs the
comparison, and prints a table; the same numbers go to ``--out`` as JSON. Peak memory is the
largest sum of resident memory of this process and all its children (the search's worker
processes), sampled every 0.1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil


class PeakRSS:
    """Sample RSS of this process + children in a thread; ``mark()`` starts a new segment."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.overall = 0
        self.segment = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            value = self._sample()
            self.overall = max(self.overall, value)
            self.segment = max(self.segment, value)
            self._stop.wait(self.interval)

    def mark(self) -> int:
        """The segment's peak so far; start a new segment."""
        peak, self.segment = self.segment, self._sample()
        return peak

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _mb(n: int) -> float:
    return round(n / 2**20, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datamart", help="datamart with gold/feature_store and gold/label_store (folder or s3://)")
    parser.add_argument("--config", default=None, help="config file (default: conf/model_config.json or built-in)")
    parser.add_argument("--algorithms", default=None, help="comma-separated (default: configured)")
    parser.add_argument("--registry", default=None, help="registry root (default: a temporary folder)")
    parser.add_argument("--raw", default=None, help="raw UCI zip/CSV: build bronze/silver/gold into DATAMART first")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "training.json"), help="JSON output path")
    args = parser.parse_args(argv)

    from readmit.config import load_settings
    from readmit.pipeline import train_algorithm
    from readmit.runtime import available_cpus
    from readmit.training.compare import compare_models
    from readmit.training.split import load_gold

    registry = args.registry or tempfile.mkdtemp(prefix="bench_registry_")
    settings = load_settings(args.config, datamart=args.datamart, registry=registry, raw=args.raw)
    algorithms = args.algorithms.split(",") if args.algorithms else list(settings.config.training_config.algorithms)
    tuning = settings.config.training_config.hyperparameter_tuning
    report: dict[str, Any] = {
        "datamart": args.datamart,
        "config": settings.config_uri,
        "budget": {"n_iter": tuning.n_iter, "cv_folds": tuning.cv_folds, "cv_strategy": tuning.cv_strategy,
                   "n_jobs": tuning.n_jobs},
        "cpus": available_cpus(),
        "algorithms": {},
    }
    started = time.perf_counter()
    with PeakRSS() as rss:
        if args.raw:
            from readmit.data.medallion import run_medallion

            t0 = time.perf_counter()
            run_medallion(settings)
            report["medallion_seconds"] = round(time.perf_counter() - t0, 2)
            report["medallion_peak_rss_mb"] = _mb(rss.mark())
            print(f"medallion: {report['medallion_seconds']}s", file=sys.stderr)
        t0 = time.perf_counter()
        data = load_gold(settings)
        report["load_gold_seconds"] = round(time.perf_counter() - t0, 2)
        rss.mark()
        for algorithm in algorithms:
            t0 = time.perf_counter()
            meta = train_algorithm(settings, algorithm, data=data,
                                   progress=lambda m: print(f"[{time.perf_counter() - started:6.1f}s] {m}",
                                                            file=sys.stderr))
            perf = meta["performance"]
            report["algorithms"][algorithm] = {
                "wall_seconds": round(time.perf_counter() - t0, 2),
                "search_seconds": meta["search_seconds"],
                "final_fit_seconds": meta["final_fit_seconds"],
                "evaluation_seconds": meta["evaluation_seconds"],
                "peak_rss_mb": _mb(rss.mark()),
                "cv_auc_roc": round(meta["cv"]["best_mean_score"], 4),
                "test_auc_roc": round(perf["test"]["auc_roc"], 4),
                "oot_auc_roc": round(perf["oot"]["auc_roc"], 4),
                "best_params": meta["best_params"],
                "version": meta["version"],
            }
        t0 = time.perf_counter()
        comparison = compare_models(settings)
        report["compare_seconds"] = round(time.perf_counter() - t0, 2)
    report["total_seconds"] = round(time.perf_counter() - started, 2)
    report["peak_rss_mb"] = _mb(rss.overall)
    report["recommended"] = comparison["recommended"]
    report["registry"] = registry

    print(f"\n{'algorithm':22s} {'wall s':>8s} {'search s':>9s} {'peak MB':>8s} {'CV AUC':>7s} "
          f"{'test AUC':>9s} {'oot AUC':>8s}")
    for name, r in report["algorithms"].items():
        print(f"{name:22s} {r['wall_seconds']:8.1f} {r['search_seconds']:9.1f} {r['peak_rss_mb']:8.0f} "
              f"{r['cv_auc_roc']:7.4f} {r['test_auc_roc']:9.4f} {r['oot_auc_roc']:8.4f}")
    extra = f" (medallion {report['medallion_seconds']}s)" if "medallion_seconds" in report else ""
    print(f"\ntotal {report['total_seconds']}s{extra}; peak RSS (process + workers) {report['peak_rss_mb']} MB; "
          f"{report['cpus']} cpus; budget {tuning.n_iter} candidates x {tuning.cv_folds} folds")
    rec = report["recommended"]
    print(f"recommended: {rec['algorithm']} (oot ROC-AUC {rec['oot_auc_roc']:.4f})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print(f"written to {os.path.abspath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
