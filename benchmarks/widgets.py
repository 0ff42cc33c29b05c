"""Widget benchmark: the ElectricalSeries view over the network, and nwbwidgets beside it
(issue 7).

    .venv/bin/python benchmarks/widgets.py [--rtt 0.02] [--bandwidth 100e6]
        [--steps 8] [--nwbwidgets-python /path/to/venv/bin/python]

File: the demo ecephys asset (384 ch x 30 kHz x 60 s, int16, chunks (78125, 64), gzip +
shuffle, ~0.9 GB): the demo archive's blob when `dandihub up --demo` has built it
(.cache/demo-hub), else the same generator's file in .cache/bench. Network: the bytes
are served from that file by dandihub.localarchive.netproxy, in its own process, with
``--rtt`` per request and ``--bandwidth`` shared by all connections; requests and bytes
are the proxy's counts. The file is opened with dandilab.open_nwb (metadata cached
beforehand: opening is benchmarks/streaming.py's business).

For 1 s and 10 s windows of all 384 channels, two times each (the view draws a window
progressively, dandilab.widgets.chunks):
- first paint: from ``TimeSeriesView(...)`` (or a pan) to the view's Figure holding its
  first drawing of the window: what was in memory plus the first chunk row decoded
  (fetched, decoded, reduced to min/max per pixel, layers built), the rest "loading";
- complete: to the Figure holding the whole window. Bound by bandwidth: a 10 s window
  touches 4-5 chunk rows (~36 MB stored each), >= 1.4 s at 100 MB/s for any reader;
  a half-window pan step needs ~2 new rows, >= 0.7 s, unless read ahead;
- the first window with cold caches; pan steps of half a window, back to back (the
  read-ahead of the next rows has no time to finish) and with 1 s between steps (a person
  looking at the window: the read-ahead lands during the dwell);
- bytes fetched per step vs the stored bytes of the chunks the window touches, and
  over the whole pan vs the distinct chunks all its windows touched;
- a revisit: the first window again in a new view with nothing decoded in memory (another
  kernel, or another user sharing the hub's cache) but the persistent min/max overview
  the first run left on disk (dandilab.widgets.overview; cleared before each run).
The targets (first < 1 s, pan < 0.3 s) are checked against first paint; complete is
reported beside it.
The browser's own drawing of a window (Canvas2D, ~60-110 ms for 384 x 900 bins) is
measured by benchmarks/widget_plotting.py and the browser tests, not here.

nwbwidgets 0.11.3 (``--nwbwidgets-python``: a venv where it imports; it needs pynwb<3)
is timed through the same proxy on the same recording rewritten by its pynwb (2.5 cannot
read the NWB 2.9 schema of the demo file; samples, chunks and compression are the same):
its ElectricalSeriesWidget created (it first draws its default, 5 s of 30 channels), set
to the same window of all 384 channels ("first" counts all of that), then the same pan
steps (its time controller), reading through remfile as its documentation does. Results: benchmarks/results/widgets.json + a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench"
RESULTS = REPO / "benchmarks" / "results" / "widgets.json"
DEMO = REPO / ".cache" / "demo-hub" / "demo-archive"
sys.path[:0] = [str(REPO / "hub"), str(REPO / "extension"), str(REPO / "benchmarks")]

from dandihub.localarchive import netproxy

TARGETS = {"first_s": 1.0, "pan_s": 0.3, "bytes_ratio": 1.5}
NWBWIDGETS_TIMEOUT = 900


def demo_ecephys() -> tuple[Path, str]:
    """(file, ETag) of the demo ecephys asset (the published 384-channel session)."""
    records = DEMO / "dandisets" / "900001" / "draft.assets.json"
    if records.exists():
        for r in json.loads(records.read_text()):
            blob = DEMO / "blobs" / str(r.get("blob"))
            if r["path"].startswith("sub-mouse001/") and blob.exists():
                return blob, r["metadata"]["digest"]["dandi:dandi-etag"]
    from streaming import build_files

    path = build_files(60.0)["ecephys"]
    return path, f"bench-{path.stat().st_size}"


class Proxy:
    """The netproxy in its own process, serving one file (so its work does not hold our GIL)."""

    def __init__(self, path: Path, etag: str, rtt: float, bandwidth: float,
                 copy: Path | None = None):
        origin = {"/demo/ecephys.nwb": [str(path), etag]}
        if copy is not None:
            origin["/demo/ecephys-pynwb25.nwb"] = [str(copy), f"copy-{copy.stat().st_size}"]
        # no upstream: every path it serves is an origin file
        self.process, self.url = netproxy.spawn("http://127.0.0.1:9", rtt=rtt,
                                                bandwidth=bandwidth, origin=origin)
        self.file_url = f"{self.url}/demo/ecephys.nwb"
        self.copy_url = f"{self.url}/demo/ecephys-pynwb25.nwb"

    def _call(self, method: str, path: str) -> dict:
        import urllib.request

        request = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.load(r)

    def reset(self) -> dict:
        return self._call("POST", "/__netproxy__/reset")

    def stats(self) -> dict:
        return self._call("GET", "/__netproxy__/stats")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def run_dandilab(proxy: Proxy, window: float, steps: int, dwell: float) -> dict:
    import numpy as np
    from dandilab.stream import open_nwb
    from dandilab.widgets import chunks
    from dandilab.widgets.series import TimeSeriesView

    chunks._cache = chunks._LRU(chunks.CACHE_BYTES)  # cold: nothing decoded yet
    overviews = Path(os.environ["DANDILAB_CACHE_DIR"]) / "overview"
    shutil.rmtree(overviews, ignore_errors=True)  # and no overview on disk
    with open_nwb(proxy.file_url) as nwb:
        es = nwb.acquisition["ElectricalSeries"]
        proxy.reset()
        t = time.perf_counter()
        view = TimeSeriesView(es, window=window, channels=range(384), bins=1000,
                              start=0.0)
        view.wait(300)
        first = time.perf_counter() - t
        first_paint = view.timings[0]["paints"][0] - t
        first_rows = view.timings[0]["rows"]
        first_bytes = proxy.reset()["bytes"]
        first_touched = view.last.chunk_bytes
        assert view.error is None, view.error
        assert len(view.figure.layers) == 1 and view.last.complete
        steps_s, paints_s, step_bytes, touched, all_chunks = [], [], [], [], set()
        step_rows = []
        all_chunks |= {(r, c) for r in view.data.rows_of(view.last.i0, view.last.i1)
                       for c in range(6)}
        seen = 0  # the proxy's byte count so far: read-ahead during a dwell counts for the step
        for _ in range(steps):
            if dwell:
                time.sleep(dwell)
            t = time.perf_counter()
            view.pan(0.5)
            view.wait(300)
            steps_s.append(time.perf_counter() - t)
            record = view.timings[-1]
            assert record["complete"] and view.last.complete, record
            paints_s.append(record["paints"][0] - t)
            step_rows.append(record["rows"])
            time.sleep(0.05)
            now = proxy.stats()["bytes"]
            step_bytes.append(now - seen)
            seen = now
            touched.append(view.last.chunk_bytes)
            all_chunks |= {(r, c) for r in view.data.rows_of(view.last.i0, view.last.i1)
                           for c in range(6)}
        view.data.wait_prefetch()
        time.sleep(0.1)
        tail = proxy.reset()["bytes"] - seen  # read-ahead landing after the last step
        distinct = sum(view.data.info(*k)[1] for k in all_chunks)
        total = first_bytes + sum(step_bytes) + tail
        ahead = sum(view.data.info(r, c)[1] for r in view.data._ahead_rows for c in range(6)
                    if (r, c) not in all_chunks)
        # a revisit: the first window again in a new view with nothing decoded in memory
        # (another kernel, or another user of the hub's cache), the overview on disk
        chunks._overview_pool.submit(lambda: None).result()
        chunks._cache = chunks._LRU(chunks.CACHE_BYTES)
        proxy.reset()
        t = time.perf_counter()
        again = TimeSeriesView(es, window=window, channels=range(384), bins=1000, start=0.0,
                               prefetch=False)
        again.wait(300)
        revisit = time.perf_counter() - t
        revisit_paint = again.timings[0]["paints"][0] - t
        revisit_rows = again.timings[0]["rows"]
        revisit_approx = again.timings[0]["approx"]
        proxy.reset()
        return {
            "tool": "dandilab", "window_s": window, "dwell_s": dwell,
            "first_paint_s": first_paint, "first_s": first, "first_rows": first_rows,
            "revisit_paint_s": revisit_paint, "revisit_s": revisit,
            "revisit_rows": revisit_rows, "revisit_overview_rows": revisit_approx,
            "first_bytes": first_bytes, "first_touched_bytes": first_touched,
            "pan_paint_s": paints_s, "pan_paint_median_s": float(np.median(paints_s)),
            "pan_paint_max_s": float(max(paints_s)),
            "pan_s": steps_s, "pan_median_s": float(np.median(steps_s)),
            "pan_max_s": float(max(steps_s)), "pan_rows": step_rows,
            "step_bytes": step_bytes, "step_touched_bytes": touched,
            "bytes_per_step": float(np.mean(step_bytes)),
            "touched_per_step": float(np.mean(touched)),
            "total_bytes": total, "distinct_chunk_bytes": distinct,
            "bytes_ratio": total / distinct,
            "unused_read_ahead_bytes": ahead,
            "bytes_ratio_without_last_read_ahead": (total - ahead) / distinct,
        }


NWBWIDGETS_SCRIPT = textwrap.dedent("""
    import json, sys, time, warnings
    warnings.simplefilter("ignore")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import urllib.request
    import h5py, remfile, pynwb
    from nwbwidgets.ecephys import ElectricalSeriesWidget

    url, window, steps, stats_url = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    def reset():
        req = urllib.request.Request(stats_url + "/__netproxy__/reset", method="POST")
        return json.load(urllib.request.urlopen(req, timeout=10))
    def render():  # what the notebook's inline backend would do: draw every open figure
        for num in plt.get_fignums():
            plt.figure(num).canvas.draw()
            plt.close(num)
    f = h5py.File(remfile.File(url), "r")
    nwb = pynwb.NWBHDF5IO(file=f, mode="r", load_namespaces=True).read()
    es = nwb.acquisition["ElectricalSeries"]
    reset()
    t = time.perf_counter()
    w = ElectricalSeriesWidget(es)  # draws its default: 5 s of the first 30 channels
    render()
    created = time.perf_counter() - t
    w.time_window_controller.value = (0.0, window)
    render()
    w.gas.range_controller.value = (0, es.data.shape[1])  # all 384 channels, as dandilab
    render()
    out = {"first_s": time.perf_counter() - t, "created_s": created,
           "first_bytes": reset()["bytes"], "pan_s": [], "step_bytes": [],
           "channels": int(es.data.shape[1])}
    t0 = 0.0
    for _ in range(steps):
        t0 += window / 2
        t = time.perf_counter()
        w.time_window_controller.value = (t0, t0 + window)
        render()
        out["pan_s"].append(time.perf_counter() - t)
        out["step_bytes"].append(reset()["bytes"])
    print("RESULT " + json.dumps(out))
""")


# nwbwidgets needs pynwb < 3, which cannot read files of the NWB 2.9 schema the demo is
# written in (ElectrodesTable): it runs on the same recording (same samples, chunks and
# compression) written by that older pynwb, made once with this script in its venv.
COPY_SCRIPT = textwrap.dedent("""
    import sys, h5py, numpy as np
    from datetime import datetime, timezone
    from hdmf.data_utils import GenericDataChunkIterator
    from hdmf.backends.hdf5.h5_utils import H5DataIO
    from pynwb import NWBFile, NWBHDF5IO
    from pynwb.ecephys import ElectricalSeries
    src, dst = sys.argv[1], sys.argv[2]
    f = h5py.File(src, "r")
    d = f["acquisition/ElectricalSeries/data"]
    nwb = NWBFile(session_description="copy of the demo ecephys session for nwbwidgets",
                  identifier="demo-ecephys-pynwb25", session_start_time=datetime.now(timezone.utc))
    dev = nwb.create_device("NeuropixelsProbe0")
    grp = nwb.create_electrode_group("probe0", description="probe", location="CA1", device=dev)
    for c in range(d.shape[1]):
        nwb.add_electrode(x=0.0, y=float(c), z=0.0, imp=0.0, location="CA1", filtering="none",
                          group=grp)
    region = nwb.create_electrode_table_region(list(range(d.shape[1])), "all")
    class Blocks(GenericDataChunkIterator):  # one chunk row at a time
        def __init__(self, d):
            self.d = d
            super().__init__(buffer_shape=(d.chunks[0], d.shape[1]), chunk_shape=d.chunks)
        def _get_data(self, selection):
            return self.d[selection]
        def _get_maxshape(self):
            return self.d.shape
        def _get_dtype(self):
            return self.d.dtype
    nwb.add_acquisition(ElectricalSeries(
        name="ElectricalSeries", electrodes=region, rate=30000.0, starting_time=0.0,
        conversion=float(f["acquisition/ElectricalSeries/data"].attrs.get("conversion", 1.0)),
        data=H5DataIO(Blocks(d), compression="gzip", compression_opts=4, shuffle=True)))
    with NWBHDF5IO(dst, "w") as io:
        io.write(nwb)
""")


def nwbwidgets_copy(python: str, path: Path) -> Path:
    dst = CACHE / f"{path.stem}-pynwb25.nwb"
    if not dst.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".tmp")
        subprocess.run([python, "-c", COPY_SCRIPT, str(path), str(tmp)], check=True,
                       timeout=NWBWIDGETS_TIMEOUT)
        tmp.rename(dst)
    return dst


def run_nwbwidgets(python: str, proxy: Proxy, window: float, steps: int) -> dict:
    import numpy as np

    row = {"tool": "nwbwidgets 0.11.3", "window_s": window, "dwell_s": 0.0}
    try:
        done = subprocess.run([python, "-c", NWBWIDGETS_SCRIPT, proxy.copy_url, str(window),  # noqa: PLW1510 - its exit is read below
                               str(steps), proxy.url], capture_output=True, text=True,
                              timeout=NWBWIDGETS_TIMEOUT)
    except subprocess.TimeoutExpired:
        row["error"] = f"did not finish in {NWBWIDGETS_TIMEOUT} s"
        return row
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        row["error"] = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return row
    r = json.loads(line[7:])
    row.update(r, pan_median_s=float(np.median(r["pan_s"])), pan_max_s=float(max(r["pan_s"])),
               bytes_per_step=float(np.mean(r["step_bytes"])))
    return row


def table(rows: list[dict], args) -> str:
    lines = [(f"RTT {args.rtt * 1000:g} ms, {args.bandwidth / 1e6:g} MB/s; 384 channels; "
              f"{args.steps} pan steps of half a window. Targets: first paint < "
              f"{TARGETS['first_s']} s, pan paint < {TARGETS['pan_s']} s, bytes <= "
              f"{TARGETS['bytes_ratio']}x the chunks touched. 'paint': first drawing "
              "(rows in memory + the first row decoded); 'done': the whole window "
              "(bandwidth bound). targets: F first paint, P pan paint median, B bytes "
              "without the read-ahead issued after the last step (nothing pans into it); "
              "'-' where missed. revisit: the first window in a new view, nothing decoded "
              "in memory, the min/max overview on disk (used when a window's bins are at "
              "least 1/8 of its bins: 10 s windows, not 1 s)")]
    head = (f"{'tool':<18}{'window':>7}{'dwell':>7}{'first paint':>12}{'first done':>11}"
            f"{'first MB':>9}{'pan paint med':>14}{'max':>7}{'pan done med':>13}{'max':>7}"
            f"{'MB/step':>8}{'touched MB/step':>16}{'bytes/chunks':>13}"
            f"{'w/o last read-ahead':>20}{'targets':>9}{'revisit paint':>14}{'done':>6}")
    lines += [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['tool']:<18}{r['window_s']:>6g}s{'':>7}  {r['error']}")
            continue
        ratio = f"{r['bytes_ratio']:.2f}x" if "bytes_ratio" in r else "-"
        net = (f"{r['bytes_ratio_without_last_read_ahead']:.2f}x"
               if "bytes_ratio_without_last_read_ahead" in r else "-")
        touched = f"{r['touched_per_step'] / 1e6:.1f}" if "touched_per_step" in r else "-"
        paint = f"{r['first_paint_s']:.2f}" if "first_paint_s" in r else "-"
        revisit = (f"{r['revisit_paint_s']:>14.2f}{r['revisit_s']:>6.2f}" if "revisit_s" in r
                   else f"{'-':>14}{'-':>6}")
        pan_paint = (f"{r['pan_paint_median_s']:>14.3f}{r['pan_paint_max_s']:>7.3f}"
                     if "pan_paint_median_s" in r else f"{'-':>14}{'-':>7}")
        lines.append(
            f"{r['tool']:<18}{r['window_s']:>6g}s{r['dwell_s']:>6g}s{paint:>12}"
            f"{r['first_s']:>11.2f}{r['first_bytes'] / 1e6:>9.1f}{pan_paint}"
            f"{r['pan_median_s']:>13.3f}{r['pan_max_s']:>7.3f}"
            f"{r['bytes_per_step'] / 1e6:>8.1f}{touched:>16}{ratio:>13}{net:>20}"
            f"{verdict(r):>9}{revisit}")
    return "\n".join(lines)


def verdict(r: dict) -> str:
    """Which targets a row meets, on first paint: F(irst), P(an), B(ytes); '-' if missed."""
    if "first_paint_s" not in r:
        return "-"
    return "".join([
        "F" if r["first_paint_s"] < TARGETS["first_s"] else "-",
        "P" if r["pan_paint_median_s"] < TARGETS["pan_s"] else "-",
        "B" if r.get("bytes_ratio_without_last_read_ahead", 9) <= TARGETS["bytes_ratio"]
        else "-"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtt", type=float, default=0.020)
    parser.add_argument("--bandwidth", type=float, default=100e6)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--windows", default="1,10")
    parser.add_argument("--nwbwidgets-python", default=os.environ.get("NWBWIDGETS_PYTHON"),
                        help="a Python where nwbwidgets 0.11.3 imports (it needs pynwb<3)")
    args = parser.parse_args(argv)
    started = time.time()
    path, etag = demo_ecephys()
    os.environ["DANDILAB_CACHE_DIR"] = str(CACHE / "widgets-cache")
    shutil.rmtree(CACHE / "widgets-cache", ignore_errors=True)
    copy = nwbwidgets_copy(args.nwbwidgets_python, path) if args.nwbwidgets_python else None
    proxy = Proxy(path, etag, args.rtt, args.bandwidth, copy)
    rows = []
    try:
        from dandilab.stream import open_nwb

        with open_nwb(proxy.file_url):  # warm pynwb's namespaces and the metadata cache
            pass
        for window in (float(w) for w in args.windows.split(",")):
            for dwell in (0.0, 1.0):
                r = run_dandilab(proxy, window, args.steps, dwell)
                rows.append(r)
                print(f"dandilab {window:g} s window, dwell {dwell:g} s: first paint "
                      f"{r['first_paint_s']:.2f} s, done {r['first_s']:.2f} s; pan paint median "
                      f"{r['pan_paint_median_s']:.3f} s, done {r['pan_median_s']:.3f} s; "
                      f"bytes {r['bytes_ratio']:.2f}x", flush=True)
            if args.nwbwidgets_python:
                r = run_nwbwidgets(args.nwbwidgets_python, proxy, window, min(args.steps, 4))
                rows.append(r)
                print(f"nwbwidgets {window:g} s: {r.get('error') or r['first_s']}", flush=True)
    finally:
        proxy.close()
    if not args.nwbwidgets_python:
        rows.append({"tool": "nwbwidgets 0.11.3", "window_s": 0, "dwell_s": 0,
                     "error": "not run: pass --nwbwidgets-python (a venv with pynwb<3; it does "
                              "not import with pynwb 4 / hdmf 6)"})
    print()
    print(table(rows, args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rtt_seconds": args.rtt, "bandwidth_bytes_per_second":
                                   args.bandwidth, "file": str(path.relative_to(REPO)),
                                   "targets": TARGETS, "results": rows}, indent=1))
    print(f"\n{RESULTS.relative_to(REPO)} written; {time.time() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
