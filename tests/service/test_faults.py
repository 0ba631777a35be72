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
from service.live_server import LiveServer, auth, raw_records
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
