#!/usr/bin/env bash
# perf-split.sh — where the CPU of a request goes, by module of the leaf frame, in perf samples per 1,000 requests (one sample
# ≈ 1 ms of CPU at 999 Hz, so samples per 1,000 requests read as µs of CPU per request), for each published sample given,
# one after the other in the same run: each started fresh (perf map on, so JIT frames are named), warmed up WARM seconds at
# c32, then `perf record -F 999 -g` over a 10 s wrk run at c32; the top gateway frames follow the split.
#
# Usage: bench/Bifrost.Middleware.Benchmarks/perf-split.sh TARGET...   each TARGET a published sample's folder (`dotnet publish
# -c Release -o DIR samples/Bifrost.Sample`) or `floor` (the bare .NET forwarder published in $BUILD_DIR/passthrough, as
# whole-path.sh does). Needs wrk, node, perf. Knobs: WARM=15 PORT_BASE=18480 BENCH_DIR=../shared/bench BUILD_DIR=/tmp/bench-build
# ENV="A=1 B=2" (extra environment for the samples, e.g. Telemetry options); STREAM=1 CHUNKS=20: streamed requests (the mock
# sends CHUNKS chunks) — the streamed-request split of bench/README's "Issue 18, target 2 (session 30)".
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-$( [[ -d "$REPO/../shared/bench" ]] && cd "$REPO/../shared/bench" && pwd || echo /work/shared/bench)}
PORT_BASE=${PORT_BASE:-18480}
work=$(mktemp -d /tmp/perf-split.XXXXXX)
BUILD_DIR=${BUILD_DIR:-/tmp/bench-build}
export BENCH_STREAM=${STREAM:-0}
node "$BENCH_DIR/mock-upstream.mjs" --port="$PORT_BASE" --chunks="${CHUNKS:-20}" >"$work/mock.log" 2>&1 &
mock=$!
trap 'kill $mock 2>/dev/null; rm -rf "$work"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
port=$((PORT_BASE + 2))
for dir in "$@"; do
  name=$(basename "$dir")
  if [[ $dir == floor ]]; then
    url=http://127.0.0.1:$port/v1/chat/completions model=gpt-4o-mini
    ( cd "$work" && exec env DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 MOCK_BASE_URL=http://127.0.0.1:$PORT_BASE/v1 \
        dotnet "$BUILD_DIR/passthrough/DotnetPassthrough.dll" --urls http://127.0.0.1:$port --contentRoot "$BUILD_DIR/passthrough" ) >"$work/$name.log" 2>&1 &
  else
    url=http://127.0.0.1:$port/openai/v1/chat/completions model=openai/gpt-4o-mini
    # shellcheck disable=SC2086
    ( cd "$work" && exec env ${ENV:-} DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 Bifrost__Providers__openai__BaseUrl=http://127.0.0.1:$PORT_BASE/v1 \
        OPENAI_API_KEY=sk-mock dotnet "$dir/Bifrost.Sample.dll" --urls http://127.0.0.1:$port --contentRoot "$dir" ) >"$work/$name.log" 2>&1 &
  fi
  pid=$!
  until curl -s -o /dev/null -m 1 -XPOST "$url" -H 'content-type: application/json' -H 'Authorization: Bearer sk-mock' \
    -d "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"; do sleep 0.5; done
  BENCH_MODEL=$model wrk -t2 -c32 -d"${WARM:-15}"s -s "$BENCH_DIR/chat.lua" -H "Authorization: Bearer sk-mock" "$url" >/dev/null
  perf record -F 999 -g -p "$pid" -o "$work/$name.data" -- sleep 10 >/dev/null 2>&1 &
  rec=$!
  BENCH_MODEL=$model wrk -t2 -c32 -d10s -s "$BENCH_DIR/chat.lua" -H "Authorization: Bearer sk-mock" "$url" >"$work/$name.wrk"
  wait "$rec" || true
  perf script -i "$work/$name.data" -F ip,sym,dso 2>/dev/null >"$work/$name.script" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "== $name (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  python3 - "$work/$name.script" "$work/$name.wrk" <<'PY'
import re, sys, collections
script, wrk = sys.argv[1], sys.argv[2]
requests = int(re.search(r"(\d+) requests in", open(wrk).read()).group(1))
def module(sym, dso):
    if "kernel" in dso: return "kernel"
    if "libcoreclr" in dso or "libclrjit" in dso: return "runtime native (GC, stubs, JIT)"
    if "libc.so" in dso or "libc-" in dso: return "libc"
    if "libSystem." in dso: return "native shims"
    if dso.endswith(".so") or ".so." in dso: return "other native " + dso.rsplit("/", 1)[-1]
    # JIT frames (perf map): "instance void [Assembly] Namespace.Type::Method(...)[Tier]"; ReadyToRun code: the .dll itself
    owner = re.findall(r"\[([A-Za-z][\w.]*)\] ", sym.split("(")[0])
    s = dso.rsplit("/", 1)[-1] if dso.endswith(".dll") else (owner[-1] if owner else sym)
    for prefix, name in [("Bifrost.", "Bifrost.Middleware (+Sqlite/Sample)"), ("System.Text.Json", "System.Text.Json"),
                         ("System.Net.ServerSentEvents", "SseParser"),
                         ("Microsoft.AspNetCore.Server.Kestrel", "Kestrel"), ("Microsoft.AspNetCore.Connections", "Kestrel"), ("System.Net.Http", "HttpClient"),
                         ("System.Net.Sockets", "Sockets"), ("OpenTelemetry", "OpenTelemetry SDK"),
                         ("System.Diagnostics.DiagnosticSource", "DiagnosticSource (Activity, Meter)"),
                         ("Microsoft.AspNetCore", "ASP.NET Core (hosting, routing, http)"), ("Microsoft.Extensions", "Microsoft.Extensions (DI, logging)"),
                         ("System.Private.CoreLib", "CoreLib"), ("System.Runtime", "CoreLib"), ("System.Collections", "CoreLib"), ("System.Linq", "CoreLib"),
                         ("System.Threading", "CoreLib"), ("System.Memory", "CoreLib"), ("System.IO.Pipelines", "Kestrel"), ("System.Net", "HttpClient"),
                         ("Microsoft.Data.Sqlite", "Sqlite")]:
        if s.startswith(prefix):
            return name
    return "other managed"
counts, frames, total = collections.Counter(), collections.Counter(), 0
leaf = True
for line in open(script, errors="replace"):
    line = line.strip()
    if not line:
        leaf = True
        continue
    if not leaf:
        continue
    leaf = False
    parts = line.split(None, 1)
    rest = parts[1] if len(parts) > 1 else ""
    m = re.match(r"(.*)\s+\((.*)\)$", rest)
    sym, dso = (m.group(1), m.group(2)) if m else (rest, "")
    counts[module(sym, dso)] += 1
    total += 1
    if "Bifrost." in sym or "System.Text.Json" in sym or "ServerSentEvents" in sym:
        frames[re.sub(r"\[OptimizedTier1\]|\[Optimized\]|\[Tier0\]|\[Tier1\]|\[OSR\]", "", sym).strip()[:140]] += 1
per = lambda n: n * 1000 / requests
print(f"requests {requests}, samples {total}, samples per 1,000 requests {per(total):.1f}")
for name, n in counts.most_common():
    print(f"| {name} | {per(n):.1f} |")
print("top gateway, JSON and SSE leaf frames (samples per 1,000 requests):")
for name, n in frames.most_common(8):
    print(f"  {per(n):.2f}  {name}")
PY
  port=$((port + 1))
done
