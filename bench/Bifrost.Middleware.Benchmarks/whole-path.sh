#!/usr/bin/env bash
# whole-path.sh — the whole-path overhead of Bifrost.Middleware (sample host on Kestrel → OpenAI-compatible
# adapter → the mock upstream of shared/bench) next to the floor (shared/bench/dotnet-passthrough, a bare .NET
# forwarder), both measured against the same mock and "direct" with the same knobs.
#
# shared/bench/peer-overhead.sh takes ONE candidate per run (plus the optional Portkey peer), so this script runs it
# once per candidate and round, interleaved (round 1: floor, bifrost; round 2: floor, bifrost; ...) with ROUNDS=1 each,
# so that the load other processes put on this shared machine falls on both candidates alike. Every run re-measures
# "direct"; deltas are taken against the direct of the same run, then the median over rounds is reported, next to
# each candidate's CPU/request at c32 and its ratio to the floor's.
#
# Usage (from anywhere):  bench/Bifrost.Middleware.Benchmarks/whole-path.sh
# Knobs (environment, passed on to peer-overhead.sh): ROUNDS=3 RATES=1000 CONNS="1 32" DURATION=10s WARMUP=3s STREAM=0 PIN=0
#   BENCH_DIR   the bench folder (default: ../shared/bench next to the repo, else /work/shared/bench)
#   BUILD_DIR=/tmp/bench-build   where the sample and the floor are published (never inside shared/)
#   OUT_ROOT=/tmp/bench-results/whole-path-<stamp>
#   ORDER="floor bifrost"        candidates, in run order ("bifrost floor" to check order effects). Also available:
#                                bifrost-nolog — the same sample with the host's per-request hosting log scope and
#                                Activity off (Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics=None), which is
#                                what the floor (logging providers cleared) pays for; it separates host from gateway cost.
#                                bifrost-base — the sample published from another commit (BASE_SAMPLE_DIR, default
#                                BUILD_DIR/sample-base), to compare a change with its base in the same interleaved run:
#                                git worktree add /tmp/base REV && dotnet publish -c Release -o /tmp/bench-build/sample-base \
#                                  /tmp/base/samples/Bifrost.Sample; ORDER="floor bifrost-base bifrost" whole-path.sh
#                                Telemetry (the same sample, told through its configuration what a host would set):
#                                bifrost-tracealways — Bifrost__Telemetry__UpstreamTraceContext=Always: HttpClient's child
#                                  Activity and traceparent on every upstream call, as .NET does (the default Auto skips them
#                                  when the host's Activity exists only because logging is on);
#                                bifrost-otel-off — OTEL_SDK_DISABLED=true: the OpenTelemetry SDK registers nothing, so
#                                  nothing listens to the gateway's ActivitySource and Meter ("telemetry off");
#                                bifrost-traced-gw — as shipped (Prometheus metrics) plus tracing of the gateway's
#                                  ActivitySource only, exported over OTLP/HTTP to a local sink (Sample:Tracing:HostInstrumentation=false);
#                                bifrost-traced — the same with the host's ASP.NET Core and HttpClient spans too (what
#                                  the sample does with OTEL_EXPORTER_OTLP_ENDPOINT set).
#                                bifrost-sqlitelog — as shipped plus the request log in a SQLite file (Bifrost:Sqlite:RequestLogPath).
#                                bifrost-cachehit — as shipped plus the exact response cache with a default cache key
#                                  (Bifrost:Cache:Enabled, DefaultCacheKey): wrk's identical requests are all hits but the first.
#                                bifrost-cachemiss — the same exact cache, but every request's user message is unique (a
#                                  counter): every request a miss that is stored (lookup + upstream call + store).
#                                bifrost-semantic — the exact cache plus the semantic cache with the local provider's
#                                  hashed 3-gram embeddings (Semantic:EmbeddingModel=local/echo, in-memory vector index),
#                                  every request's text random words: an exact miss, an embedding, a search that finds
#                                  nothing near, the upstream call and both stores. The in-memory index is searched
#                                  exhaustively within the partition, so its cost grows with the entries kept (up to
#                                  Semantic:MaxEntries, 10,000 by default): a long run measures a full index.
#                                bifrost-semantichit — the same semantic cache (threshold 0.8), every request a paraphrase of
#                                  one text (a counter in it): an exact miss, an embedding and a semantic hit (the first
#                                  few requests are misses that store it).
#                                The three miss/semantic candidates need a different wrk script, which the shared harness
#                                cannot take (peer-overhead.sh always runs its own chat.lua): they run a writable copy of
#                                the bench folder whose chat.lua is unique-chat.lua (next to this script; it loads the
#                                original, kept as chat-shared.lua) with BENCH_UNIQUE=counter|random|paraphrase — the
#                                direct run of the same harness run sends the same unique bodies to the mock.
#                                JIT settings a host can set (the first seconds after start): bifrost-nopgo —
#                                  DOTNET_TieredPGO=0 (no instrumented tier); bifrost-notiered — DOTNET_TieredCompilation=0
#                                  (every method compiled optimized at its first call); bifrost-noquickjit —
#                                  DOTNET_TC_QuickJit=0 (methods without precompiled code optimized at once); bifrost-tcdelay0 —
#                                  DOTNET_TC_CallCountingDelayMs=0 (tier-up call counting starts at once, not after 100 ms
#                                  without new tier-0 compilations).
#   REF=floor                    the candidate the last column divides by (e.g. REF=bifrost-otel-off for telemetry overhead)
#   SKIP_PUBLISH=1               reuse what is already published in BUILD_DIR
#   R2R=1                        publish the sample AND the floor for this machine's runtime (-r linux-x64, framework-dependent)
#                                with ReadyToRun, as a production publish for a container would (the sample's project turns
#                                ReadyToRun on for any RID-specific publish); default: the plain `dotnet publish -c Release`
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [[ -z "${BENCH_DIR:-}" ]]; then
  if [[ -x "$REPO/../shared/bench/peer-overhead.sh" ]]; then BENCH_DIR=$(cd "$REPO/../shared/bench" && pwd); else BENCH_DIR=/work/shared/bench; fi
fi
[[ -f "$BENCH_DIR/peer-overhead.sh" ]] || { echo "peer-overhead.sh not found in $BENCH_DIR (set BENCH_DIR)" >&2; exit 1; }
BUILD_DIR=${BUILD_DIR:-/tmp/bench-build}
OUT_ROOT=${OUT_ROOT:-/tmp/bench-results/whole-path-$(date +%Y%m%dT%H%M%S)}
ORDER=${ORDER:-"floor bifrost"}
export ROUNDS=${ROUNDS:-3} RATES=${RATES-1000} CONNS=${CONNS-"1 32"} PORTKEY=0
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mkdir -p "$OUT_ROOT" "$BUILD_DIR"
PUBLISH_ARGS=()
[[ "${R2R:-0}" == 1 ]] && PUBLISH_ARGS=(-r "$(dotnet --info | awk '/^ *RID:/ {print $2; exit}')" --self-contained false -p:PublishReadyToRun=true)

if [[ "${SKIP_PUBLISH:-0}" != 1 ]]; then
  echo "[whole-path] publishing the sample (Release) → $BUILD_DIR/sample" >&2
  dotnet publish -c Release "${PUBLISH_ARGS[@]}" -o "$BUILD_DIR/sample" "$REPO/samples/Bifrost.Sample/Bifrost.Sample.csproj" >"$OUT_ROOT/publish-sample.log" 2>&1 \
    || { tail -30 "$OUT_ROOT/publish-sample.log" >&2; exit 1; }
  # shared/ is read-only: publish the floor from a writable copy so bin/obj do not land there.
  src=$(mktemp -d /tmp/bench-src.XXXXXX)
  cp -r "$BENCH_DIR/dotnet-passthrough" "$src/" && chmod -R u+w "$src"
  echo "[whole-path] publishing the floor (Release) → $BUILD_DIR/passthrough" >&2
  dotnet publish -c Release "${PUBLISH_ARGS[@]}" -o "$BUILD_DIR/passthrough" "$src/dotnet-passthrough" >"$OUT_ROOT/publish-floor.log" 2>&1 \
    || { tail -30 "$OUT_ROOT/publish-floor.log" >&2; exit 1; }
  rm -rf "$src"
fi

# The servers are started with --contentRoot = their publish folder and from an empty working directory: an ASP.NET
# Core host's content root defaults to the working directory, where it looks for appsettings.json (the sample without
# it logs every request at Information to the console) and which its configuration file watcher watches recursively
# (a busy /tmp would cost both candidates inotify traffic).
RUN_CWD=$(mktemp -d /tmp/bench-cwd.XXXXXX)
SINK_PID=
UNIQUE_BENCH_DIR=
cleanup() { [[ -n $SINK_PID ]] && kill "$SINK_PID" 2>/dev/null; rm -rf "$RUN_CWD" 2>/dev/null || true; [[ -n $UNIQUE_BENCH_DIR ]] && rm -rf "$UNIQUE_BENCH_DIR" 2>/dev/null; true; }
trap cleanup EXIT

# The candidates whose requests must differ: the shared harness from a writable copy whose chat.lua makes each request's
# user message unique (unique-chat.lua; the original kept as chat-shared.lua, which it loads).
if [[ " $ORDER " == *" bifrost-cachemiss "* || " $ORDER " == *" bifrost-semantic"* ]]; then
  UNIQUE_BENCH_DIR=$(mktemp -d /tmp/bench-unique.XXXXXX)
  cp "$BENCH_DIR"/peer-overhead.sh "$BENCH_DIR"/mock-upstream.mjs "$BENCH_DIR"/*.cjs "$UNIQUE_BENCH_DIR/" && chmod -R u+w "$UNIQUE_BENCH_DIR"
  cp "$BENCH_DIR/chat.lua" "$UNIQUE_BENCH_DIR/chat-shared.lua"
  cp "$REPO/bench/Bifrost.Middleware.Benchmarks/unique-chat.lua" "$UNIQUE_BENCH_DIR/chat.lua"
fi

# An OTLP/HTTP sink for the traced candidates: answers every export with 200 and an empty protobuf message, as a
# collector does, so the exporter's full work (batching, protobuf encoding, the HTTP post) is on the gateway's bill.
OTLP_PORT=${OTLP_PORT:-14318}
if [[ " $ORDER " == *" bifrost-traced"* ]]; then
  node -e '
    const http = require("http"); let n = 0, bytes = 0;
    http.createServer((q, s) => { q.on("data", (d) => (bytes += d.length)); q.on("end", () => { n++; s.writeHead(200, { "content-type": "application/x-protobuf" }); s.end(); }); })
      .listen(+process.argv[1], "127.0.0.1");
    process.on("SIGTERM", () => { console.log(`otlp sink: ${n} exports, ${bytes} bytes`); process.exit(0); });' "$OTLP_PORT" >"$OUT_ROOT/otlp-sink.log" 2>&1 &
  SINK_PID=$!
fi

run_candidate() {
  local sample_env="Bifrost__Providers__openai__BaseUrl=http://127.0.0.1:18080/v1 OPENAI_API_KEY=sk-mock"
  case $1 in
    floor)
      CANDIDATE_NAME=floor CANDIDATE_URL=http://127.0.0.1:5080/v1/chat/completions \
      CANDIDATE_CMD="dotnet $BUILD_DIR/passthrough/DotnetPassthrough.dll --urls http://127.0.0.1:5080 --contentRoot $BUILD_DIR/passthrough" \
      "$BENCH_DIR/peer-overhead.sh" ;;
    bifrost|bifrost-nolog|bifrost-tracealways|bifrost-base|bifrost-otel-off|bifrost-traced|bifrost-traced-gw|bifrost-sqlitelog|bifrost-cachehit|bifrost-cachemiss|bifrost-semantic|bifrost-semantichit|bifrost-nopgo|bifrost-notiered|bifrost-tcdelay0|bifrost-noquickjit)
      # The sample as published (its appsettings.json), its "openai" provider pointed at the mock through configuration
      # bound from the environment, with a key (OPENAI_API_KEY, which appsettings.json names) so an Authorization header
      # goes upstream as the floor forwards the client's.
      [[ $1 == bifrost-nolog ]] && sample_env="$sample_env Logging__LogLevel__Microsoft.AspNetCore.Hosting.Diagnostics=None"
      [[ $1 == bifrost-tracealways ]] && sample_env="$sample_env Bifrost__Telemetry__UpstreamTraceContext=Always"
      [[ $1 == bifrost-otel-off ]] && sample_env="$sample_env OTEL_SDK_DISABLED=true"
      [[ $1 == bifrost-nopgo ]] && sample_env="$sample_env DOTNET_TieredPGO=0"
      [[ $1 == bifrost-notiered ]] && sample_env="$sample_env DOTNET_TieredCompilation=0"
      [[ $1 == bifrost-noquickjit ]] && sample_env="$sample_env DOTNET_TC_QuickJit=0"
      [[ $1 == bifrost-tcdelay0 ]] && sample_env="$sample_env DOTNET_TC_CallCountingDelayMs=0"
      [[ $1 == bifrost-traced* ]] && sample_env="$sample_env OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$OTLP_PORT OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
      [[ $1 == bifrost-traced-gw ]] && sample_env="$sample_env Sample__Tracing__HostInstrumentation=false"
      [[ $1 == bifrost-sqlitelog ]] && sample_env="$sample_env Bifrost__Sqlite__RequestLogPath=$RUN_CWD/requests.db"
      [[ $1 == bifrost-cache* || $1 == bifrost-semantic* ]] && sample_env="$sample_env Bifrost__Cache__Enabled=true Bifrost__Cache__DefaultCacheKey=bench"
      [[ $1 == bifrost-semantic* ]] && sample_env="$sample_env Bifrost__Cache__Semantic__Enabled=true Bifrost__Cache__Semantic__EmbeddingModel=local/echo"
      [[ $1 == bifrost-semantichit ]] && sample_env="$sample_env Bifrost__Cache__Semantic__Threshold=0.8"
      local bench=$BENCH_DIR unique=
      case $1 in
        bifrost-cachemiss) bench=$UNIQUE_BENCH_DIR unique=counter ;;
        bifrost-semantic) bench=$UNIQUE_BENCH_DIR unique=random ;;
        bifrost-semantichit) bench=$UNIQUE_BENCH_DIR unique=paraphrase ;;
      esac
      local dir=$BUILD_DIR/sample
      [[ $1 == bifrost-base ]] && dir=${BASE_SAMPLE_DIR:-$BUILD_DIR/sample-base}
      CANDIDATE_NAME=$1 CANDIDATE_URL=http://127.0.0.1:5081/openai/v1/chat/completions \
      CANDIDATE_CMD="env $sample_env dotnet $dir/Bifrost.Sample.dll --urls http://127.0.0.1:5081 --contentRoot $dir" \
      CANDIDATE_MODEL=openai/gpt-4o-mini CANDIDATE_HEADERS="Authorization: Bearer sk-mock" BENCH_UNIQUE=$unique \
      "$bench/peer-overhead.sh" ;;
    *) echo "unknown candidate $1" >&2; return 1 ;;
  esac
}

machine() { echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(dotnet --version 2>/dev/null | head -1) SDK; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"; }
echo "machine at start: $(machine)" >"$OUT_ROOT/machine.txt"
echo "knobs: R2R=${R2R:-0} ORDER=[$ORDER] ROUNDS=$ROUNDS CONNS=[$CONNS] RATES=[$RATES] DURATION=${DURATION:-10s} WARMUP=${WARMUP:-3s} STREAM=${STREAM:-0} PIN=${PIN:-0}" >>"$OUT_ROOT/machine.txt"
for round in $(seq 1 "$ROUNDS"); do
  for c in $ORDER; do
    echo "[whole-path] === round $round/$ROUNDS: $c (conns=[$CONNS] rates=[$RATES]) ===" >&2
    ( cd "$RUN_CWD" && export ROUNDS=1 OUT_DIR="$OUT_ROOT/$c/r$round" && run_candidate "$c" ) >"$OUT_ROOT/$c.r$round.out" 2>"$OUT_ROOT/$c.r$round.err" \
      || { tail -20 "$OUT_ROOT/$c.r$round.err" >&2; exit 1; }
  done
done

echo "machine at end:   $(machine)" >>"$OUT_ROOT/machine.txt"
cat "$OUT_ROOT/machine.txt" | tee "$OUT_ROOT/summary.txt"
# Summaries: per candidate, medians over rounds (the harness's columns), then the side-by-side table.
node - "$OUT_ROOT" "$ROUNDS" "${REF:-floor}" $ORDER <<'JS' | tee -a "$OUT_ROOT/summary.txt"
const fs = require("fs");
const [root, rounds, ref, ...cands] = process.argv.slice(2);
const med = (a) => { const s = a.filter((x) => x !== "" && !isNaN(+x)).map(Number).sort((x, y) => x - y); if (!s.length) return NaN; const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const runs = {};  // cand -> [ {key -> row} per round ]
for (const c of cands) {
  runs[c] = [];
  for (let r = 1; r <= +rounds; r++) {
    const f = `${root}/${c}/r${r}/results.tsv`;
    if (!fs.existsSync(f)) continue;
    const rows = fs.readFileSync(f, "utf8").trim().split("\n");
    const head = rows.shift().split("\t");
    const byKey = {};
    for (const line of rows) { const o = Object.fromEntries(line.split("\t").map((v, i) => [head[i], v])); byKey[`${o.target}|${o.load}`] = o; }
    runs[c].push(byKey);
  }
}
const f0 = (x) => (isNaN(x) ? "-" : Math.round(x).toString());
const f1 = (x) => (isNaN(x) ? "-" : x.toFixed(1));
const sg = (x) => (isNaN(x) ? "-" : (x >= 0 ? "+" : "") + Math.round(x));
const pad = (s, n) => String(s).padStart(n);
const loads = [...new Set(cands.flatMap((c) => runs[c].flatMap((r) => Object.keys(r).map((k) => k.split("|")[1]))))];
const agg = (c, key, f) => med(runs[c].map((r) => r[key]?.[f]));
const delta = (c, l, f) => med(runs[c].map((r) => (r[`${c}|${l}`] && r[`direct|${l}`] ? r[`${c}|${l}`][f] - r[`direct|${l}`][f] : NaN)));
for (const c of cands) {
  console.log(`\n===== ${c}: medians over ${runs[c].length} harness runs (${root}/${c}/r*/summary.txt)`);
  console.log(["target".padEnd(14), pad("load", 6), pad("rps", 9), pad("p50_us", 8), pad("p90_us", 8), pad("p99_us", 8), pad("p99.9_us", 9), pad("non2xx", 7), pad("gw_cpu_us/req", 13), pad("mock_cpu_us/req", 15), pad("rss_MB", 7), pad("peakRSS_MB", 10)].join(" "));
  for (const l of loads) for (const t of ["direct", c]) {
    const k = `${t}|${l}`;
    console.log([t.padEnd(14), pad(l, 6), pad(f1(agg(c, k, "rps")), 9), pad(f0(agg(c, k, "p50_us")), 8), pad(f0(agg(c, k, "p90_us")), 8), pad(f0(agg(c, k, "p99_us")), 8), pad(f0(agg(c, k, "p999_us")), 9), pad(f0(agg(c, k, "non2xx")), 7), pad(f1(agg(c, k, "gw_cpu_us_per_req")), 13), pad(f1(agg(c, k, "mock_cpu_us_per_req")), 15), pad(f1(agg(c, k, "gw_rss_kb") / 1024), 7), pad(f1(agg(c, k, "gw_hwm_kb") / 1024), 10)].join(" "));
  }
}
console.log("\n===== side by side: deltas vs the direct run of the same harness run, medians over rounds (us)");
console.log(["candidate".padEnd(14), pad("load", 6), pad("+p50", 7), pad("+p90", 7), pad("+p99", 7), pad("rps_ratio", 9), pad("gw_cpu_us/req", 13), pad("rss_MB", 7), pad(`cpu_vs_${ref}`, 12)].join(" "));
for (const l of loads) for (const c of cands) {
  const cpu = agg(c, `${c}|${l}`, "gw_cpu_us_per_req");
  const fl = cands.includes(ref) && c !== ref ? agg(ref, `${ref}|${l}`, "gw_cpu_us_per_req") : NaN;
  const rr = med(runs[c].map((r) => (r[`${c}|${l}`] && r[`direct|${l}`] ? r[`${c}|${l}`].rps / r[`direct|${l}`].rps : NaN)));
  console.log([c.padEnd(14), pad(l, 6), pad(sg(delta(c, l, "p50_us")), 7), pad(sg(delta(c, l, "p90_us")), 7), pad(sg(delta(c, l, "p99_us")), 7), pad(isNaN(rr) ? "-" : rr.toFixed(3), 9), pad(f1(cpu), 13), pad(f1(agg(c, `${c}|${l}`, "gw_rss_kb") / 1024), 7), pad(isNaN(fl) ? "-" : (cpu / fl).toFixed(2) + "x", 12)].join(" "));
}
console.log("(gw_cpu_us/req is the cost figure at c32, saturation; at c1 and r1000 it includes the runtime's idle spinning per request)");
JS
echo "[whole-path] results in $OUT_ROOT" >&2
