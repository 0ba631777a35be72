"""``readmit serve`` speed on the full UCI data: latency at fixed rates, the rate it holds, start to ready.

    python benchmarks/bench_serve.py                       # 10 s per rate
    python benchmarks/bench_serve.py --workdir /tmp/bench-serve --seconds 5 --soak 600   # + the 10-minute run

Setup (not timed): the medallion on the full UCI file, XGBoost trained at a small budget
(n_iter 1, cv 2; reasons from its contributions) and made champion. Then ``readmit serve`` is
started as its own process (the real command, one worker, loopback) and measured from outside:

- ``ready_s``: from starting the process to the first 200 of ``/v1/health/ready`` (the history
  store already built);
- ``harness_live_closed_loop``: the load generator's own floor, the same client on
  ``/v1/health/live`` (an endpoint that does nothing), 16 requests always in flight;
- per rate (open loop: requests sent on a fixed schedule whatever the answers, one encounter
  each, 2008 encounters in turn, from one asyncio client that opens a connection whenever
  every open one waits): latency p50/p95/p99 counted from when a request was due, errors, the
  client's and the server's CPU per request;
- ``max``: closed loop, 64 requests always in flight, for the same time: answers a second;
- a 1,000-encounter request;
- the server's memory (RSS) at ready and after the runs;
- ``--soak 600``: the 10-minute run at ``--soak-rate`` (100) requests/s, per minute its
  errors, p99 and the server's RSS;
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
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_UCI = Path(os.environ.get("READMIT_TEST_DATA_DIR", REPO.parent / "shared" / "data")) / "dataset_diabetes.zip"
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


class _Client:
    """A light HTTP/1.1 client on asyncio streams (keep-alive, one request per connection at a
    time, a new connection when none is idle): the load generator's own cost per request stays
    small beside the server's, so the server, not the harness, is what is measured."""

    def __init__(self, url: str):
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port, self.idle = host, int(port), []

    def request(self, method: str, path: str, body: bytes = b"") -> bytes:
        return (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    async def send(self, raw: bytes) -> int:
        """The status of one request (``raw`` from :meth:`request`); 0 when the connection failed.

        A kept-alive connection the server closed while it sat idle (uvicorn's keep-alive
        timeout) is noticed by an empty answer before any byte: the request is sent once more on
        a new connection, as an HTTP client library does; any other failure is an error."""
        import asyncio

        reused = bool(self.idle)
        reader, writer = self.idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(raw)
            first = await reader.readline()
        except OSError:
            first = b""
        if not first:
            writer.close()
            return await self.send(raw) if reused else 0
        try:
            status = int(first.split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            writer.close()
            return 0
        self.idle.append((reader, writer))
        return status

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


def _bodies(client: _Client, records: list[dict], path: str = "/v1/score") -> list[bytes]:
    return [client.request("POST", path, json.dumps(r).encode()) for r in records]


def open_loop(url: str, records: list[dict], rate: float, seconds: float) -> dict:
    """Requests sent on a fixed schedule whatever the answers (a new connection when every
    open one waits), latency counted from when each was due; the client's CPU per request beside."""
    import asyncio

    client = _Client(url)
    raws = _bodies(client, records)
    total = int(rate * seconds)
    latencies, statuses = [], []

    async def one(i: int, due: float) -> None:
        status = await client.send(raws[i % len(raws)])
        latencies.append(time.perf_counter() - due)
        statuses.append(status)

    async def run() -> float:
        start = time.perf_counter() + 0.1
        tasks = []
        for i in range(total):
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        client.close()
        return time.perf_counter() - start

    cpu = time.process_time()
    elapsed = asyncio.run(run())
    cpu = time.process_time() - cpu
    answered = sum(s == 200 for s in statuses)
    failed = {str(s): statuses.count(s) for s in sorted(set(statuses)) if s != 200}  # 0: no HTTP answer
    return {"rate": rate, "seconds": seconds, "answered_per_s": answered / elapsed, "errors": total - answered,
            "error_statuses": failed,
            "client_cpu_ms_per_request": 1000 * cpu / total, **percentiles(latencies)}


def closed_loop(url: str, records: list[dict], seconds: float, clients: int = 64,
                path: str = "/v1/score") -> dict:
    """``clients`` requests always in flight, each sent when the last answer came: answers a second."""
    import asyncio

    client = _Client(url)
    raws = _bodies(client, records, path) if path != "/v1/health/live" else [client.request("GET", path)]
    counts = [0] * clients

    async def worker(k: int, stop: float) -> None:
        i = k
        while time.perf_counter() < stop:
            counts[k] += await client.send(raws[i % len(raws)]) == 200
            i += clients

    async def run() -> None:
        stop = time.perf_counter() + seconds
        await asyncio.gather(*(worker(k, stop) for k in range(clients)))
        client.close()

    cpu = time.process_time()
    asyncio.run(run())
    cpu = time.process_time() - cpu
    return {"path": path, "clients": clients, "seconds": seconds, "answers_per_s": sum(counts) / seconds,
            "client_cpu_ms_per_request": 1000 * cpu / max(1, sum(counts))}


def soak(url: str, records: list[dict], rate: float, seconds: float, pid: int, chunk: float = 60) -> dict:
    """The long run: the open loop at ``rate`` in chunks of ``chunk`` s, each chunk's errors,
    p99 and the server's RSS after it (flat memory reads as a flat ``rss_mb`` column)."""
    chunks = []
    done = 0.0
    while done < seconds - 1e-9:
        part = min(chunk, seconds - done)
        entry = open_loop(url, records, rate, part)
        chunks.append({"at_s": done + part, "errors": entry["errors"], "error_statuses": entry["error_statuses"],
                       "answered_per_s": entry["answered_per_s"],
                       "p50_ms": entry["p50_ms"], "p99_ms": entry["p99_ms"], "rss_mb": rss_mb(pid)})
        done += part
    return {"rate": rate, "seconds": seconds, "errors": sum(c["errors"] for c in chunks),
            "p99_ms_worst_chunk": max(c["p99_ms"] for c in chunks), "chunks": chunks}


def cpu_s(pid: int) -> float:
    import psutil

    process = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])


def prepared(workdir: Path | None, tmp: str, raw: Path):
    """The settings of a set-up datamart and registry: ``workdir`` reused when it was set up
    before (the setup is not what is measured), else a new one there or under ``tmp``."""
    from readmit.config import load_settings

    root = workdir or Path(tmp)
    marker = root / "bench-serve-setup.done"
    if workdir is not None and marker.exists():
        return load_settings(str(root / "config.json"), raw=str(raw), datamart=str(root / "datamart"),
                             registry=str(root / "registry"))
    root.mkdir(parents=True, exist_ok=True)
    settings = setup(root, raw)
    marker.write_text("set up by bench_serve.py\n")
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=DEFAULT_UCI)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rates", type=float, nargs="+", default=[50, 100, 200, 400])
    parser.add_argument("--workers", type=int, default=1, help="readmit serve --workers")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="set up the datamart and registry here once and reuse them on later runs")
    parser.add_argument("--soak", type=float, default=0, metavar="SECONDS",
                        help="also the long run: --soak-rate requests/s for SECONDS (600: the 10-minute run)")
    parser.add_argument("--soak-rate", type=float, default=100)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    import httpx

    load_before = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory() as tmp:
        settings = prepared(args.workdir, tmp, args.raw)
        records = records_2008(settings)
        result = {"load_before": load_before, "cores": os.cpu_count(), "workers": args.workers,
                  "floor_in_process": floor(settings, records)}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "READMIT_API_TOKENS": f"bench={TOKEN}", "PYTHONPATH": os.pathsep.join(sys.path)}
        command = [sys.executable, "-c", "from readmit.cli import main; main()", "serve", "--port", str(port),
                   "--config", settings.config_uri, "--datamart", settings.datamart_uri,
                   "--registry", settings.registry_uri, "--workers", str(args.workers)]
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
            # the harness's own floor: the same client on an endpoint that does nothing
            result["harness_live_closed_loop"] = closed_loop(url, records, min(args.seconds, 5), clients=16,
                                                             path="/v1/health/live")
            with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                for record in records[:50]:  # warm
                    client.post("/v1/score", json=record)
                result["rates"] = []
                for rate in args.rates:
                    cpu = cpu_s(server.pid)
                    entry = open_loop(url, records, rate, args.seconds)
                    entry["server_cpu_ms_per_request"] = 1000 * (cpu_s(server.pid) - cpu) / entry["n"]
                    result["rates"].append(entry)
                result["max"] = closed_loop(url, records, args.seconds)
                bulk = []
                for k in range(3):
                    part = records[1000 * k:1000 * (k + 1)]
                    t0 = time.perf_counter()
                    assert client.post("/v1/score", json={"encounters": part}).status_code == 200
                    bulk.append(time.perf_counter() - t0)
                result["request_1000_s"] = statistics.median(bulk)
            result["rss_mb_after"] = rss_mb(server.pid)
            if args.soak:
                result["soak"] = soak(url, records, args.soak_rate, args.soak, server.pid)
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
