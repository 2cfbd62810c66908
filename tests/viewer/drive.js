#!/usr/bin/env node
// Drives OHIF in Debian's headless Chromium (puppeteer-core) the way a radiologist would: open
// the study, double-click the SEG, then the SR, and check from the page what is on screen.
// Called by tests/viewer.sh; exits 0 when every check passed, 1 when one failed, 2 on bad usage.
//
// Usage: node drive.js --base http://127.0.0.1:PORT --study UID --out DIR
//          --labels '["Right lung", ...]' [--chromium /usr/bin/chromium] [--timeout SECONDS]
//          [--require-lungs yes|no]   (no: a SEG without lung segments is noted, not failed)
// Writes DIR/01-image.png, 02-seg.png, 03-seg-hidden.png, 04-sr.png, console.log, result.json.
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
  for (const k of ['base', 'study', 'out', 'labels']) {
    if (!a[k]) throw new Error(`drive: --${k} is required`);
  }
  a.labels = JSON.parse(a.labels);
  if (!Array.isArray(a.labels) || a.labels.length === 0) {
    throw new Error('drive: --labels must be a non-empty JSON array of segment labels');
  }
  a.timeout = Number(a.timeout);
  return a;
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

// Polls fn (evaluated in the page) until it returns a truthy value or the deadline passes;
// returns the last value so a failure message can say what was seen instead.
async function waitInPage(page, what, fn, arg, timeoutMs) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await page.evaluate(fn, arg);
    } catch (e) {
      last = { error: e.message };
    }
    if (last && last.ok) return last;
    if (Date.now() > end) {
      throw new Error(`${what}: not reached within ${timeoutMs / 1000} s; last state ${JSON.stringify(last)}`);
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

// In the page: what the SR display set holds and what the viewport's SVG layer shows as text.
function srState() {
  const ds = window.services.displaySetService.getActiveDisplaySets().filter(d => d.Modality === 'SR');
  const measurements = [];
  for (const d of ds) {
    for (const m of d.measurements || []) {
      measurements.push({
        trackingId: m.TrackingIdentifier,
        trackingUid: m.TrackingUniqueIdentifier,
        graphicType: m.graphicType,
        points: m.coords && m.coords[0] && m.coords[0].GraphicData ? m.coords[0].GraphicData.length / 2 : null,
        labels: (m.labels || []).map(l => `${l.label}: ${l.value}`),
      });
    }
  }
  const pane = document.querySelector('[data-cy=viewport-pane]');
  const box = pane ? pane.getBoundingClientRect() : null;
  const texts = [...document.querySelectorAll('[data-cy=viewport-pane] svg text')]
    .filter(t => t.textContent.trim());
  const svgText = texts.map(t => t.textContent.trim());
  // Text OHIF placed inside the visible viewport (a label next to a finding at the image border
  // may be drawn outside it).
  const visibleText = texts.filter(t => {
    const r = t.getBoundingClientRect();
    const cx = r.left + r.width / 2;
    const cy = r.top + r.height / 2;
    return box && cx >= box.left && cx <= box.right && cy >= box.top && cy <= box.bottom;
  }).map(t => t.textContent.trim());
  const tracked = window.services.measurementService.getMeasurements().map(m => ({
    label: m.label, displayText: m.displayText,
  }));
  const areaOnScreen = svgText.filter(t => /area/i.test(t) && /mm(2|²)/.test(t));
  // OHIF draws a loaded SR's annotations on the next annotation render, which in a headless
  // run with no mouse movement may not come: ask for one (SVG only, the image is not redrawn).
  if (!areaOnScreen.length && ds.length && ds.every(d => d.isLoaded)) {
    const ee = window.cornerstone.getEnabledElements();
    if (ee.length) window.cornerstoneTools.utilities.triggerAnnotationRenderForViewportIds([ee[0].viewport.id]);
  }
  return {
    ok: ds.length > 0 && ds.every(d => d.isLoaded) && areaOnScreen.length > 0,
    srDisplaySets: ds.length,
    rehydratable: ds.map(d => d.isRehydratable),
    measurements, svgText, areaOnScreen, tracked,
    areaVisible: visibleText.filter(t => /area/i.test(t) && /mm(2|²)/.test(t)),
  };
}

async function doubleClickSeries(page, modality) {
  const handles = await page.$$('[data-cy=series-modality-label]');
  const matches = [];
  for (const h of handles) {
    if ((await h.evaluate(e => e.textContent.trim())) === modality) matches.push(h);
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

async function main() {
  const args = parseArgs(process.argv);
  fs.mkdirSync(args.out, { recursive: true });
  const consoleLog = fs.createWriteStream(path.join(args.out, 'console.log'));
  const result = { checks: [], timings: {} };
  const t0 = Date.now();
  const check = (name, ok, detail) => {
    result.checks.push({ name, ok: !!ok, detail });
    process.stdout.write(`${ok ? 'PASS' : 'FAIL'}: [${((Date.now() - t0) / 1000).toFixed(1)} s] ${name}${detail ? ' — ' + (typeof detail === 'string' ? detail : JSON.stringify(detail)) : ''}\n`);
  };
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
  const timeoutMs = args.timeout * 1000;
  const problems = []; // the page's own errors and warnings, to explain a failed step
  // Names what the page complained about: "SEG loaded: not reached" alone does not say why.
  const explain = () => {
    const seen = [...new Set(problems)].slice(-6);
    let why = seen.length ? `\n  the page reported:\n    ${seen.join('\n    ')}` : '';
    // A known pair of limits, spelled out because the page's words do not name the cause.
    const odd = problems.map(p => /calculated length (\d+) does not match the actual length (\d+)/.exec(p)).find(Boolean);
    if (odd && Number(odd[2]) === Number(odd[1]) + 1) {
      why += `\n  cause: the SEG's bit-packed Pixel Data is ${odd[1]} bytes, an odd count that DICOM pads to ` +
        `${odd[2]}. OHIF 3.13.2 (dcmjs readUncompressedBitFrame) refuses the pad byte when it fetches the ` +
        'whole instance, and its per-frame fallback fails because Orthanc 1.10.1 (DICOMweb 1.7) answers ' +
        '400 for 1-bit frames that do not end on a byte boundary. Such a SEG does not load in this viewer.';
    }
    problems.length = 0;
    return why;
  };
  try {
    const page = await browser.newPage();
    const pageErrors = [];
    page.on('console', m => {
      consoleLog.write(`console.${m.type()}: ${m.text()}\n`);
      if ((m.type() === 'error' || m.type() === 'warn') && !/swiftshader|willReadFrequently/i.test(m.text())) {
        problems.push(m.text().split('\n')[0].slice(0, 300));
      }
    });
    page.on('pageerror', e => { pageErrors.push(e.message); consoleLog.write(`pageerror: ${e.message}\n`); });
    page.on('requestfailed', r => consoleLog.write(`requestfailed: ${r.url()} ${r.failure() && r.failure().errorText}\n`));

    // 1. The study opens and the radiograph is painted.
    const url = `${args.base}/viewer?StudyInstanceUIDs=${encodeURIComponent(args.study)}`;
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
    const painted = await waitInPage(page, 'image painted', canvasStats, null, timeoutMs);
    result.timings.imagePainted = (Date.now() - t0) / 1000;
    await sleep(500);
    await page.screenshot({ path: path.join(args.out, '01-image.png') });
    check('radiograph painted in the viewport', painted.ok, `${(painted.litFraction * 100).toFixed(1)}% of the canvas lit`);

    // 2. The SEG loads: its segments are in OHIF's state and listed in the segmentation panel.
    //    A failure here is reported and the SR is still checked, on a freshly loaded page.
    let segFailed = false;
    try {
      // The panel is opened first: opening it later resizes the viewport, and a re-render of a
      // large radiograph with its labelmap costs tens of seconds in SwiftShader on a busy machine.
      if (!(await page.$('[data-cy=panelSegmentation-btn]'))) throw new Error('no segmentation panel button');
      await page.click('[data-cy=panelSegmentation-btn]');
      await doubleClickSeries(page, 'SEG');
      const segState = await waitInPage(page, 'SEG loaded', segmentationState, null, timeoutMs);
      result.timings.segLoaded = (Date.now() - t0) / 1000;
      result.segmentation = segState;
      const segmentation = segState.segmentations[0];
      const gotLabels = segmentation.segments.map(s => s.label);
      const missing = args.labels.filter(l => !gotLabels.includes(l));
      check('SEG segments loaded with the expected labels', missing.length === 0,
        missing.length ? `missing ${JSON.stringify(missing)}, OHIF has ${JSON.stringify(gotLabels)}` : gotLabels.join(', '));

      const listed = await waitInPage(page, 'segment labels listed in the panel', labels => {
        const rows = [...document.querySelectorAll('[data-cy=data-row-title]')].map(e => e.textContent.trim());
        return { ok: labels.every(l => rows.includes(l)), rows };
      }, args.labels, timeoutMs);
      check('segment labels listed in the segmentation panel', listed.ok, listed.rows.join(', '));
      await sleep(1500); // let the labelmap actor render before sampling
      await page.screenshot({ path: path.join(args.out, '02-seg.png') });

      // 3. The overlay is on screen over the lungs: canvas colours at labelmap sample points with
      //    the segments shown, then hidden, must differ inside the lungs and not outside.
      const lungIdx = segmentation.segments.filter(s => /lung/i.test(s.label)).map(s => s.index);
      const sampleArg = { segmentationId: segmentation.id, step: 8, maxPerClass: 4000 };
      const on = await page.evaluate(labelmapSamples, sampleArg);
      if (!on.ok) throw new Error(`labelmap sampling: ${on.why}`);
      const vpId = segState.viewportId;
      const allIdx = segmentation.segments.map(s => s.index);
      const setVisible = (visible) => page.evaluate((vp, id, idx, v) => {
        for (const i of idx) window.services.segmentationService.setSegmentVisibility(vp, id, i, v);
      }, vpId, segmentation.id, allIdx, visible);
      await setVisible(false);
      await sleep(1500);
      const off = await page.evaluate(labelmapSamples, sampleArg);
      await page.screenshot({ path: path.join(args.out, '03-seg-hidden.png') });
      await setVisible(true);
      const cmp = compareSamples(on, off, allIdx);
      result.overlay = { labelCounts: on.counts, compare: cmp, labelmapSize: [on.width, on.height], layers: on.layers, displayScale: on.scale, borderMargin: on.r };
      const total = Object.values(on.counts).reduce((a, b) => a + b, 0);
      // Every segment must be visible where the SEG puts it; the lungs are named in the message
      // because the model may find none (the untrained test model does not).
      if (args['require-lungs'] === 'yes' || lungIdx.length) {
        check('SEG has lung segments', lungIdx.length > 0,
          lungIdx.length ? `segments ${JSON.stringify(lungIdx)}` : 'none: the model found no lungs on this image');
      } else {
        process.stdout.write('NOTE: the SEG has no lung segment (untrained test model): checking every segment instead\n');
      }
      for (const s of segmentation.segments) {
        const c = cmp[s.index];
        const share = (on.counts[s.index] || 0) / total;
        // Interior samples must all but change; a mask too speckled to have an interior is judged
        // on all its samples, where display resampling at the borders blurs the count.
        check(`overlay drawn over segment ${s.index} "${s.label}"`,
          c.samples >= 5 && c.fraction >= (c.interior ? 0.9 : 0.7),
          `${c.changed}/${c.samples} ${c.interior ? 'interior ' : ''}sample pixels changed colour; segment covers ${(share * 100).toFixed(2)}% of the image`);
      }
      check('no overlay outside the segments', cmp.background.samples >= 50 && cmp.background.fraction <= 0.02,
        `${cmp.background.changed}/${cmp.background.samples} ${cmp.background.interior ? 'interior ' : ''}background sample pixels changed`);
    } catch (e) {
      segFailed = true;
      check('SEG shown in the viewer', false, e.message + explain());
    }

    // 4. The SR loads: its measurements are drawn with their area text.
    if (segFailed) {
      await page.goto(url, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
      await waitInPage(page, 'image painted again', canvasStats, null, timeoutMs);
    }
    await doubleClickSeries(page, 'SR');
    const sr = await waitInPage(page, 'SR measurements drawn with area text', srState, null, timeoutMs);
    result.timings.srLoaded = (Date.now() - t0) / 1000;
    result.sr = sr;
    check('SR measurements parsed by OHIF', sr.measurements.length > 0,
      sr.measurements.map(m => `${m.trackingId} [${m.labels.join('; ')}]`).join(' | '));
    check('SR area text drawn on the image', sr.areaOnScreen.length > 0,
      `${sr.areaOnScreen.length} area labels, ${sr.areaVisible.length} inside the visible viewport: ${sr.areaOnScreen.join(' | ')}`);
    const withArea = sr.measurements.filter(m => m.labels.some(l => /area/i.test(l) && /mm(2|²)/.test(l)));
    check('every SR finding with a contour carries its area', withArea.length > 0 &&
      sr.measurements.filter(m => m.graphicType).every(m => withArea.includes(m) ||
        sr.measurements.some(o => o.trackingUid === m.trackingUid && withArea.includes(o))),
    `${withArea.length} of ${sr.measurements.length} measurements have an area`);
    if (!(await page.evaluate(() => /Measurements/i.test(
      (document.querySelector('[data-cy=side-panel-header-right]') || {}).textContent || ''))) &&
        await page.$('[data-cy=trackedMeasurements-btn]')) {
      await page.click('[data-cy=trackedMeasurements-btn]');
    }
    await sleep(1000);
    await page.screenshot({ path: path.join(args.out, '04-sr.png') });

    check('no uncaught errors in the page', pageErrors.length === 0, pageErrors.slice(0, 3).join(' | '));
  } catch (e) {
    check('viewer session', false, e.message + explain());
  } finally {
    result.timings.total = (Date.now() - t0) / 1000;
    fs.writeFileSync(path.join(args.out, 'result.json'), JSON.stringify(result, null, 1));
    await browser.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
    consoleLog.end();
  }
  const failed = result.checks.filter(c => !c.ok).length;
  process.stdout.write(`viewer: ${result.checks.length - failed} passed, ${failed} failed (${result.timings.total.toFixed(1)} s)\n`);
  return failed ? 1 : 0;
}

main().then(code => process.exit(code), e => {
  process.stderr.write(`${e.message}\n`);
  process.exit(2);
});
