#!/usr/bin/env bash
# request-log-http.sh — is the request log complete at a given request rate over HTTP, with bounded memory?
#
# Starts the mock upstream of shared/bench and the sample host (published, Release) with its request log in a SQLite
# file (Bifrost:Sqlite:RequestLogPath), offers RATE chat completions per second for SECONDS through wrk (paced,
# near-Poisson arrivals: shared/bench/chat.lua), samples the sample's RSS every 0.5 s, then stops the load, waits for the
# log's writer to drain and counts the log's rows against the calls the gateway answered (wrk's count, plus the calls
# still in flight when wrk stopped, which the gateway logs too: the log must hold at least wrk's count and at most that
# plus the connections). Every process it starts is stopped by its PID.
#
# Usage: bench/Bifrost.Middleware.Benchmarks/request-log-http.sh [RATE=5000] [SECONDS=20]
# Knobs: BUILD_DIR=/tmp/bench-build (the sample is published to BUILD_DIR/sample unless SKIP_PUBLISH=1), CONNS=64,
#        MAX_ENTRIES (Bifrost:RequestLog:MaxEntries, default 1,000,000 here so the count bound does not trim the run),
#        BENCH_DIR (shared/bench), OUT_DIR, BENCH_EXPECTED_LATENCY_MS (read by chat.lua).
# The rate wrk achieves is lower than the one offered once latency grows: each connection waits its think time, then
# its call. wrk's line (rps=) is the achieved rate. On a 2-core machine shared by wrk, the mock and the gateway,
# 5,000 calls/s were reached with: BENCH_EXPECTED_LATENCY_MS=5 CONNS=96 request-log-http.sh 6000 20.
set -euo pipefail

RATE=${1:-5000}
SECS=${2:-20}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [[ -z "${BENCH_DIR:-}" ]]; then
  if [[ -f "$REPO/../shared/bench/chat.lua" ]]; then BENCH_DIR=$(cd "$REPO/../shared/bench" && pwd); else BENCH_DIR=/work/shared/bench; fi
fi
BUILD_DIR=${BUILD_DIR:-/tmp/bench-build}
CONNS=${CONNS:-64}
MAX_ENTRIES=${MAX_ENTRIES:-1000000}
OUT_DIR=${OUT_DIR:-/tmp/bench-results/request-log-http-$(date +%Y%m%dT%H%M%S)}
mkdir -p "$OUT_DIR"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

if [[ "${SKIP_PUBLISH:-0}" != 1 ]]; then
  dotnet publish -c Release -o "$BUILD_DIR/sample" "$REPO/samples/Bifrost.Sample/Bifrost.Sample.csproj" >"$OUT_DIR/publish.log" 2>&1 \
    || { tail -30 "$OUT_DIR/publish.log" >&2; exit 1; }
fi

WORK=$(mktemp -d /tmp/reqlog-http.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$WORK"; }
trap cleanup EXIT

node "$BENCH_DIR/mock-upstream.mjs" --port=18080 >"$OUT_DIR/mock.log" 2>&1 &
PIDS+=($!)
( cd "$WORK" && exec env Bifrost__Providers__openai__BaseUrl=http://127.0.0.1:18080/v1 OPENAI_API_KEY=sk-mock \
    Bifrost__Sqlite__Path="$WORK/jobs.db" Bifrost__Sqlite__RequestLogPath="$WORK/requests.db" \
    Bifrost__RequestLog__MaxEntries="$MAX_ENTRIES" \
    dotnet "$BUILD_DIR/sample/Bifrost.Sample.dll" --urls http://127.0.0.1:5081 --contentRoot "$BUILD_DIR/sample" ) >"$OUT_DIR/sample.log" 2>&1 &
SAMPLE=$!
PIDS+=("$SAMPLE")

for _ in $(seq 1 60); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5081/health || true) == 200 ]] && break
  sleep 0.5
done
# The process that serves (dotnet exec'd by the subshell: same PID).
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SAMPLE/status" 2>/dev/null || echo 0; }
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)" | tee "$OUT_DIR/summary.txt"
echo "rss before load: $(( $(rss_kb) / 1024 )) MB" | tee -a "$OUT_DIR/summary.txt"

( peak=0; while kill -0 "$SAMPLE" 2>/dev/null; do r=$(rss_kb); (( r > peak )) && peak=$r && echo "$peak" >"$OUT_DIR/peak_rss_kb"; sleep 0.5; done ) &
PIDS+=($!)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$SAMPLE/stat"; }
t0=$(cpu_ticks)
BENCH_MODEL=openai/gpt-4o-mini BENCH_RATE=$RATE BENCH_CONNS=$CONNS \
  timeout $((SECS + 30)) wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$BENCH_DIR/chat.lua" \
  -H "Authorization: Bearer sk-mock" http://127.0.0.1:5081/openai/v1/chat/completions >"$OUT_DIR/wrk.txt" 2>&1
t1=$(cpu_ticks)
bench=$(grep '^BENCH ' "$OUT_DIR/wrk.txt")
requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$bench")
non2xx=$(sed -E 's/.*non2xx=([0-9]+).*/\1/' <<<"$bench")
sleep 3 # the writer's pace is 50 ms; three seconds is many of them
rows=$(sqlite3 "$WORK/requests.db" "select count(*) from bifrost_request_log")
ok_rows=$(sqlite3 "$WORK/requests.db" "select count(*) from bifrost_request_log where status between 200 and 299")
drops=$(curl -s http://127.0.0.1:5081/metrics | awk '/^bifrost_records_dropped/ && /request_log/ { v = $0; sub(/^[^}]*} /, "", v); split(v, a, " "); s += a[1] } END { print s + 0 }')
{
  echo "wrk: $bench"
  echo "offered ${RATE}/s for ${SECS} s over $CONNS connections: wrk completed $requests calls ($non2xx non-2xx)"
  echo "request log rows: $rows ($ok_rows with a 2xx status); rows - wrk completed = $((rows - requests)) (calls in flight at wrk's stop: 0..$CONNS)"
  echo "dropped by the writer (metric): $drops"
  echo "gateway CPU: $(( (t1 - t0) * 10000 / (requests > 0 ? requests : 1) )) us/request (user+sys over the load)"
  echo "peak RSS: $(( $(cat "$OUT_DIR/peak_rss_kb" 2>/dev/null || echo 0) / 1024 )) MB; RSS after: $(( $(rss_kb) / 1024 )) MB"
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$OUT_DIR/summary.txt"
if (( rows < requests || rows > requests + CONNS )); then
  echo "INCOMPLETE: the log holds $rows rows for $requests completed calls" | tee -a "$OUT_DIR/summary.txt"
  exit 1
fi
echo "complete" | tee -a "$OUT_DIR/summary.txt"
