// greedy.mjs: llama.cpp's greedy continuation of token ids, as a test vector.
// usage: node greedy.mjs MODEL N ID,ID,...   (prints one JSON object)
// tests/vectors/ holds its output for files whose ../shared/vectors path was
// made by an older llama.cpp on another machine (see tests/vectors/README.md).
import {getLlama} from "node-llama-cpp";
import {readFileSync} from "node:fs";

const [modelPath, nArg, idsArg] = process.argv.slice(2);
const n = Number(nArg), prompt = idsArg.split(",").map(Number);
const llama = await getLlama({gpu: false, build: "never"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createContext({contextSize: 256, batchSize: 128, threads: 1, flashAttention: false});
const seq = ctx.getSequence();
const greedy = [];
for await (const token of seq.evaluate(prompt, {temperature: 0})) {
  greedy.push(token);
  if (greedy.length >= n) break;
}
const pkg = JSON.parse(readFileSync(new URL("./node_modules/node-llama-cpp/package.json", import.meta.url)));
console.log(JSON.stringify({
  engine: `llama.cpp from node-llama-cpp ${pkg.version} (prebuilt CPU backend, F16 KV cache, no flash attention)`,
  cpu: llama.systemInfo?.trim(), model: modelPath.split("/").pop(), prompt_ids: prompt, greedy_ids: greedy,
}));
