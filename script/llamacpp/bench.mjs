// bench.mjs: llama.cpp's speed on a GGUF file, measured like `junction bench`:
// pp = 128 tokens in one batch, tg = 64 tokens one at a time from an empty
// context, repeated; the first repetition also pages the weights in.
// usage: node bench.mjs MODEL THREADS [REPS]   (prints one JSON line)
import {getLlama} from "node-llama-cpp";

const [modelPath, threadsArg, repsArg = "3"] = process.argv.slice(2);
const threads = Number(threadsArg), reps = Number(repsArg);
const llama = await getLlama({gpu: false, build: "never"});
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: true});
const ctx = await model.createContext({contextSize: 256, batchSize: 128, threads, flashAttention: false});
const tokens = Array.from({length: 128}, (_, i) => (i * 7919 + 13) % model.tokens.vocabSize ?? 32000);
const pp = [], tg = [];
for (let r = 0; r <= reps; r++) {   // repetition 0 warms up and is dropped
  let seq = ctx.getSequence();
  let t0 = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(tokens);
  const ppRate = 128 / ((performance.now() - t0) / 1000);
  seq.dispose();
  seq = ctx.getSequence();
  t0 = performance.now();
  let n = 0;
  for await (const token of seq.evaluate([1], {temperature: 0})) {
    void token;
    if (++n >= 64) break;
  }
  const tgRate = 64 / ((performance.now() - t0) / 1000);
  seq.dispose();
  if (r > 0) { pp.push(ppRate); tg.push(tgRate); }
}
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
const sd = (a) => Math.sqrt(a.reduce((x, y) => x + (y - mean(a)) ** 2, 0) / Math.max(1, a.length - 1));
console.log(JSON.stringify({
  engine: "llama.cpp via node-llama-cpp", cpu: llama.systemInfo?.trim(), threads, reps,
  pp_tps: +mean(pp).toFixed(3), pp_tps_sd: +sd(pp).toFixed(3), tg_tps: +mean(tg).toFixed(3), tg_tps_sd: +sd(tg).toFixed(3),
}));
