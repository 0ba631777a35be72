"""Benchmark the registry: a save and a load against four plain atomic writes of the same bytes.

Usage::

    python benchmarks/bench_registry.py [--mib 20] [--repeats 5] [--s3] [--out benchmarks/results/registry.json]

A save writes four objects (version, its metadata, latest, latest metadata) and claims its version
exclusively; a load reads and checks the metadata (signature when a key is set), verifies the
sha256 and unpickles. The fixed workload measured in the same run is four ``Storage.write_bytes``
of the same pickle, so the ratios say what the registry's checks cost on this machine, whatever
its load. ``--s3`` adds the moto server (started here, on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _time(fn, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def bench(uri: str, mib: int, repeats: int) -> list[dict]:
    from readmit.registry import Registry
    from readmit.storage import Storage

    model = {"weights": os.urandom(mib * 2**20)}
    import pickle

    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    storage = Storage(uri)
    baseline = _time(lambda: [storage.write_bytes(f"plain/{i}.bin", payload) for i in range(4)], repeats)
    rows = []
    for signed in (False, True):
        reg = Registry(uri, key=b"benchmark key" if signed else None)
        save = _time(lambda reg=reg: reg.save("xgboost", model, {"tag": 1}), repeats)
        load = _time(lambda reg=reg: reg.load("xgboost"), repeats)
        rows.append({"backend": "s3" if uri.startswith("s3://") else "local", "mib": mib, "signed": signed,
                     "four_plain_writes_s": round(baseline, 4), "save_s": round(save, 4),
                     "load_s": round(load, 4), "save_ratio": round(save / baseline, 2)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--s3", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/registry.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += bench(str(Path(tmp) / "registry"), args.mib, args.repeats)
    if args.s3:
        import socket

        import boto3
        from moto.server import ThreadedMotoServer

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
        try:
            boto3.client("s3").create_bucket(Bucket="readmit-bench")
            rows += bench("s3://readmit-bench/registry", args.mib, args.repeats)
        finally:
            server.stop()
    header = f"{'backend':8} {'MiB':>4} {'signed':>6} {'4 writes s':>10} {'save s':>8} {'load s':>8} {'save/4w':>8}"
    print(header)
    for r in rows:
        print(f"{r['backend']:8} {r['mib']:>4} {str(r['signed']):>6} {r['four_plain_writes_s']:>10.3f} "
              f"{r['save_s']:>8.3f} {r['load_s']:>8.3f} {r['save_ratio']:>8.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows},
                                         indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
