#!/usr/bin/env bash
# Runs the benchmarks one package at a time (services from
# scripts/with-services.sh) and writes
# BENCH.md: the issue's targets as ratios measured side by side in this one
# run (internal/benchratio), the raw numbers, and the notes kept in
# scripts/bench-notes.md. Fails when a benchmark fails or a ratio regressed
# by 20% against scripts/bench-recorded.tsv; BENCH_RECORD=1 records this
# run's values there instead.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
go test -p 1 -run '^$' -bench . -benchmem -count 1 -timeout 40m ./... >"$tmp/go.txt" 2>&1 || status=1
raw=$(grep -E '^(Benchmark|pkg:|cpu:|FAIL|---|panic)' "$tmp/go.txt" || true)
{
	(cd jobs/node && npm run --silent bench) || echo "FAIL: the Node enqueue benchmark failed"
	(cd jobs/node && npm run --silent bench:http-say) || echo "FAIL: the http-say benchmark failed"
} >"$tmp/node.txt" 2>&1
record=()
if [ "${BENCH_RECORD:-}" = 1 ]; then record=(-record); fi
go run ./internal/benchratio -go "$tmp/go.txt" -node "$tmp/node.txt" "${record[@]}" >"$tmp/ratios.md" || status=1
{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` on $(date -u +%Y-%m-%d), $(nproc) CPUs, $(go version | cut -d' ' -f3),"
	echo "against a real Redis and MinIO on loopback. Every ratio below compares two things measured in"
	echo "this same run on the same machine; \`make bench\` fails when one is 20% worse than the value in"
	echo "\`scripts/bench-recorded.tsv\` (\`make bench-record\` writes it)."
	echo
	cat "$tmp/ratios.md"
	echo
	echo '```'
	echo "$raw"
	echo '```'
	echo
	echo "Node client (\`npm run bench\`, \`npm run bench:http-say\` in jobs/node), same Redis:"
	echo
	echo '```'
	cat "$tmp/node.txt"
	echo '```'
	echo
	cat scripts/bench-notes.md
} >BENCH.md
echo "wrote BENCH.md" >&2
if grep -q '^FAIL' "$tmp/node.txt" || grep -qE '^(FAIL|panic)' <<<"$raw"; then status=1; fi
if [ "$status" != 0 ]; then
	grep -E '^(FAIL|panic|---)' <<<"$raw" >&2 || true
	echo "make bench: a benchmark failed or a ratio regressed (see above and BENCH.md)" >&2
fi
exit "$status"
