#!/usr/bin/env bash
# Starts a real Redis and a real MinIO on free loopback ports with data in a
# temporary directory, runs the given command with WASMJOBS_TEST_* pointing at
# them, and stops both afterwards, also on failure or interrupt.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wasmjobs-test.XXXXXX")
pids=()
cleanup() {
	local rc=$?
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT INT TERM

wait_ready() { # name pid probe port
	if wait_for "$2" 300 "$3" "$4"; then return 0; fi
	echo "$1 did not answer on port $4 within 30 s; its log:" >&2
	cat "$tmp/$1.log" >&2
	return 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --databases 1024 --save "" --appendonly no \
	--dir "$tmp" --loglevel warning >"$tmp/redis.log" 2>&1 &
pids+=($!)
wait_ready redis "${pids[-1]}" redis_pong "$redis_port"

minio_port=$(free_port)
console_port=$(free_port)
mkdir -p "$tmp/minio"
MINIO_ROOT_USER=wasmjobs MINIO_ROOT_PASSWORD=wasmjobs-test-secret MINIO_BROWSER=off \
	MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
	.tools/bin/minio server "$tmp/minio" --address "127.0.0.1:$minio_port" \
	--console-address "127.0.0.1:$console_port" --quiet >"$tmp/minio.log" 2>&1 &
pids+=($!)
wait_ready minio "${pids[-1]}" minio_live "$minio_port"

echo "test services: redis 127.0.0.1:$redis_port, minio 127.0.0.1:$minio_port" >&2
export WASMJOBS_TEST_REDIS="redis://127.0.0.1:$redis_port"
export WASMJOBS_TEST_S3="127.0.0.1:$minio_port"
export WASMJOBS_TEST_S3_ACCESS=wasmjobs
export WASMJOBS_TEST_S3_SECRET=wasmjobs-test-secret
export WASMJOBS_TEST_REQUIRE=1
"$@"
