/* ECG explanation viewer (vanilla JS, no dependencies).
 *
 * Data: JSON in <script id="data">, written by ecgxai.viewer.render_viewer.
 * Drawing: one <canvas> in CSS pixels (scaled by devicePixelRatio for a crisp image).
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
  const TRACE = '#111111';
  const GRID_MINOR = '#f4c2cb';
  const GRID_MAJOR = '#e3808f';

  // Standard 3x4 arrangement; lead names are compared upper-cased (PTB-XL writes AVR, AVL, AVF).
  const LAYOUT_3X4 = [['I', 'AVR', 'V1', 'V4'], ['II', 'AVL', 'V2', 'V5'], ['III', 'AVF', 'V3', 'V6']];
  const STANDARD_ORDER = ['I', 'II', 'III', 'AVR', 'AVL', 'AVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];

  const METHODS = ['shap', 'lime', 'attention'];
  const METHOD_NAMES = { none: 'None', shap: 'SHAP', lime: 'LIME', attention: 'Attention' };
  const METHOD_TEXT = {
    none: 'No overlay: the ECG as recorded (after the workflow\'s preprocessing).',
    shap: 'SHAP (Shapley additive explanations) shares the model output for the chosen label among ' +
      'lead/time segments, averaging each segment\'s effect over many combinations of the others. ' +
      'Red segments push the prediction towards the label, blue ones away from it; white is neutral. ' +
      'Colours are scaled to the largest absolute value in this record.',
    lime: 'LIME fits a simple linear model to the classifier\'s outputs for many randomly perturbed ' +
      'copies of this ECG (segments replaced by a baseline). A segment\'s weight says how much ' +
      'keeping it raised (red) or lowered (blue) the probability of the chosen label, locally around this record.',
    attention: 'Attention shows where the network\'s attention layer put its weight over time, per lead, ' +
      'when producing its output. It is not signed and not specific to one cause: darker orange means ' +
      'more weight. Scaled from the smallest to the largest weight in this record.',
  };

  // Colour-blind-safe scales (ColorBrewer RdBu, Oranges; cividis for probabilities).
  const DIVERGING = ['#2166ac', '#4393c3', '#92c5de', '#d1e5f0', '#f7f7f7', '#fddbc7', '#f4a582', '#d6604d', '#b2182b'];
  const SEQUENTIAL = ['#fff5eb', '#fee6ce', '#fdd0a2', '#fdae6b', '#fd8d3c', '#f16913', '#d94801', '#a63603', '#7f2704'];
  const CIVIDIS = ['#00204d', '#00336f', '#39486b', '#575c6d', '#707173', '#8a8779', '#a69d75', '#c4b56c', '#e4cf5b', '#ffea46'];

  // ---- data and state ------------------------------------------------------------------------
  const DATA = JSON.parse(document.getElementById('data').textContent);
  const RECORDS = DATA.records;
  const $ = (id) => document.getElementById(id);
  const canvas = $('ecg');
  const ctx = canvas.getContext('2d');

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
  };
  window.viewerState = state;

  let layout = null;       // geometry of the last drawing (CSS pixels)
  let dpr = 1;

  // ---- small helpers ---------------------------------------------------------------------------
  const leadKey = (name) => String(name).toUpperCase().replace(/\s+/g, '');
  const displayLead = (name) => (/^AV[RLF]$/.test(leadKey(name)) ? 'a' + leadKey(name).slice(1) : name);
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const record = () => RECORDS[state.recordIndex];
  const duration = (rec) => rec.signal[0].length / rec.sampling_rate;
  const pxPerSecond = () => PAPER_SPEED * PX_PER_MM * state.zoom;
  const windowSeconds = () => (PLOT_MM * PX_PER_MM) / pxPerSecond();
  const maxPan = (rec) => Math.max(0, duration(rec) - windowSeconds());
  const fmt = (v, digits) => (Number.isInteger(v) ? String(v) : v.toFixed(digits));
  const safeName = (s) => String(s).replace(/[^A-Za-z0-9_.-]+/g, '_');
  const isMillivolt = (rec) => rec.units.toLowerCase() === 'mv';

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
    // Rows grow with the gain so about +-1 mV (12x1) or +-1.5 mV (3x4) fits; multiples of 5 mm
    // keep every row boundary on a major grid line. Taller waves are clipped to their row.
    const perMv = state.layout === '3x4' ? 3 : 2;
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

  function drawOverlay(cell, rec, ov, L) {
    const binSec = duration(rec) / rec.n_bins;
    const row = ov.values[cell.leadIndex];
    const first = Math.max(0, Math.floor(cell.t0 / binSec));
    const last = Math.min(rec.n_bins - 1, Math.ceil(cell.t1 / binSec) - 1);
    for (let b = first; b <= last; b++) {
      const s = Math.max(cell.t0, b * binSec), e = Math.min(cell.t1, (b + 1) * binSec);
      if (e <= s) continue;
      // Whole-pixel edges: adjacent bins must not leave anti-aliased seams between them.
      const x0 = Math.round(cell.x + (s - cell.t0) * L.pps), x1 = Math.round(cell.x + (e - cell.t0) * L.pps);
      const [r, g, bl] = overlayColour(ov, row[b]);
      ctx.fillStyle = `rgba(${r},${g},${bl},${OVERLAY_ALPHA})`;
      ctx.fillRect(x0, cell.y, x1 - x0, cell.h);
    }
  }

  function clipTo(x, y, w, h) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(x, y, w, h);
    ctx.clip();
  }

  function drawTrace(cell, rec, L) {
    const sig = rec.signal[cell.leadIndex], fs = rec.sampling_rate;
    const i0 = Math.max(0, Math.floor(cell.t0 * fs)), i1 = Math.min(sig.length - 1, Math.ceil(cell.t1 * fs));
    if (i1 <= i0) return;
    const pxPerUnit = state.gain * PX_PER_MM;   // 1 unit (mV, or z-score drawn as mV) = gain mm
    clipTo(cell.x, cell.y, cell.w, cell.h);     // a tall QRS must not scribble over the next lead
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
    return isMillivolt(rec) ? 'signal in mV'
      : `signal in ${rec.units}: 1 ${rec.units} drawn as 1 mV`;
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
    L.cells.forEach((cell) => {
      const shown = visible.has(cell.lead);
      if (shown && ov.values) drawOverlay(cell, rec, ov, L);   // under the trace
      if (shown) drawTrace(cell, rec, L);
      drawLeadName(cell, shown);
    });
    drawFooter(L, rec, ov);
    return ov;
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
    const predicted = rec.probabilities[i] >= rec.thresholds[i];
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
      const predicted = p >= thr;
      body.append(el('tr', { 'data-testid': `label-row-${name}`, 'data-label': name, 'data-outcome': res.code }, [
        el('td', {}, [radio]),
        el('td', {}, [el('label', { for: id, title: description, text: name })]),
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
      (isMillivolt(rec) ? 'Signal in mV.'
        : `Signal in ${rec.units} (not mV): 1 ${rec.units} is drawn as 1 mV, so the amplitude scale applies to ${rec.units} units.`) +
      ' Calibration pulse: 1 mV x 0.2 s.' });
    const parts = [paper];
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

  function syncControls(rec, ov) {
    $('record-select').value = String(state.recordIndex);
    const overlaySelect = $('overlay-select');
    Array.from(overlaySelect.options).forEach((o) => {
      o.disabled = o.value !== 'none' && !rec.attributions[o.value];
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
    $('method-text').textContent = METHOD_TEXT[state.overlay];
    $('record-info').textContent = `ECG ${rec.ecg_id}: ${rec.sampling_rate} Hz, ${fmt(duration(rec), 1)} s, ` +
      `${rec.leads.length} leads, units ${rec.units}`;
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

  function attributionsCsv(rec) {
    // Long format, one row per method x lead x bin for the selected label; each row repeats
    // the label's prediction so the file stands alone in a spreadsheet.
    const i = rec.label_names.indexOf(state.label);
    const binSec = duration(rec) / rec.n_bins;
    const rows = [['ecg_id', 'label', 'probability', 'threshold', 'predicted', 'true', 'method', 'lead',
      'bin', 't_start_s', 't_end_s', 'attribution']];
    METHODS.forEach((m) => {
      const values = (rec.attributions[m] || {})[state.label];
      if (!values) return;
      rec.leads.forEach((lead, l) => values[l].forEach((v, b) => rows.push([
        rec.ecg_id, state.label, rec.probabilities[i], rec.thresholds[i],
        rec.probabilities[i] >= rec.thresholds[i] ? 1 : 0, rec.true === null ? '' : rec.true[i], m, lead, b,
        +(b * binSec).toFixed(4), +((b + 1) * binSec).toFixed(4), v])));
    });
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
      predicted: rec.probabilities.map((p, i) => (p >= rec.thresholds[i] ? 1 : 0)),
      n_bins: rec.n_bins, bin_seconds: duration(rec) / rec.n_bins, attributions: rec.attributions,
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
        el('td', { text: rec.probabilities[i] >= rec.thresholds[i] ? 'yes' : 'no' }),
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
      el('p', { text: METHOD_TEXT[state.overlay] }),
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
      binSeconds: duration(record()) / record().n_bins, nBins: record().n_bins, rows: layout.rows, cols: layout.cols,
      cells: layout.cells.map((c) => ({ lead: c.lead, leadIndex: c.leadIndex, row: c.row, col: c.col,
        x: s(c.x), y: s(c.y), w: s(c.w), h: s(c.h), baseline: s(c.baseline), labelH: s(c.labelH), t0: c.t0, t1: c.t1 })),
    };
  };

  function init() {
    buildRecordSelect();
    bindControls();
    bindCanvas();
    state.label = defaultLabel(RECORDS[0]);
    state.overlay = METHODS.find((m) => RECORDS[0].attributions[m]) || 'none';
    state.visibleLeads = RECORDS[0].leads.slice();
    selectRecord(0);
    document.documentElement.dataset.ready = 'true';   // tests wait for this
  }

  // ---- live app (ecgxai serve: ecgxai/app/static/app.js) ------------------------------------
  // The app adds records and attributions after the page has loaded, then asks for a redraw.
  window.ecgViewer = {
    records: RECORDS,
    state,
    showRecord(index) {      // after pushing to `records`: rebuild the record list, show record `index`
      $('record-select').textContent = '';
      buildRecordSelect();
      selectRecord(index);
    },
    refresh: update,         // after changing the shown record's attributions
  };

  init();
})();
