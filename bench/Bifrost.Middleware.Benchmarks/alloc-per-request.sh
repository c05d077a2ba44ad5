#!/usr/bin/env bash
# alloc-per-request.sh — bytes allocated per request, the floor next to the sample (and any other published sample), at c32.
# A figure that does not depend on how busy the machine is: each server is started fresh, warmed up (WARM seconds at c32),
# then `dotnet-counters` reads `dotnet.gc.heap.total_allocated` once a second around a fixed wrk run (10 s at c32); the
# bytes of the run's seconds, less the idle seconds' mean, divided by the requests wrk made.
#
# Usage: bench/Bifrost.Middleware.Benchmarks/alloc-per-request.sh [SAMPLE_DIR...]
#   default SAMPLE_DIR: $BUILD_DIR/sample (publish with whole-path.sh first, or SKIP_PUBLISH=0 here). Needs wrk, node and the
#   dotnet-counters tool (dotnet tool install -g dotnet-counters).
# Knobs: BUILD_DIR=/tmp/bench-build WARM=10 BENCH_DIR=../shared/bench PORT_BASE=18080 (mock upstream; the floor and the samples
# listen on the next ports, so two runs with different bases do not meet) SKIP_FLOOR=1 (samples only)
#   STREAM=1 streamed requests ("stream": true; the mock sends CHUNKS=20 content chunks, plus the role and finish chunks)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-$( [[ -d "$REPO/../shared/bench" ]] && cd "$REPO/../shared/bench" && pwd || echo /work/shared/bench)}
BUILD_DIR=${BUILD_DIR:-/tmp/bench-build}
export PATH=$PATH:$HOME/.dotnet/tools
command -v dotnet-counters >/dev/null || { echo "dotnet-counters not found (dotnet tool install -g dotnet-counters)" >&2; exit 1; }
PORT_BASE=${PORT_BASE:-18080}
work=$(mktemp -d /tmp/alloc-per-request.XXXXXX)
[[ "${STREAM:-0}" == 1 ]] && export BENCH_STREAM=1
node "$BENCH_DIR/mock-upstream.mjs" --port="$PORT_BASE" --chunks="${CHUNKS:-20}" >"$work/mock.log" 2>&1 &
mock=$!
trap 'kill $mock 2>/dev/null; rm -rf "$work"' EXIT

measure() { # name url cmd...
  local name=$1 url=$2; shift 2
  ( cd "$work" && exec "$@" ) >"$work/$name.log" 2>&1 &
  local pid=$!
  until curl -s -o /dev/null -m 1 -XPOST "$url" -H 'content-type: application/json' -H 'Authorization: Bearer sk-mock' \
    -d '{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'; do sleep 0.5; done
  BENCH_MODEL=openai/gpt-4o-mini wrk -t2 -c32 -d"${WARM:-10}"s -s "$BENCH_DIR/chat.lua" -H "Authorization: Bearer sk-mock" "$url" >/dev/null
  dotnet-counters collect -p "$pid" --counters System.Runtime --refresh-interval 1 --duration 00:00:00:18 --format json -o "$work/$name.json" >/dev/null 2>&1 &
  local counters=$!
  sleep 4
  local s0 s1; s0=$(date +%s.%N)
  BENCH_MODEL=openai/gpt-4o-mini wrk -t2 -c32 -d10s -s "$BENCH_DIR/chat.lua" -H "Authorization: Bearer sk-mock" "$url" >"$work/$name.wrk"
  s1=$(date +%s.%N)
  wait "$counters"; kill "$pid"; wait "$pid" 2>/dev/null || true
  python3 - "$work/$name" "$name" "$s0" "$s1" <<'PY'
import json, sys, re, datetime
base, name, s0, s1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
events = json.load(open(base + ".json"))["Events"]
ts = lambda e: datetime.datetime.fromisoformat(e["timestamp"][:26] + "+00:00").timestamp()
alloc = [(ts(e), e["value"]) for e in events if e["name"].startswith("dotnet.gc.heap.total_allocated")]
busy = [v for t, v in alloc if s0 < t <= s1 + 1.5]
idle = [v for t, v in alloc if t <= s0 - 0.5 or t > s1 + 2.5]
idle_mean = sum(idle) / len(idle) if idle else 0
requests = int(re.search(r"requests=(\d+)", open(base + ".wrk").read()).group(1))
print(f"{name}: {(sum(busy) - idle_mean * len(busy)) / requests:,.0f} B/request over {requests} requests (idle {idle_mean / 1e3:.0f} kB/s)")
PY
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
[[ -n "${SKIP_FLOOR:-}" ]] || measure floor http://127.0.0.1:$((PORT_BASE + 1))/v1/chat/completions env MOCK_BASE_URL=http://127.0.0.1:$PORT_BASE/v1 dotnet "$BUILD_DIR/passthrough/DotnetPassthrough.dll" --urls http://127.0.0.1:$((PORT_BASE + 1)) --contentRoot "$BUILD_DIR/passthrough"
port=$((PORT_BASE + 2))
for dir in "${@:-$BUILD_DIR/sample}"; do
  measure "sample($(basename "$dir"))" http://127.0.0.1:$port/openai/v1/chat/completions \
    env Bifrost__Providers__openai__BaseUrl=http://127.0.0.1:$PORT_BASE/v1 OPENAI_API_KEY=sk-mock dotnet "$dir/Bifrost.Sample.dll" --urls http://127.0.0.1:$port --contentRoot "$dir"
  port=$((port + 1))
done
