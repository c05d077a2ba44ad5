#!/usr/bin/env node
// ttfb.mjs — time to the first streamed chunk, one request at a time, targets interleaved (issue 18, target 2).
//
//   node ttfb.mjs --requests=2000 --warmup=200 name=URL|MODEL[|Header: value] ...
//
// Each request is a streaming chat completion ("stream": true) on a keep-alive connection of its own target; the
// targets take turns request by request, so load from other processes falls on all of them alike. Measured per request:
// time from writing the request to the first body byte holding "data:" (the first SSE event), and to the end of the
// stream. Prints one line per target: p50/p90/p99 of both, in microseconds, and the number of events seen.
// --raw=1: instead of node:http's client, the request line, headers and body go out in ONE socket write on a kept-alive
// raw TCP connection (as wrk sends them), and the stream ends at the "[DONE]" event — to tell the client's own way of
// sending apart from the server's time to the first chunk (issue 18, session 30).
import http from "node:http";
import net from "node:net";

const args = process.argv.slice(2);
const opt = (name, dflt) => { const a = args.find((s) => s.startsWith(`--${name}=`)); return a ? +a.slice(name.length + 3) : dflt; };
const REQUESTS = opt("requests", 2000);
const WARMUP = opt("warmup", 200);
const RAW = opt("raw", 0) === 1;
const targets = args.filter((a) => !a.startsWith("--")).map((spec) => {
  const [name, rest] = [spec.slice(0, spec.indexOf("=")), spec.slice(spec.indexOf("=") + 1)];
  const [url, model, ...headers] = rest.split("|");
  const u = new URL(url);
  const hdrs = { "content-type": "application/json" };
  for (const h of headers) { const i = h.indexOf(":"); hdrs[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim(); }
  const body = JSON.stringify({ model, messages: [{ role: "user", content: "ping" }], stream: true });
  hdrs["content-length"] = Buffer.byteLength(body);
  const raw = Buffer.from(`POST ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\n` + Object.entries(hdrs).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n" + body);
  return { name, u, hdrs, body, raw, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }), first: [], total: [], events: 0 };
});
if (!targets.length) { console.error("usage: node ttfb.mjs [--requests=N] [--warmup=N] name=URL|MODEL[|Header: v] ..."); process.exit(2); }

function onceRaw(t) {
  return new Promise((resolve, reject) => {
    const connect = () => new Promise((ok, ko) => { const s = net.connect(+t.u.port, t.u.hostname, () => ok(s)); s.setNoDelay(true); s.on("error", ko); });
    (t.socket ? Promise.resolve(t.socket) : connect().then((s) => (t.socket = s))).then((sock) => {
      // Done at the "[DONE]" event; the socket is free again once the whole response is in (a chunked body's last chunk).
      let first = 0n, done = 0n, text = "", head = true, chunked = false;
      const onData = (chunk) => {
        const now = process.hrtime.bigint();
        text += chunk.toString("latin1");
        if (head) {
          const i = text.indexOf("\r\n\r\n");
          if (i < 0) return;
          if (!text.startsWith("HTTP/1.1 200")) { sock.off("data", onData); return reject(new Error(`${t.name}: ${text.slice(0, 40)}`)); }
          chunked = /\r\ntransfer-encoding: *chunked/i.test(text.slice(0, i));
          head = false; text = text.slice(i + 4);
        }
        if (!first && text.includes("data:")) first = now;
        if (!done && text.includes("[DONE]")) done = now;
        if (done && (!chunked || text.endsWith("\r\n0\r\n\r\n"))) {
          sock.off("data", onData);
          resolve({ first: Number(first - start) / 1000, total: Number(done - start) / 1000, events: text.split("data:").length - 1 });
        }
      };
      sock.on("data", onData);
      const start = process.hrtime.bigint();
      sock.write(t.raw);
    }, reject);
  });
}

function once(t) {
  if (RAW) return onceRaw(t);
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    let first = 0n, events = 0;
    const req = http.request({ host: t.u.hostname, port: t.u.port, path: t.u.pathname, method: "POST", headers: t.hdrs, agent: t.agent }, (res) => {
      if (res.statusCode !== 200) { res.resume(); return reject(new Error(`${t.name}: HTTP ${res.statusCode}`)); }
      res.on("data", (chunk) => {
        const s = chunk.toString("latin1");
        if (!first && s.includes("data:")) first = process.hrtime.bigint();
        events += s.split("data:").length - 1;
      });
      res.on("end", () => {
        const end = process.hrtime.bigint();
        if (!first) return reject(new Error(`${t.name}: no SSE event`));
        resolve({ first: Number(first - start) / 1000, total: Number(end - start) / 1000, events });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(t.body);
  });
}

const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(s.length * p))]; };
for (let i = 0; i < WARMUP + REQUESTS; i++) {
  for (const t of targets) {
    const r = await once(t);
    if (i >= WARMUP) { t.first.push(r.first); t.total.push(r.total); t.events = r.events; }
  }
}
console.log(["target".padEnd(14), "first_p50_us", "first_p90_us", "first_p99_us", "end_p50_us", "end_p90_us", "events"].join("\t"));
for (const t of targets) {
  console.log([t.name.padEnd(14), ...[0.5, 0.9, 0.99].map((p) => pct(t.first, p).toFixed(0)), ...[0.5, 0.9].map((p) => pct(t.total, p).toFixed(0)), t.events].join("\t"));
  t.agent.destroy();
  t.socket?.destroy();
}
