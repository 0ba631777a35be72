"""``readmit serve`` speed on the full UCI data: latency at fixed rates, the rate it holds, start to ready.

    python benchmarks/bench_serve.py                       # 10 s per rate
    python benchmarks/bench_serve.py --seconds 600 --rates 100   # the 10-minute run
    python benchmarks/bench_serve.py --mode hooks               # CDS Hooks encounter-discharge, 10 and 50 calls/s

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


def open_loop(url: str, records: list[dict], rate: float, seconds: float, send=None) -> dict:
    """``send(client, i) -> ok``: request i (default: POST /v1/score with record i)."""
    import httpx

    send = send or (lambda client, i: client.post("/v1/score", json=records[i % len(records)]).status_code == 200)

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
                    ok = send(client, i)
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
    parser.add_argument("--mode", choices=["score", "hooks"], default="score")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="hooks mode: keep the datamart and registry here (set up once, reused when present)")
    args = parser.parse_args()
    if args.mode == "hooks":
        hooks_main(args)
        return
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

    rates = args.rates if args.rates != [50, 100, 200] else [10, 50]
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.workdir is not None and (args.workdir / "config.json").exists():  # set up before: reuse
            from readmit.config import load_settings

            w = args.workdir
            settings = load_settings(str(w / "config.json"), raw=str(args.raw), datamart=str(w / "datamart"),
                                     registry=str(w / "registry"))
        else:
            if args.workdir is not None:
                args.workdir.mkdir(parents=True, exist_ok=True)
            settings = setup(args.workdir or root, args.raw)
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

                def send(client, i, minted=minted, offset=offset):
                    body = bodies[(offset + i) % len(bodies)]
                    return card_with_risk(client.post(SERVICE, json=body,
                                                      headers={"Authorization": f"Bearer {minted[i]}"}))

                result["rates"].append(open_loop(url, [], rate, args.seconds, send))
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
