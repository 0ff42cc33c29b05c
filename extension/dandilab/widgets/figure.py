"""``Figure``: the one plotting widget of dandilab.widgets (a canvas drawn by figure.js).

Layers are dicts with a ``kind`` and numpy arrays; arrays travel as binary buffers
(ipywidgets sends ``memoryview``s inside a trait as buffers, not as JSON numbers):

- ``envelope(x, lo, hi, offsets)``: stacked min/max traces, one row per channel;
- ``lines(x, y)``, ``points(x, y)``: a polyline / markers (NaN breaks a line);
- ``ticks(x, row)``: a spike raster;
- ``bars(edges, heights)``: a histogram;
- ``image(values)``: a frame mapped through ``vmin``/``vmax`` and ``cmap`` in the browser
  (contrast changes need no round trip); ``image(labels=...)``: ROI labels (0 none,
  k = ROI k-1), ``selected`` drawn opaque.

``loading`` (e.g. "loading 2 of 5 chunk rows…") is drawn in the plot's top right corner
while a view fills the plot in; NaN values (bins not read yet) are not drawn.

Dragging pans and the wheel zooms the x axis when ``pan`` is on: the browser moves what
it has at once and sends ``{"type": "view", "x0", "x1"}``; ``on_view`` callbacks load the
new window. A click sends ``{"type": "click", "x", "y"}`` to ``on_click`` callbacks.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import numpy as np
import traitlets as t

__all__ = ["Figure", "bars", "envelope", "image", "lines", "points", "ticks"]


def _buf(a, dtype) -> memoryview:
    return memoryview(np.ascontiguousarray(a, dtype=dtype)).cast("B")


def envelope(x, lo, hi, offsets, *, scale: float = 1.0, color: str | None = None,
             colors: list[str] | None = None) -> dict:
    """``lo``/``hi``: (channels, bins) in data units; drawn at ``offsets + value * scale``."""
    layer = {"kind": "envelope", "x": _buf(x, np.float64), "lo": _buf(lo, np.float32),
             "hi": _buf(hi, np.float32), "offsets": _buf(offsets, np.float32),
             "scale": float(scale)}
    if color:
        layer["color"] = color
    if colors:
        layer["colors"] = list(colors)
    return layer


def lines(x, y, *, color: str | None = None, width: float = 1.2) -> dict:
    return {"kind": "lines", "x": _buf(x, np.float64), "y": _buf(y, np.float64),
            "color": color or "#1f77b4", "width": float(width)}


def points(x, y, *, color: str | None = None, size: float = 3) -> dict:
    return {"kind": "points", "x": _buf(x, np.float64), "y": _buf(y, np.float64),
            "color": color or "#d62728", "size": float(size)}


def ticks(x, row, *, color: str | None = None) -> dict:
    """No ``color``: the theme's ink (dark on light, light on dark)."""
    layer = {"kind": "ticks", "x": _buf(x, np.float64), "row": _buf(row, np.int32)}
    if color:
        layer["color"] = color
    return layer


def bars(edges, heights, *, color: str | None = None) -> dict:
    return {"kind": "bars", "edges": _buf(edges, np.float64),
            "heights": _buf(heights, np.float64), "color": color or "#1f77b4"}


_image_keys = iter(range(1, 1 << 62))


def image(values=None, *, labels=None, extent=None, cmap: str | None = None) -> dict:
    """A (height, width) frame (float32 in the browser) or an int32 ROI label image.

    ``extent``: (x0, x1, y0, y1) in data units of the image's left/right/bottom/top edges;
    by default pixels, y pointing down.
    """
    data = values if labels is None else labels
    h, w = np.shape(data)[:2]
    layer = {"kind": "image", "width": int(w), "height": int(h), "key": next(_image_keys)}
    if labels is None:
        layer["values"] = _buf(values, np.float32)
    else:
        layer["labels"] = _buf(labels, np.int32)
    if extent is not None:
        layer["extent"] = [float(v) for v in extent]
    if cmap:
        layer["cmap"] = cmap
    return layer


class Figure(anywidget.AnyWidget):
    """A canvas plot; see the module docstring. ``width`` is the plot area in pixels, as
    the browser last laid it out (views decimate to it)."""

    _esm = Path(__file__).with_name("figure.js")

    layers = t.List().tag(sync=True)
    x_range = t.List([0.0, 1.0]).tag(sync=True)
    y_range = t.List([0.0, 1.0]).tag(sync=True)
    y_ticks = t.List().tag(sync=True)  # [[value, label], ...]; empty: automatic
    x_label = t.Unicode("").tag(sync=True)
    y_label = t.Unicode("").tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    message = t.Unicode("").tag(sync=True)  # drawn over the plot (nothing to show)
    loading = t.Unicode("").tag(sync=True)  # a partly drawn plot: what is still coming
    height = t.Int(320).tag(sync=True)
    hide_x = t.Bool(False).tag(sync=True)
    pan = t.Bool(False).tag(sync=True)
    vmin = t.Float(0.0).tag(sync=True)
    vmax = t.Float(1.0).tag(sync=True)
    cmap = t.Unicode("gray").tag(sync=True)
    selected = t.Int(-1).tag(sync=True)
    # set by the browser
    width = t.Int(900).tag(sync=True)
    render_ms = t.Float(0.0).tag(sync=True)
    draws = t.Int(0).tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._view_callbacks: list = []
        self._click_callbacks: list = []
        self.on_msg(self._on_message)

    def on_view(self, callback) -> None:
        """``callback(x0, x1)`` when the user pans or zooms."""
        self._view_callbacks.append(callback)

    def on_click(self, callback) -> None:
        """``callback(x, y)`` (data units) when the user clicks in the plot."""
        self._click_callbacks.append(callback)

    def _on_message(self, _widget, content, _buffers) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "view":
            for cb in self._view_callbacks:
                cb(float(content["x0"]), float(content["x1"]))
        elif content.get("type") == "click":
            for cb in self._click_callbacks:
                cb(float(content["x"]), float(content["y"]))

    def show(self, layers: list[dict], *, x_range=None, y_range=None, message: str = "",
             loading: str = "", **traits) -> None:
        """Replace what is drawn in one message (layers, ranges and any other traits)."""
        with self.hold_sync():
            self.loading = loading
            for name, value in traits.items():
                setattr(self, name, value)
            if x_range is not None:
                self.x_range = [float(x_range[0]), float(x_range[1])]
            if y_range is not None:
                self.y_range = [float(y_range[0]), float(y_range[1])]
            self.message = message
            self.layers = layers
