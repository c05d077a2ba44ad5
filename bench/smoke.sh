#!/usr/bin/env bash
# smoke.sh — every benchmark of bench/ run for seconds, so none can rot (issue 18). It asserts that each one runs to its
# end (exit code 0, and for the whole path: every request answered 2xx); it asserts NOTHING about speed — the figures
# of a smoke run are meaningless (tiny sizes, one pass, a shared CI machine). The real figures and their commands are in
# bench/README.md.
#
# Usage (from anywhere, after `dotnet build Bifrost.Middleware.sln -c Release`):  bench/smoke.sh
#   CONFIG=Release            the configuration built
#   BIFROST_TEST_POSTGRES=... the PostgreSQL benchmarks run only with a server (.ci/run starts one)
#   BENCH_DIR                 shared/bench (the load harness) for the whole path; skipped, saying so, when absent or
#                             when wrk/node are missing
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONFIG=${CONFIG:-Release}
OUT=$(mktemp -d /tmp/bifrost-bench-smoke.XXXXXX)
failed=()
ran=0

step() {
  local name=$1; shift
  local start=$SECONDS
  echo "[smoke] $name: $*"
  if (cd "$OUT" && "$@") >"$OUT/$name.log" 2>&1; then
    echo "[smoke] $name: ok ($((SECONDS - start)) s)"
  else
    echo "[smoke] $name: FAILED ($((SECONDS - start)) s); last lines of its output:"
    tail -25 "$OUT/$name.log" | sed 's/^/    /'
    failed+=("$name")
  fi
  ran=$((ran + 1))
}

bin() { echo "$REPO/bench/$1/bin/$CONFIG/net10.0/$1.dll"; }
core=$(bin Bifrost.Middleware.Benchmarks)

# BenchmarkDotNet classes: the Dry job (one launch, one iteration, no pilot/warm-up) in process, artifacts outside the repo.
step bdn dotnet "$core" --filter '*' --job Dry --inProcess --artifacts "$OUT/bdn" --noOverwrite
# The end-to-end commands of the core benchmark project, at tiny sizes.
step batches-batch dotnet "$core" batches batch 500 8
step batches-async dotnet "$core" batches async 300 8
step batches-upload dotnet "$core" batches upload 2
step request-log dotnet "$core" request-log 200 2
# The SQLite job store.
step sqlite-stores dotnet "$(bin Bifrost.Middleware.Sqlite.Benchmarks)" stores --smoke
step sqlite-writers dotnet "$(bin Bifrost.Middleware.Sqlite.Benchmarks)" writers --smoke
# The PostgreSQL job, file and governance stores.
if [[ -n "${BIFROST_TEST_POSTGRES:-}" ]]; then
  pg=$(bin Bifrost.Middleware.PostgreSql.Benchmarks)
  step postgres-stores dotnet "$pg" --submits 200 --lines 500 --concurrency 8 --rounds 1
  step postgres-governance dotnet "$pg" --governance --calls 200 --rounds 1
else
  echo "[smoke] postgres: skipped (BIFROST_TEST_POSTGRES is not set)"
fi

# The whole path (sample host vs the bare forwarder, through shared/bench's harness): 1 s warm-up, 2 s at c32, once.
bench_dir=${BENCH_DIR:-}
[[ -z "$bench_dir" && -f "$REPO/../shared/bench/peer-overhead.sh" ]] && bench_dir=$(cd "$REPO/../shared/bench" && pwd)
[[ -z "$bench_dir" && -f /work/shared/bench/peer-overhead.sh ]] && bench_dir=/work/shared/bench
if [[ -n "$bench_dir" ]] && command -v wrk >/dev/null && command -v node >/dev/null; then
  whole() {
    BENCH_DIR="$bench_dir" BUILD_DIR="$OUT/build" OUT_ROOT="$OUT/whole-path" ROUNDS=1 CONNS=32 RATES= DURATION=2s WARMUP=1s \
      "$REPO/bench/Bifrost.Middleware.Benchmarks/whole-path.sh" || return 1
    # Every request of the gateway's run must have been answered 2xx (column non2xx of the harness's results).
    awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
                { rows++; if ($col["non2xx"] != 0 || $col["requests"] < 1) bad++ }
                END { if (rows < 1 || bad > 0) { print "bad rows: " bad + 0 " of " rows + 0; exit 1 } }' \
      "$OUT/whole-path/bifrost/r1/results.tsv"
  }
  step whole-path whole
  # Time to the first streamed chunk (ttfb.sh), on what whole-path.sh published: 20 requests per target.
  step ttfb env SKIP_PUBLISH=1 BUILD_DIR="$OUT/build" BENCH_DIR="$bench_dir" REQUESTS=20 WARMUP=5 \
    "$REPO/bench/Bifrost.Middleware.Benchmarks/ttfb.sh"
else
  echo "[smoke] whole-path: skipped (needs shared/bench — set BENCH_DIR — and wrk and node)"
fi

if [[ ${#failed[@]} -eq 0 ]]; then
  echo "[smoke] all $ran benchmark runs ended well (logs: $OUT)"
else
  echo "[smoke] $((ran - ${#failed[@]})) of $ran benchmark runs ended well; failed: ${failed[*]} (logs: $OUT)"
fi
[[ ${#failed[@]} -eq 0 ]]
