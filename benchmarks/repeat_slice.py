"""Repeated reads and memory of dandilab.remote, through the network proxy (20 ms RTT,
100 MB/s), each measurement in a new process.

    .venv/bin/python benchmarks/repeat_slice.py [--code OTHER_CHECKOUT] [--seconds 5]

Reports, for ElectricalSeries[0:30000, 0:384] of the generated ecephys file: the local
h5py time (the floor), the cold read, the same slice read again in a new process (new
RemoteFile, same cache folder), and the bytes and requests of each open and read; and the
peak RSS of a process scanning a 1e6 x 32 int16 dataset stored in 1 x 32 chunks with h5py
over a RemoteFile. ``--code`` runs the same with another checkout's dandilab (before/after).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench"
ES = "acquisition/ElectricalSeries/data"
REGION = (slice(0, 30000), slice(0, 384))


def build(seconds: float) -> tuple[Path, Path]:
    import h5py
    import numpy as np

    sys.path[:0] = [str(REPO / "hub")]
    from dandihub.localarchive.demo import generate_ecephys_nwb

    CACHE.mkdir(parents=True, exist_ok=True)
    ecephys = CACHE / f"ecephys-{seconds:g}s.nwb"
    if not ecephys.exists():
        generate_ecephys_nwb(ecephys.with_suffix(".tmp.nwb"), seconds=seconds)
        os.replace(ecephys.with_suffix(".tmp.nwb"), ecephys)
    small = CACHE / "small-chunks-1e6x32.h5"
    if not small.exists():
        data = np.arange(1_000_000 * 32, dtype=np.int16).reshape(1_000_000, 32)
        with h5py.File(small.with_suffix(".tmp.h5"), "w") as f:
            f.create_dataset("data", data=data, chunks=(1, 32))
        os.replace(small.with_suffix(".tmp.h5"), small)
    return ecephys, small


WORKER = r"""
import json, resource, sys, time
mode, target, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
import h5py
t0 = time.perf_counter()
if mode == "local":
    f = h5py.File(target, "r")
    opened = time.perf_counter()
    times = []
    for _ in range(3):
        t = time.perf_counter()
        f["acquisition/ElectricalSeries/data"][0:30000, 0:384]
        times.append(time.perf_counter() - t)
    print(json.dumps({"open_s": opened - t0, "slice_s": sorted(times)[1]}))
    sys.exit()
from dandilab import remote
rf = remote.RemoteFile(target, digest="bench-" + str(size), size=size,
                       cache=False if mode == "scan" else None)
at_open = (rf.requests, rf.bytes_fetched)
h5 = remote.open_h5(rf)
opened = time.perf_counter()
if mode == "scan":
    d = h5["data"]
    for start in range(0, d.shape[0], 50_000):
        d[start:start + 50_000]
else:
    h5["acquisition/ElectricalSeries/data"][0:30000, 0:384]
done = time.perf_counter()
for fut in list(rf._inflight.values()):
    fut.result()  # read-ahead still in flight counts in the bytes
h5.close(); rf.close()
print(json.dumps({"open_s": opened - t0, "slice_s": done - opened, "open_requests": at_open[0],
                  "open_bytes": at_open[1], "requests": rf.requests, "bytes": rf.bytes_fetched,
                  "block_bytes": sum(len(b) for b in rf._blocks.values()),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def worker(code: Path, mode: str, target: str, size: int, cache: str) -> dict:
    env = dict(os.environ, DANDILAB_CACHE_DIR=cache,
               PYTHONPATH=os.pathsep.join([str(code / "extension"), str(REPO / "hub")]))
    run = subprocess.run([sys.executable, "-c", WORKER, mode, target, str(size)], env=env,
                         capture_output=True, text=True, timeout=900, check=False)
    if run.returncode:
        raise RuntimeError(f"{mode} worker failed: {run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose dandilab runs")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the ecephys file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-scan", action="store_true", help="skip the small-chunk scan")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(REPO / "hub")]
    from dandihub.localarchive import netproxy

    ecephys, small = build(args.seconds)
    origin = {"/bench/ecephys.nwb": (str(ecephys), "etag-ecephys"),
              "/bench/small.h5": (str(small), "etag-small")}
    process, url = netproxy.spawn("http://127.0.0.1:9", rtt=0.020, bandwidth=100e6,
                                  origin=origin)
    try:
        local = worker(args.code, "local", str(ecephys), 0, "")
        with tempfile.TemporaryDirectory() as cache:
            size = ecephys.stat().st_size
            cold = worker(args.code, "slice", f"{url}/bench/ecephys.nwb", size, cache)
            again = [worker(args.code, "slice", f"{url}/bench/ecephys.nwb", size, cache)
                     for _ in range(args.repeat)]
        scan = None if args.no_scan else worker(args.code, "scan", f"{url}/bench/small.h5",
                                                small.stat().st_size, "")
    finally:
        process.terminate()
        process.wait(10)
    med = statistics.median(r["slice_s"] for r in again)
    print(f"code: {args.code}  load average: {os.getloadavg()[0]:.2f}")
    print(f"local floor  ES[0:30000, 0:384]: {local['slice_s']:.3f} s")
    print(f"cold         slice {cold['slice_s']:.3f} s, open {cold['open_bytes'] / 1e6:.2f} MB "
          f"in {cold['open_requests']} requests, total {cold['bytes'] / 1e6:.1f} MB "
          f"in {cold['requests']} requests")
    print(f"again (new process, x{len(again)}) slice median {med:.3f} s = "
          f"{med / local['slice_s']:.2f}x the local floor; "
          f"bytes {[round(r['bytes'] / 1e6, 1) for r in again]} MB")
    if scan:
        print(f"scan 1e6 x 32 int16 in 1 x 32 chunks: peak RSS {scan['peak_rss_mb']:.0f} MB, "
              f"blocks held at the end {scan['block_bytes'] / 1e6:.1f} MB, "
              f"{scan['slice_s']:.1f} s, fetched {scan['bytes'] / 1e6:.1f} MB")
    print(json.dumps({"local": local, "cold": cold, "again": again, "scan": scan}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
