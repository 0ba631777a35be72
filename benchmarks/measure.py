"""Run one command as a child process and report its wall time and peak memory (RSS).

``peak_rss_mib`` is the largest single process (the kernel's ``ru_maxrss``); ``cpu_seconds`` the
user + system CPU time of the command and the processes it waited for (less sensitive to other
load on the machine than the wall time, though not immune: shared caches, spinning threads);
``peak_tree_mib`` is the peak of the RSS summed over the whole process tree (the command and
every process it starts, a Spark JVM included), sampled every 50 ms.

Used by the benchmarks so every number comes from a fresh process:
``python benchmarks/measure.py -- readmit medallion ...`` prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time

import psutil


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Wall seconds and peak RSS (MiB) of ``cmd``; the command's stdout is returned too."""
    wrapper = [sys.executable, __file__, "--", *cmd]
    out = subprocess.run(wrapper, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:  # ended between the listing and the reading
            pass
    return total


def _main(cmd: list[str]) -> int:
    started = time.perf_counter()
    peak_tree = 0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        proc = psutil.Process(child.pid)
        while child.poll() is None:
            try:
                peak_tree = max(peak_tree, _tree_rss(proc))
            except psutil.Error:
                pass
            time.sleep(0.05)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        child = subprocess.CompletedProcess(cmd, child.returncode, out.read(), err.read())
    if child.returncode != 0:
        sys.stderr.write(child.stdout[-4000:] + child.stderr[-4000:])
        return child.returncode
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib = usage.ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": round(wall, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
                      "peak_rss_mib": round(peak_kib / 1024, 1),
                      "peak_tree_mib": round(max(peak_tree / 2**20, peak_kib / 1024), 1),
                      "stdout": child.stdout}))
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    sys.exit(_main(args))
