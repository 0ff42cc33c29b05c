"""dandilab.widgets: each view's state and data window, on files the demo generator writes,
on every real file in ../shared/fixtures/nwb, and over HTTP through the network proxy.

No browser here (tests/test_widgets_browser.py draws them): what a view would draw is in
its Figure's ``layers`` (binary arrays), which these tests decode and check against
plain h5py/pynwb reads.
"""

from __future__ import annotations

import re
import warnings

import h5py
import numpy as np
import pytest
from hdmf.backends.hdf5 import H5DataIO

from .paths import SHARED

pytestmark = pytest.mark.timeout(600)

FIXTURES = SHARED / "fixtures" / "nwb"
# every real file but the NWB 1 one (test_legacy_nwb1_file_gives_a_clear_message)
FIXTURE_FILES = sorted(p for p in FIXTURES.glob("*.nwb") if "nwb1" not in p.name) \
    if FIXTURES.is_dir() else []


def arr(buf, dtype):
    return np.frombuffer(bytes(buf), dtype=dtype)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DANDILAB_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from dandihub.localarchive.demo import (
        generate_behavior_nwb,
        generate_ecephys_nwb,
        generate_ophys_nwb,
    )

    d = tmp_path_factory.mktemp("widgets")
    return {
        "ecephys": generate_ecephys_nwb(d / "ecephys.nwb", channels=96, seconds=6),
        "ophys": generate_ophys_nwb(d / "ophys.nwb", height=48, width=64, frames=90, n_rois=7),
        "behavior": generate_behavior_nwb(d / "behavior.nwb", seconds=300),
    }


@pytest.fixture
def read(files):
    import pynwb

    opened = []

    def _read(kind_or_path):
        path = files.get(kind_or_path, kind_or_path)
        io = pynwb.NWBHDF5IO(str(path), "r", load_namespaces=True)
        opened.append(io)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return io.read()

    yield _read
    for io in opened:
        io.close()


# -- chunked windows -----------------------------------------------------------------------
def test_window_is_the_min_max_of_every_sample_of_its_bins(files):
    from dandilab.widgets.chunks import ChunkedSeries

    with h5py.File(files["ecephys"], "r") as f:
        ds = f["acquisition/ElectricalSeries/data"]
        series = ChunkedSeries(ds)
        assert series.fast  # gzip + shuffle: decoded by dandilab, in parallel
        for i0, i1, chans, bins in [(0, 30000, None, 1000), (12345, 101234, [0, 5, 63, 64, 95], 333),
                                    (170000, 180000, list(range(10, 40)), 700)]:
            w = series.window(i0, i1, chans, bins)
            ref = ds[i0:i1] if chans is None else ds[i0:i1][:, chans]
            assert w.decimated and w.lo.shape[1] <= bins + 1
            edges = w.starts - i0
            assert edges[0] == 0 and np.all(np.diff(edges) > 0)
            np.testing.assert_array_equal(w.lo.T, np.minimum.reduceat(ref, edges, 0))
            np.testing.assert_array_equal(w.hi.T, np.maximum.reduceat(ref, edges, 0))
        few = series.window(1000, 1500, [3, 4], 1000)  # fewer samples than 2 x bins: all of them
        assert not few.decimated
        np.testing.assert_array_equal(few.lo.T, ds[1000:1500][:, [3, 4]])


def test_window_touches_only_its_chunks_and_caches_them(files):
    from dandilab.widgets.chunks import ChunkedSeries

    with h5py.File(files["ecephys"], "r") as f:
        ds = f["acquisition/ElectricalSeries/data"]
        series = ChunkedSeries(ds)
        rows = ds.chunks[0]
        w = series.window(rows + 10, rows + 5000, [70], 200)  # one chunk: row 1, column 1
        info = ds.id.get_chunk_info_by_coord((rows, 64))
        assert w.chunk_bytes == info.size == w.stats["bytes_read"]
        again = series.window(rows + 20, rows + 5010, [70], 200)
        assert again.stats["bytes_read"] == 0  # decoded chunk from the cache


def test_any_window_of_an_hour_at_30khz_on_384_channels_is_bounded(tmp_path):
    """An hour-long recording (108 M x 384 int16, 83 GB if written): HDF5 allocates only
    the chunks written, so the file is small; the whole-hour window reads a bounded sample
    of chunk rows and draws at most ``bins`` points per channel."""
    from dandilab.widgets.chunks import ChunkedSeries

    n = 30000 * 3600
    path = tmp_path / "hour.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("data", (n, 384), np.int16, chunks=(78125, 64), compression="gzip",
                              shuffle=True)
        ds[50_000_000:50_078_125, :] = np.arange(78125 * 384, dtype=np.int64).reshape(
            78125, 384).astype(np.int16)
    with h5py.File(path, "r") as f:
        series = ChunkedSeries(f["data"], max_bytes=64_000_000)
        w = series.window(0, n, None, 1000)
        assert w.lo.shape == (384, 1000) and w.hi.shape == (384, 1000)
        assert w.sampled and w.sampled[0] < w.sampled[1] == -(-n // 78125)
        assert w.stats["bytes_read"] <= 64_000_000


def test_window_is_drawn_progressively_cached_rows_first(files):
    """With chunk row 0 decoded, a window over rows 0-2 yields first row 0 (the other bins
    NaN: not drawn), then each row as it is decoded, in the direction asked, the last
    complete and equal to ``window``."""
    from dandilab.widgets import chunks
    from dandilab.widgets.chunks import ChunkedSeries

    chunks._cache = chunks._LRU(chunks.CACHE_BYTES)
    with h5py.File(files["ecephys"], "r") as f:
        ds = f["acquisition/ElectricalSeries/data"]
        rows = ds.chunks[0]
        series = ChunkedSeries(ds)
        series.window(0, rows, None, 100)  # row 0 decoded and cached
        steps = list(series.windows(0, ds.shape[0], None, 600))
        assert [(w.rows_done, w.rows_total) for w in steps] == [(1, 3), (2, 3), (3, 3)]
        assert [w.complete for w in steps] == [False, False, True]
        first = steps[0]
        in_row0 = first.starts < rows - (rows % -(-ds.shape[0] // 600))  # whole bins of row 0
        assert np.isfinite(first.lo[:, in_row0]).all()
        assert np.isnan(first.lo[:, first.starts >= rows]).all()  # not read yet
        assert np.isnan(steps[1].hi[:, steps[1].starts >= 2 * rows]).all()
        whole = series.window(0, ds.shape[0], None, 600)
        np.testing.assert_array_equal(steps[-1].lo, whole.lo)
        np.testing.assert_array_equal(steps[-1].hi, whole.hi)
        assert np.isfinite(whole.lo).all()
        edges = whole.starts
        np.testing.assert_array_equal(whole.hi.T, np.maximum.reduceat(ds[:], edges, 0))
        # backwards (a pan to the left): the last row first
        chunks._cache = chunks._LRU(chunks.CACHE_BYTES)
        back = list(ChunkedSeries(ds).windows(0, ds.shape[0], None, 600, direction=-1))
        assert np.isfinite(back[0].lo[:, back[0].starts >= 2 * rows]).all()
        assert np.isnan(back[0].lo[:, back[0].starts < 2 * rows - 600]).all()
        np.testing.assert_array_equal(back[-1].lo, whole.lo)
        # a newer request stops it between rows
        chunks._cache = chunks._LRU(chunks.CACHE_BYTES)
        stopped = list(ChunkedSeries(ds).windows(0, ds.shape[0], None, 600, stop=lambda: True))
        assert stopped == [] or not stopped[-1].complete


def test_view_says_loading_until_the_window_is_complete(read):
    """A pan draws the part in memory at once with "loading k of n chunk rows", then
    the rest; the complete drawing says nothing is loading and has every bin."""
    from dandilab.widgets import chunks
    from dandilab.widgets.series import TimeSeriesView

    chunks._cache = chunks._LRU(chunks.CACHE_BYTES)
    es = read("ecephys").acquisition["ElectricalSeries"]
    view = TimeSeriesView(es, window=2.0, bins=400, prefetch=False).wait()  # row 0 only
    assert view.timings[-1]["rows"] == [(1, 1)] and view.figure.loading == ""
    shown = []
    original = view.figure.show

    def show(layers, **kw):
        shown.append((kw.get("loading", ""), arr(layers[0]["hi"], np.float32).copy()))
        original(layers, **kw)

    view.figure.show = show
    view.PAINT_EVERY = 0.0  # every row drawn as it comes
    view.set_window(0.0, 6.0)
    view.wait()
    assert view.error is None
    assert [text for text, _ in shown] == ["loading 1 of 3 chunk rows…",
                                           "loading 2 of 3 chunk rows…", ""]
    assert view.timings[-1]["rows"] == [(1, 3), (2, 3), (3, 3)]
    assert view.timings[-1]["complete"]
    assert np.isnan(shown[0][1]).any() and not np.isnan(shown[-1][1]).any()
    assert view.figure.loading == "" and "loading" not in view.status.value
    assert len(view.timings[-1]["paints"]) == 3


def test_read_ahead_follows_the_pan_and_is_fetched_once(files):
    """After a pan the next half window's chunk rows in its direction are read in the
    background; the next pan finds them in memory. A row the read-ahead is loading is
    waited for, not fetched a second time."""
    from dandihub.localarchive.netproxy import NetProxy
    from dandilab.stream import open_nwb
    from dandilab.widgets import chunks
    from dandilab.widgets.series import TimeSeriesView

    chunks._cache = chunks._LRU(chunks.CACHE_BYTES)
    path = str(files["ecephys"])
    with NetProxy("http://127.0.0.1:9", rtt=0.005, bandwidth=None,
                  origin={"/ecephys.nwb": (path, "etag-ecephys")}) as proxy, \
            open_nwb(f"{proxy.url}/ecephys.nwb") as nwb:
        es = nwb.acquisition["ElectricalSeries"]
        rows = es.data.chunks[0]  # 78125 samples: 2.6 s at 30 kHz

        def stored(row):
            return sum(es.data.id.get_chunk_info_by_coord((row * rows, c * 64)).size
                       for c in range(2))

        # 0-2 s = samples 0-60 000: row 0; the next half window, 60 000-90 000, needs row 1
        view = TimeSeriesView(es, window=2.0, channels=range(96), bins=400).wait()
        view.data.wait_prefetch()
        assert view.data._ahead_rows == {1} and view.data._cached(1, [0, 1])
        proxy.reset_stats()
        view.pan(0.5)  # 1-3 s: rows 0 and 1, both in memory
        view.wait()
        assert proxy.reset_stats()["bytes"] == 0 and view.timings[-1]["rows"] == [(2, 2)]
        # backwards: a jump reads nothing ahead, a pan to the left reads the left
        chunks._cache = chunks._LRU(chunks.CACHE_BYTES)
        view.set_window(4.0, 6.0)  # 120 000-180 000: rows 1, 2
        view.wait()
        view.data.wait_prefetch()
        assert not view.data._cached(0, [0, 1])
        view.pan(-0.5)  # 3-5 s = 90 000-150 000: row 1; ahead 60 000-90 000: row 0
        view.wait()
        view.data.wait_prefetch()
        assert view.data._ahead_rows == {0} and view.data._cached(0, [0, 1])
        proxy.reset_stats()
        view.pan(-0.5)  # 2-4 s: rows 0, 1 in memory
        view.wait()
        assert proxy.reset_stats()["bytes"] == 0
        # once each: the read-ahead and a window over the same row at the same time
        chunks._cache = chunks._LRU(chunks.CACHE_BYTES)
        proxy.reset_stats()
        view.data.prefetch_rows([2], view.channels)
        w = view.data.window(2 * rows, es.data.shape[0], view.channels, 300)
        view.data.wait_prefetch()
        assert w.complete and np.isfinite(w.lo).all()
        assert stored(2) <= proxy.reset_stats()["bytes"] <= 1.05 * stored(2)


# -- TimeSeries / ElectricalSeries ----------------------------------------------------------
def test_electrical_series_view_state_and_window(read):
    from dandilab.widgets.series import TimeSeriesView, parse_channels

    nwb = read("ecephys")
    es = nwb.acquisition["ElectricalSeries"]
    view = TimeSeriesView(es, window=1.0, channels=range(96), bins=500).wait()
    assert view.error is None
    assert view.state == {"t0": 0.0, "t1": 1.0, "channels": list(range(96)), "gain": 1.0,
                          "bins": 500}
    layer = view.figure.layers[0]
    assert layer["kind"] == "envelope"
    x = arr(layer["x"], np.float64)
    hi = arr(layer["hi"], np.float32).reshape(96, -1)
    assert len(x) <= 501 and hi.shape[1] == len(x)
    assert view.figure.x_range == [0.0, 1.0]
    # the envelope is the min/max of the raw data (minus each channel's baseline), in µV
    raw = es.data[0:30000, 7] * es.conversion * 1e6
    hi7 = hi[7] + view._baseline[7] * view._factor
    assert view._unit == "µV"
    np.testing.assert_allclose(hi7.max(), raw.max(), rtol=1e-4)

    view.pan(0.5)
    view.wait()
    assert (view.t0, view.t1) == (0.5, 1.5) and view.figure.x_range == [0.5, 1.5]
    view.zoom(0.5)
    view.wait()
    assert view.t1 - view.t0 == pytest.approx(0.5)
    view.set_window(5.8, 6.8)  # clipped to the end, keeping the window's length
    view.wait()
    assert view.t1 == pytest.approx(6.0) and view.t1 - view.t0 == pytest.approx(1.0)
    view.channel_text.value = "2-4, 90"
    view.wait()
    assert view.channels.tolist() == [2, 3, 4, 90] == parse_channels("2-4,90", 96)
    assert arr(view.figure.layers[0]["offsets"], np.float32).shape == (4,)
    view.figure._on_message(view.figure, {"type": "view", "x0": 2.0, "x1": 2.25}, [])
    view.wait()  # a drag in the browser
    assert (view.t0, view.t1) == (2.0, 2.25)
    assert "4 of 96 channels" in view.status.value


def _probe_file(tmp_path, y):
    """An ElectricalSeries of len(y) channels whose electrodes sit at rel_y = y; channel
    c is a sine of amplitude 1 mV plus one 50 mV artefact on every channel."""
    from datetime import UTC, datetime

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ecephys import ElectricalSeries

    nwb = NWBFile(session_description="probe", identifier="probe",
                  session_start_time=datetime(2024, 1, 1, tzinfo=UTC))
    dev = nwb.create_device(name="probe")
    group = nwb.create_electrode_group(name="shank", description="s", location="CA1",
                                       device=dev)
    for v in y:
        nwb.add_electrode(group=group, location="CA1", rel_x=0.0, rel_y=float(v))
    region = nwb.create_electrode_table_region(list(range(len(y))), "all")
    t = np.arange(2000) / 1000.0
    data = np.sin(2 * np.pi * 5 * t)[:, None] * 1e-3 * np.ones((1, len(y)))
    data[1000, :] = 50e-3
    nwb.add_acquisition(ElectricalSeries(name="es", data=data, electrodes=region, rate=1000.0))
    path = tmp_path / "probe.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_ecephys_opens_on_a_readable_group_of_channels_in_depth_order(read, tmp_path):
    """Hundreds of channels stacked are a solid texture: the view opens on 32 channels,
    the first in depth order (rel_y), spaced by the signal's robust amplitude (one
    artefact does not spread them), and pages through groups."""
    from dandilab.widgets.series import TimeSeriesView

    es = read("ecephys").acquisition["ElectricalSeries"]
    view = TimeSeriesView(es, window=1.0, bins=300).wait()
    assert view.error is None and len(view.channels) == 32 == view.group
    depth = np.asarray(es.electrodes.table["rel_y"].data[:])
    assert sorted(depth[view.channels]) == sorted(np.sort(depth)[:32])
    assert "32 of 96 channels" in view.status.value
    assert "by rel_y" in view.figure.y_label
    view.page_channels(1)
    view.wait()
    assert view.channels.tolist() == sorted(view.order[32:64].tolist())
    view.page_channels(1)
    view.page_channels(1)  # past the end: the last group
    view.wait()
    assert view.channels.tolist() == sorted(view.order[64:96].tolist())
    assert view.channel_text.value == view._channels_text()
    view.channel_buttons[0].click()  # "▲ channels": the previous group
    view.wait()
    assert view.channels.tolist() == sorted(view.order[32:64].tolist())

    # depth order (not channel order) from the bottom of the plot up; spacing robust
    y = [300.0, 0.0, 100.0, 200.0, 20.0, 40.0]
    nwb = read(_probe_file(tmp_path, y))
    view = TimeSeriesView(nwb.acquisition["es"], bins=200).wait()
    assert view.order.tolist() == [1, 4, 5, 2, 3, 0]
    offsets = arr(view.figure.layers[0]["offsets"], np.float32)
    assert np.argsort(offsets).tolist() == [1, 4, 5, 2, 3, 0]
    spacing = offsets.max() / 5
    assert view._unit == "µV"  # the sine's 2 mV peak to peak, not the 50 mV artefact
    assert 1500 <= spacing <= 2500, spacing
    ticks = {label: v for v, label in view.figure.y_ticks}
    assert ticks["1"] < ticks["4"] < ticks["0"]


def test_time_axis_of_timestamps_bisects_lazily(tmp_path):
    from datetime import UTC, datetime

    from dandilab.widgets.series import TimeAxis, TimeSeriesView
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    ts = np.cumsum(np.random.default_rng(0).uniform(0.001, 0.01, 20000))
    nwb = NWBFile(session_description="t", identifier="t", session_start_time=datetime.now(UTC))
    nwb.add_acquisition(TimeSeries(name="irregular", data=H5DataIO(np.sin(ts), chunks=(1000,)),
                                   unit="a.u.", timestamps=H5DataIO(ts, chunks=(1000,))))
    with NWBHDF5IO(str(tmp_path / "t.nwb"), "w") as io:
        io.write(nwb)
    with NWBHDF5IO(str(tmp_path / "t.nwb"), "r") as io:
        s = io.read().acquisition["irregular"]
        axis = TimeAxis(s, 20000)
        for t in (ts[0] - 1, ts[100], ts[100] + 1e-6, ts[-1] + 1):
            assert axis.index(t) == np.searchsorted(ts, t)
        assert len(axis._probe) < 80  # a bisection, not a read of every timestamp
        view = TimeSeriesView(s, window=10.0, bins=200).wait()
        x = arr(view.figure.layers[0]["x"], np.float64)
        assert x[0] >= ts[0] and x[-1] <= ts[0] + 10.0 and view.error is None


# -- Units -------------------------------------------------------------------------------------
def test_units_raster_rates_and_psth(read):
    from dandilab.widgets.units import UnitsView, psth

    nwb = read("ecephys")
    units = nwb.units
    view = UnitsView(units, window=2.0).wait()
    assert view.error is None
    layer = view.raster.layers[0]
    x, row = arr(layer["x"], np.float64), arr(layer["row"], np.int32)
    expected = sum(int(((np.asarray(units["spike_times"][i]) >= view.t0)
                        & (np.asarray(units["spike_times"][i]) < view.t1)).sum())
                   for i in range(len(units)))
    assert len(x) == len(row) == expected > 0
    assert (x >= view.t0).all() and (x < view.t1).all()
    counts = np.array([len(units["spike_times"][i]) for i in range(len(units))])
    rates = arr(view.rates.layers[0]["heights"], np.float64)
    first, last = view.data.span
    np.testing.assert_allclose(rates, counts / (last - first))
    assert "trials.start_time" in view.align.options
    view.unit_select.value = 2
    view.wait()
    _edges, rate, per_trial = psth(np.asarray(units["spike_times"][2]),
                                  nwb.trials["start_time"][:], 0.5, 1.0, 0.02)
    np.testing.assert_allclose(view.psth_result[1], rate)
    assert len(per_trial) == len(nwb.trials)
    view.align.value = "trials.response_time"  # NaN where there was no response: skipped
    view.wait()
    assert "trials.response_time" in view.psth_fig.title
    view.pan(0.5)
    view.wait()
    assert view.state["t0"] == pytest.approx(first - 0.04 + 1.0)  # starts 2 % before
    view.raster._on_message(view.raster, {"type": "click", "x": 1.0, "y": 4.1}, [])
    assert view.unit_select.value == 4  # a click on a raster row picks that unit


def test_units_raster_navigates_in_time_and_psth_splits_by_condition(read):
    """The raster has a start slider, a window length and pan buttons (kept within the
    recording); the PSTH and a trial raster split by a trials column of few values."""
    from dandilab.widgets.units import UnitsView, psth

    nwb = read("ecephys")
    view = UnitsView(nwb.units, window=2.0).wait()
    _first, last = view.data.span
    view.slider.value = 3.0
    view.wait()
    assert (view.t0, view.t1) == (3.0, 5.0)
    x = arr(view.raster.layers[0]["x"], np.float64)
    assert len(x) and (x >= 3.0).all() and (x < 5.0).all()
    view.length.value = 1.0
    view.wait()
    assert view.t1 - view.t0 == pytest.approx(1.0)
    view.set_window(last + 100, last + 101)  # past the end: the last window
    view.wait()
    assert view.t1 == pytest.approx(last + 0.02) and view.slider.value == view.t0
    assert "trials.condition" in view.group_by.options
    assert "trials.contrast" in view.group_by.options  # a few contrast levels
    view.unit_select.value = 2
    view.group_by.value = "trials.condition"
    view.wait()
    cond = np.array([c.decode() if isinstance(c, bytes) else c
                     for c in nwb.trials["condition"][:]])
    start = nwb.trials["start_time"][:]
    spikes = np.asarray(nwb.units["spike_times"][2])
    assert set(view.psth_groups) == {"left", "right"}
    for side in ("left", "right"):
        _e, rate, _t = psth(spikes, start[cond == side], 0.5, 1.0, 0.02)
        np.testing.assert_allclose(view.psth_groups[side][1], rate)
        assert view.psth_groups[side][2] == (cond == side).sum()
    assert len(view.psth_fig.layers) == 3  # two conditions and the event line
    assert view.psth_fig.title.endswith("by condition")
    rows = np.concatenate([arr(L["row"], np.int32) for L in view.trial_raster.layers])
    assert len(view.trial_raster.layers) == 2 and rows.max() < len(start)
    assert "left: blue" in view.trial_raster.title
    view.group_by.value = "(none)"
    view.wait()
    assert view.psth_groups == {} and view.psth_fig.layers[0]["kind"] == "bars"


def test_fields_read_as_a_person_would(tmp_path, read):
    """Dates, lists of names, empty dicts and tiny datasets are shown as values, never as
    Python reprs or dataset shapes."""
    from datetime import UTC, datetime

    from dandilab.widgets.explorer import FieldsView
    from dandilab.widgets.table import _cell
    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(session_description="s", identifier="x",
                  session_start_time=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
                  experimenter=["Demo, Ada", "Lovelace, Ada"],
                  keywords=["CA1", "mouse", "a", "b", "c"])
    with NWBHDF5IO(str(tmp_path / "f.nwb"), "w") as io:
        io.write(nwb)
    rows = dict(FieldsView(read(tmp_path / "f.nwb")).rows)
    text = " ".join(rows.values())
    assert "datetime" not in text and "('" not in text and "dataset" not in text, text
    assert rows["session_start_time"] == "2024-05-06 07:08:09+00:00"
    assert rows["experimenter"] == "Demo, Ada; Lovelace, Ada"
    assert rows["keywords"] == "CA1, mouse, a, b, c"
    assert rows["file_create_date"].startswith("20") and "[" not in rows["file_create_date"]
    from dandilab.widgets.explorer import _summary

    assert _summary({}) == "none" and _cell({}) == "none"
    assert _summary({"a": 1, "b": 2}) == "a, b"
    assert _cell({"a": 1.5}) == "a: 1.5"


def test_dff_traces_are_labelled_and_behaviour_opens_on_the_trajectory(read):
    from dandilab.widgets import NWBExplorer
    from dandilab.widgets.imaging import PlaneSegmentationView, trace_label
    from dandilab.widgets.series import TimeSeriesView

    nwb = read("ophys")
    ophys = nwb.processing["ophys"]
    dff = ophys["DfOverF"].roi_response_series[next(iter(ophys["DfOverF"].roi_response_series))]
    assert dff.unit == "n.a." and trace_label(dff) == "ΔF/F"
    view = TimeSeriesView(dff, channels=[0]).wait()
    assert view.figure.y_label.endswith("(ΔF/F)") and "n.a." not in view.figure.y_label
    ps = PlaneSegmentationView(ophys["ImageSegmentation"]["PlaneSegmentation"]).wait()
    names = [s.parent.name for s in ps.series]
    ps.series_pick.value = names.index("DfOverF")
    ps.select(0)
    ps.wait()
    assert ps.trace.y_label == "ΔF/F"
    explorer = NWBExplorer(read("behavior"))
    assert explorer.select.value.endswith("Position/SpatialSeriesPosition")
    assert type(explorer.view).__name__ == "SpatialSeriesView"


# -- tables ----------------------------------------------------------------------------------
def test_table_pages_and_filters(read):
    from dandilab.widgets.table import TablePager, TableView

    trials = read("behavior").trials
    assert len(trials) > 12
    view = TableView(trials, page_size=5).wait()
    assert view.error is None and view.pages == -(-len(trials) // 5)
    assert "<th>target_zone</th>" in view.html.value
    view.show_page(1)
    view.wait()
    assert f"rows 5–9 of {len(trials)}" in view.status.value
    pager = TablePager(trials)
    speed = trials["mean_speed"][:]
    threshold = float(np.median(speed))
    assert pager.filter("mean_speed", f">{threshold}") == int((speed > threshold).sum())
    _, rows = pager.rows(0, 3)
    col = pager.columns.index("mean_speed")
    assert all(float(r[col]) > threshold for r in rows)
    zones = trials["target_zone"][:]
    assert pager.filter("target_zone", "ne") == int(sum("ne" in z.lower() for z in zones))
    starts = trials["start_time"][:]
    assert pager.filter("start_time", "10..100") == int(((starts >= 10) & (starts <= 100)).sum())
    assert pager.filter("mean_speed", "") == len(trials)
    view.query.value = "SW"
    view.column.value = "target_zone"
    view.wait()
    assert "match target_zone SW" in view.status.value
    nwb = read("ecephys")
    # a ragged column (units' spike times) and a region column (units' electrodes)
    upager = TablePager(nwb.units)
    _, rows = upager.rows(0, 2)
    assert any(c.startswith("[") and "values" in c for c in rows[0])


# -- imaging -------------------------------------------------------------------------------
def test_two_photon_frames_one_at_a_time_with_contrast(read):
    from dandilab.widgets.imaging import ImageSeriesView

    nwb = read("ophys")
    tps = nwb.acquisition["TwoPhotonSeries"]
    view = ImageSeriesView(tps).wait()
    assert view.error is None
    layer = view.figure.layers[0]
    frame = arr(layer["values"], np.float32).reshape(layer["height"], layer["width"])
    np.testing.assert_array_equal(frame, tps.data[0])
    lo, hi = np.percentile(frame, [0.5, 99.5])
    assert (view.figure.vmin, view.figure.vmax) == pytest.approx((lo, hi))
    view.vrange.value = (10.0, 50.0)  # contrast: applied in the browser, no new frame
    assert view.figure.vmax == pytest.approx(np.percentile(frame, 50.0))
    assert view.figure.layers[0] is layer
    view.slider.value = 42
    view.wait()
    layer = view.figure.layers[0]
    frame42 = tps.data[42]
    np.testing.assert_array_equal(arr(layer["values"], np.float32), frame42.ravel())
    assert view.vrange.value == (10.0, 50.0)  # the contrast is kept from frame to frame
    assert view.figure.vmax == pytest.approx(np.percentile(frame42, 50.0))


def test_external_file_image_series_says_where_the_frames_are(tmp_path):
    from datetime import UTC, datetime

    from dandilab.widgets import view_for
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import ImageSeries

    nwb = NWBFile(session_description="v", identifier="v", session_start_time=datetime.now(UTC))
    nwb.add_acquisition(ImageSeries(name="behavior_video", external_file=["video/cam0.mp4",
                                                                          "video/cam1.mp4"],
                                    starting_frame=[0, 5000], format="external", rate=30.0,
                                    num_samples=9000))
    with NWBHDF5IO(str(tmp_path / "v.nwb"), "w") as io:
        io.write(nwb)
    with NWBHDF5IO(str(tmp_path / "v.nwb"), "r") as io:
        view = view_for(io.read().acquisition["behavior_video"])
        text = view.children[0].value
        assert view.external_files == ["video/cam0.mp4", "video/cam1.mp4"]
        assert "video/cam1.mp4" in text and "first frame 5000" in text


def test_plane_segmentation_masks_click_and_trace(read):
    from dandilab.widgets.imaging import PlaneSegmentationView

    nwb = read("ophys")
    ps = nwb.processing["ophys"]["ImageSegmentation"]["PlaneSegmentation"]
    view = PlaneSegmentationView(ps).wait()
    assert view.error is None and view.n_rois == 7
    kinds = [layer.get("labels") is not None for layer in view.figure.layers]
    assert kinds == [False, True]  # the mean image, then the ROI labels over it
    masks = ps["image_mask"].data[:]
    k = 3
    y, x = np.unravel_index(np.argmax(masks[k]), masks[k].shape)
    view.figure._on_message(view.figure, {"type": "click", "x": x + 0.5, "y": y + 0.5}, [])
    view.wait()
    assert view.selected == k and view.figure.selected == k
    trace = view.trace.layers[0]
    series = view.series[view.series_pick.value]
    hi = arr(trace["hi"], np.float32)
    expected = series.data[:, k]
    assert len(hi) == len(expected)  # 90 frames: drawn without decimation
    np.testing.assert_allclose(hi, expected * series.conversion, rtol=1e-6)
    assert "Fluorescence" in view.series_pick.label or "DfOverF" in view.series_pick.label


# -- behavior ------------------------------------------------------------------------------
def test_spatial_series_trajectory_and_position_over_time(read):
    from dandilab.widgets.behavior import SpatialSeriesView

    nwb = read("behavior")
    pos = nwb.processing["behavior"]["Position"]["SpatialSeriesPosition"]
    view = SpatialSeriesView(pos, window=60.0).wait()
    assert view.error is None
    np.testing.assert_allclose(view.trajectory_xy, pos.data[0:3600], rtol=1e-6)
    assert len(view.over_time.layers) == 2  # x and y
    view.slider.value = 100.0
    view.wait()
    assert view.state == {"t0": 100.0, "t1": 160.0}
    np.testing.assert_allclose(view.trajectory_xy[0], pos.data[6000], rtol=1e-6)


# -- the explorer, every file ------------------------------------------------------------------
def _explore_everything(nwb):
    from dandilab.widgets import FieldsView, NWBExplorer

    explorer = NWBExplorer(nwb)
    problems, kinds = [], {}
    for path, _label, obj, _depth in explorer.rows:
        if obj is None:
            continue
        view = explorer.show(path)
        view.wait(120)
        kinds[path] = type(view).__name__
        if getattr(view, "error", None) is not None:
            problems.append(f"{path}: {view.error!r}")
        if isinstance(view, FieldsView) and "cannot be drawn" in view.children[0].value:
            problems.append(f"{path}: {view.children[0].value}")
    return explorer, kinds, problems


@pytest.mark.parametrize("kind,expected", [
    ("ecephys", {"acquisition/ElectricalSeries": "TimeSeriesView", "units": "UnitsView",
                 "intervals/trials": "TableView", "electrodes": "TableView",
                 "processing/ecephys/LFP/ElectricalSeriesLFP": "TimeSeriesView"}),
    ("ophys", {"acquisition/TwoPhotonSeries": "ImageSeriesView",
               "processing/ophys/ImageSegmentation/PlaneSegmentation": "PlaneSegmentationView",
               "processing/ophys/Fluorescence/RoiResponseSeries": "TimeSeriesView",
               "processing/ophys/SegmentationImages/mean": "ImageView"}),
    ("behavior", {"processing/behavior/Position/SpatialSeriesPosition": "SpatialSeriesView",
                  "processing/behavior/BehavioralTimeSeries/speed": "TimeSeriesView",
                  "intervals/trials": "TableView"}),
])
def test_explorer_on_generated_files(read, kind, expected):
    explorer, kinds, problems = _explore_everything(read(kind))
    assert not problems
    for path, view in expected.items():
        assert kinds[path] == view, (path, kinds)
    assert explorer.rows[0][0] == "session"


@pytest.mark.fixtures
@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.name for p in FIXTURE_FILES])
def test_explorer_on_every_real_fixture(path, read):
    _explorer, kinds, problems = _explore_everything(read(path))
    assert not problems, problems
    assert len(kinds) > 3
    drawn = {v for v in kinds.values() if v != "FieldsView"}
    assert drawn, kinds  # something of every real file is drawn, not only listed


@pytest.mark.fixtures
def test_real_fixture_views_draw_what_they_should(read):
    if not FIXTURE_FILES:
        pytest.skip(f"{FIXTURES} is absent: tests on real DANDI data need ../shared")
    from dandilab.widgets import NWBExplorer

    nwb = read(FIXTURES / "000006_sub-anm369963_ses-20170228.nwb")
    units = NWBExplorer(nwb, select="units").view.wait()
    assert type(units).__name__ == "UnitsView" and units.data.counts.sum() > 0
    assert len(arr(units.raster.layers[0]["x"], np.float64)) > 0
    nwb = read(FIXTURES / "roiextractors_ophys_segmentation_nwb_test.nwb")
    explorer = NWBExplorer(nwb)
    ps_path = next(p for p, _l, o, _d in explorer.rows
                   if o is not None and o.neurodata_type == "PlaneSegmentation")
    ps = explorer.show(ps_path).wait()
    assert ps.n_rois == 15 and ps.error is None
    assert ps.series, "its RoiResponseSeries are found"
    nwb = read(FIXTURES / "neuroconv_buzsaki_stub_test.nwb")
    lfp = NWBExplorer(nwb).view.wait()
    assert type(lfp).__name__ == "TimeSeriesView" and lfp.n_channels == 96


@pytest.mark.fixtures
def test_legacy_nwb1_file_gives_a_clear_message():
    path = FIXTURES / "legacy_nwb1_brain_observatory_496908818s.nwb"
    if not path.exists():
        pytest.skip(f"{path} is absent: tests on real DANDI data need ../shared")
    from dandilab.widgets import NWBExplorer

    explorer = NWBExplorer(str(path))
    assert explorer.error is not None
    text = explorer.children[0].value
    assert "NWB-1.0.5" in text and "NWB 2" in text


def test_anything_else_shows_fields_and_shapes_never_a_crash(read, files):
    from dandilab.widgets import FieldsView, view_for

    nwb = read("ecephys")
    device = nwb.devices["NeuropixelsProbe0"]
    view = view_for(device)
    assert isinstance(view, FieldsView) and "IMEC" in view.html.value

    class Broken:
        neurodata_type = "TimeSeries"
        name = "broken"

        @property
        def fields(self):
            raise RuntimeError("a field that cannot be read")

    # a view that fails to build falls back to the fields, with the reason
    view = view_for(nwb.acquisition["ElectricalSeries"], no_such_option=1)
    assert isinstance(view, FieldsView) and "cannot be drawn" in view.children[0].value
    assert "dataset 180000 × 96 int16" in view.html.value
    assert isinstance(view_for(Broken()), FieldsView)


# -- over HTTP: bytes fetched vs the chunks a window touches ---------------------------------
def test_remote_window_fetches_its_chunks_and_little_else(files, tmp_path):
    from dandihub.localarchive.netproxy import NetProxy
    from dandilab.stream import open_nwb
    from dandilab.widgets.series import TimeSeriesView

    path = str(files["ecephys"])
    with NetProxy("http://127.0.0.1:9", rtt=0.005, bandwidth=None,
                  origin={"/ecephys.nwb": (path, "etag-ecephys")}) as proxy, \
            open_nwb(f"{proxy.url}/ecephys.nwb") as nwb:
        es = nwb.acquisition["ElectricalSeries"]
        rows = es.data.chunks[0]

        def stored(row):  # the stored bytes of a chunk row (96 channels: 2 chunk columns)
            return sum(es.data.id.get_chunk_info_by_coord((row * rows, c * 64)).size
                       for c in range(2))

        proxy.reset_stats()
        view = TimeSeriesView(es, window=1.0, channels=range(96), bins=800,
                              prefetch=False).wait()
        first = proxy.reset_stats()
        assert view.error is None and view.last.chunk_bytes == stored(0)
        assert first["bytes"] <= 1.5 * stored(0), (first, stored(0))
        view.set_window(3.0, 4.0)  # samples 90 000-120 000: chunk row 1 only
        view.wait()
        jump = proxy.reset_stats()
        assert view.last.chunk_bytes == stored(1)
        assert stored(1) <= jump["bytes"] <= 1.5 * stored(1), (jump, stored(1))
        view.set_window(3.2, 4.2)  # the same chunks: from memory, nothing fetched
        view.wait()
        assert proxy.reset_stats()["bytes"] == 0


# -- the archive browser -------------------------------------------------------------------
def test_dandiset_browser_search_walk_and_open(local_archive):
    from dandilab.archive import Archive
    from dandilab.widgets import DandisetBrowser, NWBExplorer

    from .localarchive_fixtures import SYNTHETIC, SYNTHETIC_ASSETS

    browser = DandisetBrowser(Archive(local_archive.api_url), search="squirrelfish")
    assert SYNTHETIC in [v for _, v in browser.results.options] or browser.search("") 
    browser.choose(SYNTHETIC, "draft")
    assert browser.version.value == "draft"
    top = [v for _, v in browser.entries.options]
    assert "sub-01/" in top and "README.md" in top
    browser.entries.value = "sub-01/"  # entering a folder as a click does
    inside = [v for _, v in browser.entries.options]
    assert SYNTHETIC_ASSETS[0].path in inside
    explorer = browser.open_asset(SYNTHETIC_ASSETS[0].path)
    assert isinstance(explorer, NWBExplorer), browser.status.value
    assert explorer.view is not None and type(explorer.view).__name__ == "TimeSeriesView"
    explorer.view.wait()
    assert explorer.view.error is None
    assert browser.open_asset("README.md") is None and "not an NWB file" in browser.status.value
    browser.nwbfile.close()
    ds = Archive(local_archive.api_url).dandiset(SYNTHETIC)
    assert DandisetBrowser(ds).version.value == ds.version  # from a Dandiset object


def test_open_nwb_results_display_as_explorers_with_pynwb_text(files, read):
    """What open_nwb returns (the file and its containers) displays as NWBExplorer, opened
    at the container, with pynwb's text for frontends without widgets; other NWBFiles keep
    pynwb's repr until ``enable()``; ``disable()`` restores it for all."""
    from dandilab import widgets
    from dandilab.stream import open_nwb
    from IPython.core.interactiveshell import InteractiveShell
    from ipywidgets import Widget

    shell = InteractiveShell.instance()
    widgets._policy.update(nwbfile=False, containers=False, off=False)
    try:
        fmt = shell.display_formatter.format
        with open_nwb(str(files["ecephys"])) as nwb:
            data, _ = fmt(nwb)
            model = data["application/vnd.jupyter.widget-view+json"]["model_id"]
            explorer = Widget.widgets[model]
            assert isinstance(explorer, widgets.NWBExplorer)
            assert explorer.select.value == "acquisition/ElectricalSeries"  # its default
            assert data["text/plain"] == repr(nwb) and "NWBFile" in data["text/plain"]
            units = nwb.units
            data, _ = fmt(units)
            at = Widget.widgets[data["application/vnd.jupyter.widget-view+json"]["model_id"]]
            assert isinstance(at, widgets.NWBExplorer) and at.select.value == "units"
            assert type(at.view).__name__ == "UnitsView"
            assert data["text/plain"] == repr(units)
            plain = read("behavior")  # read with pynwb itself: pynwb's repr
            assert "application/vnd.jupyter.widget-view+json" not in fmt(plain)[0]
            assert widgets.enable()  # ... unless asked for
            assert "application/vnd.jupyter.widget-view+json" in fmt(plain)[0]
            widgets.disable()
            assert "application/vnd.jupyter.widget-view+json" not in fmt(nwb)[0]
            assert "NWBFile" in fmt(nwb)[0]["text/plain"]
            widgets._policy["off"] = False
        # a closed file cannot stream: pynwb's repr
        assert "application/vnd.jupyter.widget-view+json" not in fmt(nwb)[0]
    finally:
        widgets._policy.update(nwbfile=False, containers=False, off=False)
        InteractiveShell.clear_instance()


def test_open_nwb_imports_the_widgets_only_when_displaying(files):
    import subprocess
    import sys

    script = f"""
import sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
from dandilab.stream import open_nwb
nwb = open_nwb({str(files["ecephys"])!r})
assert "dandilab.widgets" not in sys.modules and "anywidget" not in sys.modules
data, _ = shell.display_formatter.format(nwb)
assert "dandilab.widgets" in sys.modules
assert "application/vnd.jupyter.widget-view+json" in data, sorted(data)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_overview_draws_a_revisit_at_once_then_exactly(files):
    """Over HTTP each decoded chunk leaves its min/max overview in the cache (keyed by the
    asset's digest): a reader with nothing in memory (a revisit, another user) draws a
    wide window from it before fetching anything, approximately, then exactly."""
    from dandihub.localarchive.netproxy import NetProxy
    from dandilab.stream import open_nwb
    from dandilab.widgets import chunks
    from dandilab.widgets.chunks import ChunkedSeries

    chunks._cache = chunks._LRU(chunks.CACHE_BYTES)
    path = str(files["ecephys"])
    with NetProxy("http://127.0.0.1:9", rtt=0.005, bandwidth=None,
                  origin={"/ecephys.nwb": (path, "etag-ecephys")}) as proxy, \
            open_nwb(f"{proxy.url}/ecephys.nwb") as nwb:
        data = nwb.acquisition["ElectricalSeries"].data
        n = data.shape[0]
        first = ChunkedSeries(data)
        assert first.overview is not None and not first.overview.has(0, 0)
        exact = first.window(0, n, None, 200)  # 900 samples a bin: wider than the overview's
        chunks._overview_pool.submit(lambda: None).result()  # its writes are done
        assert all(first.overview.has(r, c) for r in range(3) for c in range(2))
        chunks._cache = chunks._LRU(chunks.CACHE_BYTES)  # nothing decoded in memory
        again = ChunkedSeries(data)
        proxy.reset_stats()
        steps = again.windows(0, n, None, 200)
        shown = next(steps)
        assert proxy.reset_stats()["bytes"] == 0  # drawn before any chunk is fetched
        assert (shown.rows_done, shown.approx_rows, shown.complete) == (0, 3, False)
        assert np.isfinite(shown.lo).all() and np.isfinite(shown.hi).all()
        np.testing.assert_array_equal(shown.lo.min(1), exact.lo.min(1))
        np.testing.assert_array_equal(shown.hi.max(1), exact.hi.max(1))
        spread = exact.hi.max() - exact.lo.min()
        assert np.mean(np.abs(shown.hi - exact.hi) <= 0.1 * spread) > 0.9
        rest = list(steps)
        assert [w.approx_rows for w in rest] == [2, 1, 0] and rest[-1].complete
        np.testing.assert_array_equal(rest[-1].lo, exact.lo)
        np.testing.assert_array_equal(rest[-1].hi, exact.hi)
        # a narrow window (bins narrower than the overview's) is drawn exactly only
        chunks._cache = chunks._LRU(chunks.CACHE_BYTES)
        narrow = list(ChunkedSeries(data).windows(0, 30000, None, 1000))
        assert [w.approx_rows for w in narrow] == [0]
    with h5py.File(files["ecephys"], "r") as f:  # a local file: nothing to key it by
        assert ChunkedSeries(f["acquisition/ElectricalSeries/data"]).overview is None


def test_a_filter_nobody_decodes_is_named_by_the_series_reader(tmp_path):
    """A series compressed with a filter neither dandilab nor h5py decodes: the reader (and
    so the view's message) names the filter's id and name and the fix, not h5py's error."""
    from dandilab.codec import UnsupportedFilterError
    from dandilab.widgets.chunks import ChunkedSeries

    from .corpus import write_unknown_filter

    path = tmp_path / "unknown-filter.h5"
    write_unknown_filter(path)
    with h5py.File(path, "r") as f:
        with pytest.raises(UnsupportedFilterError,
                           match=rf"^/data in {re.escape(str(path))} is compressed with HDF5 "
                                 r"filter 32002 \(MAFISC\), which neither dandilab nor h5py can "
                                 r"decode here; fix: install hdf5plugin \("):
            ChunkedSeries(f["data"])
        assert ChunkedSeries(f["readable"]).fast is False  # contiguous: h5py reads it
