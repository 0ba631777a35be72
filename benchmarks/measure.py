"""Run one command as a child process and report its wall time and peak memory (RSS).

Used by the benchmarks so every number comes from a fresh process:
``python benchmarks/measure.py -- readmit medallion ...`` prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Wall seconds and peak RSS (MiB) of ``cmd``; the command's stdout is returned too."""
    wrapper = [sys.executable, __file__, "--", *cmd]
    out = subprocess.run(wrapper, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _main(cmd: list[str]) -> int:
    started = time.perf_counter()
    child = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        sys.stderr.write(child.stdout[-4000:] + child.stderr[-4000:])
        return child.returncode
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": round(wall, 2), "peak_rss_mib": round(peak_kib / 1024, 1),
                      "stdout": child.stdout}))
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    sys.exit(_main(args))
