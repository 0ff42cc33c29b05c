"""NWBExplorer: the file as a tree, and the view of the selected object by neurodata type.

``view_for(obj)`` picks the view; any failure to build one (an odd extension type, a
missing field, a broken link) gives the object's fields and shapes with the reason, never
an exception in the notebook.
"""

from __future__ import annotations

import datetime
import html

import ipywidgets as W
import numpy as np

from .base import MUTED, View, message_html, nbytes_of, shape_of, text_of

__all__ = ["FieldsView", "NWBExplorer", "tree", "view_for"]


def _type(obj) -> str:
    return getattr(obj, "neurodata_type", None) or type(obj).__name__


def _isa(obj, *names: str) -> bool:
    """Whether ``obj``'s class or any base (extension types subclass core ones) is named so."""
    return any(c.__name__ in names for c in type(obj).__mro__)


TINY = 20  # elements: a dataset this small is shown by its values, not its shape


def _plain(value) -> str:
    """A value as a person reads it: dates without ``datetime.datetime(...)``, names
    without tuple brackets, bytes decoded."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, (list, tuple, np.ndarray)) and not (
            isinstance(value, np.ndarray) and value.ndim != 1):
        items = [_plain(v) for v in value]
        # names often hold a comma themselves ("Last, First"): a semicolon between them
        sep = "; " if any("," in v for v in items) else ", "
        return sep.join(items) if items else "none"
    return text_of(value)


def _summary(value) -> str:
    shape = shape_of(value) if hasattr(value, "shape") else None
    if shape is not None and hasattr(value, "dtype") and (len(shape) > 0):
        size = nbytes_of(value)
        n = int(np.prod(shape))
        if len(shape) == 1 and n <= TINY:
            try:  # tiny: the values themselves
                return html.escape(_plain(np.asarray(value[()] if hasattr(value, "id")
                                                     else value))) or "none"
            except Exception:  # noqa: BLE001, S110 - unreadable: described by its shape
                pass
        where = ""
        if hasattr(value, "id") and hasattr(value, "chunks"):
            where = f", chunks {value.chunks}" if value.chunks else ", contiguous"
            if value.compression:
                where += f", {value.compression}"
        return (f"dataset {' × '.join(map(str, shape))} {value.dtype}"
                f" ({size / 1e6:.3g} MB{where})")
    if hasattr(value, "neurodata_type") or hasattr(value, "object_id"):
        return f"{_type(value)} <b>{html.escape(getattr(value, 'name', ''))}</b>"
    if isinstance(value, dict):
        if not value:
            return "none"
        keys = list(value)
        more = f" … ({len(keys)} in all)" if len(keys) > 8 else ""
        return ", ".join(html.escape(str(k)) for k in keys[:8]) + more  # names, no braces
    if isinstance(value, (list, tuple)) and value and hasattr(value[0], "neurodata_type"):
        return f"{len(value)} × {_type(value[0])}"
    if hasattr(value, "id") and hasattr(value, "shape"):  # scalar dataset
        try:
            value = value[()]
        except Exception:  # noqa: BLE001 - an unreadable scalar is only named
            return "scalar dataset"
    if isinstance(value, np.ndarray) and (value.ndim > 1 or value.size > TINY):
        text = np.array2string(value, threshold=12, edgeitems=3)
    else:
        text = _plain(value)
    text = text if len(text) < 400 else text[:400] + " …"
    return html.escape(text)


class FieldsView(View):
    """The object's type, fields and dataset shapes; nothing large is read."""

    def __init__(self, obj, note: str = "", kind: str = "info"):
        super().__init__(obj)
        rows = [("type", html.escape(_type(obj)))]
        ns = getattr(obj, "namespace", None)
        if ns and ns != "core":
            rows.append(("namespace", html.escape(str(ns))))
        fields = {}
        try:
            fields = dict(getattr(obj, "fields", {}) or {})
        except Exception as e:  # noqa: BLE001 - shown in place of the fields
            rows.append(("fields", f"unreadable: {html.escape(str(e))}"))
        for name, value in fields.items():
            try:
                rows.append((html.escape(name), _summary(value)))
            except Exception as e:  # noqa: BLE001 - one odd field must not hide the others
                rows.append((html.escape(name), f"(unreadable: {html.escape(type(e).__name__)})"))
        body = "".join(f"<tr><td style='padding:2px 10px 2px 0;vertical-align:top;color:{MUTED}'>"
                       f"{k}</td><td>{v}</td></tr>" for k, v in rows)
        self.rows = rows
        self.html = W.HTML(f"<table class='dandilab-fields' style='font-size:12px'>{body}</table>")
        self.children = [W.HTML(message_html(note, kind)) if note else W.HTML(), self.html]


def view_for(obj, **kwargs) -> View:
    """The view of ``obj`` by its neurodata type (see the package docstring)."""
    try:
        return _view_for(obj, **kwargs)
    except Exception as e:  # noqa: BLE001 - never a crash: the fields and why
        return FieldsView(obj, f"This {_type(obj)} cannot be drawn ({type(e).__name__}: {e}); "
                               "its fields:", "warning")


def _view_for(obj, **kwargs) -> View:
    from . import behavior, imaging, series, table, units

    if _isa(obj, "NWBFile"):
        return FieldsView(obj)
    if _isa(obj, "ImageSeries"):
        return imaging.ImageSeriesView(obj, **kwargs)
    shape = shape_of(getattr(obj, "data", None)) or ()
    if _isa(obj, "SpatialSeries") and len(shape) in (1, 2) and shape[0] > 0:
        return behavior.SpatialSeriesView(obj, **kwargs)
    if _isa(obj, "TimeSeries"):
        shape = shape_of(obj.data)
        dtype = getattr(obj.data, "dtype", None)
        if dtype is None and shape is None:
            return FieldsView(obj, "its data is a link this file does not resolve", "warning")
        if dtype is None:
            dtype = np.asarray(obj.data[:1]).dtype
        if not shape or shape[0] == 0:
            return FieldsView(obj, "this series has no samples", "warning")
        if len(shape) > 2:
            return FieldsView(obj, f"data of shape {shape}: more than (time, channel); "
                                   "read it with to_dask or slice it", "info")
        if np.dtype(dtype).kind not in "iufb":
            return table.TableView(_SeriesAsTable(obj)) if len(shape) == 1 else FieldsView(obj)
        return series.TimeSeriesView(obj, **kwargs)
    if _isa(obj, "Units"):
        return units.UnitsView(obj, **kwargs)
    if _isa(obj, "PlaneSegmentation"):
        return imaging.PlaneSegmentationView(obj, **kwargs)
    if _isa(obj, "DynamicTable"):
        return table.TableView(obj, **kwargs)
    if _isa(obj, "Image") and shape_of(getattr(obj, "data", None)):
        return imaging.ImageView(obj)
    return FieldsView(obj)


class _SeriesAsTable:
    """A 1-D text/other TimeSeries (AnnotationSeries) as a two-column table."""

    def __init__(self, s):
        from types import SimpleNamespace

        self.name, self.description = s.name, getattr(s, "description", "")
        n = shape_of(s.data)[0]
        axis_times = s.timestamps if s.timestamps is not None else None
        self.id = SimpleNamespace(data=np.arange(n))
        cols = [SimpleNamespace(name="data", data=s.data, neurodata_type="VectorData")]
        if axis_times is not None:
            cols.insert(0, SimpleNamespace(name="timestamps", data=axis_times,
                                           neurodata_type="VectorData"))
        self.columns = cols

    def __len__(self):
        return len(self.id.data)


# -- the tree -------------------------------------------------------------------------------
_SECTIONS = ("acquisition", "stimulus", "stimulus_template", "processing", "intervals",
             "units", "electrodes", "analysis", "scratch")
_GENERAL = ("subject", "devices", "electrode_groups", "imaging_planes", "lab_meta_data",
            "icephys_electrodes", "ogen_sites")


def _children(obj) -> list:
    if _isa(obj, "DynamicTable", "TimeSeries", "Image"):
        return []  # leaves: their columns and datasets are shown by their view
    out = []
    for child in getattr(obj, "children", ()) or ():
        if _isa(child, "VectorData", "VectorIndex", "ElementIdentifiers", "DynamicTableRegion"):
            continue
        out.append(child)
    return out


def _shape_text(obj) -> str:
    data = getattr(obj, "data", None)
    shape = shape_of(data) if data is not None else None
    if _isa(obj, "DynamicTable"):
        try:
            return f"{len(obj.id.data)} rows"
        except Exception:  # noqa: BLE001 - a table without ids: no row count
            return ""
    if shape:
        return "×".join(map(str, shape))
    return ""


def tree(nwbfile) -> list[tuple[str, str, object, int]]:
    """``[(path, label, object, depth), ...]`` in display order."""
    rows: list[tuple[str, str, object, int]] = [("session", "session (general metadata)",
                                                 nwbfile, 0)]

    def add(path, obj, depth):
        shape = _shape_text(obj)
        label = f"{getattr(obj, 'name', path.rsplit('/', 1)[-1])} · {_type(obj)}"
        label += f" ({shape})" if shape else ""
        rows.append((path, label, obj, depth))
        if depth < 6:
            for child in _children(obj):
                add(f"{path}/{child.name}", child, depth + 1)

    for section in _SECTIONS:
        value = getattr(nwbfile, section, None)
        if value is None:
            continue
        if isinstance(value, dict):
            if not value:
                continue
            rows.append((section, section, None, 0))
            for name, obj in value.items():
                add(f"{section}/{name}", obj, 1)
        else:
            add(section, value, 0)
    general = [(g, getattr(nwbfile, g, None)) for g in _GENERAL]
    general = [(g, v) for g, v in general if v]
    if general:
        rows.append(("general", "general", None, 0))
        for g, v in general:
            if isinstance(v, dict):
                for name, obj in v.items():
                    add(f"general/{g}/{name}", obj, 1)
            else:
                add(f"general/{g}", v, 1)
    return rows


_FIRST = ("ElectricalSeries", "TwoPhotonSeries", "OnePhotonSeries", "ImageSeries",
          "PlaneSegmentation", "SpatialSeries", "Units", "TimeSeries", "TimeIntervals")


def _is_trajectory(obj) -> bool:
    """An x/y (or x/y/z) position: what a behaviour file is first looked at for, not a
    heading angle (a 1-column SpatialSeries of CompassDirection)."""
    shape = shape_of(getattr(obj, "data", None)) or ()
    return len(shape) == 2 and shape[1] >= 2 and shape[0] > 0


class NWBExplorer(W.HBox):
    """A tree of ``nwbfile`` on the left, the selected object's view on the right.

    ``nwbfile``: a pynwb NWBFile, or anything ``dandilab.open_nwb`` opens (then a file
    pynwb cannot read, e.g. NWB 1.x, shows why instead of raising; see ``error``).

    ``select``: a tree path to show first (e.g. ``"acquisition/ElectricalSeries"``;
    default: the first recording, imaging or units object). ``views`` caches the views
    built so far by path; ``view`` is the one shown; ``show(path)`` shows another.
    """

    def __init__(self, nwbfile, *, select: str | None = None, tree_width: str = "300px"):
        super().__init__()
        self.error = None
        if not _isa(nwbfile, "NWBFile"):  # anything open_nwb accepts: an Asset, a URL, a path
            from ..stream import NWBError, open_nwb

            try:
                nwbfile = open_nwb(nwbfile)
            except (NWBError, FileNotFoundError) as e:
                self.error = e
                self.nwbfile, self.rows, self.by_path, self.views, self.view = None, [], {}, {}, None
                self.children = [W.HTML(message_html(str(e), "error"))]
                return
        self.nwbfile = nwbfile
        self.rows = tree(nwbfile)
        self.by_path = {p: (label, obj) for p, label, obj, _ in self.rows}
        options = [("   " * depth + ("▸ " if obj is None else "") + label, path)
                   for path, label, obj, depth in self.rows]
        self.select = W.Select(options=options, rows=min(28, max(8, len(options))),
                               layout=W.Layout(width=tree_width, font_family="monospace",
                                               flex="0 1 auto", min_width="180px",
                                               max_width="100%"))
        self.select.add_class("dandilab-tree")
        self.header = W.HTML()
        self.pane = W.VBox(layout=W.Layout(flex="1 1 auto", min_width="0"))
        self.views: dict[str, View] = {}
        self.view: View | None = None
        # narrower than the tree and 520 px of plots: the view goes under the tree
        self.children = [self.select, W.VBox([self.header, self.pane],
                                             layout=W.Layout(flex="1 1 520px", min_width="0"))]
        self.layout.flex_flow = "row wrap"
        self.add_class("dandilab-explorer")
        self.select.observe(lambda ch: self.show(ch["new"]), "value")
        self.select.value = select if select in self.by_path else self._default()

    def _default(self) -> str:
        for t in _FIRST:
            for path, _label, obj, _d in self.rows:
                if obj is not None and _isa(obj, t) and path != "session" and (
                        t != "SpatialSeries" or _is_trajectory(obj)):
                    return path
        return "session"

    def show(self, path: str) -> View | None:
        """Show the view of the object at ``path`` (building it on first use)."""
        _label, obj = self.by_path.get(path, (path, None))
        if obj is None:
            self.header.value = f"<b>{html.escape(path)}</b>"
            self.pane.children = [W.HTML(message_html("choose an object under this heading"))]
            return None
        if path not in self.views:
            self.views[path] = view_for(obj)
        self.view = self.views[path]
        desc = text_of(getattr(obj, "description", "") or "")
        self.header.value = (f"<b>{html.escape(path)}</b> · {html.escape(_type(obj))}"
                             + (f"<div style='color:{MUTED}'>{html.escape(desc[:300])}</div>"
                                if desc and desc != "no description" else ""))
        self.pane.children = [self.view]
        if self.select.value != path:
            self.select.value = path
        return self.view
