"""Which plotting library for dandilab.widgets: first draw and update of a 384-channel
min/max-decimated window, kernel side and browser side (issue 7).

    python benchmarks/widget_plotting.py kernel    # in a venv with plotly, bqplot, matplotlib
    python benchmarks/widget_plotting.py browser   # playwright + system Chromium

Kernel side: the time to build (and to update) what each library sends to the browser,
serialised as ipywidgets would (state + binary buffers), and the size of that message.
Browser side: the time Chromium takes to draw it, for the two libraries whose drawing
is in the browser and that can be loaded without a widget manager (plotly.js and
dandilab's figure.js); matplotlib/ipympl draw in the kernel (their browser side shows
a PNG). Data: 384 channels x 900 bins of (min, max) = 1800 points per channel.
Results: a table on stdout and benchmarks/results/widget_plotting.json (merged).
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "widget_plotting.json"
sys.path[:0] = [str(REPO / "extension")]
CHANNELS, BINS = 384, 900


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 20, (CHANNELS, BINS)).astype(np.float32)
    lo, hi = base - np.abs(rng.normal(0, 15, base.shape)), base + np.abs(rng.normal(0, 15, base.shape))
    x = np.linspace(0, 1, BINS)
    return x, lo.astype(np.float32), hi.astype(np.float32)


def zigzag(x, lo, hi):
    """(x2, y2): the min/max envelope as one polyline per channel (what others must draw)."""
    x2 = np.repeat(x, 2)
    y2 = np.empty((lo.shape[0], 2 * lo.shape[1]), np.float32)
    y2[:, 0::2], y2[:, 1::2] = hi, lo
    return x2, y2 + (np.arange(lo.shape[0]) * 100)[:, None]


def serialise(widget) -> int:
    from ipywidgets.widgets.widget import _remove_buffers

    state, _paths, buffers = _remove_buffers(widget.get_state())
    return len(json.dumps(state, default=str)) + sum(memoryview(b).nbytes for b in buffers)


def timed(fn, repeat=3):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def kernel() -> list[dict]:
    rows = []
    x, lo, hi = data(0)
    _, lo2, hi2 = data(1)

    # dandilab Figure (anywidget): binary buffers
    from dandilab.widgets.figure import Figure, envelope

    offsets = np.arange(CHANNELS) * 100.0

    def fig_first():
        f = Figure()
        f.show([envelope(x, lo, hi, offsets)], x_range=(0, 1), y_range=(-100, CHANNELS * 100))
        return f, serialise(f)

    s, (f, size) = timed(fig_first)
    u, _ = timed(lambda: (f.show([envelope(x, lo2, hi2, offsets)]), serialise(f)))
    rows.append({"library": "dandilab Figure (anywidget)", "first_s": s, "update_s": u,
                 "message_bytes": size})

    # matplotlib -> PNG (what ipywidgets.Image or ipympl ship; ipympl renders the same Agg)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    x2, y2 = zigzag(x, lo, hi)
    _, y3 = zigzag(x, lo2, hi2)

    def mpl(y):
        fig, ax = plt.subplots(figsize=(11, 6), dpi=100)
        segs = np.stack([np.broadcast_to(x2, y.shape), y], axis=-1)
        ax.add_collection(LineCollection(segs, linewidths=0.6))
        ax.set_xlim(0, 1)
        ax.set_ylim(-100, CHANNELS * 100)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return buf.getbuffer().nbytes

    s, size = timed(lambda: mpl(y2))
    u, _ = timed(lambda: mpl(y3))
    rows.append({"library": "matplotlib Agg -> PNG (ipywidgets.Image / ipympl)", "first_s": s,
                 "update_s": u, "message_bytes": size})

    try:
        import plotly.graph_objects as go

        def plotly_first():
            fw = go.FigureWidget([go.Scattergl(x=x2, y=y2[c], mode="lines", line={"width": 1})
                                  for c in range(CHANNELS)])
            return fw, serialise(fw)

        s, (fw, size) = timed(plotly_first, repeat=1)

        def plotly_update():
            with fw.batch_update():
                for c in range(CHANNELS):
                    fw.data[c].y = y3[c]
            return serialise(fw)

        u, _ = timed(plotly_update, repeat=1)
        import plotly

        rows.append({"library": f"plotly {plotly.__version__} FigureWidget (384 Scattergl)",
                     "first_s": s, "update_s": u, "message_bytes": size})
    except ImportError:
        pass
    try:
        import bqplot as bq

        def bq_first():
            sx, sy = bq.LinearScale(), bq.LinearScale()
            lines = bq.Lines(x=x2, y=y2, scales={"x": sx, "y": sy})
            fig = bq.Figure(marks=[lines], axes=[bq.Axis(scale=sx), bq.Axis(scale=sy,
                                                                             orientation="vertical")])
            return lines, fig, serialise(lines)

        s, (lines, _fig, size) = timed(bq_first, repeat=1)
        u, _ = timed(lambda: (setattr(lines, "y", y3), serialise(lines)), repeat=1)
        import bqplot

        rows.append({"library": f"bqplot {bqplot.__version__} Lines (one mark, 384 lines)",
                     "first_s": s, "update_s": u, "message_bytes": size})
    except ImportError:
        pass
    return rows


PAGE = """<!doctype html><html><body style="margin:0"><div id="el" style="width:1100px"></div>
<script>window.results = {};</script></body></html>"""


def browser(plotly_js: str | None) -> list[dict]:
    sys.path.insert(0, str(REPO))
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM_ARGS, chromium_path

    x, lo, hi = data(0)
    x2, y2 = zigzag(x, lo, hi)
    rows = []
    payload = {"x": x.tolist(), "lo": lo.ravel().tolist(), "hi": hi.ravel().tolist(),
               "x2": x2.tolist(), "y2": y2.tolist()}
    figure_js = (REPO / "extension" / "dandilab" / "widgets" / "figure.js").read_text()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = b.new_page(viewport={"width": 1200, "height": 800})
        page.set_content(PAGE)
        page.evaluate("d => { window.D = d; }", payload)
        # figure.js with a stand-in for the widget model (what anywidget passes to render)
        page.add_script_tag(content=figure_js.replace("export default { render };",
                                                      "window.figureRender = render;"),
                            type="module")
        page.wait_for_function("window.figureRender !== undefined")
        ms = page.evaluate("""() => {
          const dv = a => new DataView(a.buffer);
          const state = {layers: [{kind: "envelope", x: dv(new Float64Array(D.x)),
              lo: dv(new Float32Array(D.lo)), hi: dv(new Float32Array(D.hi)),
              offsets: dv(new Float32Array([...Array(384).keys()].map(k => k * 100))), scale: 1}],
            x_range: [0, 1], y_range: [-100, 38400], height: 600, message: "", title: "",
            x_label: "", y_label: "", y_ticks: [], hide_x: false, pan: true, vmin: 0, vmax: 1,
            cmap: "gray", selected: -1, width: 0, render_ms: 0, draws: 0};
          const handlers = {};
          const model = {get: k => state[k], set: (k, v) => { state[k] = v; },
            save_changes() {}, send() {}, on: (e, f) => { (handlers[e] = handlers[e] || []).push(f); }};
          const el = document.getElementById("el");
          const t0 = performance.now();
          window.figureRender({model, el});
          const first = performance.now() - t0;
          const times = [];
          for (let i = 0; i < 5; i++) {
            state.x_range = [0.01 * i, 1 + 0.01 * i];
            const t = performance.now();
            handlers["change:x_range"].forEach(f => f());
            times.push(performance.now() - t);
          }
          return [first, Math.min(...times)];
        }""")
        rows.append({"library": "dandilab Figure (anywidget)", "browser_first_ms": ms[0],
                     "browser_update_ms": ms[1]})
        # bqplot draws Lines as one SVG <path> per line (d3); the same paths, painted
        ms = page.evaluate("""async () => {
          const frame = () => new Promise(r => requestAnimationFrame(() => r()));
          const W = 1100, H = 600, NS = "http://www.w3.org/2000/svg";
          const paths = D.y2.map(y => {
            let d = "";
            for (let i = 0; i < y.length; i++) d += (i ? "L" : "M") + (D.x2[i] * W).toFixed(1) +
              "," + (H - (y[i] + 100) / 38500 * H).toFixed(1);
            return d;
          });
          const host = document.createElement("div");
          document.body.appendChild(host);
          const draw = (shift) => {
            const svg = document.createElementNS(NS, "svg");
            svg.setAttribute("width", W); svg.setAttribute("height", H);
            const g = document.createElementNS(NS, "g");
            g.setAttribute("transform", `translate(${shift},0)`);
            for (const d of paths) {
              const p = document.createElementNS(NS, "path");
              p.setAttribute("d", d); p.setAttribute("stroke", "#1f77b4"); p.setAttribute("fill", "none");
              g.appendChild(p);
            }
            svg.appendChild(g); host.replaceChildren(svg);
          };
          await frame();
          let t = performance.now(); draw(0); await frame(); await frame();
          const first = performance.now() - t;
          t = performance.now(); draw(-10); await frame(); await frame();
          return [first, performance.now() - t];
        }""")
        rows.append({"library": "SVG paths, as bqplot Lines draws them (384 <path>)",
                     "browser_first_ms": ms[0], "browser_update_ms": ms[1]})
        if plotly_js:
            page2 = b.new_page(viewport={"width": 1200, "height": 800})
            page2.set_content(PAGE)
            page2.add_script_tag(path=plotly_js)
            page2.evaluate("d => { window.D = d; }", payload)
            for kind in ("scattergl", "scatter"):
                ms = page2.evaluate("""async kind => {
                  const traces = D.y2.map(y => ({x: D.x2, y, type: kind, mode: "lines",
                                                 line: {width: 1}}));
                  const el = document.getElementById("el");
                  let t = performance.now();
                  await Plotly.newPlot(el, traces, {width: 1100, height: 600, showlegend: false});
                  const first = performance.now() - t;
                  t = performance.now();
                  await Plotly.relayout(el, {"xaxis.range": [0.1, 1.1]});
                  const pan = performance.now() - t;
                  Plotly.purge(el);
                  return [first, pan];
                }""", kind)
                rows.append({"library": f"plotly.js {kind} (384 traces)", "browser_first_ms": ms[0],
                             "browser_update_ms": ms[1]})
        b.close()
    return rows


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    mode = argv[0] if argv else "kernel"
    rows = kernel() if mode == "kernel" else browser(argv[1] if len(argv) > 1 else None)
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    old[mode] = rows
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(old, indent=1))
    for r in rows:
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in r.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
