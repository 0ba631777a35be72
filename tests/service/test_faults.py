"""Faults under a real service (uvicorn on loopback, httpx): a full disk for the audit log, Redis
stopped under load, the registry's S3 endpoint gone at a reload, a worker killed under load.

Every fault is the real one: a small tmpfs the audit records fill (the kernel answers ENOSPC), a
real redis-server killed, a moto S3 server process stopped, a uvicorn worker SIGKILLed.
"""

from __future__ import annotations

import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from readmit.registry import Registry
from readmit.service.app import create_app
from service.live_server import LiveServer, auth, raw_records, reaped, uvicorn_workers
from service.test_service import MONTH, deployed  # noqa: F401  (the fixture)


@contextmanager
def small_disk(folder: Path, size: str = "256k"):
    """A tmpfs of ``size`` mounted on ``folder`` (root in a container may mount one): a disk that
    really fills up, then unmounted."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"the full-disk test mounts a small tmpfs and needs root (CAP_SYS_ADMIN): {mounted.stderr}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Write a filler file in ``folder`` until the disk is full (ENOSPC); return it."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC, from the kernel
    return filler


def audit_records(registry: str) -> dict[str, dict]:
    """request id -> audit record, every record under the registry."""
    return {p.stem: json.loads(p.read_text()) for p in Path(registry).rglob("audit/online/*/*.json")}


@pytest.mark.slow  # fault injection under load (a full disk, then space back)
def test_a_full_audit_disk_refuses_to_score_and_recovers_when_space_returns(deployed, tmp_path):  # noqa: F811
    settings = deployed.settings()
    registry = Registry.for_settings(settings)
    folder = Path(registry.storage.path(registry.rel("audit/online")))
    records = raw_records(deployed.datamart, [MONTH])[:40]
    live = LiveServer(create_app(settings))
    try:
        assert live.wait_ready().status_code == 200
        with small_disk(folder):
            filler = fill(folder)
            os.truncate(filler, filler.stat().st_size - 20_000)  # room for a few records only
            answers = [live.client.post("/v1/score", json=r, headers=auth()) for r in records]
            codes = [a.status_code for a in answers]
            assert 200 in codes and codes[-1] == 503, codes  # the disk filled up under the requests
            assert set(codes) == {200, 503}
            written = audit_records(deployed.registry)
            for answer in answers:
                body = answer.json()
                if answer.status_code == 200:  # every answer has its record, with its risk
                    audit = written[body["request_id"]]
                    assert [r["risk"] for r in audit["rows"]] == [p["risk"] for p in body["predictions"]]
                else:  # refused: no risk, no record, the audit folder and the fix named, no trace
                    assert body["request_id"] not in written and "risk" not in answer.text
                    assert "no space left on the device" in body["error"] and body["location"] == str(folder)
                    assert "free space" in body["fix"] and "Traceback" not in answer.text
            ready = live.client.get("/v1/health/ready")
            assert ready.status_code == 503 and "no space left" in ready.json()["problem"]
            assert live.client.get("/v1/health/live").status_code == 200
            filler.unlink()  # space returns: ready again, and scoring with it
            assert live.client.get("/v1/health/ready").status_code == 200
            again = live.client.post("/v1/score", json=records[0], headers=auth())
            assert again.status_code == 200 and again.json()["request_id"] in audit_records(deployed.registry)
            assert again.json()["predictions"] == answers[0].json()["predictions"]
    finally:
        live.stop()


class Load:
    """Clients sending one encounter per request, in threads, until stopped: every answer kept."""

    def __init__(self, url: str, records: list[dict], clients: int = 2):
        import threading

        self.url, self.records = url, records
        self.answers: list[tuple[int, int, dict]] = []  # (encounter_id, status, body)
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._send, args=(i,), daemon=True) for i in range(clients)]
        for thread in self.threads:
            thread.start()

    def _send(self, offset: int) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=60) as client:
            i = offset
            while not self.done.is_set():
                record = self.records[i % len(self.records)]
                try:
                    answer = client.post("/v1/score", json=record, headers=auth())
                    self.answers.append((record["encounter_id"], answer.status_code, answer.json()))
                except httpx.TransportError as exc:  # kept: the test fails on it
                    self.answers.append((record["encounter_id"], 0, {"transport": type(exc).__name__}))
                i += 1

    def wait_for(self, predicate, what: str, timeout: float = 60) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not predicate(self.answers):
            assert time.monotonic() < deadline, f"under load, never: {what}"
            time.sleep(0.05)

    def stop(self) -> list[tuple[int, int, dict]]:
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=120)
        return self.answers


def _ok_after(n: int):
    return lambda answers: sum(1 for _, code, _ in answers[n:] if code == 200) >= 10


@pytest.mark.slow  # fault injection under load (redis-server killed and restarted)
def test_redis_killed_under_load_is_503_and_not_ready_never_a_wrong_answer_and_it_recovers(deployed, tmp_path):  # noqa: F811
    import time

    from service.live_server import RedisServer

    redis = RedisServer(tmp_path / "redis", durable=True)
    live = None
    try:
        settings = deployed.settings({"serve_config": {"history_backend": "redis", "redis_url": redis.url}},
                                     tmp=tmp_path)
        live = LiveServer(create_app(settings))
        assert live.wait_ready().status_code == 200
        records = [r for r in raw_records(deployed.datamart, [MONTH])[:30]]
        full = {r["encounter_id"]: live.client.post("/v1/score", json=r, headers=auth()).json()["predictions"]
                for r in records}  # the answers with the whole history
        load = Load(live.url, records)
        load.wait_for(_ok_after(0), "answers before the fault")
        downs = []
        for flap in range(2):  # killed and back, twice; the second time at once (a flapping Redis)
            before = len(load.answers)
            redis.kill()
            load.wait_for(lambda a, n=before: any(code == 503 for _, code, _ in a[n:]), "503 while Redis is down")
            downs.append(live.client.get("/v1/health/ready"))
            if flap == 0:
                time.sleep(1.0)  # down a while under load
            redis.start()
            live.wait_ready(timeout=30)
            load.wait_for(_ok_after(len(load.answers)), "answers again once Redis is back")
        answers = load.stop()
    finally:
        if live is not None:
            live.stop()
        if redis.process.poll() is None:
            redis.stop()
    assert all(d.status_code == 503 and "history store" in d.json()["problem"] for d in downs)
    codes = [code for _, code, _ in answers]
    assert set(codes) == {200, 503}, sorted(set(codes))
    for encounter, code, body in answers:
        if code == 200:  # a score given while Redis flapped is the score with the whole history
            assert body["predictions"] == full[encounter], encounter
        else:
            assert "history store" in body["error"] and "risk" not in json.dumps(body)
    written = audit_records(deployed.registry)
    assert all(body["request_id"] in written for _, code, body in answers if code == 200)


class MotoProcess:
    """moto's S3 server in a process of this test's own: frozen (SIGSTOP: the endpoint accepts
    connections and never answers, as a partitioned or hung gateway) and thawed (SIGCONT) with
    its buckets kept."""

    def __init__(self, log: Path):
        import socket
        import sys
        import time

        from service.live_server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                             str(self.port)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    pytest.fail(f"moto did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)

    def freeze(self) -> None:
        self.process.send_signal(__import__("signal").SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(__import__("signal").SIGCONT)

    def stop(self) -> None:
        self.thaw()
        self.process.terminate()
        self.process.wait(timeout=20)


def _upload(folder: Path, bucket: str, prefix: str, url: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=url)
    client.create_bucket(Bucket=bucket)
    for path in folder.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")


@pytest.mark.slow  # a moto server of its own, stopped and restarted; waits out the S3 timeouts
def test_the_s3_registry_unreachable_at_a_reload_keeps_the_verified_model_and_reloads_after(
        deployed, tmp_path, monkeypatch, caplog):  # noqa: F811
    import dataclasses
    import logging
    import time

    from readmit.registry.aliases import set_alias

    moto = MotoProcess(tmp_path / "moto.log")
    for key, value in {"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                       "READMIT_S3_CONNECT_TIMEOUT": "1", "READMIT_S3_READ_TIMEOUT": "1",
                       "READMIT_S3_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(key, value)
    _upload(Path(deployed.registry), "faults", "registry", moto.url)
    on_s3 = dataclasses.replace(deployed, registry="s3://faults/registry")
    versions = deployed.models()
    live = None
    caplog.set_level(logging.INFO, logger="readmit.service")
    try:
        live = LiveServer(create_app(on_s3.settings({"serve_config": {"reload_seconds": 0.2}}, tmp=tmp_path)))
        assert live.wait_ready().status_code == 200
        record = next(r for r in raw_records(deployed.datamart, [MONTH])
                      if r["discharge_disposition_id"] not in (11, 13, 14, 19, 20, 21))  # one that is scored
        assert live.client.post("/v1/score", json=record, headers=auth()).status_code == 200

        def model() -> dict:
            return live.client.get("/v1/model", headers=auth()).json()

        before = model()["models"]
        moto.freeze()
        deadline = time.monotonic() + 30
        while model()["reload_problem"] is None:
            assert time.monotonic() < deadline, "the unreachable registry was never noticed"
            time.sleep(0.1)
        info = model()
        assert info["models"] == before and info["ready"]  # the last verified models, said so
        assert "the registry cannot be read at a reload" in info["reload_problem"]
        assert moto.url in info["reload_problem"] and "did not answer" in info["reload_problem"]
        logged = [r.getMessage() for r in caplog.records if r.name == "readmit.service"]
        assert any("still serving the last verified models (champion xgboost" in m for m in logged), logged
        # scoring needs its audit record, kept in the same registry: refused, not answered unaudited
        refused = live.client.post("/v1/score", json=record, headers=auth())
        assert refused.status_code == 503 and refused.json()["location"].startswith("s3://faults/registry")
        moto.thaw()  # the registry returns: the alias moved meanwhile is followed again
        set_alias(Registry(on_s3.registry), "champion", "logistic_regression", versions["logistic_regression"],
                  reason="tests", by="tests")
        while model()["models"][0]["algorithm"] != "logistic_regression":
            assert time.monotonic() < deadline + 30, "reloads never resumed"
            time.sleep(0.1)
        assert model()["reload_problem"] is None
        answer = live.client.post("/v1/score", json=record, headers=auth())
        assert answer.status_code == 200 and answer.json()["predictions"][0]["algorithm"] == "logistic_regression"
    finally:
        if live is not None:
            live.stop()
        moto.stop()


@pytest.mark.slow  # three processes (readmit serve and its two uvicorn workers), one killed and respawned
def test_a_worker_killed_under_load_fails_only_its_requests_in_flight_and_nothing_is_unaudited(deployed):  # noqa: F811
    import os
    import sys
    import time

    from service.live_server import TOKEN, free_port

    port = free_port()
    env = {**os.environ, "READMIT_API_TOKENS": f"tests={TOKEN}", "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-c", "from readmit.cli import main; main()", "serve", "--port", str(port),
               "--workers", "2", "--config", deployed.config, "--datamart", deployed.datamart,
               "--registry", deployed.registry]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while len(uvicorn_workers(process.pid)) != 2 or not _answers(url):
            assert time.monotonic() < deadline and process.poll() is None, "readmit serve did not start"
            time.sleep(0.1)
        records = raw_records(deployed.datamart, [MONTH])[:30]
        clients = 3
        load = Load(url, records, clients=clients)
        load.wait_for(_ok_after(0), "answers before the kill", timeout=120)
        [victim, survivor] = uvicorn_workers(process.pid)
        killed_at = len(load.answers)
        victim.kill()  # SIGKILL, mid-load
        load.wait_for(_ok_after(killed_at), "answers after the kill", timeout=120)
        while {w.pid for w in uvicorn_workers(process.pid)} in ({survivor.pid}, set()):
            assert time.monotonic() < deadline + 120, "uvicorn did not replace the killed worker"
            time.sleep(0.2)
        replaced = len(load.answers)
        load.wait_for(lambda a: sum(1 for _, code, _ in a[replaced:] if code == 200) >= 30,
                      "answers beside the new worker", timeout=120)
        answers = load.stop()
        assert process.poll() is None and reaped(victim) and survivor.is_running()
    finally:
        process.terminate()
        process.wait(timeout=60)
    failed = [(code, body) for _, code, body in answers if code != 200]
    # at most the request each client had in flight on the killed worker (or its kept-alive connection)
    assert len(failed) <= clients and all(code == 0 for code, _ in failed), failed
    ok = [body for _, code, body in answers if code == 200]
    written = audit_records(deployed.registry)
    assert len(ok) > 50 and all(body["request_id"] in written for body in ok)  # every answer audited
    assert all(written[body["request_id"]]["rows"][0]["risk"] == body["predictions"][0].get("risk") for body in ok)


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/v1/health/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False
