#!/usr/bin/env bash
# Runs the Go benchmarks (services from scripts/with-services.sh) and writes
# BENCH.md: the raw numbers plus the notes kept in scripts/bench-notes.md.
set -euo pipefail
cd "$(dirname "$0")/.."
raw=$(go test -run '^$' -bench . -benchmem -count 1 -timeout 30m ./... 2>&1 | grep -E '^(Benchmark|pkg:|cpu:|FAIL|---)' )
node=$(cd jobs/node && npm run --silent bench 2>&1 || echo "FAIL: the Node benchmark failed")
{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` on $(date -u +%Y-%m-%d), $(nproc) CPUs, $(go version | cut -d' ' -f3),"
	echo "against a real Redis and MinIO on loopback."
	echo
	echo '```'
	echo "$raw"
	echo '```'
	echo
	echo "Node client (\`npm run bench\` in jobs/node), same Redis:"
	echo
	echo '```'
	echo "$node"
	echo '```'
	echo
	cat scripts/bench-notes.md
} > BENCH.md
echo "wrote BENCH.md" >&2
if grep -q '^FAIL' <<<"$raw$node"; then exit 1; fi
