#!/usr/bin/env node
// Drives OHIF in Debian's headless Chromium (puppeteer-core) the way a radiologist would: for
// each case (one study: a radiograph, cxrseg's SEG and SR), open the study, double-click the
// SEG, then the SR, and check from the page what is on screen. Called by tests/viewer.sh; exits
// 0 when every check of every case passed, 1 when one failed, 2 on bad usage.
//
// Usage: node drive.js --base http://127.0.0.1:PORT --cases FILE.json --out DIR
//          [--serve-log FILE] [--chromium /usr/bin/chromium] [--timeout SECONDS]
// FILE.json: [{ "name": "rg1", "study": UID, "segSeries": UID, "size": "1841x1955",
//               "labels": ["Right lung", ...], "requireLungs": "yes"|"no",
//               "segStats": [[pixels, cx, cy, x0, y0, x1, y1], ...] }, ...]
//   labels: the SEG's segment labels; requireLungs no: a SEG without lung segments is noted;
//   segStats (optional): per segment, as an independent reader (pydicom) decodes the SEG file:
//   pixel count, centroid and bounding box, which OHIF's labelmap must match.
// --serve-log: serve.js's request log, where the SEG's requests (also those of web workers, which
//   the page does not see) are counted with their HTTP status.
// Writes DIR/<name>/01-image.png, 02-seg.png, 03-seg-hidden.png, 04-sr.png, console.log per
// case, DIR/result.json and DIR/summary.txt (one line per case).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

function parseArgs(argv) {
  const a = { chromium: '/usr/bin/chromium', timeout: 90, 'require-lungs': 'yes' };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    if (argv[i + 1] === undefined) throw new Error(`drive: option --${k} needs a value`);
    a[k] = argv[i + 1];
  }
  for (const k of ['base', 'cases', 'out']) {
    if (!a[k]) throw new Error(`drive: --${k} is required`);
  }
  a.cases = JSON.parse(fs.readFileSync(a.cases, 'utf8'));
  if (!Array.isArray(a.cases) || a.cases.length === 0) throw new Error('drive: --cases must hold a non-empty JSON array');
  for (const c of a.cases) {
    if (!c.name || !c.study || !Array.isArray(c.labels) || !c.labels.length) {
      throw new Error(`drive: case ${JSON.stringify(c).slice(0, 80)} needs name, study and a non-empty labels array`);
    }
  }
  a.timeout = Number(a.timeout);
  return a;
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

// Polls fn (evaluated in the page) until it returns a truthy value or the deadline passes;
// returns the last value so a failure message can say what was seen instead.
// abort (optional, evaluated here, not in the page) names a reason to stop waiting early, e.g.
// a failed frame request: the wait then ends 10 s after it first said so.
async function waitInPage(page, what, fn, arg, timeoutMs, abort) {
  let end = Date.now() + timeoutMs;
  let last;
  let why = null;
  for (;;) {
    try {
      last = await page.evaluate(fn, arg);
    } catch (e) {
      last = { error: e.message };
    }
    if (last && last.ok) return last;
    if (abort && !why && (why = abort())) end = Math.min(end, Date.now() + 10000);
    if (Date.now() > end) {
      throw new Error(`${what}: not reached within ${timeoutMs / 1000} s${why ? ` (gave up early: ${why})` : ''}; ` +
        `last state ${JSON.stringify(last).slice(0, 600)}`);
    }
    await sleep(250);
  }
}

// In the page: statistics of the active viewport's canvas, sampled on a coarse grid.
function canvasStats() {
  const cs = window.cornerstone;
  if (!cs || !cs.getEnabledElements) return { ok: false, why: 'cornerstone not loaded' };
  const ee = cs.getEnabledElements();
  if (!ee.length) return { ok: false, why: 'no enabled viewport' };
  const vp = ee[0].viewport;
  const c = vp.canvas;
  const ctx = c.getContext('2d');
  if (!ctx || !c.width || !c.height) return { ok: false, why: 'viewport canvas has no 2D context' };
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let lit = 0;
  let n = 0;
  for (let y = 0; y < c.height; y += 7) {
    for (let x = 0; x < c.width; x += 7) {
      const i = 4 * (y * c.width + x);
      n++;
      if (d[i] + d[i + 1] + d[i + 2] > 60) lit++;
    }
  }
  const imageId = vp.getCurrentImageId ? vp.getCurrentImageId() : null;
  return { ok: lit / n > 0.05, litFraction: +(lit / n).toFixed(3), imageId, canvas: [c.width, c.height] };
}

// In the page: the loaded segmentations as OHIF's segmentation service holds them.
function segmentationState() {
  const s = window.services && window.services.segmentationService;
  if (!s) return { ok: false, why: 'no segmentation service' };
  const segs = s.getSegmentations().map(x => ({
    id: x.segmentationId,
    label: x.label,
    segments: Object.entries(x.segments || {})
      .filter(([, g]) => g)
      .map(([k, g]) => ({ index: Number(k), label: g.label, color: g.color })),
  }));
  const ee = window.cornerstone.getEnabledElements();
  const vpId = ee.length ? ee[0].viewport.id : null;
  const reps = vpId ? s.getSegmentationRepresentations(vpId) : [];
  return { ok: segs.length > 0 && reps.length > 0, segmentations: segs, representations: reps.length, viewportId: vpId };
}

// In the page: the canvas RGB at sample points of the labelmap. Samples every step-th image
// pixel and keeps at most maxPerClass points per class (each segment number, and "0" for pixels
// in no segment), with their canvas positions, so that two renders can be compared point by
// point. Overlapping segments (a finding inside a lung) sit in separate label layers; a pixel
// counts for every segment that covers it in any layer.
function labelmapSamples(arg) {
  const { segmentationId, step, maxPerClass } = arg;
  const cs = window.cornerstone;
  const ct = window.cornerstoneTools;
  const vp = cs.getEnabledElements()[0].viewport;
  const seg = ct.segmentation.state.getSegmentation(segmentationId);
  if (!seg) return { ok: false, why: `segmentation ${segmentationId} not in cornerstone state` };
  const lm = seg.representationData && seg.representationData.Labelmap;
  if (!lm) return { ok: false, why: 'segmentation has no labelmap representation' };
  const sourceId = vp.getCurrentImageId();
  const all = (lm.imageIds || []).map(id => cs.cache.getImage(id)).filter(Boolean);
  let layers = all.filter(im => im.referencedImageId === sourceId);
  if (!layers.length && all.length && all.every(im => !im.referencedImageId)) layers = all;
  if (!layers.length) return { ok: false, why: `no label image for ${sourceId}`, labelImages: all.length };
  const W = layers[0].columns || layers[0].width;
  const H = layers[0].rows || layers[0].height;
  const data = layers.map(im => im.getPixelData());
  const c = vp.canvas;
  const sx = c.width / c.clientWidth;
  const sy = c.height / c.clientHeight;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  // A displayed pixel covers about 1/scale image pixels: a sample counts as inside a class only
  // when every image pixel within r of it is in that class too, so that the comparison is not
  // decided by how the display resampled a border or a hole in a speckled mask.
  const w0 = vp.worldToCanvas(cs.utilities.imageToWorldCoords(sourceId, [0, 0]));
  const w1 = vp.worldToCanvas(cs.utilities.imageToWorldCoords(sourceId, [100, 0]));
  const scale = Math.hypot(w1[0] - w0[0], w1[1] - w0[1]) * sx / 100;
  const r = Math.ceil(0.5 / Math.max(scale, 1e-3)) + 1;
  const classesAt = (x, y) => {
    const out = [];
    for (const L of data) {
      const v = L[y * W + x];
      if (v && !out.includes(v)) out.push(v);
    }
    return out;
  };
  const perClass = {};
  const interior = {};
  const counts = {};
  for (let y = Math.floor(step / 2); y < H; y += step) {
    for (let x = Math.floor(step / 2); x < W; x += step) {
      const classes = classesAt(x, y);
      if (!classes.length) classes.push(0);
      let rgb = null;
      for (const v of classes) {
        counts[v] = (counts[v] || 0) + 1;
        const list = perClass[v] || (perClass[v] = []);
        if (list.length >= maxPerClass) continue;
        if (!rgb) {
          const world = cs.utilities.imageToWorldCoords(sourceId, [x + 0.5, y + 0.5]);
          const cp = vp.worldToCanvas(world);
          const px = Math.round(cp[0] * sx);
          const py = Math.round(cp[1] * sy);
          if (px < 0 || py < 0 || px >= c.width || py >= c.height) break;
          const i = 4 * (py * c.width + px);
          rgb = [d[i], d[i + 1], d[i + 2]];
        }
        let inside = x >= r && y >= r && x + r < W && y + r < H;
        for (let dy = -r; inside && dy <= r; dy++) {
          for (let dx = -r; inside && dx <= r; dx++) {
            const cl = classesAt(x + dx, y + dy);
            inside = v === 0 ? cl.length === 0 : cl.includes(v);
          }
        }
        list.push([x, y, ...rgb, inside ? 1 : 0]);
      }
    }
  }
  return { ok: true, width: W, height: H, layers: layers.length, scale, r, counts, perClass };
}

// In the page: per segment of OHIF's decoded labelmap, its pixel count, centroid and bounding
// box ([count, cx, cy, x0, y0, x1, y1], pixel indices), over every label layer.
function labelmapGeometry(segmentationId) {
  const cs = window.cornerstone;
  const ct = window.cornerstoneTools;
  const vp = cs.getEnabledElements()[0].viewport;
  const seg = ct.segmentation.state.getSegmentation(segmentationId);
  const lm = seg && seg.representationData && seg.representationData.Labelmap;
  if (!lm) return { ok: false, why: 'no labelmap' };
  const sourceId = vp.getCurrentImageId();
  const all = (lm.imageIds || []).map(id => cs.cache.getImage(id)).filter(Boolean);
  let layers = all.filter(im => im.referencedImageId === sourceId);
  if (!layers.length && all.length && all.every(im => !im.referencedImageId)) layers = all;
  if (!layers.length) return { ok: false, why: 'no label image' };
  const W = layers[0].columns || layers[0].width;
  const st = {};
  for (const im of layers) {
    const d = im.getPixelData();
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (!v) continue;
      const x = i % W, y = (i - x) / W;
      const g = st[v] || (st[v] = [0, 0, 0, x, y, x, y]);
      g[0]++; g[1] += x; g[2] += y;
      if (x < g[3]) g[3] = x;
      if (y < g[4]) g[4] = y;
      if (x > g[5]) g[5] = x;
      if (y > g[6]) g[6] = y;
    }
  }
  for (const g of Object.values(st)) { g[1] /= g[0]; g[2] /= g[0]; }
  return { ok: true, segments: st };
}

// Waits until the viewport canvas stops changing (two samples 400 ms apart alike), at most
// limitMs: a large labelmap in SwiftShader can take seconds to repaint after a visibility change.
async function canvasSettled(page, limitMs) {
  const sample = () => page.evaluate(() => {
    const ee = window.cornerstone.getEnabledElements();
    const c = ee[0].viewport.canvas;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let h = 0;
    for (let i = 0; i < d.length; i += 4 * 97) h = (h * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) >>> 0;
    return h;
  });
  const end = Date.now() + limitMs;
  let last = await sample();
  for (;;) {
    await sleep(400);
    const now = await sample();
    if (now === last || Date.now() > end) return now === last;
    last = now;
  }
}

async function doubleClickSeries(page, modality) {
  // The study browser lists series as their metadata arrives (QIDO-RS): on a loaded machine a
  // series can appear seconds after the first ones, so look again for up to 30 s.
  let matches = [];
  const end = Date.now() + 30000;
  for (;;) {
    const handles = await page.$$('[data-cy=series-modality-label]');
    matches = [];
    for (const h of handles) {
      if ((await h.evaluate(e => e.textContent.trim())) === modality) matches.push(h);
    }
    if (matches.length >= 1 || Date.now() > end) break;
    await sleep(500);
  }
  if (matches.length !== 1) {
    throw new Error(`study browser: expected one ${modality} series, found ${matches.length}`);
  }
  await matches[0].click({ count: 2 });
}

function compareSamples(on, off, segIndexes) {
  // A sample "changed" when the overlay moved its colour by more than 12 of 765 RGB levels.
  const changed = (a, b) => Math.abs(a[2] - b[2]) + Math.abs(a[3] - b[3]) + Math.abs(a[4] - b[4]) > 12;
  const frac = cls => {
    const A = on.perClass[cls] || [];
    const B = off.perClass[cls] || [];
    const n = Math.min(A.length, B.length);
    let k = 0;
    let ni = 0;
    let ki = 0;
    const unchanged = [];
    for (let i = 0; i < n; i++) {
      const c = changed(A[i], B[i]);
      if (c) k++;
      if (A[i][5]) { ni++; if (c) ki++; }
      if (!c && unchanged.length < 8) unchanged.push({ at: [A[i][0], A[i][1]], on: A[i].slice(2, 5), off: B[i].slice(2, 5) });
    }
    // Judge on interior samples when a segment has enough of them (a speckled mask may not).
    const useInterior = ni >= 5;
    return {
      samples: useInterior ? ni : n, changed: useInterior ? ki : k, interior: useInterior,
      fraction: (useInterior ? ni : n) ? +((useInterior ? ki / ni : k / n)).toFixed(3) : 0,
      all: { samples: n, changed: k },
      unchanged, // a few samples that did not change, with their image position, for diagnosis
    };
  };
  const out = { background: frac('0') };
  for (const s of segIndexes) out[s] = frac(String(s));
  return out;
}

// In the page: OHIF's measurement service (what the Measurements panel lists) and the panel's
// own rows as drawn (title and detail text of every data row in the right-hand side panel).
function measurementPanelState() {
  const flat = t => {
    if (!t) return '';
    if (typeof t === 'string') return t;
    if (Array.isArray(t)) return t.map(flat).join(' ');
    return Object.values(t).map(flat).join(' ');
  };
  const ms = window.services.measurementService.getMeasurements().map(m => ({
    label: m.label || '', text: flat(m.displayText), toolName: m.toolName,
    points: m.points ? m.points.length : 0, isLocked: !!m.isLocked,
  }));
  const rows = [...document.querySelectorAll('[data-cy=data-row-title]')].map(t => {
    let row = t;
    for (let i = 0; i < 4 && row.parentElement && !/measurement-table-row|data-row/.test(row.getAttribute('data-cy') || ''); i++) {
      row = row.parentElement;
    }
    return { title: t.textContent.trim(), text: (row.innerText || '').replace(/\s+/g, ' ').trim() };
  });
  const header = (document.querySelector('[data-cy=side-panel-header-right]') || {}).textContent || '';
  return { ok: ms.length > 0, measurements: ms, rows, header };
}

const AREA_TEXT = /\d[\d.,]*\s*(mm(2|²)|px(2|²)|cm(2|²))/;

async function runCase(browser, args, c, caseOut) {
  fs.mkdirSync(caseOut, { recursive: true });
  const consoleLog = fs.createWriteStream(path.join(caseOut, 'console.log'));
  const result = { name: c.name, size: c.size, segments: c.labels.length, checks: [], timings: {} };
  const t0 = Date.now();
  const check = (name, ok, detail) => {
    result.checks.push({ name, ok: !!ok, detail });
    process.stdout.write(`${ok ? 'PASS' : 'FAIL'}: [${c.name} ${((Date.now() - t0) / 1000).toFixed(1)} s] ${name}` +
      `${detail ? ' — ' + (typeof detail === 'string' ? detail : JSON.stringify(detail)) : ''}\n`);
  };
  const timeoutMs = args.timeout * 1000;
  const problems = []; // the page's own errors and warnings, to explain a failed step
  const explain = () => {
    const seen = [...new Set(problems)].slice(-6);
    const why = seen.length ? `\n  the page reported:\n    ${seen.join('\n    ')}` : '';
    problems.length = 0;
    return why;
  };
  // The SEG's requests: the whole instance, then (when dcmjs gives up on it) one per frame. Read
  // from serve.js's log, since OHIF makes some of them from web workers.
  const logStart = args['serve-log'] && fs.existsSync(args['serve-log']) ? fs.statSync(args['serve-log']).size : 0;
  const segRequestsNow = () => {
    const out = { instance: [], frames: [] };
    if (!args['serve-log'] || !c.segSeries || !fs.existsSync(args['serve-log'])) return out;
    const fd = fs.openSync(args['serve-log'], 'r');
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - logStart));
    fs.readSync(fd, buf, 0, buf.length, logStart);
    fs.closeSync(fd);
    for (const line of buf.toString('utf8').split('\n')) {
      const m = /^GET (\S+) -> \S+ (\d+)$/.exec(line);
      if (!m || !m[1].includes(`/series/${c.segSeries}/instances/`)) continue;
      const entry = { url: m[1], status: Number(m[2]) };
      if (/\/frames\/\d+/.test(m[1])) out.frames.push(entry);
      else if (!/\/metadata/.test(m[1])) out.instance.push(entry);
    }
    return out;
  };
  let segRequests = { instance: [], frames: [] };
  const pageErrors = [];
  const page = await browser.newPage();
  // measurementPanelState, callable from the other in-page functions.
  await page.evaluateOnNewDocument(`window.__cxPanel = ${measurementPanelState.toString()};`);
  try {
    page.on('console', m => {
      consoleLog.write(`console.${m.type()}: ${m.text()}\n`);
      if ((m.type() === 'error' || m.type() === 'warn') && !/swiftshader|willReadFrequently/i.test(m.text())) {
        problems.push(m.text().split('\n')[0].slice(0, 300));
      }
    });
    page.on('pageerror', e => { pageErrors.push(e.message); consoleLog.write(`pageerror: ${e.message}\n`); });
    page.on('requestfailed', r => consoleLog.write(`requestfailed: ${r.url()} ${r.failure() && r.failure().errorText}\n`));
    // Stop waiting for the SEG soon after OHIF says it gave up, or a frame request failed.
    const segFailure = () => {
      const bad = segRequestsNow().frames.filter(f => f.status >= 400);
      if (bad.length) return `${bad.length} SEG frame request(s) answered ${bad[0].status}`;
      const gaveUp = problems.find(p => /failed to load; skipping representation|Error loading displaySet/i.test(p));
      return gaveUp ? `the page said: ${gaveUp.slice(0, 160)}` : null;
    };

    // 1. The study opens and the radiograph is painted.
    const url = `${args.base}/viewer?StudyInstanceUIDs=${encodeURIComponent(c.study)}`;
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
    const painted = await waitInPage(page, 'image painted', canvasStats, null, timeoutMs);
    result.timings.imagePainted = (Date.now() - t0) / 1000;
    await sleep(500);
    await page.screenshot({ path: path.join(caseOut, '01-image.png') });
    check('radiograph painted in the viewport', painted.ok, `${(painted.litFraction * 100).toFixed(1)}% of the canvas lit`);

    // 2. The SEG loads: its segments are in OHIF's state and listed in the segmentation panel.
    //    A failure here is reported and the SR is still checked, on a freshly loaded page.
    let segFailed = false;
    result.segLoaded = false;
    try {
      // The panel is opened first: opening it later resizes the viewport, and a re-render of a
      // large radiograph with its labelmap costs tens of seconds in SwiftShader on a busy machine.
      if (!(await page.$('[data-cy=panelSegmentation-btn]'))) throw new Error('no segmentation panel button');
      await page.click('[data-cy=panelSegmentation-btn]');
      await doubleClickSeries(page, 'SEG');
      const segState = await waitInPage(page, 'SEG loaded', segmentationState, null, timeoutMs, segFailure);
      result.timings.segLoaded = (Date.now() - t0) / 1000;
      result.segmentation = segState;
      result.segLoaded = true;
      const segmentation = segState.segmentations[0];
      const gotLabels = segmentation.segments.map(s => s.label);
      const missing = c.labels.filter(l => !gotLabels.includes(l));
      check('SEG segments loaded with the expected labels', missing.length === 0,
        missing.length ? `missing ${JSON.stringify(missing)}, OHIF has ${JSON.stringify(gotLabels)}` : gotLabels.join(', '));
      // Whole instance or frame by frame, every request OHIF made for the SEG must have worked.
      await sleep(500); // the log line is written when the answer starts
      segRequests = segRequestsNow();
      const badFrames = segRequests.frames.filter(f => f.status >= 400);
      result.segTransport = {
        instance: segRequests.instance.map(r => r.status), frames: segRequests.frames.length, failedFrames: badFrames.length,
      };
      check('SEG pixel data fetched without failed requests (whole instance, or the per-frame fallback)',
        badFrames.length === 0 && segRequests.instance.every(r => r.status < 400),
        `instance ${JSON.stringify(result.segTransport.instance)}; ${segRequests.frames.length} frame requests, ${badFrames.length} failed`);

      const listed = await waitInPage(page, 'segment labels listed in the panel', labels => {
        const rows = [...document.querySelectorAll('[data-cy=data-row-title]')].map(e => e.textContent.trim());
        return { ok: labels.every(l => rows.includes(l)), rows };
      }, c.labels, timeoutMs);
      check('segment labels listed in the segmentation panel', listed.ok, listed.rows.join(', '));
      await sleep(1000); // let the labelmap actor render before sampling
      await canvasSettled(page, 20000);
      await page.screenshot({ path: path.join(caseOut, '02-seg.png') });

      // 3. The overlay is on screen where the SEG says: canvas colours at labelmap sample points
      //    with the segments shown, then hidden, must differ inside every segment and not outside.
      const lungIdx = segmentation.segments.filter(s => /lung/i.test(s.label)).map(s => s.index);
      const sampleArg = { segmentationId: segmentation.id, step: Math.max(2, Math.round(Math.max(...c.size.split('x').map(Number)) / 240)), maxPerClass: 4000 };
      const on = await page.evaluate(labelmapSamples, sampleArg);
      if (!on.ok) throw new Error(`labelmap sampling: ${on.why}`);
      const vpId = segState.viewportId;
      const allIdx = segmentation.segments.map(s => s.index);
      const setVisible = (visible) => page.evaluate((vp, id, idx, v) => {
        for (const i of idx) window.services.segmentationService.setSegmentVisibility(vp, id, i, v);
      }, vpId, segmentation.id, allIdx, visible);
      await setVisible(false);
      await sleep(1000);
      await canvasSettled(page, 20000);
      const off = await page.evaluate(labelmapSamples, sampleArg);
      await page.screenshot({ path: path.join(caseOut, '03-seg-hidden.png') });
      await setVisible(true);
      const cmp = compareSamples(on, off, allIdx);
      result.overlay = { labelCounts: on.counts, compare: cmp, labelmapSize: [on.width, on.height], layers: on.layers, displayScale: on.scale, borderMargin: on.r };
      check('labelmap has the source image size', `${on.width}x${on.height}` === c.size, `${on.width}x${on.height}`);
      const total = Object.values(on.counts).reduce((a, b) => a + b, 0);
      if (c.requireLungs === 'yes' || lungIdx.length) {
        check('SEG has lung segments', lungIdx.length > 0,
          lungIdx.length ? `segments ${JSON.stringify(lungIdx)}` : 'none: the model found no lungs on this image');
      } else {
        process.stdout.write(`NOTE: [${c.name}] the SEG has no lung segment (untrained test model): checking every segment instead\n`);
      }
      let overlayOk = true;
      for (const s of segmentation.segments) {
        const cs = cmp[s.index];
        const share = (on.counts[s.index] || 0) / total;
        // Interior samples must all but change; a mask too speckled to have an interior is judged
        // on all its samples, where display resampling at the borders blurs the count.
        const ok = cs.samples >= 5 && cs.fraction >= (cs.interior ? 0.9 : 0.7);
        overlayOk = overlayOk && ok;
        check(`overlay drawn over segment ${s.index} "${s.label}"`, ok,
          `${cs.changed}/${cs.samples} ${cs.interior ? 'interior ' : ''}sample pixels changed colour; segment covers ${(share * 100).toFixed(2)}% of the image`);
      }
      // What OHIF decoded must be what the SEG file holds, as pydicom reads it: a labelmap that
      // is drawn where OHIF put it but shifted from the mask would pass the checks above.
      if (Array.isArray(c.segStats)) {
        const geo = await page.evaluate(labelmapGeometry, segmentation.id);
        result.labelmapGeometry = geo.segments;
        for (const sgm of segmentation.segments) {
          const want = c.segStats[sgm.index - 1];
          const got = geo.ok ? geo.segments[sgm.index] : null;
          const same = want && got && got[0] === want[0] && Math.abs(got[1] - want[1]) < 0.01 &&
            Math.abs(got[2] - want[2]) < 0.01 && got.slice(3).every((v, k) => v === want[3 + k]);
          overlayOk = overlayOk && !!same;
          check(`labelmap of segment ${sgm.index} is the SEG file's mask`, same,
            `OHIF ${got ? `${got[0]} px, centre ${got[1].toFixed(2)},${got[2].toFixed(2)}, box ${got.slice(3).join(',')}` : 'none'}; ` +
            `file ${want ? `${want[0]} px, centre ${want[1].toFixed(2)},${want[2].toFixed(2)}, box ${want.slice(3).join(',')}` : 'none'}`);
        }
      }
      const bgOk = cmp.background.samples >= 50 && cmp.background.fraction <= 0.02;
      result.overlayOk = overlayOk && bgOk;
      check('no overlay outside the segments', bgOk,
        `${cmp.background.changed}/${cmp.background.samples} ${cmp.background.interior ? 'interior ' : ''}background sample pixels changed`);
    } catch (e) {
      segFailed = true;
      segRequests = segRequestsNow();
      result.segTransport = result.segTransport || {
        instance: segRequests.instance.map(r => r.status), frames: segRequests.frames.length,
        failedFrames: segRequests.frames.filter(f => f.status >= 400).length,
      };
      check('SEG shown in the viewer', false, e.message + explain());
    }

    // 4. The SR: OHIF hydrates it into editable measurements, and the Measurements panel lists
    //    every segment's contour with its label and area.
    if (segFailed) {
      await page.goto(url, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
      await waitInPage(page, 'image painted again', canvasStats, null, timeoutMs);
    }
    result.measurementsListed = false;
    try {
      await doubleClickSeries(page, 'SR');
      const sr = await waitInPage(page, 'SR loaded', () => {
        const ds = window.services.displaySetService.getActiveDisplaySets().filter(d => d.Modality === 'SR');
        return { ok: ds.length > 0 && ds.every(d => d.isLoaded), rehydratable: ds.map(d => d.isRehydratable), hydrated: ds.map(d => d.isHydrated) };
      }, null, timeoutMs);
      result.timings.srLoaded = (Date.now() - t0) / 1000;
      check('SR loaded and rehydratable (OHIF can turn it into editable measurements)', sr.rehydratable.every(Boolean),
        JSON.stringify(sr));
      const panel = await waitInPage(page, 'measurements in the measurement service', measurementPanelState, null,
        sr.rehydratable.every(Boolean) ? timeoutMs : 15000);
      if (!(await page.evaluate(() => /Measurements/i.test(
        (document.querySelector('[data-cy=side-panel-header-right]') || {}).textContent || ''))) &&
          await page.$('[data-cy=trackedMeasurements-btn]')) {
        await page.click('[data-cy=trackedMeasurements-btn]');
      }
      // Every SEG segment has a contour: each must be listed, as an editable freehand contour,
      // its label starting with the segment's and its row showing an area.
      const listedState = await waitInPage(page, 'every segment listed with its area in the Measurements panel', labels => {
        const st = window.__cxPanel();
        const rowsFor = l => st.rows.filter(r => r.title.startsWith(l));
        const missing = labels.filter(l => !rowsFor(l).some(r => /\d[\d.,]*\s*(mm(2|²)|px(2|²)|cm(2|²))/.test(r.text)));
        return { ok: missing.length === 0, missing, ...st };
      }, c.labels, timeoutMs).catch(e => ({ ok: false, error: e.message, ...panel }));
      result.sr = listedState;
      const ms = listedState.measurements || [];
      const freehand = ms.filter(m => m.toolName === 'PlanarFreehandROI' && m.points > 2);
      check('SR contours are editable freehand measurements', freehand.length > 0 && freehand.length === ms.length && ms.every(m => !m.isLocked),
        `${freehand.length} of ${ms.length} measurements are unlocked PlanarFreehandROI contours`);
      const missingService = c.labels.filter(l => !ms.some(m => m.label.startsWith(l) && AREA_TEXT.test(m.text)));
      check('every segment is a measurement with its label and area', missingService.length === 0,
        missingService.length ? `missing ${JSON.stringify(missingService)}; have ${JSON.stringify(ms.map(m => `${m.label} [${m.text}]`))}`
          : ms.map(m => `${m.label} [${m.text}]`).join(' | '));
      check('the Measurements panel lists every segment with its area', listedState.ok,
        listedState.ok ? `${(listedState.rows || []).length} rows` : `missing ${JSON.stringify(listedState.missing)}; rows ${JSON.stringify(listedState.rows)}${listedState.error ? '; ' + listedState.error : ''}`);
      result.measurementsListed = listedState.ok && missingService.length === 0;
      await sleep(1000);
    } catch (e) {
      check('SR shown in the viewer', false, e.message + explain());
    }
    await page.screenshot({ path: path.join(caseOut, '04-sr.png') });
    check('no uncaught errors in the page', pageErrors.length === 0, pageErrors.slice(0, 3).join(' | '));
  } catch (e) {
    check('viewer session', false, e.message + explain());
  } finally {
    result.timings.total = (Date.now() - t0) / 1000;
    result.pageErrors = pageErrors;
    await page.close().catch(() => {});
    consoleLog.end();
  }
  return result;
}

async function main() {
  const args = parseArgs(process.argv);
  fs.mkdirSync(args.out, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cxrseg-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: args.chromium,
    headless: true,
    userDataDir: profile,
    defaultViewport: { width: 1400, height: 900 },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // WebGL through SwiftShader: Chromium >= 137 needs the opt-in, and OHIF's SEG overlay
      // needs WebGL (its CPU fallback fails on labelmaps with "actors.filter is not a function").
      '--enable-unsafe-swiftshader', '--use-angle=swiftshader',
      '--window-size=1400,900',
    ],
  });
  const results = [];
  const t0 = Date.now();
  try {
    for (const c of args.cases) {
      results.push(await runCase(browser, args, c, path.join(args.out, c.name)));
    }
  } finally {
    await browser.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  const failed = results.reduce((n, r) => n + r.checks.filter(k => !k.ok).length, 0);
  const total = results.reduce((n, r) => n + r.checks.length, 0);
  fs.writeFileSync(path.join(args.out, 'result.json'), JSON.stringify(results, null, 1));
  const yn = v => (v ? 'yes' : 'no');
  const lines = ['case                 size        segments  SEG loaded  frames (failed)  overlay  measurements listed  page errors'];
  for (const r of results) {
    const t = r.segTransport || {};
    lines.push(`${r.name.padEnd(20)} ${String(r.size).padEnd(11)} ${String(r.segments).padStart(8)}  ${yn(r.segLoaded).padEnd(10)}  ` +
      `${`${t.frames || 0} (${t.failedFrames || 0})`.padEnd(15)}  ${(r.segLoaded ? yn(r.overlayOk) : '-').padEnd(7)}  ` +
      `${yn(r.measurementsListed).padEnd(19)}  ${(r.pageErrors || []).length}`);
  }
  fs.writeFileSync(path.join(args.out, 'summary.txt'), lines.join('\n') + '\n');
  process.stdout.write(lines.join('\n') + '\n');
  process.stdout.write(`viewer: ${total - failed} passed, ${failed} failed over ${results.length} cases (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  return failed ? 1 : 0;
}

main().then(code => process.exit(code), e => {
  process.stderr.write(`${e.message}\n`);
  process.exit(2);
});
