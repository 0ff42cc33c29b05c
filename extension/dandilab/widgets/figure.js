// dandilab.widgets.Figure: a small canvas renderer for decimated neurophysiology data.
// Python sends layers whose arrays are binary buffers (no JSON numbers); this file draws
// them on one <canvas>, draws the axes, and turns drags, wheel turns and clicks into
// messages ({type: "view", x0, x1} / {type: "click", x, y}) that Python answers with data.

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
const PAD = { left: 64, right: 12, top: 22, bottom: 34 };

function arr(dv, Type) {
  if (!dv) return new Type(0);
  if (Array.isArray(dv)) return Type.from(dv);
  const buf = dv.buffer ? dv : new DataView(dv);
  const n = buf.byteLength / Type.BYTES_PER_ELEMENT;
  if (buf.byteOffset % Type.BYTES_PER_ELEMENT === 0) return new Type(buf.buffer, buf.byteOffset, n);
  return new Type(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function niceTicks(a, b, n) {
  if (b < a) [a, b] = [b, a]; // images: y grows downwards
  if (!(b > a)) return [a];
  const raw = (b - a) / Math.max(1, n);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / p;
  const step = (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * p;
  const out = [];
  for (let k = Math.ceil(a / step); k * step <= b + step * 1e-9; k++) out.push(+(k * step).toPrecision(12));
  return out;
}

function fmt(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1);
  return String(+v.toPrecision(6));
}

function colormap(name) {
  // 256-entry RGB lookup; "gray" or "viridis" (coarse viridis, linearly interpolated)
  const lut = new Uint8ClampedArray(256 * 3);
  const vir = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  for (let i = 0; i < 256; i++) {
    let c;
    if (name === "viridis") {
      const f = (i / 255) * (vir.length - 1), k = Math.min(vir.length - 2, Math.floor(f)), t = f - k;
      c = vir[k].map((v, j) => v + (vir[k + 1][j] - v) * t);
    } else c = [i, i, i];
    lut.set(c, i * 3);
  }
  return lut;
}

// Ink from JupyterLab's theme (CSS variables), so that the dark theme shows the axes and
// traces; the fallbacks are the light theme's, for a page without JupyterLab's styles.
function themeInk(node) {
  const css = getComputedStyle(node);
  const v = (name, fallback) => (css.getPropertyValue(name) || "").trim() || fallback;
  return {
    text: v("--jp-ui-font-color1", "#333"),
    muted: v("--jp-ui-font-color2", "#555"),
    axis: v("--jp-border-color1", "#888"),
    trace: v("--jp-content-font-color1", "#1f3a5f"),
    font: v("--jp-ui-font-family", "sans-serif"),
  };
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "dandilab-figure";
  root.style.position = "relative";
  root.style.width = "100%";
  const canvas = document.createElement("canvas");
  canvas.style.display = "block";
  canvas.style.cursor = "crosshair";
  root.appendChild(canvas);
  el.appendChild(root);
  const ctx = canvas.getContext("2d");
  let drag = null; // {x, x0, x1, moved}
  let shiftPx = 0; // local preview of a drag, until Python answers
  let zoomPreview = null; // [x0, x1] while the wheel turns
  let wheelTimer = null;
  let imageCache = new Map(); // layer index -> offscreen canvas of an image layer
  let ink = themeInk(el);

  const plot = () => {
    const w = canvas.clientWidth, h = model.get("height");
    return { x: PAD.left, y: PAD.top, w: Math.max(10, w - PAD.left - PAD.right),
      h: Math.max(10, h - PAD.top - PAD.bottom) };
  };
  const xr = () => zoomPreview || model.get("x_range");
  const yr = () => model.get("y_range");
  const sx = (v, p) => { const [a, b] = xr(); return p.x + ((v - a) / (b - a || 1)) * p.w + shiftPx; };
  const sy = (v, p) => { const [a, b] = yr(); return p.y + p.h - ((v - a) / (b - a || 1)) * p.h; };
  const inv = (px, py) => {
    const p = plot(), [a, b] = model.get("x_range"), [c, d] = yr();
    return [a + ((px - p.x) / p.w) * (b - a), c + ((p.y + p.h - py) / p.h) * (d - c)];
  };

  function drawEnvelope(L, p) {
    const x = arr(L.x, Float64Array), lo = arr(L.lo, Float32Array), hi = arr(L.hi, Float32Array);
    const off = arr(L.offsets, Float32Array), n = x.length, nch = off.length;
    const scale = L.scale || 1;
    const [a, b] = xr(), [c, d] = yr();
    const kx = p.w / (b - a || 1), ky = p.h / (d - c || 1);
    const colors = L.colors || null;
    ctx.lineWidth = 1;
    for (let ch = 0; ch < nch; ch++) {
      ctx.strokeStyle = colors ? colors[ch % colors.length] : (L.color || ink.trace);
      ctx.beginPath();
      const base = ch * n, o = off[ch];
      let pen = false; // bins not read yet (NaN) break the trace
      for (let i = 0; i < n; i++) {
        const h = hi[base + i], l = lo[base + i];
        if (h !== h || l !== l) { pen = false; continue; }
        const px = p.x + (x[i] - a) * kx + shiftPx;
        const y1 = p.y + p.h - (o + h * scale - c) * ky;
        const y2 = p.y + p.h - (o + l * scale - c) * ky;
        if (pen) ctx.lineTo(px, y1); else { ctx.moveTo(px, y1); pen = true; }
        if (y2 !== y1) ctx.lineTo(px, y2);
      }
      ctx.stroke();
    }
  }

  function drawLines(L, p) {
    const x = arr(L.x, Float64Array), y = arr(L.y, Float64Array);
    ctx.strokeStyle = L.color || COLORS[0];
    ctx.lineWidth = L.width || 1.2;
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < x.length; i++) {
      if (!isFinite(x[i]) || !isFinite(y[i])) { pen = false; continue; }
      const px = sx(x[i], p), py = sy(y[i], p);
      if (pen) ctx.lineTo(px, py); else { ctx.moveTo(px, py); pen = true; }
    }
    ctx.stroke();
  }

  function drawPoints(L, p) {
    const x = arr(L.x, Float64Array), y = arr(L.y, Float64Array);
    ctx.fillStyle = L.color || COLORS[1];
    const r = L.size || 3;
    for (let i = 0; i < x.length; i++) {
      ctx.beginPath(); ctx.arc(sx(x[i], p), sy(y[i], p), r, 0, 2 * Math.PI); ctx.fill();
    }
  }

  function drawTicks(L, p) {
    const x = arr(L.x, Float64Array), row = arr(L.row, Int32Array);
    const [c, d] = yr(), hgt = Math.max(1, (p.h / (d - c || 1)) * 0.8);
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.strokeStyle = L.color || ink.trace;
    for (let i = 0; i < x.length; i++) {
      const px = sx(x[i], p), py = sy(row[i], p);
      ctx.moveTo(px, py - hgt / 2); ctx.lineTo(px, py + hgt / 2);
    }
    ctx.stroke();
  }

  function drawBars(L, p) {
    const e = arr(L.edges, Float64Array), v = arr(L.heights, Float64Array);
    ctx.fillStyle = L.color || COLORS[0];
    for (let i = 0; i < v.length; i++) {
      const x1 = sx(e[i], p), x2 = sx(e[i + 1], p), y1 = sy(v[i], p), y0 = sy(Math.max(yr()[0], 0), p);
      ctx.fillRect(Math.min(x1, x2), Math.min(y0, y1), Math.max(1, Math.abs(x2 - x1) - 0.5), Math.abs(y0 - y1));
    }
  }

  function imageCanvas(L, idx) {
    const key = idx + ":" + L.key;
    const hit = imageCache.get(idx);
    const vmin = model.get("vmin"), vmax = model.get("vmax"), cmap = L.cmap || model.get("cmap");
    const sig = key + ":" + vmin + ":" + vmax + ":" + cmap + ":" + model.get("selected");
    if (hit && hit.sig === sig) return hit.canvas;
    const W = L.width, H = L.height;
    const off = document.createElement("canvas");
    off.width = W; off.height = H;
    const octx = off.getContext("2d");
    const img = octx.createImageData(W, H);
    if (L.labels) { // ROI labels: 0 = none, k = ROI k-1; the selected ROI is drawn opaque
      const lab = arr(L.labels, Int32Array), sel = model.get("selected");
      for (let i = 0; i < W * H; i++) {
        const k = lab[i];
        if (!k) continue;
        const col = COLORS[(k - 1) % COLORS.length];
        img.data[4 * i] = parseInt(col.slice(1, 3), 16);
        img.data[4 * i + 1] = parseInt(col.slice(3, 5), 16);
        img.data[4 * i + 2] = parseInt(col.slice(5, 7), 16);
        img.data[4 * i + 3] = k - 1 === sel ? 230 : 90;
      }
    } else {
      const v = arr(L.values, Float32Array), lut = colormap(cmap);
      const lo = vmin, span = (vmax - vmin) || 1;
      for (let i = 0; i < W * H; i++) {
        let t = Math.round(((v[i] - lo) / span) * 255);
        t = t < 0 ? 0 : t > 255 ? 255 : (t | 0);
        img.data[4 * i] = lut[3 * t]; img.data[4 * i + 1] = lut[3 * t + 1];
        img.data[4 * i + 2] = lut[3 * t + 2]; img.data[4 * i + 3] = 255;
      }
    }
    octx.putImageData(img, 0, 0);
    imageCache.set(idx, { sig, canvas: off });
    return off;
  }

  function drawImage(L, p, idx) {
    const off = imageCanvas(L, idx);
    const [x0, x1, y0, y1] = L.extent || [0, L.width, L.height, 0];
    const a = sx(x0, p), b = sx(x1, p), c = sy(y0, p), d = sy(y1, p);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, Math.min(a, b), Math.min(c, d), Math.abs(b - a), Math.abs(d - c));
  }

  function drawAxes(p) {
    ctx.strokeStyle = ink.axis; ctx.fillStyle = ink.text; ctx.lineWidth = 1;
    ctx.font = "11px " + ink.font;
    ctx.strokeRect(p.x, p.y, p.w, p.h);
    const [a, b] = xr();
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    if (!model.get("hide_x")) {
      for (const v of niceTicks(a, b, Math.max(2, Math.floor(p.w / 90)))) {
        const px = p.x + ((v - a) / (b - a || 1)) * p.w;
        ctx.beginPath(); ctx.moveTo(px, p.y + p.h); ctx.lineTo(px, p.y + p.h + 4); ctx.stroke();
        ctx.fillText(fmt(v), px, p.y + p.h + 6);
      }
    }
    ctx.fillText(model.get("x_label"), p.x + p.w / 2, p.y + p.h + 20);
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    const given = model.get("y_ticks");
    const ticks = given && given.length ? given : niceTicks(...yr(), Math.max(2, Math.floor(p.h / 40))).map(v => [v, fmt(v)]);
    const step = Math.max(1, Math.ceil(ticks.length / Math.max(1, Math.floor(p.h / 12))));
    ticks.forEach(([v, label], i) => {
      if (i % step) return;
      const py = sy(v, p);
      if (py < p.y - 1 || py > p.y + p.h + 1) return;
      ctx.beginPath(); ctx.moveTo(p.x - 4, py); ctx.lineTo(p.x, py); ctx.stroke();
      ctx.fillText(String(label), p.x - 6, py);
    });
    ctx.save();
    ctx.translate(12, p.y + p.h / 2); ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center"; ctx.fillText(model.get("y_label"), 0, 0);
    ctx.restore();
    ctx.textAlign = "left"; ctx.textBaseline = "top"; ctx.font = "bold 12px " + ink.font;
    ctx.fillText(model.get("title"), p.x, 4);
  }

  function draw() {
    const t0 = performance.now();
    ink = themeInk(el);
    const dpr = window.devicePixelRatio || 1;
    const w = root.clientWidth || 800, h = model.get("height");
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
      canvas.style.width = w + "px"; canvas.style.height = h + "px";
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const p = plot();
    ctx.save();
    ctx.beginPath(); ctx.rect(p.x, p.y, p.w, p.h); ctx.clip();
    model.get("layers").forEach((L, i) => {
      if (L.kind === "envelope") drawEnvelope(L, p);
      else if (L.kind === "lines") drawLines(L, p);
      else if (L.kind === "points") drawPoints(L, p);
      else if (L.kind === "ticks") drawTicks(L, p);
      else if (L.kind === "bars") drawBars(L, p);
      else if (L.kind === "image") drawImage(L, p, i);
    });
    ctx.restore();
    drawAxes(p);
    const msg = model.get("message");
    if (msg) {
      ctx.font = "13px " + ink.font; ctx.fillStyle = ink.muted; ctx.textAlign = "center";
      ctx.textBaseline = "middle"; ctx.fillText(msg, p.x + p.w / 2, p.y + p.h / 2);
    }
    const loading = model.get("loading");
    if (loading) { // a plot still filling in: say so where the traces leave room
      ctx.font = "bold 12px sans-serif"; ctx.textAlign = "right"; ctx.textBaseline = "top";
      const tw = ctx.measureText(loading).width;
      ctx.fillStyle = "rgba(255, 243, 205, 0.92)";
      ctx.fillRect(p.x + p.w - tw - 12, p.y + 4, tw + 8, 18);
      ctx.fillStyle = "#8a5a00"; ctx.fillText(loading, p.x + p.w - 8, p.y + 7);
    }
    const ms = performance.now() - t0;
    root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
    root.dataset.renderMs = ms.toFixed(1);
    root.dataset.xRange = JSON.stringify(model.get("x_range"));
    root.dataset.layers = String(model.get("layers").length);
    root.dataset.message = model.get("message");
    root.dataset.loading = loading;
    root.dataset.ink = ink.text;
    model.set("render_ms", ms);
    model.set("draws", model.get("draws") + 1);
    model.set("width", Math.round(p.w));
    model.save_changes();
  }

  const redraw = () => { shiftPx = 0; zoomPreview = null; draw(); };
  const onLayers = () => { imageCache = new Map(); redraw(); };
  model.on("change:layers", onLayers);
  for (const k of ["x_range", "y_range", "message", "loading", "title", "vmin", "vmax", "cmap", "selected", "height", "y_ticks"]) {
    model.on("change:" + k, redraw);
  }

  const inPlot = (e) => {
    const r = canvas.getBoundingClientRect(), p = plot();
    const px = e.clientX - r.left, py = e.clientY - r.top;
    return { px, py, inside: px >= p.x && px <= p.x + p.w && py >= p.y && py <= p.y + p.h };
  };
  canvas.addEventListener("mousedown", (e) => {
    const q = inPlot(e);
    if (!q.inside) return;
    drag = { x: e.clientX, moved: false, q };
  });
  const onMove = (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    if (Math.abs(dx) > 3) drag.moved = true;
    if (drag.moved && model.get("pan")) { shiftPx = dx; draw(); }
  };
  const onUp = (e) => {
    if (!drag) return;
    const d = drag; drag = null;
    if (d.moved && model.get("pan")) {
      const p = plot(), [a, b] = model.get("x_range");
      const dt = -((e.clientX - d.x) / p.w) * (b - a);
      model.send({ type: "view", x0: a + dt, x1: b + dt });
    } else if (!d.moved) {
      const [x, y] = inv(d.q.px, d.q.py);
      model.send({ type: "click", x, y });
    }
  };
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  canvas.addEventListener("wheel", (e) => {
    if (!model.get("pan")) return;
    const q = inPlot(e);
    if (!q.inside) return;
    e.preventDefault();
    const p = plot(), [a, b] = xr();
    const f = Math.exp(Math.sign(e.deltaY) * 0.15), at = a + ((q.px - p.x) / p.w) * (b - a);
    zoomPreview = [at - (at - a) * f, at + (b - at) * f];
    draw();
    clearTimeout(wheelTimer);
    wheelTimer = setTimeout(() => {
      const [x0, x1] = zoomPreview;
      model.send({ type: "view", x0, x1 });
    }, 200);
  }, { passive: false });

  const ro = new ResizeObserver(() => draw());
  ro.observe(root);
  // a theme switch changes the CSS variables, not this widget: redraw in the new ink
  const themeWatch = new MutationObserver(() => draw());
  themeWatch.observe(document.body, { attributes: true,
    attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
  draw();
  return () => {
    ro.disconnect();
    themeWatch.disconnect();
    window.removeEventListener("mousemove", onMove);
    window.removeEventListener("mouseup", onUp);
  };
}

export default { render };
