#!/usr/bin/env node
// Runs an ONNX model with ONNX Runtime (CPU) on inputs read from .npy files and writes
// every output as a .npy file: the reference oracle of Systole's tests. Test-only: needs
// onnxruntime-node from the repository's package.json (npm ci --ignore-scripts).
//
//   node tools/ort_run.mjs MODEL.onnx [--input NAME=FILE.npy]... --output-dir DIR
//                          [--opt disabled|basic] [--optimized-model FILE] [--threads N]
//
// --input NAME=FILE   the value of input NAME (split at the first '='). Every input the
//                     model has must be given, and only those.
// --output-dir DIR    created if missing; output NAME is written to DIR/NAME.npy with each
//                     character outside [A-Za-z0-9_.-] replaced by '_' (Systole's `run`
//                     uses the same rule). Two outputs that map to one file are an error.
// --opt LEVEL         graph optimisation: 'disabled' (default: the graph runs as written)
//                     or 'basic' (constant folding and redundant-node removal only).
// --optimized-model F also save the graph ONNX Runtime ran (with --opt basic: a
//                     constant-folded copy that uses standard ops only).
// --threads N         intra-op threads (default 1, so results do not depend on the machine).
//
// .npy files: format versions 1.0, 2.0 and 3.0, C order, little-endian (or one-byte)
// float32 <f4, float64 <f8, float16 <f2, int64 <i8, int32 <i4, int16 <i2, int8 |i1,
// uint64 <u8, uint32 <u4, uint16 <u2, uint8 |u1, bool |b1. Anything else is refused.
// Prints one line per output (name, type, shape, file). Exits 0 on success, 1 on any
// error and 2 on a usage error, with a message on stderr that starts with "ort_run: ".

import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

class Fail extends Error {
  constructor(msg, code = 1) { super(msg); this.code = code; }
}

const USAGE = 'usage: node tools/ort_run.mjs MODEL.onnx [--input NAME=FILE.npy]... ' +
  '--output-dir DIR [--opt disabled|basic] [--optimized-model FILE] [--threads N]';

// numpy descr (without byte order) <-> ONNX Runtime tensor type and typed array.
const DTYPES = [
  { descr: 'f4', ort: 'float32', Array: Float32Array },
  { descr: 'f8', ort: 'float64', Array: Float64Array },
  { descr: 'f2', ort: 'float16', Array: Uint16Array },
  { descr: 'i8', ort: 'int64', Array: BigInt64Array },
  { descr: 'i4', ort: 'int32', Array: Int32Array },
  { descr: 'i2', ort: 'int16', Array: Int16Array },
  { descr: 'i1', ort: 'int8', Array: Int8Array },
  { descr: 'u8', ort: 'uint64', Array: BigUint64Array },
  { descr: 'u4', ort: 'uint32', Array: Uint32Array },
  { descr: 'u2', ort: 'uint16', Array: Uint16Array },
  { descr: 'u1', ort: 'uint8', Array: Uint8Array },
  { descr: 'b1', ort: 'bool', Array: Uint8Array },
];
const SUPPORTED = DTYPES.map((d) => d.ort).join(', ');

// ---------------------------------------------------------------- .npy reader / writer

function readNpy(path) {
  let buf;
  try { buf = readFileSync(path); } catch (e) { throw new Fail(`${path}: cannot read: ${e.message}`); }
  const bad = (why) => new Fail(`${path}: not a .npy file this tool reads: ${why}`);
  if (buf.length < 10 || buf.readUInt8(0) !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') {
    throw bad('no \\x93NUMPY magic');
  }
  const major = buf.readUInt8(6);
  let hlen, hstart;
  if (major === 1) { hlen = buf.readUInt16LE(8); hstart = 10; }
  else if (major === 2 || major === 3) {
    if (buf.length < 12) throw bad('truncated header');
    hlen = buf.readUInt32LE(8); hstart = 12;
  } else throw bad(`format version ${major}.${buf.readUInt8(7)} (1.0, 2.0 and 3.0 are read)`);
  if (hstart + hlen > buf.length) throw bad('truncated header');
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', hstart, hstart + hlen);

  const descrM = header.match(/['"]descr['"]\s*:\s*['"]([^'"]*)['"]/);
  if (!descrM) throw bad(`no simple 'descr' in header ${header.trim()} (structured dtypes are not read)`);
  const fortranM = header.match(/['"]fortran_order['"]\s*:\s*(True|False)/);
  if (!fortranM) throw bad(`no 'fortran_order' in header ${header.trim()}`);
  const shapeM = header.match(/['"]shape['"]\s*:\s*\(([^)]*)\)/);
  if (!shapeM) throw bad(`no 'shape' in header ${header.trim()}`);
  const shape = shapeM[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => {
    if (!/^\d+L?$/.test(s)) throw bad(`bad shape (${shapeM[1]})`);
    return Number.parseInt(s, 10);
  });

  const descr = descrM[1];
  const dt = DTYPES.find((d) => d.descr === descr.slice(1));
  if (!dt || !'<>|='.includes(descr[0])) throw bad(`dtype '${descr}' (read: ${SUPPORTED})`);
  if (descr[0] === '>' && dt.Array.BYTES_PER_ELEMENT > 1) throw bad(`big-endian dtype '${descr}'`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (fortranM[1] === 'True' && shape.filter((d) => d > 1).length > 1) {
    throw bad('Fortran order (save with np.ascontiguousarray)');
  }
  const start = hstart + hlen;
  const nbytes = count * dt.Array.BYTES_PER_ELEMENT;
  if (buf.length - start !== nbytes) {
    throw bad(`${buf.length - start} data bytes, shape (${shape.join(', ')}) of ${descr} needs ${nbytes}`);
  }
  const ab = buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + start + nbytes);
  return { type: dt.ort, shape, data: new dt.Array(ab) };
}

function writeNpy(path, type, shape, data) {
  const dt = DTYPES.find((d) => d.ort === type);
  if (!dt) throw new Fail(`${path}: tensor type ${type} cannot be written (written: ${SUPPORTED})`);
  const order = dt.Array.BYTES_PER_ELEMENT === 1 ? '|' : '<';
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${order}${dt.descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  // numpy pads the header with spaces and a final newline so the data starts 64-byte aligned.
  let pre = 10;
  let major = 1;
  if (dict.length + 1 + 64 > 0xffff) { pre = 12; major = 2; }
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict + ' '.repeat(total - pre - dict.length - 1) + '\n';
  const head = Buffer.alloc(pre);
  head.writeUInt8(0x93, 0);
  head.write('NUMPY', 1, 'latin1');
  head.writeUInt8(major, 6);
  head.writeUInt8(0, 7);
  if (major === 1) head.writeUInt16LE(dict.length, 8); else head.writeUInt32LE(dict.length, 8);
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new Fail(`${path}: ${data.length} values for shape [${shape}]`);
  const body = Buffer.from(data.buffer, data.byteOffset, count * dt.Array.BYTES_PER_ELEMENT);
  try {
    writeFileSync(path, Buffer.concat([head, Buffer.from(dict, 'latin1'), body]));
  } catch (e) { throw new Fail(`${path}: cannot write: ${e.message}`); }
}

// mkdir -p. Not mkdirSync's own recursive mode: node 20 spins forever on a path under /proc.
function makeDirs(dir) {
  try {
    if (statSync(dir).isDirectory()) return;
    throw new Fail(`${dir}: exists and is not a directory`);
  } catch (e) {
    if (e instanceof Fail) throw e;
    if (e.code !== 'ENOENT') throw new Fail(`${dir}: ${e.message}`);
  }
  const parent = dirname(dir);
  if (parent !== dir) makeDirs(parent);
  try { mkdirSync(dir); } catch (e) {
    if (e.code !== 'EEXIST') throw new Fail(`${dir}: cannot create: ${e.message}`);
  }
}

function fileName(name) {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}

// ---------------------------------------------------------------- command line

function parseArgs(argv) {
  const a = { model: null, inputs: [], outDir: null, opt: 'disabled', optimized: null, threads: 1 };
  const value = (i, flag) => {
    if (i + 1 >= argv.length) throw new Fail(`${flag} needs a value\n${USAGE}`, 2);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') { console.log(USAGE); process.exit(0); }
    if (arg === '--input') {
      const v = value(i++, arg);
      const eq = v.indexOf('=');
      if (eq <= 0 || eq === v.length - 1) throw new Fail(`--input wants NAME=FILE.npy, got '${v}'`, 2);
      a.inputs.push({ name: v.slice(0, eq), file: v.slice(eq + 1) });
    } else if (arg === '--output-dir') a.outDir = value(i++, arg);
    else if (arg === '--opt') {
      a.opt = value(i++, arg);
      if (a.opt !== 'disabled' && a.opt !== 'basic') throw new Fail(`--opt must be disabled or basic, got '${a.opt}'`, 2);
    } else if (arg === '--optimized-model') a.optimized = value(i++, arg);
    else if (arg === '--threads') {
      const v = value(i++, arg);
      if (!/^[1-9]\d*$/.test(v)) throw new Fail(`--threads wants a positive integer, got '${v}'`, 2);
      a.threads = Number(v);
    } else if (arg.startsWith('-')) throw new Fail(`unknown option ${arg}\n${USAGE}`, 2);
    else if (a.model === null) a.model = arg;
    else throw new Fail(`one model only (got '${a.model}' and '${arg}')\n${USAGE}`, 2);
  }
  if (a.model === null) throw new Fail(`no model given\n${USAGE}`, 2);
  if (a.outDir === null) throw new Fail(`--output-dir is required\n${USAGE}`, 2);
  return a;
}

function describe(meta) {
  if (!meta.isTensor) return `${meta.name} (not a tensor)`;
  const dim = (d) => (typeof d === 'number' && d >= 0 ? String(d) : typeof d === 'string' && d ? d : '?');
  return `${meta.name} ${meta.type}[${meta.shape.map(dim).join(',')}]`;
}

async function loadOrt() {
  try {
    const m = await import('onnxruntime-node');
    return m.InferenceSession ? m : m.default;
  } catch (e) {
    throw new Fail(`cannot load onnxruntime-node (install it at the repository root with ` +
      `'npm ci --ignore-scripts'): ${e.message.split('\n')[0]}`);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ort = await loadOrt();
  const options = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: args.opt,
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    logSeverityLevel: 3,
  };
  if (args.optimized) options.optimizedModelFilePath = args.optimized;
  let session;
  try {
    if (!statSync(args.model).isFile()) throw new Error('not a file');
    session = await ort.InferenceSession.create(args.model, options);
  } catch (e) {
    throw new Fail(`${args.model}: ${e.code === 'ENOENT' ? 'no such file' : `cannot load: ${e.message}`}`);
  }
  const inMeta = session.inputMetadata ?? session.inputNames.map((name) => ({ name, isTensor: false }));
  const modelInputs = inMeta.map(describe).join(', ') || '(none)';

  const feeds = {};
  for (const { name, file } of args.inputs) {
    const meta = inMeta.find((m) => m.name === name);
    if (!meta) throw new Fail(`the model has no input '${name}'; its inputs: ${modelInputs}`);
    if (name in feeds) throw new Fail(`input '${name}' given twice`);
    const t = readNpy(file);
    if (meta.isTensor && meta.type !== t.type) {
      throw new Fail(`input ${name}: ${file} holds ${t.type}, the model wants ${describe(meta)}`);
    }
    if (meta.isTensor && meta.shape.length) {
      const ok = meta.shape.length === t.shape.length &&
        meta.shape.every((d, i) => typeof d !== 'number' || d < 0 || d === t.shape[i]);
      if (!ok) throw new Fail(`input ${name}: ${file} has shape [${t.shape}], the model wants ${describe(meta)}`);
    }
    feeds[name] = new ort.Tensor(t.type, t.data, t.shape);
  }
  const missing = inMeta.filter((m) => !(m.name in feeds)).map((m) => m.name);
  if (missing.length) {
    throw new Fail(`missing input${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; ` +
      `the model's inputs: ${modelInputs} (give each as --input NAME=FILE.npy)`);
  }

  let results;
  try { results = await session.run(feeds); } catch (e) { throw new Fail(`${args.model}: run failed: ${e.message}`); }

  const files = new Map();
  for (const name of session.outputNames) {
    const f = fileName(name) + '.npy';
    if (files.has(f)) throw new Fail(`outputs '${files.get(f)}' and '${name}' would both be written to ${f}`);
    files.set(f, name);
  }
  makeDirs(args.outDir);
  for (const [f, name] of files) {
    const t = results[name];
    if (!t || typeof t.type !== 'string' || !t.dims) throw new Fail(`output ${name} is not a tensor`);
    if (!DTYPES.some((d) => d.ort === t.type)) {
      throw new Fail(`output ${name} has type ${t.type}, which cannot be written (written: ${SUPPORTED})`);
    }
    const path = join(args.outDir, f);
    writeNpy(path, t.type, Array.from(t.dims), t.data);
    console.log(`${name}: ${t.type}[${Array.from(t.dims).join(',')}] -> ${path}`);
  }
  await session.release?.();
}

main().catch((e) => {
  process.stderr.write(`ort_run: ${e instanceof Fail ? e.message : e.stack || e}\n`);
  process.exit(e instanceof Fail ? e.code : 1);
});
