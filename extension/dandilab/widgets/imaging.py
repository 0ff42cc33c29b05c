"""ImageSeries / TwoPhotonSeries (one frame at a time, contrast in the browser), images
(GrayscaleImage, RGBImage...), and PlaneSegmentation with its RoiResponseSeries (ROI
masks over the mean image; a click on an ROI shows its trace)."""

from __future__ import annotations

import ipywidgets as W
import numpy as np

from .base import Timer, View, controls, nbytes_of, shape_of, text_of
from .figure import Figure, envelope, image
from .series import TimeAxis

__all__ = ["ImageSeriesView", "ImageView", "PlaneSegmentationView", "contrast_limits",
           "roi_labels"]

MAX_MASK_BYTES = 512 * 1024 * 1024  # image masks larger than this are not read whole


def trace_label(series) -> str:
    """The y label of an ROI trace: "ΔF/F" in a DfOverF container, else the series' unit
    (a placeholder unit such as "n.a." says nothing: then the container's kind)."""
    parent = getattr(series, "parent", None)
    kind = type(parent).__name__ if parent is not None else ""
    unit = text_of(getattr(series, "unit", "") or "").strip()
    if kind == "DfOverF":
        return "ΔF/F" if unit.lower() in ("", "n.a.", "n/a", "na", "none", "no unit") \
            else f"ΔF/F ({unit})"
    if unit.lower() in ("", "n.a.", "n/a", "na", "none", "no unit"):
        return "fluorescence (a.u.)" if kind == "Fluorescence" else "value"
    return unit


def contrast_limits(frame: np.ndarray, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    finite = frame[np.isfinite(frame)] if frame.dtype.kind == "f" else frame.ravel()
    if not finite.size:
        return 0.0, 1.0
    sample = finite[:: max(1, finite.size // 200_000)]
    a, b = np.percentile(sample, [low, high])
    if b <= a:
        a, b = float(finite.min()), float(finite.max())
    return float(a), float(b if b > a else a + 1)


def _as_gray(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[-1] in (3, 4):  # RGB(A): luminance
        frame = frame[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    while frame.ndim > 2:  # a volume: its first plane
        frame = frame[..., 0] if frame.shape[-1] < frame.shape[0] else frame[0]
    return np.asarray(frame, dtype=np.float32)


class _FrameFigure(View):
    """Shared: a figure with an image layer; contrast is a range of percentiles of the
    frame shown (a fixed 0-100 slider, so a new frame never changes the slider's range),
    applied as the figure's ``vmin``/``vmax`` in the browser without resending the frame."""

    def _contrast_widgets(self):
        self.vrange = W.FloatRangeSlider(value=(0.5, 99.5), min=0.0, max=100.0, step=0.1,
                                         description="contrast %", continuous_update=True,
                                         readout_format=".1f", layout=W.Layout(width="50%"))
        self.levels = W.HTML(layout=W.Layout(width="150px"))
        self.cmap = W.Dropdown(options=["gray", "viridis"], value="gray", description="colors",
                               layout=W.Layout(width="200px"))
        self.auto = W.Button(description="auto contrast", layout=W.Layout(width="120px"))
        self.vrange.observe(lambda ch: self._apply_contrast(), "value")
        self.cmap.observe(lambda ch: setattr(self.figure, "cmap", ch["new"]), "value")
        self.auto.on_click(lambda _b: self.auto_contrast())
        self._sample = None
        return controls([self.vrange, self.levels, self.cmap, self.auto])

    def limits(self) -> tuple[float, float]:
        """(vmin, vmax): the slider's percentiles of the frame shown."""
        if self._sample is None or not self._sample.size:
            return 0.0, 1.0
        lo, hi = np.percentile(self._sample, self.vrange.value)
        if hi <= lo:
            hi = lo + max(abs(lo) * 1e-6, 1e-9)
        return float(lo), float(hi)

    def _apply_contrast(self) -> None:
        lo, hi = self.limits()
        with self.figure.hold_sync():
            self.figure.vmin, self.figure.vmax = lo, hi
        self.levels.value = f"<code>{lo:.4g} – {hi:.4g}</code>"

    def _set_frame(self, frame: np.ndarray, *, keep_contrast: bool, title: str,
                   extra_layers=()) -> None:
        h, w = frame.shape
        self.frame = frame
        finite = frame[np.isfinite(frame)] if frame.dtype.kind == "f" else frame.ravel()
        self._sample = finite[:: max(1, finite.size // 200_000)]
        if not keep_contrast:
            self.vrange.value = (0.5, 99.5)
        lo, hi = self.limits()
        self.levels.value = f"<code>{lo:.4g} – {hi:.4g}</code>"
        aspect = w / h
        self.figure.height = int(min(640, max(240, 620 / max(aspect, 0.4))))
        # square pixels: the plot area (figure less its 76 x 56 px of axes) as wide as tall
        self.figure.layout.max_width = f"{int((self.figure.height - 56) * aspect) + 76}px"
        self.figure.show([image(frame, extent=(0, w, h, 0)), *extra_layers],
                         x_range=(0, w), y_range=(h, 0), title=title, vmin=lo, vmax=hi)

    def auto_contrast(self) -> None:
        self.vrange.value = (0.5, 99.5)


class ImageSeriesView(_FrameFigure):
    """Frame ``index`` of an ImageSeries (TwoPhotonSeries, OnePhotonSeries...): one frame
    is read per change; external files are named, not read."""

    def __init__(self, series, *, index: int = 0):
        super().__init__(series)
        self.figure = Figure(height=520, x_label="x (pixels)", y_label="y (pixels)",
                             title=series.name)
        data = getattr(series, "data", None)
        shape = shape_of(data)
        external = getattr(series, "external_file", None)
        if external is not None and (shape is None or shape[0] == 0 or len(shape) < 3):
            files = [text_of(f) for f in (external[()] if hasattr(external, "id") else external)]
            starting = getattr(series, "starting_frame", None)
            starting = list(np.asarray(starting[()] if hasattr(starting, "id") else starting)) \
                if starting is not None else []
            fmt = text_of(getattr(series, "format", "") or "external")
            listing = "".join(f"<li><code>{text_of(f)}</code>"
                              f"{f' (first frame {int(s)})' if i < len(starting) else ''}</li>"
                              for i, (f, s) in enumerate(zip(files, starting + [0] * len(files))))
            self.children = [W.HTML(
                f'<div class="dandilab-external"><b>{series.name}</b>: the frames are not in '
                f'this file (format "{fmt}"). They are in {len(files)} external file(s), '
                f'relative to the NWB file\'s folder in the Dandiset:<ul>{listing}</ul></div>')]
            self.external_files = files
            return
        self.external_files = None
        if shape is None or len(shape) < 3:
            self.say(f"{series.name} has data of shape {shape}: not frames (time, y, x)",
                     "warning")
            self.children = [self.status]
            return
        self.data = data
        self.n = shape[0]
        self.axis = TimeAxis(series, self.n)
        self.slider = W.IntSlider(value=index, min=0, max=max(0, self.n - 1),
                                  description="frame", continuous_update=False,
                                  layout=W.Layout(width="60%"))
        self.slider.observe(lambda ch: self.show_frame(ch["new"]), "value")
        self.time = W.HTML()
        buttons = []
        for label, step in (("◀", -1), ("▶", 1)):
            b = W.Button(description=label, layout=W.Layout(width="42px"))
            b.on_click(lambda _b, s=step: self.step(s))
            buttons.append(b)
        self.index = index
        contrast = self._contrast_widgets()
        self.children = [controls([self.slider, *buttons, self.time]), contrast, self.figure,
                         self.status]
        self._shown_once = False
        self.show_frame(index)

    def step(self, k: int) -> None:
        self.slider.value = int(np.clip(self.slider.value + k, 0, self.n - 1))

    def show_frame(self, index: int) -> None:
        self.index = int(np.clip(index, 0, self.n - 1))
        self.load(self._draw)

    def _draw(self) -> None:
        timer = Timer()
        i = self.index
        frame = _as_gray(self.data[i])
        t = float(self.axis.times([i])[0]) if not self.axis.no_time else None
        self._set_frame(frame, keep_contrast=self._shown_once,
                        title=f"{self.obj.name} · frame {i} of {self.n}")
        self._shown_once = True
        self.time.value = f"t = {t:.3f} s" if t is not None else ""
        self.say(f"frame {i}: {frame.shape[1]}×{frame.shape[0]} read in {timer():.2f} s")


class ImageView(_FrameFigure):
    """A single image (GrayscaleImage, RGBImage, any 2-D/3-D Image)."""

    def __init__(self, img):
        super().__init__(img)
        self.figure = Figure(height=480, x_label="x (pixels)", y_label="y (pixels)")
        contrast = self._contrast_widgets()
        self.children = [contrast, self.figure, self.status]
        self.load(lambda: self._set_frame(_as_gray(img.data[()] if hasattr(img.data, "id")
                                                   else img.data),
                                          keep_contrast=False, title=img.name))


def roi_labels(ps, shape: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """(int32 label image: 0 = none, k = ROI k-1 where its mask is strongest; ROI count).

    Reads ``image_mask`` (n, h, w) in blocks of ROIs, or ``pixel_mask`` / ``voxel_mask``
    (ragged (x, y[, z], weight) rows).
    """
    colnames = list(getattr(ps, "colnames", ()))
    n = len(ps.id.data)
    if "image_mask" in colnames:
        masks = ps["image_mask"].data
        shp = shape_of(masks)
        if nbytes_of(masks) > MAX_MASK_BYTES:
            raise ValueError(f"image masks are {nbytes_of(masks) / 1e9:.1f} GB: too large to "
                             "draw at once")
        h, w = shp[1], shp[2]
        best = np.zeros((h, w), np.float32)
        labels = np.zeros((h, w), np.int32)
        step = max(1, (64 << 20) // max(1, h * w * 4))
        for a in range(0, n, step):
            block = np.asarray(masks[a:a + step], dtype=np.float32)
            if block.ndim == 4:  # (n, h, w, z): the first plane
                block = block[..., 0]
            k = np.argmax(block, axis=0)
            v = np.take_along_axis(block, k[None], 0)[0]
            better = v > best
            labels[better] = (a + k[better] + 1)
            best[better] = v[better]
        return labels, n
    for name in ("pixel_mask", "voxel_mask"):
        if name in colnames:
            col = ps[name]
            flat = np.asarray(col.target.data[()])
            ends = np.asarray(col.data[()], dtype=np.int64)
            fields = flat.dtype.names
            xs = np.asarray(flat[fields[0]] if fields else flat[:, 0], dtype=np.int64)
            ys = np.asarray(flat[fields[1]] if fields else flat[:, 1], dtype=np.int64)
            if shape is None:
                shape = (int(ys.max(initial=0)) + 1, int(xs.max(initial=0)) + 1)
            labels = np.zeros(shape, np.int32)
            start = 0
            for k, e in enumerate(ends):
                sel = slice(start, int(e))
                ok = (ys[sel] < shape[0]) & (xs[sel] < shape[1])
                labels[ys[sel][ok], xs[sel][ok]] = k + 1
                start = int(e)
            return labels, n
    raise LookupError("this PlaneSegmentation has no image_mask, pixel_mask or voxel_mask")


def _reference_image(ps, shape):
    """A background for the masks: a mean/max image of the same processing module (or an
    Images container anywhere in the file) with the masks' shape, else None."""
    module = getattr(ps, "parent", None)
    while module is not None and getattr(module, "neurodata_type", "") != "ProcessingModule":
        module = getattr(module, "parent", None)
    candidates = []
    if module is not None:
        for iface in module.data_interfaces.values():
            if getattr(iface, "neurodata_type", "") == "Images":
                candidates.extend(iface.images.values())
    prefer = sorted(candidates, key=lambda im: (0 if "mean" in im.name.lower() else
                                                 1 if "max" in im.name.lower() else 2))
    for img in prefer:
        if shape_of(img.data)[:2] == tuple(shape):
            return _as_gray(img.data[()]), img.name
    return None, None


def _roi_series(ps):
    """RoiResponseSeries (anywhere in the file) whose ``rois`` point at ``ps``."""
    root = ps
    while getattr(root, "parent", None) is not None:
        root = root.parent
    out = []
    for obj in getattr(root, "objects", {}).values():
        if getattr(obj, "neurodata_type", "") == "RoiResponseSeries" or \
                type(obj).__name__ == "RoiResponseSeries":
            rois = getattr(obj, "rois", None)
            if rois is not None and getattr(rois, "table", None) is ps:
                out.append(obj)
    return sorted(out, key=lambda s: (s.parent.name if s.parent else "", s.name))


class PlaneSegmentationView(_FrameFigure):
    """ROI masks over the mean image; click an ROI (or pick its number) to see its traces
    from every RoiResponseSeries of this segmentation."""

    def __init__(self, ps, *, roi: int | None = None):
        super().__init__(ps)
        self.figure = Figure(height=520, x_label="x (pixels)", y_label="y (pixels)",
                             title=f"{ps.name}: ROIs")
        self.trace = Figure(height=240, x_label="time (s)", title="ROI trace", pan=True)
        self.trace.on_view(lambda a, b: self._trace_window(a, b))
        self.figure.on_click(lambda x, y: self.select_at(x, y))
        self.series = _roi_series(ps)
        self.roi = W.BoundedIntText(value=0, min=-1, max=0, description="ROI",
                                    layout=W.Layout(width="180px"))
        self.roi.observe(lambda ch: self.select(ch["new"]), "value")
        self.series_pick = W.Dropdown(
            options=[(f"{s.parent.name}/{s.name}" if s.parent is not None else s.name, k)
                     for k, s in enumerate(self.series)] or [("(no RoiResponseSeries)", -1)],
            description="trace of", layout=W.Layout(width="380px"))
        self.series_pick.observe(lambda ch: self.select(self.selected), "value")
        contrast = self._contrast_widgets()
        self.children = [contrast, self.figure, controls([self.roi, self.series_pick]),
                         self.trace, self.status]
        self.selected = -1
        self.labels = None
        self._trace_range = None
        self.load(lambda: self._draw(roi))

    def _draw(self, roi) -> None:
        timer = Timer()
        plane = getattr(self.obj, "imaging_plane", None)
        labels, n = roi_labels(self.obj)
        self.labels, self.n_rois = labels, n
        ref, ref_name = _reference_image(self.obj, labels.shape)
        note = ""
        if ref is None:
            ref = (labels > 0).astype(np.float32)
            note = " (no mean image of this shape in the file: masks only)"
        h, w = labels.shape
        self.roi.max = max(0, n - 1)
        self._set_frame(ref, keep_contrast=False,
                        title=f"{self.obj.name}: {n} ROIs over {ref_name or 'their masks'}",
                        extra_layers=[image(labels=labels, extent=(0, w, h, 0))])
        self.say(f"{n} ROIs{note} · plane {getattr(plane, 'name', '?')} · {timer():.2f} s")
        self.select(0 if roi is None and n else (roi if roi is not None else -1))

    def roi_at(self, x: float, y: float) -> int:
        """The ROI under pixel (x, y), or -1."""
        if self.labels is None:
            return -1
        r, c = int(np.floor(y)), int(np.floor(x))
        if 0 <= r < self.labels.shape[0] and 0 <= c < self.labels.shape[1]:
            return int(self.labels[r, c]) - 1
        return -1

    def select_at(self, x: float, y: float) -> None:
        k = self.roi_at(x, y)
        if k >= 0:
            self.roi.value = k

    def select(self, k: int) -> None:
        self.selected = int(k)
        self.figure.selected = self.selected
        self.load(self._draw_trace)

    def _trace_window(self, a, b) -> None:
        self._trace_range = (a, b)
        self.load(self._draw_trace)

    def _draw_trace(self) -> None:
        k = self.selected
        pick = self.series_pick.value
        if k < 0 or pick is None or pick < 0 or not self.series:
            self.trace.show([], message="no ROI selected" if k < 0 else
                            "no RoiResponseSeries refers to this segmentation")
            return
        s = self.series[pick]
        # which column of the series is ROI k (its rois region lists table rows)
        rows = np.asarray(s.rois.data[()])
        cols = np.nonzero(rows == k)[0]
        if not len(cols):
            self.trace.show([], message=f"ROI {k} is not in {s.name}")
            return
        from .chunks import ChunkedSeries

        data = ChunkedSeries(s.data)
        axis = TimeAxis(s, data.shape[0])
        t_first, t_last = axis.t_first, axis.t_last
        a, b = self._trace_range or (t_first, t_last)
        i0, i1 = axis.index(a), max(axis.index(b), axis.index(a) + 2)
        win = data.window(i0, i1, [int(cols[0])], max(200, self.trace.width))
        x = axis.times(win.starts if win.decimated else np.arange(win.i0, win.i1))
        lo, hi = win.lo * float(s.conversion or 1), win.hi * float(s.conversion or 1)
        finite = np.isfinite(lo) & np.isfinite(hi)
        ymin = float(lo[finite].min()) if finite.any() else 0.0
        ymax = float(hi[finite].max()) if finite.any() else 1.0
        pad = (ymax - ymin) * 0.05 or 1.0
        self.trace.show([envelope(x, lo, hi, [0.0], color="#d62728")], x_range=(a, b),
                        y_range=(ymin - pad, ymax + pad),
                        title=f"ROI {k} ({text_of(self.obj.id.data[k])}) · {s.name}",
                        y_label=trace_label(s))
