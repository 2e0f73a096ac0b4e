// The official OpenAI Node SDK talking to llm-proxy: one plain chat
// completion, one stream read chunk by chunk, and one with the SDK's
// stream helper (which needs one id on every chunk to merge usage).
//
//   LLM_PROXY_BASE_URL=http://localhost:8080/v1 LLM_PROXY_KEY=sk-proxy-123 \
//   LLM_PROXY_MODEL=gemini-flash node openai.mjs
import OpenAI from "openai";

const baseURL = process.env.LLM_PROXY_BASE_URL ?? "http://localhost:8080/v1";
const apiKey = process.env.LLM_PROXY_KEY ?? "sk-proxy-123";
const model = process.env.LLM_PROXY_MODEL ?? "gemini-flash";

// Retries off: an error should show, not be hidden behind a retry.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const messages = [{ role: "user", content: "Say hello" }];

const res = await client.chat.completions.create({ model, messages });
console.log(`plain: ${res.choices[0].message.content} (tokens: ${res.usage?.total_tokens})`);

const stream = await client.chat.completions.create({
  model,
  messages,
  stream: true,
  stream_options: { include_usage: true },
});
let text = "";
let usage = null;
for await (const chunk of stream) {
  text += chunk.choices[0]?.delta?.content ?? "";
  if (chunk.usage) usage = chunk.usage;
}
console.log(`stream: ${text} (tokens: ${usage?.total_tokens})`);

const runner = client.chat.completions.stream({
  model,
  messages,
  stream_options: { include_usage: true },
});
const final = await runner.finalChatCompletion();
console.log(`helper: ${final.choices[0].message.content} (tokens: ${final.usage?.total_tokens})`);
