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

Display hook: importing this package inside IPython calls ``enable()``, which registers
an IPython display formatter for pynwb's ``NWBFile`` (and so for the NWBFile subclasses
``dandilab.open_nwb`` returns): the last expression of a cell that is an NWBFile shows
``NWBExplorer``. ``enable(containers=True)`` does the same for every pynwb container
(``view_for``); ``disable()`` restores pynwb's own HTML repr.
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
    "enable",
    "tree",
    "view_for",
]

_registered: list = []


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def enable(containers: bool = False) -> bool:
    """Show NWBFiles (and with ``containers`` every pynwb container) as explorers/views
    when they are a cell's result. Returns False outside IPython."""
    ip = _ipython()
    if ip is None:
        return False
    from pynwb import NWBFile

    formatter = ip.display_formatter.ipython_display_formatter

    def show_explorer(nwbfile):
        from IPython.display import display

        display(NWBExplorer(nwbfile))
        return True

    def show_view(obj):
        from IPython.display import display

        display(view_for(obj))
        return True

    formatter.for_type(NWBFile, show_explorer)
    _registered.append(NWBFile)
    if containers:
        from hdmf.container import AbstractContainer

        formatter.for_type(AbstractContainer, show_view)
        _registered.append(AbstractContainer)
    return True


def disable() -> None:
    """Undo ``enable``."""
    ip = _ipython()
    if ip is None:
        return
    formatter = ip.display_formatter.ipython_display_formatter
    for cls in _registered:
        formatter.type_printers.pop(cls, None)
    _registered.clear()


enable()
