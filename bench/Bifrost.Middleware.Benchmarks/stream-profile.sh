#!/usr/bin/env bash
# stream-profile.sh — where the CPU of a streamed chat request goes (issue 18, target 2): one server (the floor, or a published
# sample) fresh, WARM seconds of wrk c32 streaming, then `perf record -F 999 -g` for 12 s under wrk c32; then
# perf-split.py NAME... prints samples per 1,000 requests (≈ µs of CPU per request) by the leaf frame's module.
#
# Usage: bench/Bifrost.Middleware.Benchmarks/stream-profile.sh NAME floor|SAMPLE_DIR   (results in $OUT/prof-NAME)
#        python3 bench/Bifrost.Middleware.Benchmarks/perf-split.py NAME...            (reads $OUT/prof-NAME)
# Knobs: OUT=/tmp/stream-profile WARM=15 CHUNKS=20 MOCK_PORT=18280 PORT=5281 BUILD_DIR=/tmp/bench-build (the floor's publish)
#        BENCH_DIR (shared/bench). The mock is started if nothing answers on MOCK_PORT, and left running for the next call.
set -euo pipefail
name=$1 dir=$2
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-$( [[ -d "$REPO/../shared/bench" ]] && cd "$REPO/../shared/bench" && pwd || echo /work/shared/bench)}
BUILD_DIR=${BUILD_DIR:-/tmp/bench-build} OUT=${OUT:-/tmp/stream-profile} MOCK_PORT=${MOCK_PORT:-18280} PORT=${PORT:-5281}
out=$OUT/prof-$name; mkdir -p "$out"
if ! curl -s -m1 "http://127.0.0.1:$MOCK_PORT/health" >/dev/null; then
  node "$BENCH_DIR/mock-upstream.mjs" --port="$MOCK_PORT" --chunks="${CHUNKS:-20}" >"$OUT/mock.log" 2>&1 &
  echo "mock pid $! on $MOCK_PORT" >&2; sleep 1
fi
cwd=$(mktemp -d)
perfenv="DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0"
if [[ $dir == floor ]]; then
  url=http://127.0.0.1:$PORT/v1/chat/completions model=gpt-4o-mini
  (cd "$cwd" && exec env $perfenv MOCK_BASE_URL=http://127.0.0.1:$MOCK_PORT/v1 dotnet "$BUILD_DIR/passthrough/DotnetPassthrough.dll" --urls "http://127.0.0.1:$PORT" --contentRoot "$BUILD_DIR/passthrough") >"$out/server.log" 2>&1 &
else
  url=http://127.0.0.1:$PORT/openai/v1/chat/completions model=openai/gpt-4o-mini
  (cd "$cwd" && exec env $perfenv Bifrost__Providers__openai__BaseUrl=http://127.0.0.1:$MOCK_PORT/v1 OPENAI_API_KEY=sk-mock dotnet "$dir/Bifrost.Sample.dll" --urls "http://127.0.0.1:$PORT" --contentRoot "$dir") >"$out/server.log" 2>&1 &
fi
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$cwd"' EXIT
until curl -s -o /dev/null -m 1 -XPOST "$url" -H 'content-type: application/json' -H 'Authorization: Bearer sk-mock' -d "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"; do sleep 0.5; done
export BENCH_MODEL=$model BENCH_STREAM=1
wrk -t2 -c32 -d"${WARM:-15}"s -s "$BENCH_DIR/chat.lua" -H "Authorization: Bearer sk-mock" "$url" >"$out/warm.txt"
perf record -F 999 -g -p "$pid" -o "$out/perf.data" -- sleep 12 >"$out/perf.log" 2>&1 &
pp=$!
sleep 0.3
wrk -t2 -c32 -d12s -s "$BENCH_DIR/chat.lua" -H "Authorization: Bearer sk-mock" "$url" >"$out/wrk.txt"
wait $pp || true
echo "$name: $(grep BENCH "$out/wrk.txt"); load $(cut -d' ' -f1-3 /proc/loadavg)"
