// A tool-calling round trip through llm-proxy, with the official OpenAI
// Node SDK (plain and with the stream helper) and with LangChain JS: the
// model calls get_weather, the client answers with the tool's result, the
// model answers in words.
//
//   LLM_PROXY_BASE_URL=http://localhost:8080/v1 LLM_PROXY_KEY=sk-proxy-123 \
//   LLM_PROXY_MODEL=gemini-flash node tools.mjs
import OpenAI from "openai";
import { ChatOpenAI } from "@langchain/openai";
import { HumanMessage, ToolMessage } from "@langchain/core/messages";

const baseURL = process.env.LLM_PROXY_BASE_URL ?? "http://localhost:8080/v1";
const apiKey = process.env.LLM_PROXY_KEY ?? "sk-proxy-123";
const model = process.env.LLM_PROXY_MODEL ?? "gemini-flash";

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
for (const mode of ["plain", "stream"]) {
  const messages = [{ role: "user", content: "What is the weather in Paris?" }];
  const first =
    mode === "plain"
      ? await client.chat.completions.create({ model, messages, tools: [weather] })
      : await client.chat.completions.stream({ model, messages, tools: [weather] }).finalChatCompletion();
  const call = first.choices[0].message.tool_calls?.[0];
  if (!call) throw new Error(`${mode}: no tool call in ${JSON.stringify(first)}`);
  JSON.parse(call.function.arguments); // arguments must be complete JSON
  messages.push(first.choices[0].message, { role: "tool", tool_call_id: call.id, content: "sunny" });
  const final = await client.chat.completions.create({ model, messages, tools: [weather] });
  console.log(`openai ${mode}: ${call.function.name} -> ${final.choices[0].message.content}`);
}

const llm = new ChatOpenAI({ model, apiKey, configuration: { baseURL }, maxRetries: 0 }).bindTools([weather]);
const question = new HumanMessage("What is the weather in Paris?");
const ai = await llm.invoke([question]);
const call = ai.tool_calls?.[0];
if (!call) throw new Error(`langchain: no tool call in ${JSON.stringify(ai)}`);
const answer = await llm.invoke([question, ai, new ToolMessage({ content: "sunny", tool_call_id: call.id })]);
console.log(`langchain: ${call.name} -> ${answer.content}`);
