"""``readmit serve`` speed on the full UCI data: latency at fixed rates, the rate it holds, start to ready.

    python benchmarks/bench_serve.py                       # 10 s per rate
    python benchmarks/bench_serve.py --seconds 600 --rates 100   # the 10-minute run

Setup (not timed): the medallion on the full UCI file, XGBoost trained at a small budget
(n_iter 1, cv 2; reasons from its contributions) and made champion. Then ``readmit serve`` is
started as its own process (the real command, one worker, loopback) and measured from outside:

- ``ready_s``: from starting the process to the first 200 of ``/v1/health/ready`` (the history
  store already built);
- per rate (open loop: requests sent on a fixed schedule, one encounter each, 2008
  encounters in turn, 16 client threads): latency p50/p95/p99 and errors;
- ``max_rps``: closed loop, 4 clients back to back for the same time: answers a second;
- a 1,000-encounter request;
- the server's memory (RSS) at ready and after the runs;
- the in-process floor: the same scoring (:func:`readmit.serving.online.score_records`, one
  encounter) without HTTP, so the HTTP overhead reads as a ratio.

Writes ``benchmarks/results/serve[_LABEL].json`` with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_UCI = REPO.parent / "shared" / "data" / "dataset_diabetes.zip"
TOKEN = "bench-token-0123456789abcdef"


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"n": len(ordered), "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99)}


def setup(root: Path, raw: Path):
    from readmit import pipeline
    from readmit.config import load_settings
    from readmit.registry import Registry
    from readmit.registry.aliases import set_alias

    config = root / "config.json"
    config.write_text(json.dumps({"training_config": {
        "algorithms": ["xgboost"], "hyperparameter_tuning": {"n_iter": 1, "cv_folds": 2, "n_jobs": 1}}}))
    settings = load_settings(str(config), raw=str(raw), datamart=str(root / "datamart"), registry=str(root / "registry"))
    pipeline.run_medallion(settings)
    [saved] = pipeline.train(settings)
    set_alias(Registry(settings.registry_uri), "champion", "xgboost", saved["version"], reason="bench", by="bench")
    pipeline.build_history_store(settings)
    return settings


def records_2008(settings) -> list[dict]:
    import polars as pl

    from readmit.data.layers import BRONZE_TABLE
    from readmit.data.schema import RAW_SCHEMA
    from readmit.storage import Storage

    storage = Storage(settings.datamart_uri)
    months = [m for m in storage.list_partitions(BRONZE_TABLE) if m.startswith("2008-")]
    frame = pl.concat([storage.read_partition(BRONZE_TABLE, m).select(*RAW_SCHEMA, "snapshot_date") for m in months])
    return frame.sort("snapshot_date", "encounter_id").with_columns(pl.col("snapshot_date").cast(pl.String)).to_dicts()


def floor(settings, records: list[dict], n: int = 300) -> dict[str, float]:
    from readmit.registry import Registry
    from readmit.serving.history import open_store
    from readmit.serving.online import score_records
    from readmit.serving.predict import resolve_models

    models, _ = resolve_models(settings, Registry.for_settings(settings), None, None)
    store = open_store(settings)
    score_records(records[:1], store, models, settings)  # warm
    times = []
    for record in records[:n]:
        started = time.perf_counter()
        score_records([record], store, models, settings)
        times.append(time.perf_counter() - started)
    return percentiles(times)


def rss_mb(pid: int) -> float:
    import psutil

    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


def open_loop(url: str, records: list[dict], rate: float, seconds: float) -> dict:
    import httpx

    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    latencies, errors, lock = [], [0], threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            for i in counter:
                due = start + i / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                try:
                    ok = client.post("/v1/score", json=records[i % len(records)]).status_code == 200
                except httpx.HTTPError:
                    ok = False
                done = time.perf_counter() - due  # from when it was due: queueing counts
                with lock:
                    latencies.append(done)
                    errors[0] += not ok

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {"rate": rate, "seconds": seconds, "achieved_rps": total / elapsed, "errors": errors[0],
            **percentiles(latencies)}


def closed_loop(url: str, records: list[dict], seconds: float, clients: int = 4) -> dict:
    import httpx

    stop = time.perf_counter() + seconds
    counts = [0] * clients

    def worker(k: int) -> None:
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            i = k
            while time.perf_counter() < stop:
                if client.post("/v1/score", json=records[i % len(records)]).status_code == 200:
                    counts[k] += 1
                i += clients

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"clients": clients, "seconds": seconds, "answers_per_s": sum(counts) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=DEFAULT_UCI)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rates", type=float, nargs="+", default=[50, 100, 200])
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    import httpx

    load_before = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory() as tmp:
        settings = setup(Path(tmp), args.raw)
        records = records_2008(settings)
        result = {"load_before": load_before, "cores": os.cpu_count(), "floor_in_process": floor(settings, records)}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "READMIT_API_TOKENS": f"bench={TOKEN}", "PYTHONPATH": os.pathsep.join(sys.path)}
        command = [sys.executable, "-c", "from readmit.cli import main; main()", "serve", "--port", str(port),
                   "--config", settings.config_uri, "--datamart", settings.datamart_uri,
                   "--registry", settings.registry_uri]
        started = time.perf_counter()
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    if httpx.get(f"{url}/v1/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None:
                    raise SystemExit("readmit serve exited before it was ready")
                time.sleep(0.02)
            result["ready_s"] = time.perf_counter() - started
            result["rss_mb_ready"] = rss_mb(server.pid)
            with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                for record in records[:50]:  # warm
                    client.post("/v1/score", json=record)
                result["rates"] = [open_loop(url, records, rate, args.seconds) for rate in args.rates]
                result["max"] = closed_loop(url, records, args.seconds)
                bulk = []
                for k in range(3):
                    part = records[1000 * k:1000 * (k + 1)]
                    t0 = time.perf_counter()
                    assert client.post("/v1/score", json={"encounters": part}).status_code == 200
                    bulk.append(time.perf_counter() - t0)
                result["request_1000_s"] = statistics.median(bulk)
            result["rss_mb_after"] = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
    floor_p50 = result["floor_in_process"]["p50_ms"]
    for entry in result["rates"]:
        entry["p50_over_floor"] = entry["p50_ms"] / floor_p50
    result["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    out = REPO / "benchmarks" / "results" / f"serve{'_' + args.label if args.label else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
