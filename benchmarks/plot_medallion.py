"""Plot the engines' gold cost against rows from bench_medallion results (one or more JSON files).

    python benchmarks/plot_medallion.py benchmarks/results/medallion*.json --out docs/medallion_engines.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "medallion_engines.png")
    args = parser.parse_args()
    points: dict[str, dict[int, tuple[float, float]]] = {}
    for path in args.results:
        for run in json.loads(path.read_text())["runs"]:
            if run["stage"] == "gold":  # the synthetic cases: gold alone, on each engine
                points.setdefault(run["engine"], {})[run["rows"]] = (run["seconds"], run["peak_tree_mib"] / 1024)
    fig, (ax_s, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    for engine, by_rows in sorted(points.items()):
        rows = sorted(by_rows)
        ax_s.plot(rows, [by_rows[r][0] for r in rows], marker="o", label=engine)
        ax_m.plot(rows, [by_rows[r][1] for r in rows], marker="o", label=engine)
    for ax, title in ((ax_s, "gold: wall seconds"), (ax_m, "gold: peak memory of the process tree (GiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("synthetic encounters (rows)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("readmit gold on Polars, DuckDB and Spark (local[2]) - 2 shared cores")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
