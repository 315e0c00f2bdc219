/* ECG explanation viewer (vanilla JS, no dependencies).
 *
 * Data: JSON in <script id="data">, written by ptbxl_xai.report.viewer.render_viewer (records as
 * validate_record returns them). A page that fills its records later (the live app) leaves that
 * script's records empty and calls window.ECGViewer.setRecords / upsertRecord.
 * Drawing: the ECG and the median beats on two <canvas> in CSS pixels (scaled by devicePixelRatio).
 * The signal is drawn in mV where the record carries lead_scale/lead_offset (mV = signal * scale
 * + offset) at true paper scale: 25 mm/s, gain mm/mV, 1 mm = PX_PER_MM pixels.
 * Features: an attribution belongs to a lead x segment; a segment is a set of sample runs (one
 * per beat for waves, one window for bins), so one drawing code serves both feature spaces.
 * State: window.viewerState (read by tests and handy in the console); every user action goes
 * through a small setter that changes the state and redraws everything synchronously, so what is
 * on the canvas always matches the state (no animation frames to wait for).
 */
(function () {
  'use strict';

  // ---- ECG paper conventions -----------------------------------------------------------------
  const PX_PER_MM = 4;            // screen scale of the paper at time zoom 1
  const PAPER_SPEED = 25;         // mm/s
  const MARGIN_MM = 15;           // left margin: calibration pulse and (12x1) lead names
  const PLOT_MM = 250;            // 10 s at 25 mm/s, the width of a standard printout
  const FOOTER_PX = 48;           // scale text and colour legend, so an exported PNG explains itself
  const LABEL_STRIP_PX = 16;      // top strip of a cell that holds the lead name
  const ZOOM_MIN = 1, ZOOM_MAX = 16, ZOOM_STEP = 1.5, WHEEL_STEP = 1.2;
  const GAINS = [5, 10, 20];      // mm/mV
  const OVERLAY_ALPHA = 0.6;      // the grid must stay readable through the colour bands
  const WAVE_ALPHA = 0.28;        // wave-segment bands under the trace when no attribution is shown
  const RIBBON_MM = 2;            // wave-segment ribbon at a cell's foot while an attribution is shown
  const MEDIAN_SPEED = 50;        // mm/s: median beats are read at twice the paper speed
  const MEDIAN_COLS = 4;
  const TRACE = '#111111';
  const GRID_MINOR = '#f4c2cb';
  const GRID_MAJOR = '#e3808f';

  // Standard 3x4 arrangement; lead names are compared upper-cased (PTB-XL writes AVR, AVL, AVF).
  const LAYOUT_3X4 = [['I', 'AVR', 'V1', 'V4'], ['II', 'AVL', 'V2', 'V5'], ['III', 'AVF', 'V3', 'V6']];
  const STANDARD_ORDER = ['I', 'II', 'III', 'AVR', 'AVL', 'AVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];

  const METHODS = ['shap', 'lime', 'attention'];
  // Wave segments (ptbxl_xai.explain.spaces.features.SEGMENTS) and their band colours (Okabe-Ito hues).
  const COUNTERFACTUAL = '#d55e00';   // vermillion: the counterfactual trace and the segments it made normal
  const SEGMENT_COLOURS = { P: '#56b4e9', PR: '#bdbdbd', QRS: '#e69f00', ST: '#cc79a7', T: '#009e73', TP: '#ffffff' };
  const SEGMENT_TEXT = { P: 'P wave', PR: 'PR segment', QRS: 'QRS complex', ST: 'ST segment', T: 'T wave',
    TP: 'TP (between T end and next P)' };
  // Fiducial marks (ptbxl_xai.explain.spaces.features.FIDUCIALS order in a beat row).
  const FIDUCIALS = ['p_on', 'p_off', 'qrs_on', 'r', 'qrs_off', 't_on', 't_off'];
  const FIDUCIAL_COLOURS = { p: '#0072b2', qrs: '#d55e00', r: '#000000', t: '#007a56' };
  const METHOD_NAMES = { none: 'None', shap: 'SHAP', lime: 'LIME', attention: 'Attention' };
  const METHOD_TEXT = {
    none: 'No overlay: the ECG as recorded (after the workflow\'s preprocessing).',
    shap: 'SHAP (Shapley additive explanations) shares the model output for the chosen label among ' +
      'the features (one lead\'s wave segment over every beat, or one lead\'s time bin), averaging each ' +
      'feature\'s effect over many combinations of the others, masked features replaced by the background. ' +
      'Red segments push the prediction towards the label, blue ones away from it; white is neutral. ' +
      'Colours are scaled to the largest absolute value in this record.',
    lime: 'LIME fits a simple linear model to the classifier\'s outputs for many randomly perturbed ' +
      'copies of this ECG (features replaced by the background). A feature\'s weight says how much ' +
      'keeping it raised (red) or lowered (blue) the probability of the chosen label, locally around this record.',
    attention: 'Attention shows where the network\'s attention layer put its weight over time, mapped to ' +
      'the features by time overlap (the same on every lead: it weighs time steps, not leads). Each BiLSTM ' +
      'state depends on the whole record. It is not signed and not specific to one label: darker orange means ' +
      'more weight. Scaled from the smallest to the largest weight in this record.',
  };

  // Colour-blind-safe scales (ColorBrewer RdBu, Oranges; cividis for probabilities).
  const DIVERGING = ['#2166ac', '#4393c3', '#92c5de', '#d1e5f0', '#f7f7f7', '#fddbc7', '#f4a582', '#d6604d', '#b2182b'];
  const SEQUENTIAL = ['#fff5eb', '#fee6ce', '#fdd0a2', '#fdae6b', '#fd8d3c', '#f16913', '#d94801', '#a63603', '#7f2704'];
  const CIVIDIS = ['#00204d', '#00336f', '#39486b', '#575c6d', '#707173', '#8a8779', '#a69d75', '#c4b56c', '#e4cf5b', '#ffea46'];

  // ---- data and state ------------------------------------------------------------------------
  const dataScript = document.getElementById('data');
  const DATA = dataScript && dataScript.textContent.trim() ? JSON.parse(dataScript.textContent) : { records: [] };
  let RECORDS = DATA.records || [];
  const $ = (id) => document.getElementById(id);
  const canvas = $('ecg');
  const ctx = canvas.getContext('2d');
  const medianCanvas = $('median');
  let mctx = medianCanvas ? medianCanvas.getContext('2d') : null;

  const state = {
    recordIndex: 0,
    record: null,          // ecg_id of the record shown
    label: null,           // label explained by the overlay
    overlay: 'none',       // none | shap | lime | attention
    visibleLeads: [],      // lead names, in record order
    layout: '12x1',        // 12x1 | 3x4
    gain: 10,              // mm/mV
    zoom: 1,               // time zoom factor (1 = 25 mm/s on screen at PX_PER_MM)
    pan: 0,                // start of the visible window, seconds
    windowSeconds: 10,     // derived: visible duration (all columns together)
    waves: true,           // wave-segment colour bands (where the record has beats)
    fiducials: false,      // fiducial marks (P, QRS, T onsets/offsets and R)
  };
  window.viewerState = state;

  let layout = null;       // geometry of the last drawing (CSS pixels)
  let medianLayoutCache = null;
  let dpr = 1;

  // ---- small helpers ---------------------------------------------------------------------------
  const leadKey = (name) => String(name).toUpperCase().replace(/\s+/g, '');
  const displayLead = (name) => (/^AV[RLF]$/.test(leadKey(name)) ? 'a' + leadKey(name).slice(1) : name);
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const record = () => RECORDS[state.recordIndex];
  const duration = (rec) => rec.signal[0].length / rec.sampling_rate;
  const isWaves = (rec) => rec.features.kind === 'waves';
  const pxPerSecond = () => PAPER_SPEED * PX_PER_MM * state.zoom;
  const windowSeconds = () => (PLOT_MM * PX_PER_MM) / pxPerSecond();
  const maxPan = (rec) => Math.max(0, duration(rec) - windowSeconds());
  const fmt = (v, digits) => (Number.isInteger(v) ? String(v) : v.toFixed(digits));
  const safeName = (s) => String(s).replace(/[^A-Za-z0-9_.-]+/g, '_');
  const isMillivolt = (rec) => rec.display_units === 'mV';

  // The drawn signal: mV where the record is calibrated (cached per record object).
  const drawnCache = new WeakMap();
  function drawnSignal(rec) {
    let out = drawnCache.get(rec);
    if (!out) {
      out = rec.lead_scale ? rec.signal.map((row, l) => row.map((v) => v * rec.lead_scale[l] + rec.lead_offset[l]))
        : rec.signal;
      drawnCache.set(rec, out);
    }
    return out;
  }

  function el(tag, attrs, children) {
    // Build DOM nodes rather than HTML strings: label names and descriptions are data, not markup.
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === 'text') node.textContent = v;
      else if (k === 'className') node.className = v;
      else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.append(c));
    return node;
  }

  function hexToRgb(hex) {
    const n = parseInt(hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }

  function interpolate(stops, t) {
    // Piecewise-linear interpolation between evenly spaced colour stops, t in [0, 1].
    const x = clamp(Number.isFinite(t) ? t : 0, 0, 1) * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(x));
    const a = hexToRgb(stops[i]), b = hexToRgb(stops[i + 1]), f = x - i;
    return a.map((v, k) => Math.round(v + (b[k] - v) * f));
  }

  const cssGradient = (stops) => `linear-gradient(to right, ${stops.join(', ')})`;

  // ---- geometry ------------------------------------------------------------------------------
  function rowHeightMm() {
    // Rows grow with the gain so about +1.5/-1 mV (12x1) or +1.8/-1.2 mV (3x4) fits; multiples of
    // 5 mm keep every row boundary on a major grid line. Taller waves run into the next row, as on
    // a printed ECG, rather than being cut: an R amplitude is itself a criterion (e.g. for LVH).
    const perMv = state.layout === '3x4' ? 3 : 2.5;
    return Math.ceil(clamp(perMv * state.gain, 15, 60) / 5) * 5;
  }

  function gridOfLeads(rec) {
    // Lead indices per row. 3x4 looks leads up by name and falls back to the standard
    // order position when the record uses non-standard names.
    if (state.layout !== '3x4') return rec.leads.map((_, i) => [i]);
    const index = new Map(rec.leads.map((n, i) => [leadKey(n), i]));
    const byName = STANDARD_ORDER.every((k) => index.has(k));
    return LAYOUT_3X4.map((row) => row.map((k) => (byName ? index.get(k) : STANDARD_ORDER.indexOf(k))));
  }

  function computeLayout(rec) {
    const rowMm = rowHeightMm();
    const rowH = rowMm * PX_PER_MM;
    // Baseline a little below the middle (QRS peaks point up), on a 1 mm line.
    const baseOff = Math.round(rowMm * 0.6) * PX_PER_MM;
    const plotX = MARGIN_MM * PX_PER_MM, plotW = PLOT_MM * PX_PER_MM;
    const pps = pxPerSecond(), win = windowSeconds();
    const grid = gridOfLeads(rec);
    const cols = grid[0].length, colW = plotW / cols, colSec = win / cols;
    const cells = [];
    grid.forEach((row, r) => row.forEach((leadIndex, c) => {
      // Column c shows the c-th quarter of the window: x maps to time the same way in both
      // layouts (t = pan + (x - plotX) / pps), which keeps zoom, drag and overlays consistent.
      cells.push({
        lead: rec.leads[leadIndex], leadIndex, row: r, col: c,
        x: plotX + c * colW, y: r * rowH, w: colW, h: rowH, baseline: r * rowH + baseOff,
        t0: state.pan + c * colSec, t1: state.pan + (c + 1) * colSec,
        labelH: LABEL_STRIP_PX,
      });
    }));
    const footerY = grid.length * rowH;
    return { width: plotX + plotW, height: footerY + FOOTER_PX, plotX, plotW, rowH, baseOff, pps,
      rows: grid.length, cols, cells, footerY };
  }

  const timeAtX = (x) => state.pan + (x - layout.plotX) / layout.pps;

  // ---- drawing -------------------------------------------------------------------------------
  function sizeCanvas(L) {
    dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(L.width * dpr);
    canvas.height = Math.round(L.height * dpr);
    canvas.style.width = L.width + 'px';
    canvas.style.height = L.height + 'px';
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  }

  function strokeLines(lines, colour) {
    // One path per colour: thousands of separate strokes would be slow.
    ctx.beginPath();
    lines.forEach(([x0, y0, x1, y1]) => { ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); });
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1;
    ctx.stroke();
  }

  function drawPaper(L) {
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, L.width, L.height);
    const minor = [], major = [], H = L.footerY;
    const crisp = (v) => Math.round(v) + 0.5;          // 1 px lines on pixel centres
    // Amplitude lines: fixed 1 mm spacing from the top.
    for (let mm = 0; mm * PX_PER_MM <= H; mm++) {
      (mm % 5 ? minor : major).push([0, crisp(mm * PX_PER_MM), L.width, crisp(mm * PX_PER_MM)]);
    }
    // Margin: fixed 1 mm spacing.
    for (let mm = 0; mm < MARGIN_MM; mm++) {
      (mm % 5 ? minor : major).push([crisp(mm * PX_PER_MM), 0, crisp(mm * PX_PER_MM), H]);
    }
    // Plot: one line per 40 ms (1 mm at 25 mm/s), anchored to absolute time so the paper
    // moves with the signal when panning and stretches with the time zoom.
    const step = 1 / PAPER_SPEED;
    for (let k = Math.ceil(state.pan / step - 1e-6); ; k++) {
      const x = L.plotX + (k * step - state.pan) * L.pps;
      if (x > L.width) break;
      (k % 5 ? minor : major).push([crisp(x), 0, crisp(x), H]);
    }
    strokeLines(minor, GRID_MINOR);
    strokeLines(major, GRID_MAJOR);
  }

  function overlayModel(rec) {
    // Values and colour scale of the current overlay, or a reason why there is none.
    if (state.overlay === 'none') return { reason: 'none' };
    const byLabel = rec.attributions[state.overlay];
    if (!byLabel) return { reason: `no ${METHOD_NAMES[state.overlay]} attributions in this record` };
    const values = byLabel[state.label];
    if (!values) return { reason: `no ${METHOD_NAMES[state.overlay]} attributions for ${state.label}` };
    let lo = Infinity, hi = -Infinity;
    values.forEach((row) => row.forEach((v) => { lo = Math.min(lo, v); hi = Math.max(hi, v); }));
    if (state.overlay === 'attention') {
      // Attention is unsigned and relative: spread the record's own range over the scale.
      return { values, kind: 'sequential', stops: SEQUENTIAL, lo, hi };
    }
    // Signed methods: symmetric around 0 so white always means "no effect".
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    return { values, kind: 'diverging', stops: DIVERGING, lo: -m, hi: m };
  }

  function overlayColour(ov, v) {
    return interpolate(ov.stops, ov.hi > ov.lo ? (v - ov.lo) / (ov.hi - ov.lo) : 0);
  }

  function runSpans(cell, rec, runs, each) {
    // Calls each(x0, x1, segment) for every run [start, stop, segment] visible in the cell, in
    // whole pixels: adjacent runs must not leave anti-aliased seams between them.
    const fs = rec.sampling_rate;
    for (const [start, stop, seg] of runs) {
      const s = Math.max(cell.t0, start / fs), e = Math.min(cell.t1, stop / fs);
      if (e <= s) continue;
      const x0 = Math.round(cell.x + (s - cell.t0) * layout.pps), x1 = Math.round(cell.x + (e - cell.t0) * layout.pps);
      if (x1 > x0) each(x0, x1, seg);
    }
  }

  function drawOverlay(cell, rec, ov) {
    // One colour per lead x segment, painted on every run of that segment (every beat for waves).
    const row = ov.values[cell.leadIndex];
    runSpans(cell, rec, rec.features.runs, (x0, x1, seg) => {
      const [r, g, b] = overlayColour(ov, row[seg]);
      ctx.fillStyle = `rgba(${r},${g},${b},${OVERLAY_ALPHA})`;
      ctx.fillRect(x0, cell.y, x1 - x0, cell.h);
    });
  }

  function drawWaveBands(cell, rec, ribbon) {
    // The record's P/PR/QRS/ST/T/TP partition from its beats: full-height pale bands, or a ribbon
    // at the cell's foot while an attribution overlay needs the full height for its own colours.
    const names = rec.segments.names;
    const h = ribbon ? RIBBON_MM * PX_PER_MM : cell.h, y = cell.y + cell.h - h;
    ctx.save();
    ctx.globalAlpha = ribbon ? 0.9 : WAVE_ALPHA;
    runSpans(cell, rec, rec.segments.runs, (x0, x1, seg) => {
      if (names[seg] === 'TP') return;   // TP stays paper: the eye finds the waves
      ctx.fillStyle = SEGMENT_COLOURS[names[seg]];
      ctx.fillRect(x0, y, x1 - x0, h);
    });
    ctx.restore();
  }

  function drawFiducials(cell, rec) {
    // Global fiducials (the same in every lead): dashed lines at onsets/offsets, a triangle at R.
    const fs = rec.sampling_rate, top = cell.y + cell.labelH, bottom = cell.y + cell.h;
    clipTo(cell.x, cell.y, cell.w, cell.h);
    ctx.lineWidth = 1;
    ctx.setLineDash([3, 2]);
    rec.beats.forEach((beat) => beat.forEach((sample, k) => {
      const t = sample / fs;
      if (sample < 0 || t < cell.t0 || t > cell.t1) return;
      const x = Math.round(cell.x + (t - cell.t0) * layout.pps) + 0.5, name = FIDUCIALS[k];
      if (name === 'r') {
        ctx.fillStyle = FIDUCIAL_COLOURS.r;
        ctx.beginPath();
        ctx.moveTo(x - 4, top);
        ctx.lineTo(x + 4, top);
        ctx.lineTo(x, top + 6);
        ctx.fill();
        return;
      }
      ctx.strokeStyle = FIDUCIAL_COLOURS[name.split('_')[0]];
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
    }));
    ctx.setLineDash([]);
    ctx.restore();
  }

  function clipTo(x, y, w, h) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(x, y, w, h);
    ctx.clip();
  }

  function drawTrace(cell, rec, L) {
    const sig = drawnSignal(rec)[cell.leadIndex], fs = rec.sampling_rate;
    const i0 = Math.max(0, Math.floor(cell.t0 * fs)), i1 = Math.min(sig.length - 1, Math.ceil(cell.t1 * fs));
    if (i1 <= i0) return;
    const pxPerUnit = state.gain * PX_PER_MM;   // 1 mV (or 1 uncalibrated unit) = gain mm
    // In mV a tall wave runs into the neighbouring rows, as on paper; uncalibrated units (z-scores)
    // have no amplitude worth that clutter and stay in their own row.
    if (isMillivolt(rec)) clipTo(cell.x, 0, cell.w, L.footerY); else clipTo(cell.x, cell.y, cell.w, cell.h);
    ctx.beginPath();
    for (let i = i0; i <= i1; i++) {
      const x = cell.x + (i / fs - cell.t0) * L.pps, y = cell.baseline - sig[i] * pxPerUnit;
      if (i === i0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    }
    ctx.strokeStyle = TRACE;
    ctx.lineWidth = 1.3;
    ctx.lineJoin = 'round';
    ctx.stroke();
    ctx.restore();
  }

  function drawCalibration(rowTop, baseline, L) {
    // 1 mV pulse, 0.2 s wide, at the start of every row, as on a printed ECG.
    const mm = PX_PER_MM, top = baseline - state.gain * mm;
    clipTo(0, rowTop, L.plotX, L.rowH);
    ctx.beginPath();
    ctx.moveTo(2 * mm, baseline);
    ctx.lineTo(4 * mm, baseline);
    ctx.lineTo(4 * mm, top);
    ctx.lineTo(9 * mm, top);
    ctx.lineTo(9 * mm, baseline);
    ctx.lineTo(12 * mm, baseline);
    ctx.strokeStyle = TRACE;
    ctx.lineWidth = 1.3;
    ctx.stroke();
    ctx.restore();
  }

  function drawLeadName(cell, visible) {
    // Top-left corner of the cell, on a white patch so the trace cannot hide it.
    const name = displayLead(cell.lead) + (visible ? '' : ' (hidden)');
    const x = cell.x + 3, y = cell.y + 12;
    ctx.font = '600 11px sans-serif';
    ctx.textBaseline = 'alphabetic';
    ctx.fillStyle = 'rgba(255,255,255,0.85)';
    ctx.fillRect(x - 2, cell.y + 1, ctx.measureText(name).width + 4, LABEL_STRIP_PX - 3);
    ctx.fillStyle = visible ? '#000000' : '#9a9a9a';
    ctx.fillText(name, x, y);
  }

  function drawFooter(L, rec, ov) {
    const y = L.footerY;
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, y, L.width, FOOTER_PX);
    ctx.fillStyle = '#000000';
    ctx.font = '12px sans-serif';
    ctx.textBaseline = 'alphabetic';
    const scale = `ECG ${rec.ecg_id}   ${PAPER_SPEED} mm/s   ${state.gain} mm/mV` +
      (state.zoom !== 1 ? `   time zoom x${fmt(state.zoom, 2)}` : '') +
      `   ${fmt(state.pan, 2)}-${fmt(state.pan + windowSeconds(), 2)} s   ${unitNote(rec)}`;
    ctx.fillText(scale, 4, y + 16);
    let text = `Overlay: ${METHOD_NAMES[state.overlay]}`;
    if (ov.values) text += ` for ${state.label}`;
    else if (ov.reason !== 'none') text += ` (${ov.reason})`;
    ctx.fillText(text, 4, y + 36);
    if (ov.values) drawColourBar(ov, L.width - 260, y + 26);
  }

  function drawColourBar(ov, x, y) {
    const w = 180, h = 12;
    for (let i = 0; i < w; i++) {
      const [r, g, b] = interpolate(ov.stops, i / (w - 1));
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect(x + i, y, 1, h);
    }
    ctx.strokeStyle = '#777777';
    ctx.strokeRect(x + 0.5, y + 0.5, w - 1, h - 1);
    ctx.fillStyle = '#000000';
    ctx.font = '11px sans-serif';
    ctx.textAlign = 'right';
    ctx.fillText(fmtValue(ov.lo), x - 4, y + 10);
    ctx.textAlign = 'left';
    ctx.fillText(fmtValue(ov.hi), x + w + 4, y + 10);
  }

  const fmtValue = (v) => (Math.abs(v) >= 100 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : v.toFixed(3));

  function unitNote(rec) {
    if (rec.lead_scale) return `signal in mV (filtered; the model saw ${rec.units})`;
    return isMillivolt(rec) ? 'signal in mV' : `signal in ${rec.units}: 1 ${rec.units} drawn as 1 mV`;
  }

  function featureNote(rec) {
    // Which features the attributions live on, and why a record fell back to time bins.
    const f = rec.features, n = f.segment_names.length;
    const text = f.kind === 'waves' ? `attributions on 12 leads x ${n} wave segments (${f.segment_names.join(', ')}), each over every beat`
      : `attributions on 12 leads x ${n} time bins of ${fmt(duration(rec) / n, 2)} s`;
    return f.notes.length ? `${text}; ${f.notes.join('; ')}` : text;
  }

  function draw() {
    const rec = record();
    const L = computeLayout(rec);
    layout = L;
    sizeCanvas(L);
    drawPaper(L);
    const ov = overlayModel(rec);
    const visible = new Set(state.visibleLeads);
    for (let r = 0; r < L.rows; r++) drawCalibration(r * L.rowH, r * L.rowH + L.baseOff, L);
    const bands = state.waves && rec.segments;
    L.cells.forEach((cell) => {
      const shown = visible.has(cell.lead);
      if (shown && ov.values) drawOverlay(cell, rec, ov);   // under the trace
      if (shown && bands) drawWaveBands(cell, rec, Boolean(ov.values));
      if (shown && state.fiducials && rec.beats) drawFiducials(cell, rec);
      if (shown) drawTrace(cell, rec, L);
      drawLeadName(cell, shown);
    });
    drawFooter(L, rec, ov);
    drawMedian(rec, ov);
    return ov;
  }

  // ---- counterfactual (the live app's api/counterfactual answer, per label) ------------------------
  function counterfactualOf(rec) {
    const cf = (rec.counterfactuals || {})[state.label];
    return cf || null;
  }

  function counterfactualText(cf) {
    // One sentence per kind: the segments made normal, then each clinical edit that flips the call.
    if (!cf) return '';
    if (!cf.available) return cf.reason;
    if (!cf.predicted) return cf.segments.sentence;
    const edits = cf.edits.filter((e) => e.valid).map((e) => e.sentence);
    const none = cf.edits.filter((e) => !e.valid).map((e) => e.kind);
    return [`Counterfactual: ${cf.segments.sentence}.`, ...edits.map((e) => `Or: ${e}.`),
      none.length ? `No ${none.join(', ')} edit of the grid flips it.` : ''].filter(Boolean).join(' ');
  }

  function changedSegments(cf, lead) {
    // Segment indices of `lead` that the counterfactual made normal ('V2:ST' -> 3 for lead V2).
    if (!cf || !cf.available || !cf.segments) return new Set();
    const names = ['P', 'PR', 'QRS', 'ST', 'T', 'TP'];
    return new Set(cf.segments.changed.filter((f) => leadKey(f.split(':')[0]) === leadKey(lead))
      .map((f) => names.indexOf(f.split(':')[1])));
  }

  // ---- median beat ---------------------------------------------------------------------------
  function medianLayout(rec) {
    // Standard 3x4 arrangement of the leads, each cell one R-aligned window at MEDIAN_SPEED.
    const mb = rec.median_beat, fs = rec.sampling_rate;
    const pps = MEDIAN_SPEED * PX_PER_MM, cellW = Math.round((mb.signal[0].length / fs) * pps);
    const rowMm = Math.ceil(clamp(3 * state.gain, 15, 60) / 5) * 5, rowH = rowMm * PX_PER_MM;
    const plotX = MARGIN_MM * PX_PER_MM;
    const index = new Map(rec.leads.map((n, i) => [leadKey(n), i]));
    const byName = STANDARD_ORDER.every((k) => index.has(k));
    const cells = [];
    LAYOUT_3X4.forEach((row, r) => row.forEach((k, c) => {
      const leadIndex = byName ? index.get(k) : STANDARD_ORDER.indexOf(k);
      cells.push({ lead: rec.leads[leadIndex], leadIndex, row: r, col: c, x: plotX + c * cellW, y: r * rowH,
        w: cellW, h: rowH, baseline: r * rowH + Math.round(rowMm * 0.6) * PX_PER_MM, labelH: LABEL_STRIP_PX });
    }));
    const footerY = 3 * rowH;
    return { width: plotX + MEDIAN_COLS * cellW, height: footerY + 24, plotX, pps, rowH, cells, footerY };
  }

  function medianValues(rec, ov) {
    // Segment attributions can be drawn on the median beat only when the features are the waves.
    return ov.values && isWaves(rec) ? ov.values : null;
  }

  function drawMedian(rec, ov) {
    const section = $('median-section');
    if (!section) return;
    const mb = rec.median_beat;
    $('median-note').textContent = medianNote(rec, ov);
    const cfNote = $('counterfactual-note');
    if (cfNote) {
      cfNote.textContent = counterfactualText(counterfactualOf(rec));
      cfNote.hidden = !cfNote.textContent;
    }
    if (!mb) {
      medianCanvas.hidden = true;
      medianCanvas.parentElement.hidden = true;
      medianLayoutCache = null;
      return;
    }
    medianCanvas.hidden = false;
    medianCanvas.parentElement.hidden = false;
    const M = medianLayout(rec), fs = rec.sampling_rate;
    medianLayoutCache = M;
    medianCanvas.width = Math.round(M.width * dpr);
    medianCanvas.height = Math.round(M.height * dpr);
    medianCanvas.style.width = M.width + 'px';
    medianCanvas.style.height = M.height + 'px';
    mctx = medianCanvas.getContext('2d');
    mctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    mctx.fillStyle = '#ffffff';
    mctx.fillRect(0, 0, M.width, M.height);
    const values = medianValues(rec, ov), visible = new Set(state.visibleLeads);
    const names = ['P', 'PR', 'QRS', 'ST', 'T', 'TP'];
    M.cells.forEach((cell) => {
      if (!visible.has(cell.lead)) return;
      (mb.runs || []).forEach(([start, stop, seg]) => {
        const x0 = Math.round(cell.x + (start / fs) * M.pps), x1 = Math.round(cell.x + (stop / fs) * M.pps);
        if (values) {
          const [r, g, b] = overlayColour(ov, values[cell.leadIndex][seg]);
          mctx.fillStyle = `rgba(${r},${g},${b},${OVERLAY_ALPHA})`;
        } else if (names[seg] !== 'TP') {
          mctx.fillStyle = SEGMENT_COLOURS[names[seg]];
          mctx.globalAlpha = WAVE_ALPHA;
        } else return;
        mctx.fillRect(x0, cell.y, x1 - x0, cell.h);
        mctx.globalAlpha = 1;
      });
    });
    // Paper on top of the bands (thin lines), then traces: 1 mm = 20 ms at 50 mm/s.
    const minor = [], major = [], crisp = (v) => Math.round(v) + 0.5;
    for (let mm = 0; mm * PX_PER_MM <= M.footerY; mm++) {
      (mm % 5 ? minor : major).push([0, crisp(mm * PX_PER_MM), M.width, crisp(mm * PX_PER_MM)]);
    }
    for (let mm = 0; mm * PX_PER_MM <= M.width; mm++) {
      (mm % 5 ? minor : major).push([crisp(mm * PX_PER_MM), 0, crisp(mm * PX_PER_MM), M.footerY]);
    }
    strokeLinesOn(mctx, minor, GRID_MINOR, 0.6);
    strokeLinesOn(mctx, major, GRID_MAJOR, 0.8);
    for (let r = 0; r < 3; r++) drawPulseOn(mctx, r * M.rowH, r * M.rowH + (M.cells[r * MEDIAN_COLS].baseline - r * M.rowH), M.plotX, M.rowH);
    const pxPerMv = state.gain * PX_PER_MM;
    M.cells.forEach((cell) => {
      const shown = visible.has(cell.lead);
      if (shown) {
        // R at the window's r_index: a dashed line, so the alignment is visible.
        const xr = Math.round(cell.x + (mb.r_index / fs) * M.pps) + 0.5;
        mctx.save();
        mctx.setLineDash([2, 3]);
        mctx.strokeStyle = '#666666';
        mctx.beginPath();
        mctx.moveTo(xr, cell.y + cell.labelH);
        mctx.lineTo(xr, cell.y + cell.h);
        mctx.stroke();
        mctx.restore();
        mctx.save();
        mctx.beginPath();
        mctx.rect(cell.x, cell.y, cell.w, cell.h);
        mctx.clip();
        mctx.beginPath();
        mb.signal[cell.leadIndex].forEach((v, i) => {
          const x = cell.x + (i / fs) * M.pps, y = cell.baseline - v * pxPerMv;
          if (i === 0) mctx.moveTo(x, y); else mctx.lineTo(x, y);
        });
        mctx.strokeStyle = TRACE;
        mctx.lineWidth = 1.5;
        mctx.lineJoin = 'round';
        mctx.stroke();
        drawCounterfactualCell(rec, cell, M, pxPerMv);
        mctx.restore();
      }
      // Cell borders: each median beat is its own window.
      mctx.strokeStyle = '#999999';
      mctx.lineWidth = 1;
      mctx.strokeRect(Math.round(cell.x) + 0.5, Math.round(cell.y) + 0.5, cell.w - 1, cell.h - 1);
      const name = displayLead(cell.lead) + (shown ? '' : ' (hidden)');
      mctx.font = '600 11px sans-serif';
      mctx.fillStyle = 'rgba(255,255,255,0.85)';
      mctx.fillRect(cell.x + 1, cell.y + 1, mctx.measureText(name).width + 4, LABEL_STRIP_PX - 3);
      mctx.fillStyle = shown ? '#000000' : '#9a9a9a';
      mctx.fillText(name, cell.x + 3, cell.y + 12);
    });
    mctx.fillStyle = '#000000';
    mctx.font = '12px sans-serif';
    mctx.fillText(`Median beat of ${mb.n_beats} beat(s), ${fmt(mb.start_s, 2)} to ${fmt(mb.start_s + mb.signal[0].length / fs, 2)} s ` +
      `around R   ${MEDIAN_SPEED} mm/s   ${state.gain} mm/mV   ${isMillivolt(rec) ? 'mV' : rec.units}`, 4, M.footerY + 16);
  }

  function drawCounterfactualCell(rec, cell, M, pxPerMv) {
    // The counterfactual's median beat (dashed) on each segment it made normal, framed.
    const cf = counterfactualOf(rec), fs = rec.sampling_rate, mb = rec.median_beat;
    if (!cf || !cf.overlay) return;
    const changed = changedSegments(cf, cell.lead);
    if (!changed.size) return;
    mctx.strokeStyle = COUNTERFACTUAL;
    mctx.lineWidth = 2;
    (mb.runs || []).forEach(([start, stop, seg]) => {
      if (!changed.has(seg)) return;
      const x0 = Math.round(cell.x + (start / fs) * M.pps), x1 = Math.round(cell.x + (stop / fs) * M.pps);
      mctx.strokeRect(x0 + 1, cell.y + cell.labelH, x1 - x0 - 2, cell.h - cell.labelH - 2);
    });
    // the counterfactual trace only where it replaces the original (elsewhere the two are the same)
    const values = cf.overlay.counterfactual[cell.leadIndex];
    mctx.beginPath();
    (mb.runs || []).forEach(([start, stop, seg]) => {
      if (!changed.has(seg)) return;
      for (let i = Math.max(0, start - 1); i <= Math.min(values.length - 1, stop); i++) {
        const x = cell.x + (i / fs) * M.pps, y = cell.baseline - values[i] * pxPerMv;
        if (i === Math.max(0, start - 1)) mctx.moveTo(x, y); else mctx.lineTo(x, y);
      }
    });
    mctx.setLineDash([4, 2]);
    mctx.lineWidth = 1.5;
    mctx.stroke();
    mctx.setLineDash([]);
  }

  function medianNote(rec, ov) {
    if (!rec.median_beat) return rec.median_beat_note + '.';
    let text = `${rec.median_beat_note} (${MEDIAN_SPEED} mm/s, ${state.gain} mm/mV). `;
    if (!ov.values) text += 'Colour bands: the wave segments of the median beat.';
    else if (isWaves(rec)) text += `Colour of each segment: its ${METHOD_NAMES[state.overlay]} attribution for ${state.label} (same scale as above).`;
    else text += `This record's attributions are on time bins, not wave segments, so the median beat shows the segments only.`;
    return text;
  }

  function strokeLinesOn(c, lines, colour, width) {
    c.beginPath();
    lines.forEach(([x0, y0, x1, y1]) => { c.moveTo(x0, y0); c.lineTo(x1, y1); });
    c.strokeStyle = colour;
    c.lineWidth = width;
    c.stroke();
  }

  function drawPulseOn(c, rowTop, baseline, marginW, rowH) {
    const mm = PX_PER_MM, top = baseline - state.gain * mm;
    c.save();
    c.beginPath();
    c.rect(0, rowTop, marginW, rowH);
    c.clip();
    c.beginPath();
    c.moveTo(2 * mm, baseline);
    c.lineTo(4 * mm, baseline);
    c.lineTo(4 * mm, top);
    c.lineTo(9 * mm, top);
    c.lineTo(9 * mm, baseline);
    c.lineTo(12 * mm, baseline);
    c.strokeStyle = TRACE;
    c.lineWidth = 1.3;
    c.stroke();
    c.restore();
  }

  // ---- side panels ---------------------------------------------------------------------------
  function buildRecordSelect() {
    const select = $('record-select');
    RECORDS.forEach((rec, i) => select.append(el('option', { value: String(i), text: `ECG ${rec.ecg_id}` })));
  }

  function buildLeadToggles() {
    const box = $('lead-toggles');
    box.textContent = '';
    record().leads.forEach((name) => {
      const id = 'lead-' + safeName(name);
      const input = el('input', { type: 'checkbox', id, 'data-testid': `lead-toggle-${name}`, value: name });
      input.checked = state.visibleLeads.includes(name);
      input.addEventListener('change', () => toggleLead(name, input.checked));
      box.append(el('label', { for: id }, [input, ' ' + displayLead(name)]));
    });
  }

  function outcome(rec, i) {
    const predicted = rec.predicted[i] === 1;
    if (rec.true === null) return { code: predicted ? 'pred' : 'neg', text: '', title: 'no reference labels' };
    const truth = rec.true[i] === 1;
    if (predicted && truth) return { code: 'tp', text: 'TP', title: 'true positive' };
    if (predicted) return { code: 'fp', text: 'FP \u25B2', title: 'false positive: predicted, not in the reference' };
    if (truth) return { code: 'fn', text: 'FN \u25BC', title: 'false negative: in the reference, not predicted' };
    return { code: 'tn', text: '', title: 'true negative' };
  }

  function yesNo(flag, what) {
    // A compact symbol for the eye, the full words for screen readers and tooltips.
    return el('td', { title: (flag ? '' : 'not ') + what, 'data-value': flag ? '1' : '0' }, [
      el('span', { 'aria-hidden': 'true', text: flag ? '\u2713' : '\u2013' }),
      el('span', { className: 'sr-only', text: flag ? 'yes' : 'no' })]);
  }

  function buildLabelTable() {
    const rec = record(), body = $('label-rows');
    body.textContent = '';
    // Most probable first: the clinician reads the model's verdict top-down.
    const order = rec.label_names.map((_, i) => i).sort((a, b) => rec.probabilities[b] - rec.probabilities[a]);
    order.forEach((i) => {
      const name = rec.label_names[i], p = rec.probabilities[i], thr = rec.thresholds[i];
      const id = 'label-' + i, res = outcome(rec, i);
      const description = rec.label_descriptions[name] || name;
      const radio = el('input', { type: 'radio', name: 'label', id, value: name, 'data-testid': `label-radio-${name}` });
      radio.addEventListener('change', () => { if (radio.checked) selectLabel(name); });
      const [r, g, b] = interpolate(CIVIDIS, p);
      const bar = el('span', { className: 'bar' });
      bar.style.width = `${Math.round(p * 100)}%`;
      bar.style.background = `rgb(${r},${g},${b})`;
      const predicted = rec.predicted[i] === 1;
      body.append(el('tr', { 'data-testid': `label-row-${name}`, 'data-label': name, 'data-outcome': res.code }, [
        el('td', {}, [radio]),
        // a statement code (NORM, LAO/LAE) stays whole; only long names may wrap anywhere
        el('td', {}, [el('label', { for: id, title: description, text: name, className: name.length <= 8 ? 'code' : '' })]),
        el('td', {}, [el('span', { className: 'prob', title: `probability ${p.toFixed(3)}` },
          [el('span', { className: 'bar-bg', 'aria-hidden': 'true' }, [bar]), p.toFixed(2)])]),
        el('td', { text: thr.toFixed(2) }),
        yesNo(predicted, 'predicted'),
        rec.true === null ? el('td', { text: '?', title: 'no reference labels' })
          : yesNo(rec.true[i] === 1, 'in the reference'),
        el('td', {}, res.text ? [el('span', { className: `badge ${res.code}`, title: res.title, text: res.text })] : []),
      ]));
    });
    const ramp = el('span', { className: 'ramp' });
    ramp.style.background = cssGradient(CIVIDIS);
    $('prob-scale').replaceChildren(el('span', { text: 'probability 0' }), ramp, el('span', { text: '1' }));
  }

  function renderLegend(rec, ov) {
    const paper = el('div', { 'data-testid': 'legend-paper', text:
      `Paper: ${PAPER_SPEED} mm/s, ${state.gain} mm/mV; small square 1 mm = 40 ms x ${fmt(1 / state.gain, 2)} mV, ` +
      `large square 5 mm = 0.2 s x ${fmt(5 / state.gain, 2)} mV` +
      (state.zoom !== 1 ? `; time zoomed x${fmt(state.zoom, 2)} on screen` : '') + '. ' +
      (rec.lead_scale ? `Signal in mV (the filtered ECG; the model's own input is ${rec.units}).`
        : isMillivolt(rec) ? 'Signal in mV.'
          : `Signal in ${rec.units} (not mV): 1 ${rec.units} is drawn as 1 mV, so the amplitude scale applies to ${rec.units} units.`) +
      ' Calibration pulse: 1 mV x 0.2 s.' });
    const parts = [paper, el('div', { 'data-testid': 'legend-features', text: `Features: ${featureNote(rec)}.` })];
    if (rec.segments && state.waves) {
      const keys = rec.segments.names.filter((n) => n !== 'TP');
      parts.push(el('div', { className: 'scale', 'data-testid': 'legend-waves' }, [
        el('b', { text: 'Wave segments:' }),
        ...keys.map((n) => el('span', { className: 'swatch-item', title: SEGMENT_TEXT[n] }, [
          swatch(SEGMENT_COLOURS[n]), n])),
        el('span', { text: ov.values ? '(ribbon at the foot of each lead; TP uncoloured)' : '(TP uncoloured)' })]));
    }
    if (rec.beats && state.fiducials) {
      parts.push(el('div', { className: 'scale', 'data-testid': 'legend-fiducials' }, [
        el('b', { text: 'Fiducials (global across leads):' }),
        el('span', { className: 'swatch-item' }, [swatch(FIDUCIAL_COLOURS.p), 'P on/off']),
        el('span', { className: 'swatch-item' }, [swatch(FIDUCIAL_COLOURS.qrs), 'QRS on/off']),
        el('span', { className: 'swatch-item' }, [swatch(FIDUCIAL_COLOURS.t), 'T on/off']),
        el('span', { text: '\u25BC R peak' })]));
    }
    if (ov.values) {
      const ramp = el('span', { className: 'ramp', 'aria-hidden': 'true' });
      ramp.style.background = cssGradient(ov.stops);
      const meaning = ov.kind === 'diverging'
        ? 'blue: against the label, white: neutral, red: towards the label'
        : 'light: little attention, dark orange: most attention';
      parts.push(el('div', { className: 'scale', 'data-testid': 'legend-scale' }, [
        el('b', { text: `${METHOD_NAMES[state.overlay]} for ${state.label}:` }), el('span', { text: fmtValue(ov.lo) }),
        ramp, el('span', { text: fmtValue(ov.hi) }), el('span', { text: `(${meaning})` })]));
    } else if (ov.reason !== 'none') {
      parts.push(el('div', { className: 'scale', text: `Overlay: ${ov.reason}.` }));
    }
    $('legend').replaceChildren(...parts);
  }

  function swatch(colour) {
    const box = el('span', { className: 'swatch', 'aria-hidden': 'true' });
    box.style.background = colour;
    return box;
  }

  function flagOf(rec, method) {
    // Sanity-check status of a method: passed | caution | failed | not checked, each optionally
    // followed by ': why' (absent = not checked).
    return (rec.method_flags || {})[method] || 'not checked';
  }

  function renderMethodText(rec) {
    // The description of the shown method, then every method's sanity-check status.
    const parts = [el('p', { 'data-testid': 'method-description', text: METHOD_TEXT[state.overlay] })];
    const methods = METHODS.filter((m) => rec.attributions[m] || (rec.method_flags || {})[m]);
    const extra = Object.keys(rec.method_flags || {}).filter((m) => !METHODS.includes(m));
    const rows = methods.concat(extra).map((m) => {
      const status = flagOf(rec, m), code = status.split(':')[0].replace(' ', '-');
      return el('li', { 'data-testid': `method-flag-${m}`, 'data-status': code, className: `flag ${code}` }, [
        el('b', { text: `${METHOD_NAMES[m] || m}: ` }), el('span', { text: status })]);
    });
    if (rows.length) {
      parts.push(el('p', { className: 'small', text: 'Sanity checks (the explanation must change when the ' +
        'model\'s weights are randomised; seeds must agree):' }), el('ul', { className: 'flags' }, rows));
    }
    const known = rec.known_answer_flags || {};
    const knownRows = Object.keys(known).map((m) => {
      const code = known[m].split(':')[0].replace(' ', '-');
      return el('li', { 'data-testid': `known-answer-flag-${m}`, 'data-status': code, className: `flag ${code}` }, [
        el('b', { text: `${METHOD_NAMES[m] || m}: ` }), el('span', { text: known[m] })]);
    });
    if (knownRows.length) {
      parts.push(el('p', { className: 'small', text: 'Known-answer test (synthetic records with a planted cause: ' +
        'the attribution must fall on it; snakemake known_answer):' }), el('ul', { className: 'flags' }, knownRows));
    }
    const knownShown = state.overlay !== 'none' ? (known[state.overlay] || '') : '';
    if (knownShown.startsWith('failed')) {
      parts.unshift(el('p', { className: 'flag-warning', 'data-testid': 'known-answer-warning', role: 'alert',
        text: `${METHOD_NAMES[state.overlay]} failed the known-answer test (${knownShown.slice(knownShown.indexOf(': ') + 2)}): ` +
          'on planted causes it does not point at the cause.' }));
    }
    const shown = state.overlay !== 'none' ? flagOf(rec, state.overlay) : '';
    const why = shown.includes(': ') ? ` (${shown.slice(shown.indexOf(': ') + 2)})` : '';
    if (shown.startsWith('failed')) {
      parts.unshift(el('p', { className: 'flag-warning', 'data-testid': 'method-warning', role: 'alert',
        text: `${METHOD_NAMES[state.overlay]} failed its sanity check${why}: do not read this overlay as evidence.` }));
    } else if (shown.startsWith('caution')) {
      parts.unshift(el('p', { className: 'flag-caution', 'data-testid': 'method-warning',
        text: `${METHOD_NAMES[state.overlay]} passed its sanity check with a caution${why}.` }));
    }
    $('method-text').replaceChildren(...parts);
  }

  function syncControls(rec, ov) {
    $('record-select').value = String(state.recordIndex);
    const overlaySelect = $('overlay-select');
    Array.from(overlaySelect.options).forEach((o) => {
      o.disabled = o.value !== 'none' && !rec.attributions[o.value];
      const failed = o.value !== 'none' && flagOf(rec, o.value).startsWith('failed');
      const missed = o.value !== 'none' && ((rec.known_answer_flags || {})[o.value] || '').startsWith('failed');
      o.textContent = METHOD_NAMES[o.value] + (failed ? ' (failed sanity check)' : '') +
        (missed ? ' (failed known-answer test)' : '');
    });
    overlaySelect.value = state.overlay;
    $('layout-select').value = state.layout;
    $('gain-select').value = String(state.gain);
    $('zoom-value').textContent = `x${fmt(state.zoom, 2)}`;
    $('zoom-out').disabled = state.zoom <= ZOOM_MIN;
    $('zoom-in').disabled = state.zoom >= ZOOM_MAX;
    const slider = $('pan-slider');
    slider.max = String(Math.round(maxPan(rec) * 1000));    // milliseconds: range inputs step in integers
    slider.value = String(Math.round(state.pan * 1000));
    slider.disabled = maxPan(rec) === 0;
    slider.setAttribute('aria-valuetext', `${fmt(state.pan, 2)} seconds`);
    $('pan-value').textContent = `${state.pan.toFixed(2)} s`;
    document.querySelectorAll('#lead-toggles input').forEach((input) => {
      input.checked = state.visibleLeads.includes(input.value);
    });
    document.querySelectorAll('#label-rows tr').forEach((tr) => {
      const selected = tr.dataset.label === state.label;
      tr.classList.toggle('selected', selected);
      tr.querySelector('input').checked = selected;
    });
    renderMethodText(rec);
    const waves = $('waves-toggle'), fiducials = $('fiducials-toggle');
    waves.checked = state.waves && Boolean(rec.segments);   // the setting is kept for the next record
    waves.disabled = !rec.segments;
    fiducials.checked = state.fiducials && Boolean(rec.beats && rec.beats.length);
    fiducials.disabled = !rec.beats || !rec.beats.length;
    $('record-info').textContent = `ECG ${rec.ecg_id}: ${rec.sampling_rate} Hz, ${fmt(duration(rec), 1)} s, ` +
      `${rec.leads.length} leads, ${unitNote(rec)}` + (rec.beats ? `, ${rec.beats.length} beats delineated` : ', not delineated');
    $('record-notes').replaceChildren(...[featureNote(rec)].concat(rec.notes || []).map((t) => el('li', { text: t })));
    canvas.setAttribute('aria-label', `ECG ${rec.ecg_id}, layout ${state.layout}, ` +
      `${state.visibleLeads.length} of ${rec.leads.length} leads shown, overlay ${METHOD_NAMES[state.overlay]}` +
      (ov.values ? ` for ${state.label}` : ''));
  }

  function update() {
    const rec = record();
    state.record = rec.ecg_id;
    state.windowSeconds = windowSeconds();
    state.pan = clamp(state.pan, 0, maxPan(rec));
    const ov = draw();
    syncControls(rec, ov);
    renderLegend(rec, ov);
  }

  // ---- actions -------------------------------------------------------------------------------
  function defaultLabel(rec) {
    // The most probable label that has an explanation, so the first overlay shows something.
    const explained = new Set(METHODS.flatMap((m) => Object.keys(rec.attributions[m] || {})));
    const order = rec.label_names.map((_, i) => i).sort((a, b) => rec.probabilities[b] - rec.probabilities[a]);
    const best = order.find((i) => explained.has(rec.label_names[i]));
    return rec.label_names[best === undefined ? order[0] : best];
  }

  function selectRecord(index) {
    const previous = record();
    state.recordIndex = clamp(index, 0, RECORDS.length - 1);
    const rec = record();
    // Keep what still makes sense for the new record: label, method, hidden leads.
    if (!rec.label_names.includes(state.label)) state.label = defaultLabel(rec);
    if (state.overlay !== 'none' && !rec.attributions[state.overlay]) state.overlay = 'none';
    const hidden = previous.leads.filter((n) => !state.visibleLeads.includes(n));
    state.visibleLeads = rec.leads.filter((n) => !hidden.includes(n));
    buildLeadToggles();
    buildLabelTable();
    update();
  }

  function selectLabel(name) {
    if (record().label_names.includes(name)) state.label = name;
    update();
  }

  function setOverlay(method) {
    state.overlay = METHOD_NAMES[method] ? method : 'none';
    update();
  }

  function setLayout(value) {
    state.layout = value === '3x4' ? '3x4' : '12x1';
    update();
  }

  function setGain(value) {
    const g = Number(value);
    state.gain = GAINS.includes(g) ? g : 10;
    update();
  }

  function setZoom(zoom, anchorX) {
    // Keep the time under the anchor (cursor, or the window centre) where it is on screen.
    const x = anchorX === undefined ? layout.plotX + layout.plotW / 2 : anchorX;
    const t = timeAtX(x);
    state.zoom = clamp(zoom, ZOOM_MIN, ZOOM_MAX);
    state.pan = t - (x - layout.plotX) / pxPerSecond();
    update();
  }

  function resetZoom() {
    state.zoom = 1;
    state.pan = 0;
    update();
  }

  function setPan(seconds) {
    state.pan = seconds;
    update();
  }

  function setWaves(on) {
    state.waves = Boolean(on);
    update();
  }

  function setFiducials(on) {
    state.fiducials = Boolean(on);
    update();
  }

  function toggleLead(name, on) {
    const set = new Set(state.visibleLeads);
    if (on) set.add(name); else set.delete(name);
    state.visibleLeads = record().leads.filter((n) => set.has(n));   // keep record order
    update();
  }

  function setAllLeads(on) {
    state.visibleLeads = on ? record().leads.slice() : [];
    update();
  }

  // ---- exports -------------------------------------------------------------------------------
  function download(url, filename) {
    const a = el('a', { href: url, download: filename });
    document.body.append(a);
    a.click();
    a.remove();
  }

  function downloadBlob(text, type, filename) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    download(url, filename);
    setTimeout(() => URL.revokeObjectURL(url), 10000);   // the download must start first
  }

  const baseName = () => `ecg${record().ecg_id}`;

  function exportPng() {
    download(canvas.toDataURL('image/png'), `${baseName()}_${safeName(state.label)}_${state.overlay}.png`);
  }

  function csvField(v) {
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }

  function featureExtent(rec) {
    // Per segment: [first sample, last sample + 1, samples covered] over all its runs.
    const out = rec.features.segment_names.map(() => [Infinity, -Infinity, 0]);
    rec.features.runs.forEach(([start, stop, seg]) => {
      const e = out[seg];
      e[0] = Math.min(e[0], start); e[1] = Math.max(e[1], stop); e[2] += stop - start;
    });
    return out;
  }

  function attributionsCsv(rec) {
    // Long format, one row per method x lead x feature for the selected label; each row repeats
    // the label's prediction so the file stands alone in a spreadsheet. A bin has a start and an
    // end; a wave segment is spread over every beat, so it has its total duration only.
    const i = rec.label_names.indexOf(state.label), fs = rec.sampling_rate;
    const extent = featureExtent(rec), bins = rec.features.kind === 'bins';
    const rows = [['ecg_id', 'label', 'probability', 'threshold', 'predicted', 'true', 'feature_space', 'method',
      'lead', 'feature', 't_start_s', 't_end_s', 'duration_s', 'attribution']];
    METHODS.forEach((m) => {
      const values = (rec.attributions[m] || {})[state.label];
      if (!values) return;
      rec.leads.forEach((lead, l) => values[l].forEach((v, k) => rows.push([
        rec.ecg_id, state.label, rec.probabilities[i], rec.thresholds[i],
        rec.predicted[i], rec.true === null ? '' : rec.true[i],
        rec.features.kind, m, lead, rec.features.segment_names[k],
        bins ? +(extent[k][0] / fs).toFixed(4) : '', bins ? +(extent[k][1] / fs).toFixed(4) : '',
        +(extent[k][2] / fs).toFixed(4), v])));
    });
    // The counterfactual, where one was asked for: method 'counterfactual', attribution 1 for every feature it
    // made normal (0 for the others), on the same rows as the explanations.
    const cf = counterfactualOf(rec);
    if (cf && cf.available && cf.segments && cf.segments.valid && !bins) {
      rec.leads.forEach((lead, l) => {
        const changed = changedSegments(cf, lead);
        rec.features.segment_names.forEach((name, k) => rows.push([
          rec.ecg_id, state.label, rec.probabilities[i], rec.thresholds[i],
          rec.predicted[i], rec.true === null ? '' : rec.true[i],
          rec.features.kind, 'counterfactual', lead, name,
          bins ? +(extent[k][0] / fs).toFixed(4) : '', bins ? +(extent[k][1] / fs).toFixed(4) : '',
          +(extent[k][2] / fs).toFixed(4), changed.has(k) ? 1 : 0]));
      });
    }
    return rows.map((r) => r.map(csvField).join(',')).join('\n') + '\n';
  }

  function exportCsv() {
    downloadBlob(attributionsCsv(record()), 'text/csv', `${baseName()}_${safeName(state.label)}_attributions.csv`);
  }

  function exportJson() {
    const rec = record();
    const out = {
      ecg_id: rec.ecg_id, sampling_rate: rec.sampling_rate, units: rec.units, leads: rec.leads,
      label_names: rec.label_names, label_descriptions: rec.label_descriptions,
      probabilities: rec.probabilities, thresholds: rec.thresholds, true: rec.true,
      predicted: rec.predicted,
      lead_scale: rec.lead_scale, lead_offset: rec.lead_offset, features: rec.features, n_bins: rec.n_bins,
      beats: rec.beats, method_flags: rec.method_flags, known_answer_flags: rec.known_answer_flags || {},
      notes: rec.notes, attributions: rec.attributions,
      counterfactuals: rec.counterfactuals || {},
      view: Object.assign({}, state),
    };
    downloadBlob(JSON.stringify(out, null, 1), 'application/json', `${baseName()}_explanations.json`);
  }

  function buildReport() {
    const rec = record(), ov = overlayModel(rec);
    const rows = rec.label_names.map((name, i) => {
      const res = outcome(rec, i);
      return el('tr', {}, [el('td', { text: name }), el('td', { text: rec.label_descriptions[name] || '' }),
        el('td', { text: rec.probabilities[i].toFixed(3) }), el('td', { text: rec.thresholds[i].toFixed(2) }),
        el('td', { text: rec.predicted[i] ? 'yes' : 'no' }),
        el('td', { text: rec.true === null ? 'unknown' : (rec.true[i] ? 'yes' : 'no') }),
        el('td', { text: res.text ? res.title : '' })]);
    });
    const header = el('tr', {}, ['Label', 'Description', 'Probability', 'Threshold', 'Predicted', 'True', 'Result']
      .map((h) => el('th', { text: h })));
    $('report').replaceChildren(
      el('h1', { text: `${DATA.title}: ECG ${rec.ecg_id}` }),
      el('p', { text: `${rec.sampling_rate} Hz, ${fmt(duration(rec), 1)} s, ${rec.leads.length} leads. ` +
        `Shown: ${fmt(state.pan, 2)}-${fmt(state.pan + windowSeconds(), 2)} s, layout ${state.layout}, ` +
        `${PAPER_SPEED} mm/s, ${state.gain} mm/mV; ${unitNote(rec)}. Printed ${new Date().toLocaleString()}.` }),
      el('img', { src: canvas.toDataURL('image/png'), alt: canvas.getAttribute('aria-label') }),
      el('h2', { text: 'Predictions' }),
      el('table', {}, [el('thead', {}, [header]), el('tbody', {}, rows)]),
      el('h2', { text: `Explanation: ${METHOD_NAMES[state.overlay]}` + (ov.values ? ` for ${state.label}` : '') }),
      el('p', { text: METHOD_TEXT[state.overlay] + (state.overlay === 'none' ? ''
        : ` Sanity check: ${flagOf(rec, state.overlay)}. Features: ${featureNote(rec)}.`) }),
      ...(counterfactualOf(rec) ? [el('h2', { text: `What would make it normal: ${state.label}` }),
        el('p', { text: counterfactualText(counterfactualOf(rec)) })] : []),
      ...(rec.median_beat ? [el('h2', { text: 'Median beat per lead' }), el('p', { text: medianNote(rec, ov) }),
        el('img', { src: medianCanvas.toDataURL('image/png'), alt: medianCanvas.getAttribute('aria-label') })] : []),
      el('p', { text: 'Model explanations show what drove this model\'s output; they are not a diagnosis ' +
        'and must be read together with the full ECG and the clinical context.' }));
  }

  function printReport() {
    buildReport();
    window.print();
  }

  // ---- events --------------------------------------------------------------------------------
  function bindControls() {
    $('record-select').addEventListener('change', (e) => selectRecord(Number(e.target.value)));
    $('overlay-select').addEventListener('change', (e) => setOverlay(e.target.value));
    $('layout-select').addEventListener('change', (e) => setLayout(e.target.value));
    $('gain-select').addEventListener('change', (e) => setGain(e.target.value));
    $('zoom-in').addEventListener('click', () => setZoom(state.zoom * ZOOM_STEP));
    $('zoom-out').addEventListener('click', () => setZoom(state.zoom / ZOOM_STEP));
    $('zoom-reset').addEventListener('click', resetZoom);
    $('pan-slider').addEventListener('input', (e) => setPan(Number(e.target.value) / 1000));
    $('leads-all').addEventListener('click', () => setAllLeads(true));
    $('leads-none').addEventListener('click', () => setAllLeads(false));
    $('export-png').addEventListener('click', exportPng);
    $('export-csv').addEventListener('click', exportCsv);
    $('export-json').addEventListener('click', exportJson);
    $('print-report').addEventListener('click', printReport);
    $('waves-toggle').addEventListener('change', (e) => setWaves(e.target.checked));
    $('fiducials-toggle').addEventListener('change', (e) => setFiducials(e.target.checked));
    // The report must also be current when the user prints with Ctrl+P.
    window.addEventListener('beforeprint', buildReport);
  }

  function bindCanvas() {
    canvas.addEventListener('wheel', (e) => {
      e.preventDefault();   // the wheel zooms the ECG instead of scrolling the page
      setZoom(state.zoom * (e.deltaY < 0 ? WHEEL_STEP : 1 / WHEEL_STEP), e.offsetX);
    }, { passive: false });

    let drag = null;
    canvas.addEventListener('pointerdown', (e) => {
      drag = { x: e.clientX, pan: state.pan };
      canvas.setPointerCapture(e.pointerId);
      canvas.classList.add('dragging');
    });
    canvas.addEventListener('pointermove', (e) => {
      if (drag) setPan(drag.pan - (e.clientX - drag.x) / layout.pps);   // paper follows the pointer
    });
    const endDrag = () => { drag = null; canvas.classList.remove('dragging'); };
    canvas.addEventListener('pointerup', endDrag);
    canvas.addEventListener('pointercancel', endDrag);

    canvas.addEventListener('keydown', (e) => {
      const step = windowSeconds() / 10;
      const actions = {
        ArrowLeft: () => setPan(state.pan - step), ArrowRight: () => setPan(state.pan + step),
        Home: () => setPan(0), End: () => setPan(maxPan(record())),
        '+': () => setZoom(state.zoom * ZOOM_STEP), '=': () => setZoom(state.zoom * ZOOM_STEP),
        '-': () => setZoom(state.zoom / ZOOM_STEP), '0': resetZoom,
      };
      if (actions[e.key]) { e.preventDefault(); actions[e.key](); }
    });
  }

  // Geometry for tests and debugging, in canvas (device) pixels as getImageData sees them.
  window.viewerGeometry = function () {
    const s = (v) => v * dpr;
    return {
      dpr, width: canvas.width, height: canvas.height, plotX: s(layout.plotX), plotW: s(layout.plotW),
      footerY: s(layout.footerY), rowH: s(layout.rowH), pxPerSecond: s(layout.pps), pxPerMm: s(PX_PER_MM),
      binSeconds: record().n_bins ? duration(record()) / record().n_bins : null, nBins: record().n_bins,
      featureKind: record().features.kind, rows: layout.rows, cols: layout.cols,
      cells: layout.cells.map((c) => ({ lead: c.lead, leadIndex: c.leadIndex, row: c.row, col: c.col,
        x: s(c.x), y: s(c.y), w: s(c.w), h: s(c.h), baseline: s(c.baseline), labelH: s(c.labelH), t0: c.t0, t1: c.t1 })),
      median: medianLayoutCache && {
        width: medianCanvas.width, height: medianCanvas.height, pxPerSecond: s(medianLayoutCache.pps),
        startS: record().median_beat.start_s, rIndex: record().median_beat.r_index,
        cells: medianLayoutCache.cells.map((c) => ({ lead: c.lead, leadIndex: c.leadIndex, row: c.row, col: c.col,
          x: s(c.x), y: s(c.y), w: s(c.w), h: s(c.h), baseline: s(c.baseline), labelH: s(c.labelH) })),
      },
    };
  };

  // ---- public entry points (the live app renders its records with the same code) ----------------
  function setRecords(records, title) {
    // Replace every record (each as ptbxl_xai.report.viewer.validate_record returns it) and show the first.
    RECORDS = records.slice();
    if (title !== undefined) { DATA.title = title; $('page-title').textContent = title; }
    const select = $('record-select');
    select.textContent = '';
    buildRecordSelect();
    if (!RECORDS.length) return;
    const first = RECORDS[0];
    if (!state.label || !first.label_names.includes(state.label)) state.label = defaultLabel(first);
    if (state.overlay === 'none' || !first.attributions[state.overlay]) {
      state.overlay = METHODS.find((m) => first.attributions[m]) || 'none';
    }
    if (!state.visibleLeads.length) state.visibleLeads = first.leads.slice();
    state.recordIndex = 0;
    selectRecord(0);
  }

  function upsertRecord(rec) {
    // Add a record, or replace the one with its ecg_id (e.g. when SHAP/LIME arrive after the
    // predictions), keeping the view; the record shown switches to it.
    const i = RECORDS.findIndex((r) => r.ecg_id === rec.ecg_id);
    if (!RECORDS.length) { setRecords([rec]); return; }
    if (i >= 0) RECORDS[i] = rec; else RECORDS.push(rec);
    $('record-select').textContent = '';
    buildRecordSelect();
    selectRecord(i >= 0 ? i : RECORDS.length - 1);
  }

  // The live app's first entry point (branch app): push to `records`, then showRecord(i) or refresh().
  window.ecgViewer = {
    get records() { return RECORDS; },
    state,
    showRecord(index) {
      $('record-select').textContent = '';
      buildRecordSelect();
      selectRecord(index);
    },
    refresh: update,
  };

  window.ECGViewer = {
    setRecords, upsertRecord, selectRecord, selectLabel, setOverlay, setLayout, setGain, setZoom, setPan,
    setWaves, setFiducials, toggleLead, setAllLeads, attributionsCsv: () => attributionsCsv(record()),
    state, geometry: () => window.viewerGeometry(), records: () => RECORDS,
  };

  function init() {
    buildRecordSelect();
    bindControls();
    bindCanvas();
    if (RECORDS.length) {   // otherwise records come later through ECGViewer.setRecords
      state.label = defaultLabel(RECORDS[0]);
      state.overlay = METHODS.find((m) => RECORDS[0].attributions[m]) || 'none';
      state.visibleLeads = RECORDS[0].leads.slice();
      selectRecord(0);
    }
    document.documentElement.dataset.ready = 'true';   // tests wait for this
  }

  init();
})();
