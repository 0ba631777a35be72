"""``readmit serve`` speed on the full UCI data: latency at fixed rates, the rate it holds, start to ready.

    python benchmarks/bench_serve.py                       # 10 s per rate
    python benchmarks/bench_serve.py --workdir /tmp/bench-serve --seconds 5 --soak 600   # + the 10-minute run
    python benchmarks/bench_serve.py --mode hooks               # CDS Hooks encounter-discharge, 10 and 50 calls/s

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

``--mode hooks`` (``--workdir DIR`` keeps the setup for reruns): the CDS Hooks 2.0 ``encounter-discharge`` call instead of ``/v1/score``. The
EHR's keys are made here (a P-384 and an RSA-2048 key; its JWK Set given to the service as a
``jwks_file``), every call carries its own signed JWT (ES384 and RS384 in turn, its own jti,
minted before the run so signing is not timed) and a full prefetch (Patient, Encounter,
Conditions, MedicationRequests, Observations, the patient's earlier Encounters) built from a
2008 UCI row by the test-only bundle generator (tests/service/fhir_bundles.py, imported from
tests/: it stays out of the package). Measured: 100 calls one at a time (the service time of
a call, no queueing), then latency p50/p95/p99 at each rate (default 10 and 50 calls/s, open
loop as above), every answer checked to be a card with a risk; the in-process floor is the
FHIR mapping plus the scoring of the same bodies without HTTP (map_prefetch and the
intended-use check, then score_records with the prefetch's earlier stays), so overhead (HTTP, JWT check, body parsing,
audit) reads as a ratio.

Writes ``benchmarks/results/serve[_hooks][_LABEL].json`` with the load average before and after.
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

    def request(self, method: str, path: str, body: bytes = b"", token: str = TOKEN) -> bytes:
        return (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
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


def open_loop(url: str, records: list[dict], rate: float, seconds: float, raws=None) -> dict:
    """Requests sent on a fixed schedule whatever the answers (a new connection when every
    open one waits), latency counted from when each was due; the client's CPU per request beside.
    ``raws(client)``: the requests to send, made by ``client.request`` (default: POST /v1/score
    with each record)."""
    import asyncio

    client = _Client(url)
    raws = raws(client) if raws is not None else _bodies(client, records)
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
    parser.add_argument("--mode", choices=["score", "hooks"], default="score")
    args = parser.parse_args()
    if args.mode == "hooks":
        hooks_main(args)
        return
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


# -- CDS Hooks ------------------------------------------------------------------------------------
SERVICE = "/cds-services/encounter-discharge"


def _diabetic(record: dict) -> bool:
    codes = [record.get(c) or "" for c in ("diag_1", "diag_2", "diag_3")]
    return record["discharge_disposition_id"] not in (11, 13, 14, 19, 20, 21) and any(
        c.startswith("250") for c in codes)


def hook_bodies(settings, n: int) -> list[dict]:
    """``n`` encounter-discharge bodies of 2008 encounters in the intended use, each with its full
    prefetch (its patient's earlier stays of the whole file among the Encounters)."""
    import uuid

    import polars as pl

    from readmit.data.layers import BRONZE_TABLE
    from readmit.data.schema import RAW_SCHEMA
    from readmit.storage import Storage

    sys.path.insert(0, str(REPO / "tests"))
    from service.fhir_bundles import prefetch_for  # test-only: the inverse of readmit's mapping

    storage = Storage(settings.datamart_uri)
    frame = storage.read_table(BRONZE_TABLE).select(*RAW_SCHEMA, "snapshot_date")
    frame = frame.sort("snapshot_date", "encounter_id").with_columns(pl.col("snapshot_date").cast(pl.String))
    everything = frame.to_dicts()
    by_patient: dict[int, list[dict]] = {}
    for r in everything:
        by_patient.setdefault(r["patient_nbr"], []).append(r)
    chosen = [r for r in everything if r["snapshot_date"].startswith("2008-") and _diabetic(r)][:n]
    bodies = []
    for r in chosen:
        key = (r["snapshot_date"], r["encounter_id"])
        earlier = [e for e in by_patient[r["patient_nbr"]] if (e["snapshot_date"], e["encounter_id"]) < key]
        prefetch = prefetch_for(r, earlier)
        bodies.append({"hook": "encounter-discharge", "hookInstance": str(uuid.uuid4()),
                       "context": {"userId": "Practitioner/1", "patientId": prefetch["patient"]["id"],
                                   "encounterId": prefetch["encounter"]["id"]}, "prefetch": prefetch})
    return bodies


def hook_floor(settings, bodies: list[dict], n: int = 300) -> dict[str, float]:
    """The FHIR mapping (with the intended-use check) plus the scoring of one body, in process
    (no HTTP, no JWT, no body parsing, no audit)."""
    from datetime import UTC, datetime

    from readmit.registry import Registry
    from readmit.service.cds_hooks.routes import EarlierStays, intended_use
    from readmit.service.fhir import map_prefetch
    from readmit.serving.history import open_store
    from readmit.serving.online import score_records
    from readmit.serving.predict import resolve_models

    models, _ = resolve_models(settings, Registry.for_settings(settings), None, None)
    store = open_store(settings)

    def one(body: dict) -> dict:
        now = datetime.now(UTC)
        context = body["context"]
        mapped = map_prefetch(body["prefetch"], context["patientId"], context["encounterId"], discharged_at=now)
        [row] = score_records([mapped.record], EarlierStays(mapped.earlier, store), models, settings, now)
        return row

    one(bodies[0])  # warm
    times, mapping, scoring, scored = [], [], [], 0
    for body in bodies[:n]:
        now = datetime.now(UTC)
        context = body["context"]
        started = time.perf_counter()
        mapped = map_prefetch(body["prefetch"], context["patientId"], context["encounterId"], discharged_at=now)
        assert intended_use(mapped.record) is None, "a benchmark body outside the intended use"
        between = time.perf_counter()
        [row] = score_records([mapped.record], EarlierStays(mapped.earlier, store), models, settings, now)
        done = time.perf_counter()
        scored += bool(row["scored"])
        times.append(done - started)
        mapping.append(between - started)
        scoring.append(done - between)
    return {**percentiles(times), "scored": scored, "mapping": percentiles(mapping), "scoring": percentiles(scoring)}


def hooks_main(args) -> None:
    import httpx

    sys.path.insert(0, str(REPO / "tests"))
    from service.ehr_keys import Ehr  # test-only: an EHR's keys, made here

    rates = args.rates if args.rates != [50, 100, 200, 400] else [10, 50]
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = prepared(args.workdir, tmp, args.raw)
        bodies = hook_bodies(settings, 1000)
        sizes = sorted(len(json.dumps(b)) for b in bodies)
        result = {"mode": "hooks", "load_before": load_before, "cores": os.cpu_count(),
                  "bodies": len(bodies), "body_bytes_p50": sizes[len(sizes) // 2], "body_bytes_max": sizes[-1],
                  "floor_in_process": hook_floor(settings, bodies)}
        ehr = Ehr()
        (root / "jwks.json").write_text(json.dumps(ehr.jwks()))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config = json.loads(Path(settings.config_uri).read_text())
        config["serve_config"] = {"max_body_bytes": 2_000_000, "cds_hooks": {
            "enabled": True, "base_url": url, "issuers": [{"iss": ehr.iss, "jwks_file": str(root / "jwks.json")}],
            "follow_up_bands": ["high", "very_high"]}}
        hooks_config = root / "config_hooks.json"
        hooks_config.write_text(json.dumps(config))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        command = [sys.executable, "-c", "from readmit.cli import main; main()", "serve", "--port", str(port),
                   "--config", str(hooks_config), "--datamart", settings.datamart_uri,
                   "--registry", settings.registry_uri]
        aud = url + SERVICE
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

            def tokens(count: int) -> list[str]:  # ES384 and RS384 in turn, each its own jti
                return [ehr.token(aud, kid="ec-1" if i % 2 == 0 else "rsa-1") for i in range(count)]

            def card_with_risk(answer) -> bool:
                if answer.status_code != 200:
                    return False
                [card] = answer.json()["cards"]
                return "org.readmit.prediction" in card.get("extension", {})

            with httpx.Client(base_url=url, timeout=60) as client:
                for i, token in enumerate(tokens(50)):  # warm
                    assert card_with_risk(client.post(SERVICE, json=bodies[i], headers={
                        "Authorization": f"Bearer {token}"})), "a warm-up hook call got no card with a risk"
                # one call at a time (no queueing): the service time of a call, against the floor
                sequential = []
                for i, token in enumerate(tokens(100)):
                    started = time.perf_counter()
                    assert card_with_risk(client.post(SERVICE, json=bodies[50 + i], headers={
                        "Authorization": f"Bearer {token}"})), "a hook call got no card with a risk"
                    sequential.append(time.perf_counter() - started)
                result["sequential"] = percentiles(sequential)
            result["rates"] = []
            offset = 150
            for rate in rates:
                minted = tokens(int(rate * args.seconds))

                def raws(client, minted=minted, offset=offset):  # each call its own token (jti once)
                    return [client.request("POST", SERVICE, json.dumps(bodies[(offset + i) % len(bodies)]).encode(),
                                           token=token) for i, token in enumerate(minted)]

                result["rates"].append(open_loop(url, [], rate, args.seconds, raws))
                offset += len(minted)
            result["rss_mb_after"] = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
    floor_p50 = result["floor_in_process"]["p50_ms"]
    result["sequential"]["p50_over_floor"] = result["sequential"]["p50_ms"] / floor_p50
    for entry in result["rates"]:
        entry["p50_over_floor"] = entry["p50_ms"] / floor_p50
        entry["p99_over_floor_p99"] = entry["p99_ms"] / result["floor_in_process"]["p99_ms"]
    result["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    out = REPO / "benchmarks" / "results" / f"serve_hooks{'_' + args.label if args.label else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    q = result["sequential"]
    print(f"one call at a time: p50 {q['p50_ms']:.1f} ms, p95 {q['p95_ms']:.1f} ms, p99 {q['p99_ms']:.1f} ms "
          f"({q['p50_over_floor']:.2f}x the floor's p50)")
    print(f"{'rate':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6} {'p50/floor':>9}")
    for e in result["rates"]:
        print(f"{e['rate']:>6.0f} {e['p50_ms']:>8.1f} {e['p95_ms']:>8.1f} {e['p99_ms']:>8.1f} {e['errors']:>6} "
              f"{e['p50_over_floor']:>9.2f}")
    f = result["floor_in_process"]
    print(f"floor in process (mapping + scoring): p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms "
          f"(mapping p50 {f['mapping']['p50_ms']:.1f} ms, scoring p50 {f['scoring']['p50_ms']:.1f} ms); "
          f"load {' '.join(result['load_before'])} -> {' '.join(result['load_after'])}")
    print(json.dumps(result, indent=2))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
