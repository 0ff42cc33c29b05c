"""dandilab.map against the loops people write today (issue 18).

    .venv/bin/python benchmarks/map.py [--sessions 12] [--workers 2] [--rtt 0.02] [--bandwidth 100e6]

A local archive serves a Dandiset of ``--sessions`` small sessions (units with ragged
spike times, trials, a 4 MB LFP-like series; built once under .cache/bench/map/). Every
method reads through the same delaying proxy (dandihub.localarchive.netproxy, its own
process: ``--rtt`` per request, ``--bandwidth`` shared). The analysis per session reads
the spike times and the series and computes rates and a spectrum, as a cross-session
analysis does. Methods, each with an empty dandilab cache:

- ``serial remfile``: the DANDI example notebooks' loop (remfile.File + h5py + pynwb);
- ``serial open_nwb``: the same loop with dandilab.open_nwb;
- ``dandilab.map``: on a LocalCluster of ``--workers`` processes already running
  (its start-up is reported apart), then again (all from the results cache).

Bytes are the proxy's counts; per asset, map's own counts (no asset's bytes read
twice: each at most its size). Results: stdout and benchmarks/results/map.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench" / "map"
RESULTS = REPO / "benchmarks" / "results" / "map.json"
sys.path[:0] = [str(REPO / "hub"), str(REPO / "extension")]

from streaming import Proxy

DANDISET = "000778"
TARGET_SPEEDUP = 1.8


def write_session(path: Path, i: int) -> None:
    from datetime import UTC, datetime

    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    rng = np.random.default_rng(i)
    nwb = NWBFile(session_description=f"benchmark session {i}", identifier=f"bench-{i:02d}",
                  session_start_time=datetime(2024, 3, 1, 10, tzinfo=UTC))
    for u in range(40):
        nwb.add_unit(spike_times=np.sort(rng.uniform(0, 600, 2000 + 50 * u)))
    for t in range(200):
        nwb.add_trial(start_time=3.0 * t, stop_time=3.0 * t + 1.0)
    lfp = rng.standard_normal((250_000, 4)).astype("f4")  # 4 MB, chunked as recorders write
    nwb.add_acquisition(TimeSeries(name="lfp", data=H5DataIO(lfp, chunks=(25_000, 4)),
                                   unit="V", rate=1000.0))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def analyse(nwb) -> dict:
    """Per session: firing rates around trials and the LFP's spectrum (the same for all)."""
    units, trials = nwb.units, nwb.trials
    starts = trials["start_time"][:]
    rates = []
    for u in range(len(units)):
        spikes = units["spike_times"][u]
        counts = np.searchsorted(spikes, starts + 1.0) - np.searchsorted(spikes, starts)
        rates.append(counts.mean())
    lfp = nwb.acquisition["lfp"].data[:]
    spectrum = np.abs(np.fft.rfft(lfp, axis=0)) ** 2
    return {"mean_rate": float(np.mean(rates)), "power": float(spectrum[1:200].mean()),
            "units": len(units)}


def build(sessions: int) -> Path:
    """An archive folder with the benchmark Dandiset (kept between runs)."""
    sys.path.insert(0, str(REPO))
    from tests.localarchive_fixtures import SyntheticAsset, _asset_record, _digest, write_users

    folder = CACHE / f"archive-{sessions}"
    ds = folder / "dandisets" / DANDISET
    if (ds / "draft.assets.json").exists():
        return folder
    ds.mkdir(parents=True, exist_ok=True)
    (folder / "blobs").mkdir(exist_ok=True)
    records = []
    t = time.time()
    for i in range(sessions):
        blob_id = f"b7780000-0000-4000-8000-{i:012d}"
        blob = folder / "blobs" / blob_id
        write_session(blob, i)
        asset = SyntheticAsset(f"0a778000-0000-4000-8000-{i:012d}",
                               f"sub-{i:02d}/sub-{i:02d}_ses-1_ecephys.nwb", blob=blob_id)
        records.append(_asset_record(asset, blob.stat().st_size, _digest(blob),
                                     "application/x-nwb"))
    (ds / "draft.assets.json").write_text(json.dumps(records))
    (ds / "draft.metadata.json").write_text(json.dumps({
        "schemaKey": "Dandiset", "schemaVersion": "0.6.4", "identifier": f"DANDI:{DANDISET}",
        "id": f"DANDI:{DANDISET}/draft", "version": "draft", "name": "map benchmark",
        "description": "benchmarks/map.py", "license": ["spdx:CC-BY-4.0"]}))
    write_users(folder)
    print(f"generated {sessions} sessions in {time.time() - t:.0f} s", flush=True)
    return folder


def serial_remfile(refs) -> dict:
    import h5py
    import pynwb
    import remfile

    out = {}
    for ref in refs:
        rf = remfile.File(ref.url)
        with h5py.File(rf, "r") as h5, pynwb.NWBHDF5IO(file=h5, mode="r",
                                                      load_namespaces=True) as io:
            out[ref.path] = analyse(io.read())
        rf.close()
    return out


def serial_open_nwb(refs) -> dict:
    from dandilab import open_nwb

    out = {}
    for ref in refs:
        with open_nwb(ref.source()) as nwb:
            out[ref.path] = analyse(nwb)
    return out


def _warm() -> None:
    import dandilab.mapping  # loaded, as on a cluster that has run anything
    import dandilab.stream  # noqa: F401
    import pynwb  # noqa: F401


def fresh_cache(name: str) -> None:
    path = Path(tempfile.gettempdir()) / f"dandilab-bench-map-{os.getpid()}-{name}"
    shutil.rmtree(path, ignore_errors=True)
    os.environ["DANDILAB_CACHE_DIR"] = str(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rtt", type=float, default=0.020)
    parser.add_argument("--bandwidth", type=float, default=100e6)
    args = parser.parse_args(argv)

    from dandihub.localarchive.server import LocalArchive
    from dandilab import Archive
    from dandilab.cluster import cluster
    from dandilab.mapping import AssetRef
    from dandilab.mapping import map as dmap

    folder = build(args.sessions)
    rows = []
    with LocalArchive(folder, s3_dir=CACHE / "s3") as archive:
        proxy = Proxy(archive.s3_endpoint_url, None, args.rtt, args.bandwidth)
        try:
            ds = Archive(archive.api_url).dandiset(DANDISET, "draft")
            refs = [AssetRef.of(a) for a in ds.assets(glob="*.nwb")]
            refs = [replace(r, url=r.url.replace(archive.s3_endpoint_url, proxy.url))
                    for r in refs]
            sizes = {r.path: r.size for r in refs}
            total = sum(sizes.values())

            def measure(name, fn):
                proxy.reset()
                t, cpu = time.perf_counter(), time.process_time()
                out = fn()
                seconds = time.perf_counter() - t
                cpu = time.process_time() - cpu
                stats = proxy.stats()
                row = {"method": name, "seconds": round(seconds, 3), "bytes": stats["bytes"],
                       "requests": stats["requests"], "cpu_seconds_here": round(cpu, 2)}
                rows.append(row)
                print(f"{name:28s} {seconds:7.2f} s {stats['bytes'] / 1e6:8.1f} MB "
                      f"{stats['requests']:6d} requests  (CPU here {cpu:.1f} s)", flush=True)
                return out

            fresh_cache("remfile")
            by_remfile = measure("serial remfile", lambda: serial_remfile(refs))
            fresh_cache("open_nwb")
            by_open_nwb = measure("serial open_nwb", lambda: serial_open_nwb(refs))
            fresh_cache("map")  # before the workers start: they inherit it
            t = time.perf_counter()
            client = cluster(workers=args.workers)
            client.run(_warm)  # imports, as a cluster that has run anything has them
            startup = time.perf_counter() - t
            print(f"{'(LocalCluster start-up)':28s} {startup:7.2f} s", flush=True)
            try:
                result = measure(f"dandilab.map, {args.workers} workers",
                                 lambda: dmap(analyse, refs, cluster=client, progress=False))
                again = measure("dandilab.map again (cached)",
                                lambda: dmap(analyse, refs, cluster=client, progress=False))
            finally:
                client.close()
        finally:
            proxy.close()

    assert result.failed.empty, result.failed
    same = (result.results == by_open_nwb == {p: v for p, v in by_remfile.items()}
            and again.results == result.results and not again.computed)
    per_asset = {p: o.bytes for p, o in result.outcomes.items()}
    read_twice = [p for p, b in per_asset.items() if b > sizes[p]]
    seconds = {r["method"]: r["seconds"] for r in rows}
    speedup = seconds["serial open_nwb"] / seconds[f"dandilab.map, {args.workers} workers"]
    summary = {
        "sessions": len(refs), "load_average_1min": round(os.getloadavg()[0], 2), "bytes_in_files": total, "workers": args.workers,
        "rtt": args.rtt, "bandwidth": args.bandwidth, "cluster_startup_seconds": round(startup, 2),
        "rows": rows, "results_identical": same,
        "speedup_vs_serial_open_nwb": round(speedup, 2),
        "speedup_vs_serial_remfile": round(
            seconds["serial remfile"] / seconds[f"dandilab.map, {args.workers} workers"], 2),
        "assets_with_more_bytes_than_their_size": read_twice,
        "max_bytes_over_size": round(max(per_asset[p] / sizes[p] for p in per_asset), 3),
        "targets": {f"map >= {TARGET_SPEEDUP}x serial open_nwb": speedup >= TARGET_SPEEDUP,
                    "no asset read twice": not read_twice},
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=1) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
