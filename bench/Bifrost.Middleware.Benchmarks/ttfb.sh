#!/usr/bin/env bash
# ttfb.sh — time to the first streamed chunk through the sample host vs the bare .NET forwarder (the floor) and the mock
# upstream directly, one request at a time, interleaved (issue 18, target 2: ≤ +50 µs to the first chunk over the floor).
# CPU per streamed request at c32 comes from whole-path.sh: STREAM=1 MOCK_STREAM_CHUNKS=20 whole-path.sh.
#
# Usage: bench/Bifrost.Middleware.Benchmarks/ttfb.sh   (publishes like whole-path.sh unless SKIP_PUBLISH=1)
# Knobs: REQUESTS=2000 WARMUP=200 CHUNKS=20 BUILD_DIR=/tmp/bench-build BENCH_DIR (shared/bench)
#   RAW=1  the client writes each request in one socket write (ttfb.mjs --raw=1) instead of node:http's client
#   PORT_BASE=18080  the mock's port; the floor and the sample listen on PORT_BASE-13000 and PORT_BASE-12999 (5080, 5081)
#   SAMPLE_DIR=$BUILD_DIR/sample
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
if [[ -z "${BENCH_DIR:-}" ]]; then
  if [[ -f "$REPO/../shared/bench/mock-upstream.mjs" ]]; then BENCH_DIR=$(cd "$REPO/../shared/bench" && pwd); else BENCH_DIR=/work/shared/bench; fi
fi
BUILD_DIR=${BUILD_DIR:-/tmp/bench-build}
REQUESTS=${REQUESTS:-2000} WARMUP=${WARMUP:-200} CHUNKS=${CHUNKS:-20}
PORT_BASE=${PORT_BASE:-18080} SAMPLE_DIR=${SAMPLE_DIR:-$BUILD_DIR/sample}
MOCK_PORT=$PORT_BASE FLOOR_PORT=$((PORT_BASE - 13000)) SAMPLE_PORT=$((PORT_BASE - 12999))
pids=()
cwd=$(mktemp -d /tmp/bench-ttfb.XXXXXX)
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$cwd"; }
trap cleanup EXIT

if [[ "${SKIP_PUBLISH:-0}" != 1 ]]; then
  dotnet publish -c Release -o "$BUILD_DIR/sample" "$REPO/samples/Bifrost.Sample/Bifrost.Sample.csproj" >"$cwd/publish.log" 2>&1 || { tail -30 "$cwd/publish.log"; exit 1; }
  src=$(mktemp -d /tmp/bench-src.XXXXXX); cp -r "$BENCH_DIR/dotnet-passthrough" "$src/" && chmod -R u+w "$src"
  dotnet publish -c Release -o "$BUILD_DIR/passthrough" "$src/dotnet-passthrough" >>"$cwd/publish.log" 2>&1 || { tail -30 "$cwd/publish.log"; exit 1; }
  rm -rf "$src"
fi

wait_up() { for _ in $(seq 1 60); do curl -s -o /dev/null -m 2 "$1" && return 0; sleep 0.5; done; echo "not up: $1" >&2; return 1; }
cd "$cwd"
node "$BENCH_DIR/mock-upstream.mjs" --port=$MOCK_PORT --chunks="$CHUNKS" >mock.log 2>&1 & pids+=($!)
wait_up http://127.0.0.1:$MOCK_PORT/health
MOCK_BASE_URL=http://127.0.0.1:$MOCK_PORT/v1 dotnet "$BUILD_DIR/passthrough/DotnetPassthrough.dll" --urls http://127.0.0.1:$FLOOR_PORT --contentRoot "$BUILD_DIR/passthrough" >floor.log 2>&1 & pids+=($!)
env Bifrost__Providers__openai__BaseUrl=http://127.0.0.1:$MOCK_PORT/v1 OPENAI_API_KEY=sk-mock \
  dotnet "$SAMPLE_DIR/Bifrost.Sample.dll" --urls http://127.0.0.1:$SAMPLE_PORT --contentRoot "$SAMPLE_DIR" >sample.log 2>&1 & pids+=($!)
wait_up http://127.0.0.1:$FLOOR_PORT/ || true
wait_up http://127.0.0.1:$SAMPLE_PORT/
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
echo "requests=$REQUESTS warmup=$WARMUP chunks=$CHUNKS raw=${RAW:-0}, one at a time, targets interleaved"
node "$HERE/ttfb.mjs" --requests="$REQUESTS" --warmup="$WARMUP" --raw="${RAW:-0}" \
  "direct=http://127.0.0.1:$MOCK_PORT/v1/chat/completions|gpt-4o-mini" \
  "floor=http://127.0.0.1:$FLOOR_PORT/v1/chat/completions|gpt-4o-mini|Authorization: Bearer sk-mock" \
  "bifrost=http://127.0.0.1:$SAMPLE_PORT/openai/v1/chat/completions|openai/gpt-4o-mini|Authorization: Bearer sk-mock"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
