#!/usr/bin/env bash
# Regenerates src/*/PublicAPI.Unshipped.txt from the compiler: builds every packable project (the ones with a
# PublicAPI.Shipped.txt) with warnings as warnings, reads the PublicApiAnalyzers diagnostics
#   RS0016  Symbol '<api>' is not part of the declared public API        -> the line is added
#   RS0017  Symbol '<api>' is part of the declared API, but is either not public or could not be found -> removed
# and rewrites each Unshipped file sorted (ordinal), under its '#nullable enable' header. Then it builds again
# normally and fails if the surface still does not match. Review the diff: every line is a public API change.
#
# Usage (from anywhere): eng/update-public-api.sh [-c Debug|Release]
# A symbol gone from PublicAPI.Shipped.txt is never removed silently: the script stops and names it (a shipped API is
# removed by adding "*REMOVED*<api>" to the Unshipped file, by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
configuration=Debug
if [[ "${1:-}" == "-c" && -n "${2:-}" ]]; then configuration=$2; fi
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

mapfile -t projects < <(for f in src/*/PublicAPI.Shipped.txt; do ls "$(dirname "$f")"/*.csproj; done)
[[ ${#projects[@]} -gt 0 ]] || { echo "no src/*/PublicAPI.Shipped.txt found" >&2; exit 1; }

build() { # $1: extra msbuild arguments; prints the build output
  local out=0
  # Touching the API files (AdditionalFiles of the compilation) makes the compiler run again even when nothing else
  # changed, so the analyzers report on every project.
  touch src/*/PublicAPI.*.txt
  for project in "${projects[@]}"; do
    dotnet build "$project" -c "$configuration" -v:minimal -clp:NoSummary $1 || out=1
  done
  return $out
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "[public-api] building ${#projects[@]} packable projects with warnings not as errors..." >&2
build "-p:TreatWarningsAsErrors=false" >"$log" 2>&1 || { grep -E ': error ' "$log" | sort -u >&2; echo "[public-api] the build failed (above)" >&2; exit 1; }

status=0
for project in "${projects[@]}"; do
  dir=$(dirname "$project")
  unshipped="$dir/PublicAPI.Unshipped.txt"
  shipped="$dir/PublicAPI.Shipped.txt"
  [[ -f "$unshipped" ]] || printf '#nullable enable\n' >"$unshipped"
  full=$(cd "$dir" && pwd)/$(basename "$project")
  # "<file>(l,c): warning RS0016: Symbol '<api>' is not part of the declared public API (<link>) [<project>]"
  added=$(grep -F "[$full]" "$log" | sed -nE "s/^.*: (warning|error) RS0016: Symbol '(.*)' is not part of the declared public API.*$/\2/p" | LC_ALL=C sort -u || true)
  removed=$(grep -F "[$full]" "$log" | sed -nE "s/^.*: (warning|error) RS0017: Symbol '(.*)' is part of the declared API, but is either not public or could not be found.*$/\2/p" | LC_ALL=C sort -u || true)
  if [[ -n "$removed" ]]; then
    while IFS= read -r api; do
      if grep -qxF -- "$api" "$shipped"; then
        echo "[public-api] $shipped: '$api' is shipped and no longer public: add '*REMOVED*$api' to $unshipped by hand" >&2
        status=1
      fi
    done <<<"$removed"
  fi
  body=$(grep -v '^#nullable enable$' "$unshipped" | grep -v '^[[:space:]]*$' || true)
  if [[ -n "$removed" ]]; then body=$(grep -vxF -f <(printf '%s\n' "$removed") <<<"$body" || true); fi
  { printf '#nullable enable\n'; printf '%s\n%s\n' "$body" "$added" | grep -v '^[[:space:]]*$' | LC_ALL=C sort -u; } >"$unshipped.new"
  mv "$unshipped.new" "$unshipped"
  echo "[public-api] $unshipped: +$(grep -c . <<<"$added" || true) -$(grep -c . <<<"$removed" || true)" >&2
done
[[ $status -eq 0 ]] || exit $status

echo "[public-api] checking: a normal build of the packable projects..." >&2
build "" >"$log" 2>&1 || { grep -E ': (error|warning) ' "$log" | sort -u >&2; echo "[public-api] still failing (above)" >&2; exit 1; }
echo "[public-api] done: review 'git diff -- src/*/PublicAPI.Unshipped.txt'" >&2
