#!/usr/bin/env node
// One origin for the viewer test: serves OHIF's prebuilt dist/ (with our app-config.js) and
// proxies /dicom-web/ and /wado to a private Orthanc, because Orthanc 1.10.1 sends no CORS
// headers. Listens on 127.0.0.1 only; prints "listening PORT" on stdout once ready.
//
// Usage: node serve.js --dist DIR --config FILE --orthanc http://127.0.0.1:PORT [--port N]
//        [--log FILE]   (--port 0, the default, takes a free port chosen by the kernel)
'use strict';

const http = require('http');
const fs = require('fs');
const path = require('path');

function parseArgs(argv) {
  const a = { port: 0 };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i];
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`serve: option ${k} needs a value`);
    if (k === '--dist') a.dist = v;
    else if (k === '--config') a.config = v;
    else if (k === '--orthanc') a.orthanc = v;
    else if (k === '--port') a.port = Number(v);
    else if (k === '--log') a.log = v;
    else throw new Error(`serve: unknown option ${k}`);
  }
  for (const k of ['dist', 'config', 'orthanc']) {
    if (!a[k]) throw new Error(`serve: --${k} is required`);
  }
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) {
    throw new Error(`serve: --port must be 0..65535, not ${a.port}`);
  }
  return a;
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm', // streaming WebAssembly compilation insists on this type
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.xml': 'application/xml',
};

// OHIF URL-encodes the commas of includefield (00081030%2C00080060); the DICOMweb plugin 1.7
// then takes the whole value as one unknown tag and drops every field, so the study list shows
// "No Description". Decode %2C in that parameter only; everything else passes unchanged.
function fixQuery(url) {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url.slice(q + 1).split('&').map(p => {
    const eq = p.indexOf('=');
    const key = eq < 0 ? p : p.slice(0, eq);
    if (key.toLowerCase() !== 'includefield' || eq < 0) return p;
    return key + '=' + p.slice(eq + 1).replace(/%2C/gi, ',');
  });
  return url.slice(0, q) + '?' + parts.join('&');
}

function main() {
  const args = parseArgs(process.argv);
  const dist = path.resolve(args.dist);
  const index = path.join(dist, 'index.html');
  if (!fs.existsSync(index)) throw new Error(`serve: ${index} does not exist`);
  const config = fs.readFileSync(args.config);
  const upstream = new URL(args.orthanc);
  const logStream = args.log ? fs.createWriteStream(args.log, { flags: 'a' }) : null;
  const log = line => { if (logStream) logStream.write(line + '\n'); };

  function proxy(req, res) {
    const target = fixQuery(req.url);
    const headers = { ...req.headers, host: upstream.host };
    delete headers['accept-encoding']; // keep bodies plain so the log's byte counts are real
    const up = http.request({
      hostname: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: target,
      headers,
    }, ures => {
      log(`${req.method} ${req.url} -> ${target} ${ures.statusCode}`);
      res.writeHead(ures.statusCode, ures.headers);
      ures.pipe(res);
    });
    up.on('error', err => {
      log(`${req.method} ${req.url} -> proxy error ${err.message}`);
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`serve: Orthanc at ${upstream.host} did not answer: ${err.message}\n`);
    });
    req.pipe(up);
  }

  function sendFile(res, file, method) {
    fs.stat(file, (err, st) => {
      if (err || !st.isFile()) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
        return;
      }
      const type = TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream';
      res.writeHead(200, { 'content-type': type, 'content-length': st.size, 'cache-control': 'no-cache' });
      if (method === 'HEAD') { res.end(); return; }
      fs.createReadStream(file).pipe(res);
    });
  }

  const server = http.createServer((req, res) => {
    let pathname;
    try {
      pathname = decodeURIComponent(req.url.split('?')[0]);
    } catch (e) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`bad URL encoding in ${req.url}\n`);
      return;
    }
    if (pathname.startsWith('/dicom-web/') || pathname === '/dicom-web' || pathname.startsWith('/wado')) {
      proxy(req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain' });
      res.end('method not allowed\n');
      return;
    }
    log(`${req.method} ${req.url}`);
    if (pathname === '/app-config.js') {
      res.writeHead(200, { 'content-type': TYPES['.js'], 'cache-control': 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : config);
      return;
    }
    // Never serve outside dist/ (a path with .. segments is refused, not normalised away).
    const file = path.join(dist, pathname);
    if (file !== dist && !file.startsWith(dist + path.sep)) {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end('forbidden\n');
      return;
    }
    // OHIF is a single-page app: a route such as /viewer has no file and gets index.html;
    // a missing asset (a name with an extension) stays a 404 so broken builds are visible.
    if (path.extname(pathname) === '') {
      fs.stat(file, (err, st) => sendFile(res, err || !st.isFile() ? index : file, req.method));
      return;
    }
    sendFile(res, file, req.method);
  });
  server.on('error', err => {
    process.stderr.write(`serve: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(args.port, '127.0.0.1', () => {
    process.stdout.write(`listening ${server.address().port}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

try {
  main();
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(2);
}
