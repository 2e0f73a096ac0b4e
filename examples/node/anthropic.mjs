// The official Anthropic TypeScript SDK talking to llm-proxy's Messages API:
// a plain call, a stream, a tool round trip (plain and streamed) and
// count_tokens, each printed on one line for examples/node's Go test.
//
//   LLM_PROXY_BASE_URL=http://localhost:8080 LLM_PROXY_KEY=sk-proxy-123 \
//   LLM_PROXY_MODEL=claude node anthropic.mjs
//
// The base URL is the gateway's root, without /v1: the SDK adds /v1/messages.
import Anthropic from "@anthropic-ai/sdk";

const model = process.env.LLM_PROXY_MODEL ?? "claude";
const client = new Anthropic({
  baseURL: process.env.LLM_PROXY_BASE_URL ?? "http://localhost:8080",
  apiKey: process.env.LLM_PROXY_KEY,
  maxRetries: 0, // a failure must show, not be retried away
});

const prompt = [{ role: "user", content: "Say hello" }];
const tokens = (u) => `(in: ${u.input_tokens}, out: ${u.output_tokens})`;
const text = (msg) => msg.content.filter((b) => b.type === "text").map((b) => b.text).join("");

// Plain.
const plain = await client.messages.create({ model, max_tokens: 100, messages: prompt });
console.log(`plain: ${text(plain)} ${tokens(plain.usage)}`);

// Streamed: the text as it arrives, the usage from the final message.
const stream = client.messages.stream({ model, max_tokens: 100, messages: prompt });
let streamed = "";
stream.on("text", (delta) => (streamed += delta));
const final = await stream.finalMessage();
console.log(`stream: ${streamed} ${tokens(final.usage)}`);

// A tool round trip: the model calls get_weather, we answer, it goes on.
const tools = [
  {
    name: "get_weather",
    description: "The current weather in a city",
    input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
];
const weather = (input) => `Sunny, 22 C in ${input.city}`;

async function roundTrip(label, call) {
  const messages = [{ role: "user", content: "What is the weather in Paris?" }];
  const first = await call({ model, max_tokens: 200, tools, messages });
  const use = first.content.find((b) => b.type === "tool_use");
  if (first.stop_reason !== "tool_use" || !use) {
    throw new Error(`${label}: expected a tool_use, got ${JSON.stringify(first)}`);
  }
  messages.push({ role: "assistant", content: first.content });
  messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: weather(use.input) }] });
  const second = await call({ model, max_tokens: 200, tools, messages });
  console.log(`${label}: ${use.name}(${JSON.stringify(use.input)}) -> ${text(second)} [${second.stop_reason}]`);
}
await roundTrip("tool", (params) => client.messages.create(params));
await roundTrip("tool-stream", (params) => client.messages.stream(params).finalMessage());

// count_tokens.
const count = await client.messages.countTokens({ model, messages: prompt });
console.log(`count: ${count.input_tokens}`);
