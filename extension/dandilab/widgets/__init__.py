"""Widgets that stream: explore Dandisets and NWB files in a notebook without loading them.

    from dandilab.widgets import DandisetBrowser, NWBExplorer
    DandisetBrowser()                       # search, pick a version, walk folders, open
    nwb = dandilab.open_nwb("DANDI:000006/sub-anm369963/...nwb")
    nwb                                     # shows NWBExplorer(nwb) (see ``enable``)

Views by neurodata type (``view_for``): TimeSeries/ElectricalSeries -> ``TimeSeriesView``
(reads only the window's chunks, min/max per pixel, channels, pan/zoom, slider); Units ->
``UnitsView`` (raster, rates, PSTH); DynamicTable/TimeIntervals -> ``TableView`` (lazy
pages, filter); ImageSeries/TwoPhotonSeries -> ``ImageSeriesView`` (one frame, contrast;
external files named); PlaneSegmentation -> ``PlaneSegmentationView`` (masks over the
mean image, click -> trace); SpatialSeries -> ``SpatialSeriesView``; anything else ->
``FieldsView``.

Plotting: one small canvas widget (``Figure``: anywidget + ``figure.js``, ~300 lines),
chosen by measurement (benchmarks/widget_plotting.py; this 2-core machine, headless
Chromium without GPU; one window = 384 channels x 900 bins of min/max = 691 k vertices):

=============================  ===================  ==========  ====================
library                        kernel first/update  message     browser first/redraw
=============================  ===================  ==========  ====================
Figure (anywidget, Canvas2D)   1 ms / 0.2 ms        2.8 MB bin  78 ms / 36 ms
bqplot 0.13 Lines              4 ms / 1.2 ms        5.5 MB bin  240 ms / 166 ms (SVG)
plotly 7.1 FigureWidget (gl)   650 ms / 111 ms      16 MB JSON  724 ms / 15 ms relayout
plotly 7.1 (SVG scatter)       (same)               (same)      810 ms / 582 ms
matplotlib Agg -> PNG, ipympl  680 ms / 580 ms      0.8 MB PNG  ~0 (an image)
=============================  ===================  ==========  ====================

(bqplot's browser column is the same 384 SVG paths painted by Chromium, which is how
its Lines mark draws; the others are the libraries themselves.) Every pan or zoom of a
streamed recording brings new data, so what counts is kernel + message + draw per new
window: the canvas costs ~40-80 ms, bqplot ~0.2 s, plotly ~0.8 s, matplotlib/ipympl
~0.6 s of kernel time per frame. All four have prebuilt JupyterLab extensions;
anywidget's (the only new dependency) needs no lab rebuild, and figure.js ships inside
this package. nwbwidgets (plotly/matplotlib per trace) is compared on streamed data in
benchmarks/widgets.py.

Display hook: a file opened with ``dandilab.open_nwb``, and every container in it, shows
as ``NWBExplorer`` when it is a cell's result or is ``display``ed (a container: the
explorer opened at it). ``open_nwb`` registers the hook with IPython without importing
this package; the first display imports it. The display bundle keeps pynwb's text
(``text/plain``, and its ``text/html`` for static renderers), so frontends without
widgets show what pynwb shows. ``enable()`` (called when this package is imported
inside IPython) extends this to any pynwb ``NWBFile`` (``containers=True``: any pynwb
container); ``disable()`` restores pynwb's own repr everywhere.
"""

from __future__ import annotations

from .base import View
from .browser import DandisetBrowser
from .explorer import FieldsView, NWBExplorer, tree, view_for
from .figure import Figure

__all__ = [
    "DandisetBrowser",
    "FieldsView",
    "Figure",
    "NWBExplorer",
    "View",
    "disable",
    "display_bundle",
    "enable",
    "install",
    "opened_by_dandilab",
    "tree",
    "view_for",
]

_policy = {"nwbfile": False, "containers": False, "off": False}


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def opened_by_dandilab(obj) -> bool:
    """Whether ``obj`` is, or is inside, an NWBFile ``dandilab.open_nwb`` opened and that is
    still open."""
    root, seen = obj, 0
    while getattr(root, "parent", None) is not None and seen < 64:
        root, seen = root.parent, seen + 1
    return "_dandilab_handles" in getattr(root, "__dict__", {})


def _path_of(obj) -> str | None:
    """The explorer's tree path of a container (None: the file itself, or not in the tree)."""
    root = obj
    while getattr(root, "parent", None) is not None:
        root = root.parent
    if root is obj:
        return None
    for path, _label, item, _depth in tree(root):
        if item is obj:
            return path
    return None


def display_bundle(obj, include=None, exclude=None):
    """IPython's mime bundle of ``obj``: the explorer (at ``obj``) with pynwb's text, or
    None (pynwb's own repr) when the display hook does not apply to it."""
    from pynwb import NWBFile

    if _policy["off"]:
        return None
    if not (opened_by_dandilab(obj) or _policy["containers"]
            or (_policy["nwbfile"] and isinstance(obj, NWBFile))):
        return None
    root = obj
    while getattr(root, "parent", None) is not None:
        root = root.parent
    if not isinstance(root, NWBFile):  # a container outside any file: its own view
        widget = view_for(obj)
    else:
        widget = NWBExplorer(root, select=_path_of(obj) if obj is not root else None)
    bundle = widget._repr_mimebundle_()
    bundle["text/plain"] = repr(obj)
    return bundle


def install() -> bool:
    """Register ``display_bundle`` with the running IPython (False outside IPython)."""
    ip = _ipython()
    if ip is None:
        return False
    from hdmf.container import AbstractContainer

    ip.display_formatter.mimebundle_formatter.for_type(AbstractContainer, display_bundle)
    return True


def enable(containers: bool = False) -> bool:
    """Show every NWBFile (and with ``containers`` every pynwb container), not only those
    ``open_nwb`` opened, as explorers when displayed. Returns False outside IPython."""
    _policy.update(nwbfile=True, off=False, containers=containers or _policy["containers"])
    return install()


def disable() -> None:
    """Undo ``enable`` and the ``open_nwb`` hook: pynwb's own repr for everything."""
    _policy.update(nwbfile=False, containers=False, off=True)


enable()
