#!/usr/bin/env bash
# whole-path.sh — the whole-path overhead of Bifrost.Middleware (sample host on Kestrel → OpenAI-compatible
# adapter → the mock upstream of shared/bench) next to the floor (shared/bench/dotnet-passthrough, a bare .NET
# forwarder), both measured against the same mock and "direct" with the same knobs.
#
# shared/bench/peer-overhead.sh takes ONE candidate per run, so this script runs it once per candidate, back
# to back (each run re-measures "direct"), then prints both summaries and a side-by-side table of deltas vs
# each run's own direct and the CPU/request ratio vs the floor.
#
# Usage (from anywhere):  tests/Bifrost.Middleware.Benchmarks/whole-path.sh
# Knobs (environment, passed on to peer-overhead.sh): ROUNDS=3 RATES=1000 CONNS="1 32" DURATION=10s WARMUP=3s STREAM=0 PIN=0
#   BENCH_DIR   the bench folder (default: ../shared/bench next to the repo, else /work/shared/bench)
#   BUILD_DIR=/tmp/bench-build   where the sample and the floor are published (never inside shared/)
#   OUT_ROOT=/tmp/bench-results/whole-path-<stamp>
#   ORDER="floor bifrost"        candidates, in run order ("bifrost floor" to check order effects). Also available:
#                                bifrost-nolog — the same sample with the host's per-request hosting log scope and
#                                Activity off (Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics=None), which is
#                                what the floor (logging providers cleared) pays for; it separates host from gateway cost.
#   SKIP_PUBLISH=1               reuse what is already published in BUILD_DIR
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [[ -z "${BENCH_DIR:-}" ]]; then
  if [[ -x "$REPO/../shared/bench/peer-overhead.sh" ]]; then BENCH_DIR=$(cd "$REPO/../shared/bench" && pwd); else BENCH_DIR=/work/shared/bench; fi
fi
[[ -f "$BENCH_DIR/peer-overhead.sh" ]] || { echo "peer-overhead.sh not found in $BENCH_DIR (set BENCH_DIR)" >&2; exit 1; }
BUILD_DIR=${BUILD_DIR:-/tmp/bench-build}
OUT_ROOT=${OUT_ROOT:-/tmp/bench-results/whole-path-$(date +%Y%m%dT%H%M%S)}
ORDER=${ORDER:-"floor bifrost"}
export ROUNDS=${ROUNDS:-3} RATES=${RATES:-1000} CONNS=${CONNS:-"1 32"} PORTKEY=0
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mkdir -p "$OUT_ROOT" "$BUILD_DIR"

if [[ "${SKIP_PUBLISH:-0}" != 1 ]]; then
  echo "[whole-path] publishing the sample (Release) → $BUILD_DIR/sample" >&2
  dotnet publish -c Release -o "$BUILD_DIR/sample" "$REPO/samples/Bifrost.Sample/Bifrost.Sample.csproj" >"$OUT_ROOT/publish-sample.log" 2>&1 \
    || { tail -30 "$OUT_ROOT/publish-sample.log" >&2; exit 1; }
  # shared/ is read-only: publish the floor from a writable copy so bin/obj do not land there.
  src=$(mktemp -d /tmp/bench-src.XXXXXX)
  cp -r "$BENCH_DIR/dotnet-passthrough" "$src/" && chmod -R u+w "$src"
  echo "[whole-path] publishing the floor (Release) → $BUILD_DIR/passthrough" >&2
  dotnet publish -c Release -o "$BUILD_DIR/passthrough" "$src/dotnet-passthrough" >"$OUT_ROOT/publish-floor.log" 2>&1 \
    || { tail -30 "$OUT_ROOT/publish-floor.log" >&2; exit 1; }
  rm -rf "$src"
fi

# The servers are started with --contentRoot = their publish folder and from an empty working directory: an ASP.NET
# Core host's content root defaults to the working directory, where it looks for appsettings.json (the sample without
# it logs every request at Information to the console) and which its configuration file watcher watches recursively
# (a busy /tmp would cost both candidates inotify traffic).
RUN_CWD=$(mktemp -d /tmp/bench-cwd.XXXXXX)
trap 'rmdir "$RUN_CWD" 2>/dev/null || true' EXIT

run_candidate() {
  local sample_env="Bifrost__Providers__openai__BaseUrl=http://127.0.0.1:18080/v1 OPENAI_API_KEY=sk-mock"
  case $1 in
    floor)
      CANDIDATE_NAME=floor CANDIDATE_URL=http://127.0.0.1:5080/v1/chat/completions \
      CANDIDATE_CMD="dotnet $BUILD_DIR/passthrough/DotnetPassthrough.dll --urls http://127.0.0.1:5080 --contentRoot $BUILD_DIR/passthrough" \
      OUT_DIR="$OUT_ROOT/floor" "$BENCH_DIR/peer-overhead.sh" ;;
    bifrost|bifrost-nolog)
      # The sample as published (its appsettings.json), its "openai" provider pointed at the mock through configuration
      # bound from the environment, with a key (OPENAI_API_KEY, which appsettings.json names) so an Authorization header
      # goes upstream as the floor forwards the client's.
      [[ $1 == bifrost-nolog ]] && sample_env="$sample_env Logging__LogLevel__Microsoft.AspNetCore.Hosting.Diagnostics=None"
      CANDIDATE_NAME=$1 CANDIDATE_URL=http://127.0.0.1:5081/openai/v1/chat/completions \
      CANDIDATE_CMD="env $sample_env dotnet $BUILD_DIR/sample/Bifrost.Sample.dll --urls http://127.0.0.1:5081 --contentRoot $BUILD_DIR/sample" \
      CANDIDATE_MODEL=openai/gpt-4o-mini CANDIDATE_HEADERS="Authorization: Bearer sk-mock" \
      OUT_DIR="$OUT_ROOT/$1" "$BENCH_DIR/peer-overhead.sh" ;;
    *) echo "unknown candidate $1" >&2; return 1 ;;
  esac
}

for c in $ORDER; do
  echo "[whole-path] === $c (rounds=$ROUNDS conns=[$CONNS] rates=[$RATES]) ===" >&2
  ( cd "$RUN_CWD" && run_candidate "$c" ) >"$OUT_ROOT/$c.out" 2>"$OUT_ROOT/$c.err" || { tail -20 "$OUT_ROOT/$c.err" >&2; exit 1; }
done

for c in $ORDER; do echo; echo "===== $c ($OUT_ROOT/$c/summary.txt)"; cat "$OUT_ROOT/$c/summary.txt"; done

# Side by side: deltas vs each run's own direct, CPU/request at c32 and its ratio to the floor's.
echo
echo "===== side by side (medians over rounds; deltas vs the direct run measured in the same harness run)"
node - "$OUT_ROOT" $ORDER <<'JS' | tee "$OUT_ROOT/side-by-side.txt"
const fs = require("fs");
const [root, ...cands] = process.argv.slice(2);
const med = (a) => { const s = a.filter((x) => x !== "" && !isNaN(+x)).map(Number).sort((x, y) => x - y); if (!s.length) return NaN; const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const load = (c) => {
  const rows = fs.readFileSync(`${root}/${c}/results.tsv`, "utf8").trim().split("\n");
  const head = rows.shift().split("\t");
  const recs = rows.map((r) => Object.fromEntries(r.split("\t").map((v, i) => [head[i], v])));
  const agg = {};
  for (const r of recs) { (agg[`${r.target}|${r.load}`] ??= []).push(r); }
  const out = {};
  for (const [k, rs] of Object.entries(agg)) { out[k] = {}; for (const f of head.slice(3)) out[k][f] = med(rs.map((r) => r[f])); }
  return out;
};
const data = Object.fromEntries(cands.map((c) => [c, load(c)]));
const loads = [...new Set(Object.keys(data[cands[0]]).map((k) => k.split("|")[1]))];
const f0 = (x) => (isNaN(x) ? "-" : (x >= 0 ? "+" : "") + Math.round(x));
const pad = (s, n) => String(s).padStart(n);
console.log(["candidate".padEnd(14), pad("load", 6), pad("direct_p50", 10), pad("+p50_us", 8), pad("+p99_us", 8), pad("rps_ratio", 9), pad("gw_cpu_us/req", 13), pad("rss_MB", 7), pad("cpu_vs_floor", 12)].join(" "));
for (const l of loads) {
  for (const c of cands) {
    const o = data[c][`${c}|${l}`], d = data[c][`direct|${l}`];
    if (!o || !d) continue;
    const fl = data.floor?.[`floor|${l}`];
    const ratio = fl && c !== "floor" ? (o.gw_cpu_us_per_req / fl.gw_cpu_us_per_req).toFixed(2) + "x" : "-";
    console.log([c.padEnd(14), pad(l, 6), pad(Math.round(d.p50_us), 10), pad(f0(o.p50_us - d.p50_us), 8), pad(f0(o.p99_us - d.p99_us), 8), pad((o.rps / d.rps).toFixed(3), 9), pad(o.gw_cpu_us_per_req.toFixed(1), 13), pad((o.gw_rss_kb / 1024).toFixed(1), 7), pad(ratio, 12)].join(" "));
  }
}
console.log("(gw_cpu_us/req is meaningful at c32, saturation; at c1/r1000 it includes idle spinning per request.)");
JS
echo "[whole-path] results in $OUT_ROOT" >&2
