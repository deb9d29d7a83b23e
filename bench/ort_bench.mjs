#!/usr/bin/env node
// ONNX Runtime's time for one inference, for `make bench`: creates a session with N
// intra-op threads (the same number Systole uses), runs a few warm-up inferences, then
// times R more (session.run alone) and prints the median and the fastest.
//
//   node bench/ort_bench.mjs MODEL.onnx THREADS [RUNS]
//
// The input is f32 of the model's first input's shape with values in [-1, 1).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ort = createRequire(join(root, 'package.json'))('onnxruntime-node');

const [model, threadsArg, runsArg = '20'] = process.argv.slice(2);
if (!model || !threadsArg) {
  console.error('usage: node bench/ort_bench.mjs MODEL.onnx THREADS [RUNS]');
  process.exit(2);
}
const threads = Number(threadsArg), runs = Number(runsArg);
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
});
const name = session.inputNames[0];
const shape = [1, 3, 224, 224];
const data = new Float32Array(shape.reduce((a, b) => a * b));
let s = 1n;
for (let i = 0; i < data.length; i++) { // a fixed pseudo-random fill
  s = (s * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
  data[i] = Number(s >> 40n) / 8388608 - 1;
}
const feeds = { [name]: new ort.Tensor('float32', data, shape) };
for (let i = 0; i < 5; i++) await session.run(feeds);
const times = [];
for (let i = 0; i < runs; i++) {
  const t0 = process.hrtime.bigint();
  await session.run(feeds);
  times.push(Number(process.hrtime.bigint() - t0) / 1e9);
}
times.sort((a, b) => a - b);
console.log(`ort_version ${ort.env.versions?.common ?? 'unknown'}`);
console.log(`threads ${threads}`);
console.log(`median_seconds ${times[times.length >> 1].toFixed(6)}`);
console.log(`min_seconds ${times[0].toFixed(6)}`);
