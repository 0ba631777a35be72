"""README's two installs, as a new user runs them: plain pip, a fresh venv, an empty cache.

    python benchmarks/bench_install.py [--only main|test] [--python python3]

For each install, creates a venv in a temporary folder, runs the README command with the venv's
own pip (no pip configuration file, no find-links, a new empty cache, so every wheel comes from
the package index), and records the wall time, the CPU seconds pip and its children used (the
part that does not depend on what else the machine is doing), the load average, the number of
installed packages and the venv's size; checks that the main install brought neither Airflow nor
CUDA libraries. Prints a table and writes ``benchmarks/results/install.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INSTALLS = {  # README.md, "The two commands"
    "main": ["-e", "."],
    "test": ["-e", ".[dev,s3,airflow]", "-c", "constraints.txt"],
}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def measure(name: str, python: str, tmp: Path) -> dict:
    venv = tmp / f"venv-{name}"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_CACHE_DIR=str(tmp / f"cache-{name}"),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    pip_version = subprocess.run([*pip, "--version"], capture_output=True, text=True, env=env).stdout.split()[1]
    load_before = os.getloadavg()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([*pip, "install", "--progress-bar", "off", *INSTALLS[name]], cwd=REPO, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{name} install failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    packages = json.loads(subprocess.run([*pip, "list", "--format", "json"], capture_output=True,
                                         text=True, env=env, check=True).stdout)
    names = sorted(p["name"].lower() for p in packages)
    return {
        "install": name,
        "command": "pip install " + " ".join(INSTALLS[name]),
        "pip": pip_version,
        "wall_s": round(wall, 1),
        "cpu_s": round((cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime), 1),
        "load_before": [round(x, 1) for x in load_before],
        "load_after": [round(x, 1) for x in os.getloadavg()],
        "packages": len(names),
        "venv_mib": round(folder_bytes(venv) / 2**20),
        "backtracked": "looking at multiple versions" in done.stdout + done.stderr,
        "cuda_packages": [n for n in names if n.startswith("nvidia-")],
        "airflow_installed": any(n.startswith("apache-airflow") for n in names),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(INSTALLS))
    parser.add_argument("--python", default="python3", help="the interpreter a new user has (default python3)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "install.json")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="readmit-bench-install-") as tmp:
        for name in [args.only] if args.only else list(INSTALLS):
            rows.append(measure(name, args.python, Path(tmp)))
    main_row = next((r for r in rows if r["install"] == "main"), None)
    if main_row and (main_row["cuda_packages"] or main_row["airflow_installed"]):
        print(f"WARNING: the main install brought {main_row['cuda_packages'] or 'Airflow'}")

    print(f"{'install':<8} {'wall s':>7} {'cpu s':>6} {'load':>15} {'pkgs':>5} {'MiB':>6}  command")
    for r in rows:
        load = "/".join(f"{x:.0f}" for x in r["load_before"])
        print(f"{r['install']:<8} {r['wall_s']:>7.1f} {r['cpu_s']:>6.1f} {load:>15} {r['packages']:>5} "
              f"{r['venv_mib']:>6}  {r['command']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "python": platform.python_version(), "cores": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "installs": rows,
    }, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
