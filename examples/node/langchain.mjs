// LangChain JS's ChatOpenAI talking to llm-proxy: the product guide's
// LangChain example, in JavaScript. One invoke, one stream.
//
//   LLM_PROXY_BASE_URL=http://localhost:8080/v1 LLM_PROXY_KEY=sk-proxy-123 \
//   LLM_PROXY_MODEL=gemini-flash node langchain.mjs
import { ChatOpenAI } from "@langchain/openai";

const baseURL = process.env.LLM_PROXY_BASE_URL ?? "http://localhost:8080/v1";
const apiKey = process.env.LLM_PROXY_KEY ?? "sk-proxy-123";
const model = process.env.LLM_PROXY_MODEL ?? "gemini-flash";

const llm = new ChatOpenAI({
  model,
  apiKey,
  configuration: { baseURL },
  maxRetries: 0,
});

const msg = await llm.invoke("Say hello");
console.log(`invoke: ${msg.content} (tokens: ${msg.usage_metadata?.total_tokens})`);

let text = "";
let tokens;
for await (const chunk of await llm.stream("Say hello")) {
  text += chunk.content;
  if (chunk.usage_metadata) tokens = chunk.usage_metadata.total_tokens;
}
console.log(`stream: ${text} (tokens: ${tokens})`);
