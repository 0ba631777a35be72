"""A real service: uvicorn on a loopback port in a thread, answered through httpx.

``LiveServer`` runs the app ``readmit serve`` runs (:func:`readmit.service.app.create_app`)
with a real uvicorn server; tests talk to it over TCP with a real httpx client.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from read_only import linked_copy, writable_copy
from readmit.data.layers import BRONZE_TABLE
from readmit.data.schema import RAW_SCHEMA, SNAPSHOT_COLUMN
from readmit.storage import Storage
from shared_build import built_once

TOKEN = "test-token-0123456789abcdef"  # every scope (READMIT_API_TOKENS)
READER = "reader-token-0123456789abcdef"  # score only (serve_config.tokens)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``app`` served by uvicorn on 127.0.0.1 in a thread, until ``stop``."""

    def __init__(self, app: Any, port: int | None = None):
        import uvicorn

        self.port = port or free_port()  # a port chosen first when the app must know its own URL
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self.client = httpx.Client(base_url=self.url, timeout=120)

    def wait_ready(self, timeout: float = 120, settled: str | None = None) -> httpx.Response:
        """The readiness answer once it is 200 (or, with ``settled``, once its problem says that)."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.client.get("/v1/health/ready")
            done = answer.status_code == 200 or (settled is not None and settled in answer.text)
            if done or time.monotonic() > deadline:
                return answer
            time.sleep(0.05)

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)


def uvicorn_workers(pid: int) -> list:
    """The live uvicorn workers (multiprocessing's ``spawn_main``) under the process ``pid``.

    A worker that was killed stays a zombie until uvicorn's supervisor reaps it (it looks every
    half second, later on a loaded machine): a zombie, or a process gone between the listing and
    the look at its command line, is not a live worker.
    """
    import psutil

    live = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                live.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return live


def reaped(process, timeout: float = 60) -> bool:
    """Whether the killed ``process`` (psutil) is reaped by its parent within ``timeout`` seconds
    (psutil's ``wait`` on a process that is not ours polls until its pid is gone)."""
    import psutil

    try:
        process.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        return False
    return True


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reader_config() -> dict[str, Any]:
    digest = hashlib.sha256(READER.encode()).hexdigest()
    return {"serve_config": {"tokens": [{"name": "reader", "sha256": digest, "scopes": ["score"]}]}}


def raw_records(datamart: str, months: list[str]) -> list[dict[str, Any]]:
    """Bronze rows (the raw input contract: typed UCI columns + snapshot_date) of ``months``, as JSON
    records in encounter order (snapshot_date, encounter_id)."""
    storage = Storage(datamart)
    frame = pl.concat([storage.read_partition(BRONZE_TABLE, m).select(*RAW_SCHEMA, SNAPSHOT_COLUMN) for m in months])
    frame = frame.sort(SNAPSHOT_COLUMN, "encounter_id").with_columns(pl.col(SNAPSHOT_COLUMN).cast(pl.String))
    return frame.to_dicts()


def copy_datamart(source: str, target: Path, *, silver_until: str | None = None) -> str:
    """A datamart of the test's own: the tables of its bronze, silver and gold are links to
    ``source``'s (the shared, read-only build: nothing copied, ~1,000 files a test fewer to write
    and remove; a new table, the predictions, is the test's own), but for silver with
    ``silver_until``: a copy of the months up to it. A test that changes a linked table takes
    ``own_copy`` of it first; one that writes through a link is caught by the shared build's
    fingerprint at the end of the session (tests/read_only.py)."""
    for layer in ("bronze", "silver", "gold"):
        if layer == "silver" and silver_until:
            writable_copy(Path(source) / layer, target / layer)
        else:
            linked_copy(Path(source) / layer, target / layer)
    if silver_until:
        for part in (target / "silver").rglob("snapshot_month=*"):
            if part.name.removeprefix("snapshot_month=") > silver_until:
                shutil.rmtree(part)
    return str(target)


class RedisServer:
    """A real ``redis-server`` (Debian's) on a free loopback port, its files in ``folder``.

    ``durable``: every write in the append-only file, fsynced (a Redis deployed with persistence),
    so a killed server comes back with everything it had acknowledged.
    """

    BINARY = "/usr/bin/redis-server"

    def __init__(self, folder: Path, *, durable: bool = False):
        self.durable = durable
        if not Path(self.BINARY).exists():
            pytest.fail(f"{self.BINARY} not found: install Debian's redis-server (.ci/run does)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.start()

    def start(self) -> None:
        """Start (again, on the same port and files: a stop saves the data, a start reads it back)."""
        import subprocess

        import redis

        self.process = subprocess.Popen(
            [self.BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "3600 1", "--daemonize", "no",
             *(["--appendonly", "yes", "--appendfsync", "always"] if self.durable else ["--appendonly", "no"])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)

    def kill(self) -> None:
        """SIGKILL: the server stops at once, saving nothing (what it had is in its files or lost)."""
        self.process.kill()
        self.process.wait(timeout=20)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis")
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.fixture(scope="session")
def serve_models(tmp_path_factory):
    """Synthetic raw encounters (readmit data synth: the UCI columns, repeat patients) from bronze
    to gold (the service reads bronze rows as requests and silver for its history store) and
    three models at the smallest budget, no alias; built once per run and read-only on disk
    (tests/shared_build.py). Tests copy it (test_service.py ``served``);
    the real data's parity is tests/service/test_parity_uci.py (slow)."""
    with built_once(tmp_path_factory, "serve_models", _build_serve_models, "copy_datamart / writable_copy") as s:
        yield s


def _build_serve_models(root: Path):
    """Built once per run (tests/shared_build.py), whatever the number of xdist workers."""
    import json

    from readmit import pipeline
    from serving.model_fixtures import TINY_SERVING_BUDGET, Served

    raw = pipeline.write_synthetic(root / "raw.csv", rows=20_000, seed=19)
    config = root / "model_config.json"
    config.write_text(json.dumps(TINY_SERVING_BUDGET))
    s = Served(str(config), str(root / "datamart"), str(root / "registry"), str(raw))
    settings = s.settings()
    pipeline.run_medallion(settings)
    pipeline.train(settings)
    return s
