"""Units: a spike raster over a time window, firing rates, and a PSTH aligned to a column
of a trials (or any intervals) table.

Spike times are a ragged column: ``spike_times_index`` (one end offset per unit, small)
says where each unit's times are, so a unit's spikes are one contiguous slice read when
the unit is first shown; firing rates need only the index and each unit's first and last
spike (one point selection), never all spike times.
"""

from __future__ import annotations

import ipywidgets as W
import numpy as np

from .base import Timer, View, controls, small_array, text_of
from .figure import Figure, bars, lines, ticks

__all__ = ["UnitsData", "UnitsView", "align_columns", "group_columns", "psth"]

GROUP_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
GROUP_NAMES = ["blue", "red", "green", "purple", "orange", "cyan", "brown", "pink", "grey",
               "olive"]
MAX_GROUPS = 10  # a column with more distinct values is not a condition to split by


class UnitsData:
    """Lazy access to a Units table's spike times (``times(i)``, ``counts``, ``span``)."""

    def __init__(self, units):
        self.units = units
        index = getattr(units, "spike_times_index", None)
        column = getattr(units, "spike_times", None)
        if column is None and "spike_times" in getattr(units, "colnames", ()):
            column = units["spike_times"]
        if index is None or column is None:
            raise LookupError("this Units table has no spike_times column")
        data = column.target.data if hasattr(column, "target") else column.data
        self.times_data = data
        self.ends = np.asarray(small_array(index.data, 1 << 28), dtype=np.int64)
        self.starts = np.concatenate([[0], self.ends[:-1]])
        self.ids = np.asarray(small_array(units.id.data, 1 << 28))
        self._cache: dict[int, np.ndarray] = {}
        self._span = None

    def __len__(self) -> int:
        return len(self.ends)

    @property
    def counts(self) -> np.ndarray:
        return self.ends - self.starts

    def times(self, i: int) -> np.ndarray:
        if i not in self._cache:
            a, b = int(self.starts[i]), int(self.ends[i])
            self._cache[i] = np.asarray(self.times_data[a:b], dtype=float) if b > a else np.empty(0)
        return self._cache[i]

    @property
    def span(self) -> tuple[float, float]:
        """(first, last) spike time of the whole table (reads two values per unit)."""
        if self._span is None:
            nonempty = np.nonzero(self.counts > 0)[0]
            if not len(nonempty):
                self._span = (0.0, 1.0)
            else:
                points = np.unique(np.concatenate([self.starts[nonempty], self.ends[nonempty] - 1]))
                vals = np.asarray(self.times_data[points.tolist()], dtype=float)
                self._span = (float(np.nanmin(vals)), float(np.nanmax(vals)))
        return self._span

    def rates(self) -> np.ndarray:
        first, last = self.span
        return self.counts / max(last - first, 1e-9)


def psth(spikes: np.ndarray, align: np.ndarray, before: float, after: float,
         bin_size: float) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(edges, rate in spikes/s per trial, per-trial relative spike times)."""
    spikes = np.sort(np.asarray(spikes, dtype=float))
    align = np.asarray(align, dtype=float)
    align = align[np.isfinite(align)]
    edges = np.arange(-before, after + bin_size / 2, bin_size)
    counts = np.zeros(len(edges) - 1)
    per_trial = []
    for a in align:
        lo, hi = np.searchsorted(spikes, [a - before, a + after])
        rel = spikes[lo:hi] - a
        per_trial.append(rel)
        counts += np.histogram(rel, edges)[0]
    rate = counts / max(len(align), 1) / bin_size
    return edges, rate, per_trial


def align_columns(nwbfile) -> dict[str, object]:
    """``{"trials.start_time": VectorData, ...}``: numeric 1-D columns of every intervals
    table of the file (what a PSTH can be aligned to)."""
    out = {}
    if nwbfile is None:
        return out
    for table_name, table in (getattr(nwbfile, "intervals", None) or {}).items():
        for col in getattr(table, "columns", ()):
            if getattr(col, "neurodata_type", "") in ("VectorIndex", "DynamicTableRegion"):
                continue
            if col.name.endswith("_index"):
                continue
            dtype = getattr(col.data, "dtype", None)
            if dtype is None:
                try:
                    dtype = np.asarray(col.data[:1]).dtype
                except Exception:  # noqa: BLE001, S112 - a column we cannot type: not offered
                    continue
            if np.dtype(dtype).kind in "fiu" and len(getattr(col.data, "shape", (0,))) == 1:
                out[f"{table_name}.{col.name}"] = col
    return out


def group_columns(nwbfile) -> dict[str, object]:
    """``{"trials.condition": VectorData, ...}``: 1-D columns of every intervals table with
    at most ``MAX_GROUPS`` distinct values (conditions a PSTH can be split by)."""
    out = {}
    if nwbfile is None:
        return out
    for table_name, table in (getattr(nwbfile, "intervals", None) or {}).items():
        for col in getattr(table, "columns", ()):
            if getattr(col, "neurodata_type", "") in ("VectorIndex", "DynamicTableRegion") \
                    or col.name.endswith("_index") or col.name in ("start_time", "stop_time"):
                continue
            try:
                values = _values(col)
            except Exception:  # noqa: BLE001, S112 - a column we cannot read: not offered
                continue
            if values is not None and values.ndim == 1 and \
                    1 < len(np.unique(values)) <= MAX_GROUPS:
                out[f"{table_name}.{col.name}"] = col
    return out


def _values(col):
    data = small_array(col.data, 1 << 20)  # a trials table's column; not a huge epochs one
    if data is None:
        return None
    if data.dtype.kind in "OSU":
        return np.array([text_of(v) for v in data], dtype=object)
    return data


def _nwbfile_of(obj):
    while obj is not None and type(obj).__name__ not in ("NWBFile",) and \
            getattr(obj, "neurodata_type", "") != "NWBFile":
        obj = getattr(obj, "parent", None)
    return obj


class UnitsView(View):
    """Raster of ``units`` over ``window`` seconds (units ``first_unit`` .. + ``max_units``),
    a firing-rate bar per unit, and a PSTH of one unit aligned to a trials column."""

    def __init__(self, units, *, window: float = 10.0, max_units: int = 100, nwbfile=None,
                 group_by: str | None = None):
        super().__init__(units)
        try:
            self.data = UnitsData(units)
        except LookupError as e:
            self.data = None
            self.say(str(e) + "; its other columns are in the table below", "warning")
            from .table import TableView

            self.children = [self.status, TableView(units)]
            return
        n = len(self.data)
        self.max_units = max_units
        self.first_unit = 0
        first, last = self.data.span
        self.t_first, self.t_last = first, last
        window = min(window, max(last - first, 1e-3))
        # a little before the first spike, so that it is not hidden by the plot's edge
        self.t0 = first - 0.02 * window
        self.t1 = self.t0 + window
        self.raster = Figure(height=int(min(520, 80 + 6 * min(n, max_units))), pan=True,
                             x_label="time (s)", y_label="unit", title="spike raster")
        self.raster.on_view(lambda a, b: self.set_window(a, b))
        self.rates = Figure(height=220, x_label="unit (index)", y_label="spikes/s",
                            title="mean firing rate")
        self.psth_fig = Figure(height=260, x_label="time from event (s)", y_label="spikes/s",
                               title="PSTH")
        self.raster.on_click(lambda _x, y: self._pick_unit(round(y)))
        self.rates.on_click(lambda x, _y: self._pick_unit(int(np.floor(x))))
        self.unit_select = W.BoundedIntText(value=0, min=0, max=max(0, n - 1),
                                            description="unit", layout=W.Layout(width="180px"))
        self.unit_select.observe(lambda ch: self.draw_psth(), "value")
        nwbfile = nwbfile if nwbfile is not None else _nwbfile_of(units)
        self.columns = align_columns(nwbfile)
        self.groups = group_columns(nwbfile)
        self.group_by = W.Dropdown(options=["(none)", *self.groups],
                                   value=group_by if group_by in self.groups else "(none)",
                                   description="split by", layout=W.Layout(width="280px"))
        self.group_by.observe(lambda ch: self.draw_psth(), "value")
        self.trial_raster = Figure(height=260, x_label="time from event (s)",
                                   y_label="trial", title="trials")
        options = list(self.columns) or ["(no intervals table)"]
        default = "trials.start_time" if "trials.start_time" in self.columns else options[0]
        self.align = W.Dropdown(options=options, value=default, description="align to",
                                layout=W.Layout(width="320px"))
        self.align.observe(lambda ch: self.draw_psth(), "value")
        self.before = W.FloatText(value=0.5, description="before (s)", layout=W.Layout(width="170px"))
        self.after = W.FloatText(value=1.0, description="after (s)", layout=W.Layout(width="170px"))
        self.bin_size = W.FloatText(value=0.02, description="bin (s)", layout=W.Layout(width="170px"))
        for w in (self.before, self.after, self.bin_size):
            w.observe(lambda ch: self.draw_psth(), "value")
        self.page = W.IntSlider(value=0, min=0, max=max(0, (n - 1) // max_units),
                                description="units page", continuous_update=False)
        self.page.observe(lambda ch: self.set_units(ch["new"] * self.max_units), "value")
        nav = []
        for label, tip, f in (("◀◀", "back one window", -1.0), ("◀", "back half a window", -0.5),
                              ("▶", "forward half a window", 0.5),
                              ("▶▶", "forward one window", 1.0)):
            b = W.Button(description=label, tooltip=tip, layout=W.Layout(width="52px"))
            b.on_click(lambda _b, f=f: self.pan(f))
            nav.append(b)
        self._syncing = False
        self.slider = W.FloatSlider(value=self.t0, min=self.t0,
                                    max=max(self.t0, last - window),
                                    step=max((last - first) / 10000, 1e-6),
                                    description="start (s)", continuous_update=False,
                                    readout_format=".2f", layout=W.Layout(width="60%"))
        self.slider.observe(lambda ch: None if self._syncing else
                            self.set_window(ch["new"], ch["new"] + self.t1 - self.t0), "value")
        self.length = W.BoundedFloatText(value=round(window, 6), min=1e-3,
                                         max=max(last - first, 1e-3) * 1.05,
                                         description="window (s)", layout=W.Layout(width="190px"))
        self.length.observe(lambda ch: None if self._syncing else
                            self.set_window(self.t0, self.t0 + ch["new"]), "value")
        self.children = [
            controls([self.slider, self.length, *nav]), self.page, self.raster, self.rates,
            controls([self.unit_select, self.align, self.group_by]),
            controls([self.before, self.after, self.bin_size]),
            self.psth_fig, self.trial_raster, self.status,
        ]
        self.draw()
        self.draw_rates()
        self.draw_psth()

    @property
    def state(self) -> dict:
        return {"t0": self.t0, "t1": self.t1, "first_unit": self.first_unit,
                "unit": self.unit_select.value, "align": self.align.value}

    def set_window(self, t0: float, t1: float) -> None:
        """Show spikes in ``[t0, t1)`` (kept within the recording, its length kept)."""
        first, last = self.t_first, self.t_last
        margin = 0.02 * (t1 - t0)  # as at the start: the first spike not on the edge
        length = min(max(t1 - t0, 1e-6), (last - first) + 2 * margin)
        t0 = min(max(t0, first - margin), last + margin - length)
        self.t0, self.t1 = t0, t0 + length
        self._syncing = True  # the slider and the length box follow without drawing again
        try:
            with self.slider.hold_trait_notifications():
                self.slider.min = min(self.slider.min, t0)
                self.slider.max = max(self.slider.min, last + margin - length)
                self.slider.value = t0
            self.length.value = round(length, 6)
        finally:
            self._syncing = False
        self.draw()

    def zoom(self, factor: float) -> None:
        c, w = (self.t0 + self.t1) / 2, (self.t1 - self.t0) * factor
        self.set_window(c - w / 2, c + w / 2)

    def pan(self, fraction: float) -> None:
        w = self.t1 - self.t0
        self.set_window(self.t0 + fraction * w, self.t1 + fraction * w)

    def set_units(self, first: int) -> None:
        self.first_unit = int(np.clip(first, 0, max(0, len(self.data) - 1)))
        self.draw()

    def _pick_unit(self, i: int) -> None:
        if 0 <= i < len(self.data):
            self.unit_select.value = i

    def draw(self) -> None:
        self.load(self._draw_raster)

    def _draw_raster(self) -> None:
        timer = Timer()
        a, b = self.first_unit, min(len(self.data), self.first_unit + self.max_units)
        xs, rows = [], []
        for i in range(a, b):
            st = self.data.times(i)
            lo, hi = np.searchsorted(st, [self.t0, self.t1])
            xs.append(st[lo:hi])
            rows.append(np.full(hi - lo, i, np.int32))
        x = np.concatenate(xs) if xs else np.empty(0)
        row = np.concatenate(rows) if rows else np.empty(0, np.int32)
        every = max(1, (b - a) // 20)
        yt = [[float(i), text_of(self.data.ids[i])] for i in range(a, b) if (i - a) % every == 0]
        self.raster.show([ticks(x, row)], x_range=(self.t0, self.t1),
                         y_range=(a - 0.5, b - 0.5), y_ticks=yt,
                         message="" if len(x) else "no spikes in this window")
        self.say(f"units {a}-{b - 1} of {len(self.data)} · {self.t0:.2f}–{self.t1:.2f} s · "
                 f"{len(x)} spikes · {timer():.2f} s")

    def draw_rates(self) -> None:
        rates = self.data.rates()
        n = len(rates)
        self.rates.show([bars(np.arange(n + 1), rates)], x_range=(0, max(n, 1)),
                        y_range=(0, float(rates.max(initial=0)) * 1.1 or 1.0))

    def draw_psth(self) -> None:
        self.load(self._draw_psth)

    def _draw_psth(self) -> None:
        col = self.columns.get(self.align.value)
        unit = int(self.unit_select.value)
        title = f"PSTH of unit {text_of(self.data.ids[unit]) if len(self.data) else '-'}"
        if col is None:
            self.psth_fig.show([], message="no trials or intervals table to align to",
                               title=title)
            return
        before, after = abs(float(self.before.value)), abs(float(self.after.value))
        bin_size = max(float(self.bin_size.value), 1e-4)
        align = np.asarray(small_array(col.data, 1 << 26), dtype=float)
        spikes = self.data.times(unit)
        group_col = self.groups.get(self.group_by.value)
        table = self.align.value.split(".")[0]
        labels = None
        if group_col is not None and self.group_by.value.split(".")[0] == table:
            labels = _values(group_col)
            if labels is not None and len(labels) != len(align):
                labels = None
        where = f"{title} aligned to {self.align.value}"
        if labels is None:
            edges, rate, per_trial = psth(spikes, align, before, after, bin_size)
            self.psth_result = (edges, rate)
            self.psth_groups = {}
            ymax = float(rate.max(initial=0)) * 1.1 or 1.0
            layers = [bars(edges, rate), lines([0, 0], [0, ymax], color="#888")]
            order, rows_label = np.arange(len(per_trial)), "trial"
            colors = [None] * len(per_trial)  # the theme's ink
            self.psth_fig.show(layers, x_range=(-before, after), y_range=(0, ymax),
                               title=f"{where} ({len(per_trial)} events)")
        else:
            keep = np.isfinite(align)
            align, labels = align[keep], labels[keep]
            values = sorted(np.unique(labels).tolist(), key=str)
            self.psth_groups, layers, names = {}, [], []
            for k, v in enumerate(values):
                edges, rate, _ = psth(spikes, align[labels == v], before, after, bin_size)
                self.psth_groups[text_of(v)] = (edges, rate, int((labels == v).sum()))
                mids = (edges[:-1] + edges[1:]) / 2
                layers.append(lines(mids, rate, color=GROUP_COLORS[k % len(GROUP_COLORS)],
                                    width=1.6))
                names.append(f"{text_of(v)}: {GROUP_NAMES[k % len(GROUP_NAMES)]}, "
                             f"{int((labels == v).sum())} trials")
            edges, rate, per_trial = psth(spikes, align, before, after, bin_size)
            self.psth_result = (edges, rate)
            ymax = max(float(r.max(initial=0)) for _e, r, _n in self.psth_groups.values())
            ymax = ymax * 1.1 or 1.0
            layers.append(lines([0, 0], [0, ymax], color="#888"))
            column = self.group_by.value.split(".", 1)[1]
            self.psth_fig.show(layers, x_range=(-before, after), y_range=(0, ymax),
                               title=f"{where}, by {column}")
            self.legend = names
            # trials grouped: each condition's trials together, in its colour
            order = np.argsort(np.array([values.index(v) for v in labels]), kind="stable")
            colors = [GROUP_COLORS[values.index(labels[i]) % len(GROUP_COLORS)] for i in order]
            rows_label = f"trial (by {column})"
        layers = []
        for color in dict.fromkeys(colors):  # one ticks layer per colour
            xs = [per_trial[i] for r, i in enumerate(order) if colors[r] == color]
            rows = [np.full(len(per_trial[i]), r, np.int32) for r, i in enumerate(order)
                    if colors[r] == color]
            layers.append(ticks(np.concatenate(xs) if xs else np.empty(0),
                                np.concatenate(rows) if rows else np.empty(0, np.int32),
                                color=color))
        n = len(per_trial)
        self.trial_raster.show(layers, x_range=(-before, after), y_range=(-0.5, max(n, 1) - 0.5),
                               y_label=rows_label,
                               title=f"{n} trial{'' if n == 1 else 's'}" + (
                                   "" if labels is None else
                                   " · " + " · ".join(self.legend)))
