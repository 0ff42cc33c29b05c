"""TimeSeries / ElectricalSeries: a time window over channels that reads only that window.

``TimeAxis`` maps times to sample indices without reading the timestamps (rate) or by
bisecting them lazily (timestamps); ``TimeSeriesView`` draws min/max envelopes of the
window's chunks (``chunks.ChunkedSeries``), with a time slider, pan/zoom buttons, drag
and wheel on the plot, a channel selection and a gain.

A window is drawn progressively (``ChunkedSeries.windows``): at once with the chunk rows
already in memory (after a pan, the half shared with the last window), then again as
each missing chunk row is decoded; until the last, the plot says "loading k of n chunk
rows" and bins not read yet are not drawn. After a window is complete, the next half
window in the direction of the last pan is read ahead (``prefetch``), so that a person
who looks at a window for a second pans into memory.
"""

from __future__ import annotations

import re
import time

import ipywidgets as W
import numpy as np

from .base import Timer, View, controls, text_of
from .chunks import ChunkedSeries
from .figure import Figure, envelope

__all__ = ["TimeAxis", "TimeSeriesView", "parse_channels"]


class TimeAxis:
    """Time <-> index of a TimeSeries: ``rate`` (+ ``starting_time``) or ``timestamps``."""

    def __init__(self, series, n: int):
        self.n = n
        self.rate = getattr(series, "rate", None)
        self.start = float(getattr(series, "starting_time", None) or 0.0)
        self.ts = None if self.rate else getattr(series, "timestamps", None)
        if self.ts is not None and not hasattr(self.ts, "shape"):
            self.ts = np.asarray(self.ts, dtype=float)
        if self.ts is not None and hasattr(self.ts, "data") and not hasattr(self.ts, "dtype"):
            self.ts = self.ts.data  # timestamps linked to another series
        self._probe: dict[int, float] = {}
        if not self.rate and self.ts is None:
            self.rate = 1.0  # neither: sample numbers as "seconds"; said in the status
            self.no_time = True
        else:
            self.no_time = False

    def _t(self, i: int) -> float:
        if i not in self._probe:
            self._probe[i] = float(self.ts[i])
        return self._probe[i]

    @property
    def t_first(self) -> float:
        return self.start if self.rate else (self._t(0) if self.n else 0.0)

    @property
    def t_last(self) -> float:
        if self.rate:
            return self.start + self.n / self.rate
        return self._t(self.n - 1) if self.n else 0.0

    def index(self, t: float) -> int:
        """First sample at or after time ``t`` (clipped to [0, n])."""
        if self.rate:
            return int(np.clip(np.ceil((t - self.start) * self.rate - 1e-9), 0, self.n))
        lo, hi = 0, self.n
        while lo < hi:  # a few single-element reads; each reads one stored chunk
            mid = (lo + hi) // 2
            if self._t(mid) < t:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def times(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        if self.rate:
            return self.start + idx / self.rate
        if len(idx) == 0:
            return np.empty(0)
        a, b = int(idx[0]), int(idx[-1]) + 1
        if b - a <= 4 * len(idx) + 1024:
            return np.asarray(self.ts[a:b], dtype=float)[idx - a]
        uniq = np.unique(idx)
        return np.asarray(self.ts[uniq], dtype=float)[np.searchsorted(uniq, idx)]


def parse_channels(text: str, n: int) -> list[int]:
    """``"0-63, 100, 200-210"`` -> channel indices (0-based, clipped to ``n``)."""
    out: list[int] = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:[-:](\d+))?", part)
        if not m:
            raise ValueError(f"{part!r} is not a channel or a range like 10-20")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        out.extend(range(max(0, a), min(n - 1, b) + 1))
    return sorted(set(out))


def _depth_column(series) -> str:
    table = getattr(getattr(series, "electrodes", None), "table", None)
    names = set(getattr(table, "colnames", ()) or ())
    return next((c for c in ("rel_y", "y") if c in names), "")


def _depths(series, n_channels: int):
    """Each channel's position along the probe (``rel_y``, else ``y``, of its electrodes
    row), or None when the table has neither or cannot be read."""
    key = _depth_column(series)
    if not key:
        return None
    try:
        region = series.electrodes
        idx = np.asarray(region.data[()] if hasattr(region.data, "id") else region.data)
        col = region.table[key].data
        values = np.asarray(col[()] if hasattr(col, "id") else col, dtype=float)
        if len(idx) != n_channels or idx.max(initial=0) >= len(values):
            return None
        depth = values[idx]
        return depth if np.isfinite(depth).all() else None
    except Exception:  # noqa: BLE001 - an odd table: channel order instead
        return None


def _display_units(series, values_range: float) -> tuple[float, str]:
    """(factor, unit) to show values in, e.g. volts shown as microvolts."""
    unit = text_of(getattr(series, "unit", "") or "")
    if type(getattr(series, "parent", None)).__name__ in ("DfOverF", "Fluorescence"):
        from .imaging import trace_label  # ΔF/F, not the placeholder unit "n.a."

        return 1.0, trace_label(series)
    if unit.lower() in ("volts", "volt", "v") and 0 < values_range < 1e-2:
        return 1e6, "µV"
    if unit.lower() in ("volts", "volt", "v") and 0 < values_range < 10:
        return 1e3, "mV"
    return 1.0, unit


class TimeSeriesView(View):
    """A window of ``series`` (TimeSeries or ElectricalSeries, data (time[, channel])).

    ``window`` seconds (default: 1 s, or 2 000 samples of a slow series), ``channels``
    (indices; default: the first ``group`` channels in depth order), ``start`` time.
    Drag/wheel on the plot, the slider or ``pan(fraction)``/``zoom(factor)``/
    ``set_window(t0, t1)`` move it; ``page_channels(±1)`` shows the next/previous group.

    Channels are stacked in depth order (the electrodes table's ``rel_y`` or ``y``, when
    it has one; else channel order), ``spacing`` apart: the median over channels of the
    robust (1st-99th percentile) amplitude of the first window.
    """

    max_channels = 384
    group = 32  # channels on screen by default: hundreds stacked are a solid texture

    def __init__(self, series, *, window: float | None = None, channels=None,
                 start: float | None = None, height: int | None = None, bins: int | None = None,
                 prefetch: bool = True):
        super().__init__(series)
        data = series.data
        self.data = ChunkedSeries(data)
        self.n, self.n_channels = self.data.shape
        self.axis = TimeAxis(series, self.n)
        self.conversion = float(getattr(series, "conversion", 1.0) or 1.0)
        self.offset = float(getattr(series, "offset", 0.0) or 0.0)
        self.bins = bins
        self.prefetch = prefetch
        self.labels = self._channel_labels(series)
        depth = _depths(series, self.n_channels)
        # channel indices in the order of their position along the probe
        self.order = (np.argsort(depth, kind="stable") if depth is not None
                      else np.arange(self.n_channels))
        self.depth_key = "" if depth is None else _depth_column(series)
        self._rank = np.empty(self.n_channels, dtype=np.int64)
        self._rank[self.order] = np.arange(self.n_channels)
        t_first, t_last = self.axis.t_first, self.axis.t_last
        self.duration = max(t_last - t_first, 1e-9)
        if window is None:
            rate = self.axis.rate or (self.n / self.duration if self.duration else 1.0)
            window = max(1.0, 2000.0 / rate) if rate else 1.0
        window = min(float(window), self.duration)
        t0 = t_first if start is None else float(start)
        self.t0, self.t1 = t0, t0 + window
        if channels is None:
            channels = self.order[: min(self.n_channels, self.group)]
        self.channels = np.asarray(sorted({int(c) for c in channels}), dtype=np.int64)
        self.gain = 1.0
        self._syncing = False
        self._spacing = None
        self._baseline = None
        self.last = None  # the last Window drawn
        # one per window asked for: {"started": perf_counter, "paints": [perf_counter of
        # each draw], "rows": [(rows done, rows in all) of each draw], "approx": [rows
        # drawn from the overview, of each draw], "complete": bool}
        self.timings: list[dict] = []
        self._direction = 1  # after the first window, read ahead forwards: where people pan

        nch = len(self.channels)
        self.figure = Figure(height=height or int(min(700, max(260, 60 + 12 * nch))), pan=True,
                             x_label="time (s)", title=f"{series.name}")
        self.figure.on_view(lambda a, b: self.set_window(a, b))
        self.figure.observe(self._on_width, "width")
        step = max(self.duration / 10000, 1e-6)
        self.slider = W.FloatSlider(value=t0, min=t_first, max=max(t_first, t_last - window),
                                    step=step, description="start (s)", continuous_update=False,
                                    readout_format=".3f", layout=W.Layout(width="60%"))
        self.slider.observe(lambda ch: self._from_slider(ch["new"]), "value")
        self.length = W.BoundedFloatText(value=round(window, 6), min=1e-6, max=self.duration,
                                         description="window (s)", layout=W.Layout(width="190px"))
        self.length.observe(lambda ch: None if self._syncing else
                            self.set_window(self.t0, self.t0 + ch["new"]), "value")
        buttons = []
        for label, tip, fn in (("◀◀", "back one window", lambda: self.pan(-1.0)),
                               ("◀", "back half a window", lambda: self.pan(-0.5)),
                               ("▶", "forward half a window", lambda: self.pan(0.5)),
                               ("▶▶", "forward one window", lambda: self.pan(1.0)),
                               ("+", "zoom in", lambda: self.zoom(0.5)),
                               ("−", "zoom out", lambda: self.zoom(2.0))):
            b = W.Button(description=label, tooltip=tip, layout=W.Layout(width="52px"))
            b.on_click(lambda _b, fn=fn: fn())
            buttons.append(b)
        self.channel_text = W.Text(value=self._channels_text(), description="channels",
                                   continuous_update=False, layout=W.Layout(width="260px"))
        self.channel_text.observe(lambda ch: self._from_channel_text(ch["new"]), "value")
        self.gain_slider = W.FloatLogSlider(value=1.0, base=2, min=-6, max=6, step=0.5,
                                            description="gain", continuous_update=False,
                                            layout=W.Layout(width="340px"))
        self.gain_slider.observe(lambda ch: self._set_gain(ch["new"]), "value")
        self.channel_buttons = []
        for label, tip, step in (("▲ channels", "previous group of channels", -1),
                                 ("channels ▼", "next group of channels", 1)):
            b = W.Button(description=label, tooltip=tip, layout=W.Layout(width="110px"))
            b.on_click(lambda _b, step=step: self.page_channels(step))
            self.channel_buttons.append(b)
        time_row = controls([self.slider, self.length, *buttons])
        options = controls([self.channel_text, *self.channel_buttons, self.gain_slider])
        if self.axis.no_time:
            self.say("this series has neither rate nor timestamps: the x axis is sample numbers")
        self.children = [time_row, options, self.figure, self.status]
        self.draw()

    # -- state ----------------------------------------------------------------------------
    @property
    def state(self) -> dict:
        return {"t0": self.t0, "t1": self.t1, "channels": self.channels.tolist(),
                "gain": self.gain, "bins": self._bins()}

    def _bins(self) -> int:
        return int(self.bins or max(100, self.figure.width))

    def set_window(self, t0: float, t1: float) -> None:
        """Show ``[t0, t1)`` (clipped to the recording; keeps its length when it can)."""
        first, last = self.axis.t_first, self.axis.t_last
        length = min(max(t1 - t0, 1e-6), self.duration)
        t0 = min(max(t0, first), last - length)
        # a pan (not a jump) prefetches the next chunk row in its direction
        self._direction = int(np.sign(t0 - self.t0)) if abs(t0 - self.t0) <= length else 0
        if not self._direction:
            self.data.cancel_prefetch()  # what it reads ahead is no longer next
        self.t0, self.t1 = t0, t0 + length
        self._syncing = True  # the slider and the length box follow, without drawing again
        try:
            with self.slider.hold_trait_notifications():
                self.slider.max = max(first, last - length)
                self.slider.value = t0
            self.length.value = round(length, 6)
        finally:
            self._syncing = False
        self.draw()

    def pan(self, fraction: float) -> None:
        """Move by ``fraction`` of the window (negative: back)."""
        w = self.t1 - self.t0
        self.set_window(self.t0 + fraction * w, self.t1 + fraction * w)

    def zoom(self, factor: float) -> None:
        """Scale the window's length by ``factor`` around its centre."""
        c, w = (self.t0 + self.t1) / 2, (self.t1 - self.t0) * factor
        self.set_window(c - w / 2, c + w / 2)

    def set_channels(self, channels) -> None:
        chans = sorted({int(c) for c in channels if 0 <= int(c) < self.n_channels})
        if not chans:
            raise ValueError(f"no channel among 0-{self.n_channels - 1} selected")
        self.channels = np.asarray(chans, dtype=np.int64)
        self._spacing = self._baseline = None
        self.channel_text.value = self._channels_text()
        self.draw()

    def page_channels(self, step: int) -> None:
        """Show the next (``step`` > 0) or previous group of as many channels as now, in
        depth order."""
        size = len(self.channels)
        first = int(self._rank[self.channels].min())
        first = int(np.clip(first + step * size, 0, max(0, self.n_channels - size)))
        self.set_channels(self.order[first:first + size])

    def _from_slider(self, value: float) -> None:
        if not getattr(self, "_syncing", False):
            self.set_window(value, value + (self.t1 - self.t0))

    def _from_channel_text(self, text: str) -> None:
        try:
            chans = parse_channels(text, self.n_channels)
            if list(chans) != self.channels.tolist():
                self.set_channels(chans)
        except ValueError as e:
            self.say(str(e), "warning")

    def _set_gain(self, gain: float) -> None:
        self.gain = float(gain)
        self.draw()

    def _on_width(self, change) -> None:
        if self.bins is None and abs(change["new"] - change["old"]) > 20:
            self.draw()

    def _channels_text(self) -> str:
        c = self.channels.tolist()
        runs, start = [], None
        for i, v in enumerate(c):
            if start is None:
                start = v
            if i + 1 == len(c) or c[i + 1] != v + 1:
                runs.append(f"{start}-{v}" if v != start else f"{v}")
                start = None
        return ", ".join(runs)

    def _channel_labels(self, series) -> list[str]:
        electrodes = getattr(series, "electrodes", None)
        try:
            if electrodes is not None:
                idx = np.asarray(electrodes.data[()] if hasattr(electrodes.data, "id")
                                 else electrodes.data)
                ids = np.asarray(electrodes.table.id.data[()] if hasattr(
                    electrodes.table.id.data, "id") else electrodes.table.id.data)
                if len(idx) == self.n_channels and idx.max(initial=0) < len(ids):
                    return [str(ids[i]) for i in idx]
        except Exception:  # noqa: BLE001, S110 - a broken region: channel numbers instead
            pass
        return [str(i) for i in range(self.n_channels)]

    # -- drawing --------------------------------------------------------------------------
    def draw(self) -> None:
        self.load(self._draw)

    PAINT_EVERY = 0.08  # s: rows decoded faster than this are drawn together

    def _draw(self) -> None:
        timer = Timer()
        t0, t1, chans, bins = self.t0, self.t1, self.channels, self._bins()
        i0, i1 = self.axis.index(t0), self.axis.index(t1)
        i1 = max(i1, min(self.n, i0 + 2))
        record = {"started": time.perf_counter(), "paints": [], "rows": [], "approx": [],
                  "complete": False}
        self.timings.append(record)
        last_paint, win = 0.0, None
        for win in self.data.windows(i0, i1, chans, bins, direction=self._direction or 1,
                                     stop=self._loader.pending):
            if not win.complete:
                if self._loader.pending():
                    return  # a newer window was asked for: draw that one instead
                if record["paints"] and timer() - last_paint < self.PAINT_EVERY:
                    continue
            self._paint(win, t0, t1, chans, timer)
            last_paint = timer()
            record["paints"].append(time.perf_counter())
            record["rows"].append((win.rows_done, win.rows_total))
            record["approx"].append(win.approx_rows)
        if win is None or not win.complete:
            return
        record["complete"] = True
        record.update(total_s=timer(), bytes=win.stats.get("bytes_read", 0),
                      chunk_bytes=win.chunk_bytes)
        if self.prefetch and self.data.chunks is not None and self._direction:
            # read ahead what the next pan of half a window in the same direction needs
            half = max(1, (i1 - i0) // 2)
            a, b = (i1, min(self.n, i1 + half)) if self._direction > 0 else (max(0, i0 - half), i0)
            if b > a:
                rows = list(self.data.rows_of(a, b))
                self.data.prefetch_rows(rows if self._direction > 0 else rows[::-1], chans)

    def _paint(self, win, t0: float, t1: float, chans, timer) -> None:
        """Draw ``win`` (complete or not) and say what it is."""
        read_s = timer()
        lo = win.lo * self.conversion + self.offset
        hi = win.hi * self.conversion + self.offset
        if win.decimated:
            x = self.axis.times(win.starts)
        else:
            x = self.axis.times(np.arange(win.i0, win.i1))
        finite = np.isfinite(lo).all(axis=0) & np.isfinite(hi).all(axis=0) if lo.size else None
        if self._baseline is None or len(self._baseline) != len(chans):
            part_lo, part_hi = (lo[:, finite], hi[:, finite]) if finite is not None else (lo, hi)
            mid = (part_lo + part_hi) / 2
            self._baseline = np.median(mid, axis=1) if mid.size else np.zeros(len(chans))
            # robust: a few spikes or artefacts must not spread the traces apart
            span = np.percentile(part_hi, 99, axis=1) - np.percentile(part_lo, 1, axis=1) \
                if part_hi.size else np.ones(len(chans))
            span = span[np.isfinite(span) & (span > 0)]
            self._spacing = float(np.median(span)) if span.size else 1.0
            self._factor, self._unit = _display_units(self.obj, self._spacing)
        nch = len(chans)
        spacing = self._spacing * self._factor
        base = (self._baseline * self._factor)[:, None]
        lo_d, hi_d = lo * self._factor - base, hi * self._factor - base
        if nch == 1:
            offsets = np.zeros(1)
            ok = np.isfinite(lo_d) & np.isfinite(hi_d)
            ymin = float(lo_d[ok].min()) if ok.any() else -1.0
            ymax = float(hi_d[ok].max()) if ok.any() else 1.0
            pad = (ymax - ymin) * 0.05 or 1.0
            y_range = (ymin - pad, ymax + pad)
            y_ticks, y_label, scale = [], f"{self.obj.name} ({self._unit})", 1.0
        else:
            # stacked in depth order: the first of the order at the bottom
            place = np.empty(nch, dtype=np.int64)
            place[np.argsort(self._rank[chans], kind="stable")] = np.arange(nch)
            offsets = place * spacing
            y_range = (-spacing, nch * spacing)
            every = max(1, nch // 24)
            y_ticks = [[float(offsets[k]), self.labels[c]] for k, c in enumerate(chans)
                       if place[k] % every == 0]
            by = f", by {self.depth_key}" if self.depth_key else ""
            y_label = f"channel{by} ({spacing:.3g} {self._unit} apart)"
            scale = self.gain
        loading = "" if win.complete else \
            f"loading {win.rows_done} of {win.rows_total} chunk rows…" + (
                f" ({win.approx_rows} from the overview)" if win.approx_rows else "")
        layer = envelope(x, lo_d, hi_d, offsets, scale=scale)
        self.figure.show([layer], x_range=(t0, t1), y_range=y_range, y_ticks=y_ticks,
                         y_label=y_label, loading=loading)
        self.last = win
        i0, i1 = win.i0, win.i1
        parts = [f"{t0:.3f}–{t1:.3f} s", f"{nch} of {self.n_channels} channels",
                 f"{i1 - i0:,} samples"]
        if win.decimated:
            parts.append(f"min/max of {len(win.starts)} bins")
        got = win.stats.get("bytes_read", 0)
        parts.append(f"read {got / 1e6:.1f} MB of chunks in {read_s:.2f} s" if got
                     else f"from memory in {read_s:.2f} s")
        text = " · ".join(parts)
        if loading:
            text = f"{loading} · {text}"
        if win.sampled:
            text += (f" — overview: {win.sampled[0]} of {win.sampled[1]} chunk rows read; "
                     "zoom in for every sample")
        self.say(text, "warning" if win.sampled else "info")
