// ort_anchor.js — time an ONNX model on ONNX Runtime's CPU provider (the npm package
// onnxruntime-node), for bench/interp_bench.lua. Usage:
//   node bench/ort_anchor.js MODULE_DIR MODEL.onnx INPUT_NAME d0xd1x... RUNS [THREADS]
// (THREADS: intra-op threads, default 2; the bench passes mlsh's own thread count)
// Prints "best_ms=<float> cpu_ms=<float>" (best wall time of the runs and the least process CPU
// time, all threads, of a run) or "skip=<reason>" (exit 0 either way when the package is absent).
const [moduleDir, model, input, dims, runs, threads] = process.argv.slice(2);
let ort;
try { ort = require(moduleDir); } catch (e) { console.log("skip=onnxruntime-node not installed"); process.exit(0); }
(async () => {
  const shape = dims.split("x").map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i) * 0.5;
  const session = await ort.InferenceSession.create(model, { executionProviders: ["cpu"], intraOpNumThreads: Number(threads) || 2 });
  const feeds = { [input]: new ort.Tensor("float32", data, shape) };
  await session.run(feeds);
  let best = Infinity, cpu = Infinity;
  for (let r = 0; r < Number(runs); r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);
    cpu = Math.min(cpu, (c.user + c.system) / 1e3);
  }
  console.log("best_ms=" + best.toFixed(2) + " cpu_ms=" + cpu.toFixed(2));
})().catch((e) => { console.log("skip=" + String(e.message || e).split("\n")[0]); });
