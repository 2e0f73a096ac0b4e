// The official OpenAI Node SDK talking to llm-proxy's Responses API
// (POST /v1/responses): a plain response, a stream read event by event,
// and a function-call round trip with responses.create and with
// responses.stream.
//
//   LLM_PROXY_BASE_URL=http://localhost:8080/v1 LLM_PROXY_KEY=sk-proxy-123 \
//   LLM_PROXY_MODEL=gpt node responses.mjs
//
// With the argument "conversation" it holds a conversation instead: a
// second and a third turn continue the first through
// previous_response_id (the Gateway keeps the history for upstreams
// that only speak Chat Completions), then the response is read back,
// deleted, and is gone.
import OpenAI from "openai";

const baseURL = process.env.LLM_PROXY_BASE_URL ?? "http://localhost:8080/v1";
const apiKey = process.env.LLM_PROXY_KEY ?? "sk-proxy-123";
const model = process.env.LLM_PROXY_MODEL ?? "gpt";

// Retries off: an error should show, not be hidden behind a retry.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const usage = (u) => `(in: ${u?.input_tokens}, out: ${u?.output_tokens})`;

if (process.argv[2] === "conversation") {
  const first = await client.responses.create({ model, input: "My name is Ada." });
  console.log(`turn 1: ${first.output_text} ${usage(first.usage)}`);
  const stream = client.responses.stream({ model, input: "What is my name?", previous_response_id: first.id });
  const second = await stream.finalResponse();
  console.log(`turn 2: ${second.output_text} [continues turn 1: ${second.previous_response_id === first.id}]`);
  const third = await client.responses.create({ model, input: "Thanks.", previous_response_id: second.id });
  console.log(`turn 3: ${third.output_text} [continues turn 2: ${third.previous_response_id === second.id}]`);
  const got = await client.responses.retrieve(third.id);
  console.log(`retrieve: ${got.id === third.id} ${got.output_text}`);
  await client.responses.delete(third.id);
  try {
    await client.responses.retrieve(third.id);
    console.log("after delete: still there");
  } catch (err) {
    console.log(`after delete: ${err.status}`);
  }
  process.exit(0);
}

const res = await client.responses.create({ model, input: "Say hello" });
console.log(`plain: ${res.output_text} ${usage(res.usage)}`);

const stream = client.responses.stream({ model, input: "Say hello" });
let text = "";
for await (const event of stream) {
  if (event.type === "response.output_text.delta") text += event.delta;
}
const streamed = await stream.finalResponse();
if (streamed.output_text !== text) throw new Error(`stream: deltas ${JSON.stringify(text)}, final ${JSON.stringify(streamed.output_text)}`);
console.log(`stream: ${text} ${usage(streamed.usage)}`);

const weather = {
  type: "function",
  name: "get_weather",
  description: "The weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
  strict: true,
};
for (const mode of ["create", "stream"]) {
  const ask = (input) =>
    mode === "create"
      ? client.responses.create({ model, input, tools: [weather] })
      : client.responses.stream({ model, input, tools: [weather] }).finalResponse();
  const input = [{ role: "user", content: "What is the weather in Paris?" }];
  const first = await ask(input);
  const call = first.output.find((item) => item.type === "function_call");
  if (!call) throw new Error(`${mode}: no function_call in ${JSON.stringify(first.output)}`);
  const args = JSON.parse(call.arguments); // the arguments must be complete JSON
  // The model's output goes back as input, as OpenAI's guide does it.
  input.push(...first.output, { type: "function_call_output", call_id: call.call_id, output: `Sunny, 22 C in ${args.city}` });
  const final = await ask(input);
  console.log(`tool-${mode}: ${call.name}(${call.arguments}) -> ${final.output_text} [${final.status}]`);
}
