"""Plot the engines' silver + gold cost against rows from bench_medallion results (one or more JSON files).

Seconds are silver's plus gold's (two processes); memory is the larger of their two peaks. Bronze
(Polars whatever the engine) is drawn dashed for scale.

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
    stages: dict[tuple[str, int], dict[str, tuple[float, float]]] = {}
    for path in args.results:
        for run in json.loads(path.read_text())["runs"]:
            if run["case"].startswith("synthetic"):
                key = ("bronze (polars)" if run["stage"] == "bronze" else run["engine"], run["rows"])
                stages.setdefault(key, {})[run["stage"]] = (run["seconds"], run["peak_tree_mib"] / 1024)
    points: dict[str, dict[int, tuple[float, float]]] = {}
    for (engine, rows), found in stages.items():
        if "bronze" in found:
            points.setdefault(engine, {})[rows] = found["bronze"]
        elif {"silver", "gold"} <= set(found):
            points.setdefault(engine, {})[rows] = (found["silver"][0] + found["gold"][0],
                                                   max(found["silver"][1], found["gold"][1]))
    fig, (ax_s, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    for engine, by_rows in sorted(points.items()):
        rows = sorted(by_rows)
        style = {"linestyle": "--", "color": "grey"} if engine.startswith("bronze") else {}
        ax_s.plot(rows, [by_rows[r][0] for r in rows], marker="o", label=engine, **style)
        ax_m.plot(rows, [by_rows[r][1] for r in rows], marker="o", label=engine, **style)
    for ax, title in ((ax_s, "silver + gold: wall seconds"), (ax_m, "peak memory of the process tree (GiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("synthetic encounters (rows)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("readmit silver + gold on Polars, DuckDB and Spark (local[2]) - 2 shared cores")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
