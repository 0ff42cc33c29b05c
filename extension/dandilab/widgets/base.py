"""What every view shares: a loader thread that keeps only the latest request, messages,
and helpers that read small things from pynwb objects without ever reading a large one."""

from __future__ import annotations

import html
import threading
import time
import traceback

import ipywidgets as W
import numpy as np

MUTED = "var(--jp-ui-font-color2, #555)"  # secondary text, in the light and dark themes

__all__ = ["MUTED", "Loader", "View", "controls", "message_html", "shape_of", "small_array", "text_of"]

SMALL = 2_000_000  # bytes: a dataset at most this big may be read whole (tables' columns...)


class Loader:
    """Runs ``fn()`` on one worker thread; a new request replaces one not yet started
    (panning quickly loads the last window asked for, not every one in between)."""

    def __init__(self, on_error):
        self._lock = threading.Lock()
        self._pending = None
        self._busy = False
        self._idle = threading.Event()
        self._idle.set()
        self._on_error = on_error

    def submit(self, fn) -> None:
        with self._lock:
            self._pending = fn
            self._idle.clear()
            if self._busy:
                return
            self._busy = True
        threading.Thread(target=self._run, name="dandilab-view", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                fn, self._pending = self._pending, None
                if fn is None:
                    self._busy = False
                    self._idle.set()
                    return
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - the view shows what went wrong, not dies
                self._on_error(e)

    def pending(self) -> bool:
        """Whether a newer request waits (a long load may stop early for it)."""
        return self._pending is not None

    def wait(self, timeout: float = 120.0) -> None:
        if not self._idle.wait(timeout):
            raise TimeoutError(f"the view did not finish loading within {timeout} s")


def controls(children) -> W.HBox:
    """A row of controls that wraps onto more lines when narrow (the DANDI panel beside
    the notebook leaves ~600 px): a control keeps its width (no button cut to "▶...");
    a slider given as a share of the row grows but never below 300 px (never a dot)."""
    for c in children:
        width = c.layout.width or ""
        if width.endswith("%"):
            c.layout.width = "auto"
            c.layout.flex = "1 1 420px"
            c.layout.min_width = "300px"
        else:
            c.layout.flex = "0 0 auto"
        c.layout.max_width = "100%"
    return W.HBox(children, layout=W.Layout(flex_flow="row wrap", align_items="center",
                                            width="100%"))


def message_html(text: str, kind: str = "info") -> str:
    # JupyterLab's theme colours (the dark theme too), the light ones where there is none
    color = {"info": "var(--jp-ui-font-color2, #555)",
             "warning": "var(--jp-warn-color0, #8a5a00)",
             "error": "var(--jp-error-color1, #a00)"}[kind]
    return (f'<div class="dandilab-message dandilab-{kind}" style="color:{color};'
            f'padding:4px 0">{html.escape(text)}</div>')


class View(W.VBox):
    """A view of one pynwb object. Subclasses build widgets in ``__init__`` and draw with
    ``self.load(fn)``; ``wait()`` blocks until what was asked for is drawn (tests,
    benchmarks); ``status`` is a line under the plots; ``error`` the last failure."""

    def __init__(self, obj, **kwargs):
        super().__init__(**kwargs)
        self.obj = obj
        self.status = W.HTML()
        self.error: BaseException | None = None
        self._loader = Loader(self._show_error)
        self.add_class("dandilab-view")

    def load(self, fn) -> None:
        self._loader.submit(fn)

    def wait(self, timeout: float = 120.0) -> View:
        self._loader.wait(timeout)
        return self

    def _show_error(self, e: BaseException) -> None:
        self.error = e
        detail = "".join(traceback.format_exception_only(type(e), e)).strip()
        self.status.value = message_html(f"Could not draw {_name(self.obj)}: {detail}", "error")

    def say(self, text: str, kind: str = "info") -> None:
        self.status.value = message_html(text, kind)


def _name(obj) -> str:
    return f"{getattr(obj, 'name', '?')} ({getattr(obj, 'neurodata_type', type(obj).__name__)})"


def shape_of(data) -> tuple | None:
    """The shape of a dataset, list or array (no read), or None."""
    shape = getattr(data, "shape", None)
    if shape is not None:
        return tuple(shape)
    if isinstance(data, (list, tuple)):
        return (len(data),)
    return None


def nbytes_of(data) -> int:
    shape = shape_of(data) or ()
    dtype = getattr(data, "dtype", None)
    itemsize = dtype.itemsize if dtype is not None and dtype.itemsize else 8
    return int(np.prod(shape, dtype=np.int64)) * itemsize if shape else 0


def small_array(data, limit: int = SMALL):
    """``data`` as a numpy array when it is at most ``limit`` bytes, else None."""
    if data is None:
        return None
    if nbytes_of(data) > limit:
        return None
    return np.asarray(data[()] if hasattr(data, "id") else data)


def text_of(value) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return text_of(value.item())
    return str(value)


class Timer:
    def __init__(self):
        self.t = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t
