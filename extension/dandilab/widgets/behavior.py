"""SpatialSeries: the trajectory over a time window (x vs y) and each coordinate over time.

The window is read once (``chunks.ChunkedSeries``) and shared by both plots; a long
window is min/max-decimated for the time plot and evenly thinned for the trajectory.
"""

from __future__ import annotations

import ipywidgets as W
import numpy as np

from .base import MUTED, Timer, View, controls, text_of
from .chunks import ChunkedSeries
from .figure import Figure, envelope, lines, points
from .series import TimeAxis

__all__ = ["SpatialSeriesView"]

MAX_TRAJECTORY_POINTS = 20_000
COLORS = ["#1f77b4", "#d62728", "#2ca02c"]
NAMES = ["blue", "red", "green"]


class SpatialSeriesView(View):
    """Position (1-3 columns) of a SpatialSeries over ``window`` seconds (default: all
    of it up to 10 minutes)."""

    def __init__(self, series, *, window: float | None = None, start: float | None = None):
        super().__init__(series)
        self.data = ChunkedSeries(series.data)
        self.n, self.dims = self.data.shape
        self.axis = TimeAxis(series, self.n)
        first, last = self.axis.t_first, self.axis.t_last
        self.duration = max(last - first, 1e-9)
        window = min(window or 600.0, self.duration)
        self.t0 = first if start is None else float(start)
        self.t1 = self.t0 + window
        unit = text_of(getattr(series, "unit", "") or "")
        names = ["x", "y", "z"][: self.dims] if self.dims <= 3 else [str(i) for i in range(self.dims)]
        self.names = names
        self.over_time = Figure(height=240, pan=True, x_label="time (s)",
                                y_label=f"position ({unit})", title=f"{series.name} over time")
        self.over_time.on_view(lambda a, b: self.set_window(a, b))
        square = self.dims >= 2
        self.trajectory = Figure(height=420 if square else 10, x_label=f"x ({unit})",
                                 y_label=f"y ({unit})", title="trajectory")
        self.slider = W.FloatSlider(value=self.t0, min=first, max=max(first, last - window),
                                    step=max(self.duration / 10000, 1e-6), description="start (s)",
                                    continuous_update=False, layout=W.Layout(width="60%"))
        self.slider.observe(lambda ch: self._from_slider(ch["new"]), "value")
        self.length = W.BoundedFloatText(value=round(window, 6), min=1e-6, max=self.duration,
                                         description="window (s)", layout=W.Layout(width="190px"))
        self.length.observe(lambda ch: None if getattr(self, "_syncing", False) else
                            self.set_window(self.t0, self.t0 + ch["new"]), "value")
        ref = text_of(getattr(series, "reference_frame", "") or "")
        self.children = [controls([self.slider, self.length]),
                         *([self.trajectory] if square else []), self.over_time,
                         W.HTML(f'<div style="color:{MUTED}">reference frame: {ref}</div>' if ref
                                else ""), self.status]
        self.draw()

    @property
    def state(self) -> dict:
        return {"t0": self.t0, "t1": self.t1}

    def _from_slider(self, v):
        if not getattr(self, "_syncing", False):
            self.set_window(v, v + (self.t1 - self.t0))

    def set_window(self, t0: float, t1: float) -> None:
        first, last = self.axis.t_first, self.axis.t_last
        length = min(max(t1 - t0, 1e-6), self.duration)
        t0 = min(max(t0, first), last - length)
        self.t0, self.t1 = t0, t0 + length
        self._syncing = True
        self.slider.max = max(first, last - length)
        self.slider.value = t0
        self.length.value = round(length, 6)
        self._syncing = False
        self.draw()

    def draw(self) -> None:
        self.load(self._draw)

    def _draw(self) -> None:
        timer = Timer()
        i0, i1 = self.axis.index(self.t0), self.axis.index(self.t1)
        i1 = max(i1, min(self.n, i0 + 2))
        conv = float(getattr(self.obj, "conversion", 1.0) or 1.0)
        win = self.data.window(i0, i1, None, max(200, self.over_time.width))
        x = self.axis.times(win.starts if win.decimated else np.arange(win.i0, win.i1))
        lo, hi = win.lo * conv, win.hi * conv
        layers = [envelope(x, lo[k:k + 1], hi[k:k + 1], [0.0], color=COLORS[k % 3])
                  for k in range(self.dims)]
        finite = np.isfinite(lo) & np.isfinite(hi)
        ymin = float(lo[finite].min()) if finite.any() else 0.0
        ymax = float(hi[finite].max()) if finite.any() else 1.0
        pad = (ymax - ymin) * 0.05 or 1.0
        self.over_time.show(layers, x_range=(self.t0, self.t1), y_range=(ymin - pad, ymax + pad),
                            title=f"{self.obj.name} over time ("
                                  + ", ".join(f"{n} {c}" for n, c in zip(self.names, NAMES)) + ")")
        n_points = i1 - i0
        if self.dims >= 2:
            step = max(1, n_points // MAX_TRAJECTORY_POINTS)
            if step == 1:
                xy = self.data.read(i0, i1, [0, 1]).astype(float) * conv
            else:  # thinned: every step-th sample, read by chunk rows
                xy = self.data.read(i0, i1, [0, 1])[::step].astype(float) * conv
            self.trajectory_xy = xy
            ok = np.isfinite(xy).all(axis=1)
            (x0, y0), (x1, y1) = ((xy[ok].min(0), xy[ok].max(0)) if ok.any()
                                  else ((0, 0), (1, 1)))
            px, py = (x1 - x0) * 0.05 or 1.0, (y1 - y0) * 0.05 or 1.0
            start = xy[ok][:1]
            # equal units on both axes: the plot area's width follows the data's aspect
            aspect = ((x1 - x0) + 2 * px) / ((y1 - y0) + 2 * py)
            width = int((self.trajectory.height - 56) * min(max(aspect, 0.2), 5)) + 76
            self.trajectory.layout.max_width = f"{max(width, 240)}px"
            self.trajectory.show([lines(xy[:, 0], xy[:, 1], color="#1f77b4", width=1.0),
                                  points(start[:, 0], start[:, 1], color="#2ca02c", size=4)],
                                 x_range=(x0 - px, x1 + px), y_range=(y0 - py, y1 + py),
                                 title=f"trajectory {self.t0:.1f}–{self.t1:.1f} s"
                                       f"{'' if step == 1 else f' (every {step}th sample)'}")
        self.say(f"{self.t0:.2f}–{self.t1:.2f} s · {n_points:,} samples · {timer():.2f} s")
