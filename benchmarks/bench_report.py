"""``readmit report`` on an existing datamart and registry (e.g. after ``readmit run`` on full UCI).

    python benchmarks/bench_report.py --datamart ./datamart --registry ./model_registry [--repeats 3]

Runs ``readmit report --json`` in a fresh process ``--repeats`` times and prints, per run, the
wall time of the process (interpreter start and imports included), the report step's own time
(``seconds`` in its output), the page's size, and the ratio of the step time to a fixed reference
workload measured in the same run (scoring ROC-AUC of 1,000,000 random scores five times in a
fresh process), so runs on noisy or different machines compare. Writes ``benchmarks/results/report.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measure  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REFERENCE = (
    "import time, numpy as np; from sklearn.metrics import roc_auc_score; "
    "rng = np.random.default_rng(0); p = rng.random(1_000_000); y = (rng.random(p.size) < p).astype(int); "
    "t = time.perf_counter(); [roc_auc_score(y, p) for _ in range(5)]; print(time.perf_counter() - t)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datamart", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--config", default=str(REPO / "conf" / "model_config.json"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "report.json")
    args = parser.parse_args()

    runs = []
    for _ in range(args.repeats):
        ref = measure([sys.executable, "-c", REFERENCE])
        reference_seconds = float(ref["stdout"].strip())
        run = measure(["readmit", "report", "--json", "--config", args.config, "--datamart", args.datamart,
                       "--registry", args.registry])
        result = json.loads(run["stdout"])
        runs.append({
            "process_seconds": run["seconds"],
            "report_seconds": result["seconds"],
            "mb": round(result["bytes"] / 1e6, 2),
            "peak_rss_mib": run["peak_rss_mib"],
            "reference_seconds": round(reference_seconds, 3),
            "ratio_to_reference": round(result["seconds"] / reference_seconds, 2),
            "sections_shown": sum(s == "shown" for s in result["sections"].values()),
        })
    print(f"{'run':>3} {'process s':>10} {'report s':>9} {'MB':>6} {'peak MiB':>9} {'ref s':>6} {'ratio':>6} {'shown':>6}")
    for i, r in enumerate(runs, 1):
        print(f"{i:>3} {r['process_seconds']:>10.2f} {r['report_seconds']:>9.2f} {r['mb']:>6.2f} "
              f"{r['peak_rss_mib']:>9.1f} {r['reference_seconds']:>6.2f} {r['ratio_to_reference']:>6.2f} "
              f"{r['sections_shown']:>6}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                                    "runs": runs}, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
