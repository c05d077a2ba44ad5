// cache-memory.mjs PORT N [CONC] — sends N chat requests with unique user messages to the sample (each a response-cache miss that
// stores an entry), CONC at a time; prints how many were not 200 or were hits. Read the heap with dotnet-counters before and after
// (bench/README, "Memory per cached entry").
import http from "node:http";
const [port, n, conc] = [+process.argv[2], +process.argv[3], +process.argv[4] || 16];
const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
let next = 0, done = 0, bad = 0;
function one() {
  if (next >= n) return Promise.resolve();
  const i = next++;
  const body = JSON.stringify({ model: "openai/gpt-4o-mini", messages: [{ role: "system", content: "You are a helpful assistant." }, { role: "user", content: `Say hello in one short sentence, number ${i}.` }], max_tokens: 64, temperature: 0 });
  return new Promise((res) => {
    const req = http.request({ host: "127.0.0.1", port, path: "/openai/v1/chat/completions", method: "POST", agent, headers: { "content-type": "application/json", authorization: "Bearer sk-mock" } }, (r) => {
      if (r.statusCode !== 200 || r.headers["x-bf-cache-status"] === "hit") bad++;
      r.resume(); r.on("end", () => { done++; res(); });
    });
    req.end(body);
  }).then(one);
}
await Promise.all(Array.from({ length: conc }, one));
console.log(`sent ${done}, non-200 or hits ${bad}`);
agent.destroy();
