// sdk.mjs: one scenario of the official OpenAI Node SDK against junction.
// usage: JUNCTION_URL=http://127.0.0.1:PORT node sdk.mjs SCENARIO
// Prints what it got and exits non-zero on any mismatch.
import OpenAI from "openai";
import assert from "node:assert/strict";

const client = new OpenAI({ baseURL: `${process.env.JUNCTION_URL}/v1`, apiKey: "unused-by-junction", maxRetries: 0 });
const messages = (text) => [
  { role: "system", content: "Be brief." },
  { role: "user", content: text },
];

const scenarios = {
  async chat() {
    const r = await client.chat.completions.create({ model: "frontier", messages: messages("sdk whole"), max_tokens: 20 });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0].message.content, "Hello from the fake openai! You said: sdk whole");
    assert.equal(r.choices[0].finish_reason, "stop");
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  },
  async stream() {
    const s = await client.chat.completions.create({
      model: "frontier", messages: messages("sdk stream"), stream: true, stream_options: { include_usage: true },
    });
    let text = "", usage = null, finish = null;
    for await (const chunk of s) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta?.content ?? "";
        finish = c.finish_reason ?? finish;
      }
    }
    assert.equal(text, "Hello from the fake openai! You said: sdk stream");
    assert.equal(finish, "stop");
    assert.equal(usage.completion_tokens, 9);
  },
  async anthropic_stream() {
    const s = await client.chat.completions.create({ model: "claude", messages: messages("sdk claude"), stream: true });
    let text = "";
    for await (const chunk of s) text += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(text, "Hello from the fake anthropic! You said: sdk claude");
  },
  async errors() {
    await assert.rejects(
      client.chat.completions.create({ model: "no-such-model", messages: messages("x") }),
      (e) => e instanceof OpenAI.NotFoundError && e.code === "model_not_found");
    await assert.rejects(
      client.chat.completions.create({ model: "frontier", messages: messages("x"), temperature: 5 }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === "temperature");
    await assert.rejects(
      client.chat.completions.create({ model: "frontier", messages: messages("fails #fault:500") }),
      (e) => e.status === 502 && e.code === "upstream_error");
  },
  async models() {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id);
    assert.deepEqual(ids, ["stories260K", "frontier", "claude"]);
  },
  // The local engine (stories260K, a real tiny model): greedy text is known.
  async local_chat() {
    const r = await client.chat.completions.create({
      model: "local", messages: [{ role: "user", content: "Once upon a time" }], temperature: 0, max_tokens: 10,
    });
    assert.equal(r.choices[0].message.content, ", there was a little girl named Lily");
    assert.equal(r.choices[0].finish_reason, "length");
    assert.deepEqual([r.usage.prompt_tokens, r.usage.completion_tokens], [5, 10]);
  },
  async local_stream() {
    const s = await client.chat.completions.create({
      model: "stories260K", messages: [{ role: "user", content: "Once upon a time" }], temperature: 0,
      max_tokens: 64, stop: ["park"], stream: true, stream_options: { include_usage: true },
    });
    let text = "", finish = null, usage = null;
    for await (const chunk of s) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta?.content ?? "";
        finish = c.finish_reason ?? finish;
      }
    }
    assert.equal(text, ", there was a little girl named Lily. She loved to play outside in the ");
    assert.equal(finish, "stop");
    assert.equal(usage.prompt_tokens, 5);
  },
};

const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`unknown scenario '${name}'; one of ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
try {
  await scenarios[name]();
  console.log(`ok ${name}`);
} catch (e) {
  console.error(`FAILED ${name}: ${e.stack ?? e}`);
  process.exit(1);
}
