/* The live app (ecgxai serve): asks the server for predictions and explanations and hands them
 * to the viewer (ptbxl_xai/report/viewer/viewer.js, window.ecgViewer), which draws everything.
 *
 * Flow per record: POST api/predict (probabilities, thresholds, attention, the conditioned signal)
 * -> shown at once; then POST api/explain for the chosen label -> SHAP and LIME added to the record; on
 * request, POST api/counterfactual -> what would make that label normal, drawn on the median beat.
 * The server keeps no upload, so the browser keeps the File objects and sends them again for each
 * label it explains. window.liveApp exposes the state for tests.
 */
(function () {
  'use strict';

  const CONFIG = JSON.parse(document.getElementById('app-config').textContent);
  const viewer = window.ecgViewer;
  const $ = (id) => document.getElementById(id);
  const sources = [];        // per viewer record: {kind: 'test', ecgId} or {kind: 'upload', files, name}
  const explained = [];      // per viewer record: {label: server answer of api/explain}
  const pending = new Map(); // 'record/label' -> Promise of an explanation in flight
  let userOverlay = false;   // once the user picks an overlay, arriving explanations do not change it
  let timer = null;

  const live = { sources, explained, busy: 0, errors: [], lastPredict: null };
  window.liveApp = live;

  // ---- status line ---------------------------------------------------------------------------
  function setStatus(text, isError, where) {
    // live-status: the record and its predictions; explain-status: the explanation under way or done.
    const el = $(where || 'live-status');
    el.textContent = text;
    el.classList.toggle('error', Boolean(isError));
    if (isError) live.errors.push(text);
  }

  const setExplainStatus = (text, isError) => setStatus(text, isError, 'explain-status');

  function setNotes(notes) {
    $('live-notes').replaceChildren(...(notes || []).map((n) => {
      const li = document.createElement('li');
      li.textContent = n;
      return li;
    }));
  }

  function startProgress(text) {
    const bar = $('explain-progress'), t0 = performance.now();
    bar.hidden = false;
    bar.removeAttribute('value');   // indeterminate: the server does not stream its progress
    clearInterval(timer);
    const tick = () => setExplainStatus(`${text} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    tick();
    timer = setInterval(tick, 100);
  }

  function stopProgress() {
    clearInterval(timer);
    timer = null;
    $('explain-progress').hidden = pending.size === 0;
  }

  // ---- server calls ----------------------------------------------------------------------------
  function formFor(source) {
    const form = new FormData();
    if (source.kind === 'test') form.append('ecg_id', String(source.ecgId));
    else Object.entries(source.files).forEach(([field, file]) => form.append(field, file, file.name));
    return form;
  }

  const MAX_RETRIES = 40; // a 503 with Retry-After (warming up, queue full): ~3 min of retries at 5 s

  async function post(path, form, where) {
    live.busy += 1;
    try {
      for (let attempt = 0; ; attempt += 1) {
        const res = await fetch(path, { method: 'POST', body: form });
        let body;
        try { body = await res.json(); } catch (e) { body = { error: `HTTP ${res.status} ${res.statusText}` }; }
        const wait = Number(res.headers.get('Retry-After'));
        if (res.status === 503 && wait > 0 && attempt < MAX_RETRIES) {
          setStatus(`${body.error || 'busy'}: retrying in ${wait} s`, false, where);
          live.retries = (live.retries || 0) + 1;
          await new Promise((resolve) => setTimeout(resolve, wait * 1000));
          continue;
        }
        if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
        return body;
      }
    } finally {
      live.busy -= 1;
    }
  }

  // ---- records -------------------------------------------------------------------------------
  function nameRecords() {
    // The viewer names records "ECG <id>"; an upload has no PTB-XL id, so use its file name.
    Array.from($('record-select').options).forEach((opt, i) => {
      const s = sources[i];
      if (s) opt.textContent = s.kind === 'test' ? `Test ECG ${s.ecgId}` : `Your ECG: ${s.name}`;
    });
  }

  function predictedText(res) {
    const yes = res.labels.filter((l) => l.predicted).map((l) => `${l.name} (${l.probability.toFixed(2)})`);
    return yes.length ? `predicted ${yes.join(', ')}` : 'no label above its threshold';
  }

  async function show(source) {
    setStatus(source.kind === 'test' ? `Predicting test record ${source.ecgId}...` : `Predicting ${source.name}...`);
    const form = formFor(source);
    form.append('include_signal', 'true');
    let res;
    try {
      res = await post('api/predict', form);
    } catch (err) {
      setStatus(`${source.name || 'Test record ' + source.ecgId}: ${err.message}`, true);
      return;
    }
    live.lastPredict = res;
    viewer.records.push(res.record);
    sources.push(source);
    explained.push({});
    viewer.showRecord(viewer.records.length - 1);
    nameRecords();
    setNotes(res.notes);
    setStatus(`${res.source}: ${predictedText(res)} (run ${res.run}, ${res.labels.length} labels, ` +
      `${res.label_set}); attention shown, SHAP and LIME follow.`);
    explainShown();
  }

  function explainShown() {
    const index = viewer.state.recordIndex, label = viewer.state.label;
    const rec = viewer.records[index], source = sources[index];
    if (!source || !label || explained[index][label]) return Promise.resolve();
    const key = `${index}/${label}`;
    if (pending.has(key)) return pending.get(key);
    const form = formFor(source);
    form.append('label', label);
    startProgress(`Explaining ${label} with SHAP (${CONFIG.npermutations} permutation(s)) and LIME ` +
      `(${CONFIG.lime_samples} samples) over ${CONFIG.feature_space}...`);
    const job = post('api/explain', form, 'explain-status').then((res) => {
      explained[index][label] = res;
      rec.attributions.shap = Object.assign(rec.attributions.shap || {}, { [label]: res.shap.values });
      rec.attributions.lime = Object.assign(rec.attributions.lime || {}, { [label]: res.lime.values });
      const stillShown = viewer.state.recordIndex === index && viewer.state.label === label;
      if (stillShown && !userOverlay) setOverlay('shap');
      viewer.refresh();
      if (stillShown) {
        setExplainStatus(`SHAP and LIME for ${label} in ${res.seconds.toFixed(2)} s on the server ` +
          `(${res.feature_space}; SHAP additivity error ${res.shap.additivity_error.toExponential(1)}, ` +
          `LIME R\u00b2 ${res.lime.score.toFixed(2)}).`);
      }
    }).catch((err) => {
      setExplainStatus(`Explaining ${label}: ${err.message}`, true);
    }).finally(() => {
      pending.delete(key);
      stopProgress();
    });
    pending.set(key, job);
    return job;
  }

  function counterfactualShown() {
    const index = viewer.state.recordIndex, label = viewer.state.label;
    const rec = viewer.records[index], source = sources[index];
    if (!source || !label) return Promise.resolve();
    const form = formFor(source);
    form.append('label', label);
    setStatus(`Searching what would make ${label} normal...`, false, 'cf-status');
    return post('api/counterfactual', form, 'cf-status').then((res) => {
      rec.counterfactuals = Object.assign(rec.counterfactuals || {}, { [label]: res });
      viewer.refresh();
      let text;
      if (!res.available) text = res.reason;
      else if (!res.predicted) text = res.segments.sentence;
      else text = `${res.segments.sentence} (${res.seconds.toFixed(2)} s on the server; see the median beat).`;
      setStatus(text, false, 'cf-status');
    }).catch((err) => {
      setStatus(`Counterfactual of ${label}: ${err.message}`, true, 'cf-status');
    });
  }

  function setOverlay(method) {
    const select = $('overlay-select');
    select.value = method;
    select.dispatchEvent(new Event('change'));   // the viewer's own handler; not a user choice
  }

  // ---- uploads -------------------------------------------------------------------------------
  function uploadSource(fileList) {
    const files = Array.from(fileList);
    const ext = (f) => f.name.toLowerCase().split('.').pop();
    const zips = files.filter((f) => ext(f) === 'zip');
    if (zips.length) {
      if (files.length > 1) throw new Error('send one .zip, or a .hea with its .dat, not both');
      return { kind: 'upload', files: { zip: zips[0] }, name: zips[0].name };
    }
    const out = {};
    files.forEach((f) => { if (ext(f) === 'hea' || ext(f) === 'dat') out[ext(f)] = f; });
    // Missing parts are the server's to refuse: its message says what is wrong.
    const name = (out.hea || out.dat || files[0] || { name: 'upload' }).name;
    return { kind: 'upload', files: out, name };
  }

  function handleFiles(fileList) {
    if (!fileList || !fileList.length) return;
    let source;
    try {
      source = uploadSource(fileList);
    } catch (err) {
      setStatus(err.message, true);
      return;
    }
    show(source);
  }

  // ---- wiring --------------------------------------------------------------------------------
  function init() {
    const select = $('test-select');
    CONFIG.test_ids.forEach((id) => {
      const opt = document.createElement('option');
      opt.value = String(id);
      opt.textContent = `ECG ${id}`;
      select.append(opt);
    });
    $('test-show').addEventListener('click', () => show({ kind: 'test', ecgId: Number(select.value) }));
    $('file-input').addEventListener('change', (e) => { handleFiles(e.target.files); e.target.value = ''; });
    const zone = $('drop-zone');
    ['dragenter', 'dragover'].forEach((t) => zone.addEventListener(t, (e) => {
      e.preventDefault();
      zone.classList.add('dragging');
    }));
    ['dragleave', 'drop'].forEach((t) => zone.addEventListener(t, () => zone.classList.remove('dragging')));
    zone.addEventListener('drop', (e) => { e.preventDefault(); handleFiles(e.dataTransfer.files); });
    // A drop beside the zone must not make the browser navigate away to the file.
    window.addEventListener('dragover', (e) => e.preventDefault());
    window.addEventListener('drop', (e) => e.preventDefault());

    $('overlay-select').addEventListener('change', (e) => { if (e.isTrusted) userOverlay = true; });
    $('cf-button').addEventListener('click', () => counterfactualShown());
    // The viewer changes record and label on these controls; explain what is then shown.
    $('label-table').addEventListener('change', () => { setStatus('', false, 'cf-status'); explainShown(); });
    $('record-select').addEventListener('change', () => {
      setNotes([]);
      explainShown();
    });

    // The page opens on the run's first test record, predicted by the server at start-up.
    sources.push({ kind: 'test', ecgId: viewer.records[0].ecg_id });
    explained.push({});
    select.value = String(viewer.records[0].ecg_id);
    nameRecords();
    setStatus(`Test record ${viewer.records[0].ecg_id}: attention shown; SHAP and LIME follow.`);
    explainShown();
  }

  init();
})();
