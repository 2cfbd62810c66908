// bench/ort_worker.js: the ONNX Runtime side of bench/engine (onnxruntime-node, its bundled CPU
// library, MLAS kernels). Same line protocol as bench/cx_bench_engine and the torchvision worker:
//   stdin "run"  -> stdout "ms <latency> dets <n>"; the first run's detections also go to OUT.json
//   stdin "quit" -> stdout "rss_kb <peak RSS> kernel ort-<version>"
// usage: node ort_worker.js ORT_DIR MODEL.onnx INPUT.f32 C H W THREADS OUT.json (INPUT: the network's
// C x H x W floats, written once by bench/engine, the same bytes the torchvision worker reads)
// ORT_DIR is the folder whose node_modules holds onnxruntime-node (bench/engine installs it there
// with `npm install --ignore-scripts`). One intra-op pool of THREADS threads, no inter-op pool,
// sequential execution, every graph optimisation on (the settings a deployment would choose).
// GPL-3.0-or-later.
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');

const [ortDir, modelPath, inputPath, c, h, w, threads, outJson] = process.argv.slice(2);
const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));
const version = JSON.parse(fs.readFileSync(
    path.join(ortDir, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')).version;

async function main() {
    const session = await ort.InferenceSession.create(modelPath, {
        intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
        graphOptimizationLevel: 'all',
    });
    const buf = fs.readFileSync(inputPath);
    const dims = [Number(c), Number(h), Number(w)];
    const data = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    if (data.length !== dims[0] * dims[1] * dims[2])
        throw new Error(`${inputPath}: ${data.length} floats, want ${dims.join(' x ')}`);
    const input = new ort.Tensor('float32', data, dims);
    const feeds = {[session.inputNames[0]]: input};
    let first = true;
    const rl = readline.createInterface({input: process.stdin});
    for await (const line of rl) {
        if (line.startsWith('run')) {
            const t0 = process.hrtime.bigint();
            const out = await session.run(feeds);
            const ms = Number(process.hrtime.bigint() - t0) / 1e6;
            const boxes = out[session.outputNames[0]], scores = out[session.outputNames[2]];
            if (first) {
                fs.writeFileSync(outJson, JSON.stringify({
                    boxes: Array.from(boxes.data), labels: Array.from(out[session.outputNames[1]].data, Number),
                    scores: Array.from(scores.data),
                }));
                first = false;
            }
            process.stdout.write(`ms ${ms.toFixed(2)} dets ${boxes.dims[0]}\n`);
        } else if (line.startsWith('quit')) {
            break;
        }
    }
    process.stdout.write(`rss_kb ${process.resourceUsage().maxRSS} kernel ort-${version}\n`);
    process.exit(0);
}
main().catch((e) => { process.stderr.write(`ort_worker: ${e.message}\n`); process.exit(1); });
